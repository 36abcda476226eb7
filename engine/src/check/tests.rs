//! Hand-made histories with known answers.

use super::{
    check_history, CheckBudget, CheckError, CheckReport, Operation, OperationKind, Outcome, Output,
    Verdict,
};

fn operation(client: u64, kind: OperationKind, key: &str, span_ns: (u64, u64)) -> Operation {
    Operation {
        client,
        kind,
        key: key.to_owned(),
        value: None,
        expected: None,
        output: Output::None,
        invoke_ns: span_ns.0,
        complete_ns: span_ns.1,
        outcome: Outcome::Ok,
    }
}

fn get(client: u64, key: &str, read: Option<&str>, span_ns: (u64, u64)) -> Operation {
    Operation {
        output: Output::Value(read.map(str::to_owned)),
        ..operation(client, OperationKind::Get, key, span_ns)
    }
}

fn put(client: u64, key: &str, value: &str, span_ns: (u64, u64)) -> Operation {
    Operation {
        value: Some(value.to_owned()),
        ..operation(client, OperationKind::Put, key, span_ns)
    }
}

fn delete(client: u64, key: &str, span_ns: (u64, u64)) -> Operation {
    operation(client, OperationKind::Delete, key, span_ns)
}

fn cas(
    client: u64,
    key: &str,
    expected: Option<&str>,
    new: &str,
    swapped: bool,
    span_ns: (u64, u64),
) -> Operation {
    Operation {
        value: Some(new.to_owned()),
        expected: expected.map(str::to_owned),
        output: Output::Cas(swapped),
        ..operation(client, OperationKind::Cas, key, span_ns)
    }
}

fn unknown(operation: Operation) -> Operation {
    let output = if operation.kind == OperationKind::Get {
        operation.output
    } else {
        Output::None
    };
    Operation {
        outcome: Outcome::Unknown,
        output,
        ..operation
    }
}

fn failed(operation: Operation) -> Operation {
    Operation {
        outcome: Outcome::Failed,
        ..unknown(operation)
    }
}

fn check(operations: &[Operation]) -> CheckReport {
    check_history(operations, CheckBudget::default()).expect("hand-made histories are valid")
}

fn assert_linearizable(operations: &[Operation]) {
    let report = check(operations);
    assert_eq!(report.verdict, Verdict::Linearizable, "{report:?}");
}

/// Asserts the history is not linearizable at `key`; returns the detail.
fn assert_not_linearizable(operations: &[Operation], key: &str) -> String {
    match check(operations).verdict {
        Verdict::NotLinearizable { key: found, detail } => {
            assert_eq!(found, key);
            detail
        }
        other => panic!("expected not linearizable at {key:?}, got {other:?}"),
    }
}

#[test]
fn empty_history_is_linearizable() {
    let report = check(&[]);
    assert_eq!(
        report,
        CheckReport {
            verdict: Verdict::Linearizable,
            keys_checked: 0,
            operations_checked: 0,
            steps: 0
        }
    );
}

#[test]
fn sequential_history_is_linearizable() {
    let history = [
        get(1, "k", None, (0, 10)),
        put(1, "k", "a", (20, 30)),
        get(2, "k", Some("a"), (40, 50)),
        put(2, "k", "b", (60, 70)),
        get(1, "k", Some("b"), (80, 90)),
    ];
    let report = check(&history);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!((report.keys_checked, report.operations_checked), (1, 5));
    assert!(report.steps >= 5);
}

#[test]
fn concurrent_writes_may_be_read_in_either_order() {
    for (first, second) in [("a", "b"), ("b", "a")] {
        let history = [
            put(1, "k", "a", (0, 100)),
            put(2, "k", "b", (10, 90)),
            get(3, "k", Some(first), (20, 50)),
            get(3, "k", Some(second), (60, 200)),
            get(4, "k", Some(second), (210, 220)),
        ];
        assert_linearizable(&history);
    }
}

#[test]
fn cas_success_and_failure() {
    let history = [
        cas(1, "k", None, "a", true, (0, 10)),
        cas(2, "k", None, "b", false, (20, 30)),
        cas(2, "k", Some("a"), "c", true, (40, 50)),
        cas(1, "k", Some("a"), "d", false, (60, 70)),
        get(1, "k", Some("c"), (80, 90)),
    ];
    assert_linearizable(&history);
}

#[test]
fn concurrent_cas_only_one_wins() {
    let history = [
        put(1, "k", "a", (0, 10)),
        cas(2, "k", Some("a"), "b", true, (20, 60)),
        cas(3, "k", Some("a"), "c", false, (20, 60)),
        get(1, "k", Some("b"), (70, 80)),
    ];
    assert_linearizable(&history);
}

#[test]
fn delete_then_get_reads_absent() {
    let history = [
        put(1, "k", "a", (0, 10)),
        delete(2, "k", (20, 30)),
        get(1, "k", None, (40, 50)),
    ];
    assert_linearizable(&history);
}

#[test]
fn unknown_write_that_took_effect() {
    let history = [
        put(1, "k", "a", (0, 10)),
        unknown(put(2, "k", "b", (20, 30))),
        get(1, "k", Some("a"), (40, 50)),
        get(1, "k", Some("b"), (1000, 1010)),
    ];
    assert_linearizable(&history);
}

#[test]
fn unknown_write_that_never_took_effect() {
    let history = [
        put(1, "k", "a", (0, 10)),
        unknown(put(2, "k", "b", (20, 30))),
        unknown(cas(3, "k", Some("a"), "c", true, (20, 30))),
        unknown(delete(4, "k", (20, 30))),
        get(1, "k", Some("a"), (1000, 1010)),
    ];
    assert_linearizable(&history);
}

#[test]
fn unknown_cas_that_took_effect() {
    let history = [
        put(1, "k", "a", (0, 10)),
        unknown(cas(2, "k", Some("a"), "b", false, (20, 30))),
        get(1, "k", Some("b"), (1000, 1010)),
    ];
    assert_linearizable(&history);
}

#[test]
fn failed_operations_never_took_effect() {
    let history = [
        put(1, "k", "a", (0, 10)),
        failed(put(2, "k", "b", (20, 30))),
        get(1, "k", Some("b"), (40, 50)),
    ];
    assert_not_linearizable(&history, "k");
    let history = [
        put(1, "k", "a", (0, 10)),
        failed(put(2, "k", "b", (20, 30))),
        get(1, "k", Some("a"), (40, 50)),
    ];
    assert_linearizable(&history);
}

#[test]
fn unknown_gets_are_ignored() {
    let history = [
        put(1, "k", "a", (0, 10)),
        unknown(get(2, "k", Some("zzz"), (20, 30))),
    ];
    let report = check(&history);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!(report.operations_checked, 1);
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    // The get is invoked at the nanosecond the put completes, so it may be
    // ordered before the put.
    let history = [put(1, "k", "a", (0, 10)), get(2, "k", None, (10, 20))];
    assert_linearizable(&history);
    let history = [put(1, "k", "a", (0, 10)), get(2, "k", None, (11, 20))];
    assert_not_linearizable(&history, "k");
}

#[test]
fn keys_are_independent() {
    let history = [
        put(1, "x", "a", (0, 100)),
        put(2, "y", "b", (0, 100)),
        get(1, "y", Some("b"), (110, 120)),
        get(2, "x", Some("a"), (110, 120)),
        get(3, "z", None, (0, 5)),
    ];
    let report = check(&history);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!((report.keys_checked, report.operations_checked), (3, 5));
}

#[test]
fn stale_read_is_not_linearizable() {
    let history = [
        put(1, "k", "w1", (0, 10)),
        put(2, "k", "w2", (20, 30)),
        get(3, "k", Some("w1"), (40, 50)),
    ];
    let detail = assert_not_linearizable(&history, "k");
    assert!(detail.contains("2 of 3"), "{detail}");
    assert!(detail.contains(r#"holds "w2""#), "{detail}");
    assert!(detail.contains(r#"get "k" -> "w1""#), "{detail}");
}

#[test]
fn lost_write_is_not_linearizable() {
    let history = [
        get(1, "k", None, (0, 10)),
        put(1, "k", "a", (20, 30)),
        get(2, "k", None, (40, 50)),
    ];
    assert_not_linearizable(&history, "k");
    let history = [
        put(1, "k", "a", (0, 10)),
        put(1, "k", "b", (20, 30)),
        get(2, "k", Some("a"), (40, 50)),
    ];
    assert_not_linearizable(&history, "k");
}

#[test]
fn cas_that_could_not_match_is_not_linearizable() {
    let history = [
        put(1, "k", "a", (0, 10)),
        cas(2, "k", Some("b"), "c", true, (20, 30)),
    ];
    assert_not_linearizable(&history, "k");
    let history = [cas(2, "k", None, "c", false, (0, 30))];
    assert_not_linearizable(&history, "k");
}

#[test]
fn reads_in_an_impossible_order_are_not_linearizable() {
    // Once b is visible, a cannot come back: no write of a follows b.
    let history = [
        put(1, "k", "a", (0, 10)),
        put(2, "k", "b", (20, 100)),
        get(3, "k", Some("b"), (30, 40)),
        get(3, "k", Some("a"), (50, 60)),
    ];
    assert_not_linearizable(&history, "k");
}

#[test]
fn unknown_write_cannot_take_effect_before_its_invoke() {
    let history = [
        get(1, "k", Some("a"), (0, 10)),
        unknown(put(2, "k", "a", (20, 30))),
    ];
    assert_not_linearizable(&history, "k");
}

#[test]
fn first_bad_key_is_reported() {
    let history = [
        put(1, "a", "x", (0, 10)),
        get(1, "a", Some("x"), (20, 30)),
        put(1, "b", "x", (0, 10)),
        get(1, "b", Some("y"), (20, 30)),
        put(1, "c", "x", (0, 10)),
        get(1, "c", Some("y"), (20, 30)),
    ];
    let report = check(&history);
    assert!(
        matches!(&report.verdict, Verdict::NotLinearizable { key, .. } if key == "b"),
        "{report:?}"
    );
    assert_eq!(report.keys_checked, 2);
}

#[test]
fn many_unknown_writes_do_not_blow_up_a_failing_search() {
    let mut history = vec![put(1, "k", "a", (0, 10))];
    for client in 0..60 {
        history.push(unknown(put(
            client + 10,
            "k",
            &format!("u{client}"),
            (client, client + 5),
        )));
    }
    for round in 0..20 {
        history.push(get(2, "k", Some("a"), (100 + round * 10, 105 + round * 10)));
    }
    history.push(get(2, "k", Some("never written"), (1000, 1010)));
    let report = check(&history);
    assert!(
        matches!(report.verdict, Verdict::NotLinearizable { .. }),
        "{report:?}"
    );
    assert!(report.steps < 100_000, "{} steps", report.steps);
}

#[test]
fn exhausted_budget_is_unknown() {
    let history: Vec<Operation> = (0..10)
        .map(|client| put(client, "k", "v", (0, 100)))
        .collect();
    let budget = CheckBudget {
        steps_max: 3,
        ..CheckBudget::default()
    };
    let report = check_history(&history, budget).expect("valid history");
    assert!(
        matches!(&report.verdict, Verdict::Unknown { key, .. } if key == "k"),
        "{report:?}"
    );
    assert_eq!(report.steps, 3);
    // A later key that is not linearizable still wins over an unknown one.
    let mut history = history;
    history.extend([
        put(1, "later", "a", (0, 10)),
        get(1, "later", None, (20, 30)),
    ]);
    let report = check_history(&history, budget).expect("valid history");
    assert!(
        matches!(&report.verdict, Verdict::NotLinearizable { key, .. } if key == "later"),
        "{report:?}"
    );
}

#[test]
fn invalid_operations_are_errors() {
    let mut bad = put(1, "k", "a", (0, 10));
    bad.value = None;
    let error = check_history(&[get(1, "k", None, (0, 1)), bad], CheckBudget::default())
        .expect_err("a put needs a value");
    assert!(
        matches!(error, CheckError::InvalidOperation { index: 1, .. }),
        "{error}"
    );
}
