//! SIGHUP under load: numbered lines are appended to tailed files while the collector is
//! sent several reloads — a new file input (the file source restarts), a configuration
//! with a misspelt key (refused, the old one keeps running), a spool setting (the whole
//! collector restarts in the process), and an unchanged file — and every line is in the
//! archive exactly once at the end.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use infralog_tests::forward_support::Collector;
use infralog_tests::http_support::{free_port, get};
use infralog_tests::query_csv;

fn config(root: &Path, port: u16, inputs: &[&str], seal_secs: u32, extra: &str) -> String {
    let paths: Vec<String> = (inputs.iter())
        .map(|i| format!("\"{}/{i}\"", root.display()))
        .collect();
    let root = root.display();
    format!(
        "[collector]\nhostname = \"reload\"\nstate_dir = \"{root}/state\"\n\
         chunk_max_age_ms = 50\nchunk_rows = 512\n\n[archive]\npath = \"{root}/archive\"\n\n\
         [spool]\nseal_secs = {seal_secs}\n\n[retention]\ndays = 0\n\n\
         [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
         [sources.journald]\nenabled = false\n\n\
         [sources.containers]\ndocker = false\ncri = false\n\n\
         [sources.file]\npoll_interval_ms = 20\nrescan_interval_secs = 1\n{extra}\n\n\
         [[sources.file.inputs]]\npaths = [{}]\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
        paths.join(", ")
    )
}

/// Appends numbered lines to `path` until `stop`, twenty at a time, counting them in
/// `written`.
fn writer(
    path: std::path::PathBuf,
    tag: &'static str,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut text = String::new();
            for _ in 0..20 {
                text.push_str(&format!(
                    "<13>Dec  7 12:00:00 reload app[9]: {tag} line {i} of the load\n"
                ));
                i += 1;
            }
            f.write_all(text.as_bytes()).unwrap();
            written.store(i, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

#[test]
fn sighup_under_load_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    let cfg = root.join("collector.toml");
    File::create(root.join("a.log")).unwrap();
    File::create(root.join("b.log")).unwrap();
    fs::write(&cfg, config(root, port, &["a.log"], 1, "")).unwrap();
    let log = root.join("collector.log");
    let mut c = Collector::start(&cfg, &log);
    c.wait_log("infra-collector running", 1);

    let stop = Arc::new(AtomicBool::new(false));
    let (a_n, b_n) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a = writer(root.join("a.log"), "a", stop.clone(), a_n.clone());
    let b = writer(root.join("b.log"), "b", stop.clone(), b_n.clone());
    let hup = |text: String| {
        fs::write(&cfg, text).unwrap();
        c.signal(libc::SIGHUP);
    };
    std::thread::sleep(Duration::from_millis(700));
    // 1. A new input: the file source restarts and picks b.log up from its start.
    hup(config(root, port, &["a.log", "b.log"], 1, ""));
    c.wait_log("configuration reloaded: restarted file", 1);
    std::thread::sleep(Duration::from_millis(700));
    // 2. A misspelt key: refused with its line, the running configuration kept.
    hup(config(
        root,
        port,
        &["a.log", "b.log"],
        1,
        "poll_intervall_ms = 5",
    ));
    c.wait_log("reload refused", 1);
    assert!(
        c.log_text().contains("poll_intervall_ms"),
        "{}",
        c.log_text()
    );
    std::thread::sleep(Duration::from_millis(700));
    // 3. A spool setting: the whole collector restarts in the process.
    hup(config(root, port, &["a.log", "b.log"], 2, ""));
    c.wait_log("configuration reloaded: restarted", 2);
    std::thread::sleep(Duration::from_millis(700));
    // 4. Again a file input change and an unchanged file, back to back.
    hup(config(root, port, &["b.log", "a.log"], 2, ""));
    c.wait_log("configuration reloaded", 3);
    hup(config(root, port, &["b.log", "a.log"], 2, ""));
    c.wait_log("configuration reloaded: no source or target changed", 1);
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    a.join().unwrap();
    b.join().unwrap();
    let total = a_n.load(Ordering::Relaxed) + b_n.load(Ordering::Relaxed);
    assert!(total > 2000, "the load was too light: {total} lines");

    // The endpoint follows the reloads and sees the lines arrive.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(port, "/readyz").unwrap_or((0, String::new()));
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready after the reloads: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    c.stop();

    let archive = root.join("archive");
    eprintln!(
        "{total} lines written; the collector's log:\n{}",
        c.log_text()
    );
    let rows = query_csv(
        &archive,
        "SELECT count(*), count(DISTINCT message) FROM logs",
    );
    assert_eq!(
        rows[0],
        [total.to_string(), total.to_string()],
        "every line once (count, distinct):\n{}",
        c.log_text()
    );
}

/// A TCP listener added by a reload starts, and one changed by a later reload (a new
/// port) takes over: every line sent over both arrives once, and the endpoint counts them.
#[test]
fn a_reload_adds_and_moves_a_net_listener() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    let cfg = root.join("collector.toml");
    File::create(root.join("a.log")).unwrap();
    fs::write(&cfg, config(root, port, &["a.log"], 1, "")).unwrap();
    let log = root.join("collector.log");
    let mut c = Collector::start(&cfg, &log);
    c.wait_log("infra-collector running", 1);
    let mut sent = 0;
    for (round, listen) in [free_port(), free_port()].into_iter().enumerate() {
        let listener = format!(
            "\n[[sources.net.listeners]]\naddress = \"127.0.0.1:{listen}\"\nprotocol = \"tcp\"\n"
        );
        fs::write(
            &cfg,
            format!("{}{listener}", config(root, port, &["a.log"], 1, "")),
        )
        .unwrap();
        c.signal(libc::SIGHUP);
        c.wait_log("configuration reloaded: restarted net", round + 1);
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!("<13>Dec  7 12:00:00 peer app: net {round} {i}\n"));
        }
        conn.write_all(text.as_bytes()).unwrap();
        drop(conn);
        sent += 500;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = get(port, "/api/v1/stats")
                .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| v["sources"]["net"]["lines"].as_u64());
            if lines == Some(sent) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "net lines {lines:?}, sent {sent}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    c.stop();
    let rows = query_csv(
        &root.join("archive"),
        "SELECT count(*), count(DISTINCT message) FROM logs WHERE source = 'net'",
    );
    assert_eq!(
        rows[0],
        [sent.to_string(), sent.to_string()],
        "{}",
        c.log_text()
    );
}
