use super::{
    parse_history, read_history, HistoryError, InvalidOperation, Operation, OperationKind, Outcome,
    Output,
};

fn cas_operation() -> Operation {
    Operation {
        client: 3,
        kind: OperationKind::Cas,
        key: "k".to_owned(),
        value: Some("new".to_owned()),
        expected: None,
        output: Output::Cas(true),
        invoke_ns: 100,
        complete_ns: 250,
        outcome: Outcome::Ok,
    }
}

const CAS_LINE: &str = r#"{"client":3,"kind":"cas","key":"k","value":"new","expected":null,"output":true,"invoke":100,"complete":250,"outcome":"ok"}"#;

const GET_LINE: &str = r#"{"client":1,"kind":"get","key":"k","value":null,"expected":null,"output":"v","invoke":5,"complete":9,"outcome":"ok"}"#;

#[test]
fn writes_exactly_the_documented_field_names() {
    assert_eq!(cas_operation().to_json_line(), CAS_LINE);
}

#[test]
fn round_trips_every_kind_and_outcome() {
    let mut operations = vec![cas_operation()];
    let mut get = cas_operation();
    get.kind = OperationKind::Get;
    get.value = None;
    get.output = Output::Value(None);
    operations.push(get.clone());
    get.output = Output::Value(Some("x".to_owned()));
    get.outcome = Outcome::Unknown;
    operations.push(get);
    let mut put = cas_operation();
    put.kind = OperationKind::Put;
    put.output = Output::None;
    put.outcome = Outcome::Failed;
    operations.push(put.clone());
    put.kind = OperationKind::Delete;
    put.value = None;
    operations.push(put);
    let mut cas = cas_operation();
    cas.expected = Some("old".to_owned());
    cas.output = Output::None;
    cas.outcome = Outcome::Unknown;
    operations.push(cas);

    let text: String = operations
        .iter()
        .map(|operation| operation.to_json_line() + "\n")
        .collect();
    assert_eq!(
        parse_history(&text).expect("written lines parse"),
        operations
    );
    for operation in &operations {
        let parsed: Operation =
            serde_json::from_str(&operation.to_json_line()).expect("serde round trip");
        assert_eq!(&parsed, operation);
    }
}

#[test]
fn parses_a_get_and_skips_blank_lines() {
    let text = format!("\n{GET_LINE}\n   \n{CAS_LINE}\n");
    let operations = parse_history(&text).expect("valid history");
    assert_eq!(operations.len(), 2);
    assert_eq!(operations[0].output, Output::Value(Some("v".to_owned())));
    assert_eq!((operations[0].invoke_ns, operations[0].complete_ns), (5, 9));
    assert_eq!(operations[1], cas_operation());
}

/// Parses `bad` as the third line of a history and returns the error.
fn error_on_line_three(bad: &str) -> HistoryError {
    let text = format!("{GET_LINE}\n\n{bad}\n{GET_LINE}\n");
    let error = parse_history(&text).expect_err("the third line is malformed");
    assert_eq!(error.line(), 3, "{error}");
    assert!(error.to_string().starts_with("line 3"), "{error}");
    error
}

#[test]
fn bad_kind_is_a_syntax_error_with_its_line() {
    let error = error_on_line_three(&GET_LINE.replace(r#""get""#, r#""scan""#));
    assert!(
        matches!(&error, HistoryError::Syntax { message, .. } if message.contains("scan")),
        "{error}"
    );
    assert!(!error.to_string().contains("line 1"), "{error}");
}

#[test]
fn missing_field_is_a_syntax_error_with_its_line() {
    let error = error_on_line_three(&GET_LINE.replace(r#""expected":null,"#, ""));
    assert!(
        matches!(&error, HistoryError::Syntax { message, .. } if message.contains("expected")),
        "{error}"
    );
    let error = error_on_line_three(&GET_LINE.replace(r#","outcome":"ok""#, ""));
    assert!(
        matches!(&error, HistoryError::Syntax { message, .. } if message.contains("outcome")),
        "{error}"
    );
}

#[test]
fn bad_json_is_a_syntax_error_with_its_line() {
    let error = error_on_line_three(r#"{"client":1,"kind":"#);
    assert!(matches!(error, HistoryError::Syntax { .. }));
    let error = error_on_line_three("not json");
    assert!(
        matches!(error, HistoryError::Syntax { column: 1..=2, .. }),
        "{error}"
    );
    let error = error_on_line_three(&GET_LINE.replace("\"client\":1", "\"client\":-1"));
    assert!(matches!(error, HistoryError::Syntax { .. }));
    let error = error_on_line_three(&GET_LINE.replace("\"client\"", "\"customer\""));
    assert!(matches!(error, HistoryError::Syntax { .. }));
}

#[test]
fn inconsistent_fields_are_invalid_with_their_line() {
    let cases = [
        (
            CAS_LINE.replace(r#""value":"new""#, r#""value":null"#),
            InvalidOperation::ValueMissing {
                kind: OperationKind::Cas,
            },
        ),
        (
            GET_LINE.replace(r#""value":null"#, r#""value":"x""#),
            InvalidOperation::ValueUnexpected {
                kind: OperationKind::Get,
            },
        ),
        (
            GET_LINE.replace(r#""expected":null"#, r#""expected":"x""#),
            InvalidOperation::ExpectedUnexpected {
                kind: OperationKind::Get,
            },
        ),
        (
            GET_LINE.replace(r#""output":"v""#, r#""output":7"#),
            InvalidOperation::OutputShape {
                kind: OperationKind::Get,
                found: "7".to_owned(),
            },
        ),
        (
            CAS_LINE.replace(r#""output":true"#, r#""output":null"#),
            InvalidOperation::OutputMismatch {
                kind: OperationKind::Cas,
                outcome: Outcome::Ok,
                found: Output::None,
            },
        ),
        (
            GET_LINE.replace(r#""complete":9"#, r#""complete":4"#),
            InvalidOperation::CompleteBeforeInvoke {
                invoke_ns: 5,
                complete_ns: 4,
            },
        ),
    ];
    for (line, expected) in cases {
        match error_on_line_three(&line) {
            HistoryError::Invalid { line: 3, reason } => assert_eq!(reason, expected),
            other => panic!("expected an invalid operation on line 3, got {other}"),
        }
    }
}

#[test]
fn validate_rejects_programmatic_mismatches() {
    let mut get = cas_operation();
    get.kind = OperationKind::Get;
    get.value = None;
    get.output = Output::None;
    assert!(matches!(
        get.validate(),
        Err(InvalidOperation::OutputMismatch { .. })
    ));
    let mut put = cas_operation();
    put.kind = OperationKind::Put;
    assert!(matches!(
        put.validate(),
        Err(InvalidOperation::OutputMismatch { .. })
    ));
    put.output = Output::None;
    put.expected = Some("x".to_owned());
    assert!(matches!(
        put.validate(),
        Err(InvalidOperation::ExpectedUnexpected { .. })
    ));
}

#[test]
fn reads_from_a_reader_and_reports_unreadable_lines() {
    let text = format!("{GET_LINE}\n{CAS_LINE}\n");
    let operations = read_history(text.as_bytes()).expect("valid history");
    assert_eq!(operations.len(), 2);

    let mut bytes = format!("{GET_LINE}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    let error = read_history(bytes.as_slice()).expect_err("not UTF-8");
    assert!(
        matches!(error, HistoryError::Read { line: 2, .. }),
        "{error}"
    );
}

/// A reader without line breaks (`/dev/zero`, say) is refused at the line
/// limit instead of being read until the memory runs out; lines within the
/// limit read as before, a last line without a break included.
#[test]
fn a_line_past_the_limit_is_refused_not_read_to_the_end() {
    let endless = std::io::BufReader::new(std::io::repeat(0));
    let error = super::read_history_lines(endless, 1024).expect_err("too long");
    assert!(
        matches!(
            error,
            HistoryError::LineTooLong {
                line: 1,
                line_bytes_max: 1024
            }
        ),
        "{error}"
    );
    // Each line exactly at the limit, one ended by "\r\n", one by the end.
    for (first, last) in [(GET_LINE, CAS_LINE), (CAS_LINE, GET_LINE)] {
        let text = format!("{first}\r\n{last}");
        let limit = first.len().max(last.len());
        let operations =
            super::read_history_lines(text.as_bytes(), limit).expect("within the limit");
        assert_eq!(operations.len(), 2);
        let error = super::read_history_lines(text.as_bytes(), limit - 1).expect_err("too long");
        assert!(matches!(error, HistoryError::LineTooLong { .. }), "{error}");
    }
}

#[test]
fn displays_operations_for_people() {
    assert_eq!(
        cas_operation().to_string(),
        r#"client 3: cas "k" if absent then "new" -> true [ok, 100..250 ns]"#
    );
    let get = parse_history(GET_LINE).expect("valid")[0].clone();
    assert_eq!(get.to_string(), r#"client 1: get "k" -> "v" [ok, 5..9 ns]"#);
}
