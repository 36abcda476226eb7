//! `synod check` on small history files: exit status and summary.

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

fn synod_check(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synod"))
        .arg("check")
        .args(arguments)
        .output()
        .expect("the synod binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn linearizable_history_exits_zero() {
    let path = data("linearizable.jsonl");
    let output = synod_check(&[path.to_str().expect("test paths are UTF-8")]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("12 operations on 2 keys"), "{text}");
    assert!(text.contains("verdict: linearizable"), "{text}");
}

#[test]
fn stale_read_exits_one_and_names_the_key() {
    let path = data("stale_read.jsonl");
    let output = synod_check(&[path.to_str().expect("test paths are UTF-8")]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains(r#"NOT linearizable at key "x""#), "{text}");
    assert!(text.contains(r#"get "x" -> "w1""#), "{text}");
}

#[test]
fn exhausted_budget_exits_two() {
    let path = data("linearizable.jsonl");
    let output = synod_check(&[
        path.to_str().expect("test paths are UTF-8"),
        "--steps-max",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stdout(&output).contains("verdict: unknown"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn parse_error_exits_two_with_the_line() {
    let path = data("malformed.jsonl");
    let output = synod_check(&[path.to_str().expect("test paths are UTF-8")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("line 2"), "{error}");
}

#[test]
fn missing_file_exits_two() {
    let path = data("no_such_history.jsonl");
    let output = synod_check(&[path.to_str().expect("test paths are UTF-8")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn unwritable_stdout_exits_two_with_an_error_not_a_panic() {
    let path = data("stale_read.jsonl");
    let output = common::synod_into_full_stdout([OsStr::new("check"), path.as_os_str()]);
    common::assert_one_line_error(&output);
}
