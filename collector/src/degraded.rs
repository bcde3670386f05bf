//! One log line when the collector enters a degraded mode and one when it leaves it,
//! instead of a line per failed attempt: the archive cannot be written or reached, the
//! spool directory cannot be written, a source stopped. (No eBPF is logged once at start by
//! the eBPF source, a full spool once by the spool writer.)

use std::collections::BTreeMap;

use crate::http::Observed;

#[derive(Default)]
pub struct DegradedLog {
    /// Active modes: what the line is about → the reason logged.
    active: BTreeMap<String, String>,
}

/// The mode a readiness reason is about: the text before its first `:`.
fn mode(reason: &str) -> &str {
    reason.split(':').next().unwrap_or(reason)
}

impl DegradedLog {
    pub fn check(&mut self, observed: &Observed) {
        let now: BTreeMap<String, String> = (observed.readiness().into_iter())
            .filter(|r| !r.starts_with("spool: full"))
            .map(|r| (mode(&r).to_string(), r))
            .collect();
        for (m, reason) in &now {
            if !self.active.contains_key(m) {
                tracing::warn!("degraded: {reason}");
            }
        }
        for m in self.active.keys() {
            if !now.contains_key(m) {
                tracing::info!("recovered: {m} is back to normal");
            }
        }
        self.active = now;
    }
}
