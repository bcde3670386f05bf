//! The archiver: turns each spool segment into one sorted zstd Parquet object per
//! (hostname, log_date) it holds, then releases the segment (deleted once every
//! forwarding sink has it too, see [`crate::spool::release`]).
//!
//! Object names derive from the segment (`<instance>-<seq>.parquet`), so archiving the
//! same segment twice — after a crash between the upload and the delete, or a retried
//! upload — overwrites the same objects instead of doubling rows. A segment is deleted
//! only once every object made from it is durable. Beside each `logs` file the archiver
//! writes the file of the same name in the `stats` table (the hourly rollup of its rows).
//!
//! The archiver follows the open segment as the spool writer appends to it
//! ([`SpoolEvent`]) and encodes its rows as they come ([`SegmentFiles`]); when the segment
//! is sealed only the last row groups and the uploads are left. The writer hands over the
//! rows it appended while the archiver keeps up, so they are neither read back nor
//! decoded; when the archiver falls behind (an unreachable S3), it reads them from the
//! segment file instead, as it does for the segments a previous run left behind. Memory is
//! the encoded files of one segment plus the rows waiting to make a row group
//! ([`ArchiverOptions::pending_budget`]), not the segment's rows.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use arrow::array::RecordBatch;
use crossbeam_channel::Receiver;
use infralog_schemas::logs_schema;

use super::parquet::EncodeOptions;
use super::segment_files::{Finished, SegmentFiles};
use super::{Archive, conform};
use crate::spool::release::{self, Cursor, Release};
use crate::spool::writer::SpoolEvent;
use crate::spool::{Segment, Usage, record, rows, segment_path, sync_dir};

#[derive(Debug, Clone, Copy)]
pub struct ArchiverOptions {
    pub encode: EncodeOptions,
    /// Bytes of rows one segment's files may hold waiting to be encoded before the
    /// partitions holding the most encode theirs as a row group early.
    pub pending_budget: usize,
}

impl Default for ArchiverOptions {
    fn default() -> Self {
        Self {
            encode: EncodeOptions::default(),
            pending_budget: 32 << 20,
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
    /// Records read back from a segment file because the archiver had fallen behind.
    pub records_read_back: AtomicU64,
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
    /// What the writer appends and seals while running; closed when the writer stops.
    pub events: Receiver<SpoolEvent>,
    pub usage: Arc<Usage>,
    /// The spool directory (where the open segment is read back from when needed).
    pub dir: std::path::PathBuf,
    /// Where the archiver releases a segment once archived.
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
                    dir: spool.dir,
                    usage: spool.usage,
                    release: spool.release,
                    opts,
                    shutdown,
                    stats: s,
                    report: ArchiveReport::default(),
                    open: None,
                };
                for seg in spool.backlog {
                    let files = a.read_whole(&seg);
                    if !a.store_with_retry(&seg, files) {
                        return Ok(a.report);
                    }
                }
                for event in spool.events.iter() {
                    match event {
                        SpoolEvent::Appended {
                            seq,
                            start,
                            end,
                            rows,
                        } => a.appended(seq, start, end, rows.as_deref()),
                        SpoolEvent::Sealed(seg) => {
                            let files = a.sealed(&seg);
                            if !a.store_with_retry(&seg, files) {
                                break;
                            }
                        }
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

/// The segment being written, as far as the archiver has followed it.
struct Open {
    seq: u64,
    /// Where the next record starts.
    pos: u64,
    files: SegmentFiles,
    /// Set when a record could not be taken in: the segment is read whole once sealed.
    failed: Option<anyhow::Error>,
}

struct Worker {
    archive: Archive,
    instance: String,
    dir: std::path::PathBuf,
    usage: Arc<Usage>,
    release: Arc<Release>,
    opts: ArchiverOptions,
    shutdown: Arc<AtomicBool>,
    stats: Arc<ArchiverStats>,
    report: ArchiveReport,
    open: Option<Open>,
}

/// A segment's files, or why its records cannot be read (it is then set aside).
type Built = std::result::Result<Finished, SegmentError>;

enum SegmentError {
    /// The records are there but do not decode: retrying cannot help.
    Unreadable(anyhow::Error),
    /// The file could not be read: worth retrying.
    Io(anyhow::Error),
}

impl Worker {
    fn new_files(&self, seq: u64) -> SegmentFiles {
        SegmentFiles::new(
            &self.instance,
            seq,
            self.opts.encode,
            self.opts.pending_budget,
        )
    }

    /// A record was appended to the open segment: take its rows in.
    fn appended(&mut self, seq: u64, start: u64, end: u64, batch: Option<&RecordBatch>) {
        if self.open.as_ref().is_some_and(|o| o.seq != seq) {
            // The writer moved on without sealing (it cannot, but be safe): the segment
            // stays in the spool and is archived from its file at the next start.
            tracing::error!(
                seq,
                "spool segment left unsealed; archived at the next start"
            );
            self.open = None;
        }
        if self.open.is_none() {
            self.open = Some(Open {
                seq,
                pos: start,
                files: self.new_files(seq),
                failed: None,
            });
        }
        let mut open = self.open.take().expect("set above");
        if open.failed.is_none() {
            let result = match batch {
                Some(b) if open.pos == start => open.files.push(b),
                // Not handed over (the archiver was behind) or a gap: read it back.
                _ => read_range(
                    &segment_path(&self.dir, seq, false),
                    &segment_path(&self.dir, seq, true),
                    open.pos,
                    end,
                )
                .and_then(|records| {
                    self.stats
                        .records_read_back
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                    records.iter().try_for_each(|b| open.files.push(b))
                }),
            };
            if let Err(e) = result {
                open.failed = Some(e);
            }
        }
        open.pos = end;
        self.open = Some(open);
    }

    /// The segment was sealed: its files, with whatever was not taken in yet.
    fn sealed(&mut self, seg: &Segment) -> Built {
        match self.open.take() {
            Some(mut open) if open.seq == seg.seq && open.failed.is_none() => {
                if open.pos < seg.bytes {
                    let records = read_range(&seg.path, &seg.path, open.pos, seg.bytes)
                        .map_err(SegmentError::Io)?;
                    for b in &records {
                        open.files.push(b).map_err(SegmentError::Unreadable)?;
                    }
                }
                open.files.finish().map_err(SegmentError::Unreadable)
            }
            Some(open) => {
                if let Some(e) = open.failed {
                    tracing::warn!(
                        segment = seg.seq,
                        "reading the sealed segment whole after: {e:#}"
                    );
                }
                self.read_whole(seg)
            }
            None => self.read_whole(seg),
        }
    }

    /// The files of a sealed segment read from its file. Damaged records are reported and
    /// stepped over (recovery already counted them); the rest is kept.
    fn read_whole(&self, seg: &Segment) -> Built {
        let bytes = std::fs::read(&seg.path)
            .with_context(|| format!("cannot read segment {}", seg.path.display()))
            .map_err(SegmentError::Io)?;
        let scan = record::scan(&bytes);
        if !scan.skipped.is_empty() || scan.valid_end != bytes.len() {
            tracing::error!(
                segment = %seg.path.display(),
                damaged_bytes = scan.skipped_bytes() + (bytes.len() - scan.valid_end),
                "sealed spool segment has damaged records; archiving the intact ones"
            );
        }
        let mut files = self.new_files(seg.seq);
        for r in &scan.records {
            let decoded = record_rows(&bytes[r.clone()])
                .with_context(|| format!("segment {}: bad record", seg.path.display()));
            for batch in decoded.map_err(SegmentError::Unreadable)? {
                files.push(&batch).map_err(SegmentError::Unreadable)?;
            }
        }
        files.finish().map_err(SegmentError::Unreadable)
    }

    /// Stores a segment's files and deletes it, retrying with backoff while the collector
    /// runs. Returns false when it gave up (shutting down with the archive unreachable).
    fn store_with_retry(&mut self, seg: &Segment, built: Built) -> bool {
        let mut built = built;
        let mut delay = Duration::from_millis(500);
        let mut attempts_while_stopping = 0;
        let mut failures = 0u64;
        loop {
            let result = match &built {
                Ok(files) => self.store(seg, files),
                Err(SegmentError::Unreadable(e)) => {
                    let e = anyhow!("{e:#}");
                    match self.quarantine(seg, e) {
                        Ok(()) => return true,
                        Err(e) => Err(e),
                    }
                }
                Err(SegmentError::Io(e)) => Err(anyhow!("{e:#}")),
            };
            let Err(e) = result else {
                if failures > 0 {
                    tracing::warn!(
                        segment = %seg.path.display(),
                        "archived the spool segment after {failures} failed attempt(s)"
                    );
                }
                return true;
            };
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            failures += 1;
            // One line when the archive fails, one when it is back: an S3 outage retried
            // every 10 s must not fill the host's log (each attempt is counted in the
            // metrics; the retries show at debug level).
            if failures == 1 {
                tracing::warn!(
                    segment = %seg.path.display(),
                    "cannot archive spool segment (retrying with backoff, up to every 10 s): {e:#}"
                );
            } else {
                tracing::debug!(
                    segment = %seg.path.display(),
                    attempt = failures,
                    "cannot archive spool segment (retrying in {delay:?}): {e:#}"
                );
            }
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
            if matches!(built, Err(SegmentError::Io(_))) {
                built = self.read_whole(seg);
            }
        }
    }

    fn store(&mut self, seg: &Segment, files: &Finished) -> Result<()> {
        self.archive.put_all(
            files
                .files
                .iter()
                .map(|f| (f.path.as_str(), f.bytes.clone())),
        )?;
        // Deleted once every forwarding sink has it, too.
        self.release
            .advance(release::ARCHIVE, Cursor::at_segment(seg.seq + 1))?;
        self.report.segments += 1;
        self.report.rows += files.rows;
        self.report.files += files.logs_files;
        self.report.bytes += files.logs_bytes;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        self.stats.rows.fetch_add(files.rows, Ordering::Relaxed);
        self.stats
            .files
            .fetch_add(files.logs_files, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(files.logs_bytes, Ordering::Relaxed);
        tracing::debug!(
            segment = seg.seq,
            rows = files.rows,
            files = files.logs_files,
            "segment archived"
        );
        Ok(())
    }

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

/// The rows of the records in bytes `from..to` of a segment, read from its open path or,
/// once renamed, its sealed one.
fn read_range(
    open_path: &std::path::Path,
    sealed_path: &std::path::Path,
    from: u64,
    to: u64,
) -> Result<Vec<RecordBatch>> {
    if to <= from {
        return Ok(Vec::new());
    }
    let file = File::open(open_path)
        .or_else(|_| File::open(sealed_path))
        .with_context(|| format!("cannot open segment {}", open_path.display()))?;
    let mut bytes = vec![0; (to - from) as usize];
    file.read_exact_at(&mut bytes, from)
        .with_context(|| format!("cannot read segment {}", open_path.display()))?;
    let scan = record::scan(&bytes);
    anyhow::ensure!(
        scan.skipped.is_empty() && scan.valid_end == bytes.len(),
        "segment {}: records at {from}..{to} are damaged",
        open_path.display()
    );
    let mut out = Vec::new();
    for r in &scan.records {
        out.extend(record_rows(&bytes[r.clone()])?);
    }
    Ok(out)
}

/// The rows of one intact record's payload, in the current `logs` schema.
fn record_rows(payload: &[u8]) -> Result<Vec<RecordBatch>> {
    let schema = logs_schema();
    rows::decode(record::parse_payload(payload)?.ipc)?
        .iter()
        .map(|b| conform(b, &schema))
        .collect()
}
