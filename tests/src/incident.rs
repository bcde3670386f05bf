//! A small incident on two hosts, as RFC 5424 lines: what the anomalies test expects the
//! detector to find, and what the console test searches, charts and opens context on.

pub const MIN: i64 = 60_000_000;
/// 2026-03-02T00:00:00Z.
pub const T0: i64 = 1_772_409_600_000_000;

pub fn line(host: &str, at_us: i64, pri: u8, msg: &str) -> String {
    let t = chrono::DateTime::from_timestamp_micros(at_us)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!("<{pri}>1 {t} {host} app 7 - - {msg}\n")
}

/// Two hosts, 20 lines a minute each for three hours; h2 has an error storm at 2:00–2:05
/// (`write to replica db-0..3 failed`, half a second apart), h1 falls silent at 2:30.
pub fn history() -> String {
    let mut out = Vec::new();
    for m in 0..180i64 {
        for i in 0..20i64 {
            let at = T0 + m * MIN + i * 3_000_000;
            for host in ["h1", "h2"] {
                if host == "h1" && m >= 150 {
                    continue;
                }
                let msg = match i % 4 {
                    0 => format!("session {} opened for user u{}", m * 20 + i, i),
                    1 => format!("served /static/img{}.png in {} ms", i, m % 17),
                    2 => format!("queue depth {} workers {}", i * 3, 8),
                    _ => format!("heartbeat ok seq={}", m * 20 + i),
                };
                out.push((at, line(host, at, 14, &msg)));
            }
            if (120..125).contains(&m) {
                for j in 0..4 {
                    let at = at + j * 500_000;
                    let msg = format!("write to replica db-{j} failed: connection reset by peer");
                    out.push((at, line("h2", at, 11, &msg)));
                }
            }
        }
    }
    out.sort_by_key(|l| l.0);
    out.into_iter().map(|l| l.1).collect()
}
