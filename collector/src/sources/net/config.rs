//! `[sources.net]`: the listeners. Values are checked while the TOML is read, so that a bad
//! one is refused with its line.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::time::parse_utc_offset;

/// `[sources.net]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Threads that serve the TCP and TLS connections (UDP sockets have one each).
    #[serde(default = "default_threads")]
    pub threads: usize,
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            listeners: Vec::new(),
        }
    }
}

fn default_threads() -> usize {
    2
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetFormat {
    /// RFC 3164 or RFC 5424, detected per message.
    Syslog,
    /// One JSON object per line (Logstash `json_lines`).
    JsonLines,
    /// The line is the message.
    Raw,
}

/// One `[[sources.net.listeners]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawListener")]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub protocol: Protocol,
    pub format: NetFormat,
    /// Longest message kept; longer frames are cut and flagged. `None`: the collector's
    /// `max_message_bytes`.
    pub max_message_bytes: Option<usize>,
    pub max_connections: usize,
    pub idle_timeout_secs: u64,
    /// UDP: the socket receive buffer asked for (0: the kernel's default).
    pub receive_buffer_bytes: usize,
    /// UDP: sockets bound to the address with SO_REUSEPORT, one thread each.
    pub sockets: usize,
    /// Zone of RFC 3164 timestamps and JSON times that state none; `None`: this host's.
    pub utc_offset_secs: Option<i32>,
    pub tls: Option<TlsConfig>,
}

/// `[sources.net.listeners.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain and private key, re-read when they change.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to; empty: clients are
    /// not asked for one.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a client without a certificate is refused.
    #[serde(default = "yes")]
    pub client_cert_required: bool,
    /// With `client_ca`: the names (DNS SAN) a client certificate must be valid for, any
    /// one of them; empty: any certificate the CA signed.
    #[serde(default)]
    pub permitted_peers: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    #[serde(default = "default_address")]
    address: String,
    protocol: Protocol,
    #[serde(default = "default_format")]
    format: NetFormat,
    #[serde(default)]
    max_message_bytes: Option<usize>,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_idle_timeout")]
    idle_timeout_secs: u64,
    #[serde(default = "default_receive_buffer")]
    receive_buffer_bytes: usize,
    #[serde(default = "default_sockets")]
    sockets: usize,
    #[serde(default)]
    utc_offset: Option<String>,
    #[serde(default)]
    tls: Option<TlsConfig>,
}

fn default_address() -> String {
    "127.0.0.1:1514".into()
}
fn default_format() -> NetFormat {
    NetFormat::Syslog
}
fn default_max_connections() -> usize {
    1024
}
fn default_idle_timeout() -> u64 {
    600
}
fn default_receive_buffer() -> usize {
    8 << 20
}
fn default_sockets() -> usize {
    1
}

impl TryFrom<RawListener> for ListenerConfig {
    type Error = String;

    fn try_from(r: RawListener) -> Result<Self, String> {
        let address: SocketAddr = r.address.parse().map_err(|_| {
            format!(
                "address {:?} is not an IP address and port (e.g. \"127.0.0.1:1514\")",
                r.address
            )
        })?;
        if r.max_message_bytes.is_some_and(|m| m < 64) {
            return Err("max_message_bytes must be at least 64".into());
        }
        if r.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if r.idle_timeout_secs == 0 {
            return Err("idle_timeout_secs must be at least 1".into());
        }
        if !(1..=64).contains(&r.sockets) {
            return Err("sockets must be between 1 and 64".into());
        }
        if r.sockets > 1 && r.protocol != Protocol::Udp {
            return Err("sockets applies to udp listeners only".into());
        }
        match (r.protocol, &r.tls) {
            (Protocol::Tls, None) => {
                return Err("protocol = \"tls\" needs a [tls] table with cert and key".into());
            }
            (Protocol::Udp | Protocol::Tcp, Some(_)) => {
                return Err("a [tls] table needs protocol = \"tls\"".into());
            }
            _ => {}
        }
        if let Some(t) = &r.tls
            && !t.permitted_peers.is_empty()
            && t.client_ca.is_none()
        {
            return Err("tls.permitted_peers needs tls.client_ca".into());
        }
        let utc_offset_secs = r.utc_offset.as_deref().map(parse_utc_offset).transpose()?;
        Ok(ListenerConfig {
            address,
            protocol: r.protocol,
            format: r.format,
            max_message_bytes: r.max_message_bytes,
            max_connections: r.max_connections,
            idle_timeout_secs: r.idle_timeout_secs,
            receive_buffer_bytes: r.receive_buffer_bytes,
            sockets: r.sockets,
            utc_offset_secs,
            tls: r.tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, DEFAULT_CONFIG};

    fn with_listener(body: &str) -> (String, Result<Config, String>) {
        let text = format!("{DEFAULT_CONFIG}\n[[sources.net.listeners]]\n{body}\n");
        let r = Config::parse(&text, "t").map_err(|e| format!("{e:#}"));
        (text, r)
    }

    #[test]
    fn defaults_and_a_plain_listener() {
        assert!(Config::default_config().sources.net.listeners.is_empty());
        let (_, c) = with_listener("protocol = \"tcp\"");
        let l = &c.unwrap().sources.net.listeners[0];
        assert_eq!(l.address.to_string(), "127.0.0.1:1514");
        assert_eq!(l.format, super::NetFormat::Syslog);
    }

    #[test]
    fn bad_listeners_are_refused_with_their_line_and_reason() {
        for (body, why) in [
            (
                "address = \"localhost:1514\"\nprotocol = \"tcp\"",
                "not an IP address",
            ),
            ("protocol = \"tls\"", "needs a [tls] table"),
            ("protocol = \"sctp\"", "sctp"),
            ("protocol = \"udp\"\nformat = \"yaml\"", "yaml"),
            ("protocol = \"tcp\"\nsockets = 4", "udp listeners only"),
            ("protocol = \"tcp\"\nmax_connections = 0", "max_connections"),
            ("protocol = \"tcp\"\nutc_offset = \"CET\"", "CET"),
            ("protocol = \"tcp\"\nbufsize = 1", "bufsize"),
        ] {
            let (text, r) = with_listener(body);
            let err = r.expect_err(body);
            let table = text
                .lines()
                .position(|l| l == "[[sources.net.listeners]]")
                .unwrap()
                + 1;
            let near = (table..=table + 3).any(|l| err.contains(&format!("line {l}")));
            assert!(near, "{body}: {err}");
            assert!(err.contains(why), "{body}: {err}");
        }
    }
}
