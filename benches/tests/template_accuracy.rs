//! The template miner's grouping accuracy on the labelled Loghub 2k samples, with the one
//! default configuration: the mean must stay above the floor measured when it was written
//! (0.964 on the 8 development systems; BENCHMARKS.md; the issue asks for 0.95), so that a change to masking or
//! matching that loses accuracy fails here.

use infralog_benches::loghub::{self, grouping_accuracy};
use infralog_collector::detect::{Miner, MinerConfig};

const MEAN_FLOOR: f64 = 0.95;

#[test]
fn mean_grouping_accuracy_stays_above_the_floor() {
    let root = loghub::default_root();
    let sets = loghub::load_all(&root).expect("the loghub-2k samples (shared/data/loghub-2k)");
    assert!(
        sets.len() >= 8,
        "expected 8+ systems under {}",
        root.display()
    );
    let mut sum = 0.0;
    let mut report = String::new();
    for d in &sets {
        let mut m = Miner::new(MinerConfig::default());
        let ids: Vec<i64> = d.contents.iter().map(|c| m.add(c.as_bytes(), 0)).collect();
        let ga = grouping_accuracy(&ids, &d.events);
        report.push_str(&format!("{} {ga:.3}; ", d.name));
        sum += ga;
    }
    let mean = sum / sets.len() as f64;
    assert!(
        mean >= MEAN_FLOOR,
        "mean GA {mean:.3} < {MEAN_FLOOR}: {report}"
    );
}
