//! TCP and TLS listeners: one task per connection on the source's runtime. A connection
//! reads into its own bounded buffer, frames and parses what it has into its own rows, and
//! sends a chunk when it is full or old. While the spool cannot take a chunk the task waits
//! and stops reading, so the sender's TCP window closes: a slow archive slows the senders,
//! it never loses what they sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Listener;
use super::config::NetFormat;
use super::framing::{Decoder, Framer, buffer_len};
use super::rows::NetRows;
use crate::chunk::Chunk;
use crate::time::now_ns;

/// A connection's buffer starts this small and grows (to the frame limit) only for a
/// sender whose messages need it: a thousand idle connections cost little.
const INITIAL_BUFFER: usize = 4096;
/// A busy connection's buffer grows to at least this, so that a fast sender costs few
/// reads (a read that fills the buffer says more is waiting).
const BUSY_BUFFER: usize = 256 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// At shutdown a connection is read until it has been quiet this long, for at most
/// [`SHUTDOWN_DRAIN`].
const QUIET: Duration = Duration::from_millis(200);
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Limits and hand-off shared by every connection of a listener.
pub struct Shared {
    pub listener: Arc<Listener>,
    pub chunks: Sender<Chunk>,
    pub chunk_rows: usize,
    pub chunk_max_age: Duration,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Accepts connections until shutdown, then waits for every connection to hand on what
/// it received.
pub async fn accept_loop(
    socket: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listener = %shared.listener.name, "cannot listen: {e}");
            return;
        }
    };
    let mut conns = JoinSet::new();
    let stats = &shared.listener.stats;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: the listener stays.
                        tracing::warn!(listener = %shared.listener.name, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                while conns.try_join_next().is_some() {}
                if conns.len() >= shared.listener.config.max_connections {
                    stats.refused_connections.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        listener = %shared.listener.name, %peer,
                        "connection refused: max_connections ({}) reached",
                        shared.listener.config.max_connections
                    );
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                stats.open_connections.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                conns.spawn(async move {
                    connection(stream, peer, &shared, shutdown).await;
                    shared.listener.stats.open_connections.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    shutdown: watch::Receiver<bool>,
) {
    let Some(acceptor) = &shared.tls else {
        return serve(stream, peer, None, shared, shutdown).await;
    };
    let stats = &shared.listener.stats;
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            stats.refused_connections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(listener = %shared.listener.name, %peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            stats.refused_connections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(listener = %shared.listener.name, %peer, "TLS handshake timed out");
            return;
        }
    };
    let permitted = shared
        .listener
        .config
        .tls
        .as_ref()
        .map(|t| t.permitted_peers.as_slice())
        .unwrap_or_default();
    let name = match super::tls::check_peer(permitted, tls.get_ref().1.peer_certificates()) {
        Ok(name) => name,
        Err(why) => {
            stats.refused_connections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(listener = %shared.listener.name, %peer, "TLS peer refused: {why}");
            return;
        }
    };
    serve(tls, peer, name, shared, shutdown).await
}

/// Sends a chunk, waiting while the spool has no room (the connection is not read
/// meanwhile). Returns false when the collector is gone.
async fn send(chunks: &Sender<Chunk>, rows: &mut NetRows) -> bool {
    let Some(batch) = rows.finish() else {
        return true;
    };
    let mut chunk = Chunk {
        batch,
        checkpoint: None,
    };
    let mut wait = Duration::from_millis(1);
    loop {
        match chunks.try_send(chunk) {
            Ok(()) => return true,
            Err(TrySendError::Full(c)) => {
                chunk = c;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

async fn serve<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    tls_peer: Option<String>,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let l = &shared.listener;
    let mut rows = NetRows::new(
        l.config.format,
        l.utc_offset_secs,
        l.max_message_bytes,
        l.stats.clone(),
    );
    rows.set_peer(peer);
    rows.set_tls_peer(tls_peer);
    let mut framer = Framer::new(l.decoder());
    let cap = buffer_len(l.max_message_bytes).max(BUSY_BUFFER);
    let mut buf = vec![0u8; INITIAL_BUFFER];
    let mut len = 0;
    let idle = Duration::from_secs(l.config.idle_timeout_secs);
    let mut last_data = Instant::now();
    loop {
        if len == buf.len() && buf.len() < cap {
            buf.resize((buf.len() * 2).min(cap), 0);
        }
        let flush_at = rows
            .oldest
            .map(|t| Instant::from_std(t) + shared.chunk_max_age);
        let idle_at = last_data + idle;
        let wake = flush_at.map_or(idle_at, |f| f.min(idle_at));
        tokio::select! {
            _ = shutdown.changed() => {
                // What the sender has sent by now is taken: read until the stream is
                // quiet for a moment (or a bounded while), then stop.
                let until = Instant::now() + SHUTDOWN_DRAIN;
                while Instant::now() < until {
                    if len == buf.len() && buf.len() < cap {
                        buf.resize((buf.len() * 2).min(cap), 0);
                    }
                    match tokio::time::timeout(QUIET, stream.read(&mut buf[len..])).await {
                        Ok(Ok(n)) if n > 0 => {
                            len += n;
                            let used = take(&mut framer, &mut rows, &buf[..len], false);
                            buf.copy_within(used..len, 0);
                            len -= used;
                            if rows.len() >= shared.chunk_rows
                                && !send(&shared.chunks, &mut rows).await
                            {
                                return;
                            }
                        }
                        _ => break,
                    }
                }
                break;
            }
            read = stream.read(&mut buf[len..]) => match read {
                Ok(0) => {
                    break;
                }
                Ok(n) => {
                    let filled = len + n == buf.len();
                    len += n;
                    last_data = Instant::now();
                    let used = take(&mut framer, &mut rows, &buf[..len], false);
                    buf.copy_within(used..len, 0);
                    len -= used;
                    if filled && buf.len() < cap {
                        buf.resize((buf.len() * 2).min(cap), 0);
                    }
                    if rows.len() >= shared.chunk_rows && !send(&shared.chunks, &mut rows).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(listener = %l.name, %peer, "connection error: {e}");
                    break;
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= idle_at {
                    l.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(listener = %l.name, %peer, "idle connection closed");
                    break;
                }
                if !send(&shared.chunks, &mut rows).await {
                    return;
                }
            }
        }
    }
    // The stream ended (or the collector stops): what is left of a message is kept, marked
    // unterminated, rather than lost.
    take(&mut framer, &mut rows, &buf[..len], true);
    send(&shared.chunks, &mut rows).await;
}

fn take(framer: &mut Framer, rows: &mut NetRows, buf: &[u8], eof: bool) -> usize {
    let now = now_ns();
    framer.drain(buf, eof, |m| rows.append(&m, now, true))
}

/// Used by [`super::Listener::decoder`]: syslog senders may count octets and pad with
/// blanks; JSON lines are newline framed and blanks between them mean nothing; raw text
/// is newline framed and keeps its leading blanks.
pub fn decoder_for(format: NetFormat, max: usize) -> Decoder {
    let syslog = format == NetFormat::Syslog;
    Decoder::new(max, syslog, format != NetFormat::Raw)
}
