//! Structured payloads that appliances put in the syslog message: `key=value` pairs
//! (FortiGate, firewalls, logfmt), CEF (`CEF:0|vendor|product|…|ext`) and Check Point's
//! Log Exporter (`[key:"value"; …]`). The header around them is parsed as syslog; the
//! message keeps the payload's text whole, and [`fields`] lists its fields, bounded in
//! count and size, for the row's `extra`.

use super::ParseContext;
use crate::time::{SECS_PER_DAY, days_from_civil};

/// Most fields listed from one payload; the message keeps the rest.
pub const MAX_FIELDS: usize = 64;
/// Longest value listed; longer ones are cut (the message keeps them whole).
pub const MAX_VALUE: usize = 1024;
/// Longest key.
const MAX_KEY: usize = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    #[default]
    None,
    /// `key=value key="quoted value" …`
    KeyValue(&'a [u8]),
    /// `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|Extension`
    Cef(&'a [u8]),
    /// `[key:"value"; key:"value"]`
    CheckPoint(&'a [u8]),
}

/// How a field's value is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside double quotes: `\"` and `\\`.
    Quoted,
    /// CEF: `\=`, `\|`, `\\`, `\n`, `\r`.
    Cef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub escape: Escape,
}

/// The payload a message carries, if it is one of the known kinds.
pub fn detect(message: &[u8]) -> Payload<'_> {
    match message.first() {
        Some(b'C') if message.starts_with(b"CEF:") && message.contains(&b'|') => {
            Payload::Cef(message)
        }
        Some(b'[') if is_check_point(message) => Payload::CheckPoint(message),
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
            // Two pairs: one `word=x` is as likely prose as a payload.
            if KvFields::new(message).take(2).count() == 2 {
                Payload::KeyValue(message)
            } else {
                Payload::None
            }
        }
        _ => Payload::None,
    }
}

/// `[name:"…` starts Check Point's Log Exporter payload.
pub fn is_check_point(s: &[u8]) -> bool {
    let Some(body) = s.strip_prefix(b"[") else {
        return false;
    };
    let n = key_len(body);
    n > 0 && body.get(n..n + 2) == Some(b":\"")
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn key_len(s: &[u8]) -> usize {
    let n = s
        .iter()
        .take(MAX_KEY + 1)
        .take_while(|&&b| is_key_byte(b))
        .count();
    if n > MAX_KEY { 0 } else { n }
}

/// The fields of a payload, at most [`MAX_FIELDS`], values cut at [`MAX_VALUE`].
pub fn fields(p: Payload<'_>) -> impl Iterator<Item = Field<'_>> {
    let it: Fields<'_> = match p {
        Payload::None => Fields::None,
        Payload::KeyValue(s) => Fields::Kv(KvFields::new(s)),
        Payload::Cef(s) => Fields::Cef(CefFields::new(s)),
        Payload::CheckPoint(s) => Fields::CheckPoint(CheckPointFields { s, pos: 1 }),
    };
    it.take(MAX_FIELDS).map(|mut f| {
        if f.value.len() > MAX_VALUE {
            f.value = &f.value[..MAX_VALUE];
        }
        f
    })
}

enum Fields<'a> {
    None,
    Kv(KvFields<'a>),
    Cef(CefFields<'a>),
    CheckPoint(CheckPointFields<'a>),
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;
    fn next(&mut self) -> Option<Field<'a>> {
        match self {
            Fields::None => None,
            Fields::Kv(it) => it.next(),
            Fields::Cef(it) => it.next(),
            Fields::CheckPoint(it) => it.next(),
        }
    }
}

/// Offset of the `"` that closes a quoted value starting at `i`.
fn closing_quote(s: &[u8], mut i: usize) -> Option<usize> {
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

struct KvFields<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> KvFields<'a> {
    fn new(s: &'a [u8]) -> Self {
        KvFields { s, pos: 0 }
    }
}

impl<'a> Iterator for KvFields<'a> {
    type Item = Field<'a>;
    /// Stops at the first word that is not `key=…`: what follows is prose.
    fn next(&mut self) -> Option<Field<'a>> {
        let s = self.s;
        while s.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        let start = self.pos;
        let n = key_len(s.get(start..)?);
        if n == 0 || s.get(start + n) != Some(&b'=') {
            self.pos = s.len();
            return None;
        }
        let key = &s[start..start + n];
        let v = start + n + 1;
        if s.get(v) == Some(&b'"') {
            let Some(close) = closing_quote(s, v + 1) else {
                self.pos = s.len();
                return None;
            };
            self.pos = close + 1;
            return Some(Field {
                key,
                value: &s[v + 1..close],
                escape: Escape::Quoted,
            });
        }
        let end = v + s[v..]
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(s.len() - v);
        self.pos = end;
        Some(Field {
            key,
            value: &s[v..end],
            escape: Escape::Quoted,
        })
    }
}

struct CheckPointFields<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for CheckPointFields<'a> {
    type Item = Field<'a>;
    fn next(&mut self) -> Option<Field<'a>> {
        let s = self.s;
        while matches!(s.get(self.pos), Some(b' ' | b';')) {
            self.pos += 1;
        }
        let start = self.pos;
        let n = key_len(s.get(start..)?);
        if n == 0 || s.get(start + n..start + n + 2) != Some(b":\"") {
            self.pos = s.len();
            return None;
        }
        let close = closing_quote(s, start + n + 2).unwrap_or(s.len());
        self.pos = close + 1;
        Some(Field {
            key: &s[start..start + n],
            value: &s[start + n + 2..close],
            escape: Escape::Quoted,
        })
    }
}

/// Names of CEF's seven header fields, in order.
const CEF_HEADER: [&[u8]; 7] = [
    b"version",
    b"device_vendor",
    b"device_product",
    b"device_version",
    b"signature_id",
    b"name",
    b"severity",
];

struct CefFields<'a> {
    s: &'a [u8],
    pos: usize,
    /// Header fields read so far; 7 once in the extension.
    header: usize,
}

impl<'a> CefFields<'a> {
    fn new(s: &'a [u8]) -> Self {
        CefFields {
            s,
            pos: 4,
            header: 0,
        }
    }

    /// Whether an extension key and its `=` start at `i`.
    fn key_at(&self, i: usize) -> Option<usize> {
        let n = key_len(self.s.get(i..)?);
        (n > 0 && self.s.get(i + n) == Some(&b'=')).then_some(n)
    }
}

impl<'a> Iterator for CefFields<'a> {
    type Item = Field<'a>;
    fn next(&mut self) -> Option<Field<'a>> {
        let s = self.s;
        if self.pos > s.len() {
            return None;
        }
        if self.header < CEF_HEADER.len() {
            let start = self.pos;
            let mut i = start;
            while i < s.len() && s[i] != b'|' {
                i += if s[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(s.len());
            let key = CEF_HEADER[self.header];
            self.header += 1;
            self.pos = end + 1;
            if end >= s.len() && self.header < CEF_HEADER.len() {
                // A cut header: what there is, then nothing more.
                self.pos = s.len() + 1;
            }
            return Some(Field {
                key,
                value: &s[start..end],
                escape: Escape::Cef,
            });
        }
        // Extension: `key=value` where a value runs up to the space before the next key.
        while s.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(n) = self.key_at(start) else {
            self.pos = s.len() + 1;
            return None;
        };
        let v = start + n + 1;
        let mut i = v;
        let mut end = s.len();
        while i < s.len() {
            match s[i] {
                b'\\' => i += 2,
                b' ' if self.key_at(i + 1).is_some() => {
                    end = i;
                    break;
                }
                _ => i += 1,
            }
        }
        self.pos = end;
        Some(Field {
            key: &s[start..start + n],
            value: &s[v.min(end)..end],
            escape: Escape::Cef,
        })
    }
}

/// Appends the unescaped value of a field to `out`.
pub fn unescape(f: &Field<'_>, out: &mut Vec<u8>) {
    let mut rest = f.value;
    while let Some(bs) = rest.iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&rest[..bs]);
        let c = rest.get(bs + 1).copied();
        let mapped = match (f.escape, c) {
            (_, Some(c @ (b'"' | b'\\'))) => Some(c),
            (Escape::Cef, Some(c @ (b'=' | b'|'))) => Some(c),
            (Escape::Cef, Some(b'n')) => Some(b'\n'),
            (Escape::Cef, Some(b'r')) => Some(b'\r'),
            _ => None,
        };
        match mapped {
            Some(c) => {
                out.push(c);
                rest = &rest[bs + 2..];
            }
            None => {
                out.push(b'\\');
                rest = &rest[bs + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
}

/// The host and time a header-less key=value line (FortiGate's default format, SonicWall)
/// states in its own fields: `devname` (or `hostname`, `host`, `device_name`), and `date`
/// and `time`, or a `time` of `YYYY-MM-DD hh:mm:ss`, in the zone of `tz` (else the
/// context's).
pub fn kv_header<'a>(kv: &'a [u8], ctx: &ParseContext) -> (Option<&'a [u8]>, Option<i64>) {
    let (mut host, mut date, mut time, mut tz) = (None, None, None, None);
    for f in KvFields::new(kv).take(MAX_FIELDS) {
        match f.key {
            b"devname" | b"hostname" | b"host" | b"device_name" => host = host.or(Some(f.value)),
            b"date" => date = Some(f.value),
            b"time" => time = Some(f.value),
            b"tz" => tz = Some(f.value),
            _ => {}
        }
    }
    let ns = (|| {
        use super::two_digits;
        let (d, t) = match (date, time) {
            (Some(d), Some(t)) => (d, t),
            (None, Some(t)) if t.len() >= 19 && t[10] == b' ' => (&t[..10], &t[11..]),
            _ => return None,
        };
        if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() < 8 || t[2] != b':' {
            return None;
        }
        let year = (two_digits(d, 0)? * 100 + two_digits(d, 2)?) as i64;
        let (month, day) = (two_digits(d, 5)?, two_digits(d, 8)?);
        let (h, m, s) = (two_digits(t, 0)?, two_digits(t, 3)?, two_digits(t, 6)?);
        if !(1..=12).contains(&month)
            || day == 0
            || day > super::days_in_month(year, month)
            || h > 23
            || m > 59
            || s > 60
        {
            return None;
        }
        let offset = match tz {
            Some(z) => numeric_offset(z)?,
            None => ctx.utc_offset_secs,
        };
        let secs = days_from_civil(year, month, day) * SECS_PER_DAY
            + (h * 3600 + m * 60 + s) as i64
            - offset as i64;
        super::unix_ns(secs, 0)
    })();
    (host, ns)
}

/// `+hhmm`, `-hh:mm` or `+hh` as seconds east of UTC.
pub fn numeric_offset(z: &[u8]) -> Option<i32> {
    use super::two_digits;
    let (sign, rest) = match z.first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let hh = two_digits(rest, 0)?;
    let mm = match rest.len() {
        2 => 0,
        4 => two_digits(rest, 2)?,
        5 if rest[2] == b':' => two_digits(rest, 3)?,
        _ => return None,
    };
    if hh > 23 || mm > 59 {
        return None;
    }
    Some(sign * (hh * 3600 + mm * 60) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(p: Payload<'_>) -> Vec<(String, String)> {
        fields(p)
            .map(|f| {
                let mut v = Vec::new();
                unescape(&f, &mut v);
                (
                    String::from_utf8_lossy(f.key).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn detection() {
        assert!(matches!(detect(b"CEF:0|a|b|1|2|n|3|x=1"), Payload::Cef(_)));
        assert!(matches!(detect(b"CEF: hello"), Payload::None));
        assert!(matches!(detect(b"a=1 b=2"), Payload::KeyValue(_)));
        assert!(matches!(detect(b"a=1 then prose"), Payload::None));
        assert!(matches!(detect(b"hello world"), Payload::None));
        assert!(matches!(
            detect(br#"[action:"Accept"; src:"1"]"#),
            Payload::CheckPoint(_)
        ));
        assert!(matches!(detect(br#"[meta x="1"]"#), Payload::None));
        assert!(matches!(detect(b""), Payload::None));
    }

    #[test]
    fn key_value() {
        let p = detect(br#"date=2026-11-22 devname="FG 1" msg="say \"hi\"" n=5 then prose=x y"#);
        assert_eq!(
            listed(p),
            [
                ("date".into(), "2026-11-22".into()),
                ("devname".into(), "FG 1".into()),
                ("msg".into(), "say \"hi\"".into()),
                ("n".into(), "5".into()),
            ]
            .to_vec()
        );
        // An unterminated quote ends the list.
        let p = Payload::KeyValue(br#"a=1 b="open"#);
        assert_eq!(listed(p).len(), 1);
    }

    #[test]
    fn cef() {
        let p = detect(
            br"CEF:0|Security|threat\|manager|1.0|100|worm stopped|10|src=10.0.0.1 msg=Detected a threat. No action needed. path=C:\\x a\=b=c",
        );
        let f = listed(p);
        assert_eq!(f[0], ("version".into(), "0".into()));
        assert_eq!(f[2], ("device_product".into(), "threat|manager".into()));
        assert_eq!(f[6], ("severity".into(), "10".into()));
        assert_eq!(f[7], ("src".into(), "10.0.0.1".into()));
        assert_eq!(
            f[8],
            ("msg".into(), "Detected a threat. No action needed.".into())
        );
        assert_eq!(f[9], ("path".into(), r"C:\x a=b=c".into()));
        assert_eq!(f.len(), 10);
        // A cut header lists what there is.
        assert_eq!(listed(Payload::Cef(b"CEF:0|vendor")).len(), 2);
        assert_eq!(listed(Payload::Cef(b"CEF:")).len(), 1);
    }

    #[test]
    fn check_point() {
        let p = detect(br#"[action:"Accept"; flags:"411908"; ifdir:"inbound"; x:"a\"b"]"#);
        assert_eq!(
            listed(p),
            [
                ("action".into(), "Accept".into()),
                ("flags".into(), "411908".into()),
                ("ifdir".into(), "inbound".into()),
                ("x".into(), "a\"b".into()),
            ]
            .to_vec()
        );
    }

    #[test]
    fn bounded() {
        let mut s = String::new();
        for i in 0..200 {
            s.push_str(&format!("k{i}={} ", "v".repeat(2000)));
        }
        let f: Vec<_> = fields(detect(s.as_bytes())).collect();
        assert_eq!(f.len(), MAX_FIELDS);
        assert!(f.iter().all(|f| f.value.len() == MAX_VALUE));
    }

    #[test]
    fn fortigate_header() {
        let ctx = ParseContext {
            reference_unix_secs: 0,
            utc_offset_secs: 0,
            boot_unix_ns: None,
        };
        let (host, ns) = kv_header(
            br#"date=2026-11-22 time=10:00:00 devname="FGT" tz="+0100" x=1"#,
            &ctx,
        );
        assert_eq!(host, Some(&b"FGT"[..]));
        assert_eq!(ns, Some(1_795_341_600_000_000_000 - 3_600_000_000_000));
        let (_, ns) = kv_header(b"date=2026-02-30 time=10:00:00", &ctx);
        assert_eq!(ns, None);
        assert_eq!(numeric_offset(b"-05:30"), Some(-19_800));
        assert_eq!(numeric_offset(b"+0100"), Some(3600));
        assert_eq!(numeric_offset(b"+01"), Some(3600));
        assert_eq!(numeric_offset(b"+2400"), None);
        assert_eq!(numeric_offset(b"0100"), None);
    }
}
