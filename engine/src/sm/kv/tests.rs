use proptest::prelude::*;

use super::*;

fn apply(machine: &mut KvMachine, command: &KvCommand) -> KvResponse {
    let response = machine.apply(Slot(1), &command.encode());
    KvResponse::decode(&response).expect("the kv machine always answers with an encoded response")
}

fn put(key: &[u8], value: &[u8]) -> KvCommand {
    KvCommand::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn get(key: &[u8]) -> KvCommand {
    KvCommand::Get { key: key.to_vec() }
}

fn cas(key: &[u8], expected: Option<&[u8]>, new: &[u8]) -> KvCommand {
    KvCommand::Cas {
        key: key.to_vec(),
        expected: expected.map(<[u8]>::to_vec),
        new: new.to_vec(),
    }
}

#[test]
fn put_get_delete() {
    let mut machine = KvMachine::new();
    assert_eq!(apply(&mut machine, &get(b"a")), KvResponse::Value(None));
    assert_eq!(apply(&mut machine, &put(b"a", b"1")), KvResponse::Done);
    assert_eq!(
        apply(&mut machine, &get(b"a")),
        KvResponse::Value(Some(b"1".to_vec()))
    );
    assert_eq!(machine.value(b"a"), Some(&b"1"[..]));
    assert_eq!(apply(&mut machine, &put(b"a", b"2")), KvResponse::Done);
    assert_eq!(machine.value(b"a"), Some(&b"2"[..]));
    assert_eq!(
        apply(&mut machine, &KvCommand::Delete { key: b"a".to_vec() }),
        KvResponse::Done
    );
    assert_eq!(machine.value(b"a"), None);
    // Deleting an absent key is not an error.
    assert_eq!(
        apply(&mut machine, &KvCommand::Delete { key: b"a".to_vec() }),
        KvResponse::Done
    );
    assert_eq!(machine.key_count(), 0);
}

#[test]
fn cas_semantics() {
    let mut machine = KvMachine::new();
    // Expected None means "absent": it holds on an empty map.
    assert_eq!(
        apply(&mut machine, &cas(b"k", None, b"1")),
        KvResponse::Swapped(true)
    );
    assert_eq!(machine.value(b"k"), Some(&b"1"[..]));
    // Now the key is present, so "absent" no longer holds.
    assert_eq!(
        apply(&mut machine, &cas(b"k", None, b"2")),
        KvResponse::Swapped(false)
    );
    assert_eq!(machine.value(b"k"), Some(&b"1"[..]));
    // A wrong expected value fails and changes nothing.
    assert_eq!(
        apply(&mut machine, &cas(b"k", Some(b"9"), b"2")),
        KvResponse::Swapped(false)
    );
    assert_eq!(machine.value(b"k"), Some(&b"1"[..]));
    // The right one swaps.
    assert_eq!(
        apply(&mut machine, &cas(b"k", Some(b"1"), b"2")),
        KvResponse::Swapped(true)
    );
    assert_eq!(machine.value(b"k"), Some(&b"2"[..]));
    // An expected value on an absent key fails; an empty value is not "absent".
    assert_eq!(
        apply(&mut machine, &cas(b"x", Some(b""), b"3")),
        KvResponse::Swapped(false)
    );
    assert_eq!(machine.value(b"x"), None);
    assert_eq!(apply(&mut machine, &put(b"e", b"")), KvResponse::Done);
    assert_eq!(
        apply(&mut machine, &cas(b"e", None, b"4")),
        KvResponse::Swapped(false)
    );
    assert_eq!(
        apply(&mut machine, &cas(b"e", Some(b""), b"4")),
        KvResponse::Swapped(true)
    );
    assert_eq!(machine.value(b"e"), Some(&b"4"[..]));
}

#[test]
fn malformed_payload_is_an_error_response_and_changes_nothing() {
    let mut machine = KvMachine::new();
    assert_eq!(apply(&mut machine, &put(b"a", b"1")), KvResponse::Done);
    let before = machine.clone();
    for payload in [&[][..], &[0][..], &[99, 1, 2][..], &[COMMAND_PUT, 200][..]] {
        let response = KvResponse::decode(&machine.apply(Slot(2), payload))
            .expect("the kv machine always answers with an encoded response");
        assert!(
            matches!(response, KvResponse::Error(_)),
            "{payload:?} gave {response:?}"
        );
    }
    // Trailing bytes after a valid command are malformed too.
    let mut padded = put(b"b", b"2").encode();
    padded.push(0);
    let response = KvResponse::decode(&machine.apply(Slot(3), &padded))
        .expect("the kv machine always answers with an encoded response");
    assert!(matches!(response, KvResponse::Error(_)));
    assert_eq!(machine, before);
}

#[test]
fn query_serves_only_gets() {
    let mut machine = KvMachine::new();
    apply(&mut machine, &put(b"a", b"1"));
    let answer = machine.query(&get(b"a").encode()).expect("a get is a read");
    assert_eq!(
        KvResponse::decode(&answer),
        Ok(KvResponse::Value(Some(b"1".to_vec())))
    );
    let answer = machine
        .query(&get(b"zz").encode())
        .expect("a get is a read");
    assert_eq!(KvResponse::decode(&answer), Ok(KvResponse::Value(None)));
    assert!(matches!(
        machine.query(&put(b"a", b"2").encode()),
        Err(QueryError::Unsupported { .. })
    ));
    assert!(matches!(
        machine.query(b"\xff"),
        Err(QueryError::Malformed { .. })
    ));
    assert_eq!(machine.value(b"a"), Some(&b"1"[..]));
}

#[test]
fn snapshot_round_trip() {
    let mut machine = KvMachine::new();
    for index in 0..50_u8 {
        apply(&mut machine, &put(&[index, 7], &[index; 3]));
    }
    apply(&mut machine, &put(b"", b""));
    let snapshot = machine.snapshot();
    let mut restored = KvMachine::new();
    apply(&mut restored, &put(b"stale", b"gone after restore"));
    restored.restore(&snapshot).expect("a snapshot restores");
    assert_eq!(restored, machine);
    assert_eq!(restored.snapshot(), snapshot);
}

#[test]
fn restore_of_garbage_fails_and_leaves_the_machine_unchanged() {
    let mut machine = KvMachine::new();
    apply(&mut machine, &put(b"a", b"1"));
    let before = machine.clone();
    let good = machine.snapshot();

    let mut wrong_version = good.clone();
    wrong_version[0] = 9;
    assert_eq!(
        machine.restore(&wrong_version),
        Err(SnapshotError::UnsupportedVersion { version: 9 })
    );

    let mut huge_count = vec![SNAPSHOT_VERSION];
    huge_count.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut trailing = good.clone();
    trailing.push(0);
    let truncated = &good[..good.len() - 1];
    for garbage in [
        &[][..],
        truncated,
        &trailing,
        &huge_count,
        b"not a snapshot at all",
    ] {
        assert!(machine.restore(garbage).is_err(), "{garbage:?} restored");
    }
    assert_eq!(machine, before);
}

#[test]
fn restore_rejects_keys_out_of_order() {
    let mut writer = Writer::new();
    writer.u8(SNAPSHOT_VERSION);
    writer.length(2);
    for key in [b"b", b"a"] {
        writer.bytes(key);
        writer.bytes(b"v");
    }
    let mut machine = KvMachine::new();
    assert!(matches!(
        machine.restore(&writer.finish()),
        Err(SnapshotError::Malformed { .. })
    ));
    assert_eq!(machine.key_count(), 0);
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..24)
}

fn command_strategy() -> impl Strategy<Value = KvCommand> {
    prop_oneof![
        (bytes_strategy(), bytes_strategy()).prop_map(|(key, value)| KvCommand::Put { key, value }),
        bytes_strategy().prop_map(|key| KvCommand::Delete { key }),
        (
            bytes_strategy(),
            proptest::option::of(bytes_strategy()),
            bytes_strategy()
        )
            .prop_map(|(key, expected, new)| KvCommand::Cas { key, expected, new }),
        bytes_strategy().prop_map(|key| KvCommand::Get { key }),
    ]
}

fn response_strategy() -> impl Strategy<Value = KvResponse> {
    prop_oneof![
        Just(KvResponse::Done),
        proptest::option::of(bytes_strategy()).prop_map(KvResponse::Value),
        any::<bool>().prop_map(KvResponse::Swapped),
        ".{0,20}".prop_map(KvResponse::Error),
    ]
}

proptest! {
    #[test]
    fn command_round_trip(command in command_strategy()) {
        prop_assert_eq!(KvCommand::decode(&command.encode()), Ok(command));
    }

    #[test]
    fn response_round_trip(response in response_strategy()) {
        prop_assert_eq!(KvResponse::decode(&response.encode()), Ok(response));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = KvCommand::decode(&bytes);
        let _ = KvResponse::decode(&bytes);
        let mut machine = KvMachine::new();
        if machine.restore(&bytes).is_err() {
            prop_assert_eq!(machine.key_count(), 0);
        }
        let _ = machine.query(&bytes);
        let response = machine.apply(Slot(1), &bytes);
        prop_assert!(KvResponse::decode(&response).is_ok());
    }

    #[test]
    fn snapshot_round_trip_of_any_history(commands in proptest::collection::vec(command_strategy(), 0..40)) {
        let mut machine = KvMachine::new();
        for command in &commands {
            machine.apply(Slot(1), &command.encode());
        }
        let mut restored = KvMachine::new();
        restored.restore(&machine.snapshot()).expect("a snapshot restores");
        prop_assert_eq!(&restored, &machine);
    }
}

proptest! {
    #[test]
    fn decoding_damaged_encodings_never_panics(
        command in command_strategy(),
        response in response_strategy(),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut bytes in [command.encode(), response.encode()] {
            let index = position.index(bytes.len());
            bytes[index] = value;
            let _ = KvCommand::decode(&bytes);
            let _ = KvResponse::decode(&bytes);
            bytes.truncate(cut.index(bytes.len()));
            let _ = KvCommand::decode(&bytes);
            let _ = KvResponse::decode(&bytes);
        }
    }

    #[test]
    fn restoring_a_damaged_snapshot_never_panics(
        commands in proptest::collection::vec(command_strategy(), 1..10),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut machine = KvMachine::new();
        for command in &commands {
            machine.apply(Slot(1), &command.encode());
        }
        let mut bytes = machine.snapshot();
        let index = position.index(bytes.len());
        bytes[index] = value;
        let mut restored = KvMachine::new();
        match restored.restore(&bytes) {
            // A damaged snapshot that still decodes must be canonical.
            Ok(()) => prop_assert_eq!(restored.snapshot(), bytes),
            Err(_) => prop_assert_eq!(restored.key_count(), 0),
        }
    }
}
