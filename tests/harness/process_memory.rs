//! Reads a live process's memory (as root, through `/proc/PID/mem`), to show that a secret it
//! handled is gone from it: the typed password after built-in UV, say.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

/// Where `needle` occurs in the readable memory of process `pid`: one line a hit, naming the
/// mapping (`[heap]`, `[stack]`, a file, or anonymous) and the address. Mappings that cannot
/// be read (guard pages, `[vvar]`) are skipped.
pub fn occurrences(pid: u32, needle: &[u8]) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/maps: {e}"));
    let mem = File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|e| panic!("open /proc/{pid}/mem (needs root): {e}"));
    let mut hits = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("anonymous");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut region = vec![0u8; (end - start) as usize];
        if mem.read_exact_at(&mut region, start).is_err() {
            continue;
        }
        for (at, _) in region
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
        {
            // What surrounds it tells whose copy it is (a JSON line, a C string, ...).
            let around = &region[at.saturating_sub(48)..(at + needle.len() + 48).min(region.len())];
            let shown: String = around
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            hits.push(format!("{name} at {:#x}: {shown}", start + at as u64));
        }
    }
    hits
}
