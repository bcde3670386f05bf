//! Bytes of a stream (or one datagram) → messages. Pure: no I/O, no allocation, no panic,
//! whatever the bytes.
//!
//! Framing is decided per frame, as rsyslog does, so that octet-counting and newline senders
//! can share a listener: a frame that starts with digits and a space is RFC 6587 octet
//! counting (`<len> <msg>`), anything else ends at the next `\n` (or NUL). Device quirks handled
//! here rather than in the syslog parsers, because they are about where a message starts and
//! ends: a space, tab, CR or NUL before a frame (Cisco ASA sends a space after the newline),
//! a CR or NUL before the newline, and a counted body that ends with its own newline
//! (loggen, rsyslog with RFC 5424 templates).
//!
//! A frame longer than the limit is never a reason to drop the stream: its first `max`
//! bytes are kept and the rest skipped, and the message carries its original length.

/// How a frame was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Octet,
    Newline,
}

/// What the decoder found at the head of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A message in `buf[start..end]`; drop `consumed` bytes after taking it.
    /// `original_len` is set when the frame was longer than the limit (octet counting says
    /// how long up front). `unterminated`: the input ended inside the frame.
    Frame {
        start: usize,
        end: usize,
        consumed: usize,
        kind: Kind,
        original_len: Option<usize>,
        unterminated: bool,
    },
    /// The head of a newline-framed message longer than the limit, in `buf[start..end]`:
    /// keep a copy; its length is known only at its [`Next::HeadEnd`].
    Head {
        start: usize,
        end: usize,
        consumed: usize,
    },
    /// The message whose [`Next::Head`] was kept ends here; it was `original_len` bytes.
    HeadEnd {
        consumed: usize,
        original_len: usize,
        unterminated: bool,
    },
    /// Drop `n` bytes: separators, or the skipped tail of an oversized frame.
    Skip(usize),
    /// Nothing more can be taken until more bytes arrive (or, at the end of input,
    /// nothing is left).
    More,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discard {
    None,
    /// The rest of an octet-counted frame that was cut.
    Bytes(usize),
    /// The rest of a newline-framed line whose head was returned; bytes seen so far.
    Line(usize),
}

/// Longest octet count accepted (`4294967295` has ten digits); longer digit runs are not
/// a count, so the frame is newline framed.
const MAX_COUNT_DIGITS: usize = 10;

/// Buffer a reader must offer (at least) so that every frame can be decided: the longest
/// count header plus the kept part of a frame.
pub fn buffer_len(max: usize) -> usize {
    max + MAX_COUNT_DIGITS + 2
}

#[derive(Debug, Clone)]
pub struct Decoder {
    max: usize,
    octet_counting: bool,
    /// Skip spaces and tabs before a frame too (syslog), not only CR, LF and NUL.
    skip_blanks: bool,
    discard: Discard,
}

impl Decoder {
    /// `max`: longest message kept (at least 1). `octet_counting`: detect RFC 6587 counts
    /// (syslog); otherwise every frame ends at a newline (JSON lines, raw text).
    pub fn new(max: usize, octet_counting: bool, skip_blanks: bool) -> Decoder {
        Decoder {
            max: max.max(1),
            octet_counting,
            skip_blanks,
            discard: Discard::None,
        }
    }

    /// Whether the decoder is inside an oversized frame (its head returned, its end not).
    pub fn in_frame(&self) -> bool {
        self.discard != Discard::None
    }

    /// The next step over `buf` (the unconsumed input, starting where the last step's
    /// `consumed` ended). `eof`: no more input will follow, so a partial frame is
    /// returned as it is.
    pub fn next(&mut self, buf: &[u8], eof: bool) -> Next {
        match self.discard {
            Discard::Bytes(left) => {
                if buf.is_empty() {
                    if eof {
                        self.discard = Discard::None;
                    }
                    return Next::More;
                }
                let n = left.min(buf.len());
                self.discard = if n == left {
                    Discard::None
                } else {
                    Discard::Bytes(left - n)
                };
                return Next::Skip(n);
            }
            Discard::Line(seen) => {
                return match line_end(buf) {
                    Some(i) => {
                        self.discard = Discard::None;
                        Next::HeadEnd {
                            consumed: i + 1,
                            original_len: seen + i,
                            unterminated: false,
                        }
                    }
                    None if eof => {
                        self.discard = Discard::None;
                        Next::HeadEnd {
                            consumed: buf.len(),
                            original_len: seen + buf.len(),
                            unterminated: true,
                        }
                    }
                    None if buf.is_empty() => Next::More,
                    None => {
                        self.discard = Discard::Line(seen + buf.len());
                        Next::Skip(buf.len())
                    }
                };
            }
            Discard::None => {}
        }

        let lead = buf
            .iter()
            .take_while(|&&b| {
                matches!(b, b'\n' | b'\r' | 0) || (self.skip_blanks && matches!(b, b' ' | b'\t'))
            })
            .count();
        if lead > 0 {
            return Next::Skip(lead);
        }
        if buf.is_empty() {
            return Next::More;
        }
        if self.octet_counting && buf[0].is_ascii_digit() {
            let digits = buf
                .iter()
                .take(MAX_COUNT_DIGITS + 1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            match buf.get(digits) {
                Some(b' ') if digits <= MAX_COUNT_DIGITS && buf[0] != b'0' => {
                    return self.octet_frame(buf, digits, eof);
                }
                None if digits <= MAX_COUNT_DIGITS && !eof => return Next::More,
                _ => {}
            }
        }
        self.line_frame(buf, eof)
    }

    fn octet_frame(&mut self, buf: &[u8], digits: usize, eof: bool) -> Next {
        let count = buf[..digits].iter().fold(0usize, |v, &d| {
            v.saturating_mul(10).saturating_add((d - b'0') as usize)
        });
        let start = digits + 1;
        let keep = count.min(self.max);
        let have = buf.len() - start;
        if have < keep {
            if !eof {
                return Next::More;
            }
            // The sender went away inside the frame: keep what came.
            return Next::Frame {
                start,
                end: trim_end(buf, start, buf.len(), true),
                consumed: buf.len(),
                kind: Kind::Octet,
                original_len: None,
                unterminated: true,
            };
        }
        let mut original_len = None;
        if count > keep {
            original_len = Some(count);
            self.discard = Discard::Bytes(count - keep);
        }
        Next::Frame {
            start,
            end: trim_end(buf, start, start + keep, true),
            consumed: start + keep,
            kind: Kind::Octet,
            original_len,
            unterminated: false,
        }
    }

    fn line_frame(&mut self, buf: &[u8], eof: bool) -> Next {
        match line_end(buf) {
            Some(i) if i <= self.max => Next::Frame {
                start: 0,
                end: trim_end(buf, 0, i, false),
                consumed: i + 1,
                kind: Kind::Newline,
                original_len: None,
                unterminated: false,
            },
            Some(i) => Next::Frame {
                start: 0,
                end: trim_end(buf, 0, self.max, false),
                consumed: i + 1,
                kind: Kind::Newline,
                original_len: Some(i),
                unterminated: false,
            },
            None if buf.len() > self.max => {
                self.discard = Discard::Line(buf.len());
                Next::Head {
                    start: 0,
                    end: self.max,
                    consumed: buf.len(),
                }
            }
            None if eof => Next::Frame {
                start: 0,
                end: trim_end(buf, 0, buf.len(), false),
                consumed: buf.len(),
                kind: Kind::Newline,
                original_len: None,
                unterminated: true,
            },
            None => Next::More,
        }
    }
}

/// End of `buf[start..end]` without trailing CR and NUL (and, in a counted body, LF):
/// transport residue, not message text.
fn trim_end(buf: &[u8], start: usize, mut end: usize, counted: bool) -> usize {
    while end > start && (matches!(buf[end - 1], b'\r' | 0) || (counted && buf[end - 1] == b'\n')) {
        end -= 1;
    }
    end
}

/// Where a newline-framed message ends: at `\n`, or at a NUL, which some senders use as
/// the delimiter (Python's `SysLogHandler` over TCP ends each message with one and no
/// newline) and which never belongs to message text.
fn line_end(hay: &[u8]) -> Option<usize> {
    // Eight bytes at a time: the scan is most of the framing cost for newline senders.
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let has_zero = |w: u64| w.wrapping_sub(LO) & !w & HI != 0;
    let mut i = 0;
    while let Some(chunk) = hay.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        if has_zero(w ^ NL) || has_zero(w) {
            break;
        }
        i += 8;
    }
    hay[i..]
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .map(|p| p + i)
}

/// One message as a reader hands it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub body: &'a [u8],
    pub kind: Kind,
    pub original_len: Option<usize>,
    pub unterminated: bool,
}

/// A [`Decoder`] plus the copy of an oversized line's head, for readers: feed it the
/// buffered input, get messages, drop what it consumed.
#[derive(Debug, Clone)]
pub struct Framer {
    pub decoder: Decoder,
    held: Vec<u8>,
}

impl Framer {
    pub fn new(decoder: Decoder) -> Framer {
        Framer {
            decoder,
            held: Vec::new(),
        }
    }

    /// Passes every message that `buf` completes to `emit`; returns how many bytes of
    /// `buf` were consumed (the rest must be offered again, with more after it).
    pub fn drain(&mut self, buf: &[u8], eof: bool, mut emit: impl FnMut(Message<'_>)) -> usize {
        let mut pos = 0;
        loop {
            match self.decoder.next(&buf[pos..], eof) {
                Next::Frame {
                    start,
                    end,
                    consumed,
                    kind,
                    original_len,
                    unterminated,
                } => {
                    emit(Message {
                        body: &buf[pos + start..pos + end],
                        kind,
                        original_len,
                        unterminated,
                    });
                    pos += consumed;
                }
                Next::Head {
                    start,
                    end,
                    consumed,
                } => {
                    self.held.clear();
                    self.held.extend_from_slice(&buf[pos + start..pos + end]);
                    pos += consumed;
                }
                Next::HeadEnd {
                    consumed,
                    original_len,
                    unterminated,
                } => {
                    let end = trim_end(&self.held, 0, self.held.len(), false);
                    emit(Message {
                        body: &self.held[..end],
                        kind: Kind::Newline,
                        original_len: Some(original_len),
                        unterminated,
                    });
                    pos += consumed;
                }
                Next::Skip(n) => pos += n,
                Next::More => return pos,
            }
        }
    }
}

/// Messages of a whole input delivered in pieces of the given sizes (cycled) through a
/// buffer of [`buffer_len`], as a stream reader would see them: for tests and the fuzz
/// target, which check that the pieces never change the messages.
pub fn decode_in_pieces(
    decoder: Decoder,
    input: &[u8],
    pieces: &[usize],
) -> Vec<(Vec<u8>, Kind, Option<usize>, bool)> {
    let cap = buffer_len(decoder.max);
    let mut framer = Framer::new(decoder);
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(cap);
    let mut fed = 0;
    let mut turn = 0;
    loop {
        let room = cap - buf.len();
        let want = pieces
            .get(turn % pieces.len().max(1))
            .copied()
            .unwrap_or(usize::MAX)
            .max(1);
        turn += 1;
        let n = want.min(room).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        let eof = fed == input.len();
        let used = framer.drain(&buf, eof, |m| {
            out.push((m.body.to_vec(), m.kind, m.original_len, m.unterminated))
        });
        assert!(used <= buf.len(), "consumed more than it was given");
        buf.drain(..used);
        if eof && buf.is_empty() && !framer.decoder.in_frame() {
            return out;
        }
        assert!(
            eof || buf.len() < cap,
            "a full buffer must always yield a step"
        );
        if eof && used == 0 {
            // Everything was offered with eof: what is left can never be taken.
            assert!(
                buf.is_empty() && !framer.decoder.in_frame(),
                "input left behind at eof"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syslog(max: usize) -> Decoder {
        Decoder::new(max, true, true)
    }

    fn bodies(d: Decoder, input: &[u8]) -> Vec<(String, Option<usize>, bool)> {
        decode_in_pieces(d, input, &[usize::MAX])
            .into_iter()
            .map(|(b, _, o, u)| (String::from_utf8_lossy(&b).into_owned(), o, u))
            .collect()
    }

    fn texts(d: Decoder, input: &[u8]) -> Vec<String> {
        bodies(d, input).into_iter().map(|b| b.0).collect()
    }

    #[test]
    fn newline_and_octet_frames_on_one_stream() {
        let input = b"<13>a one\n10 <13>b two\n<13>c three\n10 <13>d four";
        assert_eq!(
            texts(syslog(100), input),
            ["<13>a one", "<13>b two", "<13>c three", "<13>d four"]
        );
    }

    #[test]
    fn device_quirks_are_trimmed() {
        // ASA: a space after the newline; NUL and CR before it; empty lines; a counted body
        // with its own newline.
        let input = b"<1>a\n <2>b\r\n\n\n<3>c\0\n\t<4>d\n6 <5>ee\n";
        assert_eq!(
            texts(syslog(100), input),
            ["<1>a", "<2>b", "<3>c", "<4>d", "<5>ee"]
        );
        // Text formats keep leading blanks: they may be part of the line.
        assert_eq!(
            texts(
                Decoder::new(100, false, false),
                b"  indented\n12 not a count\n"
            ),
            ["  indented", "12 not a count"]
        );
    }

    #[test]
    fn digits_without_a_space_are_newline_framed() {
        assert_eq!(
            texts(syslog(100), b"2024-01-01 x\n123\n0 y\n"),
            ["2024-01-01 x", "123", "0 y"]
        );
    }

    #[test]
    fn oversized_frames_are_cut_and_the_stream_goes_on() {
        let mut input = Vec::new();
        input.extend_from_slice(b"20 <1>0123456789abcdefXYZ\n");
        input.extend_from_slice(&[b'x'; 50]);
        input.extend_from_slice(b"\n<2>after\n");
        assert_eq!(
            bodies(syslog(10), &input),
            [
                ("<1>0123456".into(), Some(20), false),
                // The counted frame's tail was skipped; what follows it is a line.
                ("YZ".into(), None, false),
                ("x".repeat(10), Some(50), false),
                ("<2>after".into(), None, false),
            ]
        );
    }

    #[test]
    fn end_of_input_inside_a_frame_keeps_what_came() {
        assert_eq!(
            bodies(syslog(100), b"<1>a\n30 <2>short"),
            [
                ("<1>a".into(), None, false),
                ("<2>short".into(), None, true)
            ]
        );
        assert_eq!(
            bodies(syslog(4), b"abcdefgh"),
            [("abcd".into(), Some(8), true)]
        );
    }

    #[test]
    fn pieces_never_change_the_messages() {
        let input = b"<1>a\n 11 <13>b two\r\n\0<3>long line here\n5 <4>x\n<5>tail";
        for max in [1, 3, 8, 100] {
            let whole = decode_in_pieces(syslog(max), input, &[usize::MAX]);
            for pieces in [&[1usize][..], &[2, 3], &[7, 1, 13]] {
                assert_eq!(
                    decode_in_pieces(syslog(max), input, pieces),
                    whole,
                    "max {max} pieces {pieces:?}"
                );
            }
        }
    }

    #[test]
    fn word_scan_finds_the_first_newline_or_nul() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200 {
            let mut hay: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly bytes near the ones searched for, to provoke false hits.
                    [b'\n', 0, 1, 11, 9, 0x8a, 0x80, b'x'][(state % 8) as usize]
                })
                .collect();
            for at in 0..hay.len() {
                let naive = hay[at..].iter().position(|&b| b == b'\n' || b == 0);
                assert_eq!(line_end(&hay[at..]), naive, "{hay:?} from {at}");
            }
            hay.retain(|&b| b != b'\n' && b != 0);
            assert_eq!(line_end(&hay), None);
        }
    }

    /// The decoder's invariants on mutated streams (the `net_framing` fuzz target checks
    /// the same on whatever libFuzzer finds).
    #[test]
    fn mutated_streams_decode_the_same_in_any_pieces() {
        let seeds: [&[u8]; 4] = [
            b"<13>Jan  1 00:00:00 h a: x\n12 <14>b c d e\n",
            b"<189>237: *Jan  8 19:46:03.295: %SYS-5-CONFIG_I: x\n <190>y\r\n",
            b"99999999999 <1>x\n0 y\n\0\0\n1",
            b"{\"a\":1}\n{\"b\":\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut buf = seeds[round % seeds.len()].to_vec();
            for _ in 0..(rnd() % 6) {
                let at = (rnd() as usize) % (buf.len() + 1);
                let alphabet = b"0123456789 \n\r\0<>x";
                match rnd() % 3 {
                    0 => buf.insert(at, alphabet[(rnd() as usize) % alphabet.len()]),
                    1 if at < buf.len() => {
                        buf.remove(at);
                    }
                    _ => buf.insert(at, rnd() as u8),
                }
            }
            let max = 1 + (rnd() as usize) % 24;
            let d = Decoder::new(max, rnd() % 2 == 0, rnd() % 2 == 0);
            let whole = decode_in_pieces(d.clone(), &buf, &[usize::MAX]);
            for (body, _, original, _) in &whole {
                assert!(body.len() <= max);
                assert!(original.is_none_or(|o| o > max));
            }
            let pieces = [1 + (rnd() as usize) % 5, 1 + (rnd() as usize) % 9];
            assert_eq!(
                decode_in_pieces(d, &buf, &pieces),
                whole,
                "{buf:?} max {max}"
            );
        }
    }
}
