//! infra-collector: sources turn their input into [`chunk::Chunk`]s of Arrow rows; the
//! [`spool`] makes each chunk durable together with its source's position, and the
//! [`archive`] turns sealed spool segments into sorted zstd Parquet.

pub mod alert;
pub mod archive;
pub mod batch;
pub mod chunk;
pub mod config;
pub mod degraded;
pub mod detect;
pub mod forward;
pub mod http;
pub mod identity;
pub mod import;
pub mod lines;
pub mod logging;
pub mod meter;
pub mod parse;
pub mod pipeline;
pub mod privilege;
pub mod probe;
pub mod run;
pub mod sd_notify;
pub mod sources;
pub mod spool;
pub mod state;
pub mod time;
pub mod validate;
