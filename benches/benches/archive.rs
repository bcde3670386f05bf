//! Batch → Parquet throughput, in rows per second: `cargo bench -p infralog-benches --bench
//! archive`.
//!
//! Input: one archive file's worth of rows, as the collector would hold them for one
//! partition (the busiest host of the synthetic corpus over one day), parsed from RFC 3164
//! lines and appended with the collector's own batch builder in chunks of 8192 rows.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infralog_benches::corpus::{self, Generator, Model, START_UNIX};
use infralog_collector::archive::parquet::{encode, sorted_file_batch};
use infralog_collector::batch::{LogBatchBuilder, Row};
use infralog_collector::parse::{Format, ParseContext, parse_line};
use infralog_schemas::source;

/// Lines generated (one day); the busiest host gets about an eighth of them.
const LINES: u64 = 1_000_000;
const CHUNK_ROWS: usize = 8192;
const NS: i64 = 1_000_000_000;

fn partition_batches() -> Vec<RecordBatch> {
    let model = Model::load(&corpus::default_templates_dir())
        .expect("loghub templates (../shared/data/loghub-2k or $INFRALOG_LOGHUB)");
    let mut g = Generator::new(&model, corpus::DEFAULT_SEED, LINES, 1.0);
    let mut text = Vec::with_capacity(LINES as usize * 140);
    for _ in 0..LINES {
        g.next_line(&mut text);
    }
    let ctx = ParseContext {
        reference_unix_secs: START_UNIX + 30 * 86_400,
        utc_offset_secs: 0,
        boot_unix_ns: None,
    };
    let lines = || text.split(|&b| b == b'\n').filter(|l| !l.is_empty());

    let mut per_host: HashMap<&[u8], usize> = HashMap::new();
    for line in lines() {
        if let Some(h) = parse_line(Format::Rfc3164, line, &ctx).hostname {
            *per_host.entry(h).or_default() += 1;
        }
    }
    let (&host, _) = per_host
        .iter()
        .max_by_key(|(h, n)| (**n, *h))
        .expect("some lines");

    let mut builder = LogBatchBuilder::new(CHUNK_ROWS);
    let mut batches = Vec::new();
    let ingested = (START_UNIX + 2 * 86_400) * NS;
    for line in lines() {
        let rec = parse_line(Format::Rfc3164, line, &ctx);
        if rec.hostname != Some(host) {
            continue;
        }
        let row = Row::from_record(&rec, source::FILE, b"localhost", ingested);
        builder.append(&row, ingested, |_| {});
        if builder.len() == CHUNK_ROWS {
            batches.push(builder.finish());
        }
    }
    if !builder.is_empty() {
        batches.push(builder.finish());
    }
    batches
}

fn archive(c: &mut Criterion) {
    let batches = partition_batches();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let bytes = encode(&batches).expect("encode").len();
    eprintln!(
        "archive: {rows} rows of one host-day -> {bytes} bytes of Parquet ({:.2} bytes/row)",
        bytes as f64 / rows as f64
    );

    let mut g = c.benchmark_group("archive");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("sort_and_project", |b| {
        b.iter(|| sorted_file_batch(black_box(&batches)).expect("sort"))
    });
    g.bench_function("encode", |b| {
        b.iter(|| encode(black_box(&batches)).expect("encode"))
    });
    g.finish();
}

criterion_group!(benches, archive);
criterion_main!(benches);
