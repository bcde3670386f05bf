//! The archive as infra-query reads it: the archive's object store, with every listing
//! leaving out the files a compacted file already contains (the rule of
//! [`infralog_schemas::files`]). Whatever moment a query lists a partition at — before,
//! during or after a compaction, or after one that was interrupted — it reads each row
//! once.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use infralog_schemas::files::covered;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug)]
pub struct ArchiveView {
    inner: Arc<dyn ObjectStore>,
}

impl ArchiveView {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

impl fmt::Display for ArchiveView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArchiveView({})", self.inner)
    }
}

/// Drops the objects contained in a wider compacted file of the same directory.
fn visible(objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
    let dir_and_name = |m: &ObjectMeta| {
        let s = m.location.as_ref();
        match s.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), s.to_string()),
        }
    };
    let keys: Vec<(String, String)> = objects.iter().map(dir_and_name).collect();
    let mut by_dir: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for (d, n) in &keys {
        by_dir.entry(d.as_str()).or_default().push(n.as_str());
    }
    let hidden: std::collections::HashSet<(&str, &str)> = by_dir
        .iter()
        .flat_map(|(d, names)| {
            covered(names.iter().copied())
                .into_iter()
                .map(move |n| (*d, n))
        })
        .collect();
    if hidden.is_empty() {
        return objects;
    }
    let keep: Vec<bool> = keys
        .iter()
        .map(|(d, n)| !hidden.contains(&(d.as_str(), n.as_str())))
        .collect();
    objects
        .into_iter()
        .zip(keep)
        .filter_map(|(o, k)| k.then_some(o))
        .collect()
}

#[async_trait]
impl ObjectStore for ArchiveView {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        // The rule needs a directory's whole listing; listings are per table or partition,
        // small next to the data they name.
        let all = self.inner.list(prefix);
        futures::stream::once(async move {
            let objects: Vec<ObjectMeta> = all.try_collect().await?;
            Ok::<_, object_store::Error>(futures::stream::iter(
                visible(objects).into_iter().map(Ok),
            ))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects = visible(listed.objects);
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn listings_leave_out_what_a_compacted_file_holds() {
        let mem = Arc::new(InMemory::new());
        let i = "00000000000000aa";
        let names = [
            format!("logs/hostname=a/log_date=2026-11-28/{i}-0000000000000001.parquet"),
            format!("logs/hostname=a/log_date=2026-11-28/{i}-0000000000000002.parquet"),
            format!(
                "logs/hostname=a/log_date=2026-11-28/{i}-0000000000000001-0000000000000002.parquet"
            ),
            format!("logs/hostname=a/log_date=2026-11-29/{i}-0000000000000002.parquet"),
            "logs/hostname=a/log_date=2026-11-28/other.parquet".to_string(),
        ];
        for n in &names {
            mem.put(&Path::from(n.as_str()), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let view = ArchiveView::new(mem);
        let mut listed: Vec<String> = view
            .list(Some(&Path::from("logs")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        listed.sort();
        let mut expect = vec![names[2].clone(), names[3].clone(), names[4].clone()];
        expect.sort();
        assert_eq!(listed, expect);
        let day = view
            .list_with_delimiter(Some(&Path::from("logs/hostname=a/log_date=2026-11-28")))
            .await
            .unwrap();
        assert_eq!(day.objects.len(), 2);
    }
}
