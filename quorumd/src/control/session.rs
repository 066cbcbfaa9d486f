//! One client connection: requests and replies, or a follow stream.

use super::auth::Policy;
use super::lines::{Line, LineReader};
use super::{Command, ControlHandle, HoldChange, WRITE_TIMEOUT};
use common::control::{
    ControlError, ErrorKind, Event, MAX_LINE, Reply, Request, Response, decode_request, encode_line,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, oneshot};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// One connected client.
/// A client that sends no request for this long is closed (idle connections must not hold
/// the slots that root needs for `dispatch`). `follow` streams are not idle.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) struct Client {
    pub(super) handle: ControlHandle,
    pub(super) policy: Arc<Policy>,
    pub(super) shutdown: CancellationToken,
}

impl Client {
    pub(super) async fn serve(self, stream: UnixStream) {
        let peer = stream.peer_cred().ok();
        let (read, mut writer) = stream.into_split();
        let mut reader = LineReader::new(read, MAX_LINE);
        loop {
            let line = tokio::select! {
                () = self.shutdown.cancelled() => return,
                line = timeout(IDLE_TIMEOUT, reader.next_line()) => match line {
                    Ok(line) => line,
                    Err(_) => {
                        debug!("control client idle too long; closing");
                        return;
                    }
                },
            };
            let request = match line {
                Ok(Line::Complete(bytes)) => parse(&bytes),
                Ok(Line::Eof) => return,
                Ok(Line::Partial) => {
                    debug!("control client hung up in the middle of a line");
                    return;
                }
                Ok(Line::TooLong) => {
                    debug!(limit = MAX_LINE, "control request line too long; closing");
                    let message = format!(
                        "request line longer than {MAX_LINE} bytes; closing the connection"
                    );
                    let reply: Reply = Err(ControlError::new(ErrorKind::BadRequest, message));
                    let _ = write_line(&mut writer, &reply).await;
                    return;
                }
                Err(e) => {
                    debug!(error = %e, "reading from control client failed");
                    return;
                }
            };
            let request =
                match request.and_then(|r| self.policy.check(peer.as_ref(), &r).map(|()| r)) {
                    Ok(request) => request,
                    Err(e) => {
                        debug!(kind = %e.kind, message = %e.message, "control request refused");
                        if write_line(&mut writer, &Err::<Response, _>(e))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        continue;
                    }
                };
            debug!(request = %serde_json::to_string(&request).unwrap_or_default(), "control request");
            if request == Request::Follow {
                self.follow(reader, writer).await;
                return;
            }
            let reply = self.answer(request).await;
            if let Err(e) = write_line(&mut writer, &reply).await {
                debug!(error = %e, "writing a control reply failed");
                return;
            }
        }
    }

    /// The reply to every request but `follow`.
    async fn answer(&self, request: Request) -> Reply {
        let now = Instant::now();
        match request {
            Request::Status => {
                self.refresh().await;
                Ok(Response::Status(
                    self.handle.status.borrow().effective(Instant::now()),
                ))
            }
            Request::Role => {
                let snapshot = self.handle.status.borrow();
                Ok(Response::Role {
                    role: snapshot.effective_role(now),
                    valid_until_ns: snapshot.valid_until_ns(now),
                })
            }
            Request::Members => {
                self.refresh().await;
                Ok(Response::Members {
                    members: self
                        .handle
                        .status
                        .borrow()
                        .effective(Instant::now())
                        .members,
                })
            }
            Request::Rename { name } => self.forward(|reply| Command::Rename { name, reply }).await,
            Request::Dispatch => self.forward(|reply| Command::Dispatch { reply }).await,
            Request::Forget { name } => self.forward(|reply| Command::Forget { name, reply }).await,
            Request::StepDown { for_ms } => {
                let change = HoldChange::StepDown(for_ms.map(Duration::from_millis));
                self.forward(|reply| Command::Hold { change, reply }).await
            }
            Request::Metrics => {
                self.refresh().await;
                Ok(Response::Metrics {
                    text: crate::metrics::METRICS.encode(),
                })
            }
            Request::Resume => {
                self.forward(|reply| Command::Hold {
                    change: HoldChange::Resume,
                    reply,
                })
                .await
            }
            Request::Maintenance { on } => {
                self.forward(|reply| Command::Hold {
                    change: HoldChange::Maintenance(on),
                    reply,
                })
                .await
            }
            Request::Follow => Err(ControlError::new(
                ErrorKind::BadRequest,
                "follow is answered by a stream",
            )),
        }
    }

    /// Sends a command to the driver and waits for its answer.
    async fn forward(&self, command: impl FnOnce(oneshot::Sender<Reply>) -> Command) -> Reply {
        let gone = || {
            Err(ControlError::new(
                ErrorKind::ShuttingDown,
                "the daemon is shutting down and accepts no more changes",
            ))
        };
        let (tx, rx) = oneshot::channel();
        if self.handle.commands.send(command(tx)).await.is_err() {
            return gone();
        }
        rx.await.unwrap_or_else(|_| gone())
    }

    /// Has the driver publish a fresh snapshot (it does so only on news otherwise). While it
    /// shuts down it answers nothing: the last snapshot is read then.
    async fn refresh(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .handle
            .commands
            .send(Command::Refresh { reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// `Following`, the snapshot, then every event until hang-up, lag, a stuck write or shutdown.
    async fn follow(&self, mut reader: LineReader<OwnedReadHalf>, mut writer: OwnedWriteHalf) {
        // Subscribe before reading the snapshot: an event published in between is then sent
        // (possibly redundantly) rather than lost.
        let mut events = self.handle.events.subscribe();
        self.refresh().await;
        let snapshot = Event::Snapshot(self.handle.status.borrow().effective(Instant::now()));
        let following: Reply = Ok(Response::Following);
        if write_line(&mut writer, &following).await.is_err()
            || write_line(&mut writer, &snapshot).await.is_err()
        {
            return;
        }
        let mut scratch = [0u8; 512];
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                read = reader.discard(&mut scratch) => match read {
                    // Input while following is ignored; EOF or an error means the client left.
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                event = events.recv() => match event {
                    Ok(event) => {
                        if let Err(e) = write_line(&mut writer, &event).await {
                            debug!(error = %e, "follow client not reading; disconnecting");
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        debug!(missed, "follow client lagging behind; disconnecting");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// A request from a line, with a clearer message for bytes that are not even text.
fn parse(line: &[u8]) -> Result<Request, ControlError> {
    if std::str::from_utf8(line).is_err() {
        return Err(ControlError::new(
            ErrorKind::BadRequest,
            "request is not UTF-8 text; expected one JSON object per line, e.g. {\"type\":\"status\"}",
        ));
    }
    decode_request(line)
}

/// Writes one JSON line, giving up after [`WRITE_TIMEOUT`].
async fn write_line<T: Serialize>(writer: &mut OwnedWriteHalf, value: &T) -> std::io::Result<()> {
    let line = encode_line(value);
    match timeout(WRITE_TIMEOUT, writer.write_all(&line)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client did not read for 5 s",
        )),
    }
}
