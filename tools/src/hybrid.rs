//! `fido2ctl hybrid`: hand the daemon a `FIDO:/` QR code so that it serves the other computer
//! the way a phone would, and follow the session until it ends.

use std::path::Path;

use protocol::control::{Message, Role};

use crate::control_client::ControlConnection;
use crate::exit::Failure;

/// Runs one session; `json` prints the daemon's messages as JSON lines instead of text.
pub async fn run(socket: &Path, qr: String, json: bool) -> Result<(), Failure> {
    let mut connection = ControlConnection::connect(socket, Role::Client).await?;
    connection.send(&Message::Hybrid { qr }).await?;
    loop {
        let message = connection
            .recv()
            .await?
            .ok_or_else(|| Failure::daemon("fido2d closed the connection during the session"))?;
        if json {
            println!(
                "{}",
                serde_json::to_string(&message).expect("control messages serialize")
            );
        }
        match message {
            Message::HybridProgress { message, .. } if !json => println!("{message}"),
            Message::HybridDone { ok: true, message } => {
                if !json {
                    println!("{message}");
                }
                return Ok(());
            }
            Message::HybridDone { ok: false, message } => return Err(Failure::failed(message)),
            Message::Error { message } => {
                return Err(Failure::daemon(format!("fido2d: {message}")))
            }
            _ => {}
        }
    }
}
