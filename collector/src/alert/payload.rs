//! The body of a notification in each target's format. Every format carries, for each
//! anomaly, the explanation, the example line and the infra-query SQL of its context.

use serde_json::{Value, json};

use super::config::TargetKind;
use crate::detect::Anomaly;
use crate::detect::anomaly::rfc3339;

/// Anomalies of one group (a host and a kind) that go out together.
pub struct Notification<'a> {
    pub hostname: &'a str,
    pub kind: &'a str,
    pub anomalies: &'a [Anomaly],
    /// Alertmanager: how long after `detected_at` an alert resolves.
    pub resolve_after_secs: u64,
    /// A test notification (`infra-collector alert-test`).
    pub test: bool,
}

/// Slack shows at most this many characters in a section.
const SLACK_SECTION_CHARS: usize = 3000;
/// Anomalies described one by one in a Slack message; the rest are counted.
const SLACK_DETAILED: usize = 5;

impl Notification<'_> {
    pub fn title(&self) -> String {
        let worst = self
            .anomalies
            .iter()
            .map(|a| a.severity)
            .max()
            .map_or("INFO", |s| s.as_str());
        let what = if self.test {
            "test notification".to_string()
        } else if self.anomalies.len() == 1 {
            self.kind.replace('_', " ")
        } else {
            format!("{} × {}", self.anomalies.len(), self.kind.replace('_', " "))
        };
        format!("[{worst}] infralog: {what} on {}", self.hostname)
    }

    pub fn body(&self, kind: TargetKind) -> Value {
        match kind {
            TargetKind::Webhook => self.webhook(),
            TargetKind::Slack => self.slack(),
            TargetKind::Alertmanager => self.alertmanager(),
        }
    }

    fn webhook(&self) -> Value {
        json!({
            "version": "1",
            "source": "infralog",
            "test": self.test,
            "title": self.title(),
            "group": {"hostname": self.hostname, "kind": self.kind},
            "anomalies": self.anomalies.iter().map(anomaly_json).collect::<Vec<_>>(),
        })
    }

    fn slack(&self) -> Value {
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&self.title(), 150)},
        })];
        for a in self.anomalies.iter().take(SLACK_DETAILED) {
            let mut text = format!("*{}* {}\n", a.severity.as_str(), a.explanation);
            if let Some(e) = &a.example {
                text.push_str(&format!("example: ```{}```\n", e.replace("```", "'''")));
            }
            text.push_str(&format!("context: ```{}```", a.context_sql()));
            blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(&text, SLACK_SECTION_CHARS)},
            }));
        }
        if self.anomalies.len() > SLACK_DETAILED {
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": format!(
                    "and {} more: SELECT * FROM anomalies WHERE hostname = '{}' AND kind = '{}'",
                    self.anomalies.len() - SLACK_DETAILED,
                    self.hostname.replace('\'', "''"),
                    self.kind
                )}],
            }));
        }
        let first = self
            .anomalies
            .first()
            .map(|a| a.explanation.as_str())
            .unwrap_or("");
        json!({
            "text": truncate(&format!("{}: {first}", self.title()), SLACK_SECTION_CHARS),
            "blocks": blocks,
        })
    }

    fn alertmanager(&self) -> Value {
        let alerts: Vec<Value> = self
            .anomalies
            .iter()
            .map(|a| {
                let mut labels = json!({
                    "alertname": format!("infralog_{}", a.kind),
                    "hostname": a.hostname,
                    "kind": a.kind,
                    "severity": a.severity.as_str().to_ascii_lowercase(),
                });
                if let Some(t) = a.template_id {
                    labels["template_id"] = json!(t.to_string());
                }
                if let Some(p) = &a.process_name {
                    labels["process_name"] = json!(p);
                }
                if self.test {
                    labels["test"] = json!("true");
                }
                let ends = a
                    .detected_at_us
                    .max(crate::time::now_ns() / 1000)
                    .saturating_add(self.resolve_after_secs as i64 * 1_000_000);
                json!({
                    "labels": labels,
                    "annotations": {
                        "summary": a.explanation,
                        "example": a.example.clone().unwrap_or_default(),
                        "sql": a.context_sql(),
                        "observed": a.observed.to_string(),
                        "expected": format!("{:.1}", a.expected),
                    },
                    "startsAt": rfc3339(a.window_start_us),
                    "endsAt": rfc3339(ends),
                })
            })
            .collect();
        Value::Array(alerts)
    }
}

fn anomaly_json(a: &Anomaly) -> Value {
    json!({
        "anomaly_id": a.id,
        "kind": a.kind,
        "severity": a.severity.as_str(),
        "hostname": a.hostname,
        "detected_at": rfc3339(a.detected_at_us),
        "window_start": rfc3339(a.window_start_us),
        "window_end": rfc3339(a.window_end_us),
        "template_id": a.template_id,
        "source": a.source,
        "process_name": a.process_name,
        "observed": a.observed,
        "expected": a.expected,
        "score": a.score,
        "explanation": a.explanation,
        "example": a.example,
        "sql": a.context_sql(),
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The anomaly a test notification carries.
pub fn test_anomaly(hostname: &str) -> Anomaly {
    let now = crate::time::now_ns() / 1000;
    Anomaly {
        id: Anomaly::make_id(hostname, "test", "", now),
        detected_at_us: now,
        window_start_us: now - 60_000_000,
        window_end_us: now,
        hostname: hostname.to_string(),
        kind: "test".into(),
        template_id: None,
        source: None,
        process_name: None,
        observed: 0,
        expected: 0.0,
        score: 0.0,
        severity: crate::detect::Severity::Warning,
        explanation: format!(
            "{hostname}: infra-collector alert-test (no anomaly; this checks delivery)"
        ),
        example: None,
    }
}
