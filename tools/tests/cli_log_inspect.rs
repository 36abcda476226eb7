//! `synod log inspect` on directories that are not a healthy log: exit
//! status and a one-line error, never a panic.

use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-log-inspect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

#[test]
fn unwritable_stdout_exits_two_with_an_error_not_a_panic() {
    let directory = scratch("full-stdout");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full opens");
    let output = Command::new(env!("CARGO_BIN_EXE_synod"))
        .args(["log", "inspect", "--records"])
        .arg(&directory)
        .stdout(full)
        .output()
        .expect("the synod binary runs");
    let _ = std::fs::remove_dir_all(&directory);
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    assert!(error.starts_with("synod: "), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
}
