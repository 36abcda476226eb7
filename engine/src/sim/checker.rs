//! The checks every run makes while it runs: agreement per slot, apply
//! order, identical outcomes and snapshots per slot. The end-of-run checks
//! (lost writes, convergence, linearizability) live in `verdict`.
//!
//! Invariants:
//! - The first batch committed for a slot, by any replica in any
//!   incarnation, is the slot's chosen value for the rest of the run.
//! - Each kind of violation is reported at most `REPORTS_PER_KIND_MAX`
//!   times, so one broken rule cannot flood a report.

use std::collections::BTreeMap;

use crate::sm::CommandOutcome;
use crate::wire::{Batch, ClientId, NodeId, Seq, Slot, Snapshot};

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

/// The running checks.
#[derive(Debug, Default)]
pub(super) struct Checker {
    chosen: BTreeMap<Slot, ChosenSlot>,
    outcome_digests: BTreeMap<Slot, (u64, NodeId)>,
    snapshot_digests: BTreeMap<Slot, (u64, NodeId)>,
    violations: Vec<Violation>,
    reported_per_kind: BTreeMap<ViolationKind, usize>,
}

impl Checker {
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
            return None;
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

    /// Every (client, sequence number) in a chosen batch up to `through`.
    pub(super) fn committed_commands(&self, through: Slot) -> BTreeMap<(ClientId, Seq), Slot> {
        let mut commands = BTreeMap::new();
        for (&slot, chosen) in self.chosen.range(..=through) {
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
                commands.entry(key).or_insert(slot);
            }
        }
        commands
    }
}
