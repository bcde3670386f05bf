//! The collector's configuration: TOML, unknown keys refused, errors name the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::archive::ArchiverOptions;
use crate::archive::parquet::EncodeOptions;
use crate::spool::SpoolOptions;

/// The default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/infra-collector.toml");

/// Every table and key may be left out: an empty file means the built-in configuration
/// (the tests hold the `Default`s below equal to `deploy/infra-collector.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub collector: CollectorConfig,
    pub archive: ArchiveConfig,
    pub spool: SpoolConfig,
    pub retention: RetentionConfig,
    pub sources: SourcesConfig,
    #[serde(default)]
    pub detect: DetectConfig,
    /// `[[forward]]`: sinks that get the spooled rows besides the archive.
    #[serde(default)]
    pub forward: Vec<crate::forward::SinkConfig>,
    /// `[[route]]`: which sinks get which rows (none: every sink gets every row).
    #[serde(default)]
    pub route: Vec<crate::forward::route::RouteConfig>,
    #[serde(default)]
    pub alert: crate::alert::AlertConfig,
    /// `[http]`: the operations endpoint (issue 11).
    #[serde(default)]
    pub http: crate::http::HttpConfig,
}

/// The template miner on the ingest path (`template_id` column).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Mine templates of every line; off: `template_id` stays null.
    pub templates: bool,
    /// Templates kept in memory; beyond it the least recently used one is evicted.
    pub max_templates: usize,
    /// Detect anomalies (the `anomalies` table, alerts); needs `templates`.
    pub anomalies: bool,
    /// Minutes of event time a series (and the detector, for new templates) learns before
    /// it may raise anything.
    pub warmup_minutes: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            templates: true,
            max_templates: crate::detect::MinerConfig::default().max_templates,
            anomalies: true,
            warmup_minutes: crate::detect::DetectorConfig::default().warmup_minutes,
        }
    }
}

impl DetectConfig {
    /// The miner's options, its state in `<collector.state_dir>/templates`, the
    /// `templates` table in the archive; `None` when off.
    pub fn miner_options(config: &Config) -> Option<crate::detect::MinerOptions> {
        let mut opts = config
            .detect
            .miner_options_in(&config.collector.state_dir)?;
        opts.table = Some(crate::detect::stage::TableTarget {
            archive: config.archive.path.clone(),
            s3: config.archive.s3.clone(),
            hostname: config.hostname(),
        });
        Some(opts)
    }

    fn miner_options_in(&self, state_dir: &Path) -> Option<crate::detect::MinerOptions> {
        self.templates.then(|| crate::detect::MinerOptions {
            config: crate::detect::MinerConfig {
                max_templates: self.max_templates,
                ..Default::default()
            },
            state_dir: Some(state_dir.join("templates")),
            table: None,
            detect: self.anomalies.then(|| crate::detect::DetectOptions {
                config: self.detector_config(),
                state_dir: Some(state_dir.join("detect")),
                alerts: None,
                live: true,
            }),
        })
    }

    pub fn detector_config(&self) -> crate::detect::DetectorConfig {
        crate::detect::DetectorConfig {
            warmup_minutes: self.warmup_minutes,
            ..Default::default()
        }
    }
}

/// How long the archive keeps data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// `log_date` partitions older than this many days are deleted (checked hourly);
    /// 0 keeps everything.
    pub days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { days: 90 }
    }
}

/// The spool: where rows are durable before they are archived, and where each source's
/// position lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Empty: `<collector.state_dir>/spool`.
    pub dir: String,
    pub fsync_interval_ms: u64,
    pub segment_mb: u64,
    pub seal_secs: u64,
    pub max_mb: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        let d = SpoolOptions::default();
        Self {
            dir: String::new(),
            fsync_interval_ms: d.fsync_interval.as_millis() as u64,
            segment_mb: d.segment_bytes >> 20,
            seal_secs: d.seal_after.as_secs(),
            max_mb: d.max_bytes >> 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    pub hostname: String,
    pub state_dir: PathBuf,
    pub chunk_rows: usize,
    pub chunk_max_age_ms: u64,
    pub max_message_bytes: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            state_dir: PathBuf::from("./data/state"),
            chunk_rows: 8192,
            chunk_max_age_ms: 500,
            max_message_bytes: crate::batch::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// A directory or `s3://bucket/prefix`.
    pub path: String,
    /// Endpoint, region and where the credentials are, for an S3 archive.
    pub s3: infralog_store::S3Settings,
    pub zstd_level: i32,
    pub row_group_rows: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        let e = EncodeOptions::default();
        Self {
            path: "./data".into(),
            s3: Default::default(),
            zstd_level: e.zstd_level,
            row_group_rows: e.row_group_rows,
        }
    }
}

impl ArchiveConfig {
    pub fn archiver_options(&self) -> ArchiverOptions {
        ArchiverOptions {
            pending_budget: ArchiverOptions::default().pending_budget,
            encode: EncodeOptions {
                zstd_level: self.zstd_level,
                row_group_rows: self.row_group_rows,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub kmsg: KmsgConfig,
    pub ebpf: crate::sources::ebpf::EbpfConfig,
    pub journald: crate::sources::journald::JournaldConfig,
    pub file: crate::sources::file::FileConfig,
    pub containers: crate::sources::file::ContainersConfig,
    #[serde(default)]
    pub net: crate::sources::net::NetConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KmsgConfig {
    pub enabled: bool,
    pub path: PathBuf,
}

impl Default for KmsgConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from("/dev/kmsg"),
        }
    }
}

impl Config {
    /// Parses and validates a configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let hint = crate::validate::did_you_mean(e.message());
            match line {
                Some(line) => anyhow::anyhow!(
                    "invalid configuration {origin}, line {line}: {}{hint}",
                    e.message()
                ),
                None => anyhow::anyhow!("invalid configuration {origin}: {}{hint}", e.message()),
            }
        })?;
        // Every value problem at once, each with its line where the text has one.
        let problems: Vec<String> = (config.validate().into_iter())
            .map(|p| match crate::validate::at_line(text, &p) {
                at if at.starts_with("line ") => format!("invalid configuration {origin}, {at}"),
                _ => format!("invalid configuration {origin}: {p}"),
            })
            .collect();
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn default_config() -> Config {
        Self::parse(DEFAULT_CONFIG, "(built-in default)")
            .expect("the embedded default configuration is valid")
    }

    /// The value problems, each starting with its dotted key where it has one.
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let checks: [(bool, &str); 9] = [
            (
                self.detect.max_templates >= 1,
                "detect.max_templates must be at least 1",
            ),
            (
                self.collector.chunk_rows > 0,
                "collector.chunk_rows must be at least 1",
            ),
            (
                self.collector.max_message_bytes >= 64,
                "collector.max_message_bytes must be at least 64",
            ),
            (
                self.spool.segment_mb >= 1,
                "spool.segment_mb must be at least 1",
            ),
            (
                self.spool.max_mb >= 2 * self.spool.segment_mb,
                "spool.max_mb must be at least twice spool.segment_mb",
            ),
            (
                self.spool.seal_secs >= 1,
                "spool.seal_secs must be at least 1",
            ),
            (
                self.spool.fsync_interval_ms <= 60_000,
                "spool.fsync_interval_ms must be at most 60000",
            ),
            (
                (1..=22).contains(&self.archive.zstd_level),
                "archive.zstd_level must be between 1 and 22",
            ),
            (
                self.archive.row_group_rows > 0,
                "archive.row_group_rows must be at least 1",
            ),
        ];
        for (ok, why) in checks {
            if !ok {
                problems.push(why.to_string());
            }
        }
        if let Err(e) = self.alert.validate() {
            problems.push(e);
        }
        if let Err(e) = infralog_store::Location::parse(&self.archive.path) {
            problems.push(format!("archive.path: {e:#}"));
        }
        if let Err(e) =
            crate::forward::config::validate(&self.forward, &self.route, self.spool.max_mb)
        {
            problems.push(format!("{e:#}"));
        }
        if let Err(e) = self.sources.journald.validate() {
            problems.push(format!("{e:#}"));
        }
        if let Err(e) = self.http.validate() {
            problems.push(format!("{e:#}"));
        }
        problems
    }

    pub fn spool_options(&self) -> SpoolOptions {
        let dir = if self.spool.dir.is_empty() {
            self.collector.state_dir.join("spool")
        } else {
            PathBuf::from(&self.spool.dir)
        };
        SpoolOptions {
            dir,
            fsync_interval: Duration::from_millis(self.spool.fsync_interval_ms),
            segment_bytes: self.spool.segment_mb << 20,
            seal_after: Duration::from_secs(self.spool.seal_secs),
            max_bytes: self.spool.max_mb << 20,
            ..SpoolOptions::default()
        }
    }

    /// The hostname for rows that do not state one.
    pub fn hostname(&self) -> String {
        if self.collector.hostname.is_empty() {
            system_hostname()
        } else {
            self.collector.hostname.clone()
        }
    }
}

/// This machine's hostname (`localhost` if it cannot be read).
pub fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc != 0 || len == 0 {
        return "localhost".into();
    }
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = Config::default_config();
        assert_eq!(c.archive.path, "./data");
        assert!(c.sources.kmsg.enabled);
    }

    /// On a systemd host rsyslog writes /var/log/syslog and friends from the journal: the
    /// default inputs step aside while the journald source runs; a user's own inputs do
    /// not.
    #[test]
    fn default_syslog_files_are_left_to_journald() {
        let c = Config::default_config();
        let (kept, skipped) = c.sources.file.inputs_beside(true);
        assert!(kept.is_empty());
        assert!(skipped.iter().any(|p| p == Path::new("/var/log/syslog")));
        let (kept, skipped) = c.sources.file.inputs_beside(false);
        assert_eq!(kept.len(), 1);
        assert!(skipped.is_empty());
        let text =
            format!("{DEFAULT_CONFIG}\n[[sources.file.inputs]]\npaths = [\"/var/log/app.log\"]\n");
        let c = Config::parse(&text, "test.toml").unwrap();
        let (kept, _) = c.sources.file.inputs_beside(true);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].paths, [PathBuf::from("/var/log/app.log")]);
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let text = DEFAULT_CONFIG.replace("zstd_level = 3", "zstd_level = 3\nzstd_levle = 4");
        let err = Config::parse(&text, "test.toml").unwrap_err().to_string();
        let line = text
            .lines()
            .position(|l| l.starts_with("zstd_levle"))
            .unwrap()
            + 1;
        assert!(err.contains(&format!("line {line}")), "{err}");
        assert!(err.contains("zstd_levle"), "{err}");
    }

    #[test]
    fn file_source_defaults_and_bad_values_refused_with_their_line() {
        let c = Config::default_config();
        assert!(c.sources.file.enabled);
        assert_eq!(c.sources.file.inputs.len(), 1);
        assert_eq!(c.sources.file.inputs[0].paths.len(), 5);
        assert!(c.sources.containers.docker && c.sources.containers.cri);
        let line_of =
            |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        for (from, to, why) in [
            (
                "poll_interval_ms = 250",
                "poll_interval_ms = 0",
                "at least 1",
            ),
            ("\nformat = \"syslog\"", "\nformat = \"yaml\"", "yaml"),
        ] {
            let text = DEFAULT_CONFIG.replace(from, to);
            let err = Config::parse(&text, "t").unwrap_err().to_string();
            let line = line_of(&text, to.trim_start());
            assert!(err.contains(&format!("line {line}")), "{err}");
            assert!(err.contains(why), "{err}");
        }
        // Whole-input checks name the input's table.
        for (to, why) in [
            ("\nformat = \"syslog\"\nutc_offset = \"CET\"", "CET"),
            (
                "\nformat = \"docker\"\n[sources.file.inputs.multiline]",
                "multiline",
            ),
        ] {
            let text = DEFAULT_CONFIG.replace("\nformat = \"syslog\"", to);
            let err = Config::parse(&text, "t").unwrap_err().to_string();
            let table = text
                .lines()
                .position(|l| l == "[[sources.file.inputs]]")
                .unwrap()
                + 1;
            let lines: Vec<usize> = (table..=table + 3).collect();
            assert!(
                lines.iter().any(|l| err.contains(&format!("line {l}"))),
                "{err}"
            );
            assert!(err.contains(why), "{err}");
        }
        let text = DEFAULT_CONFIG.replace("\"/var/log/syslog\"", "\"var/log/syslog\"");
        let err = Config::parse(&text, "t").unwrap_err().to_string();
        assert!(err.contains("absolute"), "{err}");
    }

    /// The built-in file, an empty file, comments only and tables with nothing in them all
    /// mean the same configuration; so does a file naming only what it changes.
    #[test]
    fn left_out_means_the_built_in_default() {
        let builtin = format!("{:?}", Config::default_config());
        for text in [
            "",
            "\n\n",
            "# only a comment\n   # and another\n",
            "[collector]\n[archive]\n[spool]\n[retention]\n[sources]\n[sources.kmsg]\n",
        ] {
            let c = Config::parse(text, "t").unwrap_or_else(|e| panic!("{text:?}: {e:#}"));
            assert_eq!(format!("{c:?}"), builtin, "{text:?}");
        }
        let c = Config::parse("[collector]\nhostname = \"web-01\"\n", "t").unwrap();
        assert_eq!(c.collector.hostname, "web-01");
        assert_eq!(c.collector.state_dir, PathBuf::from("./data/state"));
        assert_eq!(c.archive.path, "./data");
        let c = Config::parse("[archive]\nzstd_level = 9\n", "t").unwrap();
        assert_eq!(
            (c.archive.zstd_level, c.archive.path.as_str()),
            (9, "./data")
        );
        assert_eq!(c.collector.chunk_rows, 8192);
    }

    #[test]
    fn partial_config_still_refuses_bad_keys_and_values_with_their_line() {
        let err = Config::parse("# comment\n[collector]\nstate_dirr = \"/x\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("state_dirr"),
            "{err}"
        );
        let err = Config::parse("\n[archive]\nzstd_level = \"high\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("invalid type"),
            "{err}"
        );
        let err = Config::parse("[spool]\nsegment_mb = 0\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment_mb must be at least 1"), "{err}");
        let err = Config::parse("[colector]\n", "t").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("colector"), "{err}");
    }

    #[test]
    fn wrong_type_and_bad_value_are_refused() {
        let text = DEFAULT_CONFIG.replace("segment_mb = 64", "segment_mb = \"many\"");
        let err = Config::parse(&text, "t").unwrap_err().to_string();
        assert!(err.contains("line"), "{err}");
        let text = DEFAULT_CONFIG.replace("zstd_level = 3", "zstd_level = 99");
        let err = Config::parse(&text, "t").unwrap_err().to_string();
        assert!(err.contains("zstd_level"), "{err}");
    }

    /// `[detect]` and `[alert]`: unknown keys and bad targets refused with their line and
    /// the reason; targets parsed with their defaults.
    #[test]
    fn detect_and_alert_sections_are_checked() {
        let c = Config::default_config();
        assert!(c.detect.anomalies && c.alert.targets.is_empty());
        let err = Config::parse("[alert]\nrepeat_intervall_secs = 3\n", "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("repeat_intervall_secs"),
            "{err}"
        );
        let target = "[[alert.targets]]\nname = \"ops\"\nkind = \"slack\"\nurl = \"https://hooks.example/x\"\n";
        let c = Config::parse(target, "t").unwrap();
        let t = &c.alert.targets[0];
        assert_eq!(t.kind, crate::alert::TargetKind::Slack);
        assert_eq!(t.min_severity, crate::detect::Severity::Warning);
        let err = Config::parse(
            &format!("\n\n{}", target.replace("https://", "gopher://")),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3") && err.contains("gopher"), "{err}");
        let err = Config::parse(&format!("{target}{target}"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ops\" is used twice"), "{err}");
        let err = Config::parse("[alert]\nmax_per_hour = 0\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_per_hour"), "{err}");
    }
}
