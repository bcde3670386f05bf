//! The file source end to end: the real `infra-collector run` tails files in a temporary
//! directory, the archive is read back with `infra-query`, and every numbered line must be
//! there exactly once — across rename rotation, copytruncate, inode reuse, a rotated `.gz`,
//! a file deleted while being read, a restart in the middle of a big file, and partial
//! last lines. Plus the formats: JSON application logs, a Java stack trace, Docker
//! json-file and Kubernetes CRI logs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::{bin, query_csv, run_ok};

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    /// A collector with only the file source, over `inputs` (TOML) and `extra` settings.
    fn new(inputs: &str) -> Setup {
        Setup::with(inputs, "")
    }

    fn with(inputs: &str, file_settings: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let inputs = inputs.replace("$DIR", &root);
        let mut file_settings = file_settings.replace("$DIR", &root);
        if !file_settings.contains("rotate_wait_secs") {
            file_settings.push_str("\nrotate_wait_secs = 1");
        }
        let config = dir.path().join("collector.toml");
        fs::write(
            &config,
            format!(
                "[collector]\nhostname = \"files\"\nstate_dir = \"{root}/state\"\n\
                 chunk_max_age_ms = 100\nchunk_rows = 4096\n\n\
                 [archive]\npath = \"{root}/archive\"\n\n[spool]\nseal_secs = 1\n\n\
                 [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
                 [sources.containers]\ndocker = false\ncri = false\n\n\
                 [sources.file]\npoll_interval_ms = 20\nrescan_interval_secs = 1\n\
                 {file_settings}\n\n{inputs}\n"
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn archive(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    fn run_once(&self) {
        run_ok(
            Command::new(bin("infra-collector"))
                .args(["run", "--once", "--config"])
                .arg(&self.config)
                .env("INFRALOG_LOG", "info"),
        );
    }

    fn start(&self) -> Daemon {
        let child = Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(File::create(self.path("collector.log")).unwrap())
            .spawn()
            .unwrap();
        Daemon(Some(child))
    }

    fn messages(&self, file_like: &str) -> Vec<String> {
        if !self.archive().join("logs").exists() {
            return Vec::new();
        }
        let mut m: Vec<String> = query_csv(
            &self.archive(),
            &format!("SELECT message FROM logs WHERE extra['file'] LIKE '{file_like}'"),
        )
        .into_iter()
        .map(|mut r| r.swap_remove(0))
        .collect();
        m.sort();
        m
    }

    fn count(&self) -> usize {
        if !self.archive().join("logs").exists() {
            return 0;
        }
        query_csv(&self.archive(), "SELECT count(*) FROM logs")[0][0]
            .parse()
            .unwrap()
    }

    /// Waits (up to two minutes) until the archive holds `n` rows.
    fn wait_for_rows(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let c = self.count();
            if c >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "archive holds {c} rows, waited for {n}; collector log:\n{}",
                fs::read_to_string(self.path("collector.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

struct Daemon(Option<Child>);

impl Daemon {
    /// Freezes the collector (SIGSTOP), so that what follows happens between two of its
    /// reads, however fast it is; `resume` lets it go on.
    fn pause(&self) {
        self.signal(libc::SIGSTOP);
        // The stop is asynchronous: wait until every thread is stopped.
        let pid = self.0.as_ref().unwrap().id();
        let stopped = || {
            fs::read_dir(format!("/proc/{pid}/task")).unwrap().all(|t| {
                let stat = fs::read_to_string(t.unwrap().path().join("stat")).unwrap_or_default();
                // `pid (comm) S …`: the state follows the last `)`.
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('T'))
            })
        };
        while !stopped() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: i32) {
        let pid = self.0.as_ref().unwrap().id() as i32;
        // SAFETY: kill with a pid we spawned.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// A crash: SIGKILL, nothing flushed.
    fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        // SAFETY: kill with a pid we spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }

    fn stop(mut self) {
        let mut child = self.0.take().unwrap();
        // SAFETY: kill with a pid we spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "collector exited with {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `prefix-00001` … with a fixed width, so a line is never a prefix of another.
fn lines(prefix: &str, range: std::ops::RangeInclusive<u32>) -> String {
    range.map(|i| format!("{prefix}-{i:05}\n")).collect()
}

fn expected(prefix: &str, range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i:05}")).collect()
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

const RAW_INPUT: &str = "[[sources.file.inputs]]\npaths = [\"$DIR/app.log\"]\nformat = \"raw\"\n";

#[test]
fn rename_rotation_while_stopped_reads_the_rest_of_the_rotated_file() {
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    append(&log, &lines("line", 1..=100));
    s.run_once();
    // The rotated file ends without a newline: it will not grow any more, so its last
    // line is archived, flagged.
    append(&log, &lines("line", 101..=149));
    append(&log, "line-00150");
    fs::rename(&log, s.path("app.log.1")).unwrap();
    append(&log, &lines("line", 151..=200));
    s.run_once();
    assert_eq!(s.messages("%"), expected("line", 1..=200));
    let flagged = query_csv(
        &s.archive(),
        "SELECT message FROM logs WHERE extra['unterminated'] = 'true'",
    );
    assert_eq!(flagged, vec![vec!["line-00150"]]);
    // Nothing is read twice on a third run.
    s.run_once();
    assert_eq!(s.count(), 200);
}

#[test]
fn rename_rotation_while_running_loses_and_doubles_nothing() {
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    append(&log, &lines("line", 1..=100));
    let d = s.start();
    s.wait_for_rows(100);
    d.pause();
    append(&log, &lines("line", 101..=120));
    // The writer still holds the old file after the rename, as rsyslog does until HUP.
    let mut old = OpenOptions::new().append(true).open(&log).unwrap();
    fs::rename(&log, s.path("app.log.1")).unwrap();
    old.write_all(lines("line", 121..=150).as_bytes()).unwrap();
    append(&log, &lines("line", 151..=200));
    d.resume();
    s.wait_for_rows(200);
    d.stop();
    assert_eq!(s.messages("%"), expected("line", 1..=200));
}

#[test]
fn copytruncate_while_stopped_reads_the_tail_from_the_copy() {
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    append(&log, &lines("line", 1..=100));
    s.run_once();
    append(&log, &lines("line", 101..=150));
    fs::copy(&log, s.path("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &lines("line", 151..=160));
    s.run_once();
    assert_eq!(s.messages("%"), expected("line", 1..=160));
}

#[test]
fn copytruncate_while_running_loses_and_doubles_nothing() {
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    append(&log, &lines("line", 1..=100));
    let d = s.start();
    s.wait_for_rows(100);
    // Lines 101–150 are written, copied and truncated away before the collector reads
    // them: only the copy has them. The file then grows past where reading stood, so only
    // its changed first bytes tell that it was truncated.
    d.pause();
    append(&log, &lines("line", 101..=150));
    fs::copy(&log, s.path("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &lines("line", 151..=400));
    d.resume();
    s.wait_for_rows(400);
    d.stop();
    assert_eq!(s.messages("%"), expected("line", 1..=400));
}

#[test]
fn a_reused_inode_is_read_as_a_new_file() {
    for (a, b) in [(5, 8), (200, 300)] {
        // Small files are known by inode with a check of their first bytes, larger ones
        // by fingerprint: both must tell the new file from the old.
        let s = Setup::new(RAW_INPUT);
        let log = s.path("app.log");
        append(&log, &lines("old", 1..=a));
        let ino = fs::metadata(&log).unwrap().ino();
        s.run_once();
        fs::remove_file(&log).unwrap();
        append(&log, &lines("new", 1..=b));
        if fs::metadata(&log).unwrap().ino() != ino {
            eprintln!(
                "note: the filesystem did not reuse the inode; the test still checks each line once"
            );
        }
        s.run_once();
        let mut want = expected("new", 1..=b);
        want.extend(expected("old", 1..=a));
        assert_eq!(s.messages("%"), want);
    }
}

#[test]
fn a_rotated_gz_file_is_read_from_where_reading_stopped() {
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    append(&log, &lines("line", 1..=100));
    s.run_once();
    append(&log, &lines("line", 101..=150));
    let rotated = s.path("app.log.1");
    fs::rename(&log, &rotated).unwrap();
    run_ok(Command::new("gzip").arg(&rotated));
    assert!(s.path("app.log.1.gz").exists());
    append(&log, &lines("line", 151..=200));
    s.run_once();
    assert_eq!(s.messages("%"), expected("line", 1..=200));
    s.run_once();
    assert_eq!(s.count(), 200, "the .gz is not read again");
}

#[test]
fn a_file_deleted_while_being_read_is_read_to_its_end() {
    let s = Setup::with(RAW_INPUT, "rotate_wait_secs = 600");
    let log = s.path("app.log");
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    writer.write_all(lines("line", 1..=50).as_bytes()).unwrap();
    let d = s.start();
    s.wait_for_rows(50);
    d.pause();
    fs::remove_file(&log).unwrap();
    writer
        .write_all(lines("line", 51..=100).as_bytes())
        .unwrap();
    d.resume();
    s.wait_for_rows(100);
    d.stop();
    assert_eq!(s.messages("%"), expected("line", 1..=100));
}

/// Files that come and go (container logs, logs rotated and deleted) must not leave their
/// checkpoints behind forever: once a deleted file is read to its end, its position is
/// forgotten in the spool; a file that is still there keeps its own.
#[test]
fn a_deleted_file_read_to_its_end_leaves_no_checkpoint_behind() {
    let s = Setup::new("[[sources.file.inputs]]\npaths = [\"$DIR/app-*.log\"]\nformat = \"raw\"\n");
    // Long enough that both get a fingerprint key, not only an inode key.
    let long = |p: &str| lines(&format!("{p}-{}", "x".repeat(60)), 1..=40);
    append(&s.path("app-gone.log"), &long("gone"));
    append(&s.path("app-kept.log"), &long("kept"));
    let d = s.start();
    s.wait_for_rows(80);
    fs::remove_file(s.path("app-gone.log")).unwrap();
    // Drained (rotate_wait_secs = 1), then the tombstone is spooled with the next record.
    std::thread::sleep(Duration::from_secs(4));
    d.stop();
    let status = run_ok(
        Command::new(bin("infra-collector"))
            .args(["spool", "status", "--config"])
            .arg(&s.config),
    );
    let text = String::from_utf8(status.stdout).unwrap();
    let file_checkpoints: Vec<&str> = text.lines().filter(|l| l.contains("file:")).collect();
    assert!(
        file_checkpoints.iter().any(|l| l.ends_with("app-kept.log")),
        "the live file keeps its checkpoint:\n{text}"
    );
    assert!(
        !file_checkpoints.iter().any(|l| l.contains("app-gone.log")),
        "the deleted file's checkpoint is forgotten:\n{text}"
    );
    let mut want = expected(&format!("gone-{}", "x".repeat(60)), 1..=40);
    want.extend(expected(&format!("kept-{}", "x".repeat(60)), 1..=40));
    want.sort();
    assert_eq!(s.messages("%"), want);
}

#[test]
fn a_partial_last_line_waits_for_its_newline() {
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    append(&log, "line-00001\nline-00002\nline-0");
    s.run_once();
    assert_eq!(s.messages("%"), expected("line", 1..=2));
    append(&log, "0003\nline-00004\n");
    s.run_once();
    assert_eq!(s.messages("%"), expected("line", 1..=4));
}

/// With `partial_line_timeout_secs`, a last line that never gets its newline is archived
/// after that long, flagged; what is appended to it later becomes a row of its own.
#[test]
fn a_partial_line_timeout_archives_an_unterminated_line_flagged() {
    let s = Setup::with(RAW_INPUT, "partial_line_timeout_secs = 1");
    let log = s.path("app.log");
    append(&log, "line-00001\nline-00002");
    let d = s.start();
    s.wait_for_rows(2);
    append(&log, " continued\nline-00003\n");
    s.wait_for_rows(4);
    d.stop();
    let rows = query_csv(
        &s.archive(),
        "SELECT message, coalesce(extra['unterminated'], '') FROM logs ORDER BY message",
    );
    let want = [
        [" continued", ""],
        ["line-00001", ""],
        ["line-00002", "true"],
        ["line-00003", ""],
    ];
    let want: Vec<Vec<String>> = want
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(rows, want);
}

/// A big file read by a collector killed (SIGKILL) in the middle, then by a second run:
/// every numbered line exactly once. `INFRALOG_BIG_FILE_BYTES` sets the size (1 GiB for the
/// release harness; 32 MiB by default for debug test runs).
#[test]
fn a_big_file_resumes_after_a_restart_in_the_middle() {
    let bytes: u64 = std::env::var("INFRALOG_BIG_FILE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32 << 20);
    let s = Setup::new(RAW_INPUT);
    let log = s.path("app.log");
    // 32 bytes a line.
    let n = (bytes / 32) as u32;
    {
        let mut w = std::io::BufWriter::new(File::create(&log).unwrap());
        for i in 1..=n {
            writeln!(w, "big-line-number-{i:015}").unwrap();
        }
    }
    let d = s.start();
    // Kill as soon as some rows are archived: the rest is unread or only in the spool.
    s.wait_for_rows(1);
    d.kill();
    let first = s.count();
    assert!(
        first < n as usize,
        "the first run archived the whole file ({first} rows): make it bigger"
    );
    s.run_once();
    let got = query_csv(
        &s.archive(),
        "SELECT count(*), count(DISTINCT message), min(message), max(message) FROM logs",
    );
    assert_eq!(
        got,
        vec![vec![
            n.to_string(),
            n.to_string(),
            "big-line-number-000000000000001".to_string(),
            format!("big-line-number-{n:015}"),
        ]],
        "first run archived {first} rows"
    );
}

#[test]
fn json_app_logs_map_columns_flatten_the_rest_and_keep_invalid_lines() {
    let s = Setup::new(
        "[[sources.file.inputs]]\npaths = [\"$DIR/*.json\"]\nformat = \"json\"\nutc_offset = \"Z\"\n",
    );
    let log = s.path("app.json");
    append(
        &log,
        concat!(
            r#"{"@timestamp":"2026-11-29T10:00:00.250Z","level":"warn","logger":"db.pool","message":"slow query","host":"db1","pid":4242,"ctx":{"user":{"id":7,"name":"ann"},"tags":["a","b"]},"ok":true}"#,
            "\n",
            r#"{"ts":1795946401.5,"lvl":30,"msg":"epoch secs","level_name":"x","file":"main.go"}"#,
            "\n",
            "{\"msg\": \"truncated object\"\n",
            "plain text, not json\n",
        ),
    );
    s.run_once();
    let rows = query_csv(
        &s.archive(),
        "SELECT CAST(timestamp AS VARCHAR) AS ts, severity, process_name, hostname, process_id, \
         message, extra['ctx.user.id'], extra['ctx.user.name'], extra['ctx.tags'], \
         extra['ok'], extra['parse_error'] IS NOT NULL, source \
         FROM logs ORDER BY timestamp, message",
    );
    let first = &rows
        .iter()
        .find(|r| r[5] == "slow query")
        .expect("the first line");
    assert_eq!(
        first[..],
        [
            "2026-11-29T10:00:00.250Z",
            "WARNING",
            "db.pool",
            "db1",
            "4242",
            "slow query",
            "7",
            "ann",
            r#"["a","b"]"#,
            "true",
            "false",
            "app"
        ]
        .map(String::from)[..],
        "{rows:?}"
    );
    let second = rows.iter().find(|r| r[5] == "epoch secs").unwrap();
    assert_eq!(second[0], "2026-11-29T10:00:01.500Z");
    assert_eq!(second[1], "INFO");
    let bad: Vec<&Vec<String>> = rows.iter().filter(|r| r[10] == "true").collect();
    assert_eq!(bad.len(), 2, "invalid lines kept and flagged: {rows:?}");
    assert!(bad.iter().any(|r| r[5] == "plain text, not json"));
    assert!(bad.iter().any(|r| r[5] == "{\"msg\": \"truncated object\""));
    let extra_rest = query_csv(
        &s.archive(),
        "SELECT extra['level_name'], extra['json.file'], extra['file'] LIKE '%/app.json' \
         FROM logs WHERE message = 'epoch secs'",
    );
    // An application field named like one of the collector's keys is kept beside it.
    assert_eq!(extra_rest, vec![vec!["x", "main.go", "true"]]);
}

#[test]
fn a_java_stack_trace_is_one_row() {
    let s = Setup::new(
        "[[sources.file.inputs]]\npaths = [\"$DIR/app.log\"]\nformat = \"raw\"\n\
         [sources.file.inputs.multiline]\nstart = \"####-##-## \"\n",
    );
    let trace = "2026-11-29 10:00:00 ERROR request failed\n\
        java.lang.IllegalStateException: pool exhausted\n\
        \tat com.example.Pool.take(Pool.java:42)\n\
        \tat com.example.Handler.run(Handler.java:7)\n\
        Caused by: java.util.concurrent.TimeoutException\n\
        \t... 2 more\n\
        2026-11-29 10:00:01 INFO recovered\n";
    append(&s.path("app.log"), trace);
    s.run_once();
    // Newlines shown as `|` so that each row is one CSV line.
    let rows = query_csv(
        &s.archive(),
        "SELECT replace(message, chr(10), '|') FROM logs ORDER BY message",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut want: Vec<&str> = trace.trim_end().lines().collect();
    let last = want.pop().unwrap();
    assert_eq!(rows[0][0], want.join("|"));
    assert_eq!(rows[1][0], last);
}

#[test]
fn docker_json_file_partial_lines_are_joined_with_container_identity() {
    let s = Setup::with("", "inputs = []");
    let id = "4f1c0a9e2b7d4c3e8f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e";
    let dir = s.path("docker").join(id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.v2.json"),
        r#"{"ID":"4f1c","Name":"/web-1","Config":{"Image":"nginx"}}"#,
    )
    .unwrap();
    append(
        &dir.join(format!("{id}-json.log")),
        concat!(
            r#"{"log":"GET / 200\n","stream":"stdout","time":"2026-11-29T10:00:00.000001999Z"}"#,
            "\n",
            r#"{"log":"a long line, part one; ","stream":"stdout","time":"2026-11-29T10:00:01Z"}"#,
            "\n",
            r#"{"log":"warning: disk\n","stream":"stderr","time":"2026-11-29T10:00:01.5Z"}"#,
            "\n",
            r#"{"log":"part two\n","stream":"stdout","time":"2026-11-29T10:00:02Z"}"#,
            "\n",
        ),
    );
    let config = fs::read_to_string(&s.config).unwrap().replace(
        "docker = false",
        &format!("docker = true\ndocker_root = {:?}", s.path("docker")),
    );
    fs::write(&s.config, config).unwrap();
    s.run_once();
    let rows = query_csv(
        &s.archive(),
        "SELECT message, extra['stream'], extra['container_id'], extra['container_name'], \
         CAST(timestamp AS VARCHAR) AS ts FROM logs ORDER BY timestamp",
    );
    let want = [
        [
            "GET / 200",
            "stdout",
            id,
            "web-1",
            // Microseconds, truncated (schema v2).
            "2026-11-29T10:00:00.000001Z",
        ],
        [
            "a long line, part one; part two",
            "stdout",
            id,
            "web-1",
            "2026-11-29T10:00:01Z",
        ],
        [
            "warning: disk",
            "stderr",
            id,
            "web-1",
            "2026-11-29T10:00:01.500Z",
        ],
    ];
    let want: Vec<Vec<String>> = want
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn cri_partial_lines_are_joined_with_pod_identity() {
    let s = Setup::with("", "inputs = []");
    let dir = s.path("pods/shop_cart-7d9f_0a1b2c3d/cart");
    fs::create_dir_all(&dir).unwrap();
    append(
        &dir.join("0.log"),
        "2026-11-29T10:00:00.123456789+00:00 stdout P first \n\
         2026-11-29T10:00:00.2+00:00 stderr F an error\n\
         2026-11-29T10:00:00.3+00:00 stdout P second \n\
         2026-11-29T10:00:00.4+00:00 stdout F third\n\
         not a cri line\n",
    );
    let config = fs::read_to_string(&s.config).unwrap().replace(
        "cri = false",
        &format!("cri = true\ncri_root = {:?}", s.path("pods")),
    );
    fs::write(&s.config, config).unwrap();
    s.run_once();
    let rows = query_csv(
        &s.archive(),
        "SELECT message, extra['stream'], extra['k8s_namespace'], extra['k8s_pod'], \
         extra['k8s_container'], extra['parse_error'] IS NOT NULL FROM logs ORDER BY message",
    );
    let want = [
        ["an error", "stderr", "shop", "cart-7d9f", "cart", "false"],
        [
            "first second third",
            "stdout",
            "shop",
            "cart-7d9f",
            "cart",
            "false",
        ],
        ["not a cri line", "", "shop", "cart-7d9f", "cart", "true"],
    ];
    let want: Vec<Vec<String>> = want
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn a_bad_file_setting_is_refused_with_its_line() {
    let s = Setup::new("[[sources.file.inputs]]\npaths = [\"$DIR/app.log\"]\nformat = \"yaml\"\n");
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--once", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let text = fs::read_to_string(&s.config).unwrap();
    let line = text.lines().position(|l| l.contains("yaml")).unwrap() + 1;
    assert!(err.contains(&format!("line {line}")), "{err}");
    assert!(err.contains("yaml"), "{err}");
}
