//! Detection quality on the replay of `infralog_benches::replay` (10 hosts, 2 days of
//! event time from the Loghub 2k samples, daily cycles, a warm-up day, 40 injected faults),
//! with the detector's one default configuration. The targets are the issue's: recall
//! ≥ 0.95 for silences, error storms and new error templates and ≥ 0.8 for bursts of 4×
//! or more; at most 0.5 anomalies an hour across the 10 hosts on the clean replay (an
//! upper bound of notifications: alerts group and deduplicate further); median latency
//! ≤ 2 minutes of event time.

use infralog_benches::loghub;
use infralog_benches::replay::{self, FaultKind, ReplayOptions};
use infralog_collector::detect::DetectorConfig;

#[test]
fn replay_finds_the_injected_faults_and_stays_quiet_on_clean_days() {
    let sets = loghub::load_all(&loghub::default_root()).expect("the loghub-2k samples");
    let faulty = replay::run(&sets, &ReplayOptions::default(), DetectorConfig::default());
    let clean = replay::run(
        &sets,
        &ReplayOptions {
            faults: 0,
            ..Default::default()
        },
        DetectorConfig::default(),
    );
    let report = format!(
        "faulty: {:?} precision {:.3} raised {} latency median {:.0}s max {:.0}s ({:?}); clean: {} raised ({:?}) {:.2}/h; {} + {} lines in {:?} + {:?}",
        faulty.faults,
        faulty.precision(),
        faulty.raised,
        faulty.latency_median_s,
        faulty.latency_max_s,
        faulty.per_kind_raised,
        clean.raised,
        clean.per_kind_raised,
        clean.per_hour(),
        faulty.lines,
        clean.lines,
        faulty.elapsed,
        clean.elapsed,
    );
    eprintln!("{report}");
    for (k, floor) in [
        (FaultKind::Silence, 0.95),
        (FaultKind::ErrorStorm, 0.95),
        (FaultKind::NewErrorTemplate, 0.95),
        (FaultKind::Burst, 0.8),
    ] {
        assert!(faulty.recall(k) >= floor, "{k:?} recall: {report}");
    }
    assert!(faulty.precision() >= 0.9, "precision: {report}");
    assert!(clean.per_hour() <= 0.5, "clean replay: {report}");
    assert!(faulty.latency_median_s <= 120.0, "latency: {report}");
}

/// The harder replay (each system's lines in their own order, so real runs recur all
/// day): 0.42/h for seed 1, 0.25–0.54 over seeds 1–5 (BENCHMARKS.md); this holds what was reached.
#[test]
fn ordered_replay_noise_stays_low() {
    let sets = loghub::load_all(&loghub::default_root()).expect("the loghub-2k samples");
    let clean = replay::run(
        &sets,
        &ReplayOptions {
            faults: 0,
            ordered: true,
            ..Default::default()
        },
        DetectorConfig::default(),
    );
    assert!(
        clean.per_hour() <= 0.75,
        "{:.2}/h: {:?}",
        clean.per_hour(),
        clean.per_kind_raised
    );
}
