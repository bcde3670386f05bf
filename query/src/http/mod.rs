//! `infra-query serve --http ADDR`: the web console and its API, read-only.
//!
//! - [`api`]: the JSON / NDJSON / Server-Sent-Events endpoints under `/api/`;
//! - [`assets`]: the console's files, embedded in the binary.
//!
//! On loopback it serves anyone on the machine; on any other address a token is
//! required (`--token-file`), and `serve` refuses to start without one. Clients send it as
//! `Authorization: Bearer TOKEN`; a browser opens `/?token=TOKEN` once and keeps it in a
//! cookie (EventSource cannot set headers).

pub mod api;
pub mod assets;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::prelude::SessionContext;

/// How `serve --http` runs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl HttpOptions {
    /// Refuses a listener beyond loopback without a token.
    pub fn check(&self) -> Result<()> {
        if !self.addr.ip().is_loopback() && self.token.is_none() {
            bail!(
                "--http {} listens beyond loopback: give --token-file FILE (its first line is \
                 the token clients must send), or listen on 127.0.0.1",
                self.addr
            );
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ctx: SessionContext,
    token: Option<Arc<str>>,
}

const COOKIE: &str = "infralog_token";

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn offered_tokens<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        out.push(t.trim());
    }
    for cookies in headers.get_all(header::COOKIE) {
        if let Ok(text) = cookies.to_str() {
            for pair in text.split(';') {
                if let Some(t) = pair
                    .trim()
                    .strip_prefix(COOKIE)
                    .and_then(|r| r.strip_prefix('='))
                {
                    out.push(t);
                }
            }
        }
    }
    for pair in query.unwrap_or_default().split('&') {
        if let Some(t) = pair.strip_prefix("token=") {
            out.push(t);
        }
    }
    out
}

async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = state.token.clone() else {
        return next.run(request).await;
    };
    let query = request.uri().query().map(str::to_string);
    let offered = offered_tokens(request.headers(), query.as_deref());
    let by_query = query.as_deref().unwrap_or_default().split('&').any(|p| {
        p.strip_prefix("token=")
            .is_some_and(|t| same(t.as_bytes(), token.as_bytes()))
    });
    if !offered.iter().any(|t| same(t.as_bytes(), token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "infra-query: a token is required (Authorization: Bearer TOKEN, or open /?token=TOKEN)\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    if by_query {
        let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The console and the API as one router.
pub fn router(ctx: SessionContext, token: Option<String>) -> Router {
    let state = AppState {
        ctx,
        token: token.map(Into::into),
    };
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::file))
        .route("/api/query", get(api::query))
        .route("/api/hits", get(api::hits))
        .route("/api/context", get(api::context))
        .route("/api/tail", get(api::tail))
        .route("/api/fields", get(api::fields))
        .route("/api/templates", get(api::templates))
        .route("/api/anomalies", get(api::anomalies))
        .route("/api/trends", get(api::trends))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

/// Listens on `opts.addr` and serves until the process ends.
pub async fn serve(ctx: SessionContext, opts: &HttpOptions) -> Result<()> {
    opts.check()?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("cannot listen on {}", opts.addr))?;
    eprintln!(
        "infra-query: the console is on http://{}/ (read-only)",
        listener.local_addr()?
    );
    axum::serve(listener, router(ctx, opts.token.clone()))
        .await
        .context("the HTTP server stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_a_token() {
        let opts = |addr: &str, token: Option<&str>| HttpOptions {
            addr: addr.parse().unwrap(),
            token: token.map(str::to_string),
        };
        assert!(opts("127.0.0.1:8080", None).check().is_ok());
        assert!(opts("[::1]:8080", None).check().is_ok());
        let e = opts("0.0.0.0:8080", None).check().unwrap_err().to_string();
        assert!(e.contains("--token-file"), "{e}");
        assert!(opts("0.0.0.0:8080", Some("t")).check().is_ok());
    }

    #[test]
    fn tokens_come_from_header_cookie_or_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        headers.insert(header::COOKIE, "x=1; infralog_token=def".parse().unwrap());
        assert_eq!(
            offered_tokens(&headers, Some("a=1&token=ghi")),
            ["abc", "def", "ghi"]
        );
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
