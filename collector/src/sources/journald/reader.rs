//! Reads one journal namespace directory: resumes after its cursor, turns entries into rows,
//! follows new entries, rotated and vacuumed files, and counts entries deleted before they
//! could be read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use infralog_schemas::{extra_key, source};

use super::dirs::{NamespaceDir, unsupported_files};
use super::entry::Entry;
use super::sys::JournalHandle;
use super::users::UserNames;
use super::{JournaldConfig, ReadFrom, Skip};
use crate::batch::{LogBatchBuilder, Row, decimal};
use crate::chunk::{Checkpoint, Chunk};
use crate::identity::identity_mismatch;
use crate::parse::Pri;
use crate::parse::journal::{CursorSeq, cursor_seq, entries_missing_between};
use crate::sources::SourceContext;
use crate::time::now_ns;

/// Longest a wait for new entries lasts, so that shutdown and chunk age are noticed.
const WAIT: Duration = Duration::from_millis(100);
/// Seqnum ids remembered for gap detection (a directory normally has one writer; journald
/// starts a new id only when it finds no previous file).
const MAX_WRITERS: usize = 8;

/// Counters of one reader, readable while it runs.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Entries archived.
    pub entries: AtomicU64,
    /// Entries skipped by an `exclude` match (including kernel lines owned by kmsg).
    pub skipped: AtomicU64,
    /// Entries deleted (vacuumed) before they could be read.
    pub vacuumed: AtomicU64,
}

impl std::fmt::Display for ReaderStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "entries={} skipped={} vacuumed={}",
            self.entries.load(Ordering::Relaxed),
            self.skipped.load(Ordering::Relaxed),
            self.vacuumed.load(Ordering::Relaxed)
        )
    }
}

pub struct Reader {
    ctx: SourceContext,
    dir: NamespaceDir,
    journal: JournalHandle,
    read_from: ReadFrom,
    skip: Skip,
    /// Seqnum jumps mean vacuumed entries only when we read every entry; with include
    /// matches libsystemd skips the others and jumps are normal.
    detect_gaps: bool,
    entry: Entry,
    users: UserNames,
    builder: LogBatchBuilder,
    chunk_started: Option<Instant>,
    /// Cursor of the last entry read (archived or skipped): the next chunk's checkpoint.
    cursor: Vec<u8>,
    /// Whether entries were read since the last checkpoint sent (a chunk of skipped
    /// entries only carries a checkpoint, so that they are not read again).
    unsent: bool,
    /// The last seqnum seen per seqnum id, most recent first.
    last_seq: Vec<(Vec<u8>, u64)>,
    /// Entries found missing, flagged on the next row.
    vacuumed_before: u64,
    stats: Arc<ReaderStats>,
    warned_unreadable: bool,
}

impl Reader {
    /// Opens the directory (on the calling thread, which must be the one that reads it).
    pub fn open(
        ctx: SourceContext,
        dir: NamespaceDir,
        cfg: &JournaldConfig,
        skip: Skip,
        max_message_bytes: usize,
        stats: Arc<ReaderStats>,
    ) -> Result<Reader> {
        for (file, flags) in dir.paths.iter().flat_map(|p| unsupported_files(p)) {
            tracing::error!(
                "journald: {} has incompatible flags {flags:#x} that libsystemd 252 does not \
                 know: libsystemd skips it and its entries are NOT read; update libsystemd",
                file.display()
            );
        }
        let mut journal = match &dir.os_root {
            Some(root) => JournalHandle::open_os_root(root)?,
            None => JournalHandle::open_directory(dir.path())?,
        };
        for m in &cfg.include {
            journal.add_match(m.as_bytes())?;
        }
        let root = (cfg.root != std::path::Path::new("/")).then(|| cfg.root.clone());
        Ok(Reader {
            builder: LogBatchBuilder::with_max_message(
                ctx.chunk_rows.clamp(1, 8192),
                max_message_bytes,
            ),
            ctx,
            dir,
            journal,
            read_from: cfg.read_from,
            skip,
            detect_gaps: cfg.include.is_empty(),
            entry: Entry::default(),
            users: UserNames::new(root),
            chunk_started: None,
            cursor: Vec::with_capacity(256),
            unsent: false,
            last_seq: Vec::new(),
            vacuumed_before: 0,
            stats,
            warned_unreadable: false,
        })
    }

    /// Positions the journal where reading starts; `true` when it stands on an entry that
    /// has not been read yet.
    fn resume(&mut self) -> Result<bool> {
        let mut saved = self.ctx.checkpoints.load(&self.dir.key)?;
        for k in &self.dir.legacy_keys {
            if saved.is_some() {
                break;
            }
            saved = self.ctx.checkpoints.load(k)?;
        }
        if let Some(cursor) = saved {
            match self.journal.seek_cursor(&cursor) {
                Ok(()) => {
                    self.note_seq(cursor.as_bytes());
                    if !self.journal.step()? {
                        return Ok(false);
                    }
                    // The saved entry may be gone (vacuumed): then the entry we landed on
                    // is the first one after it, and unread.
                    if self.journal.test_cursor(&cursor)? {
                        return Ok(false);
                    }
                    // Or a copy of it: journald flushed it from /run to /var, where it has
                    // another seqnum, and the /run file is gone.
                    let mut here = Vec::new();
                    self.journal.cursor_into(&mut here)?;
                    return Ok(!same_entry(cursor.as_bytes(), &here));
                }
                Err(e) => tracing::warn!(
                    "journald: {}: saved cursor {cursor:?} unusable ({e:#}); reading from \
                     the beginning (entries may be archived twice rather than lost)",
                    self.dir.key
                ),
            }
            self.journal.seek_head()?;
            return Ok(false);
        }
        match self.read_from {
            ReadFrom::Beginning => self.journal.seek_head()?,
            ReadFrom::Now => {
                self.journal.seek_tail()?;
                // Stand on the last entry (taken as read, and checkpointed so that a
                // restart does not skip again) so that `next` yields only new ones.
                if self.journal.step_back()? {
                    self.journal.cursor_into(&mut self.cursor)?;
                    self.unsent = true;
                } else {
                    self.journal.seek_head()?;
                }
            }
        }
        Ok(false)
    }

    pub fn run(mut self) -> Result<()> {
        let result = self.read_loop();
        let sent = self.send_chunk();
        tracing::info!("journald {} stats: {}", self.dir.key, self.stats);
        result.and(sent)
    }

    fn read_loop(&mut self) -> Result<()> {
        let mut on_entry = self.resume()?;
        let mut since_process = Instant::now();
        loop {
            if self.ctx.stopping() {
                return Ok(());
            }
            if !on_entry {
                on_entry = self.journal.step()?;
            }
            if on_entry {
                self.read_entry()?;
                on_entry = false;
                if self.builder.len() >= self.ctx.chunk_rows {
                    self.send_chunk()?;
                }
                // While catching up, let libsystemd see rotated and deleted files now and
                // then (it only learns of them in `process`).
                if since_process.elapsed() >= Duration::from_secs(1) {
                    self.journal.process()?;
                    since_process = Instant::now();
                }
                continue;
            }
            // At the end of what is there now.
            if self.ctx.once {
                return Ok(());
            }
            let wait = match self.chunk_started {
                None if self.unsent => {
                    self.send_chunk()?;
                    WAIT
                }
                Some(t) => {
                    let age = t.elapsed();
                    if age >= self.ctx.chunk_max_age {
                        self.send_chunk()?;
                        WAIT
                    } else {
                        (self.ctx.chunk_max_age - age).min(WAIT)
                    }
                }
                None => WAIT,
            };
            self.journal.wait(wait.as_micros() as u64)?;
            since_process = Instant::now();
        }
    }

    /// Records the seqnum of `cursor`; returns how many entries of its writer were skipped
    /// since the last one seen.
    fn note_seq(&mut self, cursor: &[u8]) -> u64 {
        let Some(seq) = cursor_seq(cursor) else {
            return 0;
        };
        let pos = self.last_seq.iter().position(|(id, _)| id == seq.seqnum_id);
        match pos {
            Some(i) => {
                let (id, last) = &mut self.last_seq[i];
                let prev = CursorSeq {
                    seqnum_id: id.as_slice(),
                    seqnum: *last,
                };
                let missing = entries_missing_between(&prev, &seq);
                *last = (*last).max(seq.seqnum);
                let e = self.last_seq.remove(i);
                self.last_seq.insert(0, e);
                missing
            }
            None => {
                self.last_seq.truncate(MAX_WRITERS - 1);
                self.last_seq
                    .insert(0, (seq.seqnum_id.to_vec(), seq.seqnum));
                0
            }
        }
    }

    fn read_entry(&mut self) -> Result<()> {
        // The cursor of every entry, for its seqnum (libsystemd 252 has no
        // sd_journal_get_seqnum, added in 254). libsystemd formats it into a string it
        // allocates: the one allocation per entry on this path, and not ours to avoid.
        let mut cursor = std::mem::take(&mut self.cursor);
        self.journal.cursor_into(&mut cursor)?;
        let missing = self.note_seq(&cursor);
        self.cursor = cursor;
        self.unsent = true;
        if missing > 0 && self.detect_gaps {
            self.vacuumed_before += missing;
            self.stats.vacuumed.fetch_add(missing, Ordering::Relaxed);
            tracing::warn!(
                "journald: {}: {missing} entries were deleted (vacuumed or rotated away) \
                 before they could be read; the next row is flagged",
                self.dir.key
            );
        }

        self.entry.clear();
        let entry = &mut self.entry;
        let unreadable = self.journal.for_each_field(|f| entry.push(f));
        if let Some(e) = &unreadable
            && !self.warned_unreadable
        {
            self.warned_unreadable = true;
            tracing::error!(
                "journald: {}: a field of an entry cannot be read ({e}); the entry is kept \
                 with the fields before it and flagged{}",
                self.dir.key,
                if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                    ": the journal uses a compression this libsystemd does not support"
                } else {
                    ""
                }
            );
        }
        if self.entry.matches_any(&self.skip.any) || self.entry.matches_all(&self.skip.all) {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let realtime = self.journal.realtime_usec()?;
        self.append(realtime, unreadable.is_some());
        Ok(())
    }

    fn append(&mut self, realtime_us: u64, unreadable: bool) {
        let m = self.entry.map(realtime_us);
        let user_name = m.uid.and_then(|u| self.users.name(u));
        let mismatch = identity_mismatch(
            m.comm.and(m.claimed_tag),
            m.process_id.and(m.claimed_pid),
            (m.process_id.unwrap_or(0), m.process_id.unwrap_or(0)),
            m.comm.unwrap_or_default(),
            m.comm.unwrap_or_default(),
        );
        let row = Row {
            timestamp_ns: (m.timestamp_us as i64).saturating_mul(1000),
            hostname: m.hostname.unwrap_or(self.ctx.hostname.as_bytes()),
            source: source::JOURNALD,
            pri: m.priority.map(|level| Pri {
                // No facility: a code with no name leaves the column null.
                facility: m.facility.unwrap_or(u8::MAX),
                level,
            }),
            message: m.message,
            process_name: m.process_name,
            process_id: m.process_id,
            user_name,
            uid: m.uid,
            unit: m.unit,
            parse_error: unreadable.then_some("a field of this journal entry could not be read"),
            ..Row::default()
        };
        let vacuumed = std::mem::take(&mut self.vacuumed_before);
        let entry = &self.entry;
        self.builder.append(&row, now_ns(), |w| {
            if vacuumed > 0 {
                w.put(
                    extra_key::JOURNAL_VACUUMED_BEFORE,
                    decimal(vacuumed, &mut [0; 20]),
                );
            }
            if mismatch.any() {
                w.put(extra_key::IDENTITY_MISMATCH, b"true");
                w.put(
                    extra_key::IDENTITY_MISMATCH_REASON,
                    mismatch.reason().as_bytes(),
                );
            }
            for (name, value) in entry.rest(&m) {
                if name.is_empty() {
                    w.put(extra_key::JOURNAL_INVALID_FIELD, value);
                } else {
                    w.put_joined(&[name], value);
                }
            }
        });
        self.chunk_started.get_or_insert_with(Instant::now);
        self.stats.entries.fetch_add(1, Ordering::Relaxed);
    }

    fn send_chunk(&mut self) -> Result<()> {
        if !self.unsent {
            return Ok(());
        }
        let checkpoint = (!self.cursor.is_empty()).then(|| Checkpoint {
            key: self.dir.key.clone(),
            value: String::from_utf8_lossy(&self.cursor).into_owned(),
        });
        self.chunk_started = None;
        self.unsent = false;
        let chunk = Chunk {
            batch: self.builder.finish(),
            checkpoint,
        };
        self.ctx
            .chunks
            .send(chunk)
            .context("the archive writer stopped")
    }
}

/// Whether two cursors name the same entry written once (boot id, monotonic and realtime
/// clock, hash of its fields), whatever file and seqnum it has: journald gives the copy it
/// flushes from /run to /var a new seqnum, and a cursor taken in /run must still find it.
pub fn same_entry(a: &[u8], b: &[u8]) -> bool {
    fn field<'a>(cursor: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        cursor
            .split(|&c| c == b';')
            .find_map(|part| part.strip_prefix(name)?.strip_prefix(b"="))
    }
    [b"b".as_slice(), b"m", b"t", b"x"]
        .iter()
        .all(|n| field(a, n).is_some_and(|v| Some(v) == field(b, n)))
}

#[cfg(test)]
mod cursor_tests {
    use super::same_entry;

    #[test]
    fn a_flushed_copy_is_the_same_entry_and_a_neighbour_is_not() {
        let run = b"s=6f4d;i=3;b=1111;m=3ea;t=60a24181e4002;x=12c9ab7037e57005";
        let var = b"s=7dc8;i=3;b=1111;m=3ea;t=60a24181e4002;x=12c9ab7037e57005";
        let next = b"s=7dc8;i=4;b=1111;m=3eb;t=60a24181e4003;x=9d2e";
        assert!(same_entry(run, var));
        assert!(!same_entry(run, next));
        assert!(
            !same_entry(b"s=1;i=2", b"s=1;i=2"),
            "no clock or hash: not provable"
        );
    }
}
