//! Where archive files go. Everything is written through `object_store` (a local directory
//! or S3, see [`infralog_store`]); a local directory additionally gets fsync, because a
//! spool segment is deleted as soon as its files are written.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use infralog_store::object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use infralog_store::{S3Settings, Store};

/// Objects bigger than this are uploaded in parts of this size, so a retry resends one part
/// rather than the whole file.
const MULTIPART_BYTES: usize = 16 << 20;
/// Objects written at once by [`Archive::put_all`].
const PUT_CONCURRENCY: usize = 8;
/// Files fsynced at once.
const SYNC_CONCURRENCY: usize = 8;

pub struct Archive {
    store: Store,
    runtime: tokio::runtime::Runtime,
}

impl Archive {
    /// Opens an archive location: a directory path (created if missing), a `file://` URL,
    /// or `s3://bucket/prefix` with the default S3 settings (environment, credentials file).
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with(location, &S3Settings::default())
    }

    pub fn open_with(location: &str, s3: &S3Settings) -> Result<Self> {
        let store = infralog_store::open(location, s3)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("archive-io")
            .enable_all()
            .build()
            .context("cannot start the archive's I/O runtime")?;
        Ok(Self { store, runtime })
    }

    pub fn location(&self) -> &str {
        &self.store.display
    }

    /// Writes `bytes` at `path` (relative to the archive root) and makes it durable.
    /// Writing the same path again replaces the object, so a retried write never
    /// duplicates rows.
    pub fn put(&self, path: &str, bytes: impl Into<bytes::Bytes>) -> Result<()> {
        self.put_all([(path, bytes.into())])
    }

    /// Writes every `(path, bytes)` and makes them all durable before returning. Uploads
    /// run concurrently, and in a local directory the files and their directories are
    /// fsynced concurrently, so that the filesystem commits them together rather than
    /// paying one journal commit after another (a segment makes two files per host-day).
    pub fn put_all<'p>(
        &self,
        files: impl IntoIterator<Item = (&'p str, bytes::Bytes)>,
    ) -> Result<()> {
        let store = &self.store.store;
        let located = files
            .into_iter()
            .map(|(p, b)| Ok((p, self.store.path(p)?, b)))
            .collect::<Result<Vec<_>>>()?;
        let written: Vec<PathBuf> = match &self.store.local_root {
            Some(root) => located.iter().map(|(p, _, _)| root.join(p)).collect(),
            None => Vec::new(),
        };
        self.runtime.block_on(async {
            futures::stream::iter(located.into_iter().map(
                |(path, object_path, bytes)| async move {
                    put_object(store.as_ref(), &object_path, bytes)
                        .await
                        .with_context(|| {
                            format!("cannot write {path} to archive {}", self.location())
                        })
                },
            ))
            .buffer_unordered(PUT_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
        })?;
        if let Some(root) = &self.store.local_root {
            // Each directory on the way, so that new partition directories are durable too.
            let mut dirs = BTreeSet::new();
            for f in &written {
                for d in f.ancestors().skip(1) {
                    dirs.insert(d.to_path_buf());
                    if d == root.as_path() {
                        break;
                    }
                }
            }
            sync_all(&written)?;
            sync_all(&dirs.into_iter().collect::<Vec<_>>())?;
        }
        Ok(())
    }
}

async fn put_object(
    store: &dyn ObjectStore,
    path: &infralog_store::object_store::path::Path,
    bytes: bytes::Bytes,
) -> Result<(), infralog_store::object_store::Error> {
    if bytes.len() <= MULTIPART_BYTES {
        store.put(path, PutPayload::from(bytes)).await?;
    } else {
        let upload = store.put_multipart(path).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_BYTES);
        w.write(&bytes);
        w.finish().await?;
    }
    Ok(())
}

/// fsyncs every path, several at a time.
fn sync_all(paths: &[PathBuf]) -> Result<()> {
    let next = AtomicUsize::new(0);
    let threads = paths.len().min(SYNC_CONCURRENCY);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    while let Some(p) = paths.get(next.fetch_add(1, Ordering::Relaxed)) {
                        std::fs::File::open(p)
                            .and_then(|f| f.sync_all())
                            .with_context(|| format!("cannot fsync {}", p.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("fsync panicked")))
        })
    })
}

impl Archive {
    fn relative(&self, location: &str) -> String {
        match self.store.prefix.as_str() {
            "" => location.to_string(),
            p => location
                .strip_prefix(p)
                .and_then(|l| l.strip_prefix('/'))
                .unwrap_or(location)
                .to_string(),
        }
    }

    /// The names of the "directories" right under `dir` (e.g. `hostname=a` under `logs`).
    pub fn list_dirs(&self, dir: &str) -> Result<Vec<String>> {
        let prefix = self.store.path(dir)?;
        let listed = self
            .runtime
            .block_on(self.store.store.list_with_delimiter(Some(&prefix)))
            .with_context(|| format!("cannot list {dir} in archive {}", self.location()))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Every object under `dir`, with its size, as paths relative to the archive root.
    pub fn list_files(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let prefix = self.store.path(dir)?;
        let metas: Vec<_> = self
            .runtime
            .block_on(self.store.store.list(Some(&prefix)).try_collect())
            .with_context(|| format!("cannot list {dir} in archive {}", self.location()))?;
        Ok(metas
            .into_iter()
            .map(|m| (self.relative(m.location.as_ref()), m.size))
            .collect())
    }

    /// The whole object at `path`.
    pub fn get(&self, path: &str) -> Result<bytes::Bytes> {
        let object_path = self.store.path(path)?;
        self.runtime
            .block_on(async { self.store.store.get(&object_path).await?.bytes().await })
            .with_context(|| format!("cannot read {path} from archive {}", self.location()))
    }

    /// Deletes one object (a missing one is not an error: the deletion is what was wanted).
    pub fn delete(&self, path: &str) -> Result<()> {
        let object_path = self.store.path(path)?;
        match self.runtime.block_on(self.store.store.delete(&object_path)) {
            Ok(()) | Err(infralog_store::object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot delete {path} from archive {}", self.location())
                });
            }
        }
        if let Some(root) = &self.store.local_root {
            // Directories left empty would list as partitions with no files.
            let mut dir = root.join(path);
            while dir.pop() && dir != *root && std::fs::remove_dir(&dir).is_ok() {}
        }
        Ok(())
    }
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

    #[test]
    fn big_files_go_up_in_parts_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
        let big: Vec<u8> = (0..MULTIPART_BYTES * 2 + 123).map(|i| i as u8).collect();
        archive.put("logs/big.parquet", big.clone()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("logs/big.parquet")).unwrap(),
            big
        );
    }
}
