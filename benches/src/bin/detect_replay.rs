//! Detection quality on the replay (see `infralog_benches::replay`): recall per fault
//! kind, precision, anomalies per hour on a clean replay, latency, and what was raised.
//!
//! `detect_replay [--root DIR] [--seed N] [--hosts N] [--days N] [--show]`

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use infralog_benches::loghub;
use infralog_benches::replay::{self, FaultKind, ReplayOptions};
use infralog_collector::detect::DetectorConfig;

#[derive(Parser)]
#[command(about = "Anomaly detection on a replay of Loghub 2k: recall, precision, noise")]
struct Args {
    #[arg(long)]
    root: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    #[arg(long, default_value_t = 2)]
    days: i64,
    /// Print every anomaly raised after the warm-up day.
    #[arg(long)]
    show: bool,
    /// Replay each system's lines in their order instead of at random.
    #[arg(long)]
    ordered: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let sets = loghub::load_all(&args.root.unwrap_or_else(loghub::default_root))?;
    let opts = ReplayOptions {
        hosts: args.hosts,
        days: args.days,
        seed: args.seed,
        faults: 20 * (args.days as usize - 1).max(1) * 2,
        ordered: args.ordered,
        ..Default::default()
    };
    for (name, o) in [
        ("faulty", opts.clone()),
        (
            "clean",
            ReplayOptions {
                faults: 0,
                ..opts.clone()
            },
        ),
    ] {
        let s = replay::run(&sets, &o, DetectorConfig::default());
        println!(
            "{name}: {} lines in {:.2}s; {} anomalies after warm-up ({:.2}/h), precision {:.3}",
            s.lines,
            s.elapsed.as_secs_f64(),
            s.raised,
            s.per_hour(),
            s.precision()
        );
        for k in FaultKind::ALL {
            if let Some((_, found, total)) = s.faults.iter().find(|f| f.0 == k) {
                println!("  {k:?}: {found}/{total} recall {:.3}", s.recall(k));
            }
        }
        if !s.faults.is_empty() {
            println!(
                "  latency median {:.0}s, max {:.0}s",
                s.latency_median_s, s.latency_max_s
            );
        }
        let mut kinds: Vec<_> = s.per_kind_raised.iter().collect();
        kinds.sort();
        println!("  raised by kind: {kinds:?}");
        if args.show {
            for a in &s.anomalies {
                println!(
                    "  {} {} {} {}",
                    infralog_collector::detect::anomaly::rfc3339(a.detected_at_us),
                    a.kind,
                    a.hostname,
                    a.explanation
                );
            }
        }
    }
    Ok(())
}
