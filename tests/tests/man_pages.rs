//! The man pages (man/, the `fido2d-man` generator that dist/build-deb runs): each one renders
//! with `man -l` without a groff warning, and names every option of its program (for fido2ctl,
//! every subcommand and each one's options and arguments) and every setting of the
//! configuration file. Needs man-db (.ci/deps installs it).

use fido2d_tests::tiers::{skip, Tier};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use clap::{Arg, Command as ClapCommand};
use fido2d_man::{fido2ctl_command, fido2d_command, setting_names, Page};

/// The page as `man -l` shows it on a wide terminal, as plain text; fails on a groff warning.
fn render(dir: &Path, page: &Page) -> String {
    let path = dir.join(page.file_name());
    std::fs::write(&path, &page.roff).unwrap();
    let output = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&path)
        // Wide enough that no option name is hyphenated at a line's end.
        .env("MANWIDTH", "250")
        .env("MAN_KEEP_FORMATTING", "0")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .output()
        .unwrap_or_else(|e| panic!("cannot run man (apt-get install man-db; .ci/deps does): {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "man -l {}: {}\n{stderr}",
        page.file_name(),
        output.status
    );
    plain(&String::from_utf8_lossy(&output.stdout))
}

/// Without overstrike (bold `X\bX`, underline `_\bX`), with ASCII hyphens, and with one space
/// where the justified text has several.
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(match c {
            '\u{2010}' | '\u{2212}' => '-',
            c => c,
        });
    }
    let text: String = out.into_iter().collect();
    text.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let words: Vec<&str> = line.split_whitespace().collect();
            format!("{}{}", &line[..indent], words.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a reader looks for to find an argument: `--long`, `-s`, or a positional's value name.
fn names(arg: &Arg) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if arg.is_positional() {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        names.push(value);
    }
    names
}

/// What the page must say, section by section: `(heading, what)`. For each visible argument
/// of `command`: its names, its help text, each value it accepts (with the value's help); under
/// OPTIONS for the program itself, under `fido2ctl pin set` (a subsection) for a subcommand,
/// whose global options (and -h) are the program's. Then the same for every subcommand, depth
/// first.
fn expected(command: &ClapCommand, heading: &str, out: &mut Vec<(String, String)>) {
    let subcommand = heading != "OPTIONS";
    let args = command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| !subcommand || !(a.is_global_set() || a.get_id() == "help"));
    for arg in args {
        let mut what = names(arg);
        let help = arg.get_long_help().or_else(|| arg.get_help());
        what.extend(help.map(|h| flat(&h.to_string())));
        for value in arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
        {
            what.push(value.get_name().to_owned());
            what.extend(value.get_help().map(|h| flat(&h.to_string())));
        }
        out.extend(what.into_iter().map(|w| (heading.to_owned(), w)));
    }
    let path = if subcommand {
        heading
    } else {
        command.get_name()
    };
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let path = format!("{path} {}", sub.get_name());
        if let Some(about) = sub.get_about() {
            out.push((path.clone(), flat(&about.to_string())));
        }
        expected(sub, &path, out);
    }
}

/// The page's words on one line: what a search across the page's line breaks finds.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page's sections and subsections (man indents a heading by 0 or 3 spaces, text by 7 or
/// more): heading -> its text, flat.
fn sections(text: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut heading = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && indent <= 3 {
            heading = line.trim().to_owned();
        } else {
            let body: &mut String = sections.entry(heading.clone()).or_default();
            body.push(' ');
            body.push_str(line.trim());
        }
    }
    sections.into_iter().map(|(h, b)| (h, flat(&b))).collect()
}

/// What `expected` lists and the page lacks, as "what (under heading)".
fn missing(text: &str, expected: &[(String, String)]) -> Vec<String> {
    let sections = sections(text);
    expected
        .iter()
        .filter(|(heading, what)| {
            !sections
                .get(heading)
                .is_some_and(|body| body.contains(what.as_str()))
        })
        .map(|(heading, what)| format!("{what:?} (under {heading})"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn pages() -> Vec<Page> {
    fido2d_man::pages().unwrap_or_else(|e| panic!("fido2d-man: {e}"))
}

fn page<'a>(pages: &'a [Page], file_name: &str) -> &'a Page {
    pages
        .iter()
        .find(|p| p.file_name() == file_name)
        .unwrap_or_else(|| panic!("no page {file_name}"))
}

#[test]
fn the_generator_writes_the_three_pages() {
    if skip(Tier::Unit) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = pages().iter().map(Page::file_name).collect();
    assert_eq!(names, ["fido2d.8", "fido2ctl.1", "fido2d.conf.5"]);
    for page in pages() {
        let text = render(dir.path(), &page);
        let title = format!("{}({})", page.name, page.section);
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.to_lowercase().contains(&title)),
            "{}: the header does not name {title}:\n{text}",
            page.file_name()
        );
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
            assert!(
                text.lines().any(|l| l == heading),
                "{}: no {heading} section:\n{text}",
                page.file_name()
            );
        }
    }
}

#[test]
fn fido2d_8_names_every_option() {
    if skip(Tier::Unit) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = render(dir.path(), page(&pages(), "fido2d.8"));
    let mut want = Vec::new();
    expected(&fido2d_command(), "OPTIONS", &mut want);
    assert!(want.len() > 20, "{want:?}");

    let missing = missing(&text, &want);

    assert!(missing.is_empty(), "fido2d(8) lacks {missing:?}:\n{text}");
}

#[test]
fn fido2ctl_1_names_every_subcommand_and_its_options() {
    if skip(Tier::Unit) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = render(dir.path(), page(&pages(), "fido2ctl.1"));
    let mut want = Vec::new();
    expected(&fido2ctl_command(), "OPTIONS", &mut want);
    for heading in [
        "OPTIONS",
        "fido2ctl pin set",
        "fido2ctl config min-pin-length",
    ] {
        assert!(want.iter().any(|(h, _)| h == heading), "{want:?}");
    }

    let missing = missing(&text, &want);

    assert!(missing.is_empty(), "fido2ctl(1) lacks {missing:?}:\n{text}");
}

#[test]
fn fido2d_conf_5_names_every_setting_with_its_shipped_line() {
    if skip(Tier::Unit) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = render(dir.path(), page(&pages(), "fido2d.conf.5"));
    let settings = setting_names();
    assert!(settings.len() > 15, "{settings:?}");
    let shipped = std::fs::read_to_string(fido2d_tests::workspace_root().join("dist/config.toml"))
        .expect("dist/config.toml");

    for setting in &settings {
        // The line dist/config.toml shows (`# state-dir = "/var/lib/fido2d"`), as a heading.
        let line = shipped
            .lines()
            .find_map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| l.starts_with(&format!("{setting} = ")))
            })
            .unwrap_or_else(|| panic!("dist/config.toml does not show {setting}"));
        assert!(
            text.lines().any(|l| l.trim() == line),
            "fido2d.conf(5) has no line {line:?}:\n{text}"
        );
        assert!(
            flat(&text).contains(&format!("Option: --{setting}.")),
            "fido2d.conf(5) does not point {setting} to its option"
        );
    }
    for not_a_setting in ["config =", "check-config =", "hybrid ="] {
        assert!(
            !text.lines().any(|l| l.trim().starts_with(not_a_setting)),
            "{not_a_setting} is not a setting"
        );
    }
}
