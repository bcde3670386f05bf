//! The unit that flows from sources to the archive: thousands of rows, never one.

use arrow::record_batch::RecordBatch;

/// A source's position, opaque to everyone but the source. The spool stores it in the same
/// record as the rows of its chunk, so it is durable exactly when they are, and a restarted
/// source resumes right after the last durable row (see [`crate::state::CheckpointStore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identifies the source instance, e.g. `kmsg` or `file:/var/log/syslog`.
    pub key: String,
    /// The position, in the source's own encoding. Empty: forget the key (a stream that
    /// will never be resumed, e.g. a file that was deleted after it was read).
    pub value: String,
}

/// Rows of the logical `logs` schema ([`infralog_schemas::logs_schema`]) plus the position
/// of the source after the last of them.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub batch: RecordBatch,
    pub checkpoint: Option<Checkpoint>,
}
