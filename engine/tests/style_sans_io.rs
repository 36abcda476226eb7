//! The protocol core, the state machines, the checker and the simulator
//! must stay sans-IO: no wall clock, no OS randomness, no threads.

use std::fs;
use std::path::Path;

const FORBIDDEN: [&str; 6] = [
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "std::thread",
    "std::fs",
    "std::net",
];

fn scan(directory: &Path, offenders: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            scan(&path, offenders);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let text = fs::read_to_string(&path).expect("source files are readable");
            for word in FORBIDDEN {
                if text.contains(word) {
                    offenders.push(format!("{} uses {word}", path.display()));
                }
            }
        }
    }
}

#[test]
fn core_folders_touch_no_clock_randomness_or_threads() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut scanned = 0;
    for folder in ["paxos", "sm", "sim", "check"] {
        let path = source.join(folder);
        if path.exists() {
            scanned += 1;
        }
        scan(&path, &mut offenders);
    }
    assert!(scanned >= 3, "the core folders moved: update this test");
    assert!(
        offenders.is_empty(),
        "sans-IO folders must not use: {offenders:#?}"
    );
}
