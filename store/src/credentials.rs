//! S3 credentials from a shared credentials file, re-read when the file changes (rotated
//! keys take effect on the next request, without a restart).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

use crate::{S3Settings, env};

/// The credentials file to use, if any: the configured one, `AWS_SHARED_CREDENTIALS_FILE`,
/// or `~/.aws/credentials` when the environment holds no key (the environment wins then,
/// as in the AWS SDKs).
pub fn file_to_use(s3: &S3Settings) -> Option<PathBuf> {
    if !s3.credentials_file.is_empty() {
        return Some(PathBuf::from(&s3.credentials_file));
    }
    if let Some(f) = env("AWS_SHARED_CREDENTIALS_FILE") {
        return Some(PathBuf::from(f));
    }
    if env("AWS_ACCESS_KEY_ID").is_some() {
        return None;
    }
    let home = PathBuf::from(env("HOME")?).join(".aws/credentials");
    home.is_file().then_some(home)
}

/// The keys of `profile` in an INI credentials file; `None` when the profile or its key
/// pair is missing. Pure, so it can be fuzzed.
pub fn parse(text: &str, profile: &str) -> Option<AwsCredential> {
    let (mut in_profile, mut key_id, mut secret, mut token) = (false, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_profile = name == profile || name.strip_prefix("profile ") == Some(profile);
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => key_id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" | "aws_security_token" => token = Some(v),
            _ => {}
        }
    }
    Some(AwsCredential {
        key_id: key_id?,
        secret_key: secret?,
        token,
    })
}

#[derive(Debug)]
pub struct FileCredentials {
    path: PathBuf,
    profile: String,
    /// The file's modification time and length when last read, and what it held.
    cache: Mutex<Option<(SystemTime, u64, Arc<AwsCredential>)>>,
}

impl FileCredentials {
    pub fn new(path: PathBuf, profile: String) -> Self {
        Self {
            path,
            profile,
            cache: Mutex::new(None),
        }
    }

    fn current(&self) -> object_store::Result<Arc<AwsCredential>> {
        let err = |msg: String| object_store::Error::Generic {
            store: "S3",
            source: msg.into(),
        };
        let meta = std::fs::metadata(&self.path)
            .map_err(|e| err(format!("credentials file {}: {e}", self.path.display())))?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, len, c)) = cache.as_ref()
            && (*t, *len) == stamp
        {
            return Ok(c.clone());
        }
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| err(format!("credentials file {}: {e}", self.path.display())))?;
        let cred = Arc::new(parse(&text, &self.profile).ok_or_else(|| {
            err(format!(
                "credentials file {} has no aws_access_key_id and aws_secret_access_key \
                 for profile [{}]",
                self.path.display(),
                self.profile
            ))
        })?);
        if cache.is_some() {
            tracing::info!(file = %self.path.display(), "S3 credentials file changed: re-read");
        }
        *cache = Some((stamp.0, stamp.1, cred.clone()));
        Ok(cred)
    }
}

impl CredentialProvider for FileCredentials {
    type Credential = AwsCredential;

    // The trait is declared with `async_trait`; this is its expanded form.
    fn get_credential<'a, 'b>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = object_store::Result<Arc<AwsCredential>>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move { self.current() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_comments() {
        let text = "# keys\n[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n\n\
                    [profile ops]\r\nAWS_ACCESS_KEY_ID = AK2\r\naws_secret_access_key = SK2\r\n\
                    aws_session_token = T2\r\n[broken]\naws_access_key_id = AK3\n";
        let d = parse(text, "default").unwrap();
        assert_eq!((d.key_id.as_str(), d.secret_key.as_str()), ("AK1", "SK1"));
        assert_eq!(d.token, None);
        let o = parse(text, "ops").unwrap();
        assert_eq!(
            (o.key_id.as_str(), o.secret_key.as_str(), o.token.as_deref()),
            ("AK2", "SK2", Some("T2"))
        );
        assert!(parse(text, "broken").is_none());
        assert!(parse(text, "missing").is_none());
        assert!(parse("[default\nx", "default").is_none());
    }

    #[test]
    fn a_rotated_file_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id=A\naws_secret_access_key=S\n",
        )
        .unwrap();
        let p = FileCredentials::new(path.clone(), "default".into());
        assert_eq!(p.current().unwrap().key_id, "A");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id=BB\naws_secret_access_key=S\n",
        )
        .unwrap();
        assert_eq!(p.current().unwrap().key_id, "BB");
        std::fs::remove_file(&path).unwrap();
        let e = p.current().unwrap_err().to_string();
        assert!(e.contains("credentials file"), "{e}");
    }
}
