//! The journald source on real journal files written by `systemd-journal-remote`, driven
//! through the real `infra-collector` binary and read back with `infra-query`: every field
//! mapped, binary messages, a live tail through growth, rotation and vacuum, restarts that
//! neither lose nor double an entry, a cursor from an earlier boot, two namespaces.
//!
//! With a real `systemd-journald` in a private mount namespace (root): entries vacuumed
//! before they were read are counted, and with journald, kmsg and eBPF all running a
//! `logger` line and a /dev/kmsg write — each of which reaches two or three of them — are
//! each archived once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::journal_support::{
    JournaldScenario, MACHINE_ID, export_entry, numbered_range, system_journal, write_journal,
};
use infralog_tests::{bin, missing_root, privileged_or_skip, query_csv, run_ok};

/// A collector configuration with only the journald source, reading `dirs`.
fn config(t: &Path, dirs: &[&Path], journald_extra: &str) -> PathBuf {
    let path = t.join("collector.toml");
    let dirs: Vec<String> = dirs
        .iter()
        .map(|d| format!("{:?}", d.display().to_string()))
        .collect();
    let text = format!(
        "[collector]\nhostname = \"jtest\"\nstate_dir = {state:?}\nchunk_rows = 64\n\
         chunk_max_age_ms = 100\n\n[archive]\npath = {archive:?}\n\n[spool]\nseal_secs = 1\n\n\
         [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
         [sources.journald]\ndirectories = [{dirs}]\nrescan_secs = 1\n{journald_extra}\n",
        state = t.join("state").display().to_string(),
        archive = t.join("archive").display().to_string(),
        dirs = dirs.join(", "),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run_once(cfg: &Path) -> String {
    let out = run_ok(
        Command::new(bin("infra-collector"))
            .args(["run", "--once", "--config"])
            .arg(cfg),
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(cfg: &Path, log: PathBuf) -> Daemon {
        let child = Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(cfg)
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .expect("start infra-collector");
        Daemon { child, log }
    }

    fn stop(mut self) -> String {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "collector failed: {status}\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn archive(t: &Path) -> PathBuf {
    t.join("archive")
}

/// Messages containing `marker`, with how often each was archived.
fn counts(t: &Path, marker: &str) -> BTreeMap<String, u64> {
    if !archive(t).join("logs").exists() {
        return BTreeMap::new();
    }
    query_csv(
        &archive(t),
        &format!(
            "SELECT message, count(*) FROM logs WHERE message LIKE '{marker} %' GROUP BY message"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect()
}

/// Waits until `n` distinct messages with `marker` are archived (the collector flushes
/// every second). Not a timed assertion: the limit only turns a hang into a failure.
fn wait_for(t: &Path, marker: &str, n: usize, daemon_log: &Path) {
    let start = Instant::now();
    loop {
        let c = counts(t, marker);
        if c.len() >= n {
            return;
        }
        if start.elapsed() > Duration::from_secs(120) {
            panic!(
                "only {} of {n} '{marker}' entries archived\n{}",
                c.len(),
                std::fs::read_to_string(daemon_log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Asserts entries `range` of `marker` are each archived exactly once, and nothing else.
fn assert_exactly_once(t: &Path, marker: &str, range: std::ops::Range<u64>) {
    let c = counts(t, marker);
    let expected: BTreeMap<String, u64> = range.map(|n| (format!("{marker} {n}"), 1)).collect();
    if c != expected {
        let doubled: Vec<_> = c.iter().filter(|&(_, &v)| v > 1).take(5).collect();
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !c.contains_key(*k))
            .take(5)
            .collect();
        panic!(
            "{marker}: {} distinct archived, {} expected; doubled {doubled:?}, missing {missing:?}",
            c.len(),
            expected.len()
        );
    }
}

const BOOT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BOOT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// journald writes the system journal to /run/log/journal until /var is ready, then
/// flushes (copies) it to /var/log/journal with new sequence numbers and deletes the /run
/// files. With the default directories the two are one stream: entries read from /run
/// before the flush are not archived again from their copies in /var, and a cursor taken
/// in /run resumes in /var.
#[test]
fn entries_flushed_from_run_to_var_are_archived_once() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let run = system_journal(&root.join("run/log/journal"), "");
    let var = system_journal(&root.join("var/log/journal"), "");
    let boot = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
    let cfg = config(
        t.path(),
        &[Path::new("/var/log/journal"), Path::new("/run/log/journal")],
        &format!("root = {:?}\n", root.display().to_string()),
    );
    // Before the flush: entries 0..40 in /run only.
    write_journal(&run, &numbered_range("flush", 0, 40, boot));
    run_once(&cfg);
    assert_eq!(counts(t.path(), "flush").len(), 40);
    // The flush: the same entries copied into /var; for a moment both copies exist.
    write_journal(&var, &numbered_range("flush", 0, 40, boot));
    run_once(&cfg);
    assert_eq!(counts(t.path(), "flush").values().sum::<u64>(), 40);
    // Then /run is deleted and /var grows: the saved cursor names an entry of a file that
    // is gone, whose copy in /var has another sequence number.
    std::fs::remove_file(&run).unwrap();
    write_journal(&var, &numbered_range("flush", 40, 70, boot));
    run_once(&cfg);
    let c = counts(t.path(), "flush");
    assert_eq!(c.len(), 70);
    let doubled: Vec<_> = c.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "archived more than once: {doubled:?}");
}

#[test]
fn every_field_is_mapped_and_binary_messages_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let mut ex = Vec::new();
    // A syslog line as journald stores it, with a source timestamp earlier than receipt.
    export_entry(
        &mut ex,
        &[
            ("__REALTIME_TIMESTAMP", b"1795341600000100"),
            ("__MONOTONIC_TIMESTAMP", b"5000000"),
            ("_BOOT_ID", BOOT_A.as_bytes()),
            ("_MACHINE_ID", MACHINE_ID.as_bytes()),
            ("MESSAGE", b"Accepted publickey for root"),
            ("PRIORITY", b"5"),
            ("SYSLOG_FACILITY", b"10"),
            ("_HOSTNAME", b"web1"),
            ("SYSLOG_IDENTIFIER", b"sshd"),
            ("SYSLOG_PID", b"4242"),
            ("_COMM", b"sshd"),
            ("_PID", b"4242"),
            ("_UID", b"0"),
            ("_GID", b"0"),
            ("_SYSTEMD_UNIT", b"ssh.service"),
            ("_SOURCE_REALTIME_TIMESTAMP", b"1795341600000001"),
            ("_TRANSPORT", b"syslog"),
            ("CONTAINER_ID", b"c0ffee"),
        ],
    );
    // Binary MESSAGE that is not UTF-8: replaced in `message`, kept raw in extra.
    export_entry(
        &mut ex,
        &[
            ("__REALTIME_TIMESTAMP", b"1795341600000200"),
            ("__MONOTONIC_TIMESTAMP", b"5000100"),
            ("_BOOT_ID", BOOT_A.as_bytes()),
            ("MESSAGE", b"bin\xff\xfe tail"),
            ("PRIORITY", b"3"),
            ("_COMM", b"writer"),
            ("_PID", b"77"),
            ("_UID", b"4000000000"),
            ("_SYSTEMD_USER_UNIT", b"app.service"),
            ("_TRANSPORT", b"journal"),
        ],
    );
    // Binary MESSAGE that is valid UTF-8 with a newline: kept as is.
    export_entry(
        &mut ex,
        &[
            ("__REALTIME_TIMESTAMP", b"1795341600000300"),
            ("__MONOTONIC_TIMESTAMP", b"5000200"),
            ("_BOOT_ID", BOOT_A.as_bytes()),
            ("MESSAGE", "two\nlines é".as_bytes()),
            ("_TRANSPORT", b"stdout"),
            ("SYSLOG_IDENTIFIER", b"multi"),
        ],
    );
    // A sender that claims to be sshd with another pid: flagged like the eBPF source does.
    export_entry(
        &mut ex,
        &[
            ("__REALTIME_TIMESTAMP", b"1795341600000400"),
            ("__MONOTONIC_TIMESTAMP", b"5000300"),
            ("_BOOT_ID", BOOT_A.as_bytes()),
            ("MESSAGE", b"spoofed"),
            ("PRIORITY", b"6"),
            ("SYSLOG_IDENTIFIER", b"sshd"),
            ("SYSLOG_PID", b"1"),
            ("_COMM", b"evil"),
            ("_PID", b"999"),
            ("_TRANSPORT", b"syslog"),
        ],
    );
    write_journal(&system_journal(&jdir, ""), &ex);
    let cfg = config(t.path(), &[&jdir], "");
    run_once(&cfg);

    let rows = query_csv(
        &archive(t.path()),
        "SELECT replace(message, chr(10), '<NL>'), priority, severity, facility, hostname, process_name, process_id, \
         uid, user_name, unit, CAST(timestamp AS BIGINT) AS ts, source, extra['_BOOT_ID'], \
         extra['_TRANSPORT'], extra['CONTAINER_ID'], extra['SYSLOG_PID'], extra['_COMM'], \
         extra['_GID'], extra['raw_hex'], extra['_SYSTEMD_USER_UNIT'], \
         extra['identity_mismatch'], extra['identity_mismatch_reason'], \
         extra['_SOURCE_REALTIME_TIMESTAMP'], extra['MESSAGE'] \
         FROM logs ORDER BY ts",
    );
    let e = String::new();
    let s = |v: &str| v.to_string();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        rows[0],
        vec![
            s("Accepted publickey for root"),
            s("5"),
            s("NOTICE"),
            s("authpriv"),
            s("web1"),
            s("sshd"),
            s("4242"),
            s("0"),
            s("root"),
            s("ssh.service"),
            // Microseconds since the epoch (schema v2), as _SOURCE_REALTIME_TIMESTAMP states it.
            s("1795341600000001"),
            s("journald"),
            s(BOOT_A),
            s("syslog"),
            s("c0ffee"),
            s("4242"),
            s("sshd"),
            s("0"),
            e.clone(),
            e.clone(),
            e.clone(),
            e.clone(),
            e.clone(),
            e.clone(),
        ]
    );
    let r = &rows[1];
    assert_eq!(r[0], "bin\u{fffd}\u{fffd} tail");
    assert_eq!(
        (r[1].as_str(), r[2].as_str(), r[3].as_str()),
        ("3", "ERROR", "")
    );
    assert_eq!(r[4], "jtest", "no _HOSTNAME: the collector's hostname");
    assert_eq!(r[5], "writer", "no SYSLOG_IDENTIFIER: _COMM");
    assert_eq!(
        (r[7].as_str(), r[8].as_str()),
        ("4000000000", ""),
        "unknown uid: no name"
    );
    assert_eq!(
        r[9], "app.service",
        "user unit when there is no system unit"
    );
    assert_eq!(
        r[10], "1795341600000200",
        "receive time without a source time"
    );
    assert_eq!(r[16], "", "_COMM became process_name");
    assert_eq!(r[18], hex(b"bin\xff\xfe tail"));
    assert_eq!(r[19], "");
    let r = &rows[2];
    assert_eq!(r[0], "two<NL>lines é");
    assert_eq!(
        (r[1].as_str(), r[2].as_str()),
        ("", ""),
        "no PRIORITY: null"
    );
    assert_eq!(r[18], "", "valid UTF-8: no raw copy");
    let r = &rows[3];
    assert_eq!((r[0].as_str(), r[5].as_str()), ("spoofed", "sshd"));
    assert_eq!((r[20].as_str(), r[21].as_str()), ("true", "pid,tag"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn restart_mid_stream_neither_loses_nor_doubles() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let file = system_journal(&jdir, "");
    let m = "restart";
    write_journal(&file, &numbered_range(m, 0, 20000, BOOT_A));
    let cfg = config(t.path(), &[&jdir], "");
    // Stopped while reading (SIGTERM right after start: it has 20000 entries to go).
    let d = Daemon::start(&cfg, t.path().join("d1.log"));
    std::thread::sleep(Duration::from_millis(300));
    let first = d.stop();
    let stats = first
        .lines()
        .filter(|l| l.contains("stats: entries="))
        .collect::<Vec<_>>();
    eprintln!("first run, stopped while reading: {stats:?}");
    // More entries arrive while it is down; then it reads what is there.
    write_journal(&file, &numbered_range(m, 20000, 25000, BOOT_A));
    run_once(&cfg);
    assert_exactly_once(t.path(), m, 0..25000);
    // Nothing new: a restart adds nothing.
    run_once(&cfg);
    assert_exactly_once(t.path(), m, 0..25000);
}

#[test]
fn live_tail_follows_growth_rotation_and_vacuum() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let file = system_journal(&jdir, "");
    let m = "live";
    write_journal(&file, &numbered_range(m, 0, 10, BOOT_A));
    let cfg = config(t.path(), &[&jdir], "");
    let log = t.path().join("daemon.log");
    let d = Daemon::start(&cfg, log.clone());
    wait_for(t.path(), m, 10, &log);
    // The file grows.
    write_journal(&file, &numbered_range(m, 10, 20, BOOT_A));
    wait_for(t.path(), m, 20, &log);
    // Rotation: the active file is archived under a new name, a new one is started.
    let archived = file.with_file_name("system@0000000000000001-0000000000000001.journal");
    std::fs::rename(&file, &archived).unwrap();
    write_journal(&file, &numbered_range(m, 20, 30, BOOT_A));
    wait_for(t.path(), m, 30, &log);
    // Vacuum: the archived file is deleted; the tail goes on in the new file.
    std::fs::remove_file(&archived).unwrap();
    write_journal(&file, &numbered_range(m, 30, 40, BOOT_A));
    wait_for(t.path(), m, 40, &log);
    d.stop();
    assert_exactly_once(t.path(), m, 0..40);
    // And a restart continues in the new file, not from its start.
    write_journal(&file, &numbered_range(m, 40, 45, BOOT_A));
    run_once(&cfg);
    assert_exactly_once(t.path(), m, 0..45);
}

#[test]
fn a_cursor_from_an_earlier_boot_resumes_in_the_next_boot() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let file = system_journal(&jdir, "");
    let m = "boots";
    write_journal(&file, &numbered_range(m, 0, 5, BOOT_A));
    let cfg = config(t.path(), &[&jdir], "");
    run_once(&cfg);
    // The machine reboots: a new boot id, monotonic time starts over, wall time goes on.
    let mut ex = Vec::new();
    for n in 5..10u64 {
        export_entry(
            &mut ex,
            &[
                (
                    "__REALTIME_TIMESTAMP",
                    (1_795_400_000_000_000 + n).to_string().as_bytes(),
                ),
                ("__MONOTONIC_TIMESTAMP", (100 + n).to_string().as_bytes()),
                ("_BOOT_ID", BOOT_B.as_bytes()),
                ("MESSAGE", format!("{m} {n}").as_bytes()),
            ],
        );
    }
    write_journal(&file, &ex);
    run_once(&cfg);
    assert_exactly_once(t.path(), m, 0..10);
    let boots = query_csv(
        &archive(t.path()),
        &format!(
            "SELECT extra['_BOOT_ID'], count(*) FROM logs WHERE message LIKE '{m} %' \
             GROUP BY 1 ORDER BY 1"
        ),
    );
    assert_eq!(
        boots,
        vec![
            vec![BOOT_A.to_string(), "5".into()],
            vec![BOOT_B.to_string(), "5".into()]
        ]
    );
}

#[test]
fn two_namespaces_are_two_streams_with_their_own_cursors() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let default_ns = system_journal(&jdir, "");
    let audit_ns = system_journal(&jdir, ".audit");
    write_journal(&default_ns, &numbered_range("nsdefault", 0, 20, BOOT_A));
    write_journal(&audit_ns, &numbered_range("nsaudit", 0, 7, BOOT_A));
    let cfg = config(t.path(), &[&jdir], "");
    let log = run_once(&cfg);
    assert!(
        log.contains(&format!("journald:{}/{MACHINE_ID}.audit", jdir.display())),
        "{log}"
    );
    write_journal(&audit_ns, &numbered_range("nsaudit", 7, 10, BOOT_A));
    run_once(&cfg);
    assert_exactly_once(t.path(), "nsdefault", 0..20);
    assert_exactly_once(t.path(), "nsaudit", 0..10);
}

#[test]
fn read_from_now_skips_the_past_and_remembers_where_now_was() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let file = system_journal(&jdir, "");
    write_journal(&file, &numbered_range("past", 0, 5, BOOT_A));
    let cfg = config(t.path(), &[&jdir], "read_from = \"now\"");
    run_once(&cfg);
    write_journal(&file, &numbered_range("future", 0, 3, BOOT_A));
    run_once(&cfg);
    assert!(counts(t.path(), "past").is_empty());
    assert_exactly_once(t.path(), "future", 0..3);
}

#[test]
fn include_and_exclude_matches_select_entries() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let mut ex = Vec::new();
    for (n, unit, prio) in [
        (0u64, "a.service", "6"),
        (1, "b.service", "6"),
        (2, "a.service", "7"),
        (3, "c.service", "6"),
    ] {
        export_entry(
            &mut ex,
            &[
                (
                    "__REALTIME_TIMESTAMP",
                    (1_795_341_600_000_000 + n).to_string().as_bytes(),
                ),
                ("MESSAGE", format!("sel {n}").as_bytes()),
                ("_SYSTEMD_UNIT", unit.as_bytes()),
                ("PRIORITY", prio.as_bytes()),
            ],
        );
    }
    write_journal(&system_journal(&jdir, ""), &ex);
    let cfg = config(
        t.path(),
        &[&jdir],
        "include = [\"_SYSTEMD_UNIT=a.service\", \"_SYSTEMD_UNIT=b.service\"]\n\
         exclude = [\"PRIORITY=7\"]",
    );
    run_once(&cfg);
    let got: Vec<String> = counts(t.path(), "sel").into_keys().collect();
    assert_eq!(got, vec!["sel 0", "sel 1"]);
}

#[test]
fn bad_matches_are_refused_with_the_reason() {
    let t = tempfile::tempdir().unwrap();
    let cfg = config(t.path(), &[t.path()], "exclude = [\"priority 7\"]");
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sources.journald.exclude") && err.contains("priority 7"),
        "{err}"
    );
}

#[test]
fn probe_says_whether_journald_would_run() {
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let cfg = config(t.path(), &[&jdir], "");
    let probe = |cfg: &Path| {
        let out = run_ok(
            Command::new(bin("infra-collector"))
                .args(["probe", "--config"])
                .arg(cfg),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = probe(&cfg);
    assert!(
        report.contains("journald: would not run: no journal namespace directory"),
        "{report}"
    );
    write_journal(
        &system_journal(&jdir, ""),
        &numbered_range("probe", 0, 1, BOOT_A),
    );
    let report = probe(&cfg);
    assert!(report.contains("journald: would run"), "{report}");
    assert!(
        report.contains(&format!("{MACHINE_ID} (1 journal files)")),
        "{report}"
    );
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}x{:x}", std::process::id(), t % 0xffff_ffff)
}

fn assert_script_ok(s: &JournaldScenario, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "namespace script failed: {}\nstdout:\n{}\nstderr:\n{}\njournald:\n{}\ncollector:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.file("journald.log"),
        s.file("collector.log"),
    );
}

/// The `_TRANSPORT` of each journal entry whose MESSAGE contains `marker`, from
/// `journalctl -o export` output.
fn transports(export: &str, marker: &str) -> Vec<String> {
    let mut out: Vec<String> = export
        .split("\n\n")
        .filter(|e| {
            e.lines()
                .any(|l| l.starts_with("MESSAGE=") && l.contains(marker))
        })
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("_TRANSPORT=").map(str::to_string))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn logger_and_kmsg_lines_are_archived_once_with_journald_kmsg_and_ebpf_on() {
    if !privileged_or_skip(
        "logger_and_kmsg_lines_are_archived_once_with_journald_kmsg_and_ebpf_on",
        missing_root(),
    ) {
        return;
    }
    let s = JournaldScenario::new();
    s.collector_config(
        "[sources.kmsg]\nenabled = true\n\n[sources.ebpf]\nenabled = true\n\
         devlog_paths = [\"/dev/log\", \"/run/systemd/journal/dev-log\"]\n\n\
         [sources.journald]\ndirectories = [\"/run/log/journal\"]\nread_from = \"now\"\n",
    );
    let m = format!("owner-{}", nonce());
    let out = s.run(&format!(
        r#"
$COLLECTOR run --config $T/collector.toml 2> $T/collector.log &
cap=$!
for i in $(seq 1 1000); do
    grep -q "journald: reading" $T/collector.log 2>/dev/null && grep -q "eBPF " $T/collector.log && break
    sleep 0.02
done
logger -t ownertag "{m} via-logger"
echo "<12>{m} via-dev-kmsg" > /dev/kmsg
wait_journal "{m}" 2
wait_archive "{m}" 2
# Time for a second row, if some source were to add one, to be read and flushed.
sleep 2.5
kill -TERM $cap
wait $cap
journalctl -D $JDIR -o export > $T/journal.export
"#
    ));
    assert_script_ok(&s, &out);
    let log = s.file("collector.log");
    eprintln!("collector log:\n{log}");
    // The journal saw both lines, the kernel one through /dev/kmsg.
    assert_eq!(
        transports(&s.file("journal.export"), &m),
        vec!["kernel".to_string(), "syslog".to_string()],
        "journald did not receive both lines"
    );
    let rows = query_csv(
        &s.archive(),
        &format!(
            "SELECT message, source, process_name, extra['_TRANSPORT'] FROM logs \
             WHERE message LIKE '%{m}%' ORDER BY message"
        ),
    );
    let firsts: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        firsts,
        vec![
            (format!("{m} via-dev-kmsg").as_str(), "kmsg"),
            (format!("{m} via-logger").as_str(), "journald"),
        ],
        "each line once, from its owner\n{log}"
    );
    assert_eq!(
        (rows[1][2].as_str(), rows[1][3].as_str()),
        ("ownertag", "syslog")
    );
    if !log.contains("eBPF unavailable") {
        assert!(
            log.contains("eBPF syslog hook leaves"),
            "the eBPF hook should leave the journal's socket to journald\n{log}"
        );
    }
}

#[test]
fn entries_vacuumed_before_they_were_read_are_counted_and_flagged() {
    if !privileged_or_skip(
        "entries_vacuumed_before_they_were_read_are_counted_and_flagged",
        missing_root(),
    ) {
        return;
    }
    let s = JournaldScenario::new();
    s.collector_config(
        "[sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
         [sources.journald]\ndirectories = [\"/run/log/journal\"]\n",
    );
    let m = format!("vac-{}", nonce());
    let out = s.run(&format!(
        r#"
D=$(ls -d $JDIR/*/)
for i in 0 1 2 3 4; do logger -t vac "{m} a$i"; done
wait_journal "{m} a" 5
$COLLECTOR run --once --config $T/collector.toml 2> $T/collector1.log
# Two rotations: the b lines end up alone in an archived file, which is then deleted
# before the collector runs again.
kill -USR2 $JOURNALD
for i in $(seq 1 100); do [ $(ls $D | grep -c '^system@') -ge 1 ] && break; sleep 0.05; done
for i in 0 1 2 3 4; do logger -t vac "{m} b$i"; done
wait_journal "{m} b" 5
kill -USR2 $JOURNALD
for i in $(seq 1 100); do [ $(ls $D | grep -c '^system@') -ge 2 ] && break; sleep 0.05; done
for i in 0 1 2 3 4; do logger -t vac "{m} c$i"; done
wait_journal "{m} c" 5
B=$(ls $D | grep '^system@' | sort | sed -n 2p)
journalctl --file $D/$B -o export | grep -c '^__CURSOR=' > $T/deleted.count
journalctl --file $D/$B -o cat > $T/deleted.txt
rm $D/$B
$COLLECTOR run --once --config $T/collector.toml 2> $T/collector.log
"#
    ));
    assert_script_ok(&s, &out);
    let deleted: u64 = s.file("deleted.count").trim().parse().unwrap();
    let deleted_text = s.file("deleted.txt");
    assert!(
        (0..5).all(|i| deleted_text.contains(&format!("{m} b{i}"))),
        "the deleted file should hold the b lines:\n{deleted_text}"
    );
    let log = s.file("collector.log");
    eprintln!("{deleted} entries deleted unread; collector log:\n{log}");
    assert!(
        log.contains(&format!("vacuumed={deleted}")),
        "{deleted} entries were deleted unread; the log should count them\n{log}"
    );
    let rows = query_csv(
        &s.archive(),
        &format!(
            "SELECT message, extra['journal_vacuumed_before'] FROM logs \
             WHERE message LIKE '{m} %' ORDER BY timestamp"
        ),
    );
    let msgs: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let want: Vec<String> = ["a", "c"]
        .iter()
        .flat_map(|p| {
            let m = &m;
            (0..5).map(move |i| format!("{m} {p}{i}"))
        })
        .collect();
    assert_eq!(msgs, want, "a and c lines, once each");
    // The first row read after the gap carries the count (it may be a journald line
    // rather than c0, so look at every row).
    let flagged = query_csv(
        &s.archive(),
        "SELECT extra['journal_vacuumed_before'] FROM logs \
         WHERE extra['journal_vacuumed_before'] IS NOT NULL",
    );
    assert_eq!(flagged, vec![vec![deleted.to_string()]]);
}

#[test]
fn kernel_lines_of_this_boot_are_left_to_kmsg_and_earlier_boots_kept() {
    if !privileged_or_skip(
        "kernel_lines_of_this_boot_are_left_to_kmsg_and_earlier_boots_kept",
        missing_root(),
    ) {
        return;
    }
    let boot: String = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "");
    let t = tempfile::tempdir().unwrap();
    let jdir = t.path().join("journal");
    let mut ex = Vec::new();
    for (n, b, transport) in [
        (0u64, boot.as_str(), "kernel"),
        (1, BOOT_A, "kernel"),
        (2, boot.as_str(), "syslog"),
    ] {
        export_entry(
            &mut ex,
            &[
                (
                    "__REALTIME_TIMESTAMP",
                    (1_795_341_600_000_000 + n).to_string().as_bytes(),
                ),
                ("_BOOT_ID", b.as_bytes()),
                ("MESSAGE", format!("kown {n}").as_bytes()),
                ("_TRANSPORT", transport.as_bytes()),
            ],
        );
    }
    write_journal(&system_journal(&jdir, ""), &ex);
    let cfg = config(t.path(), &[&jdir], "");
    // The same configuration with the kmsg source on (it reads this host's /dev/kmsg).
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[sources.kmsg]\nenabled = false",
        "[sources.kmsg]\nenabled = true",
    );
    std::fs::write(&cfg, text).unwrap();
    let log = run_once(&cfg);
    let got: Vec<String> = counts(t.path(), "kown").into_keys().collect();
    assert_eq!(
        got,
        vec!["kown 1", "kown 2"],
        "this boot's kernel line is kmsg's; an earlier boot's is journald's\n{log}"
    );
}
