//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`.
//!
//! Strict about structure (every header field present, a valid TIMESTAMP, well-formed
//! STRUCTURED-DATA), lenient about content: field lengths and character sets of HOSTNAME,
//! APP-NAME, PROCID and MSGID are not checked, since a too-long APP-NAME is still the best
//! name we have for the sender. A structural error makes the whole line unparsed (see
//! [`unparsed_syslog`]).

use super::{
    Record, days_in_month, fraction_nanos, parse_i32, parse_pri, two_digits, unix_ns,
    unparsed_syslog,
};
use crate::time::{SECS_PER_DAY, days_from_civil};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `<PRI>1 `: cheap enough to run on every line of `--format auto`.
pub fn looks_like(line: &[u8]) -> bool {
    matches!(parse_pri(line), Some((_, rest)) if rest.starts_with(b"1 "))
}

pub fn parse(line: &[u8]) -> Record<'_> {
    parse_strict(line).unwrap_or_else(|why| unparsed_syslog(line, why))
}

fn parse_strict(line: &[u8]) -> Result<Record<'_>, &'static str> {
    let (pri, rest) = parse_pri(line).ok_or("rfc5424: missing or invalid <PRI>")?;
    let rest = rest
        .strip_prefix(b"1 ")
        .ok_or("rfc5424: VERSION is not `1 `")?;
    let (ts, rest) = header_field(rest, "rfc5424: line ends in TIMESTAMP")?;
    let (host, rest) = header_field(rest, "rfc5424: line ends in HOSTNAME")?;
    let (app, rest) = header_field(rest, "rfc5424: line ends in APP-NAME")?;
    let (procid, rest) = header_field(rest, "rfc5424: line ends in PROCID")?;
    let (msgid, rest) = header_field(rest, "rfc5424: line ends in MSGID")?;

    let timestamp_ns = match ts {
        b"-" => None,
        _ => Some(timestamp(ts)?),
    };
    let (structured_data, rest) = match rest {
        [b'-', tail @ ..] => (&rest[..0], tail),
        [b'[', ..] => rest.split_at(sd_len(rest)?),
        [] => return Err("rfc5424: line ends before STRUCTURED-DATA"),
        _ => return Err("rfc5424: STRUCTURED-DATA is neither `-` nor `[`"),
    };
    let message = match rest {
        [] => rest,
        [b' ', msg @ ..] => msg.strip_prefix(BOM).unwrap_or(msg),
        _ => return Err("rfc5424: no space after STRUCTURED-DATA"),
    };
    Ok(Record {
        timestamp_ns,
        hostname: nil(host),
        pri: Some(pri),
        app_name: nil(app),
        // A PROCID may be any token (a thread name, a container id): only a number is a PID.
        proc_id: nil(procid).and_then(parse_i32),
        msgid: nil(msgid),
        structured_data,
        message,
        error: None,
    })
}

/// The header field at the start of `s` and what follows its terminating space.
fn header_field<'a>(
    s: &'a [u8],
    truncated: &'static str,
) -> Result<(&'a [u8], &'a [u8]), &'static str> {
    let sp = s.iter().position(|&b| b == b' ').ok_or(truncated)?;
    if sp == 0 {
        return Err("rfc5424: empty header field (two spaces)");
    }
    Ok((&s[..sp], &s[sp + 1..]))
}

fn nil(field: &[u8]) -> Option<&[u8]> {
    (field != b"-").then_some(field)
}

fn timestamp(ts: &[u8]) -> Result<i64, &'static str> {
    let (stamp, len) = parse_rfc3339(ts).map_err(|e| match e {
        StampError::Malformed => "rfc5424: malformed TIMESTAMP",
        StampError::OutOfRange => "rfc5424: TIMESTAMP out of range",
    })?;
    if len != ts.len() {
        return Err("rfc5424: malformed TIMESTAMP");
    }
    if stamp.offset_secs.is_none() {
        return Err("rfc5424: TIMESTAMP without time zone");
    }
    stamp.to_unix_ns(0).ok_or("rfc5424: TIMESTAMP out of range")
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
            sep(i + 3, b':')?;
            let mm = d2(i + 4)?;
            if hh > 23 || mm > 59 {
                return Err(OutOfRange);
            }
            i += 6;
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
        for bad in [
            "2026-11-22 10:30:45Z",     // space: two fields
            "2026-11-22T10:30:45.Z",    // empty fraction
            "2026-11-22T10:30Z",        // no seconds
            "2026-11-22T10:30:45+0100", // RFC 3339 needs the colon
            "2026-11-22T10:30:45Zjunk", // trailing bytes
            "26-11-22T10:30:45Z",       // two-digit year
            "2026-11-22T10:30:45+01:0", // truncated offset
        ] {
            assert_eq!(e(bad), Some("rfc5424: malformed TIMESTAMP"), "{bad}");
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
            assert!(r.error.is_some(), "{}", String::from_utf8_lossy(sd));
            assert_eq!(r.message, &line[4..], "unparsed keeps all after the PRI");
            assert_eq!(
                r.pri,
                Some(Pri {
                    facility: 1,
                    level: 5
                })
            );
        }
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
            (b"<13>1 -", "rfc5424: line ends in TIMESTAMP"),
            (b"<13>1 - h", "rfc5424: line ends in HOSTNAME"),
            (b"<13>1 - h a", "rfc5424: line ends in APP-NAME"),
            (b"<13>1 - h a p", "rfc5424: line ends in PROCID"),
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
            assert!(r.hostname.is_none() && r.app_name.is_none() && r.timestamp_ns.is_none());
        }
        assert_eq!(parse(b"<13>2 x").message, b"2 x");
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
    }
}
