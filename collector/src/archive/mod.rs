//! Archive: sealed spool segments in, sorted zstd Parquet out, in the hive layout of the
//! schema crate.
//!
//! - [`parquet`] encodes one partition's rows as a file;
//! - [`store`] puts files into an `object_store` (a local directory or S3);
//! - [`archiver`] is the thread that turns each sealed segment into files and then deletes
//!   the segment;
//! - [`retention`] deletes partitions past the TTL;
//! - [`compact`] merges the small files of a host-day into one;
//! - [`migrate`] rewrites files of an older schema version as the current one.

pub mod archiver;
pub mod compact;
pub mod migrate;
pub mod parquet;
pub mod retention;
pub mod store;

pub use archiver::{ArchiveReport, Archiver, ArchiverOptions};
pub use store::Archive;
