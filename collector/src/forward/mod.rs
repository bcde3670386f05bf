//! Forwarding: sinks that send the spooled rows to the systems users already run
//! (Elasticsearch/OpenSearch, Logstash), beside the archive.
//!
//! Each `[[forward]]` sink is a consumer of the spool with its own durable cursor
//! ([`crate::spool::release`]): it reads sealed segments ([`reader`]), sends batches, and
//! moves its cursor only once the target acknowledged them — or, for a target that does
//! not acknowledge (Logstash over TCP), once the connection stayed up for a settling time
//! after the write. The spool is the buffer: there is no second copy on disk. Any failure
//! rewinds the sink to its cursor and sends again with backoff, so a sink never loses a
//! row it read (at-least-once; exactly-once into Elasticsearch, whose document ids are the
//! rows' places in the spool). Each sink runs on its own thread, so a dead one never stalls
//! the archive or the others; its limit (`buffer_max_mb`, `when_full`) decides how much
//! of the spool it may hold.

pub mod cli;
pub mod config;
pub mod doc;
pub mod elasticsearch;
pub mod kafka;
pub mod logstash;
pub mod otlp;
pub mod reader;
pub mod route;
pub mod stats;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::spool::release::{Cursor, Dropped, Release};
pub use config::SinkConfig;
use config::{RetryOptions, Target};
use reader::{Slice, SpoolReader};
use stats::SinkStats;

/// How often a caught-up sink looks for a newly sealed segment.
const POLL: Duration = Duration::from_millis(200);
/// How often a sink's cursor is stored while it moves within a segment (it is stored at
/// once whenever it enters a new segment, so that segment can be released).
const STORE_EVERY: Duration = Duration::from_secs(1);
/// At shutdown, how long sinks may go on sending what the spool holds.
const DRAIN_FOR: Duration = Duration::from_secs(10);

/// Rows to send: slices of spool records, in spool order.
#[derive(Debug, Default)]
pub struct Batch {
    pub slices: Vec<Slice>,
    pub rows: usize,
    pub bytes: usize,
}

impl Batch {
    fn push(&mut self, s: Slice) {
        use arrow::array::AsArray;
        self.rows += s.batch.num_rows();
        // The message is most of a document; the rest is about 200 bytes. (A slice's
        // buffers are its whole record's: measure its own values.)
        let message = s
            .batch
            .column_by_name(infralog_schemas::col::MESSAGE)
            .and_then(|c| c.as_string_opt::<i32>())
            .map_or(0, |m| {
                let o = m.value_offsets();
                (o[o.len() - 1] - o[0]) as usize
            });
        self.bytes += message + 200 * s.batch.num_rows();
        self.slices.push(s);
    }

    fn clear(&mut self) {
        self.slices.clear();
        self.rows = 0;
        self.bytes = 0;
    }
}

/// The identity of a row, the same every time it is read from the spool: the spool's
/// instance, segment, record and row. Elasticsearch uses it as the document `_id`.
pub fn row_id(out: &mut String, instance: &str, seq: u64, record: u64, row: u64) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{instance}-{seq:x}-{record:x}-{row:x}");
}

#[derive(Debug)]
pub enum SinkError {
    /// Nothing reached the target (it refused the connection, or is not there): the rows
    /// may go to a fallback without being in both.
    Unreachable(anyhow::Error),
    /// Some rows may have reached the target.
    Failed(anyhow::Error),
    /// The collector is stopping; the rows are sent again after the restart.
    Stopped,
}

impl SinkError {
    fn error(&self) -> Option<&anyhow::Error> {
        match self {
            SinkError::Unreachable(e) | SinkError::Failed(e) => Some(e),
            SinkError::Stopped => None,
        }
    }
}

/// One kind of target.
pub trait Sink: Send {
    /// Sends every row of `batch`; returns once each was accepted or, when the target
    /// refused it for good, kept in the dead-letter file.
    fn deliver(&mut self, batch: &Batch) -> Result<(), SinkError>;

    /// How long the connection must stay up after a write before its rows count as
    /// delivered: zero for targets that acknowledge.
    fn settle(&self) -> Duration {
        Duration::ZERO
    }

    /// False when the connection was lost since the last write (rows not yet settled are
    /// sent again).
    fn healthy(&mut self) -> bool {
        true
    }
}

/// What every sink shares with the collector.
#[derive(Clone)]
pub struct Context {
    pub spool_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The spool's instance id: part of each row's identity.
    pub instance: String,
    /// Set when the sources stop: sinks finish what they can, then stop.
    pub stopping: Arc<AtomicBool>,
}

impl Context {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// Makes the sink of `config`.
pub fn open_sink(
    config: &SinkConfig,
    ctx: &Context,
    stats: Arc<SinkStats>,
) -> Result<Box<dyn Sink>> {
    Ok(match &config.target {
        Target::Elasticsearch(o) => Box::new(elasticsearch::Elasticsearch::new(
            config,
            o,
            ctx.clone(),
            stats,
        )?),
        Target::Logstash(o) => Box::new(logstash::Logstash::new(config, o, ctx.clone(), stats)?),
        Target::OtlpHttp(o) => Box::new(otlp::Otlp::new(config, o, ctx.clone(), stats)?),
        Target::Kafka(o) => Box::new(kafka::Kafka::new(config, o, ctx.clone(), stats)?),
    })
}

/// The running sinks.
pub struct Forwarder {
    stopping: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<()>)>,
    pub stats: Vec<(String, Arc<SinkStats>)>,
    _lock: std::fs::File,
}

impl Forwarder {
    /// Starts one thread per sink (the fallback-only ones run inside their primary). Each
    /// consumer must be registered with `release` already.
    /// `lock`: the spool's lock, held until the sinks stop.
    pub fn start(
        sinks: &[SinkConfig],
        routes: &[route::RouteConfig],
        ctx: Context,
        release: Arc<Release>,
        lock: std::fs::File,
    ) -> Result<Forwarder> {
        let mut threads = Vec::new();
        let mut all_stats = Vec::new();
        for s in sinks.iter().filter(|s| !s.fallback_only) {
            let stats = Arc::new(SinkStats::default());
            let sink = open_sink(s, &ctx, stats.clone())?;
            let mut fallback_stats = None;
            let fallback = match &s.fallback {
                Some(f) => {
                    let fc = sinks
                        .iter()
                        .find(|o| &o.name == f)
                        .context("fallback sink")?;
                    let fstats = Arc::new(SinkStats::default());
                    let label = stats::fallback_label(&fc.name, &s.name);
                    all_stats.push((label.clone(), fstats.clone()));
                    fallback_stats = Some((label, fstats.clone()));
                    Some((fc.name.clone(), open_sink(fc, &ctx, fstats)?))
                }
                None => None,
            };
            let cursor = release
                .cursor(&s.name)
                .with_context(|| format!("sink {} is not registered with the spool", s.name))?;
            let dropped = release.dropped(&s.name).unwrap_or_default();
            let driver = Driver {
                name: s.name.clone(),
                route: route::SinkRoute::for_sink(s, routes),
                batch: s.batch,
                retry: s.retry,
                fallback_after: s.fallback_after,
                ctx: ctx.clone(),
                release: release.clone(),
                stats: stats.clone(),
                fallback_stats,
                dropped,
                reader: SpoolReader::new(&ctx.spool_dir, cursor),
                settled: cursor,
                stored: cursor,
                stored_at: Instant::now(),
                status_at: Instant::now(),
            };
            let name = s.name.clone();
            let handle = std::thread::Builder::new()
                .name(format!("forward-{name}"))
                .spawn(move || driver.run(sink, fallback))
                .context("cannot start a forwarding thread")?;
            all_stats.push((s.name.clone(), stats));
            threads.push((s.name.clone(), handle));
        }
        Ok(Forwarder {
            stopping: ctx.stopping,
            threads,
            stats: all_stats,
            _lock: lock,
        })
    }

    /// Lets each sink send what the spool holds (for at most [`DRAIN_FOR`]), then stops
    /// them; what they could not send stays in the spool for the next start.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Relaxed);
        for (name, t) in self.threads {
            if t.join().is_err() {
                tracing::error!(sink = name, "forwarding thread panicked");
            }
        }
    }
}

struct Driver {
    name: String,
    /// `None`: every row.
    route: Option<route::SinkRoute>,
    batch: config::BatchOptions,
    retry: RetryOptions,
    fallback_after: Duration,
    ctx: Context,
    release: Arc<Release>,
    stats: Arc<SinkStats>,
    /// The counters of this sink's fallback, under [`stats::fallback_label`].
    fallback_stats: Option<(String, Arc<SinkStats>)>,
    dropped: Arc<Dropped>,
    reader: SpoolReader,
    /// Every row before it was delivered.
    settled: Cursor,
    /// What was last stored with the release rule.
    stored: Cursor,
    stored_at: Instant,
    status_at: Instant,
}

/// Rows written to a target that does not acknowledge, waiting to settle.
struct Unsettled {
    to: Cursor,
    at: Instant,
}

impl Driver {
    fn run(mut self, mut sink: Box<dyn Sink>, mut fallback: Option<(String, Box<dyn Sink>)>) {
        let mut batch = Batch::default();
        let mut first_at: Option<Instant> = None;
        let mut unsettled: Vec<Unsettled> = Vec::new();
        let mut failing_since: Option<Instant> = None;
        let mut attempt = 0u32;
        let mut drain_until: Option<Instant> = None;
        let mut rng = Jitter::new();
        loop {
            if self.ctx.stopping() {
                let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN_FOR);
                if Instant::now() >= until {
                    tracing::warn!(
                        sink = self.name,
                        "stopping with rows not yet forwarded: they stay in the spool"
                    );
                    break;
                }
            }
            // The release rule may have moved this sink past segments it dropped.
            if let Some(c) = self.release.cursor(&self.name)
                && c > self.settled
            {
                self.settled = c;
                self.reader.skip_to(c);
            }
            // Rows of a target without acknowledgements count once they settled.
            if !sink.healthy() {
                tracing::warn!(
                    sink = self.name,
                    "connection lost: sending again what it may not have received"
                );
                self.rewind(&mut batch, &mut unsettled);
                first_at = None;
            }
            let settle = sink.settle();
            while unsettled.first().is_some_and(|u| u.at.elapsed() >= settle) {
                self.settled = unsettled.remove(0).to;
            }
            if unsettled.is_empty() && batch.rows == 0 {
                // Past the end of a finished segment, too.
                self.settled = self.settled.max(self.reader.position());
            }
            self.store(false);

            // Fill the batch.
            while batch.rows < self.batch.rows && batch.bytes < self.batch.bytes {
                match self.reader.next(self.batch.rows - batch.rows) {
                    Ok(Some(s)) => {
                        let s = match &self.route {
                            None => Some(s),
                            Some(r) => match r.mask(&s.batch).and_then(|m| s.filter(&m)) {
                                Ok(s) => s,
                                Err(e) => {
                                    tracing::error!(sink = self.name, "routing failed: {e:#}");
                                    None
                                }
                            },
                        };
                        if let Some(s) = s {
                            first_at.get_or_insert_with(Instant::now);
                            batch.push(s);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let pos = self.reader.position();
                        tracing::error!(
                            sink = self.name,
                            segment = pos.seq,
                            "cannot read spool segment, skipping it for this sink: {e:#}"
                        );
                        self.stats.error(&e);
                        self.reader.skip_to(Cursor::at_segment(pos.seq + 1));
                    }
                }
            }
            if batch.rows == 0 {
                if self.ctx.stopping() && unsettled.is_empty() {
                    break;
                }
                // Rows waiting to settle are looked at again when they may have.
                let next = unsettled.first().map_or(POLL, |u| {
                    settle
                        .saturating_sub(u.at.elapsed())
                        .max(Duration::from_millis(20))
                });
                std::thread::sleep(next.min(POLL));
                continue;
            }
            let full = batch.rows >= self.batch.rows || batch.bytes >= self.batch.bytes;
            let waited = first_at.map_or(Duration::ZERO, |t| t.elapsed());
            if !full && waited < self.batch.max_wait && !self.ctx.stopping() {
                std::thread::sleep((self.batch.max_wait - waited).min(POLL));
                continue;
            }

            // Send: to the primary, or to the fallback while the primary has been
            // unreachable for long enough.
            let use_fallback = fallback.is_some()
                && failing_since.is_some_and(|t| t.elapsed() >= self.fallback_after);
            let result = if use_fallback {
                // Try the primary first: its recovery is the switch back.
                match sink.deliver(&batch) {
                    Ok(()) => {
                        tracing::info!(
                            sink = self.name,
                            "reachable again: switching back from the fallback"
                        );
                        Ok(false)
                    }
                    Err(SinkError::Unreachable(_)) => {
                        let (fname, f) = fallback.as_mut().expect("fallback");
                        match f.deliver(&batch) {
                            Ok(()) => {
                                self.stats
                                    .to_fallback
                                    .fetch_add(batch.rows as u64, Ordering::Relaxed);
                                tracing::debug!(
                                    sink = self.name,
                                    fallback = fname.as_str(),
                                    rows = batch.rows,
                                    "sent to the fallback"
                                );
                                Ok(true)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            } else {
                sink.deliver(&batch).map(|()| false)
            };
            match result {
                Ok(via_fallback) => {
                    attempt = 0;
                    if !via_fallback {
                        if failing_since.take().is_some() {
                            tracing::info!(sink = self.name, "delivering again");
                        }
                        self.stats.success();
                    }
                    let to = self.reader.position();
                    if settle.is_zero() || via_fallback {
                        unsettled.clear();
                        self.settled = to;
                    } else {
                        unsettled.push(Unsettled {
                            to,
                            at: Instant::now(),
                        });
                    }
                    batch.clear();
                    first_at = None;
                }
                Err(SinkError::Stopped) => break,
                Err(e) => {
                    let unreachable = matches!(e, SinkError::Unreachable(_));
                    let e = e.error().expect("an error");
                    self.stats.error(e);
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                        if fallback.is_some() && unreachable {
                            tracing::warn!(
                                sink = self.name,
                                "unreachable: its rows go to the fallback in {:?} if it stays so: {e:#}",
                                self.fallback_after
                            );
                        }
                    }
                    if !unreachable {
                        // Reachable but failing: the fallback would double rows.
                        failing_since = Some(Instant::now());
                    }
                    let delay = rng.backoff(self.retry, attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(
                        sink = self.name,
                        rows = batch.rows,
                        "cannot deliver (retrying in {delay:?}): {e:#}"
                    );
                    self.stats
                        .retried
                        .fetch_add(batch.rows as u64, Ordering::Relaxed);
                    self.rewind(&mut batch, &mut unsettled);
                    first_at = None;
                    if self.ctx.stopping() {
                        break;
                    }
                    self.sleep(delay);
                }
            }
        }
        self.store(true);
    }

    /// Forgets what was read after the settled cursor: it is read and sent again.
    fn rewind(&mut self, batch: &mut Batch, unsettled: &mut Vec<Unsettled>) {
        batch.clear();
        unsettled.clear();
        self.reader = SpoolReader::new(&self.ctx.spool_dir, self.settled);
    }

    /// Stores the settled cursor with the release rule: at once when it entered a new
    /// segment (so that the old one can be released), else at most every second.
    fn store(&mut self, now: bool) {
        let due = self.settled.seq != self.stored.seq || self.stored_at.elapsed() >= STORE_EVERY;
        if self.settled > self.stored && (now || due) {
            match self.release.advance(&self.name, self.settled) {
                Ok(()) => {
                    self.stored = self.settled;
                    self.stored_at = Instant::now();
                }
                Err(e) => tracing::error!(sink = self.name, "cannot store the cursor: {e:#}"),
            }
        }
        if now || self.status_at.elapsed() >= STORE_EVERY {
            self.status_at = Instant::now();
            let s = self.stats.snapshot(
                &self.name,
                self.dropped.segments.load(Ordering::Relaxed),
                self.dropped.bytes.load(Ordering::Relaxed),
            );
            let mut all = vec![s];
            if let Some((label, f)) = &self.fallback_stats {
                all.push(f.snapshot(label, 0, 0));
            }
            for s in all {
                if let Err(e) = stats::write_status(&self.ctx.spool_dir, &s) {
                    tracing::debug!(sink = self.name, "cannot write the status file: {e:#}");
                }
            }
        }
    }

    /// Sleeps, waking early when the collector stops.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.ctx.stopping() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

/// Exponential backoff with jitter (half to all of the delay), so that many collectors
/// do not retry in step.
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Jitter(seed)
    }

    pub fn backoff(&mut self, r: RetryOptions, attempt: u32) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let full = r.initial.saturating_mul(1u32 << attempt.min(16)).min(r.max);
        let frac = 0.5 + (self.0 % 1000) as f64 / 2000.0;
        full.mul_f64(frac)
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a sink's dead-letter file is by default.
pub fn dead_letter_path(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir
        .join("forward")
        .join(format!("{sink}.dead-letter.ndjson"))
}
