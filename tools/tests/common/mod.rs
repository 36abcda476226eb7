//! Helpers the command-line tests share.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs `synod` with `arguments` and its standard output on `/dev/full`,
/// where every write fails.
pub fn synod_into_full_stdout<I, S>(arguments: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full opens");
    Command::new(env!("CARGO_BIN_EXE_synod"))
        .args(arguments)
        .stdout(full)
        .output()
        .expect("the synod binary runs")
}

/// The run ended with exit status 2 and one `synod: ` line on standard
/// error, not with a panic.
pub fn assert_one_line_error(output: &Output) {
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    assert!(error.starts_with("synod: "), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
}
