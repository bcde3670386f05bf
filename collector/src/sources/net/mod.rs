//! The net source: syslog (RFC 3164 / 5424), JSON lines and raw text received over UDP,
//! TCP and TLS from devices and programs that cannot run the collector.
//!
//! - [`config`]: `[sources.net]` and its listeners;
//! - [`framing`]: stream bytes → messages (octet counting or newline, decided per frame);
//! - [`rows`]: messages → rows, per format, with the sender's address;
//! - [`tcp`]: TCP and TLS connections, with backpressure; [`tls`]: certificates;
//! - [`udp`]: datagram sockets with `recvmmsg` and counted kernel drops;
//! - [`stats`]: per-listener counters.
//!
//! Every socket is bound when the source starts, so a port in use or a bad certificate is
//! an error at start-up, not a silent gap. TCP and TLS connections share a small tokio
//! runtime; each UDP socket has a thread. Rows carry no checkpoint: a network sender
//! cannot be asked to replay, so what counts is that TCP is never read faster than the
//! spool takes it (nothing lost while the collector runs) and that UDP drops are counted.

pub mod config;
pub mod framing;
pub mod rows;
pub mod stats;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

pub use self::config::{ListenerConfig, NetConfig, NetFormat, Protocol};
use self::framing::Decoder;
use self::stats::ListenerStats;
use super::SourceContext;
use crate::time::local_utc_offset_secs;

/// One configured listener, as its sockets and connections share it.
pub struct Listener {
    /// `tcp://127.0.0.1:1514`, for logs.
    pub name: String,
    pub config: ListenerConfig,
    pub max_message_bytes: usize,
    pub utc_offset_secs: i32,
    pub stats: Arc<ListenerStats>,
}

impl Listener {
    pub fn decoder(&self) -> Decoder {
        tcp::decoder_for(self.config.format, self.max_message_bytes)
    }
}

/// Every listener's name and counters, for the shutdown log and the metrics endpoint.
pub type NetStats = Vec<(String, Arc<ListenerStats>)>;

enum Bound {
    Udp(Vec<std::net::UdpSocket>),
    Tcp(std::net::TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

/// Binds every listener and starts serving them; `None` when none is configured.
pub fn spawn(
    ctx: SourceContext,
    config: &NetConfig,
    max_message_bytes: usize,
) -> Result<Option<(JoinHandle<Result<()>>, NetStats)>> {
    if config.listeners.is_empty() {
        return Ok(None);
    }
    let host_offset = local_utc_offset_secs();
    let mut bound = Vec::new();
    for lc in &config.listeners {
        let scheme = match lc.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        };
        let listener = Arc::new(Listener {
            name: format!("{scheme}://{}", lc.address),
            config: lc.clone(),
            max_message_bytes: lc.max_message_bytes.unwrap_or(max_message_bytes),
            utc_offset_secs: lc.utc_offset_secs.unwrap_or(host_offset),
            stats: Arc::default(),
        });
        let socket = match lc.protocol {
            Protocol::Udp => Bound::Udp(
                (0..lc.sockets)
                    .map(|_| udp::bind(&listener))
                    .collect::<std::io::Result<_>>()
                    .with_context(|| format!("cannot listen on {}", listener.name))?,
            ),
            Protocol::Tcp | Protocol::Tls => {
                let tls = match &lc.tls {
                    Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                        tls::server_config(t)
                            .with_context(|| format!("listener {}", listener.name))?,
                    )),
                    None => None,
                };
                let l = std::net::TcpListener::bind(lc.address)
                    .with_context(|| format!("cannot listen on {}", listener.name))?;
                l.set_nonblocking(true)?;
                Bound::Tcp(l, tls)
            }
        };
        tracing::info!(listener = %listener.name, format = ?lc.format, "net source listening");
        bound.push((listener, socket));
    }
    let stats: NetStats = bound
        .iter()
        .map(|(l, _)| (l.name.clone(), l.stats.clone()))
        .collect();
    let threads = config.threads.max(1);
    let handle = std::thread::Builder::new()
        .name("source-net".into())
        .spawn(move || run(ctx, bound, threads))
        .context("cannot start the net source thread")?;
    Ok(Some((handle, stats)))
}

fn run(ctx: SourceContext, bound: Vec<(Arc<Listener>, Bound)>, threads: usize) -> Result<()> {
    let listeners: Vec<Arc<Listener>> = bound.iter().map(|(l, _)| l.clone()).collect();
    let result = serve(&ctx, bound, threads);
    for l in &listeners {
        tracing::info!(listener = %l.name, "net stats: {}", l.stats);
    }
    result
}

fn serve(ctx: &SourceContext, bound: Vec<(Arc<Listener>, Bound)>, threads: usize) -> Result<()> {
    if ctx.once {
        // A network source has nothing "available now" to read.
        tracing::info!("net source: nothing to read in a one-shot run");
        return Ok(());
    }
    let mut udp_threads = Vec::new();
    let mut tcp = Vec::new();
    for (listener, socket) in bound {
        match socket {
            Bound::Udp(sockets) => {
                for (i, s) in sockets.into_iter().enumerate() {
                    let (l, chunks, sd) =
                        (listener.clone(), ctx.chunks.clone(), ctx.shutdown.clone());
                    let (rows, age) = (ctx.chunk_rows, ctx.chunk_max_age);
                    udp_threads.push(
                        std::thread::Builder::new()
                            .name(format!("net-udp-{i}"))
                            .spawn(move || udp::run(s, l, chunks, rows, age, sd))
                            .context("cannot start a UDP thread")?,
                    );
                }
            }
            Bound::Tcp(l, tls) => tcp.push((listener, l, tls)),
        }
    }
    if !tcp.is_empty() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("net-tcp")
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the net source runtime")?;
        rt.block_on(async {
            let (tx, rx) = tokio::sync::watch::channel(false);
            let mut acceptors = tokio::task::JoinSet::new();
            for (listener, socket, tls) in tcp {
                let shared = Arc::new(tcp::Shared {
                    listener,
                    chunks: ctx.chunks.clone(),
                    chunk_rows: ctx.chunk_rows,
                    chunk_max_age: ctx.chunk_max_age,
                    tls,
                });
                acceptors.spawn(tcp::accept_loop(socket, shared, rx.clone()));
            }
            while !ctx.stopping() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = tx.send(true);
            while acceptors.join_next().await.is_some() {}
        });
    } else {
        while !ctx.stopping() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for t in udp_threads {
        let _ = t.join();
    }
    Ok(())
}
