//! Splits a byte stream into lines with a bound on memory: a line longer than the limit is
//! cut to its head and the rest skipped up to the next newline, with its full length
//! reported so that the row can be flagged.

use std::io::{self, BufRead};

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max_len: usize,
    /// Bytes consumed from `inner` so far (for progress and file offsets).
    consumed: u64,
}

/// One line, without its `\n` (and without a `\r` before it).
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// The line's length before it was cut, when it was longer than the limit.
    pub original_len: Option<usize>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(1024),
            max_len,
            consumed: 0,
        }
    }

    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next line, or `None` at end of input. A last line without a newline is still
    /// a line.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut saw_any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (chunk, used, done) = match memchr(available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            let room = self.max_len.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            total += chunk.len();
            self.inner.consume(used);
            self.consumed += used as u64;
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        if total <= self.max_len && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
            total -= 1;
        }
        Ok(Some(Line {
            bytes: &self.buf,
            original_len: (total > self.max_len).then_some(total),
        }))
    }
}

fn memchr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Vec<u8>, Option<usize>)> {
        let mut r = LineReader::new(io::BufReader::with_capacity(7, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.bytes.to_vec(), l.original_len));
        }
        assert_eq!(r.consumed(), input.len() as u64);
        out
    }

    #[test]
    fn splits_keeps_empty_lines_and_last_unterminated_line() {
        let got = lines(b"a\n\nbc\r\nd", 100);
        let want: Vec<(Vec<u8>, Option<usize>)> = vec![
            (b"a".to_vec(), None),
            (vec![], None),
            (b"bc".to_vec(), None),
            (b"d".to_vec(), None),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn long_lines_are_cut_and_report_their_length() {
        let mut input = vec![b'x'; 1 << 20];
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.len(), 1000);
        assert_eq!(got[0].1, Some(1 << 20));
        assert_eq!(got[1], (b"next".to_vec(), None));
    }
}
