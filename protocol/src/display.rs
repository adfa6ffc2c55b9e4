//! Text a site (or any local program) chose, made safe for a person to read.
//!
//! A relying party picks its `rp.id`, `rp.name`, `user.name` and `user.displayName`; over the
//! uhid and UDP transports any local program can send whatever it likes in them. Before such a
//! text reaches a prompt (a desktop notification, a terminal, a log line) it is cleaned here:
//! - control characters (C0, DEL, C1) are shown escaped (`\u{1b}`), so a terminal agent never
//!   receives an escape sequence (OSC 52 writes the clipboard, others move the cursor or
//!   rewrite what is on screen);
//! - Unicode format characters that change how text is drawn or hide it (bidi embeddings,
//!   overrides and isolates, zero-width characters, the BOM, tag characters) are shown
//!   escaped too, so `moc.elpmaxe\u{202e}` cannot pass for another name;
//! - each field is cut to a fixed number of characters, with an ellipsis, so that no prompt
//!   grows past what a person can read, nor past the control socket's line limit.
//!
//! Each agent then escapes for its medium (notification markup, say); this is the part every
//! medium needs.

/// The longest site (RP ID) a prompt shows, in characters.
pub const MAX_SITE_CHARS: usize = 96;
/// The longest account name a prompt shows, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `c` is shown as an escape rather than as itself.
fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, bidi embeddings, overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}'                // byte order mark
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotations
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

/// `text` with its hidden and control characters escaped, cut to `max_chars` characters
/// (an ellipsis marks a cut).
pub fn clean(text: &str, max_chars: usize) -> String {
    // Each character as it is shown: itself, or its escape (which is never cut in half).
    let units: Vec<String> = text
        .chars()
        .map(|c| match is_hidden_or_control(c) {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect();
    let width = |units: &[String]| units.iter().map(|u| u.chars().count()).sum::<usize>();
    if width(&units) <= max_chars {
        return units.concat();
    }
    // Cut: as many whole units as leave room for the ellipsis.
    let mut kept = 0;
    let mut chars = 0;
    for unit in &units {
        let len = unit.chars().count();
        if chars + len + 1 > max_chars {
            break;
        }
        chars += len;
        kept += 1;
    }
    let mut out = units[..kept].concat();
    out.push('…');
    out
}

/// A site (RP ID) for a prompt.
pub fn site(rp_id: &str) -> String {
    clean(rp_id, MAX_SITE_CHARS)
}

/// An account name for a prompt.
pub fn name(user_name: &str) -> String {
    clean(user_name, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes_unchanged() {
        assert_eq!(clean("login.example.com", 96), "login.example.com");
        assert_eq!(clean("Zoë Ünal 山田", 64), "Zoë Ünal 山田");
    }

    #[test]
    fn terminal_escape_sequences_are_shown_not_sent() {
        // OSC 52: set the terminal's clipboard; then a cursor move and a bell.
        let osc52 = "x\u{1b}]52;c;ZWNobyBoaQ==\u{7}\u{1b}[2J\u{9b}31m";
        let cleaned = clean(osc52, 200);
        assert!(cleaned.chars().all(|c| !c.is_control()), "{cleaned:?}");
        assert_eq!(
            cleaned,
            "x\\u{1b}]52;c;ZWNobyBoaQ==\\u{7}\\u{1b}[2J\\u{9b}31m"
        );
    }

    #[test]
    fn bidi_overrides_and_invisible_characters_are_shown_escaped() {
        for hidden in [
            '\u{202E}',
            '\u{2066}',
            '\u{200B}',
            '\u{FEFF}',
            '\u{E0041}',
            '\n',
        ] {
            let cleaned = clean(&format!("a{hidden}b"), 64);
            assert!(!cleaned.contains(hidden), "{hidden:?}");
            assert!(
                cleaned.starts_with("a\\u{") && cleaned.ends_with("}b"),
                "{cleaned}"
            );
        }
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_and_never_inside_an_escape() {
        let long = "a".repeat(10_000);
        let cleaned = site(&long);
        assert_eq!(cleaned.chars().count(), MAX_SITE_CHARS);
        assert!(cleaned.ends_with('…'));

        let controls = "\u{1}".repeat(3_000);
        let cleaned = name(&controls);
        assert!(cleaned.chars().count() <= MAX_NAME_CHARS);
        let body = cleaned.trim_end_matches('…');
        assert_eq!(
            body.len() % "\\u{1}".len(),
            0,
            "whole escapes only: {cleaned}"
        );
        assert!(cleaned.ends_with('…'));
    }

    #[test]
    fn exactly_the_limit_is_not_cut() {
        assert_eq!(clean("abcd", 4), "abcd");
        assert_eq!(clean("abcde", 4), "abc…");
        // An escape that would end exactly at the limit is dropped whole.
        assert_eq!(clean("ab\u{1}cd", 7), "ab…");
    }
}
