//! The real-world syslog corpus (`testdata/real-world-syslog.tsv`, issue 15): lines of the
//! shapes network devices, appliances, relays, macOS and RFC 5424 senders with small
//! mistakes write, each with the host, process, pid, time and message a reader expects.
//! The share of lines with all five right is the parsers' accuracy on real senders.
//!
//! `cargo test -p infralog-collector --lib parse::corpus -- --nocapture` prints the table.

use super::rfc5424::parse_rfc3339;
use super::{Format, ParseContext, parse_line};

const CORPUS: &str = include_str!("testdata/real-world-syslog.tsv");

/// What the corpus's expectations assume: received 2026-11-22 10:00:00 UTC, zone UTC.
const CTX: ParseContext = ParseContext {
    reference_unix_secs: 1_795_341_600,
    utc_offset_secs: 0,
    boot_unix_ns: None,
};

/// Overall share of lines with every field right, and the least any class may have.
const OVERALL_TARGET: f64 = 0.97;
const CLASS_TARGET: f64 = 0.90;

struct Case<'a> {
    class: &'a str,
    line: &'a str,
    host: Option<&'a str>,
    process: Option<&'a str>,
    pid: Option<i32>,
    time_ns: Option<i64>,
    message: &'a str,
}

fn field(s: &str) -> Option<&str> {
    (s != "\\N").then_some(s)
}

fn cases() -> Vec<Case<'static>> {
    CORPUS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 7, "corpus row: {l}");
            let time_ns = field(f[5]).map(|t| {
                let (stamp, len) = parse_rfc3339(t.as_bytes()).expect(t);
                assert_eq!(len, t.len(), "{t}");
                stamp.to_unix_ns(0).expect(t)
            });
            Case {
                class: f[0],
                line: f[1],
                host: field(f[2]),
                process: field(f[3]),
                pid: field(f[4]).map(|p| p.parse().expect(p)),
                time_ns,
                message: f[6],
            }
        })
        .collect()
}

/// Which of the five fields differ from what the case expects (empty: all right).
fn misses(c: &Case<'_>) -> Vec<String> {
    let r = parse_line(Format::Auto, c.line.as_bytes(), &CTX);
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let mut out = Vec::new();
    if text(r.hostname).as_deref() != c.host {
        out.push(format!("host {:?} != {:?}", text(r.hostname), c.host));
    }
    if text(r.app_name).as_deref() != c.process {
        out.push(format!("process {:?} != {:?}", text(r.app_name), c.process));
    }
    if r.proc_id != c.pid {
        out.push(format!("pid {:?} != {:?}", r.proc_id, c.pid));
    }
    if r.timestamp_ns != c.time_ns {
        out.push(format!("time {:?} != {:?}", r.timestamp_ns, c.time_ns));
    }
    if r.message != c.message.as_bytes() {
        out.push(format!(
            "message {:?} != {:?}",
            String::from_utf8_lossy(r.message),
            c.message
        ));
    }
    out
}

#[test]
fn real_world_syslog_accuracy() {
    let cases = cases();
    assert!(cases.len() >= 300, "the corpus has {} lines", cases.len());
    let mut classes: Vec<(&str, usize, usize)> = Vec::new();
    let mut right = 0;
    for c in &cases {
        let m = misses(c);
        if !m.is_empty() {
            println!("MISS [{}] {}\n    {}", c.class, c.line, m.join("\n    "));
        }
        let ok = m.is_empty() as usize;
        right += ok;
        match classes.iter_mut().find(|(name, _, _)| *name == c.class) {
            Some(e) => {
                e.1 += ok;
                e.2 += 1;
            }
            None => classes.push((c.class, ok, 1)),
        }
    }
    let share = |ok: usize, n: usize| ok as f64 / n as f64;
    println!("class      lines  all fields right");
    for (name, ok, n) in &classes {
        println!("{name:<10} {n:>5}  {:>6.1} %", 100.0 * share(*ok, *n));
    }
    println!(
        "overall    {:>5}  {:>6.1} %",
        cases.len(),
        100.0 * share(right, cases.len())
    );
    for (name, ok, n) in &classes {
        assert!(
            share(*ok, *n) >= CLASS_TARGET,
            "class {name}: {ok} of {n} lines right"
        );
    }
    assert!(share(right, cases.len()) >= OVERALL_TARGET);
}

/// The fields syslog-ng 3.38 (`syslog-parser()`, RFC 5424 for `<PRI>1 ` lines) gets from
/// the same lines, one `HOST\tPROGRAM\tPID\tISODATE\tMSG` per line.
fn syslog_ng_fields(lines: &[&str]) -> Vec<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("infralog-syslog-ng-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.tsv");
    let conf = dir.join("syslog-ng.conf");
    std::fs::write(
        &conf,
        format!(
            r#"@version: 3.38
options {{ keep-hostname(yes); use-dns(no); use-fqdn(no); frac-digits(9); chain-hostnames(no); }};
source s {{ stdin(flags(no-parse)); }};
destination d {{ file("{}" template("${{HOST}}\t${{PROGRAM}}\t${{PID}}\t${{ISODATE}}\t${{MSG}}\n") template-escape(no)); }};
log {{ source(s);
  if (message('^<[0-9]{{1,3}}>1 ')) {{ parser {{ syslog-parser(flags(syslog-protocol)); }}; }}
  else {{ parser {{ syslog-parser(); }}; }};
  destination(d); }};
"#,
            out.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("syslog-ng")
        .args(["-F", "--no-caps", "-f"])
        .arg(&conf)
        .arg("-R")
        .arg(dir.join("persist"))
        .arg("-p")
        .arg(dir.join("pid"))
        .arg("-c")
        .arg(dir.join("ctl"))
        // Zone-less stamps in UTC, as the corpus expects.
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("syslog-ng (cargo xtask setup installs syslog-ng-core)");
    {
        // syslog-ng exits at the end of its stdin, after writing every line.
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// syslog-ng on the same corpus, scored the same way: it accepts every line, but keeps
/// fewer fields right than we do, in every class. Its host for a line without one is this
/// machine's name and its time the receive time; both count as "not stated".
#[test]
fn keeps_more_than_syslog_ng() {
    let cases = cases();
    let lines: Vec<&str> = cases.iter().map(|c| c.line).collect();
    let theirs = syslog_ng_fields(&lines);
    assert_eq!(theirs.len(), cases.len(), "one output line per input line");
    let me = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let now_ns = crate::time::now_ns();
    let mut classes: Vec<(&str, usize, usize, usize)> = Vec::new();
    for (c, t) in cases.iter().zip(&theirs) {
        let f: Vec<&str> = t.splitn(5, '\t').collect();
        let host = Some(f[0]).filter(|h| *h != me.trim());
        let process = Some(f[1]).filter(|p| !p.is_empty());
        let pid = f[2].parse::<i32>().ok();
        let time = parse_rfc3339(f[3].as_bytes())
            .ok()
            .and_then(|(s, _)| s.to_unix_ns(0))
            // The receive time: the line stated none.
            .filter(|ns| (ns - now_ns).abs() > 3_600 * 1_000_000_000);
        let ng_right = host == c.host
            && process == c.process
            && pid == c.pid
            && time == c.time_ns
            && f.get(4).copied().unwrap_or("") == c.message;
        let ours_right = misses(c).is_empty();
        match classes.iter_mut().find(|e| e.0 == c.class) {
            Some(e) => {
                e.1 += ours_right as usize;
                e.2 += ng_right as usize;
                e.3 += 1;
            }
            None => classes.push((c.class, ours_right as usize, ng_right as usize, 1)),
        }
    }
    println!("class      lines  infralog  syslog-ng (all five fields right)");
    let (mut ours, mut ng) = (0, 0);
    for (name, o, s, n) in &classes {
        println!(
            "{name:<10} {n:>5}  {:>6.1} %  {:>6.1} %",
            100.0 * *o as f64 / *n as f64,
            100.0 * *s as f64 / *n as f64
        );
        ours += o;
        ng += s;
        assert!(o >= s, "class {name}: syslog-ng {s}, we {o} of {n}");
    }
    println!(
        "overall    {:>5}  {:>6.1} %  {:>6.1} %",
        cases.len(),
        100.0 * ours as f64 / cases.len() as f64,
        100.0 * ng as f64 / cases.len() as f64
    );
    assert!(ours > ng);
}
