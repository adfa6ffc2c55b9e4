//! No secret in the log: a full session (PIN set, tokens with both PIN/UV auth protocols,
//! makeCredential and getAssertion with hmac-secret and two salts, a wrong PIN) against fido2d
//! logging at trace level (FIDO2D_LOG=trace), driven by python-fido2 (tests/e2e/secrets.py),
//! which prints the secrets it saw. None of them may appear in fido2d's output (stderr, where
//! every log line and error goes), in hex (either case), base64 (either alphabet) or as a Rust
//! `Debug` byte list; the PIN and its hash may not appear in the state directory either, nor in
//! any other file fido2d wrote: it keeps a verifier, not the hash. With the file keystore and
//! with the TPM keystore (on swtpm), whose verifier is a TPM object nothing outside the TPM can
//! test a PIN against. Private keys never leave fido2d, so the client cannot name them here:
//! `python_fido2.rs` searches the state directory for them with the TPM backend.

use fido2d_tests::tiers::{skip, Tier};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fido2d_tests::swtpm::Swtpm;
use fido2d_tests::{python, require_python_fido2, run_with_timeout, Daemon};

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The ways a secret could be written into a log line (a prefix of 12 bytes is enough).
fn renderings(bytes: &[u8]) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let head = &bytes[..bytes.len().min(12)];
    let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", &head[..8.min(head.len())]);
    vec![
        hex.clone(),
        hex.to_uppercase(),
        base64(head, STD)[..12].to_owned(),
        base64(head, URL)[..12].to_owned(),
        debug.trim_end_matches(']').to_owned(),
    ]
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push((path.display().to_string(), fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_full_session_at_trace_level_logs_no_pin_token_shared_secret_or_hmac_secret() {
    if skip(Tier::Python) {
        return;
    }
    full_session(&["--presence", "auto-approve", "--keystore", "file"]);
}

#[test]
fn a_full_session_with_the_tpm_logs_and_stores_no_pin_token_shared_secret_or_hmac_secret() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    let tcti = tpm.tcti();
    full_session(&[
        "--presence",
        "auto-approve",
        "--keystore",
        "tpm",
        "--tcti",
        &tcti,
    ]);
}

fn full_session(args: &[&str]) {
    require_python_fido2();
    let mut daemon = Daemon::builder()
        .args(args)
        .envs(&[("FIDO2D_LOG", "trace")])
        .start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/secrets.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&script)
            .arg(daemon.port().to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(120),
    );
    assert!(
        outcome.success(),
        "secrets.py failed:\n{}\n{}",
        outcome.stdout,
        outcome.stderr
    );
    let mut state_files = files_under(daemon.state_dir());
    // Every other file fido2d wrote: its runtime directory (the control socket's).
    let runtime = daemon.control_socket();
    state_files.extend(files_under(runtime.parent().expect("a runtime directory")));
    assert!(
        state_files
            .iter()
            .any(|(path, _)| path.ends_with("pin.state")),
        "no PIN verifier among {:?}",
        state_files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    daemon.stop();
    let logs = daemon.logs();
    assert!(
        logs.lines().count() > 20 && logs.contains("DEBUG"),
        "fido2d did not log at debug level or finer:\n{logs}"
    );

    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for line in outcome.stdout.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("pin"), Some(pin), None) => {
                assert!(!logs.contains(pin), "the PIN is in the log");
                for (path, bytes) in &state_files {
                    assert!(
                        !bytes.windows(pin.len()).any(|w| w == pin.as_bytes()),
                        "the PIN is in {path}"
                    );
                }
            }
            (Some("hex"), Some(name), Some(hex)) => secrets.push((name.into(), hex_decode(hex))),
            _ => {}
        }
    }
    assert!(secrets.len() >= 9, "secrets.py printed {secrets:?}");
    for (name, bytes) in &secrets {
        for rendering in renderings(bytes) {
            assert!(
                !logs.contains(&rendering),
                "{name} is in the log as {rendering:?}"
            );
        }
        if name == "pin_hash" {
            for (path, file) in &state_files {
                assert!(
                    !file.windows(bytes.len()).any(|w| w == bytes.as_slice()),
                    "the PIN hash is in {path}"
                );
            }
        }
    }
}
