//! `cargo xtask run` and `cargo xtask query`: build the one binary needed, run it from the
//! repository root, and tell a new user what is happening.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};

use crate::build::{COLLECTOR, QUERY};
use crate::setup::{self, BPF_LINKER_VERSION, Report};
use crate::util::Workspace;

/// The statement the run summary suggests: what was captured so far, per source.
pub const FIRST_QUERY: &str =
    "SELECT source, count(*) AS lines, max(timestamp) AS newest FROM logs GROUP BY source";

pub fn run(dry_run: bool, args: Vec<String>) -> Result<ExitCode> {
    if dry_run {
        let ws = Workspace::load()?;
        println!(
            "==> would install when missing: the nightly toolchain's rust-src and bpf-linker \
             {BPF_LINKER_VERSION} (the eBPF programs); nothing the tests alone use"
        );
        println!(
            "==> would build {}",
            COLLECTOR.plan(&Report::default(), &ws)
        );
        println!(
            "==> would run, in {}: {} run {}",
            ws.root.display(),
            COLLECTOR.path(&ws).display(),
            args.join(" ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let report = setup::run_for_collector()?;
    report.warn_if_failed();
    let ws = Workspace::load()?;
    let bin = COLLECTOR.build(&report, &ws)?;
    let capturing = capturing(&bin, &args, &ws.root);

    println!("==> {} run {}", bin.display(), args.join(" "));
    let mut child = Command::new(&bin)
        .arg("run")
        .args(&args)
        .current_dir(&ws.root)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    forward_signals_to(child.id());

    // The collector's log goes through as it is; its start-up lines say where the archive
    // is and when every source has started.
    let mut archive = None;
    let mut files = Vec::new();
    let mut summarised = false;
    let stderr = child.stderr.take().expect("piped stderr");
    let mut err = std::io::stderr();
    for line in BufReader::new(stderr).split(b'\n').map_while(|l| l.ok()) {
        let _ = err.write_all(&line);
        let _ = err.write_all(b"\n");
        let text = String::from_utf8_lossy(&line);
        if archive.is_none() && text.contains("infra-collector starting") {
            archive = field(&text, "archive");
        }
        if !summarised
            && text.contains(" tailing ")
            && let Some(path) = field(&text, "path")
        {
            files.push(path);
        }
        if !summarised && text.contains("infra-collector running") {
            summarised = true;
            print!(
                "{}",
                summary(child.id(), &capturing, &files, archive.as_deref(), &ws.root)
            );
            let _ = std::io::stdout().flush();
        }
    }
    Ok(exit_code(child.wait()?))
}

pub fn query(dry_run: bool, args: Vec<String>) -> Result<ExitCode> {
    let ws = Workspace::load()?;
    if dry_run {
        println!("==> would build {}", QUERY.plan(&Report::default(), &ws));
        println!(
            "==> would run, in {}: {} {}",
            ws.root.display(),
            QUERY.path(&ws).display(),
            args.join(" ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    // infra-query needs no tool of its own: no setup. Once built, cargo only checks it is
    // up to date (a second or two).
    let bin = QUERY.build(&Report::default(), &ws)?;
    use std::os::unix::process::CommandExt;
    let err = Command::new(&bin).args(&args).current_dir(&ws.root).exec();
    anyhow::bail!("cannot exec {}: {err}", bin.display())
}

/// What the collector will capture here, from `infra-collector probe` (same configuration):
/// the sources that would run and the eBPF hooks it would use.
fn capturing(bin: &Path, args: &[String], root: &Path) -> Vec<String> {
    let mut probe = Command::new(bin);
    probe.arg("probe").current_dir(root).stdin(Stdio::null());
    if let Some(config) = config_arg(args) {
        probe.args(["--config", config]);
    }
    match probe.output() {
        Ok(out) if out.status.success() => parse_probe(&String::from_utf8_lossy(&out.stdout)),
        Ok(out) => vec![format!(
            "(probe failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        )],
        Err(e) => vec![format!("(cannot run probe: {e})")],
    }
}

/// The `--config` given to `run`, if any.
fn config_arg(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--config=").or_else(|| {
            (a == "--config")
                .then(|| args.get(i + 1).map(String::as_str))
                .flatten()
        })
    })
}

/// The lines of a probe report a new user needs: sources that run, what eBPF adds, or why
/// eBPF is off.
fn parse_probe(report: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut section = "";
    for line in report.lines() {
        if !line.starts_with(' ') {
            section = line;
            if let Some(why) = line.strip_prefix("eBPF object: NOT built in ") {
                out.push(format!("no eBPF: not built in {why}"));
            }
            continue;
        }
        let item = line.trim();
        match section {
            "sources:" => {
                if let Some((name, why)) = item.split_once(": would run: ") {
                    out.push(format!("{name} ({why})"));
                }
            }
            // Capabilities kept are not something captured.
            "the collector will use:" if !item.starts_with("after attach") => {
                out.push(item.to_string())
            }
            _ => {}
        }
    }
    out
}

/// `key="value"` or `key=value` in a tracing line.
fn field(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?.to_string(),
        None => rest.split_whitespace().next()?.to_string(),
    })
}

fn summary(
    pid: u32,
    capturing: &[String],
    files: &[String],
    archive: Option<&str>,
    root: &Path,
) -> String {
    let mut s = format!("\n==> infra-collector is running (pid {pid}); Ctrl-C stops it\n");
    s.push_str("    capturing:\n");
    for c in capturing {
        s.push_str(&format!("      - {c}\n"));
    }
    if !files.is_empty() {
        s.push_str(&format!("      - log files: {}\n", files.join(", ")));
    }
    let archive = archive.unwrap_or("./data");
    s.push_str(&format!(
        "    archive:   {archive}  (Parquet, logs/hostname=<host>/log_date=<day>/; rows appear \
         there about 30 s after capture, when a spool segment is sealed)\n"
    ));
    let default_archive = root.join("data");
    let archive_arg = if Path::new(archive) == default_archive || archive == "./data" {
        String::new()
    } else {
        format!("--archive {archive} ")
    };
    s.push_str(&format!(
        "    query it:  cargo xtask query {archive_arg}-c \"{FIRST_QUERY}\"\n\n"
    ));
    s
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Ctrl-C reaches the collector from the terminal anyway; this keeps xtask alive to pass
/// on its exit status, and passes a SIGTERM sent to xtask alone on to the collector.
fn forward_signals_to(pid: u32) {
    CHILD.store(pid as i32, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only reads an atomic and calls kill.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
}

fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_report_becomes_what_is_captured() {
        let report = "sources:\n  kmsg: would run: /dev/kmsg is readable\n  journald: would not \
                      run: no journal\nkernel: 6.1\neBPF object: built in\nhooks:\n  \
                      tp_btf/console   attached\nthe collector will use:\n  kernel log: \
                      /dev/kmsg reader + caller pid from tp_btf/console\n  syslog: via \
                      raw_tp/sys_enter\n";
        assert_eq!(
            parse_probe(report),
            vec![
                "kmsg (/dev/kmsg is readable)",
                "kernel log: /dev/kmsg reader + caller pid from tp_btf/console",
                "syslog: via raw_tp/sys_enter",
            ]
        );
        let off = "sources:\neBPF object: NOT built in (bpf-linker not found)\n";
        assert_eq!(
            parse_probe(off),
            vec!["no eBPF: not built in (bpf-linker not found)"]
        );
    }

    #[test]
    fn archive_and_config_are_found() {
        let line = "2026-11-29T23:10:29Z  INFO infralog_collector::run: infra-collector \
                    starting archive=\"/srv/data\" hostname=\"vm\"";
        assert_eq!(field(line, "archive").as_deref(), Some("/srv/data"));
        let args: Vec<String> = ["--once", "--config", "a.toml"].map(String::from).into();
        assert_eq!(config_arg(&args), Some("a.toml"));
        let args: Vec<String> = ["--config=b.toml"].map(String::from).into();
        assert_eq!(config_arg(&args), Some("b.toml"));
        assert_eq!(config_arg(&[]), None);
    }
}
