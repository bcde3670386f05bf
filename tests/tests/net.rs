//! The net source end to end: a real `infra-collector run` with listeners on 127.0.0.1,
//! real clients sending to it (logger, loggen, Python's SysLogHandler, a JSON-lines
//! sender, raw device-style traffic), and DuckDB over the archived Parquet files: every
//! line sent over TCP is there exactly once with the right fields, malformed messages are
//! kept and flagged, UDP loss is counted.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use infralog_tests::net_support::{Receiver, free_port, require};
use infralog_tests::{python, run_ok};

fn listeners(specs: &[(&str, u16, &str)]) -> String {
    specs
        .iter()
        .map(|(proto, port, extra)| {
            format!(
                "[[sources.net.listeners]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"{proto}\"\n{extra}\n"
            )
        })
        .collect()
}

fn hostname() -> String {
    String::from_utf8(run_ok(&mut Command::new("hostname")).stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// `logger` over TCP (newline, octet counting, RFC 3164 and 5424) and UDP, and Python's
/// SysLogHandler over both: each message once, with its tag, severity, facility,
/// hostname and the sender's address.
#[test]
fn logger_and_python_clients() {
    require("logger");
    let (tcp, udp) = (free_port(), free_port());
    let mut r = Receiver::start(&listeners(&[("tcp", tcp, ""), ("udp", udp, "")]));
    let (tp, up) = (tcp.to_string(), udp.to_string());
    let cases: [(&str, Vec<&str>); 6] = [
        ("tcp-newline", vec!["--tcp", "--port", &tp]),
        ("tcp-octet", vec!["--tcp", "--octet-count", "--port", &tp]),
        ("tcp-rfc3164", vec!["--tcp", "--rfc3164", "--port", &tp]),
        ("tcp-rfc5424", vec!["--tcp", "--rfc5424", "--port", &tp]),
        ("udp-rfc5424", vec!["--udp", "--rfc5424", "--port", &up]),
        ("udp-rfc3164", vec!["--udp", "--rfc3164", "--port", &up]),
    ];
    for (tag, args) in &cases {
        run_ok(
            Command::new("logger")
                .args(["--server", "127.0.0.1", "-p", "local3.warning", "-t", tag])
                .args(args)
                .arg(format!("marker {tag} message")),
        );
    }
    python(&format!(
        "import logging, logging.handlers, socket\n\
         for kind, port in (('udp', {udp}), ('tcp', {tcp})):\n    \
         h = logging.handlers.SysLogHandler(address=('127.0.0.1', port), \
         facility='local4', socktype=socket.SOCK_DGRAM if kind == 'udp' else socket.SOCK_STREAM)\n    \
         h.setFormatter(logging.Formatter('pyapp: %(message)s'))\n    \
         log = logging.getLogger(kind)\n    log.addHandler(h)\n    log.setLevel(logging.INFO)\n    \
         for i in range(3):\n        log.error('marker python-%s %d', kind, i)\n    h.close()\n"
    ));
    let expected = cases.len() as u64 + 6;
    r.wait_for("message LIKE '%marker %'", expected);
    let log = r.stop();

    let host = hostname();
    for (tag, _) in &cases {
        let rows = r.duck(&format!(
            "SELECT source, hostname, process_name, severity, facility, \
             extra['peer'] LIKE '127.0.0.1:%' FROM logs WHERE message = 'marker {tag} message'"
        ));
        assert_eq!(
            rows.trim(),
            format!("net\t{host}\t{tag}\tWARNING\tlocal3\tTrue"),
            "{tag}\n{log}"
        );
    }
    for kind in ["udp", "tcp"] {
        let rows = r.duck(&format!(
            "SELECT count(*), count(DISTINCT message), min(severity), min(facility) FROM logs \
             WHERE message LIKE '%marker python-{kind} %'"
        ));
        assert_eq!(rows.trim(), "3\t3\tERROR\tlocal4", "python {kind}\n{log}");
    }
    assert_eq!(r.count("true"), expected, "nothing else, nothing twice");
    assert_eq!(Receiver::stat(&log, "tcp://", "messages"), Some(4 + 3));
    assert_eq!(Receiver::stat(&log, "udp://", "datagrams"), Some(2 + 3));
}

/// loggen bulk load over TCP (newline and octet-counted, several connections) and UDP:
/// every TCP message exactly once; over UDP, what arrived plus the kernel drops the
/// collector reports is what was sent.
#[test]
fn loggen_bulk_every_tcp_line_once_udp_loss_counted() {
    require("loggen");
    let (tcp, udp) = (free_port(), free_port());
    let mut r = Receiver::start(&listeners(&[("tcp", tcp, ""), ("udp", udp, "")]));
    let loggen = |args: &[&str], port: u16| {
        let out = run_ok(
            Command::new("loggen")
                // loggen's defaults are 1000 messages a second for ten seconds.
                .args(["-s", "200", "-Q", "-r", "1000000", "-I", "3600"])
                .args(args)
                .args(["127.0.0.1", &port.to_string()]),
        );
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        // "... count=N, ..." on the last line.
        let at = text.rfind("count=").expect("loggen reports its count") + 6;
        text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let newline = loggen(&["-S", "-n", "50000", "--active-connections", "2"], tcp);
    let octet = loggen(
        &["-S", "-P", "-n", "50000", "--active-connections", "2"],
        tcp,
    );
    let dgram = loggen(&["-D", "-n", "20000"], udp);
    assert_eq!(newline, 100_000);
    assert_eq!(octet, 100_000);
    r.wait_for("true", newline + octet);
    let log = r.stop();
    let tcp_messages = Receiver::stat(&log, "tcp://", "messages").unwrap();
    assert_eq!(tcp_messages, newline + octet, "{log}");
    let udp_messages = Receiver::stat(&log, "udp://", "messages").unwrap();
    let udp_drops = Receiver::stat(&log, "udp://", "kernel_drops").unwrap();
    // Over TCP: exactly once per connection and sequence number.
    let total = newline + octet + udp_messages;
    assert_eq!(
        r.count("true"),
        total,
        "archived rows = TCP messages + UDP messages received\n{log}"
    );
    let distinct = r.duck("SELECT count(DISTINCT extra['peer'] || message) FROM logs");
    assert_eq!(distinct.trim(), total.to_string(), "no row twice");
    assert_eq!(
        udp_messages + udp_drops,
        dgram,
        "UDP: received {udp_messages} + kernel drops {udp_drops} = sent {dgram}"
    );
    eprintln!("UDP: sent {dgram}, received {udp_messages}, kernel drops {udp_drops}");
}

/// JSON lines (Logstash `json_lines`) over TCP and UDP: well-known keys to columns, the
/// rest in `extra` flattened with dots, invalid JSON kept whole and flagged.
#[test]
fn json_lines_over_tcp_and_udp() {
    let (tcp, udp) = (free_port(), free_port());
    let fmt = "format = \"json_lines\"";
    let mut r = Receiver::start(&listeners(&[("tcp", tcp, fmt), ("udp", udp, fmt)]));
    let lines = concat!(
        r#"{"@timestamp":"2026-11-29T10:00:00.250Z","message":"json ecs","log":{"level":"warn"},"host":{"name":"web1"},"service":{"name":"api"},"process":{"pid":4242},"user":{"id":"u1"},"tags":["a","b"]}"#,
        "\n",
        r#"{"time":"2026-11-29T10:00:01Z","msg":"json legacy","level":"error","host":"web2","peer":"app-field"}"#,
        "\n",
        r#"{"message":"json syslog","log":{"syslog":{"facility":{"code":4,"name":"auth"},"severity":{"code":2},"appname":"sshd","hostname":"gw1","procid":"77"}}}"#,
        "\n",
        "not json {\n",
        "   \n",
    );
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    s.write_all(lines.as_bytes()).unwrap();
    drop(s);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(
        br#"{"message":"json udp","severity":"info"}"#,
        ("127.0.0.1", udp),
    )
    .unwrap();
    r.wait_for("true", 5);
    let log = r.stop();
    let row = |m: &str| {
        r.duck(&format!(
            "SELECT source, hostname, severity, process_name, process_id, epoch_ms(timestamp), \
             extra['service.name'], extra['user.id'], extra['tags'], extra['json.peer'], \
             extra['parse_error'] IS NOT NULL FROM logs WHERE message = '{m}'"
        ))
        .trim()
        .to_string()
    };
    assert_eq!(
        row("json ecs"),
        "net\tweb1\tWARNING\tapi\t4242\t1795946400250\tapi\tu1\t[\"a\",\"b\"]\t\tFalse",
        "{log}"
    );
    assert_eq!(
        row("json legacy"),
        "net\tweb2\tERROR\t\t\t1795946401000\t\t\t\tapp-field\tFalse"
    );
    assert_eq!(
        r.duck(
            "SELECT hostname, severity, facility, process_name, process_id FROM logs \
             WHERE message = 'json syslog'"
        )
        .trim(),
        "gw1\tCRITICAL\tauth\tsshd\t77",
        "Logstash's log.syslog fields"
    );
    let bad = r.duck(
        "SELECT hostname, extra['parse_error'] IS NOT NULL FROM logs WHERE message = 'not json {'",
    );
    assert_eq!(
        bad.trim(),
        "127.0.0.1\tTrue",
        "invalid JSON kept and flagged"
    );
    assert_eq!(
        r.duck("SELECT severity FROM logs WHERE message = 'json udp'")
            .trim(),
        "INFO"
    );
    assert_eq!(r.count("true"), 5, "a blank line is no message");
}

/// Device-style traffic: Cisco IOS sequence numbers and `*` clock markers, ASA's space
/// after the newline, FortiGate octet counting, a pfSense datagram with several messages,
/// a trailing NUL, no hostname, non-UTF-8, a 100 KiB message and garbage — all on one TCP
/// connection (which must survive every one of them) or in datagrams.
#[test]
fn device_quirks_are_received_as_users_expect() {
    let (tcp, udp) = (free_port(), free_port());
    let mut r = Receiver::start(&listeners(&[("tcp", tcp, ""), ("udp", udp, "")]));
    let forti = r#"<189>date=2026-11-29 time=10:00:00 devname="FG100" devid="FGT60" logid="0000000013" type="traffic" msg="q-fortigate""#;
    let big = format!(
        "<14>Nov 29 10:00:00 h bigapp: q-big {}",
        "x".repeat(100 * 1024)
    );
    let mut stream = Vec::new();
    stream.extend_from_slice(
        b"<189>237: *Nov 29 10:00:00.295: %SYS-5-CONFIG_I: q-cisco configured\n",
    );
    stream.extend_from_slice(b"<166>Nov 29 2026 10:00:01: %ASA-6-302013: q-asa-one\n <166>Nov 29 2026 10:00:02: %ASA-6-302014: q-asa-two\n");
    stream.extend_from_slice(format!("{} {forti}", forti.len()).as_bytes());
    stream.extend_from_slice(b"<14>Nov 29 10:00:03 h app: q-nonutf8 \xff\xfe end\n");
    stream.extend_from_slice(big.as_bytes());
    stream.extend_from_slice(b"\nthis is q-garbage, no syslog header at all\n");
    stream.extend_from_slice(b"<13>Nov 29 10:00:04 h app: q-last\n");
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    s.write_all(&stream).unwrap();
    drop(s);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [
        &b"<134>Nov 29 10:00:05 filterlog[123]: q-pf-one\n<134>Nov 29 10:00:05 filterlog[123]: q-pf-two\n<134>Nov 29 10:00:05 filterlog[123]: q-pf-three"[..],
        b"<14>Nov 29 10:00:06 h nulapp: q-nul\0",
        b"<14>q-nohost",
    ] {
        u.send_to(d, ("127.0.0.1", udp)).unwrap();
    }
    r.wait_for("message LIKE '%q-%'", 13);
    let log = r.stop();
    let count = |like: &str| r.count(&format!("message LIKE '%{like}%'"));
    for q in [
        "q-cisco",
        "q-asa-one",
        "q-asa-two",
        "q-fortigate",
        "q-nonutf8",
        "q-big",
        "q-garbage",
        "q-last",
        "q-pf-one",
        "q-pf-two",
        "q-pf-three",
        "q-nul",
        "q-nohost",
    ] {
        assert_eq!(count(q), 1, "{q}\n{log}");
    }
    assert_eq!(r.count("true"), 13, "one row per message");
    let one = |sql: &str| r.duck(sql).trim().to_string();
    // The PRI of each is kept, whatever the rest of the header looks like.
    assert_eq!(
        one("SELECT severity, facility FROM logs WHERE message LIKE '%q-cisco%'"),
        "NOTICE\tlocal7"
    );
    assert_eq!(
        one("SELECT severity, facility FROM logs WHERE message LIKE '%q-asa-two%'"),
        "INFO\tlocal4"
    );
    assert_eq!(
        one("SELECT severity FROM logs WHERE message LIKE '%q-fortigate%'"),
        "NOTICE"
    );
    assert_eq!(
        one("SELECT message, process_name FROM logs WHERE message LIKE '%q-nul%'"),
        "q-nul\tnulapp",
        "the trailing NUL is transport, not text"
    );
    assert_eq!(
        one("SELECT hostname FROM logs WHERE message LIKE '%q-nohost%'"),
        "127.0.0.1",
        "the sender's address stands in for a missing hostname"
    );
    assert_eq!(
        one(
            "SELECT extra['raw_hex'] LIKE '%fffe%', message LIKE '%\u{fffd}%' FROM logs WHERE message LIKE '%q-nonutf8%'"
        ),
        "True\tTrue"
    );
    assert_eq!(
        one("SELECT extra['truncated'], length(message) FROM logs WHERE message LIKE '%q-big%'"),
        format!(
            "{}\t{}",
            big.len(),
            65536 - "<14>Nov 29 10:00:00 h bigapp: ".len()
        ),
        "cut at max_message_bytes, flagged with the original length"
    );
    assert_eq!(Receiver::stat(&log, "tcp://", "connections"), Some(1));
    assert_eq!(Receiver::stat(&log, "tcp://", "truncated"), Some(1));
}

/// Bad traffic: 1,000 idle connections, one that connects and sends nothing, one that
/// sends a byte at a time, one that sends 10 MiB without a newline, and one over
/// `max_connections`: a good client is still served in full, memory stays bounded, and
/// every half-sent message is kept once its sender goes away.
#[test]
fn bad_traffic_does_not_starve_or_exhaust() {
    let (tcp, small) = (free_port(), free_port());
    let mut r = Receiver::start(&listeners(&[
        ("tcp", tcp, "max_connections = 1100"),
        ("tcp", small, "max_connections = 2"),
    ]));
    let rss = |field: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", r.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            / 1024
    };
    let before = rss("VmRSS:");
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", tcp)).unwrap())
        .collect();
    // For the figure only: let the collector accept them.
    std::thread::sleep(Duration::from_millis(500));
    let with_idle = rss("VmRSS:");
    let silent = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        for b in b"<13>Nov 29 10:00:00 h slow: bad-slow done\n" {
            s.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut huge = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut line = b"<13>Nov 29 10:00:00 h huge: bad-huge ".to_vec();
    line.resize(10 << 20, b'z');
    huge.write_all(&line).unwrap();

    let mut good = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let text: String = (0..10_000)
        .map(|i| format!("<13>Nov 29 10:00:00 h good: bad-good {i:05}\n"))
        .collect();
    good.write_all(text.as_bytes()).unwrap();
    drop(good);
    r.wait_for("message LIKE 'bad-good %'", 10_000);
    let during = rss("VmRSS:");

    // Over the limit: the third connection is closed at once.
    let _a = TcpStream::connect(("127.0.0.1", small)).unwrap();
    let _b = TcpStream::connect(("127.0.0.1", small)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(("127.0.0.1", small)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut c, &mut byte).unwrap_or(0),
        0,
        "refused by closing"
    );

    slow.join().unwrap();
    drop(huge);
    r.wait_for("message LIKE 'bad-slow%' OR message LIKE 'bad-huge%'", 2);
    let peak = rss("VmHWM:");
    drop(idle);
    drop(silent);
    let log = r.stop();
    eprintln!(
        "collector RSS: {before} MiB at start, {with_idle} MiB with 1,000 idle connections, \
         {during} MiB with 1,003 connections (one holding a 10 MiB line) after 10,000 lines \
         archived, peak {peak} MiB"
    );
    assert!(peak < 400, "memory stays bounded: peak {peak} MiB\n{log}");
    assert_eq!(
        r.duck(
            "SELECT count(*), count(DISTINCT message) FROM logs WHERE message LIKE 'bad-good %'"
        )
        .trim(),
        "10000\t10000"
    );
    assert_eq!(
        r.duck(
            "SELECT extra['truncated'], extra['unterminated'], length(message) > 60000 \
                FROM logs WHERE message LIKE 'bad-huge%'"
        )
        .trim(),
        format!("{}\ttrue\tTrue", 10 << 20),
        "{log}"
    );
    assert_eq!(r.count("message = 'bad-slow done'"), 1);
    assert_eq!(r.count("true"), 10_002, "nothing else");
    assert_eq!(
        Receiver::stat(&log, &format!(":{small}"), "refused"),
        Some(1)
    );
    assert_eq!(
        Receiver::stat(&log, &format!(":{tcp}"), "connections"),
        Some(1004)
    );
    assert_eq!(Receiver::stat(&log, &format!(":{tcp}"), "open"), Some(0));
}
