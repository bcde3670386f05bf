//! eBPF capture end to end (root): in a private mount namespace whose /dev/log is a test
//! socket (the host's /dev/log is never touched), real clients send syslog messages —
//! util-linux `logger`, glibc `syslog(3)` from Python, connect+send, unconnected sendto,
//! writev — and a shell writes to /dev/kmsg. Each line must be archived exactly once with
//! the pid, uid and comm the kernel knows, and the drop counters must stay at zero. A
//! spoofing sender is archived with its real identity and the mismatch flag. Without
//! privileges the capture starts, says eBPF is unavailable, and exits cleanly.

use std::collections::HashMap;
use std::process::Command;

use infralog_tests::ebpf_support::{
    Capturer, DevLogScenario, capturer, collector_has_ebpf, ebpf_stats, python,
};
use infralog_tests::{bin, missing_root, privileged_or_skip, query_csv};

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{:x}", std::process::id(), t % 0xffff_ffff)
}

fn assert_ran(s: &DevLogScenario, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "namespace script failed: {}\nstdout:\n{}\nstderr:\n{}\ncapture log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.capture_log()
    );
}

/// The counters of the collector's last `ebpf stats:` line, by name.
fn final_stats(log: &str) -> HashMap<String, u64> {
    ebpf_stats(log)
        .unwrap_or_else(|| panic!("no `ebpf stats:` line in\n{log}"))
        .into_iter()
        .collect()
}

fn assert_no_drops(s: &DevLogScenario) {
    let log = s.capture_log();
    let stats = final_stats(&log);
    assert_eq!(stats.get("dropped"), Some(&0), "{log}");
    assert_eq!(stats.get("faulted"), Some(&0), "{log}");
    assert!(stats.get("sent").copied().unwrap_or(0) > 0, "{log}");
}

/// `message, process_id, uid, process_name, source` of the rows whose message contains
/// `marker`.
fn rows_with(s: &DevLogScenario, marker: &str, extra_cols: &str) -> Vec<Vec<String>> {
    query_csv(
        &s.archive(),
        &format!(
            "SELECT message, process_id, uid, process_name, source{extra_cols} FROM logs \
             WHERE message LIKE '%{marker}%' ORDER BY message"
        ),
    )
}

#[test]
fn syslog_clients_and_kmsg_are_archived_once_with_kernel_identity() {
    if !privileged_or_skip(
        "syslog_clients_and_kmsg_are_archived_once_with_kernel_identity",
        missing_root(),
    ) {
        return;
    }
    let s = DevLogScenario::new();
    let m = format!("ebpf-e2e-{}", nonce());
    let py = python();
    let senders = format!(
        r#"
logger -t loggertag "{m} via-logger" &
echo "logger $! logger 0" >> $T/senders
wait $!
{py} - <<'PY' >> $T/senders
import os, syslog
print("glibc", os.getpid(), open("/proc/self/comm").read().strip(), os.getuid(), flush=True)
syslog.openlog("pyglibc", syslog.LOG_PID)
syslog.syslog(syslog.LOG_WARNING, "{m} via-glibc-syslog")
PY
{py} - <<'PY' >> $T/senders
import os, socket
print("sockets", os.getpid(), open("/proc/self/comm").read().strip(), os.getuid(), flush=True)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.connect("/dev/log")
c.send(b"<14>Nov 22 10:00:00 sockapp: {m} via-connect-send")
os.writev(c.fileno(), [b"<14>Nov 22 10:00:00 sockapp: {m} ", b"via-writev"])
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
u.sendto(b"<14>Nov 22 10:00:00 sockapp: {m} via-sendto", "/dev/log")
PY
sh -c 'read c < /proc/$$/comm; echo "kmsg $$ $c $(id -u)" >> $T/senders; echo "<12>{m} via-dev-kmsg" > /dev/kmsg'
"#
    );
    let cap = capturer();
    let out = s.run(cap, &senders);
    assert_ran(&s, &out);
    let who = s.senders();
    assert_eq!(who.len(), 4, "{who:?}");
    let sender = |name: &str| who.iter().find(|w| w.0 == name).unwrap().clone();

    let rows = rows_with(&s, &m, "");
    let by_text = |suffix: &str| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|r| r[0].ends_with(suffix))
            .cloned()
            .collect()
    };
    for (suffix, name, source) in [
        ("via-logger", "logger", "syslog"),
        ("via-glibc-syslog", "glibc", "syslog"),
        ("via-connect-send", "sockets", "syslog"),
        ("via-writev", "sockets", "syslog"),
        ("via-sendto", "sockets", "syslog"),
        ("via-dev-kmsg", "kmsg", "kmsg"),
    ] {
        let (_, pid, comm, uid) = sender(name);
        let got = by_text(suffix);
        assert_eq!(
            got,
            vec![vec![
                format!("{m} {suffix}"),
                pid.to_string(),
                uid.to_string(),
                comm.clone(),
                source.to_string()
            ]],
            "{suffix}: expected exactly one row from {name} (pid {pid}, comm {comm}); all rows: \
             {rows:#?}\ncapture log:\n{}",
            s.capture_log()
        );
    }
    // What the senders claimed is kept beside the kernel's identity.
    let claims = query_csv(
        &s.archive(),
        &format!(
            "SELECT extra['claimed_tag'], extra['claimed_pid'], \
             coalesce(extra['identity_mismatch'], 'false') FROM logs \
             WHERE message = '{m} via-glibc-syslog'"
        ),
    );
    let glibc_pid = sender("glibc").1;
    assert_eq!(
        claims,
        vec![vec![
            "pyglibc".to_string(),
            glibc_pid.to_string(),
            "false".to_string()
        ]]
    );
    assert_no_drops(&s);
    eprintln!("captured with {cap:?}");
}

#[test]
fn spoofed_tag_and_pid_are_archived_with_the_real_identity_and_flagged() {
    if !privileged_or_skip(
        "spoofed_tag_and_pid_are_archived_with_the_real_identity_and_flagged",
        missing_root(),
    ) {
        return;
    }
    let s = DevLogScenario::new();
    let m = format!("ebpf-spoof-{}", nonce());
    let py = python();
    // An unprivileged program named `evil` (python3 run through a symlink, so that its
    // comm is not an interpreter's) pretends to be sshd (pid 1) reporting a root login.
    let senders = format!(
        r#"
ln -s {py} $T/evil
setpriv --reuid=65534 --regid=65534 --clear-groups $T/evil - <<'PY' >> $T/senders
import os, socket
print("spoofer", os.getpid(), open("/proc/self/comm").read().strip(), os.getuid(), flush=True)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.connect("/dev/log")
c.send(b"<38>Nov 22 10:00:00 sshd[1]: {m} Accepted publickey for root")
PY
"#
    );
    let out = s.run(capturer(), &senders);
    assert_ran(&s, &out);
    let (_, pid, comm, uid) = s.senders().into_iter().next().expect("spoofer ran");
    assert_eq!(uid, 65534);
    assert_eq!(comm, "evil");
    let rows = rows_with(
        &s,
        &m,
        ", extra['claimed_tag'], extra['claimed_pid'], extra['identity_mismatch'], \
         extra['identity_mismatch_reason'], facility, severity",
    );
    assert_eq!(
        rows,
        vec![vec![
            format!("{m} Accepted publickey for root"),
            pid.to_string(),
            "65534".to_string(),
            comm,
            "syslog".to_string(),
            "sshd".to_string(),
            "1".to_string(),
            "true".to_string(),
            "pid,tag".to_string(),
            "auth".to_string(),
            "INFO".to_string(),
        ]],
        "capture log:\n{}",
        s.capture_log()
    );
    assert_no_drops(&s);
}

#[test]
fn without_privileges_the_capture_says_ebpf_is_unavailable_and_goes_on() {
    // Needs root only to become another user.
    if !privileged_or_skip(
        "without_privileges_the_capture_says_ebpf_is_unavailable_and_goes_on",
        missing_root(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let nobody = |cmd: &mut Command| -> std::process::Output {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c.output().expect("setpriv")
    };

    // The capture pipeline on its own (ebpf + kmsg join + archive): starts, says why eBPF
    // is off in one line, and exits cleanly when told to.
    let stop = dir.path().join("stop");
    std::fs::write(&stop, b"").unwrap();
    let out = nobody(
        Command::new(bin("ebpf_load"))
            .arg("capture")
            .arg("--archive")
            .arg(dir.path().join("archive"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--stop-file")
            .arg(&stop),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("eBPF unavailable"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line saying eBPF is unavailable:\n{err}"
    );
    assert!(lines[0].contains("userspace sources only"), "{err}");

    // The collector itself, once it carries [sources.ebpf].
    if collector_has_ebpf() {
        let cfg = dir.path().join("collector.toml");
        std::fs::write(
            &cfg,
            format!(
                "[collector]\nhostname = \"unpriv\"\nstate_dir = {:?}\n\n[archive]\npath = {:?}\n\n\
                 [sources.kmsg]\nenabled = true\n\n[sources.ebpf]\nenabled = true\n\n\
                 [sources.journald]\nenabled = false\n",
                dir.path().join("cstate").display().to_string(),
                dir.path().join("carchive").display().to_string()
            ),
        )
        .unwrap();
        let out = nobody(
            Command::new(bin("infra-collector"))
                .args(["run", "--once", "--config"])
                .arg(&cfg),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let lines = err
            .lines()
            .filter(|l| l.contains("eBPF unavailable"))
            .count();
        assert_eq!(lines, 1, "{err}");
    }
}

/// The fallback chain is visible: `ebpf_load`'s status line names the hooks in use, and
/// on this kernel that is the raw tracepoint pair (fentry/tp_btf are refused here).
#[test]
fn capture_reports_the_hooks_it_attached() {
    if !privileged_or_skip("capture_reports_the_hooks_it_attached", missing_root()) {
        return;
    }
    let s = DevLogScenario::new();
    let out = s.run(Capturer::Harness, "true");
    assert_ran(&s, &out);
    let log = s.capture_log();
    assert!(log.contains("eBPF capture: kmsg via "), "{log}");
    assert!(log.contains(", syslog via "), "{log}");
    assert!(
        log.contains(
            "capabilities kept after attach: CAP_DAC_READ_SEARCH,CAP_NET_BIND_SERVICE,CAP_SYSLOG"
        ) || log.contains("capabilities kept after attach: CAP_DAC_READ_SEARCH,CAP_SYSLOG"),
        "{log}"
    );
    let _ = python();
}

/// Down the fallback chain: with the BTF and raw console hooks skipped, kernel log
/// attribution comes from the classic `printk/console` tracepoint (tracefs mounted in the
/// test's own mount namespace).
#[test]
fn console_tracepoint_fallback_attributes_kmsg_lines() {
    if !privileged_or_skip(
        "console_tracepoint_fallback_attributes_kmsg_lines",
        missing_root(),
    ) {
        return;
    }
    let mut s = DevLogScenario::new();
    s.setup =
        "mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing".into();
    s.harness_args = "--skip-hook tp_btf/console --skip-hook raw_tp/console".into();
    let m = format!("ebpf-tp-{}", nonce());
    let senders = format!(
        r#"sh -c 'read c < /proc/$$/comm; echo "kmsg $$ $c $(id -u)" >> $T/senders; echo "<12>{m}" > /dev/kmsg'"#
    );
    let out = s.run(Capturer::Harness, &senders);
    assert_ran(&s, &out);
    let log = s.capture_log();
    assert!(log.contains("kmsg via tracepoint/printk/console"), "{log}");
    let (_, pid, comm, uid) = s.senders().into_iter().next().unwrap();
    let rows = rows_with(&s, &m, "");
    assert_eq!(
        rows,
        vec![vec![
            m.clone(),
            pid.to_string(),
            uid.to_string(),
            comm,
            "kmsg".to_string()
        ]],
        "{log}"
    );
    assert_no_drops(&s);
}

/// Runs a sender that writes to /dev/log from an unmapped buffer (the syscall fails with
/// EFAULT, the program cannot read it either), then a good line, with the collector's log
/// filter set by `env` (shell `export`/`unset` lines). Returns (capture log, sender pid).
fn unreadable_buffer_scenario(env: &str, marker: &str) -> (DevLogScenario, String, i32) {
    let mut s = DevLogScenario::new();
    s.setup = env.to_string();
    let py = python();
    let senders = format!(
        r#"
{py} - <<'PY' >> $T/senders
import ctypes, errno, os, socket
print("faulter", os.getpid(), open("/proc/self/comm").read().strip(), os.getuid(), flush=True)
libc = ctypes.CDLL(None, use_errno=True)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.connect("/dev/log")
# Address 8 is never mapped: write(2) fails with EFAULT.
r = libc.write(c.fileno(), ctypes.c_void_p(8), ctypes.c_size_t(64))
assert r == -1 and ctypes.get_errno() == errno.EFAULT, (r, ctypes.get_errno())
c.send(b"<13>Dec  7 23:00:00 faulter: {marker} after the fault")
PY
"#
    );
    let out = s.run(Capturer::Collector, &senders);
    assert_ran(&s, &out);
    let log = s.capture_log();
    let (_, pid, _, _) = s.senders().into_iter().next().expect("sender ran");
    let rows = rows_with(&s, marker, "");
    assert_eq!(rows.len(), 1, "the good line is archived once\n{log}");
    let faulted = final_stats(&log).get("faulted").copied();
    assert_eq!(faulted, Some(1), "the unreadable buffer is counted\n{log}");
    (s, log, pid)
}

#[test]
fn an_unreadable_syslog_buffer_is_reported_by_the_program_at_debug_level_only() {
    if !privileged_or_skip(
        "an_unreadable_syslog_buffer_is_reported_by_the_program_at_debug_level_only",
        missing_root(),
    ) {
        return;
    }
    assert!(
        collector_has_ebpf(),
        "infra-collector has no [sources.ebpf]"
    );
    let m = format!("ebpf-diag-{}", nonce());
    let (_s, log, pid) =
        unreadable_buffer_scenario("unset INFRALOG_LOG\nexport RUST_LOG=debug", &m);
    let want = format!("syslog send by pid {pid}: message buffer unreadable");
    let line = log
        .lines()
        .find(|l| l.contains(&want))
        .unwrap_or_else(|| panic!("no eBPF diagnostic {want:?} at RUST_LOG=debug in\n{log}"));
    eprintln!("diagnostic: {line}");
    assert!(line.contains("DEBUG"), "{line}");
    assert!(
        line.contains("collector_ebpf"),
        "target is the eBPF crate: {line}"
    );
    assert!(!log.contains("eBPF diagnostics unavailable"), "{log}");

    let m = format!("ebpf-diag-quiet-{}", nonce());
    let (_s, log, _) = unreadable_buffer_scenario("unset INFRALOG_LOG RUST_LOG", &m);
    assert!(
        !log.contains("unreadable"),
        "eBPF diagnostics shown at the default level:\n{log}"
    );
}

/// The ring buffer filled for real: the collector is stopped (SIGSTOP) while a client
/// sends a thousand datagrams into a one-page ring. Nearly all are dropped and counted;
/// the program's "ring buffer full" diagnostic appears, but rate-limited (one line per
/// second per CPU), not once per drop.
#[test]
fn a_full_ring_buffer_is_reported_rarely_and_counted_exactly() {
    if !privileged_or_skip(
        "a_full_ring_buffer_is_reported_rarely_and_counted_exactly",
        missing_root(),
    ) {
        return;
    }
    assert!(
        collector_has_ebpf(),
        "infra-collector has no [sources.ebpf]"
    );
    let mut s = DevLogScenario::new();
    s.setup = "unset INFRALOG_LOG\nexport RUST_LOG=debug".into();
    s.ebpf_config = "ringbuf_bytes = 4096".into();
    let py = python();
    let senders = format!(
        r#"
kill -STOP $cap
{py} - <<'PY' >> $T/senders
import os, socket
print("flooder", os.getpid(), open("/proc/self/comm").read().strip(), os.getuid(), flush=True)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.connect("/dev/log")
for i in range(1000):
    c.send(b"<13>Dec  7 23:00:00 flooder: " + str(i).encode() + b" " + b"x" * 1000)
PY
kill -CONT $cap
"#
    );
    let out = s.run(Capturer::Collector, &senders);
    assert_ran(&s, &out);
    let log = s.capture_log();
    let dropped = final_stats(&log).get("dropped").copied().unwrap_or(0);
    assert!(dropped >= 900, "{log}");
    let full_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ring buffer full"))
        .collect();
    for l in &full_lines {
        eprintln!("diagnostic: {l}");
    }
    eprintln!("dropped: {dropped}");
    let full = full_lines.len();
    assert!(
        full >= 1,
        "no ring-full diagnostic for {dropped} drops\n{log}"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The flood lasts well under two seconds: at most two lines per CPU.
    assert!(
        full <= 2 * cpus,
        "{full} ring-full lines for {dropped} drops on {cpus} CPUs: not rate-limited"
    );
}
