//! The client end of fido2d's control socket (`protocol::control`, JSON lines).

use std::path::Path;

use protocol::control::{self, Message, Role};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

use crate::exit::Failure;

pub struct ControlConnection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl ControlConnection {
    /// Connects and says hello; fails with a message that says what to do.
    pub async fn connect(path: &Path, role: Role) -> Result<Self, Failure> {
        let stream = UnixStream::connect(path).await.map_err(|err| {
            use std::io::ErrorKind::*;
            match err.kind() {
                NotFound | ConnectionRefused => Failure::daemon(format!(
                    "fido2d is not running (no control socket at {}): start it with \
                     `systemctl start fido2d`",
                    path.display()
                )),
                PermissionDenied => Failure::refused(format!(
                    "no permission to use {}: it belongs to the key's owner",
                    path.display()
                )),
                _ => Failure::daemon(format!("cannot connect to {}: {err}", path.display())),
            }
        })?;
        let (read, writer) = stream.into_split();
        let mut connection = ControlConnection {
            reader: BufReader::new(read),
            writer,
        };
        // A refusing daemon answers and closes without reading: the hello may fail to go out,
        // and its error message is still there to read.
        let hello = connection
            .send(&Message::Hello {
                role,
                client: format!("fido2ctl {}", env!("CARGO_PKG_VERSION")),
            })
            .await;
        match connection.recv().await.or_else(|err| hello.and(Err(err)))? {
            Some(Message::Welcome { .. }) => Ok(connection),
            Some(Message::Error { message }) => Err(Failure::refused(format!(
                "fido2d refused the connection: {message}"
            ))),
            Some(_) => Err(Failure::daemon("fido2d answered hello unexpectedly")),
            None => Err(Failure::refused(
                "fido2d closed the connection: this user may not use the key's control socket",
            )),
        }
    }

    pub async fn send(&mut self, message: &Message) -> Result<(), Failure> {
        let line = Zeroizing::new(control::encode(message));
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|err| Failure::daemon(format!("lost the connection to fido2d: {err}")))
    }

    /// The next message; `None` when the daemon closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Message>, Failure> {
        let mut line = Zeroizing::new(Vec::new());
        let read = (&mut self.reader)
            .take(control::MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|err| Failure::daemon(format!("lost the connection to fido2d: {err}")))?;
        if read == 0 {
            return Ok(None);
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| Failure::daemon("fido2d sent a line that is not UTF-8"))?;
        control::decode(text)
            .map(Some)
            .map_err(|err| Failure::daemon(format!("fido2d sent {err}")))
    }

    /// Sends a request and returns the first answer that is not a prompt.
    pub async fn request(&mut self, message: &Message) -> Result<Message, Failure> {
        self.send(message).await?;
        self.recv()
            .await?
            .ok_or_else(|| Failure::daemon("fido2d closed the connection"))
    }
}
