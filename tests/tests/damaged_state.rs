//! A damaged state directory against the real fido2d, with the file keystore and with the TPM
//! keystore (on swtpm): a corrupt or truncated credential record is set aside as `*.damaged`
//! with its bytes intact while the other credentials keep working; a truncated or corrupt
//! master secret file (`master.key`, `master.tpm`), or the one of another state directory, is a
//! clear error at start-up and not one file is changed.

use fido2d_tests::tiers::{skip, Tier};
use std::fs;
use std::path::Path;
use std::time::Duration;

use fido2d_tests::requests::{
    credential_id, get_assertion_discovery as get_assertion, make_credential_es256,
};
use fido2d_tests::state_tree::{private_state_dir, snapshot};
use fido2d_tests::swtpm::Swtpm;
use fido2d_tests::{Daemon, HidAnswer, HidClient};
use protocol::wire::StatusCode;
use sha2::{Digest, Sha256};

/// The keystore a case runs with.
struct Backend {
    args: Vec<String>,
    /// The master secret's file.
    master: &'static str,
    /// The TPM the case runs against, kept running as long as the case.
    _tpm: Option<Swtpm>,
}

impl Backend {
    fn file() -> Backend {
        Backend {
            args: ["--presence", "auto-approve", "--keystore", "file"]
                .map(str::to_owned)
                .to_vec(),
            master: "master.key",
            _tpm: None,
        }
    }

    fn tpm() -> Backend {
        let tpm = Swtpm::start();
        Backend {
            args: ["--presence", "auto-approve", "--keystore", "tpm", "--tcti"]
                .map(str::to_owned)
                .into_iter()
                .chain([tpm.tcti()])
                .collect(),
            master: "master.tpm",
            _tpm: Some(tpm),
        }
    }

    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    fn start(&self, dir: &Path) -> Daemon {
        Daemon::builder().state_dir(dir).args(&self.args()).start()
    }
}

fn status(answer: &HidAnswer) -> StatusCode {
    match answer {
        HidAnswer::Message(HidClient::CMD_CBOR, body) if !body.is_empty() => {
            StatusCode::from_byte(body[0]).expect("a CTAP status")
        }
        other => panic!("not a CTAP2 answer: {other:?}"),
    }
}

/// Makes one discoverable credential per RP; returns their credential IDs.
fn register(daemon: &Daemon, rps: &[&str]) -> Vec<Vec<u8>> {
    let mut client = HidClient::connect(daemon.addr()).expect("INIT");
    rps.iter()
        .map(|rp| {
            let answer = client
                .cbor(&make_credential_es256(rp, b"user", true))
                .unwrap();
            let HidAnswer::Message(_, body) = &answer else {
                panic!("{answer:?}")
            };
            assert_eq!(body[0], 0, "makeCredential for {rp}");
            credential_id(&body[1..])
        })
        .collect()
}

fn record_file(credential_id: &[u8]) -> String {
    format!(
        "credentials/{}.cred",
        hex(&Sha256::digest(credential_id)[..16])
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn corrupt_and_truncated_records_are_set_aside_intact_and_the_others_keep_working() {
    if skip(Tier::Udp) {
        return;
    }
    records_are_set_aside(&Backend::file());
}

#[test]
fn corrupt_and_truncated_records_are_set_aside_intact_and_the_others_keep_working_with_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    records_are_set_aside(&Backend::tpm());
}

fn records_are_set_aside(backend: &Backend) {
    let (_temp, dir) = private_state_dir();
    let mut daemon = backend.start(&dir);
    let ids = register(
        &daemon,
        &["flipped.example", "cut.example", "intact.example"],
    );
    daemon.stop();

    let flipped = record_file(&ids[0]);
    let cut = record_file(&ids[1]);
    let mut bytes = fs::read(dir.join(&flipped)).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x01;
    fs::write(dir.join(&flipped), &bytes).unwrap();
    let bytes = fs::read(dir.join(&cut)).unwrap();
    fs::write(dir.join(&cut), &bytes[..bytes.len() / 2]).unwrap();
    let before = snapshot(&dir);

    let mut daemon = backend.start(&dir);
    let mut client = HidClient::connect(daemon.addr()).expect("INIT");
    assert_eq!(
        status(&client.cbor(&get_assertion("intact.example")).unwrap()),
        StatusCode::Success
    );
    for rp in ["flipped.example", "cut.example"] {
        assert_eq!(
            status(&client.cbor(&get_assertion(rp)).unwrap()),
            StatusCode::NoCredentials,
            "{rp}"
        );
    }
    let logs = daemon.logs();
    daemon.stop();

    let after = snapshot(&dir);
    for (path, bytes) in &before {
        if *path == flipped || *path == cut {
            assert!(!after.contains_key(path), "{path} is still in place");
            let aside = format!("{path}.damaged");
            assert_eq!(
                after.get(&aside),
                Some(bytes),
                "{aside} holds the damaged bytes"
            );
            assert!(
                logs.contains("damaged credential record was moved aside") && logs.contains(&aside),
                "the log names {aside}:\n{logs}"
            );
        } else if path != "counter" {
            assert_eq!(after.get(path), Some(bytes), "{path} changed");
        }
    }
}

/// Starts fido2d on `dir`, expects it to refuse with a message containing `needles`, and
/// checks that every file is as it was.
fn refuses_and_touches_nothing(backend: &Backend, dir: &Path, needles: &[&str]) {
    let before = snapshot(dir);
    let outcome = Daemon::builder()
        .state_dir(dir)
        .args(&backend.args())
        .expect_refusal(Duration::from_secs(30));
    assert!(!outcome.success(), "{}", outcome.stderr);
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "the error names {needle:?}:\n{}",
            outcome.stderr
        );
    }
    assert_eq!(snapshot(dir), before, "a file was changed");
}

#[test]
fn a_truncated_or_corrupt_master_key_is_a_clear_error_and_changes_nothing() {
    if skip(Tier::Udp) {
        return;
    }
    a_damaged_master_secret_is_refused(&Backend::file());
}

#[test]
fn a_truncated_or_corrupt_sealed_master_secret_is_a_clear_error_and_changes_nothing() {
    if skip(Tier::Tpm) {
        return;
    }
    a_damaged_master_secret_is_refused(&Backend::tpm());
}

fn a_damaged_master_secret_is_refused(backend: &Backend) {
    let (_temp, dir) = private_state_dir();
    let mut daemon = backend.start(&dir);
    let ids = register(&daemon, &["example.com"]);
    daemon.stop();
    assert!(dir.join(record_file(&ids[0])).exists());
    let file = backend.master;
    let master = fs::read(dir.join(file)).unwrap();

    fs::write(dir.join(file), &master[..master.len() - 7]).unwrap();
    refuses_and_touches_nothing(backend, &dir, &["master key file", file, "corrupt"]);

    let mut flipped = master.clone();
    flipped[12] ^= 0x40;
    fs::write(dir.join(file), &flipped).unwrap();
    refuses_and_touches_nothing(backend, &dir, &["master key file", file, "corrupt"]);

    fs::write(dir.join(file), &master).unwrap();
    let mut daemon = backend.start(&dir);
    let mut client = HidClient::connect(daemon.addr()).expect("INIT");
    assert_eq!(
        status(&client.cbor(&get_assertion("example.com")).unwrap()),
        StatusCode::Success,
        "the credential works again with its master key"
    );
    daemon.stop();
}

#[test]
fn the_master_key_of_another_state_dir_is_refused_and_changes_nothing() {
    if skip(Tier::Udp) {
        return;
    }
    another_state_dirs_master_secret_is_refused(&Backend::file());
}

#[test]
fn the_sealed_master_secret_of_another_state_dir_is_refused_and_changes_nothing() {
    if skip(Tier::Tpm) {
        return;
    }
    another_state_dirs_master_secret_is_refused(&Backend::tpm());
}

fn another_state_dirs_master_secret_is_refused(backend: &Backend) {
    let (_temp, dir) = private_state_dir();
    let (_other_temp, other) = private_state_dir();
    for d in [&dir, &other] {
        let mut daemon = backend.start(d);
        register(&daemon, &["example.com"]);
        daemon.stop();
    }
    let file = backend.master;
    let own = fs::read(dir.join(file)).unwrap();
    fs::copy(other.join(file), dir.join(file)).unwrap();
    // Sealed under the other key, the counter does not open: fido2d stops there.
    refuses_and_touches_nothing(backend, &dir, &["counter", "corrupt"]);

    fs::write(dir.join(file), &own).unwrap();
    let mut daemon = backend.start(&dir);
    let mut client = HidClient::connect(daemon.addr()).expect("INIT");
    assert_eq!(
        status(&client.cbor(&get_assertion("example.com")).unwrap()),
        StatusCode::Success
    );
    daemon.stop();
}
