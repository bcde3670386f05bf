//! The net source's tests: a real `infra-collector run` with network listeners on
//! 127.0.0.1, the real clients that send to it (logger, loggen, rsyslog, syslog-ng,
//! openssl, Python), and DuckDB over the archived Parquet files to check what arrived.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, python, run_ok};

pub use crate::s3_support::free_port;

/// Where `cargo xtask setup` unpacks rsyslog (it conflicts with syslog-ng as a Debian
/// package, so it is run from there, never as a service).
pub const RSYSLOG_ROOT: &str = "/opt/infralog-peers/rsyslog";

/// `rsyslogd` and the environment it needs, or why it is missing.
pub fn rsyslogd() -> Result<(PathBuf, String), String> {
    let exe = Path::new(RSYSLOG_ROOT).join("usr/sbin/rsyslogd");
    if !exe.exists() {
        return Err(format!("{} missing: run cargo xtask setup", exe.display()));
    }
    let modules = Path::new(RSYSLOG_ROOT).join("usr/lib/x86_64-linux-gnu/rsyslog");
    Ok((exe, modules.display().to_string()))
}

/// Panics with a hint when a client program is not installed (setup installs them all).
pub fn require(program: &str) {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(program).exists());
    assert!(found, "{program} not found: run cargo xtask setup");
}

/// A collector with the given `[[sources.net.listeners]]` (TOML) and nothing else.
pub struct Receiver {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Receiver {
    pub fn start(listeners: &str) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let config = dir.path().join("collector.toml");
        fs::write(
            &config,
            format!(
                "[collector]\nhostname = \"receiver\"\nstate_dir = \"{root}/state\"\n\
                 chunk_max_age_ms = 100\n\n[archive]\npath = \"{root}/archive\"\n\n\
                 [spool]\nseal_secs = 1\n\n[sources.kmsg]\nenabled = false\n\n\
                 [sources.ebpf]\nenabled = false\n\n[sources.journald]\nenabled = false\n\n\
                 [sources.file]\nenabled = false\n\n\
                 [sources.containers]\ndocker = false\ncri = false\n\n{}\n",
                listeners.replace("$DIR", &root)
            ),
        )
        .unwrap();
        let child = Command::new(bin("infra-collector"))
            .args(["run", "--config"])
            .arg(&config)
            .env("INFRALOG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("collector.log")).unwrap())
            .spawn()
            .unwrap();
        let r = Receiver {
            dir,
            child: Some(child),
        };
        let want = listeners.matches("[[sources.net.listeners]]").count();
        let deadline = Instant::now() + Duration::from_secs(60);
        while r.log().matches("net source listening").count() < want {
            assert!(
                Instant::now() < deadline,
                "listeners did not start:\n{}",
                r.log()
            );
            if let Some(status) = r.exited() {
                panic!("collector exited with {status}:\n{}", r.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        // SAFETY: waitpid with WNOHANG on our own child does not block.
        let pid = self.child.as_ref()?.id() as i32;
        let mut status = 0;
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        (rc == pid).then(|| std::os::unix::process::ExitStatusExt::from_raw(status))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("collector.log")).unwrap_or_default()
    }

    /// Runs DuckDB over the archive with `logs` as a view of every Parquet file; prints
    /// each result row's values separated by tabs.
    pub fn duck(&self, sql: &str) -> String {
        let logs = self.path("archive/logs");
        if !logs.exists() {
            return String::new();
        }
        python(&format!(
            "import duckdb\n\
             duckdb.sql(\"CREATE VIEW logs AS SELECT * FROM read_parquet('{}/*/*/*.parquet', \
             hive_partitioning = true, union_by_name = true)\")\n\
             for r in duckdb.sql({sql:?}).fetchall():\n    \
             print('\\t'.join('' if v is None else str(v) for v in r))",
            logs.display()
        ))
    }

    pub fn count(&self, filter: &str) -> u64 {
        let out = self.duck(&format!("SELECT count(*) FROM logs WHERE {filter}"));
        out.trim().parse().unwrap_or(0)
    }

    /// Waits until the archive holds at least `n` rows matching `filter` (up to three
    /// minutes; the archive takes what the spool sealed).
    pub fn wait_for(&self, filter: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let c = self.count(filter);
            if c >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "archive holds {c} rows where {filter}, waited for {n}; collector log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Stops the collector (SIGTERM) and waits for it; returns its log.
    pub fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "collector exited with {status}:\n{}",
                self.log()
            );
        }
        self.log()
    }

    /// A counter of the listener named `listener` from the shutdown log (`net stats:`).
    pub fn stat(log: &str, listener: &str, name: &str) -> Option<u64> {
        let line = log
            .lines()
            .find(|l| l.contains("net stats:") && l.contains(listener))?;
        let key = format!("{name}=");
        let at = line.find(&format!(" {key}"))? + 1 + key.len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A peer server (rsyslog, syslog-ng) killed on drop.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on the TCP port; `log` is shown when nothing does.
pub fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A test CA and a server and a client certificate it signed (openssl), in `dir`:
/// `ca.pem`, `server.pem`/`server.key` (CN and SAN `localhost`, IP 127.0.0.1),
/// `client.pem`/`client.key` (SAN `client.example`), `other-ca.pem` (a CA that signed
/// nothing here).
pub fn test_pki(dir: &Path) {
    let openssl = |args: &[&str]| {
        run_ok(Command::new("openssl").args(args).current_dir(dir));
    };
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=infralog test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ]);
    }
    for (name, san) in [
        ("server", "DNS:localhost,IP:127.0.0.1"),
        ("client", "DNS:client.example"),
    ] {
        fs::write(
            dir.join(format!("{name}.ext")),
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .unwrap();
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }
}
