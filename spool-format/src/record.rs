//! The spool's record framing: pure functions over bytes, so that recovery can be fuzzed.
//!
//! A segment file is a sequence of records:
//!
//! ```text
//! magic "ILR1" | payload length u32 LE | CRC-32 of the payload u32 LE | payload
//! payload = checkpoint count u16 LE
//!           (key length u16 LE | key | value length u32 LE | value) * count
//!           Arrow IPC stream of the rows (schema, one batch, end marker), or nothing
//! ```
//!
//! The rows and the checkpoints that follow them share one checksum, so they become
//! durable together or not at all. Each record starts with a magic number so that a
//! scan can step over a damaged record and resynchronise on the next intact one instead
//! of losing the rest of the segment.

use std::ops::Range;

use anyhow::{Context, Result, bail};

pub const MAGIC: [u8; 4] = *b"ILR1";
pub const HEADER_LEN: usize = 12;
/// No record is larger: a length above it is damage, not data.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Appends one record to `out`; `rows` appends the record's rows (an Arrow IPC stream, see
/// [`super::rows`]) or nothing.
pub fn encode(
    checkpoints: &[(&str, &str)],
    rows: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 8]);
    let payload_start = out.len();
    let count = u16::try_from(checkpoints.len()).context("too many checkpoints in one record")?;
    out.extend_from_slice(&count.to_le_bytes());
    for (key, value) in checkpoints {
        let klen = u16::try_from(key.len()).context("checkpoint key longer than 64 KiB")?;
        let vlen = u32::try_from(value.len()).context("checkpoint value longer than 4 GiB")?;
        out.extend_from_slice(&klen.to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&vlen.to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    if let Err(e) = rows(out) {
        out.truncate(start);
        return Err(e);
    }
    let payload_len = out.len() - payload_start;
    if payload_len > MAX_PAYLOAD {
        out.truncate(start);
        bail!("a spool record of {payload_len} bytes is over the limit of {MAX_PAYLOAD}");
    }
    let crc = crc32fast::hash(&out[payload_start..]);
    out[start + 4..start + 8].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One record's contents, borrowed from the segment bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<'a> {
    pub checkpoints: Vec<(&'a str, &'a str)>,
    /// The Arrow IPC stream of the rows; empty when the record holds only checkpoints.
    pub ipc: &'a [u8],
}

/// Splits a payload whose checksum already matched.
pub fn parse_payload(p: &[u8]) -> Result<Payload<'_>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = p
            .get(at..at.checked_add(n).context("length overflow")?)
            .context("spool record payload ends early")?;
        at += n;
        Ok(s)
    };
    let count = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes"));
    let mut checkpoints = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let klen = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        let key = std::str::from_utf8(take(klen)?).context("checkpoint key is not UTF-8")?;
        let vlen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let value = std::str::from_utf8(take(vlen)?).context("checkpoint value is not UTF-8")?;
        checkpoints.push((key, value));
    }
    Ok(Payload {
        checkpoints,
        ipc: &p[at..],
    })
}

/// What a scan of a segment found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Byte ranges of the payloads of intact records, in order.
    pub records: Vec<Range<usize>>,
    /// Damaged regions stepped over (a later intact record followed them).
    pub skipped: Vec<Range<usize>>,
    /// Where the last intact record ends: anything after it is a torn or damaged tail.
    pub valid_end: usize,
}

impl Scan {
    pub fn skipped_bytes(&self) -> usize {
        self.skipped.iter().map(|r| r.len()).sum()
    }
}

/// The payload range of an intact record starting at `at`, if one does.
fn record_at(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let header = bytes.get(at..at.checked_add(HEADER_LEN)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let start = at + HEADER_LEN;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then(|| start..start + len)
}

/// Finds every intact record. A damaged record is stepped over by searching for the next
/// magic number that starts an intact record; if none follows, the damage is the tail.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut at = 0;
    while at < bytes.len() {
        if let Some(r) = record_at(bytes, at) {
            at = r.end;
            out.records.push(r);
            out.valid_end = at;
            continue;
        }
        let mut from = at + 1;
        let next = loop {
            match memfind(&bytes[from..], &MAGIC) {
                Some(i) if record_at(bytes, from + i).is_some() => break Some(from + i),
                Some(i) => from += i + 1,
                None => break None,
            }
        };
        match next {
            Some(p) => {
                out.skipped.push(at..p);
                at = p;
            }
            None => break,
        }
    }
    out
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> impl FnOnce(&mut Vec<u8>) -> Result<()> + '_ {
        move |out| {
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
    }

    fn segment() -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        for i in 0..4 {
            starts.push(out.len());
            let v = format!("{i}");
            let r = format!("rows of record {i}, {}", "x".repeat(40 * i));
            encode(&[("file:a", &v)], rows(&r), &mut out).unwrap();
        }
        starts.push(out.len());
        encode(&[("kmsg", "b 7"), ("file:a", "")], rows(""), &mut out).unwrap();
        (out, starts)
    }

    #[test]
    fn round_trip_keeps_rows_and_checkpoints_together() {
        let (bytes, _) = segment();
        let s = scan(&bytes);
        assert_eq!(s.records.len(), 5);
        assert_eq!(s.valid_end, bytes.len());
        assert!(s.skipped.is_empty());
        let p = parse_payload(&bytes[s.records[2].clone()]).unwrap();
        assert_eq!(p.checkpoints, [("file:a", "2")]);
        assert!(p.ipc.starts_with(b"rows of record 2, xxx"));
        let last = parse_payload(&bytes[s.records[4].clone()]).unwrap();
        assert_eq!(last.checkpoints, [("kmsg", "b 7"), ("file:a", "")]);
        assert!(last.ipc.is_empty());
    }

    #[test]
    fn a_failed_row_encoding_leaves_nothing_behind() {
        let mut out = b"before".to_vec();
        let err = encode(&[("k", "v")], |_| anyhow::bail!("no"), &mut out);
        assert!(err.is_err());
        assert_eq!(out, b"before");
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_intact_record() {
        let (bytes, starts) = segment();
        for cut in [starts[3] + 1, starts[3] + HEADER_LEN + 10, bytes.len() - 1] {
            let s = scan(&bytes[..cut]);
            let expect = if cut > starts[4] { 4 } else { 3 };
            assert_eq!(s.records.len(), expect, "cut at {cut}");
            assert_eq!(s.valid_end, starts[expect]);
            assert!(s.skipped.is_empty());
        }
    }

    #[test]
    fn flipped_byte_loses_only_its_record() {
        let (bytes, starts) = segment();
        // In the payload, in the length field, in the magic.
        for pos in [starts[1] + 30, starts[1] + 5, starts[1]] {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x5a;
            let s = scan(&bad);
            assert_eq!(s.records.len(), 4, "flip at {pos}");
            assert_eq!(s.skipped, vec![starts[1]..starts[2]]);
            assert_eq!(s.valid_end, bytes.len());
            let after = parse_payload(&bad[s.records[1].clone()]).unwrap();
            assert_eq!(after.checkpoints, [("file:a", "2")]);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let (bytes, _) = segment();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = bytes.clone();
            for k in 0..(x % 6) {
                let pos = ((x >> (8 * k)) as usize) % b.len();
                b[pos] = (x >> 3) as u8;
            }
            let cut = (x as usize >> 20) % (b.len() + 1);
            let s = scan(&b[..cut]);
            for r in &s.records {
                let _ = parse_payload(&b[r.clone()]);
            }
        }
    }
}
