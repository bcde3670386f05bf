//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`.
//!
//! Read field by field, and lenient where senders make small mistakes: a field that does
//! not parse is left out and flagged in `error` (the first such problem), the fields
//! before and after it are kept, and `raw` keeps the whole line when bytes were skipped.
//! Field lengths and character sets of HOSTNAME, APP-NAME, PROCID and MSGID are not
//! checked, since a too-long APP-NAME is still the best name we have for the sender.
//! Tolerated, and flagged:
//!
//! - a missing `<PRI>`, or a VERSION other than `1`;
//! - runs of spaces between header fields;
//! - a TIMESTAMP without zone (the context's zone applies), with `+hhmm` for `+hh:mm`, or
//!   with a space for the `T`; one that still does not parse is skipped;
//! - a line that ends inside the header: what was read is kept;
//! - malformed STRUCTURED-DATA (`k=v` unquoted, a space after `=`): the elements up to
//!   the closing `]` are kept as written ([`sd_params`] lists their well-formed prefix)
//!   and MSG follows; an element that never closes is left in MSG;
//! - no STRUCTURED-DATA field at all, or no space before MSG.
//!
//! Check Point's Log Exporter writes `[key:"value"; …]` where SD belongs: that is its
//! payload ([`super::payload`]), kept whole in MSG, and not an error.

use super::payload;
use super::{
    ParseContext, Record, days_in_month, fraction_nanos, parse_i32, parse_pri, two_digits, unix_ns,
    unparsed_syslog,
};
use crate::time::{SECS_PER_DAY, days_from_civil};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The context of [`parse`]: stamps without zone are UTC.
const UTC: ParseContext = ParseContext {
    reference_unix_secs: 0,
    utc_offset_secs: 0,
    boot_unix_ns: None,
};

/// `[<PRI>]VERSION TIMESTAMP`: `<PRI>1 `, or a one- or two-digit VERSION followed by
/// `- ` or a date. Cheap enough to run on every line of `--format auto`.
pub fn looks_like(line: &[u8]) -> bool {
    let (has_pri, rest) = match parse_pri(line) {
        Some((_, rest)) => (true, rest),
        None => (false, line),
    };
    if has_pri && rest.starts_with(b"1 ") {
        return true;
    }
    let d = rest
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if d == 0 || d > 2 || rest.get(d) != Some(&b' ') {
        return false;
    }
    match rest.get(d + 1..) {
        Some([b'-', b' ', ..]) => true,
        Some([a, b, c, e, b'-', ..]) => [a, b, c, e].iter().all(|x| x.is_ascii_digit()),
        _ => false,
    }
}

/// [`parse_with`] with stamps without zone taken as UTC.
pub fn parse(line: &[u8]) -> Record<'_> {
    parse_with(line, &UTC)
}

pub fn parse_with<'a>(line: &'a [u8], ctx: &ParseContext) -> Record<'a> {
    let mut r = Record {
        // A line that ends inside the header has an empty MSG at its end.
        message: &line[line.len()..],
        ..Record::default()
    };
    let mut flag = |r: &mut Record<'a>, why: &'static str, dropped: bool| {
        r.error = r.error.or(Some(why));
        if dropped {
            r.raw = Some(line);
        }
    };
    let rest = match parse_pri(line) {
        Some((pri, rest)) => {
            r.pri = Some(pri);
            rest
        }
        None => {
            flag(&mut r, "rfc5424: missing or invalid <PRI>", false);
            line
        }
    };
    let d = rest
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if d == 0 || d > 2 || rest.get(d) != Some(&b' ') {
        let why = r.error.unwrap_or("rfc5424: VERSION is not `1 `");
        return unparsed_syslog(line, why);
    }
    if &rest[..d] != b"1" {
        flag(&mut r, "rfc5424: VERSION is not `1 `", true);
    }
    let mut rest = &rest[d + 1..];

    // TIMESTAMP
    let Some((ts, after)) = field(&mut r, rest, &mut flag, "rfc5424: line ends in TIMESTAMP")
    else {
        return r;
    };
    rest = after;
    if ts != b"-" {
        match timestamp(ts, rest, ctx) {
            Ok((ns, zoned, extra)) => {
                r.timestamp_ns = Some(ns);
                rest = &rest[extra..];
                if !zoned {
                    flag(&mut r, "rfc5424: TIMESTAMP without time zone", false);
                }
            }
            Err(why) => flag(&mut r, why, true),
        }
    }
    macro_rules! next_field {
        ($why:expr) => {
            match field(&mut r, rest, &mut flag, $why) {
                Some((f, after)) => {
                    rest = after;
                    f
                }
                None => return r,
            }
        };
    }
    let host = next_field!("rfc5424: line ends in HOSTNAME");
    r.hostname = nil(host);
    let app = next_field!("rfc5424: line ends in APP-NAME");
    r.app_name = nil(app);
    let procid = next_field!("rfc5424: line ends in PROCID");
    // A PROCID may be any token (a thread name, a container id): only a number is a PID.
    r.proc_id = nil(procid).and_then(parse_i32);
    // MSGID: when the line ends here, there is no MSG either.
    let Some((msgid, after)) = field(&mut r, rest, &mut flag, "rfc5424: line ends in MSGID") else {
        return r;
    };
    r.msgid = nil(msgid);
    if after.is_empty() && !rest.ends_with(b" ") {
        flag(&mut r, "rfc5424: line ends in MSGID", false);
        return r;
    }
    rest = after;

    // STRUCTURED-DATA
    let msg = match rest {
        [] => {
            flag(&mut r, "rfc5424: line ends before STRUCTURED-DATA", false);
            rest
        }
        [b'-', tail @ ..] => match tail {
            [] => tail,
            [b' ', m @ ..] => m,
            _ => {
                flag(&mut r, "rfc5424: no space after STRUCTURED-DATA", false);
                tail
            }
        },
        [b'[', ..] if payload::is_check_point(rest) => {
            r.message = rest;
            return r;
        }
        [b'[', ..] => {
            let (sd, tail) = match sd_len(rest) {
                Ok(n) => rest.split_at(n),
                Err(why) => match lenient_sd_len(rest) {
                    Some(n) => {
                        flag(&mut r, why, true);
                        rest.split_at(n)
                    }
                    None => {
                        // Never closed: all of it is the message.
                        flag(&mut r, why, false);
                        (&rest[..0], rest)
                    }
                },
            };
            r.structured_data = sd;
            match tail {
                [b' ', m @ ..] if !sd.is_empty() => m,
                _ if sd.is_empty() => tail,
                [] => tail,
                _ => {
                    flag(&mut r, "rfc5424: no space after STRUCTURED-DATA", false);
                    tail
                }
            }
        }
        _ => {
            // No SD field: the message starts here.
            flag(
                &mut r,
                "rfc5424: STRUCTURED-DATA is neither `-` nor `[`",
                false,
            );
            rest
        }
    };
    r.message = msg.strip_prefix(BOM).unwrap_or(msg);
    r
}

/// The header field at the start of `s` and what follows its space; extra spaces before
/// it are skipped and flagged. At the end of the line, flags `truncated` and returns
/// `None`; a last field without a space after it is returned with nothing after it.
fn field<'a>(
    r: &mut Record<'a>,
    s: &'a [u8],
    flag: &mut impl FnMut(&mut Record<'a>, &'static str, bool),
    truncated: &'static str,
) -> Option<(&'a [u8], &'a [u8])> {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    if n > 0 {
        flag(r, "rfc5424: empty header field (two spaces)", false);
    }
    let s = &s[n..];
    if s.is_empty() {
        flag(r, truncated, false);
        return None;
    }
    match s.iter().position(|&b| b == b' ') {
        Some(sp) => Some((&s[..sp], &s[sp + 1..])),
        None => Some((s, &s[s.len()..])),
    }
}

fn nil(field: &[u8]) -> Option<&[u8]> {
    (field != b"-").then_some(field)
}

/// The TIMESTAMP field `ts`, with `rest` the line after it (a stamp written with spaces
/// continues there): ns, whether it stated a zone, and how much of `rest` it took.
fn timestamp(
    ts: &[u8],
    rest: &[u8],
    ctx: &ParseContext,
) -> Result<(i64, bool, usize), &'static str> {
    let whole = |stamp: Stamp| {
        stamp
            .to_unix_ns(ctx.utc_offset_secs)
            .ok_or("rfc5424: TIMESTAMP out of range")
    };
    match parse_rfc3339(ts) {
        Ok((stamp, len)) if len == ts.len() => {
            return Ok((whole(stamp)?, stamp.offset_secs.is_some(), 0));
        }
        Err(StampError::OutOfRange) => return Err("rfc5424: TIMESTAMP out of range"),
        _ => {}
    }
    // `2026-11-22 10:30:45Z`: a space for the `T`.
    if ts.len() == 10 {
        let t = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let mut buf = [0u8; 48];
        if t <= buf.len() - 11 {
            buf[..10].copy_from_slice(ts);
            buf[10] = b'T';
            buf[11..11 + t].copy_from_slice(&rest[..t]);
            if let Ok((stamp, len)) = parse_rfc3339(&buf[..11 + t])
                && len == 11 + t
            {
                let skip = (t + 1).min(rest.len());
                return Ok((whole(stamp)?, stamp.offset_secs.is_some(), skip));
            }
        }
    }
    Err("rfc5424: malformed TIMESTAMP")
}

/// A date and time as written, before its zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The wall-clock reading in seconds since the epoch, as if it were UTC.
    pub local_secs: i64,
    pub nanos: u32,
    /// The offset from UTC the stamp states, if it states one.
    pub offset_secs: Option<i32>,
}

impl Stamp {
    /// ns since the epoch (UTC); `default_offset` applies when the stamp states no zone.
    pub fn to_unix_ns(self, default_offset: i32) -> Option<i64> {
        let offset = self.offset_secs.unwrap_or(default_offset) as i64;
        unix_ns(self.local_secs - offset, self.nanos)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StampError {
    Malformed,
    /// Well-formed, but a field is out of range (month 13, Feb 30, 25:00).
    OutOfRange,
}

/// Parses `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]` at the start of `s` and returns the stamp
/// and its length. The zone is optional here because rsyslog-style RFC 3164 lines may omit
/// it; RFC 5424 callers insist on it. Fractions longer than ns are cut to ns, and a leap
/// second `:60` becomes the first second of the next minute, so that no valid stamp is lost.
pub(crate) fn parse_rfc3339(s: &[u8]) -> Result<(Stamp, usize), StampError> {
    use StampError::*;
    let d2 = |i| two_digits(s, i).ok_or(Malformed);
    let sep = |i: usize, c: u8| {
        if s.get(i) == Some(&c) {
            Ok(())
        } else {
            Err(Malformed)
        }
    };
    let year = (d2(0)? * 100 + d2(2)?) as i64;
    sep(4, b'-')?;
    let month = d2(5)?;
    sep(7, b'-')?;
    let day = d2(8)?;
    if !matches!(s.get(10), Some(b'T' | b't')) {
        return Err(Malformed);
    }
    let hour = d2(11)?;
    sep(13, b':')?;
    let minute = d2(14)?;
    sep(16, b':')?;
    let second = d2(17)?;
    let mut i = 19;

    let mut nanos = 0u32;
    if s.get(i) == Some(&b'.') {
        let start = i + 1;
        (nanos, i) = fraction_nanos(s, start);
        if i == start {
            return Err(Malformed);
        }
    }

    let offset_secs = match s.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hh = d2(i + 1)?;
            // `+hhmm`, as some senders write it, for RFC 3339's `+hh:mm`.
            let colon = (s.get(i + 3) == Some(&b':')) as usize;
            let mm = d2(i + 3 + colon)?;
            if hh > 23 || mm > 59 {
                return Err(OutOfRange);
            }
            i += 5 + colon;
            let secs = (hh * 3600 + mm * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    };

    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(OutOfRange);
    }
    let local_secs = days_from_civil(year, month, day) * SECS_PER_DAY
        + (hour * 3600 + minute * 60 + second) as i64;
    Ok((
        Stamp {
            local_secs,
            nanos,
            offset_secs,
        },
        i,
    ))
}

/// One `name="value"` of an SD-ELEMENT; `value` is still escaped (`\"`, `\\`, `\]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdParam<'a> {
    pub id: &'a [u8],
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// The params of a STRUCTURED-DATA field, in order. Iteration stops at the first malformed
/// byte, so a caller sees the well-formed prefix; [`parse`] flags such lines as errors.
pub fn sd_params(sd: &[u8]) -> impl Iterator<Item = SdParam<'_>> {
    SdParams::new(sd)
}

/// Length of malformed STRUCTURED-DATA at the start of `s`: elements `[…]` one after the
/// other, each ending at the first `]` outside double quotes; `None` when one never ends.
fn lenient_sd_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while s.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            match *s.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    Some(i)
}

/// Length of the STRUCTURED-DATA (one or more SD-ELEMENTs) that starts `s`.
fn sd_len(s: &[u8]) -> Result<usize, &'static str> {
    let mut it = SdParams::new(s);
    for _ in it.by_ref() {}
    match it.state {
        State::End(n) if n > 0 => Ok(n),
        _ => Err("rfc5424: malformed STRUCTURED-DATA"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between elements, at `pos`.
    Between,
    /// Inside an element whose SD-ID has been read, at `pos`.
    InElement,
    /// Stopped cleanly after the last element, which ends at this offset.
    End(usize),
    Malformed,
}

struct SdParams<'a> {
    sd: &'a [u8],
    pos: usize,
    id: &'a [u8],
    state: State,
}

impl<'a> SdParams<'a> {
    fn new(sd: &'a [u8]) -> Self {
        SdParams {
            sd,
            pos: 0,
            id: &[],
            state: State::Between,
        }
    }

    /// End of the SD-NAME (SD-ID or PARAM-NAME) starting at `i`.
    fn name_end(&self, i: usize) -> usize {
        let is_name = |b: &u8| matches!(b, 33..=126) && !matches!(b, b'=' | b']' | b'"');
        i + self.sd[i.min(self.sd.len())..]
            .iter()
            .take_while(|b| is_name(b))
            .count()
    }

    /// Offset of the quote that closes a PARAM-VALUE whose text starts at `i`.
    fn value_end(&self, mut i: usize) -> Option<usize> {
        while let Some(&b) = self.sd.get(i) {
            match b {
                // Skipping the escaped byte is right whatever it is: only `\"` could
                // otherwise be mistaken for the closing quote.
                b'\\' => i += 2,
                b'"' => return Some(i),
                _ => i += 1,
            }
        }
        None
    }

    fn fail(&mut self) -> Option<SdParam<'a>> {
        self.state = State::Malformed;
        None
    }
}

impl<'a> Iterator for SdParams<'a> {
    type Item = SdParam<'a>;

    fn next(&mut self) -> Option<SdParam<'a>> {
        loop {
            match self.state {
                State::End(_) | State::Malformed => return None,
                State::Between => {
                    if self.sd.get(self.pos) != Some(&b'[') {
                        // Whatever follows the last element (the SP before MSG) is not ours.
                        self.state = if self.pos > 0 {
                            State::End(self.pos)
                        } else {
                            State::Malformed
                        };
                        return None;
                    }
                    let end = self.name_end(self.pos + 1);
                    if end == self.pos + 1 {
                        return self.fail();
                    }
                    self.id = &self.sd[self.pos + 1..end];
                    self.pos = end;
                    self.state = State::InElement;
                }
                State::InElement => match self.sd.get(self.pos) {
                    Some(b']') => {
                        self.pos += 1;
                        self.state = State::Between;
                    }
                    Some(b' ') => {
                        let start = self.pos + 1;
                        let end = self.name_end(start);
                        if end == start || self.sd.get(end..end + 2) != Some(b"=\"") {
                            return self.fail();
                        }
                        let Some(close) = self.value_end(end + 2) else {
                            return self.fail();
                        };
                        self.pos = close + 1;
                        return Some(SdParam {
                            id: self.id,
                            name: &self.sd[start..end],
                            value: &self.sd[end + 2..close],
                        });
                    }
                    _ => return self.fail(),
                },
            }
        }
    }
}

/// Appends the unescaped form of an SD-PARAM value to `out`. A backslash before anything
/// but `"`, `\` or `]` is an ordinary character (RFC 5424 §6.3.3), and so is a lone
/// trailing one.
pub fn unescape_value(raw: &[u8], out: &mut Vec<u8>) {
    let mut rest = raw;
    while let Some(bs) = rest.iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&rest[..bs]);
        match rest.get(bs + 1) {
            Some(&c @ (b'"' | b'\\' | b']')) => {
                out.push(c);
                rest = &rest[bs + 2..];
            }
            _ => {
                out.push(b'\\');
                rest = &rest[bs + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Pri;

    fn ns(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        ((days_from_civil(y, mo, d) * 86_400) + h * 3600 + mi * 60 + s) * 1_000_000_000
    }

    fn params(sd: &[u8]) -> Vec<(String, String, String)> {
        sd_params(sd)
            .map(|p| {
                let mut v = Vec::new();
                unescape_value(p.value, &mut v);
                (
                    String::from_utf8_lossy(p.id).into_owned(),
                    String::from_utf8_lossy(p.name).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn rfc_examples() {
        let r = parse(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \
              \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(r.error, None);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 4,
                level: 2
            })
        );
        assert_eq!(
            r.timestamp_ns,
            Some(ns(2003, 10, 11, 22, 14, 15) + 3_000_000)
        );
        assert_eq!(r.hostname, Some(&b"mymachine.example.com"[..]));
        assert_eq!(r.app_name, Some(&b"su"[..]));
        assert_eq!(r.proc_id, None);
        assert_eq!(r.msgid, Some(&b"ID47"[..]));
        assert_eq!(r.structured_data, b"");
        assert_eq!(r.message, b"'su root' failed for lonvick on /dev/pts/8");

        let r = parse(
            b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - \
              %% It's time to make the do-nuts.",
        );
        assert_eq!(r.error, None);
        assert_eq!(r.timestamp_ns, Some(ns(2003, 8, 24, 12, 14, 15) + 3_000));
        assert_eq!(r.proc_id, Some(8710));
        assert_eq!(r.msgid, None);
        assert_eq!(r.message, b"%% It's time to make the do-nuts.");

        let line: &[u8] = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
              [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
              [examplePriority@32473 class=\"high\"] \xEF\xBB\xBFAn application event";
        let r = parse(line);
        assert_eq!(r.error, None);
        assert_eq!(r.message, b"An application event");
        assert!(r.structured_data.starts_with(b"[exampleSDID@32473 "));
        assert!(r.structured_data.ends_with(b"class=\"high\"]"));
        let p = params(r.structured_data);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], ("exampleSDID@32473".into(), "iut".into(), "3".into()));
        assert_eq!(
            p[3],
            (
                "examplePriority@32473".into(),
                "class".into(),
                "high".into()
            )
        );

        // SD only, no MSG.
        let r = parse(b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a@1 x=\"1\"]");
        assert_eq!(r.error, None);
        assert_eq!(r.structured_data, b"[a@1 x=\"1\"]");
        assert_eq!(r.message, b"");
    }

    #[test]
    fn nil_everywhere() {
        let r = parse(b"<0>1 - - - - - -");
        assert_eq!(r.error, None);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 0,
                level: 0
            })
        );
        assert_eq!(
            (r.timestamp_ns, r.hostname, r.app_name, r.proc_id, r.msgid),
            (None, None, None, None, None)
        );
        assert_eq!(r.message, b"");
        let r = parse(b"<0>1 - - - - - - ");
        assert_eq!((r.error, r.message), (None, &b""[..]));
        let r = parse(b"<191>1 - - - - - - x");
        assert_eq!((r.error, r.message), (None, &b"x"[..]));
    }

    #[test]
    fn timestamps() {
        let t = |s: &str| parse(format!("<13>1 {s} h a 1 m - x").as_bytes()).timestamp_ns;
        let e = |s: &str| parse(format!("<13>1 {s} h a 1 m - x").as_bytes()).error;
        let base = ns(2026, 11, 22, 10, 30, 45);
        assert_eq!(t("2026-11-22T10:30:45Z"), Some(base));
        assert_eq!(t("2026-11-22t10:30:45z"), Some(base));
        assert_eq!(t("2026-11-22T10:30:45.1Z"), Some(base + 100_000_000));
        assert_eq!(
            t("2026-11-22T10:30:45.123456789Z"),
            Some(base + 123_456_789)
        );
        assert_eq!(
            t("2026-11-22T10:30:45.1234567891Z"),
            Some(base + 123_456_789)
        );
        assert_eq!(t("2026-11-22T11:30:45.5+01:00"), Some(base + 500_000_000));
        assert_eq!(t("2026-11-22T05:00:45-05:30"), Some(base));
        assert_eq!(t("2026-11-22T23:59:60Z"), Some(ns(2026, 11, 23, 0, 0, 0)));
        assert_eq!(t("2024-02-29T00:00:00Z"), Some(ns(2024, 2, 29, 0, 0, 0)));
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("1969-12-31T23:59:59.5Z"), Some(-500_000_000));
        assert_eq!(
            e("2026-11-22T10:30:45"),
            Some("rfc5424: TIMESTAMP without time zone")
        );
        // Small mistakes that still say the time.
        assert_eq!(t("2026-11-22 10:30:45Z"), Some(base));
        assert_eq!(t("2026-11-22T11:30:45+0100"), Some(base));
        for bad in [
            "2026-11-22T10:30:45.Z",    // empty fraction
            "2026-11-22T10:30Z",        // no seconds
            "2026-11-22T10:30:45Zjunk", // trailing bytes
            "26-11-22T10:30:45Z",       // two-digit year
            "2026-11-22T10:30:45+01:0", // truncated offset
        ] {
            assert_eq!(e(bad), Some("rfc5424: malformed TIMESTAMP"), "{bad}");
            // The other fields are kept, and the line whole.
            let line = format!("<13>1 {bad} h a 1 m - x");
            let r = parse(line.as_bytes());
            assert_eq!(
                (r.hostname, r.proc_id, r.message),
                (Some(&b"h"[..]), Some(1), &b"x"[..])
            );
            assert_eq!((r.timestamp_ns, r.raw), (None, Some(line.as_bytes())));
        }
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:61Z",
            "2026-01-01T00:00:00+24:00",
            "9999-12-31T23:59:59Z", // beyond what i64 ns can hold
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(e(bad), Some("rfc5424: TIMESTAMP out of range"), "{bad}");
        }
        assert_eq!(
            e("1900-02-29T00:00:00Z"),
            Some("rfc5424: TIMESTAMP out of range")
        );
        assert_eq!(e("2000-02-29T00:00:00Z"), None);
    }

    #[test]
    fn procid_and_fields() {
        let r = parse(b"<13>1 - h app worker-3 - - m");
        assert_eq!(
            (r.error, r.proc_id, r.app_name),
            (None, None, Some(&b"app"[..]))
        );
        let r = parse(b"<13>1 - h app 4294967296 - - m");
        assert_eq!((r.error, r.proc_id), (None, None));
        let r = parse(b"<13>1 - h app 2147483647 - - m");
        assert_eq!(r.proc_id, Some(i32::MAX));
        // Non-UTF-8 and NUL bytes are carried through; the row builder replaces them.
        let r = parse(b"<13>1 - h\xff app 1 - - m\0\xfe");
        assert_eq!(
            (r.error, r.hostname, r.message),
            (None, Some(&b"h\xff"[..]), &b"m\0\xfe"[..])
        );
    }

    #[test]
    fn bom_only_at_msg_start() {
        let r = parse(b"<13>1 - h a - - - \xEF\xBB\xBF");
        assert_eq!(r.message, b"");
        let r = parse(b"<13>1 - h a - - - x\xEF\xBB\xBF");
        assert_eq!(r.message, b"x\xEF\xBB\xBF");
        let r = parse(b"<13>1 - h a - - - \xEF\xBBx");
        assert_eq!(r.message, b"\xEF\xBBx");
    }

    #[test]
    fn sd_escapes() {
        let line: &[u8] =
            br#"<13>1 - h a - - [id@1 q="say \"hi\"" b="a\\b" c="x\]y" d="]" e="\n"][id2 f=""] m"#;
        let r = parse(line);
        assert_eq!(r.error, None);
        assert_eq!(r.message, b"m");
        assert_eq!(
            params(r.structured_data),
            vec![
                ("id@1".into(), "q".into(), "say \"hi\"".into()),
                ("id@1".into(), "b".into(), "a\\b".into()),
                ("id@1".into(), "c".into(), "x]y".into()),
                ("id@1".into(), "d".into(), "]".into()),
                ("id@1".into(), "e".into(), "\\n".into()),
                ("id2".into(), "f".into(), "".into()),
            ]
        );
        // An escaped quote at the very end must not end the value.
        let r = parse(br#"<13>1 - h a - - [id k="\"] m"#);
        assert_eq!(r.error, Some("rfc5424: malformed STRUCTURED-DATA"));

        let mut out = Vec::new();
        unescape_value(br"trailing\", &mut out);
        assert_eq!(out, br"trailing\");
        out.clear();
        unescape_value(br#"\\\"\]\a"#, &mut out);
        assert_eq!(out, br#"\"]\a"#);
    }

    #[test]
    fn sd_elements_without_params() {
        let r = parse(b"<13>1 - h a - - [origin][meta x=\"1\"] m");
        assert_eq!(r.error, None);
        assert_eq!(r.structured_data, b"[origin][meta x=\"1\"]");
        assert_eq!(
            params(r.structured_data),
            vec![("meta".into(), "x".into(), "1".into())]
        );
    }

    #[test]
    fn malformed_sd_stops_iteration_and_flags_line() {
        for (sd, n) in [
            (&br#"[a x="1"] [b y="2"]"#[..], 1), // space between elements: SD ends, MSG follows
            (br#"[a x="1""#, 1),
            (br#"[a x="1" y=2]"#, 1),
            (br#"[a x="1"y="2"]"#, 1),
            (br#"[a x="1" ="2"]"#, 1),
            (br#"[a  x="1"]"#, 0),
            (br#"[ x="1"]"#, 0),
            (br#"[]"#, 0),
            (br#"[a x="1"#, 0),
            (br#"[a x = "1"]"#, 0),
            (br#"[a=b x="1"]"#, 0),
            (br#"[a"b x="1"]"#, 0),
            (br#"[a x"y="1"]"#, 0),
            (b"[a\tx=\"1\"]", 0),
        ] {
            assert_eq!(sd_params(sd).count(), n, "{}", String::from_utf8_lossy(sd));
        }
        for sd in [
            &br#"[a x="1""#[..],
            br#"[a x="1" y=2]"#,
            br#"[]"#,
            br#"[a x="1"]x"#,
            br#"[a x="1"]]"#,
            b"[a\xff x=\"1\"]",
            b"[",
        ] {
            let mut line = b"<13>1 - h a - - ".to_vec();
            line.extend_from_slice(sd);
            line.extend_from_slice(b" msg");
            let r = parse(&line);
            let what = String::from_utf8_lossy(sd);
            assert!(r.error.is_some(), "{what}");
            // The header is kept, and MSG; the SD as far as it closes, or in MSG.
            assert_eq!((r.hostname, r.app_name), (Some(&b"h"[..]), Some(&b"a"[..])));
            assert!(r.message.ends_with(b"msg"), "{what}");
            assert!(r.raw == Some(&line[..]) || r.message.len() > 3, "{what}");
            assert_eq!(
                r.pri,
                Some(Pri {
                    facility: 1,
                    level: 5
                })
            );
        }
        // Space after `=`, unquoted values: what parsed is listed, MSG follows.
        let r = parse(br#"<13>1 - h a - - [ex@1 a="1" b= "2"][m c=3] An event"#);
        assert_eq!(r.error, Some("rfc5424: malformed STRUCTURED-DATA"));
        assert_eq!(r.structured_data, br#"[ex@1 a="1" b= "2"][m c=3]"#);
        assert_eq!(params(r.structured_data).len(), 1);
        assert_eq!(r.message, b"An event");
        // UTF-8 inside a value is fine.
        let r = parse("<13>1 - h a - - [a x=\"héllo\"] m".as_bytes());
        assert_eq!(r.error, None);
    }

    #[test]
    fn malformed_headers() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "rfc5424: missing or invalid <PRI>"),
            (b"<999>1 - - - - - -", "rfc5424: missing or invalid <PRI>"),
            (b"<13>", "rfc5424: VERSION is not `1 `"),
            (b"<13>2 - - - - - -", "rfc5424: VERSION is not `1 `"),
            (b"<13>11 - - - - - -", "rfc5424: VERSION is not `1 `"),
            (b"<13>1 ", "rfc5424: line ends in TIMESTAMP"),
            (b"<13>1 -", "rfc5424: line ends in HOSTNAME"),
            (b"<13>1 - h", "rfc5424: line ends in APP-NAME"),
            (b"<13>1 - h a", "rfc5424: line ends in PROCID"),
            (b"<13>1 - h a p", "rfc5424: line ends in MSGID"),
            (b"<13>1 - h a p m", "rfc5424: line ends in MSGID"),
            (
                b"<13>1 - h a p m ",
                "rfc5424: line ends before STRUCTURED-DATA",
            ),
            (
                b"<13>1 - h a p m msg",
                "rfc5424: STRUCTURED-DATA is neither `-` nor `[`",
            ),
            (
                b"<13>1 - h a p m -msg",
                "rfc5424: no space after STRUCTURED-DATA",
            ),
            (
                b"<13>1  - h a p m - msg",
                "rfc5424: empty header field (two spaces)",
            ),
            (
                b"<13>1 - h  a p m - msg",
                "rfc5424: empty header field (two spaces)",
            ),
        ];
        for &(line, why) in cases {
            let r = parse(line);
            assert_eq!(r.error, Some(why), "{}", String::from_utf8_lossy(line));
        }
        // What parsed before the problem is kept.
        let r = parse(b"<13>1 2026-11-22T10:30:45Z h a 7");
        assert_eq!(
            (r.hostname, r.app_name, r.proc_id),
            (Some(&b"h"[..]), Some(&b"a"[..]), Some(7))
        );
        assert!(r.timestamp_ns.is_some());
        let r = parse(b"1 2026-11-22T10:30:45Z h a 7 - - m");
        assert_eq!(r.error, Some("rfc5424: missing or invalid <PRI>"));
        assert_eq!((r.hostname, r.message), (Some(&b"h"[..]), &b"m"[..]));
        let r = parse(b"<13>2 2026-11-22T10:30:45Z h a 7 - - m");
        assert_eq!(r.error, Some("rfc5424: VERSION is not `1 `"));
        assert_eq!((r.hostname, r.message), (Some(&b"h"[..]), &b"m"[..]));
        let r = parse(b"<13>1 - h a p m msg");
        assert_eq!((r.msgid, r.message), (Some(&b"m"[..]), &b"msg"[..]));
        // No VERSION at all: not RFC 5424.
        assert_eq!(parse(b"<13>x y").message, b"x y");
        assert_eq!(parse(b"<999>1 x").message, b"<999>1 x");
    }

    #[test]
    fn looks_like_needs_pri_and_version() {
        assert!(looks_like(b"<13>1 - - - - - -"));
        assert!(looks_like(b"<0>1 "));
        assert!(!looks_like(b"<13>1"));
        assert!(!looks_like(b"<13>Nov 22 10:00:00 h t: m"));
        assert!(!looks_like(b"<13>10 x"));
        assert!(!looks_like(b"<1000>1 x"));
        assert!(!looks_like(b"1 x"));
        assert!(!looks_like(b""));
        // A wrong VERSION or a missing PRI, before a stamp.
        assert!(looks_like(b"<13>2 2026-11-22T10:00:00Z h a - - - m"));
        assert!(looks_like(b"1 2026-11-22T10:00:00Z h a - - - m"));
        assert!(looks_like(b"1 - h a - - - m"));
        assert!(!looks_like(
            b"<189>29: *Apr 29 13:58:40.411: %SYS-5-CONFIG_I: x"
        ));
        assert!(!looks_like(b"123 2026 is a year"));
    }
}
