//! fido2ctl: the command-line tool of fido2d.
//!
//! Daemon commands (`status`, `agent`, `hybrid`) talk to fido2d's control socket.

mod agent;
mod control_client;
mod ctap;
mod ctap_status;
mod exit;
mod hybrid;
mod info;
mod manage;
mod qr_image;
mod secret_input;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::exit::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed (the key refused, a wrong PIN, ...)
  2  wrong usage
  3  fido2d is not running, or its control socket failed
  4  refused: this user may not use the key
  5  no security key found";

#[derive(Debug, Parser)]
#[command(name = "fido2ctl", version, about = "Control fido2d, the software FIDO2 security key", after_help = EXIT_CODES)]
struct Cli {
    /// fido2d's control socket.
    #[arg(
        long,
        global = true,
        default_value = "/run/fido2d/control.sock",
        env = "FIDO2D_CONTROL_SOCKET"
    )]
    socket: PathBuf,

    /// Machine-readable JSON output instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// The security key for CTAP commands: a hidraw node (/dev/hidrawN) or `udp:HOST:PORT`
    /// (fido2d's loopback transport). Default: the FIDO key plugged in (fido2d's first).
    #[arg(long, global = true, env = "FIDO2CTL_DEVICE")]
    device: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Answer fido2d's presence prompts in this session (desktop notifications by default).
    Agent {
        /// Ask on this terminal instead of with desktop notifications.
        #[arg(long)]
        terminal: bool,
    },
    /// Show the daemon's state: keystore, device, credentials, agents.
    Status,
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
enum PinAction {
    /// Set a PIN on a key that has none.
    Set,
    /// Change the PIN.
    Change,
    /// Whether a PIN is set, and how many tries are left.
    Status,
}

#[derive(Debug, Subcommand)]
enum CredentialsAction {
    /// List the discoverable credentials (site, account, credential ID).
    List,
    /// Delete one credential, by the ID `list` shows.
    Delete { credential_id: String },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
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

/// Runs a blocking CTAP command off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Failure::failed(format!("internal error: {err}")))?
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON"));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fido2ctl: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("fido2ctl: {failure}");
            failure.exit_code()
        }
    }
}

/// A one-line result, as text or `{"message": ...}`.
fn say(message: String, json: bool) {
    if json {
        print_json(&serde_json::json!({ "message": message }));
    } else {
        println!("{message}");
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Agent { terminal: true } => {
            agent::run(&cli.socket, agent::TerminalFrontend::new()).await
        }
        Command::Agent { terminal: false } => {
            let frontend = agent::DesktopFrontend::connect().await?;
            agent::run(&cli.socket, frontend).await
        }
        Command::Status => {
            let status = status::fetch(&cli.socket).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).expect("status serializes")
                );
            } else {
                status::print(&status);
            }
            Ok(())
        }
        Command::Hybrid { qr, qr_image } => {
            let qr = match (qr, qr_image) {
                (Some(text), _) => text,
                (None, Some(path)) => qr_image::decode_file(&path)?,
                (None, None) => unreachable!("clap requires one of them"),
            };
            hybrid::run(&cli.socket, qr, cli.json).await
        }
        Command::Info => {
            let device = cli.device.clone();
            let info = blocking(move || {
                let mut key = ctap::open(device.as_deref())?;
                info::fetch(&mut key)
            })
            .await?;
            if cli.json {
                print_json(&info);
            } else {
                info::print(&info);
            }
            Ok(())
        }
        Command::Pin { action } => {
            let device = cli.device.clone();
            match action {
                PinAction::Set => say(
                    blocking(move || manage::pin_set(device.as_deref())).await?,
                    cli.json,
                ),
                PinAction::Change => say(
                    blocking(move || manage::pin_change(device.as_deref())).await?,
                    cli.json,
                ),
                PinAction::Status => {
                    let status = blocking(move || manage::pin_status(device.as_deref())).await?;
                    if cli.json {
                        print_json(&status);
                    } else if status["pin_set"] == true {
                        println!("PIN set; {} tries left", status["retries"]);
                    } else {
                        println!("no PIN set");
                    }
                }
            }
            Ok(())
        }
        Command::Credentials { action } => {
            let device = cli.device.clone();
            match action {
                CredentialsAction::List => {
                    let list =
                        blocking(move || manage::credentials_list(device.as_deref())).await?;
                    if cli.json {
                        print_json(&list);
                    } else if list.is_empty() {
                        println!("no discoverable credentials");
                    } else {
                        for c in &list {
                            let account = c.user_name.as_deref().unwrap_or("(no name)");
                            println!("{}  {account}  {}", c.rp_id, c.credential_id);
                        }
                    }
                }
                CredentialsAction::Delete { credential_id } => say(
                    blocking(move || manage::credentials_delete(device.as_deref(), &credential_id))
                        .await?,
                    cli.json,
                ),
            }
            Ok(())
        }
        Command::Reset { yes } => {
            let device = cli.device.clone();
            say(
                blocking(move || manage::reset(device.as_deref(), yes)).await?,
                cli.json,
            );
            Ok(())
        }
        Command::Config { action } => {
            let device = cli.device.clone();
            let message = match action {
                ConfigAction::AlwaysUv => {
                    blocking(move || manage::config_always_uv(device.as_deref())).await?
                }
                ConfigAction::MinPinLength {
                    length,
                    rp_ids,
                    force_change,
                } => {
                    blocking(move || {
                        manage::config_min_pin_length(
                            device.as_deref(),
                            length,
                            &rp_ids,
                            force_change,
                        )
                    })
                    .await?
                }
            };
            say(message, cli.json);
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "fido2ctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}
