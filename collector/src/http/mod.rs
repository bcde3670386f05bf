//! The operations endpoint: `/healthz`, `/readyz`, `/metrics` (Prometheus) and
//! `/api/v1/stats` (JSON). It runs on a thread and a runtime of its own and only reads the
//! counters the data path keeps, so a slow or stuck scrape never slows ingestion.

pub mod metrics;
pub mod process;
pub mod stats;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

pub use stats::Observed;

/// The default address: loopback, so nothing is exposed until the user says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9880";

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub enabled: bool,
    /// `address:port`; port 0 picks a free one (logged).
    pub listen: String,
    /// A file holding the bearer token; required when `listen` is not loopback.
    pub token_file: PathBuf,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_LISTEN.into(),
            token_file: PathBuf::new(),
        }
    }
}

impl HttpConfig {
    pub fn addr(&self) -> Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "http.listen: {:?} is not an address:port (e.g. {DEFAULT_LISTEN})",
                self.listen
            )
        })
    }

    /// The address parses; a non-loopback listener has a readable, non-empty token file.
    pub fn validate(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let addr = self.addr()?;
        if self.token_file.as_os_str().is_empty() {
            if !addr.ip().is_loopback() {
                bail!(
                    "http.listen {addr} is not loopback: set http.token_file to a file \
                     holding the bearer token every request but /healthz must present"
                );
            }
            return Ok(());
        }
        read_token(&self.token_file).map(|_| ())
    }
}

/// The token in `path`, without surrounding whitespace (Kubernetes secrets and `echo`
/// leave a newline).
fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("http.token_file: cannot read {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("http.token_file: {} is empty", path.display());
    }
    Ok(token.to_string())
}

/// What the handlers share. `observed` is replaced when a reload restarts the collector.
struct Shared {
    observed: RwLock<Arc<Observed>>,
    /// Set when a token is required (non-loopback listener, or a token file given).
    token_file: Option<PathBuf>,
}

pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds now (so that a taken port is reported at start) and serves on a thread of
    /// its own.
    pub fn start(config: &HttpConfig, observed: Arc<Observed>) -> Result<Server> {
        config.validate()?;
        let addr = config.addr()?;
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("http endpoint: cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let token_file =
            (!config.token_file.as_os_str().is_empty()).then(|| config.token_file.clone());
        let shared = Arc::new(Shared {
            observed: RwLock::new(observed),
            token_file,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("http endpoint: cannot build its runtime")?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_handler))
            .route("/api/v1/stats", get(stats_handler))
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("http endpoint off: {e}");
                            return;
                        }
                    };
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!("http endpoint stopped: {e}");
                    }
                })
            })
            .context("cannot start the http thread")?;
        tracing::info!(%addr, "http endpoint listening (/healthz /readyz /metrics /api/v1/stats)");
        Ok(Server {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Points the endpoint at a new collector (after a reload).
    pub fn observe(&self, observed: Arc<Observed>) {
        *self
            .shared
            .observed
            .write()
            .unwrap_or_else(|e| e.into_inner()) = observed;
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn observed(&self) -> Arc<Observed> {
        self.observed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `None` when the request may go on, else the refusal.
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let path = self.token_file.as_ref()?;
        let token = match read_token(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("http endpoint refuses requests: {e:#}");
                return Some(
                    (StatusCode::SERVICE_UNAVAILABLE, "no token configured\n").into_response(),
                );
            }
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(g) if same(g.trim().as_bytes(), token.as_bytes()) => None,
            _ => Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "a bearer token is required\n",
                )
                    .into_response(),
            ),
        }
    }
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = s.refuse(&headers) {
        return r;
    }
    let observed = s.observed();
    let reasons = tokio::task::spawn_blocking(move || observed.readiness())
        .await
        .unwrap_or_else(|e| vec![format!("readiness check failed: {e}")]);
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let body = format!("not ready: {}\n", reasons.join("; "));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn metrics_handler(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = s.refuse(&headers) {
        return r;
    }
    let openmetrics = (headers.get(header::ACCEPT))
        .and_then(|v| v.to_str().ok())
        .is_some_and(metrics::wants_openmetrics);
    let observed = s.observed();
    let text = tokio::task::spawn_blocking(move || metrics::render(&observed.snapshot())).await;
    match text {
        Ok(Ok(text)) if openmetrics => {
            ([(header::CONTENT_TYPE, metrics::OPENMETRICS)], text).into_response()
        }
        Ok(Ok(text)) => (
            [(header::CONTENT_TYPE, metrics::TEXT)],
            metrics::to_classic(&text),
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn stats_handler(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = s.refuse(&headers) {
        return r;
    }
    let observed = s.observed();
    match tokio::task::spawn_blocking(move || observed.snapshot()).await {
        Ok(snapshot) => axum::Json(snapshot).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token_file() {
        let mut c = HttpConfig {
            listen: "0.0.0.0:9880".into(),
            ..Default::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("token_file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        c.token_file = file.clone();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("empty"));
        std::fs::write(&file, "s3cret\n").unwrap();
        c.validate().unwrap();
        assert_eq!(read_token(&file).unwrap(), "s3cret");
        c.listen = "localhost:80".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("address:port")
        );
        assert!(HttpConfig::default().validate().is_ok());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
