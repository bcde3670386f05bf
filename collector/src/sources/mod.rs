//! Sources: each turns one kind of input into chunks and reports its checkpoint. A source
//! runs on its own thread, sends [`Chunk`]s of up to `chunk_rows` rows (or whatever it has
//! after `chunk_max_age`), and stops when `shutdown` is set — or, with `once`, when it has
//! read everything available now.

pub mod app_json;
pub mod ebpf;
pub mod file;
pub mod journald;
pub mod kmsg;
pub mod net;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::chunk::Chunk;
use crate::state::CheckpointStore;

/// What every source is given by `main`.
#[derive(Clone)]
pub struct SourceContext {
    /// Hostname for rows whose input does not state one.
    pub hostname: Arc<str>,
    pub chunks: Sender<Chunk>,
    /// Where a source finds the position it committed before a restart.
    pub checkpoints: Arc<CheckpointStore>,
    pub shutdown: Arc<AtomicBool>,
    pub chunk_rows: usize,
    pub chunk_max_age: Duration,
    /// Read what is available now, then stop (for tests and one-shot collection).
    pub once: bool,
}

impl SourceContext {
    pub fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// The task that caused a kernel message, as the eBPF console hook saw it. The kmsg source
/// joins these with /dev/kmsg records by text, so that the archived row keeps kmsg's
/// sequence number, priority and timestamp and gains the caller's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCaller {
    /// The message text as printk stored it (no level prefix, no trailing newline).
    pub text: Vec<u8>,
    pub pid: i32,
    pub tid: i32,
    pub uid: u32,
    pub comm: String,
}
