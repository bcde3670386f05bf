//! `[alert]` and `[[alert.targets]]`: where notifications go and how they are grouped.
//! A target is checked as it is read, so a bad one is refused with its line and the
//! reason, like every other key of the configuration.

use serde::Deserialize;

use crate::detect::Severity;
use infralog_schemas::anomalies::kind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// A new group (host and kind) waits this long for more anomalies before its first
    /// notification.
    pub group_wait_secs: u64,
    /// A group that was notified waits this long before it notifies what came since.
    pub group_interval_secs: u64,
    /// The same trouble (kind and series of a host) is notified again only after this
    /// long; in between it is dropped as a duplicate.
    pub repeat_interval_secs: u64,
    /// Notifications per hour and target at most; beyond, groups wait (and grow) until
    /// the target may take one again. Nothing is dropped.
    pub max_per_hour: u32,
    /// Alertmanager alerts end (resolve) this long after they were raised.
    pub resolve_after_secs: u64,
    pub targets: Vec<Target>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            group_wait_secs: 30,
            group_interval_secs: 300,
            repeat_interval_secs: 4 * 3600,
            max_per_hour: 30,
            resolve_after_secs: 3600,
            targets: Vec::new(),
        }
    }
}

/// The format of a target's notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A JSON object per notification (n8n, Zapier, any HTTP endpoint).
    Webhook,
    /// Slack's incoming-webhook format (`text` and `blocks`).
    Slack,
    /// Prometheus Alertmanager's `POST /api/v2/alerts`.
    Alertmanager,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawTarget")]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    /// Where to POST (for Alertmanager: its base URL or the full `/api/v2/alerts` URL).
    pub url: String,
    /// Anomalies below this severity do not go to this target.
    pub min_severity: Severity,
    /// Only these anomaly kinds (empty: all).
    pub kinds: Vec<String>,
    pub timeout_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    kind: String,
    /// The URL inline, or (for one holding a secret: a Slack webhook, credentials) a
    /// file holding it (a Kubernetes secret, a Vault-agent file) or an environment
    /// variable; read at start and on every reload.
    #[serde(default)]
    url: String,
    #[serde(default)]
    url_file: Option<std::path::PathBuf>,
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default)]
    min_severity: Option<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

const KINDS: [&str; 5] = [
    kind::NEW_TEMPLATE,
    kind::BURST,
    kind::DROP,
    kind::SILENCE,
    kind::ERROR_STORM,
];

impl TryFrom<RawTarget> for Target {
    type Error = String;

    fn try_from(r: RawTarget) -> Result<Self, String> {
        let ok_name = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_name {
            return Err(format!(
                "alert target name {:?}: use 1 to 64 letters, digits, '-' or '_'",
                r.name
            ));
        }
        let kind = match r.kind.as_str() {
            "webhook" => TargetKind::Webhook,
            "slack" => TargetKind::Slack,
            "alertmanager" => TargetKind::Alertmanager,
            other => {
                return Err(format!(
                    "alert target {}: kind {other:?} is not webhook, slack or alertmanager",
                    r.name
                ));
            }
        };
        let url = match (r.url.is_empty(), &r.url_file, &r.url_env) {
            (false, None, None) => r.url.clone(),
            (true, Some(f), None) => std::fs::read_to_string(f)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("alert target {}: url_file {}: {e}", r.name, f.display()))?,
            (true, None, Some(v)) => {
                std::env::var(v)
                    .map(|t| t.trim().to_string())
                    .map_err(|_| {
                        format!(
                            "alert target {}: url_env {v}: not set in the environment",
                            r.name
                        )
                    })?
            }
            _ => {
                return Err(format!(
                    "alert target {}: give exactly one of url, url_file and url_env",
                    r.name
                ));
            }
        };
        // Shown in errors only when it was written in the configuration.
        let shown = if r.url.is_empty() {
            "(secret)"
        } else {
            r.url.as_str()
        };
        match reqwest::Url::parse(&url) {
            Ok(u) if !r.url.is_empty() && (!u.username().is_empty() || u.password().is_some()) => {
                return Err(format!(
                    "alert target {}: url holds credentials: put it in url_file or url_env",
                    r.name
                ));
            }
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
            Ok(_) => {
                return Err(format!(
                    "alert target {}: url {shown:?} is not http(s)://host/…",
                    r.name
                ));
            }
            Err(e) => return Err(format!("alert target {}: url {shown:?}: {e}", r.name)),
        }
        let min_severity = match &r.min_severity {
            None => Severity::Warning,
            Some(s) => Severity::parse(s).ok_or_else(|| {
                format!(
                    "alert target {}: min_severity {s:?} is not WARNING, ERROR or CRITICAL",
                    r.name
                )
            })?,
        };
        if let Some(k) = r.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(format!(
                "alert target {}: kind of anomaly {k:?} is not one of {KINDS:?}",
                r.name
            ));
        }
        let timeout_secs = r.timeout_secs.unwrap_or(10);
        if !(1..=300).contains(&timeout_secs) {
            return Err(format!(
                "alert target {}: timeout_secs must be between 1 and 300",
                r.name
            ));
        }
        Ok(Target {
            name: r.name,
            kind,
            url,
            min_severity,
            kinds: r.kinds,
            timeout_secs,
        })
    }
}

impl Target {
    /// Whether `a` goes to this target (severity routing and kinds).
    pub fn takes(&self, a: &crate::detect::Anomaly) -> bool {
        a.severity >= self.min_severity && (self.kinds.is_empty() || self.kinds.contains(&a.kind))
    }

    /// The URL notifications are POSTed to.
    pub fn post_url(&self) -> String {
        match self.kind {
            TargetKind::Alertmanager
                if !self.url.trim_end_matches('/').ends_with("/api/v2/alerts") =>
            {
                format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
            }
            _ => self.url.clone(),
        }
    }
}

impl AlertConfig {
    /// Checks across targets (each one was checked as it was read).
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for t in &self.targets {
            if !names.insert(&t.name) {
                return Err(format!("alert target name {:?} is used twice", t.name));
            }
        }
        if self.max_per_hour == 0 {
            return Err("alert.max_per_hour must be at least 1".into());
        }
        Ok(())
    }
}
