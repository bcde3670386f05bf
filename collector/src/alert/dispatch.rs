//! The alert dispatcher: a thread that takes the detector's anomalies, routes them to the
//! targets by severity and kind, groups them ([`super::group`]), makes each notification
//! durable in the queue ([`super::queue`]) and delivers it, retrying with backoff while a
//! target is down. A restart resumes from the queue.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::config::AlertConfig;
use super::group::{Grouper, Rules};
use super::payload::Notification;
use super::queue::{Delivery, Queue};
use super::send::{Http, Outcome};
use crate::detect::Anomaly;

/// Backoff of a target that failed: doubling from the first, up to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often the dispatcher looks for due groups and deliveries when nothing comes.
const TICK: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
pub struct AlertStats {
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub refused: AtomicU64,
    pub queued: AtomicU64,
}

pub struct Dispatcher {
    pub stats: Arc<AlertStats>,
    thread: JoinHandle<()>,
}

/// A target's delivery state.
#[derive(Default)]
struct Backoff {
    failures: u32,
    next_ms: i64,
}

fn now_ms() -> i64 {
    crate::time::now_ns() / 1_000_000
}

impl Dispatcher {
    /// Opens the queue in `dir` (resuming what a previous run left), and starts the
    /// thread; it ends once every sender of the returned channel is gone.
    pub fn start(config: AlertConfig, dir: &Path) -> Result<(Dispatcher, Sender<Anomaly>)> {
        let queue = Queue::open(dir)?;
        let http = Http::new()?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(AlertStats::default());
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || {
                if let Err(e) = run(config, queue, http, rx, &s) {
                    tracing::error!("alert dispatcher stopped: {e:#}");
                }
            })
            .context("cannot start the alert thread")?;
        Ok((Dispatcher { stats, thread }, tx))
    }

    pub fn join(self) {
        let _ = self.thread.join();
        let s = &self.stats;
        tracing::info!(
            received = s.received.load(Ordering::Relaxed),
            duplicates = s.duplicates.load(Ordering::Relaxed),
            delivered = s.delivered.load(Ordering::Relaxed),
            failed_attempts = s.failed_attempts.load(Ordering::Relaxed),
            refused = s.refused.load(Ordering::Relaxed),
            queued = s.queued.load(Ordering::Relaxed),
            "alerts"
        );
    }
}

struct State {
    config: AlertConfig,
    queue: Queue,
    grouper: Grouper,
    /// Anomaly id → targets whose groups still hold it (its inbox entry goes with the last).
    holding: HashMap<i64, usize>,
    outbox: Vec<Delivery>,
    backoff: Vec<Backoff>,
}

impl State {
    fn take(&mut self, a: Anomaly, now: i64, stats: &AlertStats) -> Result<()> {
        let targets: Vec<usize> = (0..self.config.targets.len())
            .filter(|&t| self.config.targets[t].takes(&a))
            .collect();
        let mut held = 0;
        for &t in &targets {
            if self.grouper.add(t, a.clone(), now) {
                held += 1;
            } else {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        if held > 0 {
            self.queue.inbox_put(&a)?;
            *self.holding.entry(a.id).or_default() += held;
        }
        Ok(())
    }

    /// Turns due groups into durable deliveries.
    fn form(&mut self, now: i64, stats: &AlertStats) -> Result<()> {
        let due = self.grouper.due(now);
        if due.is_empty() {
            return Ok(());
        }
        for d in due {
            let target = &self.config.targets[d.target];
            let n = Notification {
                hostname: &d.hostname,
                kind: &d.kind,
                anomalies: &d.anomalies,
                resolve_after_secs: self.config.resolve_after_secs,
                test: false,
            };
            let delivery = self.queue.push(Delivery {
                seq: 0,
                target: target.name.clone(),
                title: n.title(),
                body: n.body(target.kind),
                anomalies: d.anomalies.iter().map(|a| a.id).collect(),
            })?;
            stats.queued.fetch_add(1, Ordering::Relaxed);
            self.outbox.push(delivery);
            for a in &d.anomalies {
                if let Some(h) = self.holding.get_mut(&a.id) {
                    *h -= 1;
                    if *h == 0 {
                        self.holding.remove(&a.id);
                        self.queue.inbox_remove(a.id);
                    }
                }
            }
        }
        self.queue.save_memory(&self.grouper.memory)
    }

    /// Delivers what is due, one notification per target per call, oldest first.
    fn deliver(&mut self, http: &Http, now: i64, stats: &AlertStats) {
        for (t, target) in self.config.targets.iter().enumerate() {
            if self.backoff[t].next_ms > now {
                continue;
            }
            let Some(pos) = self.outbox.iter().position(|d| d.target == target.name) else {
                continue;
            };
            let d = &self.outbox[pos];
            let outcome = http.post(
                &target.post_url(),
                &d.body,
                Duration::from_secs(target.timeout_secs),
            );
            let b = &mut self.backoff[t];
            match outcome {
                Outcome::Delivered | Outcome::Refused(_) => {
                    if let Outcome::Refused(why) = &outcome {
                        tracing::error!(
                            target = target.name,
                            "notification {:?} refused, dropped: {why}",
                            d.title
                        );
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tracing::info!(target = target.name, "notification sent: {}", d.title);
                        stats.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    if b.failures > 0 {
                        tracing::info!(target = target.name, "alert target reachable again");
                    }
                    *b = Backoff::default();
                    if let Err(e) = self.queue.delivered(d.seq) {
                        tracing::error!("{e:#}");
                    }
                    self.outbox.remove(pos);
                }
                Outcome::Retry(after, why) => {
                    stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    let backoff = BACKOFF_FIRST
                        .saturating_mul(1u32 << b.failures.min(16))
                        .min(BACKOFF_MAX);
                    let wait = after.unwrap_or(backoff).min(BACKOFF_MAX);
                    if b.failures == 0 {
                        tracing::warn!(
                            target = target.name,
                            "alert target failed ({why}); notifications stay queued, retrying with backoff"
                        );
                    }
                    b.failures += 1;
                    b.next_ms = now + wait.as_millis() as i64;
                }
            }
        }
    }
}

fn run(
    config: AlertConfig,
    queue: Queue,
    http: Http,
    rx: Receiver<Anomaly>,
    stats: &AlertStats,
) -> Result<()> {
    let now = now_ms();
    let memory = queue.load_memory();
    let outbox = queue.outbox()?;
    let inbox = queue.inbox()?;
    if !outbox.is_empty() || !inbox.is_empty() {
        tracing::info!(
            notifications = outbox.len(),
            anomalies = inbox.len(),
            "alert queue resumed"
        );
    }
    let targets = config.targets.len();
    let mut st = State {
        grouper: Grouper::new(Rules::from_config(&config), targets, memory, now),
        backoff: (0..targets).map(|_| Backoff::default()).collect(),
        config,
        queue,
        holding: HashMap::new(),
        outbox,
    };
    for a in inbox {
        st.queue.inbox_remove(a.id);
        if let Err(e) = st.take(a, now, stats) {
            tracing::error!("alert queue: {e:#}");
        }
    }
    loop {
        // Degrade, never die: a queue write that fails is logged, and what it held stays
        // in memory (and in the inbox) to be tried again.
        let take = |st: &mut State, a: Anomaly| {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = st.take(a, now_ms(), stats) {
                tracing::error!("alert queue: {e:#}");
            }
        };
        match rx.recv_timeout(TICK) {
            Ok(a) => {
                take(&mut st, a);
                while let Ok(a) = rx.try_recv() {
                    take(&mut st, a);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // What is left stays queued on disk for the next start.
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        let now = now_ms();
        if let Err(e) = st.form(now, stats) {
            tracing::error!("alert queue: {e:#}");
        }
        st.deliver(&http, now, stats);
    }
}

/// `infra-collector alert-test`: sends one test notification to every target now, and
/// says for each whether it was taken.
pub fn send_test(
    config: &AlertConfig,
    hostname: &str,
) -> Result<Vec<(String, Result<(), String>)>> {
    let http = Http::new()?;
    let a = [super::payload::test_anomaly(hostname)];
    let n = Notification {
        hostname,
        kind: "test",
        anomalies: &a,
        resolve_after_secs: 300,
        test: true,
    };
    Ok(config
        .targets
        .iter()
        .map(|t| {
            let r = match http.post(
                &t.post_url(),
                &n.body(t.kind),
                Duration::from_secs(t.timeout_secs),
            ) {
                Outcome::Delivered => Ok(()),
                Outcome::Retry(_, why) | Outcome::Refused(why) => Err(why),
            };
            (t.name.clone(), r)
        })
        .collect())
}
