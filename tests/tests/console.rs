//! The web console (`infra-query serve --http`) in a real browser: Debian's Chromium
//! driven by Playwright (PyPI), over an imported archive with detection on and a running
//! collector tailing a file into the same archive. `tests/browser/console.py` does the
//! clicking; screenshots land in `target/tmp/console/`. The API's answers and a listener
//! beyond loopback without a token are checked here.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::http_support::free_port;
use infralog_tests::{ImportTo, bin, import_rfc3164, query_csv, repo_root, run_ok};

use infralog_tests::incident::{MIN, T0, history};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve --http did not listen: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve(archive: &Path, dir: &Path, args: &[&str]) -> (Killed, u16) {
    let port = free_port();
    let log = dir.join(format!("serve-{port}.log"));
    let child = Command::new(bin("infra-query"))
        .arg("--archive")
        .arg(archive)
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let child = Killed(child);
    wait_listening(port, &log);
    (child, port)
}

/// `GET path` with extra header lines: the status, the headers and the body.
fn get(port: u16, path: &str, headers: &str) -> (u16, String, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

fn json_lines(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The imported archive, shared by the tests of this file.
fn imported(dir: &Path) -> PathBuf {
    let file = dir.join("history.log");
    fs::write(&file, history()).unwrap();
    let archive = dir.join("archive");
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--format", "rfc5424", "--archive"])
            .arg(&archive)
            .arg(&file),
    );
    archive
}

#[test]
fn the_api_streams_searches_histograms_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let archive = imported(dir.path());
    let (_server, port) = serve(&archive, dir.path(), &[]);

    let (status, head, body) = get(port, "/api/query?q=replica+db-3+severity%3E%3Derr", "");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("application/x-ndjson"), "{head}");
    let rows = json_lines(&body);
    assert_eq!(rows.len(), 100);
    assert!(rows.iter().all(|r| {
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("write to replica db-3")
            && r["hostname"] == "h2"
    }));

    // A search reads an hour, then wider slices, newest first: across a slice border the
    // rows stay in order, each once, up to the limit.
    for (limit, want) in [(500, 500), (2_000, 1_650)] {
        let (status, _, body) = get(
            port,
            &format!(
                "/api/query?q=heartbeat&from=2026-03-02T00:00:00Z&to=2026-03-02T03:00:00Z&limit={limit}"
            ),
            "",
        );
        assert_eq!(status, 200, "{body}");
        let rows = json_lines(&body);
        assert_eq!(rows.len(), want);
        let keys: Vec<(i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["ts"].as_i64().unwrap(),
                    r["hostname"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), want, "a row came twice");
    }

    // The same search as Arrow IPC, read by pyarrow.
    let got = infralog_tests::python(&format!(
        "import urllib.request, pyarrow.ipc as ipc\n\
         r = urllib.request.urlopen('http://127.0.0.1:{port}/api/query?q=replica+db-3&format=arrow')\n\
         t = ipc.open_stream(r.read()).read_all()\n\
         print(r.headers['content-type'], t.num_rows, set(t.column('hostname').to_pylist()))"
    ));
    assert_eq!(got.trim(), "application/vnd.apache.arrow.stream 100 {'h2'}");

    let (status, _, body) = get(port, "/api/query?q=colour:red", "");
    assert_eq!(status, 400);
    assert!(body.contains("unknown field"), "{body}");
    let (status, _, body) = get(port, "/api/query?sql=DROP+TABLE+logs", "");
    assert_eq!(status, 400);
    assert!(body.contains("only reads"), "{body}");

    // The histogram over the storm: 5-minute... 5-second buckets summing to every line.
    let (status, _, body) = get(
        port,
        "/api/hits?q=replica&from=2026-03-02T02:00:00Z&to=2026-03-02T02:05:00Z",
        "",
    );
    assert_eq!(status, 200, "{body}");
    let lines = json_lines(&body);
    assert_eq!(lines[0]["step"], 5_000, "{}", lines[0]);
    let buckets: Vec<_> = lines.iter().filter(|l| l.get("t").is_some()).collect();
    let sum: i64 = buckets.iter().map(|b| b["n"].as_i64().unwrap()).sum();
    assert_eq!(sum, 400);
    assert_eq!(lines.last().unwrap()["total"], 400);
    let mut ts: Vec<i64> = buckets.iter().map(|b| b["t"].as_i64().unwrap()).collect();
    let n = ts.len();
    ts.sort();
    ts.dedup();
    assert_eq!(ts.len(), n, "a bucket came in two slices");

    // Context around the db-2 line at 2:00:00.0 + 1 s.
    let at = T0 + 120 * MIN + 1_000_000;
    let (status, _, body) = get(
        port,
        &format!("/api/context?host=h2&source=file&ts={at}&before=3&after=2"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let msgs = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|r| r["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        msgs("at"),
        ["write to replica db-2 failed: connection reset by peer"]
    );
    let before = msgs("before");
    assert_eq!(before.len(), 3);
    assert!(before[2].contains("db-1"), "{before:?}");
    let after = msgs("after");
    assert!(
        after[0].contains("db-3") && after[1].starts_with("served /static"),
        "{after:?}"
    );

    let (status, _, body) = get(port, "/api/fields?q=replica", "");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["hostname"],
        serde_json::json!([{"value": "h2", "n": 400}])
    );
}

#[test]
fn a_listener_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let archive = imported(dir.path());
    let out = Command::new(bin("infra-query"))
        .arg("--archive")
        .arg(&archive)
        .args(["serve", "--http", &format!("0.0.0.0:{}", free_port())])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("beyond loopback") && err.contains("--token-file"),
        "{err}"
    );

    // With a token (here on loopback): nothing without it, everything with it.
    let token = dir.path().join("token");
    fs::write(&token, "t0ken-for-tests\n").unwrap();
    let (_server, port) = serve(
        &archive,
        dir.path(),
        &["--token-file", token.to_str().unwrap()],
    );
    assert_eq!(get(port, "/api/fields", "").0, 401);
    assert_eq!(get(port, "/", "").0, 401);
    assert_eq!(
        get(port, "/api/fields", "Authorization: Bearer nope\r\n").0,
        401
    );
    let (status, _, body) = get(
        port,
        "/api/fields",
        "Authorization: Bearer t0ken-for-tests\r\n",
    );
    assert_eq!(status, 200, "{body}");
    let (status, head, _) = get(port, "/?token=t0ken-for-tests", "");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: infralog_token=t0ken-for-tests"),
        "{head}"
    );
    assert_eq!(
        get(
            port,
            "/api/fields",
            "Cookie: infralog_token=t0ken-for-tests\r\n"
        )
        .0,
        200
    );
}

#[test]
fn the_console_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let archive = imported(dir.path());
    let root = archive.display().to_string();
    let tailed = dir.path().join("app.log");
    File::create(&tailed).unwrap();
    // A collector tailing a file into the same archive; its spool is beside it, so the
    // console sees its lines before they are archived.
    let config = dir.path().join("collector.toml");
    fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"live\"\nstate_dir = \"{root}/state\"\n\
             chunk_max_age_ms = 100\n\n[archive]\npath = \"{root}\"\n\n\
             [retention]\ndays = 0\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [sources.file]\npoll_interval_ms = 20\nrescan_interval_secs = 1\n\n\
             [[sources.file.inputs]]\npaths = [\"{}\"]\nformat = \"raw\"\n",
            tailed.display()
        ),
    )
    .unwrap();
    let collector = Killed(
        Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("collector.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let spool = archive.join("state").join("spool");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !spool.is_dir() {
        assert!(
            Instant::now() < deadline,
            "the collector made no spool: {}",
            fs::read_to_string(dir.path().join("collector.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_server, port) = serve(&archive, dir.path(), &[]);

    // What the tables hold, as infra-query's shell answers.
    let mut templates = serde_json::Map::new();
    for r in query_csv(
        &archive,
        "WITH t AS (SELECT template_id, first_value(text ORDER BY written_at DESC, version DESC) \
         AS text FROM templates GROUP BY template_id) \
         SELECT CAST(l.template_id AS VARCHAR), count(*), max(t.text) FROM logs l \
         JOIN t ON l.template_id = t.template_id GROUP BY 1",
    ) {
        templates.insert(
            r[0].clone(),
            serde_json::json!({"n": r[1].parse::<i64>().unwrap(), "text": r[2]}),
        );
    }
    assert!(templates.len() >= 5, "{templates:?}");
    let anomalies: Vec<_> = query_csv(&archive, "SELECT hostname, kind FROM anomalies")
        .into_iter()
        .map(|r| serde_json::json!([r[0], r[1]]))
        .collect();
    assert!(!anomalies.is_empty());
    let trends: Vec<_> = query_csv(
        &archive,
        "SELECT hostname, sum(lines), sum(CASE WHEN severity = 'ERROR' THEN lines ELSE 0 END) \
         FROM stats GROUP BY 1",
    )
    .into_iter()
    .map(|r| {
        serde_json::json!([
            r[0],
            r[1].parse::<i64>().unwrap(),
            r[2].parse::<i64>().unwrap()
        ])
    })
    .collect();
    let expected = dir.path().join("expected.json");
    fs::write(
        &expected,
        serde_json::json!({
            "db3_lines": 100,
            "replica_lines": 400,
            "templates": templates,
            "anomalies": anomalies,
            "tail_file": tailed,
            "trends": trends,
            "context_ts": T0 + 120 * MIN + 1_000_000,
        })
        .to_string(),
    )
    .unwrap();

    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    let out = Command::new("python3")
        .arg(repo_root().join("tests/browser/console.py"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&artefacts)
        .arg(&expected)
        .stdin(Stdio::null())
        .output()
        .expect("python3 with playwright (cargo xtask setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}screenshots in {}", artefacts.display());
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(artefacts.join("search.png").is_file());

    // An EventSource that reconnects sends the last id it saw: the tail goes on from
    // there, so the line written while the page was paused arrives, once.
    let minute_ago = chrono::Utc::now().timestamp_micros() - 60_000_000;
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET /api/tail?q=while+paused HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Last-Event-ID: {minute_ago}\r\n\r\n"
    )
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("\n\n") || !seen.contains("event: lines") {
        let n = conn.read(&mut buf).expect("a tail event within 10 s");
        assert!(n > 0, "the tail ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let data = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data line: {seen}"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(data).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("while paused"),
        "{rows:?}"
    );
    assert!(seen.contains("content-type: text/event-stream"), "{seen}");
    drop(collector);
}

/// The console over an S3 archive (moto_server on 127.0.0.1): a search and its histogram
/// count what infra-query's shell counts there.
#[test]
fn the_api_over_s3() {
    use infralog_tests::loghub;
    use infralog_tests::s3_support::{Moto, credentials_file};
    let moto = Moto::start();
    moto.create_bucket("console-s3");
    let dir = tempfile::tempdir().unwrap();
    let archive = "s3://console-s3/site";
    let config = dir.path().join("import.toml");
    fs::write(
        &config,
        format!(
            "[collector]\nstate_dir = {state:?}\n\n[archive]\npath = {archive:?}\n\n\
             [archive.s3]\nendpoint = \"http://127.0.0.1:{port}\"\ncredentials_file = {creds:?}\n",
            state = dir.path().join("state").display().to_string(),
            port = moto.port,
            creds = credentials_file(dir.path()).display().to_string(),
        ),
    )
    .unwrap();
    import_rfc3164(
        "linux-1",
        ImportTo::Config(&config),
        &loghub("Linux/Linux_2k.log"),
    );
    let env = [
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", moto.port),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials_file(dir.path()).display().to_string(),
        ),
    ];
    let shell = run_ok(
        Command::new(bin("infra-query"))
            .args(["--archive", archive, "--format", "csv", "-c"])
            .arg("SELECT count(*) FROM logs WHERE message ILIKE '%authentication failure%'")
            .envs(env.clone()),
    );
    let want: usize = String::from_utf8(shell.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(want > 10, "{want}");

    let port = free_port();
    let log = dir.path().join("serve.log");
    let _server = Killed(
        Command::new(bin("infra-query"))
            .args(["--archive", archive, "serve", "--http", &port.to_string()])
            .envs(env)
            .stdin(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &log);
    let (status, _, body) = get(
        port,
        "/api/query?q=%22authentication+failure%22&limit=50000",
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_lines(&body).len(), want);
    let (status, _, body) = get(port, "/api/hits?q=%22authentication+failure%22", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_lines(&body).last().unwrap()["total"], want as i64);
}
