//! A realistic, deterministic RFC 3164 syslog corpus, as a central syslog server would
//! write it: 50 hosts with roles (web, HDFS, YARN, Spark, ZooKeeper, BG/L service nodes,
//! a health-app backend, bastions), each running the processes of its role plus the usual
//! Linux daemons (sshd, su, ftpd, the kernel, ...).
//!
//! Messages come from the loghub templates (`<family>/<family>_2k.log_templates.csv`); how
//! often each template occurs, which process/level/component writes it and what its `<*>`
//! placeholders held come from the matching `_2k.log_structured.csv`. Placeholders are
//! refilled with values of the shape seen there (IPv4 addresses from a Zipf-skewed pool,
//! integers over the observed range on a log scale, hex ids, user names and other words
//! picked with their observed frequencies, ids whose digits are re-drawn), so that the
//! corpus compresses and dictionary-encodes like real logs rather than like noise.
//!
//! Timestamps increase over a few days with a day/night rate cycle and bursts of repeats
//! (brute-force sshd, retry loops). A fifth of the hosts forward with a `<PRI>` prefix.
//! Same seed, same templates → same bytes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::rng::{Rng, Weighted, mix};

pub const DEFAULT_LINES: u64 = 3_000_000;
pub const QUICK_LINES: u64 = 200_000;
pub const DEFAULT_SEED: u64 = 20_260_309;
pub const DEFAULT_DAYS: f64 = 3.0;

/// The corpus' first second, 2026-03-09 00:00:00, in the writers' local time (RFC 3164
/// stamps carry neither year nor zone).
pub const START_UNIX: i64 = 1_773_014_400;

/// `$INFRALOG_LOGHUB`, else `../shared/data/loghub-2k` beside the repository.
pub fn default_templates_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("INFRALOG_LOGHUB") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub-2k")
}

/// `benches/corpus/` (gitignored).
pub fn default_corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Where the corpus of `lines` lines for `seed` lives.
pub fn corpus_path(dir: &Path, lines: u64, seed: u64) -> PathBuf {
    dir.join(format!("syslog-{lines}-{seed}.log"))
}

/// One loghub system and how its lines appear in syslog.
struct FamilySpec {
    dir: &'static str,
    /// Fixed TAG; `None` takes the row's `Component` up to `(` or a space.
    tag: Option<&'static str>,
    /// Text put before the template, with `{Column}` replaced by the row's value.
    prefix: &'static str,
    facility: u8,
    /// A long-running daemon (one pid per host, changing on restarts) rather than
    /// short-lived processes.
    daemon: bool,
}

const LINUX: usize = 0;
const APACHE: usize = 1;
const HDFS: usize = 2;
const HADOOP: usize = 3;
const SPARK: usize = 4;
const ZOOKEEPER: usize = 5;
const HEALTHAPP: usize = 6;
const BGL: usize = 7;

const FAMILIES: [FamilySpec; 8] = [
    FamilySpec {
        dir: "Linux",
        tag: None,
        prefix: "",
        facility: 3,
        daemon: false,
    },
    FamilySpec {
        dir: "Apache",
        tag: Some("httpd"),
        prefix: "[{Level}] ",
        facility: 3,
        daemon: true,
    },
    FamilySpec {
        dir: "HDFS",
        tag: Some("hdfs-datanode"),
        prefix: "{Level} {Component}: ",
        facility: 16,
        daemon: true,
    },
    FamilySpec {
        dir: "Hadoop",
        tag: Some("mr-appmaster"),
        prefix: "{Level} [{Process}] {Component}: ",
        facility: 17,
        daemon: true,
    },
    FamilySpec {
        dir: "Spark",
        tag: Some("spark-executor"),
        prefix: "{Level} {Component}: ",
        facility: 18,
        daemon: true,
    },
    FamilySpec {
        dir: "Zookeeper",
        tag: Some("zookeeper"),
        prefix: "{Level}  [{Node}:{Component}@{Id}] - ",
        facility: 19,
        daemon: true,
    },
    FamilySpec {
        dir: "HealthApp",
        tag: Some("healthd"),
        prefix: "{Component}: ",
        facility: 20,
        daemon: true,
    },
    FamilySpec {
        dir: "BGL",
        tag: Some("mmcs_server"),
        prefix: "{Type} {Component} {Level} {Node} ",
        facility: 21,
        daemon: true,
    },
];

/// Host roles: name prefix, how many, main family, share of lines from that family (the
/// rest are the host's own Linux daemons).
const ROLES: [(&str, usize, usize, f64); 9] = [
    ("web", 8, APACHE, 0.8),
    ("dn", 10, HDFS, 0.9),
    ("yarn", 6, HADOOP, 0.9),
    ("spark", 8, SPARK, 0.9),
    ("zk", 3, ZOOKEEPER, 0.85),
    ("bgl-sn", 8, BGL, 0.9),
    ("health", 4, HEALTHAPP, 0.9),
    ("bastion", 2, LINUX, 1.0),
    ("ftp", 1, LINUX, 1.0),
];

/// How a placeholder is refilled.
enum Slot {
    /// One of the observed values, with their observed frequencies.
    Pick(Vec<String>, Weighted),
    /// An address from the shared, Zipf-skewed pool.
    Ip,
    /// An integer with as many digits as an observed one (picked with the observed
    /// frequencies of digit counts), negative with the observed probability.
    Int {
        digits: Vec<usize>,
        pick: Weighted,
        negative: f64,
    },
    /// Hex digits of this length.
    Hex { len: usize, upper: bool },
    /// An observed value with its digits re-drawn half of the time (ids, host names).
    Mutate(Vec<String>, Weighted),
    /// Nothing was observed.
    Any,
}

/// Who writes a template: TAG, message prefix (level, component), severity.
struct Variant {
    tag: String,
    prefix: String,
    severity: u8,
    has_pid: bool,
}

struct Template {
    /// Literal text around the placeholders: `pieces.len() == slots.len() + 1`.
    pieces: Vec<String>,
    slots: Vec<Slot>,
    variants: Vec<Variant>,
    pick_variant: Weighted,
}

struct Family {
    templates: Vec<Template>,
    pick: Weighted,
}

/// The templates and value distributions of all families.
pub struct Model {
    families: Vec<Family>,
}

impl Model {
    /// Reads the loghub files under `dir` (`../shared/data/loghub-2k`).
    pub fn load(dir: &Path) -> Result<Model> {
        let families = FAMILIES
            .iter()
            .map(|spec| {
                load_family(dir, spec).with_context(|| format!("loading loghub {}", spec.dir))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model { families })
    }

    pub fn template_count(&self) -> usize {
        self.families.iter().map(|f| f.templates.len()).sum()
    }
}

fn load_family(dir: &Path, spec: &FamilySpec) -> Result<Family> {
    let base = dir.join(spec.dir);
    let read = |suffix: &str| -> Result<Vec<Vec<String>>> {
        let p = base.join(format!("{}_2k.log_{suffix}.csv", spec.dir));
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(parse_csv(&text))
    };
    let templates_csv = read("templates")?;
    let structured = read("structured")?;
    let (Some(_), Some(header)) = (templates_csv.first(), structured.first()) else {
        bail!("empty loghub csv in {}", base.display());
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(c_content), Some(c_event)) = (col("Content"), col("EventId")) else {
        bail!("{}: structured csv lacks Content/EventId", base.display());
    };

    // Rows by event id.
    let mut rows_of: HashMap<&str, Vec<&Vec<String>>> = HashMap::new();
    for row in &structured[1..] {
        if row.len() == header.len() {
            rows_of.entry(row[c_event].as_str()).or_default().push(row);
        }
    }

    let mut templates = Vec::new();
    let mut weights = Vec::new();
    for t in &templates_csv[1..] {
        let [id, text] = t.as_slice() else { continue };
        let pieces: Vec<String> = text.trim().split("<*>").map(str::to_string).collect();
        let nslots = pieces.len() - 1;
        let rows = rows_of.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);

        let mut observed: Vec<HashMap<String, u64>> = vec![HashMap::new(); nslots];
        let mut variants: HashMap<(String, String, u8, bool), u64> = HashMap::new();
        for row in rows {
            let content = row[c_content].trim();
            if let Some(values) = match_template(&pieces, content) {
                for (i, v) in values.into_iter().enumerate() {
                    *observed[i].entry(v.to_string()).or_default() += 1;
                }
            }
            let field = |name: &str| col(name).map(|c| row[c].as_str()).unwrap_or("");
            let tag = match spec.tag {
                Some(t) => t.to_string(),
                None => {
                    let c = field("Component");
                    let end = c.find(['(', ' ']).unwrap_or(c.len());
                    if end == 0 { "unknown" } else { &c[..end] }.to_string()
                }
            };
            let prefix = fill_prefix(spec.prefix, &field);
            let severity = severity_of(field("Level"), content);
            let has_pid = spec.daemon || !(field("PID").is_empty() || tag == "kernel");
            *variants
                .entry((tag, prefix, severity, has_pid))
                .or_default() += 1;
        }
        if variants.is_empty() {
            let tag = spec.tag.unwrap_or("kernel").to_string();
            let has_pid = tag != "kernel";
            variants.insert((tag, String::new(), 6, has_pid), 1);
        }
        let mut variants: Vec<_> = variants.into_iter().collect();
        variants.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let pick_variant = Weighted::new(variants.iter().map(|v| v.1));
        let variants = variants
            .into_iter()
            .map(|((tag, prefix, severity, has_pid), _)| Variant {
                tag,
                prefix,
                severity,
                has_pid,
            })
            .collect();

        weights.push(rows.len().max(1) as u64);
        templates.push(Template {
            slots: observed.into_iter().map(classify).collect(),
            pieces,
            variants,
            pick_variant,
        });
    }
    if templates.is_empty() {
        bail!("no templates in {}", base.display());
    }
    Ok(Family {
        pick: Weighted::new(weights),
        templates,
    })
}

/// `{Column}` → the row's value.
fn fill_prefix<'a>(pattern: &str, field: &impl Fn(&str) -> &'a str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("closed brace in prefix");
        out.push_str(field(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn severity_of(level: &str, content: &str) -> u8 {
    match level.to_ascii_uppercase().as_str() {
        "EMERG" | "PANIC" => 0,
        "ALERT" => 1,
        "FATAL" | "CRIT" | "CRITICAL" | "SEVERE" => 2,
        "ERROR" | "ERR" | "FAILURE" => 3,
        "WARN" | "WARNING" => 4,
        "NOTICE" => 5,
        "INFO" => 6,
        "DEBUG" | "TRACE" => 7,
        _ => {
            let c = content.to_ascii_lowercase();
            if c.contains("error") || c.contains("fail") || c.contains("denied") {
                4
            } else if c.contains("authentication") || c.contains("session") {
                5
            } else {
                6
            }
        }
    }
}

fn linux_facility(tag: &str) -> u8 {
    match tag {
        "kernel" => 0,
        "sshd" | "su" | "login" | "klogind" | "ftpd" | "gdm-binary" | "passwd" | "sudo" => 10,
        "crond" | "anacron" => 9,
        "syslogd" | "syslog" => 5,
        _ => 3,
    }
}

/// The placeholder values of `content` under a template, or `None` when it does not fit.
fn match_template<'c>(pieces: &[String], content: &'c str) -> Option<Vec<&'c str>> {
    let mut rest = content.strip_prefix(pieces[0].as_str())?;
    let mut values = Vec::with_capacity(pieces.len() - 1);
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        if i == pieces.len() - 1 {
            let v = rest.strip_suffix(piece.as_str())?;
            values.push(v);
            rest = "";
        } else if piece.is_empty() {
            values.push("");
        } else {
            let at = rest.find(piece.as_str())?;
            values.push(&rest[..at]);
            rest = &rest[at + piece.len()..];
        }
    }
    rest.is_empty().then_some(values)
}

fn classify(observed: HashMap<String, u64>) -> Slot {
    if observed.is_empty() {
        return Slot::Any;
    }
    let total: u64 = observed.values().sum();
    let mut values: Vec<(String, u64)> = observed.into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let distinct = values.len();
    let all = |f: &dyn Fn(&str) -> bool| values.iter().all(|(v, _)| f(v));
    let picker = |values: Vec<(String, u64)>| {
        let w = Weighted::new(values.iter().map(|v| v.1));
        (values.into_iter().map(|v| v.0).collect::<Vec<_>>(), w)
    };

    if distinct <= 6 || (distinct as f64) < 0.05 * total as f64 {
        let (v, w) = picker(values);
        return Slot::Pick(v, w);
    }
    if all(&|v| v.parse::<std::net::Ipv4Addr>().is_ok()) {
        return Slot::Ip;
    }
    if all(&|v| v.parse::<i64>().is_ok()) {
        let mut lens: HashMap<usize, u64> = HashMap::new();
        let mut negatives = 0;
        for (v, n) in &values {
            let digits = v.trim_start_matches('-');
            *lens.entry(digits.len()).or_default() += n;
            negatives += if v.starts_with('-') { *n } else { 0 };
        }
        let mut lens: Vec<(usize, u64)> = lens.into_iter().collect();
        lens.sort_unstable();
        return Slot::Int {
            pick: Weighted::new(lens.iter().map(|l| l.1)),
            digits: lens.into_iter().map(|l| l.0).collect(),
            negative: negatives as f64 / total as f64,
        };
    }
    if all(&|v| v.len() >= 6 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        && values
            .iter()
            .any(|(v, _)| v.bytes().any(|b| b.is_ascii_alphabetic()))
    {
        let len = values[0].0.len();
        let upper = values
            .iter()
            .any(|(v, _)| v.bytes().any(|b| b.is_ascii_uppercase()));
        return Slot::Hex { len, upper };
    }
    let (v, w) = picker(values);
    Slot::Mutate(v, w)
}

/// Minimal RFC 4180 reader: quoted fields, `""` escapes, newlines inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

struct Host {
    name: String,
    family: usize,
    own_share: f64,
    pri: bool,
    /// The host's pid counter: new processes take the next pids.
    last_pid: u32,
    daemon_pid: [u32; FAMILIES.len()],
    short_pid: u32,
}

impl Host {
    fn new_pid(&mut self, rng: &mut Rng) -> u32 {
        self.last_pid += rng.range(1, 40) as u32;
        if self.last_pid > 32_768 {
            self.last_pid = 300 + rng.below(200) as u32;
        }
        self.last_pid
    }
}

/// A run of the same message from the same process within a few seconds.
struct Burst {
    host: usize,
    family: usize,
    variant: (usize, usize),
    message: Vec<u8>,
    remaining: u32,
}

/// Produces the corpus line by line.
pub struct Generator<'m> {
    model: &'m Model,
    rng: Rng,
    hosts: Vec<Host>,
    pick_host: Weighted,
    ips: Vec<[u8; 4]>,
    pick_ip: Weighted,
    /// Seconds since [`START_UNIX`].
    t: f64,
    /// Events per second at the mean of the day cycle.
    rate: f64,
    burst: Option<Burst>,
    message: Vec<u8>,
    stamp: (i64, [u8; 15]),
}

/// Chance that an event starts a burst, and the mean number of repeats.
const BURST_P: f64 = 0.008;
const BURST_MEAN: f64 = 6.0;

impl<'m> Generator<'m> {
    /// A generator of about `lines` lines spread over `days` days.
    pub fn new(model: &'m Model, seed: u64, lines: u64, days: f64) -> Generator<'m> {
        let mut rng = Rng::new(seed);
        let mut hosts = Vec::new();
        for (prefix, n, family, own_share) in ROLES {
            for i in 1..=n {
                let mut h = Host {
                    name: format!("{prefix}-{i:02}"),
                    family,
                    own_share,
                    pri: false,
                    last_pid: 300 + rng.below(3000) as u32,
                    daemon_pid: [0; FAMILIES.len()],
                    short_pid: 0,
                };
                for f in 0..FAMILIES.len() {
                    h.daemon_pid[f] = h.new_pid(&mut rng);
                }
                h.short_pid = h.new_pid(&mut rng);
                hosts.push(h);
            }
        }
        // Which hosts are chatty is independent of their role: a seeded shuffle, then
        // Zipf weights by position.
        for i in (1..hosts.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            hosts.swap(i, j);
        }
        let n = hosts.len();
        for (i, h) in hosts.iter_mut().enumerate() {
            h.pri = i % 5 == 2;
        }
        let ips = (0..4096u64)
            .map(|k| ip_of(mix(k ^ seed.rotate_left(17))))
            .collect();
        let span = days * 86_400.0;
        Generator {
            model,
            pick_host: Weighted::zipf(n, 0.9),
            hosts,
            ips,
            pick_ip: Weighted::zipf(4096, 1.1),
            rng,
            t: 0.0,
            rate: lines as f64 / span / (1.0 + BURST_P * BURST_MEAN),
            burst: None,
            message: Vec::with_capacity(512),
            stamp: (i64::MIN, [b' '; 15]),
        }
    }

    /// Appends one line, with its newline, to `out`.
    pub fn next_line(&mut self, out: &mut Vec<u8>) {
        if let Some(mut b) = self.burst.take() {
            self.t += self.rng.exp(0.4);
            let (host, family, variant) = (b.host, b.family, b.variant);
            std::mem::swap(&mut self.message, &mut b.message);
            self.write_line(out, host, family, variant);
            std::mem::swap(&mut self.message, &mut b.message);
            b.remaining -= 1;
            if b.remaining > 0 {
                self.burst = Some(b);
            }
            return;
        }

        let hour = ((START_UNIX as f64 + self.t) % 86_400.0) / 3600.0;
        let cycle = 1.0 + 0.6 * (std::f64::consts::TAU * (hour - 8.0) / 24.0).sin();
        self.t += self.rng.exp(1.0 / (self.rate * cycle));

        let host = self.pick_host.sample(&mut self.rng);
        let h = &self.hosts[host];
        let family = if self.rng.chance(h.own_share) {
            h.family
        } else {
            LINUX
        };
        let fam = &self.model.families[family];
        let ti = fam.pick.sample(&mut self.rng);
        let tpl = &fam.templates[ti];
        let vi = tpl.pick_variant.sample(&mut self.rng);

        self.message.clear();
        self.message
            .extend_from_slice(tpl.variants[vi].prefix.as_bytes());
        self.message.extend_from_slice(tpl.pieces[0].as_bytes());
        for (slot, piece) in tpl.slots.iter().zip(&tpl.pieces[1..]) {
            fill(
                slot,
                &mut self.rng,
                &self.ips,
                &self.pick_ip,
                &mut self.message,
            );
            self.message.extend_from_slice(piece.as_bytes());
        }
        self.write_line(out, host, family, (ti, vi));

        if self.rng.chance(BURST_P) {
            let remaining = (self.rng.exp(BURST_MEAN - 1.0) as u32 + 1).min(300);
            self.burst = Some(Burst {
                host,
                family,
                variant: (ti, vi),
                message: self.message.clone(),
                remaining,
            });
        }
    }

    fn write_line(&mut self, out: &mut Vec<u8>, host: usize, family: usize, tv: (usize, usize)) {
        let spec = &FAMILIES[family];
        let variant = &self.model.families[family].templates[tv.0].variants[tv.1];
        let h = &mut self.hosts[host];
        let pid = if !variant.has_pid {
            None
        } else if spec.daemon {
            if self.rng.chance(2e-6) {
                h.daemon_pid[family] = h.new_pid(&mut self.rng);
            }
            Some(h.daemon_pid[family])
        } else {
            if self.rng.chance(0.4) {
                h.short_pid = h.new_pid(&mut self.rng);
            }
            Some(h.short_pid)
        };

        if h.pri {
            let facility = if family == LINUX {
                linux_facility(&variant.tag)
            } else {
                spec.facility
            };
            let pri = facility as u32 * 8 + variant.severity as u32;
            write!(out, "<{pri}>").unwrap();
        }
        let second = START_UNIX + self.t as i64;
        if self.stamp.0 != second {
            self.stamp = (second, rfc3164_stamp(second));
        }
        out.extend_from_slice(&self.stamp.1);
        out.push(b' ');
        out.extend_from_slice(h.name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(variant.tag.as_bytes());
        if let Some(pid) = pid {
            write!(out, "[{pid}]").unwrap();
        }
        out.extend_from_slice(b": ");
        out.extend(
            self.message
                .iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
        out.push(b'\n');
    }

    /// Seconds covered so far.
    pub fn elapsed_secs(&self) -> f64 {
        self.t
    }
}

fn fill(slot: &Slot, rng: &mut Rng, ips: &[[u8; 4]], pick_ip: &Weighted, out: &mut Vec<u8>) {
    match slot {
        Slot::Pick(values, w) => out.extend_from_slice(values[w.sample(rng)].as_bytes()),
        Slot::Ip => {
            let [a, b, c, d] = ips[pick_ip.sample(rng)];
            write!(out, "{a}.{b}.{c}.{d}").unwrap();
        }
        Slot::Int {
            digits,
            pick,
            negative,
        } => {
            if *negative > 0.0 && rng.chance(*negative) {
                out.push(b'-');
            }
            let n = digits[pick.sample(rng)];
            for i in 0..n {
                let d = if i == 0 && n > 1 {
                    rng.range(1, 9)
                } else {
                    rng.below(10)
                };
                out.push(b'0' + d as u8);
            }
        }
        Slot::Hex { len, upper } => {
            let digits: &[u8; 16] = if *upper {
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            for _ in 0..*len {
                out.push(digits[rng.below(16) as usize]);
            }
        }
        Slot::Mutate(values, w) => {
            let v = values[w.sample(rng)].as_bytes();
            if rng.chance(0.5) {
                out.extend_from_slice(v);
            } else {
                let mut prev_digit = false;
                for &b in v {
                    if b.is_ascii_digit() {
                        // Keep a run's leading digit non-zero when it was.
                        let d = if !prev_digit && b != b'0' {
                            rng.range(1, 9)
                        } else {
                            rng.below(10)
                        };
                        out.push(b'0' + d as u8);
                        prev_digit = true;
                    } else {
                        out.push(b);
                        prev_digit = false;
                    }
                }
            }
        }
        Slot::Any => write!(out, "{}", rng.below(10_000)).unwrap(),
    }
}

/// Half private (10/8, 192.168/16), half public-looking addresses.
fn ip_of(h: u64) -> [u8; 4] {
    const PUBLIC: [u8; 16] = [
        23, 45, 61, 77, 89, 103, 118, 141, 178, 185, 195, 203, 212, 218, 220, 222,
    ];
    let b = h.to_le_bytes();
    match b[0] % 10 {
        0..=4 => [10, b[1] % 8, b[2], b[3].max(1)],
        5 | 6 => [192, 168, b[2] % 16, b[3].max(1)],
        _ => [PUBLIC[(b[1] % 16) as usize], b[2], b[3], b[4].max(1)],
    }
}

/// `Mmm dd hh:mm:ss` (day space-padded) for a Unix second taken as local time.
pub fn rfc3164_stamp(unix: i64) -> [u8; 15] {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (_, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(15);
    write!(
        s,
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[m as usize - 1],
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
    .unwrap();
    s.into_bytes().try_into().expect("15 bytes")
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// What [`write_corpus`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct CorpusStats {
    pub lines: u64,
    pub bytes: u64,
    /// Seconds between the first and last timestamp.
    pub span_secs: f64,
}

/// Writes `lines` lines to `out`.
pub fn write_corpus(
    model: &Model,
    seed: u64,
    lines: u64,
    days: f64,
    out: &mut impl Write,
) -> Result<CorpusStats> {
    let mut g = Generator::new(model, seed, lines, days);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut bytes = 0u64;
    for _ in 0..lines {
        g.next_line(&mut buf);
        if buf.len() >= (1 << 20) - 4096 {
            out.write_all(&buf)?;
            bytes += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    bytes += buf.len() as u64;
    out.flush()?;
    Ok(CorpusStats {
        lines,
        bytes,
        span_secs: g.elapsed_secs(),
    })
}

/// Writes the corpus to `path` unless a complete one is there; returns its path. The file is
/// written under a temporary name and renamed, so an interrupted run leaves no half corpus.
pub fn ensure_corpus(
    templates: &Path,
    dir: &Path,
    lines: u64,
    seed: u64,
) -> Result<(PathBuf, Option<CorpusStats>)> {
    let path = corpus_path(dir, lines, seed);
    if path.exists() {
        return Ok((path, None));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let model = Model::load(templates)?;
    let tmp = path.with_extension("log.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let stats = write_corpus(&model, seed, lines, DEFAULT_DAYS, &mut w)?;
    drop(w);
    std::fs::rename(&tmp, &path)?;
    Ok((path, Some(stats)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::load(&default_templates_dir()).expect("loghub templates in ../shared")
    }

    #[test]
    fn csv_reader_handles_quotes() {
        let rows = parse_csv("a,b\n1,\"x, \"\"y\"\"\"\n2,\"multi\nline\"\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], vec!["1", "x, \"y\""]);
        assert_eq!(rows[2], vec!["2", "multi\nline"]);
    }

    #[test]
    fn template_matching_extracts_values() {
        let pieces: Vec<String> = "<*>:<*> Served block blk_<*> to /<*>"
            .split("<*>")
            .map(str::to_string)
            .collect();
        let v = match_template(&pieces, "10.0.0.1:50010 Served block blk_-42 to /10.0.0.2");
        assert_eq!(v, Some(vec!["10.0.0.1", "50010", "-42", "10.0.0.2"]));
        assert_eq!(match_template(&pieces, "nothing like it"), None);
    }

    #[test]
    fn stamps_are_rfc3164() {
        assert_eq!(&rfc3164_stamp(START_UNIX), b"Mar  9 00:00:00");
        assert_eq!(
            &rfc3164_stamp(START_UNIX + 86_400 * 23 + 3723),
            b"Apr  1 01:02:03"
        );
    }

    #[test]
    fn deterministic_and_well_formed() {
        let m = model();
        assert!(m.template_count() > 400);
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_corpus(&m, 5, 20_000, 1.0, &mut a).unwrap();
        write_corpus(&m, 5, 20_000, 1.0, &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = Vec::new();
        write_corpus(&m, 6, 20_000, 1.0, &mut c).unwrap();
        assert_ne!(a, c);

        let text = String::from_utf8(a).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        let mut hosts = std::collections::BTreeSet::new();
        let mut with_pri = 0;
        let mut last = String::new();
        for l in &lines {
            let l = if l.starts_with('<') {
                with_pri += 1;
                &l[l.find('>').unwrap() + 1..]
            } else {
                l
            };
            let stamp = &l[..15];
            assert!(stamp.starts_with("Mar "), "{l}");
            // One day from Mar 9: the stamps sort as strings.
            assert!(stamp >= last.as_str(), "{l}");
            last = stamp.to_string();
            let mut parts = l[16..].splitn(3, ' ');
            hosts.insert(parts.next().unwrap().to_string());
            let tag = parts.next().unwrap();
            assert!(tag.ends_with(':'), "{l}");
        }
        assert!(hosts.len() >= 45, "{hosts:?}");
        assert!(with_pri > 1000 && with_pri < 19_000, "{with_pri}");
    }

    #[test]
    fn lines_parse_as_rfc3164() {
        use infralog_collector::parse::{Format, ParseContext, parse_line};
        let m = model();
        let mut out = Vec::new();
        write_corpus(&m, 9, 5_000, 1.0, &mut out).unwrap();
        let ctx = ParseContext {
            reference_unix_secs: START_UNIX + 30 * 86_400,
            utc_offset_secs: 0,
            boot_unix_ns: None,
        };
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let rec = parse_line(Format::Rfc3164, line, &ctx);
            let text = String::from_utf8_lossy(line);
            assert_eq!(rec.error, None, "{text}");
            assert!(rec.timestamp_ns.is_some(), "{text}");
            assert!(rec.hostname.is_some() && rec.app_name.is_some(), "{text}");
        }
    }
}
