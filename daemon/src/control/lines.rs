//! The control socket's JSON lines, read into buffers that are wiped: an agent's `uv-reply`
//! line holds the person's password. (tokio's `BufReader` would keep the last line it read in
//! its buffer for the whole life of the connection.)

use tokio::io::{AsyncRead, AsyncReadExt as _};
use zeroize::Zeroizing;

use protocol::control::MAX_LINE_LEN;

/// How much one read takes from the socket.
const CHUNK_LEN: usize = 1024;

/// Newline-terminated lines of at most [`MAX_LINE_LEN`] bytes from `inner`.
pub struct LineReader<R> {
    inner: R,
    /// Bytes read and not yet returned. Its capacity is fixed (it never reallocates, which
    /// would leave a copy behind) and what lies beyond its length is kept zeroed.
    pending: Zeroizing<Vec<u8>>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            pending: Zeroizing::new(Vec::with_capacity(MAX_LINE_LEN + CHUNK_LEN)),
        }
    }

    /// The next line, with its newline (a last line without one at the end of the stream as
    /// it is); `None` at the end of the stream. Cancel-safe: bytes are taken from the socket
    /// only when the read completes.
    pub async fn read_line(&mut self) -> anyhow::Result<Option<Zeroizing<String>>> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                if end + 1 > MAX_LINE_LEN {
                    anyhow::bail!("a line longer than {MAX_LINE_LEN} bytes");
                }
                return self.take(end + 1).map(Some);
            }
            if self.pending.len() > MAX_LINE_LEN {
                anyhow::bail!("a line longer than {MAX_LINE_LEN} bytes");
            }
            let mut chunk = Zeroizing::new([0u8; CHUNK_LEN]);
            let read = self.inner.read(&mut chunk[..]).await?;
            if read == 0 {
                return if self.pending.is_empty() {
                    Ok(None)
                } else {
                    self.take(self.pending.len()).map(Some)
                };
            }
            self.pending.extend_from_slice(&chunk[..read]);
        }
    }

    /// The first `len` pending bytes as text; the rest moves to the front and the bytes it
    /// leaves behind are zeroed.
    fn take(&mut self, len: usize) -> anyhow::Result<Zeroizing<String>> {
        let line = Zeroizing::new(self.pending[..len].to_vec());
        self.pending.drain(..len);
        let (kept, capacity) = (self.pending.len(), self.pending.capacity());
        self.pending.resize(capacity, 0);
        self.pending.truncate(kept);
        let text =
            std::str::from_utf8(&line).map_err(|_| anyhow::anyhow!("a line that is not UTF-8"))?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> LineReader<&[u8]> {
        LineReader::new(bytes)
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_a_last_one_without_newline() {
        let mut lines = reader(b"{\"a\":1}\n{\"b\":2}\nlast");
        for expected in ["{\"a\":1}\n", "{\"b\":2}\n", "last"] {
            assert_eq!(lines.read_line().await.unwrap().unwrap().as_str(), expected);
        }
        assert!(lines.read_line().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_an_error() {
        let long = vec![b'x'; MAX_LINE_LEN + 10];
        assert!(reader(&long).read_line().await.is_err());
        let mut exact = vec![b'x'; MAX_LINE_LEN - 1];
        exact.push(b'\n');
        assert_eq!(
            reader(&exact).read_line().await.unwrap().unwrap().len(),
            MAX_LINE_LEN
        );
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_an_error() {
        assert!(reader(b"\xff\xfe\n").read_line().await.is_err());
    }
}
