//! The miner and the detector on the ingest path: a thread between the sources and the
//! spool writer that fills the `template_id` column of every chunk and feeds every line to
//! the anomaly detector, so the sources' threads do not pay for it and every source (and
//! `import`) gets it the same way. Anomalies go to the `anomalies` table and, when alerts
//! are configured, to the alert dispatcher.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, RecordBatch};
use arrow::datatypes::{Int8Type, TimestampMicrosecondType};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use infralog_schemas::col;

use super::anomaly::Anomaly;
use super::anomaly_table::AnomalyWriter;
use super::detector::{Detector, DetectorConfig, Line};
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
    /// Where the `templates` and `anomalies` tables are written; `None`: not written.
    pub table: Option<TableTarget>,
    /// Anomaly detection; `None`: off.
    pub detect: Option<DetectOptions>,
}

#[derive(Debug, Clone)]
pub struct DetectOptions {
    pub config: DetectorConfig,
    /// Where the detector's state lives (`<state_dir>/detect`); `None`: in memory only.
    pub state_dir: Option<PathBuf>,
    /// Where raised anomalies go besides the table (the alert dispatcher).
    pub alerts: Option<Sender<Anomaly>>,
    /// Live collection: the fleet's clock also follows the wall clock (less
    /// [`LATENESS`]), so that a fleet that stopped sending is noticed. Off for `import`,
    /// whose clock is the files' event time only.
    pub live: bool,
}

/// How far behind the wall clock lines may arrive before the live detector counts their
/// host as quiet.
pub const LATENESS: Duration = Duration::from_secs(30);

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
    pub anomalies: AtomicU64,
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
        let detect = opts
            .detect
            .map(|d| Detection::open(d, &opts.table, instance));
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
                run(miner, saver, detect, rx, tx, &s)
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
            anomalies = s.anomalies.load(Ordering::Relaxed),
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

/// The detector and where its anomalies go.
struct Detection {
    detector: Detector,
    state_dir: Option<PathBuf>,
    table: Option<AnomalyWriter>,
    alerts: Option<Sender<Anomaly>>,
    live: bool,
    new_rows: Vec<u32>,
}

impl Detection {
    fn open(d: DetectOptions, table: &Option<TableTarget>, instance: &str) -> Self {
        let state = d.state_dir.as_ref().and_then(|dir| {
            super::persist::load(dir)
                .map_err(|e| tracing::error!("anomaly detector starts afresh: {e:#}"))
                .ok()
                .flatten()
        });
        let table = table.as_ref().and_then(|t| {
            Archive::open_with(&t.archive, &t.s3)
                .map(|archive| AnomalyWriter {
                    archive,
                    instance: instance.to_string(),
                })
                .map_err(|e| tracing::error!("the anomalies table will not be written: {e:#}"))
                .ok()
        });
        Self {
            detector: Detector::with_state(d.config, state.unwrap_or_default()),
            state_dir: d.state_dir,
            table,
            alerts: d.alerts,
            live: d.live,
            new_rows: Vec::new(),
        }
    }

    /// Hands what was raised to the alerts and keeps it for the table.
    fn collect(&mut self, stats: &MinerStats) {
        if self.live {
            let now = crate::time::now_ns() / 1000 - LATENESS.as_micros() as i64;
            self.detector.tick(now);
        }
        self.detector.end_chunk();
        let raised = self.detector.take_raised();
        if raised.is_empty() {
            return;
        }
        stats
            .anomalies
            .fetch_add(raised.len() as u64, Ordering::Relaxed);
        for a in &raised {
            tracing::info!(
                host = a.hostname,
                kind = a.kind,
                severity = a.severity.as_str(),
                "anomaly: {}",
                a.explanation
            );
            if let Some(tx) = &self.alerts
                && tx.send(a.clone()).is_err()
            {
                tracing::error!("the alert dispatcher stopped; anomalies go to the table only");
                self.alerts = None;
            }
        }
        self.detector.state.unwritten.extend(raised);
    }

    /// Saves the state (with the anomalies not yet written), then writes them as the file
    /// the state names: a crash between the two writes the same file again.
    fn flush(&mut self) {
        if let Some(dir) = &self.state_dir
            && let Err(e) = super::persist::save(dir, &self.detector.state)
        {
            tracing::error!("anomaly detector state not saved: {e:#}");
        }
        let st = &mut self.detector.state;
        if st.unwritten.is_empty() {
            return;
        }
        let Some(table) = &self.table else {
            st.unwritten.clear();
            return;
        };
        match table.write(&st.unwritten, st.table_seq) {
            Ok(()) => {
                st.unwritten.clear();
                st.table_seq += 1;
            }
            Err(e) => tracing::warn!("anomalies table not written (will retry): {e:#}"),
        }
    }
}

fn run(
    mut miner: Miner,
    mut saver: Saver,
    mut detect: Option<Detection>,
    rx: Receiver<Chunk>,
    tx: Sender<Chunk>,
    stats: &MinerStats,
) -> Result<()> {
    let mut last_flush = Instant::now();
    let mut no_rows = Vec::new();
    loop {
        let chunk = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(chunk) => Some(chunk),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(chunk) = chunk {
            let t = Instant::now();
            let new_rows = detect.as_mut().map_or(&mut no_rows, |d| &mut d.new_rows);
            let batch = mine_batch_noting_new(&mut miner, &chunk.batch, new_rows)?;
            if let Some(d) = detect.as_mut() {
                detect_batch(&mut d.detector, &miner, &batch, &d.new_rows);
            }
            stats
                .nanos
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            stats
                .lines
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            stats.templates.store(miner.len() as u64, Ordering::Relaxed);
            stats.evicted.store(miner.evicted, Ordering::Relaxed);
            saver.journal(&mut miner);
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
        if let Some(d) = detect.as_mut() {
            d.collect(stats);
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            if let Err(e) = saver.flush(&mut miner) {
                tracing::error!("{e:#}");
                saver.state = None;
            }
            if let Some(d) = detect.as_mut() {
                d.flush();
            }
            last_flush = Instant::now();
        }
    }
    if let Some(d) = detect.as_mut() {
        d.collect(stats);
        d.flush();
    }
    saver.flush(&mut miner)
}

/// Feeds every row of a mined batch to the detector; `new_rows` are the rows that started
/// their template.
pub fn detect_batch(detector: &mut Detector, miner: &Miner, batch: &RecordBatch, new_rows: &[u32]) {
    let schema = batch.schema();
    let column = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i));
    let (Some(ts), Some(host), Some(source), Some(message)) = (
        column(col::TIMESTAMP).and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()),
        column(col::HOSTNAME).and_then(|c| c.as_string_opt::<i32>()),
        column(col::SOURCE).and_then(|c| c.as_string_opt::<i32>()),
        column(col::MESSAGE).and_then(|c| c.as_string_opt::<i32>()),
    ) else {
        return;
    };
    let process = column(col::PROCESS_NAME).and_then(|c| c.as_string_opt::<i32>());
    let priority = column(col::PRIORITY).and_then(|c| c.as_primitive_opt::<Int8Type>());
    let template =
        column(col::TEMPLATE_ID).and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>());
    let mut next_new = new_rows.iter().copied().peekable();
    for i in 0..batch.num_rows() {
        let new_template = next_new.next_if_eq(&(i as u32)).is_some();
        let line = Line {
            ts_us: ts.value(i),
            hostname: host.value(i),
            source: source.value(i),
            process: process.filter(|p| p.is_valid(i)).map(|p| p.value(i)),
            priority: priority.filter(|p| p.is_valid(i)).map(|p| p.value(i)),
            message: message.value(i).as_bytes(),
            template_id: template.filter(|t| t.is_valid(i)).map(|t| t.value(i)),
            new_template,
        };
        detector.observe(&line, miner);
    }
}

/// `batch` with its `template_id` column filled from its messages, mined at their event
/// time.
pub fn mine_batch(miner: &mut Miner, batch: &RecordBatch) -> Result<RecordBatch> {
    mine_batch_noting_new(miner, batch, &mut Vec::new())
}

/// [`mine_batch`], and the rows that started a new template in `new_rows`.
pub fn mine_batch_noting_new(
    miner: &mut Miner,
    batch: &RecordBatch,
    new_rows: &mut Vec<u32>,
) -> Result<RecordBatch> {
    new_rows.clear();
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
        let created = miner.created;
        ids.append_value(miner.add(messages.value(i).as_bytes(), at));
        if miner.created != created {
            new_rows.push(i as u32);
        }
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
