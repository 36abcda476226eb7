//! Helpers shared by the log's integration tests.
#![allow(dead_code)]

use synod_log::{Log, LogConfig, MemStorage};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

/// A small configuration so that tests roll over segments quickly.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        group_bytes_max: 16 * 1024,
        ..LogConfig::default()
    }
}

/// A ballot of `round` by `node`.
pub fn ballot(round: u64, node: u8) -> Ballot {
    Ballot {
        round,
        node: NodeId(node),
    }
}

/// A batch whose bytes name its slot and ballot, of `length` bytes.
pub fn batch_for(slot: u64, round: u64, length: usize) -> Batch {
    let bytes: Vec<u8> = (0..length)
        .map(|index| (slot as usize * 31 + round as usize * 7 + index) as u8)
        .collect();
    Batch::copy_from_slice(&bytes)
}

/// An accepted entry of `slot` in `round` with a batch of `length` bytes.
pub fn entry(slot: u64, round: u64, length: usize) -> AcceptedEntry {
    AcceptedEntry {
        slot: Slot(slot),
        ballot: ballot(round, 1),
        batch: batch_for(slot, round, length),
    }
}

/// Opens (recovers) the log on the in-memory disk.
pub fn open_mem(
    storage: &MemStorage,
    config: LogConfig,
) -> (Log<MemStorage>, synod_log::Recovered) {
    Log::open(storage.clone(), config).expect("opening an in-memory log")
}
