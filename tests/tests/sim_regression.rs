//! Replays a fixed list of simulator seeds with every fault class on and
//! asserts that no check is broken. Every seed that ever found a bug goes
//! in this list, with a comment saying what it found.
//!
//! The heavy seed loops run through the `simulate` binary in release mode;
//! this list stays short enough for a debug-mode `cargo test`.

use synod_engine::sim::{self, SimConfig, ViolationKind};
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
    (67, 3, "B2 (BUGS.md): a replica crashing again during non-voter recovery; passes with the damage marker"),
    (1640, 3, "B2 (BUGS.md): the same, on a different schedule"),
];

/// Seeds that find a protocol-core bug not fixed on this branch: they fail
/// until it is fixed (run with `cargo test -- --ignored`). They run with
/// every crash corrupting a record and faults every 300 ms.
const PROTOCOL_BUG_SEEDS: &[(u64, usize, &str)] = &[
    (
        2167,
        3,
        "B1 (BUGS.md): a damaged replica commits a superseded value from its surviving log",
    ),
    (769, 3, "B1 (BUGS.md): the same"),
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
#[ignore = "fails until the protocol core fixes B1 (see BUGS.md of the sim branch)"]
fn protocol_bug_seeds_break_no_check() {
    let mut template = SimConfig::default();
    template.rates.corrupt_ppm = 1_000_000;
    template.rates.fault_interval_mean_ns = 300_000_000;
    run_seeds(PROTOCOL_BUG_SEEDS, &template);
}

/// The simulator's disk keeps a damaged recovery durable until the replica
/// has caught up; a driver that forgets it lets seed 1640 break agreement.
#[test]
fn a_forgotten_damage_marker_is_caught() {
    let config = SimConfig {
        seed: 1640,
        driver_forgets_damage: true,
        ..SimConfig::default()
    };
    let report = sim::run(&config);
    assert!(
        report
            .violations
            .iter()
            .any(|violation| violation.kind == ViolationKind::Agreement),
        "seed 1640 with a forgetful driver no longer breaks agreement: {:?}",
        report.violations
    );
}
