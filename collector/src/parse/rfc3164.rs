//! RFC 3164 ("BSD syslog") and the variants real senders write:
//! `[<PRI>][SEQ: ][*]TIMESTAMP[:] [HOSTNAME] [TAG[[PID]]:] MSG`.
//!
//! The header is read field by field, each recognised or left out; a line is never
//! rejected because one field is missing. What is accepted, beyond the RFC's letter:
//!
//! - Spaces after the `<PRI>`.
//! - Cisco's sequence number and clock markers before the stamp ([`super::cisco`]).
//! - Timestamp: `Mmm dd hh:mm:ss` with the day space-padded (`Nov  7`) or not (`Nov 7`),
//!   month names in any case, an optional fraction (`10:30:45.123` or `,123`), an optional
//!   year after the day (`Nov 22 2026 10:30:45`) or after the time (`Nov 22 10:30:45
//!   2026`), or first (`2026 Nov 22 10:30:45`, NX-OS), an optional zone after the time
//!   (an abbreviation such as `UTC`, `EDT`, `CEST`, or `+0100`), and an optional colon
//!   after it all; or an RFC 3339 stamp (rsyslog's high-precision format), whose own zone
//!   wins over the context's. Year-less stamps get the year that puts them no more than a
//!   day after the reference (the receive time or file mtime). A stamp whose fields are
//!   out of range (Feb 30) is left out and flagged; the rest of the header still parses.
//! - No timestamp at all, when the line has a `<PRI>` (`<15> openvpn[2499]: …`, Cisco
//!   ASA's `<166>%ASA-6-302013: …`): then there is no hostname either, and the first word
//!   is the TAG if it ends like one. A line with neither PRI nor timestamp is not syslog
//!   and stays unparsed.
//! - Relays: `Message forwarded from HOST: ` (AIX) before the TAG names the host.
//! - Runs of spaces between header fields; ` : ` after the hostname (Cisco ASA).
//! - TAG: whatever precedes the first `:` + space (or end of line), or the first `[`, as
//!   long as it is at most [`MAX_TAG`] bytes without control characters. It may contain
//!   spaces in three shapes seen in the wild: a version after the name
//!   (`syslogd 1.4.1: restart.`, sysklogd; the version has a dot), a punctuation-only
//!   first word (`-- root[2421]: ROOT LOGIN ON tty2`, util-linux login), and an
//!   application name with spaces when a `[PID]` ends it (`Google Chrome Helper[123]:`,
//!   macOS). Anything else with a space before the colon is message text, not a tag: the
//!   line then has no tag, and all after the hostname is the message (so `host tag text`
//!   is a host and a message, as rsyslog reads it).
//! - `[PID]`: the tag keeps the name, `proc_id` is the number when it is one; `:` after
//!   `]` is optional, and so is macOS's ` <Notice>:` level after it.
//! - No HOSTNAME: local clients writing to /dev/log send `<13>Nov 22 09:40:45 tag: msg`.
//!   When the first word after the timestamp already ends a tag (`tag:`, `tag[pid]:`,
//!   each followed by a space or the end), it is the tag and the line has no hostname. A
//!   hostname never ends in `:` (an IPv6 literal's last group is not empty), so this only
//!   misreads a hostname-only line of the form `Nov 22 09:40:45 host: text`.
//! - A relay's header before a device's own (`Sep  6 09:13:00 rtr 82: Sep  6
//!   14:12:56.872: %SYS-…`): the first stamp is the event time, the second is kept in
//!   `origin_time`.
//! - A message that is a structured payload ([`super::payload`]); a header-less
//!   key=value line (FortiGate) takes its host and time from its `devname`, `date`,
//!   `time` and `tz` fields.

use super::payload::{self, Payload, numeric_offset};
use super::rfc5424::{StampError, parse_rfc3339};
use super::{
    ParseContext, Pri, Record, cisco, days_in_month, fraction_nanos, parse_i32, parse_pri,
    two_digits, unix_ns, unparsed_syslog,
};
use crate::time::{SECS_PER_DAY, civil_from_days, days_from_civil};

/// Longest TAG looked for. RFC 3164 allows 32 characters; journald identifiers, container
/// names and Java class names are longer, and the scan stops at the first space anyway.
pub const MAX_TAG: usize = 256;
/// Longest text between `[` and `]` taken as a PID field.
const MAX_PID_FIELD: usize = 20;
/// References further than this from 1970 (about 35,000 years) are clamped, so that year
/// arithmetic on a nonsense context cannot overflow.
const MAX_REFERENCE_SECS: i64 = 1 << 40;
/// How AIX relays name the original sender.
const FORWARDED_FROM: &[u8] = b"Message forwarded from ";

pub fn parse<'a>(line: &'a [u8], ctx: &ParseContext) -> Record<'a> {
    let (pri, body) = match parse_pri(line) {
        Some((pri, rest)) => (Some(pri), skip_spaces(rest)),
        None => (None, line),
    };
    let mut rec = Record {
        pri,
        ..Record::default()
    };
    let mut rest = body;
    let mut had_seq = false;
    if let Some((seq, after)) = cisco::sequence(rest) {
        had_seq = true;
        rec.sequence = (!seq.is_empty()).then_some(seq);
        rest = after;
    }
    let mut stamp = Stamp::at(cisco::strip_clock_marker(rest), ctx);
    if stamp.is_none() && (had_seq || pri.is_some()) {
        // IOS `logging origin-id`: `29: host: *Apr 29 …`, `<189>host: *Apr 29 …`.
        if let Some((host, after)) = word_colon(rest)
            && let Some(s) = Stamp::at(cisco::strip_clock_marker(after), ctx)
        {
            rec.hostname = Some(host);
            rest = after;
            stamp = Some(s);
        }
    }
    if stamp.is_none() && (had_seq || pri.is_some()) {
        // IOS `service timestamps log uptime`: `29: 1w2d: %LINK-…`; not a wall-clock time.
        if let Some((uptime, after)) = cisco::uptime(cisco::strip_clock_marker(rest)) {
            rec.origin_time = Some(uptime);
            rest = after;
            had_seq = true;
        }
    }
    if stamp.is_none()
        && rec.hostname.is_none()
        && let Some((host, after)) = cisco::host_before_mnemonic(rest)
    {
        // `<189>rtr1: %SYS-5-…`, ASA `<166>asa01 : %ASA-…`.
        rec.hostname = Some(host);
        rest = after;
        had_seq = true;
    }
    let had_stamp = stamp.is_some();
    if let Some(st) = stamp {
        let s = cisco::strip_clock_marker(rest);
        match st.ns {
            Ok(ns) => rec.timestamp_ns = Some(ns),
            Err(why) => {
                rec.error = Some(why);
                rec.raw = Some(line);
            }
        }
        rest = &s[st.len..];
        rest = rest.strip_prefix(b":").unwrap_or(rest);
        if !matches!(rest.first(), None | Some(b' ')) {
            return unparsed_syslog(line, "rfc3164: no space after the timestamp");
        }
        rest = skip_spaces(rest);
    } else if pri.is_none() {
        // Neither PRI nor timestamp: not syslog.
        return unparsed_syslog(line, "rfc3164: no timestamp");
    }

    if let Some((host, after)) = forwarded_from(rest) {
        rec.hostname = Some(host);
        rest = after;
    }
    let tag = if rec.hostname.is_some() || !had_stamp {
        split_tag(rest, true)
    } else {
        // A strict tag needs a colon or a bracket in its first word; without one (nearly
        // every line: `host tag[pid]: …`) the word is the host, found in one pass.
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let first_may_be_tag = rest[..end].iter().any(|&b| b == b':' || b == b'[');
        first_may_be_tag
            .then(|| split_tag(rest, true))
            .flatten()
            .map(|tag| {
                // `Nov 22 2026 10:00:00 asa01: %ASA-…`: what looked like a tag is a
                // hostname before a mnemonic. Checked only for tag-first lines, which
                // keeps it off the common path.
                if tag.pid.is_none()
                    && tag.message.first() == Some(&b'%')
                    && let Some((host, after)) = cisco::host_before_mnemonic(rest)
                {
                    rec.hostname = Some(host);
                    split_tag(after, true).unwrap_or(tag)
                } else {
                    tag
                }
            })
            .or_else(|| {
                rec.hostname = (end > 0).then(|| &rest[..end]);
                let mut after = skip_spaces(&rest[end..]);
                // Cisco ASA: `host : %ASA-…`.
                if let Some(a) = after.strip_prefix(b": ") {
                    after = skip_spaces(a);
                }
                // A device's own sequence number and stamp after a relay's header.
                if let Some((seq, a)) = cisco::sequence(after) {
                    rec.sequence = (!seq.is_empty()).then_some(seq);
                    after = a;
                    let marked = cisco::strip_clock_marker(after);
                    if let Some(st) = Stamp::at(marked, ctx) {
                        rec.origin_time = Some(&marked[..st.len]);
                        let a = &marked[st.len..];
                        let a = a.strip_prefix(b":").unwrap_or(a);
                        after = skip_spaces(a);
                    }
                }
                // F5 BIG-IP: `host info tmm[123]: …`, a level word before the tag.
                if let Some((level, a)) = level_word(after)
                    && let Some(tag) = split_tag(a, true)
                {
                    rec.pri = rec.pri.or(Some(Pri::level_only(level)));
                    return Some(tag);
                }
                split_tag(after, false).or(Some(Tag {
                    name: None,
                    pid: None,
                    message: after,
                }))
            })
    };
    match tag {
        Some(tag) => {
            rec.app_name = tag.name;
            rec.proc_id = tag.pid;
            rec.message = tag.message;
        }
        None => rec.message = rest,
    }
    if rec.pri.is_none()
        && let Some(level) = rec.app_name.and_then(cisco::mnemonic_severity)
    {
        rec.pri = Some(Pri::level_only(level));
    }
    if !had_stamp && rec.hostname.is_none() && rec.app_name.is_none() {
        match payload::detect(rec.message) {
            Payload::KeyValue(kv) => {
                let (host, ns) = payload::kv_header(kv, ctx);
                rec.hostname = host;
                rec.timestamp_ns = ns;
            }
            // Nothing of a header: a PRI before free text.
            Payload::None if !had_seq => return unparsed_syslog(line, "rfc3164: no timestamp"),
            _ => {}
        }
    }
    rec
}

#[inline]
fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

/// `word: ` at the start of `s` (a word without spaces or colons): the word and the rest.
fn word_colon(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = s
        .iter()
        .take(MAX_TAG)
        .take_while(|&&b| b != b' ' && b != b':')
        .count();
    match s.get(n..n + 2) {
        Some(b": ") if n > 0 => Some((&s[..n], &s[n + 2..])),
        _ => None,
    }
}

/// AIX's `Message forwarded from HOST: `: the host and the rest.
fn forwarded_from(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = s.strip_prefix(FORWARDED_FROM)?;
    let (host, after) = word_colon(rest)?;
    Some((host, skip_spaces(after)))
}

struct Tag<'a> {
    name: Option<&'a [u8]>,
    pid: Option<i32>,
    message: &'a [u8],
}

/// The TAG at the start of `s` (see the module docs), with the message after it; `None`
/// when `s` does not start with one. `strict` is the hostname-less test: one word, and a
/// `[pid]` must be followed by `:`.
/// The bytes [`split_tag`] stops at: `:`, `[`, space and control characters.
static TAG_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[0x7f] = true;
    t[b':' as usize] = true;
    t[b'[' as usize] = true;
    t[b' ' as usize] = true;
    t
};

fn split_tag(s: &[u8], strict: bool) -> Option<Tag<'_>> {
    // `[12.345]`, `[1]:`: a bracket opens a PID or a kernel time, never a name.
    if s.first() == Some(&b'[') {
        return None;
    }
    let limit = s.len().min(MAX_TAG + 1);
    let mut spaced = false;
    let mut i = 0;
    while i < limit {
        // Jump to the next byte that can end or break a tag: most of a tag is letters.
        i += s[i..limit].iter().position(|&b| TAG_STOP[b as usize])?;
        match s[i] {
            b':' if i > 0 => match s.get(i + 1) {
                None | Some(b' ') => {
                    return Some(Tag {
                        name: Some(&s[..i]),
                        pid: None,
                        message: &s[(i + 2).min(s.len())..],
                    });
                }
                // `host:port`, `a:b:c`: a colon inside a word does not end the tag.
                Some(_) => {}
            },
            b'[' if i > 0 => return bracketed_pid(s, i, strict),
            b' ' => {
                if strict || spaced || i == 0 {
                    return None;
                }
                if is_version(&s[i + 1..]) || s[..i].iter().all(u8::is_ascii_punctuation) {
                    spaced = true;
                } else {
                    return spaced_name(s);
                }
            }
            0..=0x1f | 0x7f => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// A syslog severity name and a space at the start of `s`: its level and the rest.
fn level_word(s: &[u8]) -> Option<(u8, &[u8])> {
    if !matches!(
        s.first(),
        Some(b'a' | b'c' | b'd' | b'e' | b'i' | b'n' | b'w')
    ) {
        return None;
    }
    let sp = s.iter().take(8).position(|&b| b == b' ')?;
    let level = match &s[..sp] {
        b"emerg" => 0,
        b"alert" => 1,
        b"crit" => 2,
        b"err" | b"error" => 3,
        b"warning" | b"warn" => 4,
        b"notice" => 5,
        b"info" => 6,
        b"debug" => 7,
        _ => return None,
    };
    Some((level, &s[sp + 1..]))
}

/// A version number (`1.4.1`) ending in `:` starts `s`.
fn is_version(s: &[u8]) -> bool {
    let n = s
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    n > 0 && s[0].is_ascii_digit() && s[..n].contains(&b'.') && s.get(n) == Some(&b':')
}

/// macOS application names with spaces, recognised only when a `[PID]` ends them and
/// every word after the first starts like a name (capital, digit or `(`):
/// `Google Chrome Helper (Renderer)[123]: …`, but not `web-03 nginx[55]: …` (a relayed
/// host and a tag, left as message text).
fn spaced_name(s: &[u8]) -> Option<Tag<'_>> {
    if !s.first()?.is_ascii_alphanumeric() {
        return None;
    }
    for (i, &b) in s.iter().enumerate().take(MAX_TAG + 1) {
        match b {
            b' ' if !matches!(s.get(i + 1), Some(b'A'..=b'Z' | b'0'..=b'9' | b'(')) => {
                return None;
            }
            b'[' => {
                let tag = bracketed_pid(s, i, true)?;
                return tag.pid.is_some().then_some(tag);
            }
            b':' | b'=' | b'"' | 0..=0x1f | 0x7f => return None,
            _ => {}
        }
    }
    None
}

/// `name[pid]` followed by `:` (then an optional space), by macOS's ` <Level>:`, or by a
/// space or the end when not `strict`; `open` is the offset of `[`.
#[inline]
fn bracketed_pid(s: &[u8], open: usize, strict: bool) -> Option<Tag<'_>> {
    let close = open
        + 1
        + s[open + 1..]
            .iter()
            .take(MAX_PID_FIELD + 1)
            .position(|&b| b == b']')?;
    let after = &s[close + 1..];
    let message = match after {
        [b':', b' ', m @ ..] | [b':', m @ ..] => m,
        [b' ', b'<', ..] if asl_level(&after[1..]).is_some() => asl_level(&after[1..])?,
        [b' ', m @ ..] if !strict => m,
        [] if !strict => after,
        _ => return None,
    };
    Some(Tag {
        name: Some(&s[..open]),
        pid: parse_i32(&s[open + 1..close]),
        message,
    })
}

/// macOS `<Notice>: ` after the PID: the message after it.
fn asl_level(s: &[u8]) -> Option<&[u8]> {
    let body = s.strip_prefix(b"<")?;
    let n = body
        .iter()
        .take(12)
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let rest = body.get(n..)?.strip_prefix(b">:")?;
    (n > 0).then(|| rest.strip_prefix(b" ").unwrap_or(rest))
}

/// A timestamp recognised at the start of a header: its length, and its time, or why the
/// time is unusable (a field out of range) though its shape is clear.
struct Stamp {
    ns: Result<i64, &'static str>,
    len: usize,
}

impl Stamp {
    /// The stamp at the start of `s`, if one starts there; `None` also when its shape is
    /// broken (then where it ends is unknown).
    fn at(s: &[u8], ctx: &ParseContext) -> Option<Stamp> {
        match s.first()? {
            b'0'..=b'9' => match parse_rfc3339(s) {
                Ok((stamp, len)) => Some(Stamp {
                    ns: stamp
                        .to_unix_ns(ctx.utc_offset_secs)
                        .ok_or("rfc3164: timestamp out of range"),
                    len,
                }),
                Err(StampError::OutOfRange) => {
                    // Still an RFC 3339 shape; find its end to skip it.
                    let len = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
                    Some(Stamp {
                        ns: Err("rfc3164: timestamp out of range"),
                        len,
                    })
                }
                Err(StampError::Malformed) if s.get(4) == Some(&b':') => colon_date_stamp(s, ctx),
                // NX-OS: `2026 Apr 29 13:58:40`.
                Err(StampError::Malformed) => bsd_stamp(s, ctx, true),
            },
            _ => bsd_stamp(s, ctx, false),
        }
    }
}

/// Sophos UTM's `2026:11:22-10:00:00`, in the context's zone.
fn colon_date_stamp(s: &[u8], ctx: &ParseContext) -> Option<Stamp> {
    let head = s.get(..19)?;
    if head[7] != b':' || head[10] != b'-' || !ends_word(s, 19) {
        return None;
    }
    let mut buf = [0u8; 19];
    buf.copy_from_slice(head);
    (buf[4], buf[7], buf[10]) = (b'-', b'-', b'T');
    let ns = match parse_rfc3339(&buf) {
        Ok((stamp, 19)) => stamp
            .to_unix_ns(ctx.utc_offset_secs)
            .ok_or("rfc3164: timestamp out of range"),
        Err(StampError::OutOfRange) => Err("rfc3164: timestamp out of range"),
        _ => return None,
    };
    Some(Stamp { ns, len: 19 })
}

/// `[yyyy ]Mmm dd [yyyy ]hh:mm:ss[.frac][ ZONE][ yyyy]`.
fn bsd_stamp(s: &[u8], ctx: &ParseContext, year_first: bool) -> Option<Stamp> {
    let mut i = 0;
    let mut year = None;
    if year_first {
        year = Some(four_digit_year(s)?);
        if s.get(4) != Some(&b' ') {
            return None;
        }
        i = 5;
    }
    let month = match s.get(i..i + 4)? {
        [a, b, c, b' '] => month_number(*a, *b, *c)?,
        _ => return None,
    };
    i += 4;
    // The day, space-padded or not, and the space after it.
    let day = match s.get(i..i + 3) {
        Some(&[b' ', d @ b'1'..=b'9', b' ']) => {
            i += 3;
            (d - b'0') as u32
        }
        Some(&[d @ b'1'..=b'9', b' ', _]) => {
            i += 2;
            (d - b'0') as u32
        }
        Some(&[_, _, b' ']) => {
            let d = two_digits(s, i)?;
            i += 3;
            d
        }
        _ => return None,
    };
    if year.is_none()
        && s.get(i + 4) == Some(&b' ')
        && let Some(y) = four_digit_year(&s[i..])
    {
        year = Some(y);
        i += 5;
    }
    let (hour, minute, second) = match s.get(i + 2..i + 6) {
        Some(&[b':', _, _, b':']) => (
            two_digits(s, i)?,
            two_digits(s, i + 3)?,
            two_digits(s, i + 6)?,
        ),
        _ => return None,
    };
    i += 8;

    let mut nanos = 0u32;
    if matches!(s.get(i), Some(b'.' | b',')) && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        (nanos, i) = fraction_nanos(s, i + 1);
    }
    let mut offset = None;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        // Glued to the time: `10:00:00+08:00` (Huawei).
        let (off, len) = zone(&s[i..])?;
        offset = Some(off);
        i += len;
    } else if s.get(i) == Some(&b' ')
        && let Some((off, len)) = zone(&s[i + 1..])
    {
        offset = Some(off);
        i += 1 + len;
    }
    // Not before a colon: `2001:db8::1` is a hostname.
    if year.is_none()
        && s.get(i) == Some(&b' ')
        && matches!(s.get(i + 5), None | Some(b' '))
        && let Some(y) = four_digit_year(&s[i + 1..])
    {
        year = Some(y);
        i += 5;
    }

    let ns = (|| {
        if hour > 23 || minute > 59 || second > 60 || day == 0 || day > 31 {
            return Err("rfc3164: timestamp out of range");
        }
        let sec_of_day = (hour * 3600 + minute * 60 + second) as i64;
        let offset = offset.unwrap_or(ctx.utc_offset_secs) as i64;
        let utc_secs = match year {
            Some(year) => {
                if day > days_in_month(year, month) {
                    return Err("rfc3164: no such day in that month");
                }
                days_from_civil(year, month, day) * SECS_PER_DAY + sec_of_day - offset
            }
            None => infer_year(month, day, sec_of_day, offset, ctx)?,
        };
        unix_ns(utc_secs, nanos).ok_or("rfc3164: timestamp out of range")
    })();
    Some(Stamp { ns, len: i })
}

/// Whether a word ends at `i` (a space, a colon or the end of `s`).
fn ends_word(s: &[u8], i: usize) -> bool {
    matches!(s.get(i), None | Some(b' ' | b':'))
}

/// A plausible year (1970–2099) in four digits at the start of `s`.
fn four_digit_year(s: &[u8]) -> Option<i64> {
    let y = (two_digits(s, 0)? * 100 + two_digits(s, 2)?) as i64;
    (1970..=2099).contains(&y).then_some(y)
}

/// A time zone after a stamp: an abbreviation ([`zone_abbreviation`]) or a numeric offset
/// (`+0100`, `-05:00`, `+01`), ending a word. Seconds east of UTC and the length.
fn zone(s: &[u8]) -> Option<(i32, usize)> {
    if matches!(s.first(), Some(b'+' | b'-')) {
        return [6, 5, 3].into_iter().find_map(|len| {
            let o = numeric_offset(s.get(..len)?)?;
            ends_word(s, len).then_some((o, len))
        });
    }
    let n = s
        .iter()
        .take(5)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    if n == 0 || !ends_word(s, n) {
        return None;
    }
    zone_abbreviation(&s[..n]).map(|o| (o, n))
}

/// Offsets of the zone abbreviations network devices and `date` print. Ambiguous ones
/// (IST, CST as China) take their most common reading in syslog: US for CST.
fn zone_abbreviation(w: &[u8]) -> Option<i32> {
    const H: i32 = 3600;
    Some(match w {
        b"UTC" | b"GMT" | b"UT" | b"Z" | b"WET" => 0,
        b"BST" | b"CET" | b"MET" | b"WEST" => H,
        b"IST" => 5 * H + 1800,
        b"CEST" | b"MEST" | b"EET" | b"SAST" => 2 * H,
        b"EEST" | b"MSK" => 3 * H,
        b"SGT" | b"HKT" | b"AWST" => 8 * H,
        b"JST" | b"KST" => 9 * H,
        b"ACST" => 9 * H + 1800,
        b"AEST" => 10 * H,
        b"AEDT" => 11 * H,
        b"NZST" => 12 * H,
        b"NZDT" => 13 * H,
        b"AST" => -4 * H,
        b"EDT" => -4 * H,
        b"EST" | b"CDT" => -5 * H,
        b"CST" | b"MDT" => -6 * H,
        b"MST" | b"PDT" => -7 * H,
        b"PST" | b"AKDT" => -8 * H,
        b"AKST" => -9 * H,
        b"HST" => -10 * H,
        _ => return None,
    })
}

/// UTC seconds of a yearless date in the zone `offset`: the latest year that puts it no
/// more than a day after the reference. That is the reference's (local) year; the year
/// before when this would be too late (a file running from December into January, read in
/// January); the year after for a Jan 1 stamp received late on Dec 31 (a sender's clock a
/// little ahead). A day that does not exist in a year (Feb 29) rules that year out.
fn infer_year(
    month: u32,
    day: u32,
    sec_of_day: i64,
    offset: i64,
    ctx: &ParseContext,
) -> Result<i64, &'static str> {
    let reference = ctx
        .reference_unix_secs
        .clamp(-MAX_REFERENCE_SECS, MAX_REFERENCE_SECS);
    let ref_year = year_of_day((reference + offset).div_euclid(SECS_PER_DAY));
    // Next year's date can be at most a day (and a zone) ahead of the reference only in
    // January; the other months start with this year.
    let first = if month == 1 { ref_year + 1 } else { ref_year };
    for year in [first, ref_year, ref_year - 1] {
        if day > days_in_month(year, month) {
            continue;
        }
        let utc = days_from_civil(year, month, day) * SECS_PER_DAY + sec_of_day - offset;
        if utc <= reference + SECS_PER_DAY {
            return Ok(utc);
        }
    }
    Err("rfc3164: no such day in that month")
}

thread_local! {
    /// The last (day, year) asked of [`year_of_day`]: the lines of one file or chunk share
    /// their reference day, and its civil date costs as much as the rest of the year
    /// inference.
    static REFERENCE_YEAR: std::cell::Cell<(i64, i64)> =
        const { std::cell::Cell::new((i64::MIN, 0)) };
}

/// The year of day `days` since the epoch.
fn year_of_day(days: i64) -> i64 {
    REFERENCE_YEAR.with(|last| {
        let (day, year) = last.get();
        if day == days {
            return year;
        }
        let year = civil_from_days(days).0;
        last.set((days, year));
        year
    })
}

/// 1–12 for an English month abbreviation in any case.
#[inline]
fn month_number(a: u8, b: u8, c: u8) -> Option<u32> {
    // OR-ing 0x20 lowercases ASCII letters, and maps no other byte onto a lowercase letter.
    let key = u32::from_be_bytes([0, a | 0x20, b | 0x20, c | 0x20]);
    let m = |s: &[u8; 3]| u32::from_be_bytes([0, s[0], s[1], s[2]]);
    Some(match key {
        k if k == m(b"jan") => 1,
        k if k == m(b"feb") => 2,
        k if k == m(b"mar") => 3,
        k if k == m(b"apr") => 4,
        k if k == m(b"may") => 5,
        k if k == m(b"jun") => 6,
        k if k == m(b"jul") => 7,
        k if k == m(b"aug") => 8,
        k if k == m(b"sep") => 9,
        k if k == m(b"oct") => 10,
        k if k == m(b"nov") => 11,
        k if k == m(b"dec") => 12,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Pri;

    /// 2026-11-22 10:00:00 UTC.
    const REF: i64 = 1_795_341_600;
    const CTX: ParseContext = ParseContext {
        reference_unix_secs: REF,
        utc_offset_secs: 0,
        boot_unix_ns: None,
    };

    fn ns(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        ((days_from_civil(y, mo, d) * 86_400) + h * 3600 + mi * 60 + s) * 1_000_000_000
    }

    fn at(reference: i64, offset: i32) -> ParseContext {
        ParseContext {
            reference_unix_secs: reference,
            utc_offset_secs: offset,
            boot_unix_ns: None,
        }
    }

    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn reference_is_what_it_says() {
        assert_eq!(REF * 1_000_000_000, ns(2026, 11, 22, 10, 0, 0));
    }

    #[test]
    fn classic_line() {
        let r = parse(
            b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed",
            &CTX,
        );
        assert_eq!(r.error, None);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 4,
                level: 2
            })
        );
        assert_eq!(r.timestamp_ns, Some(ns(2026, 10, 11, 22, 14, 15)));
        assert_eq!(s(r.hostname), Some("mymachine"));
        assert_eq!(s(r.app_name), Some("su"));
        assert_eq!(r.proc_id, Some(123));
        assert_eq!(r.message, b"'su root' failed");
        assert_eq!((r.msgid, r.structured_data), (None, &b""[..]));
    }

    #[test]
    fn day_padding_and_case() {
        let want = Some(ns(2026, 11, 7, 9, 5, 1));
        for line in [
            &b"Nov  7 09:05:01 h t: m"[..],
            b"Nov 7 09:05:01 h t: m",
            b"Nov 07 09:05:01 h t: m",
            b"NOV  7 09:05:01 h t: m",
            b"nov  7 09:05:01 h t: m",
        ] {
            let r = parse(line, &CTX);
            assert_eq!(
                (r.timestamp_ns, r.error),
                (want, None),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!((s(r.hostname), s(r.app_name)), (Some("h"), Some("t")));
        }
        for bad in [
            &b"Nox  7 09:05:01 h t: m"[..],
            b"Nov  0 09:05:01 h t: m",
            b"Nov 7  09:05:01 h t: m",
            b"Nov 1x 09:05:01 h t: m",
            b"Nov  7 9:05:01 h t: m",
            b"Nov  7 09:05 h t: m",
            b"Nov  7 09-05-01 h t: m",
            b"N\xffv  7 09:05:01 h t: m",
            b"Nov",
            b"Nov ",
            b"Nov  7",
            b"Nov  7 09:05:0",
            b"",
        ] {
            let r = parse(bad, &CTX);
            assert_eq!(
                r.error,
                Some("rfc3164: no timestamp"),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(r.message, bad);
        }
    }

    #[test]
    fn out_of_range_fields() {
        for (line, why) in [
            (
                &b"Nov 32 09:05:01 h t: m"[..],
                "rfc3164: timestamp out of range",
            ),
            (b"Nov 00 09:05:01 h t: m", "rfc3164: timestamp out of range"),
            (b"Nov 22 24:00:00 h t: m", "rfc3164: timestamp out of range"),
            (b"Nov 22 23:60:00 h t: m", "rfc3164: timestamp out of range"),
            (b"Nov 22 23:00:61 h t: m", "rfc3164: timestamp out of range"),
            (
                b"Feb 30 00:00:00 h t: m",
                "rfc3164: no such day in that month",
            ),
            (
                b"Apr 31 00:00:00 h t: m",
                "rfc3164: no such day in that month",
            ),
            (
                b"Nov 22 09:05:01host t: m",
                "rfc3164: no space after the timestamp",
            ),
        ] {
            let r = parse(line, &CTX);
            assert_eq!(r.error, Some(why), "{}", String::from_utf8_lossy(line));
            if why == "rfc3164: no space after the timestamp" {
                assert_eq!(r.message, line);
            } else {
                // The stamp's shape is clear: it is left out, the rest of the header kept,
                // and the raw line too.
                assert_eq!(r.timestamp_ns, None);
                assert_eq!((s(r.hostname), s(r.app_name)), (Some("h"), Some("t")));
                assert_eq!((r.message, r.raw), (&b"m"[..], Some(line)));
            }
        }
        // A leap second is kept, as the first second of the next minute.
        let r = parse(b"Jun 30 23:59:60 h t: m", &CTX);
        assert_eq!(r.timestamp_ns, Some(ns(2026, 7, 1, 0, 0, 0)));
    }

    #[test]
    fn fraction_and_explicit_year() {
        let r = parse(b"Nov 22 09:05:01.123 h t: m", &CTX);
        assert_eq!(
            r.timestamp_ns,
            Some(ns(2026, 11, 22, 9, 5, 1) + 123_000_000)
        );
        let r = parse(b"Nov 22 09:05:01.1234567891 h t: m", &CTX);
        assert_eq!(
            r.timestamp_ns,
            Some(ns(2026, 11, 22, 9, 5, 1) + 123_456_789)
        );
        // A dot not followed by digits is not a fraction.
        let r = parse(b"Nov 22 09:05:01. h t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: no space after the timestamp"));
        // The stated year wins over inference, even when in the future.
        let r = parse(b"Dec 31 2030 23:59:59 h t: m", &CTX);
        assert_eq!(r.timestamp_ns, Some(ns(2030, 12, 31, 23, 59, 59)));
        assert_eq!(s(r.hostname), Some("h"));
        let r = parse(b"Feb 29 2023 00:00:00 h t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: no such day in that month"));
        let r = parse(b"Feb 29 2024 00:00:00 h t: m", &CTX);
        assert_eq!(r.timestamp_ns, Some(ns(2024, 2, 29, 0, 0, 0)));
        // A year after the time (1970–2099), before the hostname.
        let r = parse(b"Apr 15 21:28:13 2007 h t: m", &CTX);
        assert_eq!(r.timestamp_ns, Some(ns(2007, 4, 15, 21, 28, 13)));
        assert_eq!((s(r.hostname), s(r.app_name)), (Some("h"), Some("t")));
        let r = parse(b"Nov 22 09:05:01 2026 t: m", &CTX);
        assert_eq!((s(r.hostname), s(r.app_name)), (None, Some("t")));
        // Other four-digit words are hostnames.
        let r = parse(b"Nov 22 09:05:01 1234 t: m", &CTX);
        assert_eq!((s(r.hostname), s(r.app_name)), (Some("1234"), Some("t")));
        let r = parse(b"Nov 22 09:05:01 2001:db8::1 t: m", &CTX);
        assert_eq!(s(r.hostname), Some("2001:db8::1"));
    }

    #[test]
    fn rfc3339_timestamps() {
        let r = parse(
            b"2026-11-22T10:30:45.123456+01:00 host sshd[42]: Accepted key",
            &CTX,
        );
        assert_eq!(r.error, None);
        assert_eq!(
            r.timestamp_ns,
            Some(ns(2026, 11, 22, 9, 30, 45) + 123_456_000)
        );
        assert_eq!(
            (s(r.hostname), s(r.app_name), r.proc_id),
            (Some("host"), Some("sshd"), Some(42))
        );
        assert_eq!(r.message, b"Accepted key");
        // Its own zone wins; without one the context's applies.
        let east = at(REF, 3600);
        let r = parse(b"<13>2026-11-22T10:30:45Z host t: m", &east);
        assert_eq!(r.timestamp_ns, Some(ns(2026, 11, 22, 10, 30, 45)));
        let r = parse(b"<13>2026-11-22T10:30:45 host t: m", &east);
        assert_eq!(r.timestamp_ns, Some(ns(2026, 11, 22, 9, 30, 45)));
        let r = parse(b"2026-11-22T10:30:45+01:00 t: m", &CTX);
        assert_eq!((r.hostname, s(r.app_name)), (None, Some("t")));
        let r = parse(b"2026-11-31T10:30:45Z host t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: timestamp out of range"));
        let r = parse(b"2026-11-2210:30:45Z host t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: no timestamp"));
        let r = parse(b"2026-11-22T10:30:45Zhost t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: no space after the timestamp"));
        // Years an i64 of ns cannot hold.
        let r = parse(b"2300-01-01T00:00:00Z host t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: timestamp out of range"));
    }

    #[test]
    fn year_inference() {
        // A file from December read in January: December is last year.
        let jan2 = ns(2027, 1, 2, 12, 0, 0) / 1_000_000_000;
        let c = at(jan2, 0);
        assert_eq!(
            parse(b"Dec 31 23:59:59 h t: m", &c).timestamp_ns,
            Some(ns(2026, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            parse(b"Jan  1 00:00:01 h t: m", &c).timestamp_ns,
            Some(ns(2027, 1, 1, 0, 0, 1))
        );
        // Up to a day in the future is clock skew, not last year.
        assert_eq!(
            parse(b"Jan  3 11:59:59 h t: m", &c).timestamp_ns,
            Some(ns(2027, 1, 3, 11, 59, 59))
        );
        assert_eq!(
            parse(b"Jan  3 12:00:00 h t: m", &c).timestamp_ns,
            Some(ns(2027, 1, 3, 12, 0, 0))
        );
        assert_eq!(
            parse(b"Jan  3 12:00:01 h t: m", &c).timestamp_ns,
            Some(ns(2026, 1, 3, 12, 0, 1))
        );
        // Received on Dec 31 just before midnight UTC, a Jan 1 stamp a few minutes ahead
        // is this coming year.
        let c = at(ns(2026, 12, 31, 23, 58, 0) / 1_000_000_000, 0);
        assert_eq!(
            parse(b"Jan  1 00:01:00 h t: m", &c).timestamp_ns,
            Some(ns(2027, 1, 1, 0, 1, 0))
        );
    }

    #[test]
    fn year_inference_uses_local_year_and_offset() {
        // 2026-12-31 23:30 UTC is already 2027-01-01 00:30 in UTC+1.
        let c = at(ns(2026, 12, 31, 23, 30, 0) / 1_000_000_000, 3600);
        let r = parse(b"Jan  1 00:20:00 h t: m", &c);
        assert_eq!(r.timestamp_ns, Some(ns(2026, 12, 31, 23, 20, 0)));
        let r = parse(b"Dec 31 23:50:00 h t: m", &c);
        assert_eq!(r.timestamp_ns, Some(ns(2026, 12, 31, 22, 50, 0)));
        // UTC-8: local is behind, so UTC is later.
        let c = at(REF, -8 * 3600);
        let r = parse(b"Nov 22 01:00:00 h t: m", &c);
        assert_eq!(r.timestamp_ns, Some(ns(2026, 11, 22, 9, 0, 0)));
    }

    #[test]
    fn leap_day() {
        // In a leap year it is just a day.
        let c = at(ns(2028, 3, 1, 0, 0, 0) / 1_000_000_000, 0);
        assert_eq!(
            parse(b"Feb 29 12:00:00 h t: m", &c).timestamp_ns,
            Some(ns(2028, 2, 29, 12, 0, 0))
        );
        // The year after a leap year: last year had it.
        let c = at(ns(2029, 1, 15, 0, 0, 0) / 1_000_000_000, 0);
        assert_eq!(
            parse(b"Feb 29 12:00:00 h t: m", &c).timestamp_ns,
            Some(ns(2028, 2, 29, 12, 0, 0))
        );
        // Neither this year nor the last: an error, never a panic or a Mar 1.
        let r = parse(b"<13>Feb 29 12:00:00 h t: m", &CTX);
        assert_eq!(r.error, Some("rfc3164: no such day in that month"));
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 1,
                level: 5
            })
        );
        // The rest of the header is kept, and the line whole in `raw`.
        assert_eq!(
            (r.timestamp_ns, s(r.hostname), r.message),
            (None, Some("h"), &b"m"[..])
        );
        assert_eq!(r.raw, Some(&b"<13>Feb 29 12:00:00 h t: m"[..]));
        // In a leap year, before Feb 29 comes: last year's had none.
        let c = at(ns(2028, 1, 15, 0, 0, 0) / 1_000_000_000, 0);
        assert!(parse(b"Feb 29 12:00:00 h t: m", &c).error.is_some());
    }

    #[test]
    fn nonsense_context_does_not_overflow() {
        for reference in [i64::MIN, i64::MAX, 0, -1] {
            for offset in [i32::MIN, i32::MAX, 0] {
                let c = at(reference, offset);
                let _ = parse(b"Dec 31 23:59:59 h t: m", &c);
                let _ = parse(b"Feb 29 00:00:00 h t: m", &c);
                let _ = parse(b"2026-11-22T10:30:45 h t: m", &c);
            }
        }
    }

    #[test]
    fn tags() {
        /// After the timestamp; expected hostname, tag, PID, message.
        type Case<'a> = (
            &'a [u8],
            Option<&'a str>,
            Option<&'a str>,
            Option<i32>,
            &'a [u8],
        );
        let cases: &[Case] = &[
            (b"h sshd[1]: m", Some("h"), Some("sshd"), Some(1), b"m"),
            (b"h sshd[1]:m", Some("h"), Some("sshd"), Some(1), b"m"),
            (b"h sshd[1] m", Some("h"), Some("sshd"), Some(1), b"m"),
            (b"h sshd[1]", Some("h"), Some("sshd"), Some(1), b""),
            (b"h sshd[1]:", Some("h"), Some("sshd"), Some(1), b""),
            (b"h sshd:", Some("h"), Some("sshd"), None, b""),
            (b"h sshd: ", Some("h"), Some("sshd"), None, b""),
            (b"h sshd:  two", Some("h"), Some("sshd"), None, b" two"),
            (b"h sshd[abc]: m", Some("h"), Some("sshd"), None, b"m"),
            (b"h sshd[]: m", Some("h"), Some("sshd"), None, b"m"),
            (
                b"h sshd[99999999999]: m",
                Some("h"),
                Some("sshd"),
                None,
                b"m",
            ),
            (
                b"h sshd(pam_unix)[19939]: m",
                Some("h"),
                Some("sshd(pam_unix)"),
                Some(19939),
                b"m",
            ),
            (
                b"h postfix/smtpd[7]: m",
                Some("h"),
                Some("postfix/smtpd"),
                Some(7),
                b"m",
            ),
            (
                b"h syslogd 1.4.1: restart.",
                Some("h"),
                Some("syslogd 1.4.1"),
                None,
                b"restart.",
            ),
            (
                b"h  -- root[2421]: ROOT",
                Some("h"),
                Some("-- root"),
                Some(2421),
                b"ROOT",
            ),
            (b"h a:b: m", Some("h"), Some("a:b"), None, b"m"),
            // No tag: the message is everything after the hostname.
            (b"h no tag here", Some("h"), None, None, b"no tag here"),
            (
                b"h Error two: text",
                Some("h"),
                None,
                None,
                b"Error two: text",
            ),
            (
                b"h two words: text",
                Some("h"),
                None,
                None,
                b"two words: text",
            ),
            (b"h a 1 b: text", Some("h"), None, None, b"a 1 b: text"),
            (b"h http://x y", Some("h"), None, None, b"http://x y"),
            (b"h [1]: m", Some("h"), None, None, b"[1]: m"),
            (b"h :m", Some("h"), None, None, b":m"),
            (b"h tab\t: m", Some("h"), None, None, b"tab\t: m"),
            (b"h sshd[1]x", Some("h"), None, None, b"sshd[1]x"),
            (b"h", Some("h"), None, None, b""),
            (b"h ", Some("h"), None, None, b""),
            (b"", None, None, None, b""),
            // No hostname: the first word is already a tag.
            (
                b"loggertest: hello",
                None,
                Some("loggertest"),
                None,
                b"hello",
            ),
            (b"root[77]: hello", None, Some("root"), Some(77), b"hello"),
            (b"root[77]:", None, Some("root"), Some(77), b""),
            // ...but a `[pid]` without its colon is a hostname-like word.
            (b"root[77] hello", Some("root[77]"), None, None, b"hello"),
            (
                b"fe80::1 sshd[1]: m",
                Some("fe80::1"),
                Some("sshd"),
                Some(1),
                b"m",
            ),
        ];
        for &(rest, host, app, pid, msg) in cases {
            let mut line = b"<13>Nov 22 09:05:01 ".to_vec();
            line.extend_from_slice(rest);
            let r = parse(&line, &CTX);
            let what = String::from_utf8_lossy(rest);
            assert_eq!(r.error, None, "{what}");
            assert_eq!(
                (s(r.hostname), s(r.app_name), r.proc_id),
                (host, app, pid),
                "{what}"
            );
            assert_eq!(r.message, msg, "{what}");
        }
        // The longest tag is MAX_TAG bytes; longer names are message text.
        let name = "x".repeat(MAX_TAG);
        let app = |rest: String| {
            let line = format!("Nov 22 09:05:01 h {rest}");
            parse(line.as_bytes(), &CTX).app_name.map(|a| a.to_vec())
        };
        assert_eq!(
            app(format!("{name}[1]: m")),
            Some(name.clone().into_bytes())
        );
        assert_eq!(app(format!("{name}: m")), Some(name.clone().into_bytes()));
        assert_eq!(app(format!("{name}x: m")), None);
        assert_eq!(app(format!("{name}x[1]: m")), None);
    }

    #[test]
    fn pri_handling() {
        let r = parse(b"<0>Nov 22 09:05:01 h t: m", &CTX);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 0,
                level: 0
            })
        );
        let r = parse(b"<191>Nov 22 09:05:01 h t: m", &CTX);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 23,
                level: 7
            })
        );
        let r = parse(b"Nov 22 09:05:01 h t: m", &CTX);
        assert_eq!((r.pri, r.error), (None, None));
        // An invalid PRI is not skipped: the line then has no timestamp where expected.
        for line in [
            &b"<999>Nov 22 09:05:01 h t: m"[..],
            b"<192>Nov",
            b"<01>Nov",
            b"<>x",
            b"<13",
        ] {
            let r = parse(line, &CTX);
            assert_eq!((r.pri, r.error), (None, Some("rfc3164: no timestamp")));
            assert_eq!(r.message, line);
        }
        // No timestamp: the PRI is kept and the message is all after it.
        let r = parse(b"<13>hello world", &CTX);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 1,
                level: 5
            })
        );
        assert_eq!(
            (r.error, r.message),
            (Some("rfc3164: no timestamp"), &b"hello world"[..])
        );
        let r = parse(b"<13>", &CTX);
        assert_eq!((r.pri.is_some(), r.message), (true, &b""[..]));
    }

    #[test]
    fn odd_bytes() {
        let r = parse(b"Nov 22 09:05:01 h\0st t\xff[1]: m\0\xfe", &CTX);
        assert_eq!(r.error, None);
        assert_eq!(r.hostname, Some(&b"h\0st"[..]));
        assert_eq!(r.app_name, Some(&b"t\xff"[..]));
        assert_eq!(r.message, b"m\0\xfe");
        let r = parse(b"\0\0\0", &CTX);
        assert_eq!(r.error, Some("rfc3164: no timestamp"));
        // A NUL in the tag position ends any tag.
        let r = parse(b"Nov 22 09:05:01 h t\0: m", &CTX);
        assert_eq!((r.app_name, r.message), (None, &b"t\0: m"[..]));
    }

    /// Splits one CSV record (RFC 4180 quoting, no embedded newlines in this file).
    fn csv_fields(line: &str) -> Vec<String> {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                (true, '"') => quoted = false,
                (false, '"') if cur.is_empty() => quoted = true,
                (false, ',') => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        fields
    }

    #[test]
    fn csv_helper_quotes() {
        assert_eq!(
            csv_fields(r#"a,"b,c","d""e",,f"#),
            ["a", "b,c", "d\"e", "", "f"]
        );
    }

    #[test]
    fn loghub_linux_2k_matches_structured_csv() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/loghub-2k/Linux"
        );
        let log = std::fs::read(format!("{dir}/Linux_2k.log"))
            .unwrap_or_else(|e| panic!("{dir}/Linux_2k.log (the shared loghub data): {e}"));
        let csv = std::fs::read_to_string(format!("{dir}/Linux_2k.log_structured.csv")).unwrap();
        let mut rows = csv.lines();
        let header = csv_fields(rows.next().unwrap());
        assert_eq!(
            &header[..8],
            [
                "LineId",
                "Month",
                "Date",
                "Time",
                "Level",
                "Component",
                "PID",
                "Content"
            ]
        );

        // The file covers Jun–Jul of one year; read in August of 2005.
        let ctx = at(ns(2005, 8, 1, 0, 0, 0) / 1_000_000_000, 0);
        let lines: Vec<&[u8]> = log
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 2000);
        let mut n = 0;
        for (line, row) in lines.iter().zip(rows) {
            let f = csv_fields(row);
            let r = parse(line, &ctx);
            let what = String::from_utf8_lossy(line);
            assert_eq!(r.error, None, "{what}");
            assert_eq!(s(r.hostname), Some(f[4].as_str()), "{what}");
            assert_eq!(s(r.app_name), Some(f[5].as_str()), "{what}");
            assert_eq!(r.proc_id, f[6].parse().ok(), "{what}");
            assert_eq!(f[6].is_empty(), r.proc_id.is_none(), "{what}");
            let msg = std::str::from_utf8(r.message).unwrap();
            assert_eq!(msg.trim(), f[7].trim(), "{what}");

            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ]
            .iter()
            .position(|m| *m == f[1])
            .unwrap() as u32
                + 1;
            let hms: Vec<i64> = f[3].split(':').map(|x| x.parse().unwrap()).collect();
            let want = ns(2005, month, f[2].parse().unwrap(), hms[0], hms[1], hms[2]);
            assert_eq!(r.timestamp_ns, Some(want), "{what}");
            n += 1;
        }
        assert_eq!(n, 2000);
    }
}
