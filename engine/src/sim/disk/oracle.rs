//! The disk's end-to-end checks of recovery against what the replica made
//! durable: the log's damage marker and its recovery are not taken on
//! trust, they are compared with the disk's own bookkeeping.
//!
//! Invariants (each a [`super::super::ViolationKind::Recovery`] violation
//! when broken):
//! - Whether a restart is damaged is what the disk predicted for it
//!   (`will_recover_damaged`, from which the world decides whether another
//!   replica may be damaged).
//! - Once a recovery has reported damage, every later recovery reports it
//!   too until metadata of the replica saying it is no longer recovering
//!   is durable (unless the driver is the forgetful one). Checked at every
//!   restart, and right after every damaged one (what a crash then would
//!   find), since a crash seldom falls in that window.
//! - A recovery not flagged damaged returns every vote the replica made
//!   durable since its last damaged recovery: for each slot above the
//!   snapshot, the last durable vote, or one at a higher ballot; and a
//!   promised ballot and a commit point at least the durable ones (a
//!   promise that goes back lets the acceptor vote against it).

use std::collections::BTreeMap;

use crate::paxos::{Metadata, Recovered};
use crate::wire::{AcceptedEntry, Ballot, Slot};

/// Violations kept per disk, so one broken rule cannot flood a run.
const VIOLATIONS_MAX: usize = 8;

/// What the disk knows the replica made durable, and the violations found.
#[derive(Debug)]
pub(super) struct RecoveryOracle {
    keeps_damage_marker: bool,
    /// The last durable vote per slot: what the last recovery returned,
    /// and every vote made durable since.
    votes: BTreeMap<Slot, AcceptedEntry>,
    /// The highest durable promised ballot and commit point, on the same
    /// terms as `votes`.
    promised: Ballot,
    commit_point: Slot,
    /// A recovery reported damage, and no metadata of the replica saying
    /// it is no longer recovering has been durable since.
    owes_damage: bool,
    violations: Vec<String>,
}

impl RecoveryOracle {
    pub(super) fn new(keeps_damage_marker: bool) -> RecoveryOracle {
        RecoveryOracle {
            keeps_damage_marker,
            votes: BTreeMap::new(),
            promised: Ballot::default(),
            commit_point: Slot(0),
            owes_damage: false,
            violations: Vec::new(),
        }
    }

    /// An acceptor record of the replica became durable.
    pub(super) fn on_durable_vote(&mut self, vote: &AcceptedEntry) {
        self.votes.insert(vote.slot, vote.clone());
    }

    /// Metadata of the replica became durable: its promise and commit
    /// point, and whether the replica is still recovering.
    pub(super) fn on_durable_metadata(&mut self, metadata: Metadata) {
        self.owes_damage = metadata.recovering;
        self.promised = self.promised.max(metadata.promised);
        self.commit_point = self.commit_point.max(metadata.commit_point);
    }

    /// Records a violation (up to a limit).
    pub(super) fn violation(&mut self, description: String) {
        if self.violations.len() < VIOLATIONS_MAX {
            self.violations.push(description);
        }
    }

    /// The violations found since the last call.
    pub(super) fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    /// Checks what a restart recovered (`recovered.damaged` as the replica
    /// is told it) against what the disk predicted and what the replica
    /// made durable; then takes it as the new baseline.
    pub(super) fn check_recovery(&mut self, recovered: &Recovered, predicted_damaged: bool) {
        let damaged = recovered.damaged;
        if damaged != predicted_damaged {
            self.violation(format!(
                "the disk predicted a {} restart, recovery reported damaged = {damaged}",
                if predicted_damaged {
                    "damaged"
                } else {
                    "clean"
                }
            ));
        }
        if self.keeps_damage_marker && self.owes_damage && !damaged {
            self.violation(
                "a damaged recovery was forgotten: the replica never made its catch-up durable, \
                 yet this restart is not flagged damaged"
                    .to_string(),
            );
        }
        if !damaged {
            self.check_votes(recovered);
            self.check_metadata(&recovered.metadata);
        }
        self.promised = recovered.metadata.promised;
        self.commit_point = recovered.metadata.commit_point;
        self.votes = recovered
            .accepted
            .iter()
            .map(|entry| (entry.slot, entry.clone()))
            .collect();
        self.owes_damage = damaged;
    }

    /// Right after a damaged recovery (the log repaired): would a restart
    /// now be damaged (`marked`)? It must, but for the forgetful driver.
    pub(super) fn check_marked_after_open(&mut self, marked: bool) {
        if self.keeps_damage_marker && !marked {
            self.violation(
                "a damaged recovery left no damage marker: a crash right after it would restart \
                 clean"
                    .to_string(),
            );
        }
    }

    fn check_metadata(&mut self, metadata: &Metadata) {
        if metadata.promised < self.promised {
            self.violation(format!(
                "a restart not flagged damaged recovered promised ballot {} below the durable {}",
                metadata.promised, self.promised
            ));
        }
        if metadata.commit_point < self.commit_point {
            self.violation(format!(
                "a restart not flagged damaged recovered commit point {} below the durable {}",
                metadata.commit_point, self.commit_point
            ));
        }
    }

    fn check_votes(&mut self, recovered: &Recovered) {
        let snapshot_slot = recovered
            .snapshot
            .as_ref()
            .map_or(Slot(0), |snapshot| snapshot.slot);
        let returned: BTreeMap<Slot, &AcceptedEntry> = recovered
            .accepted
            .iter()
            .map(|entry| (entry.slot, entry))
            .collect();
        let mut missing = Vec::new();
        for (slot, vote) in self.votes.range(snapshot_slot.next()..) {
            let kept = returned.get(slot).is_some_and(|entry| {
                entry.ballot > vote.ballot
                    || (entry.ballot == vote.ballot && entry.batch == vote.batch)
            });
            if !kept {
                missing.push((
                    *slot,
                    vote.ballot,
                    returned.get(slot).map(|entry| entry.ballot),
                ));
            }
        }
        if let Some((slot, ballot, found)) = missing.first() {
            self.violation(format!(
                "a restart not flagged damaged lost {} durable vote(s) above snapshot {snapshot_slot}: \
                 first {slot} in {ballot} (recovered: {})",
                missing.len(),
                found.map_or("nothing".to_string(), |found| format!("{found}"))
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Batch, NodeId};

    fn vote(slot: u64, round: u64) -> AcceptedEntry {
        AcceptedEntry {
            slot: Slot(slot),
            ballot: Ballot {
                round,
                node: NodeId(1),
            },
            batch: Batch::copy_from_slice(&[slot as u8]),
        }
    }

    fn recovered(accepted: Vec<AcceptedEntry>, damaged: bool) -> Recovered {
        Recovered {
            metadata: Metadata::default(),
            accepted,
            snapshot: None,
            damaged,
        }
    }

    #[test]
    fn a_clean_restart_must_return_every_durable_vote() {
        let mut oracle = RecoveryOracle::new(true);
        oracle.on_durable_vote(&vote(1, 1));
        oracle.on_durable_vote(&vote(2, 1));
        oracle.check_recovery(&recovered(vec![vote(1, 1), vote(2, 3)], false), false);
        assert!(
            oracle.take_violations().is_empty(),
            "a higher ballot will do"
        );
        oracle.check_recovery(&recovered(vec![vote(1, 1)], false), false);
        assert_eq!(oracle.take_violations().len(), 1, "slot 2 was lost");
        // A damaged restart may lose votes; it sets the new baseline.
        oracle.on_durable_vote(&vote(5, 1));
        oracle.check_recovery(&recovered(vec![], true), true);
        assert!(oracle.take_violations().is_empty());
    }

    #[test]
    fn a_damaged_restart_is_owed_until_the_replica_clears_it() {
        let mut oracle = RecoveryOracle::new(true);
        oracle.check_recovery(&recovered(vec![], true), true);
        oracle.check_recovery(&recovered(vec![], false), false);
        assert_eq!(
            oracle.take_violations().len(),
            1,
            "the damage was forgotten"
        );
        oracle.check_recovery(&recovered(vec![], true), true);
        oracle.on_durable_metadata(Metadata::default());
        oracle.check_recovery(&recovered(vec![], false), false);
        assert!(
            oracle.take_violations().is_empty(),
            "cleared by the replica"
        );
        oracle.check_recovery(&recovered(vec![], false), true);
        assert_eq!(oracle.take_violations().len(), 1, "mispredicted");
        oracle.on_durable_metadata(Metadata {
            promised: Ballot {
                round: 4,
                node: NodeId(2),
            },
            commit_point: Slot(3),
            recovering: false,
        });
        oracle.check_recovery(&recovered(vec![], false), false);
        assert_eq!(
            oracle.take_violations().len(),
            2,
            "the promise and the commit point went back"
        );
        oracle.check_recovery(&recovered(vec![], false), false);
        assert!(oracle.take_violations().is_empty(), "a new baseline");
        let mut forgetful = RecoveryOracle::new(false);
        forgetful.check_recovery(&recovered(vec![], true), true);
        forgetful.check_recovery(&recovered(vec![], false), false);
        forgetful.check_marked_after_open(false);
        assert!(forgetful.take_violations().is_empty());
    }
}
