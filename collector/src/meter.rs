//! Per-source counters for the operations endpoint, counted once per chunk between the
//! sources and the pipeline: every source is counted the same way (rows by their `source`
//! column, message bytes, parse errors and truncations from `extra`), and no source needs
//! counters of its own for it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use arrow::array::{Array, MapArray, StringArray};
use crossbeam_channel::{Receiver, Sender};
use infralog_schemas::{col, extra_key};
use serde::Serialize;

use crate::chunk::Chunk;

/// What one source (a value of the `source` column) has sent since the collector started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceCounts {
    pub lines: u64,
    /// Bytes of the messages as archived (after any cut).
    pub bytes: u64,
    pub parse_errors: u64,
    pub truncated: u64,
    /// Unix seconds of the last chunk, and of the last one that moved a checkpoint.
    pub last_chunk_at: Option<f64>,
    pub last_checkpoint_at: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Meter {
    sources: Mutex<BTreeMap<String, SourceCounts>>,
    /// The last checkpoint each source sent, for a source restarted in this process
    /// (a reload): it resumes right after the last row it handed on, which the pipeline
    /// will make durable like any other.
    positions: Mutex<BTreeMap<String, String>>,
    /// The last barrier passed (see [`Meter::wait_for`]).
    barrier: AtomicU64,
}

/// The checkpoint key of a barrier chunk: it marks a point in the stream and goes no
/// further than the meter.
const BARRIER_KEY: &str = "\0meter-barrier";

/// A chunk that, once the meter has taken it, proves every chunk sent before it was
/// counted: `Meter::passed(id)`.
pub fn barrier(id: u64) -> Chunk {
    Chunk {
        batch: arrow::record_batch::RecordBatch::new_empty(infralog_schemas::logs_schema()),
        checkpoint: Some(crate::chunk::Checkpoint {
            key: BARRIER_KEY.into(),
            value: id.to_string(),
        }),
    }
}

impl Meter {
    pub fn snapshot(&self) -> BTreeMap<String, SourceCounts> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Positions sent since the start, over `recovered` (those the spool held at start).
    pub fn positions_over(&self, recovered: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut all = recovered.clone();
        let sent = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in sent.iter() {
            crate::spool::apply_checkpoints(&mut all, &[(k.as_str(), v.as_str())]);
        }
        all
    }

    /// Waits until the meter has taken barrier `id` (sent after what must be counted).
    pub fn wait_for(&self, id: u64, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.barrier.load(Ordering::Acquire) < id {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Counts a chunk's rows; a chunk whose columns are not the `logs` schema's is left
    /// uncounted (it is the spool's to refuse, not ours).
    pub fn count(&self, chunk: &Chunk) {
        let now = crate::time::now_ns() as f64 / 1e9;
        if let Some(cp) = &chunk.checkpoint {
            // Kept with an empty value too: it forgets the key over the recovered ones.
            (self.positions.lock().unwrap_or_else(|e| e.into_inner()))
                .insert(cp.key.clone(), cp.value.clone());
        }
        let batch = &chunk.batch;
        let column = |name: &str| batch.column_by_name(name);
        let Some(source) =
            column(col::SOURCE).and_then(|c| c.as_any().downcast_ref::<StringArray>())
        else {
            return;
        };
        let message = column(col::MESSAGE).and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let extra = column(col::EXTRA).and_then(|c| c.as_any().downcast_ref::<MapArray>());
        let extra_keys = extra.and_then(|m| m.keys().as_any().downcast_ref::<StringArray>());
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        // A chunk almost always holds one source: look it up once per run of equal values.
        let mut i = 0;
        while i < batch.num_rows() {
            let name = source.value(i);
            let mut end = i + 1;
            while end < batch.num_rows() && source.value(end) == name {
                end += 1;
            }
            let c = match sources.get_mut(name) {
                Some(c) => c,
                None => sources.entry(name.to_string()).or_default(),
            };
            c.lines += (end - i) as u64;
            if let Some(m) = message {
                let offsets = m.value_offsets();
                c.bytes += (offsets[end] - offsets[i]) as u64;
            }
            if let (Some(map), Some(keys)) = (extra, extra_keys) {
                let offsets = map.value_offsets();
                for k in offsets[i] as usize..offsets[end] as usize {
                    match keys.value(k) {
                        extra_key::PARSE_ERROR => c.parse_errors += 1,
                        extra_key::TRUNCATED => c.truncated += 1,
                        _ => {}
                    }
                }
            }
            c.last_chunk_at = Some(now);
            if chunk.checkpoint.is_some() {
                c.last_checkpoint_at = Some(now);
            }
            i = end;
        }
    }
}

/// Passes every chunk from `rx` on to `tx`, counting it first, until every sender of `rx`
/// is gone. One chunk in flight: backpressure reaches the sources as before.
pub fn spawn(meter: Arc<Meter>, rx: Receiver<Chunk>, tx: Sender<Chunk>) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("meter".into())
        .spawn(move || {
            for chunk in rx {
                if let Some(cp) = chunk.checkpoint.as_ref().filter(|c| c.key == BARRIER_KEY) {
                    let id = cp.value.parse().unwrap_or(0);
                    meter.barrier.store(id, Ordering::Release);
                    continue;
                }
                meter.count(&chunk);
                if tx.send(chunk).is_err() {
                    // The pipeline is gone; the sources see it when their sends fail.
                    break;
                }
            }
        })
        .context("cannot start the meter thread")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};

    #[test]
    fn counts_lines_bytes_parse_errors_and_truncations_per_source() {
        let mut b = LogBatchBuilder::with_max_message(8, 64);
        let long = [b'x'; 100];
        let rows = [
            ("file", &b"hello"[..], None),
            ("file", &b"bad line"[..], Some("no priority")),
            ("kmsg", &long[..], None),
        ];
        for (source, message, parse_error) in rows {
            let row = Row {
                source,
                message,
                hostname: b"h",
                parse_error,
                ..Row::default()
            };
            b.append(&row, 0, |_| {});
        }
        let chunk = Chunk {
            batch: b.finish(),
            checkpoint: None,
        };
        let meter = Meter::default();
        meter.count(&chunk);
        meter.count(&chunk);
        let s = meter.snapshot();
        let file = &s["file"];
        assert_eq!((file.lines, file.bytes), (4, 26));
        assert_eq!((file.parse_errors, file.truncated), (2, 0));
        let kmsg = &s["kmsg"];
        assert_eq!((kmsg.lines, kmsg.bytes, kmsg.truncated), (2, 128, 2));
        assert!(kmsg.last_chunk_at.is_some() && kmsg.last_checkpoint_at.is_none());
    }
}
