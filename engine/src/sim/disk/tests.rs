use super::*;
use crate::wire::{Ballot, Batch, NodeId, Slot, Snapshot};
use synod_log::format::SegmentId;

fn accepted(slot: u64, round: u64) -> PersistItem {
    accepted_bytes(slot, round, 1)
}

fn accepted_bytes(slot: u64, round: u64, length: usize) -> PersistItem {
    PersistItem::Accepted(AcceptedEntry {
        slot: Slot(slot),
        ballot: Ballot {
            round,
            node: NodeId(1),
        },
        batch: Batch::copy_from_slice(&vec![slot as u8; length]),
    })
}

fn metadata(recovering: bool) -> PersistItem {
    PersistItem::Metadata(Metadata {
        promised: Ballot {
            round: 1,
            node: NodeId(1),
        },
        commit_point: Slot(0),
        recovering,
    })
}

fn snapshot(slot: u64) -> PersistItem {
    PersistItem::Snapshot(Snapshot {
        slot: Slot(slot),
        bytes: Batch::copy_from_slice(&slot.to_le_bytes()),
    })
}

/// A disk whose replica has started (its log is open).
fn started(disk: MemoryDisk) -> MemoryDisk {
    let mut disk = disk;
    let recovered = disk.recover().expect("a fresh disk opens");
    assert!(!recovered.damaged);
    disk
}

/// One loop turn's write and its sync.
fn write_and_sync(disk: &mut MemoryDisk) {
    assert!(disk.submit(), "a group was waiting");
    disk.complete_write();
}

fn rounds(recovered: &Recovered) -> Vec<(u64, u64)> {
    recovered
        .accepted
        .iter()
        .map(|entry| (entry.slot.0, entry.ballot.round))
        .collect()
}

/// A choice that tears the write in flight inside its records.
const TEAR_IN_RECORDS: u64 = 1 << 62 | 5;

#[test]
fn unsynced_writes_are_lost_and_later_records_supersede() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1), accepted(2, 1)]);
    assert!(disk.submit());
    // Handed out while the first group is in flight: waits for the next.
    disk.write(PersistSeq(2), vec![accepted(2, 2)]);
    assert!(!disk.submit(), "one write in flight at a time");
    disk.complete_write();
    assert_eq!(disk.durable_seq(), PersistSeq(1));
    assert_eq!(disk.take_persisted(), Some(PersistSeq(1)));
    assert_eq!(disk.take_newly_durable().len(), 2);
    write_and_sync(&mut disk);
    disk.write(PersistSeq(3), vec![accepted(3, 2)]);
    write_and_sync(&mut disk);
    assert_eq!(disk.durable_seq(), PersistSeq(3));
    assert_eq!(disk.take_persisted(), Some(PersistSeq(3)));
    assert_eq!(disk.take_persisted(), None);
    disk.write(PersistSeq(4), vec![accepted(4, 2)]);
    assert!(disk.submit());
    let effect = disk.crash(DiskLoss::LoseUnsynced, 1);
    assert_eq!(
        effect,
        CrashEffect {
            items_kept: 0,
            items_lost: 1,
            torn: false
        }
    );
    assert!(!disk.will_recover_damaged());
    let recovered = disk.recover().expect("recovers");
    assert!(!recovered.damaged);
    assert_eq!(rounds(&recovered), vec![(1, 1), (2, 2), (3, 2)]);
}

#[test]
fn a_kept_write_in_flight_survives_and_its_votes_become_durable() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1)]);
    assert!(disk.submit());
    disk.write(PersistSeq(2), vec![accepted(2, 1)]);
    // An odd choice keeps the write in flight whole; the group being built
    // behind it was never written.
    let effect = disk.crash(DiskLoss::KeepPrefix, 1);
    assert_eq!(effect.items_kept, 1);
    assert_eq!(effect.items_lost, 1);
    assert!(!effect.torn);
    assert_eq!(disk.take_newly_durable().len(), 1);
    let recovered = disk.recover().expect("recovers");
    assert!(!recovered.damaged);
    assert_eq!(rounds(&recovered), vec![(1, 1)]);
}

#[test]
fn a_torn_write_damages_and_the_marker_persists_until_the_replica_clears_it() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1)]);
    write_and_sync(&mut disk);
    disk.write(PersistSeq(2), vec![accepted(2, 1), accepted(3, 1)]);
    assert!(disk.submit());
    let effect = disk.crash(DiskLoss::TearLast, TEAR_IN_RECORDS);
    assert!(effect.torn, "{effect:?}");
    assert_eq!(effect.items_lost, 2);
    assert!(disk.will_recover_damaged());
    let recovered = disk.recover().expect("recovers");
    assert!(recovered.damaged);
    assert!(recovered.metadata.recovering, "the log marked the damage");
    assert_eq!(rounds(&recovered), vec![(1, 1)]);
    assert!(disk.will_recover_damaged());

    // The torn tail is cut off, but a crash before the replica caught up
    // still recovers damaged: the marker is durable.
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(disk.will_recover_damaged());
    assert!(disk.recover().expect("recovers").damaged);
    disk.write(PersistSeq(1), vec![metadata(true)]);
    write_and_sync(&mut disk);
    assert!(disk.will_recover_damaged());
    // The replica caught up: its metadata says so, and once that is
    // durable the damage is over.
    disk.write(PersistSeq(2), vec![metadata(false)]);
    assert!(disk.submit());
    assert!(disk.will_recover_damaged(), "not durable yet");
    disk.complete_write();
    assert!(!disk.will_recover_damaged());
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(!disk.will_recover_damaged());
    let recovered = disk.recover().expect("recovers");
    assert!(!recovered.damaged);
    assert_eq!(rounds(&recovered), vec![(1, 1)]);
}

#[test]
fn a_corrupt_synced_record_cuts_the_log_and_damages_it() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1), accepted(2, 1)]);
    write_and_sync(&mut disk);
    disk.write(PersistSeq(2), vec![accepted(3, 1)]);
    write_and_sync(&mut disk);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(!disk.will_recover_damaged());
    // Choice 0: the first record, its first byte.
    assert_eq!(disk.corrupt(0), Some(Corrupted::Record));
    assert!(disk.will_recover_damaged());
    let recovered = disk.recover().expect("recovers");
    assert!(recovered.damaged);
    assert!(recovered.accepted.is_empty(), "{:?}", rounds(&recovered));
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(
        disk.recover().expect("recovers").damaged,
        "the marker stays"
    );
}

#[test]
fn a_forgetful_driver_forgets_the_damage_after_the_repair() {
    let mut disk = started(MemoryDisk::new(false));
    disk.write(PersistSeq(1), vec![accepted(1, 1)]);
    write_and_sync(&mut disk);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert_eq!(disk.corrupt(0), Some(Corrupted::Record));
    assert!(disk.recover().expect("recovers").damaged);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(!disk.will_recover_damaged());
    assert!(
        !disk.recover().expect("recovers").damaged,
        "this driver forgets"
    );

    // What the replica itself made durable, it does not forget.
    disk.write(PersistSeq(1), vec![metadata(true)]);
    write_and_sync(&mut disk);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(disk.recover().expect("recovers").damaged);
}

#[test]
fn a_durable_snapshot_drops_records_below_it() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(
        PersistSeq(1),
        vec![accepted(1, 1), accepted(2, 1), accepted(3, 1), snapshot(2)],
    );
    write_and_sync(&mut disk);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk.recover().expect("recovers");
    assert_eq!(rounds(&recovered), vec![(3, 1)]);
    assert_eq!(recovered.snapshot.map(|kept| kept.slot), Some(Slot(2)));
}

#[test]
fn a_snapshot_alone_is_durable_once_everything_before_it_is() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1)]);
    assert!(disk.submit());
    disk.write(PersistSeq(2), vec![snapshot(1)]);
    assert_eq!(disk.durable_seq(), PersistSeq(0), "the write is in flight");
    disk.complete_write();
    assert_eq!(disk.durable_seq(), PersistSeq(2));
    disk.write(PersistSeq(3), vec![snapshot(1)]);
    assert_eq!(disk.durable_seq(), PersistSeq(3), "no sync needed");
    assert!(!disk.submit(), "nothing to write");
}

#[test]
fn a_ready_larger_than_a_group_is_split_across_group_commits() {
    let config = LogConfig {
        segment_bytes: 64 << 10,
        group_bytes_max: 8 << 10,
        ..log_config()
    };
    let mut disk = started(MemoryDisk::with_config(true, config));
    let items: Vec<PersistItem> = (1..=5).map(|slot| accepted_bytes(slot, 1, 3000)).collect();
    disk.write(PersistSeq(1), items);
    // Two 3000-byte entries fill an 8 KiB group.
    for _ in 0..2 {
        write_and_sync(&mut disk);
        assert_eq!(disk.durable_seq(), PersistSeq(0), "the Ready is not all in");
    }
    write_and_sync(&mut disk);
    assert_eq!(disk.durable_seq(), PersistSeq(1));
    let counts = disk.take_counts();
    assert_eq!(counts.groups_written, 3);
    assert!(counts.group_full_waits >= 2, "{counts:?}");
    assert_eq!(disk.take_newly_durable().len(), 5);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk.recover().expect("recovers");
    assert_eq!(recovered.accepted.len(), 5);
}

#[test]
fn a_full_disk_stalls_the_log_keeps_the_durable_prefix_and_resumes() {
    let config = LogConfig {
        segment_bytes: 32 << 10,
        group_bytes_max: 8 << 10,
        spare_segments_max: 0,
        ..log_config()
    };
    let mut disk = started(MemoryDisk::with_config(true, config));
    disk.set_full(Some(0));
    let mut slot = 0;
    let mut stalled_at = None;
    for persist_seq in 1..=40u64 {
        slot += 1;
        disk.write(PersistSeq(persist_seq), vec![accepted_bytes(slot, 1, 3000)]);
        if disk.submit() {
            disk.complete_write();
        } else {
            stalled_at = Some(persist_seq);
            break;
        }
    }
    let stalled_at = stalled_at.expect("the first segment fills up");
    let durable = disk.durable_seq();
    assert_eq!(durable, PersistSeq(stalled_at - 1));
    // More items wait; nothing is lost or reordered while the disk is full.
    slot += 1;
    disk.write(
        PersistSeq(stalled_at + 1),
        vec![accepted_bytes(slot, 1, 3000)],
    );
    assert!(!disk.submit());
    assert_eq!(disk.durable_seq(), durable);
    assert!(disk.take_counts().disk_full_waits >= 2);
    // Space returns: the log resumes where it stopped.
    disk.set_full(None);
    while disk.submit() {
        disk.complete_write();
    }
    assert_eq!(disk.durable_seq(), PersistSeq(stalled_at + 1));
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk.recover().expect("recovers");
    assert!(!recovered.damaged);
    assert_eq!(recovered.accepted.len() as u64, slot);

    // A crash while the disk is full keeps the durable prefix.
    disk.set_full(Some(0));
    let mut persist_seq = 0;
    loop {
        persist_seq += 1;
        slot += 1;
        disk.write(PersistSeq(persist_seq), vec![accepted_bytes(slot, 1, 3000)]);
        if !disk.submit() {
            break;
        }
        disk.complete_write();
    }
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk
        .recover()
        .expect("recovers after a crash on a full disk");
    assert_eq!(recovered.accepted.len() as u64, slot - 1);
}

#[test]
fn segments_roll_over_are_recycled_and_compacted() {
    let mut disk = started(MemoryDisk::new(true));
    let mut slot = 0;
    for persist_seq in 1..=400u64 {
        let mut items: Vec<PersistItem> = (0..4)
            .map(|_| {
                slot += 1;
                accepted_bytes(slot, 1, 700)
            })
            .collect();
        if slot % 32 == 0 {
            items.push(snapshot(slot - 8));
        }
        disk.write(PersistSeq(persist_seq), items);
        write_and_sync(&mut disk);
    }
    let names = disk.storage.file_names();
    let segments: Vec<SegmentId> = names
        .iter()
        .filter_map(|name| SegmentId::from_file_name(name))
        .collect();
    assert!(
        segments.iter().all(|segment| segment.0 > 3),
        "old segments were retired: {names:?}"
    );
    assert!(segments.len() <= 3, "{names:?}");
    assert!(
        names.iter().any(|name| name.ends_with(".spare")),
        "{names:?}"
    );
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk.recover().expect("recovers");
    assert!(!recovered.damaged);
    assert_eq!(
        recovered.snapshot.map(|kept| kept.slot),
        Some(Slot(1600 - 8))
    );
    assert_eq!(recovered.accepted.len(), 8);
}

/// Review of the simdisk merge: the world decides whether another replica
/// may be damaged from `will_recover_damaged` (through `damage_pending`),
/// so it must say what the next recovery will find. A replica that catches
/// up hands out "still recovering" and then "done" metadata; when both land
/// in one group commit, the log's recovery takes the first record of the
/// group and the replica restarts damaged, while the disk said it would not.
#[test]
fn will_recover_damaged_agrees_with_recovery_when_one_group_clears_the_flag() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![metadata(true)]);
    disk.write(PersistSeq(2), vec![accepted(1, 1), metadata(false)]);
    write_and_sync(&mut disk);
    assert_eq!(disk.durable_seq(), PersistSeq(2));
    let predicted = disk.will_recover_damaged();
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk.recover().expect("recovers");
    assert_eq!(
        predicted, recovered.damaged,
        "will_recover_damaged said {predicted} while the replica was up, but it restarts with damaged = {} \
         (metadata {:?})",
        recovered.damaged, recovered.metadata
    );
}

/// A choice that makes `corrupt` hit a metadata copy (when one is valid).
const HIT_METADATA_COPY: u64 = 7 << 56;

#[test]
fn a_flipped_bit_in_a_metadata_copy_is_damage_and_the_other_copy_is_used() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1)]);
    write_and_sync(&mut disk);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    // Two valid copies: promises of rounds 2 (older) and 3 (newer).
    {
        let (mut log, _) = Log::open(disk.storage.clone(), disk.config.clone()).expect("opens");
        for round in [2, 3] {
            let promised = Ballot {
                round,
                node: NodeId(1),
            };
            log.persist_metadata(synod_log::Metadata {
                promised,
                commit_point: Slot(0),
                recovering: false,
            })
            .expect("metadata file");
        }
    }
    for (copy, choice) in [(0u64, HIT_METADATA_COPY), (1, HIT_METADATA_COPY | 1)] {
        let mut damaged = MemoryDisk::with_config(true, log_config());
        damaged.storage = disk.storage.fork();
        assert_eq!(
            damaged.corrupt(choice),
            Some(Corrupted::MetadataCopy),
            "copy {copy} was hit"
        );
        assert!(damaged.will_recover_damaged());
        let report = damaged.peek().report;
        assert!(
            report
                .damage
                .iter()
                .any(|damage| matches!(damage, synod_log::Damage::MetadataCopy { .. })),
            "{report}"
        );
        let recovered = damaged.recover().expect("recovers");
        assert!(recovered.damaged, "a damaged copy is damage");
        assert!(
            recovered.metadata.promised.round >= 2,
            "the intact copy is used: {:?}",
            recovered.metadata
        );
        assert_eq!(rounds(&recovered), vec![(1, 1)]);
        assert!(damaged.take_violations().is_empty());
    }
}

#[test]
fn crashes_and_restarts_that_keep_the_rules_raise_no_recovery_violation() {
    let mut disk = started(MemoryDisk::new(true));
    disk.write(PersistSeq(1), vec![accepted(1, 1), accepted(2, 1)]);
    write_and_sync(&mut disk);
    disk.write(PersistSeq(2), vec![accepted(3, 1)]);
    assert!(disk.submit());
    let effect = disk.crash(DiskLoss::TearLast, TEAR_IN_RECORDS);
    assert!(effect.torn);
    let recovered = disk.recover().expect("recovers");
    assert!(recovered.damaged);
    // Crash before the replica has caught up: still damaged.
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    assert!(disk.recover().expect("recovers").damaged);
    // The replica clears the flag; its votes survive the next crash.
    disk.write(PersistSeq(1), vec![accepted(3, 2), metadata(false)]);
    write_and_sync(&mut disk);
    let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
    let recovered = disk.recover().expect("recovers");
    assert!(!recovered.damaged);
    assert_eq!(rounds(&recovered), vec![(1, 1), (2, 1), (3, 2)]);
    assert!(
        disk.take_violations().is_empty(),
        "{:?}",
        disk.take_violations()
    );
}
