//! Regression tests for hostile peer input: well-formed messages whose
//! field values no correct peer sends must be dropped, never panic the
//! replica or corrupt its state.

use synod_net::wire::{Ballot, Batch, Message, NodeId, Slot, Snapshot};

use super::test_harness::{Net, MS};
use super::Replica;
use crate::paxos::Role;

/// A three-node cluster with an elected leader: (net, leader index, now).
fn elected() -> (Net, usize, u64) {
    let mut net = Net::new(3);
    let mut now = 0;
    let leader = net.elect(&[0, 1, 2], &mut now);
    (net, leader, now)
}

fn node_of(index: usize) -> NodeId {
    Net::node(index)
}

/// Ticks a replica far past every election timeout.
fn tick_far(replica: &mut Replica, now: &mut u64) {
    for _ in 0..20 {
        *now += 100 * MS;
        replica.on_tick(*now);
        let _ = replica.ready();
    }
}

/// An accept for the last slot of the u64 space overflowed `Slot::next`
/// in the acceptor's loop over the batches.
#[test]
fn hostile_accept_at_the_last_slot_is_dropped() {
    let (mut net, l, mut now) = elected();
    let f = (l + 1) % 3;
    let ballot = net.replicas[l].promised_ballot();
    for first_slot in [Slot(u64::MAX), Slot(u64::MAX - 1), Slot(1 << 62)] {
        net.replicas[f].on_message(
            node_of(l),
            Message::Accept {
                ballot,
                first_slot,
                batches: vec![Batch::noop(), Batch::noop()],
                commit_point: Slot(0),
            },
        );
    }
    tick_far(&mut net.replicas[f], &mut now);
}

/// A snapshot at the last slot moved the commit point there; the next
/// election, chosen or catch-up message overflowed `Slot::next`.
#[test]
fn hostile_snapshot_at_the_last_slot_is_dropped() {
    let (mut net, l, mut now) = elected();
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    let ballot = net.replicas[l].promised_ballot();
    net.replicas[f].on_message(
        node_of(l),
        Message::InstallSnapshot {
            ballot,
            snapshot: Snapshot {
                slot: Slot(u64::MAX),
                bytes: Batch::noop(),
            },
        },
    );
    assert_eq!(net.replicas[f].commit_point(), Slot(0));
    net.replicas[f].on_message(
        node_of(other),
        Message::CatchUp {
            commit_point: Slot(0),
        },
    );
    net.replicas[f].on_message(
        node_of(l),
        Message::Chosen {
            ballot,
            first_slot: Slot(1),
            batches: vec![Batch::noop()],
            commit_point: Slot(1),
        },
    );
    tick_far(&mut net.replicas[f], &mut now);
    assert_ne!(net.replicas[f].role(), Role::NonVoter);
}

/// A ballot of round u64::MAX in a prepare (or a reject's promised ballot)
/// became the promised (or seen) ballot; the next election timeout
/// overflowed computing the round above it.
#[test]
fn hostile_ballot_of_the_last_round_is_dropped() {
    let (mut net, l, mut now) = elected();
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    let top = |round| Ballot {
        round,
        node: node_of(other),
    };
    for round in [u64::MAX, u64::MAX - 1, 1 << 62] {
        net.replicas[f].on_message(
            node_of(other),
            Message::Reject {
                ballot: Ballot::ZERO,
                promised: top(round),
            },
        );
        net.replicas[f].on_message(
            node_of(other),
            Message::Heartbeat {
                ballot: top(round),
                commit_point: Slot(0),
                round: 1,
            },
        );
    }
    now += 1_000 * MS; // the lease granted to the leader has run out
    net.replicas[f].on_tick(now);
    for round in [u64::MAX, 1 << 62] {
        net.replicas[f].on_message(
            node_of(other),
            Message::Prepare {
                ballot: top(round),
                from_slot: Slot(1),
            },
        );
    }
    assert!(net.replicas[f].promised_ballot().round < 1 << 62);
    tick_far(&mut net.replicas[f], &mut now);
}

/// A recovering replica raised its fence to one round above a peer's
/// reported promise: a promise of round u64::MAX overflowed.
#[test]
fn hostile_recovery_answer_of_the_last_round_is_dropped() {
    let (mut net, l, mut now) = elected();
    let damaged = (l + 1) % 3;
    let promised = net.replicas[damaged].promised_ballot();
    net.replicas[damaged] = super::test_harness::restarted(node_of(damaged).0, promised, 9, true);
    now += 10 * MS;
    net.replicas[damaged].on_tick(now);
    let (out, _, _) = super::test_harness::drain(&mut net.replicas[damaged], true);
    let nonce = out
        .iter()
        .find_map(|o| match o.message {
            Message::RecoveryQuery { nonce, .. } => Some(nonce),
            _ => None,
        })
        .expect("a damaged replica fences its peers");
    net.replicas[damaged].on_message(
        node_of(l),
        Message::RecoveryInfo {
            nonce,
            promised: Ballot {
                round: u64::MAX,
                node: node_of(l),
            },
            accepted: Vec::new(),
            commit_point: Slot(0),
            compacted_through: Slot(0),
        },
    );
    tick_far(&mut net.replicas[damaged], &mut now);
}

/// A peer that is not the leader sent an accept in the leader's ballot
/// with another value for a slot the follower had accepted but not yet
/// learned as committed: the follower replaced its value (same ballot),
/// then learned the commit point and committed the other value, so two
/// replicas committed different values for one slot.
#[test]
fn hostile_accept_in_another_nodes_ballot_is_dropped() {
    let (mut net, l, mut now) = elected();
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    let ballot = net.replicas[l].promised_ballot();
    let slot = net.replicas[l].commit_point().next();
    net.replicas[l]
        .propose(Batch::copy_from_slice(b"x"))
        .unwrap();
    net.pump(&|_, _, _| true); // chosen at the leader; the followers lack the commit point
    assert!(net.replicas[f].commit_point() < slot);
    net.replicas[f].on_message(
        node_of(other),
        Message::Accept {
            ballot,
            first_slot: slot,
            batches: vec![Batch::copy_from_slice(b"y")],
            commit_point: Slot(0),
        },
    );
    for _ in 0..3 {
        now += 60 * MS;
        net.tick(&[0, 1, 2], now);
        net.pump(&|_, _, _| true);
    }
    let value = |i: usize| {
        net.committed[i]
            .iter()
            .find(|c| c.slot == slot)
            .map(|c| c.batch.clone())
    };
    assert_eq!(value(l), Some(Batch::copy_from_slice(b"x")));
    assert_eq!(value(f), value(l), "agreement");
}

/// A peer's catch-up that contradicted a slot committed here tripped the
/// agreement assert: a buggy peer's word stopped the replica. It is
/// dropped; the committed value stays.
#[test]
fn hostile_chosen_contradicting_a_committed_slot_is_dropped() {
    let (mut net, l, mut now) = elected();
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    let slot = net.replicas[l].commit_point().next();
    net.replicas[l]
        .propose(Batch::copy_from_slice(b"x"))
        .unwrap();
    net.pump(&|_, _, _| true);
    now += 60 * MS;
    net.tick(&[0, 1, 2], now);
    net.pump(&|_, _, _| true);
    assert!(net.replicas[f].commit_point() >= slot);
    assert_eq!(net.replicas[f].contradicted_commits(), 0);
    net.replicas[f].on_message(
        node_of(other),
        Message::Chosen {
            ballot: Ballot::ZERO,
            first_slot: slot,
            batches: vec![Batch::copy_from_slice(b"y")],
            commit_point: slot,
        },
    );
    assert!(net.replicas[f].commit_point() >= slot);
    assert_eq!(
        net.replicas[f].contradicted_commits(),
        1,
        "the contradiction is counted for the driver to report"
    );
    tick_far(&mut net.replicas[f], &mut now);
}
