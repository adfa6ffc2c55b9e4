//! fido2ctl: the command-line tool of fido2d.
//!
//! Daemon commands (`status`, `agent`, `hybrid`) talk to fido2d's control socket.

mod agent;
mod cli;
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

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::cli::{Cli, Command, ConfigAction, CredentialsAction, OwnerAction, PinAction};
use crate::exit::Failure;

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

/// Every freed block is zeroized before it goes back (see the workspace's Cargo.toml): the
/// copies of a secret that libraries make and drop do not linger in the heap.
#[global_allocator]
static ALLOCATOR: zalloc::ZeroizingAlloc<std::alloc::System> =
    zalloc::ZeroizingAlloc(std::alloc::System);

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
        Command::Owner { action: None } => {
            let status = status::fetch(&cli.socket).await?;
            say(format!("owner: {}", status.owner), cli.json);
            Ok(())
        }
        Command::Owner {
            action: Some(OwnerAction::Set { user }),
        } => {
            let owner = status::set_owner(&cli.socket, &user).await?;
            say(format!("owner: {owner}"), cli.json);
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
                PinAction::Verify => say(
                    blocking(move || manage::pin_verify(device.as_deref())).await?,
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
                CredentialsAction::Update {
                    credential_id,
                    name,
                    display_name,
                } => say(
                    blocking(move || {
                        manage::credentials_update(
                            device.as_deref(),
                            &credential_id,
                            name.as_deref(),
                            display_name.as_deref(),
                        )
                    })
                    .await?,
                    cli.json,
                ),
                CredentialsAction::Delete { credential_id } => say(
                    blocking(move || manage::credentials_delete(device.as_deref(), &credential_id))
                        .await?,
                    cli.json,
                ),
            }
            Ok(())
        }
        Command::Reset { yes } => {
            blocking(move || manage::confirm_reset(yes)).await?;
            // A key allows a reset only just after it is plugged in: fido2d replugs its key
            // (after the owner's gesture) when asked through its control socket.
            match status::replug(&cli.socket).await {
                Ok(()) => eprintln!("fido2ctl: the key was replugged"),
                Err(err) => eprintln!(
                    "fido2ctl: no replug ({}); resetting the key as it is",
                    err.message
                ),
            }
            let device = cli.device.clone();
            say(
                blocking(move || manage::reset(device.as_deref())).await?,
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
