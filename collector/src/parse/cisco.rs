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
    if !matches!(s.first(), Some(b'0'..=b'9' | b':')) {
        return None;
    }
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

/// An uptime stamp and `: ` at the start of `s` (`service timestamps log uptime`):
/// `00:01:23`, `00:01:23.456`, `1w2d`, `2d03h`, `3y12w`. The stamp and what follows.
pub fn uptime(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = s
        .iter()
        .take(24)
        .take_while(|b| {
            b.is_ascii_digit() || matches!(b, b':' | b'.' | b'y' | b'w' | b'd' | b'h' | b'm')
        })
        .count();
    // `n` stops at the space; the colon before it ends the stamp.
    let stamp = s.get(..n)?.strip_suffix(b":")?;
    if s.get(n) != Some(&b' ') || stamp.is_empty() || !stamp[0].is_ascii_digit() {
        return None;
    }
    let clock = stamp.len() >= 8
        && stamp[2] == b':'
        && stamp[5] == b':'
        && stamp[..8]
            .iter()
            .enumerate()
            .all(|(i, b)| i % 3 == 2 || b.is_ascii_digit())
        && (stamp.len() == 8
            || (stamp[8] == b'.' && stamp[9..].iter().all(u8::is_ascii_digit) && stamp.len() > 9));
    let units = stamp
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'y' | b'w' | b'd' | b'h' | b'm'))
        && stamp.last().is_some_and(|b| !b.is_ascii_digit());
    (clock || units).then(|| (stamp, &s[n + 1..]))
}

/// `host: %FAC-SEV-MNEMONIC…` or `host : %…` (IOS `logging origin-id`, ASA `logging
/// device-id`): the host and the rest, starting at the `%`.
pub fn host_before_mnemonic(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = s
        .iter()
        .take(256)
        .take_while(|&&b| b != b' ' && b != b':')
        .count();
    if n == 0 {
        return None;
    }
    let after = match &s[n..] {
        [b':', b' ', a @ ..] | [b' ', b':', b' ', a @ ..] => a,
        _ => return None,
    };
    let end = after.iter().take(80).position(|&b| b == b':')?;
    mnemonic_severity(&after[..end])?;
    Some((&s[..n], after))
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
    fn uptimes() {
        assert_eq!(
            uptime(b"00:01:23: %X"),
            Some((&b"00:01:23"[..], &b"%X"[..]))
        );
        assert_eq!(
            uptime(b"00:01:23.456: x"),
            Some((&b"00:01:23.456"[..], &b"x"[..]))
        );
        assert_eq!(uptime(b"1w2d: x"), Some((&b"1w2d"[..], &b"x"[..])));
        assert_eq!(uptime(b"2d03h: x"), Some((&b"2d03h"[..], &b"x"[..])));
        assert_eq!(uptime(b"12: x"), None);
        assert_eq!(uptime(b"00:01: x"), None);
        assert_eq!(uptime(b"00:01:23.: x"), None);
        assert_eq!(uptime(b"w2d: x"), None);
        assert_eq!(uptime(b"1w2d:x"), None);
        assert_eq!(uptime(b""), None);
    }

    #[test]
    fn hosts_before_mnemonics() {
        assert_eq!(
            host_before_mnemonic(b"rtr1: %SYS-5-CONFIG_I: x"),
            Some((&b"rtr1"[..], &b"%SYS-5-CONFIG_I: x"[..]))
        );
        assert_eq!(
            host_before_mnemonic(b"asa01 : %ASA-6-302013: x"),
            Some((&b"asa01"[..], &b"%ASA-6-302013: x"[..]))
        );
        assert_eq!(host_before_mnemonic(b"sshd: hello: x"), None);
        assert_eq!(host_before_mnemonic(b"rtr1: %not a mnemonic: x"), None);
        assert_eq!(host_before_mnemonic(b": %SYS-5-X: x"), None);
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
