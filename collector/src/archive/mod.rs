//! Archive: chunks in, sorted zstd Parquet out, in the hive layout of the schema crate.
//!
//! - [`parquet`] encodes one partition's rows as a file;
//! - [`migrate`] rewrites files of an older schema version as the current one;
//! - [`store`] puts files into an `object_store` (local directory now, S3 by config later);
//! - [`writer`] is the thread that buffers chunks per partition, writes files, and commits
//!   the sources' checkpoints once the rows before them are durable.

pub mod migrate;
pub mod parquet;
pub mod store;
pub mod writer;

pub use store::Archive;
pub use writer::{ArchiveWriter, WriterOptions, WriterReport};
