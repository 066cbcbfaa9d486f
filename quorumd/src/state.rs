//! What a node keeps on disk across restarts: its election memory (members, epoch, last vote)
//! and a name set by `quorumctl rename`.
//!
//! One small JSON file per configured node name in the state directory (systemd's
//! `StateDirectory=quorumd`, i.e. `/var/lib/quorumd`), written durably: temp file, fsync,
//! previous copy kept as `<file>.prev`, rename, fsync of the directory. A power cut at any
//! moment leaves either the old or the new state. A corrupt or truncated file is never taken
//! for a fresh start (that would forget members, epoch and vote, the protection against
//! rebooting into a partition): the node refuses to start, naming the file and how to reset
//! it (exit 2). Without a state directory nothing is kept, and a restarted node starts as if
//! new (the README says what that costs).

use common::election::Memory;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tracing::warn;

/// The file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The name to use instead of the configured one (after `quorumctl rename`).
    #[serde(default)]
    pub renamed: Option<String>,
    /// The election memory.
    #[serde(default)]
    pub memory: Memory,
}

/// Where one node's state lives.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file of the node configured as `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> StateFile {
        // Names may hold ':' or '/', keep the file name plain.
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        StateFile {
            path: dir.join(format!("{safe}.state.json")),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The previous copy, kept at every save.
    pub fn prev_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".prev");
        PathBuf::from(p)
    }

    /// Reads the saved state; a missing file is a fresh start. An unreadable, truncated or
    /// corrupt file is an error naming the file and the way to reset it.
    pub fn load(&self) -> anyhow::Result<Saved> {
        let p = self.path.display();
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
            Err(e) => anyhow::bail!("cannot read the state file {p}: {e}"),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "the state file {p} is corrupt or truncated ({e}); refusing to start as a blank \
                 node, which would forget this node's members, epoch and vote. To reset it: \
                 restore the previous copy (`cp {prev} {p}`), or, if this node must rejoin \
                 as new, remove it (`rm {p}`)",
                prev = self.prev_path().display()
            )
        })
    }

    /// Writes the state durably. Errors are logged, never fatal: the election goes on.
    pub fn save(&self, saved: &Saved) {
        if let Err(e) = self.try_save(saved) {
            warn!(path = %self.path.display(), error = %e, "cannot write state file");
        }
    }

    fn try_save(&self, saved: &Saved) -> std::io::Result<()> {
        use std::io::Write;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        // Keep the current file as the previous copy (a hard link: no moment without a file).
        let prev = self.prev_path();
        if self.path.exists() {
            let _ = std::fs::remove_file(&prev);
            if let Err(e) = std::fs::hard_link(&self.path, &prev) {
                tracing::debug!(error = %e, "cannot keep the previous state file");
            }
        }
        std::fs::rename(&tmp, &self.path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_keeps_a_previous_copy_and_refuses_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::new(dir.path(), "host:8080");
        assert_eq!(f.load().ok(), Some(Saved::default()));
        let saved = Saved {
            renamed: Some("carol".into()),
            memory: Memory {
                members: vec![],
                epoch: 7,
                vote: None,
                bound: vec![],
                shown_overflow: false,
                written_by: None,
                ghosts: vec![],
            },
        };
        f.save(&saved);
        assert_eq!(f.load().ok(), Some(saved.clone()));
        assert!(f.path().ends_with("host_8080.state.json"));
        // A second save keeps the first as the previous copy.
        let later = Saved {
            renamed: None,
            ..saved.clone()
        };
        f.save(&later);
        assert_eq!(f.load().ok(), Some(later));
        let prev: Saved =
            serde_json::from_slice(&std::fs::read(f.prev_path()).expect("prev")).expect("json");
        assert_eq!(prev, saved);
        // Corrupt or truncated: an error naming the file and the way out, never a blank node.
        let full = std::fs::read(f.path()).expect("read");
        for bad in [&b"{garbage"[..], &full[..full.len() / 2], b""] {
            std::fs::write(f.path(), bad).expect("write");
            let e = f.load().expect_err("corrupt file accepted").to_string();
            assert!(
                e.contains("host_8080.state.json") && e.contains(".prev"),
                "{e}"
            );
        }
    }
}
