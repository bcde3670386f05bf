//! infra-query over S3 (moto_server on 127.0.0.1) gives the same answers as over a local
//! archive of the same lines: every table, the time windows, map access, the report.

use std::path::Path;
use std::process::{Command, Output};

use infralog_tests::s3_support::{Moto, credentials_file};
use infralog_tests::{ImportTo, bin, import_rfc3164, loghub, run_ok};

fn import(name: &str, archive: &str, dir: &Path, moto: &Moto) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[collector]\nstate_dir = {state:?}\n\n[archive]\npath = {archive:?}\n\n\
             [archive.s3]\nendpoint = \"http://127.0.0.1:{port}\"\ncredentials_file = {creds:?}\n",
            state = dir.join(format!("state-{name}")).display().to_string(),
            port = moto.port,
            creds = credentials_file(dir).display().to_string(),
        ),
    )
    .unwrap();
    for host in ["linux-1", "linux-2"] {
        import_rfc3164(
            host,
            ImportTo::Config(&config),
            &loghub("Linux/Linux_2k.log"),
        );
    }
}

fn query(archive: &str, dir: &Path, moto: &Moto, args: &[&str]) -> Output {
    run_ok(
        Command::new(bin("infra-query"))
            .args(["--archive", archive])
            .args(args)
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", moto.port),
            )
            .env("AWS_SHARED_CREDENTIALS_FILE", credentials_file(dir)),
    )
}

#[test]
fn s3_answers_equal_local_answers() {
    let moto = Moto::start();
    moto.create_bucket("query-s3");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local").display().to_string();
    let s3 = "s3://query-s3/site/a";
    import("local", &local, dir.path(), &moto);
    import("s3", s3, dir.path(), &moto);

    let queries = [
        "SELECT hostname, log_date, count(*) FROM logs GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT hostname, severity, sum(lines), sum(bytes) FROM stats GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT hostname, count(DISTINCT template_id) FROM templates GROUP BY 1 ORDER BY 1",
        "SELECT process_name, count(*) FROM logs_since('36500d') WHERE hostname = 'combo' \
         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
        "SELECT count(*), count(extra['file']) FROM logs WHERE priority <= 3",
        "SELECT date_trunc('hour', timestamp), count(*) FROM logs_between('2000-01-01', '2100-01-01') \
         GROUP BY 1 ORDER BY 1",
    ];
    for sql in queries {
        let a = query(&local, dir.path(), &moto, &["--format", "csv", "-c", sql]);
        let b = query(s3, dir.path(), &moto, &["--format", "csv", "-c", sql]);
        let (a, b) = (
            String::from_utf8(a.stdout).unwrap(),
            String::from_utf8(b.stdout).unwrap(),
        );
        assert_eq!(a, b, "{sql}");
        assert!(a.lines().count() > 1, "{sql}: no rows\n{a}");
    }
    let total = query(
        s3,
        dir.path(),
        &moto,
        &["--format", "csv", "-c", "SELECT count(*) FROM logs"],
    );
    assert_eq!(String::from_utf8(total.stdout).unwrap(), "count(*)\n4000\n");

    // The report: the same sections and numbers (the heading holds the time it ran).
    let strip = |o: Output| -> String {
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let a = strip(query(
        &local,
        dir.path(),
        &moto,
        &["report", "--since", "36500d"],
    ));
    let b = strip(query(
        s3,
        dir.path(),
        &moto,
        &["report", "--since", "36500d"],
    ));
    assert_eq!(a, b);
    assert!(a.contains("| combo    | 4000  |"), "{a}");
}
