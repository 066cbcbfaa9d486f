//! Why a command did not succeed, and the exit code and message each reason gets.

use common::control::{ControlError, SOCKET_ENV};
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

/// `eprintln!` that never panics: a closed stderr is ignored (as a closed stdout is).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// A command's non-success outcome.
#[derive(Debug)]
pub enum Failure {
    /// A negative answer (not master, wait timed out): exit 1, optional message on stderr.
    Negative(Option<String>),
    /// The daemon cannot be reached, or went away mid-request: exit 3.
    Unreachable {
        /// The socket path tried.
        path: PathBuf,
        /// What went wrong.
        error: io::Error,
    },
    /// The daemon answered something we cannot read (likely a version mismatch): exit 3.
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The daemon refused the request: exit 4.
    Refused(ControlError),
    /// The socket exists but we may not open it (not in its group): exit 4, naming the group.
    Denied {
        /// The socket path.
        path: PathBuf,
    },
    /// Writing our own output failed (a closed pipe is handled before this): exit 1.
    Output(io::Error),
    /// The reader of our output went away (`| head`): exit 0 quietly.
    BrokenPipe,
}

impl Failure {
    /// Prints the message (if any) and gives the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Negative(message) => {
                if let Some(message) = message {
                    say!("quorumctl: {message}");
                }
                ExitCode::from(1)
            }
            Failure::Unreachable { path, error } => {
                say!(
                    "quorumctl: cannot reach quorumd at {}: {} (is quorumd running? set --socket or {SOCKET_ENV})",
                    path.display(),
                    plain(&error)
                );
                ExitCode::from(3)
            }
            Failure::BadReply { path, detail } => {
                say!(
                    "quorumctl: unreadable reply from quorumd at {}: {detail} (are quorumd and quorumctl the same version?)",
                    path.display()
                );
                ExitCode::from(3)
            }
            Failure::Refused(error) => {
                say!("quorumctl: {}: {}", error.kind, error.message);
                ExitCode::from(4)
            }
            Failure::Denied { path } => {
                let group = socket_group(&path);
                say!(
                    "quorumctl: permission denied: cannot open {}; it is for root and group \
                     {group}: join that group (sudo usermod -aG {group} $USER, then log in \
                     again) or run as root",
                    path.display()
                );
                ExitCode::from(4)
            }
            Failure::Output(error) => {
                say!("quorumctl: writing output: {}", plain(&error));
                ExitCode::from(1)
            }
            Failure::BrokenPipe => ExitCode::SUCCESS,
        }
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Output(error)
        }
    }
}

/// An io error's text without the trailing " (os error N)".
fn plain(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// The name of the socket file's group (its number if it has no name, `?` if unreadable).
fn socket_group(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(gid) = std::fs::metadata(path).map(|m| m.gid()) else {
        return "?".into();
    };
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|groups| {
            groups.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id: u32 = fields.nth(1)?.parse().ok()?;
                (id == gid && !name.is_empty()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| gid.to_string())
}
