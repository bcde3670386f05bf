//! `cargo xtask setup | run | test | bench`: the project's own commands, so that a fresh
//! machine needs nothing but `cargo xtask test` (and CI runs exactly that).

mod build;
mod dist;
mod launch;
mod setup;
mod util;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::util::{Workspace, cargo, fmt_duration, run_step};

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "infralog project tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: Debian packages the tests use, nightly rust-src,
    /// bpf-linker, Python duckdb/pyarrow. Fast when nothing is.
    Setup,
    /// Install the eBPF toolchain if missing, build the collector (release, that binary
    /// only), then run `infra-collector run [ARGS]` from the repository root (the default
    /// configuration archives under ./data) and say what it captures and how to query it.
    Run {
        /// Show what would be installed, built and run; do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Arguments for `infra-collector run` (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build infra-query (release, on first use) and run it from the repository root over
    /// ./data, e.g. `cargo xtask query -c "SELECT count(*) FROM logs"`.
    Query {
        /// Show what would be built and run; do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Arguments for `infra-query`, as they are (`--` first only for `--help` and
        /// `--dry-run`); default `--archive` is ./data.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Setup, build the binaries, run every test, clippy and rustfmt; non-zero on any failure.
    Test {
        /// Skip clippy and rustfmt.
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments for `cargo test` (after `--`), e.g. `-p infralog-tests`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The Debian package (binaries, systemd unit, /etc/infralog config, system user,
    /// state directory) from the two binaries built with the `dist` profile; prints its
    /// path.
    Dist {
        /// Pack the binaries in this directory instead of building them.
        #[arg(long)]
        bin_dir: Option<std::path::PathBuf>,
        /// Where to write the .deb (default: <target>/deb).
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
        /// No compression (quick, for tests).
        #[arg(long)]
        fast: bool,
    },
    /// End-to-end import benchmark with the DuckDB comparison, then the criterion benches.
    Bench {
        /// 200k-line corpus and criterion's --quick.
        #[arg(long)]
        quick: bool,
        /// Corpus size (default 3,000,000; 200,000 with --quick).
        #[arg(long)]
        lines: Option<u64>,
        /// Timed runs per contender; the best counts (default 3).
        #[arg(long)]
        runs: Option<u32>,
        /// Skip the DuckDB comparison.
        #[arg(long)]
        no_peer: bool,
        /// Skip the criterion benches.
        #[arg(long)]
        no_criterion: bool,
        /// Arguments for the criterion benches (after `--`), e.g. a benchmark name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        criterion_args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.task {
        Task::Setup => {
            let report = setup::run()?;
            Ok(if report.failed().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Task::Run { dry_run, args } => launch::run(dry_run, args),
        Task::Query { dry_run, args } => launch::query(dry_run, args),
        Task::Test { no_lint, args } => test(no_lint, args),
        Task::Dist {
            bin_dir,
            out_dir,
            fast,
        } => dist::dist(&dist::DistOptions {
            bin_dir,
            out_dir,
            fast,
        })
        .map(|_| ExitCode::SUCCESS),
        Task::Bench {
            quick,
            lines,
            runs,
            no_peer,
            no_criterion,
            criterion_args,
        } => bench(quick, lines, runs, no_peer, no_criterion, criterion_args),
    }
}

/// Outcome of one step of `cargo xtask test`.
struct Step {
    name: &'static str,
    ok: bool,
    took: Duration,
    note: String,
}

/// Runs one step of `cargo xtask test` in the workspace root and records how it went.
fn timed(
    steps: &mut Vec<Step>,
    ws: &Workspace,
    name: &'static str,
    cmd: &mut Command,
) -> Result<()> {
    let t = Instant::now();
    let ok = run_step(cmd.current_dir(&ws.root))?.success();
    steps.push(Step {
        name,
        ok,
        took: t.elapsed(),
        note: String::new(),
    });
    Ok(())
}

fn test(no_lint: bool, test_args: Vec<String>) -> Result<ExitCode> {
    let started = Instant::now();
    let report = setup::run()?;
    let ws = Workspace::load()?;
    let mut steps = Vec::new();

    // The integration tests run the binaries from the target dir: build them first.
    timed(
        &mut steps,
        &ws,
        "build",
        cargo(&report).args(["build", "--workspace", "--bins"]),
    )?;

    // stdout is read line by line to count results (and echoed as it comes).
    let mut cmd = cargo(&report);
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(&test_args)
        .current_dir(&ws.root)
        .env("INFRALOG_BIN_DIR", ws.target_dir.join("debug"));
    const PRIVILEGED: &str = "INFRALOG_REQUIRE_PRIVILEGED";
    if util::is_root() && std::env::var_os(PRIVILEGED).is_none() {
        cmd.env(PRIVILEGED, "1");
        println!("    running as root: {PRIVILEGED}=1, privileged tests fail rather than skip");
    }
    let t = Instant::now();
    let (status, counts) = util::run_tests(&mut cmd)?;
    let note = if !counts.failures.is_empty() {
        format!("failed: {}", counts.failures.join(", "))
    } else if !status.success() {
        "cargo test failed (a test target did not build, or a test binary crashed)".into()
    } else {
        String::new()
    };
    steps.push(Step {
        name: "test",
        ok: status.success() && counts.failed == 0,
        took: t.elapsed(),
        note,
    });

    if !no_lint {
        timed(
            &mut steps,
            &ws,
            "clippy",
            cargo(&report).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
        timed(
            &mut steps,
            &ws,
            "fmt",
            cargo(&report).args(["fmt", "--all", "--", "--check"]),
        )?;
    }

    println!();
    println!("==> summary ({})", fmt_duration(started.elapsed()));
    let failed_setup = report.failed();
    if failed_setup.is_empty() {
        println!("  {:<8} ok", "setup");
    } else {
        println!(
            "  {:<8} could not install {} (see above; the tests that need it fail)",
            "setup",
            failed_setup.join(", ")
        );
    }
    let mut all_ok = true;
    for s in &steps {
        all_ok &= s.ok;
        let verdict = if s.ok { "ok" } else { "FAILED" };
        let note = if s.note.is_empty() {
            String::new()
        } else {
            format!(": {}", s.note)
        };
        println!("  {:<8} {verdict} ({}){note}", s.name, fmt_duration(s.took));
    }
    println!(
        "tests: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.ignored
    );
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench(
    quick: bool,
    lines: Option<u64>,
    runs: Option<u32>,
    no_peer: bool,
    no_criterion: bool,
    criterion_args: Vec<String>,
) -> Result<ExitCode> {
    let report = setup::run()?;
    report.warn_if_failed();
    let ws = Workspace::load()?;
    if !run_step(
        cargo(&report)
            .args(["build", "--release", "--bins"])
            .current_dir(&ws.root),
    )?
    .success()
    {
        anyhow::bail!("cargo build --release --bins failed");
    }

    let mut e2e = std::process::Command::new(ws.target_dir.join("release/e2e"));
    e2e.current_dir(&ws.root);
    let lines = lines.unwrap_or(if quick { 200_000 } else { 3_000_000 });
    e2e.arg("--lines").arg(lines.to_string());
    e2e.arg("--runs").arg(runs.unwrap_or(3).to_string());
    if no_peer {
        e2e.arg("--no-peer");
    }
    let mut ok = run_step(&mut e2e)?.success();

    if !no_criterion {
        let mut cmd = cargo(&report);
        // `--bench '*'`: the bench targets only, not the lib/bin unit tests (whose
        // harness does not take criterion's flags).
        cmd.args(["bench", "-p", "infralog-benches", "--bench", "*"])
            .current_dir(&ws.root);
        if quick || !criterion_args.is_empty() {
            cmd.arg("--");
        }
        if quick {
            cmd.arg("--quick");
        }
        cmd.args(&criterion_args);
        ok &= run_step(&mut cmd)?.success();
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
