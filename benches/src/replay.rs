//! The detection replay: about ten hosts over two days of event time, built from the
//! Loghub 2k samples, with daily cycles, a day of warm-up, and faults injected on the
//! second day (bursts of an existing template, error storms, never-seen error templates,
//! hosts going silent). It feeds the collector's own miner and detector and scores what
//! they raise: recall per fault kind, precision, anomalies per hour of a clean replay, and
//! detection latency in event time.
//!
//! Every host replays one system's lines, sampled at random (a Poisson process whose rate
//! follows a ±50 % daily sine with a per-host phase), so every system is treated alike:
//! nothing here knows which system a host runs. The template of each sample line is mined
//! once (the miner's ids are stable, so a line's template does not depend on when it is
//! replayed); the lines of injected new templates are mined as they come.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use infralog_collector::detect::detector::Line;
use infralog_collector::detect::errors::has_error_word;
use infralog_collector::detect::{Anomaly, Detector, DetectorConfig, Miner, MinerConfig};
use infralog_schemas::anomalies::kind;

use crate::loghub::Dataset;
use crate::rng::Rng;

const MINUTE_US: i64 = 60_000_000;
const DAY_US: i64 = 24 * 60 * MINUTE_US;
/// 2026-11-02T00:00:00Z: the replay's first day.
const START_US: i64 = 1_793_577_600_000_000;
/// Event time between the detector's chunks (a live collector sends one every ~0.5 s;
/// 5 s keeps the replay fast and changes nothing but latency by at most that).
const STEP_US: i64 = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    Burst,
    ErrorStorm,
    NewErrorTemplate,
    Silence,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Burst,
        FaultKind::ErrorStorm,
        FaultKind::NewErrorTemplate,
        FaultKind::Silence,
    ];

    /// The anomaly kind that finds this fault.
    pub fn expected(self) -> &'static str {
        match self {
            FaultKind::Burst => kind::BURST,
            FaultKind::ErrorStorm => kind::ERROR_STORM,
            FaultKind::NewErrorTemplate => kind::NEW_TEMPLATE,
            FaultKind::Silence => kind::SILENCE,
        }
    }

    fn duration_us(self) -> i64 {
        match self {
            FaultKind::Burst | FaultKind::ErrorStorm => 10 * MINUTE_US,
            FaultKind::NewErrorTemplate => 5 * MINUTE_US,
            FaultKind::Silence => 30 * MINUTE_US,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    pub host: usize,
    pub start_us: i64,
    pub end_us: i64,
    /// Burst: the template and how many times its usual rate it runs at.
    template: Option<i64>,
    factor: f64,
    /// New error template: which of [`NEW_ERRORS`].
    shape: usize,
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub hosts: usize,
    pub days: i64,
    pub seed: u64,
    pub faults: usize,
    /// Mean lines per minute of the quietest host; each next host logs 5 more.
    pub base_rate: f64,
    /// Each host replays its system's lines in their order (looping), keeping the runs
    /// and bursts of the original log, instead of sampling them at random.
    pub ordered: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            hosts: 10,
            days: 2,
            seed: 1,
            faults: 40,
            base_rate: 20.0,
            ordered: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct Score {
    pub lines: u64,
    pub elapsed: Duration,
    pub faults: Vec<(FaultKind, usize, usize)>,
    /// Anomalies raised after the warm-up day, and how many of them match a fault.
    pub raised: usize,
    pub true_positives: usize,
    /// Median and maximum of (detected_at − fault start) over found faults, seconds.
    pub latency_median_s: f64,
    pub latency_max_s: f64,
    pub per_kind_raised: HashMap<String, usize>,
    pub anomalies: Vec<Anomaly>,
    /// Hours of event time scored (after the warm-up day).
    pub hours: f64,
}

impl Score {
    pub fn recall(&self, k: FaultKind) -> f64 {
        let (found, total) = self
            .faults
            .iter()
            .filter(|f| f.0 == k)
            .fold((0, 0), |(a, b), f| (a + f.1, b + f.2));
        found as f64 / total.max(1) as f64
    }

    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / self.raised.max(1) as f64
    }

    pub fn per_hour(&self) -> f64 {
        self.raised as f64 / self.hours.max(1e-9)
    }
}

/// Error lines that none of the samples has: each a template of its own, with variables.
const NEW_ERRORS: [&str; 10] = [
    "EXT4-fs error (device sda{n}): ext4_find_entry:1455: inode #{m}: comm systemd: reading directory lblock 0",
    "nvme nvme{n}: I/O {m} QID 3 timeout, aborting",
    "Out of memory: Killed process {m} (java) total-vm:{m}kB, anon-rss:{n}kB",
    "payment-gateway: upstream connect error or disconnect/reset before headers, retried {n} times",
    "FATAL: password authentication failed for user \"svc{n}\" database replica lag {m}",
    "kube-proxy: Failed to sync iptables rules: exit status {n} chain KUBE-SVC-{m}",
    "raft: leader election failed after term {m}, quorum lost ({n} of 5 voters)",
    "TLS handshake error from 10.2.{n}.{m}:443: remote error: bad certificate",
    "mdadm: DegradedArray event detected on md device /dev/md{n} slot {m}",
    "certificate verify failed: unable to get local issuer certificate depth={n} serial={m}",
];

fn level_priority(level: Option<&str>) -> Option<i8> {
    match level?.to_ascii_uppercase().as_str() {
        "FATAL" | "SEVERE" | "CRITICAL" | "CRIT" => Some(2),
        "ERROR" | "ERR" => Some(3),
        "WARN" | "WARNING" => Some(4),
        "NOTICE" => Some(5),
        "INFO" => Some(6),
        "DEBUG" | "TRACE" => Some(7),
        _ => None,
    }
}

/// One replayed system: its lines, their templates and processes.
struct System<'a> {
    data: &'a Dataset,
    ids: Vec<i64>,
    priorities: Vec<Option<i8>>,
    /// Lines that read as errors (error severity or words).
    errors: Vec<usize>,
    /// Share of each template among the lines.
    shares: Vec<(i64, f64)>,
}

fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        // Normal approximation for large means.
        let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
    }
    let l = (-lambda).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.unit();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// Replays, detects and scores.
pub fn run(datasets: &[Dataset], opts: &ReplayOptions, config: DetectorConfig) -> Score {
    let started = Instant::now();
    let mut rng = Rng::new(opts.seed);
    let mut miner = Miner::new(MinerConfig::default());
    let systems: Vec<System> = datasets
        .iter()
        .map(|d| {
            let ids: Vec<i64> = d
                .contents
                .iter()
                .map(|c| miner.add(c.as_bytes(), START_US))
                .collect();
            let priorities: Vec<Option<i8>> = d
                .levels
                .iter()
                .map(|l| level_priority(l.as_deref()))
                .collect();
            let errors = (0..d.contents.len())
                .filter(|&i| {
                    matches!(priorities[i], Some(p) if p <= 3)
                        || has_error_word(d.contents[i].as_bytes())
                })
                .collect();
            let mut counts: HashMap<i64, usize> = HashMap::new();
            for id in &ids {
                *counts.entry(*id).or_default() += 1;
            }
            let mut shares: Vec<(i64, f64)> = counts
                .into_iter()
                .map(|(id, n)| (id, n as f64 / ids.len() as f64))
                .collect();
            shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            System {
                data: d,
                ids,
                priorities,
                errors,
                shares,
            }
        })
        .collect();
    let fleet_errors: Vec<(usize, usize)> = systems
        .iter()
        .enumerate()
        .flat_map(|(s, sys)| sys.errors.iter().map(move |&i| (s, i)))
        .collect();
    let hostnames: Vec<String> = (0..opts.hosts).map(|h| format!("host-{h:02}")).collect();
    let system_of = |h: usize| h % systems.len();
    let base = |h: usize| opts.base_rate + 5.0 * h as f64;
    let phase: Vec<f64> = (0..opts.hosts).map(|_| rng.unit()).collect();
    let rate = |h: usize, t: i64| {
        let day = (t - START_US) as f64 / DAY_US as f64;
        base(h) * (1.0 + 0.5 * (2.0 * std::f64::consts::PI * (day + phase[h])).sin())
    };

    // Faults: on the days after the first, spread evenly, kinds in turn, hosts in a
    // stride so that one host's faults are hours apart.
    let end_us = START_US + opts.days * DAY_US;
    let fault_span = end_us - (START_US + DAY_US) - 2 * 60 * MINUTE_US;
    let mut faults: Vec<Fault> = (0..opts.faults)
        .map(|k| {
            let kind = FaultKind::ALL[k % 4];
            let host = (k * 3 + k / 10) % opts.hosts;
            let start_us = START_US
                + DAY_US
                + 30 * MINUTE_US
                + fault_span * k as i64 / opts.faults.max(1) as i64
                + rng.below(60) as i64 * 1_000_000;
            let sys = &systems[system_of(host)];
            // A burst takes a template the host logs at least 5 times a minute at that
            // hour (the most common one if none does): rarer ones are not bursts at 4×.
            let usual = rate(host, start_us);
            let candidates: Vec<i64> = sys
                .shares
                .iter()
                .filter(|(_, s)| s * usual >= 5.0)
                .map(|(id, _)| *id)
                .collect();
            let template = if candidates.is_empty() {
                sys.shares[0].0
            } else {
                candidates[rng.below(candidates.len() as u64) as usize]
            };
            Fault {
                kind,
                host,
                start_us,
                end_us: start_us + kind.duration_us(),
                template: Some(template),
                factor: [4.0, 5.0, 6.0, 8.0, 10.0][rng.below(5) as usize],
                shape: k / 4 % NEW_ERRORS.len(),
            }
        })
        .collect();
    faults.sort_by_key(|f| f.start_us);

    let mut detector = Detector::new(config);
    let mut seen: HashSet<i64> = HashSet::new();
    let mut lines = 0u64;
    let mut anomalies = Vec::new();
    let mut batch: Vec<(i64, usize, Option<usize>, Option<String>)> = Vec::new();
    let mut cursor: Vec<usize> = (0..opts.hosts).map(|h| h * 211).collect();
    let mut t = START_US;
    while t < end_us {
        for (h, hostname) in hostnames.iter().enumerate() {
            let active: Vec<&Fault> = faults
                .iter()
                .filter(|f| f.host == h && f.start_us <= t && t < f.end_us)
                .collect();
            if active.iter().any(|f| f.kind == FaultKind::Silence) {
                continue;
            }
            let s = system_of(h);
            let sys = &systems[s];
            let step_min = STEP_US as f64 / MINUTE_US as f64;
            batch.clear();
            let r = rate(h, t);
            for _ in 0..poisson(&mut rng, r * step_min) {
                let i = if opts.ordered {
                    cursor[h] = (cursor[h] + 1) % sys.ids.len();
                    cursor[h]
                } else {
                    rng.below(sys.ids.len() as u64) as usize
                };
                batch.push((t + rng.below(STEP_US as u64) as i64, s, Some(i), None));
            }
            for f in active {
                match f.kind {
                    FaultKind::Burst => {
                        let id = f.template.unwrap_or_default();
                        let share = sys.shares.iter().find(|x| x.0 == id).map_or(0.0, |x| x.1);
                        let extra = (f.factor - 1.0) * share * r * step_min;
                        let lines_of: Vec<usize> =
                            (0..sys.ids.len()).filter(|&i| sys.ids[i] == id).collect();
                        for _ in 0..poisson(&mut rng, extra) {
                            let i = lines_of[rng.below(lines_of.len() as u64) as usize];
                            batch.push((t + rng.below(STEP_US as u64) as i64, s, Some(i), None));
                        }
                    }
                    FaultKind::ErrorStorm => {
                        let usual_errors = r * sys.errors.len() as f64 / sys.ids.len() as f64;
                        let extra = (40.0 + 5.0 * usual_errors) * step_min;
                        for _ in 0..poisson(&mut rng, extra) {
                            let (es, i) = if sys.errors.len() >= 5 {
                                (s, sys.errors[rng.below(sys.errors.len() as u64) as usize])
                            } else {
                                fleet_errors[rng.below(fleet_errors.len() as u64) as usize]
                            };
                            batch.push((t + rng.below(STEP_US as u64) as i64, es, Some(i), None));
                        }
                    }
                    FaultKind::NewErrorTemplate => {
                        // About one line a minute while it lasts.
                        for _ in 0..poisson(&mut rng, step_min * 1.2) {
                            let text = NEW_ERRORS[f.shape]
                                .replace("{n}", &rng.range(1, 9).to_string())
                                .replace("{m}", &rng.range(100, 99_999).to_string());
                            batch.push((t + rng.below(STEP_US as u64) as i64, s, None, Some(text)));
                        }
                    }
                    FaultKind::Silence => {}
                }
            }
            batch.sort_by_key(|b| b.0);
            for (ts, s, i, text) in batch.drain(..) {
                let sys = &systems[s];
                let (message, id, priority, process) = match (i, &text) {
                    (Some(i), _) => (
                        sys.data.contents[i].as_str(),
                        sys.ids[i],
                        sys.priorities[i],
                        sys.data.components[i].as_deref().unwrap_or(&sys.data.name),
                    ),
                    (None, Some(text)) => (
                        text.as_str(),
                        miner.add(text.as_bytes(), ts),
                        Some(3),
                        "kernel",
                    ),
                    (None, None) => unreachable!(),
                };
                let new_template = seen.insert(id);
                detector.observe(
                    &Line {
                        ts_us: ts,
                        hostname,
                        source: "file",
                        process: Some(process),
                        priority,
                        message: message.as_bytes(),
                        template_id: Some(id),
                        new_template,
                    },
                    &miner,
                );
                lines += 1;
            }
        }
        detector.end_chunk();
        anomalies.extend(detector.take_raised());
        t += STEP_US;
    }

    score(
        &faults,
        &hostnames,
        anomalies,
        lines,
        started.elapsed(),
        end_us,
    )
}

fn score(
    faults: &[Fault],
    hostnames: &[String],
    anomalies: Vec<Anomaly>,
    lines: u64,
    elapsed: Duration,
    end_us: i64,
) -> Score {
    const SLACK_US: i64 = 10 * MINUTE_US;
    let scored_from = START_US + DAY_US;
    let matches = |a: &Anomaly, f: &Fault| {
        a.hostname == hostnames[f.host]
            && a.detected_at_us >= f.start_us
            && a.detected_at_us <= f.end_us + SLACK_US
    };
    let mut per_kind: HashMap<FaultKind, (usize, usize)> = HashMap::new();
    let mut latencies = Vec::new();
    for f in faults {
        let first = anomalies
            .iter()
            .filter(|a| a.kind == f.kind.expected() && matches(a, f))
            .map(|a| a.detected_at_us)
            .min();
        let e = per_kind.entry(f.kind).or_default();
        e.1 += 1;
        if let Some(at) = first {
            e.0 += 1;
            latencies.push((at - f.start_us) as f64 / 1e6);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let scored: Vec<Anomaly> = anomalies
        .into_iter()
        .filter(|a| a.detected_at_us >= scored_from)
        .collect();
    let true_positives = scored
        .iter()
        .filter(|a| faults.iter().any(|f| matches(a, f)))
        .count();
    let mut per_kind_raised = HashMap::new();
    for a in &scored {
        *per_kind_raised.entry(a.kind.clone()).or_default() += 1;
    }
    let mut kinds: Vec<(FaultKind, usize, usize)> =
        per_kind.into_iter().map(|(k, (a, b))| (k, a, b)).collect();
    kinds.sort();
    Score {
        lines,
        elapsed,
        faults: kinds,
        raised: scored.len(),
        true_positives,
        latency_median_s: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        latency_max_s: latencies.last().copied().unwrap_or(f64::NAN),
        per_kind_raised,
        anomalies: scored,
        hours: (end_us - scored_from) as f64 / 3.6e9,
    }
}
