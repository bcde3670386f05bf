//! Durable source checkpoints: one small file per source under `<state_dir>/checkpoints/`,
//! replaced atomically (write, fsync, rename, fsync the directory) so that a crash leaves
//! either the old or the new position, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::chunk::Checkpoint;

pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("checkpoints");
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create checkpoint directory {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn path(&self, key: &str) -> PathBuf {
        // Keys hold `/` and `:` (file paths); keep one flat, readable file name per key.
        let name: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{name}.ckpt"))
    }

    /// The last committed position of `key`, if any.
    pub fn load(&self, key: &str) -> Result<Option<String>> {
        let path = self.path(key);
        match fs::read_to_string(&path) {
            Ok(s) => {
                // The file holds the key on the first line so that a name collision of
                // two keys is detected instead of resuming from the wrong position.
                let mut lines = s.lines();
                if lines.next() != Some(key) {
                    return Ok(None);
                }
                Ok(lines.next().map(str::to_string))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read checkpoint {}", path.display())),
        }
    }

    /// Makes `cp` the durable position of its source.
    pub fn commit(&self, cp: &Checkpoint) -> Result<()> {
        let path = self.path(&cp.key);
        let tmp = path.with_extension("ckpt.tmp");
        let mut f = fs::File::create(&tmp)
            .with_context(|| format!("cannot write checkpoint {}", tmp.display()))?;
        writeln!(f, "{}\n{}", cp.key, cp.value)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_load_round_trips_and_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        assert_eq!(store.load("file:/var/log/syslog").unwrap(), None);
        for v in ["1 10", "1 20"] {
            store
                .commit(&Checkpoint {
                    key: "file:/var/log/syslog".into(),
                    value: v.into(),
                })
                .unwrap();
        }
        assert_eq!(
            store.load("file:/var/log/syslog").unwrap().as_deref(),
            Some("1 20")
        );
        assert_eq!(store.load("file:_var_log_syslog").unwrap(), None);
    }
}
