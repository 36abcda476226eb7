//! The simulator replays a seed exactly, and its code stays sans-IO.

use std::path::Path;

use synod_engine::sim::{self, SimConfig};

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        operations_min: 300,
        ..SimConfig::default()
    }
}

#[test]
fn a_seed_replays_exactly() {
    let first = sim::run(&small(11));
    let second = sim::run(&small(11));
    assert!(first.passed(), "{:?}", first.violations);
    assert_eq!(first.history, second.history);
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.faults, second.faults);
    assert_eq!(first.events, second.events);
    assert_eq!(first.virtual_ns, second.virtual_ns);
    let other = sim::run(&small(12));
    assert_ne!(first.history, other.history, "seeds change the run");
}

#[test]
fn every_cluster_size_runs_clean() {
    for replicas in [3, 5, 7] {
        let config = SimConfig {
            replicas,
            ..small(21)
        };
        let report = sim::run(&config);
        assert!(
            report.passed(),
            "{replicas} replicas: {:?}",
            report.violations
        );
        assert!(report.operations >= 300);
        assert!(report.commits > 0);
    }
}

#[test]
fn the_simulator_is_sans_io() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src/sim");
    let forbidden = ["Instant::now", "SystemTime", "thread_rng", "std::thread"];
    let mut scanned = 0;
    for entry in std::fs::read_dir(&folder).expect("engine/src/sim exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|extension| extension == "rs") {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            for name in forbidden {
                assert!(!text.contains(name), "{} uses {name}", path.display());
            }
            scanned += 1;
        }
    }
    assert!(scanned > 10, "the scan found the simulator's files");
}
