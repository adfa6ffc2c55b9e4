//! `fido2ctl status`: what the daemon reports about itself.

use std::path::Path;

use protocol::control::{Message, Role, Status};
use protocol::display;

use crate::control_client::ControlConnection;
use crate::exit::Failure;

pub async fn fetch(socket: &Path) -> Result<Status, Failure> {
    let mut connection = ControlConnection::connect(socket, Role::Client).await?;
    match connection.request(&Message::StatusRequest).await? {
        Message::Status(status) => Ok(status),
        Message::Error { message } => Err(Failure::daemon(format!("fido2d: {message}"))),
        _ => Err(Failure::daemon("fido2d answered status unexpectedly")),
    }
}

/// `replug`: the daemon asks the owner's gesture, then makes the key anew (before a reset).
pub async fn replug(socket: &Path) -> Result<(), Failure> {
    let mut connection = ControlConnection::connect(socket, Role::Client).await?;
    match connection.request(&Message::Replug).await? {
        Message::ReplugDone { ok: true, .. } => Ok(()),
        Message::ReplugDone { ok: false, message } | Message::Error { message } => {
            Err(Failure::refused(format!("fido2d: {message}")))
        }
        _ => Err(Failure::daemon("fido2d answered replug unexpectedly")),
    }
}

/// `owner-set`: makes `user` the key's owner (the daemon accepts it from root only).
pub async fn set_owner(socket: &Path, user: &str) -> Result<String, Failure> {
    let mut connection = ControlConnection::connect(socket, Role::Client).await?;
    let request = Message::OwnerSet {
        user: user.to_owned(),
    };
    match connection.request(&request).await? {
        Message::OwnerSetDone { owner } => Ok(owner),
        Message::Error { message } => Err(Failure::daemon(format!("fido2d: {message}"))),
        _ => Err(Failure::daemon("fido2d answered owner-set unexpectedly")),
    }
}

pub fn print(status: &Status) {
    println!("fido2d {}", status.daemon_version);
    println!(
        "  keystore:       {} ({})",
        status.backend, status.backend_detail
    );
    println!("  device:         {}", status.device);
    println!(
        "  credentials:    {} discoverable",
        status.discoverable_credentials
    );
    match status.presence_reason.as_str() {
        "" => println!("  presence:       {}", status.presence_mode),
        why => println!("  presence:       {} ({why})", status.presence_mode),
    }
    println!("  owner:          {}", status.owner);
    println!("  agents:         {} connected", status.agents_connected);
    for agent in &status.agents {
        let unit = match agent.unit.as_str() {
            "" => String::new(),
            unit => format!(", {}", display::clean(unit, 100)),
        };
        println!(
            "    uid {} pid {}: {}{unit}",
            agent.uid,
            agent.pid,
            display::clean(&agent.executable, 200)
        );
    }
    if status.agents.len() > 1 {
        println!(
            "  warning: {} programs answer your prompts; any of them can approve a request",
            status.agents.len()
        );
    }
    println!("  built-in UV:    {}", status.user_verification);
    if !status.pin_protection.is_empty() {
        println!("  PIN:            {}", status.pin_protection);
    }
    if status.presence_mode == "agent" && status.agents_connected == 0 {
        println!(
            "  warning: no agent is connected, so every request that needs your approval is \
             refused; run `fido2ctl agent` in your desktop session"
        );
    }
}
