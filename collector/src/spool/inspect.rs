//! `infra-collector spool status|verify`: what the spool holds, read without taking it
//! over (a running collector keeps writing).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::{apply_checkpoints, list_segments, record, rows};

#[derive(Debug, Default, Clone)]
pub struct SegmentStatus {
    pub seq: u64,
    pub sealed: bool,
    pub bytes: u64,
    pub records: usize,
    pub rows: u64,
    /// Damaged records stepped over inside the segment.
    pub damaged_bytes: u64,
    /// Bytes after the last intact record: a torn write (or one in progress, for the open
    /// segment of a running collector).
    pub tail_bytes: u64,
    /// Records whose checksum matched but whose rows could not be decoded (verify only).
    pub undecodable: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Status {
    pub segments: Vec<SegmentStatus>,
    pub checkpoints: BTreeMap<String, String>,
    pub instance: Option<String>,
}

impl Status {
    /// Damage a collector would have to cut or skip: damaged records anywhere, torn tails
    /// of sealed segments, records that do not decode.
    pub fn problems(&self) -> usize {
        self.segments
            .iter()
            .map(|s| {
                (s.damaged_bytes > 0) as usize
                    + (s.sealed && s.tail_bytes > 0) as usize
                    + s.undecodable
            })
            .sum()
    }

    pub fn render(&self, dir: &Path) -> String {
        let mut out = String::new();
        let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
        let _ = writeln!(
            out,
            "spool {} (instance {}): {} segment(s), {} bytes",
            dir.display(),
            self.instance.as_deref().unwrap_or("none yet"),
            self.segments.len(),
            total
        );
        let _ = writeln!(
            out,
            "  {:<16}  {:<6}  {:>12}  {:>8}  {:>10}  problems",
            "segment", "state", "bytes", "records", "rows"
        );
        for s in &self.segments {
            let mut problems = Vec::new();
            if s.damaged_bytes > 0 {
                problems.push(format!("{} damaged bytes", s.damaged_bytes));
            }
            if s.tail_bytes > 0 {
                problems.push(if s.sealed {
                    format!("{} bytes torn tail", s.tail_bytes)
                } else {
                    format!("{} bytes being written or torn", s.tail_bytes)
                });
            }
            if s.undecodable > 0 {
                problems.push(format!("{} undecodable records", s.undecodable));
            }
            let _ = writeln!(
                out,
                "  {:016x}  {:<6}  {:>12}  {:>8}  {:>10}  {}",
                s.seq,
                if s.sealed { "sealed" } else { "open" },
                s.bytes,
                s.records,
                s.rows,
                if problems.is_empty() {
                    "-".to_string()
                } else {
                    problems.join(", ")
                }
            );
        }
        let waiting: Vec<_> = self.segments.iter().filter(|s| s.sealed).collect();
        let _ = writeln!(
            out,
            "waiting for the archive: {} sealed segment(s), {} bytes, {} rows",
            waiting.len(),
            waiting.iter().map(|s| s.bytes).sum::<u64>(),
            waiting.iter().map(|s| s.rows).sum::<u64>()
        );
        let _ = writeln!(out, "checkpoints ({}):", self.checkpoints.len());
        for (k, v) in &self.checkpoints {
            let _ = writeln!(out, "  {k} = {v}");
        }
        out
    }
}

/// Reads every segment and decodes every record, checking each checksum and each batch.
pub fn inspect(dir: &Path) -> Result<Status> {
    let mut status = Status {
        instance: std::fs::read_to_string(dir.join("instance"))
            .ok()
            .map(|s| s.trim().to_string()),
        ..Status::default()
    };
    for (seq, sealed, path) in list_segments(dir)? {
        // The open segment may be renamed (sealed) or deleted (archived) under us.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let scan = record::scan(&bytes);
        let mut s = SegmentStatus {
            seq,
            sealed,
            bytes: bytes.len() as u64,
            records: scan.records.len(),
            damaged_bytes: scan.skipped_bytes() as u64,
            tail_bytes: (bytes.len() - scan.valid_end) as u64,
            ..SegmentStatus::default()
        };
        for r in &scan.records {
            let Ok(p) = record::parse_payload(&bytes[r.clone()]) else {
                s.undecodable += 1;
                continue;
            };
            apply_checkpoints(&mut status.checkpoints, &p.checkpoints);
            match rows::decode(p.ipc) {
                Ok(b) => s.rows += b.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
                Err(_) => s.undecodable += 1,
            }
        }
        status.segments.push(s);
    }
    Ok(status)
}
