//! The detector's state in `<state_dir>/detect/detector.json`: written whole (about once a
//! minute, and at shutdown) through a temporary file, fsync and rename, so that a crash
//! leaves the previous state or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::detector::DetectorState;

const FILE: &str = "detector.json";

/// The saved state, or `None` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<DetectorState>> {
    let path = dir.join(FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let state =
        serde_json::from_slice(&text).with_context(|| format!("{} is damaged", path.display()))?;
    Ok(Some(state))
}

pub fn save(dir: &Path, state: &DetectorState) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec(state)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
