//! The link framing: a 4-byte big-endian length, then one message sealed by
//! [`common::codec`].
//!
//! The length is checked against [`MAX_FRAME`] before anything is allocated, so a peer that
//! claims a 4 GiB frame costs us four bytes of reading, not four gigabytes of memory.

use common::codec::MAX_FRAME;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why reading a frame stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed its side (FIN), possibly in the middle of a frame.
    Eof,
    /// The peer's host reset the connection (its process died with unread data, or a firewall).
    Reset,
    /// The announced length exceeds [`MAX_FRAME`]; nothing was allocated.
    TooLarge(usize),
    /// Any other socket error (e.g. `TCP_USER_TIMEOUT` expired).
    Io(io::Error),
}

impl ReadError {
    /// EOF and resets are what a killed process leaves behind: worth a crash probe.
    pub(crate) fn suggests_crash(&self) -> bool {
        matches!(self, ReadError::Eof | ReadError::Reset)
    }

    fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => ReadError::Eof,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ReadError::Reset,
            _ => ReadError::Io(e),
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Eof => f.write_str("end of stream"),
            ReadError::Reset => f.write_str("connection reset"),
            ReadError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the limit of {MAX_FRAME}")
            }
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Prefixes a sealed message with its length.
pub(crate) fn length_prefixed(sealed: &[u8]) -> Vec<u8> {
    // Sealed messages never exceed MAX_FRAME (60 KiB), far below u32::MAX.
    let len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + sealed.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(sealed);
    out
}

/// Reads one frame's body (not decoded: the caller decides what a bad body means).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).await.map_err(ReadError::from_io)?;
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(ReadError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(ReadError::from_io)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips() -> anyhow::Result<()> {
        let bytes = length_prefixed(b"sealed");
        let body = read_frame(&mut &bytes[..])
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(body, b"sealed");
        Ok(())
    }

    /// A link reads through a small buffer (`LINK_READ_BUFFER`): frames larger than it, up to
    /// the limit, and several small ones in one buffer fill, all arrive whole.
    #[tokio::test]
    async fn frames_larger_than_the_read_buffer_arrive_whole() -> anyhow::Result<()> {
        let big: Vec<u8> = (0..MAX_FRAME).map(|i| i as u8).collect();
        let mut bytes = length_prefixed(b"small");
        bytes.extend(length_prefixed(&big));
        bytes.extend(length_prefixed(b"after"));
        let mut rd = tokio::io::BufReader::with_capacity(2 * 1024, &bytes[..]);
        let e = |e: ReadError| anyhow::anyhow!("{e}");
        assert_eq!(read_frame(&mut rd).await.map_err(e)?, b"small");
        assert_eq!(read_frame(&mut rd).await.map_err(e)?, big);
        assert_eq!(read_frame(&mut rd).await.map_err(e)?, b"after");
        Ok(())
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_body() {
        let bytes = u32::MAX.to_be_bytes();
        let got = read_frame(&mut &bytes[..]).await;
        assert!(matches!(got, Err(ReadError::TooLarge(n)) if n == u32::MAX as usize));
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_end_of_stream() {
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        assert!(matches!(
            read_frame(&mut &bytes[..]).await,
            Err(ReadError::Eof)
        ));
        assert!(matches!(
            read_frame(&mut &[][..]).await,
            Err(ReadError::Eof)
        ));
    }
}

/// One frame queued to a link's writer: the encoded message, and how long after writing it
/// the writer may stay silent (a quiet pair's beat declares the gap until its next probe,
/// and the peer's reader does not count the link stale before that gap ends: a keepalive
/// inside it would only undo the O(n) cadence; docs/ALGORITHM.md, "Cadence").
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub(crate) bytes: Vec<u8>,
    pub(crate) quiet_ms: u64,
}

impl From<Vec<u8>> for Outgoing {
    /// A frame that declares no gap.
    fn from(bytes: Vec<u8>) -> Self {
        Outgoing { bytes, quiet_ms: 0 }
    }
}
