//! Which lines are errors: error severity from the source, or error words in the text (for
//! sources that state no severity, such as plain log files). Used for error storms and to
//! gate new templates: a new template is worth a notification only when it reads as an
//! error.

/// Words (lower case, whole tokens or token prefixes) that mark a line as an error in
/// logs of very different systems. Prefixes catch inflections: `fail` → failed, failure.
const ERROR_PREFIXES: [&[u8]; 14] = [
    b"error",
    b"fail",
    b"fatal",
    b"panic",
    b"exception",
    b"critical",
    b"abort",
    b"segfault",
    b"corrupt",
    b"refused",
    b"denied",
    b"unreachable",
    b"timeout",
    b"oom",
];

/// Whole words only: too short or too common to match as prefixes.
const ERROR_WORDS: [&[u8]; 4] = [b"err", b"crit", b"emerg", b"killed"];

/// Priority 0 (emergency) … 3 (error) is an error; 4 (warning) and above is not.
pub fn is_error_priority(priority: Option<i8>) -> bool {
    matches!(priority, Some(p) if (0..=3).contains(&p))
}

/// Whether `text` holds an error word. Tokens are runs of ASCII letters, compared without
/// case, so `ERROR:`, `[error]`, `Failed` and `OutOfMemoryError`'s `Error`… match at a
/// word start only (`terror` does not).
pub fn has_error_word(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        // A camel-case boundary starts a new word: `OutOfMemoryError` → …, `Error`.
        while i < text.len()
            && text[i].is_ascii_alphabetic()
            && !(i > start && text[i].is_ascii_uppercase() && text[i - 1].is_ascii_lowercase())
        {
            i += 1;
        }
        if word_is_error(&text[start..i]) {
            return true;
        }
    }
    false
}

fn word_is_error(word: &[u8]) -> bool {
    let eq = |w: &[u8]| w.len() <= word.len() && word[..w.len()].eq_ignore_ascii_case(w);
    ERROR_PREFIXES.iter().any(|p| eq(p))
        || ERROR_WORDS
            .iter()
            .any(|w| w.len() == word.len() && word.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_words_at_word_starts_only() {
        for yes in [
            "ERROR: disk",
            "[error] mod_jk child",
            "Connection refused",
            "authentication failure; logname=",
            "java.lang.OutOfMemoryError: heap",
            "Failed password for root",
            "kernel panic - not syncing",
            "session timeout after 30s",
            "<crit> sensor",
        ] {
            assert!(has_error_word(yes.as_bytes()), "{yes}");
        }
        for no in [
            "terror alert",
            "user logged in",
            "PacketResponder 1 terminating",
            "errand done",
            "criteria met",
            "",
        ] {
            assert!(!has_error_word(no.as_bytes()), "{no}");
        }
        assert!(is_error_priority(Some(3)) && !is_error_priority(Some(4)));
        assert!(!is_error_priority(None));
    }
}
