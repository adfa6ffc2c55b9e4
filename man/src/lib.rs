//! The man pages of fido2d: fido2d(8) and fido2ctl(1) from the programs' clap definitions
//! (rendered with clap_mangen), fido2d.conf(5) from the documented configuration file
//! (dist/config.toml) and the same definitions.
//!
//! `fido2d-man DIR` writes them; dist/build-deb puts them in the package; tests/tests/man_pages.rs
//! renders them with `man -l` and looks for every option, subcommand and setting.

use clap::{Arg, Command, CommandFactory as _};
use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

/// fido2d's command line: the daemon's own file, compiled here on its own.
#[path = "../../daemon/src/cli.rs"]
pub mod fido2d_cli;

/// fido2ctl's command line: the tool's own file, compiled here on its own.
#[path = "../../tools/src/cli.rs"]
pub mod fido2ctl_cli;

/// The shipped configuration file: every setting, documented and commented out.
pub const CONFIG_TOML: &str = include_str!("../../dist/config.toml");
/// Where the package installs it and fido2d reads it.
pub const CONFIG_PATH: &str = "/etc/fido2d/config.toml";

/// The `.TH` line's manual name.
const MANUAL: &str = "fido2d manual";

/// One page: `name.section`, in roff.
pub struct Page {
    pub name: &'static str,
    pub section: &'static str,
    pub roff: String,
}

impl Page {
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, self.section)
    }
}

/// fido2d's clap command, built (help and version flags added).
pub fn fido2d_command() -> Command {
    let mut command = fido2d_cli::Cli::command();
    command.build();
    command
}

/// fido2ctl's clap command, built, without clap's `help` subcommand (the page has no use for it).
pub fn fido2ctl_command() -> Command {
    let mut command = fido2ctl_cli::Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// The settings of the configuration file: fido2d's long options, but those that are not
/// settings (`--config`, `--hybrid`, ...).
pub fn setting_names() -> Vec<String> {
    fido2d_command()
        .get_arguments()
        .filter_map(Arg::get_long)
        .filter(|long| !fido2d_cli::NOT_SETTINGS.contains(long))
        .map(String::from)
        .collect()
}

/// The three pages.
pub fn pages() -> Result<Vec<Page>, String> {
    Ok(vec![fido2d_page()?, fido2ctl_page()?, conf_page()?])
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn man(command: Command, section: &str) -> Man {
    Man::new(command)
        .section(section)
        .source(format!("fido2d {}", version()))
        .manual(MANUAL)
}

/// Roff text without the apostrophe preamble that every `Roff` rendering starts with (the
/// page has it once, at the top), and without a first `.SH` line when `strip_heading`.
fn piece(rendered: &str, strip_heading: bool) -> String {
    let preamble = Roff::new().render();
    let text = rendered.strip_prefix(&preamble).unwrap_or(rendered);
    match text.split_once('\n') {
        Some((first, rest)) if strip_heading && first.starts_with(".SH") => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// One of clap_mangen's sections, as roff (with its `.SH` line unless `strip_heading`).
fn section(
    render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    strip_heading: bool,
) -> Result<String, String> {
    let mut out = Vec::new();
    render(&mut out).map_err(|err| err.to_string())?;
    let text = String::from_utf8(out).map_err(|err| err.to_string())?;
    Ok(piece(&text, strip_heading))
}

/// Pieces of roff into one page, with the preamble once.
fn page(name: &'static str, section: &'static str, pieces: Vec<String>) -> Page {
    let mut roff = Roff::new().render();
    for piece in pieces {
        roff.push_str(&piece);
    }
    Page {
        name,
        section,
        roff,
    }
}

/// The `.TH` line, then `.nh`: no word is hyphenated at a line's end, so that an option's name
/// (`--con-` `trol-socket`) can be searched for and copied.
fn title(man: &Man) -> Result<String, String> {
    Ok(section(|w| man.render_title(w), false)? + ".nh\n")
}

/// Paragraphs: each line of `text` a text line, an empty line a new paragraph.
fn paragraphs(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    for line in text.lines() {
        if line.trim().is_empty() {
            roff.control("PP", []);
        } else {
            roff.text([roman(line.trim())]);
        }
    }
}

fn heading(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

/// `.BR name (section)` references, comma-separated.
fn see_also(roff: &mut Roff, pages: &[(&str, &str)]) {
    heading(roff, "SEE ALSO");
    for (i, (name, section)) in pages.iter().enumerate() {
        let comma = if i + 1 < pages.len() { "," } else { "" };
        roff.text([bold(*name), roman(format!("({section}){comma}"))]);
    }
}

fn fido2d_page() -> Result<Page, String> {
    let command = fido2d_command();
    let man = man(command.clone(), "8");
    let mut pieces = vec![
        title(&man)?,
        section(|w| man.render_name_section(w), false)?,
        section(|w| man.render_synopsis_section(w), false)?,
    ];
    let mut description = Roff::new();
    heading(&mut description, "DESCRIPTION");
    paragraphs(
        &mut description,
        "fido2d is a FIDO2 security key (CTAP 2.1 and CTAP1/U2F) in software. It shows itself to \
         the machine as a USB security key through the kernel's /dev/uhid, so that browsers, \
         libfido2 and OpenSSH use it as they would use a hardware key. Its private keys live \
         in the TPM 2.0 when there is one, or else in an encrypted file in the state directory.\n\
         \n\
         Every request that needs the person's presence needs their touch: the owner's \
         enrolled finger on the fingerprint reader (matched through fprintd), or their answer \
         in the desktop agent, fido2ctl agent (see fido2ctl(1)), or on the terminal \
         (--presence).\n\
         \n\
         It normally runs as the system service fido2d.service.",
    );
    pieces.push(piece(&description.render(), false));
    pieces.push(section(|w| man.render_options_section(w), false)?);

    let mut rest = Roff::new();
    heading(&mut rest, "CONFIGURATION");
    paragraphs(
        &mut rest,
        &command
            .get_after_help()
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    rest.text([
        roman("Every setting is described in "),
        bold("fido2d.conf"),
        roman("(5)."),
    ]);
    heading(&mut rest, "ENVIRONMENT");
    rest.control("TP", []);
    rest.text([bold("FIDO2D_LOG")]);
    rest.text([roman(
        "A log filter (tracing's EnvFilter syntax); it overrides --log-level.",
    )]);
    rest.control("TP", []);
    rest.text([bold("TPM2TOOLS_TCTI"), roman(", "), bold("TCTI")]);
    rest.text([roman("How to reach the TPM when --tcti is not given.")]);
    heading(&mut rest, "FILES");
    for (path, what) in [
        (CONFIG_PATH, "The configuration file."),
        (
            "/var/lib/fido2d",
            "The state directory: credentials, PIN state, the master key.",
        ),
        (
            "/run/fido2d/control.sock",
            "The control socket of the desktop agent and fido2ctl.",
        ),
        (
            "/etc/pam.d/fido2d, /etc/pam.d/fido2d-fingerprint",
            "The PAM services of built-in user verification.",
        ),
    ] {
        rest.control("TP", []);
        rest.text([italic(path)]);
        rest.text([roman(what)]);
    }
    see_also(
        &mut rest,
        &[
            ("fido2ctl", "1"),
            ("fido2d.conf", "5"),
            ("fido2-token", "1"),
        ],
    );
    pieces.push(piece(&rest.render(), false));
    pieces.push(section(|w| man.render_version_section(w), false)?);
    Ok(page("fido2d", "8", pieces))
}

/// `fido2ctl pin set`, ...: every subcommand, depth first, with its synopsis and its own
/// options (the global ones are on the page's OPTIONS).
fn subcommands(out: &mut Vec<String>, parent: &Command, path: &str) -> Result<(), String> {
    for sub in parent.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{path} {}", sub.get_name());
        let own = sub
            .clone()
            .bin_name(&name)
            .disable_help_subcommand(true)
            .mut_args(|arg| {
                if arg.is_global_set() || arg.get_id() == "help" {
                    arg.hide(true)
                } else {
                    arg
                }
            });
        let mut head = Roff::new();
        head.control("SS", [name.as_str()]);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            paragraphs(&mut head, &about.to_string());
        }
        out.push(piece(&head.render(), false));
        let has_options = own
            .get_arguments()
            .any(|arg| !arg.is_hide_set() && !arg.is_global_set() && arg.get_id() != "help");
        let man = Man::new(own);
        let mut synopsis = Roff::new();
        synopsis.control("PP", []);
        out.push(piece(&synopsis.render(), false));
        out.push(section(|w| man.render_synopsis_section(w), true)?);
        if has_options {
            out.push(section(|w| man.render_options_section(w), true)?);
        }
        subcommands(out, sub, &name)?;
    }
    Ok(())
}

fn fido2ctl_page() -> Result<Page, String> {
    let command = fido2ctl_command();
    let man = man(command.clone(), "1");
    let mut pieces = vec![
        title(&man)?,
        section(|w| man.render_name_section(w), false)?,
        section(|w| man.render_synopsis_section(w), false)?,
    ];
    let mut description = Roff::new();
    heading(&mut description, "DESCRIPTION");
    paragraphs(
        &mut description,
        "fido2ctl talks to fido2d's control socket (agent, status, hybrid) and, like any \
         client, to a FIDO2 security key over CTAP (info, pin, credentials, reset, config): \
         fido2d's virtual key, or a hardware key.",
    );
    pieces.push(piece(&description.render(), false));
    pieces.push(section(|w| man.render_options_section(w), false)?);
    let mut commands = Roff::new();
    heading(&mut commands, "COMMANDS");
    pieces.push(piece(&commands.render(), false));
    subcommands(&mut pieces, &command, "fido2ctl")?;

    let mut rest = Roff::new();
    heading(&mut rest, "EXIT STATUS");
    for line in fido2ctl_cli::EXIT_CODES.lines() {
        match line.trim().split_once("  ") {
            Some((code, what)) if code.chars().all(|c| c.is_ascii_digit()) => {
                rest.control("TP", []);
                rest.text([bold(code)]);
                rest.text([roman(what.trim())]);
            }
            _ => {}
        }
    }
    see_also(&mut rest, &[("fido2d", "8"), ("fido2d.conf", "5")]);
    pieces.push(piece(&rest.render(), false));
    pieces.push(section(|w| man.render_version_section(w), false)?);
    Ok(page("fido2ctl", "1", pieces))
}

/// dist/config.toml, read as the page reads it: the first paragraph describes the file; then
/// `# key = value` lines are settings and the other comment lines describe the settings below.
#[derive(Debug, PartialEq)]
pub enum ConfigItem {
    Text(String),
    Setting { key: String, value: String },
}

/// The items of dist/config.toml (its first paragraph is the page's description). A line that
/// looks like a setting but names no option is an error.
pub fn config_items() -> Result<(String, Vec<ConfigItem>), String> {
    let settings = setting_names();
    let (intro, body) = CONFIG_TOML
        .split_once("\n\n")
        .ok_or("dist/config.toml: no first paragraph")?;
    let uncomment = |line: &str| line.strip_prefix('#').map(|l| l.trim().to_owned());
    let intro = intro
        .lines()
        .filter_map(uncomment)
        .collect::<Vec<_>>()
        .join(" ");
    let mut items = Vec::new();
    for line in body.lines() {
        let Some(text) = uncomment(line) else {
            if !line.trim().is_empty() {
                return Err(format!("dist/config.toml: an uncommented line: {line}"));
            }
            items.push(ConfigItem::Text(String::new()));
            continue;
        };
        let setting = text.split_once(" = ").filter(|(key, _)| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        match setting {
            Some((key, value)) => {
                if !settings.iter().any(|s| s == key) {
                    return Err(format!(
                        "dist/config.toml: {key} is not a setting (no fido2d option of that name)"
                    ));
                }
                items.push(ConfigItem::Setting {
                    key: key.to_owned(),
                    value: value.to_owned(),
                });
            }
            None => match items.last_mut() {
                Some(ConfigItem::Text(last)) if !last.is_empty() => {
                    last.push(' ');
                    last.push_str(&text);
                }
                _ => items.push(ConfigItem::Text(text)),
            },
        }
    }
    items.retain(|item| !matches!(item, ConfigItem::Text(t) if t.is_empty()));
    Ok((intro, items))
}

fn conf_page() -> Result<Page, String> {
    let command = fido2d_command();
    let (intro, items) = config_items()?;
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "FIDO2D.CONF",
            "5",
            "",
            &format!("fido2d {}", version()),
            MANUAL,
        ],
    );
    roff.control("nh", []);
    heading(&mut roff, "NAME");
    roff.text([roman("fido2d.conf - the configuration file of fido2d")]);
    heading(&mut roff, "SYNOPSIS");
    roff.text([italic(CONFIG_PATH)]);
    heading(&mut roff, "DESCRIPTION");
    roff.text([roman(intro)]);
    roff.control("PP", []);
    roff.text([
        roman("The file is TOML: one "),
        italic("setting"),
        roman(" = "),
        italic("value"),
        roman(
            " a line; a setting has the long name of a command-line option of fido2d(8) \
             (underscores for hyphens are accepted) and takes the same values. A file \
             given with --config must exist; the default one may not. An unknown setting, a \
             value the option would refuse, or a file that is not TOML stops fido2d with a \
             message naming the file; fido2d --check-config says whether a file is valid.",
        ),
    ]);
    heading(&mut roff, "SETTINGS");
    let mut seen = Vec::new();
    for item in items {
        match item {
            ConfigItem::Text(text) => {
                roff.control("PP", []);
                roff.text([roman(text)]);
            }
            ConfigItem::Setting { key, value } => {
                let arg = command
                    .get_arguments()
                    .find(|arg| arg.get_long() == Some(key.as_str()))
                    .ok_or_else(|| format!("no option --{key}"))?;
                roff.control("TP", []);
                roff.text([bold(key.as_str()), roman(format!(" = {value}"))]);
                let mut body: Vec<Inline> = Vec::new();
                if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
                    // clap drops a help text's last period.
                    let help = help.to_string().replace('\n', " ");
                    let stop = if help.ends_with('.') { "" } else { "." };
                    body.push(roman(format!("{help}{stop} ")));
                }
                let values: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .filter(|v| !v.is_hide_set())
                    .map(|v| format!("\"{}\"", v.get_name()))
                    .collect();
                if !values.is_empty() {
                    body.push(roman(format!("Values: {}. ", values.join(", "))));
                }
                if let Some(default) = arg.get_default_values().first() {
                    body.push(roman(format!("Default: {}. ", default.to_string_lossy())));
                }
                body.push(roman("Option: "));
                body.push(bold(format!("--{key}")));
                body.push(roman("."));
                roff.text(body);
                seen.push(key);
            }
        }
    }
    if let Some(missing) = setting_names().into_iter().find(|s| !seen.contains(s)) {
        return Err(format!(
            "dist/config.toml does not document the setting {missing}"
        ));
    }
    heading(&mut roff, "FILES");
    roff.control("TP", []);
    roff.text([italic(CONFIG_PATH)]);
    roff.text([roman(
        "Installed by the package with every setting commented out, at its default or an example.",
    )]);
    see_also(&mut roff, &[("fido2d", "8"), ("fido2ctl", "1")]);
    Ok(page("fido2d.conf", "5", vec![piece(&roff.render(), false)]))
}
