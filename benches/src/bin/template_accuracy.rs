//! Template mining accuracy and speed, ours and Drain3's, on the labelled Loghub 2k
//! samples: grouping accuracy (GA) per system with one configuration for all, and lines
//! per second of mining (masking + tree search; reading the CSV is not counted).
//!
//! `template_accuracy [--root DIR] [--runs N] [--no-drain3] [--show SYSTEM]`
//!
//! Drain3 (PyPI `drain3`, installed by `cargo xtask setup`) runs in the same invocation
//! through `benches/scripts/drain3_accuracy.py`, with its default configuration and the
//! masks of its example config. Build with `--release` for the speed figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use infralog_benches::loghub::{self, Dataset, grouping_accuracy};
use infralog_collector::detect::{Miner, MinerConfig};

#[derive(Parser)]
#[command(about = "Template mining accuracy and speed: ours and Drain3 on Loghub 2k")]
struct Args {
    #[arg(long)]
    root: Option<PathBuf>,
    /// Timed repetitions of our miner over every system (best one counts).
    #[arg(long, default_value_t = 5)]
    runs: u32,
    #[arg(long)]
    no_drain3: bool,
    /// Print the lines of this system that were grouped wrongly, by predicted template.
    #[arg(long)]
    show: Option<String>,
}

fn mine(d: &Dataset) -> (Vec<i64>, Miner) {
    let mut m = Miner::new(MinerConfig::default());
    let ids = d.contents.iter().map(|c| m.add(c.as_bytes(), 0)).collect();
    (ids, m)
}

struct Drain3 {
    ids: Vec<i64>,
    secs: f64,
}

fn run_drain3(root: &std::path::Path, sets: &[Dataset]) -> Result<HashMap<String, Drain3>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/drain3_accuracy.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(root)
        .args(sets.iter().map(|d| &d.name))
        .output()
        .context("cannot run python3")?;
    anyhow::ensure!(
        out.status.success(),
        "drain3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut res = HashMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let ids = v["ids"]
            .as_array()
            .context("ids")?
            .iter()
            .map(|x| x.as_i64().unwrap_or(-1))
            .collect();
        res.insert(
            v["name"].as_str().context("name")?.to_string(),
            Drain3 {
                ids,
                secs: v["secs"].as_f64().unwrap_or(f64::NAN),
            },
        );
    }
    Ok(res)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = args.root.clone().unwrap_or_else(loghub::default_root);
    let sets = loghub::load_all(&root)?;
    anyhow::ensure!(!sets.is_empty(), "no datasets under {}", root.display());
    let drain3 = if args.no_drain3 {
        HashMap::new()
    } else {
        run_drain3(&root, &sets)?
    };

    println!(
        "{:<12} {:>6} {:>9} {:>9} {:>10}",
        "system", "lines", "GA ours", "GA Drain3", "templates"
    );
    let (mut sum_ours, mut sum_d3) = (0.0, 0.0);
    for d in &sets {
        let (ids, m) = mine(d);
        let ga = grouping_accuracy(&ids, &d.events);
        sum_ours += ga;
        let d3 = drain3
            .get(&d.name)
            .map(|r| grouping_accuracy(&r.ids, &d.events));
        sum_d3 += d3.unwrap_or(0.0);
        println!(
            "{:<12} {:>6} {:>9.3} {:>9} {:>10}",
            d.name,
            d.contents.len(),
            ga,
            d3.map_or("-".into(), |g| format!("{g:.3}")),
            m.len()
        );
        if args.show.as_deref() == Some(&d.name) {
            show_errors(d, &ids, &m);
        }
    }
    let n = sets.len() as f64;
    println!(
        "{:<12} {:>6} {:>9.3} {:>9}",
        "mean",
        "",
        sum_ours / n,
        if drain3.is_empty() {
            "-".into()
        } else {
            format!("{:.3}", sum_d3 / n)
        }
    );

    // Speed: every system's lines, mined by a fresh miner per system, best of N runs.
    let lines: usize = sets.iter().map(|d| d.contents.len()).sum();
    let mut best = f64::INFINITY;
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        for d in &sets {
            std::hint::black_box(mine(d));
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "speed ours:   {:>12.0} lines/s ({lines} lines, best of {})",
        lines as f64 / best,
        args.runs
    );
    if !drain3.is_empty() {
        let secs: f64 = drain3.values().map(|r| r.secs).sum();
        println!("speed Drain3: {:>12.0} lines/s", lines as f64 / secs);
    }
    Ok(())
}

/// The lines of one system whose predicted group is not exactly their true group.
fn show_errors(d: &Dataset, ids: &[i64], m: &Miner) {
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for e in &d.events {
        *truth_size.entry(e).or_default() += 1;
    }
    let mut groups: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        groups.entry(*id).or_default().push(i);
    }
    let mut bad: Vec<_> = groups
        .iter()
        .filter(|(_, l)| {
            let t = &d.events[l[0]];
            !(l.iter().all(|&i| &d.events[i] == t) && truth_size[t.as_str()] == l.len())
        })
        .collect();
    bad.sort_by_key(|(id, _)| **id);
    for (id, l) in bad {
        let text = m.get(*id).map(|t| t.text()).unwrap_or_default();
        println!("  [{id}] {} lines: {text}", l.len());
        let mut seen = std::collections::HashSet::new();
        for &i in l {
            if seen.insert(&d.events[i]) && seen.len() <= 4 {
                println!(
                    "      {} ({}×{}): {}",
                    d.events[i],
                    truth_size[d.events[i].as_str()],
                    l.iter().filter(|&&j| d.events[j] == d.events[i]).count(),
                    d.contents[i]
                );
            }
        }
    }
}
