//! Regression tests from the second safety review: fenced answers that
//! were not yet durable, and a recovering status lost across a restart.

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, Slot};

use super::test_harness::{config, drain, restarted, to, MS};
use super::Replica;
use crate::paxos::{Metadata, Recovered, Role};

/// N = 3: R = n1 (damaged), L = n2 (leader in b), Y = n3.
/// Y answers an old-fence query (duplicated by the network) at once with
/// `promised` = R's current fence, before that promise is durable; R counts it.
/// Y crashes (loses the unsynced fence), then accepts L's delayed accept; L
/// commits x at slot 1 with R's lost vote + Y's, and crashes before its own
/// record is durable. R finishes recovery with target 0, and R + L choose z.
#[test]
fn review2_premature_fenced_answer_loses_a_committed_write() {
    let (rn, ln, yn) = (1u8, 2u8, 3u8);
    let mut r = Replica::new(config(3), NodeId(rn), 1, Recovered::default()).unwrap();
    let mut l = Replica::new(config(3), NodeId(ln), 2, Recovered::default()).unwrap();
    let mut y = Replica::new(config(3), NodeId(yn), 3, Recovered::default()).unwrap();
    for x in [&mut r, &mut l, &mut y] {
        x.on_tick(0);
    }
    r.on_tick(250 * MS);
    y.on_tick(250 * MS);
    // L campaigns and wins with R and Y (all disks fine).
    l.on_tick(700 * MS);
    assert_eq!(l.role(), Role::Candidate);
    let (_, after, _) = drain(&mut l, true);
    for m in to(&after, rn) {
        r.on_message(NodeId(ln), m);
    }
    for m in to(&after, yn) {
        y.on_message(NodeId(ln), m);
    }
    for (peer, x) in [(rn, &mut r), (yn, &mut y)] {
        let (_, after, _) = drain(x, true);
        for m in to(&after, ln) {
            l.on_message(NodeId(peer), m);
        }
    }
    assert_eq!(l.role(), Role::Leader);
    let b = l.promised_ballot();
    let _ = drain(&mut l, true); // heartbeats dropped
                                 // L proposes x at slot 1; its own record is never durable before it crashes.
    let xb = Batch::copy_from_slice(b"x");
    l.propose(xb.clone()).unwrap();
    let (now_msgs, _, _) = drain(&mut l, false);
    let accept_to_y = to(&now_msgs, yn)
        .into_iter()
        .find(|m| matches!(m, Message::Accept { .. }))
        .unwrap();
    for m in to(&now_msgs, rn) {
        r.on_message(NodeId(ln), m);
    }
    let (_, after, _) = drain(&mut r, true);
    for m in to(&after, ln) {
        l.on_message(NodeId(rn), m); // R's vote for slot 1 counts at L
    }
    assert_eq!(l.commit_point(), Slot(0));
    // R crashes; its slot-1 record is corrupt.
    let mut r = restarted(rn, r.promised_ballot(), 11, true);
    r.on_tick(1000 * MS);
    let (q1, _, _) = drain(&mut r, true);
    let query_f1_to_y = to(&q1, yn)[0].clone();
    let query_f1_to_l = to(&q1, ln)[0].clone();
    // Y times out and campaigns (its promise (2, n3) is not yet durable).
    y.on_tick(700 * MS);
    assert_eq!(y.role(), Role::Candidate);
    let _ = drain(&mut y, false);
    y.on_message(NodeId(rn), query_f1_to_y.clone());
    let (now_msgs, _, _) = drain(&mut y, false);
    // Y's disk has not synced its promises: no answer may vouch for them, so
    // R cannot count an answer whose promise Y may still lose.
    assert!(
        to(&now_msgs, rn)
            .iter()
            .all(|m| !matches!(m, Message::RecoveryInfo { .. })),
        "a recovery answer left before the promise it reports was durable"
    );
    let _ = (query_f1_to_l, accept_to_y, xb, &mut l, b);
}

/// The non-voter status is not durable: a damaged replica that restarts again
/// before finishing recovery comes back as a voter once the log no longer
/// reports damage (the torn tail was cut at the first recovery), and the
/// metadata it persisted while a non-voter even lowered its commit point.
#[test]
fn review2_non_voter_status_is_not_durable() {
    let b = Ballot {
        round: 1,
        node: NodeId(2),
    };
    let a1 = Batch::copy_from_slice(b"a1");
    let entry = AcceptedEntry {
        slot: Slot(1),
        ballot: b,
        batch: a1,
    };
    // Slot 1 committed; slot 2 accepted (reply sent) and then torn/corrupt.
    let recovered = Recovered {
        metadata: Metadata {
            promised: b,
            commit_point: Slot(1),
            recovering: false,
        },
        accepted: vec![entry.clone()],
        snapshot: None,
        damaged: true,
    };
    let mut r = Replica::new(config(3), NodeId(1), 1, recovered).unwrap();
    assert_eq!(r.role(), Role::NonVoter);
    r.on_tick(1000 * MS);
    // A leader in a higher ballot is heard: the non-voter raises its promise.
    let b2 = Ballot {
        round: 2,
        node: NodeId(3),
    };
    r.on_message(
        NodeId(3),
        Message::Heartbeat {
            ballot: b2,
            commit_point: Slot(0),
            round: 1,
        },
    );
    let ready = r.ready();
    let metadata = ready
        .persist
        .iter()
        .find_map(|p| match p {
            crate::paxos::PersistItem::Metadata(m) => Some(*m),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        metadata.commit_point,
        Slot(0),
        "durable commit point lowered"
    );
    // Crash; the log (torn tail already cut) reports no damage this time.
    let again = Replica::new(
        config(3),
        NodeId(1),
        2,
        Recovered {
            metadata,
            accepted: vec![entry],
            snapshot: None,
            damaged: false,
        },
    )
    .unwrap();
    assert_eq!(
        again.role(),
        Role::NonVoter,
        "restarted mid-recovery as a voter: its lost slot-2 vote is forgotten"
    );
}
