//! The end-of-run checks: replicas converged to the same state, no
//! acknowledged write is missing from the committed log, and the workload's
//! check of its history passes.

use std::collections::BTreeMap;

use crate::wire::Slot;

use super::checker::Digest;
use super::report::{SimReport, ViolationKind};
use super::workload::{HistoryVerdict, Workload};
use super::world::World;

impl<W: Workload> World<'_, W> {
    /// Runs every end-of-run check.
    pub(super) fn final_checks(&mut self) {
        let commit_point = self.check_convergence();
        self.check_final_states();
        self.check_acknowledged_writes(commit_point);
        self.check_history();
    }

    /// Every replica is up and has applied everything chosen. Returns the
    /// highest commit point.
    fn check_convergence(&mut self) -> Slot {
        let mut points: Vec<(String, Slot, Slot)> = Vec::new();
        for node in &self.nodes {
            match &node.live {
                Some(live) => points.push((
                    node.id.to_string(),
                    live.replica.commit_point(),
                    live.store.applied_slot(),
                )),
                None => points.push((node.id.to_string(), Slot(0), Slot(0))),
            }
        }
        let highest = points
            .iter()
            .map(|(_, commit_point, _)| *commit_point)
            .max()
            .unwrap_or(Slot(0));
        let lagging = points
            .iter()
            .any(|(_, commit_point, applied)| *commit_point != highest || *applied != highest);
        if lagging {
            let listing: Vec<String> = points
                .iter()
                .map(|(node, commit_point, applied)| {
                    format!("{node} commit {commit_point} applied {applied}")
                })
                .collect();
            let description = format!(
                "replicas did not converge after the faults healed: {}",
                listing.join(", ")
            );
            self.checker
                .violation(ViolationKind::Liveness, self.now_ns, description);
        }
        highest
    }

    /// Replicas that applied the same slot hold the same state.
    fn check_final_states(&mut self) {
        let mut states: BTreeMap<Slot, Vec<(String, u64)>> = BTreeMap::new();
        for node in &self.nodes {
            if let Some(live) = &node.live {
                let snapshot = live.store.snapshot();
                let digest = Digest::new().bytes(snapshot.bytes.as_bytes()).value();
                states
                    .entry(snapshot.slot)
                    .or_default()
                    .push((node.id.to_string(), digest));
            }
        }
        for (slot, digests) in states {
            if digests.windows(2).any(|pair| pair[0].1 != pair[1].1) {
                let description = format!("replicas at {slot} hold different states: {digests:x?}");
                self.checker
                    .violation(ViolationKind::Divergence, self.now_ns, description);
            }
        }
    }

    /// Every write answered `ok` is in a chosen batch up to the commit point.
    fn check_acknowledged_writes(&mut self, commit_point: Slot) {
        let committed = self.checker.committed_commands(commit_point);
        self.stats.commands_committed_twice =
            committed.values().filter(|&&count| count > 1).count() as u64;
        let missing: Vec<String> = self
            .acknowledged
            .iter()
            .filter(|write| !committed.contains_key(&(write.session, write.seq)))
            .map(|write| {
                format!(
                    "client {} (session {:x}) seq {} {} acknowledged at {:.3}s",
                    write.client,
                    write.session.0,
                    write.seq.0,
                    write.description,
                    write.complete_ns as f64 / 1e9
                )
            })
            .collect();
        for description in missing {
            self.checker
                .violation(ViolationKind::LostWrite, self.now_ns, description);
        }
    }

    /// The workload's check of its history must pass; a check that cannot
    /// decide is a violation too (no verdict is not a pass).
    fn check_history(&mut self) {
        let (kind, description) = match self.workload.check() {
            HistoryVerdict::Passed => return,
            HistoryVerdict::Failed { description } => (ViolationKind::NotLinearizable, description),
            HistoryVerdict::Unknown { description } => {
                (ViolationKind::CheckInconclusive, description)
            }
        };
        self.checker.violation(kind, self.now_ns, description);
    }

    /// The report of the run.
    pub(super) fn into_report(self) -> SimReport {
        SimReport {
            seed: self.config.seed,
            operations: self.outcomes.total(),
            operations_ok: self.outcomes.ok,
            operations_unknown: self.outcomes.unknown,
            operations_failed: self.outcomes.failed,
            commits: self.checker.chosen_count(),
            elections: self.elections,
            stats: self.stats,
            events: self.events,
            virtual_ns: self.now_ns,
            faults: self.counts,
            trace: self.trace.lines(),
            violations: self.checker.into_violations(),
            history: Vec::new(),
        }
    }
}
