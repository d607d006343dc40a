//! Text from outside (a token's claims, a request's values) as a description, a log line or a
//! record shows it: without the characters that hide or reorder what a reader sees.

/// Control characters, and the invisible ones that reorder or hide text on a terminal or in a
/// browser: bidirectional marks, overrides and isolates, zero-width characters.
pub fn is_hiding(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// `value` without hiding characters, at most `max` of the rest, `…` when cut.
pub fn shown(value: &str, max: usize) -> String {
    let mut kept = value.chars().filter(|c| !is_hiding(*c));
    let mut out: String = kept.by_ref().take(max).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hiding_characters_are_dropped_and_long_values_cut() {
        assert_eq!(shown("ledger-api\u{202E}txt.exe", 64), "ledger-apitxt.exe");
        assert_eq!(shown("a\u{200B}b\u{1b}[31mc", 64), "ab[31mc");
        assert_eq!(shown(&"x".repeat(70), 64), format!("{}…", "x".repeat(64)));
        assert_eq!(shown(&"x".repeat(64), 64), "x".repeat(64));
    }
}
