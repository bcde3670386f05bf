//! Anomaly detection on event time: the timestamps of the lines, never the wall clock (but
//! see [`Detector::tick`]), so that `import` of old files finds what live collection would
//! have found.
//!
//! Series, each with a [`Baseline`] on one-minute buckets:
//! - per host: all its lines (silence of the host, judged on the fleet's clock: the
//!   newest event time of any host) and its error lines (error storms);
//! - per (host, source, process) — a service: silence, judged on the host's own clock;
//! - per (host, template): bursts, and drops of a busy template.
//!
//! New templates are raised only when they matter: the line reads as an error (error
//! severity or error words, [`super::errors`]), the detector has warmed up, and the
//! template took a second line within a few minutes (persistence; a one-off line is in
//! the `templates` table anyway).
//!
//! A host's minutes close when its own clock moves past them, so hosts whose lines come
//! in different orders (one file after another in `import`) do not disturb each other; a
//! host's whole-host silence is measured as how far the fleet's clock moved since that
//! host's last line, so reading host B's older file after host A's does not make A look
//! silent.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use infralog_schemas::anomalies::kind;
use serde::{Deserialize, Serialize};

use super::anomaly::{Anomaly, Severity, rfc3339};
use super::baseline::{Baseline, Guard};
use super::errors::{has_error_word, is_error_priority};
use super::miner::Miner;

const MINUTE_US: i64 = 60_000_000;

/// FNV-1a for the detector's maps: their keys (host names, ids) are short, and SipHash's
/// protection against chosen keys costs more per line than the rest of the detector.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
/// A jump of event time this large is a gap or a wrong clock, not the passing of time.
const JUMP_US: i64 = 60 * MINUTE_US;
/// A host whose newest line was this far behind the fleet's clock is being backfilled.
const BACKFILL_LAG_US: i64 = 15 * MINUTE_US;

/// The one detection configuration (the [`Default`]), for every log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Minutes a series (and, for new templates, the detector) must have seen before it
    /// may raise anything.
    pub warmup_minutes: u32,
    /// Bursts of one template of a host.
    pub burst: Guard,
    /// A host's error lines.
    pub storm: Guard,
    /// A silence must last until the baseline promised this many lines…
    pub silence_min_expected: f64,
    /// …and at least this long.
    pub silence_min_minutes: f64,
    /// A host or service is busy, and its silence worth telling, from this rate on
    /// (lines per minute).
    pub busy_per_minute: f64,
    /// A template's drop is worth telling from this rate on.
    pub drop_busy_per_minute: f64,
    /// Lines a new error template must take, within `new_template_within_minutes`.
    pub new_template_min_lines: u32,
    pub new_template_within_minutes: u32,
    /// Series kept (each is a few dozen bytes); beyond it new series are not tracked.
    pub max_series: usize,
    /// Minutes a raised burst must stay quiet before the series may raise again.
    pub cooldown_minutes: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            warmup_minutes: 60,
            burst: Guard {
                min_count: 20,
                ratio: 3.0,
                sigmas: 6.0,
                above_recent: super::baseline::ABOVE_RECENT_MAX,
            },
            storm: Guard {
                min_count: 30,
                ratio: 3.0,
                sigmas: 6.0,
                above_recent: 0.0,
            },
            silence_min_expected: 30.0,
            silence_min_minutes: 2.0,
            busy_per_minute: 1.0,
            drop_busy_per_minute: 5.0,
            new_template_min_lines: 2,
            new_template_within_minutes: 10,
            max_series: 200_000,
            cooldown_minutes: 10,
        }
    }
}

/// One line as the detector sees it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub ts_us: i64,
    pub hostname: &'a str,
    pub source: &'a str,
    pub process: Option<&'a str>,
    pub priority: Option<i8>,
    pub message: &'a [u8],
    pub template_id: Option<i64>,
    /// This line started its template.
    pub new_template: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Series {
    base: Baseline,
    /// A burst was raised and has not calmed down yet.
    burst_open: bool,
    /// Minutes without a burst since one was raised.
    calm: u32,
    /// A silence was raised and no line came since.
    quiet_open: bool,
}

impl Series {
    fn warm(&self, c: &DetectorConfig) -> bool {
        self.base.minutes >= c.warmup_minutes
    }

    /// Counts a line at `ts_us`.
    fn hit(&mut self, ts_us: i64) {
        self.base.hit(ts_us);
        self.quiet_open = false;
    }

    /// Whether a burst should be raised now (and marks it raised).
    fn raise_burst(&mut self, c: &DetectorConfig, g: &Guard, host_rate: f64) -> bool {
        if self.burst_open || !self.warm(c) || !self.base.burst(g, host_rate) {
            return false;
        }
        self.burst_open = true;
        self.calm = 0;
        true
    }

    fn close_minute(&mut self, c: &DetectorConfig, g: &Guard, host_rate: f64) {
        if self.burst_open {
            if self.base.burst(g, host_rate) {
                self.calm = 0;
            } else {
                self.calm += 1;
                if self.calm >= c.cooldown_minutes {
                    self.burst_open = false;
                }
            }
        }
        self.base.close_minute(g, host_rate);
    }

    /// Whether a silence should be raised at `now_us` (and marks it raised). The series
    /// must have logged for the warm-up before it went quiet: the end of something short
    /// (a storm, a burst of a new message) is not a silence.
    fn raise_silence(&mut self, c: &DetectorConfig, busy: f64, now_us: i64) -> bool {
        let lasted = self.base.last_us - self.base.first_us.unwrap_or(self.base.last_us);
        if self.quiet_open
            || !self.warm(c)
            || self.base.mean < busy
            || lasted < c.warmup_minutes as i64 * MINUTE_US
        {
            return false;
        }
        let after = self
            .base
            .silence_after_minutes(c.silence_min_expected, c.silence_min_minutes);
        if ((now_us - self.base.last_us) as f64) < after * MINUTE_US as f64 {
            return false;
        }
        self.quiet_open = true;
        true
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Service {
    source: String,
    process: Option<String>,
    s: Series,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TemplateSeries {
    /// The template reads as an error.
    error: bool,
    s: Series,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Host {
    /// The open minute (event time / 1 min).
    minute: i64,
    clock_us: i64,
    /// The fleet's clock when this host's last line came.
    last_fleet_us: i64,
    total: Series,
    errors: Series,
    services: Map<u64, Service>,
    templates: Map<i64, TemplateSeries>,
    last_template: Option<i64>,
    /// An error line of the open or previous minute, for a storm's example.
    error_example: Option<String>,
}

/// A new error template waiting for its second line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingNew {
    hostname: String,
    source: String,
    process: Option<String>,
    first_us: i64,
    lines: u32,
    example: String,
}

/// Everything the detector knows; saved in the state directory and recovered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DetectorState {
    first_us: Option<i64>,
    /// The fleet's clock: the newest event time seen (or ticked to).
    clock_us: i64,
    hosts: Map<String, Host>,
    pending_new: Map<i64, PendingNew>,
    series: usize,
    /// Anomalies raised but not yet in an `anomalies` file, and that file's sequence
    /// number (kept here so that they survive a restart with the rest).
    pub unwritten: Vec<Anomaly>,
    pub table_seq: u64,
}

pub struct Detector {
    config: DetectorConfig,
    pub state: DetectorState,
    raised: Vec<Anomaly>,
    /// Series not tracked because of [`DetectorConfig::max_series`].
    pub untracked: u64,
    /// The wall clock of the last [`Detector::tick`] (live collection only).
    wall_us: Option<i64>,
}

fn service_key(source: &str, process: Option<&str>) -> u64 {
    let mut h = Fnv::default();
    source.hash(&mut h);
    process.hash(&mut h);
    h.finish()
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Self {
        Self::with_state(config, DetectorState::default())
    }

    pub fn with_state(config: DetectorConfig, state: DetectorState) -> Self {
        Self {
            config,
            state,
            raised: Vec::new(),
            untracked: 0,
            wall_us: None,
        }
    }

    /// Anomalies raised since the last call.
    pub fn take_raised(&mut self) -> Vec<Anomaly> {
        std::mem::take(&mut self.raised)
    }

    /// Counts one line; may raise bursts, storms and new templates at once.
    pub fn observe(&mut self, line: &Line, miner: &Miner) {
        let c = self.config;
        let ts = line.ts_us;
        // A line stamped far beyond the wall clock (a wrong clock, a garbled timestamp)
        // does not move the fleet's clock: it would make every other host look silent.
        let credible = self.wall_us.is_none_or(|w| ts <= w + JUMP_US);
        if credible && self.state.first_us.is_some() {
            let clock = self.state.clock_us;
            if ts > clock + JUMP_US {
                // The whole fleet jumped ahead (a gap in imported history, or a clock
                // that was set forward): no host was silent in between on its own.
                for h in self.state.hosts.values_mut() {
                    h.last_fleet_us += ts - clock;
                }
            }
            // A chunk can span many minutes (import reads thousands of lines at once):
            // what the fleet's clock shows is checked each time it enters a new minute.
            if ts.div_euclid(MINUTE_US) > clock.div_euclid(MINUTE_US) {
                self.state.clock_us = ts;
                self.end_chunk();
            }
        }
        let st = &mut self.state;
        st.first_us.get_or_insert(ts);
        if credible {
            st.clock_us = st.clock_us.max(ts);
        }
        let fleet = st.clock_us;
        let warmed = ts - st.first_us.unwrap_or(ts) >= c.warmup_minutes as i64 * MINUTE_US;
        let minute = ts.div_euclid(MINUTE_US);
        if !st.hosts.contains_key(line.hostname) {
            st.series += 2;
            st.hosts.insert(
                line.hostname.to_string(),
                Host {
                    minute,
                    clock_us: ts,
                    last_fleet_us: fleet,
                    total: Series::default(),
                    errors: Series::default(),
                    services: Map::default(),
                    templates: Map::default(),
                    last_template: None,
                    error_example: None,
                },
            );
        }
        let host = st.hosts.get_mut(line.hostname).expect("inserted above");
        if minute > host.minute {
            close_minutes(&c, line.hostname, host, minute, miner, &mut self.raised);
        } else if minute < host.minute - JUMP_US / MINUTE_US {
            // Far older than the host's clock: that clock was set by a line from the
            // future (or this is an older file of the host). Go back rather than count
            // every following line into one endless minute.
            host.minute = minute;
            host.clock_us = ts;
        }
        host.clock_us = host.clock_us.max(ts);
        host.last_fleet_us = fleet;
        host.total.hit(ts);
        let host_rate = host.total.base.mean;

        let key = service_key(line.source, line.process);
        match host.services.get_mut(&key) {
            Some(s) => s.s.hit(ts),
            None if st.series < c.max_series => {
                st.series += 1;
                let mut s = Series::default();
                s.hit(ts);
                host.services.insert(
                    key,
                    Service {
                        source: line.source.to_string(),
                        process: line.process.map(str::to_string),
                        s,
                    },
                );
            }
            None => self.untracked += 1,
        }

        let mut error = is_error_priority(line.priority);
        if let Some(id) = line.template_id {
            if !host.templates.contains_key(&id) && st.series < c.max_series {
                st.series += 1;
                let text_error = miner
                    .get(id)
                    .is_some_and(|t| t.tokens.iter().any(|tok| has_error_word(tok)));
                host.templates.insert(
                    id,
                    TemplateSeries {
                        error: text_error,
                        s: Series::default(),
                    },
                );
            }
            match host.templates.get_mut(&id) {
                Some(t) => {
                    error |= t.error;
                    t.s.hit(ts);
                    if t.s.raise_burst(&c, &c.burst, host_rate) {
                        self.raised
                            .push(burst(line.hostname, id, &t.s.base, ts, miner, line));
                    }
                }
                None => self.untracked += 1,
            }
            host.last_template = Some(id);
        } else {
            error |= has_error_word(line.message);
        }

        if error {
            host.errors.hit(ts);
            if host.error_example.is_none() {
                host.error_example = Some(example_text(line.message));
            }
            if host.errors.raise_burst(&c, &c.storm, host_rate) {
                self.raised.push(storm(line.hostname, host, ts));
            }
        }

        let Some(id) = line.template_id else { return };
        if line.new_template && error && warmed {
            st.pending_new.insert(
                id,
                PendingNew {
                    hostname: line.hostname.to_string(),
                    source: line.source.to_string(),
                    process: line.process.map(str::to_string),
                    first_us: ts,
                    lines: 0,
                    example: example_text(line.message),
                },
            );
        }
        if st.pending_new.is_empty() {
            return;
        }
        if let Some(p) = st.pending_new.get_mut(&id) {
            p.lines += 1;
            if p.lines >= c.new_template_min_lines {
                let p = st.pending_new.remove(&id).expect("present");
                self.raised.push(new_template(id, p, ts, miner));
            }
        }
    }

    /// Checks what only the passing of time shows: hosts gone silent (on the fleet's
    /// clock) and new templates that did not persist. Call after each chunk.
    pub fn end_chunk(&mut self) {
        let c = self.config;
        let st = &mut self.state;
        let fleet = st.clock_us;
        for (name, host) in st.hosts.iter_mut() {
            // A host whose lines were far behind the fleet's clock when they came is being
            // backfilled (an old file read by a live collector): its end is no silence.
            if host.last_fleet_us - host.clock_us > BACKFILL_LAG_US {
                continue;
            }
            // The host's own clock stopped with it: its silence is how far the fleet's
            // clock went since its last line.
            let mut s = host.total.clone();
            let shift = host.last_fleet_us - s.base.last_us;
            s.base.first_us = s.base.first_us.map(|f| f + shift);
            s.base.last_us = host.last_fleet_us;
            if s.raise_silence(&c, c.busy_per_minute, fleet) {
                host.total.quiet_open = true;
                self.raised.push(silence(
                    name,
                    None,
                    &s.base,
                    host.clock_us,
                    fleet,
                    host.last_template,
                ));
            }
        }
        // On the host's own clock: a backfilled file's old lines are not expired by the
        // wall clock a live fleet clock follows.
        let within = c.new_template_within_minutes as i64 * MINUTE_US;
        let hosts = &st.hosts;
        st.pending_new.retain(|_, p| {
            let now = hosts.get(&p.hostname).map_or(fleet, |h| h.clock_us);
            now - p.first_us <= within
        });
    }

    /// Moves the fleet's clock to `now_us` if it is behind (the running collector calls it
    /// with the wall clock less a lateness margin, so that a silent fleet is noticed even
    /// when no host sends anything).
    pub fn tick(&mut self, now_us: i64) {
        self.wall_us = Some(now_us);
        if self.state.first_us.is_some() && now_us > self.state.clock_us {
            self.state.clock_us = now_us;
        }
    }

    pub fn series(&self) -> usize {
        self.state.series
    }
}

/// Closes the host's minutes up to (not including) `minute`. Empty minutes are closed
/// one by one while the gap is shorter than the host's own silence; a longer gap is the
/// whole host having been silent (raised on the fleet's clock): its series skip it, so
/// that its services and templates do not look silent on their own when it resumes.
fn close_minutes(
    c: &DetectorConfig,
    name: &str,
    host: &mut Host,
    minute: i64,
    miner: &Miner,
    raised: &mut Vec<Anomaly>,
) {
    let host_silence = host
        .total
        .base
        .silence_after_minutes(c.silence_min_expected, c.silence_min_minutes)
        .min(24.0 * 60.0);
    let gap = minute - host.minute;
    let closing = if (gap as f64) < host_silence { gap } else { 1 };
    for _ in 0..closing {
        close_one(c, name, host, miner, raised);
        host.minute += 1;
    }
    if host.minute < minute {
        let skipped = (minute - host.minute) * MINUTE_US;
        for s in all_series(host) {
            s.base.last_us = s.base.last_us.saturating_add(skipped);
            s.base.prev = 0;
        }
        host.minute = minute;
    }
}

fn all_series(host: &mut Host) -> impl Iterator<Item = &mut Series> {
    [&mut host.total, &mut host.errors]
        .into_iter()
        .chain(host.services.values_mut().map(|s| &mut s.s))
        .chain(host.templates.values_mut().map(|t| &mut t.s))
}

fn close_one(
    c: &DetectorConfig,
    name: &str,
    host: &mut Host,
    miner: &Miner,
    raised: &mut Vec<Anomaly>,
) {
    let end_us = (host.minute + 1) * MINUTE_US;
    let host_rate = host.total.base.mean;
    host.total.close_minute(c, &c.burst, host_rate);
    host.errors.close_minute(c, &c.storm, host_rate);
    if host.errors.base.prev == 0 {
        host.error_example = None;
    }
    for svc in host.services.values_mut() {
        svc.s.close_minute(c, &c.burst, host_rate);
        if svc.s.raise_silence(c, c.busy_per_minute, end_us) {
            let mut a = silence(
                name,
                Some(svc),
                &svc.s.base,
                svc.s.base.last_us,
                end_us,
                None,
            );
            a.source = Some(svc.source.clone());
            raised.push(a);
        }
    }
    for (&id, t) in host.templates.iter_mut() {
        t.s.close_minute(c, &c.burst, host_rate);
        if t.s.raise_silence(c, c.drop_busy_per_minute, end_us) {
            raised.push(dropped(name, id, &t.s.base, end_us, miner));
        }
    }
}

/// The first bytes of a line, as an example.
fn example_text(message: &[u8]) -> String {
    const EXAMPLE_BYTES: usize = 512;
    let cut = &message[..message.len().min(EXAMPLE_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

fn template_text(miner: &Miner, id: i64) -> String {
    miner
        .get(id)
        .map(|t| t.text())
        .unwrap_or_else(|| format!("template {id}"))
}

fn burst(hostname: &str, id: i64, b: &Baseline, ts: i64, miner: &Miner, line: &Line) -> Anomaly {
    let start = (ts.div_euclid(MINUTE_US) - 1) * MINUTE_US;
    let observed = (b.prev + b.count) as i64;
    let expected = 2.0 * b.mean;
    Anomaly {
        id: Anomaly::make_id(hostname, kind::BURST, &id.to_string(), start),
        detected_at_us: ts,
        window_start_us: start,
        window_end_us: ts,
        hostname: hostname.to_string(),
        kind: kind::BURST.into(),
        template_id: Some(id),
        source: Some(line.source.to_string()),
        process_name: line.process.map(str::to_string),
        observed,
        expected,
        score: b.score(),
        severity: Severity::Warning,
        explanation: format!(
            "{hostname}: {observed} lines of \"{}\" in 2 minutes, {:.1}× the usual {expected:.1}",
            template_text(miner, id),
            observed as f64 / expected.max(0.1),
        ),
        example: Some(example_text(line.message)),
    }
}

fn storm(hostname: &str, host: &Host, ts: i64) -> Anomaly {
    let b = &host.errors.base;
    let start = (ts.div_euclid(MINUTE_US) - 1) * MINUTE_US;
    let observed = (b.prev + b.count) as i64;
    let expected = 2.0 * b.mean;
    Anomaly {
        id: Anomaly::make_id(hostname, kind::ERROR_STORM, "", start),
        detected_at_us: ts,
        window_start_us: start,
        window_end_us: ts,
        hostname: hostname.to_string(),
        kind: kind::ERROR_STORM.into(),
        template_id: None,
        source: None,
        process_name: None,
        observed,
        expected,
        score: b.score(),
        severity: Severity::Error,
        explanation: format!(
            "{hostname}: {observed} error lines in 2 minutes, {:.1}× the usual {expected:.1}",
            observed as f64 / expected.max(0.1)
        ),
        example: host.error_example.clone(),
    }
}

fn silence(
    hostname: &str,
    service: Option<&Service>,
    b: &Baseline,
    last_line_us: i64,
    now_us: i64,
    last_template: Option<i64>,
) -> Anomaly {
    let minutes = (now_us - b.last_us) as f64 / MINUTE_US as f64;
    let expected = b.mean * minutes;
    let what = match service {
        Some(s) => format!(
            "service {}{}",
            s.source,
            s.process
                .as_deref()
                .map(|p| format!("/{p}"))
                .unwrap_or_default()
        ),
        None => "host".to_string(),
    };
    let series = service
        .map(|s| format!("{}/{}", s.source, s.process.as_deref().unwrap_or("")))
        .unwrap_or_default();
    Anomaly {
        id: Anomaly::make_id(hostname, kind::SILENCE, &series, last_line_us),
        detected_at_us: now_us,
        window_start_us: last_line_us,
        window_end_us: now_us,
        hostname: hostname.to_string(),
        kind: kind::SILENCE.into(),
        template_id: if service.is_none() {
            last_template
        } else {
            None
        },
        source: None,
        process_name: service.and_then(|s| s.process.clone()),
        observed: 0,
        expected,
        score: expected,
        severity: if service.is_none() {
            Severity::Critical
        } else {
            Severity::Warning
        },
        explanation: format!(
            "{hostname}: {what} silent for {minutes:.0} minutes since {} (usually {:.1} lines a minute)",
            rfc3339(last_line_us),
            b.mean
        ),
        example: None,
    }
}

fn dropped(hostname: &str, id: i64, b: &Baseline, now_us: i64, miner: &Miner) -> Anomaly {
    let minutes = (now_us - b.last_us) as f64 / MINUTE_US as f64;
    let expected = b.mean * minutes;
    Anomaly {
        id: Anomaly::make_id(hostname, kind::DROP, &id.to_string(), b.last_us),
        detected_at_us: now_us,
        window_start_us: b.last_us,
        window_end_us: now_us,
        hostname: hostname.to_string(),
        kind: kind::DROP.into(),
        template_id: Some(id),
        source: None,
        process_name: None,
        observed: 0,
        expected,
        score: expected,
        severity: Severity::Warning,
        explanation: format!(
            "{hostname}: \"{}\" stopped {minutes:.0} minutes ago (usually {:.1} lines a minute) while the host logs on",
            template_text(miner, id),
            b.mean
        ),
        example: miner.get(id).map(|t| t.example.to_string()),
    }
}

fn new_template(id: i64, p: PendingNew, ts: i64, miner: &Miner) -> Anomaly {
    Anomaly {
        id: Anomaly::make_id(&p.hostname, kind::NEW_TEMPLATE, &id.to_string(), p.first_us),
        detected_at_us: ts,
        window_start_us: p.first_us,
        window_end_us: ts,
        hostname: p.hostname.clone(),
        kind: kind::NEW_TEMPLATE.into(),
        template_id: Some(id),
        source: Some(p.source),
        process_name: p.process,
        observed: p.lines as i64,
        expected: 0.0,
        score: p.lines as f64,
        severity: Severity::Error,
        explanation: format!(
            "{}: new error message \"{}\", {} lines since {}",
            p.hostname,
            template_text(miner, id),
            p.lines,
            rfc3339(p.first_us)
        ),
        example: Some(p.example),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_772_409_600_000_000;

    /// `minutes` of steady lines (10 a minute, two templates) of `host` from `from_us`.
    fn steady(d: &mut Detector, miner: &mut Miner, host: &str, from_us: i64, minutes: i64) {
        for m in 0..minutes {
            for i in 0..10i64 {
                let ts = from_us + m * MINUTE_US + i * 6_000_000;
                let msg = if i % 2 == 0 {
                    format!("request {i} served in {m} ms")
                } else {
                    format!("worker {i} idle")
                };
                feed(d, miner, host, ts, &msg, None);
            }
            d.end_chunk();
        }
    }

    fn feed(d: &mut Detector, miner: &mut Miner, host: &str, ts: i64, msg: &str, prio: Option<i8>) {
        let created = miner.created;
        let id = miner.add(msg.as_bytes(), ts);
        d.observe(
            &Line {
                ts_us: ts,
                hostname: host,
                source: "file",
                process: Some("app"),
                priority: prio,
                message: msg.as_bytes(),
                template_id: Some(id),
                new_template: miner.created != created,
            },
            miner,
        );
    }

    #[test]
    fn one_host_after_another_is_no_silence_but_a_stop_among_others_is() {
        let mut miner = Miner::new(Default::default());
        let mut d = Detector::new(DetectorConfig::default());
        // Host a's three hours, then host b's same three hours (as `import` of two files).
        steady(&mut d, &mut miner, "a", T0, 180);
        steady(&mut d, &mut miner, "b", T0, 180);
        assert_eq!(d.take_raised(), vec![]);
        // Both go on together; then a stops while b goes on.
        for m in 180..200 {
            steady(&mut d, &mut miner, "a", T0 + m * MINUTE_US, 1);
            steady(&mut d, &mut miner, "b", T0 + m * MINUTE_US, 1);
        }
        steady(&mut d, &mut miner, "b", T0 + 200 * MINUTE_US, 10);
        let raised = d.take_raised();
        assert_eq!(raised.len(), 1, "{raised:?}");
        let a = &raised[0];
        assert_eq!((a.kind.as_str(), a.hostname.as_str()), ("silence", "a"));
        assert_eq!(a.severity, Severity::Critical);
        assert!(
            a.detected_at_us - a.window_start_us <= 4 * MINUTE_US,
            "{a:?}"
        );
    }

    #[test]
    fn a_backfilled_host_that_ends_is_no_silence() {
        let mut miner = Miner::new(Default::default());
        let mut d = Detector::new(DetectorConfig::default());
        // A live host, and an old file of another one read meanwhile.
        let now = T0 + 10 * DAY_MINUTES * MINUTE_US;
        for m in 0..120 {
            steady(&mut d, &mut miner, "live", now + m * MINUTE_US, 1);
            steady(&mut d, &mut miner, "old", T0 + m * MINUTE_US, 1);
        }
        steady(&mut d, &mut miner, "live", now + 120 * MINUTE_US, 10);
        assert_eq!(d.take_raised(), vec![]);
    }

    const DAY_MINUTES: i64 = 24 * 60;

    #[test]
    fn a_line_from_the_future_raises_nothing_and_detection_goes_on() {
        let mut miner = Miner::new(Default::default());
        let mut d = Detector::new(DetectorConfig::default());
        for m in 0..120 {
            steady(&mut d, &mut miner, "a", T0 + m * MINUTE_US, 1);
            steady(&mut d, &mut miner, "b", T0 + m * MINUTE_US, 1);
        }
        let year_2099 = 4_070_908_800_000_000;
        feed(&mut d, &mut miner, "a", year_2099, "worker 3 idle", None);
        d.end_chunk();
        for m in 120..180 {
            steady(&mut d, &mut miner, "a", T0 + m * MINUTE_US, 1);
            steady(&mut d, &mut miner, "b", T0 + m * MINUTE_US, 1);
        }
        assert_eq!(d.take_raised(), vec![]);
        // Bursts are still found.
        let t = T0 + 180 * MINUTE_US;
        for i in 0..120i64 {
            feed(
                &mut d,
                &mut miner,
                "a",
                t + i * 1_000_000,
                &format!("worker {i} idle"),
                None,
            );
        }
        let kinds: Vec<String> = d.take_raised().into_iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["burst"]);
    }

    #[test]
    fn a_new_error_template_is_raised_on_its_second_line_after_the_warm_up_only() {
        let mut miner = Miner::new(Default::default());
        let mut d = Detector::new(DetectorConfig::default());
        // During the warm-up: not raised.
        feed(
            &mut d,
            &mut miner,
            "a",
            T0,
            "disk sda failed to spin up",
            None,
        );
        feed(
            &mut d,
            &mut miner,
            "a",
            T0 + 1,
            "disk sdb failed to spin up",
            None,
        );
        steady(&mut d, &mut miner, "a", T0, 90);
        let t = T0 + 90 * MINUTE_US;
        // A new message that is not an error: not raised.
        feed(
            &mut d,
            &mut miner,
            "a",
            t,
            "rotated journal file number 7",
            None,
        );
        feed(
            &mut d,
            &mut miner,
            "a",
            t + 1,
            "rotated journal file number 8",
            None,
        );
        // A new error: raised on its second line.
        feed(
            &mut d,
            &mut miner,
            "a",
            t + 2,
            "fan tray 2 speed sensor unreadable",
            Some(2),
        );
        assert_eq!(d.take_raised(), vec![]);
        feed(
            &mut d,
            &mut miner,
            "a",
            t + 3,
            "fan tray 3 speed sensor unreadable",
            Some(2),
        );
        let raised = d.take_raised();
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].kind, "new_template");
        assert_eq!(
            raised[0].example.as_deref(),
            Some("fan tray 2 speed sensor unreadable")
        );
        // An error that never comes back within 10 minutes: not raised.
        feed(
            &mut d,
            &mut miner,
            "a",
            t + 4,
            "power supply 1 voltage out of range",
            Some(3),
        );
        steady(&mut d, &mut miner, "a", t + MINUTE_US, 12);
        feed(
            &mut d,
            &mut miner,
            "a",
            t + 13 * MINUTE_US,
            "power supply 2 voltage out of range",
            Some(3),
        );
        assert_eq!(d.take_raised(), vec![]);
    }

    /// The state saved and restored in the middle gives what one uninterrupted detector
    /// gives.
    #[test]
    fn a_restored_state_carries_on_as_if_never_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let run = |restart: bool| {
            let mut miner = Miner::new(Default::default());
            let mut d = Detector::new(DetectorConfig::default());
            steady(&mut d, &mut miner, "a", T0, 120);
            steady(&mut d, &mut miner, "b", T0, 120);
            if restart {
                super::super::persist::save(dir.path(), &d.state).unwrap();
                let state = super::super::persist::load(dir.path()).unwrap().unwrap();
                d = Detector::new(DetectorConfig::default());
                d.state = state;
            }
            // A burst on a, then b stops.
            let t = T0 + 120 * MINUTE_US;
            for i in 0..120i64 {
                feed(
                    &mut d,
                    &mut miner,
                    "a",
                    t + i * 1_000_000,
                    &format!("worker {i} idle"),
                    None,
                );
            }
            steady(&mut d, &mut miner, "a", t + 2 * MINUTE_US, 10);
            d.take_raised()
        };
        let straight = run(false);
        let kinds: Vec<&str> = straight.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["burst", "silence"], "{straight:?}");
        assert_eq!(run(true), straight);
    }
}
