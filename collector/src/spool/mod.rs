//! The spool: the durability point between the sources and the archive.
//!
//! Sources send chunks; the [`writer`] appends each as one record (rows + the source's
//! checkpoint, one checksum) to the open segment and fsyncs in groups. A segment is sealed
//! when it is big or old enough, and the [`crate::archive::archiver`] turns sealed segments
//! into Parquet; a segment is deleted once the archiver and every forwarding sink have it
//! ([`release`]). Because a source's position is stored in the same record
//! as the rows read before it, a crash at any moment leaves rows and positions consistent:
//! recovery replays the records in order and every source resumes after the last durable
//! row — nothing lost, nothing doubled, and no second file to keep in step.
//!
//! Every new segment starts with a snapshot of all checkpoints, so the newest segment alone
//! holds every position and older ones can be deleted as soon as they are archived.
//!
//! Layout under the spool directory:
//! - `lock` — held (flock) by the running collector, so two never share a spool;
//! - `instance` — a random id, part of every archived object's name, so that two
//!   collectors (or one whose state was wiped) never overwrite each other's objects;
//! - `<seq>.open` — the segment being written (at most one);
//! - `<seq>.seg` — sealed segments waiting for the archiver or a forwarding sink;
//! - `cursors/` — where each consumer of the spool is ([`release`]).

pub mod inspect;
pub mod release;
pub mod writer;

// The on-disk format lives in its own crate, so that infra-query reads it too.
pub use infralog_spool_format::{list_segments, record, rows, segment_path};

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::state::CheckpointStore;

pub use writer::SpoolWriter;

#[derive(Debug, Clone)]
pub struct SpoolOptions {
    pub dir: PathBuf,
    /// Group commit: appended records are fsynced at least this often.
    pub fsync_interval: Duration,
    /// A segment is sealed (handed to the archiver) once it is this big...
    pub segment_bytes: u64,
    /// ...or this old, whichever comes first.
    pub seal_after: Duration,
    /// When the spool holds this much, the writer stops taking chunks until the archiver
    /// frees space: sources that can wait, wait; the others count what they drop.
    pub max_bytes: u64,
    /// Bytes of appended rows the writer hands to the archiver in memory at most; past
    /// it the archiver reads what it has not taken in yet back from the segment.
    pub handoff_bytes: usize,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data/state/spool"),
            fsync_interval: Duration::from_millis(200),
            segment_bytes: 64 << 20,
            seal_after: Duration::from_secs(30),
            max_bytes: 2 << 30,
            handoff_bytes: 16 << 20,
        }
    }
}

/// A segment's place in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

/// What compaction may touch, read from a spool without taking it over: the spool's
/// instance id (only its own files are compacted) and the lowest segment still in it
/// (every lower one is archived; none left means everything is).
pub fn archived_below(dir: &Path) -> Result<(String, u64)> {
    let instance = fs::read_to_string(dir.join("instance")).with_context(|| {
        format!(
            "no spool at {}: only files this collector archived are compacted",
            dir.display()
        )
    })?;
    let oldest = list_segments(dir)?.first().map_or(u64::MAX, |s| s.0);
    // Segments kept for a forwarding sink may be archived already: the archive's cursor.
    let archived = release::load_cursor(dir, release::ARCHIVE)?.map_or(0, |c| c.seq);
    Ok((instance.trim().to_string(), oldest.max(archived)))
}

/// Bytes held by the spool and a way to wait until the archiver frees some.
#[derive(Debug, Default)]
pub struct Usage {
    bytes: AtomicU64,
    freed: Mutex<()>,
    cond: Condvar,
    /// Set while the writer waits for space (for status and metrics).
    pub full: AtomicBool,
}

impl Usage {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    pub fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn free(&self, n: u64) {
        self.bytes.fetch_sub(n, Ordering::Relaxed);
        let _guard = self.freed.lock().unwrap_or_else(|e| e.into_inner());
        self.cond.notify_all();
    }
    /// Waits until some bytes are freed or `timeout` passes.
    pub fn wait_freed(&self, timeout: Duration) {
        let guard = self.freed.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.cond.wait_timeout(guard, timeout);
    }
}

/// What recovery found and did.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: usize,
    /// Bytes of torn tails cut off (writes that never completed).
    pub torn_bytes: u64,
    /// Damaged records stepped over inside segments, and their bytes.
    pub damaged_regions: usize,
    pub damaged_bytes: u64,
}

/// An opened spool: the recovered state, ready for the writer and the archiver.
pub struct Spool {
    pub opts: SpoolOptions,
    pub instance: String,
    /// The positions recovered from the spool: where each source resumes.
    pub checkpoints: Arc<CheckpointStore>,
    /// Sealed segments waiting for the archiver, oldest first.
    pub sealed: Vec<Segment>,
    pub next_seq: u64,
    pub usage: Arc<Usage>,
    pub recovery: RecoveryReport,
    /// Held for as long as the spool is in use.
    lock: File,
}

impl Spool {
    /// Opens (creating if needed) and recovers the spool: takes the lock, cuts torn tails,
    /// seals the segment a previous run left open, and replays every record's checkpoints.
    pub fn open(opts: SpoolOptions) -> Result<Spool> {
        let dir = &opts.dir;
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create spool directory {}", dir.display()))?;
        let lock = lock_dir(dir)?;
        let instance = instance_id(dir)?;
        let mut report = RecoveryReport::default();
        let mut checkpoints = BTreeMap::new();
        let mut sealed = Vec::new();
        let mut next_seq = 0;
        let mut total = 0;
        for (seq, is_sealed, path) in list_segments(dir)? {
            next_seq = next_seq.max(seq + 1);
            let bytes = fs::read(&path)
                .with_context(|| format!("cannot read spool segment {}", path.display()))?;
            let scan = record::scan(&bytes);
            report.segments += 1;
            report.records += scan.records.len();
            if !scan.skipped.is_empty() {
                report.damaged_regions += scan.skipped.len();
                report.damaged_bytes += scan.skipped_bytes() as u64;
                tracing::error!(
                    segment = %path.display(),
                    regions = scan.skipped.len(),
                    bytes = scan.skipped_bytes(),
                    "spool segment has damaged records; they are skipped, the rest is kept"
                );
            }
            let torn = (bytes.len() - scan.valid_end) as u64;
            let mut len = bytes.len() as u64;
            if torn > 0 {
                report.torn_bytes += torn;
                tracing::warn!(
                    segment = %path.display(),
                    bytes = torn,
                    "cutting the torn tail of a spool segment (a write that never completed)"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(scan.valid_end as u64)?;
                f.sync_all()?;
                len = scan.valid_end as u64;
            }
            for r in &scan.records {
                // A record whose checksum matched but whose payload does not parse was
                // written by a different version: the archiver reports it; skip it here.
                if let Ok(p) = record::parse_payload(&bytes[r.clone()]) {
                    apply_checkpoints(&mut checkpoints, &p.checkpoints);
                }
            }
            let path = if is_sealed {
                path
            } else {
                let to = segment_path(dir, seq, true);
                fs::rename(&path, &to)?;
                to
            };
            total += len;
            sealed.push(Segment {
                seq,
                path,
                bytes: len,
            });
        }
        sync_dir(dir)?;
        let usage = Arc::new(Usage::default());
        usage.add(total);
        if report.segments > 0 {
            tracing::info!(
                segments = report.segments,
                records = report.records,
                torn_bytes = report.torn_bytes,
                damaged_bytes = report.damaged_bytes,
                "spool recovered"
            );
        }
        Ok(Spool {
            opts,
            instance,
            checkpoints: Arc::new(CheckpointStore::new(checkpoints)),
            sealed,
            next_seq,
            usage,
            recovery: report,
            lock,
        })
    }

    /// Keeps the lock alive in whoever owns the returned handle.
    pub fn take_lock(&self) -> Result<File> {
        Ok(self.lock.try_clone()?)
    }
}

/// Applies a record's checkpoints in order; an empty value forgets the key (a source
/// that will never resume it, e.g. a deleted file).
pub fn apply_checkpoints(map: &mut BTreeMap<String, String>, cps: &[(&str, &str)]) {
    for (k, v) in cps {
        if v.is_empty() {
            map.remove(*k);
        } else {
            map.insert((*k).to_string(), (*v).to_string());
        }
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        bail!(
            "the spool {} is in use by another infra-collector (lock {} is held)",
            dir.display(),
            path.display()
        );
    }
    Ok(f)
}

fn instance_id(dir: &Path) -> Result<String> {
    let path = dir.join("instance");
    if let Ok(s) = fs::read_to_string(&path) {
        let s = s.trim();
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s.to_string());
        }
    }
    let mut raw = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .context("cannot read /dev/urandom for the spool's instance id")?;
    let id = format!("{:016x}", u64::from_le_bytes(raw));
    let tmp = dir.join("instance.tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{id}")?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(id)
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync directory {}", dir.display()))
}

#[cfg(test)]
mod tests;
