//! Regression tests from the safety review of the replica: each scenario
//! broke a safety property before its fix (see each test's comment).

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, Slot};

use super::test_harness::{config, Net, MS};
use super::Replica;
use crate::paxos::{Metadata, ReadId, Recovered, Role};

/// Finding 1: a leader sends phase-2 messages before its own promise is
/// durable; after a crash that loses it, the node reuses the same ballot and
/// proposes a different value in the same (ballot, slot).
#[test]
fn review_ballot_reuse_after_losing_an_unsynced_promise() {
    let mut net = Net::new(3);
    net.tick(&[0, 1, 2], 0);
    net.tick(&[1, 2], 250 * MS);
    net.persist_ok[0] = false; // n1's disk never completes before the crash
    net.tick(&[0], 700 * MS);
    assert_eq!(net.replicas[0].role(), Role::Candidate);
    let ballot = net.replicas[0].promised_ballot();
    let _ = ballot;
    let ready = net.replicas[0].ready();
    assert!(
        ready
            .messages_now
            .iter()
            .all(|out| !matches!(out.message, Message::Prepare { .. })),
        "prepares wait for the candidate's own promise to be durable"
    );
    net.pump(&|_, _, _| true);
    // Even with promises from n2 and n3 it may not lead before its own
    // promise is durable (a restart could reuse the ballot otherwise).
    net.replicas[0].on_message(
        NodeId(2),
        Message::Promise {
            ballot,
            from_slot: Slot(1),
            accepted: Vec::new(),
            commit_point: Slot(0),
            snapshot_slot: Slot(0),
        },
    );
    net.replicas[0].on_message(
        NodeId(3),
        Message::Promise {
            ballot,
            from_slot: Slot(1),
            accepted: Vec::new(),
            commit_point: Slot(0),
            snapshot_slot: Slot(0),
        },
    );
    assert_eq!(
        net.replicas[0].role(),
        Role::Candidate,
        "won without its own durable promise"
    );
}

/// Finding 2: an acceptor in its restart guard acknowledges heartbeats
/// without recording a grant; the leader counts the ack toward its lease,
/// the guard ends first, and a rival is promised while the lease runs.
#[test]
fn review_ack_during_restart_guard_extends_an_unbacked_lease() {
    let mut net = Net::new(3);
    let all = [0, 1, 2];
    let mut now = 0;
    let leader = net.elect(&all, &mut now);
    let (r, f) = ((leader + 1) % 3, (leader + 2) % 3);
    let (ln, rn, fnode) = (Net::node(leader), Net::node(r), Net::node(f));
    let cut_lf = move |a: NodeId, b: NodeId, _: &Message| {
        !((a == ln && b == fnode) || (a == fnode && b == ln))
    };
    for _ in 0..100 {
        now += 10 * MS;
        net.tick(&all, now);
        net.pump(&cut_lf);
    }
    assert_eq!(net.replicas[leader].role(), Role::Leader);
    // R restarts with its durable promise.
    let recovered = Recovered {
        metadata: Metadata {
            promised: net.replicas[r].promised_ballot(),
            commit_point: net.replicas[r].commit_point(),
            recovering: false,
        },
        ..Recovered::default()
    };
    assert_eq!(net.replicas[r].commit_point(), Slot(0));
    net.replicas[r] = Replica::new(config(3), rn, 11, recovered).unwrap();
    // 190 ms: R acknowledges L's heartbeats inside its restart guard.
    for _ in 0..19 {
        now += 10 * MS;
        net.tick(&all, now);
        net.pump(&cut_lf);
    }
    // L is now cut off from everyone; F keeps campaigning.
    let isolate_l = move |a: NodeId, b: NodeId, _: &Message| a != ln && b != ln;
    let mut proposed = false;
    for _ in 0..30 {
        now += 10 * MS;
        net.tick(&all, now);
        net.pump(&isolate_l);
        if net.replicas[f].role() == Role::Leader && !proposed {
            net.replicas[f]
                .propose(Batch::copy_from_slice(b"new"))
                .unwrap();
            net.pump(&isolate_l);
            proposed = true;
        }
        if net.replicas[f].commit_point() >= Slot(1) {
            break;
        }
    }
    assert!(
        net.replicas[f].commit_point() >= Slot(1),
        "F committed a write"
    );
    // Same instant (all clocks equal): does L still serve a local read?
    let stale = net.replicas[leader].has_lease()
        && net.replicas[leader].read(ReadId(1)).is_ok()
        && net.replicas[leader]
            .ready()
            .reads_ready
            .iter()
            .any(|read| read.read_slot < Slot(1));
    assert!(
        !stale,
        "old leader serves a lease read at slot 0 after the new leader committed slot 1"
    );
}

/// Finding 3: a damaged recovery trusts the surviving record of a slot
/// below the durable commit point, though the lost later record for that
/// slot may have held the chosen value.
#[test]
fn review_damaged_recovery_commits_a_superseded_record() {
    let old = Ballot {
        round: 1,
        node: NodeId(1),
    };
    let newer = Ballot {
        round: 2,
        node: NodeId(2),
    };
    let x = Batch::copy_from_slice(b"x (accepted in b1.1, never chosen)");
    // n3 accepted x at slot 1 in b1.1, later accepted v in b2.2 (chosen)
    // and committed slot 1; the later record is corrupt.
    let recovered = Recovered {
        metadata: Metadata {
            promised: newer,
            commit_point: Slot(1),
            recovering: false,
        },
        accepted: vec![AcceptedEntry {
            slot: Slot(1),
            ballot: old,
            batch: x.clone(),
        }],
        snapshot: None,
        damaged: true,
    };
    let mut replica = Replica::new(config(3), NodeId(3), 1, recovered).unwrap();
    assert_eq!(replica.role(), Role::NonVoter);
    let ready = replica.ready();
    assert!(
        ready.committed.iter().all(|c| c.batch != x),
        "a damaged replica handed out an unverified record as chosen: {:?}",
        ready.committed
    );
}

/// Finding 4: a non-voter learns a slot through catch-up without raising its
/// promise; a delayed accept from the older leader then hits the agreement
/// assertion in accept_value (a panic from an honest, stale message).
#[test]
fn review_stale_accept_after_non_voter_catch_up_panics() {
    let b1 = Ballot {
        round: 1,
        node: NodeId(1),
    };
    let b2 = Ballot {
        round: 3,
        node: NodeId(2),
    };
    let recovered = Recovered {
        metadata: Metadata {
            promised: b1,
            commit_point: Slot(0),
            recovering: false,
        },
        damaged: true,
        ..Recovered::default()
    };
    let mut r = Replica::new(config(3), NodeId(3), 1, recovered).unwrap();
    r.on_tick(1_000 * MS);
    let ready = r.ready();
    let nonce = ready
        .messages_now
        .iter()
        .find_map(|o| match o.message {
            Message::RecoveryQuery { nonce, fence, .. } => Some((nonce, fence)),
            _ => None,
        })
        .unwrap();
    let (nonce, fence) = nonce;
    // n1 (leader in b1) has proposed w at slot 1; n2 has nothing yet.
    r.on_message(
        NodeId(1),
        Message::RecoveryInfo {
            nonce,
            promised: fence,
            accepted: vec![AcceptedEntry {
                slot: Slot(1),
                ballot: b1,
                batch: Batch::copy_from_slice(b"w"),
            }],
            commit_point: Slot(0),
            compacted_through: Slot(0),
        },
    );
    r.on_message(
        NodeId(2),
        Message::RecoveryInfo {
            nonce,
            promised: fence,
            accepted: Vec::new(),
            commit_point: Slot(0),
            compacted_through: Slot(0),
        },
    );
    // Every peer promised the fence: it adopts w at b1 and votes again.
    assert_eq!(r.role(), Role::Follower);
    // n1 loses w in a crash; n2 wins b2 and chooses v at slot 1.
    r.on_message(
        NodeId(2),
        Message::Heartbeat {
            ballot: b2,
            commit_point: Slot(1),
            round: 1,
        },
    );
    r.on_message(
        NodeId(2),
        Message::Chosen {
            ballot: b2,
            first_slot: Slot(1),
            batches: vec![Batch::copy_from_slice(b"v")],
            commit_point: Slot(1),
        },
    );
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(
        r.promised_ballot(),
        b2,
        "a non-voter raises its promise on hearing a leader"
    );
    // n1's pre-crash accept for slot 1, delayed in the network, arrives now.
    r.on_message(
        NodeId(1),
        Message::Accept {
            ballot: b1,
            first_slot: Slot(1),
            batches: vec![Batch::copy_from_slice(b"w")],
            commit_point: Slot(0),
        },
    );
    assert_eq!(r.commit_point(), Slot(1));
    let ready = r.ready();
    assert!(ready
        .messages_after_persist
        .iter()
        .all(|out| !matches!(out.message, Message::Accepted { .. })));
}

/// Finding 5 (N = 5): the recovery answers only cover what peers had
/// accepted when they answered; an accept still in flight at the old ballot
/// completes a quorum with the damaged replica's lost vote after it has voted
/// for a new leader that chose another value.
#[test]
fn review_non_voter_recovery_misses_in_flight_accepts() {
    let mut net = Net::new(5);
    let all = [0, 1, 2, 3, 4];
    let mut now = 0;
    let l = net.elect(&all, &mut now);
    let (r, y, z, w) = ((l + 1) % 5, (l + 2) % 5, (l + 3) % 5, (l + 4) % 5);
    let (ln, rn, yn) = (Net::node(l), Net::node(r), Net::node(y));
    let a = Batch::copy_from_slice(b"a");
    net.replicas[l].propose(a.clone()).unwrap();
    net.pump(&|_, _, _| true);
    assert_eq!(net.replicas[l].commit_point(), Slot(1));
    now += 60 * MS; // a heartbeat spreads commit point 1
    net.tick(&all, now);
    net.pump(&|_, _, _| true);
    let ballot = net.replicas[l].promised_ballot();
    // Slot 2 = "w": the accept reaches R only (the others' are delayed).
    net.replicas[l]
        .propose(Batch::copy_from_slice(b"w"))
        .unwrap();
    net.pump(&move |from, to, m| !(from == ln && to != rn && matches!(m, Message::Accept { .. })));
    assert_eq!(net.replicas[l].commit_point(), Slot(1), "2 of 5 votes");
    // R restarts; its slot-2 record is corrupt.
    let recovered = Recovered {
        metadata: Metadata {
            promised: net.replicas[r].promised_ballot(),
            commit_point: net.replicas[r].commit_point(),
            recovering: false,
        },
        accepted: vec![AcceptedEntry {
            slot: Slot(1),
            ballot,
            batch: a,
        }],
        snapshot: None,
        damaged: true,
    };
    net.replicas[r] = Replica::new(config(5), rn, 11, recovered).unwrap();
    // L (and its answer) is slow; y, z, w answer R's query.
    let no_l = move |a: NodeId, b: NodeId, _: &Message| a != ln && b != ln;
    for _ in 0..20 {
        now += 10 * MS;
        net.tick(&[r, z, w], now);
        net.pump(&no_l);
        if net.replicas[r].role() == Role::Follower {
            break;
        }
    }
    assert_eq!(
        net.replicas[r].role(),
        Role::NonVoter,
        "R must not vote while a peer has not promised its fence"
    );
    // The fence reached y: the delayed accept for slot 2 is refused there.
    let fenced = net.replicas[y].promised_ballot();
    assert!(fenced > ballot && fenced.node == rn);
    net.release(&move |from, to, m| from == ln && to == yn && matches!(m, Message::Accept { .. }));
    net.pump(&move |a, b, _| (a == yn && b == ln) || (a == ln && b == yn));
    assert_eq!(
        net.replicas[l].commit_point(),
        Slot(1),
        "slot 2 chosen with R's lost vote"
    );
}
