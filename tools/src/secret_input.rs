//! Reading a PIN: from the terminal without echo, or one line of stdin when it is not a
//! terminal (scripts and tests pipe it in).

use std::io::{IsTerminal as _, Write as _};

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
    let read = read_line();
    if terminal {
        set_echo(true);
        eprintln!();
    }
    match read {
        Ok(None) => Err(Failure::failed("no PIN given (end of input)")),
        Ok(Some(pin)) => Ok(pin),
        Err(err) => Err(Failure::failed(format!("cannot read the PIN: {err}"))),
    }
}

/// One line of stdin without its line ending; `None` at the end of input. Read straight from
/// fd 0, a byte at a time: std's `Stdin` keeps what it reads in a buffer of its own for the
/// life of the process, and the line may be a PIN or a password. Every line fido2ctl reads
/// from stdin comes through here, so none is taken ahead into a buffer and lost.
pub fn read_line() -> std::io::Result<Option<Zeroizing<String>>> {
    let stdin = std::io::stdin();
    let mut line = Zeroizing::new(Vec::with_capacity(256));
    let mut byte = Zeroizing::new([0u8; 1]);
    let ended = loop {
        match rustix::io::read(&stdin, &mut byte[..]) {
            Ok(0) => break true,
            Ok(_) if byte[0] == b'\n' => break false,
            Ok(_) => line.push(byte[0]),
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    };
    if ended && line.is_empty() {
        return Ok(None);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = std::str::from_utf8(&line)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))?;
    Ok(Some(Zeroizing::new(text.to_owned())))
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
