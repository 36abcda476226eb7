//! The learner: commit points from the leader, catch-up with chosen values
//! or a snapshot, compaction, and a damaged replica's way back to voting.

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, Slot, Snapshot};

use super::{LogEntry, NodeSet, RecoveryAnswer, Replica};
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
        self.finish_recovery_if_ready();
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
        // A non-voter serves too: its commit point covers only values it
        // relearned as chosen after its damage.
        if their_commit >= self.commit_point {
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
                if self.log[&slot].batch != batch {
                    // The sender contradicts a value committed (and handed
                    // out) here: a buggy or corrupt peer's word does not
                    // change it, nor stop this replica. Count it, drop the rest.
                    self.contradicted_commits += 1;
                    return;
                }
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
        self.finish_recovery_if_ready();
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
        self.finish_recovery_if_ready();
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
    /// all have answered, then catch up until it may vote.
    pub(super) fn recovery_tick(&mut self) {
        let interval = self.config.heartbeat_interval_ns;
        let now = self.now_ns;
        let from_slot = self.commit_point.next();
        let Some(recovery) = self.recovery.as_mut() else {
            return;
        };
        if now < recovery.next_query_ns {
            return;
        }
        recovery.next_query_ns = now + interval;
        if recovery.all_answered {
            // Ask the leader if one is known, else each peer in turn: the
            // peer that answered with the most may be down for good.
            recovery.catch_up_turn = recovery.catch_up_turn.wrapping_add(1);
            let turn = recovery.catch_up_turn;
            let peers: Vec<NodeId> = self.peers().collect();
            let rotating = peers[turn as usize % peers.len()];
            let peer = self
                .leader_hint
                .filter(|&leader| leader != self.node)
                .unwrap_or(rotating);
            self.send(
                peer,
                Message::CatchUp {
                    commit_point: self.commit_point,
                },
            );
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
            self.send(
                peer,
                Message::RecoveryQuery {
                    nonce,
                    fence,
                    from_slot,
                },
            );
        }
    }

    /// An answer to the fence. Once every peer has durably promised it, no
    /// value can be chosen any more with this replica's lost votes at a
    /// lower ballot, and a value chosen with them before is either compacted
    /// (chosen, learned by catch-up) or held by another member of its
    /// phase-2 quorum at the highest ballot any peer reports for that slot
    /// (every value accepted at or above the ballot that chose it is the
    /// chosen one). Waiting for every peer (not a quorum) also covers a
    /// promise it lost: the ballot's owner held it durably before its
    /// prepare left, and answered too.
    pub(super) fn on_recovery_info(
        &mut self,
        from: NodeId,
        from_index: usize,
        nonce: u64,
        answer: RecoveryAnswer,
    ) {
        let peer_count = self.config.nodes.len() - 1;
        let node = self.node;
        let Some(recovery) = self.recovery.as_mut() else {
            return;
        };
        if nonce != recovery.nonce || recovery.all_answered {
            return;
        }
        if answer.promised > recovery.fence {
            // A peer promised more: fence above it and start over.
            recovery.fence = Ballot {
                round: answer.promised.round + 1,
                node,
            };
            recovery.answers = NodeSet::default();
            recovery.adopted.clear();
            recovery.compacted_seen = Slot(0);
            recovery.best_peer = None;
            recovery.next_query_ns = self.now_ns;
            return;
        }
        if answer.promised < recovery.fence || !recovery.answers.insert(from_index) {
            return;
        }
        for entry in answer.accepted {
            let higher = recovery
                .adopted
                .get(&entry.slot)
                .is_none_or(|known| entry.ballot > known.ballot);
            if higher {
                let value = LogEntry {
                    ballot: entry.ballot,
                    batch: entry.batch,
                };
                recovery.adopted.insert(entry.slot, value);
            }
        }
        recovery.compacted_seen = recovery.compacted_seen.max(answer.compacted_through);
        if recovery
            .best_peer
            .is_none_or(|(_, best)| answer.commit_point > best)
        {
            recovery.best_peer = Some((from, answer.commit_point));
        }
        if recovery.answers.count() >= peer_count {
            recovery.all_answered = true;
            if let Some((peer, _)) = recovery.best_peer {
                self.catch_up_requested_ns = None;
                self.request_catch_up(peer);
            }
            self.finish_recovery_if_ready();
        }
    }

    /// Votes again once every peer has answered the fence and this replica
    /// has learned every slot a peer compacted (those values were not
    /// reported): then it adopts the reported values above its commit
    /// point, holds the fence's promise, and records that it recovered.
    pub(super) fn finish_recovery_if_ready(&mut self) {
        let ready = self.recovery.as_ref().is_some_and(|recovery| {
            recovery.all_answered && self.commit_point >= recovery.compacted_seen
        });
        if !ready {
            return;
        }
        let recovery = self.recovery.take().expect("checked just above");
        for (slot, reported) in recovery.adopted {
            if slot <= self.commit_point {
                continue;
            }
            let own_is_higher = self
                .log
                .get(&slot)
                .is_some_and(|own| own.ballot >= reported.ballot);
            if !own_is_higher {
                let entry = AcceptedEntry {
                    slot,
                    ballot: reported.ballot,
                    batch: reported.batch.clone(),
                };
                self.log.insert(slot, reported);
                self.persist(PersistItem::Accepted(entry));
            }
        }
        if recovery.fence > self.promised {
            self.raise_promise(recovery.fence);
        }
        assert!(
            self.promised >= recovery.fence,
            "a recovered voter holds its fence's promise"
        );
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
            recovery.fence = self.promised;
            recovery.all_answered = true;
        }
        self.finish_recovery_if_ready();
    }
}
