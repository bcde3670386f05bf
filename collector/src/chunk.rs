//! The unit that flows from sources to the archive: thousands of rows, never one.

use arrow::record_batch::RecordBatch;

/// A source's position, opaque to everyone but the source. The archive writer persists it
/// (see [`crate::state::CheckpointStore`]) only after every row read before it is durable,
/// so a restarted source resumes exactly after the last archived row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identifies the source instance, e.g. `kmsg` or `file:/var/log/syslog`.
    pub key: String,
    /// The position, in the source's own encoding.
    pub value: String,
}

/// Rows of the logical `logs` schema ([`infralog_schemas::logs_schema`]) plus the position
/// of the source after the last of them.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub batch: RecordBatch,
    pub checkpoint: Option<Checkpoint>,
}
