//! Running commands, finding the workspace, counting test results.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::setup::Report;

/// Where the workspace and its target directory are (`CARGO_TARGET_DIR` respected).
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
}

impl Workspace {
    pub fn load() -> Result<Workspace> {
        let out = Command::new(cargo_program())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            // `cargo run` sets CARGO_MANIFEST_DIR for the program too (xtask's own dir).
            .current_dir(
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from),
            )
            .stderr(Stdio::inherit())
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!("cargo metadata failed");
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
        let path = |key: &str| -> Result<PathBuf> {
            v[key]
                .as_str()
                .map(PathBuf::from)
                .with_context(|| format!("cargo metadata has no {key}"))
        };
        Ok(Workspace {
            root: path("workspace_root")?,
            target_dir: path("target_directory")?,
        })
    }
}

fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A `cargo` command with the directories setup found tools in (bpf-linker) put on PATH.
pub fn cargo(report: &Report) -> Command {
    let mut cmd = Command::new(cargo_program());
    // `cargo run` gave xtask CARGO_MANIFEST_DIR and CARGO_PKG_*: build scripts that watch
    // them (ring's does) would see a different value than in a plain `cargo build` and
    // rebuild half the tree each time one follows the other.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || matches!(
                &*k,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(&*k);
        }
    }
    if let Some(path) = report.path_with_tools() {
        cmd.env("PATH", path);
    }
    cmd
}

/// How a command line reads, for the log.
pub fn display(cmd: &Command) -> String {
    let mut s = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Prints the command, runs it with our stdout/stderr and no stdin.
pub fn run_step(cmd: &mut Command) -> Result<ExitStatus> {
    println!("==> {}", display(cmd));
    std::io::stdout().flush().ok();
    cmd.stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", display(cmd)))
}

/// Results summed over every `test result:` line of a `cargo test` run.
#[derive(Debug, Default)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    pub failures: Vec<String>,
}

impl TestCounts {
    /// Reads one line of libtest output.
    pub fn observe(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(['.', ';']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next())
                    && let Ok(n) = n.parse::<u64>()
                {
                    match what {
                        "passed" => self.passed += n,
                        "failed" => self.failed += n,
                        "ignored" => self.ignored += n,
                        _ => {}
                    }
                }
            }
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            self.failures.push(name.to_string());
        }
    }
}

/// Runs `cargo test`, echoing its stdout while counting results.
pub fn run_tests(cmd: &mut Command) -> Result<(ExitStatus, TestCounts)> {
    println!("==> {}", display(cmd));
    std::io::stdout().flush().ok();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", display(cmd)))?;
    let mut counts = TestCounts::default();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).split(b'\n') {
        let line = line?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        out.flush()?;
        counts.observe(&String::from_utf8_lossy(&line));
    }
    Ok((child.wait()?, counts))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `1.2 s`, `3m04s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// The first executable `name` in PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_lines() {
        let mut c = TestCounts::default();
        for l in [
            "test a::b ... ok",
            "test a::c ... FAILED",
            "test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.00s",
        ] {
            c.observe(l);
        }
        assert_eq!((c.passed, c.failed, c.ignored), (7, 1, 2));
        assert_eq!(c.failures, vec!["a::c".to_string()]);
    }
}
