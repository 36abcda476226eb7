//! The proposer: phase 1 as a candidate, then phase 2 with a window of slots
//! in flight, heartbeat rounds for the lease and for read confirmation.

use std::collections::{BTreeMap, VecDeque};

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, Slot};

use super::{
    CandidateState, InFlight, LeaderState, LogEntry, NodeSet, PendingRead, Replica, Round, SelfVote,
};
use crate::paxos::{ReadError, ReadId, ReadReady, Role};

/// Heartbeat rounds remembered for late acknowledgements.
const ROUNDS_REMEMBERED_MAX: usize = 16;

impl Replica {
    /// No leader was heard for an election timeout: run phase 1 with a
    /// ballot above every ballot seen.
    pub(super) fn election_timeout(&mut self) {
        self.reset_election_deadline();
        let round = self.ballot_seen.round.max(self.promised.round) + 1;
        let ballot = Ballot {
            round,
            node: self.node,
        };
        if self.lease_forbids(ballot) {
            return; // This acceptor still owes another leader its lease.
        }
        self.step_down(None);
        self.raise_promise(ballot);
        self.role = Role::Candidate;
        let from_slot = self.commit_point.next();
        let values: BTreeMap<Slot, LogEntry> = self
            .log
            .range(from_slot..)
            .map(|(&slot, entry)| (slot, entry.clone()))
            .collect();
        let seq = self.pending_persist_seq();
        self.self_votes
            .push_back((seq, SelfVote::Promise { ballot }));
        self.candidate = Some(CandidateState {
            ballot,
            from_slot,
            promises: NodeSet::default(),
            self_promise_seq: Some(seq),
            values,
            prepare_sent_ns: self.now_ns,
        });
        // The prepares wait for the candidate's own promise to be durable, so
        // a restart never reuses a ballot that reached anyone.
        let peers: Vec<_> = self.peers().collect();
        for peer in peers {
            self.send_after_persist(peer, Message::Prepare { ballot, from_slot });
        }
    }

    /// Resends the prepare to peers that have not promised yet.
    pub(super) fn candidate_tick(&mut self) {
        let interval = self.config.heartbeat_interval_ns;
        let Some(candidate) = self.candidate.as_mut() else {
            return;
        };
        if self.now_ns < candidate.prepare_sent_ns + interval {
            return;
        }
        candidate.prepare_sent_ns = self.now_ns;
        let (ballot, from_slot, promises) =
            (candidate.ballot, candidate.from_slot, candidate.promises);
        let missing: Vec<_> = self
            .config
            .nodes
            .iter()
            .enumerate()
            .filter(|&(index, &node)| node != self.node && !promises.contains(index))
            .map(|(_, &node)| node)
            .collect();
        for peer in missing {
            self.send_after_persist(peer, Message::Prepare { ballot, from_slot });
        }
    }

    pub(super) fn on_promise(
        &mut self,
        from_index: usize,
        ballot: Ballot,
        accepted: Vec<AcceptedEntry>,
        commit_point: Slot,
        snapshot_slot: Slot,
    ) {
        let Some(candidate) = self.candidate.as_mut() else {
            return;
        };
        if ballot != candidate.ballot {
            return;
        }
        if snapshot_slot >= candidate.from_slot {
            // That acceptor compacted values this candidate lacks: it cannot
            // lead safely. It catches up instead; a better-informed replica
            // will win the next election.
            let from = self.config.nodes[from_index];
            self.step_down(None);
            self.request_catch_up(from);
            return;
        }
        let _ = commit_point;
        if !candidate.promises.insert(from_index) {
            return;
        }
        for entry in accepted {
            if entry.slot < candidate.from_slot {
                continue;
            }
            let higher = candidate
                .values
                .get(&entry.slot)
                .is_none_or(|known| entry.ballot > known.ballot);
            if higher {
                candidate.values.insert(
                    entry.slot,
                    LogEntry {
                        ballot: entry.ballot,
                        batch: entry.batch,
                    },
                );
            }
        }
        self.maybe_win();
    }

    pub(super) fn count_self_promise(&mut self, ballot: Ballot) {
        let Some(candidate) = self.candidate.as_mut() else {
            return;
        };
        if candidate.ballot != ballot || self.promised != ballot {
            return;
        }
        candidate.self_promise_seq = None;
        candidate.promises.insert(self.node_index);
        self.maybe_win();
    }

    /// A candidate wins with a phase-1 quorum that includes its own durable
    /// promise: a ballot never leads unless its owner will remember it.
    fn maybe_win(&mut self) {
        let node_index = self.node_index;
        let won = self.candidate.as_ref().is_some_and(|candidate| {
            candidate.promises.contains(node_index)
                && candidate.promises.count() >= self.config.phase1_quorum()
        });
        if won {
            self.become_leader();
        }
    }

    /// Phase 1 succeeded: re-propose the highest-ballot value reported for
    /// every open slot, fill holes with no-ops, then take new proposals.
    fn become_leader(&mut self) {
        let candidate = self.candidate.take().expect("maybe_win() saw a candidate");
        let ballot = candidate.ballot;
        assert_eq!(
            self.promised, ballot,
            "a leader holds its own ballot's promise"
        );
        #[allow(unused_mut)]
        let mut values = candidate.values;
        #[cfg(feature = "sim")]
        if self.config.bugs.ignore_promised_values {
            values.clear();
        }
        let last_reported = values.keys().next_back().copied().unwrap_or(Slot(0));
        let ready_slot = last_reported.max(self.commit_point);
        self.role = Role::Leader;
        self.leader_hint = Some(self.node);
        let first_open = self.commit_point.next();
        self.leader = Some(LeaderState {
            ballot,
            next_slot: first_open,
            unsent_from: first_open,
            in_flight: BTreeMap::new(),
            queue: VecDeque::new(),
            ready_slot,
            lease_until_ns: 0,
            next_round: 1,
            rounds: VecDeque::new(),
            confirmed_round: 0,
            last_quorum_ns: self.now_ns,
            reads: VecDeque::new(),
            round_wanted: false,
            next_heartbeat_ns: self.now_ns,
        });
        let mut slot = first_open;
        while slot <= last_reported {
            let batch = values
                .remove(&slot)
                .map_or_else(Batch::noop, |entry| entry.batch);
            self.propose_slot(slot, batch);
            slot = slot.next();
        }
        self.send_round();
    }

    /// Phase 2a for one slot: this acceptor accepts it (its vote counts once
    /// durable) and the accept goes to the peers at the next `ready()`.
    fn propose_slot(&mut self, slot: Slot, batch: Batch) {
        let leader = self.leader.as_mut().expect("only a leader proposes");
        let ballot = leader.ballot;
        assert_eq!(
            slot, leader.next_slot,
            "slots are proposed in order without gaps"
        );
        leader.next_slot = slot.next();
        leader.in_flight.insert(
            slot,
            InFlight {
                votes: NodeSet::default(),
                sent_at_ns: self.now_ns,
            },
        );
        self.accept_value(slot, ballot, batch);
        let seq = self.pending_persist_seq();
        self.self_votes
            .push_back((seq, SelfVote::Accepted { ballot, slot }));
    }

    /// Moves queued proposals into free slots of the window.
    pub(super) fn fill_window(&mut self) {
        loop {
            let window_end = self.commit_point.0 + self.config.window_slot_count_max;
            let Some(leader) = self.leader.as_mut() else {
                return;
            };
            if leader.next_slot.0 > window_end {
                return;
            }
            let Some(batch) = leader.queue.pop_front() else {
                return;
            };
            let slot = leader.next_slot;
            self.propose_slot(slot, batch);
        }
    }

    /// Sends the slots proposed since the last flush (one accept per peer
    /// per turn, in chunks) and a heartbeat round if reads wait for one.
    pub(super) fn flush_leader(&mut self) {
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let (first, end) = (leader.unsent_from, leader.next_slot);
        leader.unsent_from = end;
        let round_wanted = std::mem::take(&mut leader.round_wanted);
        if first < end {
            let peers: Vec<_> = self.peers().collect();
            for peer in peers {
                self.send_accepts(peer, first, end);
            }
        }
        if round_wanted {
            self.send_round();
        }
    }

    /// Accept messages for the slots `first..end` to one peer.
    fn send_accepts(&mut self, peer: synod_net::wire::NodeId, first: Slot, end: Slot) {
        let ballot = self
            .leader
            .as_ref()
            .expect("only a leader sends accepts")
            .ballot;
        let mut chunk_first = first;
        while chunk_first < end {
            let chunk_end = Slot((chunk_first.0 + self.config.accept_slot_count_max).min(end.0));
            let batches = self
                .log
                .range(chunk_first..chunk_end)
                .map(|(_, entry)| entry.batch.clone())
                .collect();
            let message = Message::Accept {
                ballot,
                first_slot: chunk_first,
                batches,
                commit_point: self.commit_point,
            };
            self.send(peer, message);
            chunk_first = chunk_end;
        }
    }

    pub(super) fn on_accepted(
        &mut self,
        from_index: usize,
        ballot: Ballot,
        first_slot: Slot,
        slot_count: u64,
        _: Slot,
    ) {
        let Some(leader) = self.leader.as_ref() else {
            return;
        };
        if leader.ballot != ballot {
            return;
        }
        let end = Slot(first_slot.0.saturating_add(slot_count));
        let slots: Vec<Slot> = leader
            .in_flight
            .range(first_slot..end)
            .map(|(&slot, _)| slot)
            .collect();
        for slot in slots {
            self.count_vote(from_index, ballot, slot);
        }
    }

    /// Counts one durable phase-2b vote; a slot with a phase-2 quorum is
    /// chosen, and the commit point advances over chosen slots in order.
    pub(super) fn count_vote(&mut self, index: usize, ballot: Ballot, slot: Slot) {
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        if leader.ballot != ballot {
            return;
        }
        if let Some(in_flight) = leader.in_flight.get_mut(&slot) {
            in_flight.votes.insert(index);
        }
        let quorum = self.config.phase2_quorum();
        let mut chosen_through = self.commit_point;
        while let Some(in_flight) = leader.in_flight.get(&chosen_through.next()) {
            if in_flight.votes.count() < quorum {
                break;
            }
            chosen_through = chosen_through.next();
            leader.in_flight.remove(&chosen_through);
        }
        if chosen_through > self.commit_point {
            self.advance_commit_to(chosen_through);
            self.fill_window();
            self.release_reads();
        }
    }

    pub(super) fn on_reject(&mut self, ballot: Ballot, promised: Ballot) {
        self.ballot_seen = self.ballot_seen.max(promised);
        let own = self
            .leader
            .as_ref()
            .map(|leader| leader.ballot)
            .or(self.candidate.as_ref().map(|c| c.ballot));
        if own == Some(ballot) && promised > ballot {
            self.step_down(Some(promised.node));
        }
    }

    /// Heartbeats, retransmissions, and stepping down after losing a quorum.
    pub(super) fn leader_tick(&mut self) {
        let Some(leader) = self.leader.as_ref() else {
            return;
        };
        if self.now_ns.saturating_sub(leader.last_quorum_ns) > self.config.election_timeout_max_ns {
            self.step_down(None);
            return;
        }
        if self.now_ns >= leader.next_heartbeat_ns {
            self.send_round();
            self.retransmit();
        }
    }

    /// Starts a heartbeat round: the leader's own acknowledgement counts at once.
    fn send_round(&mut self) {
        let node_index = self.node_index;
        let (now, interval) = (self.now_ns, self.config.heartbeat_interval_ns);
        let commit_point = self.commit_point;
        let leader = self
            .leader
            .as_mut()
            .expect("only a leader sends heartbeats");
        let number = leader.next_round;
        leader.next_round += 1;
        leader.next_heartbeat_ns = now + interval;
        let mut acks = NodeSet::default();
        acks.insert(node_index);
        leader.rounds.push_back(Round {
            number,
            sent_at_ns: now,
            acks,
        });
        if leader.rounds.len() > ROUNDS_REMEMBERED_MAX {
            leader.rounds.pop_front();
        }
        let ballot = leader.ballot;
        let peers: Vec<_> = self.peers().collect();
        for peer in peers {
            self.send(
                peer,
                Message::Heartbeat {
                    ballot,
                    commit_point,
                    round: number,
                },
            );
        }
        self.round_acknowledged(number);
    }

    pub(super) fn on_heartbeat_ack(&mut self, from_index: usize, ballot: Ballot, number: u64) {
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        if leader.ballot != ballot {
            return;
        }
        if let Some(round) = leader
            .rounds
            .iter_mut()
            .find(|round| round.number == number)
        {
            round.acks.insert(from_index);
            self.round_acknowledged(number);
        }
    }

    /// A round acknowledged by a phase-2 quorum (which meets every phase-1
    /// quorum) proves no other leader could have been chosen before it was
    /// sent, and extends the lease from its send time.
    fn round_acknowledged(&mut self, number: u64) {
        let quorum = self.config.phase2_quorum();
        let lease_ns = if self.config.lease_ns == 0 {
            0
        } else {
            self.config.leader_lease_ns()
        };
        let now = self.now_ns;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let Some(round) = leader.rounds.iter().find(|round| round.number == number) else {
            return;
        };
        if round.acks.count() < quorum || number <= leader.confirmed_round {
            return;
        }
        if lease_ns > 0 {
            leader.lease_until_ns = leader.lease_until_ns.max(round.sent_at_ns + lease_ns);
        }
        leader.confirmed_round = number;
        leader.last_quorum_ns = leader.last_quorum_ns.max(round.sent_at_ns).min(now);
        self.release_reads();
    }

    /// Resends accepts for slots that peers have not acknowledged within a
    /// heartbeat interval (the network may have dropped them).
    fn retransmit(&mut self) {
        let (now, interval) = (self.now_ns, self.config.heartbeat_interval_ns);
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let stale: Vec<(Slot, NodeSet)> = leader
            .in_flight
            .iter_mut()
            .filter(|(_, in_flight)| in_flight.sent_at_ns + interval <= now)
            .map(|(&slot, in_flight)| {
                in_flight.sent_at_ns = now;
                (slot, in_flight.votes)
            })
            .collect();
        let nodes = self.config.nodes.clone();
        for (index, peer) in nodes.into_iter().enumerate() {
            if peer == self.node {
                continue;
            }
            let mut run: Option<(Slot, Slot)> = None;
            for &(slot, votes) in &stale {
                if votes.contains(index) {
                    continue;
                }
                run = match run {
                    Some((first, end)) if end == slot => Some((first, slot.next())),
                    Some((first, end)) => {
                        self.send_accepts(peer, first, end);
                        Some((slot, slot.next()))
                    }
                    None => Some((slot, slot.next())),
                };
            }
            if let Some((first, end)) = run {
                self.send_accepts(peer, first, end);
            }
        }
    }

    pub(super) fn leader_read(&mut self, read_id: ReadId) -> Result<(), ReadError> {
        let leader_hint = self.leader_hint;
        let (now, commit_point) = (self.now_ns, self.commit_point);
        let Some(leader) = self.leader.as_mut() else {
            return Err(ReadError::NotLeader { leader_hint });
        };
        let read_slot = commit_point.max(leader.ready_slot);
        if commit_point >= leader.ready_slot && now < leader.lease_until_ns {
            self.out.reads_ready.push(ReadReady { read_id, read_slot });
            return Ok(());
        }
        if leader.reads.len() >= self.config.reads_pending_max {
            return Err(ReadError::Busy);
        }
        leader.reads.push_back(PendingRead {
            read_id,
            read_slot,
            round_needed: leader.next_round,
        });
        leader.round_wanted = true;
        Ok(())
    }

    /// Hands out the reads whose confirming round has been acknowledged,
    /// once everything a previous leader chose is committed here.
    fn release_reads(&mut self) {
        let commit_point = self.commit_point;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        if commit_point < leader.ready_slot {
            return;
        }
        while leader
            .reads
            .front()
            .is_some_and(|read| read.round_needed <= leader.confirmed_round)
        {
            let read = leader.reads.pop_front().expect("front() was Some");
            self.out.reads_ready.push(ReadReady {
                read_id: read.read_id,
                read_slot: read.read_slot,
            });
        }
    }
}
