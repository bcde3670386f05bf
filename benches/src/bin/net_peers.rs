//! Network receivers side by side: infra-collector's net source, rsyslog (`imptcp` /
//! `imudp`, run from the unpacked package) and syslog-ng, each pinned to one core
//! (`taskset -c 1`) and fed the same `loggen` stream pinned to the other (`taskset -c 0`):
//! 200-byte messages over TCP with newline framing, TCP octet-counted, TLS, and UDP at
//! fixed rates. Each receiver writes what it receives (rsyslog and syslog-ng to a file, we
//! to the Parquet archive through the spool). Reported per run: messages sent, received,
//! the receiver's CPU-seconds (user + system of the whole process, start to exit, from
//! `wait4`) and messages per CPU-second.
//!
//! `net_peers --collector target/release/infra-collector [--messages N] [--connections N]
//!  [--udp-rates 50000,100000] [--udp-messages N] [--only infralog,rsyslog,syslog-ng]`

use std::fs;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

const RSYSLOG_ROOT: &str = "/opt/infralog-peers/rsyslog";

#[derive(Parser)]
#[command(about = "infra-collector vs rsyslog vs syslog-ng receiving the same loggen load")]
struct Args {
    /// The release infra-collector.
    #[arg(long)]
    collector: PathBuf,
    /// Messages per TCP/TLS run (split over the connections).
    #[arg(long, default_value_t = 2_000_000)]
    messages: u64,
    #[arg(long, default_value_t = 4)]
    connections: u64,
    /// UDP send rates (messages per second, one loggen stream).
    #[arg(long, value_delimiter = ',', default_value = "50000,100000")]
    udp_rates: Vec<u64>,
    #[arg(long, default_value_t = 500_000)]
    udp_messages: u64,
    /// Receivers to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "infralog,rsyslog,syslog-ng"
    )]
    only: Vec<String>,
    /// Modes to run: tcp, octet, tls, udp.
    #[arg(long, value_delimiter = ',', default_value = "tcp,octet,tls,udp")]
    modes: Vec<String>,
    #[arg(long, default_value = "/tmp/infralog-net-bench")]
    work: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Tcp,
    Octet,
    Tls,
    Udp(u64),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Tcp => "TCP newline".into(),
            Mode::Octet => "TCP octet-counted".into(),
            Mode::Tls => "TLS octet-counted".into(),
            Mode::Udp(r) => format!("UDP {}k/s", r / 1000),
        }
    }
}

struct Outcome {
    sent: u64,
    received: u64,
    cpu_s: f64,
    wall_s: f64,
}

/// A receiver child; stopped with SIGTERM, its CPU time taken from `wait4`; killed if a
/// run fails before that.
struct Running {
    child: Child,
    started: Instant,
    stopped: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn new(child: Child) -> Running {
        Running {
            child,
            started: Instant::now(),
            stopped: false,
        }
    }

    fn stop(mut self) -> Result<(f64, f64)> {
        self.stopped = true;
        let pid = self.child.id() as i32;
        // SAFETY: signalling and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if rc != pid {
            bail!("wait4 failed");
        }
        let wall = self.started.elapsed().as_secs_f64();
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok((secs(ru.ru_utime) + secs(ru.ru_stime), wall))
    }
}

fn pinned(core: u32, program: &Path) -> Command {
    let mut c = Command::new("taskset");
    c.args(["-c", &core.to_string()]).arg(program);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn wait_tcp(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn certs(dir: &Path) -> Result<()> {
    if dir.join("server.pem").exists() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-keyout", "server.key", "-out", "server.pem"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()?
        .success();
    if !ok {
        bail!("openssl could not make a certificate");
    }
    Ok(())
}

fn start_infralog(args: &Args, dir: &Path, mode: Mode, port: u16) -> Result<Running> {
    let protocol = match mode {
        Mode::Udp(_) => "udp",
        Mode::Tls => "tls",
        _ => "tcp",
    };
    let tls = if mode == Mode::Tls {
        let c = args.work.join("certs");
        format!(
            "[sources.net.listeners.tls]\ncert = \"{}/server.pem\"\nkey = \"{}/server.key\"\n",
            c.display(),
            c.display()
        )
    } else {
        String::new()
    };
    let d = dir.display();
    let config = format!(
        "[collector]\nhostname = \"bench\"\nstate_dir = \"{d}/state\"\n\n\
         [archive]\npath = \"{d}/archive\"\n\n\
         [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
         [sources.journald]\nenabled = false\n\n[sources.file]\nenabled = false\n\n\
         [sources.containers]\ndocker = false\ncri = false\n\n\
         [sources.net]\nthreads = 1\n\n\
         [[sources.net.listeners]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"{protocol}\"\n{tls}"
    );
    fs::write(dir.join("collector.toml"), config)?;
    let child = pinned(1, &args.collector)
        .args(["run", "--config"])
        .arg(dir.join("collector.toml"))
        .env("INFRALOG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("collector.log"))?)
        .spawn()?;
    let running = Running::new(child);
    let deadline = running.started + Duration::from_secs(30);
    while !fs::read_to_string(dir.join("collector.log"))?.contains("net source listening") {
        if Instant::now() > deadline {
            bail!("infra-collector did not start listening");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(running)
}

fn start_rsyslog(dir: &Path, mode: Mode, port: u16) -> Result<Running> {
    let input = match mode {
        Mode::Udp(_) => format!(
            "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" \
             rcvbufSize=\"8m\")\n"
        ),
        _ => format!(
            "module(load=\"imptcp\")\ninput(type=\"imptcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
        ),
    };
    let d = dir.display();
    fs::write(
        dir.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\")\n{input}\
             action(type=\"omfile\" file=\"{d}/received.log\")\n"
        ),
    )?;
    let root = Path::new(RSYSLOG_ROOT);
    let child = pinned(1, &root.join("usr/sbin/rsyslogd"))
        .args(["-n", "-f"])
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .arg("-M")
        .arg(root.join("usr/lib/x86_64-linux-gnu/rsyslog"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("rsyslogd.log"))?)
        .spawn()?;
    Ok(Running::new(child))
}

fn start_syslog_ng(args: &Args, dir: &Path, mode: Mode, port: u16) -> Result<Running> {
    let c = args.work.join("certs");
    let source = match mode {
        Mode::Tcp => format!(
            "network(ip(\"127.0.0.1\") port({port}) transport(\"tcp\") max-connections(64) \
             log-iw-size(64000))"
        ),
        Mode::Octet => format!(
            "syslog(ip(\"127.0.0.1\") port({port}) transport(\"tcp\") max-connections(64) \
             log-iw-size(64000))"
        ),
        Mode::Tls => format!(
            "syslog(ip(\"127.0.0.1\") port({port}) transport(\"tls\") max-connections(64) \
             log-iw-size(64000) tls(key-file(\"{c}/server.key\") cert-file(\"{c}/server.pem\") \
             peer-verify(optional-untrusted)))",
            c = c.display()
        ),
        Mode::Udp(_) => {
            format!("network(ip(\"127.0.0.1\") port({port}) transport(\"udp\") so-rcvbuf(8388608))")
        }
    };
    let d = dir.display();
    fs::write(
        dir.join("syslog-ng.conf"),
        format!(
            "@version: 3.38\n\
             source s {{ {source}; }};\n\
             destination d {{ file(\"{d}/received.log\"); }};\n\
             log {{ source(s); destination(d); flags(flow-control); }};\n"
        ),
    )?;
    let child = pinned(1, Path::new("/usr/sbin/syslog-ng"))
        .args(["-F", "-e", "--no-caps", "-f"])
        .arg(dir.join("syslog-ng.conf"))
        .arg(format!("--persist-file={d}/persist"))
        .arg(format!("--pidfile={d}/pid"))
        .arg(format!("--control={d}/ctl"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("syslog-ng.log"))?)
        .spawn()?;
    Ok(Running::new(child))
}

/// Runs loggen pinned to core 0; returns the count it reports sent.
fn loggen(args: &Args, mode: Mode, port: u16) -> Result<u64> {
    let mut c = pinned(0, Path::new("/usr/bin/loggen"));
    c.args(["-s", "200", "-Q", "-I", "3600"]);
    match mode {
        Mode::Tcp => c.args(["-S", "-r", "10000000"]),
        Mode::Octet => c.args(["-S", "-P", "-r", "10000000"]),
        // The TLS plugin replaces the stream one (-S).
        Mode::Tls => c.args(["-P", "--use-ssl", "-r", "10000000"]),
        Mode::Udp(rate) => c.args(["-D", "-r", &rate.to_string()]),
    };
    let n = match mode {
        Mode::Udp(_) => args.udp_messages.to_string(),
        _ => {
            c.args(["--active-connections", &args.connections.to_string()]);
            (args.messages / args.connections).to_string()
        }
    };
    c.args(["-n", &n, "127.0.0.1", &port.to_string()]);
    let out = c.output().context("loggen")?;
    let text = String::from_utf8_lossy(&out.stderr);
    let at = text
        .rfind("count=")
        .with_context(|| format!("loggen printed no count: {text}"))?
        + 6;
    Ok(text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("0")
        .parse()?)
}

fn lines_in(path: &Path) -> u64 {
    fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Waits until `count` reaches `want` or stops growing for two seconds.
fn settle(want: u64, count: impl Fn() -> u64) -> u64 {
    let mut last = count();
    let mut still = Instant::now();
    loop {
        if last >= want {
            return last;
        }
        std::thread::sleep(Duration::from_millis(250));
        let now = count();
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() > Duration::from_secs(2) {
            return last;
        }
    }
}

/// Waits until the process uses (almost) no CPU for a second.
fn wait_idle(pid: u32) {
    let ticks = || -> u64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 (utime, stime) are the 12th and 13th after the comm.
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let mut last = ticks();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = ticks();
        if now - last <= 3 {
            return;
        }
        last = now;
    }
}

fn net_stat(log: &str, name: &str) -> u64 {
    log.lines()
        .find(|l| l.contains("net stats:"))
        .and_then(|l| {
            let at = l.find(&format!(" {name}="))? + name.len() + 2;
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn archived_rows(dir: &Path) -> u64 {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import duckdb\nprint(duckdb.sql(\"SELECT count(*) FROM read_parquet('{}/archive/logs/*/*/*.parquet')\").fetchall()[0][0])",
            dir.display()
        ))
        .output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

fn run_one(args: &Args, receiver: &str, mode: Mode) -> Result<Outcome> {
    let dir = args
        .work
        .join(format!("{receiver}-{mode:?}").replace(['(', ')'], ""));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let port = free_port();
    let running = match receiver {
        "infralog" => start_infralog(args, &dir, mode, port)?,
        "rsyslog" => start_rsyslog(&dir, mode, port)?,
        _ => start_syslog_ng(args, &dir, mode, port)?,
    };
    if !matches!(mode, Mode::Udp(_)) {
        wait_tcp(port)?;
    } else {
        std::thread::sleep(Duration::from_millis(500));
    }
    let sent = loggen(args, mode, port)?;
    let received = if receiver == "infralog" {
        // Received means archived: the collector archives everything it holds on stop.
        // Stopped once it has taken everything: when it goes idle.
        wait_idle(running.child.id());
        let (cpu_s, wall_s) = running.stop()?;
        let log = fs::read_to_string(dir.join("collector.log"))?;
        let rows = archived_rows(&dir);
        let messages = net_stat(&log, "messages");
        if rows != messages {
            eprintln!("warning: {receiver} {mode:?}: {messages} received but {rows} archived");
        }
        let _ = fs::remove_dir_all(dir.join("archive"));
        return Ok(Outcome {
            sent,
            received: rows,
            cpu_s,
            wall_s,
        });
    } else {
        settle(sent, || lines_in(&dir.join("received.log")))
    };
    let (cpu_s, wall_s) = running.stop()?;
    let received = received.max(lines_in(&dir.join("received.log")));
    let _ = fs::remove_file(dir.join("received.log"));
    Ok(Outcome {
        sent,
        received,
        cpu_s,
        wall_s,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    fs::create_dir_all(&args.work)?;
    certs(&args.work.join("certs"))?;
    let mut modes = Vec::new();
    for m in &args.modes {
        match m.as_str() {
            "tcp" => modes.push(Mode::Tcp),
            "octet" => modes.push(Mode::Octet),
            "tls" => modes.push(Mode::Tls),
            "udp" => modes.extend(args.udp_rates.iter().map(|&r| Mode::Udp(r))),
            other => bail!("unknown mode {other}"),
        }
    }
    println!(
        "| mode | receiver | sent | received | lost | receiver CPU-s | msgs per CPU-s | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for mode in modes {
        for receiver in &args.only {
            // rsyslog's TLS needs rsyslog-gnutls, which conflicts like rsyslog itself.
            if receiver == "rsyslog" && mode == Mode::Tls {
                continue;
            }
            let o = run_one(&args, receiver, mode)
                .with_context(|| format!("{receiver} {}", mode.label()))?;
            println!(
                "| {} | {receiver} | {} | {} | {} | {:.2} | {:.0}k | {:.1} |",
                mode.label(),
                o.sent,
                o.received,
                o.sent.saturating_sub(o.received),
                o.cpu_s,
                o.received as f64 / o.cpu_s / 1000.0,
                o.wall_s
            );
            std::io::stdout().flush()?;
        }
    }
    Ok(())
}
