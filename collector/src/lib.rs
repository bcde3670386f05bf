//! infra-collector: sources turn their input into [`chunk::Chunk`]s of Arrow rows, the
//! archive writer turns chunks into sorted zstd Parquet and only then commits the sources'
//! checkpoints.

pub mod archive;
pub mod batch;
pub mod chunk;
pub mod config;
pub mod identity;
pub mod import;
pub mod lines;
pub mod parse;
pub mod privilege;
pub mod probe;
pub mod run;
pub mod sources;
pub mod state;
pub mod time;
