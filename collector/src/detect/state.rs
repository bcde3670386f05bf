//! The miner's state on disk, in `<state_dir>/templates/`: a snapshot of every template
//! and a journal of what changed since.
//!
//! - `journal`: one JSON line per change (a template's new version, an eviction),
//!   appended and fsync'd *before* the chunk whose rows carry the new ids goes on to the
//!   spool. So every `template_id` in a durable row has its first text durable here.
//! - `snapshot`: every template (id, version, text, count, first/last seen), written to a
//!   temporary file, fsync'd and renamed over the old one; then the journal is emptied.
//!
//! After `kill -9` between two snapshots, recovery loads the snapshot and replays the
//! journal: every template and every version that any durable row refers to is back,
//! with its id. What is lost is the line counts and last-seen times since the snapshot
//! (the `logs` table has the exact counts); a journal line torn by the crash is the last
//! one, and is skipped. Rows that were mined but not yet durable in the spool are read
//! again by their source after the restart and mined again by the recovered miner, which
//! gives them the same ids (the ids of templates it knows, or the hash of the same first
//! text for a template it does not).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::miner::{Change, Miner, Template, Version};

#[derive(Serialize, Deserialize)]
struct SavedTemplate {
    id: i64,
    version: u32,
    text: String,
    count: u64,
    first_seen_us: i64,
    last_seen_us: i64,
    /// (version, text, since) of every version, oldest first.
    #[serde(default)]
    versions: Vec<(u32, String, i64)>,
    #[serde(default)]
    example: String,
}

/// The first line of the snapshot: what is not a template.
#[derive(Serialize, Deserialize, Default)]
struct SnapshotHeader {
    /// Sequence number of the next `templates` table file.
    table_seq: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
enum JournalLine {
    Version {
        id: i64,
        version: u32,
        text: String,
        at_us: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<String>,
    },
    Evicted {
        id: i64,
    },
}

pub struct TemplateState {
    dir: PathBuf,
    journal: File,
    /// Lines in the journal since the last snapshot.
    pub journal_lines: u64,
    /// Sequence number of the next `templates` table file (kept in the snapshot).
    pub table_seq: u64,
}

fn template(id: i64, version: u32, text: &str, first: i64, last: i64) -> Template {
    Template {
        id,
        version,
        tokens: text
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(|t| Box::from(t.as_bytes()))
            .collect(),
        count: 0,
        first_seen_us: first,
        last_seen_us: last,
        versions: vec![Version {
            version,
            text: text.into(),
            since_us: first,
        }],
        example: "".into(),
        last_used: 0,
        // Recovered templates are written to the table again: the write before a crash
        // may not have happened.
        dirty: true,
    }
}

impl TemplateState {
    /// Opens (creating) `dir` and restores into `miner` what it holds.
    pub fn open(dir: &Path, miner: &mut Miner) -> Result<TemplateState> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let snapshot = dir.join("snapshot");
        let mut restored = 0usize;
        let mut table_seq = 0;
        if let Ok(f) = File::open(&snapshot) {
            for line in BufReader::new(f).lines() {
                let line = line.with_context(|| format!("cannot read {}", snapshot.display()))?;
                if let Ok(h) = serde_json::from_str::<SnapshotHeader>(&line)
                    && !line.contains("\"id\"")
                {
                    table_seq = h.table_seq;
                    continue;
                }
                // The snapshot is renamed into place whole: a line that does not parse
                // was written by a newer version; it is skipped, not fatal.
                if let Ok(s) = serde_json::from_str::<SavedTemplate>(&line) {
                    let mut t = template(s.id, s.version, &s.text, s.first_seen_us, s.last_seen_us);
                    t.count = s.count;
                    t.example = s.example.into();
                    if !s.versions.is_empty() {
                        t.versions = s
                            .versions
                            .into_iter()
                            .map(|(version, text, since_us)| Version {
                                version,
                                text: text.into(),
                                since_us,
                            })
                            .collect();
                    }
                    miner.restore(t);
                    restored += 1;
                }
            }
        }
        let journal_path = dir.join("journal");
        let mut replayed = 0u64;
        let bytes = match std::fs::read(&journal_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", journal_path.display()));
            }
        };
        // A crash during an append leaves a torn last line with no newline: it is cut
        // off, so that the next append starts a line of its own.
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            tracing::warn!(
                "template journal {}: cut a torn last line (written during a crash)",
                journal_path.display()
            );
            OpenOptions::new()
                .write(true)
                .open(&journal_path)
                .and_then(|f| f.set_len(whole as u64).and_then(|_| f.sync_all()))
                .with_context(|| format!("cannot repair {}", journal_path.display()))?;
        }
        for line in bytes[..whole].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let Ok(change) = serde_json::from_slice::<JournalLine>(line) else {
                tracing::warn!(
                    "template journal {}: skipped a line that does not parse",
                    journal_path.display()
                );
                continue;
            };
            replayed += 1;
            match change {
                JournalLine::Version {
                    id,
                    version,
                    text,
                    at_us,
                    example,
                } => {
                    let mut t = template(id, version, &text, at_us, at_us);
                    t.example = example.unwrap_or_default().into();
                    miner.restore_version(t)
                }
                JournalLine::Evicted { id } => miner.forget(id),
            }
        }
        // What was restored is durable already: it is not a change to journal again.
        miner.take_changes();
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .with_context(|| format!("cannot open {}", journal_path.display()))?;
        tracing::info!(
            dir = %dir.display(),
            templates = miner.len(),
            snapshot = restored,
            journal = replayed,
            "template miner state recovered"
        );
        Ok(TemplateState {
            dir: dir.to_path_buf(),
            journal,
            journal_lines: replayed,
            table_seq,
        })
    }

    /// Appends `changes` to the journal and makes them durable.
    pub fn append(&mut self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for c in changes {
            let line = match c {
                Change::Version {
                    id,
                    version,
                    text,
                    at_us,
                    example,
                } => JournalLine::Version {
                    id: *id,
                    version: *version,
                    text: text.clone(),
                    at_us: *at_us,
                    example: example.clone(),
                },
                Change::Evicted { id } => JournalLine::Evicted { id: *id },
            };
            serde_json::to_writer(&mut buf, &line)?;
            buf.push(b'\n');
        }
        self.journal
            .write_all(&buf)
            .and_then(|_| self.journal.sync_data())
            .context("cannot write the template journal")?;
        self.journal_lines += changes.len() as u64;
        Ok(())
    }

    /// Writes every template of `miner` as the new snapshot and empties the journal.
    pub fn snapshot(&mut self, miner: &Miner) -> Result<()> {
        let tmp = self.dir.join("snapshot.tmp");
        let mut buf = Vec::new();
        serde_json::to_writer(
            &mut buf,
            &SnapshotHeader {
                table_seq: self.table_seq,
            },
        )?;
        buf.push(b'\n');
        for t in miner.templates() {
            serde_json::to_writer(
                &mut buf,
                &SavedTemplate {
                    id: t.id,
                    version: t.version,
                    text: t.text(),
                    count: t.count,
                    first_seen_us: t.first_seen_us,
                    last_seen_us: t.last_seen_us,
                    versions: t
                        .versions
                        .iter()
                        .map(|v| (v.version, v.text.to_string(), v.since_us))
                        .collect(),
                    example: t.example.to_string(),
                },
            )?;
            buf.push(b'\n');
        }
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join("snapshot"))?;
        File::open(&self.dir)?.sync_all()?;
        // Only now that the snapshot holds everything may the journal go.
        self.journal.set_len(0)?;
        self.journal.sync_all()?;
        self.journal_lines = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::MinerConfig;

    fn mine(m: &mut Miner, st: &mut TemplateState, lines: &[&str]) -> Vec<i64> {
        let ids = lines.iter().map(|l| m.add(l.as_bytes(), 7)).collect();
        st.append(&m.take_changes()).unwrap();
        ids
    }

    #[test]
    fn ids_and_versions_survive_a_crash_between_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Miner::new(MinerConfig::default());
        let mut st = TemplateState::open(dir.path(), &mut m).unwrap();
        let before = mine(
            &mut m,
            &mut st,
            &[
                "disk sda is full",
                "user alice logged in now",
                // A second user is a sibling template (the miner's two-word rule).
                "user bob logged in now",
            ],
        );
        st.snapshot(&m).unwrap();
        // After the snapshot: a new version of one template and a new template, only in
        // the journal; then the process dies (nothing else written), plus a torn line.
        let after = mine(
            &mut m,
            &mut st,
            &["user carol logged in now", "fan speed low"],
        );
        assert_eq!(after[0], before[1]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal"))
            .unwrap()
            .write_all(b"{\"change\":\"vers")
            .unwrap();
        drop(st);

        let mut r = Miner::new(MinerConfig::default());
        let _st = TemplateState::open(dir.path(), &mut r).unwrap();
        assert_eq!(r.len(), 4);
        let t = r.get(before[1]).unwrap();
        assert_eq!(
            (t.version, t.text().as_str()),
            (2, "user <*> logged in now")
        );
        assert!(r.get(after[1]).is_some());
        // The recovered miner gives the lines the same ids, and changes nothing.
        for (line, id) in [
            ("user dave logged in now", before[1]),
            ("user bob logged in now", before[2]),
            ("disk sda is full", before[0]),
            ("fan speed low", after[1]),
        ] {
            assert_eq!(r.add(line.as_bytes(), 8), id, "{line}");
        }
        assert!(!r.has_changes());
        // The torn line was cut: what is appended now is read back after another restart.
        let mut st = _st;
        let more = mine(&mut r, &mut st, &["power supply failed"]);
        drop(st);
        let mut r2 = Miner::new(MinerConfig::default());
        let _st = TemplateState::open(dir.path(), &mut r2).unwrap();
        assert!(r2.get(more[0]).is_some());
        assert_eq!(r2.len(), 5);
    }
}
