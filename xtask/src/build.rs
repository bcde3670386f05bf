//! Building one release binary for `cargo xtask run` / `query`: only that binary's package
//! (never `--bins` of the workspace, which would compile DataFusion for the collector), with
//! a progress display and, on the first build, the wait to expect.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::setup::Report;
use crate::util::{Workspace, cargo, display, fmt_duration};

/// One binary `cargo xtask` builds and runs.
#[derive(Clone, Copy)]
pub struct Binary {
    pub package: &'static str,
    pub bin: &'static str,
    /// A first release build of it on this project's idle 2-core machine, rounded up
    /// (BENCHMARKS.md, "The first hour": 5m09s and 17m36s; a busy machine takes up to 3×).
    pub first_build_2_cores: Duration,
}

pub const COLLECTOR: Binary = Binary {
    package: "infralog-collector",
    bin: "infra-collector",
    first_build_2_cores: Duration::from_secs(6 * 60),
};

pub const QUERY: Binary = Binary {
    package: "infralog-query",
    bin: "infra-query",
    first_build_2_cores: Duration::from_secs(18 * 60),
};

impl Binary {
    pub fn path(&self, ws: &Workspace) -> PathBuf {
        ws.target_dir.join("release").join(self.bin)
    }

    /// `cargo build --release -p <package> --bin <bin>`, reporting on stdout as JSON.
    pub fn command(&self, report: &Report, ws: &Workspace) -> Command {
        let mut cmd = cargo(report);
        cmd.args(["build", "--release", "-p", self.package, "--bin", self.bin])
            .args(["--message-format", "json-render-diagnostics"])
            .current_dir(&ws.root);
        cmd
    }

    /// The wait to expect for a first build here, scaled from the 2-core measurement.
    pub fn expected_first_build(&self) -> Duration {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        self.first_build_2_cores * 2 / cores.clamp(1, 64) as u32
    }

    /// What a first build will do, for `--dry-run` and the line before the build.
    pub fn plan(&self, report: &Report, ws: &Workspace) -> String {
        let units = match units(ws, self) {
            Ok(n) => format!("{n} crates and build scripts"),
            Err(e) => format!("crates unknown: {e:#}"),
        };
        let state = if self.path(ws).exists() {
            "already built: cargo rebuilds only what changed (seconds)".to_string()
        } else {
            format!(
                "first build: about {} on this machine ({} cores), then seconds",
                minutes(self.expected_first_build()),
                std::thread::available_parallelism().map_or(0, |n| n.get())
            )
        };
        format!(
            "{}: {}\n    {units}; {state}",
            self.bin,
            display(&self.command(report, ws))
        )
    }

    /// Builds the binary, showing progress; returns its path.
    pub fn build(&self, report: &Report, ws: &Workspace) -> Result<PathBuf> {
        println!("==> {}", self.plan(report, ws));
        let total = units(ws, self).ok();
        let started = Instant::now();
        let mut cmd = self.command(report, ws);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", display(&cmd)))?;
        let progress = Arc::new(Mutex::new(Progress::new(total)));

        // cargo's own lines: its per-crate status is replaced by the progress display, the
        // rest (warnings such as "eBPF programs not built", errors) goes through.
        let stderr = child.stderr.take().expect("piped stderr");
        let p = progress.clone();
        let relay = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let word = line.trim_start().split(' ').next().unwrap_or("");
                if matches!(
                    word,
                    "Compiling" | "Fresh" | "Running" | "Finished" | "Blocking"
                ) {
                    continue;
                }
                p.lock().unwrap().message(&line);
            }
        });
        // One crate (parquet, the collector) can take minutes: keep the clock moving.
        let building = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (p, b) = (progress.clone(), building.clone());
        let ticker = std::thread::spawn(move || {
            while b.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                p.lock().unwrap().tick(started.elapsed());
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact" {
                let name = msg["target"]["name"].as_str().unwrap_or("?");
                let kind = &msg["target"]["kind"][0];
                let what = if kind == "custom-build" {
                    // "path+file:///x/collector#infralog-collector@0.1.0", "...#0.1.0"
                    let id = msg["package_id"].as_str().unwrap_or("");
                    let (path, tail) = id.rsplit_once('#').unwrap_or((id, ""));
                    let pkg = match tail.split_once('@') {
                        Some((pkg, _)) => pkg,
                        None => path.rsplit('/').next().unwrap_or(name),
                    };
                    format!("{pkg} (build script)")
                } else {
                    name.to_string()
                };
                progress.lock().unwrap().done(&what, started.elapsed());
            }
        }
        let status = child.wait()?;
        let _ = relay.join();
        building.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = ticker.join();
        progress.lock().unwrap().finish();
        if !status.success() {
            bail!("{} failed", display(&cmd));
        }
        println!(
            "==> {} built in {}",
            self.bin,
            fmt_duration(started.elapsed())
        );
        Ok(self.path(ws))
    }
}

fn minutes(d: Duration) -> String {
    let m = d.as_secs().div_ceil(60);
    if m <= 1 {
        "a minute".into()
    } else {
        format!("{m} minutes")
    }
}

/// Progress on stdout: one line redrawn in place on a terminal, a line per tenth otherwise
/// (CI logs, pipes).
struct Progress {
    total: Option<usize>,
    done: usize,
    tty: bool,
    drawn: bool,
    last_tenth: usize,
    last_minute: u64,
    last: String,
}

impl Progress {
    fn new(total: Option<usize>) -> Self {
        Self {
            total,
            done: 0,
            tty: std::io::stdout().is_terminal(),
            drawn: false,
            last_tenth: 0,
            last_minute: 0,
            last: String::new(),
        }
    }

    fn done(&mut self, what: &str, elapsed: Duration) {
        self.done += 1;
        self.last = what.to_string();
        self.draw(elapsed, false);
    }

    /// Every second: on a terminal the elapsed time moves; in a log, a line a minute
    /// while nothing else is said.
    fn tick(&mut self, elapsed: Duration) {
        if self.done == 0 {
            return;
        }
        let minute = elapsed.as_secs() / 60;
        let quiet_minute = !self.tty && minute > self.last_minute;
        if self.tty || quiet_minute {
            self.draw(elapsed, quiet_minute);
        }
    }

    fn draw(&mut self, elapsed: Duration, force: bool) {
        let what = self.last.clone();
        let (count, tenth) = match self.total {
            // Our count of units is an estimate (features of other workspace members are
            // unified into it): never show more than 99 % before cargo says it is done.
            Some(t) if t > 0 => {
                let pct = (self.done * 100 / t).min(99);
                (format!("{pct:>2}% {}/{t}", self.done), pct / 10)
            }
            _ => (format!("{}", self.done), self.done / 25),
        };
        let line = format!(
            "    building: {count} crates, {} elapsed, last done: {what}",
            fmt_duration(elapsed)
        );
        let mut out = std::io::stdout();
        if self.tty {
            // \r and "erase line": redraw in place.
            let _ = write!(out, "\r\x1b[K{line}");
            self.drawn = true;
        } else if tenth > self.last_tenth || force {
            self.last_tenth = self.last_tenth.max(tenth);
            self.last_minute = elapsed.as_secs() / 60;
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    fn message(&mut self, line: &str) {
        self.clear();
        eprintln!("{line}");
    }

    fn clear(&mut self) {
        if self.drawn {
            print!("\r\x1b[K");
            let _ = std::io::stdout().flush();
            self.drawn = false;
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            println!();
            self.drawn = false;
        }
    }
}

/// How many crates and build scripts cargo compiles for `b` from nothing: its normal and
/// build dependencies for this host, from `cargo metadata`.
pub fn units(ws: &Workspace, b: &Binary) -> Result<usize> {
    let host = host_triple()?;
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &host,
        ])
        .current_dir(&ws.root)
        .stderr(Stdio::null())
        .output()
        .context("cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages: HashMap<&str, &serde_json::Value> = v["packages"]
        .as_array()
        .context("no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: HashMap<&str, &serde_json::Value> = v["resolve"]["nodes"]
        .as_array()
        .context("no resolve")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = packages
        .values()
        .find(|p| p["name"] == b.package)
        .and_then(|p| p["id"].as_str())
        .with_context(|| format!("no package {}", b.package))?;
    let mut seen = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let wanted = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if let Some(pkg) = dep["pkg"].as_str()
                && wanted
                && seen.insert(pkg)
            {
                stack.push(pkg);
            }
        }
    }
    let mut units = 0;
    for id in &seen {
        let targets = packages
            .get(id)
            .and_then(|p| p["targets"].as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let has = |kind: &str| {
            targets.iter().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == kind))
            })
        };
        // The library (or proc macro), and the build script when there is one; the root's
        // binary besides.
        units += 1 + usize::from(has("custom-build")) + usize::from(*id == root);
    }
    Ok(units)
}

fn host_triple() -> Result<String> {
    let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-vV")
        .output()
        .context("rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}
