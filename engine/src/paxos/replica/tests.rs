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
