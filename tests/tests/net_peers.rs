//! The net source receiving from real syslog daemons: rsyslog forwarding with `omfwd`
//! (TCP traditional and octet-counted framing, UDP), syslog-ng's `network()` and
//! `syslog()` destinations and `syslog()` over TLS with a test CA, and `openssl s_client`
//! (client certificates, permitted peers, a certificate renewed while running). rsyslog
//! and syslog-ng run from a config file written here, in the foreground, never as
//! services; every line forwarded over TCP or TLS must be archived exactly once.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::net_support::{
    Peer, Receiver, free_port, require, rsyslogd, test_pki, wait_for_port,
};
use infralog_tests::run_ok;

const LINES: u64 = 2000;

fn lines_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.txt"));
    let text: String = (0..LINES)
        .map(|i| format!("{name} line {i:05}\n"))
        .collect();
    fs::write(&p, text).unwrap();
    p
}

/// `logger -f` sends each line of the file as one message over one TCP connection, in
/// RFC 3164 so that the daemons forward the tag as `tag:` (from RFC 5424 they forward a
/// bare APP-NAME, which no BSD-format reader can tell from the first word of the message).
fn send_lines(port: u16, tag: &str, file: &Path) {
    run_ok(
        Command::new("logger")
            .args([
                "--server",
                "127.0.0.1",
                "--tcp",
                "--rfc3164",
                "-p",
                "user.notice",
            ])
            .args(["-t", tag])
            .args(["--port", &port.to_string(), "-f"])
            .arg(file),
    );
}

/// Every line of `name` exactly once, with the tag as process name. (rsyslog's RFC 5424
/// template writes `%msg%` of a BSD message with its leading space, which RFC 5424 keeps
/// as part of MSG: compared trimmed.)
fn assert_all_once(r: &Receiver, name: &str, tag: &str, log: &str) {
    let rows = r.duck(&format!(
        "SELECT count(*), count(DISTINCT trim(message)), min(process_name), \
         max(process_name), min(source) FROM logs WHERE trim(message) LIKE '{name} line %'"
    ));
    assert_eq!(
        rows.trim(),
        format!("{LINES}\t{LINES}\t{tag}\t{tag}\tnet"),
        "{name}\n{log}"
    );
}

#[test]
fn rsyslog_omfwd_tcp_traditional_octet_counted_and_udp() {
    require("logger");
    let (exe, modules) = match rsyslogd() {
        Ok(x) => x,
        Err(why) => panic!("{why}"),
    };
    let (tcp, udp, input) = (free_port(), free_port(), free_port());
    let mut r = Receiver::start(&format!(
        "[[sources.net.listeners]]\naddress = \"127.0.0.1:{tcp}\"\nprotocol = \"tcp\"\n\n\
         [[sources.net.listeners]]\naddress = \"127.0.0.1:{udp}\"\nprotocol = \"udp\"\n"
    ));
    let dir = r.dir.path().join("rsyslog");
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("rsyslog.conf");
    fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imptcp\")\n\
             input(type=\"imptcp\" address=\"127.0.0.1\" port=\"{input}\" ruleset=\"fwd\")\n\
             ruleset(name=\"fwd\") {{\n\
               if $programname == \"trad\" then action(type=\"omfwd\" target=\"127.0.0.1\" \
                 port=\"{tcp}\" protocol=\"tcp\" TCP_Framing=\"traditional\" \
                 template=\"RSYSLOG_ForwardFormat\")\n\
               if $programname == \"octet\" then action(type=\"omfwd\" target=\"127.0.0.1\" \
                 port=\"{tcp}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" \
                 template=\"RSYSLOG_SyslogProtocol23Format\")\n\
               if $programname == \"udp\" then action(type=\"omfwd\" target=\"127.0.0.1\" \
                 port=\"{udp}\" protocol=\"udp\")\n\
             }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let peer = Peer(
        Command::new(exe)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .args(["-M", &modules])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("rsyslogd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(input, "rsyslogd", &dir.join("rsyslogd.log"));
    for (name, tag) in [
        ("rs-trad", "trad"),
        ("rs-octet", "octet"),
        ("rs-udp", "udp"),
    ] {
        send_lines(input, tag, &lines_file(&dir, name));
    }
    r.wait_for(
        "trim(message) LIKE 'rs-trad line %' OR trim(message) LIKE 'rs-octet line %'",
        2 * LINES,
    );
    // rsyslog has forwarded what it will: UDP is counted, not waited for.
    drop(peer);
    let log = r.stop();
    assert_all_once(&r, "rs-trad", "trad", &log);
    assert_all_once(&r, "rs-octet", "octet", &log);
    let host = r.duck("SELECT DISTINCT hostname FROM logs WHERE trim(message) LIKE 'rs-% line %'");
    assert_eq!(host.lines().count(), 1, "one hostname: {host}");
    assert!(
        !host.contains("127.0.0.1"),
        "rsyslog states its hostname: {host}"
    );
    let udp_rows = r.count("trim(message) LIKE 'rs-udp line %'");
    let drops = Receiver::stat(&log, "udp://", "kernel_drops").unwrap();
    assert_eq!(
        udp_rows + drops,
        LINES,
        "UDP: archived + kernel drops = sent\n{log}"
    );
    let distinct =
        r.duck("SELECT count(DISTINCT message) FROM logs WHERE trim(message) LIKE 'rs-udp%'");
    assert_eq!(distinct.trim(), udp_rows.to_string(), "no UDP row twice");
}

fn syslog_ng(dir: &Path, conf_body: &str) -> Peer {
    let conf = dir.join("syslog-ng.conf");
    fs::write(
        &conf,
        format!("@version: 3.38\noptions {{ keep-hostname(yes); }};\n{conf_body}"),
    )
    .unwrap();
    let d = dir.display();
    Peer(
        Command::new("syslog-ng")
            .args(["-F", "-e", "--no-caps", "-f"])
            .arg(&conf)
            .args([
                &format!("--persist-file={d}/persist"),
                &format!("--pidfile={d}/pid"),
                &format!("--control={d}/ctl"),
            ])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("syslog-ng.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// syslog-ng `network()` (newline) and `syslog()` (octet counted) over TCP, `syslog()` over
/// TLS with a client certificate the listener checks against its CA and permitted peers.
#[test]
fn syslog_ng_network_syslog_and_tls() {
    require("syslog-ng");
    require("openssl");
    let (tcp, tls, input) = (free_port(), free_port(), free_port());
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let p = pki.path().display();
    let mut r = Receiver::start(&format!(
        "[[sources.net.listeners]]\naddress = \"127.0.0.1:{tcp}\"\nprotocol = \"tcp\"\n\n\
         [[sources.net.listeners]]\naddress = \"127.0.0.1:{tls}\"\nprotocol = \"tls\"\n\
         [sources.net.listeners.tls]\ncert = \"{p}/server.pem\"\nkey = \"{p}/server.key\"\n\
         client_ca = \"{p}/ca.pem\"\npermitted_peers = [\"client.example\"]\n"
    ));
    let dir = r.dir.path().join("syslog-ng");
    fs::create_dir_all(&dir).unwrap();
    let peer = syslog_ng(
        &dir,
        &format!(
            "source s_in {{ network(ip(\"127.0.0.1\") port({input}) transport(\"tcp\")); }};\n\
             destination d_net {{ network(\"127.0.0.1\" port({tcp}) transport(\"tcp\") \
               persist-name(\"d_net\")); }};\n\
             destination d_syslog {{ syslog(\"127.0.0.1\" port({tcp}) transport(\"tcp\") \
               persist-name(\"d_syslog\")); }};\n\
             destination d_tls {{ syslog(\"127.0.0.1\" port({tls}) transport(\"tls\") \
               tls(ca-file(\"{p}/ca.pem\") cert-file(\"{p}/client.pem\") \
               key-file(\"{p}/client.key\") peer-verify(required-trusted))); }};\n\
             filter f_net {{ program(\"ngnet\"); }};\n\
             filter f_syslog {{ program(\"ngsyslog\"); }};\n\
             filter f_tls {{ program(\"ngtls\"); }};\n\
             log {{ source(s_in); filter(f_net); destination(d_net); }};\n\
             log {{ source(s_in); filter(f_syslog); destination(d_syslog); }};\n\
             log {{ source(s_in); filter(f_tls); destination(d_tls); }};\n"
        ),
    );
    wait_for_port(input, "syslog-ng", &dir.join("syslog-ng.log"));
    for (name, tag) in [
        ("ng-net", "ngnet"),
        ("ng-syslog", "ngsyslog"),
        ("ng-tls", "ngtls"),
    ] {
        send_lines(input, tag, &lines_file(&dir, name));
    }
    r.wait_for("message LIKE 'ng-% line %'", 3 * LINES);
    drop(peer);
    let log = r.stop();
    assert_all_once(&r, "ng-net", "ngnet", &log);
    assert_all_once(&r, "ng-syslog", "ngsyslog", &log);
    assert_all_once(&r, "ng-tls", "ngtls", &log);
    let tls_peer =
        r.duck("SELECT DISTINCT extra['tls_peer'] FROM logs WHERE message LIKE 'ng-tls%'");
    assert_eq!(tls_peer.trim(), "client.example");
}

/// `openssl s_client` against a TLS listener: with the client certificate its lines
/// arrive; without one, or with a name not permitted, the connection is refused and
/// nothing is archived from it; a certificate replaced on disk is served by later
/// handshakes without a restart.
#[test]
fn openssl_clients_certificates_and_reload() {
    require("openssl");
    let (tls, strict) = (free_port(), free_port());
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let p = pki.path().display();
    let tls_listener = |port: u16, peers: &str| {
        format!(
            "[[sources.net.listeners]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"tls\"\n\
             [sources.net.listeners.tls]\ncert = \"{p}/server.pem\"\nkey = \"{p}/server.key\"\n\
             client_ca = \"{p}/ca.pem\"\npermitted_peers = [{peers}]\n\n"
        )
    };
    let mut r = Receiver::start(&format!(
        "{}{}",
        tls_listener(tls, "\"client.example\""),
        tls_listener(strict, "\"someone.else\"")
    ));
    let s_client = |port: u16, with_cert: bool, input: &str| {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-CAfile", &format!("{p}/ca.pem"), "-no_ign_eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if with_cert {
            cmd.args([
                "-cert",
                &format!("{p}/client.pem"),
                "-key",
                &format!("{p}/client.key"),
            ]);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let lines: String = (0..500)
        .map(|i| format!("<13>Nov 29 10:00:00 h sclient: tls-ok {i:04}\n"))
        .collect();
    let out = s_client(tls, true, &lines);
    assert!(
        out.contains("CN = server") || out.contains("CN=server"),
        "{out}"
    );
    s_client(tls, false, "<13>Nov 29 10:00:00 h sclient: tls-nocert\n");
    s_client(
        strict,
        true,
        "<13>Nov 29 10:00:00 h sclient: tls-notpermitted\n",
    );

    // Renew the server certificate on disk; a later handshake gets the new one.
    run_ok(
        Command::new("openssl")
            .current_dir(pki.path())
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=renewed",
            ])
            .args(["-keyout", "new.key", "-out", "new.csr"]),
    );
    run_ok(
        Command::new("openssl")
            .current_dir(pki.path())
            .args([
                "x509", "-req", "-in", "new.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            ])
            .args([
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "new.pem",
            ]),
    );
    fs::rename(pki.path().join("new.key"), pki.path().join("server.key")).unwrap();
    fs::rename(pki.path().join("new.pem"), pki.path().join("server.pem")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        let out = s_client(
            tls,
            true,
            &format!("<13>Nov 29 10:00:00 h sclient: tls-renewed {n}\n"),
        );
        n += 1;
        if out.contains("CN = renewed") || out.contains("CN=renewed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "renewed certificate never served:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    r.wait_for("message LIKE 'tls-ok %'", 500);
    r.wait_for("message LIKE 'tls-renewed %'", n);
    let log = r.stop();
    let rows = r.duck(
        "SELECT count(*), count(DISTINCT message), min(extra['tls_peer']) FROM logs \
         WHERE message LIKE 'tls-ok %'",
    );
    assert_eq!(rows.trim(), "500\t500\tclient.example", "{log}");
    assert_eq!(
        r.count("message LIKE 'tls-nocert%' OR message LIKE 'tls-notpermitted%'"),
        0
    );
    assert_eq!(r.count("message LIKE 'tls-renewed %'"), n);
    let refused =
        |port: u16| Receiver::stat(&log, &format!("tls://127.0.0.1:{port}"), "refused").unwrap();
    assert!(refused(tls) >= 1, "no-certificate client refused\n{log}");
    assert_eq!(
        refused(strict),
        1,
        "client not in permitted_peers refused\n{log}"
    );
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

/// loggen over TLS (it never reads from the server): every line arrives once. A TLS 1.3
/// session ticket left unread on the sender's side would turn its close into a reset that
/// discards lines still in the receiver's buffer; the listener sends none.
#[test]
fn loggen_over_tls_every_line_once() {
    require("loggen");
    require("openssl");
    let port = free_port();
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let p = pki.path().display();
    let mut r = Receiver::start(&format!(
        "[[sources.net.listeners]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"tls\"\n\
         [sources.net.listeners.tls]\ncert = \"{p}/server.pem\"\nkey = \"{p}/server.key\"\n"
    ));
    let out = run_ok(
        Command::new("loggen")
            .args([
                "-P",
                "--use-ssl",
                "-s",
                "200",
                "-Q",
                "-r",
                "1000000",
                "-I",
                "3600",
            ])
            .args(["-n", "20000", "--active-connections", "2", "127.0.0.1"])
            .arg(port.to_string()),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("count=40000"), "{text}");
    r.wait_for("true", 40_000);
    let log = r.stop();
    assert_eq!(
        r.duck("SELECT count(*), count(DISTINCT extra['peer'] || message) FROM logs")
            .trim(),
        "40000\t40000",
        "{log}"
    );
}
