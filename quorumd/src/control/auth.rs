//! Who may change state through the control socket (docs/QUORUMCTL.md, "Permissions").
//!
//! Reading status is open to anyone who can connect (the socket's mode decides that).
//! Rename, dispatch and forget need root, the daemon's own user, or membership (primary or
//! supplementary) in the socket file's group. The caller is identified by the kernel's peer
//! credentials (SO_PEERCRED), never by anything it sends.

use common::control::{ControlError, ErrorKind, Request};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use tokio::net::unix::UCred;

/// The rule, with what it needs to know about the daemon and its socket.
#[derive(Debug)]
pub(super) struct Policy {
    /// The daemon's effective uid.
    euid: u32,
    /// The socket file: its group is read at every check, so a `chgrp` by the admin applies
    /// without a restart.
    socket: PathBuf,
    /// The socket's group at bind time, used if the file cannot be read any more.
    bind_gid: u32,
}

impl Policy {
    pub(super) fn new(socket: PathBuf, bind_gid: u32) -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        Policy {
            euid,
            socket,
            bind_gid,
        }
    }

    fn socket_gid(&self) -> u32 {
        std::fs::metadata(&self.socket).map_or(self.bind_gid, |m| m.gid())
    }

    /// Ok if `peer` may send `request`; a PermissionDenied error naming what is needed if not.
    pub(super) fn check(
        &self,
        peer: Option<&UCred>,
        request: &Request,
    ) -> Result<(), ControlError> {
        if !request.is_privileged() {
            return Ok(());
        }
        let group = self.socket_gid();
        let allowed = peer.is_some_and(|p| {
            allowed(self.euid, group, p.uid(), p.gid(), || {
                p.pid().map(supplementary_groups).unwrap_or_default()
            })
        });
        if allowed {
            return Ok(());
        }
        let who = peer.map_or_else(
            || "an unidentified caller".to_string(),
            |p| format!("uid {}", p.uid()),
        );
        Err(ControlError::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} needs root, user {} or group {} (you are {who})",
                verb(request),
                user_name(self.euid),
                group_name(group)
            ),
        ))
    }
}

fn verb(request: &Request) -> &'static str {
    match request {
        Request::Rename { .. } => "rename",
        Request::Dispatch => "dispatch",
        Request::Forget { .. } => "forget",
        Request::StepDown { .. } => "step-down",
        Request::Resume => "resume",
        Request::Maintenance { .. } => "maintenance",
        Request::Status | Request::Role | Request::Members | Request::Follow | Request::Metrics => {
            "this request"
        }
    }
}

/// The rule itself. `supplementary` is only called when the cheaper tests fail.
fn allowed(
    euid: u32,
    socket_gid: u32,
    uid: u32,
    gid: u32,
    supplementary: impl FnOnce() -> Vec<u32>,
) -> bool {
    uid == 0 || uid == euid || gid == socket_gid || supplementary().contains(&socket_gid)
}

/// The supplementary groups of process `pid`, from `/proc/<pid>/status` (empty if unreadable).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| parse_groups(&s))
        .unwrap_or_default()
}

/// The `Groups:` line of a `/proc/<pid>/status` file.
fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn user_name(uid: u32) -> String {
    name_in("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
}

fn group_name(gid: u32) -> String {
    name_in("/etc/group", gid).unwrap_or_else(|| gid.to_string())
}

/// The name of id `id` in a passwd/group style file (`name:x:id:...`).
fn name_in(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    lookup_name(&text, id)
}

fn lookup_name(text: &str, id: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let found: u32 = fields.nth(1)?.parse().ok()?;
        (found == id && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_owner_and_group_members_are_allowed_others_are_not() {
        let none = Vec::new;
        assert!(allowed(1000, 50, 0, 0, none));
        assert!(allowed(1000, 50, 1000, 1000, none));
        assert!(allowed(1000, 50, 2000, 50, none));
        assert!(allowed(1000, 50, 2000, 2000, || vec![10, 50]));
        assert!(!allowed(1000, 50, 2000, 2000, || vec![10, 60]));
    }

    #[test]
    fn groups_line_of_proc_status_is_parsed() {
        let status =
            "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \nNSpid:\t1\n";
        assert_eq!(parse_groups(status), vec![4, 24, 27, 1000]);
        assert_eq!(parse_groups("Groups:\t\n"), Vec::<u32>::new());
        assert_eq!(parse_groups("garbage"), Vec::<u32>::new());
    }

    #[test]
    fn names_are_looked_up_in_passwd_format() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/false\nbroken\n";
        assert_eq!(lookup_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(lookup_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(lookup_name(passwd, 7), None);
    }

    #[test]
    fn status_requests_need_no_privilege() {
        let policy = Policy::new(PathBuf::from("/nonexistent"), 0);
        assert!(policy.check(None, &Request::Status).is_ok());
        let err = policy
            .check(None, &Request::Dispatch)
            .expect_err("unidentified caller");
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert!(
            err.message.starts_with("dispatch needs root, user "),
            "{err}"
        );
    }
}
