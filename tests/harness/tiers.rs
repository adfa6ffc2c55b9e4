//! The test tiers a developer can pick: `FIDO2D_TEST_TIERS=udp,python cargo test -p
//! fido2d-tests` runs the tests of those tiers, and every other test of this crate prints one
//! `SKIPPED` line and returns. Unset, every tier runs (the README's test command); in CI
//! (`CI=true`) the variable is refused, so CI can never skip a tier. tests/README.md lists the
//! tiers, what each one needs and how long it takes.
//!
//! Each test calls [`skip`] with its tier first: `if skip(Tier::Tpm) { return; }`.

use std::io::Write as _;
use std::sync::OnceLock;

/// The variable that selects tiers.
pub const VARIABLE: &str = "FIDO2D_TEST_TIERS";

/// A group of tests with the same needs (tests/README.md says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// No daemon: the dist files, the man pages, the keystore's crash safety.
    Unit,
    /// The real daemon over its UDP transport, file keystore.
    Udp,
    /// Anything against swtpm, the TPM 2.0 simulator.
    Tpm,
    /// The python-fido2 suites (tests/e2e/*.py) against the daemon, file keystore.
    Python,
    /// The hybrid transport with third-party initiators.
    Hybrid,
    /// tests/vm/run.sh: the real kernel in qemu, every group but the browsers.
    Vm,
    /// The VM tier's browser group.
    Browser,
}

impl Tier {
    pub const ALL: [Tier; 7] = [
        Tier::Unit,
        Tier::Udp,
        Tier::Tpm,
        Tier::Python,
        Tier::Hybrid,
        Tier::Vm,
        Tier::Browser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Unit => "unit",
            Tier::Udp => "udp",
            Tier::Tpm => "tpm",
            Tier::Python => "python",
            Tier::Hybrid => "hybrid",
            Tier::Vm => "vm",
            Tier::Browser => "browser",
        }
    }
}

/// The selected tiers, from the variable's value and CI's: `None` for all of them.
fn parse(value: Option<&str>, ci: Option<&str>) -> Result<Option<Vec<Tier>>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    if ci.is_some_and(|ci| !matches!(ci.trim(), "" | "0" | "false")) {
        return Err(format!(
            "{VARIABLE}={value} is refused in CI (CI={}): CI runs every tier; unset it",
            ci.unwrap_or_default()
        ));
    }
    let mut tiers = Vec::new();
    for word in value.split(',').map(str::trim) {
        if word == "all" {
            return Ok(None);
        }
        match Tier::ALL.iter().find(|t| t.name() == word) {
            Some(tier) => tiers.push(*tier),
            None => {
                let names: Vec<&str> = Tier::ALL.iter().map(|t| t.name()).collect();
                return Err(format!(
                    "{VARIABLE}={value}: no tier {word:?} (the tiers: {}, or all)",
                    names.join(",")
                ));
            }
        }
    }
    Ok(Some(tiers))
}

fn selection() -> &'static Result<Option<Vec<Tier>>, String> {
    static SELECTION: OnceLock<Result<Option<Vec<Tier>>, String>> = OnceLock::new();
    SELECTION.get_or_init(|| {
        let value = std::env::var(VARIABLE).ok();
        let ci = std::env::var("CI").ok();
        parse(value.as_deref(), ci.as_deref())
    })
}

/// Whether `tier` runs. Panics (fails the test) for a variable CI may not have, or a tier
/// name that does not exist: a typo must not skip everything.
pub fn selected(tier: Tier) -> bool {
    match selection() {
        Ok(None) => true,
        Ok(Some(tiers)) => tiers.contains(&tier),
        Err(e) => panic!("{e}"),
    }
}

/// True, after printing a `SKIPPED` line, when `tier` is not selected: the test returns.
pub fn skip(tier: Tier) -> bool {
    if selected(tier) {
        return false;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    report_skipped(tier, &test);
    true
}

/// Prints that `what` of `tier` was skipped, past the test harness's output capture (a
/// captured line of a passing test is never shown).
pub fn report_skipped(tier: Tier, what: &str) {
    let value = std::env::var(VARIABLE).unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {what}: tier {} is not in {VARIABLE}={value}",
        tier.name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_runs_everything_and_a_list_picks() {
        assert_eq!(parse(None, None), Ok(None));
        assert_eq!(parse(None, Some("true")), Ok(None));
        assert_eq!(parse(Some("all"), None), Ok(None));
        assert_eq!(
            parse(Some("udp, tpm"), Some("false")),
            Ok(Some(vec![Tier::Udp, Tier::Tpm]))
        );
    }

    #[test]
    fn ci_refuses_the_variable_and_a_wrong_name_is_an_error() {
        assert!(parse(Some("udp"), Some("true"))
            .unwrap_err()
            .contains("refused in CI"));
        assert!(parse(Some("all"), Some("1")).is_err());
        assert!(parse(Some("udp,pyhton"), None)
            .unwrap_err()
            .contains("no tier \"pyhton\""));
        assert!(parse(Some(""), None).is_err());
    }
}
