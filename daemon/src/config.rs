//! The configuration file, `/etc/fido2d/config.toml`: every command-line option is also a
//! setting, under its long name (`state-dir = "/var/lib/fido2d"`, `presence-timeout = 30`).
//! Options given on the command line win over the file.
//!
//! The file is turned into arguments placed before the real ones, so clap checks a setting
//! exactly as it checks the option (same types, same allowed values) and a new option is a new
//! setting with no code here.

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, CommandFactory as _, FromArgMatches as _, Parser as _};

use crate::cli::{Cli, PresenceArg, TransportKind, UvSetting, NOT_SETTINGS};
use crate::keystore::KeystoreSettings;
use crate::owner::OwnerPolicy;
use crate::prompts::fingerprint::Readiness;
use crate::prompts::presence::{fingerprint_readiness, PresenceChoice, PresenceMode};
use crate::prompts::Broker;

pub const DEFAULT_PATH: &str = "/etc/fido2d/config.toml";
/// Where the service keeps the real credentials (`--state-dir`'s default).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/fido2d";

/// Parses the command line, with the configuration file's settings as defaults. Exits with
/// clap's message on a bad option (as `Cli::parse` would); a bad file is an error.
pub fn load(args: Vec<OsString>) -> anyhow::Result<Cli> {
    let first = Cli::parse_from(&args);
    let (path, required) = match &first.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
            refuse_test_modes_on_real_keys(&first)?;
            return Ok(first);
        }
        Err(err) => anyhow::bail!(
            "cannot read the configuration file {}: {err}",
            path.display()
        ),
    };
    let settings = settings_as_args(&text, &path)?;
    let mut merged = vec![args.first().cloned().unwrap_or_else(|| "fido2d".into())];
    merged.extend(settings);
    merged.extend(args.into_iter().skip(1));
    let matches = Cli::command()
        .args_override_self(true)
        .try_get_matches_from(merged)
        .map_err(|err| {
            anyhow::anyhow!(
                "invalid setting in {} (or on the command line): {}",
                path.display(),
                err.render().to_string().trim()
            )
        })?;
    let cli = Cli::from_arg_matches(&matches)?;
    refuse_test_modes_on_real_keys(&cli)?;
    Ok(cli)
}

/// The test modes cannot reach real credentials: `--presence auto-approve` (which signs
/// everything) never runs on the service's state directory nor serves another computer, and
/// the UDP transport (which any local program can reach) never runs on the service's state
/// directory. Each refusal is one line.
fn refuse_test_modes_on_real_keys(cli: &Cli) -> anyhow::Result<()> {
    let real_keys = is_default_state_dir(&cli.state_dir);
    if cli.presence == Some(PresenceArg::AutoApprove) {
        if real_keys {
            anyhow::bail!(
                "--presence auto-approve is for tests: it refuses the service's state directory \
                 {DEFAULT_STATE_DIR} (give a test directory with --state-dir)"
            );
        }
        if cli.hybrid.is_some() {
            anyhow::bail!(
                "--presence auto-approve is for tests: it never serves another computer (--hybrid)"
            );
        }
    }
    if cli.transport == TransportKind::Udp && real_keys {
        anyhow::bail!(
            "--transport udp is for tests: it refuses the service's state directory \
                 {DEFAULT_STATE_DIR} (give a test directory with --state-dir)"
        );
    }
    Ok(())
}

/// Whether `dir` is the service's state directory, however it is spelled (trailing slash,
/// `..`, a symbolic link to it).
fn is_default_state_dir(dir: &Path) -> bool {
    let default = Path::new(DEFAULT_STATE_DIR);
    let resolve = |path: &Path| std::fs::canonicalize(path).ok();
    match (resolve(dir), resolve(default)) {
        (Some(dir), Some(default)) => dir == default,
        // Not there (yet): compare the paths as written, made absolute and normalised.
        _ => normalise(dir) == normalise(default),
    }
}

fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `key = value` lines as `--key value` arguments.
fn settings_as_args(text: &str, path: &Path) -> anyhow::Result<Vec<OsString>> {
    let table: toml::Table = text
        .parse()
        .map_err(|err| anyhow::anyhow!("{} is not valid TOML: {err}", path.display()))?;
    let command = Cli::command();
    let mut args = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let option = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(name.as_str()))
            .filter(|_| !NOT_SETTINGS.contains(&name.as_str()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown setting {key:?} in {} (see `fido2d --help` for the options)",
                    path.display()
                )
            })?;
        let flag = matches!(
            option.get_action(),
            ArgAction::SetTrue | ArgAction::SetFalse
        );
        let values = match value {
            toml::Value::Array(items) if matches!(option.get_action(), ArgAction::Append) => items,
            toml::Value::Array(_) => anyhow::bail!(
                "setting {key:?} in {} takes one value, not a list",
                path.display()
            ),
            single => vec![single],
        };
        for value in values {
            // A file is where the service's real settings live: the test mode that approves
            // every request must be asked for each time, on the command line.
            if name == "presence" && value.as_str() == Some("auto-approve") {
                anyhow::bail!(
                    "{}: presence = \"auto-approve\" is refused in a configuration file: it is \
                     for tests only, and only on the command line",
                    path.display()
                );
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if flag => {
                    if b {
                        args.push(format!("--{name}").into());
                    }
                    continue;
                }
                toml::Value::Boolean(b) => b.to_string(),
                other => anyhow::bail!(
                    "setting {key:?} in {}: a {} is not a value here",
                    path.display(),
                    other.type_str()
                ),
            };
            args.push(format!("--{name}").into());
            args.push(text.into());
        }
    }
    Ok(args)
}

// What the options turn into (cli.rs holds only the clap definitions).

impl Cli {
    /// `--tcti`, else the usual environment variables, else the kernel's resource manager.
    pub fn tcti(&self) -> String {
        self.tcti
            .clone()
            .or_else(|| {
                ["TPM2TOOLS_TCTI", "TCTI"]
                    .into_iter()
                    .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            })
            .unwrap_or_else(|| crate::cli::DEFAULT_TCTI.into())
    }

    pub fn keystore_settings(&self) -> anyhow::Result<KeystoreSettings> {
        let tpm_timeout = Duration::try_from_secs_f64(self.tpm_timeout)
            .map_err(|_| anyhow::anyhow!("--tpm-timeout {}: not a duration", self.tpm_timeout))?;
        Ok(KeystoreSettings {
            choice: self.keystore,
            state_dir: self.state_dir.clone(),
            tcti: self.tcti(),
            tpm_parent: self.tpm_parent,
            tpm_timeout,
        })
    }

    pub fn hybrid_options(&self) -> crate::hybrid::HybridOptions {
        crate::hybrid::HybridOptions {
            tunnel_url: self.tunnel_url.clone(),
            tunnel_domain: self.tunnel_domain_id,
            extra_ca: self.tunnel_ca.clone(),
            initiator_timeout: Duration::from_secs(self.hybrid_wait),
            session_timeout: Duration::from_secs(self.hybrid_timeout),
            ..crate::hybrid::HybridOptions::default()
        }
    }

    /// The presence mode, and why. `auto` (the default) asks fprintd, once, whether the owner
    /// has an enrolled finger on a reader: then the fingerprint, else the terminal when stdin is
    /// one, else the agent.
    pub fn presence_mode(&self, broker: Broker, owner: &OwnerPolicy) -> PresenceChoice {
        let timeout = std::time::Duration::from_secs(self.presence_timeout);
        let choice = |mode, reason: String| PresenceChoice { mode, reason };
        let fingerprint = |broker| PresenceMode::Fingerprint {
            broker,
            owner: owner.clone(),
            timeout,
        };
        let fingers = |ready: &Readiness| match ready {
            Readiness::Ready { reader, fingers } => {
                format!("{} finger(s) enrolled on {reader}", fingers.len())
            }
            Readiness::NotReady(why) => why.clone(),
        };
        match self.presence.unwrap_or(PresenceArg::Auto) {
            PresenceArg::Auto => match fingerprint_readiness(owner) {
                ready @ Readiness::Ready { .. } => choice(
                    fingerprint(broker),
                    format!("auto: the owner has {}", fingers(&ready)),
                ),
                Readiness::NotReady(why) if std::io::stdin().is_terminal() => choice(
                    PresenceMode::Terminal { timeout },
                    format!("auto: {why}; stdin is a terminal, so asking there"),
                ),
                Readiness::NotReady(why) => choice(
                    PresenceMode::Agent { broker, timeout },
                    format!("auto: {why}, so the desktop agent"),
                ),
            },
            PresenceArg::Fingerprint => {
                let reason = match fingerprint_readiness(owner) {
                    ready @ Readiness::Ready { .. } => {
                        format!("configured; the owner has {}", fingers(&ready))
                    }
                    Readiness::NotReady(why) => format!(
                        "configured, but {why}: requests that need a touch are refused until \
                         then"
                    ),
                };
                choice(fingerprint(broker), reason)
            }
            PresenceArg::Agent => {
                choice(PresenceMode::Agent { broker, timeout }, "configured".into())
            }
            PresenceArg::Terminal => {
                choice(PresenceMode::Terminal { timeout }, "configured".into())
            }
            PresenceArg::Deny => choice(PresenceMode::Deny, "configured".into()),
            PresenceArg::AutoApprove => {
                choice(PresenceMode::AutoApprove, "configured, for tests".into())
            }
        }
    }
}

impl UvSetting {
    pub fn method(self) -> Option<crate::prompts::uv::UvMethod> {
        match self {
            UvSetting::Off => None,
            UvSetting::Pam => Some(crate::prompts::uv::UvMethod::Pam),
            UvSetting::Fingerprint => Some(crate::prompts::uv::UvMethod::Fingerprint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load_with(path: &Path, extra: &[&str]) -> anyhow::Result<Cli> {
        let mut args: Vec<OsString> = vec!["fido2d".into(), "--config".into(), path.into()];
        args.extend(extra.iter().map(OsString::from));
        load(args)
    }

    fn load_args(args: &[&str]) -> anyhow::Result<Cli> {
        let mut all = vec!["fido2d", "--config", "/dev/null"];
        all.extend_from_slice(args);
        load(all.into_iter().map(OsString::from).collect())
    }

    #[test]
    fn the_default_state_dir_is_the_clap_default() {
        let cli = Cli::parse_from(["fido2d"]);
        assert_eq!(cli.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn auto_approve_is_refused_in_the_file_and_accepted_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let state = state.to_str().unwrap();
        let path = write(
            dir.path(),
            &format!("presence = \"auto-approve\"\nstate-dir = \"{state}\"\n"),
        );
        let err = load_with(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("only on the command line"), "{err}");
        let cli = load_args(&["--presence", "auto-approve", "--state-dir", state]).unwrap();
        assert_eq!(cli.presence, Some(PresenceArg::AutoApprove));
    }

    #[test]
    fn test_modes_refuse_the_service_state_directory_however_spelled() {
        for spelling in [
            DEFAULT_STATE_DIR,
            "/var/lib/fido2d/",
            "/var/lib/../lib/fido2d",
            "/var/./lib/fido2d",
        ] {
            for args in [
                vec!["--presence", "auto-approve", "--state-dir", spelling],
                vec!["--transport", "udp", "--state-dir", spelling],
            ] {
                let err = load_args(&args).unwrap_err().to_string();
                assert!(err.contains("for tests"), "{args:?}: {err}");
                assert_eq!(err.lines().count(), 1, "one line: {err}");
            }
        }
        // Both also without --state-dir: it is the default.
        assert!(load_args(&["--presence", "auto-approve"]).is_err());
        assert!(load_args(&["--transport", "udp"]).is_err());
        assert!(load_args(&["--transport", "udp", "--state-dir", "/tmp/x"]).is_ok());
    }

    #[test]
    fn auto_approve_never_serves_another_computer() {
        let err = load_args(&[
            "--presence",
            "auto-approve",
            "--state-dir",
            "/tmp/test-keys",
            "--hybrid",
            "FIDO:/1",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("never serves another computer"), "{err}");
    }

    #[test]
    fn settings_are_options_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "state-dir = \"/srv/keys\"\npresence_timeout = 12\ntransport = \"udp\"\n",
        );

        let cli = load_with(&path, &["--presence-timeout", "40"]).unwrap();

        assert_eq!(cli.state_dir, PathBuf::from("/srv/keys"));
        assert_eq!(cli.presence_timeout, 40, "the command line wins");
        assert_eq!(cli.transport, crate::cli::TransportKind::Udp);
    }

    #[test]
    fn unknown_settings_bad_values_and_bad_toml_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("colour = \"blue\"\n", "unknown setting \"colour\""),
            ("presence-timeout = \"soon\"\n", "invalid setting"),
            ("transport = \"carrier-pigeon\"\n", "invalid setting"),
            ("state-dir = [\"a\", \"b\"]\n", "takes one value"),
            (
                "presence = { mode = \"agent\" }\n",
                "a table is not a value here",
            ),
            ("config = \"/etc/other.toml\"\n", "unknown setting"),
            ("state-dir = \n", "not valid TOML"),
        ] {
            let path = write(dir.path(), text);

            let err = load_with(&path, &[]).unwrap_err().to_string();

            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.contains(&path.display().to_string()), "{text:?}: {err}");
        }
    }

    #[test]
    fn an_explicit_file_must_exist_the_default_one_may_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");

        let err = load_with(&missing, &[]).unwrap_err().to_string();

        assert!(err.contains("cannot read the configuration file"), "{err}");
    }

    #[test]
    fn the_shipped_configuration_file_documents_every_option_and_parses() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/config.toml");
        let text = std::fs::read_to_string(&shipped).expect("dist/config.toml");
        // Every setting is there, commented out as `# key = value`.
        let settings: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# ").filter(|l| l.contains(" = ")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &settings.join("\n"));

        let cli = load_with(&path, &[]);

        assert!(cli.is_ok(), "{:?}", cli.err());
        for option in Cli::command().get_arguments() {
            let Some(name) = option.get_long().filter(|n| !NOT_SETTINGS.contains(n)) else {
                continue;
            };
            assert!(
                settings
                    .iter()
                    .any(|s| s.starts_with(&format!("{name} = "))),
                "dist/config.toml does not document {name}"
            );
        }
    }
}
