//! Parser throughput, in lines per second: `cargo bench -p infralog-benches --bench parsers`.
//! RFC 3164 must stay above 2 M lines/s on one core, on realistic lines.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infralog_collector::parse::{Format, ParseContext, Record, kmsg, parse_line, rfc3164, rfc5424};

const CTX: ParseContext = ParseContext {
    // 2026-11-22 10:00:00 UTC.
    reference_unix_secs: 1_795_341_600,
    utc_offset_secs: 3600,
    boot_unix_ns: Some(1_795_000_000_000_000_000),
};

/// What systemd-era hosts write to /var/log/syslog, auth.log and over the network.
const MODERN_3164: &[&[u8]] = &[
    b"Nov 22 09:40:45 web-01 systemd[1]: Started session-4711.scope - Session 4711 of User deploy.",
    b"Nov 22 09:40:46 web-01 sshd[23811]: Accepted publickey for deploy from 10.20.30.40 port 51234 ssh2: ED25519 SHA256:Qm9vYmFy",
    b"Nov 22 09:40:46 web-01 sshd[23811]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
    b"Nov 22 09:41:01 web-01 CRON[23850]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    b"Nov 22 09:41:07 web-01 kernel: [1234567.890123] TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
    b"<13>Nov 22 09:41:09 loggertest: hello from logger",
    b"<30>Nov  2 09:41:12 web-01 dockerd[912]: time=\"2026-11-02T09:41:12.123456789Z\" level=info msg=\"ignoring event\"",
    b"2026-11-22T09:41:15.123456+01:00 web-01 rsyslogd: [origin software=\"rsyslogd\" swVersion=\"8.2312.0\"] rsyslogd was HUPed",
];

const RFC5424: &[&[u8]] = &[
    b"<34>1 2026-11-22T09:40:45.003Z web-01.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
    b"<165>1 2026-11-22T09:40:45.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b"<165>1 2026-11-22T09:40:45.003Z web-01 evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \xEF\xBB\xBFAn application event",
    b"<30>1 2026-11-22T09:40:46.123456+01:00 web-01 nginx 1234 access [meta sequenceId=\"42\" path=\"C:\\\\tmp\\]\"] GET /index.html 200",
];

/// Network devices, appliances and relays (issue 15's classes).
const DEVICES: &[&[u8]] = &[
    b"<189>29: *Apr 29 13:58:40.411: %SYS-5-CONFIG_I: Configured from console by console",
    b"<187>4512: .Nov 12 09:16:03.004 CET: %BGP-5-ADJCHANGE: neighbor 192.0.2.1 Down BGP Notification sent",
    b"<166>Nov 12 2026 09:16:04 fw-dmz : %ASA-6-302013: Built inbound TCP connection 1234567 for outside:198.51.100.20/51234 to inside:10.0.0.10/443",
    b"<189>: 2026 Nov 12 09:16:02 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/12 is up in mode access",
    b"<13>Nov 12 09:19:00 Message forwarded from aix72: errdemon[4711]: LABEL: DISK_ERR4",
    b"Nov 12 09:18:01 Johns-MBP Slack Helper (Renderer)[4242]: [warn] websocket reconnect",
    b"<189>date=2026-11-12 time=09:20:03 devname=\"FGT-DC\" devid=\"FGT6HD3917800000\" type=\"event\" subtype=\"vpn\" level=\"notice\"",
    b"<134>Nov 12 09:20:00 ids-2 CEF:0|Trend Micro|Deep Security Agent|20.0|4000000|Eicar_test_file|6|cn1=1 act=Quarantine",
];

const KMSG: &[&[u8]] = &[
    b"6,339,5140900,-;NET: Registered PF_INET6 protocol family",
    b"4,1201,1234567890,-;usb 1-1: device descriptor read/64, error -71",
    b"3,1202,1234567999,-,caller=T812;EXT4-fs error (device sda1): ext4_find_entry:1580: inode #2: comm ls: reading directory lblock 0",
    b"6,1203,1234568000,c;audit: type=1400 audit(1700000000.123:42): apparmor=\"STATUS\" operation=\"profile_load\"",
];

/// Keeps the optimiser from discarding the parse.
fn consume(r: &Record<'_>) -> usize {
    r.message.len() + r.app_name.map_or(0, <[u8]>::len) + r.timestamp_ns.unwrap_or(0) as usize
}

fn loghub_lines() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/loghub-2k/Linux/Linux_2k.log"
    );
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn bench_lines(
    c: &mut Criterion,
    group: &str,
    name: &str,
    lines: &[&[u8]],
    parse: impl Fn(&[u8]) -> usize,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for line in lines {
                acc = acc.wrapping_add(parse(black_box(line)));
            }
            acc
        })
    });
    g.finish();
}

fn parsers(c: &mut Criterion) {
    let loghub = loghub_lines();
    let loghub: Vec<&[u8]> = loghub.iter().map(Vec::as_slice).collect();

    bench_lines(c, "rfc3164", "loghub_linux_2k", &loghub, |l| {
        consume(&rfc3164::parse(l, &CTX))
    });
    bench_lines(c, "rfc3164", "modern", MODERN_3164, |l| {
        consume(&rfc3164::parse(l, &CTX))
    });
    bench_lines(c, "rfc5424", "parse", RFC5424, |l| {
        consume(&rfc5424::parse(l))
    });
    bench_lines(c, "rfc5424", "parse_and_sd_params", RFC5424, |l| {
        let r = rfc5424::parse(l);
        consume(&r)
            + rfc5424::sd_params(r.structured_data)
                .map(|p| p.value.len())
                .sum::<usize>()
    });
    bench_lines(c, "kmsg", "parse_line", KMSG, |l| {
        consume(&kmsg::parse_line(l, &CTX))
    });

    bench_lines(c, "devices", "auto", DEVICES, |l| {
        consume(&parse_line(Format::Auto, l, &CTX))
    });

    let mixed: Vec<&[u8]> = MODERN_3164
        .iter()
        .chain(RFC5424)
        .chain(KMSG)
        .copied()
        .collect();
    bench_lines(c, "auto", "mixed", &mixed, |l| {
        consume(&parse_line(Format::Auto, l, &CTX))
    });
}

criterion_group!(benches, parsers);
criterion_main!(benches);
