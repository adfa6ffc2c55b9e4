//! `fido2d-man DIR`: writes fido2d.8, fido2ctl.1 and fido2d.conf.5 (roff) into DIR.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: fido2d-man DIR (writes fido2d.8, fido2ctl.1 and fido2d.conf.5 there)");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let pages = match fido2d_man::pages() {
        Ok(pages) => pages,
        Err(err) => {
            eprintln!("fido2d-man: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("fido2d-man: {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    for page in pages {
        let path = dir.join(page.file_name());
        if let Err(err) = std::fs::write(&path, &page.roff) {
            eprintln!("fido2d-man: {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}
