//! The archiver: turns each sealed spool segment into one sorted zstd Parquet object per
//! (hostname, log_date) it holds, then releases the segment (deleted once every
//! forwarding sink has it too, see [`crate::spool::release`]).
//!
//! Object names derive from the segment (`<instance>-<seq>.parquet`), so archiving the
//! same segment twice — after a crash between the upload and the delete, or a retried
//! upload — overwrites the same objects instead of doubling rows. A segment is deleted
//! only once every object made from it is durable.
//!
//! Beside each `logs` file the archiver writes the file of the same name in the `stats`
//! table (the hourly rollup of its rows), before the segment is deleted.
//!
//! Memory is bounded by one segment: its rows are decoded, split by partition and encoded
//! (partitions in parallel), and dropped before the next segment is read.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::Date32Type;
use crossbeam_channel::Receiver;
use infralog_schemas::{LOGS_TABLE, STATS_TABLE, col, logs_schema, table_partition_dir};

use super::parquet::{EncodeOptions, encode_with};
use super::stats::Rollup;
use super::{Archive, conform};
use crate::spool::release::{self, Cursor, Release};
use crate::spool::{Segment, Usage, record, rows, sync_dir};
use crate::time::format_date;

#[derive(Debug, Clone, Copy)]
pub struct ArchiverOptions {
    /// Threads that encode a segment's partitions.
    pub encoders: usize,
    pub encode: EncodeOptions,
}

impl Default for ArchiverOptions {
    fn default() -> Self {
        Self {
            encoders: std::thread::available_parallelism().map_or(2, |n| n.get()),
            encode: EncodeOptions::default(),
        }
    }
}

/// What the archiver did over its lifetime.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveReport {
    pub segments: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Counters of the archiver, readable while it runs.
#[derive(Debug, Default)]
pub struct ArchiverStats {
    pub segments: AtomicU64,
    pub rows: AtomicU64,
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub failures: AtomicU64,
    /// Segments set aside as unreadable (`<seq>.bad`).
    pub quarantined: AtomicU64,
}

pub struct Archiver {
    handle: JoinHandle<Result<ArchiveReport>>,
    pub stats: Arc<ArchiverStats>,
}

/// What the archiver needs from the spool.
pub struct SpoolHandoff {
    pub instance: String,
    /// Sealed segments found at start-up, oldest first.
    pub backlog: Vec<Segment>,
    /// Segments the writer seals while running; closed when the writer stops.
    pub sealed: Receiver<Segment>,
    pub usage: Arc<Usage>,
    pub release: Arc<Release>,
}

impl Archiver {
    /// Starts the archiver. It archives the backlog, then each segment the writer seals,
    /// and returns when the writer is gone and everything handed over is archived — or,
    /// once `shutdown` is set, when the archive keeps failing (the segments stay in the
    /// spool for the next start).
    pub fn spawn(
        archive: Archive,
        spool: SpoolHandoff,
        opts: ArchiverOptions,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Archiver> {
        let stats = Arc::new(ArchiverStats::default());
        let s = stats.clone();
        let handle = std::thread::Builder::new()
            .name("archiver".into())
            .spawn(move || {
                let mut a = Worker {
                    archive,
                    instance: spool.instance,
                    usage: spool.usage,
                    release: spool.release,
                    opts,
                    shutdown,
                    stats: s,
                    report: ArchiveReport::default(),
                };
                for seg in spool.backlog.into_iter().chain(spool.sealed.iter()) {
                    if !a.archive_with_retry(&seg) {
                        break;
                    }
                }
                Ok(a.report)
            })
            .context("cannot start the archiver thread")?;
        Ok(Archiver { handle, stats })
    }

    pub fn join(self) -> Result<ArchiveReport> {
        match self.handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

struct Worker {
    archive: Archive,
    instance: String,
    usage: Arc<Usage>,
    release: Arc<Release>,
    opts: ArchiverOptions,
    shutdown: Arc<AtomicBool>,
    stats: Arc<ArchiverStats>,
    report: ArchiveReport,
}

impl Worker {
    /// Archives one segment, retrying with backoff while the collector runs. Returns
    /// false when it gave up (shutting down with the archive unreachable).
    fn archive_with_retry(&mut self, seg: &Segment) -> bool {
        let mut delay = Duration::from_millis(500);
        let mut attempts_while_stopping = 0;
        loop {
            match self.archive_segment(seg) {
                Ok(()) => return true,
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        segment = %seg.path.display(),
                        "cannot archive spool segment (retrying in {delay:?}): {e:#}"
                    );
                    if self.shutdown.load(Ordering::Relaxed) {
                        attempts_while_stopping += 1;
                        if attempts_while_stopping >= 3 {
                            tracing::warn!(
                                "giving up archiving for now: the spool keeps what is left \
                                 for the next start"
                            );
                            return false;
                        }
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    fn archive_segment(&mut self, seg: &Segment) -> Result<()> {
        let bytes = std::fs::read(&seg.path)
            .with_context(|| format!("cannot read segment {}", seg.path.display()))?;
        let partitions = match partitions_of(&bytes, &seg.path) {
            Ok(p) => p,
            Err(e) => return self.quarantine(seg, e),
        };
        drop(bytes);
        let name = format!("{}-{:016x}.parquet", self.instance, seg.seq);
        let mut jobs: Vec<Job> = partitions
            .into_iter()
            .map(|((host, day), batches)| {
                let day = format_date(day);
                Job {
                    logs_path: format!("{}/{name}", table_partition_dir(LOGS_TABLE, &host, &day)),
                    stats_path: format!("{}/{name}", table_partition_dir(STATS_TABLE, &host, &day)),
                    rows: batches.iter().map(|b| b.num_rows()).sum(),
                    batches,
                }
            })
            .collect();
        // Biggest first, so the parallel encoders finish together.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.rows));
        let next = AtomicUsize::new(0);
        let (archive, encode) = (&self.archive, &self.opts.encode);
        let results: Vec<Result<(u64, u64, u64)>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..self.opts.encoders.max(1).min(jobs.len().max(1)))
                .map(|_| {
                    s.spawn(|| {
                        let mut done = (0u64, 0u64, 0u64);
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else {
                                return Ok(done);
                            };
                            let bytes = encode_with(&job.batches, encode)?;
                            let len = bytes.len() as u64;
                            archive.put(&job.logs_path, bytes)?;
                            let mut rollup = Rollup::new();
                            for b in &job.batches {
                                rollup.add_logs(b)?;
                            }
                            archive.put(&job.stats_path, rollup.encode(encode, Vec::new())?)?;
                            tracing::debug!(
                                path = job.logs_path,
                                rows = job.rows,
                                bytes = len,
                                "archived"
                            );
                            done.0 += job.rows as u64;
                            done.1 += 1;
                            done.2 += len;
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(anyhow!("an encoder panicked")))
                })
                .collect()
        });
        jobs.clear();
        let (mut rows, mut files, mut bytes) = (0, 0, 0);
        for r in results {
            let (r, f, b) = r?;
            rows += r;
            files += f;
            bytes += b;
        }
        // Deleted once every forwarding sink has it, too.
        self.release
            .advance(release::ARCHIVE, Cursor::at_segment(seg.seq + 1))?;
        self.report.segments += 1;
        self.report.rows += rows;
        self.report.files += files;
        self.report.bytes += bytes;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        self.stats.rows.fetch_add(rows, Ordering::Relaxed);
        self.stats.files.fetch_add(files, Ordering::Relaxed);
        self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        tracing::debug!(segment = seg.seq, rows, files, "segment archived");
        Ok(())
    }
}

impl Worker {
    /// A segment whose intact records cannot be read (written by an incompatible version,
    /// or rows that break the schema) would stall the archive forever if retried: it is
    /// set aside as `<seq>.bad` for inspection, and the archiver goes on.
    fn quarantine(&mut self, seg: &Segment, why: anyhow::Error) -> Result<()> {
        let bad = seg.path.with_extension("bad");
        std::fs::rename(&seg.path, &bad)
            .with_context(|| format!("cannot set aside segment {}", seg.path.display()))?;
        if let Some(dir) = seg.path.parent() {
            sync_dir(dir)?;
        }
        self.usage.free(seg.bytes);
        self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            segment = %bad.display(),
            "spool segment cannot be archived and was set aside: {why:#}"
        );
        Ok(())
    }
}

type Partitions = HashMap<(String, i32), Vec<RecordBatch>>;

/// The files one partition of a segment becomes: its rows in `logs`, and their hourly
/// rollup under the same name in `stats`.
struct Job {
    logs_path: String,
    stats_path: String,
    batches: Vec<RecordBatch>,
    rows: usize,
}

/// The rows of a sealed segment, by (hostname, log_date). Damaged records are reported
/// and stepped over (recovery already counted them); the rest is kept.
fn partitions_of(bytes: &[u8], path: &Path) -> Result<Partitions> {
    let scan = record::scan(bytes);
    if !scan.skipped.is_empty() || scan.valid_end != bytes.len() {
        tracing::error!(
            segment = %path.display(),
            damaged_bytes = scan.skipped_bytes() + (bytes.len() - scan.valid_end),
            "sealed spool segment has damaged records; archiving the intact ones"
        );
    }
    let schema = logs_schema();
    let mut parts: Partitions = HashMap::new();
    for r in &scan.records {
        let payload = record::parse_payload(&bytes[r.clone()])
            .with_context(|| format!("segment {}: bad record", path.display()))?;
        for batch in rows::decode(payload.ipc)? {
            let batch = conform(&batch, &schema)?;
            if batch.num_rows() == 0 {
                continue;
            }
            for (key, part) in split_by_partition(&batch)? {
                parts.entry(key).or_default().push(part);
            }
        }
    }
    Ok(parts)
}

/// Splits a batch of the logical schema into one batch per (hostname, log_date).
fn split_by_partition(batch: &RecordBatch) -> Result<Vec<((String, i32), RecordBatch)>> {
    let hosts = batch
        .column_by_name(col::HOSTNAME)
        .context("batch has no hostname column")?
        .as_string::<i32>();
    let days = batch
        .column_by_name(col::LOG_DATE)
        .context("batch has no log_date column")?
        .as_primitive::<Date32Type>();
    let n = batch.num_rows();
    let (h0, d0) = (hosts.value(0), days.value(0));
    if (1..n).all(|i| days.value(i) == d0 && hosts.value(i) == h0) {
        return Ok(vec![((h0.to_string(), d0), batch.clone())]);
    }
    let mut groups: HashMap<(&str, i32), Vec<u32>> = HashMap::new();
    for i in 0..n {
        debug_assert!(!hosts.is_null(i));
        groups
            .entry((hosts.value(i), days.value(i)))
            .or_default()
            .push(i as u32);
    }
    groups
        .into_iter()
        .map(|((h, d), idx)| {
            let part = take_record_batch(batch, &UInt32Array::from(idx))?;
            Ok(((h.to_string(), d), part))
        })
        .collect()
}
