//! Alerts: anomalies become notifications through the configured targets — a generic
//! JSON webhook, a Slack-format webhook, Prometheus Alertmanager's `/api/v2/alerts` —
//! grouped per host and kind, deduplicated, rate-limited, routed by severity, retried
//! with backoff, and queued on disk so that none is lost across a restart or while a
//! target is down.
//!
//! - [`config`]: `[alert]` and `[[alert.targets]]`;
//! - [`group`]: grouping, deduplication, repeat interval, rate limit (pure logic);
//! - [`payload`]: each target's format (explanation, example line, context SQL);
//! - [`queue`]: the on-disk inbox, outbox and memory of what was notified;
//! - [`send`]: one HTTP delivery and its outcome;
//! - [`dispatch`]: the thread that ties them together, and `alert-test`.

pub mod config;
pub mod dispatch;
pub mod group;
pub mod payload;
pub mod queue;
pub mod send;

pub use config::{AlertConfig, Target, TargetKind};
pub use dispatch::Dispatcher;
