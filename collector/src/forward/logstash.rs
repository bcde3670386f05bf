//! `kind = "logstash"`: one JSON document per line, as Logstash's `json_lines` codec
//! reads it, over TCP (optionally TLS) or UDP.
//!
//! TCP has no acknowledgement a sender can see: bytes the receiver's kernel accepted may
//! still be lost if the receiver stops before reading them. So rows written count as
//! delivered only once the connection stayed up for [`SETTLE`] after the write; a
//! connection that closes or fails before that makes the sink send those rows again on a
//! new connection (at-least-once: a row can arrive twice, never zero times). UDP sends one
//! document per datagram, at most `max_datagram_bytes`; a longer document has its message
//! cut and carries `forward_truncated: true`. UDP is at-most-once.

use std::io::{BufWriter, ErrorKind, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::config::{LogstashOptions, SinkConfig, Transport};
use super::doc::{Rfc3339, Rows};
use super::stats::SinkStats;
use super::{Batch, Context, Sink, SinkError};

/// How long a TCP connection must stay up after a write before its rows count as
/// received.
pub const SETTLE: Duration = Duration::from_secs(2);

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

pub struct Logstash {
    opts: LogstashOptions,
    timeout: Duration,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    conn: Option<Conn>,
    udp: Option<UdpSocket>,
    stats: Arc<SinkStats>,
    buf: Vec<u8>,
    _ctx: Context,
}

fn client_tls(
    o: &super::config::TlsOptions,
    address: std::net::SocketAddr,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>)> {
    let mut roots = rustls::RootCertStore::empty();
    match &o.ca_file {
        Some(ca) => {
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("cannot read {}", ca.display()))?
            {
                roots
                    .add(c.with_context(|| format!("{}: bad PEM certificate", ca.display()))?)
                    .context("CA certificate refused")?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = match &o.server_name {
        Some(n) => ServerName::try_from(n.clone()).context("tls.server_name")?,
        None => ServerName::IpAddress(address.ip().into()),
    };
    Ok((Arc::new(config), name))
}

impl Logstash {
    pub fn new(
        config: &SinkConfig,
        o: &LogstashOptions,
        ctx: Context,
        stats: Arc<SinkStats>,
    ) -> Result<Logstash> {
        let tls = o
            .tls
            .as_ref()
            .map(|t| client_tls(t, o.address))
            .transpose()?;
        Ok(Logstash {
            opts: o.clone(),
            timeout: config.timeout,
            tls,
            conn: None,
            udp: None,
            stats,
            buf: Vec::new(),
            _ctx: ctx,
        })
    }

    fn connect(&mut self) -> Result<(), SinkError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let addr = self.opts.address;
        let s = TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| {
            let e2 = anyhow!("cannot connect to {addr}: {e}");
            match e.kind() {
                ErrorKind::ConnectionRefused
                | ErrorKind::TimedOut
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable => SinkError::Unreachable(e2),
                _ => SinkError::Failed(e2),
            }
        })?;
        let fail = |e: std::io::Error| SinkError::Failed(anyhow!("{addr}: {e}"));
        s.set_write_timeout(Some(self.timeout)).map_err(fail)?;
        s.set_nodelay(true).map_err(fail)?;
        let conn = match &self.tls {
            None => Conn::Plain(s),
            Some((config, name)) => {
                let c = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| SinkError::Failed(anyhow!("TLS: {e}")))?;
                let mut tls = rustls::StreamOwned::new(c, s);
                // The handshake now, so that a refused certificate is reported as such.
                while tls.conn.is_handshaking() {
                    tls.conn.complete_io(&mut tls.sock).map_err(|e| {
                        SinkError::Failed(anyhow!("TLS handshake with {addr}: {e}"))
                    })?;
                }
                Conn::Tls(Box::new(tls))
            }
        };
        tracing::info!(address = %addr, tls = self.tls.is_some(), "logstash sink connected");
        self.conn = Some(conn);
        Ok(())
    }

    fn deliver_tcp(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.connect()?;
        let mut clock = Rfc3339::default();
        let conn = self.conn.as_mut().expect("connected");
        let mut w = BufWriter::with_capacity(256 << 10, conn);
        let mut sent = 0u64;
        let result = (|| -> Result<()> {
            for s in &batch.slices {
                let rows = Rows::new(&s.batch)?;
                for i in 0..rows.len() {
                    self.buf.clear();
                    rows.write_json(i, &mut self.buf, None, &mut clock);
                    self.buf.push(b'\n');
                    w.write_all(&self.buf)?;
                    sent += 1;
                }
            }
            w.flush()?;
            Ok(())
        })();
        drop(w);
        self.stats.sent.fetch_add(sent, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.stats
                    .acked
                    .fetch_add(batch.rows as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                if let Some(c) = self.conn.take() {
                    let _ = c.tcp().shutdown(Shutdown::Both);
                }
                Err(SinkError::Failed(
                    e.context(format!("sending to {}", self.opts.address)),
                ))
            }
        }
    }

    fn deliver_udp(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let addr = self.opts.address;
        if self.udp.is_none() {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = UdpSocket::bind(bind)
                .and_then(|s| s.connect(addr).map(|()| s))
                .map_err(|e| SinkError::Failed(anyhow!("UDP socket for {addr}: {e}")))?;
            self.udp = Some(s);
        }
        let sock = self.udp.as_ref().expect("bound");
        let max = self.opts.max_datagram_bytes;
        let mut clock = Rfc3339::default();
        for s in &batch.slices {
            let rows = Rows::new(&s.batch).map_err(SinkError::Failed)?;
            for i in 0..rows.len() {
                self.buf.clear();
                rows.write_json(i, &mut self.buf, None, &mut clock);
                if self.buf.len() > max {
                    // Cut the message by what is over, plus room for the flag and escapes.
                    let over = self.buf.len() - max;
                    let keep = rows.message(i).len().saturating_sub(over + 64);
                    let mut limit = keep;
                    loop {
                        self.buf.clear();
                        rows.write_json(i, &mut self.buf, Some(limit), &mut clock);
                        if self.buf.len() <= max || limit == 0 {
                            break;
                        }
                        limit = limit.saturating_sub((self.buf.len() - max).max(64));
                    }
                    self.stats.truncated.fetch_add(1, Ordering::Relaxed);
                }
                self.buf.push(b'\n');
                let len = self.buf.len().min(max);
                match sock.send(&self.buf[..len]) {
                    Ok(_) => {}
                    // A port-unreachable answer to an earlier datagram: at-most-once.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                    Err(e) => {
                        return Err(SinkError::Failed(anyhow!("sending to {addr}: {e}")));
                    }
                }
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

impl Sink for Logstash {
    fn deliver(&mut self, batch: &Batch) -> Result<(), SinkError> {
        match self.opts.transport {
            Transport::Tcp => self.deliver_tcp(batch),
            Transport::Udp => self.deliver_udp(batch),
        }
    }

    fn settle(&self) -> Duration {
        match self.opts.transport {
            Transport::Tcp => SETTLE,
            Transport::Udp => Duration::ZERO,
        }
    }

    fn healthy(&mut self) -> bool {
        let Some(c) = &self.conn else { return true };
        // A receiver that closed (or reset) the connection has made it readable: a peek
        // that finds the end or an error means rows written may be lost.
        let s = c.tcp();
        if s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let alive = match s.peek(&mut b) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => true,
            Err(_) => false,
        };
        let _ = s.set_nonblocking(false);
        if !alive && let Some(c) = self.conn.take() {
            let _ = c.tcp().shutdown(Shutdown::Both);
        }
        alive
    }
}
