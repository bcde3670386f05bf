//! Chunks in, archive out: the spool writer and the archiver wired together, for
//! `infra-collector run` and `import` alike.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;

use crate::archive::archiver::{ArchiverStats, SpoolHandoff};
use crate::archive::{Archive, ArchiveReport, Archiver, ArchiverOptions};
use crate::chunk::Chunk;
use crate::detect::{MinerOptions, MinerStage};
use crate::spool::release::{self, Cursor, Limit, Release};
use crate::spool::writer::SpoolStats;
use crate::spool::{RecoveryReport, Spool, SpoolOptions, SpoolWriter};
use crate::state::CheckpointStore;

/// Chunks a source may have in flight towards the spool writer before it waits.
const CHANNEL_CHUNKS: usize = 4;
const MINER_CHUNKS: usize = 2;

pub struct Pipeline {
    /// Where sources send their chunks; the pipeline finishes once every clone is dropped.
    pub chunks: Sender<Chunk>,
    /// Where each source resumes.
    pub checkpoints: Arc<CheckpointStore>,
    pub recovery: RecoveryReport,
    /// The spool's instance id: part of every object name this pipeline archives.
    pub instance: String,
    pub spool_dir: std::path::PathBuf,
    /// The spool's consumers and their cursors (the forwarding sinks read from here).
    pub release: Arc<Release>,
    pub spool_stats: Arc<SpoolStats>,
    pub archiver_stats: Arc<ArchiverStats>,
    /// Bytes the spool holds (for the operations endpoint).
    pub usage: Arc<crate::spool::Usage>,
    pub miner_stats: Option<Arc<crate::detect::stage::MinerStats>>,
    writer: SpoolWriter,
    archiver: Archiver,
    miner: Option<MinerStage>,
    _lock: File,
}

impl Pipeline {
    /// Recovers the spool, then starts its writer and the archiver (which first archives
    /// what a previous run left sealed).
    pub fn start(
        spool: SpoolOptions,
        archive: Archive,
        archiver: ArchiverOptions,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Pipeline> {
        Self::start_mining(spool, archive, archiver, shutdown, None)
    }

    /// [`Pipeline::start`] with the template miner between the sources and the spool
    /// writer, when `miner` is given.
    pub fn start_mining(
        spool: SpoolOptions,
        archive: Archive,
        archiver: ArchiverOptions,
        shutdown: Arc<AtomicBool>,
        miner: Option<MinerOptions>,
    ) -> Result<Pipeline> {
        Self::start_forwarding(spool, archive, archiver, shutdown, miner, &[])
    }

    /// [`Pipeline::start_mining`] with forwarding sinks as consumers of the spool besides
    /// the archiver: `(name, limit)` each, registered before anything is released.
    pub fn start_forwarding(
        spool: SpoolOptions,
        archive: Archive,
        archiver: ArchiverOptions,
        shutdown: Arc<AtomicBool>,
        miner: Option<MinerOptions>,
        consumers: &[(String, Limit)],
    ) -> Result<Pipeline> {
        let spool = Spool::open(spool)?;
        let release = Arc::new(Release::new(&spool.opts.dir, spool.usage.clone())?);
        // A new consumer starts with what the spool holds now.
        let start = Cursor::at_segment(spool.sealed.first().map_or(spool.next_seq, |s| s.seq));
        let (archived, _) = release.register(release::ARCHIVE, start, Limit::BLOCK)?;
        for (name, limit) in consumers {
            release.register(name, start, *limit)?;
        }
        let (mut tx, rx) = crossbeam_channel::bounded(CHANNEL_CHUNKS);
        // The miner takes the sources' chunks and passes them on to the writer.
        let miner = match miner {
            Some(opts) => {
                // A short queue: the miner keeps up with the writer, and every chunk held
                // here is memory and delays backpressure to the sources.
                let (mined_tx, mined_rx) = crossbeam_channel::bounded(MINER_CHUNKS);
                let stage = MinerStage::spawn(opts, &spool.instance, mined_rx, tx)?;
                tx = mined_tx;
                Some(stage)
            }
            None => None,
        };
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let writer = SpoolWriter::spawn(&spool, rx, events_tx, shutdown.clone())?;
        let lock = spool.take_lock()?;
        let handoff = SpoolHandoff {
            instance: spool.instance.clone(),
            // Segments kept only for a sink are archived already.
            backlog: (spool.sealed.iter())
                .filter(|s| s.seq >= archived.seq)
                .cloned()
                .collect(),
            events: events_rx,
            usage: spool.usage.clone(),
            dir: spool.opts.dir.clone(),
            release: release.clone(),
        };
        let archiver = Archiver::spawn(archive, handoff, archiver, shutdown)?;
        Ok(Pipeline {
            chunks: tx,
            checkpoints: spool.checkpoints.clone(),
            recovery: spool.recovery.clone(),
            instance: spool.instance.clone(),
            spool_dir: spool.opts.dir.clone(),
            release,
            spool_stats: writer.stats.clone(),
            archiver_stats: archiver.stats.clone(),
            usage: spool.usage.clone(),
            miner_stats: miner.as_ref().map(|m| m.stats.clone()),
            writer,
            archiver,
            miner,
            _lock: lock,
        })
    }

    /// A handle on the spool's lock, for whoever reads the spool after [`Pipeline::finish`]
    /// (the forwarding sinks drain it).
    pub fn lock(&self) -> Result<File> {
        Ok(self._lock.try_clone()?)
    }

    /// Waits until the spool has taken every chunk sent (all other senders must be gone)
    /// and the archiver has archived every sealed segment it could.
    pub fn finish(self) -> Result<ArchiveReport> {
        drop(self.chunks);
        let mined = self.miner.map_or(Ok(()), |m| m.join());
        let written = self.writer.join().context("spool writer failed");
        let archived = self.archiver.join().context("archiver failed");
        let s = &self.spool_stats;
        let fsyncs = s.fsyncs.load(Ordering::Relaxed);
        tracing::info!(
            records = s.records.load(Ordering::Relaxed),
            rows = s.rows.load(Ordering::Relaxed),
            bytes = s.bytes.load(Ordering::Relaxed),
            segments = s.segments_sealed.load(Ordering::Relaxed),
            fsyncs,
            fsync_mean_ms =
                s.fsync_nanos_total.load(Ordering::Relaxed) as f64 / fsyncs.max(1) as f64 / 1e6,
            fsync_max_ms = s.fsync_nanos_max.load(Ordering::Relaxed) as f64 / 1e6,
            full_waits = s.full_waits.load(Ordering::Relaxed),
            write_errors = s.write_errors.load(Ordering::Relaxed),
            "spool"
        );
        mined?;
        written?;
        archived
    }
}
