//! The acceptor: phase 1b (promise), phase 2b (accepted), heartbeat
//! acknowledgements and the lease an acknowledgement grants.

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, Slot};

use super::{LogEntry, Replica};
use crate::paxos::{PersistItem, Role};

impl Replica {
    /// True while a lease this acceptor granted (or may have granted before
    /// a restart) forbids promising `ballot`.
    pub(super) fn lease_forbids(&self, ballot: Ballot) -> bool {
        #[cfg(feature = "sim")]
        if self.config.bugs.skip_lease_wait {
            return false;
        }
        if self.now_ns >= self.lease_granted_until_ns {
            return false;
        }
        self.lease_granted_to
            .is_none_or(|holder| holder.node != ballot.node)
    }

    /// Records that this acceptor acknowledged leader `ballot` now: it
    /// promises no other candidate for `lease_ns` by its own clock.
    fn grant_lease(&mut self, ballot: Ballot) {
        if self.config.lease_ns == 0 {
            return;
        }
        if self.lease_granted_to.is_none() && self.now_ns < self.lease_granted_until_ns {
            // The restart guard still runs: this acknowledgement grants a
            // lease too, so the guard (which refuses every candidate) must
            // last at least as long.
            self.lease_granted_until_ns = self
                .lease_granted_until_ns
                .max(self.now_ns + self.config.lease_ns);
            return;
        }
        // A later grant never shortens an earlier one: whoever held it, its
        // time is still owed.
        self.lease_granted_to = Some(ballot);
        self.lease_granted_until_ns = self
            .lease_granted_until_ns
            .max(self.now_ns + self.config.lease_ns);
    }

    pub(super) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: Slot) {
        if self.role == Role::NonVoter {
            return;
        }
        if ballot < self.promised {
            self.send(
                from,
                Message::Reject {
                    ballot,
                    promised: self.promised,
                },
            );
            return;
        }
        if ballot > self.promised && self.lease_forbids(ballot) {
            return; // The candidate retries once the lease has run out.
        }
        self.raise_promise(ballot);
        let message = self.promise_message(ballot, from_slot);
        self.send_after_persist(from, message);
    }

    /// Phase 1b: every value accepted at or above `from_slot`.
    pub(super) fn promise_message(&self, ballot: Ballot, from_slot: Slot) -> Message {
        assert!(
            self.promised == ballot,
            "a promise is only sent for the promised ballot"
        );
        let accepted = self
            .log
            .range(from_slot..)
            .map(|(&slot, entry)| AcceptedEntry {
                slot,
                ballot: entry.ballot,
                batch: entry.batch.clone(),
            })
            .collect();
        Message::Promise {
            ballot,
            from_slot,
            accepted,
            commit_point: self.commit_point,
            snapshot_slot: self.compacted_through,
        }
    }

    /// Common to accept and heartbeat: a message from leader `ballot`.
    /// Returns false (after rejecting) when the ballot is stale.
    fn hear_from_leader(&mut self, from: NodeId, ballot: Ballot) -> bool {
        if ballot < self.promised {
            self.send(
                from,
                Message::Reject {
                    ballot,
                    promised: self.promised,
                },
            );
            return false;
        }
        self.raise_promise(ballot);
        if self.role == Role::NonVoter {
            self.leader_hint = Some(ballot.node);
            return true;
        }
        if self.leader.is_none() {
            self.candidate = None;
            self.role = Role::Follower;
            self.leader_hint = Some(ballot.node);
            self.reset_election_deadline();
            self.grant_lease(ballot);
        }
        true
    }

    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first_slot: Slot,
        batches: Vec<Batch>,
        commit_point: Slot,
    ) {
        if !self.hear_from_leader(from, ballot) {
            return;
        }
        if self.role == Role::NonVoter {
            self.learn_commit_point(from, ballot, commit_point);
            return;
        }
        let mut slot_count = 0;
        let mut slot = first_slot;
        for batch in batches {
            if !self.accept_value(slot, ballot, batch) {
                break;
            }
            slot_count += 1;
            slot = slot.next();
        }
        if slot_count > 0 {
            let reply = Message::Accepted {
                ballot,
                first_slot,
                slot_count,
                commit_point: self.commit_point,
            };
            self.send_after_persist(from, reply);
        }
        self.learn_commit_point(from, ballot, commit_point);
    }

    /// Phase 2b for one slot; false when the slot cannot be accepted. A
    /// slot already chosen here is acknowledged only for its chosen value: a
    /// stale leader whose ballot is below the one that chose it (but not
    /// below this acceptor's promise, which catch-up does not raise) may
    /// still offer another, and that vote must not be given.
    pub(super) fn accept_value(&mut self, slot: Slot, ballot: Ballot, batch: Batch) -> bool {
        assert!(
            ballot >= self.promised,
            "accepting {ballot} below the promise {}",
            self.promised
        );
        if slot == Slot(0) {
            return false;
        }
        if slot <= self.compacted_through {
            // Chosen and compacted: a leader at a ballot that can still
            // gather a quorum can only be offering the chosen value.
            return true;
        }
        if slot <= self.commit_point && self.log[&slot].batch != batch {
            return false;
        }
        let entry = AcceptedEntry {
            slot,
            ballot,
            batch: batch.clone(),
        };
        self.log.insert(slot, LogEntry { ballot, batch });
        self.persist(PersistItem::Accepted(entry));
        true
    }

    pub(super) fn on_heartbeat(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit_point: Slot,
        round: u64,
    ) {
        if !self.hear_from_leader(from, ballot) {
            return;
        }
        if self.role != Role::NonVoter {
            let ack = Message::HeartbeatAck {
                ballot,
                round,
                commit_point: self.commit_point,
            };
            self.send(from, ack);
        }
        self.learn_commit_point(from, ballot, commit_point);
    }

    /// Promises a damaged peer's fence and reports the values held here
    /// from `from_slot` on. A fence elects nobody and lets no value be
    /// chosen under it, so a lease does not hold it back; the answer leaves
    /// once the promise it reports is durable. A non-voter answers too (from
    /// what it still holds): two replicas recovering at once would otherwise
    /// wait for each other forever.
    pub(super) fn on_recovery_query(
        &mut self,
        from: NodeId,
        nonce: u64,
        fence: Ballot,
        from_slot: Slot,
    ) {
        if fence > self.promised {
            self.raise_promise(fence);
            if self.leader_hint == Some(fence.node) {
                self.leader_hint = None; // A fence names no leader.
            }
        }
        let first = from_slot.max(self.compacted_through.next());
        let accepted = self
            .log
            .range(first..)
            .map(|(&slot, entry)| AcceptedEntry {
                slot,
                ballot: entry.ballot,
                batch: entry.batch.clone(),
            })
            .collect();
        let info = Message::RecoveryInfo {
            nonce,
            promised: self.promised,
            accepted,
            commit_point: self.commit_point,
            compacted_through: self.compacted_through,
        };
        // Every answer vouches for the promise it reports: only durable ones.
        self.send_after_persist(from, info);
    }
}
