//! JSON lines: a validating scanner that hands out every leaf of an object with its key path,
//! borrowed from the line (strings still escaped), and the mapping of an application log
//! line's well-known keys (time, level, message, logger, host, pid) to columns.
//!
//! A scanner of our own rather than `serde_json::Value`: a `Value` allocates a map and a
//! string per field on every line, and `serde_json`'s borrowed modes do not flatten nested
//! objects. Validation is strict RFC 8259 except that bytes ≥ 0x80 inside strings are
//! passed through unchecked (the batch builder replaces invalid UTF-8 and keeps the bytes).

use super::Pri;
use super::rfc5424::parse_rfc3339;

/// Objects nested deeper than this are handed out whole, as JSON text.
pub const MAX_FLATTEN_DEPTH: usize = 8;
/// Nesting beyond this is refused (keeps the recursion bounded on hostile input).
const MAX_DEPTH: usize = 128;

/// One leaf of a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// The contents between the quotes, escapes not decoded (see [`unescape`]).
    Str(&'a [u8]),
    /// A number as written.
    Num(&'a [u8]),
    Bool(bool),
    Null,
    /// An array, an empty object, or an object nested deeper than [`MAX_FLATTEN_DEPTH`],
    /// as its JSON text.
    Raw(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The value as text: strings decoded, everything else as written.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match *self {
            Value::Str(s) => unescape(s, out),
            Value::Num(s) | Value::Raw(s) => out.extend_from_slice(s),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Null => out.extend_from_slice(b"null"),
        }
    }
}

/// A line that holds one valid JSON object (surrounding whitespace allowed).
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    text: &'a [u8],
    start: usize,
}

/// Checks that `line` is exactly one JSON object.
pub fn parse(line: &[u8]) -> Result<Object<'_>, &'static str> {
    let s = Scanner { s: line };
    let start = s.ws(0);
    if line.get(start) != Some(&b'{') {
        return Err("json: not an object");
    }
    let end = s.value(
        start,
        0,
        &mut [b"".as_slice(); MAX_FLATTEN_DEPTH],
        &mut |_, _| {},
    )?;
    if s.ws(end) != line.len() {
        return Err("json: text after the object");
    }
    Ok(Object { text: line, start })
}

impl<'a> Object<'a> {
    /// Calls `f` with each leaf and its key path (keys still escaped), in document order.
    /// Nested objects are walked down to [`MAX_FLATTEN_DEPTH`] keys.
    pub fn leaves(&self, mut f: impl FnMut(&[&'a [u8]], Value<'a>)) {
        let s = Scanner { s: self.text };
        let mut path = [b"".as_slice(); MAX_FLATTEN_DEPTH];
        // Validated by `parse`: the walk cannot fail.
        let _ = s.object(self.start, 0, 0, &mut path, &mut f);
    }
}

struct Scanner<'a> {
    s: &'a [u8],
}

type Step = Result<usize, &'static str>;
const TRUNCATED: &str = "json: unexpected end of line";

impl<'a> Scanner<'a> {
    fn ws(&self, mut i: usize) -> usize {
        while matches!(self.s.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            i += 1;
        }
        i
    }

    fn expect(&self, i: usize, c: u8) -> Step {
        match self.s.get(i) {
            Some(&b) if b == c => Ok(i + 1),
            Some(_) => Err("json: unexpected character"),
            None => Err(TRUNCATED),
        }
    }

    /// A value at `i` (no leading whitespace); returns where it ends. Objects are walked
    /// with `path[..keys]` as their key path.
    fn value(
        &self,
        i: usize,
        depth: usize,
        path: &mut [&'a [u8]; MAX_FLATTEN_DEPTH],
        f: &mut dyn FnMut(&[&'a [u8]], Value<'a>),
    ) -> Step {
        match self.s.get(i) {
            Some(b'{') => self.object(i, depth, 0, path, f),
            _ => self.scalar_or_array(i, depth).map(|(end, _)| end),
        }
    }

    /// An object at `i` whose members' key paths start with `path[..keys]`.
    fn object(
        &self,
        i: usize,
        depth: usize,
        keys: usize,
        path: &mut [&'a [u8]; MAX_FLATTEN_DEPTH],
        f: &mut dyn FnMut(&[&'a [u8]], Value<'a>),
    ) -> Step {
        if depth >= MAX_DEPTH {
            return Err("json: nested too deep");
        }
        let mut i = self.ws(self.expect(i, b'{')?);
        if self.s.get(i) == Some(&b'}') {
            return Ok(i + 1);
        }
        loop {
            let key_end = self.string(i)?;
            let key = &self.s[i + 1..key_end - 1];
            i = self.ws(self.expect(self.ws(key_end), b':')?);
            let start = i;
            if keys < MAX_FLATTEN_DEPTH {
                path[keys] = key;
            }
            let flatten = keys + 1 < MAX_FLATTEN_DEPTH;
            i = match self.s.get(i) {
                Some(b'{') if flatten => {
                    let end = self.object(i, depth + 1, keys + 1, path, f)?;
                    if self.ws(start + 1) == end - 1 {
                        f(&path[..=keys], Value::Raw(&self.s[start..end]));
                    }
                    end
                }
                Some(b'{') => {
                    let end = self.object(i, depth + 1, 0, &mut path.clone(), &mut |_, _| {})?;
                    f(
                        &path[..=keys.min(MAX_FLATTEN_DEPTH - 1)],
                        Value::Raw(&self.s[start..end]),
                    );
                    end
                }
                _ => {
                    let (end, v) = self.scalar_or_array(i, depth + 1)?;
                    f(&path[..=keys.min(MAX_FLATTEN_DEPTH - 1)], v);
                    end
                }
            };
            i = self.ws(i);
            match self.s.get(i) {
                Some(b',') => i = self.ws(i + 1),
                Some(b'}') => return Ok(i + 1),
                Some(_) => return Err("json: expected , or } in object"),
                None => return Err(TRUNCATED),
            }
        }
    }

    fn scalar_or_array(&self, i: usize, depth: usize) -> Result<(usize, Value<'a>), &'static str> {
        let s = self.s;
        match s.get(i) {
            Some(b'"') => {
                let end = self.string(i)?;
                Ok((end, Value::Str(&s[i + 1..end - 1])))
            }
            Some(b'[') => {
                let end = self.array(i, depth)?;
                Ok((end, Value::Raw(&s[i..end])))
            }
            Some(b'{') => {
                let mut path = [b"".as_slice(); MAX_FLATTEN_DEPTH];
                let end = self.object(i, depth, 0, &mut path, &mut |_, _| {})?;
                Ok((end, Value::Raw(&s[i..end])))
            }
            Some(b't') if s[i..].starts_with(b"true") => Ok((i + 4, Value::Bool(true))),
            Some(b'f') if s[i..].starts_with(b"false") => Ok((i + 5, Value::Bool(false))),
            Some(b'n') if s[i..].starts_with(b"null") => Ok((i + 4, Value::Null)),
            Some(b'-' | b'0'..=b'9') => {
                let end = self.number(i)?;
                Ok((end, Value::Num(&s[i..end])))
            }
            Some(_) => Err("json: unexpected character"),
            None => Err(TRUNCATED),
        }
    }

    fn array(&self, i: usize, depth: usize) -> Step {
        if depth >= MAX_DEPTH {
            return Err("json: nested too deep");
        }
        let mut i = self.ws(self.expect(i, b'[')?);
        if self.s.get(i) == Some(&b']') {
            return Ok(i + 1);
        }
        loop {
            i = self.ws(self.scalar_or_array(i, depth + 1)?.0);
            match self.s.get(i) {
                Some(b',') => i = self.ws(i + 1),
                Some(b']') => return Ok(i + 1),
                Some(_) => return Err("json: expected , or ] in array"),
                None => return Err(TRUNCATED),
            }
        }
    }

    /// A string at `i`; returns the index after its closing quote.
    fn string(&self, i: usize) -> Step {
        let mut i = self.expect(i, b'"')?;
        loop {
            match self.s.get(i) {
                None => return Err(TRUNCATED),
                Some(b'"') => return Ok(i + 1),
                Some(b'\\') => {
                    i += match self.s.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u') => {
                            let hex = self.s.get(i + 2..i + 6).ok_or(TRUNCATED)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err("json: bad \\u escape");
                            }
                            6
                        }
                        Some(_) => return Err("json: bad escape"),
                        None => return Err(TRUNCATED),
                    }
                }
                Some(&b) if b < 0x20 => return Err("json: control character in string"),
                Some(_) => i += 1,
            }
        }
    }

    fn number(&self, mut i: usize) -> Step {
        let s = self.s;
        let digits = |mut i: usize| {
            let start = i;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i, i - start)
        };
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        let (end, n) = digits(i);
        if n == 0 || (n > 1 && s[i] == b'0') {
            return Err("json: bad number");
        }
        i = end;
        if s.get(i) == Some(&b'.') {
            let (end, n) = digits(i + 1);
            if n == 0 {
                return Err("json: bad number");
            }
            i = end;
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let (end, n) = digits(i);
            if n == 0 {
                return Err("json: bad number");
            }
            i = end;
        }
        Ok(i)
    }
}

/// Decodes the escapes of a JSON string's contents into `out` (appending). Lone
/// surrogates become U+FFFD; malformed escapes (not produced by a validated line) are kept
/// as written.
pub fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = raw[i..].iter().position(|&b| b == b'\\') else {
            out.extend_from_slice(&raw[i..]);
            return;
        };
        out.extend_from_slice(&raw[i..i + off]);
        i += off;
        let simple = match raw.get(i + 1) {
            Some(b'n') => Some(b'\n'),
            Some(b't') => Some(b'\t'),
            Some(b'r') => Some(b'\r'),
            Some(b'b') => Some(8),
            Some(b'f') => Some(12),
            Some(&c @ (b'"' | b'\\' | b'/')) => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let Some(hi) = hex4(raw, i) else {
            out.push(b'\\');
            i += 1;
            continue;
        };
        i += 6;
        let code = if (0xD800..0xDC00).contains(&hi) {
            match hex4(raw, i) {
                Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                }
                _ => 0xFFFD,
            }
        } else if (0xDC00..0xE000).contains(&hi) {
            0xFFFD
        } else {
            hi
        };
        let c = char::from_u32(code).unwrap_or('\u{FFFD}');
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

/// The value of `\uXXXX` at `raw[i..]`.
fn hex4(raw: &[u8], i: usize) -> Option<u32> {
    if raw.get(i..i + 2)? != b"\\u" {
        return None;
    }
    let mut v = 0u32;
    for &h in raw.get(i + 2..i + 6)? {
        v = v * 16 + (h as char).to_digit(16)?;
    }
    Some(v)
}

/// The columns an application log line's well-known keys map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Time,
    Level,
    Message,
    Logger,
    Host,
    Pid,
}

/// Which column a key path maps to, if any. Keys compare as written (an escaped key never
/// matches).
pub fn classify(path: &[&[u8]]) -> Option<Known> {
    match path {
        [b"time" | b"timestamp" | b"@timestamp" | b"ts"] => Some(Known::Time),
        [b"level" | b"severity" | b"lvl"] | [b"log", b"level"] => Some(Known::Level),
        [b"message" | b"msg"] => Some(Known::Message),
        // `log` is the message in Docker-style records; an object under `log` is ECS.
        [b"log"] => Some(Known::Message),
        [b"logger" | b"logger_name"] | [b"log", b"logger"] => Some(Known::Logger),
        [b"host" | b"hostname"] | [b"host", b"name"] => Some(Known::Host),
        [b"pid"] | [b"process", b"pid"] => Some(Known::Pid),
        _ => None,
    }
}

/// An application log line: the leaves chosen for the columns (the first leaf of each
/// kind), and the whole object for the rest.
#[derive(Debug, Clone, Copy)]
pub struct AppRecord<'a> {
    pub object: Object<'a>,
    /// The chosen leaf of each [`Known`] kind, with its last key (to tell it apart from
    /// a later leaf of the same kind while walking the rest into `extra`).
    pub chosen: [Option<(&'a [u8], Value<'a>)>; 6],
}

impl<'a> AppRecord<'a> {
    pub fn get(&self, k: Known) -> Option<Value<'a>> {
        self.chosen[k as usize].map(|(_, v)| v)
    }

    /// Whether this leaf went to a column (and so not into `extra`).
    pub fn is_chosen(&self, path: &[&'a [u8]]) -> bool {
        match (classify(path), path.last()) {
            (Some(k), Some(last)) => self.chosen[k as usize]
                .is_some_and(|(key, _)| std::ptr::eq(key.as_ptr(), last.as_ptr())),
            _ => false,
        }
    }

    /// Event time in ns since the epoch: RFC 3339 text (zone-less stamps are taken as
    /// `utc_offset_secs`), or an epoch number in s, ms, µs or ns (told apart by size).
    pub fn time_ns(&self, utc_offset_secs: i32) -> Option<i64> {
        match self.get(Known::Time)? {
            Value::Str(s) => match parse_rfc3339(s) {
                Ok((stamp, len)) if len == s.len() => stamp.to_unix_ns(utc_offset_secs),
                _ => epoch_ns(s),
            },
            Value::Num(n) => epoch_ns(n),
            _ => None,
        }
    }

    /// Syslog level 0–7 of the level leaf: a name (`warn`, `ERROR`, `fatal`…), a syslog
    /// number 0–7, or a pino/bunyan number 10–60.
    pub fn level(&self) -> Option<Pri> {
        let level = match self.get(Known::Level)? {
            Value::Str(s) => level_from_name(s)?,
            Value::Num(n) => match super::parse_i32(n)? {
                l @ 0..=7 => l as u8,
                10 | 20 => 7,
                30 => 6,
                40 => 4,
                50 => 3,
                60 => 2,
                _ => return None,
            },
            _ => return None,
        };
        Some(Pri::level_only(level))
    }

    pub fn pid(&self) -> Option<i32> {
        match self.get(Known::Pid)? {
            Value::Num(n) | Value::Str(n) => super::parse_i32(n),
            _ => None,
        }
    }
}

/// Maps the well-known keys of a JSON object line.
pub fn parse_app(line: &[u8]) -> Result<AppRecord<'_>, &'static str> {
    let object = parse(line)?;
    let mut chosen = [None; 6];
    object.leaves(|path, v| {
        if let (Some(k), Some(last)) = (classify(path), path.last()) {
            let slot = &mut chosen[k as usize];
            if slot.is_none() && !matches!(v, Value::Null | Value::Raw(_)) {
                *slot = Some((*last, v));
            }
        }
    });
    Ok(AppRecord { object, chosen })
}

fn level_from_name(s: &[u8]) -> Option<u8> {
    let mut lower = [0u8; 16];
    let s = s.get(..s.len().min(16))?;
    for (d, c) in lower.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    Some(match &lower[..s.len()] {
        b"emerg" | b"emergency" | b"panic" => 0,
        b"alert" => 1,
        b"crit" | b"critical" | b"fatal" => 2,
        b"err" | b"error" => 3,
        b"warn" | b"warning" => 4,
        b"notice" => 5,
        b"info" | b"information" | b"informational" => 6,
        b"debug" | b"trace" | b"verbose" => 7,
        _ => return None,
    })
}

/// An epoch number (`1732870800`, `1732870800.25`, ms, µs or ns) in ns. The unit is the
/// one that puts the integer part between 1973 and 5138.
fn epoch_ns(s: &[u8]) -> Option<i64> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &b""[..]),
    };
    if int.is_empty() || int.len() > 19 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: i64 = int.iter().fold(0i64, |a, &d| a * 10 + (d - b'0') as i64);
    let scale: i64 = match v {
        0..100_000_000_000 => 1_000_000_000,
        100_000_000_000..100_000_000_000_000 => 1_000_000,
        100_000_000_000_000..100_000_000_000_000_000 => 1_000,
        _ => 1,
    };
    let (frac_ns, _) = super::fraction_nanos(frac, 0);
    let frac_scaled = (frac_ns as i64).checked_mul(scale)? / 1_000_000_000;
    v.checked_mul(scale)?.checked_add(frac_scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(line: &str) -> Vec<(String, String)> {
        let o = parse(line.as_bytes()).unwrap();
        let mut out = Vec::new();
        o.leaves(|path, v| {
            let key: Vec<String> = path
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            let mut text = Vec::new();
            v.write_text(&mut text);
            out.push((key.join("."), String::from_utf8(text).unwrap()));
        });
        out
    }

    #[test]
    fn flattens_nested_objects_with_dotted_keys() {
        let got =
            leaves(r#" {"a":1,"b":{"c":"x\"y","d":{"e":true}},"f":[1,{"g":2}],"h":null,"i":{}} "#);
        let want = [
            ("a", "1"),
            ("b.c", "x\"y"),
            ("b.d.e", "true"),
            ("f", r#"[1,{"g":2}]"#),
            ("h", "null"),
            ("i", "{}"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn deep_objects_are_kept_as_text_below_the_flatten_depth() {
        let line = r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}"#;
        let got = leaves(line);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "a.b.c.d.e.f.g.h");
        assert_eq!(got[0].1, r#"{"i":1}"#);
    }

    #[test]
    fn invalid_lines_are_refused() {
        for bad in [
            "",
            "[]",
            "1",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":1} x",
            "{\"a\":tru}",
            "{'a':1}",
            "{\"a\":[1,]}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":\"\\u12g4\"}",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let deep = "{\"a\":".repeat(200) + "1" + &"}".repeat(200);
        assert!(parse(deep.as_bytes()).is_err());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(500), "]".repeat(500));
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn unescapes_surrogate_pairs_and_replaces_lone_ones() {
        let mut out = Vec::new();
        unescape(br#"a\u00e9\ud83d\ude00\ud800x\n\/"#, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "aé😀\u{fffd}x\n/");
    }

    #[test]
    fn maps_well_known_keys() {
        let line = br#"{"@timestamp":"2026-11-29T10:00:00.5Z","log":{"level":"WARN","logger":"app.db"},"msg":"slow query","host":{"name":"db1"},"process":{"pid":42},"level":"ignored-second","x":{"y":1}}"#;
        let r = parse_app(line).unwrap();
        assert_eq!(r.time_ns(0), Some(1_795_946_400_500_000_000));
        assert_eq!(r.level(), Some(Pri::level_only(4)));
        assert_eq!(r.get(Known::Message), Some(Value::Str(b"slow query")));
        assert_eq!(r.get(Known::Logger), Some(Value::Str(b"app.db")));
        assert_eq!(r.get(Known::Host), Some(Value::Str(b"db1")));
        assert_eq!(r.pid(), Some(42));
        let mut rest = Vec::new();
        r.object.leaves(|path, _| {
            if !r.is_chosen(path) {
                rest.push(path.join(&b'.'));
            }
        });
        assert_eq!(rest, vec![b"level".to_vec(), b"x.y".to_vec()]);
    }

    #[test]
    fn epoch_times_in_every_unit() {
        let t = |line: &str| parse_app(line.as_bytes()).unwrap().time_ns(0);
        let want = Some(1_732_870_800_250_000_000);
        assert_eq!(t(r#"{"ts":1732870800.25}"#), want);
        assert_eq!(t(r#"{"ts":1732870800250}"#), want);
        assert_eq!(t(r#"{"ts":1732870800250000}"#), want);
        assert_eq!(t(r#"{"ts":1732870800250000000}"#), want);
        assert_eq!(t(r#"{"time":"1732870800.25"}"#), want);
        assert_eq!(t(r#"{"time":"2024-11-29T09:00:00.25"}"#), want);
        assert_eq!(t(r#"{"time":"yesterday"}"#), None);
        assert_eq!(t(r#"{"time":-5}"#), None);
        assert_eq!(t(r#"{"time":99999999999999999999}"#), None);
    }

    #[test]
    fn levels_by_name_and_number() {
        let l = |line: &str| parse_app(line.as_bytes()).unwrap().level().map(|p| p.level);
        assert_eq!(l(r#"{"level":"Error"}"#), Some(3));
        assert_eq!(l(r#"{"severity":"fatal"}"#), Some(2));
        assert_eq!(l(r#"{"lvl":"information"}"#), Some(6));
        assert_eq!(l(r#"{"level":30}"#), Some(6));
        assert_eq!(l(r#"{"level":3}"#), Some(3));
        assert_eq!(l(r#"{"level":"loud"}"#), None);
        assert_eq!(l(r#"{"level":99}"#), None);
    }

    /// The scanner agrees with serde_json on which lines are valid objects, on mutations of
    /// real-looking lines, and never panics.
    #[test]
    fn mutated_lines_agree_with_serde_json() {
        let seeds: [&[u8]; 4] = [
            br#"{"time":"2026-11-29T10:00:00Z","level":"info","msg":"a \"b\" \u00e9","n":-1.5e3,"o":{"p":[1,true,null]}}"#,
            br#"{"log":"hello\n","stream":"stdout","time":"2026-11-29T10:00:00.123456789Z"}"#,
            br#"{}"#,
            br#"{"a":{"b":{"c":[{"d":"\ud83d\ude00"}]}}}"#,
        ];
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        const SPECIAL: &[u8] = b"{}[]\",:\\u0123456789.eE+-tfn \t\x01\xff";
        let mut buf = Vec::new();
        for _ in 0..100_000 {
            buf.clear();
            buf.extend_from_slice(seeds[(next() % 4) as usize]);
            for _ in 0..=(next() % 3) {
                let len = buf.len();
                let at = (next() as usize) % (len + 1);
                match next() % 3 {
                    0 if len > 0 => {
                        buf[at.min(len - 1)] = SPECIAL[(next() as usize) % SPECIAL.len()]
                    }
                    1 => buf.insert(at, SPECIAL[(next() as usize) % SPECIAL.len()]),
                    _ => buf.truncate(at),
                }
            }
            let ours = parse(&buf).is_ok();
            let theirs =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&buf).is_ok();
            // serde_json also refuses invalid UTF-8 and lone surrogate escapes inside
            // strings, which we pass through (the latter as U+FFFD).
            let surrogate = buf
                .windows(3)
                .any(|w| w[..2] == *b"\\u" && matches!(w[2], b'd' | b'D'));
            if std::str::from_utf8(&buf).is_ok() && !surrogate {
                assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&buf));
            }
            if let Ok(r) = parse_app(&buf) {
                let _ = (r.time_ns(0), r.level(), r.pid());
                let mut out = Vec::new();
                r.object.leaves(|_, v| v.write_text(&mut out));
            }
        }
    }
}
