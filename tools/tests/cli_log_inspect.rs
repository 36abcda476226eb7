//! `synod log inspect` on directories that are not a healthy log: exit
//! status and a one-line error, never a panic.

mod common;

use std::ffi::OsStr;
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
    let output = common::synod_into_full_stdout([
        OsStr::new("log"),
        OsStr::new("inspect"),
        OsStr::new("--records"),
        directory.as_os_str(),
    ]);
    let _ = std::fs::remove_dir_all(&directory);
    common::assert_one_line_error(&output);
}

/// A segment that is a device behind a symlink (or a fifo, a directory:
/// anything but a regular file) under a log file's name is refused before
/// it is opened: before, `/dev/zero` was read until memory ran out, and a
/// fifo hung the command.
#[test]
fn a_segment_that_is_not_a_regular_file_is_refused_not_read() {
    for case in ["symlink-to-dev-zero", "directory"] {
        let directory = scratch(case);
        let segment = directory.join("0000000000000000.seg");
        if case == "directory" {
            std::fs::create_dir(&segment).expect("a directory");
        } else {
            std::os::unix::fs::symlink("/dev/zero", &segment).expect("symlink");
        }
        let output = Command::new(env!("CARGO_BIN_EXE_synod"))
            .args(["log", "inspect"])
            .arg(&directory)
            .output()
            .expect("the synod binary runs");
        let _ = std::fs::remove_dir_all(&directory);
        let error = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{case}: {error}");
        assert!(error.contains("not a regular file"), "{case}: {error}");
        assert_eq!(error.lines().count(), 1, "{case}: {error}");
    }
}
