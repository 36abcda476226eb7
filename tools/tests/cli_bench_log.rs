//! `synod bench log` runs one tiny cell end to end: every subject prints a
//! row, and no log subject makes more than one sync per group commit.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn one_small_cell_prints_every_subject_with_at_most_one_sync_per_commit() {
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-bench-log-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("scratch directory");
    let output = Command::new(env!("CARGO_BIN_EXE_synod"))
        .args(["bench", "log", "--seconds", "0.01", "--repeats", "1"])
        .args(["--record-bytes", "64", "--per-group", "1", "--dir"])
        .arg(&directory)
        .output()
        .expect("the synod binary runs");
    let _ = std::fs::remove_dir_all(&directory);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let machine = text.lines().next().unwrap_or_default();
    assert!(
        machine.starts_with("machine: ") && machine.contains("; checksums: "),
        "the table names its machine first\n{text}"
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| subject"))
        .map(|line| line.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 11, "{text}");
    for row in rows.iter().filter(|row| row[0].starts_with("log ")) {
        let syncs: f64 = row[8].parse().expect("syncs/commit is a number");
        if row[0].contains("adaptive") {
            // Each commit is a linked fdatasync (1) or an RWF_DSYNC write (0).
            assert!(
                (0.0..=1.0).contains(&syncs),
                "{}: {syncs} syncs per commit\n{text}",
                row[0]
            );
        } else {
            let expected = if row[0].contains("O_DSYNC") { 0.0 } else { 1.0 };
            assert!(
                (syncs - expected).abs() < 1e-9,
                "{}: {syncs} syncs per commit\n{text}",
                row[0]
            );
        }
        assert!(
            row[7].ends_with(" us"),
            "a log row has a build time: {row:?}"
        );
    }
}
