//! The checks every run makes while it runs: agreement per slot, apply
//! order, identical outcomes and snapshots per slot. The end-of-run checks
//! (lost writes, convergence, the workload's history check) live in
//! `verdict`.
//!
//! Invariants:
//! - The first batch committed for a slot, by any replica in any
//!   incarnation, is the slot's chosen value for the rest of the run.
//! - Each kind of violation is reported at most `REPORTS_PER_KIND_MAX`
//!   times, so one broken rule cannot flood a report.

use std::collections::BTreeMap;

use crate::sm::CommandOutcome;
use crate::wire::{AcceptedEntry, Ballot, Batch, ClientId, NodeId, Seq, Slot, Snapshot};

use super::report::{Violation, ViolationKind};

/// Reports kept per violation kind.
const REPORTS_PER_KIND_MAX: usize = 5;

/// A 64-bit FNV-1a digest: deterministic across runs and platforms.
#[derive(Clone, Copy, Debug)]
pub(super) struct Digest(u64);

impl Digest {
    pub(super) fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn bytes(mut self, bytes: &[u8]) -> Digest {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    pub(super) fn number(self, value: u64) -> Digest {
        self.bytes(&value.to_le_bytes())
    }

    pub(super) fn value(self) -> u64 {
        self.0
    }
}

/// A committed slot's chosen batch and who committed it first.
#[derive(Debug)]
struct ChosenSlot {
    batch: Batch,
    first_node: NodeId,
}

/// The durable votes for one slot, per ballot, and the value they chose.
#[derive(Debug, Default)]
struct SlotVotes {
    ballots: BTreeMap<Ballot, (Batch, u64)>,
    chosen: Option<(Ballot, Batch)>,
}

/// The running checks.
#[derive(Debug, Default)]
pub(super) struct Checker {
    /// A phase-2 quorum: that many durable votes for one (slot, ballot)
    /// choose its value.
    quorum: usize,
    /// The acceptors' durable votes: what the protocol has chosen, whether
    /// or not any replica has learned it.
    votes: BTreeMap<Slot, SlotVotes>,
    chosen: BTreeMap<Slot, ChosenSlot>,
    outcome_digests: BTreeMap<Slot, (u64, NodeId)>,
    snapshot_digests: BTreeMap<Slot, (u64, NodeId)>,
    violations: Vec<Violation>,
    reported_per_kind: BTreeMap<ViolationKind, usize>,
}

impl Checker {
    /// Checks for a group whose phase-2 quorum is `quorum`.
    pub(super) fn new(quorum: usize) -> Checker {
        Checker {
            quorum,
            ..Checker::default()
        }
    }

    /// Acceptor `node`'s records in `entries` became durable: each is a
    /// vote for (slot, ballot, value). A value with a quorum of votes is
    /// chosen, and a slot is chosen with one value only.
    pub(super) fn on_durable_votes(
        &mut self,
        time_ns: u64,
        node: NodeId,
        entries: Vec<AcceptedEntry>,
    ) {
        for entry in entries {
            let AcceptedEntry {
                slot,
                ballot,
                batch,
            } = entry;
            let votes = self.votes.entry(slot).or_default();
            let (value, voters) = votes
                .ballots
                .entry(ballot)
                .or_insert_with(|| (batch.clone(), 0));
            if *value != batch {
                let description = format!(
                    "{node} durably accepted a second value for {slot} in {ballot} ({} bytes, first {} bytes)",
                    batch.len(),
                    value.len()
                );
                self.violation(ViolationKind::Agreement, time_ns, description);
                continue;
            }
            *voters |= 1u64 << (u32::from(node.0) - 1);
            if (voters.count_ones() as usize) < self.quorum {
                continue;
            }
            match &votes.chosen {
                None => votes.chosen = Some((ballot, batch)),
                Some((first_ballot, first)) if *first != batch => {
                    let description = format!(
                        "{slot} was chosen twice: {} bytes (digest {:x}) in {first_ballot}, then {} bytes (digest {:x}) in {ballot}",
                        first.len(),
                        Digest::new().bytes(first.as_bytes()).value(),
                        batch.len(),
                        Digest::new().bytes(batch.as_bytes()).value(),
                    );
                    self.violation(ViolationKind::Agreement, time_ns, description);
                }
                Some(_) => {}
            }
        }
    }
    /// Records a violation (dropping it past the per-kind limit).
    /// Returns true when it was kept.
    pub(super) fn violation(
        &mut self,
        kind: ViolationKind,
        time_ns: u64,
        description: String,
    ) -> bool {
        let count = self.reported_per_kind.entry(kind).or_insert(0);
        *count += 1;
        if *count > REPORTS_PER_KIND_MAX {
            return false;
        }
        self.violations.push(Violation {
            kind,
            time_ns,
            description,
        });
        true
    }

    /// The violations found so far.
    pub(super) fn into_violations(self) -> Vec<Violation> {
        self.violations
    }

    /// Replica `node` committed `batch` at `slot`: agreement check.
    /// Returns a description when it breaks agreement.
    pub(super) fn on_commit(
        &mut self,
        time_ns: u64,
        node: NodeId,
        slot: Slot,
        batch: &Batch,
    ) -> Option<String> {
        let chosen = self.chosen.entry(slot).or_insert_with(|| ChosenSlot {
            batch: batch.clone(),
            first_node: node,
        });
        if chosen.batch == *batch {
            let learned_wrong = self
                .votes
                .get(&slot)
                .and_then(|votes| votes.chosen.as_ref())
                .is_some_and(|(_, value)| value != batch);
            if !learned_wrong {
                return None;
            }
            let description = format!(
                "{node} committed {slot} with a value other than the one its acceptors chose"
            );
            self.violation(ViolationKind::Agreement, time_ns, description.clone());
            return Some(description);
        }
        let description = format!(
            "{node} committed {slot} as {} bytes (digest {:x}), but {} committed it as {} bytes (digest {:x})",
            batch.len(),
            Digest::new().bytes(batch.as_bytes()).value(),
            chosen.first_node,
            chosen.batch.len(),
            Digest::new().bytes(chosen.batch.as_bytes()).value(),
        );
        self.violation(ViolationKind::Agreement, time_ns, description.clone());
        Some(description)
    }

    /// Replica `node` applied `slot` with these outcomes: every replica
    /// must get the same outcomes for a slot.
    pub(super) fn on_apply(
        &mut self,
        time_ns: u64,
        node: NodeId,
        slot: Slot,
        outcomes: &[CommandOutcome],
    ) {
        let mut digest = Digest::new();
        for outcome in outcomes {
            digest = digest.number(outcome.client_id.0).number(outcome.seq.0);
            digest = match &outcome.result {
                Ok(bytes) => digest.number(0).bytes(bytes),
                Err(error) => digest.number(1).bytes(error.to_string().as_bytes()),
            };
        }
        let digest = digest.value();
        let (first, first_node) = *self.outcome_digests.entry(slot).or_insert((digest, node));
        if first != digest {
            let description = format!(
                "{node} applied {slot} with outcomes {digest:x}, {first_node} with {first:x}"
            );
            self.violation(ViolationKind::Divergence, time_ns, description);
        }
    }

    /// Replica `node` took a snapshot: replicas must hold the same state
    /// at the same slot.
    pub(super) fn on_snapshot(&mut self, time_ns: u64, node: NodeId, snapshot: &Snapshot) {
        let digest = Digest::new().bytes(snapshot.bytes.as_bytes()).value();
        let (first, first_node) = *self
            .snapshot_digests
            .entry(snapshot.slot)
            .or_insert((digest, node));
        if first != digest {
            let description = format!(
                "{node}'s snapshot at {} is {digest:x}, {first_node}'s is {first:x}",
                snapshot.slot
            );
            self.violation(ViolationKind::Divergence, time_ns, description);
        }
    }

    /// Slots chosen so far.
    pub(super) fn chosen_count(&self) -> u64 {
        self.chosen.len() as u64
    }

    /// Every (client, sequence number) in a chosen batch up to `through`,
    /// with the number of slots it was committed in.
    pub(super) fn committed_commands(&self, through: Slot) -> BTreeMap<(ClientId, Seq), u64> {
        let mut commands = BTreeMap::new();
        for chosen in self.chosen.range(..=through).map(|(_, chosen)| chosen) {
            if chosen.batch.is_empty() {
                continue;
            }
            let Ok(body) = chosen.batch.access() else {
                continue;
            };
            for command in body.commands.iter() {
                let key = (
                    ClientId(command.client_id.to_native()),
                    Seq(command.seq.to_native()),
                );
                *commands.entry(key).or_insert(0) += 1;
            }
        }
        commands
    }
}
