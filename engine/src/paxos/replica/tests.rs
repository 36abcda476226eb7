//! Unit tests of the replica on a perfect in-memory network with an
//! instant disk; the simulator covers faults.

use synod_net::wire::{Batch, NodeId, Slot};

use super::Replica;
use crate::paxos::{Committed, Config, ReadId, Recovered, Role};

struct Cluster {
    replicas: Vec<Replica>,
    committed: Vec<Vec<Committed>>,
    now_ns: u64,
}

impl Cluster {
    fn new(node_count: u8) -> Cluster {
        let config = Config {
            nodes: (1..=node_count).map(NodeId).collect(),
            ..Config::default()
        };
        Cluster::with_config(node_count, &config)
    }

    fn with_config(node_count: u8, config: &Config) -> Cluster {
        let replicas = (1..=node_count)
            .map(|node| {
                Replica::new(config.clone(), NodeId(node), 7, Recovered::default())
                    .expect("valid config")
            })
            .collect();
        Cluster {
            replicas,
            committed: vec![Vec::new(); usize::from(node_count)],
            now_ns: 0,
        }
    }

    /// Drains every replica's outputs and delivers messages until quiet.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut messages = Vec::new();
            for (index, replica) in self.replicas.iter_mut().enumerate() {
                let ready = replica.ready();
                if !ready.persist.is_empty() {
                    replica.on_persisted(ready.persist_seq);
                }
                self.committed[index].extend(ready.committed);
                let from = replica.node();
                messages.extend(ready.messages_now.into_iter().map(|out| (from, out)));
                messages.extend(
                    ready
                        .messages_after_persist
                        .into_iter()
                        .map(|out| (from, out)),
                );
            }
            if messages.is_empty() {
                return;
            }
            for (from, out) in messages {
                self.replicas[usize::from(out.to.0 - 1)].on_message(from, out.message);
            }
        }
        panic!("the cluster did not settle");
    }

    fn advance(&mut self, step_ns: u64, steps: usize) {
        for _ in 0..steps {
            self.now_ns += step_ns;
            for replica in &mut self.replicas {
                replica.on_tick(self.now_ns);
            }
            self.settle();
        }
    }

    fn leader(&self) -> Option<usize> {
        self.replicas
            .iter()
            .position(|replica| replica.role() == Role::Leader)
    }
}

#[test]
fn elects_one_leader_and_commits_in_order_everywhere() {
    let mut cluster = Cluster::new(3);
    cluster.advance(10_000_000, 100);
    let leader = cluster.leader().expect("a leader after a second");
    assert_eq!(
        cluster
            .replicas
            .iter()
            .filter(|replica| replica.role() == Role::Leader)
            .count(),
        1
    );
    for value in 0..20u8 {
        cluster.replicas[leader]
            .propose(Batch::copy_from_slice(&[value; 16]))
            .expect("leader accepts");
    }
    cluster.settle();
    cluster.advance(10_000_000, 10);
    for committed in &cluster.committed {
        let values: Vec<_> = committed
            .iter()
            .filter(|entry| !entry.batch.is_empty())
            .map(|entry| entry.batch.as_bytes()[0])
            .collect();
        assert_eq!(values, (0..20).collect::<Vec<u8>>());
        let slots: Vec<u64> = committed.iter().map(|entry| entry.slot.0).collect();
        assert_eq!(slots, (1..=slots.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn followers_refuse_proposals_and_reads() {
    let mut cluster = Cluster::new(3);
    cluster.advance(10_000_000, 100);
    let leader = cluster.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    assert!(cluster.replicas[follower].propose(Batch::noop()).is_err());
    assert!(cluster.replicas[follower].read(ReadId(1)).is_err());
}

#[test]
fn lease_read_is_ready_at_once_and_read_index_after_a_round() {
    let mut cluster = Cluster::new(3);
    cluster.advance(10_000_000, 100);
    let leader = cluster.leader().expect("a leader");
    assert!(cluster.replicas[leader].has_lease());
    cluster.replicas[leader]
        .read(ReadId(1))
        .expect("leader reads");
    let ready = cluster.replicas[leader].ready();
    assert_eq!(ready.reads_ready.len(), 1);
    assert_eq!(ready.reads_ready[0].read_id, ReadId(1));
}

#[test]
fn new_leader_after_the_old_one_is_cut_off_keeps_chosen_values() {
    let mut cluster = Cluster::new(5);
    cluster.advance(10_000_000, 100);
    let old = cluster.leader().expect("a leader");
    for value in 0..5u8 {
        cluster.replicas[old]
            .propose(Batch::copy_from_slice(&[value; 8]))
            .expect("leader accepts");
    }
    cluster.settle();
    let chosen: Vec<Committed> = cluster.committed[old].clone();
    // Cut the old leader off by replacing it with a fresh, silent replica
    // that recovered nothing: the others must elect a new leader that
    // keeps every chosen value.
    let config = Config {
        nodes: (1..=5).map(NodeId).collect(),
        ..Config::default()
    };
    let node = cluster.replicas[old].node();
    cluster.replicas[old] = Replica::new(config, node, 9, Recovered::default()).expect("valid");
    cluster.committed[old].clear();
    cluster.advance(10_000_000, 200);
    let new = cluster.leader().expect("a new leader");
    for entry in &chosen {
        let seen = cluster.committed[new]
            .iter()
            .find(|committed| committed.slot == entry.slot);
        assert_eq!(seen.map(|committed| &committed.batch), Some(&entry.batch));
    }
    assert!(cluster.replicas[new].commit_point() >= Slot(chosen.len() as u64));
}

fn replica(node: u8, recovered: Recovered) -> Replica {
    let config = Config {
        nodes: (1..=3).map(NodeId).collect(),
        ..Config::default()
    };
    Replica::new(config, NodeId(node), 1, recovered).expect("valid config")
}

#[test]
fn promises_and_accepteds_wait_for_persistence() {
    use synod_net::wire::{Ballot, Message};
    let mut acceptor = replica(2, Recovered::default());
    acceptor.on_tick(0);
    acceptor.on_tick(250_000_000);
    let ballot = Ballot {
        round: 1,
        node: NodeId(1),
    };
    acceptor.on_message(
        NodeId(1),
        Message::Prepare {
            ballot,
            from_slot: Slot(1),
        },
    );
    let ready = acceptor.ready();
    assert!(
        ready.messages_now.is_empty(),
        "a promise must not leave before it is durable"
    );
    assert!(matches!(
        ready.messages_after_persist[0].message,
        Message::Promise { .. }
    ));
    assert!(!ready.persist.is_empty());
    let batch = Batch::copy_from_slice(b"value");
    let accept = Message::Accept {
        ballot,
        first_slot: Slot(1),
        batches: vec![batch],
        commit_point: Slot(0),
    };
    acceptor.on_message(NodeId(1), accept);
    let ready = acceptor.ready();
    assert!(ready.messages_now.is_empty());
    assert!(matches!(
        ready.messages_after_persist[0].message,
        Message::Accepted { slot_count: 1, .. }
    ));
    assert!(matches!(
        ready.persist[0],
        crate::paxos::PersistItem::Accepted(_)
    ));
}

#[test]
fn an_acceptor_rejects_lower_ballots_and_never_lowers_its_promise() {
    use synod_net::wire::{Ballot, Message};
    let mut acceptor = replica(2, Recovered::default());
    acceptor.on_tick(0);
    acceptor.on_tick(1_000_000_000);
    let high = Ballot {
        round: 5,
        node: NodeId(3),
    };
    let low = Ballot {
        round: 4,
        node: NodeId(1),
    };
    acceptor.on_message(
        NodeId(3),
        Message::Prepare {
            ballot: high,
            from_slot: Slot(1),
        },
    );
    acceptor.on_message(
        NodeId(1),
        Message::Prepare {
            ballot: low,
            from_slot: Slot(1),
        },
    );
    let accept = Message::Accept {
        ballot: low,
        first_slot: Slot(1),
        batches: vec![Batch::noop()],
        commit_point: Slot(0),
    };
    acceptor.on_message(NodeId(1), accept);
    assert_eq!(acceptor.promised_ballot(), high);
    let ready = acceptor.ready();
    let rejects = ready
        .messages_now
        .iter()
        .filter(|out| matches!(out.message, Message::Reject { promised, .. } if promised == high))
        .count();
    assert_eq!(rejects, 2);
}

#[test]
fn a_lease_holder_is_not_deposed_before_the_lease_runs_out() {
    use synod_net::wire::{Ballot, Message};
    let mut acceptor = replica(2, Recovered::default());
    let start = 1_000_000_000;
    acceptor.on_tick(start);
    // Past the restart guard.
    acceptor.on_tick(start + 300_000_000);
    let leader = Ballot {
        round: 1,
        node: NodeId(1),
    };
    acceptor.on_message(
        NodeId(1),
        Message::Heartbeat {
            ballot: leader,
            commit_point: Slot(0),
            round: 1,
        },
    );
    let _ = acceptor.ready();
    let rival = Ballot {
        round: 2,
        node: NodeId(3),
    };
    acceptor.on_tick(start + 400_000_000);
    acceptor.on_message(
        NodeId(3),
        Message::Prepare {
            ballot: rival,
            from_slot: Slot(1),
        },
    );
    assert_eq!(
        acceptor.promised_ballot(),
        leader,
        "promised a rival inside the lease"
    );
    assert!(acceptor.ready().messages_after_persist.is_empty());
    acceptor.on_tick(start + 300_000_000 + 200_000_001);
    acceptor.on_message(
        NodeId(3),
        Message::Prepare {
            ballot: rival,
            from_slot: Slot(1),
        },
    );
    assert_eq!(acceptor.promised_ballot(), rival);
}

#[test]
fn a_restarted_acceptor_waits_out_leases_it_may_have_granted() {
    use synod_net::wire::{Ballot, Message};
    let mut acceptor = replica(2, Recovered::default());
    acceptor.on_tick(5_000_000_000);
    let candidate = Ballot {
        round: 3,
        node: NodeId(3),
    };
    acceptor.on_message(
        NodeId(3),
        Message::Prepare {
            ballot: candidate,
            from_slot: Slot(1),
        },
    );
    assert_eq!(acceptor.promised_ballot(), Ballot::ZERO);
    acceptor.on_tick(5_000_000_000 + 200_000_000);
    acceptor.on_message(
        NodeId(3),
        Message::Prepare {
            ballot: candidate,
            from_slot: Slot(1),
        },
    );
    assert_eq!(acceptor.promised_ballot(), candidate);
}

#[test]
fn a_damaged_replica_votes_only_after_every_peer_promised_its_fence() {
    use synod_net::wire::{AcceptedEntry, Ballot, Message};
    let ballot = Ballot {
        round: 2,
        node: NodeId(1),
    };
    let recovered = Recovered {
        damaged: true,
        ..Recovered::default()
    };
    let mut damaged = replica(3, recovered);
    assert_eq!(damaged.role(), Role::NonVoter);
    damaged.on_tick(1_000_000_000);
    let ready = damaged.ready();
    let queries = ready
        .messages_now
        .iter()
        .filter(|out| matches!(out.message, Message::RecoveryQuery { .. }))
        .count();
    assert_eq!(queries, 2);
    let Message::RecoveryQuery { nonce, fence, .. } = ready.messages_now[0].message else {
        unreachable!()
    };
    assert_eq!(fence.node, NodeId(3));
    // It neither promises nor accepts nor acknowledges heartbeats.
    damaged.on_message(
        NodeId(1),
        Message::Prepare {
            ballot,
            from_slot: Slot(1),
        },
    );
    damaged.on_message(
        NodeId(1),
        Message::Heartbeat {
            ballot,
            commit_point: Slot(0),
            round: 1,
        },
    );
    let ready = damaged.ready();
    assert!(ready.messages_after_persist.is_empty());
    assert!(!ready
        .messages_now
        .iter()
        .any(|out| matches!(out.message, Message::HeartbeatAck { .. })));
    // A peer has promised more than the fence: it is raised and resent.
    let older = Ballot {
        round: 1,
        node: NodeId(2),
    };
    let answer = |promised, slot_2_ballot| Message::RecoveryInfo {
        nonce,
        promised,
        accepted: vec![
            AcceptedEntry {
                slot: Slot(1),
                ballot,
                batch: Batch::copy_from_slice(b"a"),
            },
            AcceptedEntry {
                slot: Slot(2),
                ballot: slot_2_ballot,
                batch: Batch::copy_from_slice(if slot_2_ballot == ballot { b"b" } else { b"x" }),
            },
        ],
        commit_point: Slot(1),
        compacted_through: Slot(0),
    };
    damaged.on_message(NodeId(1), answer(ballot, ballot));
    damaged.on_tick(1_000_000_001);
    let ready = damaged.ready();
    let fences: Vec<Ballot> = ready
        .messages_now
        .iter()
        .filter_map(|out| match out.message {
            Message::RecoveryQuery { fence, .. } => Some(fence),
            _ => None,
        })
        .collect();
    assert_eq!(fences.len(), 2);
    let fence = fences[0];
    assert!(fence > ballot && fence.node == NodeId(3));
    // One fenced answer is not enough: every peer must promise the fence.
    damaged.on_message(NodeId(1), answer(fence, ballot));
    assert_eq!(damaged.promised_ballot(), ballot);
    assert_eq!(damaged.role(), Role::NonVoter);
    damaged.on_message(NodeId(2), answer(fence, older));
    // Every peer promised it: the highest-ballot value per slot is adopted
    // as its own record, and it votes again.
    assert_eq!(damaged.role(), Role::Follower);
    assert_eq!(damaged.promised_ballot(), fence);
    let ready = damaged.ready();
    let adopted: Vec<(Slot, Ballot, Vec<u8>)> = ready
        .persist
        .iter()
        .filter_map(|item| match item {
            crate::paxos::PersistItem::Accepted(entry) => {
                Some((entry.slot, entry.ballot, entry.batch.as_bytes().to_vec()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        adopted,
        vec![
            (Slot(1), ballot, b"a".to_vec()),
            (Slot(2), ballot, b"b".to_vec())
        ]
    );
    assert!(
        ready.committed.is_empty(),
        "adopted values are not known chosen"
    );
    let recovering = ready.persist.iter().any(|item| {
        matches!(item, crate::paxos::PersistItem::Metadata(metadata) if !metadata.recovering)
    });
    assert!(recovering, "the end of recovery is durable");
}

#[test]
fn recovery_with_a_gap_below_the_durable_commit_point_is_damage() {
    use crate::paxos::Metadata;
    use synod_net::wire::{AcceptedEntry, Ballot};
    let ballot = Ballot {
        round: 1,
        node: NodeId(1),
    };
    let entry = |slot| AcceptedEntry {
        slot: Slot(slot),
        ballot,
        batch: Batch::noop(),
    };
    let recovered = Recovered {
        metadata: Metadata {
            promised: ballot,
            commit_point: Slot(3),
            recovering: false,
        },
        accepted: vec![entry(1), entry(3)],
        snapshot: None,
        damaged: false,
    };
    let restarted = replica(2, recovered);
    assert_eq!(restarted.role(), Role::NonVoter);
    // A damaged replica trusts nothing above its snapshot as chosen.
    assert_eq!(restarted.commit_point(), Slot(0));
}

#[test]
fn a_lagging_replica_catches_up_through_a_snapshot() {
    use synod_net::wire::Snapshot;
    let config = Config {
        nodes: (1..=3).map(NodeId).collect(),
        retained_slot_count_max: 2,
        ..Config::default()
    };
    let mut cluster = Cluster::with_config(3, &config);
    cluster.advance(10_000_000, 100);
    let leader = cluster.leader().expect("a leader");
    let lagging = (leader + 1) % 3;
    // Keep the lagging replica silent while the others commit and compact.
    let lagging_node = cluster.replicas[lagging].node();
    let mut parked =
        Replica::new(config.clone(), lagging_node, 3, Recovered::default()).expect("valid");
    std::mem::swap(&mut parked, &mut cluster.replicas[lagging]);
    for value in 0..30u8 {
        cluster.replicas[leader]
            .propose(Batch::copy_from_slice(&[value]))
            .expect("leader accepts");
        cluster.settle();
    }
    let commit = cluster.replicas[leader].commit_point();
    let snapshot = Snapshot {
        slot: commit,
        bytes: Batch::copy_from_slice(b"state"),
    };
    cluster.replicas[leader].on_snapshot(snapshot.clone());
    assert!(cluster.replicas[leader].snapshot_slot() == commit);
    // The lagging replica asks for what it lacks and gets the snapshot.
    cluster.replicas[lagging] =
        Replica::new(config, lagging_node, 3, Recovered::default()).expect("valid");
    cluster.committed[lagging].clear();
    cluster.replicas[lagging].on_tick(cluster.now_ns);
    let leader_node = cluster.replicas[leader].node();
    cluster.replicas[lagging].on_message(
        leader_node,
        synod_net::wire::Message::CatchUp {
            commit_point: Slot(0),
        },
    );
    let mut restored = None;
    cluster.replicas[leader].on_message(
        lagging_node,
        synod_net::wire::Message::CatchUp {
            commit_point: Slot(0),
        },
    );
    for _ in 0..3 {
        let ready = cluster.replicas[leader].ready();
        for out in ready
            .messages_now
            .into_iter()
            .filter(|out| out.to == lagging_node)
        {
            cluster.replicas[lagging].on_message(leader_node, out.message);
        }
        let ready = cluster.replicas[lagging].ready();
        if ready.snapshot_to_restore.is_some() {
            restored = ready.snapshot_to_restore;
        }
    }
    assert_eq!(restored, Some(snapshot));
    assert_eq!(cluster.replicas[lagging].commit_point(), commit);
}
