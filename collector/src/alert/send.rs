//! HTTP delivery of one notification: a POST of its JSON body, and what to do with the
//! answer (delivered, try again later, or refused for good).

use std::time::Duration;

use anyhow::{Context, Result};

pub enum Outcome {
    Delivered,
    /// Try again; after the target's `Retry-After` when it sent one.
    Retry(Option<Duration>, String),
    /// The target refused the notification itself (a 4xx other than 408/429): sending it
    /// again would fail again.
    Refused(String),
}

pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Result<Http> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the alert sender's runtime")?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("infralog/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Http { rt, client })
    }

    pub fn post(&self, url: &str, body: &serde_json::Value, timeout: Duration) -> Outcome {
        let request = self
            .client
            .post(url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.rt.block_on(async {
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return Outcome::Retry(None, format!("{e}")),
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            if status.is_success() {
                return Outcome::Delivered;
            }
            let text = response.text().await.unwrap_or_default();
            let why = format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            );
            if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
                Outcome::Retry(retry_after, why)
            } else {
                Outcome::Refused(why)
            }
        })
    }
}
