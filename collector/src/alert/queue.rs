//! The alert queue on disk, in `<state_dir>/alerts/`, so that no alert is lost across a
//! restart or while a target is down:
//! - `inbox/<anomaly id>.json`: anomalies taken but not yet in a notification (they wait
//!   in a group); given back to the grouper at start;
//! - `outbox/<seq>.json`: notifications formed but not yet delivered, in order;
//! - `notified.json`: when each trouble was last notified (deduplication, repeat
//!   interval).
//!
//! Every file is written whole through a temporary file, fsync and rename.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::group::Memory;
use crate::detect::Anomaly;

/// One notification to deliver to one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub seq: u64,
    pub target: String,
    pub title: String,
    /// The JSON body, in the target's format.
    pub body: serde_json::Value,
    pub anomalies: Vec<i64>,
}

pub struct Queue {
    dir: PathBuf,
    next_seq: u64,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_dir_json<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<(PathBuf, T)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = e?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice(&b)?))
        {
            Ok(v) => out.push((path, v)),
            // A damaged entry is set aside, not retried forever nor deleted unseen.
            Err(e) => {
                tracing::error!(
                    "alert queue entry {} is damaged ({e:#}); set aside as .bad",
                    path.display()
                );
                let _ = std::fs::rename(&path, path.with_extension("bad"));
            }
        }
    }
    Ok(out)
}

impl Queue {
    pub fn open(dir: &Path) -> Result<Queue> {
        for sub in ["inbox", "outbox"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let mut q = Queue {
            dir: dir.to_path_buf(),
            next_seq: 0,
        };
        q.next_seq = q.outbox()?.last().map_or(0, |d| d.seq + 1);
        Ok(q)
    }

    /// Notifications waiting for delivery, oldest first.
    pub fn outbox(&self) -> Result<Vec<Delivery>> {
        let mut v: Vec<Delivery> = read_dir_json(&self.dir.join("outbox"))?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        v.sort_by_key(|d: &Delivery| d.seq);
        Ok(v)
    }

    /// Makes a notification durable; returns it with its sequence number.
    pub fn push(&mut self, mut d: Delivery) -> Result<Delivery> {
        d.seq = self.next_seq;
        write_atomic(
            &self.dir.join("outbox").join(format!("{:020}.json", d.seq)),
            &serde_json::to_vec(&d)?,
        )?;
        self.next_seq += 1;
        Ok(d)
    }

    pub fn delivered(&self, seq: u64) -> Result<()> {
        let path = self.dir.join("outbox").join(format!("{seq:020}.json"));
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))
    }

    pub fn inbox_put(&self, a: &Anomaly) -> Result<()> {
        write_atomic(
            &self.dir.join("inbox").join(format!("{}.json", a.id)),
            &serde_json::to_vec(a)?,
        )
    }

    pub fn inbox_remove(&self, id: i64) {
        let _ = std::fs::remove_file(self.dir.join("inbox").join(format!("{id}.json")));
    }

    pub fn inbox(&self) -> Result<Vec<Anomaly>> {
        let mut v: Vec<Anomaly> = read_dir_json(&self.dir.join("inbox"))?
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        v.sort_by_key(|a: &Anomaly| (a.detected_at_us, a.id));
        Ok(v)
    }

    pub fn save_memory(&self, m: &Memory) -> Result<()> {
        write_atomic(&self.dir.join("notified.json"), &serde_json::to_vec(m)?)
    }

    pub fn load_memory(&self) -> Memory {
        std::fs::read(self.dir.join("notified.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}
