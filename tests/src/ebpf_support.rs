//! Helpers for the eBPF tests: a private mount namespace whose /dev/log is a test socket,
//! a capture process running inside it, and senders.
//!
//! The host's /dev is never touched: inside `unshare -m --propagation private`, a tmpfs is
//! mounted over /dev, every original entry is linked back from a recursive bind of the old
//! /dev, and an empty file /dev/log on that tmpfs gets the test socket bind-mounted over it.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bin;

/// How the capture runs: the real collector when its configuration knows
/// `[sources.ebpf]`, else the `ebpf_load capture` harness (the same sources and archive
/// writer, wired by `sources::ebpf::standalone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capturer {
    Collector,
    Harness,
}

/// Whether `infra-collector run` has an `[sources.ebpf]` section.
pub fn collector_has_ebpf() -> bool {
    Command::new(bin("infra-collector"))
        .arg("config")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("[sources.ebpf]"))
        .unwrap_or(false)
}

pub fn capturer() -> Capturer {
    if collector_has_ebpf() {
        Capturer::Collector
    } else {
        Capturer::Harness
    }
}

/// A test directory with a bound datagram socket (the test's "/dev/log") drained by a
/// thread.
pub struct DevLogScenario {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub received: Arc<AtomicU64>,
    /// Extra shell commands run in the namespace before the capture starts.
    pub setup: String,
    /// Extra arguments for `ebpf_load capture`.
    pub harness_args: String,
    /// Extra `[sources.ebpf]` lines for the collector.
    pub ebpf_config: String,
}

impl DevLogScenario {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // The capture and unprivileged senders run as other users.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("devlog.sock");
        let sink = UnixDatagram::bind(&socket).expect("bind test socket");
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let r = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while sink.recv(&mut buf).is_ok() {
                r.fetch_add(1, Ordering::Relaxed);
            }
        });
        DevLogScenario {
            dir,
            socket,
            received,
            setup: String::new(),
            harness_args: String::new(),
            ebpf_config: String::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn archive(&self) -> PathBuf {
        self.path().join("archive")
    }

    /// Runs `senders` (bash) in a private mount namespace with /dev/log bound to the test
    /// socket, while a capture runs there; returns the namespace script's output. The
    /// capture's stderr is in `capture.log`. Senders append `name pid comm uid` lines to
    /// `$T/senders`.
    pub fn run(&self, capturer: Capturer, senders: &str) -> Output {
        let t = self.path();
        let stop = match capturer {
            Capturer::Collector => "kill -TERM $cap",
            Capturer::Harness => "touch $T/stop",
        };
        let capture = match capturer {
            Capturer::Collector => {
                let cfg = t.join("collector.toml");
                std::fs::write(
                    &cfg,
                    format!(
                        "[collector]\nhostname = \"ebpf-test\"\nstate_dir = {:?}\n\
                         chunk_max_age_ms = 100\n\n[archive]\npath = {:?}\n\n\
                         [sources.kmsg]\nenabled = true\n\n[sources.ebpf]\nenabled = true\n\
                         devlog_paths = [\"/dev/log\"]\n{}\n\n[sources.journald]\nenabled = false\n\n\
                         [sources.file]\nenabled = false\n\n\
                         [sources.containers]\ndocker = false\ncri = false\n",
                        t.join("state").display().to_string(),
                        self.archive().display().to_string(),
                        self.ebpf_config
                    ),
                )
                .unwrap();
                format!(
                    "{} run --config {}",
                    bin("infra-collector").display(),
                    cfg.display()
                )
            }
            Capturer::Harness => format!(
                "{} capture --archive {} --state-dir {} --hostname ebpf-test --devlog /dev/log \
                 --kmsg --stop-file $T/stop {}",
                bin("ebpf_load").display(),
                self.archive().display(),
                t.join("state").display(),
                self.harness_args
            ),
        };
        let script = format!(
            r#"set -eu
T={t}
export T
mkdir -p $T/olddev
mount --rbind /dev $T/olddev
mount -t tmpfs -o mode=755 tmpfs /dev
for e in $T/olddev/* $T/olddev/.[!.]*; do
    if [ -e "$e" ] || [ -L "$e" ]; then ln -s "$e" "/dev/$(basename "$e")"; fi
done
rm -f /dev/log
touch /dev/log
mount --bind $T/devlog.sock /dev/log
: > $T/senders
{setup}
{capture} 2> $T/capture.log &
cap=$!
ready=0
for i in $(seq 1 1000); do
    if grep -q "eBPF " $T/capture.log 2>/dev/null; then ready=1; break; fi
    sleep 0.02
done
if [ $ready = 0 ]; then echo "capture did not start"; cat $T/capture.log; kill $cap; exit 1; fi
{senders}
sleep 1.5
{stop}
wait $cap || true
"#,
            t = t.display(),
            setup = self.setup,
        );
        std::fs::write(t.join("scenario.sh"), &script).unwrap();
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash"])
            .arg(t.join("scenario.sh"))
            .output()
            .expect("run unshare")
    }

    /// The capture's stderr.
    pub fn capture_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.path().join("capture.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// `(name, pid, comm, uid)` of each sender, from `$T/senders`.
    pub fn senders(&self) -> Vec<(String, i32, String, u32)> {
        std::fs::read_to_string(self.path().join("senders"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut p = l.split_whitespace();
                Some((
                    p.next()?.to_string(),
                    p.next()?.parse().ok()?,
                    p.next()?.to_string(),
                    p.next()?.parse().ok()?,
                ))
            })
            .collect()
    }
}

impl Default for DevLogScenario {
    fn default() -> Self {
        Self::new()
    }
}

/// The `key=value` counters of the `ebpf stats:` line in a log.
pub fn ebpf_stats(log: &str) -> Option<Vec<(String, u64)>> {
    let line = log.lines().rev().find(|l| l.contains("ebpf stats:"))?;
    let rest = &line[line.find("ebpf stats:")? + "ebpf stats:".len()..];
    Some(
        rest.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((
                    k.to_string(),
                    v.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok()?,
                ))
            })
            .collect(),
    )
}

/// A python3 interpreter with the standard library (for glibc `syslog(3)` and sockets).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}
