//! Crash tests over the in-memory device: for many random cut points of the
//! last write (byte-granular) and bit flips, recovery returns exactly the
//! groups that were synced before the crash, and says when it dropped
//! anything.

mod common;

use std::collections::BTreeMap;

use common::{entry, open_mem, small_config};
use synod_log::{CorruptionPolicy, CrashFault, Damage, Log, LogConfig, LogError, MemStorage};
use synod_net::wire::{AcceptedEntry, Slot};

/// A tiny deterministic generator (splitmix64), so a failing seed replays.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Random groups: mostly rising slots, sometimes re-accepting an earlier
/// slot at a higher ballot.
fn random_groups(generator: &mut Generator, group_count: usize) -> Vec<Vec<AcceptedEntry>> {
    let mut next_slot = 1u64;
    let mut round = 1u64;
    (0..group_count)
        .map(|_| {
            let entry_count = 1 + generator.below(6) as usize;
            (0..entry_count)
                .map(|_| {
                    if generator.below(8) == 0 && next_slot > 3 {
                        round += 1;
                        entry(
                            next_slot - 1 - generator.below(3),
                            round,
                            generator.below(900) as usize,
                        )
                    } else {
                        next_slot += 1;
                        entry(next_slot - 1, round, generator.below(2500) as usize)
                    }
                })
                .collect()
        })
        .collect()
}

fn model(groups: &[Vec<AcceptedEntry>]) -> Vec<AcceptedEntry> {
    let mut last: BTreeMap<Slot, AcceptedEntry> = BTreeMap::new();
    for group in groups {
        for accepted in group {
            last.insert(accepted.slot, accepted.clone());
        }
    }
    last.into_values().collect()
}

fn write_groups(log: &mut Log<MemStorage>, groups: &[Vec<AcceptedEntry>]) -> Vec<(u64, u64)> {
    let mut extents = Vec::new();
    for group in groups {
        for accepted in group {
            log.append(accepted).expect("groups are small");
        }
        log.commit().expect("the in-memory disk has room");
        extents.push(log.write_position());
    }
    extents
        .into_iter()
        .map(|(segment, end)| (segment.0, end))
        .collect()
}

#[test]
fn torn_last_writes_recover_exactly_the_synced_groups() {
    for seed in 0..400u64 {
        let mut generator = Generator(seed);
        let group_count = 2 + generator.below(25) as usize;
        let groups = random_groups(&mut generator, group_count);
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, small_config());
        let last = groups.len() - 1;
        write_groups(&mut log, &groups[..last]);
        let (_, start) = log.write_position();
        for accepted in &groups[last] {
            log.append(accepted).expect("room");
        }
        storage.arm_crash();
        assert!(
            log.commit().is_err(),
            "seed {seed}: the armed crash fails the commit"
        );
        drop(log);
        let written = 4096 * 8;
        let keep_bytes = match generator.below(4) {
            0 => 0,
            1 => written,
            _ => generator.below(written as u64) as usize,
        };
        storage.restart(CrashFault::TearLastWrite { keep_bytes });
        let (_, recovered) = open_mem(&storage, small_config());
        let before = model(&groups[..last]);
        let after = model(&groups);
        if recovered.accepted == after {
            assert!(
                !recovered.damaged,
                "seed {seed}: a whole group is not damage"
            );
        } else {
            assert_eq!(
                recovered.accepted, before,
                "seed {seed} keep {keep_bytes} start {start}"
            );
            assert_eq!(
                recovered.damaged,
                keep_bytes > 0,
                "seed {seed} keep {keep_bytes}: {}",
                recovered.report
            );
            assert!(
                !recovered
                    .report
                    .damage
                    .iter()
                    .any(|damage| matches!(damage, Damage::Corruption { .. })),
                "seed {seed}: a torn tail is not corruption: {}",
                recovered.report
            );
        }
        if keep_bytes == 0 {
            assert_eq!(recovered.accepted, before, "seed {seed}");
        }
    }
}

#[test]
fn every_cut_point_of_one_write_recovers_a_prefix() {
    let mut generator = Generator(7);
    let groups = random_groups(&mut generator, 4);
    let mut previous_complete = false;
    for keep_bytes in 0..3 * 4096 {
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, small_config());
        write_groups(&mut log, &groups[..3]);
        for accepted in &groups[3] {
            log.append(accepted).expect("room");
        }
        storage.arm_crash();
        assert!(log.commit().is_err());
        drop(log);
        storage.restart(CrashFault::TearLastWrite { keep_bytes });
        let (mut log, recovered) = open_mem(&storage, small_config());
        let complete = recovered.accepted == model(&groups);
        if !complete {
            assert_eq!(
                recovered.accepted,
                model(&groups[..3]),
                "cut at {keep_bytes}"
            );
        }
        assert!(
            !previous_complete || complete,
            "a longer write never loses the group"
        );
        previous_complete = complete;
        // The log goes on after the cut, and the next recovery is clean.
        log.append(&entry(1000, 9, 10)).expect("room");
        log.commit().expect("commit after recovery");
        drop(log);
        let (_, again) = open_mem(&storage, small_config());
        assert!(!again.damaged, "cut at {keep_bytes}: {}", again.report);
        assert_eq!(again.accepted.last(), Some(&entry(1000, 9, 10)));
    }
    assert!(previous_complete, "the whole write recovers the group");
}

#[test]
fn lost_unsynced_writes_are_not_damage() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    let groups = random_groups(&mut Generator(3), 5);
    write_groups(&mut log, &groups[..4]);
    for accepted in &groups[4] {
        log.append(accepted).expect("room");
    }
    storage.arm_crash();
    assert!(log.commit().is_err());
    drop(log);
    storage.restart(CrashFault::LoseUnsynced);
    let (_, recovered) = open_mem(&storage, small_config());
    assert_eq!(recovered.accepted, model(&groups[..4]));
    assert!(!recovered.damaged, "{}", recovered.report);
}

#[test]
fn bit_flips_in_the_last_group_cut_it_off_and_flag_damage() {
    for seed in 0..300u64 {
        let mut generator = Generator(seed + 10_000);
        let group_count = 2 + generator.below(10) as usize;
        let groups = random_groups(&mut generator, group_count);
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, small_config());
        let extents = write_groups(&mut log, &groups);
        drop(log);
        let (segment, end) = *extents.last().expect("groups");
        let start = match extents.len() {
            1 => 4096,
            n if extents[n - 2].0 == segment => extents[n - 2].1,
            _ => 4096,
        };
        let offset = start + generator.below(end - start);
        let name = synod_log::SegmentId(segment).file_name();
        assert!(storage.corrupt(&name, offset as usize, 1 << generator.below(8)));
        let (_, recovered) = open_mem(&storage, small_config());
        if recovered.accepted == model(&groups) {
            assert!(
                !recovered.damaged,
                "seed {seed}: a flip in the padding changes nothing"
            );
        } else {
            assert_eq!(
                recovered.accepted,
                model(&groups[..groups.len() - 1]),
                "seed {seed}"
            );
            assert!(recovered.damaged, "seed {seed}");
        }
    }
}

#[test]
fn bit_flips_before_intact_groups_are_corruption_with_file_and_offset() {
    let mut detected = 0;
    for seed in 0..200u64 {
        let mut generator = Generator(seed + 20_000);
        let group_count = 4 + generator.below(20) as usize;
        let groups = random_groups(&mut generator, group_count);
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, small_config());
        let extents = write_groups(&mut log, &groups);
        drop(log);
        let victim = generator.below(groups.len() as u64 - 2) as usize;
        let (segment, _) = extents[victim];
        let start = if victim > 0 && extents[victim - 1].0 == segment {
            extents[victim - 1].1
        } else {
            4096
        };
        // The victim group's first record header: always checked.
        let offset = start + generator.below(64);
        let name = synod_log::SegmentId(segment).file_name();
        let pristine = storage.fork();
        assert!(storage.corrupt(&name, offset as usize, 1 << generator.below(8)));
        let damaged = storage.fork();
        match Log::open(storage.clone(), small_config()) {
            Err(LogError::Corruption {
                path,
                offset: found,
                ..
            }) => {
                assert!(path.ends_with(&name), "seed {seed}: {}", path.display());
                assert_eq!(found, start, "seed {seed}");
                detected += 1;
            }
            Err(other) => panic!("seed {seed}: {other}"),
            Ok((_, recovered)) => {
                // The flip hit a group that lies in a segment of its own
                // with nothing after it in that segment and the next segment
                // starting the chain anew is impossible: the log must notice.
                panic!(
                    "seed {seed}: corruption went unnoticed: {}",
                    recovered.report
                );
            }
        }
        let config = LogConfig {
            on_corruption: CorruptionPolicy::RejoinAsNonVoter,
            ..small_config()
        };
        let (mut log, recovered) =
            Log::open(damaged.clone(), config.clone()).expect("rejoin opens");
        assert!(recovered.damaged);
        assert_eq!(recovered.accepted, model(&groups[..victim]), "seed {seed}");
        log.append(&entry(5000, 50, 10)).expect("room");
        log.commit().expect("commit after repair");
        drop(log);
        let (_, again) = Log::open(damaged, config).expect("reopen after repair");
        assert!(!again.damaged, "seed {seed}: {}", again.report);
        let mut expected = model(&groups[..victim]);
        expected.push(entry(5000, 50, 10));
        assert_eq!(again.accepted, expected, "seed {seed}");
        drop(pristine);
    }
    assert_eq!(detected, 200);
}

#[test]
fn a_zeroed_sector_in_a_synced_group_is_corruption() {
    let storage = MemStorage::new();
    let (mut log, _) = open_mem(&storage, small_config());
    let groups = random_groups(&mut Generator(99), 6);
    write_groups(&mut log, &groups);
    drop(log);
    assert!(storage.corrupt_sector(&synod_log::SegmentId(1).file_name(), 8, 0));
    let error = Log::open(storage.clone(), small_config())
        .err()
        .expect("corruption is refused");
    assert!(error.is_corruption(), "{error}");
}

/// A log whose segments are recycled spares full of stale records of
/// another layout: torn last writes still recover exactly the synced groups.
#[test]
fn torn_writes_in_recycled_segments_recover_exactly() {
    for seed in 0..150u64 {
        let storage = MemStorage::new();
        let (mut log, _) = open_mem(&storage, small_config());
        for slot in 1..=60u64 {
            log.append(&entry(slot, 1, 3000)).expect("room");
            if slot.is_multiple_of(3) {
                log.commit().expect("commit");
            }
        }
        let snapshot = synod_net::wire::Snapshot {
            slot: Slot(60),
            bytes: synod_net::wire::Batch::copy_from_slice(b"s"),
        };
        log.install_snapshot(&snapshot).expect("snapshot");
        let mut generator = Generator(seed + 30_000);
        let group_count = 2 + generator.below(40) as usize;
        let groups: Vec<Vec<AcceptedEntry>> = random_groups(&mut generator, group_count)
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .map(|accepted| AcceptedEntry {
                        slot: Slot(accepted.slot.0 + 1000),
                        ..accepted
                    })
                    .collect()
            })
            .collect();
        let last = groups.len() - 1;
        write_groups(&mut log, &groups[..last]);
        for accepted in &groups[last] {
            log.append(accepted).expect("room");
        }
        storage.arm_crash();
        assert!(log.commit().is_err());
        drop(log);
        let keep_bytes = generator.below(5 * 4096) as usize;
        storage.restart(CrashFault::TearLastWrite { keep_bytes });
        let (_, recovered) = open_mem(&storage, small_config());
        if recovered.accepted == model(&groups) {
            // A tear between the group and its terminator block leaves stale
            // bytes after a whole group; recovery cannot tell them from a
            // torn later write and flags damage: conservative, never unsafe.
        } else {
            assert_eq!(
                recovered.accepted,
                model(&groups[..last]),
                "seed {seed} keep {keep_bytes}"
            );
            assert_eq!(
                recovered.damaged,
                keep_bytes > 0,
                "seed {seed} keep {keep_bytes}: {}",
                recovered.report
            );
        }
        assert!(
            !recovered
                .report
                .damage
                .iter()
                .any(|damage| matches!(damage, Damage::Corruption { .. })),
            "seed {seed}: {}",
            recovered.report
        );
    }
}
