//! The operations endpoint end to end: a real Prometheus (Debian's `prometheus`, started
//! here on 127.0.0.1) scrapes a running collector and its query API shows our line
//! counters moving as lines are tailed; `promtool check metrics` accepts the exposition;
//! a listener off loopback refuses to start without a token and refuses requests without
//! it; `/readyz` turns false while the archive directory cannot be written, with the
//! reason, and true again after.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::bin;
use infralog_tests::http_support::free_port;

/// `GET path` with extra headers; `(status, body)`, `None` when nothing answers.
fn request(host: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect((host, port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    Some((status, body))
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request("127.0.0.1", port, path, &[])
}

fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Setup {
    /// A collector tailing `<dir>/app.log` only, its endpoint on `listen` (`{port}` is
    /// replaced by a free port), with `http` settings added to `[http]`.
    fn new(listen: &str, http: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let port = free_port();
        let listen = listen.replace("{port}", &port.to_string());
        let config = dir.path().join("collector.toml");
        fs::write(
            &config,
            format!(
                "[collector]\nhostname = \"ops\"\nstate_dir = \"{root}/state\"\n\
                 chunk_max_age_ms = 100\n\n[archive]\npath = \"{root}/archive\"\n\n\
                 [spool]\nseal_secs = 1\n\n[retention]\ndays = 0\n\n\
                 [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
                 [sources.journald]\nenabled = false\n\n\
                 [sources.containers]\ndocker = false\ncri = false\n\n\
                 [sources.file]\npoll_interval_ms = 20\nrescan_interval_secs = 1\n\n\
                 [[sources.file.inputs]]\npaths = [\"{root}/app.log\"]\n\n\
                 [http]\nlisten = \"{listen}\"\n{http}\n"
            ),
        )
        .unwrap();
        File::create(dir.path().join("app.log")).unwrap();
        Setup { dir, config, port }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, from: usize, n: usize) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.path("app.log"))
            .unwrap();
        let mut text = String::new();
        for i in from..from + n {
            text.push_str(&format!(
                "<13>Dec  7 12:00:00 ops app[7]: request {i} served\n"
            ));
        }
        f.write_all(text.as_bytes()).unwrap();
    }

    fn start(&self) -> Daemon {
        let child = Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(File::create(self.path("collector.log")).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon(child, self.path("collector.log"));
        wait_until("the endpoint", 60, || {
            get(self.port, "/healthz").filter(|(s, _)| *s == 200)
        });
        d
    }
}

struct Daemon(Child, PathBuf);

impl Daemon {
    fn log(&self) -> String {
        fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target_port: u16) -> Prometheus {
        let exe = Path::new("/usr/bin/prometheus");
        assert!(
            exe.exists(),
            "prometheus is not installed (cargo xtask setup installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: infralog\n    static_configs:\n      \
                 - targets: [\"127.0.0.1:{target_port}\"]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(exe)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, port, dir };
        wait_until("Prometheus to be ready", 60, || {
            get(port, "/-/ready").filter(|(s, _)| *s == 200)
        });
        p
    }

    /// The value of an instant query with one result, `None` while it has none.
    fn value(&self, query: &str) -> Option<f64> {
        let q: String = (query.bytes())
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = get(self.port, &format!("/api/v1/query?query={q}"))?;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let result = v["data"]["result"].as_array()?;
        let first = result.first()?;
        first["value"][1].as_str()?.parse().ok()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_our_counters_and_sees_them_move() {
    let s = Setup::new("127.0.0.1:{port}", "");
    s.append(0, 300);
    let collector = s.start();
    let prom = Prometheus::start(s.port);
    let lines = "infralog_source_lines_total{source=\"file\"}";
    let wait_for = |want: f64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = prom.value(lines);
            if v == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus shows {lines} = {v:?}, want {want}\ncollector:\n{}\nprometheus:\n{}",
                collector.log(),
                prom.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_for(300.0);
    assert_eq!(prom.value("up{job=\"infralog\"}"), Some(1.0));
    s.append(300, 700);
    wait_for(1000.0);
    // The rest of what the issue lists, as Prometheus received it.
    let archived = wait_until("the rows archived", 60, || {
        prom.value("infralog_archive_rows_total")
            .filter(|v| *v == 1000.0)
    });
    assert_eq!(archived, 1000.0);
    for series in [
        "infralog_source_bytes_total{source=\"file\"}",
        "infralog_spool_bytes",
        "infralog_spool_segments",
        "infralog_archive_files_total",
        "infralog_archive_lag_seconds",
        "infralog_detect_templates",
        "infralog_ready",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(prom.value(series).is_some(), "Prometheus has no {series}");
    }
    assert_eq!(
        prom.value("infralog_source_parse_errors_total{source=\"file\"}"),
        Some(0.0)
    );
    assert!(prom.value("infralog_archive_bytes_total").unwrap() > 0.0);
    assert!(prom.value("process_resident_memory_bytes").unwrap() > 1e6);

    // promtool accepts both formats we serve: the classic text (no Accept) and OpenMetrics.
    let (status, classic) = get(s.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    let (_, openmetrics) = request(
        "127.0.0.1",
        s.port,
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    )
    .unwrap();
    assert!(openmetrics.trim_end().ends_with("# EOF"), "{openmetrics}");
    assert!(
        classic.contains("# TYPE infralog_source_lines_total counter"),
        "{classic}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(classic.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused:\n{}{}\n{classic}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The JSON view holds the same counts.
    let (_, json) = get(s.port, "/api/v1/stats").unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sources"]["file"]["lines"], 1000, "{json}");
    assert_eq!(v["archive"]["rows"], 1000, "{json}");
    assert_eq!(v["ready"], true, "{json}");
    assert_eq!(v["config"]["hostname"], "ops", "{json}");
}

#[test]
fn off_loopback_a_token_is_required() {
    // No token file: refused at start, naming the setting.
    let s = Setup::new("0.0.0.0:{port}", "");
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--config"])
        .arg(&s.config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("not loopback") && err.contains("http.token_file"),
        "{err}"
    );

    let token = "tok-1";
    let s = Setup::new("0.0.0.0:{port}", "token_file = \"$TOKEN\"");
    let token_file = s.path("token");
    fs::write(&token_file, format!("{token}\n")).unwrap();
    let text = fs::read_to_string(&s.config)
        .unwrap()
        .replace("$TOKEN", &token_file.display().to_string());
    fs::write(&s.config, text).unwrap();
    let _collector = s.start();
    let ask = |path: &str, auth: Option<&str>| {
        let h = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = h.iter().map(|v| ("Authorization", v.as_str())).collect();
        request("127.0.0.1", s.port, path, &headers).unwrap().0
    };
    assert_eq!(ask("/healthz", None), 200, "liveness needs no token");
    for path in ["/metrics", "/readyz", "/api/v1/stats"] {
        assert_eq!(ask(path, None), 401, "{path} without a token");
        assert_eq!(ask(path, Some("wrong")), 401, "{path} with a wrong token");
        assert_eq!(ask(path, Some(token)), 200, "{path} with the token");
    }
    // A rotated secret file takes effect at once.
    fs::write(&token_file, "tok-2").unwrap();
    assert_eq!(ask("/metrics", Some(token)), 401);
    assert_eq!(ask("/metrics", Some("tok-2")), 200);
}

#[test]
fn readiness_follows_the_archive_directory() {
    let s = Setup::new("127.0.0.1:{port}", "");
    s.append(0, 50);
    let collector = s.start();
    let ready = || get(s.port, "/readyz").unwrap();
    wait_until("ready", 30, || Some(ready()).filter(|(st, _)| *st == 200));
    let archive = s.path("archive");
    wait_until("the archive directory", 30, || {
        archive.is_dir().then_some(())
    });
    // Root writes through any mode bits: the directory is replaced by a file instead.
    let aside = s.path("archive.aside");
    fs::rename(&archive, &aside).unwrap();
    fs::write(&archive, b"not a directory").unwrap();
    let (status, body) = wait_until("not ready", 30, || {
        Some(ready()).filter(|(st, _)| *st == 503)
    });
    assert_eq!(status, 503);
    assert!(
        body.starts_with("not ready:")
            && body.contains("archive:")
            && body.contains("not writable"),
        "{body}"
    );
    let (_, json) = get(s.port, "/api/v1/stats").unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ready"], false, "{json}");
    // The degraded mode is logged once, however long it lasts.
    wait_until("the degraded line", 30, || {
        collector.log().contains("degraded: archive:").then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        collector.log().matches("degraded: archive:").count(),
        1,
        "{}",
        collector.log()
    );
    s.append(50, 50);
    fs::remove_file(&archive).unwrap();
    fs::rename(&aside, &archive).unwrap();
    wait_until("ready again", 30, || {
        Some(ready()).filter(|(st, _)| *st == 200)
    });
    // What came while the archive was away is archived after all.
    wait_until("every row archived", 60, || {
        let (_, json) = get(s.port, "/api/v1/stats")?;
        let v: serde_json::Value = serde_json::from_str(&json).ok()?;
        (v["archive"]["rows"] == 100).then_some(())
    });
    wait_until("the recovered line", 30, || {
        collector.log().contains("recovered: archive").then_some(())
    });
    drop(collector);
}
