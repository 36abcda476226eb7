//! The replica: one acceptor, one learner and (while it leads) one proposer
//! of a Multi-Paxos group, as a deterministic state machine.
//!
//! Invariants:
//! - An acceptor never accepts or promises a ballot below `promised`, and
//!   `promised` never decreases.
//! - A promise or accepted reply leaves only after the state it vouches for
//!   is durable (it sits in `messages_after_persist`); the replica's own
//!   votes count only after `on_persisted`.
//! - Agreement: a slot at or below the commit point never changes value; a
//!   peer's catch-up that names a different value for it is dropped and
//!   counted (`contradicted_commits`, which the simulator reports as an
//!   agreement violation).
//! - `committed` hands out slots in order, each once.
//! - A leader serves a lease read only while its lease (shortened for drift)
//!   runs, and acceptors refuse promises to other candidates while a lease
//!   they granted runs (also for `lease_ns` after a restart).
//! - A candidate's prepares leave, and it may lead, only once its own
//!   promise of its ballot is durable: a restart never reuses a ballot.
//! - A non-voter sends no promise, accepted or heartbeat acknowledgement.
//!   It votes again only after every peer has durably promised its fence
//!   ballot, it has learned every slot any of them compacted, and it has
//!   adopted the highest-ballot value they reported for every later slot;
//!   that it is recovering is itself durable metadata.
//! - An acceptor never acknowledges a value that contradicts a slot it
//!   knows chosen.

mod acceptor;
mod input;
mod leader;
mod learner;
mod state;

use std::collections::{BTreeMap, VecDeque};

use state::{
    CandidateState, InFlight, LeaderState, LogEntry, NodeSet, PendingRead, Random, RecoveryAnswer,
    RecoveryState, Round, SelfVote,
};

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, PersistSeq, Slot, Snapshot};

use super::{
    Committed, Config, ConfigError, Metadata, Outgoing, PersistItem, ProposeError, ReadError,
    ReadId, Ready, Recovered, Role,
};

/// One member of a Multi-Paxos group: acceptor, learner, and proposer when
/// it leads. See the module documentation of [`crate::paxos`] for the
/// driver's contract.
#[derive(Debug)]
pub struct Replica {
    config: Config,
    node: NodeId,
    node_index: usize,
    random: Random,
    now_ns: u64,
    started: bool,
    role: Role,
    leader_hint: Option<NodeId>,
    ballot_seen: Ballot,
    // Acceptor.
    promised: Ballot,
    log: BTreeMap<Slot, LogEntry>,
    commit_point: Slot,
    snapshot: Option<Snapshot>,
    compacted_through: Slot,
    /// Peer catch-ups dropped for naming another value for a committed slot.
    contradicted_commits: u64,
    lease_granted_to: Option<Ballot>,
    lease_granted_until_ns: u64,
    // Timers.
    election_deadline_ns: u64,
    catch_up_requested_ns: Option<u64>,
    // Proposer.
    candidate: Option<CandidateState>,
    leader: Option<LeaderState>,
    recovery: Option<RecoveryState>,
    // Outputs.
    out: Ready,
    metadata_dirty: bool,
    persist_seq: PersistSeq,
    durable_seq: PersistSeq,
    self_votes: VecDeque<(PersistSeq, SelfVote)>,
}

impl Replica {
    /// Builds replica `node` of a group from what it recovered from disk.
    /// `seed` drives its election timeouts (the driver owns randomness).
    ///
    /// # Errors
    /// [`ConfigError`] if the configuration is unsafe or inconsistent.
    pub fn new(
        config: Config,
        node: NodeId,
        seed: u64,
        recovered: Recovered,
    ) -> Result<Replica, ConfigError> {
        config.validate(node)?;
        let node_index = config
            .nodes
            .iter()
            .position(|&member| member == node)
            .expect("validate() checked that the node is a member");
        let mut replica = Replica {
            config,
            node,
            node_index,
            random: Random(seed ^ u64::from(node.0).wrapping_mul(0x2545_F491_4F6C_DD1D)),
            now_ns: 0,
            started: false,
            role: Role::Follower,
            leader_hint: None,
            ballot_seen: Ballot::ZERO,
            promised: Ballot::ZERO,
            log: BTreeMap::new(),
            commit_point: Slot(0),
            snapshot: None,
            compacted_through: Slot(0),
            contradicted_commits: 0,
            lease_granted_to: None,
            lease_granted_until_ns: 0,
            election_deadline_ns: 0,
            catch_up_requested_ns: None,
            candidate: None,
            leader: None,
            recovery: None,
            out: Ready::default(),
            metadata_dirty: false,
            persist_seq: PersistSeq(0),
            durable_seq: PersistSeq(0),
            self_votes: VecDeque::new(),
        };
        replica.restore_recovered(recovered);
        Ok(replica)
    }

    /// This replica's node id.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The role it plays now.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The replica this one believes leads (itself when leading).
    #[must_use]
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader_hint
    }

    /// The highest ballot promised by this acceptor.
    #[must_use]
    pub fn promised_ballot(&self) -> Ballot {
        self.promised
    }

    /// Every slot up to here is chosen and has been handed out as committed.
    #[must_use]
    pub fn commit_point(&self) -> Slot {
        self.commit_point
    }

    /// How many peer catch-ups named another value for a slot this replica
    /// had committed. Each was dropped (a peer's word never changes a
    /// committed slot, nor panics the replica); in a correct cluster this
    /// stays 0, so a driver should report anything else loudly (the
    /// simulator counts it as an agreement violation).
    #[must_use]
    pub fn contradicted_commits(&self) -> u64 {
        self.contradicted_commits
    }

    /// The slot of the latest snapshot (0 when none).
    #[must_use]
    pub fn snapshot_slot(&self) -> Slot {
        self.snapshot
            .as_ref()
            .map_or(Slot(0), |snapshot| snapshot.slot)
    }

    /// True while this replica leads and its lease lets it serve reads locally.
    #[must_use]
    pub fn has_lease(&self) -> bool {
        self.leader
            .as_ref()
            .is_some_and(|leader| self.now_ns < leader.lease_until_ns)
    }

    /// Advances the replica's clock to `now_ns` (local, monotonic) and runs
    /// its timers: elections, heartbeats, retransmissions, recovery queries.
    ///
    /// # Panics
    /// If time goes backwards (a driver bug).
    pub fn on_tick(&mut self, now_ns: u64) {
        assert!(
            now_ns >= self.now_ns,
            "time went backwards: {now_ns} < {}",
            self.now_ns
        );
        self.now_ns = now_ns;
        if !self.started {
            self.start();
        }
        match self.role {
            Role::Leader => self.leader_tick(),
            Role::Candidate | Role::Follower => {
                if self.role == Role::Candidate {
                    self.candidate_tick();
                }
                if now_ns >= self.election_deadline_ns {
                    self.election_timeout();
                }
            }
            Role::NonVoter => self.recovery_tick(),
        }
    }

    /// Handles a message from peer `from`.
    pub fn on_message(&mut self, from: NodeId, message: Message) {
        let Some(from_index) = self.index_of(from) else {
            return; // Not a member of this group: ignore it.
        };
        if from == self.node {
            return;
        }
        if !input::slots_plausible(&message) || !input::ballots_plausible(&message) {
            return; // No correct peer names such a slot or round: drop it as lost.
        }
        if !input::sent_by_ballot_owner(from, &message) {
            return; // A peer speaking in another's ballot: drop it as lost.
        }
        match message {
            Message::Prepare { ballot, from_slot } => self.on_prepare(from, ballot, from_slot),
            Message::Promise {
                ballot,
                accepted,
                commit_point,
                snapshot_slot,
                ..
            } => {
                self.on_promise(from_index, ballot, accepted, commit_point, snapshot_slot);
            }
            Message::Reject { ballot, promised } => self.on_reject(ballot, promised),
            Message::Accept {
                ballot,
                first_slot,
                batches,
                commit_point,
            } => {
                self.on_accept(from, ballot, first_slot, batches, commit_point);
            }
            Message::Accepted {
                ballot,
                first_slot,
                slot_count,
                commit_point,
            } => {
                self.on_accepted(from_index, ballot, first_slot, slot_count, commit_point);
            }
            Message::Heartbeat {
                ballot,
                commit_point,
                round,
            } => {
                self.on_heartbeat(from, ballot, commit_point, round);
            }
            Message::HeartbeatAck {
                ballot,
                round,
                commit_point: _,
            } => {
                self.on_heartbeat_ack(from_index, ballot, round);
            }
            Message::Chosen {
                ballot,
                first_slot,
                batches,
                commit_point,
            } => {
                self.on_chosen(from, ballot, first_slot, batches, commit_point);
            }
            Message::CatchUp { commit_point } => self.on_catch_up(from, commit_point),
            Message::InstallSnapshot { ballot, snapshot } => {
                self.on_install_snapshot(from, ballot, snapshot);
            }
            Message::RecoveryQuery {
                nonce,
                fence,
                from_slot,
            } => self.on_recovery_query(from, nonce, fence, from_slot),
            Message::RecoveryInfo {
                nonce,
                promised,
                accepted,
                commit_point,
                compacted_through,
            } => {
                let answer = RecoveryAnswer {
                    promised,
                    accepted,
                    commit_point,
                    compacted_through,
                };
                self.on_recovery_info(from, from_index, nonce, answer);
            }
        }
    }

    /// Proposes a batch for the next free slot. The batch waits in a bounded
    /// queue while the window of slots in flight is full.
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] unless this replica leads;
    /// [`ProposeError::Busy`] when the queue is full.
    pub fn propose(&mut self, batch: Batch) -> Result<(), ProposeError> {
        let leader_hint = self.leader_hint;
        let Some(leader) = self.leader.as_mut() else {
            return Err(ProposeError::NotLeader { leader_hint });
        };
        if leader.queue.len() >= self.config.proposal_queue_max {
            return Err(ProposeError::Busy);
        }
        leader.queue.push_back(batch);
        self.fill_window();
        Ok(())
    }

    /// Asks to serve a linearizable read. It becomes ready at once under a
    /// valid lease, else after a heartbeat round confirms leadership.
    ///
    /// # Errors
    /// [`ReadError::NotLeader`] unless this replica leads;
    /// [`ReadError::Busy`] when too many reads wait.
    pub fn read(&mut self, read_id: ReadId) -> Result<(), ReadError> {
        self.leader_read(read_id)
    }

    /// Everything handed out with a persist sequence number up to
    /// `persist_seq` is durable.
    ///
    /// # Panics
    /// If `persist_seq` was never handed out (a driver bug).
    pub fn on_persisted(&mut self, persist_seq: PersistSeq) {
        assert!(
            persist_seq <= self.persist_seq,
            "persisted {persist_seq:?} was never handed out"
        );
        if persist_seq <= self.durable_seq {
            return;
        }
        self.durable_seq = persist_seq;
        while self
            .self_votes
            .front()
            .is_some_and(|(seq, _)| *seq <= persist_seq)
        {
            let (_, vote) = self.self_votes.pop_front().expect("front() was Some");
            match vote {
                SelfVote::Promise { ballot } => self.count_self_promise(ballot),
                SelfVote::Accepted { ballot, slot } => {
                    self.count_vote(self.node_index, ballot, slot)
                }
            }
        }
    }

    /// The driver took a snapshot of the state machine at `snapshot.slot`
    /// (it has applied exactly that far). The replica keeps it for lagging
    /// peers, persists it, and drops log entries at or below its slot.
    ///
    /// # Panics
    /// If the snapshot is beyond the commit point (a driver bug).
    pub fn on_snapshot(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.slot <= self.commit_point,
            "snapshot beyond the commit point"
        );
        if snapshot.slot <= self.snapshot_slot() {
            return;
        }
        self.keep_snapshot(snapshot);
    }

    /// Takes the outputs gathered since the last call.
    pub fn ready(&mut self) -> Ready {
        if self.leader.is_some() {
            self.flush_leader();
        }
        if self.metadata_dirty {
            self.metadata_dirty = false;
            let metadata = Metadata {
                promised: self.promised,
                commit_point: self.commit_point,
                recovering: self.recovery.is_some(),
            };
            self.out.persist.push(PersistItem::Metadata(metadata));
        }
        if !self.out.persist.is_empty() {
            self.persist_seq = PersistSeq(self.persist_seq.0 + 1);
        }
        let mut ready = std::mem::take(&mut self.out);
        ready.persist_seq = self.persist_seq;
        ready
    }

    /// The persist sequence number the next `ready()` will hand out if it
    /// has items: votes recorded now count once it is durable.
    fn pending_persist_seq(&self) -> PersistSeq {
        PersistSeq(self.persist_seq.0 + 1)
    }

    fn index_of(&self, node: NodeId) -> Option<usize> {
        self.config.nodes.iter().position(|&member| member == node)
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let node = self.node;
        self.config
            .nodes
            .iter()
            .copied()
            .filter(move |&member| member != node)
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.out.messages_now.push(Outgoing { to, message });
    }

    /// Queues a reply that vouches for durable state.
    fn send_after_persist(&mut self, to: NodeId, message: Message) {
        #[cfg(feature = "sim")]
        if self.config.bugs.reply_before_persist {
            self.out.messages_now.push(Outgoing { to, message });
            return;
        }
        self.out
            .messages_after_persist
            .push(Outgoing { to, message });
    }

    fn persist(&mut self, item: PersistItem) {
        self.out.persist.push(item);
    }

    fn reset_election_deadline(&mut self) {
        let timeout = self.random.between(
            self.config.election_timeout_min_ns,
            self.config.election_timeout_max_ns,
        );
        self.election_deadline_ns = self.now_ns + timeout;
    }

    /// The first tick: arm the election timer and wait out any lease this
    /// acceptor may have granted before it restarted.
    fn start(&mut self) {
        self.started = true;
        self.reset_election_deadline();
        #[cfg(feature = "sim")]
        if self.config.bugs.skip_lease_wait {
            return;
        }
        if self.config.lease_ns > 0 {
            self.lease_granted_to = None;
            self.lease_granted_until_ns = self.now_ns + self.config.lease_ns;
        }
    }

    fn restore_recovered(&mut self, recovered: Recovered) {
        let Recovered {
            metadata,
            accepted,
            snapshot,
            mut damaged,
        } = recovered;
        self.promised = metadata.promised;
        self.ballot_seen = metadata.promised;
        let snapshot_slot = snapshot.as_ref().map_or(Slot(0), |snapshot| snapshot.slot);
        for entry in accepted {
            if entry.slot > snapshot_slot {
                let AcceptedEntry {
                    slot,
                    ballot,
                    batch,
                } = entry;
                self.log.insert(slot, LogEntry { ballot, batch });
            }
        }
        // Slots up to the durable commit point must all be present; a gap
        // means a synced record is gone.
        let mut commit_point = snapshot_slot;
        while commit_point < metadata.commit_point && self.log.contains_key(&commit_point.next()) {
            commit_point = commit_point.next();
        }
        if commit_point < metadata.commit_point {
            damaged = true;
        }
        if let Some(snapshot) = snapshot {
            self.out.snapshot_to_restore = Some(snapshot.clone());
            self.snapshot = Some(snapshot);
        }
        self.commit_point = snapshot_slot;
        self.compacted_through = snapshot_slot;
        damaged |= metadata.recovering;
        if !damaged {
            self.advance_commit_to(commit_point);
        } else {
            // A lost record may have superseded one that survived: nothing
            // above the snapshot is trusted as chosen until relearned.
            self.role = Role::NonVoter;
            let nonce = self.random.next();
            let fence = Ballot {
                round: self.promised.round + 1,
                node: self.node,
            };
            self.recovery = Some(RecoveryState {
                nonce,
                fence,
                answers: NodeSet::default(),
                adopted: BTreeMap::new(),
                compacted_seen: Slot(0),
                all_answered: false,
                catch_up_turn: 0,
                best_peer: None,
                next_query_ns: 0,
            });
            // Recovering must survive a restart that finds the log repaired.
            self.metadata_dirty = true;
            if self.config.nodes.len() == 1 {
                // No peer holds a copy: what was lost is lost, and waiting
                // would not bring it back.
                self.finish_recovery_without_peers();
            }
        }
    }

    /// Hands out committed slots from the log up to `target`, in order.
    fn advance_commit_to(&mut self, target: Slot) {
        while self.commit_point < target {
            let slot = self.commit_point.next();
            let entry = self
                .log
                .get(&slot)
                .expect("callers only advance over slots present in the log");
            self.out.committed.push(Committed {
                slot,
                batch: entry.batch.clone(),
            });
            self.commit_point = slot;
            self.metadata_dirty = true;
        }
    }

    /// Gives up candidacy or leadership: pending reads fail, queued
    /// proposals are dropped (clients retry with the same sequence numbers).
    fn step_down(&mut self, leader_hint: Option<NodeId>) {
        if let Some(leader) = self.leader.take() {
            for read in leader.reads {
                self.out
                    .reads_failed
                    .push((read.read_id, ReadError::NotLeader { leader_hint }));
            }
        }
        self.candidate = None;
        if self.role != Role::NonVoter {
            self.role = Role::Follower;
        }
        self.leader_hint = leader_hint;
        self.reset_election_deadline();
    }

    /// Raises the promised ballot (never lowers it) and marks it for persisting.
    fn raise_promise(&mut self, ballot: Ballot) {
        assert!(ballot >= self.promised, "promised ballot must not decrease");
        if ballot > self.promised {
            self.promised = ballot;
            self.metadata_dirty = true;
        }
        self.ballot_seen = self.ballot_seen.max(ballot);
        let own_ballot = self.leader.as_ref().map(|leader| leader.ballot);
        let candidate_ballot = self.candidate.as_ref().map(|candidate| candidate.ballot);
        if own_ballot.is_some_and(|own| own < ballot)
            || candidate_ballot.is_some_and(|own| own < ballot)
        {
            self.step_down(Some(ballot.node));
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod review2_tests;
#[cfg(test)]
mod review3_tests;
#[cfg(test)]
mod review4_tests;
#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod test_harness;
