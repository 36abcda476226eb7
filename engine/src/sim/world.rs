//! The simulated world: replicas, clients, network and faults on one
//! virtual clock, driven by one event queue and one seeded generator.
//! Faults live in `world_faults`, the end-of-run checks in `verdict`.
//!
//! Invariants:
//! - Events run in (time, scheduling order); every random draw happens in
//!   that order, so a seed replays exactly.
//! - Events of a crashed replica's earlier incarnation are ignored.
//! - After the faults heal, nothing injects a fault again.

use crate::paxos::Config;
use crate::wire::{ClientId, NodeId, Seq};

use super::checker::Checker;
use super::client::{node_id, Client, ClientAction, ClientLimits};
use super::clock::LocalClock;
use super::config::SimConfig;
use super::envelope::Envelope;
use super::fault::{FaultCounts, Schedule};
use super::history::Outcome;
use super::network::Network;
use super::node::{Node, NodeInput, TurnContext};
use super::queue::{Event, EventQueue};
use super::random::Random;
use super::report::{RunStats, ViolationKind};
use super::trace::{MessageGist, Trace, TraceEvent};
use super::workload::{Completed, Workload};

/// Replicas tick every this long (plus jitter).
const TICK_INTERVAL_NS: u64 = 10_000_000;
/// A loop turn runs this long (at most) after its first input arrived.
const TURN_DELAY_NS_MAX: u64 = 20_000;
/// Clients still busy this long after the workload stopped give up.
const DRAIN_NS_MAX: u64 = 10_000_000_000;
/// After the last operation, replicas get this long to converge.
const QUIET_NS: u64 = 2_000_000_000;

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Faults are injected.
    Faults,
    /// Everything healed; the workload goes on.
    Healed,
    /// No new operations; waiting for the last ones.
    Draining { since_ns: u64 },
    /// No client traffic; replicas converge.
    Quiet { until_ns: u64 },
    /// Done: final checks next.
    Finished,
}

/// A write its client was told applied: it must be in the committed log.
#[derive(Debug)]
pub(super) struct AcknowledgedWrite {
    /// The client's session.
    pub(super) session: ClientId,
    /// The write's sequence number.
    pub(super) seq: Seq,
    /// The client's index.
    pub(super) client: usize,
    /// The workload's description of the operation.
    pub(super) description: String,
    /// When the client was told.
    pub(super) complete_ns: u64,
}

/// How many operations ended, per outcome.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct OutcomeCounts {
    pub(super) ok: u64,
    pub(super) unknown: u64,
    pub(super) failed: u64,
}

impl OutcomeCounts {
    /// Operations that ended.
    pub(super) fn total(&self) -> u64 {
        self.ok + self.unknown + self.failed
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Unknown => self.unknown += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

/// Everything a run simulates.
pub(super) struct World<'a, W: Workload> {
    pub(super) config: &'a SimConfig,
    pub(super) workload: &'a mut W,
    pub(super) replica_config: Config,
    pub(super) random: Random,
    pub(super) queue: EventQueue,
    pub(super) now_ns: u64,
    pub(super) nodes: Vec<Node<W::Machine>>,
    pub(super) clients: Vec<Client<W::Operation>>,
    client_start_scheduled: Vec<bool>,
    limits: ClientLimits,
    pub(super) network: Network,
    pub(super) checker: Checker,
    pub(super) trace: Trace,
    pub(super) counts: FaultCounts,
    /// Operations that ended, per outcome.
    pub(super) outcomes: OutcomeCounts,
    /// Writes answered `ok`.
    pub(super) acknowledged: Vec<AcknowledgedWrite>,
    pub(super) elections: u64,
    pub(super) stats: RunStats,
    pub(super) events: u64,
    pub(super) phase: Phase,
    pub(super) healed_at_ns: Option<u64>,
    pub(super) liveness_met: bool,
    pub(super) last_crashed: Option<NodeId>,
    /// A crash waiting for a write to be in flight: of that replica, or of
    /// every replica (`Some(None)`, a power failure).
    pub(super) crash_during_write: Option<Option<NodeId>>,
    /// The time of the last scripted fault: the fault phase lasts at least
    /// until then.
    schedule_end_ns: u64,
}

impl<'a, W: Workload> World<'a, W> {
    /// Builds the world for `config` and `workload`: replicas with their
    /// clocks, clients.
    pub(super) fn new(config: &'a SimConfig, workload: &'a mut W) -> World<'a, W> {
        let mut random = Random::new(config.seed);
        let replica_config = Config {
            nodes: (0..config.replicas).map(node_id).collect(),
            bugs: config.bugs,
            ..config.replica_config.clone()
        };
        let quorum = replica_config.phase2_quorum();
        let mut counts = FaultCounts::default();
        let nodes: Vec<Node<W::Machine>> = (0..config.replicas)
            .map(|index| {
                let clock = if config.faults.clock {
                    LocalClock::random(&mut random, replica_config.clock_drift_max_ppm)
                } else {
                    LocalClock::exact()
                };
                counts.drifting_clocks += u64::from(clock.drifts());
                Node::new(node_id(index), clock, !config.driver_forgets_damage)
            })
            .collect();
        let clients: Vec<Client<W::Operation>> = (0..config.clients)
            .map(|index| Client::new(index, &mut random, config.replicas))
            .collect();
        let limits = ClientLimits {
            request_timeout_ns: config.request_timeout_ns,
            attempts_max: config.attempts_max,
            node_count: config.replicas,
            pipeline_depth: config.client_pipeline_depth.max(1),
        };
        World {
            config,
            workload,
            replica_config,
            random,
            queue: EventQueue::default(),
            now_ns: 0,
            nodes,
            client_start_scheduled: vec![false; clients.len()],
            clients,
            limits,
            network: Network::new(config.faults, config.rates),
            checker: Checker::new(quorum),
            trace: Trace::new(config.trace_entries_max),
            counts,
            outcomes: OutcomeCounts::default(),
            acknowledged: Vec::new(),
            elections: 0,
            stats: RunStats::default(),
            events: 0,
            phase: Phase::Faults,
            healed_at_ns: None,
            liveness_met: false,
            last_crashed: None,
            crash_during_write: None,
            schedule_end_ns: config.schedule.as_ref().map_or(0, |schedule| {
                schedule
                    .faults
                    .iter()
                    .map(|(time_ns, _)| *time_ns)
                    .max()
                    .unwrap_or(0)
            }),
        }
    }

    /// Runs events until the run is finished or its time is up.
    pub(super) fn run(&mut self) {
        self.start();
        while let Some((time_ns, event)) = self.queue.pop() {
            self.now_ns = time_ns;
            self.events += 1;
            if time_ns > self.config.run_ns_max {
                let description = format!(
                    "the run did not finish within {} s of virtual time (phase {:?})",
                    self.config.run_ns_max / 1_000_000_000,
                    self.phase
                );
                self.checker
                    .violation(ViolationKind::Liveness, time_ns, description);
                return;
            }
            self.dispatch(event);
            self.advance_phase();
            if self.phase == Phase::Finished {
                return;
            }
        }
    }

    fn start(&mut self) {
        for index in 0..self.nodes.len() {
            self.restart(index);
        }
        for client in 0..self.clients.len() {
            self.schedule_client_start(client);
        }
        match self.config.schedule.clone() {
            Some(Schedule { faults }) => {
                for (time_ns, fault) in faults {
                    self.queue.push(time_ns, Event::Fault(fault));
                }
            }
            None => self.schedule_random_fault(),
        }
        self.queue
            .push(self.config.fault_phase_ns_max, Event::FaultPhaseDeadline);
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver(envelope) => self.deliver(envelope),
            Event::Turn { node, incarnation } => {
                if self.node(node).incarnation == incarnation {
                    self.run_turn(node);
                }
            }
            Event::Tick { node, incarnation } => {
                let current = self.node(node);
                if current.incarnation == incarnation && current.is_up() {
                    self.run_turn(node);
                    let next = self.now_ns + TICK_INTERVAL_NS + self.random.between(0, 2_000_000);
                    self.queue.push(next, Event::Tick { node, incarnation });
                }
            }
            Event::Synced { node, incarnation } => self.synced(node, incarnation),
            Event::ClientStart { client } => {
                self.client_start_scheduled[client] = false;
                if self.accepts_new_operations() && self.clients[client].can_start(&self.limits) {
                    let actions = self.clients[client].start(
                        self.now_ns,
                        &mut self.random,
                        &self.limits,
                        &mut *self.workload,
                    );
                    self.client_actions(client, actions);
                }
            }
            Event::ClientWake {
                client,
                operation,
                attempt,
            } => {
                let actions = self.clients[client].on_wake(
                    self.now_ns,
                    operation,
                    attempt,
                    &mut self.random,
                    &self.limits,
                );
                self.client_actions(client, actions);
            }
            Event::Fault(fault) => {
                if self.phase == Phase::Faults {
                    self.apply_fault(fault);
                }
            }
            Event::NextRandomFault => {
                if self.phase == Phase::Faults {
                    self.random_fault();
                    self.schedule_random_fault();
                }
            }
            Event::FaultPhaseDeadline => {
                if self.phase == Phase::Faults {
                    self.end_fault_phase();
                }
            }
            Event::LivenessDeadline => self.check_liveness_deadline(),
            Event::CrashDuringWriteDeadline => self.crash_during_write_deadline(),
        }
    }

    /// A disk sync completed: the group write is durable (its votes count
    /// for the oracle), the replica hears of it at its next turn, and that
    /// turn (the loop wakes on the completion) writes the next group.
    fn synced(&mut self, node: NodeId, incarnation: u64) {
        let current = self.node_mut(node);
        if current.incarnation != incarnation || !current.is_up() {
            return;
        }
        current.disk.complete_write();
        self.disk_progress(node);
        self.ensure_turn(node);
    }

    /// Hands the checker the votes that became durable and the replica the
    /// persist sequence number that did.
    fn disk_progress(&mut self, node: NodeId) {
        let current = self.node_mut(node);
        let entries = current.disk.take_newly_durable();
        let persisted = current.disk.take_persisted();
        let counts = current.disk.take_counts();
        self.stats.group_commits += counts.groups_written;
        self.stats.group_full_waits += counts.group_full_waits;
        self.stats.disk_full_waits += counts.disk_full_waits;
        self.checker.on_durable_votes(self.now_ns, node, entries);
        if let Some(persist_seq) = persisted {
            self.node_mut(node)
                .inbox
                .push(NodeInput::Persisted(persist_seq));
            self.ensure_turn(node);
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Peer { from, to, message } => {
                if self.network.is_cut(from, to) {
                    self.counts.cut_off += 1;
                    return;
                }
                if !self.node(to).is_up() {
                    return;
                }
                let gist = MessageGist::of(&message);
                self.trace
                    .record(self.now_ns, TraceEvent::Delivered { from, to, gist });
                self.node_mut(to)
                    .inbox
                    .push(NodeInput::Peer { from, message });
                self.ensure_turn(to);
            }
            Envelope::Request { to, request } => {
                if self.node(to).is_up() {
                    self.node_mut(to).inbox.push(NodeInput::Request(request));
                    self.ensure_turn(to);
                }
            }
            Envelope::Reply { reply, .. } => {
                let client = reply.id.client;
                let actions = self.clients[client].on_reply(
                    self.now_ns,
                    reply,
                    &mut self.random,
                    &self.limits,
                );
                self.client_actions(client, actions);
            }
        }
    }

    pub(super) fn node(&self, id: NodeId) -> &Node<W::Machine> {
        &self.nodes[usize::from(id.0) - 1]
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> &mut Node<W::Machine> {
        &mut self.nodes[usize::from(id.0) - 1]
    }

    /// Queues a loop turn for `id` unless one is queued.
    pub(super) fn ensure_turn(&mut self, id: NodeId) {
        let earliest = self.now_ns + self.random.between(1_000, TURN_DELAY_NS_MAX);
        let node = self.node_mut(id);
        if node.turn_scheduled || !node.is_up() {
            return;
        }
        node.turn_scheduled = true;
        let incarnation = node.incarnation;
        let at = earliest.max(node.busy_until_ns);
        self.queue.push(
            at,
            Event::Turn {
                node: id,
                incarnation,
            },
        );
    }

    fn run_turn(&mut self, id: NodeId) {
        let index = usize::from(id.0) - 1;
        let mut context = TurnContext {
            now_ns: self.now_ns,
            checker: &mut self.checker,
            trace: &mut self.trace,
            sends: Vec::new(),
            write_started: false,
            elections: 0,
            stats: &mut self.stats,
        };
        self.nodes[index].turn(self.config.snapshot_interval_slot_count, &mut context);
        let TurnContext {
            sends,
            write_started,
            elections,
            ..
        } = context;
        self.elections += elections;
        if write_started {
            self.schedule_sync(index);
        }
        if self.nodes[index].is_up() {
            self.disk_progress(id);
        }
        for envelope in sends {
            self.send(envelope);
        }
        if write_started && self.crash_during_write.is_some() {
            self.crash_if_waiting_for_write(id);
        }
    }

    /// The sync of the group write just started completes after the disk's
    /// latency (one write is in flight at a time).
    fn schedule_sync(&mut self, index: usize) {
        let rates = self.config.rates;
        let latency = match self.nodes[index].slow_sync_ns {
            Some(slow) => slow,
            None => self
                .random
                .between(rates.sync_min_ns, rates.sync_max_ns + 1),
        };
        let node = &self.nodes[index];
        let event = Event::Synced {
            node: node.id,
            incarnation: node.incarnation,
        };
        self.queue.push(self.now_ns + latency, event);
    }

    /// Sends a message through the network (which may drop, duplicate or
    /// delay it).
    pub(super) fn send(&mut self, envelope: Envelope) {
        let delays = self.network.plan(&mut self.random, &mut self.counts);
        let Some((&last, others)) = delays.split_last() else {
            return;
        };
        for &delay in others {
            self.queue
                .push(self.now_ns + delay, Event::Deliver(envelope.clone()));
        }
        self.queue
            .push(self.now_ns + last, Event::Deliver(envelope));
    }

    fn accepts_new_operations(&self) -> bool {
        matches!(self.phase, Phase::Faults | Phase::Healed)
    }

    fn schedule_client_start(&mut self, client: usize) {
        if self.client_start_scheduled[client] || !self.accepts_new_operations() {
            return;
        }
        self.client_start_scheduled[client] = true;
        let at = self.now_ns + self.random.between(0, 2_000_000);
        self.queue.push(at, Event::ClientStart { client });
    }

    /// Carries out what a client asked for.
    pub(super) fn client_actions(
        &mut self,
        client: usize,
        actions: Vec<ClientAction<W::Operation>>,
    ) {
        for action in actions {
            match action {
                ClientAction::Send { to, request } => self.send(Envelope::Request { to, request }),
                ClientAction::Wake {
                    at_ns,
                    operation,
                    attempt,
                } => self.queue.push(
                    at_ns,
                    Event::ClientWake {
                        client,
                        operation,
                        attempt,
                    },
                ),
                ClientAction::Done { completed, seq } => {
                    self.record_operation(client, completed, seq);
                }
                ClientAction::Anomaly(description) => {
                    self.checker
                        .violation(ViolationKind::Unexpected, self.now_ns, description);
                }
            }
        }
        if self.clients[client].can_start(&self.limits) {
            self.schedule_client_start(client);
        }
    }

    /// The workload records an ended operation; an acknowledged write
    /// joins the writes that must be in the committed log.
    fn record_operation(
        &mut self,
        client: usize,
        completed: Completed<W::Operation>,
        seq: Option<u64>,
    ) {
        let (invoke_ns, complete_ns) = (completed.invoke_ns, completed.complete_ns);
        let recorded = self.workload.record(completed);
        let description = format!("{} -> {}", recorded.description, recorded.answer);
        self.trace.record(
            self.now_ns,
            TraceEvent::ClientDone {
                client,
                description,
            },
        );
        self.outcomes.count(recorded.outcome);
        if let (Outcome::Ok, Some(seq)) = (recorded.outcome, seq) {
            self.acknowledged.push(AcknowledgedWrite {
                session: self.clients[client].id(),
                seq: Seq(seq),
                client,
                description: recorded.description,
                complete_ns,
            });
            if self
                .healed_at_ns
                .is_some_and(|healed_at| invoke_ns >= healed_at)
            {
                self.liveness_met = true;
            }
        }
        if let Some(anomaly) = recorded.anomaly {
            self.checker
                .violation(ViolationKind::Unexpected, self.now_ns, anomaly);
        }
    }

    fn advance_phase(&mut self) {
        let completed = self.outcomes.total();
        let operations_min = self.config.operations_min;
        match self.phase {
            Phase::Faults => {
                let schedule_done = self.now_ns >= self.schedule_end_ns;
                if schedule_done
                    && completed * 100 >= operations_min * self.config.fault_phase_percent
                {
                    self.end_fault_phase();
                }
            }
            Phase::Healed => {
                let healed_at = self.healed_at_ns.unwrap_or(0);
                let deadline_passed = self.now_ns >= healed_at + self.config.liveness_timeout_ns;
                if completed >= operations_min && (self.liveness_met || deadline_passed) {
                    self.phase = Phase::Draining {
                        since_ns: self.now_ns,
                    };
                }
            }
            Phase::Draining { since_ns } => {
                let idle = self.clients.iter().all(|client| !client.is_busy());
                if idle || self.now_ns >= since_ns + DRAIN_NS_MAX {
                    self.abandon_operations();
                    self.phase = Phase::Quiet {
                        until_ns: self.now_ns + QUIET_NS,
                    };
                }
            }
            Phase::Quiet { until_ns } => {
                if self.now_ns >= until_ns {
                    self.phase = Phase::Finished;
                }
            }
            Phase::Finished => {}
        }
    }

    fn abandon_operations(&mut self) {
        for client in 0..self.clients.len() {
            let actions = self.clients[client].give_up(self.now_ns);
            self.client_actions(client, actions);
        }
    }
}
