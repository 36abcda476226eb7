//! An in-process Paxos group: replicas exchange messages through memory and
//! treat every persist as instantly durable. It measures the protocol core
//! alone (plus batch building), without network, disk or state machine.

use std::collections::VecDeque;

use synod_engine::paxos::{Config, Outgoing, ProposeError, Recovered, Replica, Role};
use synod_engine::wire::{Batch, Command, NodeId, Slot, Snapshot};

/// Three (or more) replicas wired together in memory.
pub struct Group {
    replicas: Vec<Replica>,
    leader: usize,
    now_ns: u64,
    in_transit: VecDeque<(NodeId, Outgoing)>,
    committed_slots: u64,
    committed_bytes: u64,
    next_client_seq: u64,
    command_pool: Vec<Command>,
    pool_payload_bytes: usize,
}

impl Group {
    /// Builds a group of `node_count` replicas and runs it until one leads.
    ///
    /// # Panics
    /// If no leader emerges within ten virtual seconds (a protocol bug).
    #[must_use]
    pub fn new(node_count: u8) -> Group {
        let config = Config {
            nodes: (1..=node_count).map(NodeId).collect(),
            window_slot_count_max: 1024,
            proposal_queue_max: 1 << 16,
            accept_slot_count_max: 1024,
            ..Config::default()
        };
        let replicas = (1..=node_count)
            .map(|node| {
                Replica::new(
                    config.clone(),
                    NodeId(node),
                    u64::from(node),
                    Recovered::default(),
                )
                .expect("the default configuration is valid")
            })
            .collect();
        let mut group = Group {
            replicas,
            leader: 0,
            now_ns: 0,
            in_transit: VecDeque::new(),
            committed_slots: 0,
            committed_bytes: 0,
            next_client_seq: 1,
            command_pool: Vec::new(),
            pool_payload_bytes: 0,
        };
        for _ in 0..1_000 {
            group.now_ns += 10_000_000;
            let now = group.now_ns;
            for replica in &mut group.replicas {
                replica.on_tick(now);
            }
            group.settle();
            if let Some(leader) = group
                .replicas
                .iter()
                .position(|replica| replica.role() == Role::Leader)
            {
                group.leader = leader;
                return group;
            }
        }
        panic!("no leader after ten virtual seconds");
    }

    /// Builds one batch of `command_count` commands with `payload_bytes`
    /// bytes each, archived once as the leader would. The commands stand
    /// for requests already received: they are kept in a pool and given
    /// fresh sequence numbers, so what is measured is the archiving.
    pub fn build_batch(&mut self, command_count: usize, payload_bytes: usize) -> Batch {
        if self.command_pool.len() < command_count || self.pool_payload_bytes != payload_bytes {
            self.pool_payload_bytes = payload_bytes;
            self.command_pool = (0..command_count)
                .map(|index| Command {
                    client_id: index as u64 + 1,
                    seq: 0,
                    acknowledged_below: 0,
                    payload: vec![0xA5; payload_bytes],
                })
                .collect();
        }
        let commands = &mut self.command_pool[..command_count];
        for command in commands.iter_mut() {
            command.seq = self.next_client_seq;
            command.acknowledged_below = self.next_client_seq;
            self.next_client_seq += 1;
        }
        Batch::encode_commands(self.now_ns, commands)
    }

    /// Proposes a batch at the leader.
    ///
    /// # Errors
    /// [`ProposeError::Busy`] when the leader's window and queue are full.
    pub fn propose(&mut self, batch: Batch) -> Result<(), ProposeError> {
        self.replicas[self.leader].propose(batch)
    }

    /// Delivers messages and persists until every replica is quiet.
    pub fn settle(&mut self) {
        loop {
            for index in 0..self.replicas.len() {
                self.drain(index);
            }
            if self.in_transit.is_empty() {
                return;
            }
            while let Some((from, outgoing)) = self.in_transit.pop_front() {
                let to = usize::from(outgoing.to.0 - 1);
                self.replicas[to].on_message(from, outgoing.message);
                self.drain(to);
            }
        }
    }

    fn drain(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        let ready = replica.ready();
        if !ready.persist.is_empty() {
            replica.on_persisted(ready.persist_seq);
        }
        let from = replica.node();
        if index == self.leader {
            self.committed_slots += ready.committed.len() as u64;
            self.committed_bytes += ready
                .committed
                .iter()
                .map(|entry| entry.batch.len() as u64)
                .sum::<u64>();
            if let Some(last) = ready.committed.last() {
                if last.slot.0 % 4096 == 0 {
                    replica.on_snapshot(Snapshot {
                        slot: last.slot,
                        bytes: Batch::noop(),
                    });
                }
            }
        }
        self.in_transit.extend(
            ready
                .messages_now
                .into_iter()
                .map(|outgoing| (from, outgoing)),
        );
        self.in_transit.extend(
            ready
                .messages_after_persist
                .into_iter()
                .map(|outgoing| (from, outgoing)),
        );
    }

    /// Slots the leader has learned chosen so far.
    #[must_use]
    pub fn committed_slots(&self) -> u64 {
        self.committed_slots
    }

    /// The leader's commit point.
    #[must_use]
    pub fn commit_point(&self) -> Slot {
        self.replicas[self.leader].commit_point()
    }

    /// Proposes `batch_count` batches of `command_count` commands and runs
    /// until the leader knows every one of them chosen; batches are built
    /// as the window frees, as a leader's loop turn would.
    pub fn run(&mut self, batch_count: u64, command_count: usize, payload_bytes: usize) {
        let target = self.committed_slots + batch_count;
        let mut proposed = 0;
        while self.committed_slots < target {
            while proposed < batch_count {
                let batch = self.build_batch(command_count, payload_bytes);
                if self.propose(batch).is_err() {
                    break;
                }
                proposed += 1;
                if proposed % 256 == 0 {
                    break;
                }
            }
            self.settle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proposed_batch_is_committed() {
        let mut group = Group::new(3);
        let before = group.commit_point();
        group.run(5_000, 4, 16);
        assert_eq!(group.commit_point().0 - before.0, 5_000);
    }
}
