//! Asking for a secret with pinentry (the GnuPG project's password dialog, on every Linux
//! desktop), over its Assuan protocol: SETTITLE / SETDESC / SETPROMPT / GETPIN.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

/// The pinentry program: `FIDO2CTL_PINENTRY`, else `pinentry` (Debian's alternative picks the
/// desktop's flavour).
pub fn program() -> String {
    std::env::var("FIDO2CTL_PINENTRY").unwrap_or_else(|_| "pinentry".to_owned())
}

/// A running dialog, which [`Dialog::close`] can take away.
#[derive(Clone)]
pub struct Dialog(Arc<Mutex<Option<Child>>>);

impl Dialog {
    pub fn close(&self) {
        if let Some(mut child) = self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a dialog ends with: the secret, `None` if the person cancelled, or why it failed.
pub type Answer = Result<Option<Zeroizing<String>>, String>;

/// Starts `program`; returns the dialog and the conversation to run (it blocks: call it on a
/// thread).
pub fn ask(
    program: &str,
    title: &str,
    description: &str,
    prompt: &str,
) -> Result<(Dialog, impl FnOnce() -> Answer), String> {
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start {program} to ask for the password: {err}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let dialog = Dialog(Arc::new(Mutex::new(Some(child))));
    let closer = dialog.clone();
    let (title, description, prompt) =
        (title.to_owned(), description.to_owned(), prompt.to_owned());
    let run = move || {
        let result = converse(stdin, stdout, &title, &description, &prompt);
        closer.close();
        result
    };
    Ok((dialog, run))
}

fn converse(
    mut stdin: ChildStdin,
    stdout: ChildStdout,
    title: &str,
    description: &str,
    prompt: &str,
) -> Answer {
    let mut reader = BufReader::new(stdout);
    let mut read_line = || -> Result<Zeroizing<String>, String> {
        let mut line = Zeroizing::new(String::new());
        match reader.read_line(&mut line) {
            Ok(0) => Err("pinentry closed".to_owned()),
            Ok(_) => Ok(line),
            Err(err) => Err(format!("reading pinentry: {err}")),
        }
    };
    expect_ok(&read_line()?)?;
    for command in [
        format!("SETTITLE {}", escape(title)),
        format!("SETDESC {}", escape(description)),
        format!("SETPROMPT {}", escape(prompt.trim_end())),
    ] {
        writeln!(stdin, "{command}").map_err(|err| format!("writing pinentry: {err}"))?;
        expect_ok(&read_line()?)?;
    }
    writeln!(stdin, "GETPIN").map_err(|err| format!("writing pinentry: {err}"))?;
    let mut secret = Zeroizing::new(String::new());
    loop {
        let line = read_line()?;
        if let Some(data) = line.strip_prefix("D ") {
            secret.push_str(&unescape(data.trim_end_matches(['\r', '\n'])));
        } else if line.starts_with("OK") {
            let _ = writeln!(stdin, "BYE");
            return Ok(Some(secret));
        } else if line.starts_with("ERR") {
            // 83886179: "Operation cancelled": the person closed the dialog.
            let _ = writeln!(stdin, "BYE");
            return Ok(None);
        }
        // Status (S) and comment (#) lines carry nothing for us.
    }
}

fn expect_ok(line: &str) -> Result<(), String> {
    if line.starts_with("OK") {
        Ok(())
    } else {
        Err(format!("pinentry answered {:?}", line.trim_end()))
    }
}

/// Assuan percent-escaping of a command argument.
fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

fn unescape(data: &str) -> Zeroizing<String> {
    let bytes = data.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Zeroizing::new(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assuan_escaping_round_trips() {
        let text = "100% sure\nline two\r";

        assert_eq!(escape(text), "100%25 sure%0Aline two%0D");
        assert_eq!(unescape(&escape(text)).as_str(), text);
        assert_eq!(
            unescape("a%2").as_str(),
            "a%2",
            "a cut escape stays as it is"
        );
    }
}
