//! Review of the simdisk merge (5c9cfde..189ea60): failing tests for what
//! the review found in the metadata rules of synod-log.
//!
//! 1. Recovery takes `recovering` only from the *first* metadata record of a
//!    group (`MetadataOrder::take_record` moves `records_from` to G + 1 after
//!    the first record of group G, so later records of the same group are
//!    treated as older). The writer folds a group's records in order (the
//!    last one wins), so recovery and `Log::durable_metadata` disagree, and
//!    a durable `recovering = true` can be forgotten.
//! 2. One damaged metadata copy whose version bytes were hit makes `open`
//!    fail with `UnsupportedVersion`, although the other copy is intact
//!    (the version is checked before the checksum).
//! 3. A metadata copy with a valid checksum but an extreme `log_start`
//!    panics recovery (overflow) instead of being reported.

mod common;

use common::{ballot, entry, open_mem, small_config};
use synod_log::format::{decode_metadata_copy, encode_metadata_copy, BLOCK_BYTES};
use synod_log::{CrashFault, LogError, MemStorage, Metadata, METADATA_FILE};
use synod_net::wire::Slot;

fn metadata(round: u64, recovering: bool) -> Metadata {
    Metadata {
        promised: ballot(round, 1),
        commit_point: Slot(0),
        recovering,
    }
}

fn reopen(storage: &MemStorage) -> synod_log::Recovered {
    open_mem(storage, small_config()).1
}

#[test]
fn the_last_metadata_record_of_a_group_wins_on_recovery() {
    // Two metadata records in one group commit: the later one sets the flag.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(1, false)).unwrap();
    log.append_metadata(metadata(1, true)).unwrap();
    log.commit().unwrap();
    assert!(
        log.durable_metadata().recovering,
        "the writer folds the group: the last record wins"
    );
    drop(log);
    let recovered = reopen(&storage);
    assert!(
        recovered.metadata.recovering,
        "recovery forgot a durable recovering=true written last in its group: {:?}",
        recovered.metadata
    );
}

#[test]
fn durable_metadata_is_what_a_restart_recovers_when_a_group_clears_the_flag() {
    // The replica's pattern after a damaged restart: still recovering in one
    // Ready, done in the next, both appended to the same group.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(1, true)).unwrap();
    log.append(&entry(1, 1, 100)).unwrap();
    log.append_metadata(metadata(1, false)).unwrap();
    log.commit().unwrap();
    let promised_now = log.durable_metadata();
    drop(log);
    let recovered = reopen(&storage);
    assert_eq!(
        recovered.metadata, promised_now,
        "Log::durable_metadata says what a restart recovers now"
    );
}

#[test]
fn metadata_appended_after_a_file_copy_in_the_same_group_supersedes_it() {
    // A record rewritten to agree with the file copy, then a newer record in
    // the same group (appended after the copy): the newer one counts.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.append_metadata(metadata(1, true)).unwrap();
    log.persist_metadata(metadata(1, false)).unwrap();
    log.append_metadata(metadata(1, true)).unwrap();
    log.commit().unwrap();
    assert!(log.durable_metadata().recovering);
    drop(log);
    assert!(
        reopen(&storage).metadata.recovering,
        "recovery must take the record appended after the file copy"
    );
}

/// A log whose metadata file holds two valid copies.
fn log_with_two_metadata_copies() -> MemStorage {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.persist_metadata(metadata(1, false)).unwrap();
    log.persist_metadata(metadata(2, false)).unwrap();
    log.append(&entry(1, 2, 100)).unwrap();
    log.commit().unwrap();
    drop(log);
    let file = storage.durable_bytes(METADATA_FILE).expect("metadata file");
    for copy in 0..2 {
        let block = &file[copy * BLOCK_BYTES..(copy + 1) * BLOCK_BYTES];
        assert!(matches!(decode_metadata_copy(block), Ok(Some(_))));
    }
    storage
}

#[test]
fn a_bit_flip_in_one_metadata_copy_version_leaves_the_other_copy_usable() {
    let storage = log_with_two_metadata_copies();
    let file = storage.durable_bytes(METADATA_FILE).unwrap();
    let older = (0..2)
        .min_by_key(|&copy| {
            decode_metadata_copy(&file[copy * BLOCK_BYTES..(copy + 1) * BLOCK_BYTES])
                .unwrap()
                .unwrap()
                .write_seq
        })
        .unwrap();
    // Version 2 -> 0: one flipped bit in a synced block of the older copy.
    assert!(storage.corrupt(METADATA_FILE, older * BLOCK_BYTES + 8, 0x02));
    match synod_log::Log::open(storage.clone(), small_config()) {
        Ok((_, recovered)) => {
            assert!(recovered.damaged, "a damaged copy is damage");
            assert_eq!(recovered.metadata.promised, ballot(2, 1));
        }
        Err(LogError::UnsupportedVersion { found, .. }) => panic!(
            "one damaged metadata copy (version read as {found}) made the log \
             unopenable although the other copy is intact"
        ),
        Err(other) => panic!("open failed: {other}"),
    }
}

#[test]
fn an_extreme_log_start_in_a_valid_metadata_copy_does_not_panic_recovery() {
    // The oldest segment's first group is torn; the metadata file (valid
    // checksum) names u64::MAX as the first group of the log.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.persist_metadata(metadata(1, false)).unwrap();
    log.append(&entry(1, 1, 6000)).unwrap();
    let write = log.start_commit().unwrap().expect("a group");
    storage.write_pending(&write).unwrap();
    drop(write);
    drop(log);
    storage.restart(CrashFault::TearLastWrite { keep_bytes: 100 });
    let mut file = storage.durable_bytes(METADATA_FILE).unwrap();
    for copy in 0..2 {
        let block = &mut file[copy * BLOCK_BYTES..(copy + 1) * BLOCK_BYTES];
        if let Ok(Some(mut decoded)) = decode_metadata_copy(block) {
            decoded.log_start = synod_log::CommitSeq(u64::MAX);
            encode_metadata_copy(block, &decoded);
        }
    }
    storage.put_file(METADATA_FILE, file);
    // Must report (damaged, or an error), never panic.
    let mut probe = storage.clone();
    let outcome = synod_log::peek(&mut probe, &small_config());
    assert!(outcome.map_or(true, |recovered| recovered.damaged));
}

#[test]
fn an_extreme_write_number_in_a_valid_metadata_copy_does_not_panic_open() {
    // Open now writes the metadata file itself (the damage marker): a copy
    // whose write number is u64::MAX (valid checksum) overflows it.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.persist_metadata(metadata(1, false)).unwrap();
    log.append(&entry(1, 1, 100)).unwrap();
    log.commit().unwrap();
    log.append(&entry(2, 1, 6000)).unwrap();
    let write = log.start_commit().unwrap().expect("a group");
    storage.write_pending(&write).unwrap();
    drop(write);
    drop(log);
    storage.restart(CrashFault::TearLastWrite { keep_bytes: 100 });
    let mut file = storage.durable_bytes(METADATA_FILE).unwrap();
    for copy in 0..2 {
        let block = &mut file[copy * BLOCK_BYTES..(copy + 1) * BLOCK_BYTES];
        if let Ok(Some(mut decoded)) = decode_metadata_copy(block) {
            decoded.write_seq = u64::MAX;
            encode_metadata_copy(block, &decoded);
        }
    }
    storage.put_file(METADATA_FILE, file);
    // An error is acceptable; a panic is not.
    let _ = synod_log::Log::open(storage.clone(), small_config());
}

#[test]
fn metadata_copies_that_both_fail_their_checksums_are_damage_not_another_version() {
    // Both copies' version bytes hit: neither checksum holds, so both are
    // damaged copies; the log opens as damaged (a non-voter) instead of
    // refusing a version it cannot know was written.
    let storage = log_with_two_metadata_copies();
    let mut file = storage.durable_bytes(METADATA_FILE).unwrap();
    for copy in 0..2 {
        file[copy * BLOCK_BYTES + 8] ^= 0x01;
    }
    storage.put_file(METADATA_FILE, file);
    let (_, recovered) = synod_log::Log::open(storage.clone(), small_config())
        .expect("two damaged copies are damage");
    assert!(recovered.damaged);
    assert!(recovered.metadata.recovering, "the damage is marked");
}

#[test]
fn a_checksum_valid_metadata_copy_of_another_version_is_refused() {
    let storage = log_with_two_metadata_copies();
    let mut file = storage.durable_bytes(METADATA_FILE).unwrap();
    let block = &mut file[..BLOCK_BYTES];
    block[8] = 3;
    let crc = crc32c::crc32c(&block[0..64]);
    block[64..68].copy_from_slice(&crc.to_le_bytes());
    storage.put_file(METADATA_FILE, file);
    assert!(matches!(
        synod_log::Log::open(storage.clone(), small_config()),
        Err(LogError::UnsupportedVersion { found: 3, .. })
    ));
}

#[test]
fn open_repairs_a_damaged_metadata_copy_even_when_the_marker_is_already_set() {
    // Already recovering (marker set), then one copy is hit: the next open
    // must rewrite it, or every later restart would be damaged again
    // although the owner has caught up.
    for hit in 0..2 {
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, small_config());
        log.persist_metadata(metadata(1, true)).unwrap();
        log.persist_metadata(metadata(2, true)).unwrap();
        log.append(&entry(1, 2, 100)).unwrap();
        log.commit().unwrap();
        drop(log);
        assert!(storage.corrupt(METADATA_FILE, hit * BLOCK_BYTES + 20, 0x10));
        let (mut log, recovered) = open_mem(&storage, small_config());
        assert!(recovered.damaged && recovered.metadata.recovering);
        // The owner catches up and clears the flag.
        log.append_metadata(metadata(2, false)).unwrap();
        log.commit().unwrap();
        drop(log);
        let recovered = reopen(&storage);
        assert!(
            !recovered.damaged && !recovered.metadata.recovering,
            "copy {hit}: {}",
            recovered.report
        );
        assert_eq!(recovered.metadata.promised, ballot(2, 1));
    }
}

#[test]
fn open_repairs_both_metadata_copies_when_both_are_damaged() {
    let storage = log_with_two_metadata_copies();
    for copy in 0..2 {
        assert!(storage.corrupt(METADATA_FILE, copy * BLOCK_BYTES + 30, 0x01));
    }
    let (log, recovered) = open_mem(&storage, small_config());
    assert!(recovered.damaged);
    drop(log);
    let mut probe = storage.clone();
    let again = synod_log::peek(&mut probe, &small_config()).unwrap();
    assert!(again.report.damage.is_empty(), "{}", again.report);
    assert!(again.metadata.recovering, "the marker stays until cleared");
}
