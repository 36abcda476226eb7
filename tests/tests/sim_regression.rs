//! Replays a fixed list of simulator seeds with every fault class on and
//! asserts that no check is broken. Every seed that ever found a bug goes
//! in this list, with a comment saying what it found.
//!
//! The heavy seed loops run through the `simulate` binary in release mode;
//! this list stays short enough for a debug-mode `cargo test`.

use synod_engine::sim::{self, SimConfig};
use synod_tests::describe_failure;

/// (seed, replicas, why it is here).
const SEEDS: &[(u64, usize, &str)] = &[
    (1, 3, "baseline"),
    (2, 3, "baseline"),
    (3, 3, "baseline"),
    (4, 3, "baseline"),
    (5, 3, "baseline"),
    (6, 3, "baseline"),
    (7, 3, "baseline"),
    (8, 3, "baseline"),
    (9, 3, "baseline"),
    (10, 3, "baseline"),
    (11, 3, "baseline"),
    (12, 3, "baseline"),
    (13, 3, "baseline"),
    (14, 3, "baseline"),
    (15, 3, "baseline"),
    (16, 3, "baseline"),
    (17, 3, "baseline"),
    (18, 3, "baseline"),
    (19, 3, "baseline"),
    (20, 3, "baseline"),
    (101, 5, "five replicas"),
    (102, 5, "five replicas"),
    (103, 5, "five replicas"),
    (201, 7, "seven replicas"),
    (202, 7, "seven replicas"),
    (67, 3, "a replica crashing again during non-voter recovery"),
    (1640, 3, "the same, on a different schedule"),
];

/// Seeds that found a damaged replica committing a superseded value from
/// its surviving log (the protocol core now relearns everything above its
/// snapshot instead). They run with every crash corrupting a record and
/// faults every 300 ms.
const DAMAGE_SEEDS: &[(u64, usize, &str)] = &[
    (
        2167,
        3,
        "a damaged replica committed a superseded value from its surviving log",
    ),
    (769, 3, "the same"),
    (2427, 3, "the same"),
    (2555, 3, "the same"),
    (2895, 3, "the same"),
    (2935, 3, "the same"),
];

fn run_seeds(seeds: &[(u64, usize, &str)], template: &SimConfig) {
    let mut failures = Vec::new();
    for &(seed, replicas, why) in seeds {
        let config = SimConfig {
            seed,
            replicas,
            ..template.clone()
        };
        let report = sim::run(&config);
        assert!(
            report.operations >= config.operations_min,
            "seed {seed}: too few operations"
        );
        if !report.passed() {
            failures.push(format!("({why}) {}", describe_failure(&report, 40)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn regression_seeds_break_no_check() {
    run_seeds(SEEDS, &SimConfig::default());
}

#[test]
fn damage_seeds_break_no_check() {
    let mut template = SimConfig::default();
    template.rates.corrupt_ppm = 1_000_000;
    template.rates.fault_interval_mean_ns = 300_000_000;
    run_seeds(DAMAGE_SEEDS, &template);
}

/// A driver whose disk forgets that a recovery was damaged once let seeds
/// 1640, 67, 2036 and 2306 choose a slot twice; the replica now records that
/// it is recovering in its own durable metadata, so they pass even then.
#[test]
fn a_driver_that_forgets_damage_is_covered_by_the_metadata() {
    let seeds: Vec<(u64, usize, &str)> = [1640, 67, 2036, 2306]
        .into_iter()
        .map(|seed| (seed, 3, "a forgetful driver"))
        .collect();
    let template = SimConfig {
        driver_forgets_damage: true,
        ..SimConfig::default()
    };
    run_seeds(&seeds, &template);
}
