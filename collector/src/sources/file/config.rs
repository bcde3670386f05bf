//! `[sources.file]` and `[sources.containers]`: what to tail and how. Values are checked
//! while the TOML is read, so that a bad one is refused with its line.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::format::Format;
use crate::time::parse_utc_offset;

/// `[sources.file]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often files are checked for new data when they had none.
    #[serde(default = "default_poll_ms", deserialize_with = "positive")]
    pub poll_interval_ms: u64,
    /// How often the paths and globs are expanded again to find new files.
    #[serde(default = "default_rescan_secs", deserialize_with = "positive")]
    pub rescan_interval_secs: u64,
    /// How long a file whose path moved on (rotated, deleted) is still read.
    #[serde(default = "default_rotate_wait_secs")]
    pub rotate_wait_secs: u64,
    /// Archive a last line that has had no newline for this long (0: only when the file
    /// is done).
    #[serde(default)]
    pub partial_line_timeout_secs: u64,
    #[serde(default = "default_inputs")]
    pub inputs: Vec<InputConfig>,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: default_poll_ms(),
            rescan_interval_secs: default_rescan_secs(),
            rotate_wait_secs: default_rotate_wait_secs(),
            partial_line_timeout_secs: 0,
            inputs: default_inputs(),
        }
    }
}

/// One `[[sources.file.inputs]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawInput")]
pub struct InputConfig {
    pub paths: Vec<PathBuf>,
    pub format: Format,
    pub exclude: Vec<String>,
    /// Zone of timestamps that state none; `None`: this host's.
    pub utc_offset_secs: Option<i32>,
    pub multiline: Option<MultilineConfig>,
    /// Not read while the journald source runs: on a systemd host rsyslog writes these
    /// files from the journal, so every line would be archived twice.
    pub skip_if_journald: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    paths: Vec<PathBuf>,
    #[serde(default = "default_format")]
    format: Format,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    utc_offset: Option<String>,
    #[serde(default)]
    multiline: Option<MultilineConfig>,
    #[serde(default)]
    skip_if_journald: bool,
}

impl TryFrom<RawInput> for InputConfig {
    type Error = String;

    fn try_from(r: RawInput) -> Result<Self, String> {
        if r.paths.is_empty() {
            return Err("paths must name at least one file or glob".into());
        }
        if let Some(p) = r.paths.iter().find(|p| p.is_relative()) {
            return Err(format!("paths must be absolute: {}", p.display()));
        }
        if r.multiline.is_some() && matches!(r.format, Format::Docker | Format::Cri) {
            return Err(
                "multiline does not apply to docker and cri inputs, which join \
                        their partial records themselves"
                    .into(),
            );
        }
        let utc_offset_secs = r.utc_offset.as_deref().map(parse_utc_offset).transpose()?;
        Ok(InputConfig {
            paths: r.paths,
            format: r.format,
            exclude: r.exclude,
            utc_offset_secs,
            multiline: r.multiline,
            skip_if_journald: r.skip_if_journald,
        })
    }
}

/// `[sources.file.inputs.multiline]`: joining continuation lines into one record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A record starts with a line that begins with this pattern (`#` a digit, `?` any
    /// byte, anything else itself); without it, lines that begin with a space or tab or
    /// with `Caused by:` continue the record before them.
    #[serde(default, deserialize_with = "non_empty")]
    pub start: Option<String>,
    /// A record still open this long after its last line is archived.
    #[serde(
        default = "default_multiline_timeout_ms",
        deserialize_with = "positive"
    )]
    pub timeout_ms: u64,
}

/// `[sources.containers]`: Docker json-file and Kubernetes CRI logs, each on when its
/// directory exists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainersConfig {
    #[serde(default = "yes")]
    pub docker: bool,
    #[serde(default = "default_docker_root")]
    pub docker_root: PathBuf,
    #[serde(default = "yes")]
    pub cri: bool,
    #[serde(default = "default_cri_root")]
    pub cri_root: PathBuf,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        Self {
            docker: true,
            docker_root: default_docker_root(),
            cri: true,
            cri_root: default_cri_root(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_poll_ms() -> u64 {
    250
}
fn default_rescan_secs() -> u64 {
    10
}
fn default_rotate_wait_secs() -> u64 {
    5
}
fn default_multiline_timeout_ms() -> u64 {
    1000
}
fn default_format() -> Format {
    Format::Syslog
}
fn default_docker_root() -> PathBuf {
    PathBuf::from("/var/lib/docker/containers")
}
fn default_cri_root() -> PathBuf {
    PathBuf::from("/var/log/pods")
}

/// The files rsyslog writes on Debian/Ubuntu (syslog, auth.log, kern.log) and RHEL
/// (messages, secure).
pub const DEFAULT_PATHS: [&str; 5] = [
    "/var/log/syslog",
    "/var/log/auth.log",
    "/var/log/kern.log",
    "/var/log/messages",
    "/var/log/secure",
];

fn default_inputs() -> Vec<InputConfig> {
    vec![InputConfig {
        paths: DEFAULT_PATHS.iter().map(PathBuf::from).collect(),
        format: Format::Syslog,
        exclude: Vec::new(),
        utc_offset_secs: None,
        multiline: None,
        skip_if_journald: true,
    }]
}

impl FileConfig {
    /// The inputs to read, given whether the journald source runs, and the paths left out
    /// because it does (`skip_if_journald`).
    pub fn inputs_beside(&self, journald_runs: bool) -> (Vec<InputConfig>, Vec<PathBuf>) {
        let (skipped, kept): (Vec<_>, Vec<_>) = self
            .inputs
            .iter()
            .cloned()
            .partition(|i| journald_runs && i.skip_if_journald);
        (kept, skipped.into_iter().flat_map(|i| i.paths).collect())
    }
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(v)
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = String::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(Some(v))
}
