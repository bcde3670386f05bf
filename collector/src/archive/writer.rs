//! The archive writer: buffers chunks per (hostname, log_date) partition and hands full
//! partitions to a pool of encoder threads, which sort, encode and store them while the
//! writer keeps receiving. The sources' checkpoints are committed only once every row
//! received before them is durable.
//!
//! A partition is written when it reaches `file_rows`; when all partitions together hold
//! `max_buffered_rows`, the least recently appended ones are written first (in
//! time-ordered input those are the days that are over); and everything is written every
//! `flush_interval`, which is also when checkpoints move.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::Date32Type;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use infralog_schemas::{col, partition_dir};

use super::Archive;
use super::parquet::{EncodeOptions, encode_with};
use crate::chunk::{Checkpoint, Chunk};
use crate::state::CheckpointStore;
use crate::time::{format_date, now_ns};

#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// A partition is written out as soon as it holds this many rows.
    pub file_rows: usize,
    /// When all partitions together hold this many rows, the least recently appended
    /// ones are written out until half of it is left.
    pub max_buffered_rows: usize,
    /// Everything buffered is written at least this often; checkpoints move then.
    pub flush_interval: Duration,
    /// Threads that encode and store files.
    pub encoders: usize,
    pub encode: EncodeOptions,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            file_rows: 1_000_000,
            max_buffered_rows: 2_000_000,
            flush_interval: Duration::from_secs(30),
            encoders: std::thread::available_parallelism().map_or(2, |n| n.get()),
            encode: EncodeOptions::default(),
        }
    }
}

/// What the writer did over its lifetime.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterReport {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

pub struct ArchiveWriter {
    handle: JoinHandle<Result<WriterReport>>,
}

impl ArchiveWriter {
    /// Starts the writer. It runs until every sender of `chunks` is dropped, then writes
    /// what it buffered and returns.
    pub fn spawn(
        archive: Archive,
        checkpoints: Option<Arc<CheckpointStore>>,
        chunks: Receiver<Chunk>,
        opts: WriterOptions,
    ) -> Self {
        let handle = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                let pool = EncoderPool::start(Arc::new(archive), opts.encode, opts.encoders);
                let mut w = Writer {
                    pool,
                    checkpoints,
                    opts,
                    partitions: HashMap::new(),
                    buffered_rows: 0,
                    appends: 0,
                    oldest: None,
                    pending: BTreeMap::new(),
                    segment_prefix: format!("{:x}-{:x}", now_ns(), std::process::id()),
                    segment_seq: 0,
                };
                let run = w.run(chunks);
                let report = w.pool.finish();
                run?;
                report
            })
            .expect("spawning a thread only fails when the system is out of resources");
        Self { handle }
    }

    pub fn join(self) -> Result<WriterReport> {
        match self.handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

struct Partition {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// `Writer::appends` at the last append: orders partitions by recency.
    last_append: u64,
}

/// One file to write.
struct Job {
    path: String,
    batches: Vec<RecordBatch>,
    rows: usize,
}

/// Threads that turn jobs into durable files. Results come back in any order; the writer
/// only needs to know when all of them are done.
struct EncoderPool {
    jobs: Option<Sender<Job>>,
    done: Receiver<Result<WriterReport>>,
    outstanding: usize,
    threads: Vec<JoinHandle<()>>,
    report: WriterReport,
}

impl EncoderPool {
    fn start(archive: Arc<Archive>, encode: EncodeOptions, threads: usize) -> Self {
        // A bounded queue: when encoders fall behind, the writer waits, its channel fills,
        // and the sources feel the backpressure.
        let (jobs, job_rx) = crossbeam_channel::bounded::<Job>(threads);
        let (done_tx, done) = crossbeam_channel::unbounded();
        let threads = (0..threads.max(1))
            .map(|i| {
                let (rx, tx, archive) = (job_rx.clone(), done_tx.clone(), archive.clone());
                std::thread::Builder::new()
                    .name(format!("archive-encoder-{i}"))
                    .spawn(move || {
                        for job in rx {
                            let _ = tx.send(write_file(&archive, &encode, job));
                        }
                    })
                    .expect("spawning a thread only fails when the system is out of resources")
            })
            .collect();
        Self {
            jobs: Some(jobs),
            done,
            outstanding: 0,
            threads,
            report: WriterReport::default(),
        }
    }

    fn submit(&mut self, job: Job) -> Result<()> {
        self.collect_finished()?;
        self.jobs
            .as_ref()
            .expect("pool is running")
            .send(job)
            .map_err(|_| anyhow!("archive encoder threads stopped"))?;
        self.outstanding += 1;
        Ok(())
    }

    fn account(&mut self, r: Result<WriterReport>) -> Result<()> {
        self.outstanding -= 1;
        let r = r?;
        self.report.rows += r.rows;
        self.report.files += r.files;
        self.report.bytes += r.bytes;
        Ok(())
    }

    /// Takes the results that are in, without waiting; fails on the first failed write.
    fn collect_finished(&mut self) -> Result<()> {
        while let Ok(r) = self.done.try_recv() {
            self.account(r)?;
        }
        Ok(())
    }

    /// Waits until every submitted file is durable.
    fn wait_all(&mut self) -> Result<()> {
        while self.outstanding > 0 {
            let r = self
                .done
                .recv()
                .map_err(|_| anyhow!("archive encoder threads stopped"))?;
            self.account(r)?;
        }
        Ok(())
    }

    /// Stops the threads after the submitted jobs are done.
    fn finish(&mut self) -> Result<WriterReport> {
        let waited = self.wait_all();
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        waited.map(|()| self.report)
    }
}

fn write_file(archive: &Archive, encode: &EncodeOptions, job: Job) -> Result<WriterReport> {
    let bytes = encode_with(&job.batches, encode)?;
    let len = bytes.len() as u64;
    put_with_retry(archive, &job.path, bytes)?;
    tracing::debug!(path = job.path, rows = job.rows, bytes = len, "archived");
    Ok(WriterReport {
        rows: job.rows as u64,
        files: 1,
        bytes: len,
    })
}

struct Writer {
    pool: EncoderPool,
    checkpoints: Option<Arc<CheckpointStore>>,
    opts: WriterOptions,
    partitions: HashMap<(String, i32), Partition>,
    buffered_rows: usize,
    appends: u64,
    oldest: Option<Instant>,
    /// Latest checkpoint per source received since the last full flush.
    pending: BTreeMap<String, Checkpoint>,
    segment_prefix: String,
    segment_seq: u64,
}

impl Writer {
    fn run(&mut self, chunks: Receiver<Chunk>) -> Result<()> {
        loop {
            let wait = match self.oldest {
                Some(t) => self.opts.flush_interval.saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            match chunks.recv_timeout(wait) {
                Ok(chunk) => self.add(chunk)?,
                Err(RecvTimeoutError::Timeout) => self.flush_all()?,
                Err(RecvTimeoutError::Disconnected) => return self.flush_all(),
            }
        }
    }

    fn add(&mut self, chunk: Chunk) -> Result<()> {
        if let Some(cp) = chunk.checkpoint {
            self.pending.insert(cp.key.clone(), cp);
        }
        if chunk.batch.num_rows() == 0 {
            // A chunk may carry only a checkpoint (e.g. skipped records).
            if self.buffered_rows == 0 && self.pool.outstanding == 0 {
                return self.commit_checkpoints();
            }
            return Ok(());
        }
        self.oldest.get_or_insert_with(Instant::now);
        self.appends += 1;
        for (key, batch) in split_by_partition(&chunk.batch)? {
            let rows = batch.num_rows();
            let part = self.partitions.entry(key.clone()).or_insert(Partition {
                batches: Vec::new(),
                rows: 0,
                last_append: 0,
            });
            part.batches.push(batch);
            part.rows += rows;
            part.last_append = self.appends;
            self.buffered_rows += rows;
            if part.rows >= self.opts.file_rows {
                self.write_partition(&key)?;
            }
        }
        if self.buffered_rows >= self.opts.max_buffered_rows {
            self.evict_least_recent()?;
        }
        Ok(())
    }

    fn evict_least_recent(&mut self) -> Result<()> {
        let mut by_age: Vec<_> = self
            .partitions
            .iter()
            .map(|(k, p)| (p.last_append, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, key) in by_age {
            if self.buffered_rows <= self.opts.max_buffered_rows / 2 {
                break;
            }
            self.write_partition(&key)?;
        }
        Ok(())
    }

    fn write_partition(&mut self, key: &(String, i32)) -> Result<()> {
        let Some(part) = self.partitions.remove(key) else {
            return Ok(());
        };
        self.segment_seq += 1;
        let path = format!(
            "{}/{}-{:05}.parquet",
            partition_dir(&key.0, &format_date(key.1)),
            self.segment_prefix,
            self.segment_seq
        );
        self.buffered_rows -= part.rows;
        self.pool.submit(Job {
            path,
            batches: part.batches,
            rows: part.rows,
        })
    }

    /// Writes every partition and waits until all files are durable, then commits the
    /// pending checkpoints: every row received so far is archived.
    fn flush_all(&mut self) -> Result<()> {
        let keys: Vec<_> = self.partitions.keys().cloned().collect();
        for key in keys {
            self.write_partition(&key)?;
        }
        self.pool.wait_all()?;
        self.oldest = None;
        self.commit_checkpoints()
    }

    fn commit_checkpoints(&mut self) -> Result<()> {
        if let Some(store) = &self.checkpoints {
            for cp in self.pending.values() {
                store.commit(cp)?;
            }
        }
        self.pending.clear();
        Ok(())
    }
}

fn put_with_retry(archive: &Archive, path: &str, bytes: Vec<u8>) -> Result<()> {
    const ATTEMPTS: u32 = 4;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..ATTEMPTS {
        match archive.put(path, bytes.clone()) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!("archive write failed (attempt {attempt}/{ATTEMPTS}): {e:#}");
                std::thread::sleep(delay);
                delay *= 4;
            }
        }
    }
    archive.put(path, bytes)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};
    use crate::time::NANOS_PER_SEC;

    const DAY: i64 = 86_400 * NANOS_PER_SEC;

    fn chunk(rows: &[(&str, i64)], cp: Option<&str>) -> Chunk {
        let mut b = LogBatchBuilder::new(rows.len());
        for (host, ts) in rows {
            let row = Row {
                timestamp_ns: *ts,
                hostname: host.as_bytes(),
                source: "file",
                message: b"m",
                ..Row::default()
            };
            b.append(&row, 0, |_| {});
        }
        Chunk {
            batch: b.finish(),
            checkpoint: cp.map(|v| Checkpoint {
                key: "src".into(),
                value: v.into(),
            }),
        }
    }

    fn parquet_files(root: &std::path::Path) -> Vec<String> {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    let rel = p.strip_prefix(root).unwrap().parent().unwrap();
                    out.push(rel.display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn splits_partitions_and_commits_checkpoint_after_write() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().join("archive").to_str().unwrap()).unwrap();
        let store = Arc::new(CheckpointStore::open(&dir.path().join("state")).unwrap());
        let (tx, rx) = crossbeam_channel::bounded(4);
        let w = ArchiveWriter::spawn(archive, Some(store.clone()), rx, WriterOptions::default());
        tx.send(chunk(&[("a", 0), ("b", DAY + 1), ("a", 5)], Some("1")))
            .unwrap();
        tx.send(chunk(&[("a", DAY * 2)], Some("2"))).unwrap();
        drop(tx);
        let report = w.join().unwrap();
        assert_eq!(report.rows, 4);
        assert_eq!(report.files, 3);
        assert_eq!(
            parquet_files(&dir.path().join("archive")),
            [
                "logs/hostname=a/log_date=1970-01-01",
                "logs/hostname=a/log_date=1970-01-03",
                "logs/hostname=b/log_date=1970-01-02"
            ]
        );
        assert_eq!(store.load("src").unwrap().as_deref(), Some("2"));
    }

    #[test]
    fn checkpoint_waits_for_the_rows_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().join("archive").to_str().unwrap()).unwrap();
        let store = Arc::new(CheckpointStore::open(&dir.path().join("state")).unwrap());
        let (tx, rx) = crossbeam_channel::bounded(4);
        let opts = WriterOptions {
            flush_interval: Duration::from_secs(3600),
            ..WriterOptions::default()
        };
        let w = ArchiveWriter::spawn(archive, Some(store.clone()), rx, opts);
        tx.send(chunk(&[("a", 0)], Some("7"))).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Buffered, not yet written: the position must not have moved.
        assert_eq!(store.load("src").unwrap(), None);
        drop(tx);
        w.join().unwrap();
        assert_eq!(store.load("src").unwrap().as_deref(), Some("7"));
    }

    #[test]
    fn full_buffer_writes_least_recently_appended_partitions_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("archive");
        let archive = Archive::open(root.to_str().unwrap()).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let opts = WriterOptions {
            max_buffered_rows: 4,
            flush_interval: Duration::from_secs(3600),
            ..WriterOptions::default()
        };
        let w = ArchiveWriter::spawn(archive, None, rx, opts);
        // Day 0 is over once day 1 starts: it is the one to go when the buffer fills.
        tx.send(chunk(&[("a", 0), ("a", 1)], None)).unwrap();
        tx.send(chunk(&[("a", DAY), ("a", DAY + 1)], None)).unwrap();
        let day0 = root.join("logs/hostname=a/log_date=1970-01-01");
        let day1 = root.join("logs/hostname=a/log_date=1970-01-02");
        let deadline = Instant::now() + Duration::from_secs(10);
        while parquet_files(&root).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(day0.exists(), "the older partition was written");
        assert!(!day1.exists(), "the current partition stays buffered");
        drop(tx);
        assert_eq!(w.join().unwrap().files, 2);
        assert!(day1.exists());
    }
}
