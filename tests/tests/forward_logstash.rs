//! Forwarding as JSON lines (Logstash's `json_lines`) to a real receiver: syslog-ng with a
//! `network()` source and `json-parser()`, writing what it parsed to a file.
//!
//! - TCP: every row arrives, with its fields; the receiver stopped for a minute under load
//!   loses nothing (the spool holds the rows, the sink's lag rises and falls back).
//! - UDP: one document per datagram; an oversized one is cut and flagged.
//! - Routing: the UDP sink gets only the rows of one tenant (a `[[route]]`), the TCP sink
//!   the rest as well (`unmatched`).
//! - Fallback: with the Logstash-role receiver down, rows go to the OpenSearch fallback;
//!   once it is back they go to it again; no row goes to both.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use infralog_tests::forward_support::{Collector, JsonReceiver, Osmem};
use infralog_tests::net_support::require;
use infralog_tests::{bin, run_ok};

fn base_config(dir: &Path, input: &Path, forward: &str) -> std::path::PathBuf {
    let path = dir.join("collector.toml");
    fs::write(
        &path,
        format!(
            "[collector]\nhostname = \"fwd\"\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
             [archive]\npath = {archive:?}\n\n[retention]\ndays = 0\n\n\
             [spool]\nsegment_mb = 1\nseal_secs = 1\nfsync_interval_ms = 100\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\npoll_interval_ms = 50\n\n\
             [[sources.file.inputs]]\npaths = [{input:?}]\nformat = \"json\"\nutc_offset = \"Z\"\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n{forward}",
            state = dir.join("state").display().to_string(),
            archive = dir.join("archive").display().to_string(),
            input = input.display().to_string(),
        ),
    )
    .unwrap();
    path
}

fn append(path: &Path, from: u64, to: u64, tag: &str, long_every: u64) {
    let mut text = String::new();
    for n in from..to {
        let tenant = if n % 2 == 0 { "alpha" } else { "beta" };
        let pad = if long_every > 0 && n % long_every == 0 {
            "x".repeat(5000)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "{{\"time\":\"2026-12-07T10:00:00Z\",\"level\":\"warn\",\"message\":\"{tag} {n}{pad}\",\
             \"tenant_id\":\"{tenant}\"}}\n"
        ));
    }
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The numbers of the `tag` messages received, and how many arrived twice.
fn numbers(docs: &[serde_json::Value], tag: &str) -> (BTreeSet<u64>, u64) {
    let mut seen = BTreeSet::new();
    let mut twice = 0;
    for d in docs {
        let Some(m) = d["message"].as_str() else {
            continue;
        };
        let Some(rest) = m.strip_prefix(&format!("{tag} ")) else {
            continue;
        };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !seen.insert(digits.parse::<u64>().unwrap()) {
            twice += 1;
        }
    }
    (seen, twice)
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool, log: &Collector) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            log.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(config: &Path) -> String {
    let out = run_ok(
        Command::new(bin("infra-collector"))
            .args(["forward", "status", "--config"])
            .arg(config),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(segments, rows)` of `lag: N sealed segment(s), R rows, ...` in `sink`'s block.
fn lag(status: &str, sink: &str) -> (u64, u64) {
    let block = status
        .split("sink ")
        .find(|b| b.starts_with(&format!("{sink} ")))
        .unwrap_or_else(|| panic!("no sink {sink}: {status}"));
    let l = block.lines().find(|l| l.contains("lag:")).unwrap();
    let w: Vec<&str> = l.split_whitespace().collect();
    (w[1].parse().unwrap(), w[4].parse().unwrap())
}

#[test]
fn json_lines_over_tcp_and_udp_with_routing_and_a_receiver_outage() {
    require("syslog-ng");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rx = JsonReceiver::start(&dir.join("syslog-ng"));
    let input = dir.join("app.log");
    fs::write(&input, "").unwrap();
    let config = base_config(
        dir,
        &input,
        &format!(
            "[[forward]]\nname = \"tcp\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{tcp}\"\n\
             unmatched = true\nretry_initial_ms = 100\nretry_max_ms = 1000\n\n\
             [[forward]]\nname = \"udp\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{udp}\"\n\
             transport = \"udp\"\nmax_datagram_bytes = 2000\nbatch_rows = 100\n\n\
             [[route]]\nwhen = {{ tenant_id = [\"alpha\"] }}\nsinks = [\"tcp\", \"udp\"]\n",
            tcp = rx.tcp,
            udp = rx.udp,
        ),
    );
    let mut c = Collector::start(&config, &dir.join("collector.log"));

    // 1. 20,000 rows; every 1,000th has a 5,000-byte message.
    const N: u64 = 20_000;
    for k in 0..4 {
        append(&input, k * N / 4, (k + 1) * N / 4, "first", 1000);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_until(
        "20,000 rows over TCP",
        120,
        || numbers(&rx.received("tcp"), "first").0.len() as u64 == N,
        &c,
    );
    let tcp_docs = rx.received("tcp");
    let (got, twice) = numbers(&tcp_docs, "first");
    assert_eq!(got, (0..N).collect(), "every row over TCP");
    assert_eq!(twice, 0, "nothing doubled without a failure");
    let d = tcp_docs.iter().find(|d| d["message"] == "first 7").unwrap();
    assert_eq!(d["tenant_id"], "beta");
    assert_eq!(d["hostname"], "fwd");
    assert_eq!(d["severity"], "WARNING");
    assert_eq!(d["@timestamp"], "2026-12-07T10:00:00.000000Z");
    let long = tcp_docs
        .iter()
        .find(|d| d["message"].as_str().unwrap().starts_with("first 1000x"))
        .unwrap();
    assert_eq!(
        long["message"].as_str().unwrap().len(),
        5010,
        "TCP sends it whole"
    );

    // UDP: only tenant alpha (the route), each at most once, oversized ones cut and flagged.
    wait_until(
        "UDP rows",
        60,
        || numbers(&rx.received("udp"), "first").0.len() as u64 >= N / 2 * 95 / 100,
        &c,
    );
    std::thread::sleep(Duration::from_secs(2));
    let udp_docs = rx.received("udp");
    let (got, twice) = numbers(&udp_docs, "first");
    assert_eq!(twice, 0, "UDP is at most once");
    assert!(got.iter().all(|n| n % 2 == 0), "only tenant alpha over UDP");
    assert!(
        got.len() as u64 >= N / 2 * 95 / 100,
        "{} of {} over UDP on loopback",
        got.len(),
        N / 2
    );
    let cut: Vec<_> = udp_docs
        .iter()
        .filter(|d| d["forward_truncated"].as_str() == Some("true"))
        .collect();
    assert!(
        !cut.is_empty(),
        "oversized documents arrive cut and flagged"
    );
    for d in &cut {
        let m = d["message"].as_str().unwrap();
        assert!(m.starts_with("first ") && m.len() < 2000, "{}", m.len());
    }

    // 2. The receiver stopped for a minute while rows keep coming: nothing lost on TCP.
    let outage: u64 = std::env::var("INFRALOG_FORWARD_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    rx.stop();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut max_lag = 0;
    while started.elapsed() < Duration::from_secs(outage) {
        append(&input, sent, sent + 500, "second", 0);
        sent += 500;
        std::thread::sleep(Duration::from_millis(250));
        if sent.is_multiple_of(5000) {
            let (_, rows) = lag(&status(&config), "tcp");
            max_lag = max_lag.max(rows);
        }
    }
    assert!(
        max_lag >= 1000,
        "the lag rose while the receiver was down: {max_lag} rows"
    );
    eprintln!("lag during the outage: up to {max_lag} rows");
    rx.restart();
    wait_until(
        "the rows of the outage over TCP",
        180,
        || numbers(&rx.received("tcp"), "second").0.len() as u64 == sent,
        &c,
    );
    let (got, twice) = numbers(&rx.received("tcp"), "second");
    assert_eq!(got, (0..sent).collect(), "nothing lost on TCP");
    eprintln!("{sent} rows sent during a {outage} s outage; {twice} arrived twice");
    wait_until(
        "the lag to fall back",
        60,
        || lag(&status(&config), "tcp").1 == 0,
        &c,
    );
    let s = status(&config);
    assert!(s.contains("last error: "), "{s}");
    c.stop();
}

#[test]
fn fallback_takes_the_rows_while_the_primary_is_down_and_none_goes_to_both() {
    require("syslog-ng");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let os = Osmem::start(&dir.join("osmem.log"));
    // The primary's port: nothing listens there at first.
    let mut rx = JsonReceiver::start(&dir.join("syslog-ng"));
    rx.stop();
    let input = dir.join("app.log");
    fs::write(&input, "").unwrap();
    let config = base_config(
        dir,
        &input,
        &format!(
            "[[forward]]\nname = \"ls\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{tcp}\"\n\
             fallback = \"es\"\nfallback_after_secs = 2\nretry_initial_ms = 100\nretry_max_ms = 500\n\n\
             [[forward]]\nname = \"es\"\nkind = \"elasticsearch\"\nurl = {url:?}\nfallback_only = true\n",
            tcp = rx.tcp,
            url = os.url(),
        ),
    );
    let mut c = Collector::start(&config, &dir.join("collector.log"));
    append(&input, 0, 3000, "fb", 0);
    wait_until("rows in the fallback", 120, || os.total() == 3000, &c);
    // The primary comes back: new rows go to it.
    rx.restart();
    std::thread::sleep(Duration::from_secs(1));
    append(&input, 3000, 6000, "fb", 0);
    wait_until(
        "rows at the primary again",
        120,
        || numbers(&rx.received("tcp"), "fb").0.len() >= 2000,
        &c,
    );
    std::thread::sleep(Duration::from_secs(5));
    let (at_primary, twice) = numbers(&rx.received("tcp"), "fb");
    assert_eq!(twice, 0);
    let total = os.total() + at_primary.len() as u64;
    assert_eq!(
        total,
        6000,
        "every row in one of the two: {} in es",
        os.total()
    );
    assert!(
        at_primary.iter().all(|n| *n >= 3000),
        "no row of the outage at the primary too"
    );
    let log = c.log_text();
    assert!(log.contains("switching back from the fallback"), "{log}");
    c.stop();
    let s = status(&config);
    assert!(s.contains("to fallback 3000 "), "{s}");
    assert!(s.contains("as the fallback of ls:"), "{s}");
    assert!(s.contains("acknowledged 3000 "), "{s}");
}

/// JSON lines over TLS: the sink checks the receiver's certificate against the CA file;
/// a sink given another CA is refused, and `forward-test` says so.
#[test]
fn json_lines_over_tls_with_the_servers_certificate_checked() {
    require("syslog-ng");
    require("openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = dir.join("pki");
    fs::create_dir_all(&pki).unwrap();
    infralog_tests::net_support::test_pki(&pki);
    let rx = JsonReceiver::start_with_tls(&dir.join("syslog-ng"), Some(&pki));
    let port = rx.tls.as_ref().unwrap().0;
    let input = dir.join("app.log");
    fs::write(&input, "").unwrap();
    let p = pki.display();
    let config = base_config(
        dir,
        &input,
        &format!(
            "[[forward]]\nname = \"tls\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{port}\"\n\
             tls = {{ ca_file = \"{p}/ca.pem\", server_name = \"localhost\" }}\n"
        ),
    );
    let mut c = Collector::start(&config, &dir.join("collector.log"));
    append(&input, 0, 2000, "tls", 0);
    wait_until(
        "2,000 rows over TLS",
        120,
        || numbers(&rx.received("tls"), "tls").0.len() == 2000,
        &c,
    );
    c.stop();
    let wrong = base_config(
        dir,
        &input,
        &format!(
            "[[forward]]\nname = \"wrong-ca\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{port}\"\n\
             tls = {{ ca_file = \"{p}/other-ca.pem\", server_name = \"localhost\" }}\n"
        ),
    );
    let out = Command::new(bin("infra-collector"))
        .args(["forward-test", "--config"])
        .arg(&wrong)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("wrong-ca: FAILED") && text.contains("certificate"),
        "{text}"
    );
}
