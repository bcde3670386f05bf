//! Where archive files go. Everything is written through `object_store`, so that a remote
//! store is a matter of configuration; a local directory additionally gets fsync, because
//! sources advance their checkpoints only once a file is durable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub struct Archive {
    store: Arc<dyn ObjectStore>,
    /// Set for a local directory: the root to fsync files under.
    local_root: Option<PathBuf>,
    /// Human-readable location, for messages.
    location: String,
    runtime: tokio::runtime::Runtime,
}

impl Archive {
    /// Opens an archive location: a directory path (created if missing) or a `file://`
    /// URL.
    pub fn open(location: &str) -> Result<Self> {
        let path = match location.split_once("://") {
            None => PathBuf::from(location),
            Some(("file", rest)) => PathBuf::from(rest),
            Some((scheme, _)) => bail!(
                "archive location {location:?}: scheme {scheme}:// is not supported \
                 (use a directory path)"
            ),
        };
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create archive directory {}", path.display()))?;
        let root = path
            .canonicalize()
            .with_context(|| format!("cannot resolve archive directory {}", path.display()))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .with_context(|| format!("cannot open archive directory {}", root.display()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the archive's I/O runtime")?;
        Ok(Self {
            store: Arc::new(store),
            location: root.display().to_string(),
            local_root: Some(root),
            runtime,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes `bytes` at `path` (relative to the archive root) and makes it durable.
    /// Writing the same path again replaces the object, so a retried write never
    /// duplicates rows.
    pub fn put(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        let object_path = ObjectPath::parse(path)
            .with_context(|| format!("invalid archive object path {path:?}"))?;
        self.runtime
            .block_on(self.store.put(&object_path, PutPayload::from(bytes)))
            .with_context(|| format!("cannot write {path} to archive {}", self.location))?;
        if let Some(root) = &self.local_root {
            sync_file_and_dir(&root.join(path))?;
        }
        Ok(())
    }
}

fn sync_file_and_dir(file: &Path) -> Result<()> {
    let sync = |p: &Path| -> Result<()> {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot fsync {}", p.display()))
    };
    sync(file)?;
    if let Some(dir) = file.parent() {
        sync(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_writes_under_root_and_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().join("a").to_str().unwrap()).unwrap();
        archive
            .put(
                "logs/hostname=h/log_date=2026-01-01/x.parquet",
                b"one".to_vec(),
            )
            .unwrap();
        archive
            .put(
                "logs/hostname=h/log_date=2026-01-01/x.parquet",
                b"two".to_vec(),
            )
            .unwrap();
        let p = dir
            .path()
            .join("a/logs/hostname=h/log_date=2026-01-01/x.parquet");
        assert_eq!(std::fs::read(p).unwrap(), b"two");
    }

    #[test]
    fn unsupported_scheme_is_a_clear_error() {
        let err = Archive::open("ftp://x/y").err().unwrap().to_string();
        assert!(err.contains("ftp://"), "{err}");
    }
}
