//! Where each source resumes: the checkpoints recovered from the spool at start-up.
//!
//! There is no checkpoint file: a source's position is written in the same spool record
//! as the rows read before it (see [`crate::spool`]), so a position is durable exactly
//! when those rows are.

use std::collections::BTreeMap;

use anyhow::Result;

#[derive(Debug, Default)]
pub struct CheckpointStore {
    positions: BTreeMap<String, String>,
}

impl CheckpointStore {
    pub fn new(positions: BTreeMap<String, String>) -> Self {
        Self { positions }
    }

    /// No positions: every source starts fresh (tests, one-shot runs).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The last durable position of `key`, if any.
    pub fn load(&self, key: &str) -> Result<Option<String>> {
        Ok(self.positions.get(key).cloned())
    }

    /// Every recovered position, by key.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.positions
    }
}
