//! Container runtime log lines: Docker's json-file driver and the Kubernetes CRI format.
//! Both split a long line of the program into several records; [`ContainerLine::partial`]
//! says that the next record of the same stream continues this one.

use super::json::{self, Value};
use super::rfc5424::parse_rfc3339;

/// How the text of a record is stored in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text<'a> {
    /// The contents of a JSON string, escapes not decoded (Docker).
    Escaped(&'a [u8]),
    /// The bytes as the program wrote them (CRI).
    Plain(&'a [u8]),
}

impl Text<'_> {
    /// Appends the text, decoded, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Text::Escaped(s) => json::unescape(s, out),
            Text::Plain(s) => out.extend_from_slice(s),
        }
    }
}

/// One record of a container log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerLine<'a> {
    pub timestamp_ns: Option<i64>,
    /// `stdout` or `stderr` as written.
    pub stream: &'a [u8],
    /// The program's output, without the newline that ended it.
    pub text: Text<'a>,
    /// The program's line goes on in the next record of this stream.
    pub partial: bool,
}

/// A Docker json-file line: `{"log":"text\n","stream":"stdout","time":"<RFC 3339>"}`. A
/// `log` without a final newline is a part of a longer line (Docker splits at 16 KiB).
pub fn parse_docker(line: &[u8]) -> Result<ContainerLine<'_>, &'static str> {
    let object = json::parse(line).map_err(|_| "docker: not a JSON object")?;
    let (mut log, mut stream, mut time) = (None, &b""[..], None);
    object.leaves(|path, v| match (path, v) {
        ([b"log"], Value::Str(s)) => log = Some(s),
        ([b"stream"], Value::Str(s)) => stream = s,
        ([b"time"], Value::Str(s)) => time = Some(s),
        _ => {}
    });
    let log = log.ok_or("docker: no log field")?;
    let (text, partial) = match log.strip_suffix(b"\\n") {
        // `\\n` is an escaped backslash and a letter n: count the backslashes.
        Some(head) if head.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0 => {
            (head, false)
        }
        _ => (log, true),
    };
    let text = text.strip_suffix(b"\\r").unwrap_or(text);
    Ok(ContainerLine {
        timestamp_ns: time.and_then(rfc3339_ns),
        stream,
        text: Text::Escaped(text),
        partial,
    })
}

/// A CRI line: `<RFC 3339 time> <stream> <tag>[:<tag>…] <text>`, tag `P` for a partial
/// record, `F` for the last one of a line.
pub fn parse_cri(line: &[u8]) -> Result<ContainerLine<'_>, &'static str> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = fields.next().unwrap_or_default();
    let stream = fields.next().ok_or("cri: no stream")?;
    let tags = fields.next().ok_or("cri: no tag")?;
    // An empty record still borrows from the line (its end), as every field does.
    let text = fields.next().unwrap_or(&line[line.len()..]);
    let timestamp_ns = Some(rfc3339_ns(time).ok_or("cri: malformed time")?);
    if !matches!(stream, b"stdout" | b"stderr") {
        return Err("cri: unknown stream");
    }
    let partial = match tags.split(|&b| b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err("cri: unknown tag"),
    };
    Ok(ContainerLine {
        timestamp_ns,
        stream,
        text: Text::Plain(text),
        partial,
    })
}

fn rfc3339_ns(s: &[u8]) -> Option<i64> {
    match parse_rfc3339(s) {
        Ok((stamp, len)) if len == s.len() && stamp.offset_secs.is_some() => stamp.to_unix_ns(0),
        _ => None,
    }
}

/// Namespace, pod and container of a CRI log path
/// (`…/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`).
pub fn cri_path_names(path: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = path.rsplit(|&b| b == b'/');
    let _file = parts.next()?;
    let container = parts.next()?;
    let pod_dir = parts.next()?;
    let mut p = pod_dir.splitn(3, |&b| b == b'_');
    let (ns, pod, _uid) = (p.next()?, p.next()?, p.next()?);
    if ns.is_empty() || pod.is_empty() || container.is_empty() {
        return None;
    }
    Some((ns, pod, container))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &ContainerLine<'_>) -> String {
        let mut out = Vec::new();
        l.text.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn docker_lines_and_partials() {
        let l = parse_docker(
            br#"{"log":"hello \"x\"\n","stream":"stderr","time":"2026-11-29T10:00:00.123456789Z"}"#,
        )
        .unwrap();
        assert_eq!(text(&l), "hello \"x\"");
        assert_eq!(l.stream, b"stderr");
        assert!(!l.partial);
        assert_eq!(l.timestamp_ns, Some(1_795_946_400_123_456_789));
        let l = parse_docker(br#"{"log":"part","stream":"stdout","time":"x"}"#).unwrap();
        assert!(l.partial);
        assert_eq!(l.timestamp_ns, None);
        // An escaped backslash before `n` is not a newline.
        let l = parse_docker(br#"{"log":"a\\n","stream":"stdout"}"#).unwrap();
        assert!(l.partial);
        assert_eq!(text(&l), "a\\n");
        let l = parse_docker(br#"{"log":"crlf\r\n","stream":"stdout"}"#).unwrap();
        assert_eq!((text(&l).as_str(), l.partial), ("crlf", false));
        assert!(parse_docker(b"not json").is_err());
        assert!(parse_docker(br#"{"stream":"stdout"}"#).is_err());
    }

    #[test]
    fn cri_lines_and_partials() {
        let l = parse_cri(b"2026-11-29T10:00:00.000000001+01:00 stdout P first half").unwrap();
        assert_eq!(text(&l), "first half");
        assert!(l.partial);
        assert_eq!(
            l.timestamp_ns,
            Some(1_795_946_400_000_000_001 - 3_600_000_000_000)
        );
        let l = parse_cri(b"2026-11-29T10:00:00Z stderr F").unwrap();
        assert_eq!(
            (text(&l).as_str(), l.partial, l.stream),
            ("", false, &b"stderr"[..])
        );
        for bad in [
            &b""[..],
            b"2026-11-29T10:00:00Z",
            b"2026-11-29T10:00:00Z stdout",
            b"2026-11-29T10:00:00Z stdout X text",
            b"2026-11-29T10:00:00Z other F text",
            b"yesterday stdout F text",
        ] {
            assert!(parse_cri(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn cri_path() {
        assert_eq!(
            cri_path_names(b"/var/log/pods/kube-system_coredns-5d_0b1c-2/coredns/0.log"),
            Some((&b"kube-system"[..], &b"coredns-5d"[..], &b"coredns"[..]))
        );
        assert_eq!(cri_path_names(b"/x/0.log"), None);
    }
}
