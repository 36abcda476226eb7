//! Property tests: random operation sequences with crashes against a model,
//! and arbitrary bytes as a segment (an error or a valid prefix, never a panic).

mod common;

use std::collections::BTreeMap;

use common::{entry, small_config};
use proptest::prelude::*;
use synod_log::format::BLOCK_BYTES;
use synod_log::{CrashFault, Log, LogConfig, MemStorage, Metadata, SegmentId};
use synod_net::wire::{AcceptedEntry, Batch, Slot, Snapshot};

#[derive(Clone, Debug)]
enum Operation {
    Append {
        slot: u64,
        round: u64,
        length: usize,
    },
    /// A metadata record in the group being built (several may share a
    /// group: the last one counts once the group is durable).
    Metadata {
        round: u64,
        recovering: bool,
    },
    /// Straight to the metadata file.
    PersistMetadata {
        round: u64,
        recovering: bool,
    },
    Commit,
    Crash {
        fault: u8,
        keep_bytes: usize,
    },
    Snapshot {
        back: u64,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        6 => (1u64..120, 1u64..4, 0usize..3000)
            .prop_map(|(slot, round, length)| Operation::Append { slot, round, length }),
        2 => (1u64..6, any::<bool>()).prop_map(|(round, recovering)| Operation::Metadata { round, recovering }),
        1 => (1u64..6, any::<bool>()).prop_map(|(round, recovering)| Operation::PersistMetadata { round, recovering }),
        3 => Just(Operation::Commit),
        1 => (0u8..3, 0usize..40_000).prop_map(|(fault, keep_bytes)| Operation::Crash { fault, keep_bytes }),
        1 => (0u64..30).prop_map(|back| Operation::Snapshot { back }),
    ]
}

#[derive(Default)]
struct Model {
    durable: BTreeMap<Slot, AcceptedEntry>,
    pending: Vec<AcceptedEntry>,
    snapshot_slot: Slot,
    promised_round: u64,
    /// The latest durable recovering flag (set by the test, or by the log
    /// when a reopen dropped something).
    recovering: bool,
    /// The metadata records of the group being built, folded in order:
    /// (highest promised round, the last record's flag).
    pending_metadata: Option<(u64, bool)>,
}

impl Model {
    /// The group being built became durable.
    fn land_pending(&mut self) {
        self.durable
            .extend(self.pending.drain(..).map(|e| (e.slot, e)));
        if let Some((round, recovering)) = self.pending_metadata.take() {
            self.promised_round = self.promised_round.max(round);
            self.recovering = recovering;
        }
    }

    /// The group being built was lost.
    fn lose_pending(&mut self) {
        self.pending.clear();
        self.pending_metadata = None;
    }

    fn expected(&self, with_pending: bool) -> Vec<AcceptedEntry> {
        let mut all = self.durable.clone();
        if with_pending {
            for accepted in &self.pending {
                all.insert(accepted.slot, accepted.clone());
            }
        }
        all.split_off(&self.snapshot_slot.next())
            .into_values()
            .collect()
    }
}

fn run(operations: Vec<Operation>) -> Result<(), TestCaseError> {
    let storage = MemStorage::new();
    let config = small_config();
    let (mut log, _) = Log::open(storage.clone(), config.clone()).expect("open");
    let mut model = Model::default();
    for operation in operations {
        match operation {
            Operation::Append {
                slot,
                round,
                length,
            } => {
                let accepted = entry(slot, round, length);
                if log.append(&accepted).is_err() {
                    log.commit().expect("commit");
                    model.land_pending();
                    log.append(&accepted).expect("room after a commit");
                }
                model.pending.push(accepted);
            }
            Operation::Metadata { round, recovering } => {
                let metadata = Metadata {
                    promised: common::ballot(round, 1),
                    commit_point: Slot(0),
                    recovering,
                };
                // No commit here: a group may hold several metadata records
                // (and accepted ones between them), and the last one counts.
                if log.append_metadata(metadata).is_err() {
                    log.commit().expect("commit");
                    model.land_pending();
                    log.append_metadata(metadata).expect("room after a commit");
                }
                model.pending_metadata = Some(match model.pending_metadata {
                    Some((earlier, _)) => (earlier.max(round), recovering),
                    None => (round, recovering),
                });
                prop_assert_eq!(log.durable_metadata().recovering, model.recovering);
            }
            Operation::PersistMetadata { round, recovering } => {
                let metadata = Metadata {
                    promised: common::ballot(round, 1),
                    commit_point: Slot(0),
                    recovering,
                };
                log.persist_metadata(metadata).expect("metadata file");
                model.promised_round = model.promised_round.max(round);
                model.recovering = recovering;
                // The records already in the group being built now agree
                // with the file; records appended later supersede it.
                if let Some((earlier, _)) = model.pending_metadata {
                    model.pending_metadata = Some((earlier.max(round), recovering));
                }
                prop_assert_eq!(log.durable_metadata().recovering, model.recovering);
            }
            Operation::Commit => {
                log.commit().expect("commit");
                model.land_pending();
                prop_assert_eq!(log.durable_metadata().recovering, model.recovering);
            }
            Operation::Crash { fault, keep_bytes } => {
                let armed = log.has_pending();
                let durable_before = log.durable();
                if armed {
                    storage.arm_crash();
                    prop_assert!(log.commit().is_err());
                }
                drop(log);
                let fault = match fault {
                    0 => CrashFault::LoseUnsynced,
                    1 => CrashFault::KeepUnsynced,
                    _ => CrashFault::TearLastWrite { keep_bytes },
                };
                storage.restart(fault);
                let (reopened, recovered) =
                    Log::open(storage.clone(), config.clone()).expect("reopen");
                log = reopened;
                let without = model.expected(false);
                let with = model.expected(true);
                // The group written at the crash landed whole exactly when
                // the durable group number rose (it is in the active
                // segment, which is never retired).
                let landed = log.durable() > durable_before;
                prop_assert!(!landed || armed, "only a written group lands");
                if landed {
                    prop_assert_eq!(&recovered.accepted, &with);
                    model.land_pending();
                } else {
                    prop_assert_eq!(&recovered.accepted, &without);
                    let torn = matches!(fault, CrashFault::TearLastWrite { .. });
                    prop_assert!(!recovered.damaged || torn);
                    model.lose_pending();
                }
                prop_assert_eq!(recovered.metadata.promised.round, model.promised_round);
                // A reopen that dropped something marks the owner recovering.
                model.recovering |= recovered.damaged;
                prop_assert_eq!(recovered.metadata.recovering, model.recovering);
                prop_assert_eq!(log.durable_metadata().recovering, model.recovering);
            }
            Operation::Snapshot { back } => {
                let top = model.durable.keys().next_back().copied().unwrap_or(Slot(0));
                let slot = Slot(top.0.saturating_sub(back)).max(model.snapshot_slot);
                let snapshot = Snapshot {
                    slot,
                    bytes: Batch::copy_from_slice(&slot.0.to_le_bytes()),
                };
                log.install_snapshot(&snapshot).expect("snapshot");
                model.snapshot_slot = slot;
                prop_assert_eq!(log.durable_metadata().recovering, model.recovering);
            }
        }
    }
    log.commit().expect("final commit");
    model.land_pending();
    prop_assert_eq!(log.durable_metadata().recovering, model.recovering);
    drop(log);
    let (_, recovered) = Log::open(storage, config).expect("final reopen");
    prop_assert_eq!(recovered.accepted, model.expected(false));
    prop_assert_eq!(recovered.metadata.recovering, model.recovering);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn recovery_matches_the_model_across_crashes(operations in proptest::collection::vec(operation(), 1..80)) {
        run(operations)?;
    }

    #[test]
    fn arbitrary_bytes_as_a_segment_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..3 * BLOCK_BYTES),
        valid_header in any::<bool>(),
    ) {
        let storage = MemStorage::new();
        let name = SegmentId(1).file_name();
        let mut bytes = vec![0u8; BLOCK_BYTES];
        if valid_header {
            let length = (BLOCK_BYTES + body.len()) as u64;
            synod_log::format::SegmentHeader { segment: SegmentId(1), segment_bytes: length, recycled: !valid_header }.encode(&mut bytes);
        }
        bytes.extend_from_slice(&body);
        storage.put_file(&name, bytes);
        let config = LogConfig { segment_bytes: 1 << 20, group_bytes_max: 64 * 1024, ..LogConfig::default() };
        let _ = Log::open(storage, config);
    }

    #[test]
    fn a_valid_log_with_garbage_appended_recovers_its_prefix(
        garbage in proptest::collection::vec(any::<u8>(), 1..BLOCK_BYTES),
        at_block in 0usize..4,
    ) {
        let storage = MemStorage::new();
        let (mut log, _) = Log::open(storage.clone(), small_config()).expect("open");
        for slot in 1..=5 {
            log.append(&entry(slot, 1, 100)).expect("room");
            log.commit().expect("commit");
        }
        let (_, end) = log.write_position();
        drop(log);
        let name = SegmentId(1).file_name();
        let mut bytes = storage.durable_bytes(&name).expect("segment");
        let start = end as usize + at_block * BLOCK_BYTES;
        bytes[start..start + garbage.len()].copy_from_slice(&garbage);
        storage.put_file(&name, bytes);
        let (_, recovered) = Log::open(storage, small_config()).expect("garbage after the end is a torn tail");
        prop_assert_eq!(recovered.accepted.len(), 5);
    }
}
