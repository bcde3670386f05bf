//! `infra-collector forward status` and `infra-collector forward-test`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;

use super::reader::Slice;
use super::stats::{self, SinkStats};
use super::{Batch, Context, SinkError, open_sink};
use crate::batch::{LogBatchBuilder, Row};
use crate::config::Config;

fn ago(secs: Option<u64>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs.map_or("never".into(), |t| {
        format!("{}s ago", now.saturating_sub(t))
    })
}

/// Each sink's cursor and lag (from the spool) and its counters (from the status file the
/// running collector writes every second).
pub fn status(config: &Config) -> Result<String> {
    let dir = config.spool_options().dir;
    let mut out = String::new();
    if config.forward.is_empty() {
        out.push_str("no [[forward]] sink is configured\n");
    }
    for s in &config.forward {
        let _ = writeln!(out, "sink {} ({:?})", s.name, s.kind());
        if s.fallback_only {
            let _ = writeln!(out, "  fallback only: sends what its primary passes on");
        } else {
            let lag = stats::lag(&dir, &s.name)?;
            match lag.cursor {
                Some((seq, rec, row)) => {
                    let _ = writeln!(out, "  cursor: segment {seq:016x} record {rec} row {row}");
                }
                None => {
                    let _ = writeln!(out, "  cursor: none yet (starts with what the spool holds)");
                }
            }
            let _ = writeln!(
                out,
                "  lag: {} sealed segment(s), {} rows, {} bytes, oldest {}",
                lag.segments,
                lag.rows,
                lag.bytes,
                lag.oldest_secs.map_or("-".into(), |s| format!("{s}s old"))
            );
        }
        let labels: Vec<String> = if s.fallback_only {
            (config.forward.iter())
                .filter(|p| p.fallback.as_ref() == Some(&s.name))
                .map(|p| stats::fallback_label(&s.name, &p.name))
                .collect()
        } else {
            vec![s.name.clone()]
        };
        for label in labels {
            if label != s.name {
                let primary = label.rsplit("via-").next().unwrap_or("");
                let _ = writeln!(out, "  as the fallback of {primary}:");
            }
            status_counters(&mut out, &stats::status_path(&dir, &label));
        }
    }
    Ok(out)
}

fn status_counters(out: &mut String, path: &std::path::Path) {
    match std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<stats::Status>(&b).ok())
    {
        Some(st) => {
            let _ = writeln!(
                out,
                "  since start: sent {} acknowledged {} (already there {}) retried {} \
                     dead-lettered {} truncated {} to fallback {} dropped {} segment(s) / {} bytes",
                st.sent,
                st.acked,
                st.duplicates,
                st.retried,
                st.dead_lettered,
                st.truncated,
                st.to_fallback,
                st.dropped_segments,
                st.dropped_bytes
            );
            let _ = writeln!(
                out,
                "  last success: {}; last error: {}{}",
                ago(st.last.success_at),
                st.last.error.as_deref().unwrap_or("none"),
                st.last
                    .error_at
                    .map_or(String::new(), |t| format!(" ({})", ago(Some(t))))
            );
            let _ = writeln!(out, "  status written {}", ago(Some(st.written_at)));
        }
        None => {
            let _ = writeln!(
                out,
                "  no counters: the collector has not run this sink yet"
            );
        }
    }
}

/// Sends one marked row to each sink (fallbacks included) and reports what each said;
/// the second value is whether all of them took it.
pub fn test(config: &Config) -> Result<(String, bool)> {
    let host = config.hostname();
    let nanos = crate::time::now_ns();
    let marker = format!("infralog forward-test {nanos:x} from {host}");
    let mut b = LogBatchBuilder::new(1);
    b.append(
        &Row {
            timestamp_ns: nanos,
            hostname: host.as_bytes(),
            source: infralog_schemas::source::APP,
            message: marker.as_bytes(),
            ..Row::default()
        },
        nanos,
        |w| w.put("forward_test", b"true"),
    );
    let batch = crate::archive::conform(&b.finish(), &infralog_schemas::logs_schema())?;
    let mut out = String::new();
    let mut all = true;
    let ctx = Context {
        spool_dir: config.spool_options().dir,
        state_dir: config.collector.state_dir.clone(),
        instance: format!("forward-test-{nanos:x}"),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    for s in &config.forward {
        let t = Instant::now();
        let stats = Arc::new(SinkStats::default());
        let result = open_sink(s, &ctx, stats.clone()).and_then(|mut sink| {
            let one = Batch {
                slices: vec![Slice {
                    seq: 0,
                    record: 0,
                    first_row: 0,
                    batch: batch.clone(),
                    rows: None,
                }],
                rows: 1,
                bytes: marker.len(),
            };
            sink.deliver(&one).map_err(|e| match e {
                SinkError::Unreachable(e) => e.context("unreachable"),
                SinkError::Failed(e) => e,
                SinkError::Stopped => anyhow::anyhow!("stopped"),
            })?;
            // A target without acknowledgements: the connection must stay up a moment.
            std::thread::sleep(sink.settle().min(std::time::Duration::from_millis(500)));
            anyhow::ensure!(sink.healthy(), "the connection closed after the write");
            Ok(())
        });
        let ms = t.elapsed().as_millis();
        match result {
            Ok(())
                if stats
                    .dead_lettered
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0 =>
            {
                all = false;
                let _ = writeln!(
                    out,
                    "{}: refused the row (see its dead-letter file) in {ms} ms",
                    s.name
                );
            }
            Ok(()) => {
                let _ = writeln!(out, "{}: ok in {ms} ms ({marker:?})", s.name);
            }
            Err(e) => {
                all = false;
                let _ = writeln!(out, "{}: FAILED after {ms} ms: {e:#}", s.name);
            }
        }
    }
    if config.forward.is_empty() {
        out.push_str("no [[forward]] sink is configured\n");
    }
    Ok((out, all))
}
