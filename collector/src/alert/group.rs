//! Which anomalies go out when, per target: grouping per host and kind within a window,
//! deduplication, a repeat interval and a rate limit. Pure logic over a clock given by the
//! caller (milliseconds), so that the rules are tested without waiting.
//!
//! - A new group waits `group_wait` for more anomalies, then goes out as one
//!   notification; what the group gets later goes out `group_interval` after the previous
//!   notification (Alertmanager's rules, so users find what they know).
//! - An anomaly of a trouble (its [`Anomaly::dedup_key`]: host, kind, series) notified
//!   less than `repeat_interval` ago is a duplicate and dropped, as is the same anomaly
//!   (id) twice. A flapping series thus notifies at most once per repeat interval.
//! - At most `max_per_hour` notifications per target (a token bucket); a group that finds
//!   no token waits and keeps collecting, so a storm of anomalies becomes few, larger
//!   notifications and nothing is lost.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::detect::Anomaly;

#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
    pub max_per_hour: u32,
}

impl Rules {
    pub fn from_config(c: &super::config::AlertConfig) -> Self {
        Self {
            group_wait_ms: c.group_wait_secs as i64 * 1000,
            group_interval_ms: c.group_interval_secs as i64 * 1000,
            repeat_interval_ms: c.repeat_interval_secs as i64 * 1000,
            max_per_hour: c.max_per_hour,
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    anomalies: Vec<Anomaly>,
    /// When the first anomaly waiting in it came.
    since_ms: i64,
    /// When it last went out.
    sent_ms: Option<i64>,
}

/// What the grouper remembers across restarts: when each trouble was last notified.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {
    /// (target, dedup key) → time notified (ms).
    pub notified: BTreeMap<String, i64>,
}

#[derive(Debug)]
pub struct Grouper {
    rules: Rules,
    targets: usize,
    groups: HashMap<(usize, String, String), Group>,
    ids: HashSet<(usize, i64)>,
    pub memory: Memory,
    /// Tokens per target, and when they were last refilled.
    tokens: Vec<(f64, i64)>,
    pub duplicates: u64,
}

/// A notification due: the target and its group's anomalies.
#[derive(Debug, Clone)]
pub struct Due {
    pub target: usize,
    pub hostname: String,
    pub kind: String,
    pub anomalies: Vec<Anomaly>,
}

fn memory_key(target: usize, a: &Anomaly) -> String {
    format!("{target}|{}", a.dedup_key())
}

impl Grouper {
    pub fn new(rules: Rules, targets: usize, memory: Memory, now_ms: i64) -> Self {
        Self {
            rules,
            targets,
            groups: HashMap::new(),
            ids: HashSet::new(),
            memory,
            tokens: vec![(rules.max_per_hour as f64, now_ms); targets],
            duplicates: 0,
        }
    }

    /// Takes `a` for `target`; false when it is a duplicate (dropped).
    pub fn add(&mut self, target: usize, a: Anomaly, now_ms: i64) -> bool {
        let recent = self
            .memory
            .notified
            .get(&memory_key(target, &a))
            .is_some_and(|&t| now_ms - t < self.rules.repeat_interval_ms);
        let waiting = self
            .groups
            .get(&(target, a.hostname.clone(), a.kind.clone()))
            .is_some_and(|g| g.anomalies.iter().any(|b| b.dedup_key() == a.dedup_key()));
        if recent || waiting || !self.ids.insert((target, a.id)) {
            self.duplicates += 1;
            return false;
        }
        let g = self
            .groups
            .entry((target, a.hostname.clone(), a.kind.clone()))
            .or_default();
        if g.anomalies.is_empty() {
            g.since_ms = now_ms;
        }
        g.anomalies.push(a);
        true
    }

    /// The notifications due at `now_ms`, each taking one of its target's tokens.
    pub fn due(&mut self, now_ms: i64) -> Vec<Due> {
        let per_ms = self.rules.max_per_hour as f64 / 3_600_000.0;
        for (tokens, at) in &mut self.tokens {
            *tokens =
                (*tokens + (now_ms - *at) as f64 * per_ms).min(self.rules.max_per_hour as f64);
            *at = now_ms;
        }
        let mut ready: Vec<(usize, String, String)> = self
            .groups
            .iter()
            .filter(|(_, g)| !g.anomalies.is_empty())
            .filter(|(_, g)| match g.sent_ms {
                Some(sent) if now_ms - sent < self.rules.group_interval_ms => false,
                Some(_) => true,
                None => now_ms - g.since_ms >= self.rules.group_wait_ms,
            })
            .map(|(k, _)| k.clone())
            .collect();
        // Oldest first, so a rate-limited target serves its groups in turn.
        ready.sort_by_key(|k| self.groups[k].since_ms);
        let mut out = Vec::new();
        for key in ready {
            let target = key.0;
            if target >= self.targets || self.tokens[target].0 < 1.0 {
                continue;
            }
            self.tokens[target].0 -= 1.0;
            let g = self.groups.get_mut(&key).expect("listed above");
            g.sent_ms = Some(now_ms);
            let anomalies = std::mem::take(&mut g.anomalies);
            for a in &anomalies {
                self.memory.notified.insert(memory_key(target, a), now_ms);
            }
            out.push(Due {
                target,
                hostname: key.1,
                kind: key.2,
                anomalies,
            });
        }
        // Forget what no rule needs any more.
        let keep = self
            .rules
            .group_interval_ms
            .max(self.rules.repeat_interval_ms);
        self.groups
            .retain(|_, g| !g.anomalies.is_empty() || g.sent_ms.is_some_and(|s| now_ms - s < keep));
        let repeat = self.rules.repeat_interval_ms;
        self.memory.notified.retain(|_, &mut t| now_ms - t < repeat);
        out
    }

    /// Anomalies waiting in groups (not yet due).
    pub fn waiting(&self) -> usize {
        self.groups.values().map(|g| g.anomalies.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Severity;

    fn anomaly(host: &str, kind: &str, template: i64, id: i64) -> Anomaly {
        Anomaly {
            id,
            detected_at_us: 0,
            window_start_us: 0,
            window_end_us: 0,
            hostname: host.into(),
            kind: kind.into(),
            template_id: Some(template),
            source: None,
            process_name: None,
            observed: 1,
            expected: 0.0,
            score: 1.0,
            severity: Severity::Error,
            explanation: String::new(),
            example: None,
        }
    }

    const RULES: Rules = Rules {
        group_wait_ms: 30_000,
        group_interval_ms: 300_000,
        repeat_interval_ms: 3_600_000,
        max_per_hour: 3,
    };

    #[test]
    fn groups_per_host_and_kind_after_the_wait() {
        let mut g = Grouper::new(RULES, 1, Memory::default(), 0);
        assert!(g.add(0, anomaly("a", "burst", 1, 1), 0));
        assert!(g.add(0, anomaly("a", "burst", 2, 2), 10_000));
        assert!(g.add(0, anomaly("b", "burst", 1, 3), 10_000));
        assert!(g.due(29_999).is_empty());
        let due = g.due(30_000);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].hostname.as_str(), due[0].anomalies.len()), ("a", 2));
        let due = g.due(40_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].hostname, "b");
        // More for a notified group waits for the group interval.
        assert!(g.add(0, anomaly("a", "burst", 3, 4), 50_000));
        assert!(g.due(100_000).is_empty());
        assert_eq!(g.due(330_000).len(), 1);
    }

    #[test]
    fn duplicates_and_repeats_are_dropped_until_the_repeat_interval() {
        let mut g = Grouper::new(RULES, 1, Memory::default(), 0);
        assert!(g.add(0, anomaly("a", "burst", 1, 1), 0));
        assert!(!g.add(0, anomaly("a", "burst", 1, 1), 1_000), "same id");
        assert!(
            !g.add(0, anomaly("a", "burst", 1, 9), 2_000),
            "same trouble, waiting"
        );
        assert_eq!(g.due(30_000).len(), 1);
        assert!(
            !g.add(0, anomaly("a", "burst", 1, 5), 600_000),
            "within repeat"
        );
        assert!(g.add(0, anomaly("a", "burst", 1, 6), 30_000 + 3_600_000));
        assert_eq!(g.duplicates, 3);
        // The memory of what was notified survives (it is saved and given back).
        let m = g.memory.clone();
        let mut g2 = Grouper::new(RULES, 1, m, 40_000);
        assert!(!g2.add(0, anomaly("a", "burst", 1, 7), 40_000));
    }

    #[test]
    fn rate_limit_holds_groups_back_without_losing_them() {
        let mut g = Grouper::new(RULES, 2, Memory::default(), 0);
        for h in 0..5 {
            g.add(0, anomaly(&format!("h{h}"), "silence", 1, h), 0);
        }
        g.add(1, anomaly("h0", "silence", 1, 0), 0);
        let due = g.due(30_000);
        assert_eq!(due.iter().filter(|d| d.target == 0).count(), 3);
        assert_eq!(due.iter().filter(|d| d.target == 1).count(), 1);
        assert_eq!(g.waiting(), 2);
        // A token comes back every 20 minutes.
        assert!(g.due(60_000).is_empty());
        assert_eq!(g.due(30_000 + 1_200_000).len(), 1);
        assert_eq!(g.due(30_000 + 2_400_000).len(), 1);
        assert_eq!(g.waiting(), 0);
    }
}
