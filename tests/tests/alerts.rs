//! Alerts end to end: `infra-collector alert-test` reaches a generic webhook, a Slack-format
//! webhook (both in-test HTTP receivers) and a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started here on 127.0.0.1); a collector tailing a log file
//! with anomalies in it notifies them grouped per host and kind, routed by severity,
//! retried while a target answers 503, and queued on disk across a restart while every
//! target is down, then delivered exactly once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::http_support::{Receiver, Request, free_port, get};
use infralog_tests::{bin, run_ok};

struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start() -> Alertmanager {
        let exe = Path::new("/usr/bin/prometheus-alertmanager");
        assert!(
            exe.exists(),
            "prometheus-alertmanager is not installed (cargo xtask setup installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        fs::write(
            &config,
            "route:\n  receiver: nowhere\n  group_wait: 1s\nreceivers:\n  - name: nowhere\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(exe)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("am.log")).unwrap())
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(port, "/-/ready").is_none_or(|(s, _)| s != 200) {
            assert!(
                Instant::now() < deadline,
                "Alertmanager did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = get(self.port, "/api/v2/alerts").expect("Alertmanager answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn wait_for(&self, pred: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = self.alerts();
            if pred(&a) || Instant::now() > deadline {
                return a;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn label<'a>(alert: &'a serde_json::Value, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or("")
}

fn config(dir: &Path, targets: &str, inputs: &str) -> PathBuf {
    let root = dir.display();
    let path = dir.join("collector.toml");
    fs::write(
        &path,
        format!(
            "[collector]\nhostname = \"collector\"\nstate_dir = \"{root}/state\"\n\
             chunk_max_age_ms = 100\n\n[archive]\npath = \"{root}/archive\"\n\n\
             [spool]\nseal_secs = 1\n\n[retention]\ndays = 0\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [sources.file]\npoll_interval_ms = 20\nrescan_interval_secs = 1\n\n{inputs}\n\n\
             [detect]\nwarmup_minutes = 5\n\n\
             [alert]\ngroup_wait_secs = 2\ngroup_interval_secs = 3\n\n{targets}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn alert_test_reaches_webhook_slack_and_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, slack) = (Receiver::start(), Receiver::start());
    let am = Alertmanager::start();
    let targets = format!(
        "[[alert.targets]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[alert.targets]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n\n\
         [[alert.targets]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{}\"\n",
        hook.url("/n8n/webhook"),
        slack.url("/services/T0/B0/x"),
        am.port
    );
    let cfg = config(dir.path(), &targets, "");
    let out = run_ok(
        Command::new(bin("infra-collector"))
            .args(["alert-test", "--config"])
            .arg(&cfg),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["hook", "chat", "am"] {
        assert!(text.contains(&format!("{name}: delivered")), "{text}");
    }
    let h = hook.taken();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].path, "/n8n/webhook");
    let body = h[0].json();
    assert_eq!(body["test"], true);
    assert!(
        body["anomalies"][0]["sql"]
            .as_str()
            .unwrap()
            .starts_with("SELECT")
    );
    let s = slack.taken();
    assert_eq!(s.len(), 1);
    let body = s[0].json();
    assert!(
        body["text"].as_str().unwrap().contains("test notification"),
        "{body}"
    );
    assert!(body["blocks"].as_array().unwrap().len() >= 2, "{body}");
    let alerts = am.wait_for(|a| !a.is_empty());
    assert!(
        alerts.iter().any(
            |a| label(a, "alertname") == "infralog_test" && label(a, "hostname") == "collector"
        ),
        "{alerts:?}"
    );

    // A target that is down is reported, and the exit status says so.
    let targets = format!(
        "[[alert.targets]]\nname = \"gone\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\n",
        free_port()
    );
    let cfg = config(dir.path(), &targets, "");
    let out = Command::new(bin("infra-collector"))
        .args(["alert-test", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("gone: FAILED"));
}

#[test]
fn a_bad_target_is_refused_with_its_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (target, why) in [
        (
            "name = \"x\"\nkind = \"pager\"\nurl = \"http://a/\"",
            "pager",
        ),
        ("name = \"x\"\nkind = \"slack\"\nurl = \"ftp://a/\"", "http"),
        (
            "name = \"x\"\nkind = \"slack\"\nurl = \"http://a/\"\nmin_severity = \"LOUD\"",
            "LOUD",
        ),
        (
            "name = \"a b\"\nkind = \"slack\"\nurl = \"http://a/\"",
            "name",
        ),
        (
            "name = \"x\"\nkind = \"slack\"\nurl = \"http://a/\"\nkinds = [\"storm\"]",
            "storm",
        ),
        (
            "name = \"x\"\nkind = \"slack\"\nurl = \"http://a/\"\nretries = 3",
            "retries",
        ),
    ] {
        let cfg = config(dir.path(), &format!("[[alert.targets]]\n{target}\n"), "");
        let text = fs::read_to_string(&cfg).unwrap();
        let table = text.lines().position(|l| l == "[[alert.targets]]").unwrap() + 1;
        let out = Command::new(bin("infra-collector"))
            .args(["alert-test", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{target}");
        assert!(err.contains(why), "{target}: {err}");
        let lines: Vec<String> = (table..=table + 5).map(|l| format!("line {l}")).collect();
        assert!(
            lines.iter().any(|l| err.contains(l.as_str())),
            "{target}: {err}"
        );
    }
}

/// An RFC 5424 line of `host` at `at_us` (µs since the epoch), priority user.`level`.
fn line(host: &str, at_us: i64, level: u8, msg: &str) -> String {
    let secs = at_us.div_euclid(1_000_000);
    let t = chrono::DateTime::from_timestamp(secs, (at_us.rem_euclid(1_000_000) * 1000) as u32)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!("<{}>1 {t} {host} web 100 - - {msg}\n", 8 + level)
}

/// 16 minutes of two hosts ending now: steady traffic, then on h1 two new error messages
/// (one group of two new templates) and a burst of a common template, on h2 an error
/// storm.
fn anomalous_log(now_us: i64) -> String {
    const MIN: i64 = 60_000_000;
    let t0 = (now_us / MIN - 16) * MIN;
    let mut lines: Vec<(i64, String)> = Vec::new();
    for m in 0..16i64 {
        for i in 0..30i64 {
            let at = t0 + m * MIN + i * 2_000_000;
            for host in ["h1", "h2"] {
                let msg = match i % 3 {
                    0 => format!(
                        "GET /api/items/{} 200 {} bytes in {} ms",
                        i * 7,
                        100 + i,
                        i + 3
                    ),
                    1 => format!("user u{} logged in from 10.0.0.{}", m + i, i + 1),
                    _ => format!("cache refresh done: {} entries", 1000 + m * i),
                };
                lines.push((at + 1000, line(host, at + 1000, 6, &msg)));
            }
        }
    }
    for (k, secs) in [(0i64, 10i64), (1, 40)] {
        let at = t0 + 8 * MIN + secs * 1_000_000;
        lines.push((
            at,
            line(
                "h1",
                at,
                3,
                &format!("raid controller reports degraded array slot {}", k + 3),
            ),
        ));
        lines.push((
            at + 1,
            line(
                "h1",
                at + 1,
                3,
                &format!("checksum mismatch on replica {} of volume data", k + 1),
            ),
        ));
    }
    for m in 10..13i64 {
        for i in 0..60i64 {
            let at = t0 + m * MIN + i * 1_000_000 + 500;
            lines.push((
                at,
                line(
                    "h2",
                    at,
                    3,
                    &format!(
                        "upstream request failed: connection refused to 10.1.0.{}:5432",
                        i % 9
                    ),
                ),
            ));
            for j in 0..3 {
                let at = at + j * 100;
                lines.push((
                    at,
                    line(
                        "h1",
                        at,
                        6,
                        &format!("cache refresh done: {} entries", 7 * i + j),
                    ),
                ));
            }
        }
    }
    lines.sort_by_key(|l| l.0);
    lines.into_iter().map(|l| l.1).collect()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn notified(reqs: &[Request], status: u16) -> Vec<serde_json::Value> {
    reqs.iter()
        .filter(|r| r.status == status)
        .map(Request::json)
        .collect()
}

/// (host, kind, anomalies) of each delivered generic-webhook notification, silences left
/// out (the hosts of the log go quiet when it ends, which may be raised while the test
/// runs).
fn groups(bodies: &[serde_json::Value]) -> Vec<(String, String, usize)> {
    let mut v: Vec<(String, String, usize)> = bodies
        .iter()
        .map(|b| {
            (
                b["group"]["hostname"].as_str().unwrap().to_string(),
                b["group"]["kind"].as_str().unwrap().to_string(),
                b["anomalies"].as_array().unwrap().len(),
            )
        })
        .filter(|g| g.1 != "silence")
        .collect();
    v.sort();
    v
}

#[test]
fn anomalies_are_grouped_routed_retried_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let log = dir.path().join("app.log");
    fs::write(&log, anomalous_log(now_us)).unwrap();
    let (hook_port, slack_port) = (free_port(), free_port());
    let am = Alertmanager::start();
    let targets = |am_port: u16| {
        format!(
            "[[alert.targets]]\nname = \"everything\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\n\
             [[alert.targets]]\nname = \"oncall\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{slack_port}/slack\"\nmin_severity = \"ERROR\"\n\n\
             [[alert.targets]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{am_port}\"\nmin_severity = \"ERROR\"\nkinds = [\"new_template\", \"error_storm\"]\n"
        )
    };
    let inputs = format!(
        "[[sources.file.inputs]]\npaths = [\"{}\"]\nformat = \"syslog\"\n",
        log.display()
    );
    let cfg = config(dir.path(), &targets(free_port()), &inputs);

    // First run: every target down. The anomalies are queued on disk.
    let first = run_ok(
        Command::new(bin("infra-collector"))
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .env("INFRALOG_LOG", "info"),
    );
    let raised: String = String::from_utf8_lossy(&first.stderr)
        .lines()
        .filter(|l| l.contains("anomaly:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let queued = ["inbox", "outbox"]
        .iter()
        .map(|d| fs::read_dir(dir.path().join("state/alerts").join(d)).map_or(0, |r| r.count()))
        .sum::<usize>();
    assert!(
        queued >= 4,
        "anomalies queued while the targets are down: {queued}\n{raised}"
    );

    // Second run: the webhook is up, Slack answers 503 at first, Alertmanager is up (its
    // real address now).
    let hook = Receiver::on(hook_port);
    let slack = Receiver::on(slack_port);
    slack
        .status
        .store(503, std::sync::atomic::Ordering::Relaxed);
    let cfg = config(dir.path(), &targets(am.port), &inputs);
    let log_path = dir.path().join("collector.log");
    let daemon = Daemon(
        Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("INFRALOG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let expected = vec![
        ("h1".to_string(), "burst".to_string(), 1),
        ("h1".to_string(), "new_template".to_string(), 2),
        ("h2".to_string(), "error_storm".to_string(), 1),
        ("h2".to_string(), "new_template".to_string(), 1),
    ];
    let got = hook.wait_for(Duration::from_secs(60), |r| {
        groups(&notified(r, 200)).len() >= 4
    });
    let log_text = || fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(
        groups(&notified(&got, 200)),
        expected,
        "{raised}\n{}",
        log_text()
    );
    // Slack failed and is retried with backoff; it then gets the ERROR ones only.
    slack.wait_for(Duration::from_secs(20), |r| r.len() >= 2);
    slack
        .status
        .store(200, std::sync::atomic::Ordering::Relaxed);
    let got = slack.wait_for(Duration::from_secs(60), |r| notified(r, 200).len() >= 3);
    let titles: Vec<String> = notified(&got, 200)
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .filter(|t| !t.contains("silence"))
        .collect();
    assert_eq!(titles.len(), 3, "{titles:?}\n{}", log_text());
    assert!(titles.iter().all(|t| !t.contains("burst")), "{titles:?}");
    assert!(!notified(&got, 503).is_empty());
    // Alertmanager has the new templates and the storm, with the context SQL.
    let alerts = am.wait_for(|a| a.len() >= 4);
    let mut names: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                label(a, "hostname").to_string(),
                label(a, "alertname").to_string(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("h1".into(), "infralog_new_template".into()),
            ("h1".into(), "infralog_new_template".into()),
            ("h2".into(), "infralog_error_storm".into()),
            ("h2".into(), "infralog_new_template".into()),
        ],
        "{alerts:?}"
    );
    assert!(alerts.iter().all(|a| {
        a["annotations"]["sql"]
            .as_str()
            .unwrap()
            .contains("FROM logs")
    }));
    drop(daemon);

    // Delivered once: a third start sends nothing again.
    let before = hook.taken().len();
    let daemon = Daemon(
        Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(5));
    drop(daemon);
    let again: Vec<_> = groups(&notified(&hook.taken()[before..], 200));
    assert!(again.is_empty(), "sent again after a restart: {again:?}");
}
