//! What a node keeps on disk across restarts: its election memory (members, epoch, last vote)
//! and a name set by `quorumctl rename`.
//!
//! One file per configured node name in the state directory (systemd's
//! `StateDirectory=quorumd`, i.e. `/var/lib/quorumd`): `<name>.state`. It holds two copies
//! of the state, each in a slot of its own (a header with a sequence number, the length and a
//! SHA-256 of the JSON that follows). A save overwrites the *older* slot in place and makes it
//! durable with one `fdatasync`; a load takes the whole slot with the highest number. A power
//! cut during a write tears at most the slot being written, and the other still holds the
//! state written before it, which is all any frame could have shown (the frames that follow a
//! write wait until it is done: `persist.rs`). Only when the state outgrows its slots is the
//! file rebuilt (temp file, fsync, rename, fsync of the directory).
//!
//! Why not a temp file and a rename at every save, as before: that is two fsyncs and three
//! metadata changes to journal per save, 20–40 ms each on a shared disk when a hundred
//! daemons write at once (a view changes everywhere at the same moment); one `fdatasync` of
//! a block already allocated costs 1–3 ms under the same load, and a hundred daemons started
//! together on one disk agree twice as fast (BENCHMARKS.md).
//!
//! A file whose two copies are both torn or corrupt is never taken for a fresh start (that
//! would forget members, epoch and vote, the protection against rebooting into a partition):
//! the node refuses to start, naming the file and how to reset it (exit 2). A state file of
//! an earlier version (`<name>.state.json`, one JSON document) is read, and replaced by the
//! new file at the first save. Without a state directory nothing is kept, and a restarted
//! node starts as if new (the README says what that costs).

use common::election::Memory;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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

/// Marks a written slot (and the format's version).
const MAGIC: &[u8; 8] = b"QRMSTAT1";
/// Slot header: magic, sequence number (u64 LE), length of the JSON (u32 LE), 4 bytes
/// reserved (zero), SHA-256 of the sequence number, the length and the JSON.
const HEADER: usize = 8 + 8 + 4 + 4 + 32;
/// Smallest slot (one page; a cluster of five needs about 2 KiB).
const MIN_SLOT: u64 = 4096;
/// Largest file read at start: a file beyond it is not ours (250 members need about 150 KiB).
const MAX_FILE: u64 = 64 << 20;

/// Where one node's state lives.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The file an earlier version wrote (`<name>.state.json`), read if `path` is missing.
    legacy: PathBuf,
    slots: Arc<Mutex<Slots>>,
}

/// The writer's knowledge of the file, kept between saves.
#[derive(Debug, Default)]
struct Slots {
    /// The file open for writing and each slot's size; None until the first save, and after
    /// an error (the next save rebuilds the file).
    open: Option<(File, u64)>,
    /// Sequence number of the newest copy (read at load, then of the last save).
    seq: u64,
    /// The slot (0 or 1) holding the newest copy: the next save writes the other.
    newest_at: u64,
}

/// One slot's record: header and JSON.
fn record(seq: u64, json: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u32::try_from(json.len()).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(HEADER + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&digest(seq, len, json));
    out.extend_from_slice(json);
    Ok(out)
}

fn digest(seq: u64, len: u32, json: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seq.to_le_bytes());
    h.update(len.to_le_bytes());
    h.update(json);
    h.finalize().into()
}

/// What one slot holds.
#[derive(Debug)]
enum Slot {
    /// Never written (zeros).
    Blank,
    /// Written, but torn or corrupt: why.
    Bad(String),
    /// A whole copy.
    Whole(u64, Box<Saved>),
}

fn read_slot(bytes: &[u8]) -> Slot {
    if bytes.len() < HEADER {
        return Slot::Bad("shorter than its header".into());
    }
    let (head, rest) = bytes.split_at(HEADER);
    if head.iter().all(|b| *b == 0) {
        return Slot::Blank;
    }
    if &head[..8] != MAGIC {
        return Slot::Bad("no slot header".into());
    }
    let word = |at: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&head[at..at + n]);
        u64::from_le_bytes(b)
    };
    let seq = word(8, 8);
    let len = word(16, 4);
    let Some(json) = usize::try_from(len).ok().and_then(|l| rest.get(..l)) else {
        return Slot::Bad(format!("length {len} beyond the slot"));
    };
    let len = len as u32; // read from 4 bytes
    if head[24..] != digest(seq, len, json) {
        return Slot::Bad("checksum mismatch (torn or corrupt)".into());
    }
    match serde_json::from_slice(json) {
        Ok(saved) => Slot::Whole(seq, Box::new(saved)),
        Err(e) => Slot::Bad(format!("not a state: {e}")),
    }
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
            path: dir.join(format!("{safe}.state")),
            legacy: dir.join(format!("{safe}.state.json")),
            slots: Arc::default(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file an earlier version wrote, read when [`StateFile::path`] is missing.
    pub fn legacy_path(&self) -> &Path {
        &self.legacy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic while holding it cannot leave the slots inconsistent: at worst the next
        // save rebuilds the file.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the saved state; a missing file is a fresh start. An unreadable file, or one
    /// whose two copies are both torn or corrupt, is an error naming the file and the way to
    /// reset it.
    pub fn load(&self) -> anyhow::Result<Saved> {
        let p = self.path.display();
        let refuse = |why: &str| {
            anyhow::anyhow!(
                "the state file {p} is corrupt: {why}; refusing to start as a blank node, which \
                 would forget this node's members, epoch and vote. If this node must rejoin as \
                 new, remove it (`rm {p}`)"
            )
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.load_legacy(),
            Err(e) => anyhow::bail!("cannot read the state file {p}: {e}"),
        };
        let size = file
            .metadata()
            .map_err(|e| anyhow::anyhow!("cannot read the state file {p}: {e}"))?
            .len();
        if size == 0 || size > MAX_FILE || size % (2 * MIN_SLOT) != 0 {
            return Err(refuse(&format!(
                "{size} bytes, not two slots of a whole number of pages"
            )));
        }
        let mut bytes = vec![0u8; size as usize]; // at most MAX_FILE
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| anyhow::anyhow!("cannot read the state file {p}: {e}"))?;
        let (a, b) = bytes.split_at(bytes.len() / 2);
        let slots = [read_slot(a), read_slot(b)];
        // The newest whole copy, and which slot holds it (the next save writes the other).
        let newest = (0u64..)
            .zip(&slots)
            .filter_map(|(at, s)| match s {
                Slot::Whole(seq, saved) => Some((*seq, at, saved)),
                _ => None,
            })
            .max_by_key(|(seq, ..)| *seq);
        let Some((seq, newest_at, saved)) = newest else {
            let why: Vec<String> = slots
                .iter()
                .enumerate()
                .map(|(i, s)| match s {
                    Slot::Blank => format!("copy {i}: blank"),
                    Slot::Bad(why) => format!("copy {i}: {why}"),
                    Slot::Whole(..) => format!("copy {i}: whole"),
                })
                .collect();
            return Err(refuse(&format!(
                "neither of its two copies is whole ({})",
                why.join(", ")
            )));
        };
        for s in &slots {
            if let Slot::Bad(why) = s {
                // The normal trace of a write cut short (a crash or power cut): what that
                // write would have recorded had not been shown to anyone yet.
                warn!(path = %p, reason = %why, seq, "one copy in the state file is torn: using the other, the last one written whole");
            }
        }
        let mut known = self.lock();
        known.seq = seq;
        known.newest_at = newest_at;
        // Kept open for the saves to come (if it cannot be, the first save rebuilds it).
        known.open = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .ok()
            .map(|f| (f, size / 2));
        Ok(saved.as_ref().clone())
    }

    /// Reads the file an earlier version wrote (one JSON document); missing: a fresh start.
    fn load_legacy(&self) -> anyhow::Result<Saved> {
        let p = self.legacy.display();
        let bytes = match std::fs::read(&self.legacy) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
            Err(e) => anyhow::bail!("cannot read the state file {p}: {e}"),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "the state file {p} is corrupt or truncated ({e}); refusing to start as a blank \
                 node, which would forget this node's members, epoch and vote. To reset it: \
                 restore the previous copy (`cp {p}.prev {p}`), or, if this node must rejoin \
                 as new, remove it (`rm {p}`)"
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
        let json = serde_json::to_vec(saved).map_err(std::io::Error::other)?;
        let mut slots = self.lock();
        let seq = slots.seq + 1;
        let rec = record(seq, &json)?;
        let fits = |cap: u64| rec.len() as u64 <= cap;
        match slots.open.take() {
            Some((file, cap)) if fits(cap) => {
                // The older copy's slot: the newest stays whole whatever happens to this one.
                let slot = 1 - slots.newest_at;
                file.write_all_at(&rec, slot * cap)?;
                file.sync_data()?;
                slots.open = Some((file, cap));
                slots.newest_at = slot;
            }
            _ => {
                let cap = (rec.len() as u64 * 2).next_power_of_two().max(MIN_SLOT);
                let file = self.rebuild(&rec, cap)?;
                slots.open = Some((file, cap));
                slots.newest_at = 0;
            }
        }
        slots.seq = seq;
        Ok(())
    }

    /// Writes a new file holding `rec` in its first slot and a blank second one, durably, in
    /// place of the current one; returns it open for the next saves.
    fn rebuild(&self, rec: &[u8], cap: u64) -> std::io::Result<File> {
        use std::io::Write;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("state.tmp");
        let mut bytes = vec![0u8; (2 * cap) as usize];
        bytes[..rec.len()].copy_from_slice(rec);
        let mut f = File::create(&tmp)?;
        // Every block written now, so that later saves change no allocation: one fdatasync.
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        File::open(dir)?.sync_all()?;
        // The earlier version's file is now stale: remove it so that nobody restores it.
        for old in [self.legacy.clone(), self.legacy.with_extension("json.prev")] {
            if let Err(e) = std::fs::remove_file(&old) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(path = %old.display(), error = %e, "cannot remove the earlier state file");
                }
            }
        }
        std::fs::OpenOptions::new().write(true).open(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn with_epoch(epoch: u64) -> Saved {
        let mut s = Saved {
            renamed: Some("carol".into()),
            ..Saved::default()
        };
        s.memory.epoch = epoch;
        s
    }

    fn inode(p: &Path) -> u64 {
        std::fs::metadata(p).expect("metadata").ino()
    }

    /// Overwrites `len` bytes of `copy` (0 or 1) with garbage past its header, as a write cut
    /// short would leave it.
    fn tear(f: &StateFile, copy: u64) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(f.path())
            .expect("open");
        let cap = std::fs::metadata(f.path()).expect("metadata").len() / 2;
        file.write_all_at(b"\xffTORN\xff", copy * cap + HEADER as u64 + 3)
            .expect("tear");
    }

    /// Which copy holds `epoch` (0 or 1), read straight from the slots.
    fn copy_of(f: &StateFile, epoch: u64) -> Option<u64> {
        let bytes = std::fs::read(f.path()).expect("read");
        let (a, b) = bytes.split_at(bytes.len() / 2);
        [a, b]
            .iter()
            .position(
                |s| matches!(read_slot(s), Slot::Whole(_, saved) if saved.memory.epoch == epoch),
            )
            .map(|i| i as u64)
    }

    #[test]
    fn saves_alternate_between_two_copies_in_place_and_a_load_takes_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::new(dir.path(), "host:8080");
        assert!(f.path().ends_with("host_8080.state"));
        assert_eq!(
            f.load().ok(),
            Some(Saved::default()),
            "missing: a fresh start"
        );
        f.save(&with_epoch(1));
        let ino = inode(f.path());
        let size = std::fs::metadata(f.path()).expect("metadata").len();
        for epoch in 2..=9 {
            f.save(&with_epoch(epoch));
            assert_eq!(
                StateFile::new(dir.path(), "host:8080").load().ok(),
                Some(with_epoch(epoch))
            );
            // The copy before it is still whole, in the other slot.
            let (now, before) = (copy_of(&f, epoch), copy_of(&f, epoch - 1));
            assert!(
                now.is_some() && before.is_some() && now != before,
                "{now:?} {before:?}"
            );
        }
        assert_eq!(inode(f.path()), ino, "saves overwrite the file in place");
        assert_eq!(std::fs::metadata(f.path()).expect("metadata").len(), size);
        // A new incarnation goes on from the newest copy, into the other slot.
        let again = StateFile::new(dir.path(), "host:8080");
        assert_eq!(again.load().ok(), Some(with_epoch(9)));
        again.save(&with_epoch(10));
        assert_eq!(copy_of(&again, 9).map(|c| 1 - c), copy_of(&again, 10));
        assert_eq!(again.load().ok(), Some(with_epoch(10)));
        assert_eq!(inode(f.path()), ino);
    }

    #[test]
    fn a_torn_copy_falls_back_to_the_other_and_two_bad_copies_refuse_to_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::new(dir.path(), "n1");
        f.save(&with_epoch(4));
        f.save(&with_epoch(5));
        let newest = copy_of(&f, 5).expect("epoch 5 on disk");
        tear(&f, newest);
        assert_eq!(
            StateFile::new(dir.path(), "n1").load().ok(),
            Some(with_epoch(4)),
            "a torn newest copy: the one written before it"
        );
        // The next save goes to the torn slot, never over the whole one.
        let g = StateFile::new(dir.path(), "n1");
        assert_eq!(g.load().ok(), Some(with_epoch(4)));
        g.save(&with_epoch(6));
        assert_eq!(copy_of(&g, 6), Some(newest));
        assert_eq!(copy_of(&g, 4), Some(1 - newest));
        // Both copies bad: refuse, naming the file and the way out.
        tear(&f, 0);
        tear(&f, 1);
        let e = StateFile::new(dir.path(), "n1")
            .load()
            .expect_err("accepted")
            .to_string();
        assert!(
            e.contains("n1.state") && e.contains("corrupt") && e.contains("rm "),
            "{e}"
        );
        // Not two slots at all: refused too, never a blank node.
        for bad in [&b""[..], b"{garbage", &[0u8; 8192][..]] {
            std::fs::write(f.path(), bad).expect("write");
            let e = StateFile::new(dir.path(), "n1")
                .load()
                .expect_err("accepted")
                .to_string();
            assert!(e.contains("n1.state") && e.contains("corrupt"), "{e}");
        }
    }

    #[test]
    fn a_state_that_outgrows_its_slots_rebuilds_the_file_larger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::new(dir.path(), "n1");
        f.save(&with_epoch(1));
        let small = std::fs::metadata(f.path()).expect("metadata").len();
        let mut big = with_epoch(2);
        big.renamed = Some("x".repeat(3 * small as usize));
        f.save(&big);
        assert!(std::fs::metadata(f.path()).expect("metadata").len() > small);
        assert_eq!(StateFile::new(dir.path(), "n1").load().ok(), Some(big));
        f.save(&with_epoch(3));
        assert_eq!(
            StateFile::new(dir.path(), "n1").load().ok(),
            Some(with_epoch(3))
        );
    }

    #[test]
    fn an_earlier_versions_file_is_read_then_replaced_and_a_corrupt_one_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::new(dir.path(), "n1");
        let old = with_epoch(12);
        std::fs::write(
            f.legacy_path(),
            serde_json::to_vec_pretty(&old).expect("json"),
        )
        .expect("write");
        std::fs::write(f.legacy_path().with_extension("json.prev"), b"{}").expect("write");
        assert_eq!(f.load().ok(), Some(old));
        f.save(&with_epoch(13));
        assert!(!f.legacy_path().exists(), "the earlier file is replaced");
        assert!(!f.legacy_path().with_extension("json.prev").exists());
        assert_eq!(
            StateFile::new(dir.path(), "n1").load().ok(),
            Some(with_epoch(13))
        );
        // A corrupt earlier file: refused with the earlier version's ways out.
        std::fs::remove_file(f.path()).expect("rm");
        std::fs::write(f.legacy_path(), b"{\"memory\":{\"members\":[").expect("write");
        let e = f.load().expect_err("accepted").to_string();
        assert!(e.contains("n1.state.json") && e.contains(".prev"), "{e}");
    }
}
