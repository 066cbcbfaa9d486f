//! One function per subcommand that talks to the daemon.

use crate::client::Client;
use crate::duration::format_duration;
use crate::exit::Failure;
use crate::output;
use common::control::{Event, PROTOCOL_VERSION, Reply, Request, Response, Status};
use common::types::Role;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How long `dispatch` watches for the socket to vanish when the daemon hangs up unanswered.
const DISPATCH_VANISH_WAIT: Duration = Duration::from_secs(2);

/// Writes `text` to stdout and flushes (a closed pipe becomes [`Failure::BrokenPipe`]).
/// Writes `text` to stdout; a closed pipe becomes [`Failure::BrokenPipe`] (exit 0, quiet).
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Output(std::io::Error::other(e)))?;
    print(&format!("{text}\n"))
}

/// The response, or the daemon's refusal as a failure.
fn accept(reply: Reply) -> Result<Response, Failure> {
    reply.map_err(Failure::Refused)
}

fn unexpected(client: &Client, response: &Response) -> Failure {
    Failure::BadReply {
        path: client.path().to_path_buf(),
        detail: format!("unexpected answer {response:?}"),
    }
}

/// Hints on stderr when the daemon speaks another protocol version.
fn check_version(status: &Status) {
    if status.protocol_version != PROTOCOL_VERSION {
        crate::exit::say!(
            "quorumctl: hint: quorumd {} speaks control protocol {}, this quorumctl speaks {}; \
             upgrade the older one",
            status.version,
            status.protocol_version,
            PROTOCOL_VERSION
        );
    }
}

/// `status`.
pub async fn status(client: &mut Client, json: bool) -> Result<(), Failure> {
    match accept(client.request(&Request::Status).await?)? {
        Response::Status(status) => {
            check_version(&status);
            if json {
                print_json(&status)
            } else {
                print(&output::status(&status))
            }
        }
        other => Err(unexpected(client, &other)),
    }
}

/// This node's role. A "master" that arrives after the lease it was given under ran out
/// (the daemon was frozen between answering and sending) is stale: it reads as inquorate.
pub async fn fetch_role(client: &mut Client) -> Result<Role, Failure> {
    match accept(client.request(&Request::Role).await?)? {
        Response::Role {
            role: Role::Master,
            valid_until_ns: Some(until),
        } if quorumd::control::monotonic_ns() >= until => Ok(Role::Inquorate),
        Response::Role { role, .. } => Ok(role),
        other => Err(unexpected(client, &other)),
    }
}

/// `role`.
pub async fn role(client: &mut Client, json: bool) -> Result<(), Failure> {
    let role = fetch_role(client).await?;
    if json {
        print(&format!("{}\n", serde_json::json!({ "role": role })))
    } else {
        print(&format!("{role}\n"))
    }
}

/// `is-master`.
pub async fn is_master(client: &mut Client) -> Result<(), Failure> {
    match fetch_role(client).await? {
        Role::Master => Ok(()),
        _ => Err(Failure::Negative(None)),
    }
}

/// `members`.
pub async fn members(client: &mut Client, json: bool) -> Result<(), Failure> {
    match accept(client.request(&Request::Members).await?)? {
        Response::Members { members } if json => print_json(&members),
        Response::Members { members } => print(&output::members(&members)),
        other => Err(unexpected(client, &other)),
    }
}

/// `rename NEW`.
pub async fn rename(client: &mut Client, name: String, json: bool) -> Result<(), Failure> {
    match accept(client.request(&Request::Rename { name }).await?)? {
        Response::Renamed { from, to } if json => print(&format!(
            "{}\n",
            serde_json::json!({ "from": from, "to": to })
        )),
        Response::Renamed { from, to } => print(&format!("renamed {from} -> {to}\n")),
        other => Err(unexpected(client, &other)),
    }
}

/// `forget NAME`.
pub async fn forget(client: &mut Client, name: String, json: bool) -> Result<(), Failure> {
    match accept(client.request(&Request::Forget { name }).await?)? {
        Response::Forgotten { name } if json => {
            print(&format!("{}\n", serde_json::json!({ "forgotten": name })))
        }
        Response::Forgotten { name } => print(&format!("forgot {name}\n")),
        other => Err(unexpected(client, &other)),
    }
}

/// `step-down`, `resume`, `maintenance on|off`: prints why the node is now held back from
/// mastership, or `eligible`.
pub async fn hold(client: &mut Client, request: Request, json: bool) -> Result<(), Failure> {
    match accept(client.request(&request).await?)? {
        Response::Held { held } if json => print(&format!(
            "{}\n",
            serde_json::json!({ "eligible": held.is_empty(), "held": held })
        )),
        Response::Held { held } if held.is_empty() => print("eligible\n"),
        Response::Held { held } => print(&format!("not eligible: {}\n", held.join(", "))),
        other => Err(unexpected(client, &other)),
    }
}

/// `metrics`: the Prometheus text, as served at `--metrics-listen`.
pub async fn metrics(client: &mut Client) -> Result<(), Failure> {
    match accept(client.request(&Request::Metrics).await?)? {
        Response::Metrics { text } => print(&text),
        other => Err(unexpected(client, &other)),
    }
}

/// `dispatch`: waits for the daemon's confirmation, sent right before it exits.
pub async fn dispatch(client: &mut Client, json: bool) -> Result<(), Failure> {
    client.send(&Request::Dispatch).await?;
    let done = || {
        if json {
            print(&format!("{}\n", serde_json::json!({ "dispatched": true })))
        } else {
            print("dispatched\n")
        }
    };
    match client.reply().await {
        Ok(reply) => match accept(reply)? {
            Response::Dispatched => done(),
            other => Err(unexpected(client, &other)),
        },
        // The daemon may exit before its reply gets out; its socket vanishing says it left.
        Err(Failure::Unreachable { path, .. }) => {
            if vanishes(&path, DISPATCH_VANISH_WAIT).await {
                done()
            } else {
                Err(Failure::Unreachable {
                    path,
                    error: std::io::Error::other(
                        "the connection closed before quorumd confirmed the dispatch, and it is \
                         still running; check its log",
                    ),
                })
            }
        }
        Err(other) => Err(other),
    }
}

/// Whether `path` disappears within `within` (polled).
async fn vanishes(path: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !path.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends `follow` and checks its acknowledgement.
async fn start_follow(client: &mut Client) -> Result<(), Failure> {
    match accept(client.request(&Request::Follow).await?)? {
        Response::Following => Ok(()),
        other => Err(unexpected(client, &other)),
    }
}

/// The next event of a follow stream; None when the daemon closed it.
async fn next_event(client: &mut Client) -> Result<Option<(String, Option<Event>)>, Failure> {
    let Some(line) = client.next_line().await? else {
        return Ok(None);
    };
    // An event type from a newer daemon is passed through (JSON) or skipped (human).
    let event = serde_json::from_str::<Event>(&line).ok();
    Ok(Some((line, event)))
}

/// `follow`: events until the daemon goes away (exit 3) or our reader does (exit 0).
pub async fn follow(client: &mut Client, json: bool) -> Result<(), Failure> {
    start_follow(client).await?;
    while let Some((line, event)) = next_event(client).await? {
        if let Some(Event::Snapshot(status)) = &event {
            check_version(status);
        }
        if json {
            print(&format!("{line}\n"))?;
        } else if let Some(event) = event {
            print(&format!("{}\n", output::event(SystemTime::now(), &event)))?;
        }
    }
    Err(client.closed())
}

/// `wait ROLE [--timeout DUR]`.
pub async fn wait(
    client: &mut Client,
    target: Role,
    limit: Option<Duration>,
) -> Result<(), Failure> {
    let mut current: Option<Role> = None;
    let watch = async {
        start_follow(client).await?;
        while let Some((_, event)) = next_event(client).await? {
            let role = match event {
                Some(Event::Snapshot(status)) => status.role,
                Some(Event::Role { role, .. }) => role,
                _ => continue,
            };
            current = Some(role);
            if role == target {
                return Ok(());
            }
        }
        Err(client.closed())
    };
    let Some(limit) = limit else {
        return watch.await;
    };
    match tokio::time::timeout(limit, watch).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Negative(Some(format!(
            "timed out after {} waiting for role {target} (current: {})",
            format_duration(limit),
            current.map_or("unknown", Role::as_str)
        )))),
    }
}
