//! Bytes of a file → records: lines (a line longer than the limit is cut and its length
//! kept), then, per input, multi-line joining (stack traces, continuation lines) or the
//! joining of a container runtime's partial records. Every record knows the file offsets it
//! spans, so that the checkpoint can name the first byte not yet part of an archived row.

use std::time::{Duration, Instant};

use crate::parse::container::{ContainerLine, parse_cri, parse_docker};

/// How lines become records.
#[derive(Debug, Clone)]
pub enum Joining {
    /// Each line is a record.
    Lines,
    /// Lines that continue a record are joined to it with `\n`.
    Multiline(Multiline),
    /// Docker json-file records; partial ones joined per stream.
    Docker,
    /// Kubernetes CRI records; `P` ones joined per stream.
    Cri,
}

#[derive(Debug, Clone)]
pub struct Multiline {
    /// A record starts with a line matching this pattern (see [`pattern_match`]); without
    /// one, a line continues the record when it starts with a space or a tab, or with
    /// `Caused by:` (Java chains causes at the margin).
    pub start: Option<Vec<u8>>,
    /// A record still open this long after its last line is archived as it is.
    pub timeout: Duration,
}

impl Multiline {
    fn continues(&self, line: &[u8]) -> bool {
        match &self.start {
            Some(p) => !pattern_match(p, line),
            None => matches!(line.first(), Some(b' ' | b'\t')) || line.starts_with(b"Caused by:"),
        }
    }
}

/// Whether `line` starts with `pattern`: `#` matches an ASCII digit, `?` any byte, every
/// other byte itself. E.g. `####-##-## ` for ISO dates, `[` for bracketed levels.
pub fn pattern_match(pattern: &[u8], line: &[u8]) -> bool {
    line.len() >= pattern.len()
        && pattern.iter().zip(line).all(|(&p, &c)| match p {
            b'#' => c.is_ascii_digit(),
            b'?' => true,
            _ => p == c,
        })
}

/// A record handed to the row writer.
#[derive(Debug)]
pub struct Record<'a> {
    pub text: &'a [u8],
    /// Length before the cut, when the record was longer than the limit.
    pub original_len: Option<usize>,
    /// Offset just past the record's last line.
    pub end: u64,
    /// Event time stated by the container runtime.
    pub timestamp_ns: Option<i64>,
    pub stream: Option<&'static str>,
    pub parse_error: Option<&'static str>,
    /// The last line had no newline (archived at end of file or by `partial_line_timeout`).
    pub unterminated: bool,
}

/// An open record being joined.
#[derive(Default)]
struct Pending {
    open: bool,
    text: Vec<u8>,
    /// Length without the cut.
    len: usize,
    start: u64,
    end: u64,
    since: Option<Instant>,
    timestamp_ns: Option<i64>,
}

impl Pending {
    fn begin(&mut self, start: u64, now: Instant) {
        self.open = true;
        self.text.clear();
        self.len = 0;
        self.start = start;
        self.since = Some(now);
        self.timestamp_ns = None;
    }

    fn push(&mut self, bytes: &[u8], max: usize) {
        let room = max.saturating_sub(self.text.len());
        self.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.len += bytes.len();
    }

    fn record(&self, max: usize) -> Record<'_> {
        Record {
            text: &self.text,
            original_len: (self.len > max).then_some(self.len),
            end: self.end,
            timestamp_ns: self.timestamp_ns,
            stream: None,
            parse_error: None,
            unterminated: false,
        }
    }
}

pub struct Framer {
    joining: Joining,
    max_bytes: usize,
    /// The line read so far without its newline.
    line: Pending,
    /// Multi-line record, or the container streams (stdout, stderr).
    records: [Pending; 2],
    /// Offset just past the last byte pushed.
    consumed: u64,
    scratch: Vec<u8>,
}

const STREAMS: [&str; 2] = ["stdout", "stderr"];

impl Framer {
    pub fn new(joining: Joining, max_bytes: usize, offset: u64) -> Framer {
        Framer {
            joining,
            max_bytes,
            line: Pending::default(),
            records: Default::default(),
            consumed: offset,
            scratch: Vec::new(),
        }
    }

    /// The first byte that is not part of a record handed out: where reading resumes after
    /// a restart.
    pub fn resume_offset(&self) -> u64 {
        let mut r = self.consumed;
        for p in self.records.iter().chain([&self.line]) {
            if p.open {
                r = r.min(p.start);
            }
        }
        r
    }

    /// Splits `data`, read at file offset `self.consumed`, into lines and records.
    pub fn push(&mut self, data: &[u8], now: Instant, out: &mut impl FnMut(&Record<'_>)) {
        let mut pos = 0;
        while pos < data.len() {
            let start = self.consumed + pos as u64;
            match data[pos..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let end = start + i as u64 + 1;
                    if self.line.open {
                        let mut line = std::mem::take(&mut self.line);
                        line.push(&data[pos..pos + i], self.max_bytes);
                        let (text, len) = strip_cr(&line.text, line.len);
                        self.on_line(text, len, line.start, end, now, out);
                        line.open = false;
                        self.line = line;
                    } else {
                        let (text, len) = strip_cr(&data[pos..pos + i], i);
                        let text = &text[..text.len().min(self.max_bytes)];
                        self.on_line(text, len, start, end, now, out);
                    }
                    pos += i + 1;
                }
                None => {
                    if !self.line.open {
                        self.line.begin(start, now);
                    }
                    self.line.push(&data[pos..], self.max_bytes);
                    pos = data.len();
                }
            }
        }
        self.consumed += data.len() as u64;
    }

    fn on_line(
        &mut self,
        text: &[u8],
        len: usize,
        start: u64,
        end: u64,
        now: Instant,
        out: &mut impl FnMut(&Record<'_>),
    ) {
        let max = self.max_bytes;
        let cut = (len > max).then_some(len);
        match self.joining {
            Joining::Lines => out(&Record {
                text,
                original_len: cut,
                end,
                timestamp_ns: None,
                stream: None,
                parse_error: None,
                unterminated: false,
            }),
            Joining::Multiline(ref m) => {
                let r = &mut self.records[0];
                if r.open && m.continues(text) {
                    r.push(b"\n", max);
                    r.push(text, max);
                    r.len += len - text.len();
                } else {
                    if r.open {
                        out(&r.record(max));
                    }
                    r.begin(start, now);
                    r.push(text, max);
                    r.len += len - text.len();
                }
                r.end = end;
                r.since = Some(now);
            }
            Joining::Docker | Joining::Cri => {
                let parsed = if cut.is_some() {
                    Err("container: record longer than the limit")
                } else if matches!(self.joining, Joining::Docker) {
                    parse_docker(text)
                } else {
                    parse_cri(text)
                };
                match parsed {
                    Ok(line) => self.container_line(&line, start, end, now, out),
                    Err(why) => out(&Record {
                        text,
                        original_len: cut,
                        end,
                        timestamp_ns: None,
                        stream: None,
                        parse_error: Some(why),
                        unterminated: false,
                    }),
                }
            }
        }
    }

    fn container_line(
        &mut self,
        line: &ContainerLine<'_>,
        start: u64,
        end: u64,
        now: Instant,
        out: &mut impl FnMut(&Record<'_>),
    ) {
        let s = usize::from(line.stream == b"stderr");
        let max = self.max_bytes;
        let r = &mut self.records[s];
        if !r.open {
            r.begin(start, now);
            r.timestamp_ns = line.timestamp_ns;
        }
        self.scratch.clear();
        line.text.write(&mut self.scratch);
        r.push(&self.scratch, max);
        r.end = end;
        r.since = Some(now);
        if !line.partial {
            let mut rec = r.record(max);
            rec.stream = Some(STREAMS[s]);
            out(&rec);
            r.open = false;
        }
    }

    /// Archives records left open for `timeout` (multi-line and container joining) and,
    /// with `partial_line`, a last line that has waited that long for its newline.
    pub fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
        partial_line: Option<Duration>,
        out: &mut impl FnMut(&Record<'_>),
    ) {
        let old = |p: &Pending, t: Duration| p.open && p.since.is_some_and(|s| now - s >= t);
        if partial_line.is_some_and(|t| old(&self.line, t)) {
            self.finish_line(now, out);
        }
        for s in 0..2 {
            if old(&self.records[s], timeout) {
                self.emit_open(s, out);
            }
        }
    }

    /// Archives everything open: the file will not grow any more. `partial_line` includes a
    /// last line without its newline.
    pub fn flush(&mut self, now: Instant, partial_line: bool, out: &mut impl FnMut(&Record<'_>)) {
        if partial_line && self.line.open {
            self.finish_line(now, out);
        }
        for s in 0..2 {
            if self.records[s].open {
                self.emit_open(s, out);
            }
        }
    }

    fn emit_open(&mut self, s: usize, out: &mut impl FnMut(&Record<'_>)) {
        let max = self.max_bytes;
        let r = &mut self.records[s];
        let mut rec = r.record(max);
        if matches!(self.joining, Joining::Docker | Joining::Cri) {
            rec.stream = Some(STREAMS[s]);
        }
        out(&rec);
        r.open = false;
    }

    /// Treats the open line as ended by a newline.
    fn finish_line(&mut self, now: Instant, out: &mut impl FnMut(&Record<'_>)) {
        let mut line = std::mem::take(&mut self.line);
        let end = self.consumed;
        let max = self.max_bytes;
        match self.joining {
            Joining::Lines => out(&Record {
                unterminated: true,
                end,
                ..line.record(max)
            }),
            _ => {
                let text = line.text.clone();
                self.on_line(&text, line.len, line.start, end, now, out);
            }
        }
        line.open = false;
        self.line = line;
    }
}

fn strip_cr(text: &[u8], len: usize) -> (&[u8], usize) {
    match text.strip_suffix(b"\r") {
        Some(t) if len == text.len() => (t, len - 1),
        _ => (text, len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Out {
        text: String,
        cut: Option<usize>,
        end: u64,
        stream: Option<&'static str>,
        err: bool,
    }

    fn run(f: &mut Framer, chunks: &[&[u8]]) -> Vec<Out> {
        let mut out = Vec::new();
        let now = Instant::now();
        for c in chunks {
            f.push(c, now, &mut |r| {
                out.push(Out {
                    text: String::from_utf8_lossy(r.text).into_owned(),
                    cut: r.original_len,
                    end: r.end,
                    stream: r.stream,
                    err: r.parse_error.is_some(),
                })
            });
        }
        out
    }

    fn texts(o: &[Out]) -> Vec<&str> {
        o.iter().map(|o| o.text.as_str()).collect()
    }

    #[test]
    fn lines_across_reads_with_offsets_and_a_held_partial_line() {
        let mut f = Framer::new(Joining::Lines, 100, 1000);
        let o = run(&mut f, &[b"ab", b"c\r\nd\n\nef"]);
        assert_eq!(texts(&o), ["abc", "d", ""]);
        assert_eq!(
            o.iter().map(|o| o.end).collect::<Vec<_>>(),
            [1005, 1007, 1008]
        );
        assert_eq!(
            f.resume_offset(),
            1008,
            "the unterminated `ef` is not archived"
        );
        let o = run(&mut f, &[b"g\n"]);
        assert_eq!(texts(&o), ["efg"]);
        assert_eq!(f.resume_offset(), 1012);
    }

    #[test]
    fn long_lines_are_cut_and_keep_their_length() {
        let mut f = Framer::new(Joining::Lines, 4, 0);
        let o = run(&mut f, &[b"abcdefgh\n123", b"456789\nx\n"]);
        assert_eq!(texts(&o), ["abcd", "1234", "x"]);
        assert_eq!(o[0].cut, Some(8));
        assert_eq!(o[1].cut, Some(9));
        assert_eq!(o[2].cut, None);
    }

    #[test]
    fn java_stack_trace_is_one_record() {
        let ml = Multiline {
            start: None,
            timeout: Duration::from_secs(1),
        };
        let mut f = Framer::new(Joining::Multiline(ml), 1000, 0);
        let trace = b"2026-11-29 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nCaused by: java.io.IOException: y\n\t... 2 more\n2026-11-29 INFO next\n";
        let o = run(&mut f, &[trace]);
        // Without a start pattern, the exception line (no indent) starts its own record.
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].text, "2026-11-29 ERROR boom");
        assert!(
            o[1].text
                .starts_with("java.lang.IllegalStateException: x\n\tat a.B.c")
        );
        assert!(
            o[1].text
                .ends_with("Caused by: java.io.IOException: y\n\t... 2 more")
        );
        assert_eq!(
            f.resume_offset(),
            (trace.len() - b"2026-11-29 INFO next\n".len()) as u64
        );

        let ml = Multiline {
            start: Some(b"####-##-## ".to_vec()),
            timeout: Duration::from_secs(1),
        };
        let mut f = Framer::new(Joining::Multiline(ml), 1000, 0);
        let o = run(&mut f, &[trace]);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].text.lines().count(), 6);
        let mut rest = Vec::new();
        f.flush(Instant::now(), false, &mut |r| {
            rest.push(String::from_utf8_lossy(r.text).into_owned())
        });
        assert_eq!(rest, ["2026-11-29 INFO next"]);
        assert_eq!(f.resume_offset(), trace.len() as u64);
    }

    #[test]
    fn multiline_record_over_the_cap_is_cut_and_flagged() {
        let ml = Multiline {
            start: None,
            timeout: Duration::from_secs(1),
        };
        let mut f = Framer::new(Joining::Multiline(ml), 10, 0);
        let o = run(&mut f, &[b"head\n  cont1\n  cont2\nnext\n"]);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].text, "head\n  con");
        assert_eq!(o[0].cut, Some(20));
    }

    #[test]
    fn docker_partials_join_per_stream() {
        let mut f = Framer::new(Joining::Docker, 1000, 0);
        let lines: &[&[u8]] = &[
            br#"{"log":"part one, ","stream":"stdout","time":"2026-11-29T10:00:00Z"}"#,
            b"\n",
            br#"{"log":"err line\n","stream":"stderr","time":"2026-11-29T10:00:01Z"}"#,
            b"\n",
            br#"{"log":"part two\n","stream":"stdout","time":"2026-11-29T10:00:02Z"}"#,
            b"\nnot json\n",
        ];
        let first_len = (lines[0].len() + 1) as u64;
        let mut out = Vec::new();
        let now = Instant::now();
        let mut resume_after_err = 0;
        for (i, c) in lines.iter().enumerate() {
            f.push(c, now, &mut |r| {
                out.push((
                    String::from_utf8_lossy(r.text).into_owned(),
                    r.stream,
                    r.timestamp_ns,
                    r.parse_error.is_some(),
                ))
            });
            if i == 3 {
                resume_after_err = f.resume_offset();
            }
        }
        assert_eq!(
            resume_after_err, 0,
            "the open stdout part holds the resume point"
        );
        assert_eq!(out[0].0, "err line");
        assert_eq!(out[0].1, Some("stderr"));
        assert_eq!(out[1].0, "part one, part two");
        assert_eq!(out[1].1, Some("stdout"));
        assert_eq!(
            out[1].2,
            Some(1_795_946_400_000_000_000),
            "time of the first part"
        );
        assert_eq!(out[2], ("not json".into(), None, None, true));
        assert!(f.resume_offset() > first_len);
    }

    #[test]
    fn cri_partials_join() {
        let mut f = Framer::new(Joining::Cri, 1000, 0);
        let o = run(
            &mut f,
            &[b"2026-11-29T10:00:00Z stdout P a\n2026-11-29T10:00:00Z stdout P b\n2026-11-29T10:00:00Z stdout F c\n"],
        );
        assert_eq!(texts(&o), ["abc"]);
    }

    #[test]
    fn open_records_expire_and_unterminated_lines_wait_unless_asked() {
        let ml = Multiline {
            start: None,
            timeout: Duration::from_millis(10),
        };
        let mut f = Framer::new(Joining::Multiline(ml), 100, 0);
        let t0 = Instant::now();
        let mut out = Vec::new();
        f.push(b"a\n b\nc", t0, &mut |r| {
            out.push(String::from_utf8_lossy(r.text).into_owned())
        });
        assert!(out.is_empty());
        let later = t0 + Duration::from_secs(1);
        f.expire(later, Duration::from_millis(10), None, &mut |r| {
            out.push(String::from_utf8_lossy(r.text).into_owned())
        });
        assert_eq!(out, ["a\n b"]);
        assert_eq!(f.resume_offset(), 5);
        f.expire(
            later,
            Duration::from_millis(10),
            Some(Duration::from_millis(10)),
            &mut |r| out.push(String::from_utf8_lossy(r.text).into_owned()),
        );
        // The unterminated line became a record, which itself waits for continuations.
        f.flush(later, false, &mut |r| {
            out.push(String::from_utf8_lossy(r.text).into_owned())
        });
        assert_eq!(out, ["a\n b", "c"]);
        assert_eq!(f.resume_offset(), 6);
    }

    /// Stopping anywhere and resuming at `resume_offset`, skipping records that end at or
    /// before the last one handed out, yields every record once: the checkpoint contract.
    #[test]
    fn resuming_anywhere_yields_every_record_once() {
        let docker: &[u8] = concat!(
            r#"{"log":"a1 ","stream":"stdout"}"#,
            "\n",
            r#"{"log":"e1\n","stream":"stderr"}"#,
            "\n",
            r#"{"log":"a2\n","stream":"stdout"}"#,
            "\n",
            r#"{"log":"b1 ","stream":"stdout"}"#,
            "\n",
            r#"{"log":"e2 ","stream":"stderr"}"#,
            "\n",
            r#"{"log":"b2\n","stream":"stdout"}"#,
            "\n",
            r#"{"log":"e3\n","stream":"stderr"}"#,
            "\n",
        )
        .as_bytes();
        let trace: &[u8] = b"x1\n\ta\n\tb\nx2\nx3\n c\nx4\n";
        let ml = || {
            Joining::Multiline(Multiline {
                start: None,
                timeout: Duration::from_secs(60),
            })
        };
        for (joining, data) in [(Joining::Docker, docker), (ml(), trace)] {
            let now = Instant::now();
            let all = |from: u64, skip: u64, upto: usize| {
                let mut f = Framer::new(joining.clone(), 1000, from);
                let mut out = Vec::new();
                let mut last_end = skip;
                for b in data[from as usize..upto].chunks(3) {
                    f.push(b, now, &mut |r| {
                        if r.end > skip {
                            out.push(String::from_utf8_lossy(r.text).into_owned());
                            last_end = last_end.max(r.end);
                        }
                    });
                }
                (f, out, last_end)
            };
            let (mut f, mut want, _) = all(0, 0, data.len());
            f.flush(now, false, &mut |r| {
                want.push(String::from_utf8_lossy(r.text).into_owned())
            });
            for stop in 0..=data.len() {
                let (f, mut got, last_end) = all(0, 0, stop);
                let (mut g, rest, _) = all(f.resume_offset(), last_end, data.len());
                got.extend(rest);
                g.flush(now, false, &mut |r| {
                    got.push(String::from_utf8_lossy(r.text).into_owned())
                });
                assert_eq!(got, want, "stopped at byte {stop}");
            }
        }
    }

    #[test]
    fn patterns() {
        assert!(pattern_match(b"####-##-##", b"2026-11-29 x"));
        assert!(!pattern_match(b"####-##-##", b"\tat x"));
        assert!(pattern_match(b"[?", b"[I"));
        assert!(!pattern_match(b"abc", b"ab"));
    }
}
