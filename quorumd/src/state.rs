//! What a node keeps on disk across restarts: its election memory (members, epoch, last vote)
//! and a name set by `quorumctl rename`.
//!
//! One small JSON file per configured node name in the state directory (systemd's
//! `StateDirectory=quorumd`, i.e. `/var/lib/quorumd`), written atomically (temp file + rename),
//! so a crash mid-write leaves the previous state intact. Without a state directory nothing is
//! kept, and a restarted node starts as if new (the README says what that costs).

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

    /// Reads the saved state; a missing file is a fresh start, an unreadable one is logged and
    /// ignored (the node then starts as if new rather than not at all).
    pub fn load(&self) -> Saved {
        match std::fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(saved) => saved,
                Err(e) => {
                    warn!(path = %self.path.display(), error = %e, "ignoring unreadable state file");
                    Saved::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "cannot read state file");
                Saved::default()
            }
        }
    }

    /// Writes the state atomically. Errors are logged, never fatal: the election goes on.
    pub fn save(&self, saved: &Saved) {
        if let Err(e) = self.try_save(saved) {
            warn!(path = %self.path.display(), error = %e, "cannot write state file");
        }
    }

    fn try_save(&self, saved: &Saved) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_bad_files_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::new(dir.path(), "host:8080");
        assert_eq!(f.load(), Saved::default());
        let saved = Saved {
            renamed: Some("carol".into()),
            memory: Memory {
                members: vec![],
                epoch: 7,
                vote: None,
            },
        };
        f.save(&saved);
        assert_eq!(f.load(), saved);
        assert!(f.path().ends_with("host_8080.state.json"));
        std::fs::write(f.path(), b"{garbage").expect("write");
        assert_eq!(f.load(), Saved::default());
    }
}
