//! A dead sink never stalls the archive: with `when_full = "drop_oldest"` it holds at most
//! its `buffer_max_mb` of the spool, the archive gets every row, the loss is counted in
//! `forward status`, and once the receiver is back the sink sends what the spool still
//! holds for it — from its durable cursor, each row once.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use infralog_tests::forward_support::{Collector, JsonReceiver};
use infralog_tests::net_support::require;
use infralog_tests::{bin, query_csv, run_ok};

const LINES: u64 = 60_000;

#[test]
fn a_dead_sink_drops_its_oldest_segments_and_the_archive_gets_everything() {
    require("syslog-ng");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rx = JsonReceiver::start(&dir.join("syslog-ng"));
    rx.stop();
    let input = dir.join("app.log");
    let mut text = String::new();
    for n in 0..LINES {
        text.push_str(&format!(
            "{{\"time\":\"2026-12-07T10:00:00Z\",\"message\":\"held {n} {}\"}}\n",
            "p".repeat(100)
        ));
    }
    fs::write(&input, text).unwrap();
    let config = dir.join("collector.toml");
    fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"fwd\"\nstate_dir = {state:?}\nchunk_rows = 2000\n\n\
             [archive]\npath = {archive:?}\n\n[retention]\ndays = 0\n\n\
             [spool]\nsegment_mb = 1\nmax_mb = 8\nseal_secs = 1\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\npoll_interval_ms = 50\n\n\
             [[sources.file.inputs]]\npaths = [{input:?}]\nformat = \"json\"\nutc_offset = \"Z\"\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [[forward]]\nname = \"dead\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{port}\"\n\
             buffer_max_mb = 2\nwhen_full = \"drop_oldest\"\nretry_initial_ms = 100\nretry_max_ms = 500\n",
            state = dir.join("state").display().to_string(),
            archive = dir.join("archive").display().to_string(),
            input = input.display().to_string(),
            port = rx.tcp,
        ),
    )
    .unwrap();
    let log = dir.join("collector.log");
    let mut c = Collector::start(&config, &log);
    let archive = dir.join("archive");
    let count = || -> u64 {
        query_csv(&archive, "SELECT count(*) FROM logs")
            .first()
            .and_then(|r| r[0].parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while count() < LINES {
        assert!(
            Instant::now() < deadline,
            "the archive holds {} of {LINES} rows with a dead sink:\n{}",
            count(),
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(count(), LINES);
    std::thread::sleep(Duration::from_secs(2));
    let spool = dir.join("state/spool");
    let held: u64 = fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        held <= 3 << 20,
        "the dead sink holds {held} bytes, over its 2 MB limit plus a segment"
    );
    assert!(held > 0, "the dead sink holds archived segments");
    // infra-query with the spool: the archived segments a sink still holds count once.
    let out = run_ok(
        Command::new(bin("infra-query"))
            .arg("--archive")
            .arg(&archive)
            .arg("--spool")
            .arg(&spool)
            .args([
                "--format",
                "csv",
                "-c",
                "SELECT count(*), count(DISTINCT message) FROM logs",
            ]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().nth(1),
        Some(format!("{LINES},{LINES}").as_str()),
        "{text}"
    );
    let status = String::from_utf8(
        run_ok(
            Command::new(bin("infra-collector"))
                .args(["forward", "status", "--config"])
                .arg(&config),
        )
        .stdout,
    )
    .unwrap();
    let dropped: u64 = status
        .split("dropped ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{status}"));
    assert!(dropped > 0, "drops are counted: {status}");
    assert!(
        status.contains("cannot connect"),
        "last error shown: {status}"
    );
    assert!(
        c.log_text().contains("drop_oldest"),
        "drops are logged:\n{}",
        c.log_text()
    );
    c.stop();

    // The receiver is back: the sink sends what the spool kept for it, each row once.
    rx.restart();
    let mut c = Collector::start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let n = rx.received("tcp").len();
        if n > 0 && n == last {
            break;
        }
        last = n;
        assert!(Instant::now() < deadline, "{}", c.log_text());
    }
    c.stop();
    let docs = rx.received("tcp");
    let numbers: BTreeSet<u64> = docs
        .iter()
        .map(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers.len(), docs.len(), "each row once");
    eprintln!(
        "{dropped} segment(s) dropped for the dead sink; {} rows sent once it was back",
        numbers.len()
    );
    let newest = *numbers.last().unwrap();
    assert_eq!(
        newest,
        LINES - 1,
        "it resumed with the newest rows kept for it"
    );
    assert!(
        (numbers.len() as u64) < LINES,
        "what was dropped for it is not sent"
    );
    // The kept rows are the newest ones, without a gap.
    let first = *numbers.first().unwrap();
    assert_eq!(
        numbers.len() as u64,
        LINES - first,
        "no gap after the drops"
    );
}
