//! Regression test from the fourth safety review: a damaged replica whose
//! best catch-up peer died must still catch up (from the leader or another
//! peer) and vote again.

use synod_net::wire::{Batch, Message, NodeId, Slot, Snapshot};

use super::test_harness::{self, pump, Filter, MS};
use super::Replica;
use crate::paxos::{Config, Metadata, Recovered, Role};

/// The shared config, but every replica compacts as soon as it snapshots.
fn config(n: u8) -> Config {
    Config {
        retained_slot_count_max: 0,
        ..test_harness::config(n)
    }
}

/// N = 5, healthy leader, every replica snapshotted (compacted) through
/// slot 3. R = n5 restarts damaged, fences everyone; all answer. Then its
/// `best_peer` crashes for good. The remaining four elect a leader that
/// heartbeats R, but R's catch-up requests to that leader are always
/// suppressed by the per-interval limit, which recovery_tick spends on
/// the dead best_peer every interval: R never votes again.
#[test]
fn review4_dead_best_peer_starves_catch_up_from_the_leader() {
    let n = 5u8;
    let mut rs: Vec<Replica> = (1..=n)
        .map(|i| Replica::new(config(n), NodeId(i), 7, Recovered::default()).unwrap())
        .collect();
    let mut committed = vec![Vec::new(); n as usize];
    let all: Filter = &|_, _, _| true;
    for r in rs.iter_mut() {
        r.on_tick(250 * MS);
    }
    let mut now = 250 * MS;
    let l = loop {
        now += 10 * MS;
        for r in rs.iter_mut() {
            r.on_tick(now);
        }
        pump(&mut rs, &mut committed, all);
        if let Some(l) = rs.iter().position(|r| r.role() == Role::Leader) {
            break l;
        }
    };
    assert_ne!(l, 4);
    for i in 0..3u8 {
        rs[l].propose(Batch::copy_from_slice(&[b'a' + i])).unwrap();
        pump(&mut rs, &mut committed, all);
    }
    now += 60 * MS;
    for r in rs.iter_mut() {
        r.on_tick(now);
    }
    pump(&mut rs, &mut committed, all);
    for r in rs.iter_mut() {
        assert_eq!(r.commit_point(), Slot(3));
        r.on_snapshot(Snapshot {
            slot: Slot(3),
            bytes: Batch::copy_from_slice(b"abc"),
        });
    }
    pump(&mut rs, &mut committed, all);
    let promised_r = rs[4].promised_ballot();
    let r_disk = Recovered {
        metadata: Metadata {
            promised: promised_r,
            commit_point: Slot(3),
            recovering: false,
        },
        accepted: Vec::new(),
        snapshot: None,
        damaged: true,
    };
    rs[4] = Replica::new(config(n), NodeId(5), 8, r_disk).unwrap();
    let t = now + 1_000 * MS;
    for r in rs.iter_mut() {
        r.on_tick(t);
    }
    // Only the fence round trips get through this turn.
    let recovery_only: Filter = &|_, _, m| {
        matches!(
            m,
            Message::RecoveryQuery { .. } | Message::RecoveryInfo { .. }
        )
    };
    pump(&mut rs, &mut committed, recovery_only);
    let recovery = rs[4].recovery.as_ref().expect("still recovering");
    assert!(recovery.all_answered);
    assert_eq!(recovery.compacted_seen, Slot(3));
    let (dead, _) = recovery.best_peer.expect("a best peer");
    let alive: Filter = &move |from, to, _| from != dead && to != dead;
    for step in 1..=400u64 {
        let now = t + step * 10 * MS;
        for r in rs.iter_mut() {
            if r.node() != dead {
                r.on_tick(now);
            }
        }
        pump(&mut rs, &mut committed, alive);
    }
    let leaders: Vec<_> = rs
        .iter()
        .filter(|r| r.role() == Role::Leader)
        .map(|r| r.node())
        .collect();
    assert!(!leaders.is_empty(), "the four survivors elect a leader");
    assert_ne!(
        rs[4].role(),
        Role::NonVoter,
        "R heard a leader holding every slot for 4 s yet never caught up"
    );
}
