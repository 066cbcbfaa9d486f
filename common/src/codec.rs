//! The one place that turns [`Envelope`]s into bytes and back: compact binary encoding, a
//! version byte, authentication with the cluster key, and replay checks. Discovery datagrams,
//! the link handshake and every later link frame are sealed and opened here, nowhere else.
//!
//! # Wire format (version [`WIRE_VERSION`])
//!
//! ```text
//!  offset  size  field
//!  0       2     magic "QD"
//!  2       1     version (4)
//!  3       1     kind: 0 datagram, 1 link open (first frame of a connection), 2 link frame
//!  4       1     flags: bit 0 = a 32-byte HMAC-SHA256 tag ends the message
//!  5       8|16|8  kind 0: sender's wall clock, ms since the Unix epoch (u64 BE)
//!                  kind 1: the sender's fresh random nonce for this connection (16 bytes)
//!                  kind 2: sequence number on this connection, 1, 2, 3 ... (u64 BE)
//!  ..      n     body: the Envelope in postcard (varints, length-prefixed strings)
//!  end-32  32    tag (when flagged): HMAC-SHA256(key, mac input)
//! ```
//!
//! The MAC input is every byte before the tag; for a link frame (kind 2) it is preceded by the
//! receiver's nonce and the sender's nonce (both from the link's two open frames), which binds
//! the frame to this connection and direction. On a TCP link each message is preceded by its
//! length (4 bytes, big endian), at most [`MAX_FRAME`].
//!
//! # Replay protection
//!
//! - A link frame carries the next sequence number of its connection and is bound to both
//!   nonces: a frame captured on another connection (or from an earlier incarnation) fails the
//!   MAC, a frame replayed on the same connection fails the sequence check.
//! - A link open frame can be replayed, but it proves nothing: the transport registers a link
//!   only after the first link frame, which needs the key and our fresh nonce.
//! - A datagram is accepted within [`DATAGRAM_WINDOW_MS`] of our clock (a hello is only a hint
//!   to dial; the dial itself is authenticated).
//!
//! Without keys every message goes out untagged, and tagged ones are refused (we cannot check
//! them); with keys, untagged messages are refused. Several keys may verify; the first signs.

use crate::types::check_name;
use crate::wire::{Envelope, Message};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Version of the daemon-to-daemon protocol (1 was JSON; 2 had no quiet pairs: a beat without
/// `want` and `gap_ms`; 3 had no pledges: a vote in a beat that is not `voting` backed its
/// candidate at once, where it now only pledges the vote to a sitting master). Other versions
/// are refused.
pub const WIRE_VERSION: u8 = 4;
/// First two bytes of every message.
pub const MAGIC: [u8; 2] = *b"QD";
/// Largest sealed message accepted or sent, in bytes (UDP datagrams and TCP frames).
pub const MAX_FRAME: usize = 60 * 1024;
/// Length of a key, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a tag, in bytes.
pub const TAG_LEN: usize = 32;
/// Length of a link nonce, in bytes.
pub const NONCE_LEN: usize = 16;
/// Most keys a key file may hold (a rotation needs two).
pub const MAX_KEYS: usize = 8;
/// Largest epoch (and beat counter) accepted from the network, the election core's own bound
/// (`u64::MAX / 4`). Epochs are clock-derived (ms × 1024 reach it only in about 140,000
/// years), so anything above is forged or corrupt; refusing it at decode keeps `epoch + 1`
/// far from overflowing anywhere.
pub const MAX_EPOCH: u64 = u64::MAX / 4;
/// A datagram whose clock differs from ours by more than this is refused as a replay.
pub const DATAGRAM_WINDOW_MS: u64 = 120_000;

/// Most addresses in one `Peers` frame.
pub const MAX_PEERS: usize = 1024;

/// Most members listed in one [`Message::Members`] frame (about 330 bytes each at most, so a
/// full list stays under [`MAX_FRAME`]).
pub const MAX_GOSSIP: usize = 128;

const HEADER: usize = 5;
const FLAG_TAG: u8 = 1;
const KIND_DATAGRAM: u8 = 0;
const KIND_OPEN: u8 = 1;
const KIND_FRAME: u8 = 2;

/// A nonce chosen by each side of a link, fresh for every connection.
pub type Nonce = [u8; NONCE_LEN];

/// Why a message was refused. Refusing a message never changes any state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Larger than [`MAX_FRAME`].
    #[error("message of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// Not our protocol at all (short, or bad magic).
    #[error("not a quorumd message")]
    BadMagic,
    /// Our protocol, another version.
    #[error("unsupported protocol version {0} (this node speaks {WIRE_VERSION})")]
    BadVersion(u8),
    /// Not the kind of message expected here (e.g. a link frame on the discovery port).
    #[error("unexpected message kind {0}")]
    BadKind(u8),
    /// We hold keys and the message has no tag, or we hold none and it has one.
    #[error("unauthenticated message (or authenticated, and this node has no key)")]
    Unauthenticated,
    /// The tag does not verify with any of our keys (wrong key, or tampered).
    #[error("authentication failed (wrong key or tampered message)")]
    BadTag,
    /// A datagram outside the time window, or a link frame out of sequence.
    #[error("replayed or stale message")]
    Replay,
    /// Authentic, but not a body of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A hello whose name breaks [`check_name`], the rule local names follow.
    #[error("bad member name: {0}")]
    BadName(String),
}

impl OpenError {
    /// Failed authentication (counted and logged by the daemon as a possible attack).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            OpenError::Unauthenticated | OpenError::BadTag | OpenError::Replay
        )
    }
}

/// Why a key file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No key in the file.
    #[error("no key in the file")]
    Empty,
    /// More than [`MAX_KEYS`].
    #[error("more than {MAX_KEYS} keys")]
    TooMany,
    /// A line is not 64 hexadecimal digits.
    #[error("line {0}: a key is 64 hexadecimal digits (32 bytes)")]
    BadLine(usize),
}

/// The cluster keys: the first signs, all verify. Empty = unauthenticated traffic.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Vec<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

impl Keyring {
    /// No keys: messages are sent untagged and only untagged ones are accepted.
    pub fn none() -> Self {
        Keyring::default()
    }

    /// Keys given as bytes; the first signs.
    pub fn new(keys: Vec<[u8; KEY_LEN]>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        if keys.len() > MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        Ok(Keyring { keys })
    }

    /// Parses a key file: one key per line, 64 hex digits; blank lines and `#` comments are
    /// ignored. The first key signs; all verify.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = parse_hex(line).ok_or(KeyError::BadLine(n.saturating_add(1)))?;
            if keys.len() >= MAX_KEYS {
                return Err(KeyError::TooMany);
            }
            keys.push(key);
        }
        Keyring::new(keys)
    }

    /// Whether messages are authenticated.
    pub fn is_keyed(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn mac(key: &[u8; KEY_LEN], prefix: &[u8], data: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length: this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(prefix);
        m.update(data);
        m
    }

    fn sign(&self, prefix: &[u8], data: &[u8]) -> Option<[u8; TAG_LEN]> {
        let key = self.keys.first()?;
        Some(Self::mac(key, prefix, data).finalize().into_bytes().into())
    }

    fn verify(&self, prefix: &[u8], data: &[u8], tag: &[u8]) -> bool {
        // Constant-time comparison per key (hmac's verify_slice).
        self.keys
            .iter()
            .any(|k| Self::mac(k, prefix, data).verify_slice(tag).is_ok())
    }
}

/// Formats a key as a key file line (64 lowercase hex digits).
pub fn key_to_hex(key: &[u8; KEY_LEN]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Option<[u8; KEY_LEN]> {
    let s = s.as_bytes();
    if s.len() != KEY_LEN * 2 {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair.first()?.to_ascii_lowercase() as char).to_digit(16)?;
        let lo = (pair.get(1)?.to_ascii_lowercase() as char).to_digit(16)?;
        *out.get_mut(i)? = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Encodes an envelope's body (once; it may then be sealed for many links).
pub fn encode_body(env: &Envelope) -> Result<Vec<u8>, OpenError> {
    let body = postcard::to_allocvec(env).map_err(|e| OpenError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME - HEADER - 16 - TAG_LEN {
        return Err(OpenError::TooLarge(body.len()));
    }
    Ok(body)
}

/// Decodes and checks a body: shape (no trailing bytes) and a hello's name.
pub fn decode_body(body: &[u8]) -> Result<Envelope, OpenError> {
    let (env, rest): (Envelope, _) =
        postcard::take_from_bytes(body).map_err(|e| OpenError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(OpenError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    match &env.msg {
        Message::Hello(info) => check_name(&info.name).map_err(OpenError::BadName)?,
        Message::Beat(b) => {
            let numbers = [
                b.epoch,
                b.voted,
                b.seq,
                b.echo,
                b.candidacy.unwrap_or(0),
                b.grant.map_or(0, |g| g.epoch),
            ];
            if numbers.iter().any(|n| *n > MAX_EPOCH) {
                return Err(OpenError::Malformed("implausible epoch or counter".into()));
            }
        }
        Message::Leave { epoch } if *epoch > MAX_EPOCH => {
            return Err(OpenError::Malformed("implausible epoch".into()));
        }
        Message::Peers { peers } if peers.len() > MAX_PEERS => {
            return Err(OpenError::Malformed("peers list too long".into()));
        }
        Message::Members { members } if members.len() > MAX_GOSSIP => {
            return Err(OpenError::Malformed("members list too long".into()));
        }
        _ => {}
    }
    Ok(env)
}

fn seal(keys: &Keyring, kind: u8, field: &[u8], body: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + field.len() + body.len() + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    out.push(kind);
    out.push(if keys.is_keyed() { FLAG_TAG } else { 0 });
    out.extend_from_slice(field);
    out.extend_from_slice(body);
    if let Some(tag) = keys.sign(prefix, &out) {
        out.extend_from_slice(&tag);
    }
    out
}

/// Checks the header and the tag; returns the field after the header and the body.
fn open<'a>(
    keys: &Keyring,
    kind: u8,
    field_len: usize,
    bytes: &'a [u8],
    prefix: &[u8],
) -> Result<(&'a [u8], &'a [u8]), OpenError> {
    if bytes.len() > MAX_FRAME {
        return Err(OpenError::TooLarge(bytes.len()));
    }
    let head = bytes.get(..HEADER).ok_or(OpenError::BadMagic)?;
    if head.get(..2) != Some(&MAGIC[..]) {
        return Err(OpenError::BadMagic);
    }
    let [_, _, version, got_kind, flags] = *head else {
        return Err(OpenError::BadMagic);
    };
    if version != WIRE_VERSION {
        return Err(OpenError::BadVersion(version));
    }
    if got_kind != kind {
        return Err(OpenError::BadKind(got_kind));
    }
    let tagged = flags & FLAG_TAG != 0;
    if tagged != keys.is_keyed() || flags & !FLAG_TAG != 0 {
        return Err(OpenError::Unauthenticated);
    }
    let tag_len = if tagged { TAG_LEN } else { 0 };
    let signed_len = bytes
        .len()
        .checked_sub(tag_len)
        .filter(|n| *n >= HEADER + field_len)
        .ok_or_else(|| OpenError::Malformed("truncated".into()))?;
    let (signed, tag) = bytes.split_at(signed_len);
    if tagged && !keys.verify(prefix, signed, tag) {
        return Err(OpenError::BadTag);
    }
    let rest = signed
        .get(HEADER..)
        .ok_or_else(|| OpenError::Malformed("truncated".into()))?;
    Ok(rest.split_at(field_len))
}

fn be_u64(b: &[u8]) -> Result<u64, OpenError> {
    let a: [u8; 8] = b
        .try_into()
        .map_err(|_| OpenError::Malformed("truncated".into()))?;
    Ok(u64::from_be_bytes(a))
}

/// Seals a discovery datagram stamped with our wall clock (`now_ms`, ms since the epoch).
pub fn seal_datagram(keys: &Keyring, now_ms: u64, env: &Envelope) -> Result<Vec<u8>, OpenError> {
    Ok(seal(
        keys,
        KIND_DATAGRAM,
        &now_ms.to_be_bytes(),
        &encode_body(env)?,
        &[],
    ))
}

/// Opens a discovery datagram: checks magic, version, tag, then the time window around
/// `now_ms`, then the body.
pub fn open_datagram(keys: &Keyring, now_ms: u64, bytes: &[u8]) -> Result<Envelope, OpenError> {
    let (field, body) = open(keys, KIND_DATAGRAM, 8, bytes, &[])?;
    let sent = be_u64(field)?;
    if sent.abs_diff(now_ms) > DATAGRAM_WINDOW_MS {
        return Err(OpenError::Replay);
    }
    decode_body(body)
}

/// Seals the first frame of a link (our Hello), carrying our fresh nonce.
pub fn seal_open(keys: &Keyring, nonce: &Nonce, env: &Envelope) -> Result<Vec<u8>, OpenError> {
    Ok(seal(keys, KIND_OPEN, nonce, &encode_body(env)?, &[]))
}

/// Opens the first frame of a link: returns the peer's nonce and its envelope. This proves
/// nothing yet (it may be a replay): see [`LinkOpener`].
pub fn open_open(keys: &Keyring, bytes: &[u8]) -> Result<(Nonce, Envelope), OpenError> {
    let (field, body) = open(keys, KIND_OPEN, NONCE_LEN, bytes, &[])?;
    let nonce: Nonce = field
        .try_into()
        .map_err(|_| OpenError::Malformed("truncated".into()))?;
    Ok((nonce, decode_body(body)?))
}

/// Seals the frames we send on one link, after both open frames were exchanged.
#[derive(Debug)]
pub struct LinkSealer {
    keys: Keyring,
    /// Receiver's nonce, then ours: the MAC prefix.
    prefix: [u8; 2 * NONCE_LEN],
    next: u64,
}

impl LinkSealer {
    /// For frames we send: `ours` is the nonce of our open frame, `theirs` the peer's.
    pub fn new(keys: Keyring, ours: &Nonce, theirs: &Nonce) -> Self {
        let mut prefix = [0u8; 2 * NONCE_LEN];
        prefix[..NONCE_LEN].copy_from_slice(theirs);
        prefix[NONCE_LEN..].copy_from_slice(ours);
        LinkSealer {
            keys,
            prefix,
            next: 1,
        }
    }

    /// Seals an encoded body (from [`encode_body`]) as the next frame.
    pub fn seal(&mut self, body: &[u8]) -> Vec<u8> {
        let seq = self.next;
        // 2^64 frames are never reached; saturating keeps the arithmetic checked.
        self.next = self.next.saturating_add(1);
        seal(
            &self.keys,
            KIND_FRAME,
            &seq.to_be_bytes(),
            body,
            &self.prefix,
        )
    }
}

/// Opens the frames we receive on one link: each must carry the next sequence number and be
/// bound to both nonces of this connection.
#[derive(Debug)]
pub struct LinkOpener {
    keys: Keyring,
    /// Our nonce (the receiver's), then the peer's: the MAC prefix.
    prefix: [u8; 2 * NONCE_LEN],
    expected: u64,
}

impl LinkOpener {
    /// For frames we receive: `ours` is the nonce of our open frame, `theirs` the peer's.
    pub fn new(keys: Keyring, ours: &Nonce, theirs: &Nonce) -> Self {
        let mut prefix = [0u8; 2 * NONCE_LEN];
        prefix[..NONCE_LEN].copy_from_slice(ours);
        prefix[NONCE_LEN..].copy_from_slice(theirs);
        LinkOpener {
            keys,
            prefix,
            expected: 1,
        }
    }

    /// Opens the next frame. A frame out of sequence is a replay (TCP never reorders).
    pub fn open(&mut self, bytes: &[u8]) -> Result<Envelope, OpenError> {
        let (field, body) = open(&self.keys, KIND_FRAME, 8, bytes, &self.prefix)?;
        if be_u64(field)? != self.expected {
            return Err(OpenError::Replay);
        }
        self.expected = self.expected.checked_add(1).ok_or(OpenError::Replay)?;
        decode_body(body)
    }
}

#[cfg(test)]
mod tests;
