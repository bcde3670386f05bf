//! Counters of one listener, shared by its sockets and connections: logged when the
//! collector stops and read by whoever reports metrics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Messages appended as rows (including those kept with a parse error).
    pub messages: AtomicU64,
    /// Bytes of those messages as the senders sent them (before any cut).
    pub bytes: AtomicU64,
    pub parse_errors: AtomicU64,
    /// Messages longer than the limit, kept cut.
    pub truncated: AtomicU64,
    /// TCP/TLS connections accepted, open now, refused (over `max_connections`, or a
    /// failed TLS handshake / peer check), and closed for being idle.
    pub connections: AtomicU64,
    pub open_connections: AtomicU64,
    pub refused_connections: AtomicU64,
    pub idle_closed: AtomicU64,
    /// UDP datagrams received, and those the kernel dropped because the socket buffer was
    /// full (SO_RXQ_OVFL), summed over the listener's sockets.
    pub datagrams: AtomicU64,
    pub kernel_drops: AtomicU64,
    /// Messages received but not archived because the collector stopped first (UDP rows
    /// still waiting for room in the spool at shutdown).
    pub dropped: AtomicU64,
}

impl fmt::Display for ListenerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "messages={} bytes={} parse_errors={} truncated={} connections={} open={} \
             refused={} idle_closed={} datagrams={} kernel_drops={} dropped={}",
            g(&self.messages),
            g(&self.bytes),
            g(&self.parse_errors),
            g(&self.truncated),
            g(&self.connections),
            g(&self.open_connections),
            g(&self.refused_connections),
            g(&self.idle_closed),
            g(&self.datagrams),
            g(&self.kernel_drops),
            g(&self.dropped),
        )
    }
}
