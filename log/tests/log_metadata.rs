//! Acceptor metadata across restarts: the promised ballot and commit point
//! only rise (maximum), the `recovering` flag is set and cleared (the latest
//! durable value in log order wins), and a reopen that drops anything marks
//! the owner recovering before it repairs the log.

mod common;

use common::{ballot, entry, open_mem, small_config};
use synod_log::{CrashFault, Log, MemStorage, Metadata, PendingWrite};
use synod_net::wire::{Batch, Slot, Snapshot};

fn metadata(round: u64, commit_point: u64, recovering: bool) -> Metadata {
    Metadata {
        promised: ballot(round, 1),
        commit_point: Slot(commit_point),
        recovering,
    }
}

fn reopen(storage: &MemStorage) -> synod_log::Recovered {
    open_mem(storage, small_config()).1
}

/// Issues the next group write the way a simulator does, and leaves it
/// unsynced (in flight) for a crash to decide.
fn write_unsynced(log: &mut Log<MemStorage>, storage: &MemStorage) -> PendingWrite {
    let write = log
        .start_commit()
        .expect("start")
        .expect("a group waits and none is in flight");
    storage.write_pending(&write).expect("write");
    write
}

#[test]
fn recovering_is_set_and_cleared_while_promises_only_rise() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(5, 10, true)).unwrap();
    log.commit().unwrap();
    assert_eq!(log.durable_metadata(), metadata(5, 10, true));
    // A lower promise in a later record never lowers the durable one; the
    // flag follows the later record.
    log.append_metadata(metadata(3, 4, false)).unwrap();
    log.commit().unwrap();
    assert_eq!(log.durable_metadata(), metadata(5, 10, false));
    drop(log);
    assert_eq!(reopen(&storage).metadata, metadata(5, 10, false));
}

#[test]
fn the_file_and_the_records_are_ordered_by_when_they_were_written() {
    // A record after the file copy wins.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.persist_metadata(metadata(2, 0, true)).unwrap();
    log.append_metadata(metadata(2, 0, false)).unwrap();
    log.commit().unwrap();
    drop(log);
    assert!(!reopen(&storage).metadata.recovering);

    // A file copy after the record wins.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(2, 0, false)).unwrap();
    log.commit().unwrap();
    log.persist_metadata(metadata(1, 0, true)).unwrap();
    assert_eq!(log.durable_metadata(), metadata(2, 0, true));
    drop(log);
    assert_eq!(reopen(&storage).metadata, metadata(2, 0, true));
}

#[test]
fn a_file_copy_supersedes_metadata_appended_before_it() {
    // Appended to the group being built, then superseded by the file: the
    // group, once it lands, agrees with the file.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(4, 0, true)).unwrap();
    log.append(&entry(1, 4, 50)).unwrap();
    log.persist_metadata(metadata(3, 0, false)).unwrap();
    log.commit().unwrap();
    assert_eq!(log.durable_metadata(), metadata(4, 0, false));
    drop(log);
    assert_eq!(reopen(&storage).metadata, metadata(4, 0, false));

    // In flight when the file is written: the group lands later, but the
    // file is newer.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(4, 0, true)).unwrap();
    let write = log.start_commit().unwrap().expect("a group");
    storage.write_pending(&write).unwrap();
    log.persist_metadata(metadata(4, 0, false)).unwrap();
    storage.sync_pending(&write);
    log.finish_commit(write, Ok(())).unwrap();
    assert!(!log.durable_metadata().recovering);
    drop(log);
    assert!(!reopen(&storage).metadata.recovering);
}

#[test]
fn a_compaction_checkpoint_never_overrides_a_later_record() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for slot in 1..=60u64 {
        log.append(&entry(slot, 1, 2000)).unwrap();
        if slot.is_multiple_of(3) {
            log.commit().unwrap();
        }
    }
    log.append_metadata(metadata(1, 60, false)).unwrap();
    log.commit().unwrap();
    // A group setting the flag is in flight while a snapshot retires
    // segments and checkpoints the (durable, not recovering) metadata.
    log.append_metadata(metadata(2, 60, true)).unwrap();
    log.append(&entry(61, 2, 10)).unwrap();
    let _in_flight = write_unsynced(&mut log, &storage);
    let segments = log.segment_count();
    log.install_snapshot(&Snapshot {
        slot: Slot(60),
        bytes: Batch::copy_from_slice(b"state"),
    })
    .unwrap();
    assert!(
        log.segment_count() < segments,
        "the snapshot retired segments"
    );
    let crashed = storage.fork();
    drop(log);

    // The group lands: its flag is newer than the checkpoint.
    storage.restart(CrashFault::KeepUnsynced);
    let recovered = reopen(&storage);
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.metadata, metadata(2, 60, true));

    // The group is lost: the checkpoint holds.
    crashed.restart(CrashFault::LoseUnsynced);
    let recovered = reopen(&crashed);
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.metadata, metadata(1, 60, false));
}

#[test]
fn a_damaged_reopen_marks_the_owner_recovering_until_it_clears_the_flag() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(3, 0, false)).unwrap();
    for slot in 1..=5u64 {
        log.append(&entry(slot, 3, 500)).unwrap();
    }
    log.commit().unwrap();
    log.append(&entry(6, 3, 9000)).unwrap();
    let _in_flight = write_unsynced(&mut log, &storage);
    drop(log);
    storage.restart(CrashFault::TearLastWrite { keep_bytes: 5000 });

    let recovered = reopen(&storage);
    assert!(recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.metadata, metadata(3, 0, true));
    assert_eq!(recovered.accepted.len(), 5);
    // The tail is cut off now, but the marker is durable: a crash before
    // the owner appended anything still says it is recovering.
    let (mut log, again) = open_mem(&storage, small_config());
    assert!(!again.damaged, "{}", again.report);
    assert!(again.metadata.recovering);
    // Still recovering in the owner's first group, then done.
    log.append_metadata(metadata(3, 0, true)).unwrap();
    log.commit().unwrap();
    log.append_metadata(metadata(3, 0, false)).unwrap();
    log.commit().unwrap();
    drop(log);
    let done = reopen(&storage);
    assert!(
        !done.damaged && !done.metadata.recovering,
        "{}",
        done.report
    );
}

#[test]
fn peek_reports_what_open_would_find_and_changes_nothing() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for slot in 1..=3u64 {
        log.append(&entry(slot, 1, 100)).unwrap();
    }
    log.commit().unwrap();
    log.append(&entry(4, 1, 6000)).unwrap();
    let _in_flight = write_unsynced(&mut log, &storage);
    drop(log);
    storage.restart(CrashFault::TearLastWrite { keep_bytes: 100 });
    let before: Vec<(String, Option<Vec<u8>>)> = storage
        .file_names()
        .into_iter()
        .map(|name| {
            let bytes = storage.durable_bytes(&name);
            (name, bytes)
        })
        .collect();
    let peeked = synod_log::peek(&mut storage.clone(), &small_config()).expect("peek");
    assert!(peeked.damaged);
    assert!(!peeked.metadata.recovering, "peek writes no marker");
    assert_eq!(peeked.accepted.len(), 3);
    for (name, bytes) in &before {
        assert_eq!(&storage.durable_bytes(name), bytes, "{name} unchanged");
    }
    let (_, opened) = open_mem(&storage, small_config());
    assert!(opened.damaged && opened.metadata.recovering);
    assert_eq!(opened.accepted, peeked.accepted);
}

#[test]
fn the_last_unsynced_write_is_the_one_torn_even_after_a_synced_overwrite() {
    // A metadata file write (synced at once) after the group write must not
    // make the group write "earlier": the group is still the last one that
    // a crash can tear.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append(&entry(1, 1, 100)).unwrap();
    log.commit().unwrap();
    log.append(&entry(2, 1, 6000)).unwrap();
    let _in_flight = write_unsynced(&mut log, &storage);
    log.persist_metadata(metadata(1, 0, false)).unwrap();
    drop(log);
    storage.restart(CrashFault::TearLastWrite { keep_bytes: 200 });
    let recovered = reopen(&storage);
    assert!(recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.accepted.len(), 1);
}

#[test]
fn groups_numbered_again_after_a_crash_are_newer_than_the_file() {
    // The file copy is written while group 2 is in flight, so it supersedes
    // groups below 3. Group 2 is lost; after the restart the next group is
    // numbered 2 again, and it was written after the copy.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append(&entry(1, 1, 100)).unwrap();
    log.commit().unwrap();
    log.append(&entry(2, 1, 100)).unwrap();
    let _in_flight = write_unsynced(&mut log, &storage);
    log.persist_metadata(metadata(1, 0, true)).unwrap();
    drop(log);
    storage.restart(CrashFault::LoseUnsynced);
    let (mut log, recovered) = open_mem(&storage, small_config());
    assert!(!recovered.damaged, "{}", recovered.report);
    assert!(recovered.metadata.recovering);
    assert_eq!(log.next_commit_seq(), synod_log::CommitSeq(2));
    log.append_metadata(metadata(1, 0, false)).unwrap();
    log.commit().unwrap();
    assert!(!log.durable_metadata().recovering);
    drop(log);
    assert!(!reopen(&storage).metadata.recovering);
}
