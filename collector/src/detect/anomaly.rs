//! One anomaly: what the detector raises, what the `anomalies` table stores and what an
//! alert carries (explanation, example line, and the SQL that shows its context).

use serde::{Deserialize, Serialize};

use crate::time::format_date;

/// How much an anomaly matters; alert targets are routed on it. Ordered: `Warning` <
/// `Error` < `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    #[serde(rename = "WARNING")]
    Warning,
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "CRITICAL")]
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_uppercase().as_str() {
            "WARNING" | "WARN" => Some(Severity::Warning),
            "ERROR" => Some(Severity::Error),
            "CRITICAL" | "CRIT" => Some(Severity::Critical),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub id: i64,
    /// Event time at which it was raised (µs UTC).
    pub detected_at_us: i64,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub hostname: String,
    /// One of [`infralog_schemas::anomalies::kind`].
    pub kind: String,
    pub template_id: Option<i64>,
    pub source: Option<String>,
    pub process_name: Option<String>,
    pub observed: i64,
    pub expected: f64,
    pub score: f64,
    pub severity: Severity,
    pub explanation: String,
    pub example: Option<String>,
}

impl Anomaly {
    /// The id of an anomaly about `series` of `hostname` starting at `window_start_us`:
    /// FNV-1a below 2^63 (positive in every engine), the same on every collector.
    pub fn make_id(hostname: &str, kind: &str, series: &str, window_start_us: i64) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [
            hostname.as_bytes(),
            kind.as_bytes(),
            series.as_bytes(),
            &window_start_us.to_le_bytes(),
        ] {
            for &b in part.iter().chain(&[0xff]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        (h >> 1) as i64
    }

    /// What alerts deduplicate on: the same kind of trouble of the same series of a host.
    pub fn dedup_key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.hostname,
            self.kind,
            self.template_id.map(|t| t.to_string()).unwrap_or_default(),
            self.source.as_deref().unwrap_or(""),
            self.process_name.as_deref().unwrap_or("")
        )
    }

    /// The infra-query statement that shows the lines around the anomaly: its host, its
    /// window widened by five minutes on each side, its template or service if it has one.
    pub fn context_sql(&self) -> String {
        const MARGIN_US: i64 = 5 * 60 * 1_000_000;
        let from = self.window_start_us.saturating_sub(MARGIN_US);
        let to = self.window_end_us.saturating_add(MARGIN_US);
        let mut sql = format!(
            "SELECT timestamp, source, process_name, severity, message FROM logs \
             WHERE hostname = {} AND log_date BETWEEN DATE '{}' AND DATE '{}' \
             AND timestamp BETWEEN TIMESTAMP '{}' AND TIMESTAMP '{}'",
            quote(&self.hostname),
            format_date(crate::time::day_of(from.saturating_mul(1000))),
            format_date(crate::time::day_of(to.saturating_mul(1000))),
            rfc3339(from),
            rfc3339(to)
        );
        if let Some(t) = self.template_id.filter(|_| self.kind != "silence") {
            sql.push_str(&format!(" AND template_id = {t}"));
        }
        if self.kind == "silence"
            && let Some(p) = &self.process_name
        {
            sql.push_str(&format!(" AND process_name = {}", quote(p)));
        }
        sql.push_str(" ORDER BY timestamp LIMIT 200");
        sql
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `2026-12-07T14:30:00Z`-style text of an event time (µs), for SQL and alerts.
pub fn rfc3339(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let day = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(day as i32),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_positive_and_distinct() {
        let a = Anomaly::make_id("web-1", "burst", "42", 60_000_000);
        assert_eq!(a, Anomaly::make_id("web-1", "burst", "42", 60_000_000));
        assert!(a > 0);
        assert_ne!(a, Anomaly::make_id("web-1", "burst", "42", 120_000_000));
        assert_ne!(a, Anomaly::make_id("web-1b", "urst", "42", 60_000_000));
    }

    #[test]
    fn context_sql_names_host_window_and_template() {
        let a = Anomaly {
            id: 1,
            detected_at_us: 0,
            window_start_us: 86_400_000_000,
            window_end_us: 86_400_000_000 + 120_000_000,
            hostname: "o'neil".into(),
            kind: "burst".into(),
            template_id: Some(7),
            source: None,
            process_name: None,
            observed: 1,
            expected: 0.0,
            score: 0.0,
            severity: Severity::Warning,
            explanation: String::new(),
            example: None,
        };
        let sql = a.context_sql();
        assert!(sql.contains("hostname = 'o''neil'"), "{sql}");
        assert!(sql.contains("TIMESTAMP '1970-01-01T23:55:00Z'"), "{sql}");
        assert!(sql.contains("TIMESTAMP '1970-01-02T00:07:00Z'"), "{sql}");
        assert!(
            sql.contains("DATE '1970-01-01' AND DATE '1970-01-02'"),
            "{sql}"
        );
        assert!(sql.contains("template_id = 7"), "{sql}");
        assert!(Severity::Warning < Severity::Critical);
        assert_eq!(Severity::parse("error"), Some(Severity::Error));
    }
}
