//! TLS for `protocol = "tls"` listeners (RFC 5425): rustls with the certificate and key from
//! PEM files, re-read when either file changes (a renewed certificate is used by the next
//! handshake, no restart), and optional client certificates checked against a CA file and a
//! list of permitted peer names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use super::config::TlsConfig;

/// How often the certificate files are looked at (on a handshake) for a change.
const RECHECK: Duration = Duration::from_secs(1);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration of one listener. Fails when the certificate, key or CA file
/// cannot be read or used.
pub fn server_config(t: &TlsConfig) -> Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let resolver = ReloadingCert::new(&t.cert, &t.key, provider.clone())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &t.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("cannot read tls.client_ca {}", ca.display()))?
            {
                let cert = cert.with_context(|| format!("tls.client_ca {}", ca.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("tls.client_ca {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if t.client_cert_required {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            }
            .map_err(|e| anyhow!("tls.client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // Syslog senders never read. A TLS 1.3 session ticket they leave unread makes their
    // close() a reset, and a reset discards what is still in our receive buffer: lines
    // the sender already counted as delivered (seen with loggen --use-ssl). Resumption
    // is not worth that.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Which permitted name, if any, the client's certificate is valid for. `Ok(None)`: no
/// list to check against (any certificate the CA signed, or none when optional).
pub fn check_peer(
    permitted: &[String],
    certs: Option<&[CertificateDer<'_>]>,
) -> Result<Option<String>, String> {
    if permitted.is_empty() {
        return Ok(None);
    }
    let Some(cert) = certs.and_then(|c| c.first()) else {
        return Err("no client certificate".into());
    };
    let parsed = ParsedCertificate::try_from(cert).map_err(|e| e.to_string())?;
    for name in permitted {
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            continue;
        };
        if rustls::client::verify_server_name(&parsed, &server_name).is_ok() {
            return Ok(Some(name.clone()));
        }
    }
    Err("the client certificate is valid for none of tls.permitted_peers".into())
}

/// Modification times (and sizes) of the certificate and key files.
type Stamp = [(Option<SystemTime>, u64); 2];

struct Loaded {
    stamp: Stamp,
    checked: Instant,
    key: Arc<CertifiedKey>,
}

struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    };
    [one(cert), one(key)]
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read tls.cert {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls.cert {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("tls.cert {} holds no certificate", cert.display());
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from tls.key {}", key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .with_context(|| format!("tls.key {}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .with_context(|| format!("tls.key {} does not match tls.cert", key.display()))?;
    Ok(certified)
}

impl ReloadingCert {
    fn new(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<ReloadingCert> {
        let stamp = stamp(cert, key);
        let loaded = load(cert, key, &provider)?;
        Ok(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            loaded: Mutex::new(Loaded {
                stamp,
                checked: Instant::now(),
                key: Arc::new(loaded),
            }),
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if l.checked.elapsed() >= RECHECK {
            l.checked = Instant::now();
            let now = stamp(&self.cert, &self.key);
            if now != l.stamp {
                // A renewal writes two files: a pair that does not match yet is tried
                // again on a later handshake, the old pair serving meanwhile.
                match load(&self.cert, &self.key, &self.provider) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                        l.key = Arc::new(k);
                        l.stamp = now;
                    }
                    Err(e) => tracing::warn!("TLS certificate not reloaded (old one kept): {e:#}"),
                }
            }
        }
        Some(l.key.clone())
    }
}
