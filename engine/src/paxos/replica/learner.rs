//! The learner: commit points from the leader, catch-up with chosen values
//! or a snapshot, compaction, and a damaged replica's way back to voting.

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, Slot, Snapshot};

use super::{LogEntry, NodeSet, Replica};
use crate::paxos::{PersistItem, Role};

impl Replica {
    /// A leader in `ballot` says every slot up to `leader_commit` is chosen.
    /// A slot this acceptor holds from that same ballot carries the value the
    /// leader chose (one value per slot per ballot); past the first slot it
    /// lacks, it asks for the chosen values.
    pub(super) fn learn_commit_point(&mut self, from: NodeId, ballot: Ballot, leader_commit: Slot) {
        if self.leader.is_some() {
            return;
        }
        let mut target = self.commit_point;
        while target < leader_commit {
            match self.log.get(&target.next()) {
                Some(entry) if entry.ballot == ballot => target = target.next(),
                _ => break,
            }
        }
        self.advance_commit_to(target);
        if target < leader_commit {
            self.request_catch_up(from);
        }
        if self.role == Role::NonVoter {
            self.finish_recovery_if_caught_up();
        }
    }

    /// Asks `from` for chosen values, at most once per heartbeat interval
    /// unless an answer just arrived.
    pub(super) fn request_catch_up(&mut self, from: NodeId) {
        let interval = self.config.heartbeat_interval_ns;
        if self
            .catch_up_requested_ns
            .is_some_and(|sent| self.now_ns < sent + interval)
        {
            return;
        }
        self.catch_up_requested_ns = Some(self.now_ns);
        self.send(
            from,
            Message::CatchUp {
                commit_point: self.commit_point,
            },
        );
    }

    /// A peer lacks chosen values after `their_commit`: send them, or the
    /// snapshot when they were compacted away.
    pub(super) fn on_catch_up(&mut self, from: NodeId, their_commit: Slot) {
        if their_commit >= self.commit_point || self.role == Role::NonVoter {
            return;
        }
        let mut first = their_commit.next();
        if their_commit < self.compacted_through {
            let Some(snapshot) = self.snapshot.clone() else {
                return;
            };
            first = snapshot.slot.next();
            self.send(
                from,
                Message::InstallSnapshot {
                    ballot: self.promised,
                    snapshot,
                },
            );
        }
        let end =
            Slot((first.0 + self.config.catch_up_slot_count_max).min(self.commit_point.0 + 1));
        if first >= end {
            return;
        }
        let batches: Vec<Batch> = self
            .log
            .range(first..end)
            .map(|(_, entry)| entry.batch.clone())
            .collect();
        assert_eq!(
            batches.len() as u64,
            end.0 - first.0,
            "chosen slots above the compaction point are in the log"
        );
        let message = Message::Chosen {
            ballot: self.promised,
            first_slot: first,
            batches,
            commit_point: self.commit_point,
        };
        self.send(from, message);
    }

    /// Chosen values for consecutive slots from `first_slot`.
    pub(super) fn on_chosen(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first_slot: Slot,
        batches: Vec<Batch>,
        sender_commit: Slot,
    ) {
        if self.leader.is_some() {
            return;
        }
        let mut slot = first_slot;
        for batch in batches {
            if slot > self.commit_point.next() || slot > sender_commit {
                break;
            }
            if slot > self.compacted_through && slot <= self.commit_point {
                let known = &self.log[&slot].batch;
                assert!(
                    *known == batch,
                    "agreement violated: {slot} committed as {known:?}, catch-up says {batch:?}"
                );
            } else if slot == self.commit_point.next() {
                self.record_chosen(slot, ballot, batch);
                self.advance_commit_to(slot);
            }
            slot = slot.next();
        }
        self.catch_up_requested_ns = None;
        if self.commit_point < sender_commit {
            self.request_catch_up(from);
        }
        if self.role == Role::NonVoter {
            self.finish_recovery_if_caught_up();
        }
    }

    /// Stores a chosen value as an acceptor record. Its ballot never goes
    /// down for the same value: a lower ballot could hide this acceptor's
    /// vote from a later phase 1.
    fn record_chosen(&mut self, slot: Slot, ballot: Ballot, batch: Batch) {
        let ballot = match self.log.get(&slot) {
            Some(entry) if entry.batch == batch => entry.ballot.max(ballot),
            _ => ballot,
        };
        self.log.insert(
            slot,
            LogEntry {
                ballot,
                batch: batch.clone(),
            },
        );
        self.persist(PersistItem::Accepted(AcceptedEntry {
            slot,
            ballot,
            batch,
        }));
    }

    pub(super) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        _ballot: Ballot,
        snapshot: Snapshot,
    ) {
        if self.leader.is_some() || snapshot.slot <= self.commit_point {
            return;
        }
        // Everything committed so far is inside the snapshot, and records up
        // to its slot may be values that were never chosen: drop them all.
        self.out.committed.clear();
        self.log = self.log.split_off(&snapshot.slot.next());
        self.compacted_through = self.compacted_through.max(snapshot.slot);
        self.out.snapshot_to_restore = Some(snapshot.clone());
        self.commit_point = snapshot.slot;
        self.metadata_dirty = true;
        self.keep_snapshot(snapshot);
        self.catch_up_requested_ns = None;
        self.request_catch_up(from);
    }

    /// Stores and persists a snapshot and compacts the in-memory log below
    /// it, keeping `retained_slot_count_max` slots for lagging peers.
    pub(super) fn keep_snapshot(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.slot <= self.commit_point,
            "a snapshot holds only committed slots"
        );
        let compact_through = Slot(
            snapshot
                .slot
                .0
                .saturating_sub(self.config.retained_slot_count_max),
        );
        if compact_through > self.compacted_through {
            self.log = self.log.split_off(&compact_through.next());
            self.compacted_through = compact_through;
        }
        self.persist(PersistItem::Snapshot(snapshot.clone()));
        self.snapshot = Some(snapshot);
    }

    /// Non-voter: fence every peer (see [`Message::RecoveryQuery`]) until
    /// all have answered, then catch up.
    pub(super) fn recovery_tick(&mut self) {
        let interval = self.config.heartbeat_interval_ns;
        let now = self.now_ns;
        let Some(recovery) = self.recovery.as_mut() else {
            return;
        };
        if now < recovery.next_query_ns {
            return;
        }
        recovery.next_query_ns = now + interval;
        if recovery.quorum_reached {
            let peer = recovery
                .best_peer
                .map(|(peer, _)| peer)
                .or(self.leader_hint);
            if let Some(peer) = peer {
                self.request_catch_up(peer);
            }
            return;
        }
        let (nonce, fence, answers) = (recovery.nonce, recovery.fence, recovery.answers);
        let missing: Vec<_> = self
            .config
            .nodes
            .iter()
            .enumerate()
            .filter(|&(index, &node)| node != self.node && !answers.contains(index))
            .map(|(_, &node)| node)
            .collect();
        for peer in missing {
            self.send(peer, Message::RecoveryQuery { nonce, fence });
        }
    }

    /// An answer to the fence. Once every peer has promised it, no value can
    /// be chosen any more with this replica's lost votes except those the
    /// peers reported (a phase-2 quorum needs one of them): the replica
    /// votes again once it has learned every slot up to the highest reported.
    /// Waiting for every peer (not a quorum) also covers a promise this
    /// replica lost: its candidate holds that ballot durably before its
    /// prepare leaves, so the fence ends up above it.
    pub(super) fn on_recovery_info(
        &mut self,
        from: NodeId,
        from_index: usize,
        nonce: u64,
        promised: Ballot,
        last_slot: Slot,
        their_commit: Slot,
    ) {
        let peer_count = self.config.nodes.len() - 1;
        let node = self.node;
        let Some(recovery) = self.recovery.as_mut() else {
            return;
        };
        if nonce != recovery.nonce || recovery.quorum_reached {
            return;
        }
        if promised > recovery.fence {
            // A peer promised more: fence above it and start over.
            recovery.fence = Ballot {
                round: promised.round + 1,
                node,
            };
            recovery.answers = NodeSet::default();
            recovery.target_slot = Slot(0);
            recovery.best_peer = None;
            recovery.next_query_ns = self.now_ns;
            return;
        }
        if promised < recovery.fence || !recovery.answers.insert(from_index) {
            return;
        }
        recovery.target_slot = recovery.target_slot.max(last_slot);
        if recovery
            .best_peer
            .is_none_or(|(_, best)| their_commit > best)
        {
            recovery.best_peer = Some((from, their_commit));
        }
        if recovery.answers.count() < peer_count {
            return;
        }
        recovery.quorum_reached = true;
        let fence = recovery.fence;
        let best = recovery.best_peer.map(|(peer, _)| peer);
        if fence > self.promised {
            self.raise_promise(fence);
        }
        self.finish_recovery_if_caught_up();
        if let (Some(peer), Role::NonVoter) = (best, self.role) {
            self.catch_up_requested_ns = None;
            self.request_catch_up(peer);
        }
    }

    /// A non-voter votes again once every peer has promised its fence and
    /// its commit point has passed every slot they reported.
    pub(super) fn finish_recovery_if_caught_up(&mut self) {
        let Some(recovery) = self.recovery.as_ref() else {
            return;
        };
        if !recovery.quorum_reached || self.commit_point < recovery.target_slot {
            return;
        }
        assert!(
            self.promised >= recovery.fence,
            "a recovered voter holds its fence's promise"
        );
        self.recovery = None;
        self.role = Role::Follower;
        self.metadata_dirty = true;
        self.reset_election_deadline();
    }

    /// A group of one has nobody to fence or learn from: what it lost is
    /// lost, and waiting would not bring it back.
    pub(super) fn finish_recovery_without_peers(&mut self) {
        assert_eq!(
            self.config.nodes.len(),
            1,
            "only a group of one recovers alone"
        );
        if let Some(recovery) = self.recovery.as_mut() {
            recovery.quorum_reached = true;
            recovery.fence = self.promised;
        }
        self.finish_recovery_if_caught_up();
    }
}
