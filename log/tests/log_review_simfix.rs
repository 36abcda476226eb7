//! Review of the simfix merge (d430f0a..cec28a7): failing tests for what
//! the review found in synod-log's metadata file recovery.
//!
//! 1. A metadata copy whose block reads back as all zeros is taken for a
//!    copy never written (`decode_metadata_copy` returns `Ok(None)`), even
//!    when the other copy's write number proves that block was written
//!    (write numbers alternate blocks: a copy numbered `n >= 2` in block
//!    `n % 2` means block `(n + 1) % 2` once held copy `n - 1`). If the
//!    zeroed block held the newest copy, recovery silently uses the older
//!    one: the promised ballot goes back and the restart is reported clean.

mod common;

use common::{ballot, entry, open_mem, small_config};
use synod_log::format::{decode_metadata_copy, BLOCK_BYTES};
use synod_log::{MemStorage, Metadata, METADATA_FILE};
use synod_net::wire::Slot;

fn metadata(round: u64) -> Metadata {
    Metadata {
        promised: ballot(round, 1),
        commit_point: Slot(0),
        recovering: false,
    }
}

#[test]
fn a_zeroed_newest_metadata_copy_is_damage_not_a_clean_rollback() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    // Write numbers 1 (block 1), 2 (block 0), 3 (block 1).
    for round in 1..=3 {
        log.persist_metadata(metadata(round)).unwrap();
    }
    log.append(&entry(1, 3, 100)).unwrap();
    log.commit().unwrap();
    assert_eq!(log.durable_metadata().promised, ballot(3, 1));
    drop(log);
    let mut file = storage.durable_bytes(METADATA_FILE).unwrap();
    let newest = (0..2)
        .max_by_key(|&copy| {
            decode_metadata_copy(&file[copy * BLOCK_BYTES..(copy + 1) * BLOCK_BYTES])
                .unwrap()
                .unwrap()
                .write_seq
        })
        .unwrap();
    // The sector holding the newest copy reads back as zeros (a lost or
    // trimmed sector): the other block holds write number 2, so this
    // block was certainly written.
    file[newest * BLOCK_BYTES..(newest + 1) * BLOCK_BYTES].fill(0);
    storage.put_file(METADATA_FILE, file);
    let (_, recovered) = open_mem(&storage, small_config());
    assert!(
        recovered.damaged || recovered.metadata.promised >= ballot(3, 1),
        "a clean restart with the promised ballot gone back from round 3 to {:?}: {}",
        recovered.metadata.promised,
        recovered.report
    );
}

#[test]
fn a_zeroed_second_copy_is_damage_even_when_the_first_is_all_that_is_left() {
    // Write numbers 1 (block 1) and 2 (block 0); block 0 then reads back as
    // zeros. Only a file created with both copies tells this from a file
    // that never got its second write.
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    for round in 1..=2 {
        log.persist_metadata(metadata(round)).unwrap();
    }
    drop(log);
    let mut file = storage.durable_bytes(METADATA_FILE).unwrap();
    file[..BLOCK_BYTES].fill(0);
    storage.put_file(METADATA_FILE, file);
    let (_, recovered) = open_mem(&storage, small_config());
    assert!(
        recovered.damaged,
        "round 2 was lost and the restart says clean: {}",
        recovered.report
    );
}

#[test]
fn a_fresh_metadata_file_recovers_clean() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    log.persist_metadata(metadata(1)).unwrap();
    drop(log);
    let (_, recovered) = open_mem(&storage, small_config());
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.metadata.promised, ballot(1, 1));
}
