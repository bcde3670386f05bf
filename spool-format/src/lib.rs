//! The on-disk format of the infralog spool, shared by the collector (which writes and
//! archives it) and infra-query (which reads the rows not yet archived, for freshness).
//!
//! - [`record`]: the `ILR1` record framing (checkpoints and rows under one checksum);
//! - [`rows`]: a record's rows as an Arrow IPC stream;
//! - segment names (`<seq>.open`, `<seq>.seg`, 16 hex digits) and [`read_spool`], which
//!   reads every intact row of a spool without locking or changing it, so it can run
//!   beside the collector that owns the spool.

pub mod record;
pub mod rows;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow::record_batch::RecordBatch;

/// The file holding a spool's instance id, part of every archived object's name.
pub const INSTANCE_FILE: &str = "instance";

/// Path of segment `seq`: `<seq>.open` while written, `<seq>.seg` once sealed.
pub fn segment_path(dir: &Path, seq: u64, sealed: bool) -> PathBuf {
    dir.join(format!(
        "{seq:016x}.{}",
        if sealed { "seg" } else { "open" }
    ))
}

/// `(seq, sealed)` of a segment file name; `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<(u64, bool)> {
    let (stem, ext) = name.split_once('.')?;
    let sealed = match ext {
        "seg" => true,
        "open" => false,
        _ => return None,
    };
    if stem.len() != 16 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((u64::from_str_radix(stem, 16).ok()?, sealed))
}

/// Segment files in the directory, oldest first: `(seq, sealed, path)`.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, bool, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e?;
        if let Some((seq, sealed)) = e.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, sealed, e.path()));
        }
    }
    out.sort_by_key(|(seq, sealed, _)| (*seq, *sealed));
    Ok(out)
}

/// The directory under a spool where its consumers (the archiver, forwarding sinks) keep
/// their cursors: one file per consumer, `seq record row`.
pub const CURSOR_DIR: &str = "cursors";
/// The archiver's cursor file in [`CURSOR_DIR`].
pub const ARCHIVE_CURSOR: &str = "archive";

/// Every segment below this one is archived (the archiver's cursor); 0 when unknown. A
/// forwarding sink may keep such segments in the spool after they were archived.
pub fn archived_below(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(CURSOR_DIR).join(ARCHIVE_CURSOR))
        .ok()
        .and_then(|t| t.split_ascii_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The spool's instance id, `None` when the spool has none yet.
pub fn read_instance(dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(dir.join(INSTANCE_FILE)).ok()?;
    let s = s.trim();
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_string())
}

/// The rows of one segment, as far as its intact records go.
#[derive(Debug, Clone)]
pub struct SegmentRows {
    pub seq: u64,
    pub batches: Vec<RecordBatch>,
    /// Records whose checksum matched but whose rows did not decode (another version's).
    pub undecodable: usize,
}

/// What [`read_spool`] found.
#[derive(Debug, Clone, Default)]
pub struct SpoolRows {
    pub instance: Option<String>,
    pub segments: Vec<SegmentRows>,
}

impl SpoolRows {
    pub fn rows(&self) -> usize {
        self.segments
            .iter()
            .flat_map(|s| &s.batches)
            .map(|b| b.num_rows())
            .sum()
    }
}

/// Reads a segment that may be sealed (renamed) or archived (deleted) while we look:
/// `None` when it is gone.
fn read_segment_file(dir: &Path, seq: u64, sealed: bool) -> Result<Option<Vec<u8>>> {
    let candidates = if sealed {
        vec![segment_path(dir, seq, true)]
    } else {
        vec![segment_path(dir, seq, false), segment_path(dir, seq, true)]
    };
    for path in candidates {
        match std::fs::read(&path) {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        }
    }
    Ok(None)
}

/// Every intact row of the spool at `dir`, segment by segment, read without the lock: a
/// running collector keeps appending, sealing and deleting segments meanwhile. A segment
/// deleted before it is read is left out (the archiver deletes a segment only after its
/// files are written, so its rows are in the archive); a torn or growing tail is cut at
/// the last intact record. A missing directory is an empty spool.
pub fn read_spool(dir: &Path) -> Result<SpoolRows> {
    let listed = match list_segments(dir) {
        Ok(l) => l,
        Err(_) if !dir.exists() => return Ok(SpoolRows::default()),
        Err(e) => return Err(e),
    };
    let mut out = SpoolRows {
        instance: read_instance(dir),
        segments: Vec::new(),
    };
    // Segments kept only for a forwarding sink are in the archive already.
    let archived = archived_below(dir);
    for (seq, sealed, _) in listed.into_iter().filter(|s| s.0 >= archived) {
        // `list_segments` can list one seq twice (renamed between two directory reads).
        if out.segments.last().is_some_and(|s| s.seq == seq) {
            continue;
        }
        let Some(bytes) = read_segment_file(dir, seq, sealed)? else {
            continue;
        };
        let scan = record::scan(&bytes);
        let mut seg = SegmentRows {
            seq,
            batches: Vec::new(),
            undecodable: 0,
        };
        for r in &scan.records {
            let decoded =
                record::parse_payload(&bytes[r.clone()]).and_then(|p| rows::decode(p.ipc));
            match decoded {
                Ok(batches) => seg
                    .batches
                    .extend(batches.into_iter().filter(|b| b.num_rows() > 0)),
                Err(_) => seg.undecodable += 1,
            }
        }
        out.segments.push(seg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn write_segment(dir: &Path, seq: u64, sealed: bool, batches: &[RecordBatch]) -> Vec<u8> {
        let mut out = Vec::new();
        record::encode(&[("k", "start")], |_| Ok(()), &mut out).unwrap();
        for b in batches {
            record::encode(&[("k", "v")], |o| rows::append(b, o), &mut out).unwrap();
        }
        std::fs::write(segment_path(dir, seq, sealed), &out).unwrap();
        out
    }

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(parse_segment_name("000000000000002a.seg"), Some((42, true)));
        assert_eq!(
            parse_segment_name("000000000000002a.open"),
            Some((42, false))
        );
        assert_eq!(parse_segment_name("000000000000002a.bad"), None);
        assert_eq!(parse_segment_name("lock"), None);
        assert_eq!(parse_segment_name("+00000000000002a.seg"), None);
        assert_eq!(
            segment_path(dir.path(), 42, true).file_name().unwrap(),
            "000000000000002a.seg"
        );
    }

    #[test]
    fn reads_sealed_and_open_segments_and_cuts_a_growing_tail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("instance"), "00000000000000aa\n").unwrap();
        std::fs::write(dir.path().join("lock"), "").unwrap();
        write_segment(dir.path(), 1, true, &[batch(&[1, 2]), batch(&[3])]);
        let open = write_segment(dir.path(), 2, false, &[batch(&[4, 5, 6])]);
        // A record being written: its header and half its payload.
        let mut partial = open.clone();
        record::encode(&[], |o| rows::append(&batch(&[7]), o), &mut partial).unwrap();
        partial.truncate(open.len() + 20);
        std::fs::write(segment_path(dir.path(), 2, false), &partial).unwrap();

        let spool = read_spool(dir.path()).unwrap();
        assert_eq!(spool.instance.as_deref(), Some("00000000000000aa"));
        let seqs: Vec<u64> = spool.segments.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(spool.segments[0].batches.len(), 2);
        assert_eq!(spool.rows(), 6);
    }

    #[test]
    fn a_missing_spool_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let spool = read_spool(&dir.path().join("nope")).unwrap();
        assert!(spool.segments.is_empty());
        assert_eq!(spool.instance, None);
    }

    #[test]
    fn an_open_segment_sealed_meanwhile_is_read_under_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 3, true, &[batch(&[1])]);
        // Listed as open, found sealed.
        let bytes = read_segment_file(dir.path(), 3, false).unwrap();
        assert!(bytes.is_some());
        assert!(read_segment_file(dir.path(), 4, false).unwrap().is_none());
    }
}
