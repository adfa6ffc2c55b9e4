//! Reading a PIN: from the terminal without echo, or one line of stdin when it is not a
//! terminal (scripts and tests pipe it in).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use zeroize::Zeroizing;

use crate::exit::Failure;

pub fn read(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        set_echo(false);
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    match read {
        Ok(0) => Err(Failure::failed("no PIN given (end of input)")),
        Ok(_) => {
            let pin = line.trim_end_matches(['\r', '\n']).to_owned();
            Ok(Zeroizing::new(pin))
        }
        Err(err) => Err(Failure::failed(format!("cannot read the PIN: {err}"))),
    }
}

/// Reads a new PIN twice; they must match.
pub fn read_new(what: &str) -> Result<Zeroizing<String>, Failure> {
    let first = read(&format!("{what}: "))?;
    let second = read(&format!("{what} again: "))?;
    if first != second {
        return Err(Failure::failed("the two PINs differ"));
    }
    Ok(first)
}

/// Turns the terminal's echo off while a secret is typed, and on again; nothing when stdin is
/// not a terminal.
pub fn set_echo(on: bool) {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return;
    }
    if let Ok(mut modes) = tcgetattr(&stdin) {
        modes.local_modes.set(LocalModes::ECHO, on);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &modes);
    }
}
