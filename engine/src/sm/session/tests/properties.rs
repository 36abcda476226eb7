//! Property tests: arbitrary histories through the session table.

use proptest::prelude::*;

use super::*;

/// A generated batch: its timestamp and (client id, seq, acknowledged below) per command.
type GeneratedBatch = (u64, Vec<(u64, u64, u64)>);

fn call_strategy() -> impl Strategy<Value = (u64, u64, u64)> {
    // Few clients and small seqs, so retries, opens and stale marks collide.
    (0_u64..4, 0_u64..8, 0_u64..5)
}

fn history_strategy() -> impl Strategy<Value = Vec<GeneratedBatch>> {
    let batch = (0_u64..40, proptest::collection::vec(call_strategy(), 0..6));
    proptest::collection::vec(batch, 1..30)
}

fn run_generated(
    replicated: &mut Replicated<Recorder>,
    history: &[GeneratedBatch],
) -> Vec<Vec<Result<Vec<u8>, SessionError>>> {
    history
        .iter()
        .map(|(at_ns, calls)| {
            let payloads: Vec<Vec<u8>> = calls
                .iter()
                .map(|(client, seq, _)| format!("{client}/{seq}").into_bytes())
                .collect();
            let calls: Vec<Call<'_>> = calls
                .iter()
                .zip(&payloads)
                .map(|(&(client, seq, acknowledged_below), payload)| {
                    (client, seq, acknowledged_below, payload.as_slice())
                })
                .collect();
            step(replicated, *at_ns, &calls)
        })
        .collect()
}

proptest! {
    #[test]
    fn any_history_applies_each_command_at_most_once_and_snapshots_faithfully(
        history in history_strategy(),
        cut in 0_usize..30,
    ) {
        // The ttl outlasts every timestamp and the table holds every client,
        // so no session ends: a reopened session could reuse a sequence
        // number for a new command, which would confuse the count below.
        let config = SessionConfig { ttl_ns: 1_000, window_seq_count: 4, sessions_max: 8 };
        let mut replicated = recorder(config);
        let cut = cut.min(history.len());
        let (past, future) = history.split_at(cut);
        run_generated(&mut replicated, past);
        let mut restored = recorder(config);
        restored.restore(&replicated.snapshot()).expect("a snapshot restores");
        let expected = run_generated(&mut replicated, future);
        prop_assert_eq!(run_generated(&mut restored, future), expected);
        prop_assert_eq!(restored.snapshot(), replicated.snapshot());
        let mut seen = std::collections::BTreeSet::new();
        for (_, payload) in &replicated.machine().applied {
            prop_assert!(seen.insert(payload.clone()), "{:?} applied twice", payload);
        }
    }

    #[test]
    fn restore_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let mut replicated = recorder(SessionConfig::default());
        let snapshot = Snapshot { slot: Slot(0), bytes: Batch::copy_from_slice(&bytes) };
        if replicated.restore(&snapshot).is_err() {
            prop_assert_eq!(replicated.session_count(), 0);
        }
    }
}

proptest! {
    #[test]
    fn restoring_a_damaged_snapshot_never_panics(
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut source = recorder(SessionConfig::default());
        run(&mut source, &busy_history());
        let good = source.snapshot();
        let mut bytes = good.bytes.as_bytes().to_vec();
        let index = position.index(bytes.len());
        bytes[index] = value;
        let damaged = Snapshot { slot: good.slot, bytes: Batch::copy_from_slice(&bytes) };
        let mut target = recorder(SessionConfig::default());
        match target.restore(&damaged) {
            // Damage that still decodes gives a canonical, consistent table.
            Ok(()) => prop_assert_eq!(target.snapshot(), damaged),
            Err(_) => prop_assert_eq!(target.session_count(), 0),
        }
    }
}
