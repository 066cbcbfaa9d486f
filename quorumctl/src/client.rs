//! The connection to quorumd (crate `interprocess`): socket discovery, request/reply, and
//! reading a `follow` stream. Transport failures ([`Failure::Unreachable`]) are kept apart
//! from the daemon's refusals ([`Failure::Refused`]).

use crate::exit::Failure;
use common::control::{DEFAULT_SOCKET, Reply, Request, encode_line};
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest reply or event line we accept (a status of many members is still far below).
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// The socket to use: `--socket`/`QUORUMD_SOCKET` if given; else the default, or, when that
/// does not exist and we are not root, the first existing non-root fallback of the daemon.
pub fn resolve_socket(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(path) = explicit {
        return path;
    }
    let default = PathBuf::from(DEFAULT_SOCKET);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 || default.exists() {
        return default;
    }
    let xdg = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("quorumd/quorumd.sock"));
    let tmp = PathBuf::from(format!("/tmp/quorumd-{euid}/quorumd.sock"));
    xdg.into_iter()
        .chain([tmp])
        .find(|p| p.exists())
        .unwrap_or(default)
}

/// One connection to the daemon.
pub struct Client {
    stream: Stream,
    path: PathBuf,
    /// Bytes read but not yet returned as a line.
    pending: Vec<u8>,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub async fn connect(path: &Path) -> Result<Client, Failure> {
        let unreachable = |error| Failure::Unreachable {
            path: path.to_path_buf(),
            error,
        };
        let name = path.to_fs_name::<GenericFilePath>().map_err(unreachable)?;
        let stream = Stream::connect(name).await.map_err(|error| {
            if error.kind() == io::ErrorKind::PermissionDenied {
                Failure::Denied {
                    path: path.to_path_buf(),
                }
            } else {
                unreachable(error)
            }
        })?;
        Ok(Client {
            stream,
            path: path.to_path_buf(),
            pending: Vec::new(),
        })
    }

    /// The socket path this client is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request line.
    pub async fn send(&mut self, request: &Request) -> Result<(), Failure> {
        let line = encode_line(request);
        self.stream.write_all(&line).await.map_err(|e| self.lost(e))
    }

    /// Sends `request` and reads its reply.
    pub async fn request(&mut self, request: &Request) -> Result<Reply, Failure> {
        self.send(request).await?;
        self.reply().await
    }

    /// Reads one reply line; the connection closing first is a [`Failure::Unreachable`].
    pub async fn reply(&mut self) -> Result<Reply, Failure> {
        let line = self.next_line().await?.ok_or_else(|| self.closed())?;
        serde_json::from_str(&line).map_err(|e| Failure::BadReply {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }

    /// Reads the next line (without `\n`), or None when the daemon closed the connection.
    pub async fn next_line(&mut self) -> Result<Option<String>, Failure> {
        let mut chunk = [0u8; 8192];
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos;
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| Failure::BadReply {
                        path: self.path.clone(),
                        detail: "reply is not UTF-8".into(),
                    });
            }
            scanned = self.pending.len();
            if scanned > MAX_REPLY {
                return Err(Failure::BadReply {
                    path: self.path.clone(),
                    detail: format!("reply line longer than {MAX_REPLY} bytes"),
                });
            }
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| self.lost(e))?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// The daemon hung up before answering.
    pub fn closed(&self) -> Failure {
        self.lost(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "quorumd closed the connection",
        ))
    }

    fn lost(&self, error: io::Error) -> Failure {
        Failure::Unreachable {
            path: self.path.clone(),
            error,
        }
    }
}
