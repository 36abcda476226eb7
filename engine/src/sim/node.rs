//! One simulated replica's driver: it owns the `Replica`, the workload's
//! replicated machine, the disk and the local clock, and follows the driver's contract
//! of [`crate::paxos`] on every loop turn. Draining `Ready` lives in
//! `node_ready`.
//!
//! Invariants:
//! - Every turn calls `on_tick` with the local clock before any other input.
//! - `messages_after_persist` leave only once the disk's durable persist
//!   sequence number reaches the `persist_seq` of their `Ready`.
//! - A turn ends by handing the disk's group commit to the device when no
//!   write is in flight (one write and one sync at a time, as the runtime).
//! - A crash drops every volatile thing: the replica, the store, held
//!   messages, waiting clients, pending reads and unprocessed inputs.

use std::collections::{BTreeMap, VecDeque};

use crate::paxos::{Config, Outgoing, ProposeError, ReadError, ReadId, Replica, Role};
use crate::sm::StateMachine;
use crate::wire::{Batch, BatchBody, ClientId, Command, Message, NodeId, PersistSeq, Seq, Slot};

use super::checker::Checker;
use super::clock::LocalClock;
use super::disk::{CrashEffect, MemoryDisk};
use super::envelope::{ClientReply, ClientRequest, Envelope, ReplyBody, RequestBody, RequestId};
use super::fault::DiskLoss;
use super::machine::Store;
use super::report::{RunStats, ViolationKind};
use super::trace::{Trace, TraceEvent};

/// A loop turn keeps its replica busy this long, plus `TURN_PER_INPUT_NS`
/// per input: what arrives meanwhile waits for the next turn, which is how
/// batches form under load.
const TURN_BASE_NS: u64 = 10_000;
/// See `TURN_BASE_NS`.
const TURN_PER_INPUT_NS: u64 = 3_000;

/// An input waiting for the node's next loop turn.
#[derive(Debug)]
pub(super) enum NodeInput {
    /// A message from a peer.
    Peer { from: NodeId, message: Message },
    /// A client request.
    Request(ClientRequest),
    /// The disk synced everything up to this persist sequence number.
    Persisted(PersistSeq),
}

/// What a turn needs from the world and gives back to it.
pub(super) struct TurnContext<'a> {
    /// Real (virtual) time now.
    pub(super) now_ns: u64,
    /// The running checks.
    pub(super) checker: &'a mut Checker,
    /// The trace.
    pub(super) trace: &'a mut Trace,
    /// Messages to send.
    pub(super) sends: Vec<Envelope>,
    /// The disk started a group write this turn: its sync is to schedule.
    pub(super) write_started: bool,
    /// Times a replica became leader this turn.
    pub(super) elections: u64,
    /// What the replicas did.
    pub(super) stats: &'a mut RunStats,
}

/// A read the replica accepted, waiting to be ready and applied.
#[derive(Debug)]
pub(super) struct PendingRead {
    pub(super) request: RequestId,
    pub(super) query: Vec<u8>,
}

/// The volatile state of a running replica.
#[derive(Debug)]
pub(super) struct LiveNode<M: StateMachine> {
    pub(super) replica: Replica,
    pub(super) store: Store<M>,
    /// Messages waiting for their `Ready`'s persist sequence number to be durable.
    pub(super) held: VecDeque<(PersistSeq, Vec<Outgoing>)>,
    /// Clients waiting for a command to be applied.
    pub(super) waiting: BTreeMap<(ClientId, Seq), Vec<RequestId>>,
    /// Reads the replica has not released yet.
    pub(super) reads: BTreeMap<ReadId, PendingRead>,
    /// Released reads waiting for the store to apply their read slot.
    pub(super) reads_unapplied: Vec<(Slot, PendingRead)>,
    pub(super) next_read_id: u64,
    pub(super) last_snapshot_slot: Slot,
    pub(super) role: Role,
}

/// One simulated replica, up or down.
#[derive(Debug)]
pub(super) struct Node<M: StateMachine> {
    pub(super) id: NodeId,
    /// Rises at every crash; events of an earlier incarnation are ignored.
    pub(super) incarnation: u64,
    pub(super) disk: MemoryDisk,
    pub(super) clock: LocalClock,
    /// A turn event is queued.
    pub(super) turn_scheduled: bool,
    /// The current turn's work keeps the replica busy until then.
    pub(super) busy_until_ns: u64,
    /// The disk sync latency while the disk is slow.
    pub(super) slow_sync_ns: Option<u64>,
    pub(super) inbox: Vec<NodeInput>,
    pub(super) live: Option<LiveNode<M>>,
}

impl<M: StateMachine> Node<M> {
    /// A node that has not started yet (its disk is empty).
    pub(super) fn new(id: NodeId, clock: LocalClock, keeps_damage_marker: bool) -> Node<M> {
        Node {
            id,
            incarnation: 0,
            disk: MemoryDisk::new(keeps_damage_marker),
            clock,
            turn_scheduled: false,
            busy_until_ns: 0,
            slow_sync_ns: None,
            inbox: Vec::new(),
            live: None,
        }
    }

    /// True while the replica runs.
    pub(super) fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// The replica's role, if it runs.
    pub(super) fn role(&self) -> Option<Role> {
        self.live.as_ref().map(|live| live.replica.role())
    }

    /// Starts (or restarts) the replica from its disk, with `machine` (in
    /// its initial state) under the session table.
    ///
    /// # Errors
    /// Recovery failed or the replica refused the configuration (simulator
    /// or log bugs).
    pub(super) fn start(
        &mut self,
        config: Config,
        seed: u64,
        machine: M,
        apply_retries_twice: bool,
    ) -> Result<(bool, usize), String> {
        assert!(self.live.is_none(), "only a stopped replica starts");
        let recovered = self
            .disk
            .recover()
            .map_err(|error| format!("{}: {error}", self.id))?;
        let damaged = recovered.damaged;
        let records = recovered.accepted.len();
        let replica = Replica::new(config, self.id, seed, recovered)
            .map_err(|error| format!("{}: {error}", self.id))?;
        let role = replica.role();
        self.live = Some(LiveNode {
            replica,
            store: Store::new(machine, apply_retries_twice),
            held: VecDeque::new(),
            waiting: BTreeMap::new(),
            reads: BTreeMap::new(),
            reads_unapplied: Vec::new(),
            next_read_id: 0,
            last_snapshot_slot: Slot(0),
            role,
        });
        Ok((damaged, records))
    }

    /// Crashes the replica: volatile state is gone, the disk keeps what
    /// `loss` and `choice` (a random draw) say.
    pub(super) fn crash(&mut self, loss: DiskLoss, choice: u64) -> CrashEffect {
        self.live = None;
        self.inbox.clear();
        self.incarnation += 1;
        self.turn_scheduled = false;
        self.slow_sync_ns = None;
        self.disk.crash(loss, choice)
    }

    /// True while the replica is, or will restart as, a non-voter: it runs
    /// as one, or its durable metadata says it is recovering (its own
    /// metadata, or the damage marker its log set), or its log will drop
    /// something when it restarts.
    pub(super) fn damage_pending(&self) -> bool {
        self.disk.will_recover_damaged() || self.role() == Some(Role::NonVoter)
    }

    /// One loop turn at real time `context.now_ns`: tick, feed the inputs,
    /// propose the batch of client writes that arrived, drain `Ready`.
    pub(super) fn turn(&mut self, snapshot_interval: u64, context: &mut TurnContext<'_>) {
        self.turn_scheduled = false;
        let inputs = std::mem::take(&mut self.inbox);
        self.busy_until_ns =
            context.now_ns + TURN_BASE_NS + TURN_PER_INPUT_NS * inputs.len() as u64;
        let id = self.id;
        let local_ns = self.clock.local_ns(context.now_ns);
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.replica.on_tick(local_ns);
        let contradicted_before = live.replica.contradicted_commits();
        let mut batch: Vec<(Command, RequestId)> = Vec::new();
        for input in inputs {
            match input {
                NodeInput::Peer { from, message } => live.replica.on_message(from, message),
                NodeInput::Request(request) => live.accept_request(request, &mut batch, context),
                NodeInput::Persisted(persist_seq) => {
                    live.replica.on_persisted(persist_seq);
                    live.release_held(self.disk.durable_seq(), context);
                }
            }
        }
        let contradicted = live.replica.contradicted_commits() - contradicted_before;
        if contradicted > 0 {
            context.checker.violation(
                ViolationKind::Agreement,
                context.now_ns,
                format!("{id} dropped {contradicted} catch-up(s) naming another value for a slot it committed"),
            );
        }
        if !batch.is_empty() {
            live.propose(id, local_ns, batch, context);
        }
        live.drain(id, &mut self.disk, snapshot_interval, context);
        context.write_started = self.disk.submit();
        let role = live.replica.role();
        if role != live.role {
            live.role = role;
            if role == Role::Leader {
                context.elections += 1;
            }
            let promised = live.replica.promised_ballot();
            context.trace.record(
                context.now_ns,
                TraceEvent::Role {
                    node: id,
                    role,
                    promised,
                },
            );
        }
    }
}

/// Queues a reply to the client that made `request`.
pub(super) fn reply(context: &mut TurnContext<'_>, request: RequestId, body: ReplyBody) {
    context.sends.push(Envelope::Reply {
        reply: ClientReply { id: request, body },
    });
}

impl<M: StateMachine> LiveNode<M> {
    /// Sends the held messages whose persist sequence number is durable.
    fn release_held(&mut self, durable: PersistSeq, context: &mut TurnContext<'_>) {
        while self.held.front().is_some_and(|(seq, _)| *seq <= durable) {
            let (_, messages) = self.held.pop_front().expect("front() was Some");
            send_all(context, self.replica.node(), messages);
        }
    }

    /// A client request: answered from the session table, redirected, or
    /// taken into this turn's batch or reads.
    fn accept_request(
        &mut self,
        request: ClientRequest,
        batch: &mut Vec<(Command, RequestId)>,
        context: &mut TurnContext<'_>,
    ) {
        match request.body {
            RequestBody::Write(command) => {
                let key = (ClientId(command.client_id), Seq(command.seq));
                if let Some(result) = self.store.cached_result(key.0, key.1) {
                    reply(context, request.id, ReplyBody::Written(result));
                    return;
                }
                if self.replica.role() != Role::Leader {
                    let hint = self.replica.leader_hint();
                    reply(context, request.id, ReplyBody::Redirect(hint));
                    return;
                }
                self.waiting.entry(key).or_default().push(request.id);
                batch.push((command, request.id));
            }
            RequestBody::Read { query } => {
                let read_id = ReadId(self.next_read_id);
                self.next_read_id += 1;
                match self.replica.read(read_id) {
                    Ok(()) => {
                        let pending = PendingRead {
                            request: request.id,
                            query,
                        };
                        self.reads.insert(read_id, pending);
                    }
                    Err(ReadError::NotLeader { leader_hint }) => {
                        reply(context, request.id, ReplyBody::Redirect(leader_hint));
                    }
                    Err(_) => reply(context, request.id, ReplyBody::Busy),
                }
            }
        }
    }

    /// Proposes the turn's client writes as one batch.
    fn propose(
        &mut self,
        id: NodeId,
        local_ns: u64,
        batch: Vec<(Command, RequestId)>,
        context: &mut TurnContext<'_>,
    ) {
        let mut commands: Vec<Command> = Vec::with_capacity(batch.len());
        for (command, _) in &batch {
            let duplicate = commands
                .iter()
                .any(|seen| seen.client_id == command.client_id && seen.seq == command.seq);
            if !duplicate {
                commands.push(command.clone());
            }
        }
        let count = commands.len();
        let body = BatchBody {
            proposed_at_ns: local_ns,
            commands,
        };
        let refusal = match self.replica.propose(Batch::encode(&body)) {
            Ok(()) => {
                context.stats.batches_proposed += 1;
                context.stats.commands_proposed += count as u64;
                let event = TraceEvent::Proposed {
                    node: id,
                    commands: count,
                };
                context.trace.record(context.now_ns, event);
                return;
            }
            Err(ProposeError::NotLeader { leader_hint }) => ReplyBody::Redirect(leader_hint),
            Err(_) => ReplyBody::Busy,
        };
        for (command, request) in batch {
            let key = (ClientId(command.client_id), Seq(command.seq));
            if let Some(waiting) = self.waiting.get_mut(&key) {
                waiting.retain(|waiter| *waiter != request);
                if waiting.is_empty() {
                    self.waiting.remove(&key);
                }
            }
            reply(context, request, refusal.clone());
        }
    }
}

/// Sends replica messages from `from`.
pub(super) fn send_all(context: &mut TurnContext<'_>, from: NodeId, messages: Vec<Outgoing>) {
    for Outgoing { to, message } in messages {
        context.sends.push(Envelope::Peer { from, to, message });
    }
}
