//! Template miner throughput, masking included, in lines per second:
//! `cargo bench -p infralog-benches --bench miner`. The lines are the messages of the
//! Loghub 2k samples (16,000 real lines of 8 systems), mined in their order by one miner
//! that has already seen them (the steady state of a collector), and, separately,
//! masking alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infralog_benches::loghub;
use infralog_collector::detect::mask::{Masked, mask};
use infralog_collector::detect::{Miner, MinerConfig};

fn bench(c: &mut Criterion) {
    let sets = loghub::load_all(&loghub::default_root()).expect("loghub-2k samples");
    let lines: Vec<&[u8]> = sets
        .iter()
        .flat_map(|d| d.contents.iter().map(|s| s.as_bytes()))
        .collect();
    let mut g = c.benchmark_group("miner");
    g.throughput(Throughput::Elements(lines.len() as u64));
    let mut miner = Miner::new(MinerConfig::default());
    for l in &lines {
        miner.add(l, 0);
    }
    g.bench_function("mine_loghub", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(miner.add(black_box(l), 0));
            }
        })
    });
    let mut masked = Masked::new();
    g.bench_function("mask_loghub", |b| {
        b.iter(|| {
            for l in &lines {
                mask(black_box(l), &mut masked);
                black_box(masked.len());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
