//! A real S3 API for the tests: `moto_server` (PyPI, installed by `cargo xtask setup`) on
//! 127.0.0.1, a TCP relay in front of it that a test can cut to make S3 unreachable, and
//! pyarrow's S3 filesystem to read back what was written.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KEY_ID: &str = "AKIDINFRALOGTEST";
pub const SECRET: &str = "infralog-test-secret";

/// A port nobody uses right now, for TCP and UDP alike. It is drawn below the kernel's
/// ephemeral range (32768 and up): a port from that range can be taken as the local port
/// of some test's outgoing connection before the server meant for it binds it.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    for _ in 0..1000 {
        let mut x = seed.wrapping_add(NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        let port = 20_000 + (x % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto_server on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (python3 -m moto.server; cargo xtask setup installs it)");
        let moto = Moto { child, port };
        wait_for_port(port, "moto_server");
        moto
    }

    /// Creates a bucket (moto does not check signatures on this call).
    pub fn create_bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay to a backend port that can be cut (every connection refused and every open
/// one closed) and restored: S3 going away and coming back, as the client sees it.
pub struct Relay {
    pub port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(backend: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", backend)) else {
                    continue;
                };
                {
                    let mut o = open2.lock().unwrap();
                    o.push(client.try_clone().unwrap());
                    o.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Relay { port, up, open }
    }

    /// S3 is unreachable from now on.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A shared credentials file with the test keys.
pub fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("aws-credentials");
    std::fs::write(
        &path,
        format!("[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    path
}

/// Python that opens the bucket with pyarrow's S3 filesystem as `fs`, defines `dataset()`
/// (the logs dataset under `prefix`, hive partitioning) and `objects()` (every object under
/// the bucket), then runs `body`.
pub fn python_over_s3(port: u16, bucket: &str, prefix: &str, body: &str) -> String {
    crate::python(&format!(
        r#"
import duckdb, json
import pyarrow.dataset as pads
from pyarrow import fs as pafs
fs = pafs.S3FileSystem(access_key="{KEY_ID}", secret_key="{SECRET}",
                       endpoint_override="127.0.0.1:{port}", scheme="http", region="us-east-1")
def dataset():
    return pads.dataset("{bucket}/{prefix}/logs", filesystem=fs, format="parquet", partitioning="hive")
def objects():
    sel = pafs.FileSelector("{bucket}", recursive=True)
    return [f.path for f in fs.get_file_info(sel) if f.type == pafs.FileType.File]
{body}
"#
    ))
}
