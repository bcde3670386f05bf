//! The miner on the ingest path: a thread between the sources and the spool writer that
//! fills the `template_id` column of every chunk, so the sources' threads do not pay for
//! it and every source (and `import`) gets it the same way.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use crossbeam_channel::{Receiver, Sender};
use infralog_schemas::col;

use super::miner::{Miner, MinerConfig};
use super::state::TemplateState;
use super::table::TableWriter;
use crate::archive::Archive;
use crate::chunk::Chunk;

/// How often the `templates` table gets a file and the miner's snapshot is rewritten (the
/// journal keeps what changed between).
const FLUSH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct MinerOptions {
    pub config: MinerConfig,
    /// Where the miner's state lives (`<state_dir>/templates`); `None`: in memory only
    /// (import, which reads finished files and needs no resumption).
    pub state_dir: Option<PathBuf>,
    /// Where the `templates` table is written; `None`: not written.
    pub table: Option<TableTarget>,
}

/// The archive the `templates` table goes to, and the hostname it is filed under.
#[derive(Debug, Clone)]
pub struct TableTarget {
    pub archive: String,
    pub s3: infralog_store::S3Settings,
    pub hostname: String,
}

#[derive(Debug, Default)]
pub struct MinerStats {
    pub lines: AtomicU64,
    /// Time spent mining (masking, tree search, building the column), for the cost per
    /// line.
    pub nanos: AtomicU64,
    pub templates: AtomicU64,
    pub evicted: AtomicU64,
}

pub struct MinerStage {
    pub stats: Arc<MinerStats>,
    thread: JoinHandle<Result<()>>,
}

impl MinerStage {
    /// Recovers the miner's state, then mines every chunk from `rx` and passes it on to
    /// `tx`, until every sender of `rx` is gone.
    pub fn spawn(
        opts: MinerOptions,
        instance: &str,
        rx: Receiver<Chunk>,
        tx: Sender<Chunk>,
    ) -> Result<Self> {
        let mut miner = Miner::new(opts.config);
        let state = opts.state_dir.as_ref().and_then(|dir| {
            TemplateState::open(dir, &mut miner)
                .map_err(|e| {
                    tracing::error!("template miner runs without saved state: {e:#}");
                })
                .ok()
        });
        let table = opts.table.as_ref().and_then(|t| {
            Archive::open_with(&t.archive, &t.s3)
                .map(|archive| TableWriter {
                    archive,
                    hostname: t.hostname.clone(),
                    instance: instance.to_string(),
                })
                .map_err(|e| tracing::error!("the templates table will not be written: {e:#}"))
                .ok()
        });
        let stats = Arc::new(MinerStats::default());
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || {
                let mut saver = Saver {
                    state,
                    table,
                    seq: 0,
                };
                if let Some(st) = &saver.state {
                    saver.seq = st.table_seq;
                }
                run(miner, saver, rx, tx, &s)
            })
            .context("cannot start the miner thread")?;
        Ok(Self { stats, thread })
    }

    pub fn join(self) -> Result<()> {
        let s = &self.stats;
        let result = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the miner panicked")));
        let lines = s.lines.load(Ordering::Relaxed);
        tracing::info!(
            lines,
            templates = s.templates.load(Ordering::Relaxed),
            evicted = s.evicted.load(Ordering::Relaxed),
            ns_per_line = s.nanos.load(Ordering::Relaxed) as f64 / lines.max(1) as f64,
            "template miner"
        );
        result
    }
}

/// What keeps the miner's work: its state directory and the `templates` table.
struct Saver {
    state: Option<TemplateState>,
    table: Option<TableWriter>,
    /// Sequence number of the next table file.
    seq: u64,
}

impl Saver {
    /// Journals what changed; new ids must be durable before rows carrying them can be.
    fn journal(&mut self, miner: &mut Miner) {
        let changes = miner.take_changes();
        if let Some(st) = self.state.as_mut()
            && let Err(e) = st.append(&changes)
        {
            // Degrade, never die: ids stay stable without the state (they are hashes of
            // the first text); only resuming the exact templates after a restart is lost.
            tracing::error!("template miner state not saved any more: {e:#}");
            self.state = None;
        }
    }

    /// Writes the table file of what changed, then the snapshot (which records the next
    /// file's sequence number: after a crash before the snapshot, the same file is
    /// written again, with every template, since all recovered ones count as changed).
    fn flush(&mut self, miner: &mut Miner) -> Result<()> {
        if let Some(t) = &self.table {
            match t.write(miner, self.seq, crate::time::now_ns() / 1000) {
                Ok(0) => {}
                Ok(_) => {
                    miner.mark_written();
                    self.seq += 1;
                }
                Err(e) => tracing::warn!("templates table not written (will retry): {e:#}"),
            }
        }
        if let Some(st) = self.state.as_mut() {
            st.table_seq = self.seq;
            st.snapshot(miner)
                .context("cannot write the template miner snapshot")?;
        }
        Ok(())
    }
}

fn run(
    mut miner: Miner,
    mut saver: Saver,
    rx: Receiver<Chunk>,
    tx: Sender<Chunk>,
    stats: &MinerStats,
) -> Result<()> {
    let mut last_flush = Instant::now();
    for chunk in rx {
        let t = Instant::now();
        let batch = mine_batch(&mut miner, &chunk.batch)?;
        stats
            .nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats
            .lines
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        stats.templates.store(miner.len() as u64, Ordering::Relaxed);
        stats.evicted.store(miner.evicted, Ordering::Relaxed);
        saver.journal(&mut miner);
        if last_flush.elapsed() >= FLUSH_EVERY {
            if let Err(e) = saver.flush(&mut miner) {
                tracing::error!("{e:#}");
                saver.state = None;
            }
            last_flush = Instant::now();
        }
        if tx
            .send(Chunk {
                batch,
                checkpoint: chunk.checkpoint,
            })
            .is_err()
        {
            anyhow::bail!("the spool writer stopped");
        }
    }
    saver.flush(&mut miner)
}

/// `batch` with its `template_id` column filled from its messages, mined at their event
/// time.
pub fn mine_batch(miner: &mut Miner, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let (Ok(mi), Ok(ti), Ok(tsi)) = (
        schema.index_of(col::MESSAGE),
        schema.index_of(col::TEMPLATE_ID),
        schema.index_of(col::TIMESTAMP),
    ) else {
        return Ok(batch.clone());
    };
    let messages = batch.column(mi).as_string::<i32>();
    let ts = batch
        .column(tsi)
        .as_primitive_opt::<TimestampMicrosecondType>();
    let mut ids = Int64Builder::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        if messages.is_null(i) {
            ids.append_null();
            continue;
        }
        let at = ts.map_or(0, |t| t.value(i));
        ids.append_value(miner.add(messages.value(i).as_bytes(), at));
    }
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns[ti] = Arc::new(ids.finish());
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};
    use arrow::array::Int64Array;

    #[test]
    fn fills_template_id_per_row() {
        let mut b = LogBatchBuilder::new(4);
        for msg in [
            "conn from 10.0.0.1 ok",
            "disk full",
            "conn from 10.0.0.2 ok",
            "",
        ] {
            let row = Row {
                timestamp_ns: 5_000,
                hostname: b"h",
                source: "file",
                message: msg.as_bytes(),
                ..Row::default()
            };
            b.append(&row, 1, |_| {});
        }
        let mut m = Miner::new(MinerConfig::default());
        let out = mine_batch(&mut m, &b.finish()).unwrap();
        let ids = out
            .column_by_name(col::TEMPLATE_ID)
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.null_count(), 0);
        assert_eq!(ids.value(0), ids.value(2));
        assert_ne!(ids.value(0), ids.value(1));
        assert!((0..4).all(|i| ids.value(i) > 0));
        assert_eq!(m.get(ids.value(0)).unwrap().first_seen_us, 5);
    }
}
