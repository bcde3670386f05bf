//! Cisco IOS, NX-OS and ASA: what they put around an otherwise BSD-style header.
//!
//! - A sequence number before the header (`service sequence-numbers`): `29: `; NX-OS sends
//!   an empty one (`: `). It goes to `sequence`.
//! - A clock marker before the stamp: `*` (clock never set) or `.` (NTP sync lost). The
//!   stamp is read all the same, as rsyslog and syslog-ng do.
//! - Stamps with milliseconds, a year (`Apr 29 2026 13:58:40.411`, or first on NX-OS:
//!   `2026 Apr 29 13:58:40`), a zone abbreviation (`UTC`, `EDT`) and a colon after them;
//!   [`super::rfc3164`] reads those.
//! - `%FACILITY-SEVERITY-MNEMONIC:` heads the message. It is the line's TAG (the process,
//!   as rsyslog's and syslog-ng's parsers take it), and its severity is the line's level
//!   when there is no `<PRI>`.

/// Longest sequence number taken (a u32 in decimal).
const MAX_SEQ_DIGITS: usize = 10;

/// A sequence number and `: ` at the start of `s`: the digits (empty for NX-OS's bare
/// `: `) and what follows.
pub fn sequence(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = s
        .iter()
        .take(MAX_SEQ_DIGITS + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n > MAX_SEQ_DIGITS {
        return None;
    }
    match s.get(n..n + 2) {
        Some(b": ") => Some((&s[..n], &s[n + 2..])),
        _ => None,
    }
}

/// `s` without a leading clock marker (`*` or `.` directly before a stamp).
pub fn strip_clock_marker(s: &[u8]) -> &[u8] {
    match s {
        [b'*' | b'.', next, ..] if next.is_ascii_alphanumeric() => &s[1..],
        _ => s,
    }
}

/// The severity (0–7) of a `%FACILITY[-SUBFACILITY]-SEVERITY-MNEMONIC` tag.
pub fn mnemonic_severity(tag: &[u8]) -> Option<u8> {
    let body = tag.strip_prefix(b"%")?;
    let mut parts = body.split(|&b| b == b'-');
    let first = parts.next()?;
    if first.is_empty()
        || !first
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return None;
    }
    // The severity is the single digit before the last part (the mnemonic).
    let mut prev: Option<&[u8]> = None;
    let mut last: Option<&[u8]> = None;
    for p in parts {
        prev = last;
        last = Some(p);
    }
    match (prev?, last?) {
        (&[d @ b'0'..=b'7'], m) if !m.is_empty() => Some(d - b'0'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers() {
        assert_eq!(sequence(b"29: *Apr"), Some((&b"29"[..], &b"*Apr"[..])));
        assert_eq!(sequence(b": 2013 Jul"), Some((&b""[..], &b"2013 Jul"[..])));
        assert_eq!(sequence(b"29:x"), None);
        assert_eq!(sequence(b"29 x"), None);
        assert_eq!(sequence(b"12345678901: x"), None);
        assert_eq!(sequence(b""), None);
        assert_eq!(sequence(b"2026-11-22T10:00:00Z"), None);
    }

    #[test]
    fn clock_markers() {
        assert_eq!(strip_clock_marker(b"*Apr 29"), b"Apr 29");
        assert_eq!(strip_clock_marker(b".Jul 10"), b"Jul 10");
        assert_eq!(strip_clock_marker(b"... x"), b"... x");
        assert_eq!(strip_clock_marker(b"*"), b"*");
    }

    #[test]
    fn mnemonics() {
        assert_eq!(mnemonic_severity(b"%SYS-5-CONFIG_I"), Some(5));
        assert_eq!(mnemonic_severity(b"%ASA-6-302013"), Some(6));
        assert_eq!(mnemonic_severity(b"%ETH_PORT_CHANNEL-5-PORT_UP"), Some(5));
        assert_eq!(mnemonic_severity(b"%SECURITY-SSHD-6-INFO_SUCCESS"), Some(6));
        assert_eq!(mnemonic_severity(b"%SYS-9-X"), None);
        assert_eq!(mnemonic_severity(b"%SYS-5-"), None);
        assert_eq!(mnemonic_severity(b"SYS-5-CONFIG_I"), None);
        assert_eq!(mnemonic_severity(b"%"), None);
        assert_eq!(mnemonic_severity(b"%-5-X"), None);
    }
}
