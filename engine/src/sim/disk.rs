//! A replica's simulated durable storage: an acceptor log of records, the
//! metadata file and the latest snapshot, with writes that become durable
//! only when their sync completes, and crash faults.
//!
//! The rest of the simulator uses only this module's small API (`write`,
//! `sync_through`, `crash`, `corrupt`, `recover`), so the real synod-log
//! in-memory block device can take its place.
//!
//! Invariants:
//! - Writes become durable in the order they were made: syncing sequence
//!   number n makes every write up to n durable, none after it.
//! - A crash keeps a prefix of the unsynced writes, never a later write
//!   without the earlier ones.
//! - Recovery stops at the first torn or corrupt record, keeps the valid
//!   prefix, and reports `damaged`; it never skips a bad record.
//! - A durable snapshot drops the records at or below its slot.
//! - Once a recovery has reported `damaged`, every later recovery reports it
//!   too until the driver says the replica has caught up durably (unless the
//!   simulator models a driver that forgets it).

use std::collections::{BTreeMap, VecDeque};

use crate::paxos::{Metadata, PersistItem, Recovered};
use crate::wire::{AcceptedEntry, PersistSeq, Slot, Snapshot};

use super::fault::DiskLoss;

/// How a record on the simulated disk reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecordState {
    /// The checksum holds.
    Intact,
    /// A write that was cut short by a crash.
    Torn,
    /// A synced record that rotted afterwards.
    Corrupt,
}

/// One acceptor record in the log.
#[derive(Clone, Debug)]
struct Record {
    entry: AcceptedEntry,
    state: RecordState,
}

/// The items of one `Ready`, written and not yet synced.
#[derive(Debug)]
struct PendingWrite {
    persist_seq: PersistSeq,
    items: Vec<PersistItem>,
}

/// What a crash did to the unsynced writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CrashEffect {
    /// Unsynced items that reached the disk anyway.
    pub(super) items_kept: usize,
    /// Unsynced items lost.
    pub(super) items_lost: usize,
    /// The first lost item was an acceptor record, left torn on the disk.
    pub(super) torn: bool,
}

/// The simulated disk of one replica.
#[derive(Debug, Default)]
pub(super) struct MemoryDisk {
    /// A durable marker: the replica recovered damaged and has not caught
    /// up durably since. A correct driver keeps it beside the metadata.
    recovering: bool,
    /// False to model a driver that forgets the damage once the bad tail
    /// is cut off (a later crash then recovers as if nothing was lost).
    keeps_damage_marker: bool,
    metadata: Metadata,
    snapshot: Option<Snapshot>,
    records: Vec<Record>,
    pending: VecDeque<PendingWrite>,
    durable_seq: PersistSeq,
    /// Acceptor records made durable since the last `take_newly_durable`.
    newly_durable: Vec<AcceptedEntry>,
}

impl MemoryDisk {
    /// An empty disk; `keeps_damage_marker` as the field says.
    pub(super) fn new(keeps_damage_marker: bool) -> MemoryDisk {
        MemoryDisk {
            keeps_damage_marker,
            ..MemoryDisk::default()
        }
    }

    /// True when the next recovery will report `damaged`.
    pub(super) fn will_recover_damaged(&self) -> bool {
        self.recovering
            || self.metadata.recovering
            || self
                .records
                .iter()
                .any(|record| record.state != RecordState::Intact)
    }

    /// The replica has caught up after a damaged recovery, and that is
    /// durable: the next recovery need not report damage any more.
    pub(super) fn recovery_finished(&mut self) {
        self.recovering = false;
    }

    /// True while the damage marker is set.
    pub(super) fn is_recovering(&self) -> bool {
        self.recovering
    }
    /// Hands the disk the persist items of one `Ready`; they become durable
    /// when `sync_through` reaches `persist_seq`.
    ///
    /// # Panics
    /// When `persist_seq` does not rise (a driver bug).
    pub(super) fn write(&mut self, persist_seq: PersistSeq, items: Vec<PersistItem>) {
        let last = self
            .pending
            .back()
            .map_or(self.durable_seq, |write| write.persist_seq);
        assert!(persist_seq > last, "persist sequence numbers rise");
        self.pending.push_back(PendingWrite { persist_seq, items });
    }

    /// Every write up to `persist_seq` is now durable.
    pub(super) fn sync_through(&mut self, persist_seq: PersistSeq) {
        while self
            .pending
            .front()
            .is_some_and(|write| write.persist_seq <= persist_seq)
        {
            let write = self.pending.pop_front().expect("front() was Some");
            for item in write.items {
                self.apply(item);
            }
        }
        self.durable_seq = self.durable_seq.max(persist_seq);
    }

    /// The highest persist sequence number that is durable.
    pub(super) fn durable_seq(&self) -> PersistSeq {
        self.durable_seq
    }

    /// The acceptor records that became durable since the last call: the
    /// votes this acceptor can no longer forget.
    pub(super) fn take_newly_durable(&mut self) -> Vec<AcceptedEntry> {
        std::mem::take(&mut self.newly_durable)
    }

    /// Unsynced items waiting for a sync.
    pub(super) fn unsynced_item_count(&self) -> usize {
        self.pending.iter().map(|write| write.items.len()).sum()
    }

    fn apply(&mut self, item: PersistItem) {
        match item {
            PersistItem::Accepted(entry) => {
                self.newly_durable.push(entry.clone());
                self.records.push(Record {
                    entry,
                    state: RecordState::Intact,
                });
            }
            PersistItem::Metadata(metadata) => self.metadata = metadata,
            PersistItem::Snapshot(snapshot) => self.install_snapshot(snapshot),
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let current = self.snapshot.as_ref().map_or(Slot(0), |kept| kept.slot);
        if snapshot.slot <= current {
            return;
        }
        let slot = snapshot.slot;
        self.records.retain(|record| record.entry.slot > slot);
        self.snapshot = Some(snapshot);
    }

    /// The replica crashed. `kept_items` of the unsynced items (at most
    /// that many; a prefix) reach the disk; with [`DiskLoss::TearLast`] the
    /// next one, if it is an acceptor record, is left torn.
    pub(super) fn crash(&mut self, loss: DiskLoss, kept_items: usize) -> CrashEffect {
        let items: Vec<PersistItem> = std::mem::take(&mut self.pending)
            .into_iter()
            .flat_map(|write| write.items)
            .collect();
        let kept_items = match loss {
            DiskLoss::LoseUnsynced => 0,
            DiskLoss::KeepPrefix | DiskLoss::TearLast => kept_items.min(items.len()),
        };
        let mut effect = CrashEffect {
            items_kept: kept_items,
            items_lost: items.len() - kept_items,
            torn: false,
        };
        let mut items = items.into_iter();
        for item in items.by_ref().take(kept_items) {
            self.apply(item);
        }
        if loss == DiskLoss::TearLast {
            if let Some(PersistItem::Accepted(entry)) = items.next() {
                self.records.push(Record {
                    entry,
                    state: RecordState::Torn,
                });
                effect.torn = true;
            }
        }
        effect
    }

    /// Corrupts the `choice`-th (modulo their count) intact synced record.
    /// Returns false when there is none.
    pub(super) fn corrupt(&mut self, choice: u64) -> bool {
        let intact: Vec<usize> = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, record)| record.state == RecordState::Intact)
            .map(|(position, _)| position)
            .collect();
        if intact.is_empty() {
            return false;
        }
        let position = intact
            [usize::try_from(choice % intact.len() as u64).expect("an index below a usize length")];
        self.records[position].state = RecordState::Corrupt;
        true
    }

    /// Reads the disk back after a crash, as a restarting replica does:
    /// the last valid record per slot up to the first bad record, which
    /// (with everything after it) is cut off. Resets the sync bookkeeping
    /// for the new incarnation.
    pub(super) fn recover(&mut self) -> Recovered {
        assert!(self.pending.is_empty(), "recovery runs after a crash");
        let valid = self
            .records
            .iter()
            .position(|record| record.state != RecordState::Intact)
            .unwrap_or(self.records.len());
        let damaged = valid < self.records.len() || self.recovering;
        self.recovering = damaged && self.keeps_damage_marker;
        self.records.truncate(valid);
        let mut last_per_slot: BTreeMap<Slot, AcceptedEntry> = BTreeMap::new();
        for record in &self.records {
            last_per_slot.insert(record.entry.slot, record.entry.clone());
        }
        self.durable_seq = PersistSeq(0);
        Recovered {
            metadata: self.metadata,
            accepted: last_per_slot.into_values().collect(),
            snapshot: self.snapshot.clone(),
            damaged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ballot, Batch, NodeId};

    fn accepted(slot: u64, round: u64) -> PersistItem {
        PersistItem::Accepted(AcceptedEntry {
            slot: Slot(slot),
            ballot: Ballot {
                round,
                node: NodeId(1),
            },
            batch: Batch::copy_from_slice(&[slot as u8]),
        })
    }

    #[test]
    fn unsynced_writes_are_lost_and_later_records_supersede() {
        let mut disk = MemoryDisk::default();
        disk.write(PersistSeq(1), vec![accepted(1, 1), accepted(2, 1)]);
        disk.write(PersistSeq(2), vec![accepted(2, 2)]);
        disk.sync_through(PersistSeq(1));
        disk.write(PersistSeq(3), vec![accepted(3, 2)]);
        disk.sync_through(PersistSeq(3));
        disk.write(PersistSeq(4), vec![accepted(4, 2)]);
        let effect = disk.crash(DiskLoss::LoseUnsynced, 1);
        assert_eq!(effect.items_lost, 1);
        let recovered = disk.recover();
        assert!(!recovered.damaged);
        let rounds: Vec<(u64, u64)> = recovered
            .accepted
            .iter()
            .map(|entry| (entry.slot.0, entry.ballot.round))
            .collect();
        assert_eq!(rounds, vec![(1, 1), (2, 2), (3, 2)]);
    }

    #[test]
    fn torn_and_corrupt_records_cut_the_log_and_damage_it() {
        let mut disk = MemoryDisk::new(true);
        disk.write(PersistSeq(1), vec![accepted(1, 1)]);
        disk.write(PersistSeq(2), vec![accepted(2, 1), accepted(3, 1)]);
        let effect = disk.crash(DiskLoss::TearLast, 2);
        assert!(effect.torn);
        let recovered = disk.recover();
        assert!(recovered.damaged);
        assert_eq!(recovered.accepted.len(), 2);
        assert!(disk.corrupt(0));
        let recovered = disk.recover();
        assert!(recovered.damaged);
        assert!(recovered.accepted.is_empty());
        assert!(disk.recover().damaged, "the damage marker stays");
        disk.recovery_finished();
        assert!(!disk.recover().damaged);
        let mut forgetful = MemoryDisk::new(false);
        forgetful.write(PersistSeq(1), vec![accepted(1, 1)]);
        forgetful.sync_through(PersistSeq(1));
        assert!(forgetful.corrupt(0));
        assert!(forgetful.recover().damaged);
        assert!(!forgetful.recover().damaged, "this driver forgets");
    }

    #[test]
    fn a_durable_snapshot_drops_records_below_it() {
        let mut disk = MemoryDisk::default();
        let snapshot = Snapshot {
            slot: Slot(2),
            bytes: Batch::noop(),
        };
        disk.write(
            PersistSeq(1),
            vec![
                accepted(1, 1),
                accepted(2, 1),
                accepted(3, 1),
                PersistItem::Snapshot(snapshot),
            ],
        );
        disk.sync_through(PersistSeq(1));
        let _ = disk.crash(DiskLoss::LoseUnsynced, 0);
        let recovered = disk.recover();
        assert_eq!(recovered.accepted.len(), 1);
        assert_eq!(recovered.snapshot.map(|kept| kept.slot), Some(Slot(2)));
    }
}
