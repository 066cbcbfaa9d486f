//! A bounded line reader: never buffers more than the limit, whatever a client sends.

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// What one call to [`LineReader::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// A whole line, without its `\n` (and without a trailing `\r`, for socat/telnet users).
    Complete(Vec<u8>),
    /// The peer hung up between lines.
    Eof,
    /// The peer hung up in the middle of a line (what it sent is discarded).
    Partial,
    /// The line grew past the limit; its bytes were discarded, the rest of it was not read.
    TooLong,
}

/// Reads `\n`-terminated lines of at most `max` bytes.
///
/// Cancel-safe: the partial line lives in `self`, so dropping a `next_line` future inside a
/// `select!` loses nothing.
pub(super) struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(super) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner: BufReader::new(inner),
            buf: Vec::new(),
            max,
        }
    }

    /// The next line, or why there is none.
    pub(super) async fn next_line(&mut self) -> io::Result<Line> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                let partial = !self.buf.is_empty();
                self.buf.clear();
                return Ok(if partial { Line::Partial } else { Line::Eof });
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let fits = self.buf.len() + end <= self.max;
                    if fits {
                        self.buf.extend_from_slice(&available[..end]);
                    }
                    self.inner.consume(end + 1);
                    if !fits {
                        self.buf.clear();
                        return Ok(Line::TooLong);
                    }
                    let mut line = std::mem::take(&mut self.buf);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(Line::Complete(line));
                }
                None => {
                    let n = available.len();
                    if self.buf.len() + n > self.max {
                        self.inner.consume(n);
                        self.buf.clear();
                        return Ok(Line::TooLong);
                    }
                    self.buf.extend_from_slice(available);
                    self.inner.consume(n);
                }
            }
        }
    }

    /// Reads and discards whatever arrives; `Ok(0)` when the peer hung up. Cancel-safe.
    pub(super) async fn discard(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
        self.buf.clear();
        self.inner.read(scratch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        for _ in 0..10 {
            match reader.next_line().await {
                Ok(Line::Eof) | Err(_) => break,
                Ok(line) => out.push(line),
            }
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_strips_carriage_returns() {
        let got = lines(b"a\r\nbc\n\n", 8).await;
        let want = [b"a".to_vec(), b"bc".to_vec(), Vec::new()].map(Line::Complete);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_line_at_the_limit_passes_and_one_byte_more_is_too_long() {
        assert_eq!(
            lines(b"1234\n", 4).await,
            vec![Line::Complete(b"1234".to_vec())]
        );
        assert_eq!(lines(b"12345\n", 4).await, vec![Line::TooLong]);
        assert_eq!(lines(b"123456789", 4).await.first(), Some(&Line::TooLong));
    }

    #[tokio::test]
    async fn a_hang_up_mid_line_is_partial() {
        assert_eq!(
            lines(b"ok\nhalf", 16).await,
            vec![Line::Complete(b"ok".to_vec()), Line::Partial]
        );
    }
}
