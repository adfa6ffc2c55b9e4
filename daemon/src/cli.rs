//! Command-line options: the clap definitions, and nothing else.
//!
//! This file uses only std and clap: the man pages' generator (`man/`, `fido2d-man`) compiles it
//! on its own to render fido2d(8) and fido2d.conf(5). What the options turn into (keystore,
//! presence, hybrid settings) is in `config.rs`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "fido2d",
    version,
    about = "A software FIDO2 security key",
    after_help = "Every option but --config, --check-config and --hybrid is also a setting of the \
                  configuration file (default /etc/fido2d/config.toml), under its long name: \
                  `presence-timeout = 30`."
)]
pub struct Cli {
    /// The configuration file (default: /etc/fido2d/config.toml, if it exists). Options on
    /// the command line win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read the configuration and the options, say whether they are valid, and exit.
    #[arg(long)]
    pub check_config: bool,

    /// How platforms reach the key: `uhid` is a virtual USB security key that browsers and
    /// libfido2 see (needs /dev/uhid); `udp` is a loopback transport for development and tests.
    #[arg(long, value_enum, default_value_t = TransportKind::Uhid)]
    pub transport: TransportKind,

    /// UDP port on 127.0.0.1 for `--transport udp` (0 picks a free one).
    #[arg(long, default_value_t = 8111)]
    pub udp_port: u16,

    /// Where credentials and the master key are kept.
    #[arg(long, default_value = "/var/lib/fido2d")]
    pub state_dir: PathBuf,

    /// Where private keys live. `auto` keeps using the backend a state directory was made
    /// with, and gives a new one the TPM when a TPM answers (else the encrypted file).
    #[arg(long, value_enum, default_value_t = KeystoreChoice::Auto)]
    pub keystore: KeystoreChoice,

    /// How to reach the TPM [default: $TPM2TOOLS_TCTI, else $TCTI, else device:/dev/tpmrm0].
    #[arg(long)]
    pub tcti: Option<String>,

    /// A persistent storage key to create credential keys under (e.g. 0x81000001), for a TPM
    /// whose owner hierarchy has a password.
    #[arg(long, value_parser = parse_handle)]
    pub tpm_parent: Option<u32>,

    /// Seconds the TPM may take to answer at start before `auto` uses the file (and `tpm`
    /// gives up).
    #[arg(long, default_value_t = 5.0)]
    pub tpm_timeout: f64,

    /// How user presence is decided. `fingerprint`: the owner's enrolled finger on the
    /// fingerprint reader (fprintd) is the touch, and an agent's answer approves nothing;
    /// `agent` asks the desktop agent (`fido2ctl agent`) over the control socket; `terminal`
    /// asks on this terminal; `deny` refuses every request that needs presence; `auto-approve`
    /// approves everything and is for tests only. Default: `auto`, the fingerprint when the
    /// owner has an enrolled finger and a reader answers at start, else `terminal` when stdin
    /// is a terminal, else `agent`.
    #[arg(long, value_enum)]
    pub presence: Option<PresenceArg>,

    /// Seconds to wait for a presence answer before the request times out.
    #[arg(long, default_value_t = 30)]
    pub presence_timeout: u64,

    /// The control socket, for the desktop agent and fido2ctl.
    #[arg(long, default_value = "/run/fido2d/control.sock")]
    pub control_socket: PathBuf,

    /// Whose key this is (a user name or uid): only the owner's agents answer prompts, and only
    /// root and the owner may use the control socket. Default: the first user whose agent
    /// connects, recorded in the state directory.
    #[arg(long)]
    pub owner: Option<String>,

    /// Built-in user verification (CTAP "uv"): `pam` checks the owner's login password, typed
    /// in the desktop agent; `fingerprint` matches the owner's finger (with `--presence
    /// fingerprint` the daemon asks fprintd itself, else PAM's pam_fprintd). Needs the agent or
    /// the fingerprint as presence.
    #[arg(long, value_enum, default_value_t = UvSetting::Off)]
    pub user_verification: UvSetting,

    /// The PAM service of built-in UV (default: fido2d, or fido2d-fingerprint).
    #[arg(long, value_name = "NAME")]
    pub pam_service: Option<String>,

    /// Log filter when FIDO2D_LOG is unset (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Serve one hybrid session for this `FIDO:/` QR code text, as a phone would, then exit
    /// (needs a Bluetooth adapter and a route to the tunnel server).
    #[arg(long, value_name = "FIDO:/...")]
    pub hybrid: Option<String>,

    /// Tunnel server base URL for hybrid sessions (default: wss:// + the server that
    /// --tunnel-domain-id names). `ws://` is accepted, for tests.
    #[arg(long, value_name = "URL")]
    pub tunnel_url: Option<String>,

    /// Tunnel server id announced in the advert: 0 = cable.ua5v.com, 1 = cable.auth.com,
    /// 256 and above = a hashed cable.*.com/org/net/info name (for a self-hosted server).
    #[arg(long, default_value_t = 0)]
    pub tunnel_domain_id: u16,

    /// An extra CA certificate (PEM) to trust for the tunnel server.
    #[arg(long, value_name = "FILE")]
    pub tunnel_ca: Option<PathBuf>,

    /// Seconds to advertise before giving up on the other computer.
    #[arg(long, default_value_t = 60)]
    pub hybrid_wait: u64,

    /// Seconds a whole hybrid session may last.
    #[arg(long, default_value_t = 300)]
    pub hybrid_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// A virtual USB HID security key through the kernel's /dev/uhid.
    Uhid,
    /// CTAPHID reports as UDP datagrams on 127.0.0.1 (development and tests).
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeystoreChoice {
    /// The state directory's backend; for a new one the TPM if it answers, else the file.
    Auto,
    /// Keys created and used in the TPM; fail if there is none.
    Tpm,
    /// Software keys in an encrypted file.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UvSetting {
    Off,
    Pam,
    Fingerprint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresenceArg {
    Auto,
    Fingerprint,
    Agent,
    Terminal,
    Deny,
    AutoApprove,
}

/// Options that are not settings of the configuration file: they name the file, or run one
/// session and exit.
pub const NOT_SETTINGS: [&str; 5] = ["config", "check-config", "help", "version", "hybrid"];

/// The kernel's TPM resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

fn parse_handle(text: &str) -> Result<u32, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| format!("{text}: a handle is hexadecimal, e.g. 0x81000001"))?;
    u32::from_str_radix(digits, 16).map_err(|err| format!("{text}: {err}"))
}
