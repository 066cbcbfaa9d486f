//! The control socket's directory: created 0750 if missing, and refused if it is a symlink,
//! belongs to another user, or others could replace the socket in it (README, Security).
//!
//! The non-root default, `/tmp/quorumd-<uid>`, sits in a world-writable directory: whoever
//! creates it first owns it, so a directory we did not make ourselves must be ours (or root's)
//! and closed to writes by group and others. A root-owned sticky directory (`/tmp` itself) is
//! accepted: nobody else can remove or rename our socket in it.

use anyhow::{Context, bail};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

/// Creates `dir` (mode 0750, parents too) if missing, then checks it without following a
/// symlink: a directory, owned by us or root, not writable by group or others unless it is
/// root's and sticky.
pub(crate) fn ensure(dir: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .with_context(|| format!("creating the control socket directory {}", dir.display()))?;
    }
    check(dir, euid())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn check(dir: &Path, euid: u32) -> anyhow::Result<()> {
    let d = dir.display();
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("control socket directory {d}"))?;
    if meta.file_type().is_symlink() {
        bail!("control socket directory {d} is a symlink: refused (use the real path)");
    }
    if !meta.is_dir() {
        bail!("control socket directory {d}: Not a directory");
    }
    if meta.uid() != euid && meta.uid() != 0 {
        bail!(
            "control socket directory {d} belongs to uid {}, not to this user (uid {euid}) or \
             root: refused (someone else could replace the socket); remove it or choose \
             another --socket",
            meta.uid()
        );
    }
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky && meta.uid() == 0) {
        bail!(
            "control socket directory {d} has mode {:04o}: group or others may write to it; \
             run `chmod 750 {d}` or choose another --socket",
            mode & 0o7777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_closed_and_loose_foreign_or_linked_directories_refused() -> anyhow::Result<()> {
        let base = tempfile::tempdir()?;
        let dir = base.path().join("a/b");
        ensure(&dir)?;
        let mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
        assert_eq!(mode & 0o027, 0, "created {mode:o}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        assert!(ensure(&dir).is_err(), "world-writable accepted");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        ensure(&dir)?;
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link)?;
        assert!(ensure(&link).is_err(), "symlink accepted");
        // Another owner.
        if euid() == 0 {
            std::os::unix::fs::chown(&dir, Some(4242), None)?;
            assert!(ensure(&dir).is_err(), "foreign directory accepted");
        } else {
            assert!(check(&dir, euid().wrapping_add(4242)).is_err());
        }
        Ok(())
    }
}
