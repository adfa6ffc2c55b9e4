//! PIN lockout counts survive kill -9 between a wrong PIN and the answer: python-fido2
//! (tests/e2e/pin_kill.py) sends getPinToken with a wrong PIN and SIGKILLs fido2d at delays
//! spread over the time such a request takes; each time the restarted daemon must report one
//! retry fewer if the answer (PIN_INVALID) had come, one fewer or none fewer if it had not,
//! never more. A retry is spent durably before the PIN is compared, so some kills must land
//! after the retry was spent and before the answer: the test kills until it saw three such
//! rounds (and two answered ones), at most 60 times. With the file keystore and with the TPM
//! keystore (on swtpm, whose PIN failure counter is an NV counter spent before the TPM checks
//! the PIN).

use fido2d_tests::tiers::{skip, Tier};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fido2d_tests::swtpm::Swtpm;
use fido2d_tests::{python, require_python_fido2, run_with_timeout, Daemon};

const ARGS: [&str; 4] = ["--presence", "auto-approve", "--keystore", "file"];
const PIN_INVALID: u32 = 0x31;

fn script(daemon: &Daemon, args: &[String]) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/pin_kill.py");
    let outcome = run_with_timeout(
        Command::new(python())
            .arg(&path)
            .arg(daemon.port().to_string())
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(60),
    );
    assert!(
        outcome.success(),
        "pin_kill.py {args:?}:\n{}\n{}",
        outcome.stdout,
        outcome.stderr
    );
    outcome
        .stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(lines: &'a [(String, String)], key: &str) -> &'a str {
    &lines
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
        .1
}

#[test]
fn pin_retries_survive_a_sigkill_between_a_wrong_pin_and_its_answer() {
    if skip(Tier::Python) {
        return;
    }
    survive_sigkill(&ARGS, &|| {});
}

#[test]
fn pin_retries_survive_a_sigkill_between_a_wrong_pin_and_its_answer_with_the_tpm() {
    if skip(Tier::Tpm) {
        return;
    }
    let tpm = Swtpm::start();
    // Sixty wrong PINs and more: the TPM's lockout (swtpm's: after 3) must not end the test.
    tpm.set_dictionary_attack(1000, 1, 1);
    let tcti = tpm.tcti();
    let args = [
        "--presence",
        "auto-approve",
        "--keystore",
        "tpm",
        "--tcti",
        &tcti,
    ];
    // swtpm has no resource manager: what a killed fido2d left loaded stays loaded, and its
    // three object slots run out. /dev/tpmrm0 flushes it; here the test does.
    survive_sigkill(&args, &|| {
        tpm.tool(&["tpm2_flushcontext", "-t"]);
        tpm.tool(&["tpm2_flushcontext", "-l"]);
    });
}

/// The test, with fido2d started with `args`; `after_kill` runs after each SIGKILL.
fn survive_sigkill(args: &[&str], after_kill: &dyn Fn()) {
    require_python_fido2();
    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path().join("state");
    let mut daemon = Daemon::builder().state_dir(&dir).args(args).start();
    script(&daemon, &["set".into()]);
    let lines = script(&daemon, &["time".into()]);
    let took: f64 = value(&lines, "seconds").parse().unwrap();

    // Up to ROUNDS kills, until both outcomes were seen a few times.
    const ROUNDS: u32 = 60;
    // The previous round's (retries before, answered) and what each round found.
    let mut previous: Option<(u32, bool)> = None;
    let (mut answered, mut spent_unanswered, mut unspent) = (0, 0, 0);
    let mut check = |previous: Option<(u32, bool)>, found: u32, delay: f64| -> (u32, u32) {
        let Some((before, was_answered)) = previous else {
            return (answered, spent_unanswered);
        };
        if was_answered {
            assert_eq!(
                found,
                before - 1,
                "PIN_INVALID was answered but no retry was spent"
            );
            answered += 1;
        } else {
            assert!(
                found == before || found == before - 1,
                "{before} retries before the kill, {found} after"
            );
            if found < before {
                spent_unanswered += 1;
            } else {
                unspent += 1;
            }
        }
        println!("kill after {delay:.6}s: {before} -> {found} retries, answered: {was_answered}");
        (answered, spent_unanswered)
    };
    let mut last_delay = 0.0;
    for round in 0..ROUNDS {
        // Spread over the second half of the usual answer time and a little past it (the key
        // agreement before comes first), in a scattered order.
        let delay = took * (0.4 + f64::from((round * 7) % 24) / 24.0);
        let lines = script(
            &daemon,
            &[
                "round".into(),
                daemon.pid().to_string(),
                format!("{delay:.6}"),
            ],
        );
        daemon.kill();
        after_kill();
        daemon = Daemon::builder().state_dir(&dir).args(args).start();
        let found: u32 = value(&lines, "found").parse().unwrap();
        let (answered, spent) = check(previous, found, last_delay);
        if round >= 12 && answered >= 2 && spent >= 3 {
            previous = None;
            break;
        }
        let before: u32 = value(&lines, "before").parse().unwrap();
        let was_answered = lines
            .iter()
            .any(|(k, v)| k == "answered" && v == &PIN_INVALID.to_string());
        assert!(
            !lines
                .iter()
                .any(|(k, v)| k == "answered" && v != &PIN_INVALID.to_string()),
            "a wrong PIN was answered otherwise: {lines:?}"
        );
        previous = Some((before, was_answered));
        last_delay = delay;
    }
    let lines = script(&daemon, &["retries".into()]);
    check(
        previous,
        value(&lines, "found").parse().unwrap(),
        last_delay,
    );
    daemon.stop();
    println!("{answered} answered, {spent_unanswered} killed after the retry was spent, {unspent} before");
    assert!(
        spent_unanswered > 0,
        "no kill landed between the spent retry and the answer; the test proved nothing"
    );
}
