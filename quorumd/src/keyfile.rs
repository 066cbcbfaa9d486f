//! The cluster key file (`--key-file`): loading with the same care ssh takes with a private
//! key, and new key files (`quorumd --generate-key PATH` and `quorumctl keygen [PATH]` share
//! [`generate`] and [`new_key_file`]).
//!
//! Format: one key per line, 64 hexadecimal digits (32 random bytes); blank lines and `#`
//! comments are ignored; at most [`common::codec::MAX_KEYS`] keys. The first key signs, every
//! key verifies: that is what makes a rotation possible without downtime (README, Security).

use anyhow::{Context, bail};
use common::codec::{KEY_LEN, Keyring, key_to_hex};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Largest key file read (a few keys and comments).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Loads the keys of `path`. Refused: not a regular file, a symlink, readable or writable by
/// group or others, empty or malformed. Errors name the file and the fix.
pub fn load(path: &Path) -> anyhow::Result<Keyring> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("key file {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("key file {}", path.display()))?;
    if !meta.is_file() {
        bail!("key file {}: not a regular file", path.display());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "key file {}: mode {mode:04o} lets group or others read it; run `chmod 600 {}` \
             (the key authenticates the whole cluster)",
            path.display(),
            path.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid && meta.uid() != 0 {
        bail!(
            "key file {}: owned by uid {}, neither root nor this user (uid {euid})",
            path.display(),
            meta.uid()
        );
    }
    let mut text = String::new();
    f.take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .with_context(|| format!("key file {}: not readable text", path.display()))?;
    Keyring::parse(&text).with_context(|| {
        format!(
            "key file {}: expected one key per line, 64 hex digits (create one with \
             `quorumctl keygen PATH`)",
            path.display()
        )
    })
}

/// A new random key as a key file line.
pub fn new_key_line() -> anyhow::Result<String> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(key_to_hex(&key))
}

/// The text of a new key file: a comment line and one new random key.
pub fn new_key_file() -> anyhow::Result<String> {
    Ok(format!(
        "# quorumd cluster key: copy this file (mode 0600) to every member.\n{}\n",
        new_key_line()?
    ))
}

/// Writes a new key file at `path` with mode 0600; refuses to overwrite an existing file.
pub fn generate(path: &Path) -> anyhow::Result<()> {
    let text = new_key_file()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    // The umask may only have removed bits; make sure of 0600 anyway.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_loose_modes_are_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("key");
        generate(&p)?;
        assert_eq!(std::fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&p)?.len(), 1);
        assert!(generate(&p).is_err(), "never overwrites");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640))?;
        let e = format!("{:#}", load(&p).err().context("loose mode accepted")?);
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link)?;
        assert!(load(&link).is_err(), "symlinks are not followed");
        std::fs::write(dir.path().join("bad"), "not a key\n")?;
        std::fs::set_permissions(
            dir.path().join("bad"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        assert!(load(&dir.path().join("bad")).is_err());
        Ok(())
    }
}
