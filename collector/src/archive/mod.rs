//! Archive writer: chunks in, sorted zstd Parquet out.
