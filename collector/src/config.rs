//! The collector's configuration: TOML, unknown keys refused, errors name the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::archive::WriterOptions;
use crate::archive::parquet::EncodeOptions;

/// The default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/infra-collector.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub collector: CollectorConfig,
    pub archive: ArchiveConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    #[serde(default)]
    pub hostname: String,
    pub state_dir: PathBuf,
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    #[serde(default = "default_chunk_max_age_ms")]
    pub chunk_max_age_ms: u64,
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_chunk_rows() -> usize {
    8192
}
fn default_chunk_max_age_ms() -> u64 {
    500
}
fn default_max_message_bytes() -> usize {
    crate::batch::DEFAULT_MAX_MESSAGE_BYTES
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    pub path: String,
    #[serde(default = "default_file_rows")]
    pub file_rows: usize,
    #[serde(default = "default_flush_interval_secs")]
    pub flush_interval_secs: u64,
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_file_rows() -> usize {
    WriterOptions::default().file_rows
}
fn default_flush_interval_secs() -> u64 {
    WriterOptions::default().flush_interval.as_secs()
}
fn default_zstd_level() -> i32 {
    EncodeOptions::default().zstd_level
}
fn default_row_group_rows() -> usize {
    EncodeOptions::default().row_group_rows
}

impl ArchiveConfig {
    pub fn writer_options(&self) -> WriterOptions {
        WriterOptions {
            file_rows: self.file_rows,
            max_buffered_rows: self.file_rows.saturating_mul(2),
            flush_interval: Duration::from_secs(self.flush_interval_secs),
            encoders: WriterOptions::default().encoders,
            encode: EncodeOptions {
                zstd_level: self.zstd_level,
                row_group_rows: self.row_group_rows,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub kmsg: KmsgConfig,
    #[serde(default)]
    pub ebpf: crate::sources::ebpf::EbpfConfig,
    #[serde(default)]
    pub file: crate::sources::file::FileConfig,
    #[serde(default)]
    pub containers: crate::sources::file::ContainersConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsgConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_kmsg_path")]
    pub path: PathBuf,
}

impl Default for KmsgConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: default_kmsg_path(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_kmsg_path() -> PathBuf {
    PathBuf::from("/dev/kmsg")
}

impl Config {
    /// Parses and validates a configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => anyhow::anyhow!(
                    "invalid configuration {origin}, line {line}: {}",
                    e.message()
                ),
                None => anyhow::anyhow!("invalid configuration {origin}: {}", e.message()),
            }
        })?;
        config.validate(origin)?;
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

    fn validate(&self, origin: &str) -> Result<()> {
        let checks: [(bool, &str); 5] = [
            (
                self.collector.chunk_rows > 0,
                "collector.chunk_rows must be at least 1",
            ),
            (
                self.collector.max_message_bytes >= 64,
                "collector.max_message_bytes must be at least 64",
            ),
            (
                self.archive.file_rows > 0,
                "archive.file_rows must be at least 1",
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
                bail!("invalid configuration {origin}: {why}");
            }
        }
        Ok(())
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

    #[test]
    fn wrong_type_and_bad_value_are_refused() {
        let text = DEFAULT_CONFIG.replace("file_rows = 1000000", "file_rows = \"many\"");
        let err = Config::parse(&text, "t").unwrap_err().to_string();
        assert!(err.contains("line"), "{err}");
        let text = DEFAULT_CONFIG.replace("zstd_level = 3", "zstd_level = 99");
        let err = Config::parse(&text, "t").unwrap_err().to_string();
        assert!(err.contains("zstd_level"), "{err}");
    }
}
