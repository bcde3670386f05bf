//! Where an infralog archive lives: a local directory, or a bucket and prefix on S3 or an
//! S3-compatible store (MinIO, Ceph, moto). The collector writes through it and infra-query
//! reads through it, so both take the same settings the same way.
//!
//! S3 credentials are never written in our configuration. They come, in this order, from a
//! shared credentials file (`credentials_file` in the settings, `AWS_SHARED_CREDENTIALS_FILE`,
//! or `~/.aws/credentials` when no key is in the environment) — re-read whenever it changes,
//! so rotated keys are picked up without a restart — or from object_store's standard chain
//! (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, web identity, ECS, EC2
//! instance metadata).

pub mod credentials;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use serde::Deserialize;

pub use object_store;

/// S3 settings; every field may also come from the standard `AWS_*` environment variables
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// For S3-compatible stores, e.g. `http://127.0.0.1:9000`. Empty: AWS.
    pub endpoint: String,
    /// Empty: `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// A shared credentials file (INI, `aws_access_key_id` / `aws_secret_access_key` /
    /// `aws_session_token`), re-read when it changes.
    pub credentials_file: String,
    /// The profile in that file. Empty: `AWS_PROFILE`, else `default`.
    pub profile: String,
}

/// Where an archive lives, parsed from `--archive` / `archive.path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// A directory path, `file:///dir`, or `s3://bucket[/prefix]`.
    pub fn parse(location: &str) -> Result<Location> {
        match location.split_once("://") {
            None => Ok(Location::Local(PathBuf::from(location))),
            Some(("file", rest)) => Ok(Location::Local(PathBuf::from(rest))),
            Some(("s3" | "s3a", rest)) => {
                let rest = rest.trim_end_matches('/');
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    bail!("archive location {location:?} names no bucket");
                }
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                })
            }
            Some((scheme, _)) => bail!(
                "archive location {location:?}: scheme {scheme}:// is not supported \
                 (use a directory path or s3://bucket/prefix)"
            ),
        }
    }
}

/// An opened archive store. Object paths are relative to `prefix`.
pub struct Store {
    pub store: Arc<dyn ObjectStore>,
    /// Prepended to every object path (the `s3://bucket/<prefix>`); empty for a directory,
    /// whose store is rooted at the directory itself.
    pub prefix: String,
    /// The directory, for a local archive (it gets fsync on top of object_store's writes).
    pub local_root: Option<PathBuf>,
    /// For messages: the directory or `s3://bucket/prefix`.
    pub display: String,
}

impl Store {
    /// The object path of `relative` (e.g. `logs/hostname=a/…`) in this store.
    pub fn path(&self, relative: &str) -> Result<ObjectPath> {
        let full = if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        };
        ObjectPath::parse(&full).with_context(|| format!("invalid object path {full:?}"))
    }
}

/// Opens a location, creating a local directory if it is missing. Nothing is sent to S3
/// here: an unreachable store shows on the first request, which the callers retry.
pub fn open(location: &str, s3: &S3Settings) -> Result<Store> {
    match Location::parse(location)? {
        Location::Local(path) => {
            std::fs::create_dir_all(&path)
                .with_context(|| format!("cannot create archive directory {}", path.display()))?;
            let root = path
                .canonicalize()
                .with_context(|| format!("cannot resolve archive directory {}", path.display()))?;
            let store = LocalFileSystem::new_with_prefix(&root)
                .with_context(|| format!("cannot open archive directory {}", root.display()))?;
            Ok(Store {
                store: Arc::new(store),
                prefix: String::new(),
                display: root.display().to_string(),
                local_root: Some(root),
            })
        }
        Location::S3 { bucket, prefix } => {
            let store = s3_store(&bucket, s3)?;
            let display = if prefix.is_empty() {
                format!("s3://{bucket}")
            } else {
                format!("s3://{bucket}/{prefix}")
            };
            Ok(Store {
                store: Arc::new(store),
                prefix,
                local_root: None,
                display,
            })
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn s3_store(bucket: &str, s3: &S3Settings) -> Result<object_store::aws::AmazonS3> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
        });
    let region = if s3.region.is_empty() {
        env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"))
    } else {
        Some(s3.region.clone())
    };
    b = b.with_region(region.unwrap_or_else(|| "us-east-1".into()));
    let endpoint = if s3.endpoint.is_empty() {
        env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL"))
    } else {
        Some(s3.endpoint.clone())
    };
    if let Some(ep) = endpoint {
        // S3-compatible stores are addressed by path, and often spoken to over plain HTTP
        // on a private network.
        b = b
            .with_allow_http(ep.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_endpoint(ep);
    }
    if let Some(file) = credentials::file_to_use(s3) {
        let profile = if s3.profile.is_empty() {
            env("AWS_PROFILE").unwrap_or_else(|| "default".into())
        } else {
            s3.profile.clone()
        };
        tracing::info!(
            file = %file.display(),
            profile,
            "S3 credentials from a shared credentials file (re-read when it changes)"
        );
        b = b.with_credentials(Arc::new(credentials::FileCredentials::new(file, profile)));
    }
    b.build()
        .with_context(|| format!("cannot configure S3 bucket {bucket}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("./data").unwrap(),
            Location::Local("./data".into())
        );
        assert_eq!(
            Location::parse("file:///var/x").unwrap(),
            Location::Local("/var/x".into())
        );
        assert_eq!(
            Location::parse("s3://b/logs/prod/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "logs/prod".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(Location::parse("s3:///x").is_err());
        let e = Location::parse("ftp://x/y").unwrap_err().to_string();
        assert!(e.contains("ftp://"), "{e}");
    }
}
