//! fido2ctl's command line: the clap definitions, and nothing else.
//!
//! This file uses only std, clap and clap_complete: the man pages' generator (`man/`,
//! `fido2d-man`) compiles it on its own to render fido2ctl(1).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed (the key refused, a wrong PIN, ...)
  2  wrong usage
  3  fido2d is not running, or its control socket failed
  4  refused: this user may not use the key
  5  no security key found";

#[derive(Debug, Parser)]
#[command(name = "fido2ctl", version, about = "Control fido2d, the software FIDO2 security key", after_help = EXIT_CODES)]
pub struct Cli {
    /// fido2d's control socket.
    #[arg(
        long,
        global = true,
        default_value = "/run/fido2d/control.sock",
        env = "FIDO2D_CONTROL_SOCKET"
    )]
    pub socket: PathBuf,

    /// Machine-readable JSON output instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The security key for CTAP commands: a hidraw node (/dev/hidrawN) or `udp:HOST:PORT`
    /// (fido2d's loopback transport). Default: the FIDO key plugged in (fido2d's first).
    #[arg(long, global = true, env = "FIDO2CTL_DEVICE")]
    pub device: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer fido2d's presence prompts in this session (desktop notifications by default).
    Agent {
        /// Ask on this terminal instead of with desktop notifications.
        #[arg(long)]
        terminal: bool,
    },
    /// Show the daemon's state: keystore, device, credentials, owner, agents.
    Status,
    /// Whose key this is: show the owner, or (root) set it.
    Owner {
        #[command(subcommand)]
        action: Option<OwnerAction>,
    },
    /// Serve another computer like a phone: give the `FIDO:/` QR code its browser shows
    /// ("use a phone or tablet"), as text or as a picture. Needs Bluetooth on this computer
    /// and a route to the tunnel server.
    Hybrid {
        /// The QR code's text, `FIDO:/` and digits.
        #[arg(value_name = "FIDO:/...", required_unless_present = "qr_image")]
        qr: Option<String>,
        /// Read the QR code from a picture (PNG or JPEG screenshot or photo) instead.
        #[arg(long, value_name = "FILE", conflicts_with = "qr")]
        qr_image: Option<PathBuf>,
    },
    /// Show what the key reports about itself (authenticatorGetInfo).
    Info,
    /// The key's PIN (CTAP clientPIN): set, change, or see the retries left.
    Pin {
        #[command(subcommand)]
        action: PinAction,
    },
    /// The discoverable credentials on the key (needs the PIN).
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
    },
    /// Erase every credential and the PIN (asks for confirmation, then a touch).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// The key's settings (CTAP authenticatorConfig; needs the PIN).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum OwnerAction {
    /// Make USER (a name or a uid) the key's owner: only its agents answer prompts from now on
    /// (root only).
    Set { user: String },
}

#[derive(Debug, Subcommand)]
pub enum PinAction {
    /// Set a PIN on a key that has none.
    Set,
    /// Change the PIN.
    Change,
    /// Whether a PIN is set, and how many tries are left.
    Status,
    /// Check the PIN (a wrong one costs one of the key's tries, as on any key).
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsAction {
    /// List the discoverable credentials (site, account, credential ID).
    List,
    /// Delete one credential, by the ID `list` shows.
    Delete { credential_id: String },
    /// Change the account name or display name stored with a credential (by the ID `list`
    /// shows); an empty value removes it. The user handle never changes.
    Update {
        credential_id: String,
        /// The new account name (user.name).
        #[arg(long)]
        name: Option<String>,
        /// The new display name (user.displayName).
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Turn alwaysUv on or off (user verification for every request).
    AlwaysUv,
    /// Raise the minimum PIN length, and/or name sites that may learn it.
    MinPinLength {
        /// The new minimum (in code points).
        length: Option<u8>,
        /// A site (RP ID) allowed to read the minimum PIN length; repeatable.
        #[arg(long = "rp")]
        rp_ids: Vec<String>,
        /// Make the person change the PIN before the next use.
        #[arg(long)]
        force_change: bool,
    },
}
