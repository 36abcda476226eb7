//! Checksum-valid metadata copies (and a snapshot) with fuzz-chosen field
//! values, over a small real log that may end in a torn write: recovery,
//! the damage marker `open` writes, and the writer after it return errors
//! or go on, never panic. (Arbitrary bytes rarely pass a checksum, so
//! `recover_segment` never reaches the values behind it; this target
//! encodes them with `encode_metadata_copy`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use synod_log::format::{encode_metadata_copy, encode_snapshot, MetadataCopy, BLOCK_BYTES};
use synod_log::{
    CommitSeq, CorruptionPolicy, CrashFault, Log, LogConfig, MemStorage, Metadata, METADATA_FILE,
    SNAPSHOT_FILE,
};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

/// Reads fuzz input as numbers; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        first
    }

    /// A u64 that is often extreme: the first byte picks 0, 1, u64::MAX,
    /// u64::MAX - 1, a small number or eight raw bytes.
    fn number(&mut self) -> u64 {
        match self.byte() % 6 {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => u64::MAX - 1,
            4 => u64::from(self.byte()),
            _ => (0..8).fold(0u64, |value, _| (value << 8) | u64::from(self.byte())),
        }
    }

    fn metadata(&mut self) -> Metadata {
        Metadata {
            promised: Ballot {
                round: self.number(),
                node: NodeId(self.byte()),
            },
            commit_point: Slot(self.number()),
            recovering: self.byte() & 1 == 1,
        }
    }
}

fn config(mode: u8) -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        group_bytes_max: 16 << 10,
        spare_segments_max: 1,
        on_corruption: if mode & 1 == 1 {
            CorruptionPolicy::RejoinAsNonVoter
        } else {
            CorruptionPolicy::Refuse
        },
    }
}

fn entry(slot: u64, round: u64, length: usize) -> AcceptedEntry {
    AcceptedEntry {
        slot: Slot(slot),
        ballot: Ballot {
            round,
            node: NodeId(1),
        },
        batch: Batch::copy_from_slice(&vec![slot as u8; length]),
    }
}

/// A small log written through the real writer: a few groups, some with
/// metadata records, the last write maybe torn.
fn build_log(input: &mut Input<'_>, storage: &MemStorage, config: &LogConfig) -> Option<()> {
    let (mut log, _) = Log::open(storage.clone(), config.clone()).ok()?;
    let groups = input.byte() % 5;
    for group in 0..u64::from(groups) {
        log.append(&entry(group + 1, 1, usize::from(input.byte()) * 8))
            .ok()?;
        if input.byte() & 1 == 1 {
            log.append_metadata(Metadata {
                promised: Ballot {
                    round: 1,
                    node: NodeId(1),
                },
                commit_point: Slot(group),
                recovering: input.byte() & 1 == 1,
            })
            .ok()?;
        }
        log.commit().ok()?;
    }
    if input.byte() & 1 == 1 {
        log.append(&entry(100, 2, 3000)).ok()?;
        let write = log.start_commit().ok()??;
        storage.write_pending(&write).ok()?;
        drop(write);
        drop(log);
        let keep_bytes = usize::from(input.byte()) * 16;
        storage.restart(CrashFault::TearLastWrite { keep_bytes });
    }
    Some(())
}

fn metadata_file(input: &mut Input<'_>) -> Vec<u8> {
    let mut file = vec![0u8; 2 * BLOCK_BYTES];
    for copy_index in 0..2 {
        let present = input.byte();
        if present % 4 == 0 {
            continue;
        }
        let copy = MetadataCopy {
            write_seq: input.number(),
            metadata: input.metadata(),
            log_start: CommitSeq(input.number()),
            supersedes_below: CommitSeq(input.number()),
        };
        let block = &mut file[copy_index * BLOCK_BYTES..(copy_index + 1) * BLOCK_BYTES];
        encode_metadata_copy(block, &copy);
        if present % 4 == 3 {
            // One damaged byte in this copy (the version bytes among them).
            let at = usize::from(input.byte()) % 68;
            block[at] ^= input.byte() | 1;
        }
    }
    file
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.byte();
    let config = config(mode);
    let storage = MemStorage::new();
    if build_log(&mut input, &storage, &config).is_none() {
        return;
    }
    if mode & 2 == 2 {
        storage.put_file(METADATA_FILE, metadata_file(&mut input));
    }
    if mode & 4 == 4 {
        let slot = input.number();
        storage.put_file(
            SNAPSHOT_FILE,
            encode_snapshot(Slot(slot), &slot.to_le_bytes()),
        );
    }
    let _ = synod_log::peek(&mut storage.clone(), &config);
    let Ok((mut log, recovered)) = Log::open(storage.clone(), config.clone()) else {
        return;
    };
    // The writer goes on from whatever was recovered: an entry above the
    // snapshot, metadata with fuzz-chosen values (in a record and in the
    // file), a commit, a snapshot where the durable one stands.
    let snapshot_slot = log.snapshot_slot();
    let slot = snapshot_slot.0.saturating_add(1).min(u64::MAX - 1);
    let _ = log.append(&entry(slot, 3, 100));
    let _ = log.append_metadata(input.metadata());
    let _ = log.commit();
    let _ = log.persist_metadata(input.metadata());
    if recovered.snapshot.is_some() {
        let snapshot = synod_net::wire::Snapshot {
            slot: snapshot_slot,
            bytes: Batch::copy_from_slice(b"state"),
        };
        let _ = log.install_snapshot(&snapshot);
    }
    drop(log);
    let _ = Log::open(storage, config);
});
