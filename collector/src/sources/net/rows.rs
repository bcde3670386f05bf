//! Messages → rows, per listener format: `syslog` (RFC 5424 or RFC 3164 per message, with
//! the existing parsers), `json_lines` (the application-log mapping shared with the file
//! source) and `raw`. The sender's address is kept in `extra` and stands in for a hostname
//! the message does not state.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use infralog_schemas::{extra_key, source};

use super::config::NetFormat;
use super::framing::Message;
use super::stats::ListenerStats;
use crate::batch::{ExtraWriter, LogBatchBuilder, Row};
use crate::parse::{ParseContext, rfc3164, rfc5424};
use crate::sources::app_json::AppJson;

/// `extra` keys this source writes; a JSON field of the same name is kept as `json.<name>`.
const RESERVED: [&str; 6] = [
    extra_key::PARSE_ERROR,
    extra_key::TRUNCATED,
    extra_key::RAW_HEX,
    extra_key::UNTERMINATED,
    extra_key::PEER,
    extra_key::TLS_PEER,
];

/// The rows of one connection or one UDP socket, until they are sent as a chunk.
pub struct NetRows {
    format: NetFormat,
    /// `ip:port` of the sender, and the ip alone (the fallback hostname).
    peer: Vec<u8>,
    peer_ip_len: usize,
    /// The name a TLS client certificate was accepted for.
    tls_peer: Option<String>,
    utc_offset_secs: i32,
    json: AppJson,
    /// Made on the first message: an idle connection holds no column builders.
    builder: Option<LogBatchBuilder>,
    /// Rows of the last chunk: the next builder is made that large at once rather than
    /// regrown (and copied) step by step for every chunk of a busy sender.
    next_capacity: usize,
    max_message_bytes: usize,
    /// When the oldest row not yet sent was appended.
    pub oldest: Option<Instant>,
    stats: Arc<ListenerStats>,
}

impl NetRows {
    pub fn new(
        format: NetFormat,
        utc_offset_secs: i32,
        max_message_bytes: usize,
        stats: Arc<ListenerStats>,
    ) -> NetRows {
        NetRows {
            format,
            peer: Vec::with_capacity(48),
            peer_ip_len: 0,
            tls_peer: None,
            utc_offset_secs,
            json: AppJson::default(),
            builder: None,
            next_capacity: 64,
            max_message_bytes,
            oldest: None,
            stats,
        }
    }

    pub fn set_peer(&mut self, addr: SocketAddr) {
        self.peer.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(self.peer, "{}", addr.ip());
        self.peer_ip_len = self.peer.len();
        let _ = write!(self.peer, ":{}", addr.port());
    }

    /// Rows appended and not yet taken.
    pub fn len(&self) -> usize {
        self.builder.as_ref().map_or(0, LogBatchBuilder::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows appended so far, as a batch; `None` when there are none.
    pub fn finish(&mut self) -> Option<arrow::record_batch::RecordBatch> {
        self.oldest = None;
        let mut b = self.builder.take().filter(|b| !b.is_empty())?;
        let batch = b.finish();
        self.next_capacity = batch.num_rows().clamp(64, 16_384);
        Some(batch)
    }

    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    pub fn set_tls_peer(&mut self, name: Option<String>) {
        self.tls_peer = name;
    }

    /// Appends one message received at `now_ns`. `flag_unterminated`: mark a message the
    /// stream ended inside (TCP; a datagram needs no newline).
    pub fn append(&mut self, m: &Message<'_>, now_ns: i64, flag_unterminated: bool) {
        self.oldest.get_or_insert_with(Instant::now);
        let (max, capacity) = (self.max_message_bytes, self.next_capacity);
        let builder = self
            .builder
            .get_or_insert_with(|| LogBatchBuilder::with_max_message(capacity, max));
        let stats = &self.stats;
        stats.messages.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(
            m.original_len.unwrap_or(m.body.len()) as u64,
            Ordering::Relaxed,
        );
        if m.original_len.is_some() {
            stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        let peer = &self.peer[..];
        let peer_ip = &self.peer[..self.peer_ip_len];
        let tls_peer = self.tls_peer.as_deref();
        let unterminated = flag_unterminated && m.unterminated;
        let common = |w: &mut ExtraWriter<'_>| {
            w.put(extra_key::PEER, peer);
            if let Some(name) = tls_peer {
                w.put(extra_key::TLS_PEER, name.as_bytes());
            }
            if unterminated {
                w.put(extra_key::UNTERMINATED, b"true");
            }
        };
        let base = Row {
            timestamp_ns: now_ns,
            hostname: peer_ip,
            source: source::NET,
            message: m.body,
            original_len: m.original_len,
            ..Row::default()
        };
        match self.format {
            NetFormat::Raw => builder.append(&base, now_ns, common),
            NetFormat::JsonLines => {
                let mapped = self.json.append(
                    builder,
                    &base,
                    m.original_len.is_some(),
                    self.utc_offset_secs,
                    now_ns,
                    &RESERVED,
                    common,
                );
                if !mapped {
                    stats.parse_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            NetFormat::Syslog => {
                let r = if rfc5424::looks_like(m.body) {
                    rfc5424::parse(m.body)
                } else {
                    let ctx = ParseContext {
                        reference_unix_secs: now_ns.div_euclid(1_000_000_000),
                        utc_offset_secs: self.utc_offset_secs,
                        boot_unix_ns: None,
                    };
                    rfc3164::parse(m.body, &ctx)
                };
                if r.error.is_some() {
                    stats.parse_errors.fetch_add(1, Ordering::Relaxed);
                }
                let row = Row {
                    original_len: m.original_len,
                    ..Row::from_record(&r, source::NET, peer_ip, now_ns)
                };
                builder.append(&row, now_ns, |w| {
                    common(w);
                    w.put_parsed(&r);
                });
            }
        }
    }
}
