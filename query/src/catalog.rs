//! The catalog: where the archive lives, and the tables registered over it.
//!
//! An archive is named by a local path (`./data`, `/var/lib/infralog`) or a URL
//! (`file:///var/lib/infralog`, later `s3://bucket/prefix`). Every table is a DataFusion
//! [`ListingTable`] over `<archive>/<table>/`, with the hive partition columns taken from
//! the path and the file schema taken from [`infralog_schemas`] (never inferred, so an
//! archive with no files yet still has a `logs` table with the right columns).
//!
//! Object stores: `file://` is built into DataFusion. A remote archive plugs in by
//! registering an object store for its URL in [`register_object_store`]; nothing else in
//! the crate depends on where the bytes live.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use infralog_schemas::{LOGS_TABLE, PARTITION_COLUMNS, Table, tables};

use crate::archive_store::ArchiveView;

/// Where an archive lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveLocation {
    /// A directory on the local filesystem (absolute).
    Local(PathBuf),
    /// An object-store URL such as `s3://bucket/prefix` (no trailing slash).
    Remote(String),
}

impl ArchiveLocation {
    /// Interprets `archive` as a URL when it has a scheme (`scheme://…`), otherwise as a
    /// local path, relative to the current directory. `file://` URLs become local paths.
    ///
    /// This does not touch the archive; see [`ArchiveLocation::check`].
    pub fn parse(archive: &str) -> Result<Self> {
        if archive.is_empty() {
            bail!("archive location is empty");
        }
        if let Some(path) = archive.strip_prefix("file://") {
            return Self::local(Path::new(path));
        }
        match archive.split_once("://") {
            Some((scheme, rest))
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
            {
                if rest.is_empty() {
                    bail!("archive URL {archive:?} has no bucket or host");
                }
                Ok(Self::Remote(archive.trim_end_matches('/').to_string()))
            }
            _ => Self::local(Path::new(archive)),
        }
    }

    fn local(path: &Path) -> Result<Self> {
        let abs = std::path::absolute(path)
            .with_context(|| format!("cannot resolve archive path {}", path.display()))?;
        Ok(Self::Local(abs))
    }

    /// The URL scheme: `file` for a local archive.
    pub fn scheme(&self) -> &str {
        match self {
            Self::Local(_) => "file",
            Self::Remote(url) => url.split_once("://").map_or("", |(s, _)| s),
        }
    }

    /// Fails with a message naming the location when the archive cannot be used: a local
    /// directory that does not exist (or is not a directory). Remote archives are checked
    /// when their object store is registered.
    pub fn check(&self) -> Result<()> {
        if let Self::Local(path) = self {
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => bail!("archive {} is not a directory", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    bail!("archive directory {} does not exist", path.display())
                }
                Err(e) => bail!("cannot open archive directory {}: {e}", path.display()),
            }
        }
        Ok(())
    }

    /// The listing URL of one table's directory, `<archive>/<table>/` (a collection, so
    /// the directory may be absent or empty).
    pub fn table_url(&self, table: &str) -> Result<ListingTableUrl> {
        let url = match self {
            Self::Local(path) => {
                let dir = path.join(table);
                format!("file://{}/", encode_url_path(&dir))
            }
            Self::Remote(url) => format!("{url}/{table}/"),
        };
        ListingTableUrl::parse(&url).with_context(|| format!("invalid archive URL {url}"))
    }
}

impl fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Remote(url) => f.write_str(url),
        }
    }
}

/// Percent-encodes a filesystem path for a `file://` URL, so that characters such as
/// `%`, `#`, `?`, `[` or spaces in a directory name survive the URL round trip.
fn encode_url_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Makes the archive's object store known to `ctx`: the local filesystem, or the S3
/// bucket (endpoint, region and credentials as the collector takes them: `AWS_*`
/// environment variables, a shared credentials file), seen through [`ArchiveView`] so that
/// files a compacted file already holds are never read.
pub fn register_object_store(ctx: &SessionContext, archive: &ArchiveLocation) -> Result<()> {
    let table_url = archive.table_url(LOGS_TABLE)?;
    let inner: Arc<dyn object_store::ObjectStore> = match archive {
        ArchiveLocation::Local(_) => Arc::new(object_store::local::LocalFileSystem::new()),
        ArchiveLocation::Remote(url) => {
            infralog_store::open(url, &infralog_store::S3Settings::default())
                .with_context(|| format!("archive {url}"))?
                .store
        }
    };
    ctx.register_object_store(
        table_url.object_store().as_ref(),
        Arc::new(ArchiveView::new(inner)),
    );
    Ok(())
}

/// The hive partition columns of a table with their types, in path order, as the schema
/// crate defines them.
pub fn partition_cols(logical: &Schema) -> Vec<(String, DataType)> {
    PARTITION_COLUMNS
        .iter()
        .map(|name| {
            let field = logical
                .field_with_name(name)
                .expect("partition column is in the logical schema");
            (name.to_string(), field.data_type().clone())
        })
        .collect()
}

/// Builds the listing table of `table`: `<archive>/<name>/hostname=…/log_date=…/*.parquet`,
/// its file schema and partition columns from the schema crate. The Parquet reader
/// options (filter pushdown, page index, pruning) are copied from `ctx`'s session config
/// at this point.
pub fn listing_table(
    ctx: &SessionContext,
    archive: &ArchiveLocation,
    table: &Table,
) -> Result<ListingTable> {
    let url = archive.table_url(table.name)?;
    // `ParquetFormat::default()` carries its own default options and would ignore the
    // session's `datafusion.execution.parquet.*` settings (pushdown_filters etc.).
    let format = ParquetFormat::default().with_options(ctx.copied_table_options().parquet);
    let options = ListingOptions::new(Arc::new(format))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols(&table.schema));
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(table.file_schema.clone());
    Ok(ListingTable::try_new(config)?)
}

/// Where rows not yet archived are read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SpoolChoice {
    /// The default collector layout's spool, `<archive>/state/spool`, when the archive is
    /// local and that directory exists.
    #[default]
    Beside,
    /// This spool directory (it need not exist yet).
    Dir(PathBuf),
    /// The archive only.
    Off,
}

impl SpoolChoice {
    /// The spool directory to read for `archive`, if any.
    pub fn resolve(&self, archive: &ArchiveLocation) -> Option<PathBuf> {
        match (self, archive) {
            (Self::Off, _) => None,
            (Self::Dir(dir), _) => Some(dir.clone()),
            (Self::Beside, ArchiveLocation::Local(root)) => {
                let dir = crate::fresh::default_spool_dir(root);
                dir.is_dir().then_some(dir)
            }
            (Self::Beside, ArchiveLocation::Remote(_)) => None,
        }
    }
}

/// Registers every table of the archive in `ctx` (`logs`, `stats`, …: the schema
/// crate's list), `logs` with the rows of `spool` (see [`crate::fresh`]), and the time
/// window functions of each table (see [`crate::windows`]).
pub fn register_archive(
    ctx: &SessionContext,
    archive: &ArchiveLocation,
    spool: &SpoolChoice,
) -> Result<()> {
    archive.check()?;
    register_object_store(ctx, archive)?;
    let mut registered = Vec::new();
    for table in tables() {
        let mut provider: Arc<dyn TableProvider> = Arc::new(listing_table(ctx, archive, &table)?);
        if table.name == LOGS_TABLE
            && let Some(dir) = spool.resolve(archive)
        {
            provider = Arc::new(crate::fresh::FreshLogs::new(provider, dir));
        }
        ctx.register_table(table.name, provider.clone())?;
        registered.push((table.name.to_string(), provider));
    }
    crate::windows::register(ctx, &registered);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_schemas::logs_schema;

    #[test]
    fn parse_paths_and_urls() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            ArchiveLocation::parse("./data").unwrap(),
            ArchiveLocation::Local(cwd.join("data"))
        );
        assert_eq!(
            ArchiveLocation::parse("/var/lib/infralog").unwrap(),
            ArchiveLocation::Local("/var/lib/infralog".into())
        );
        assert_eq!(
            ArchiveLocation::parse("file:///var/lib/infralog").unwrap(),
            ArchiveLocation::Local("/var/lib/infralog".into())
        );
        let s3 = ArchiveLocation::parse("s3://bucket/prefix/").unwrap();
        assert_eq!(s3, ArchiveLocation::Remote("s3://bucket/prefix".into()));
        assert_eq!(s3.scheme(), "s3");
        assert_eq!(
            s3.table_url("logs").unwrap().as_str(),
            "s3://bucket/prefix/logs/"
        );
        assert!(ArchiveLocation::parse("").is_err());
    }

    #[test]
    fn local_table_url_survives_odd_characters() {
        let loc = ArchiveLocation::Local("/tmp/a b/x%y#z[1]".into());
        let url = loc.table_url("logs").unwrap();
        assert!(url.is_collection());
        assert_eq!(url.prefix().as_ref(), "tmp/a b/x%y#z[1]/logs");
    }

    #[test]
    fn partition_cols_follow_schema_crate() {
        let cols = partition_cols(&logs_schema());
        assert_eq!(cols.len(), PARTITION_COLUMNS.len());
        assert_eq!(cols[0], (PARTITION_COLUMNS[0].to_string(), DataType::Utf8));
        assert_eq!(
            cols[1],
            (PARTITION_COLUMNS[1].to_string(), DataType::Date32)
        );
    }

    #[tokio::test]
    async fn unsupported_schemes_are_refused_with_the_location() {
        let ctx = SessionContext::new();
        let loc = ArchiveLocation::parse("gs://bucket/prefix").unwrap();
        let err = format!(
            "{:#}",
            register_archive(&ctx, &loc, &SpoolChoice::Beside).unwrap_err()
        );
        assert!(err.contains("gs://bucket/prefix"), "{err}");
    }
}
