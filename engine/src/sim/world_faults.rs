//! Faults in the world: carrying out a [`Fault`], drawing random ones,
//! crashing and restarting replicas, and healing everything.
//!
//! Invariants:
//! - At most a minority of replicas is down at once (random faults).
//! - A record is corrupted, or a write torn, only while no other replica
//!   is (or is about to restart as) a non-voter: two damaged replicas
//!   could lose the same acknowledged vote, and in a small group they
//!   would wait for each other's answers forever.

use crate::paxos::Role;
use crate::wire::NodeId;

use super::client::node_id;
use super::disk::Corrupted;
use super::fault::{DiskLoss, Fault, NodeTarget, Partition};
use super::queue::Event;
use super::report::ViolationKind;
use super::trace::TraceEvent;
use super::workload::Workload;
use super::world::{Phase, World};

/// A crash that waits for a write fires after this long without one.
const CRASH_DURING_WRITE_WAIT_NS: u64 = 100_000_000;

impl<W: Workload> World<'_, W> {
    /// The replica a target names now, if any.
    pub(super) fn resolve(&self, target: NodeTarget) -> Option<NodeId> {
        match target {
            NodeTarget::Node(id) => {
                (usize::from(id.0) >= 1 && usize::from(id.0) <= self.nodes.len()).then_some(id)
            }
            NodeTarget::Leader => self.leader(),
            NodeTarget::Follower(position) => {
                let leader = self.leader();
                let followers: Vec<NodeId> = self
                    .nodes
                    .iter()
                    .map(|node| node.id)
                    .filter(|id| Some(*id) != leader)
                    .collect();
                (!followers.is_empty()).then(|| followers[position % followers.len()])
            }
            NodeTarget::LastCrashed => self.last_crashed,
        }
    }

    /// The live leader with the highest promised ballot.
    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|node| {
                let live = node.live.as_ref()?;
                (live.replica.role() == Role::Leader)
                    .then(|| (live.replica.promised_ballot(), node.id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Carries out one fault.
    pub(super) fn apply_fault(&mut self, fault: Fault) {
        let mut resolved = Vec::new();
        match &fault {
            Fault::Partition(partition) => {
                resolved = self.partition(partition);
                if !resolved.is_empty() {
                    self.counts.partitions += 1;
                }
            }
            Fault::HealPartitions => self.network.heal_cuts(),
            Fault::Crash {
                node,
                loss,
                corrupt,
            } => {
                if let Some(id) = self.resolve(*node) {
                    resolved.push(id);
                    self.crash(id, *loss, *corrupt);
                }
            }
            Fault::Restart(node) => {
                if let Some(id) = self.resolve(*node) {
                    resolved.push(id);
                    if !self.node(id).is_up() {
                        self.restart(usize::from(id.0) - 1);
                    }
                }
            }
            Fault::SlowDisk { node, sync_ns } => {
                if let Some(id) = self.resolve(*node) {
                    resolved.push(id);
                    let slow = (*sync_ns > 0).then_some(*sync_ns);
                    self.counts.slow_disks += u64::from(slow.is_some());
                    self.node_mut(id).slow_sync_ns = slow;
                }
            }
            Fault::DiskFull { node, full } => {
                if let Some(id) = self.resolve(*node) {
                    if self.node(id).is_up() {
                        resolved.push(id);
                        self.counts.full_disks += u64::from(*full);
                        self.node_mut(id).disk.set_full(full.then_some(0));
                    }
                }
            }
            Fault::HealAll => self.heal_everything(),
        }
        self.trace.record(
            self.now_ns,
            TraceEvent::Fault {
                fault,
                nodes: resolved,
            },
        );
    }

    /// Cuts the links a partition names; returns the replicas it resolved to.
    fn partition(&mut self, partition: &Partition) -> Vec<NodeId> {
        let all: Vec<NodeId> = self.nodes.iter().map(|node| node.id).collect();
        let (side, both_ways, others): (Vec<NodeId>, bool, Vec<NodeId>) = match partition {
            Partition::Pair(first, second) => {
                let (Some(first), Some(second)) = (self.resolve(*first), self.resolve(*second))
                else {
                    return Vec::new();
                };
                (vec![first], true, vec![second])
            }
            Partition::OneWay { from, to } => {
                let (Some(from), Some(to)) = (self.resolve(*from), self.resolve(*to)) else {
                    return Vec::new();
                };
                (vec![from], false, vec![to])
            }
            Partition::Isolate(target) => {
                let Some(id) = self.resolve(*target) else {
                    return Vec::new();
                };
                (vec![id], true, all.clone())
            }
            Partition::Split(targets) => {
                let side: Vec<NodeId> = targets
                    .iter()
                    .filter_map(|target| self.resolve(*target))
                    .collect();
                (side, true, all.clone())
            }
        };
        for &inside in &side {
            for &outside in others.iter().filter(|id| !side.contains(id)) {
                self.network.cut(inside, outside);
                if both_ways {
                    self.network.cut(outside, inside);
                }
            }
        }
        side.into_iter().chain(others).collect()
    }

    /// May replica `id` be damaged now (a torn write or a corrupt record)?
    fn damage_allowed(&self, id: NodeId) -> bool {
        self.nodes
            .iter()
            .filter(|node| node.id != id)
            .all(|node| !node.damage_pending())
    }

    /// Crashes replica `id` if it is up.
    fn crash(&mut self, id: NodeId, loss: DiskLoss, corrupt: bool) {
        if !self.node(id).is_up() {
            return;
        }
        let damage_allowed = self.damage_allowed(id);
        let loss = match loss {
            DiskLoss::TearLast if !damage_allowed => DiskLoss::KeepPrefix,
            other => other,
        };
        let choice = self.random.next_u64();
        let effect = self.node_mut(id).crash(loss, choice);
        self.take_disk_violations(id);
        let entries = self.node_mut(id).disk.take_newly_durable();
        self.checker.on_durable_votes(self.now_ns, id, entries);
        self.counts.crashes += 1;
        if effect.items_lost > 0 {
            match loss {
                DiskLoss::LoseUnsynced => self.counts.unsynced_lost += 1,
                DiskLoss::KeepPrefix | DiskLoss::TearLast => self.counts.prefixes_kept += 1,
            }
        }
        self.counts.torn += u64::from(effect.torn);
        let mut corrupted = false;
        if corrupt && damage_allowed && !effect.torn {
            let choice = self.random.next_u64();
            let hit = self.node_mut(id).disk.corrupt(choice);
            self.take_disk_violations(id);
            corrupted = hit.is_some();
            self.counts.corrupted += u64::from(corrupted);
            self.counts.corrupted_metadata += u64::from(hit == Some(Corrupted::MetadataCopy));
        }
        self.last_crashed = Some(id);
        self.trace.record(
            self.now_ns,
            TraceEvent::Crashed {
                node: id,
                kept: effect.items_kept,
                lost: effect.items_lost,
                torn: effect.torn,
                corrupt: corrupted,
            },
        );
    }

    /// Starts (or restarts) the replica at `index` from its disk.
    pub(super) fn restart(&mut self, index: usize) {
        let seed = self.random.next_u64();
        let config = self.replica_config.clone();
        let apply_twice = self.config.session_bug_apply_twice;
        let first_start = self.nodes[index].incarnation == 0 && self.now_ns == 0;
        let id = self.nodes[index].id;
        let machine = self.workload.machine();
        let started = self.nodes[index].start(config, seed, machine, apply_twice);
        self.take_disk_violations(id);
        match started {
            Ok((damaged, records)) => {
                if !first_start {
                    self.counts.restarts += 1;
                }
                let event = TraceEvent::Restarted {
                    node: id,
                    damaged,
                    records,
                };
                self.trace.record(self.now_ns, event);
            }
            Err(reason) => {
                self.checker
                    .violation(ViolationKind::Unexpected, self.now_ns, reason);
                return;
            }
        }
        let incarnation = self.nodes[index].incarnation;
        let first_tick = self.now_ns + self.random.between(0, 10_000_000);
        self.queue.push(
            first_tick,
            Event::Tick {
                node: id,
                incarnation,
            },
        );
        self.ensure_turn(id);
    }

    /// Reports what replica `id`'s disk found wrong with its recovery.
    fn take_disk_violations(&mut self, id: NodeId) {
        for description in self.node_mut(id).disk.take_violations() {
            self.checker.violation(
                ViolationKind::Recovery,
                self.now_ns,
                format!("{id}: {description}"),
            );
        }
    }

    /// Heals everything: cuts, crashed replicas, slow and full disks,
    /// message faults.
    pub(super) fn heal_everything(&mut self) {
        self.network.stop_faults();
        for index in 0..self.nodes.len() {
            self.nodes[index].slow_sync_ns = None;
            self.nodes[index].disk.set_full(None);
            if !self.nodes[index].is_up() {
                self.restart(index);
            }
        }
    }

    /// Ends the fault phase: heal, and require a write to commit in time.
    pub(super) fn end_fault_phase(&mut self) {
        self.phase = Phase::Healed;
        self.heal_everything();
        self.healed_at_ns = Some(self.now_ns);
        self.trace.record(
            self.now_ns,
            TraceEvent::Fault {
                fault: Fault::HealAll,
                nodes: Vec::new(),
            },
        );
        self.queue.push(
            self.now_ns + self.config.liveness_timeout_ns,
            Event::LivenessDeadline,
        );
    }

    /// No write has committed since the faults healed: a liveness violation.
    pub(super) fn check_liveness_deadline(&mut self) {
        if self.liveness_met {
            return;
        }
        let roles: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{}: {:?}", node.id, node.role()))
            .collect();
        let description = format!(
            "no write invoked after the faults healed committed within {} ms ({})",
            self.config.liveness_timeout_ns / 1_000_000,
            roles.join(", ")
        );
        self.checker
            .violation(ViolationKind::Liveness, self.now_ns, description);
        // Count it once: later writes may still complete.
        self.liveness_met = true;
    }

    /// Queues the fault generator's next draw, if any random fault class is on.
    pub(super) fn schedule_random_fault(&mut self) {
        let faults = self.config.faults;
        if !(faults.partition || faults.crash || faults.disk) {
            return;
        }
        let mean = self.config.rates.fault_interval_mean_ns;
        let at = self.now_ns + self.random.between(mean / 2, mean * 3 / 2 + 1);
        self.queue.push(at, Event::NextRandomFault);
    }

    /// Draws one random fault among the enabled classes and schedules its end.
    pub(super) fn random_fault(&mut self) {
        let faults = self.config.faults;
        let down = self.nodes.iter().filter(|node| !node.is_up()).count();
        let minority = (self.nodes.len() - 1) / 2;
        let mut classes: Vec<u8> = Vec::new();
        if faults.partition && !self.network.has_cuts() {
            classes.push(0);
        }
        if faults.crash && down < minority {
            classes.push(1);
        }
        if faults.disk {
            classes.push(2);
        }
        if classes.is_empty() {
            return;
        }
        match classes[self.random.index(classes.len())] {
            0 => self.random_partition(),
            1 => self.random_crash(),
            _ if self.random.chance(250_000) => self.random_full_disk(),
            _ => self.random_slow_disk(),
        }
    }

    fn random_node(&mut self) -> NodeTarget {
        NodeTarget::Node(node_id(self.random.index(self.nodes.len())))
    }

    fn random_partition(&mut self) {
        let count = self.nodes.len();
        let first = self.random.index(count);
        let second = (first + 1 + self.random.index(count - 1)) % count;
        let (first, second) = (
            NodeTarget::Node(node_id(first)),
            NodeTarget::Node(node_id(second)),
        );
        let partition = match self.random.between(0, 5) {
            0 => Partition::Pair(first, second),
            1 => Partition::OneWay {
                from: first,
                to: second,
            },
            2 => Partition::Isolate(NodeTarget::Leader),
            3 => Partition::Isolate(first),
            _ => {
                let size = 1 + self.random.index(((count - 1) / 2).max(1));
                let start = self.random.index(count);
                let side = (0..size)
                    .map(|offset| NodeTarget::Node(node_id((start + offset) % count)))
                    .collect();
                Partition::Split(side)
            }
        };
        self.apply_fault(Fault::Partition(partition));
        let max = self.config.rates.partition_ns_max;
        let heal_at = self.now_ns + self.random.between(200_000_000.min(max), max + 1);
        self.queue
            .push(heal_at, Event::Fault(Fault::HealPartitions));
    }

    fn random_crash(&mut self) {
        let target = if self.random.chance(self.config.rates.power_failure_ppm) {
            None
        } else {
            let target = if self.random.chance(400_000) {
                NodeTarget::Leader
            } else {
                self.random_node()
            };
            let Some(id) = self.resolve(target) else {
                return;
            };
            Some(id)
        };
        if self.random.chance(self.config.rates.crash_during_write_ppm) {
            // Wait for the moment a write is in flight: the worst time.
            self.crash_during_write = Some(target);
            let deadline = self.now_ns + CRASH_DURING_WRITE_WAIT_NS;
            self.queue.push(deadline, Event::CrashDuringWriteDeadline);
            return;
        }
        self.crash_now(target);
    }

    /// Crashes `target`, or every replica for `None` (a power failure).
    fn crash_now(&mut self, target: Option<NodeId>) {
        match target {
            Some(id) => self.random_crash_of(id),
            None => self.power_failure(),
        }
    }

    /// Replica `id` just handed its disk a write: fire a crash that waits
    /// for one, if it aims at `id` (or at every replica).
    pub(super) fn crash_if_waiting_for_write(&mut self, id: NodeId) {
        if self.phase != Phase::Faults {
            return;
        }
        match self.crash_during_write {
            Some(Some(target)) if target != id => {}
            Some(target) => {
                self.crash_during_write = None;
                self.counts.crashes_during_writes += 1;
                self.crash_now(target);
            }
            None => {}
        }
    }

    /// No write came in time: crash anyway.
    pub(super) fn crash_during_write_deadline(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        if let Some(target) = self.crash_during_write.take() {
            self.crash_now(target);
        }
    }

    /// Every replica crashes at once (a power failure) and restarts a
    /// little later.
    fn power_failure(&mut self) {
        self.counts.power_failures += 1;
        for index in 0..self.nodes.len() {
            if self.nodes[index].is_up() {
                self.random_crash_of(node_id(index));
            }
        }
    }

    /// Crashes `id` with a random disk loss and schedules its restart.
    fn random_crash_of(&mut self, id: NodeId) {
        let faults = self.config.faults;
        let loss = if faults.disk {
            [
                DiskLoss::LoseUnsynced,
                DiskLoss::KeepPrefix,
                DiskLoss::TearLast,
            ][self.random.index(3)]
        } else {
            DiskLoss::LoseUnsynced
        };
        let corrupt = faults.corrupt && self.random.chance(self.config.rates.corrupt_ppm);
        self.apply_fault(Fault::Crash {
            node: NodeTarget::Node(id),
            loss,
            corrupt,
        });
        let max = self.config.rates.down_ns_max;
        let restart_at = self.now_ns + self.random.between(50_000_000.min(max), max + 1);
        self.queue.push(
            restart_at,
            Event::Fault(Fault::Restart(NodeTarget::Node(id))),
        );
    }

    /// Fills a replica's disk for 0.2 to 2 s.
    fn random_full_disk(&mut self) {
        let node = self.random_node();
        self.apply_fault(Fault::DiskFull { node, full: true });
        let back_at = self.now_ns + self.random.between(200_000_000, 2_000_000_000);
        self.queue
            .push(back_at, Event::Fault(Fault::DiskFull { node, full: false }));
    }

    fn random_slow_disk(&mut self) {
        let node = self.random_node();
        let sync_ns = self.random.between(2_000_000, 60_000_000);
        self.apply_fault(Fault::SlowDisk { node, sync_ns });
        let back_at = self.now_ns + self.random.between(200_000_000, 2_000_000_000);
        self.queue
            .push(back_at, Event::Fault(Fault::SlowDisk { node, sync_ns: 0 }));
    }
}
