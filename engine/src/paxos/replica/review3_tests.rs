//! Regression tests from the third safety review (damaged recovery by
//! adoption): a peer that compacted a chosen slot reports no value for it.

use synod_net::wire::{Batch, Message, NodeId, Slot, Snapshot};

use super::test_harness::{config, pump, Filter, MS};
use super::Replica;
use crate::paxos::{Config, Metadata, Recovered, Role};

/// N = 3: R = n1, P = n2, Q = n3. With Q partitioned, P leads and chooses w
/// at slot 1 with R's vote. P snapshots slot 1 and restarts (its log is
/// compacted through slot 1); R restarts with its slot-1 record corrupt.
/// R fences P and Q: P reports nothing for slot 1 (compacted), Q nothing
/// (it never saw slot 1). R adopts nothing and votes at once. P goes down
/// (or R's catch-up request is lost); Q campaigns, wins with R's promise
/// and chooses z at slot 1.
///
/// With `p_restarts` false, P stays up instead: it takes the snapshot at
/// slot 1 while running and, keeping no slots below its snapshot, has
/// dropped slot 1's value from memory too when R's fence reaches it.
fn compacted_peer_hides_a_chosen_value(p_restarts: bool) {
    let cluster_config = if p_restarts {
        config(3)
    } else {
        Config {
            retained_slot_count_max: 0,
            ..config(3)
        }
    };
    let mut rs: Vec<Replica> = (1..=3)
        .map(|i| Replica::new(cluster_config.clone(), NodeId(i), 7, Recovered::default()).unwrap())
        .collect();
    let mut committed = vec![Vec::new(); 3];
    let q_cut: Filter = &|from, to, _| from != NodeId(3) && to != NodeId(3);
    for r in rs.iter_mut() {
        r.on_tick(0);
    }
    rs[0].on_tick(250 * MS);
    rs[1].on_tick(700 * MS);
    pump(&mut rs, &mut committed, q_cut);
    assert_eq!(rs[1].role(), Role::Leader);
    let w = Batch::copy_from_slice(b"w");
    rs[1].propose(w.clone()).unwrap();
    pump(&mut rs, &mut committed, q_cut);
    rs[1].on_tick(760 * MS); // heartbeat carries the commit point to R
    pump(&mut rs, &mut committed, q_cut);
    assert_eq!(rs[1].commit_point(), Slot(1));
    assert_eq!(rs[0].commit_point(), Slot(1));
    let promised_p = rs[1].promised_ballot();
    let promised_r = rs[0].promised_ballot();
    let snapshot = Snapshot {
        slot: Slot(1),
        bytes: Batch::copy_from_slice(b"state-with-w"),
    };

    // P's disk: snapshot at slot 1, segments below it deleted.
    let p_disk = Recovered {
        metadata: Metadata {
            promised: promised_p,
            commit_point: Slot(1),
            recovering: false,
        },
        accepted: Vec::new(),
        snapshot: Some(snapshot.clone()),
        damaged: false,
    };
    // R's disk: the slot-1 record is corrupt.
    let r_disk = Recovered {
        metadata: Metadata {
            promised: promised_r,
            commit_point: Slot(1),
            recovering: false,
        },
        accepted: Vec::new(),
        snapshot: None,
        damaged: true,
    };
    rs[0] = Replica::new(cluster_config.clone(), NodeId(1), 8, r_disk).unwrap();
    if p_restarts {
        rs[1] = Replica::new(cluster_config.clone(), NodeId(2), 9, p_disk).unwrap();
    } else {
        rs[1].on_snapshot(snapshot);
        pump(&mut rs, &mut committed, q_cut);
        assert_eq!(rs[1].snapshot_slot(), Slot(1));
    }
    assert_eq!(rs[0].role(), Role::NonVoter);
    let t = 1_000 * MS;
    for r in rs.iter_mut() {
        r.on_tick(t);
    }
    // Recovery traffic only (R's catch-up request to P is lost).
    let recovery_only: Filter = &|_, _, m| {
        matches!(
            m,
            Message::RecoveryQuery { .. } | Message::RecoveryInfo { .. }
        )
    };
    pump(&mut rs, &mut committed, recovery_only);
    assert!(
        rs[1].promised_ballot() > promised_p,
        "R's fence reached P (P answered from its compacted state)"
    );
    // P's snapshot holds slot 1, which P no longer reports: R may not vote
    // before it has learned it by catch-up.
    assert_eq!(
        rs[0].role(),
        Role::NonVoter,
        "R votes without the compacted slot"
    );
}

#[test]
fn review3_compacted_peer_hides_a_chosen_value_from_adoption() {
    compacted_peer_hides_a_chosen_value(true);
}

#[test]
fn review3_compacted_peer_variant_p_stays_up() {
    compacted_peer_hides_a_chosen_value(false);
}
