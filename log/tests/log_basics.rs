//! The log's behaviour over the in-memory device: appends, group commits,
//! re-acceptance, metadata, snapshots and compaction, reopening.

mod common;

use common::{ballot, entry, open_mem, small_config};
use synod_log::{CommitSeq, MemStorage, Metadata};
use synod_net::wire::{Batch, Slot, Snapshot};

#[test]
fn a_fresh_log_recovers_nothing_and_is_not_damaged() {
    let storage = MemStorage::new();
    let (_log, recovered) = open_mem(&storage, small_config());
    assert!(recovered.accepted.is_empty());
    assert!(!recovered.damaged);
    assert_eq!(recovered.metadata, Metadata::default());
}

#[test]
fn committed_entries_survive_a_reopen_and_uncommitted_do_not() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for slot in 1..=10 {
        assert_eq!(log.append(&entry(slot, 1, 100)).unwrap(), CommitSeq(1));
    }
    assert_eq!(log.commit().unwrap(), Some(CommitSeq(1)));
    log.append(&entry(11, 1, 100)).unwrap();
    drop(log);
    let (_log, recovered) = open_mem(&storage, small_config());
    assert_eq!(recovered.accepted.len(), 10);
    for (index, accepted) in recovered.accepted.iter().enumerate() {
        assert_eq!(accepted, &entry(index as u64 + 1, 1, 100));
    }
    assert!(!recovered.damaged);
}

#[test]
fn a_later_record_supersedes_an_earlier_one_for_the_same_slot() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for slot in 1..=5 {
        log.append(&entry(slot, 1, 10)).unwrap();
    }
    log.commit().unwrap();
    log.append(&entry(3, 2, 20)).unwrap();
    log.append(&entry(4, 2, 20)).unwrap();
    log.commit().unwrap();
    drop(log);
    let (_log, recovered) = open_mem(&storage, small_config());
    let rounds: Vec<u64> = recovered.accepted.iter().map(|e| e.ballot.round).collect();
    assert_eq!(rounds, vec![1, 1, 2, 2, 1]);
    assert_eq!(recovered.accepted[2], entry(3, 2, 20));
}

#[test]
fn metadata_records_and_the_metadata_file_combine() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    let first = Metadata {
        promised: ballot(3, 2),
        commit_point: Slot(0),
        recovering: false,
    };
    log.persist_metadata(first).unwrap();
    log.append_metadata(Metadata {
        promised: ballot(4, 1),
        commit_point: Slot(2),
        recovering: false,
    })
    .unwrap();
    log.append(&entry(1, 4, 8)).unwrap();
    log.commit().unwrap();
    drop(log);
    let (_log, recovered) = open_mem(&storage, small_config());
    assert_eq!(recovered.metadata.promised, ballot(4, 1));
    assert_eq!(recovered.metadata.commit_point, Slot(2));
}

#[test]
fn many_groups_roll_over_segments_and_recover_in_order() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for slot in 1..=300u64 {
        log.append(&entry(slot, 1, 500)).unwrap();
        if slot.is_multiple_of(7) {
            log.commit().unwrap();
        }
    }
    log.commit().unwrap();
    assert!(log.segment_count() > 2, "segments: {}", log.segment_count());
    drop(log);
    let (_log, recovered) = open_mem(&storage, small_config());
    assert_eq!(recovered.accepted.len(), 300);
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.accepted[299], entry(300, 1, 500));
}

#[test]
fn a_full_group_asks_for_a_commit() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    let mut slot = 1;
    let error = loop {
        match log.append(&entry(slot, 1, 3000)) {
            Ok(_) => slot += 1,
            Err(error) => break error,
        }
    };
    assert!(
        matches!(error, synod_log::LogError::GroupFull { .. }),
        "{error}"
    );
    log.commit().unwrap();
    log.append(&entry(slot, 1, 3000)).unwrap();
    let too_big = entry(slot + 1, 1, 20_000);
    assert!(matches!(
        log.append(&too_big),
        Err(synod_log::LogError::EntryTooLarge { .. })
    ));
}

#[test]
fn a_snapshot_drops_old_slots_and_retires_dead_segments() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for slot in 1..=200u64 {
        log.append(&entry(slot, 1, 1000)).unwrap();
        if slot.is_multiple_of(5) {
            log.commit().unwrap();
        }
    }
    log.append_metadata(Metadata {
        promised: ballot(1, 1),
        commit_point: Slot(150),
        recovering: false,
    })
    .unwrap();
    log.commit().unwrap();
    let before = log.segment_count();
    let snapshot = Snapshot {
        slot: Slot(150),
        bytes: Batch::copy_from_slice(b"state at 150"),
    };
    log.install_snapshot(&snapshot).unwrap();
    assert!(
        log.segment_count() < before,
        "{} -> {}",
        before,
        log.segment_count()
    );
    drop(log);
    let (_log, recovered) = open_mem(&storage, small_config());
    assert_eq!(recovered.snapshot, Some(snapshot));
    assert_eq!(recovered.accepted.first().map(|e| e.slot), Some(Slot(151)));
    assert_eq!(recovered.accepted.len(), 50);
    assert_eq!(recovered.metadata.commit_point, Slot(150));
    assert!(!recovered.damaged, "{}", recovered.report);
    assert!(storage
        .file_names()
        .iter()
        .any(|name| name.ends_with(".spare")));
}

#[test]
fn recycled_segments_do_not_confuse_recovery() {
    let storage = MemStorage::new();
    let config = small_config();
    let (mut log, _) = open_mem(&storage, config.clone());
    let mut slot = 1u64;
    for round in 0..6u64 {
        for _ in 0..60 {
            log.append(&entry(slot, 1, 700)).unwrap();
            if slot.is_multiple_of(4) {
                log.commit().unwrap();
            }
            slot += 1;
        }
        log.commit().unwrap();
        let snapshot = Snapshot {
            slot: Slot(slot - 10),
            bytes: Batch::copy_from_slice(&round.to_le_bytes()),
        };
        log.install_snapshot(&snapshot).unwrap();
        drop(log);
        let (reopened, recovered) = open_mem(&storage, config.clone());
        assert!(!recovered.damaged, "round {round}: {}", recovered.report);
        assert_eq!(
            recovered.accepted.len(),
            9,
            "round {round}: {}",
            recovered.report
        );
        log = reopened;
    }
}

/// Fills segments with one layout, retires them, then writes another layout
/// into the recycled files: the stale bytes past the writer's end must never
/// read as a torn write or as corruption.
#[test]
fn recycled_segments_with_a_new_layout_reopen_clean_at_every_point() {
    let storage = MemStorage::new();
    let config = small_config();
    let (mut log, _) = open_mem(&storage, config.clone());
    // Groups of three blocks: most block boundaries of the old bytes fall
    // in the middle of a record.
    for slot in 1..=120u64 {
        log.append(&entry(slot, 1, 3000)).unwrap();
        if slot.is_multiple_of(3) {
            log.commit().unwrap();
        }
    }
    log.install_snapshot(&Snapshot {
        slot: Slot(120),
        bytes: Batch::copy_from_slice(b"s"),
    })
    .unwrap();
    assert!(storage
        .file_names()
        .iter()
        .any(|name| name.ends_with(".spare")));
    let mut slot = 121u64;
    for round in 0..60u64 {
        for _ in 0..(round % 5 + 1) {
            log.append(&entry(slot, 1, 37 + (round as usize * 101) % 900))
                .unwrap();
            slot += 1;
        }
        log.commit().unwrap();
        drop(log);
        let (reopened, recovered) = open_mem(&storage, config.clone());
        assert!(!recovered.damaged, "round {round}: {}", recovered.report);
        assert_eq!(recovered.accepted.len() as u64, slot - 121, "round {round}");
        log = reopened;
    }
}

/// A reader that takes no lock (`synod log inspect` on a running node):
/// the directory is listed, then the running owner installs a snapshot and
/// retires its oldest segments (renamed to spares or removed), then the
/// reader reads the segments it listed. A segment gone from the directory
/// by then was retired, not lost: the reader sees the log as if it had
/// listed it after the retirement, neither an error nor damage.
#[test]
fn a_segment_retired_after_the_listing_is_left_out_not_refused() {
    use synod_log::aligned::AlignedBuf;
    use synod_log::{Log, LogConfig, Result, SegmentId, Storage};

    /// Delegates to the disk; runs the owner's step right after the first
    /// listing.
    struct ListThenOwnerActs {
        disk: MemStorage,
        owner: Option<Box<dyn FnOnce()>>,
    }

    impl Storage for ListThenOwnerActs {
        fn path_of(&self, name: &str) -> std::path::PathBuf {
            self.disk.path_of(name)
        }
        fn list(&mut self) -> Result<Vec<String>> {
            let names = self.disk.list()?;
            if let Some(owner) = self.owner.take() {
                owner();
            }
            Ok(names)
        }
        fn read(&mut self, name: &str, length_max_bytes: u64) -> Result<Option<Vec<u8>>> {
            self.disk.read(name, length_max_bytes)
        }
        fn write_atomic(&mut self, _: &str, _: &[u8]) -> Result<()> {
            unreachable!("a reader never writes")
        }
        fn overwrite(&mut self, _: &str, _: u64, _: &[u8]) -> Result<()> {
            unreachable!("a reader never writes")
        }
        fn rename(&mut self, _: &str, _: &str) -> Result<()> {
            unreachable!("a reader never renames")
        }
        fn remove(&mut self, _: &str) -> Result<()> {
            unreachable!("a reader never removes")
        }
        fn prepare_segment(&mut self, _: SegmentId, _: u64) {}
        fn activate_segment(&mut self, _: SegmentId, _: u64) -> Result<bool> {
            unreachable!("a reader never writes")
        }
        fn write_group(&mut self, _: SegmentId, _: u64, _: &AlignedBuf, _: usize) -> Result<()> {
            unreachable!("a reader never writes")
        }
        fn release_segment(&mut self, _: SegmentId) {}
        fn retire_segment(&mut self, _: SegmentId, _: usize) -> Result<()> {
            unreachable!("a reader never removes")
        }
    }

    for spare_segments_max in [0, 2] {
        let config = LogConfig {
            spare_segments_max,
            ..small_config()
        };
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, config.clone());
        for slot in 1..=200u64 {
            log.append(&entry(slot, 1, 1000)).unwrap();
            if slot.is_multiple_of(5) {
                log.commit().unwrap();
            }
        }
        let before = log.segment_count();
        let snapshot = Snapshot {
            slot: Slot(150),
            bytes: Batch::copy_from_slice(b"state at 150"),
        };
        let owner_done = std::rc::Rc::new(std::cell::Cell::new(usize::MAX));
        let owner = {
            let (snapshot, owner_done) = (snapshot.clone(), owner_done.clone());
            move || {
                log.install_snapshot(&snapshot).unwrap();
                owner_done.set(log.segment_count());
                drop::<Log<MemStorage>>(log);
            }
        };
        let mut reader = ListThenOwnerActs {
            disk: storage.clone(),
            owner: Some(Box::new(owner)),
        };
        let peeked = synod_log::peek(&mut reader, &config)
            .unwrap_or_else(|error| panic!("spares {spare_segments_max}: {error}"));
        assert!(
            owner_done.get() < before,
            "the owner retired segments: {before} -> {}",
            owner_done.get()
        );
        assert!(!peeked.damaged, "{}", peeked.report);
        assert_eq!(peeked.snapshot, Some(snapshot));
        assert_eq!(peeked.accepted.first().map(|e| e.slot), Some(Slot(151)));
        assert_eq!(peeked.accepted.len(), 50);
        // Exactly what a reader listing after the retirement sees.
        let after = synod_log::peek(&mut storage.clone(), &config).expect("peek");
        assert_eq!(peeked.accepted, after.accepted);
        assert_eq!(peeked.report.segments.len(), after.report.segments.len());
    }
}
