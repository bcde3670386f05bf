//! The rows of a spool record: one batch as an Arrow IPC stream (schema, batch, end
//! marker), so that each record can be decoded on its own.

use std::io::Cursor;

use anyhow::{Context, Result};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

/// Appends `batch` to `out`; nothing for an empty batch.
pub fn append(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let mut w = StreamWriter::try_new(out, &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    Ok(())
}

/// The batches of a record's rows (none for an empty slice).
pub fn decode(ipc: &[u8]) -> Result<Vec<RecordBatch>> {
    if ipc.is_empty() {
        return Ok(Vec::new());
    }
    StreamReader::try_new(Cursor::new(ipc), None)
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .context("spool record rows cannot be decoded")
}
