//! Who still needs a sealed segment, and the one rule that deletes it.
//!
//! Every reader of the spool — the archiver and each forwarding sink — is a *consumer*
//! with a durable cursor (segment, record, row), like a Kafka consumer group's offset. A
//! consumer moves its cursor only after its target acknowledged the rows before it. The
//! rule: **a sealed segment is deleted once every consumer's cursor is past it.** Nothing
//! else deletes segments, so the archive and the sinks never race, and one slow sink holds
//! segments instead of losing rows.
//!
//! A consumer with the `drop_oldest` policy holds at most its limit (bytes and age of the
//! segments it has not finished): past it, its cursor is moved past the oldest segment,
//! and the skipped segment is counted and logged as dropped for that consumer. With
//! `block`, it holds segments until the spool is full and the writer holds the sources
//! back. Either way the archive and the other sinks go on.
//!
//! Cursors live in `<spool>/cursors/<consumer>`, one line `seq record row`, replaced
//! atomically (write, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::{Usage, list_segments, sync_dir};

/// The consumer name of the archiver.
pub const ARCHIVE: &str = infralog_spool_format::ARCHIVE_CURSOR;

/// A position in the spool: the next row a consumer has not yet delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub seq: u64,
    pub record: u64,
    pub row: u64,
}

impl Cursor {
    /// The start of segment `seq`.
    pub fn at_segment(seq: u64) -> Cursor {
        Cursor {
            seq,
            record: 0,
            row: 0,
        }
    }

    fn parse(text: &str) -> Option<Cursor> {
        let mut it = text.split_ascii_whitespace().map(|s| s.parse::<u64>());
        let c = Cursor {
            seq: it.next()?.ok()?,
            record: it.next()?.ok()?,
            row: it.next()?.ok()?,
        };
        it.next().is_none().then_some(c)
    }
}

/// How much a consumer may hold, and what happens past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_bytes: u64,
    /// Zero: no age limit.
    pub max_age: Duration,
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Keep every segment the consumer has not delivered; a full spool holds the sources.
    Block,
    /// Past the limit, skip the consumer's oldest segment (counted as dropped).
    DropOldest,
}

impl Limit {
    pub const BLOCK: Limit = Limit {
        max_bytes: u64::MAX,
        max_age: Duration::ZERO,
        policy: Policy::Block,
    };
}

/// What a `drop_oldest` consumer lost, readable while it runs.
#[derive(Debug, Default)]
pub struct Dropped {
    pub segments: AtomicU64,
    pub bytes: AtomicU64,
}

struct Consumer {
    cursor: Cursor,
    limit: Limit,
    dropped: Arc<Dropped>,
}

/// The consumers of one spool and their cursors.
pub struct Release {
    dir: PathBuf,
    usage: Arc<Usage>,
    consumers: Mutex<BTreeMap<String, Consumer>>,
    /// Held while a cursor file is written: a consumer's own advance and a drop by the
    /// release rule may store the same cursor at once.
    storing: Mutex<()>,
}

/// The directory of the cursor files of the spool at `spool_dir`.
pub fn cursor_dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join(infralog_spool_format::CURSOR_DIR)
}

/// The stored cursor of `name`, if it has one.
pub fn load_cursor(spool_dir: &Path, name: &str) -> Result<Option<Cursor>> {
    let path = cursor_dir(spool_dir).join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Cursor::parse(&text)
            .map(Some)
            .with_context(|| format!("damaged cursor file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl Release {
    pub fn new(spool_dir: &Path, usage: Arc<Usage>) -> Result<Release> {
        let dir = cursor_dir(spool_dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Release {
            dir: spool_dir.to_path_buf(),
            usage,
            consumers: Mutex::new(BTreeMap::new()),
            storing: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Consumer>> {
        self.consumers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a consumer at its stored cursor, or at `start` when it has none (stored now,
    /// so that a restart before its first delivery starts there too). Every consumer is
    /// registered before any of them releases a segment. Returns its cursor.
    pub fn register(
        &self,
        name: &str,
        start: Cursor,
        limit: Limit,
    ) -> Result<(Cursor, Arc<Dropped>)> {
        let cursor = match load_cursor(&self.dir, name)? {
            Some(c) => c,
            None => {
                self.store(name, start)?;
                start
            }
        };
        let dropped = Arc::new(Dropped::default());
        self.lock().insert(
            name.to_string(),
            Consumer {
                cursor,
                limit,
                dropped: dropped.clone(),
            },
        );
        Ok((cursor, dropped))
    }

    /// What the consumer lost to its `drop_oldest` limit.
    pub fn dropped(&self, name: &str) -> Option<Arc<Dropped>> {
        self.lock().get(name).map(|c| c.dropped.clone())
    }

    /// The consumer's cursor as the release rule sees it (moved by a drop, too).
    pub fn cursor(&self, name: &str) -> Option<Cursor> {
        self.lock().get(name).map(|c| c.cursor)
    }

    /// Moves `name`'s cursor forward to `to` (never back) and stores it durably; deletes
    /// the segments no consumer needs any more. Call it only once the rows before `to`
    /// are acknowledged.
    pub fn advance(&self, name: &str, to: Cursor) -> Result<()> {
        let before = {
            let mut consumers = self.lock();
            let Some(c) = consumers.get_mut(name) else {
                anyhow::bail!("{name} is not a consumer of the spool");
            };
            let before = c.cursor;
            c.cursor = c.cursor.max(to);
            before
        };
        if let Err(e) = self.persist(name) {
            // Not stored: it still holds what it held, so nothing it needs is deleted
            // while the caller retries.
            if let Some(c) = self.lock().get_mut(name) {
                c.cursor = before;
            }
            return Err(e);
        }
        // Deleting what nobody needs is housekeeping: a failure is the next call's to
        // retry, never this consumer's.
        if let Err(e) = self.collect() {
            tracing::warn!("cannot release spool segments (will retry): {e:#}");
        }
        Ok(())
    }

    /// Stores the consumer's cursor as it is now (never an older value over a newer one).
    fn persist(&self, name: &str) -> Result<()> {
        let _storing = self.storing.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = self.cursor(name) else {
            return Ok(());
        };
        self.write(name, c)
    }

    fn store(&self, name: &str, c: Cursor) -> Result<()> {
        let _storing = self.storing.lock().unwrap_or_else(|e| e.into_inner());
        self.write(name, c)
    }

    fn write(&self, name: &str, c: Cursor) -> Result<()> {
        let dir = cursor_dir(&self.dir);
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(name);
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        writeln!(f, "{} {} {}", c.seq, c.record, c.row)?;
        f.sync_data()?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        sync_dir(&dir)
    }

    /// Applies the limits of `drop_oldest` consumers, then deletes every sealed segment
    /// that all consumers are past.
    pub fn collect(&self) -> Result<()> {
        let segments: Vec<(u64, PathBuf, u64, SystemTime)> = list_segments(&self.dir)?
            .into_iter()
            .filter(|(_, sealed, _)| *sealed)
            .filter_map(|(seq, _, path)| {
                let m = fs::metadata(&path).ok()?;
                Some((seq, path, m.len(), m.modified().ok()?))
            })
            .collect();
        let mut consumers = self.lock();
        let mut moved = Vec::new();
        for (name, c) in consumers.iter_mut() {
            if c.limit.policy != Policy::DropOldest {
                continue;
            }
            loop {
                let held: Vec<_> = segments.iter().filter(|s| s.0 >= c.cursor.seq).collect();
                let Some(oldest) = held.first() else { break };
                let bytes: u64 = held.iter().map(|s| s.2).sum();
                let age = oldest.3.elapsed().unwrap_or_default();
                let too_old = !c.limit.max_age.is_zero() && age > c.limit.max_age;
                if bytes <= c.limit.max_bytes && !too_old {
                    break;
                }
                c.dropped.segments.fetch_add(1, Ordering::Relaxed);
                c.dropped.bytes.fetch_add(oldest.2, Ordering::Relaxed);
                tracing::warn!(
                    consumer = name.as_str(),
                    segment = oldest.0,
                    segment_bytes = oldest.2,
                    held_bytes = bytes,
                    age_secs = age.as_secs(),
                    "consumer over its spool limit (drop_oldest): its oldest segment is \
                     skipped for it and counted as dropped"
                );
                c.cursor = Cursor::at_segment(oldest.0 + 1);
                moved.push((name.clone(), c.cursor));
            }
        }
        let below = consumers.values().map(|c| c.cursor.seq).min();
        drop(consumers);
        for (name, _) in moved {
            self.persist(&name)?;
        }
        let Some(below) = below else { return Ok(()) };
        let mut deleted = false;
        for (seq, path, len, _) in segments.iter().filter(|s| s.0 < below) {
            match fs::remove_file(path) {
                Ok(()) => {
                    self.usage.free(*len);
                    deleted = true;
                    tracing::debug!(segment = seq, "spool segment released by every consumer");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot delete {}", path.display()));
                }
            }
        }
        if deleted {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::segment_path;

    fn segment(dir: &Path, seq: u64, bytes: usize, usage: &Usage) {
        fs::write(segment_path(dir, seq, true), vec![0u8; bytes]).unwrap();
        usage.add(bytes as u64);
    }

    fn present(dir: &Path) -> Vec<u64> {
        list_segments(dir).unwrap().iter().map(|s| s.0).collect()
    }

    #[test]
    fn a_segment_goes_once_every_consumer_is_past_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let usage = Arc::new(Usage::default());
        for seq in 0..4 {
            segment(dir, seq, 100, &usage);
        }
        let r = Release::new(dir, usage.clone()).unwrap();
        r.register(ARCHIVE, Cursor::at_segment(0), Limit::BLOCK)
            .unwrap();
        r.register("es", Cursor::at_segment(0), Limit::BLOCK)
            .unwrap();
        r.advance(ARCHIVE, Cursor::at_segment(3)).unwrap();
        assert_eq!(present(dir), [0, 1, 2, 3], "the sink still needs them");
        r.advance(
            "es",
            Cursor {
                seq: 1,
                record: 5,
                row: 7,
            },
        )
        .unwrap();
        assert_eq!(present(dir), [1, 2, 3]);
        assert_eq!(usage.bytes(), 300);
        // Cursors never move back, and survive a restart.
        r.advance("es", Cursor::at_segment(0)).unwrap();
        assert_eq!(load_cursor(dir, "es").unwrap().unwrap().record, 5);
        let r2 = Release::new(dir, usage.clone()).unwrap();
        let (c, _) = r2
            .register("es", Cursor::at_segment(9), Limit::BLOCK)
            .unwrap();
        assert_eq!((c.seq, c.record, c.row), (1, 5, 7));
    }

    #[test]
    fn drop_oldest_skips_past_its_limit_and_counts_it_block_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let usage = Arc::new(Usage::default());
        for seq in 0..5 {
            segment(dir, seq, 100, &usage);
        }
        let r = Release::new(dir, usage.clone()).unwrap();
        r.register(ARCHIVE, Cursor::at_segment(0), Limit::BLOCK)
            .unwrap();
        let limit = Limit {
            max_bytes: 250,
            max_age: Duration::ZERO,
            policy: Policy::DropOldest,
        };
        let (_, dropped) = r.register("dead", Cursor::at_segment(0), limit).unwrap();
        r.register("blocked", Cursor::at_segment(2), Limit::BLOCK)
            .unwrap();
        r.advance(ARCHIVE, Cursor::at_segment(5)).unwrap();
        // "dead" may hold 250 bytes: segments 0..2 are skipped for it.
        assert_eq!(dropped.segments.load(Ordering::Relaxed), 3);
        assert_eq!(dropped.bytes.load(Ordering::Relaxed), 300);
        assert_eq!(r.cursor("dead").unwrap(), Cursor::at_segment(3));
        assert_eq!(load_cursor(dir, "dead").unwrap().unwrap().seq, 3);
        // "blocked" keeps 2 and later.
        assert_eq!(present(dir), [2, 3, 4]);
        assert_eq!(usage.bytes(), 300);
    }

    /// A sink advancing while the archiver's advance drops segments for it: cursors are
    /// stored one at a time, neither fails, and every segment both are past goes.
    #[test]
    fn concurrent_advances_and_drops_never_fail() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let usage = Arc::new(Usage::default());
        for seq in 0..200 {
            segment(dir, seq, 100, &usage);
        }
        let r = Arc::new(Release::new(dir, usage.clone()).unwrap());
        r.register(ARCHIVE, Cursor::at_segment(0), Limit::BLOCK)
            .unwrap();
        let limit = Limit {
            max_bytes: 300,
            max_age: Duration::ZERO,
            policy: Policy::DropOldest,
        };
        r.register("slow", Cursor::at_segment(0), limit).unwrap();
        let r2 = r.clone();
        let sink = std::thread::spawn(move || {
            for seq in 0..200 {
                r2.advance(
                    "slow",
                    Cursor {
                        seq,
                        record: 1,
                        row: 0,
                    },
                )
                .unwrap();
            }
        });
        for seq in 1..=200 {
            r.advance(ARCHIVE, Cursor::at_segment(seq)).unwrap();
        }
        sink.join().unwrap();
        r.advance("slow", Cursor::at_segment(200)).unwrap();
        assert!(present(dir).is_empty(), "{:?}", present(dir));
        assert_eq!(usage.bytes(), 0);
        assert_eq!(load_cursor(dir, ARCHIVE).unwrap().unwrap().seq, 200);
    }
}
