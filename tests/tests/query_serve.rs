//! `infra-query serve --pg`: psql (Debian's postgresql-client) and psycopg (PyPI) connect
//! with the password from the file, list the tables, run what Grafana's PostgreSQL data
//! source sends for a time-series panel, and get the numbers `infra-query -c` gives; a
//! wrong password and every write are refused.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::s3_support::free_port;
use infralog_tests::{ImportTo, bin, import_rfc3164, loghub, query_csv, run_ok};

const PASSWORD: &str = "s3cr3t-for-tests";

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(archive: &Path, dir: &Path) -> Server {
        let password_file = dir.join("pg-password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let port = free_port();
        let log = dir.join("serve.log");
        let child = Command::new(bin("infra-query"))
            .arg("--archive")
            .arg(archive)
            .args(["serve", "--pg", &port.to_string(), "--password-file"])
            .arg(&password_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "serve --pg did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, port, log }
    }

    fn psql(&self, password: &str, sql: &str) -> Output {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "infralog",
                "-d",
                "infralog",
                "-X",
                "-A",
                "-t",
                "-F",
                ",",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("psql (postgresql-client) is installed by cargo xtask setup")
    }

    fn psql_ok(&self, sql: &str) -> Vec<String> {
        let out = self.psql(PASSWORD, sql);
        assert!(
            out.status.success(),
            "psql {sql:?}: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An archive made by the collector from loghub's Linux sample.
fn archive(dir: &Path) -> PathBuf {
    let archive = dir.join("archive");
    import_rfc3164(
        "pg-host",
        ImportTo::Archive(&archive),
        &loghub("Linux/Linux_2k.log"),
    );
    archive
}

/// What Grafana's PostgreSQL data source sends for a time-series panel over
/// `SELECT $__timeGroupAlias(timestamp, '1h'), count(*) … WHERE $__timeFilter(timestamp)`:
/// its macros expanded to plain SQL.
fn grafana_query(from: &str, to: &str) -> String {
    format!(
        "SELECT floor(extract(epoch from timestamp)/3600)*3600 AS \"time\", \
         count(*) AS \"lines\" FROM logs \
         WHERE timestamp BETWEEN '{from}' AND '{to}' \
         GROUP BY 1 ORDER BY 1"
    )
}

#[test]
fn psql_and_psycopg_get_the_numbers_infra_query_gives() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let server = Server::start(&archive, dir.path());

    // The same count both ways.
    let ours = query_csv(&archive, "SELECT count(*) FROM logs");
    assert_eq!(
        server.psql_ok("SELECT count(*) FROM logs"),
        vec![ours[0][0].clone()]
    );
    assert_eq!(ours[0][0], "2000");

    // psql's \dt lists the archive's tables through pg_catalog.
    let tables = server.psql_ok("\\dt");
    for t in ["logs", "stats", "templates"] {
        assert!(
            tables.iter().any(|l| l.split(',').nth(1) == Some(t)),
            "{t} missing from \\dt: {tables:?}"
        );
    }

    // What Grafana's query builder sends to list a table's columns.
    let columns = server.psql_ok(
        r#"SELECT quote_ident(column_name) AS "column", data_type AS "type"
        FROM information_schema.columns
        WHERE
          CASE WHEN array_length(parse_ident('public.logs'),1) = 2
            THEN quote_ident(table_schema) = (parse_ident('public.logs'))[1]
              AND quote_ident(table_name) = (parse_ident('public.logs'))[2]
            ELSE quote_ident(table_name) = 'public.logs'
          END"#,
    );
    assert!(
        columns.iter().any(|c| c.starts_with("timestamp,")),
        "{columns:?}"
    );
    assert!(
        columns.iter().any(|c| c.starts_with("message,")),
        "{columns:?}"
    );

    // The Grafana time-series query over the whole range.
    let range = query_csv(
        &archive,
        "SELECT to_char(min(timestamp), '%Y-%m-%dT%H:%M:%SZ'), \
                to_char(max(timestamp) + INTERVAL '1 second', '%Y-%m-%dT%H:%M:%SZ') FROM logs",
    );
    let (from, to) = (range[0][0].clone(), range[0][1].clone());
    let sql = grafana_query(&from, &to);
    let ours: Vec<String> = query_csv(&archive, &sql)
        .into_iter()
        .map(|r| r.join(","))
        .collect();
    let theirs = server.psql_ok(&sql);
    assert!(ours.len() > 5, "{ours:?}");
    assert_eq!(theirs, ours);
    let total: u64 = ours
        .iter()
        .map(|r| r.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    println!("grafana query: {} buckets, {total} lines", ours.len());

    // psycopg: list tables, then the same query with the time range as parameters, as a
    // Python client (or Grafana's SQL with bound variables) sends it.
    let script = format!(
        r#"
import json, datetime, psycopg
conn = psycopg.connect(host="127.0.0.1", port={port}, user="infralog", password="{PASSWORD}", dbname="infralog", connect_timeout=10)
cur = conn.cursor()
cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
tables = [r[0] for r in cur.fetchall()]
frm = datetime.datetime.fromisoformat("{from}".replace("Z", "+00:00"))
to = datetime.datetime.fromisoformat("{to}".replace("Z", "+00:00"))
cur.execute("SELECT floor(extract(epoch from timestamp)/3600)*3600 AS time, count(*) AS lines FROM logs WHERE timestamp >= %s AND timestamp <= %s GROUP BY 1 ORDER BY 1", (frm, to))
rows = [[float(t), int(n)] for t, n in cur.fetchall()]
cur.execute("SELECT count(*) FROM logs_since('36500d')")
since = cur.fetchone()[0]
print(json.dumps({{"tables": tables, "rows": rows, "since": since}}))
"#,
        port = server.port
    );
    let out = run_ok(Command::new("python3").arg("-c").arg(&script));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables: Vec<&str> = got["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in ["logs", "stats", "templates"] {
        assert!(tables.contains(&t), "{tables:?}");
    }
    let rows: Vec<String> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{},{}", r[0], r[1]))
        .collect();
    assert_eq!(rows, ours);
    assert_eq!(got["since"], 2000);
}

#[test]
fn wrong_passwords_and_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let server = Server::start(&archive, dir.path());
    let out = server.psql("not-the-password", "SELECT 1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase()
            .contains("password authentication failed"),
        "{err}"
    );

    for sql in [
        "CREATE TABLE x (a INT)",
        "INSERT INTO logs (message) VALUES ('x')",
        "DROP TABLE logs",
        "COPY (SELECT 1) TO '/tmp/infralog-pg-copy.csv'",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let out = server.psql(PASSWORD, sql);
        assert!(!out.status.success(), "{sql} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("read-only"), "{sql}: {err}");
    }
    assert!(!Path::new("/tmp/infralog-pg-copy.csv").exists());
    // Still serving, and still the same data.
    assert_eq!(server.psql_ok("SELECT count(*) FROM logs"), vec!["2000"]);
}
