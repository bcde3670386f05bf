//! Forwarding into an OpenSearch API (PyPI `osmem-server`, real per-item `_bulk` errors):
//! 50,000 JSON log lines of three tenants over two months, a mapping clash on a few of
//! them, and the collector killed with SIGKILL five times while it forwards. At the end
//! the server holds each row exactly once, in `logs-<tenant>-<yyyy.mm>` on event time; the
//! per-index counts equal the per-tenant, per-month counts of the archive; and the rows the
//! server refused are in the dead-letter file with the reason, each once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use infralog_tests::forward_support::{Collector, Osmem, http};
use infralog_tests::{bin, query_csv, run_ok};

const LINES: u64 = 50_000;
const KILLS: usize = 5;
/// Every this many lines, one whose `code` is not a number (the index maps it as long).
const CLASH_EVERY: u64 = 7_001;
/// Tenants as the lines name them; the third kind of line names none (tenant `default`).
const TENANTS: [&str; 2] = ["alpha", "Beta Corp"];

fn line(n: u64) -> String {
    // Half in November, half in December 2026 (UTC): two indices per tenant.
    let (day, month) = if n < LINES / 2 { (30, 11) } else { (1, 12) };
    let secs = n % 86_400;
    let time = format!(
        "2026-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        n % 1000
    );
    let tenant = match n % 3 {
        0 => format!(",\"tenant_id\":{:?}", TENANTS[0]),
        1 => format!(",\"tenant_id\":{:?}", TENANTS[1]),
        _ => String::new(),
    };
    let code = if n % CLASH_EVERY == CLASH_EVERY - 1 {
        format!("\"bad-{n}\"")
    } else {
        format!("\"{n}\"")
    };
    format!(
        "{{\"time\":\"{time}\",\"level\":\"info\",\"message\":\"forward line {n} of the test\",\
         \"code\":{code}{tenant}}}\n"
    )
}

fn index_of(n: u64) -> String {
    let tenant = match n % 3 {
        0 => "alpha",
        1 => "beta_corp",
        _ => "default",
    };
    let month = if n < LINES / 2 { "2026.11" } else { "2026.12" };
    format!("logs-{tenant}-{month}")
}

fn config(dir: &Path, input: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("collector.toml");
    fs::write(
        &path,
        format!(
            "[collector]\nhostname = \"fwd\"\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
             [archive]\npath = {archive:?}\n\n\
             [retention]\ndays = 0\n\n\
             [spool]\nsegment_mb = 1\nseal_secs = 1\nfsync_interval_ms = 100\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\npoll_interval_ms = 50\n\n\
             [[sources.file.inputs]]\npaths = [{input:?}]\nformat = \"json\"\nutc_offset = \"Z\"\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [[forward]]\nname = \"es\"\nkind = \"elasticsearch\"\nurl = {url:?}\n\
             index = \"logs-{{tenant}}-{{%Y.%m}}\"\nbatch_rows = 500\nmax_wait_ms = 200\n\
             retry_initial_ms = 100\nretry_max_ms = 2000\n",
            state = dir.join("state").display().to_string(),
            archive = dir.join("archive").display().to_string(),
            input = input.display().to_string(),
        ),
    )
    .unwrap();
    path
}

/// SplitMix64: reproducible kill moments (the seed is printed).
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn elasticsearch_gets_every_row_once_through_five_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let os = Osmem::start(&dir.join("osmem.log"));
    // The index maps `code` as a number: a line whose code is text is refused (400).
    let (status, body) = http(
        os.port,
        "PUT",
        "/_index_template/infralog-test",
        br#"{"index_patterns":["logs-*"],"priority":600,
             "template":{"mappings":{"properties":{"code":{"type":"long"}}}}}"#,
    );
    assert_eq!(status, 200, "{body}");

    let input = dir.join("app.log");
    fs::write(&input, "").unwrap();
    let config = config(dir, &input, &os.url());
    let log = dir.join("collector.log");
    let mut collector = Collector::start(&config, &log);

    let seed = std::env::var("INFRALOG_FORWARD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill seed {seed} (INFRALOG_FORWARD_SEED to repeat)");
    let mut rng = seed;

    // The lines arrive in ten bursts a second apart; the kills land while they are being
    // read, spooled, archived and forwarded.
    let mut f = fs::OpenOptions::new().append(true).open(&input).unwrap();
    let per_burst = LINES / 10;
    let mut kills = 0;
    for burst in 0..10 {
        let mut text = String::new();
        for n in burst * per_burst..(burst + 1) * per_burst {
            text.push_str(&line(n));
        }
        f.write_all(text.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400 + splitmix(&mut rng) % 1200));
        if burst % 2 == 1 && kills < KILLS {
            eprintln!("kill -9 after burst {burst}, server holds {}", os.total());
            collector.kill9_and_restart();
            kills += 1;
        }
    }
    // What is left: the forwarding itself, killed as it goes.
    let expected_docs = LINES
        - (0..LINES)
            .filter(|n| n % CLASH_EVERY == CLASH_EVERY - 1)
            .count() as u64;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(500 + splitmix(&mut rng) % 1500));
        eprintln!("kill -9 while forwarding, server holds {}", os.total());
        collector.kill9_and_restart();
        kills += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while os.total() < expected_docs {
        assert!(
            Instant::now() < deadline,
            "the server holds {} of {expected_docs} documents:\n{}",
            os.total(),
            collector.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    collector.stop();
    let log_text = collector.log_text();

    // The server: each row once, in the index of its tenant and month.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for n in (0..LINES).filter(|n| n % CLASH_EVERY != CLASH_EVERY - 1) {
        *expected.entry(index_of(n)).or_default() += 1;
    }
    let indices: BTreeMap<String, u64> = os.indices().into_iter().collect();
    assert_eq!(indices, expected, "documents per index\n{log_text}");

    // The archive: the same rows (all of them, the refused ones too), per tenant and month.
    let archive = dir.join("archive");
    let rows = query_csv(
        &archive,
        "SELECT coalesce(extra['tenant_id'], 'default') AS t, \
         date_part('month', timestamp) AS m, count(*) AS c, \
         sum(CASE WHEN extra['code'] LIKE 'bad-%' THEN 1 ELSE 0 END) AS bad \
         FROM logs GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let mut archived_total = 0;
    for r in &rows {
        let tenant = r[0].to_lowercase().replace(' ', "_");
        let month: u64 = r[1].parse::<f64>().unwrap() as u64;
        let (count, bad): (u64, u64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        archived_total += count;
        let index = format!("logs-{tenant}-2026.{month:02}");
        assert_eq!(
            indices.get(&index).copied().unwrap_or(0) + bad,
            count,
            "index {index}: server + refused = archive ({r:?})"
        );
    }
    assert_eq!(archived_total, LINES, "the archive has every line once");

    // The refused rows: in the dead-letter file with the server's reason, each row once
    // (a replay after a kill may have refused one again: same id).
    let dead = fs::read_to_string(dir.join("state/forward/es.dead-letter.ndjson")).unwrap();
    let mut ids = BTreeSet::new();
    for l in dead.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["status"], 400, "{l}");
        assert_eq!(v["error"]["type"], "mapper_parsing_exception", "{l}");
        assert!(
            v["document"]["code"].as_str().unwrap().starts_with("bad-"),
            "{l}"
        );
        ids.insert(v["action"]["create"]["_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len() as u64, LINES - expected_docs, "{dead}");

    // A document as stored: event time, tenant and fields.
    let (status, body) = http(
        os.port,
        "GET",
        "/logs-alpha-2026.11/_search?q=message:%22forward%20line%203%20of%22&size=1",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hit = v["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["_source"])
        .find(|s| s["message"] == "forward line 3 of the test")
        .unwrap_or_else(|| panic!("line 3 not found: {body}"));
    assert_eq!(hit["@timestamp"], "2026-11-30T00:00:03.003000Z");
    assert_eq!(hit["tenant_id"], "alpha");
    assert_eq!(hit["hostname"], "fwd");
    assert_eq!(hit["severity"], "INFO");

    // The status command: caught up, counters of the last run.
    let out = run_ok(
        std::process::Command::new(bin("infra-collector"))
            .args(["forward", "status", "--config"])
            .arg(&config),
    );
    let status = String::from_utf8(out.stdout).unwrap();
    assert!(status.contains("sink es"), "{status}");
    assert!(status.contains("lag: 0 sealed segment(s)"), "{status}");
    assert!(
        log_text.matches("infra-collector running").count() > KILLS,
        "{log_text}"
    );
}

/// `forward-test` sends one marked row to each sink and says which took it.
#[test]
fn forward_test_reports_each_sink() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let os = Osmem::start(&dir.join("osmem.log"));
    let dead = infralog_tests::s3_support::free_port();
    let config = dir.join("collector.toml");
    fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"probe\"\nstate_dir = {state:?}\n\n\
             [[forward]]\nname = \"es\"\nkind = \"elasticsearch\"\nurl = {url:?}\n\n\
             [[forward]]\nname = \"ls\"\nkind = \"logstash\"\naddress = \"127.0.0.1:{dead}\"\n",
            state = dir.join("state").display().to_string(),
            url = os.url(),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin("infra-collector"))
        .args(["forward-test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("es: ok"), "{text}");
    assert!(
        text.contains("ls: FAILED") && text.contains("cannot connect"),
        "{text}"
    );
    let indices = os.indices();
    assert_eq!(indices.len(), 1, "{indices:?}");
    assert!(indices[0].0.starts_with("logs-default-"), "{indices:?}");
    assert_eq!(indices[0].1, 1);
}
