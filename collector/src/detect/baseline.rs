//! The rate baseline of one series (a host, a service, a template of a host, a host's
//! errors), on one-minute buckets of event time.
//!
//! The expected rate is an exponentially weighted mean of the per-minute counts with
//! about an hour of memory ([`MEMORY_MINUTES`]; the plain average while a series is
//! younger than that): long enough to smooth Poisson noise,
//! short enough to follow a daily cycle (a ±50 % day/night swing changes the rate by at
//! most ~13 % an hour, which the mean follows within the guards' margins).
//!
//! Deciding is guarded against multiple testing: hundreds of series are tested every
//! minute, so a rule must be very unlikely by chance on any one of them. A burst needs a
//! minimum count, a ratio to the mean and a Poisson margin of many standard deviations over
//! a two-minute window, and both minutes elevated (persistence); a silence needs the mean
//! to have promised many lines over the quiet stretch, not just one.

use serde::{Deserialize, Serialize};

/// Memory of the mean, in minutes.
pub const MEMORY_MINUTES: f64 = 60.0;
/// A template's burst must exceed its largest recent share by this factor: a run that
/// recurs is not news. 1.25 keeps the replay's 4× bursts of steady templates (recall
/// ≥ 0.8) and cuts the ordered replay's recurring runs to 0.4 an hour (BENCHMARKS.md).
pub const ABOVE_RECENT_MAX: f64 = 1.25;
/// Memory of the variance, in minutes: a day.
pub const VAR_MEMORY_MINUTES: f64 = 1440.0;
/// What of the longest gap is kept per minute (0.999: half of it after ~12 hours).
const GAP_KEPT_PER_MINUTE: f64 = 0.999;

/// Thresholds of the rules, one set for every series of a kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Lines the two-minute window must hold at least.
    pub min_count: u32,
    /// …and at least this many times what the mean expects.
    pub ratio: f64,
    /// …and more than the expectation plus this many Poisson standard deviations.
    pub sigmas: f64,
    /// …and this many times the largest recent share ([`Baseline::max_share`]); 0: not
    /// asked (an error storm is news each time).
    pub above_recent: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// Expected lines per minute.
    pub mean: f64,
    /// Variance of the per-minute counts around the mean, over about a day. Logs are
    /// burstier than Poisson (a template that comes in runs); the rules use whichever is
    /// larger.
    #[serde(default)]
    pub var: f64,
    /// The longest gap between two lines seen (µs), slowly forgotten (half-life ~12 h):
    /// a series that pauses for minutes between runs is not silent after one of them.
    #[serde(default)]
    pub max_gap_us: i64,
    /// The largest two-minute count seen, as a share of what its host logs in two minutes
    /// (so that the daily cycle, which scales every series of a host, does not make the
    /// same run larger at the peak), forgotten like the longest gap: a burst must exceed
    /// what the series already did recently by [`Guard::above_recent`] (a template whose runs
    /// recur all day is not news each time).
    #[serde(default)]
    pub max_share: f64,
    /// Minutes closed since the series' first line (its warm-up clock).
    pub minutes: u32,
    /// Lines in the previous (closed) minute and in the open one.
    pub prev: u32,
    pub count: u32,
    /// Event time of the series' first and last line (µs).
    #[serde(default)]
    pub first_us: Option<i64>,
    pub last_us: i64,
}

impl Baseline {
    /// Whether the previous minute and the open one (as far as it went) together are a
    /// burst: far above the mean over both, and each of them elevated on its own, so that
    /// a spike inside one minute is not enough.
    /// `host_rate`: the lines a minute the series' host usually logs.
    pub fn burst(&self, g: &Guard, host_rate: f64) -> bool {
        self.far_above_mean(g) && self.share(host_rate) > g.above_recent * self.max_share
    }

    /// The statistical half of [`Baseline::burst`]: the two-minute window against the
    /// mean and the variance.
    fn far_above_mean(&self, g: &Guard) -> bool {
        let mu = self.mean;
        let var = self.var.max(mu);
        let window = (self.prev + self.count) as f64;
        let expected = 2.0 * mu;
        let elevated = |c: u32| c as f64 > mu + 2.0 * (var + 1.0).sqrt();
        window >= g.min_count as f64
            && window >= g.ratio * expected
            && window > expected + g.sigmas * (2.0 * var + 1.0).sqrt()
            && elevated(self.prev)
            && elevated(self.count)
    }

    /// Closes the open minute: the mean learns it. During a burst the count is clipped
    /// to `ratio` times the mean, so the burst does not teach itself as normal at once; a
    /// lasting new level is still learnt within about half an hour.
    /// The two-minute window as a share of what the host logs in two minutes.
    fn share(&self, host_rate: f64) -> f64 {
        (self.prev + self.count) as f64 / (2.0 * host_rate).max(1.0)
    }

    pub fn close_minute(&mut self, g: &Guard, host_rate: f64) {
        let raw = self.count as f64;
        let mut c = raw;
        if self.far_above_mean(g) {
            c = c.min(g.ratio * self.mean.max(1.0));
        }
        // The variance learns over a day (a template that comes in runs is known for it
        // all day, while the mean follows the hour), each minute's deviation capped at
        // the guard's margin, so that one spike, such as the first minute of a burst, does
        // not teach a young series that anything goes.
        if self.minutes > 0 {
            let cap = self.mean + g.sigmas * (self.var.max(self.mean) + 1.0).sqrt();
            let d = raw.min(cap) - self.mean;
            let w = (self.minutes as f64).min(VAR_MEMORY_MINUTES);
            self.var += (d * d - self.var) / w;
        }
        // The plain average of the minutes so far until there is an hour of them, so a
        // young series is not compared with a mean still rising from zero.
        let weight = (self.minutes as f64 + 1.0).min(MEMORY_MINUTES);
        self.mean += (c - self.mean) / weight;
        self.max_gap_us = (self.max_gap_us as f64 * GAP_KEPT_PER_MINUTE) as i64;
        // Shares are learnt once the host's rate is known (a young host's mean is not).
        self.max_share *= GAP_KEPT_PER_MINUTE;
        if self.minutes as f64 >= MEMORY_MINUTES {
            self.max_share = self.max_share.max(self.share(host_rate));
        }
        self.minutes = self.minutes.saturating_add(1);
        self.prev = self.count;
        self.count = 0;
    }

    /// Score of a window against the mean: standard deviations above it.
    pub fn score(&self) -> f64 {
        let expected = 2.0 * self.mean;
        ((self.prev + self.count) as f64 - expected) / (2.0 * self.var.max(self.mean) + 1.0).sqrt()
    }

    /// Counts a line at `ts_us` into the open minute.
    pub fn hit(&mut self, ts_us: i64) {
        self.count = self.count.saturating_add(1);
        if self.first_us.is_some() && ts_us > self.last_us {
            self.max_gap_us = self.max_gap_us.max(ts_us - self.last_us);
        }
        self.first_us.get_or_insert(ts_us);
        self.last_us = self.last_us.max(ts_us);
    }

    /// Minutes without a line after which this series counts as silent: the mean must
    /// have promised `min_expected` lines, at least `min_minutes` pass, and twice the
    /// longest pause the series had.
    pub fn silence_after_minutes(&self, min_expected: f64, min_minutes: f64) -> f64 {
        (min_expected / self.mean.max(1e-9))
            .max(min_minutes)
            .max(2.0 * self.max_gap_us as f64 / 60e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Guard = Guard {
        min_count: 20,
        ratio: 3.0,
        sigmas: 6.0,
        above_recent: ABOVE_RECENT_MAX,
    };

    fn steady(rate: u32, minutes: u32) -> Baseline {
        let mut b = Baseline::default();
        for _ in 0..minutes {
            b.count = rate;
            b.close_minute(&G, 10.0);
        }
        b
    }

    #[test]
    fn mean_follows_the_rate_and_a_burst_is_persistent_and_large() {
        let mut b = steady(10, 600);
        assert!((b.mean - 10.0).abs() < 0.1, "{}", b.mean);
        // Four times the rate for two minutes is a burst…
        b.prev = 40;
        b.count = 40;
        assert!(b.burst(&G, 10.0));
        // …one spiking minute is not, nor is twice the rate.
        b.prev = 10;
        b.count = 80;
        assert!(!b.burst(&G, 10.0));
        b.prev = 20;
        b.count = 20;
        assert!(!b.burst(&G, 10.0));
        // A rare series needs the minimum count.
        let mut r = steady(0, 300);
        r.prev = 4;
        r.count = 5;
        assert!(!r.burst(&G, 10.0));
    }

    #[test]
    fn a_burst_is_not_learnt_at_once_but_a_new_level_is_later() {
        let mut b = steady(10, 600);
        // The first minute is not a burst yet (one elevated minute), the next ones are
        // clipped.
        for _ in 0..3 {
            b.count = 100;
            b.close_minute(&G, 10.0);
        }
        assert!(b.mean < 12.5, "{}", b.mean);
        for _ in 0..120 {
            b.count = 100;
            b.close_minute(&G, 10.0);
        }
        b.count = 100;
        assert!(!b.burst(&G, 10.0), "mean {}", b.mean);
    }

    #[test]
    fn a_young_series_knows_its_rate_at_once() {
        let b = steady(10, 5);
        assert!((b.mean - 10.0).abs() < 1e-9, "{}", b.mean);
    }

    #[test]
    fn silence_waits_for_enough_expected_lines() {
        let b = steady(30, 300);
        assert_eq!(b.silence_after_minutes(30.0, 2.0), 2.0);
        let b = steady(1, 300);
        assert!((b.silence_after_minutes(30.0, 2.0) - 30.0).abs() < 1.0);
    }
}
