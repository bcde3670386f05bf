//! The spool writer: one thread that appends chunks to the open segment, fsyncs in groups,
//! seals segments and hands them to the archiver.
//!
//! Backpressure: when the spool holds `max_bytes`, the writer stops taking chunks until
//! the archiver frees space, so the bounded channel fills and the sources wait (or, for
//! those that cannot wait, count drops). A failed write (disk full, I/O error) is cut back
//! to the last whole record and retried with backoff; the chunk stays in memory meanwhile.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use infralog_schemas::logs_schema;

use super::{
    Segment, Spool, SpoolOptions, Usage, apply_checkpoints, record, rows, segment_path, sync_dir,
};
use crate::chunk::Chunk;

/// What the writer tells the archiver, in the order it happened.
pub enum SpoolEvent {
    /// A record was appended to the open segment `seq` at bytes `start..end`. Its rows
    /// come along while the archiver keeps up (`None`: read them from the file).
    Appended {
        seq: u64,
        start: u64,
        end: u64,
        rows: Option<Handed>,
    },
    /// The segment is sealed: durable, renamed, and complete.
    Sealed(Segment),
}

/// Rows handed over in memory; dropping them gives their bytes back to the handoff budget.
pub struct Handed {
    batch: RecordBatch,
    bytes: usize,
    in_flight: Arc<AtomicUsize>,
}

impl std::ops::Deref for Handed {
    type Target = RecordBatch;
    fn deref(&self) -> &RecordBatch {
        &self.batch
    }
}

impl Drop for Handed {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Counters of the spool writer, readable while it runs.
#[derive(Debug, Default)]
pub struct SpoolStats {
    pub records: AtomicU64,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub segments_sealed: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_nanos_total: AtomicU64,
    pub fsync_nanos_max: AtomicU64,
    /// Times the writer waited because the spool was full.
    pub full_waits: AtomicU64,
    /// Failed writes (disk full, I/O errors) that were retried.
    pub write_errors: AtomicU64,
}

pub struct SpoolWriter {
    handle: JoinHandle<Result<()>>,
    pub stats: Arc<SpoolStats>,
}

impl SpoolWriter {
    /// Opens the first segment (its checkpoint snapshot durable before this returns, so
    /// the archiver may delete the recovered ones) and starts the writer thread. It runs
    /// until every sender of `chunks` is gone, then seals what it wrote.
    pub fn spawn(
        spool: &Spool,
        chunks: Receiver<Chunk>,
        events: Sender<SpoolEvent>,
        shutdown: Arc<AtomicBool>,
    ) -> Result<SpoolWriter> {
        let stats = Arc::new(SpoolStats::default());
        let mut w = Writer {
            opts: spool.opts.clone(),
            seq: spool.next_seq,
            path: PathBuf::new(),
            file: None,
            len: 0,
            synced_len: 0,
            rows_in_segment: 0,
            opened: Instant::now(),
            last_sync: Instant::now(),
            checkpoints: spool.checkpoints.all().clone(),
            usage: spool.usage.clone(),
            events,
            in_flight: Arc::new(AtomicUsize::new(0)),
            shutdown,
            buf: Vec::new(),
            stats: stats.clone(),
        };
        w.open_segment()?;
        w.announce_snapshot();
        let handle = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || w.run(chunks))
            .context("cannot start the spool writer thread")?;
        Ok(SpoolWriter { handle, stats })
    }

    pub fn join(self) -> Result<()> {
        match self.handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

struct Writer {
    opts: SpoolOptions,
    seq: u64,
    path: PathBuf,
    file: Option<File>,
    len: u64,
    synced_len: u64,
    rows_in_segment: u64,
    opened: Instant,
    last_sync: Instant,
    /// Every source's latest position written so far: the snapshot of a new segment.
    checkpoints: BTreeMap<String, String>,
    usage: Arc<Usage>,
    events: Sender<SpoolEvent>,
    /// Bytes of rows handed to the archiver and not yet taken in.
    in_flight: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
    buf: Vec<u8>,
    stats: Arc<SpoolStats>,
}

impl Writer {
    fn run(&mut self, chunks: Receiver<Chunk>) -> Result<()> {
        loop {
            match chunks.recv_timeout(self.next_deadline()) {
                Ok(chunk) => self.append(&chunk)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return if self.rows_in_segment > 0 {
                        self.seal_and_roll()
                    } else {
                        self.sync()
                    };
                }
            }
            if self.len > self.synced_len && self.last_sync.elapsed() >= self.opts.fsync_interval {
                self.sync()?;
            }
            if self.rows_in_segment > 0 && self.opened.elapsed() >= self.opts.seal_after {
                self.seal_and_roll()?;
            }
        }
    }

    /// How long to wait for the next chunk before a group commit or a seal is due.
    fn next_deadline(&self) -> Duration {
        let mut wait = Duration::from_secs(1);
        if self.len > self.synced_len {
            wait = wait.min(
                self.opts
                    .fsync_interval
                    .saturating_sub(self.last_sync.elapsed()),
            );
        }
        if self.rows_in_segment > 0 {
            wait = wait.min(self.opts.seal_after.saturating_sub(self.opened.elapsed()));
        }
        wait
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("a segment is open")
    }

    fn open_segment(&mut self) -> Result<()> {
        self.path = segment_path(&self.opts.dir, self.seq, false);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot create spool segment {}", self.path.display()))?;
        self.file = Some(file);
        self.len = 0;
        self.synced_len = 0;
        self.rows_in_segment = 0;
        self.opened = Instant::now();
        let cps: Vec<(&str, &str)> = self
            .checkpoints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut buf = Vec::new();
        record::encode(&cps, |_| Ok(()), &mut buf)?;
        self.write_record(&buf)?;
        // Durable before any older segment may be deleted: it is now the only copy of
        // the positions of everything archived.
        self.sync()?;
        sync_dir(&self.opts.dir)
    }

    fn append(&mut self, chunk: &Chunk) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let cp = chunk
            .checkpoint
            .as_ref()
            .map(|c| (c.key.as_str(), c.value.as_str()));
        record::encode(
            cp.as_slice(),
            |out| rows::append(&chunk.batch, out),
            &mut buf,
        )?;
        self.wait_for_space(buf.len() as u64)?;
        let start = self.len;
        self.write_record(&buf)?;
        self.buf = buf;
        self.announce(start, &chunk.batch);
        let rows = chunk.batch.num_rows() as u64;
        self.rows_in_segment += rows;
        self.stats.rows.fetch_add(rows, Ordering::Relaxed);
        if let Some(cp) = cp {
            apply_checkpoints(&mut self.checkpoints, &[cp]);
        }
        if self.len >= self.opts.segment_bytes {
            self.seal_and_roll()?;
        }
        Ok(())
    }

    /// Tells the archiver about the checkpoint snapshot that starts the open segment (after
    /// the segment before it is sealed: events follow the segments' order).
    fn announce_snapshot(&mut self) {
        self.announce(0, &RecordBatch::new_empty(logs_schema()));
    }

    /// Tells the archiver about the record just written at `start`, with its rows while
    /// the archiver keeps up.
    fn announce(&mut self, start: u64, batch: &RecordBatch) {
        let bytes = batch.get_array_memory_size();
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let rows = (in_flight + bytes <= self.opts.handoff_bytes).then(|| {
            self.in_flight.fetch_add(bytes, Ordering::Relaxed);
            Handed {
                batch: batch.clone(),
                bytes,
                in_flight: self.in_flight.clone(),
            }
        });
        // The archiver may be gone at shutdown; the segment stays for next time.
        let _ = self.events.send(SpoolEvent::Appended {
            seq: self.seq,
            start,
            end: self.len,
            rows,
        });
    }

    fn wait_for_space(&mut self, need: u64) -> Result<()> {
        let mut logged = false;
        while self.usage.bytes() > 0
            && self.usage.bytes() + need > self.opts.max_bytes
            && !self.shutdown.load(Ordering::Relaxed)
        {
            // What is still in the open segment cannot be archived: hand it over first.
            if self.rows_in_segment > 0 {
                self.seal_and_roll()?;
                continue;
            }
            if !logged {
                tracing::warn!(
                    bytes = self.usage.bytes(),
                    limit = self.opts.max_bytes,
                    "spool full: sources are held back until the archive catches up"
                );
                self.stats.full_waits.fetch_add(1, Ordering::Relaxed);
                self.usage.full.store(true, Ordering::Relaxed);
                logged = true;
            }
            self.usage.wait_freed(Duration::from_millis(500));
        }
        if logged {
            self.usage.full.store(false, Ordering::Relaxed);
            tracing::info!(bytes = self.usage.bytes(), "spool has room again");
        }
        Ok(())
    }

    /// Appends one encoded record. A failed write is cut back to the last whole record and
    /// retried with backoff, so a full disk holds the sources back instead of losing rows
    /// or leaving a half record behind.
    fn write_record(&mut self, buf: &[u8]) -> Result<()> {
        let mut delay = Duration::from_millis(100);
        let mut failing = false;
        loop {
            match self.file().write_all(buf) {
                Ok(()) => break,
                Err(e) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    let len = self.len;
                    self.file()
                        .set_len(len)
                        .with_context(|| format!("cannot cut back a failed spool write ({e})"))?;
                    if self.shutdown.load(Ordering::Relaxed) {
                        // Sources with a position re-read this chunk after a restart.
                        return Err(anyhow!(e)).with_context(|| {
                            format!("cannot write spool {}", self.path.display())
                        });
                    }
                    if !failing {
                        tracing::error!(
                            "cannot write spool segment {}: {e}; holding the sources back and retrying",
                            self.path.display()
                        );
                        failing = true;
                    }
                    // Rows still in the open segment cannot be archived, so they would
                    // never free the space this write waits for: hand them over.
                    if self.rows_in_segment > 0 {
                        self.seal_and_roll()?;
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if failing {
            tracing::info!("spool writes succeed again");
        }
        self.len += buf.len() as u64;
        self.usage.add(buf.len() as u64);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let t = Instant::now();
        let path = self.path.clone();
        self.file()
            .sync_data()
            .with_context(|| format!("cannot fsync spool segment {}", path.display()))?;
        let nanos = t.elapsed().as_nanos() as u64;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.stats
            .fsync_nanos_total
            .fetch_add(nanos, Ordering::Relaxed);
        self.stats
            .fsync_nanos_max
            .fetch_max(nanos, Ordering::Relaxed);
        self.synced_len = self.len;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Makes the open segment durable, seals it, opens the next one and hands the sealed
    /// one to the archiver.
    fn seal_and_roll(&mut self) -> Result<()> {
        self.sync()?;
        let sealed_path = segment_path(&self.opts.dir, self.seq, true);
        fs::rename(&self.path, &sealed_path)
            .with_context(|| format!("cannot seal spool segment {}", self.path.display()))?;
        let segment = Segment {
            seq: self.seq,
            path: sealed_path,
            bytes: self.len,
        };
        self.file = None;
        self.seq += 1;
        self.open_segment()?;
        self.stats.segments_sealed.fetch_add(1, Ordering::Relaxed);
        // The archiver may be gone at shutdown; the segment stays sealed for next time.
        let _ = self.events.send(SpoolEvent::Sealed(segment));
        self.announce_snapshot();
        Ok(())
    }
}
