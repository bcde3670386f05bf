//! Helpers shared by the integration tests: finding the built binaries, running them, and
//! the rule for tests that need privileges.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod ebpf_support;
pub mod forward_support;
pub mod http_support;
pub mod incident;
pub mod journal_support;
pub mod net_support;
pub mod s3_support;

/// Directory holding the workspace's binaries (`target/<profile>`): the test executable
/// lives in `<that>/deps/`. `cargo xtask test` builds the binaries before the tests run.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("INFRALOG_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// Path of one of our binaries; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: build the workspace binaries first (cargo build --workspace --bins, \
         which `cargo xtask test` does)",
        p.display()
    );
    p
}

/// Root of the repository checkout.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `../shared/data/loghub-2k/<name>`.
pub fn loghub(name: &str) -> PathBuf {
    repo_root().join("../shared/data/loghub-2k").join(name)
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Where an import writes: an archive directory, or the archive (local or S3) a
/// configuration file names.
pub enum ImportTo<'a> {
    Archive(&'a Path),
    Config(&'a Path),
}

/// `infra-collector import --format rfc3164 --hostname <host>` of `file` (most tests use
/// loghub's Linux sample) into `to`, panicking when it fails.
pub fn import_rfc3164(host: &str, to: ImportTo<'_>, file: &Path) -> Output {
    let (flag, path) = match to {
        ImportTo::Archive(p) => ("--archive", p),
        ImportTo::Config(p) => ("--config", p),
    };
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--format", "rfc3164", "--hostname", host, flag])
            .arg(path)
            .arg(file),
    )
}

/// Runs `infra-query --archive <archive> --format csv -c <sql>` and returns the rows
/// (without the header), each split on commas.
pub fn query_csv(archive: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = run_ok(
        Command::new(bin("infra-query"))
            .arg("--archive")
            .arg(archive)
            .args(["--format", "csv", "-c", sql]),
    );
    let text = String::from_utf8(out.stdout).expect("query output is UTF-8");
    text.lines().skip(1).map(csv_fields).collect()
}

/// Set by `.ci/run` (CI runs as root on a kernel that allows our eBPF hooks): a test that
/// would skip for lack of privilege fails instead, so privileged tests never silently
/// vanish.
pub const REQUIRE_PRIVILEGED_ENV: &str = "INFRALOG_REQUIRE_PRIVILEGED";

/// Returns `true` when the test may go on; otherwise prints why it skips and returns
/// `false` — or panics when [`REQUIRE_PRIVILEGED_ENV`] is set.
pub fn privileged_or_skip(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    if std::env::var_os(REQUIRE_PRIVILEGED_ENV).is_some_and(|v| v == "1") {
        panic!("{test}: privileged test cannot run ({why}) but {REQUIRE_PRIVILEGED_ENV}=1");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// `Some(reason)` when this process is not root.
pub fn missing_root() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } != 0).then(|| "not running as root".to_string())
}

/// Splits one CSV record (RFC 4180: quoted fields, `""` for a quote inside one).
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Runs a Python snippet (DuckDB and pyarrow are installed by `cargo xtask setup`) and
/// returns its stdout.
pub fn python(script: &str) -> String {
    let out = run_ok(Command::new("python3").arg("-c").arg(script));
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

/// Writes a collector configuration that archives under `dir` and enables only the
/// sources named in `sources` (TOML snippets such as `[sources.kmsg]\nenabled = true`).
pub fn collector_config(dir: &Path, hostname: &str, sources: &str) -> PathBuf {
    let path = dir.join("collector.toml");
    // The file source and container logs are on by default: keep the host's log files out
    // of tests that did not ask for them.
    let mut sources = sources.to_string();
    if !sources.contains("[sources.file]") {
        sources.push_str("\n\n[sources.file]\nenabled = false");
    }
    if !sources.contains("[sources.containers]") {
        sources.push_str("\n\n[sources.containers]\ndocker = false\ncri = false");
    }
    let text = format!(
        "[collector]\nhostname = {hostname:?}\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
         [archive]\npath = {archive:?}\n\n{sources}\n{journald}",
        state = dir.join("state").display().to_string(),
        archive = dir.join("archive").display().to_string(),
        journald = journald_off_unless_named(&sources),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The journald source is on by default wherever a journal exists: a test that does not
/// name it turns it off, so that the host's journal does not end up in its archive.
pub fn journald_off_unless_named(sources: &str) -> &'static str {
    if sources.contains("[sources.journald]") {
        ""
    } else {
        "\n[sources.journald]\nenabled = false\n"
    }
}
