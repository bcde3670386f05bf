//! OTLP logs over HTTP (protobuf) into a real receiver, PyPI `rotel` (rotel-agent with its
//! debug log of every record): every row arrives once, with its host as the resource,
//! the message as the body, the severity mapped, and the fields as attributes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use infralog_tests::bin;
use infralog_tests::forward_support::{Collector, Rotel};

const N: u64 = 5000;

#[test]
fn otlp_http_delivers_every_row_with_its_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rotel = Rotel::start(dir);
    let input = dir.join("app.log");
    let config = dir.join("collector.toml");
    fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"fwd\"\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
             [archive]\npath = {archive:?}\n\n[retention]\ndays = 0\n\n\
             [spool]\nseal_secs = 1\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\npoll_interval_ms = 50\n\n\
             [[sources.file.inputs]]\npaths = [{input:?}]\nformat = \"json\"\nutc_offset = \"Z\"\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [[forward]]\nname = \"otlp\"\nkind = \"otlp_http\"\nurl = {url:?}\nbatch_rows = 700\n",
            state = dir.join("state").display().to_string(),
            archive = dir.join("archive").display().to_string(),
            input = input.display().to_string(),
            url = rotel.url(),
        ),
    )
    .unwrap();
    let mut text = String::new();
    for n in 0..N {
        let tenant = if n % 2 == 0 { "alpha" } else { "beta" };
        text.push_str(&format!(
            "{{\"time\":\"2026-12-07T10:00:00Z\",\"level\":\"warn\",\"message\":\"otlp {n}\",\
             \"tenant_id\":\"{tenant}\"}}\n"
        ));
    }
    fs::File::create(&input)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let mut c = Collector::start(&config, &dir.join("collector.log"));
    let bodies = |out: &str| -> BTreeMap<u64, u64> {
        let mut m = BTreeMap::new();
        for l in out.lines() {
            if let Some(n) = l
                .trim()
                .strip_prefix("Body: Str(otlp ")
                .and_then(|r| r.strip_suffix(')'))
            {
                *m.entry(n.parse().unwrap()).or_default() += 1;
            }
        }
        m
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while (bodies(&rotel.output()).len() as u64) < N {
        assert!(
            Instant::now() < deadline,
            "{} of {N} records received\n{}",
            bodies(&rotel.output()).len(),
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    c.stop();
    let out = rotel.output();
    let got = bodies(&out);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>()
    );
    assert!(got.values().all(|&k| k == 1), "each record once");
    assert!(
        out.contains("-> host.name: Str(fwd)"),
        "{}",
        &out[..2000.min(out.len())]
    );
    assert_eq!(
        out.matches("-> tenant_id: Str(alpha)").count() as u64,
        N / 2
    );
    assert_eq!(out.matches("SEVERITY_NUMBER_WARN(13)").count() as u64, N);
    assert!(
        out.contains("Timestamp: 1796637600000000000"),
        "event time in ns"
    );
    assert!(
        out.contains("-> infralog.row_id: Str("),
        "the row's identity"
    );

    let t = Command::new(bin("infra-collector"))
        .args(["forward-test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&t.stdout);
    assert!(
        t.status.success() && report.contains("otlp: ok"),
        "{report}"
    );
}
