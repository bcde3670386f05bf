//! Per-sink counters, kept by the running collector and written every second to
//! `<spool>/forward-status/<sink>.json` so that `infra-collector forward status` can show
//! them beside the lag it computes from the spool and the sink's cursor.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::spool::list_segments;
use crate::spool::release::{Cursor, load_cursor};

#[derive(Debug, Default)]
pub struct SinkStats {
    /// Rows handed to the target, retries included.
    pub sent: AtomicU64,
    /// Rows the target confirmed (for Elasticsearch: created, or already there).
    pub acked: AtomicU64,
    /// Rows Elasticsearch already held (409 on `create`): counted as delivered.
    pub duplicates: AtomicU64,
    /// Rows sent again after a failure.
    pub retried: AtomicU64,
    /// Rows the target refused for good, kept in the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// UDP documents cut to the datagram limit.
    pub truncated: AtomicU64,
    /// Rows passed to the fallback sink while this one was failing.
    pub to_fallback: AtomicU64,
    pub last: Mutex<Last>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Last {
    pub error: Option<String>,
    /// Unix seconds.
    pub error_at: Option<u64>,
    pub success_at: Option<u64>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SinkStats {
    pub fn error(&self, e: &anyhow::Error) {
        let mut l = self.last.lock().unwrap_or_else(|e| e.into_inner());
        l.error = Some(format!("{e:#}"));
        l.error_at = Some(now_secs());
    }

    pub fn success(&self) {
        let mut l = self.last.lock().unwrap_or_else(|e| e.into_inner());
        l.success_at = Some(now_secs());
    }

    pub fn snapshot(&self, name: &str, dropped_segments: u64, dropped_bytes: u64) -> Status {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Status {
            sink: name.to_string(),
            sent: g(&self.sent),
            acked: g(&self.acked),
            duplicates: g(&self.duplicates),
            retried: g(&self.retried),
            dead_lettered: g(&self.dead_lettered),
            truncated: g(&self.truncated),
            to_fallback: g(&self.to_fallback),
            dropped_segments,
            dropped_bytes,
            last: self.last.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            written_at: now_secs(),
        }
    }
}

/// What the running collector last wrote about a sink (counters since it started).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub sink: String,
    pub sent: u64,
    pub acked: u64,
    pub duplicates: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub truncated: u64,
    pub to_fallback: u64,
    /// Segments skipped for this sink by its `drop_oldest` limit, and their bytes.
    pub dropped_segments: u64,
    pub dropped_bytes: u64,
    pub last: Last,
    pub written_at: u64,
}

/// The name under which a primary's fallback keeps its counters (each primary has its own
/// connection to the fallback).
pub fn fallback_label(fallback: &str, primary: &str) -> String {
    format!("{fallback}.via-{primary}")
}

pub fn status_path(spool_dir: &Path, sink: &str) -> PathBuf {
    spool_dir
        .join("forward-status")
        .join(format!("{sink}.json"))
}

pub fn write_status(spool_dir: &Path, s: &Status) -> anyhow::Result<()> {
    let path = status_path(spool_dir, &s.sink);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(s)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// How far a sink is behind: the sealed segments at or after its cursor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lag {
    pub cursor: Option<(u64, u64, u64)>,
    pub segments: u64,
    /// Rows not yet delivered (from the record headers; the rows are not decoded).
    pub rows: u64,
    pub bytes: u64,
    /// Age of the oldest segment it has not finished, seconds.
    pub oldest_secs: Option<u64>,
}

pub fn lag(spool_dir: &Path, sink: &str) -> anyhow::Result<Lag> {
    let cursor: Option<Cursor> = load_cursor(spool_dir, sink)?;
    let from = cursor.map_or(0, |c| c.seq);
    let mut lag = Lag {
        cursor: cursor.map(|c| (c.seq, c.record, c.row)),
        ..Lag::default()
    };
    for (seq, sealed, path) in list_segments(spool_dir)? {
        if !sealed || seq < from {
            continue;
        }
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        lag.segments += 1;
        lag.bytes += m.len();
        let skip = cursor.filter(|c| c.seq == seq).map(|c| (c.record, c.row));
        lag.rows += rows_after(&path, skip).unwrap_or(0);
        if lag.oldest_secs.is_none() {
            lag.oldest_secs = m
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .map(|d| d.as_secs());
        }
    }
    Ok(lag)
}

/// Rows of a sealed segment, after `(record, row)` when given: read from each record's
/// Arrow IPC message header, without decoding the rows.
fn rows_after(path: &Path, from: Option<(u64, u64)>) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path)?;
    let mut total = 0;
    for (i, r) in crate::spool::record::scan(&bytes)
        .records
        .iter()
        .enumerate()
    {
        let Ok(p) = crate::spool::record::parse_payload(&bytes[r.clone()]) else {
            continue;
        };
        let n = ipc_rows(p.ipc);
        total += match from {
            Some((rec, _)) if (i as u64) < rec => 0,
            Some((rec, row)) if i as u64 == rec => n.saturating_sub(row),
            _ => n,
        };
    }
    Ok(total)
}

/// The row count of every record batch message of an Arrow IPC stream.
fn ipc_rows(mut ipc: &[u8]) -> u64 {
    let mut rows = 0;
    while ipc.len() >= 8 && ipc[..4] == [0xff; 4] {
        let len = i32::from_le_bytes(ipc[4..8].try_into().expect("4 bytes"));
        let Ok(len) = usize::try_from(len) else { break };
        if len == 0 {
            // The end of a stream; another may follow.
            ipc = &ipc[8..];
            continue;
        }
        let Some(meta) = ipc.get(8..8 + len) else {
            break;
        };
        let Ok(m) = arrow::ipc::root_as_message(meta) else {
            break;
        };
        if let Some(b) = m.header_as_record_batch() {
            rows += b.length().max(0) as u64;
        }
        let body = usize::try_from(m.bodyLength()).unwrap_or(usize::MAX);
        let next = (8 + len).saturating_add(body);
        ipc = ipc.get(next..).unwrap_or(&[]);
    }
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_are_counted_from_ipc_headers() {
        let b = crate::forward::doc::tests::batch(&[("a", &[]), ("b", &[]), ("c", &[])]);
        let mut ipc = Vec::new();
        crate::spool::rows::append(&b, &mut ipc).unwrap();
        crate::spool::rows::append(&b.slice(0, 2), &mut ipc).unwrap();
        assert_eq!(super::ipc_rows(&ipc), 5);
        assert_eq!(super::ipc_rows(&[]), 0);
        assert_eq!(super::ipc_rows(&ipc[..ipc.len() / 3]), 3);
    }
}
