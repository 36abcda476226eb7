use super::*;
use crate::sm::{KvCommand, KvMachine, KvResponse};
use crate::wire::{BatchBody, Command};

mod properties;

const SECOND_NS: u64 = 1_000_000_000;

/// A machine that records every application; its response names the slot
/// and how many applications came before, so a second application of the
/// same command would answer differently from the first.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
struct Recorder {
    applied: Vec<(Slot, Vec<u8>)>,
}

impl Recorder {
    fn application_count(&self, payload: &[u8]) -> usize {
        self.applied
            .iter()
            .filter(|(_, applied)| applied == payload)
            .count()
    }
}

impl StateMachine for Recorder {
    fn apply(&mut self, slot: Slot, payload: &[u8]) -> Vec<u8> {
        self.applied.push((slot, payload.to_vec()));
        format!("{}#{}", slot.0, self.applied.len()).into_bytes()
    }

    fn query(&self, _request: &[u8]) -> Result<Vec<u8>, QueryError> {
        Ok(self.applied.len().to_string().into_bytes())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.length(self.applied.len());
        for (slot, payload) in &self.applied {
            writer.u64(slot.0);
            writer.bytes(payload);
        }
        writer.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        let mut reader = Reader::new(snapshot);
        let count = reader.count(16)?;
        let mut applied = Vec::with_capacity(count);
        for _ in 0..count {
            applied.push((Slot(reader.u64()?), reader.bytes()?.to_vec()));
        }
        reader.finish()?;
        self.applied = applied;
        Ok(())
    }
}

/// (client id, seq, acknowledged below, payload)
type Call<'a> = (u64, u64, u64, &'a [u8]);

fn batch(proposed_at_ns: u64, calls: &[Call<'_>]) -> Batch {
    let commands = calls
        .iter()
        .map(|&(client_id, seq, acknowledged_below, payload)| Command {
            client_id,
            seq,
            acknowledged_below,
            payload: payload.to_vec(),
        })
        .collect();
    Batch::encode(&BatchBody {
        proposed_at_ns,
        commands,
    })
}

/// Applies the next slot and returns the results in command order.
fn step<M: StateMachine>(
    replicated: &mut Replicated<M>,
    proposed_at_ns: u64,
    calls: &[Call<'_>],
) -> Vec<Result<Vec<u8>, SessionError>> {
    let slot = replicated.applied_slot().next();
    let outcomes = replicated.apply(slot, &batch(proposed_at_ns, calls));
    assert_eq!(outcomes.len(), calls.len());
    for (outcome, call) in outcomes.iter().zip(calls) {
        assert_eq!(
            (outcome.client_id, outcome.seq),
            (ClientId(call.0), Seq(call.1))
        );
    }
    outcomes.into_iter().map(|outcome| outcome.result).collect()
}

fn recorder(config: SessionConfig) -> Replicated<Recorder> {
    Replicated::new(Recorder::default(), config)
}

fn ok(text: &str) -> Result<Vec<u8>, SessionError> {
    Ok(text.as_bytes().to_vec())
}

#[test]
fn retry_returns_the_first_result_and_applies_once() {
    let mut replicated = recorder(SessionConfig::default());
    assert_eq!(
        step(&mut replicated, 1, &[(7, 0, 0, b"")]),
        [Ok(Vec::new())]
    );
    assert_eq!(step(&mut replicated, 2, &[(7, 1, 0, b"x")]), [ok("2#1")]);
    // The retry commits again in a later slot, even twice in one batch.
    assert_eq!(
        step(&mut replicated, 3, &[(7, 1, 0, b"x"), (7, 1, 0, b"x")]),
        [ok("2#1"), ok("2#1")]
    );
    assert_eq!(replicated.machine().application_count(b"x"), 1);
    assert_eq!(
        replicated.cached_result(ClientId(7), Seq(1)),
        Some(ok("2#1"))
    );
}

#[test]
fn kv_compare_and_swap_retry_keeps_its_first_answer() {
    let mut replicated = Replicated::new(KvMachine::new(), SessionConfig::default());
    let cas = KvCommand::Cas {
        key: b"k".to_vec(),
        expected: None,
        new: b"v".to_vec(),
    }
    .encode();
    step(&mut replicated, 1, &[(1, 0, 0, b"")]);
    let first = step(&mut replicated, 1, &[(1, 1, 0, &cas)]);
    let retry = step(&mut replicated, 1, &[(1, 1, 0, &cas)]);
    assert_eq!(first, retry);
    let answer = first[0].clone().expect("the session is open");
    assert_eq!(KvResponse::decode(&answer), Ok(KvResponse::Swapped(true)));
    assert_eq!(replicated.machine().value(b"k"), Some(&b"v"[..]));
}

#[test]
fn pipelined_sequence_numbers_out_of_order_apply_once_each() {
    let mut replicated = recorder(SessionConfig::default());
    step(&mut replicated, 1, &[(3, 0, 0, b"")]);
    // Seq 5 and 2 commit before 4, 1 and 3 (a leader change reordered them).
    let first = step(&mut replicated, 2, &[(3, 5, 1, b"five"), (3, 2, 1, b"two")]);
    let second = step(
        &mut replicated,
        3,
        &[(3, 4, 1, b"four"), (3, 1, 1, b"one"), (3, 3, 1, b"three")],
    );
    // Then every one of them is retried.
    let retried = step(
        &mut replicated,
        4,
        &[
            (3, 1, 1, b"one"),
            (3, 2, 1, b"two"),
            (3, 3, 1, b"three"),
            (3, 4, 1, b"four"),
            (3, 5, 1, b"five"),
        ],
    );
    assert_eq!(
        retried,
        [&second[1], &first[1], &second[2], &second[0], &first[0]].map(Clone::clone)
    );
    for payload in [&b"one"[..], b"two", b"three", b"four", b"five"] {
        assert_eq!(
            replicated.machine().application_count(payload),
            1,
            "{payload:?}"
        );
    }
}

#[test]
fn acknowledged_below_forgets_results_and_rejects_stale_sequence_numbers() {
    let mut replicated = recorder(SessionConfig::default());
    step(
        &mut replicated,
        1,
        &[
            (9, 0, 0, b""),
            (9, 1, 0, b"a"),
            (9, 2, 0, b"b"),
            (9, 3, 0, b"c"),
        ],
    );
    assert_eq!(
        replicated.cached_result(ClientId(9), Seq(2)),
        Some(ok("1#2"))
    );
    // Seq 4 tells the table that 1 and 2 were answered.
    assert_eq!(step(&mut replicated, 2, &[(9, 4, 3, b"d")]), [ok("2#4")]);
    assert_eq!(
        replicated.cached_result(ClientId(9), Seq(2)),
        Some(Err(SessionError::AlreadyAcknowledged))
    );
    assert_eq!(
        replicated.cached_result(ClientId(9), Seq(3)),
        Some(ok("1#3"))
    );
    let stale = step(
        &mut replicated,
        3,
        &[(9, 1, 0, b"a"), (9, 2, 0, b"b"), (9, 3, 0, b"c")],
    );
    assert_eq!(
        stale,
        [
            Err(SessionError::AlreadyAcknowledged),
            Err(SessionError::AlreadyAcknowledged),
            ok("1#3")
        ]
    );
    // A lower mark in a late command does not lower the session's mark.
    assert_eq!(
        replicated
            .sessions
            .session(ClientId(9))
            .map(|session| session.cached(Seq(2))),
        Some(Some(Err(SessionError::AlreadyAcknowledged)))
    );
    assert_eq!(replicated.machine().application_count(b"a"), 1);
    assert_eq!(replicated.machine().applied.len(), 4);
}

#[test]
fn window_exceeded_until_the_mark_rises() {
    let config = SessionConfig {
        window_seq_count: 4,
        ..SessionConfig::default()
    };
    let mut replicated = recorder(config);
    step(&mut replicated, 1, &[(1, 0, 0, b"")]);
    // Mark 1, window 4: seqs 1..=4 fit, 5 does not.
    assert_eq!(step(&mut replicated, 2, &[(1, 4, 1, b"four")]), [ok("2#1")]);
    assert_eq!(
        step(&mut replicated, 2, &[(1, 5, 1, b"five")]),
        [Err(SessionError::WindowExceeded)]
    );
    assert_eq!(
        step(&mut replicated, 2, &[(1, u64::MAX, 0, b"far")]),
        [Err(SessionError::WindowExceeded)]
    );
    assert_eq!(replicated.machine().application_count(b"five"), 0);
    // The client acknowledges 1 and 2; now 5 and 6 fit.
    assert_eq!(step(&mut replicated, 3, &[(1, 5, 3, b"five")]), [ok("5#2")]);
    assert_eq!(step(&mut replicated, 3, &[(1, 6, 3, b"six")]), [ok("6#3")]);
    assert_eq!(
        step(&mut replicated, 3, &[(1, 7, 3, b"seven")]),
        [Err(SessionError::WindowExceeded)]
    );
}

#[test]
fn sessions_expire_by_batch_timestamp() {
    let config = SessionConfig {
        ttl_ns: 10 * SECOND_NS,
        ..SessionConfig::default()
    };
    let mut replicated = recorder(config);
    step(
        &mut replicated,
        SECOND_NS,
        &[(1, 0, 0, b""), (2, 0, 0, b"")],
    );
    // Client 2 keeps its session alive at 6 s; client 1 is idle since 1 s.
    step(&mut replicated, 6 * SECOND_NS, &[(2, 1, 0, b"keep")]);
    // Exactly ttl after the last command is not yet expired.
    step(&mut replicated, 11 * SECOND_NS, &[]);
    assert_eq!(replicated.session_count(), 2);
    // A later leader with a lagging clock does not move time backwards.
    step(&mut replicated, 3 * SECOND_NS, &[]);
    assert_eq!(replicated.clock_ns(), 11 * SECOND_NS);
    let results = step(
        &mut replicated,
        11 * SECOND_NS + 1,
        &[(1, 1, 0, b"late"), (2, 2, 0, b"on time")],
    );
    assert_eq!(results[0], Err(SessionError::Expired));
    assert!(results[1].is_ok());
    assert!(!replicated.has_session(ClientId(1)));
    assert_eq!(replicated.machine().application_count(b"late"), 0);
    assert_eq!(replicated.cached_result(ClientId(1), Seq(1)), None);
}

#[test]
fn a_command_without_an_open_session_is_expired() {
    let mut replicated = recorder(SessionConfig::default());
    assert_eq!(
        step(&mut replicated, 1, &[(5, 1, 0, b"x")]),
        [Err(SessionError::Expired)]
    );
    assert_eq!(replicated.session_count(), 0);
    assert!(replicated.machine().applied.is_empty());
}

#[test]
fn opening_is_idempotent() {
    let mut replicated = recorder(SessionConfig::default());
    step(
        &mut replicated,
        1,
        &[(4, 0, 0, b""), (4, 1, 0, b"x"), (4, 2, 2, b"y")],
    );
    let before = replicated.sessions.session(ClientId(4)).cloned();
    assert_eq!(
        step(&mut replicated, 1, &[(4, 0, 0, b""), (4, 0, 0, b"")]),
        [Ok(Vec::new()), Ok(Vec::new())]
    );
    assert_eq!(replicated.sessions.session(ClientId(4)).cloned(), before);
    assert_eq!(replicated.session_count(), 1);
    // Reopening touches: the session outlives the ttl from its first open.
    let config = SessionConfig {
        ttl_ns: 10,
        ..SessionConfig::default()
    };
    let mut replicated = recorder(config);
    step(&mut replicated, 0, &[(4, 0, 0, b"")]);
    step(&mut replicated, 8, &[(4, 0, 0, b"")]);
    step(&mut replicated, 15, &[]);
    assert!(replicated.has_session(ClientId(4)));
}

#[test]
fn a_full_table_evicts_the_least_recently_active_session_lowest_id_first() {
    let config = SessionConfig {
        sessions_max: 3,
        ..SessionConfig::default()
    };
    let mut replicated = recorder(config);
    step(
        &mut replicated,
        1,
        &[(30, 0, 0, b""), (10, 0, 0, b""), (20, 0, 0, b"")],
    );
    // All three were active at 1; the tie goes to the lowest client id.
    step(&mut replicated, 2, &[(40, 0, 0, b"")]);
    assert!(!replicated.has_session(ClientId(10)));
    // Client 20 becomes active at 3, so 30 (active at 1) goes next.
    step(&mut replicated, 3, &[(20, 1, 0, b"x"), (50, 0, 0, b"")]);
    assert!(!replicated.has_session(ClientId(30)));
    assert!([20, 40, 50]
        .iter()
        .all(|&client| replicated.has_session(ClientId(client))));
    assert_eq!(replicated.session_count(), 3);
    assert_eq!(
        step(&mut replicated, 4, &[(10, 1, 0, b"evicted")]),
        [Err(SessionError::Expired)]
    );
}

/// A history that touches every part of the table.
fn busy_history() -> Vec<(u64, Vec<Call<'static>>)> {
    vec![
        (5, vec![(1, 0, 0, b""), (2, 0, 0, b""), (3, 0, 0, b"")]),
        (6, vec![(1, 1, 0, b"a"), (1, 3, 0, b"c"), (2, 1, 0, b"d")]),
        (
            7,
            vec![(1, 2, 2, b"b"), (1, 1, 0, b"a"), (9, 1, 0, b"nobody")],
        ),
        (3, vec![(2, 2, 2, b"e"), (3, 1, 0, b"f")]),
    ]
}

fn the_future() -> Vec<(u64, Vec<Call<'static>>)> {
    vec![
        (8, vec![(1, 3, 1, b"c"), (1, 4, 3, b"g"), (2, 1, 0, b"d")]),
        (9, vec![(2, 2, 0, b"e"), (4, 0, 0, b""), (4, 1, 0, b"h")]),
        (
            100 * SECOND_NS,
            vec![(3, 2, 0, b"too late"), (4, 2, 0, b"i")],
        ),
    ]
}

fn run<M: StateMachine>(
    replicated: &mut Replicated<M>,
    history: &[(u64, Vec<Call<'static>>)],
) -> Vec<Vec<Result<Vec<u8>, SessionError>>> {
    history
        .iter()
        .map(|(at_ns, calls)| step(replicated, *at_ns, calls))
        .collect()
}

#[test]
fn snapshot_round_trip_gives_the_same_state_and_the_same_future() {
    let mut original = recorder(SessionConfig::default());
    run(&mut original, &busy_history());
    let snapshot = original.snapshot();
    assert_eq!(snapshot.slot, original.applied_slot());

    let mut restored = recorder(SessionConfig::default());
    run(&mut restored, &the_future()); // Some state of its own, to be replaced.
    restored.restore(&snapshot).expect("a snapshot restores");
    assert_eq!(restored.sessions, original.sessions);
    assert_eq!(restored.machine(), original.machine());
    assert_eq!(restored.applied_slot(), original.applied_slot());
    assert_eq!(restored.snapshot(), snapshot);
    assert_eq!(
        run(&mut restored, &the_future()),
        run(&mut original, &the_future())
    );
    assert_eq!(restored.snapshot(), original.snapshot());
}

#[test]
fn replicas_fed_the_same_batches_have_identical_snapshots() {
    let mut first = Replicated::new(KvMachine::new(), SessionConfig::default());
    let mut second = Replicated::new(KvMachine::new(), SessionConfig::default());
    let put = KvCommand::Put {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    }
    .encode();
    for replicated in [&mut first, &mut second] {
        run(replicated, &busy_history());
        step(replicated, 10, &[(1, 5, 0, &put)]);
        run(replicated, &the_future());
    }
    assert_eq!(
        first.snapshot().bytes.as_bytes(),
        second.snapshot().bytes.as_bytes()
    );
}

#[test]
fn noop_and_invalid_batches_only_advance_the_slot() {
    let mut replicated = recorder(SessionConfig::default());
    step(&mut replicated, 1, &[(1, 0, 0, b"")]);
    let sessions_before = replicated.sessions.clone();
    assert!(replicated.apply(Slot(2), &Batch::noop()).is_empty());
    let garbage = Batch::copy_from_slice(&[0xAB; 40]);
    assert!(replicated.apply(Slot(3), &garbage).is_empty());
    let mut truncated = batch(99, &[(1, 1, 0, b"x")]).as_bytes().to_vec();
    truncated.truncate(truncated.len() - 3);
    assert!(replicated
        .apply(Slot(4), &Batch::copy_from_slice(&truncated))
        .is_empty());
    assert_eq!(replicated.invalid_batch_count(), 2);
    assert_eq!(replicated.applied_slot(), Slot(4));
    assert_eq!(replicated.sessions, sessions_before);
    assert!(replicated.machine().applied.is_empty());
}

#[test]
#[should_panic(expected = "committed slots are applied in order, once")]
fn applying_a_slot_out_of_order_panics() {
    let mut replicated = recorder(SessionConfig::default());
    replicated.apply(Slot(2), &Batch::noop());
}

#[test]
#[should_panic(expected = "committed slots are applied in order, once")]
fn applying_a_slot_twice_panics() {
    let mut replicated = recorder(SessionConfig::default());
    replicated.apply(Slot(1), &Batch::noop());
    replicated.apply(Slot(1), &Batch::noop());
}

#[test]
fn restore_of_bad_snapshots_fails_and_changes_nothing() {
    let mut source = recorder(SessionConfig::default());
    run(&mut source, &busy_history());
    let good = source.snapshot();

    let mut target = recorder(SessionConfig::default());
    step(&mut target, 1, &[(8, 0, 0, b""), (8, 1, 0, b"mine")]);
    let before = target.snapshot();

    let wrong_slot = Snapshot {
        slot: Slot(good.slot.0 + 1),
        bytes: good.bytes.clone(),
    };
    assert!(matches!(
        target.restore(&wrong_slot),
        Err(SnapshotError::Malformed { .. })
    ));
    let mut bytes = good.bytes.as_bytes().to_vec();
    bytes[0] = 2;
    let versioned = Snapshot {
        slot: good.slot,
        bytes: Batch::copy_from_slice(&bytes),
    };
    assert_eq!(
        target.restore(&versioned),
        Err(SnapshotError::UnsupportedVersion { version: 2 })
    );
    let good_bytes = good.bytes.as_bytes();
    for length in 0..good_bytes.len() {
        let truncated = Snapshot {
            slot: good.slot,
            bytes: Batch::copy_from_slice(&good_bytes[..length]),
        };
        assert!(
            target.restore(&truncated).is_err(),
            "a snapshot cut at {length} bytes restored"
        );
    }
    let mut too_small = recorder(SessionConfig {
        sessions_max: 2,
        ..SessionConfig::default()
    });
    assert!(matches!(
        too_small.restore(&good),
        Err(SnapshotError::Malformed { .. })
    ));
    assert_eq!(target.snapshot(), before);
}

#[cfg(feature = "sim")]
#[test]
fn the_deliberate_bug_applies_a_retry_twice() {
    let mut replicated = recorder(SessionConfig::default());
    replicated.set_bug_apply_retries_twice(true);
    step(&mut replicated, 1, &[(7, 0, 0, b""), (7, 1, 0, b"x")]);
    let retry = step(&mut replicated, 2, &[(7, 1, 0, b"x")]);
    assert_eq!(retry, [ok("2#2")]);
    assert_eq!(replicated.machine().application_count(b"x"), 2);
    replicated.set_bug_apply_retries_twice(false);
    step(&mut replicated, 3, &[(7, 1, 0, b"x")]);
    assert_eq!(replicated.machine().application_count(b"x"), 2);
}
