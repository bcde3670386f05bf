//! The archive on a real S3 API (moto_server on 127.0.0.1): what goes up reads back the
//! same as a local archive, and an outage under load loses and doubles nothing — the spool
//! holds the rows, fills, holds the source back, and drains when S3 returns.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::s3_support::{Moto, Relay, credentials_file, python_over_s3};
use infralog_tests::{ImportTo, bin, import_rfc3164, loghub, python, run_ok};

fn s3_config(dir: &Path, endpoint_port: u16, bucket: &str, prefix: &str, spool: &str) -> String {
    let path = dir.join("collector.toml");
    std::fs::write(
        &path,
        format!(
            "[collector]\nstate_dir = {state:?}\n\n[archive]\npath = \"s3://{bucket}/{prefix}\"\n\n\
             [archive.s3]\nendpoint = \"http://127.0.0.1:{endpoint_port}\"\n\
             credentials_file = {creds:?}\n\n[spool]\n{spool}\n",
            state = dir.join("state").display().to_string(),
            creds = credentials_file(dir).display().to_string(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn import_to_s3_reads_back_the_same_as_a_local_archive() {
    let moto = Moto::start();
    moto.create_bucket("logs-a");
    let dir = tempfile::tempdir().unwrap();
    let config = s3_config(dir.path(), moto.port, "logs-a", "fleet/prod", "");
    let input = loghub("Linux/Linux_2k.log");
    import_rfc3164("h1", ImportTo::Config(Path::new(&config)), &input);
    let local = dir.path().join("local");
    import_rfc3164("h1", ImportTo::Archive(&local), &input);
    let query = "SELECT process_name, count(*) AS n, CAST(min(timestamp) AS VARCHAR) AS first FROM logs \
                 GROUP BY 1 ORDER BY 1";
    let from_s3 = python_over_s3(
        moto.port,
        "logs-a",
        "fleet/prod",
        &format!(
            "logs = dataset().to_table()\nprint(json.dumps(duckdb.sql(\"{query}\").fetchall(), default=str))"
        ),
    );
    let from_local = python(&format!(
        "import duckdb, json\n\
         logs = duckdb.read_parquet('{}/logs/*/*/*.parquet', hive_partitioning=True)\n\
         print(json.dumps(duckdb.sql(\"{query}\").fetchall(), default=str))",
        local.display()
    ));
    assert_eq!(from_s3, from_local);
    let rows: Vec<(String, u64, String)> = serde_json::from_str(&from_s3).unwrap();
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 2000);
    assert!(rows.len() > 10, "{rows:?}");

    // infra-query reads the same bucket, with the settings from the standard variables.
    let sql = "SELECT process_name, count(*) FROM logs GROUP BY 1 ORDER BY 1";
    let ours = run_ok(
        Command::new(bin("infra-query"))
            .args([
                "--archive",
                "s3://logs-a/fleet/prod",
                "--format",
                "csv",
                "-c",
                sql,
            ])
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", moto.port),
            )
            .env("AWS_SHARED_CREDENTIALS_FILE", credentials_file(dir.path())),
    );
    let ours: Vec<String> = String::from_utf8(ours.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    let expect: Vec<String> = rows.iter().map(|r| format!("{},{}", r.0, r.1)).collect();
    assert_eq!(ours, expect);
}

#[test]
fn s3_outage_under_load_loses_nothing_and_doubles_nothing() {
    const LINES: usize = 60_000;
    let outage = Duration::from_secs(
        std::env::var("INFRALOG_S3_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let moto = Moto::start();
    moto.create_bucket("logs-b");
    let relay = Relay::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    // Small segments and a small spool, so that the outage fills it.
    let config = s3_config(
        dir.path(),
        relay.port,
        "logs-b",
        "p",
        "segment_mb = 1\nmax_mb = 3\nseal_secs = 1\nfsync_interval_ms = 50",
    );
    let input = dir.path().join("numbered.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..LINES {
        writeln!(
            f,
            "<13>Nov 29 12:{:02}:{:02} web-{} app[{}]: request {i:07} served in {} ms",
            i / 3600 % 60,
            i / 60 % 60,
            i % 3,
            1000 + i % 7,
            i % 997
        )
        .unwrap();
    }
    drop(f);

    relay.cut();
    let log = dir.path().join("import.log");
    let mut import = Command::new(bin("infra-collector"))
        .args(["import", "--format", "rfc3164", "--config", &config])
        .arg(&input)
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The spool fills while S3 is away, and the reader is held back.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("spool full")
    {
        assert!(
            import.try_wait().unwrap().is_none(),
            "import ended while S3 was unreachable:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(Instant::now() < deadline, "the spool never filled");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(outage);
    assert!(import.try_wait().unwrap().is_none(), "import waits for S3");
    let listed = python_over_s3(moto.port, "logs-b", "p", "print(len(objects()))");
    assert_eq!(listed.trim(), "0", "nothing reached S3 during the outage");

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = import.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "import did not drain after S3 returned"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "import failed:\n{stderr}");
    assert!(stderr.contains("spool has room again"), "{stderr}");
    let counts = python_over_s3(
        moto.port,
        "logs-b",
        "p",
        "logs = dataset().to_table()\n\
         print(json.dumps(duckdb.sql(\"SELECT count(*), count(DISTINCT message), \
         count(DISTINCT hostname) FROM logs\").fetchall()))",
    );
    let counts: Vec<(u64, u64, u64)> = serde_json::from_str(&counts).unwrap();
    assert_eq!(counts, [(LINES as u64, LINES as u64, 3)], "{stderr}");
}

#[test]
fn retention_deletes_old_days_on_s3_and_a_dry_run_deletes_nothing() {
    let moto = Moto::start();
    moto.create_bucket("logs-c");
    let dir = tempfile::tempdir().unwrap();
    let config = s3_config(dir.path(), moto.port, "logs-c", "r", "");
    let today = String::from_utf8(run_ok(Command::new("date").args(["-u", "+%Y-%m-%d"])).stdout)
        .unwrap()
        .trim()
        .to_string();
    let input = dir.path().join("days.log");
    let mut text = String::new();
    for (day, host) in [("2020-01-01", "a"), ("2020-01-02", "b"), (&today[..], "a")] {
        for i in 0..5 {
            text.push_str(&format!(
                "<14>1 {day}T10:00:0{i}Z {host} app 1 - - line {i}\n"
            ));
        }
    }
    std::fs::write(&input, text).unwrap();
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--format", "rfc5424", "--config", &config])
            .arg(&input),
    );
    let objects = || python_over_s3(moto.port, "logs-c", "r", "print(sorted(objects()))");
    let before = objects();
    // One logs and one stats object per host-day, and the templates the import mined
    // (one template, last seen today).
    assert_eq!(before.matches(".parquet").count(), 7, "{before}");

    let dry = run_ok(Command::new(bin("infra-collector")).args([
        "retention",
        "--dry-run",
        "--config",
        &config,
    ]));
    let dry = String::from_utf8(dry.stdout).unwrap();
    assert!(dry.contains("would delete 4 partition(s)"), "{dry}");
    assert_eq!(objects(), before);

    let done =
        run_ok(Command::new(bin("infra-collector")).args(["retention", "--config", &config]));
    let done = String::from_utf8(done.stdout).unwrap();
    assert!(
        done.contains("deleted logs/hostname=a/log_date=2020-01-01"),
        "{done}"
    );
    assert!(
        done.contains("deleted logs/hostname=b/log_date=2020-01-02"),
        "{done}"
    );
    assert!(
        done.contains("deleted stats/hostname=b/log_date=2020-01-02"),
        "{done}"
    );
    let after = objects();
    assert_eq!(after.matches(".parquet").count(), 3, "{after}");
    assert!(after.contains(&format!("log_date={today}")), "{after}");
}
