//! Test support shared by the replica's regression tests: a cluster config,
//! an in-memory network with instant (or withheld) disks, and helpers to
//! drain one replica by hand.

use synod_net::wire::{Ballot, Message, NodeId, Slot};

use super::Replica;
use crate::paxos::{Committed, Config, Metadata, Outgoing, Ready, Recovered, Role};

pub(super) const MS: u64 = 1_000_000;

/// Decides, per message, whether the network delivers it (`from`, `to`, message).
pub(super) type Filter<'a> = &'a dyn Fn(NodeId, NodeId, &Message) -> bool;

/// Nodes 1..=n, everything else default.
pub(super) fn config(n: u8) -> Config {
    Config {
        nodes: (1..=n).map(NodeId).collect(),
        ..Config::default()
    }
}

/// Drains a replica; `durable` says whether its disk completes this turn.
/// Returns (messages_now, messages_after_persist if durable else dropped, committed).
pub(super) fn drain(
    r: &mut Replica,
    durable: bool,
) -> (Vec<Outgoing>, Vec<Outgoing>, Vec<Committed>) {
    let ready: Ready = r.ready();
    let mut after = Vec::new();
    if durable {
        if !ready.persist.is_empty() {
            r.on_persisted(ready.persist_seq);
        }
        after = ready.messages_after_persist;
    }
    (ready.messages_now, after, ready.committed)
}

/// The messages in `outs` addressed to `node`.
pub(super) fn to(outs: &[Outgoing], node: u8) -> Vec<Message> {
    outs.iter()
        .filter(|o| o.to == NodeId(node))
        .map(|o| o.message.clone())
        .collect()
}

/// Node `node` of three, restarted with only its promise durable.
pub(super) fn restarted(node: u8, promised: Ballot, seed: u64, damaged: bool) -> Replica {
    let recovered = Recovered {
        metadata: Metadata {
            promised,
            commit_point: Slot(0),
            recovering: false,
        },
        damaged,
        ..Recovered::default()
    };
    Replica::new(config(3), NodeId(node), seed, recovered).unwrap()
}

fn deliver(rs: &mut [Replica], from: NodeId, out: Outgoing) {
    rs[usize::from(out.to.0 - 1)].on_message(from, out.message);
}

/// Drains outputs (instant disk where `persist_ok`), delivers what `allow`
/// passes and pushes the rest onto `held`, until quiet.
fn pump_holding(
    rs: &mut [Replica],
    committed: &mut [Vec<Committed>],
    persist_ok: &[bool],
    allow: Filter,
    held: &mut Vec<(NodeId, Outgoing)>,
) {
    for _ in 0..1000 {
        let mut msgs = Vec::new();
        for (i, r) in rs.iter_mut().enumerate() {
            let ready = r.ready();
            let from = r.node();
            committed[i].extend(ready.committed);
            msgs.extend(ready.messages_now.into_iter().map(|o| (from, o)));
            if persist_ok[i] {
                if !ready.persist.is_empty() {
                    r.on_persisted(ready.persist_seq);
                }
                msgs.extend(ready.messages_after_persist.into_iter().map(|o| (from, o)));
            }
        }
        if msgs.is_empty() {
            return;
        }
        for (from, out) in msgs {
            if allow(from, out.to, &out.message) {
                deliver(rs, from, out);
            } else {
                held.push((from, out));
            }
        }
    }
    panic!("network did not quiet down");
}

/// Instant disks; delivers what `allow` passes, drops the rest; collects
/// what each node committed into `committed`.
pub(super) fn pump(rs: &mut [Replica], committed: &mut [Vec<Committed>], allow: Filter) {
    let persist_ok = vec![true; rs.len()];
    let mut dropped = Vec::new();
    pump_holding(rs, committed, &persist_ok, allow, &mut dropped);
}

/// A cluster whose network can hold messages back and release them later,
/// and whose disks can stall per node.
pub(super) struct Net {
    pub(super) replicas: Vec<Replica>,
    pub(super) committed: Vec<Vec<Committed>>,
    pub(super) persist_ok: Vec<bool>,
    pub(super) held: Vec<(NodeId, Outgoing)>,
}

impl Net {
    pub(super) fn new(n: u8) -> Net {
        Net {
            replicas: (1..=n)
                .map(|i| Replica::new(config(n), NodeId(i), 7, Recovered::default()).unwrap())
                .collect(),
            committed: vec![Vec::new(); usize::from(n)],
            persist_ok: vec![true; usize::from(n)],
            held: Vec::new(),
        }
    }

    /// The node id of replica index `i`.
    pub(super) fn node(i: usize) -> NodeId {
        NodeId(u8::try_from(i).unwrap() + 1)
    }

    /// Drains outputs (instant disk where persist_ok), delivers what `allow`
    /// passes and holds the rest, until quiet.
    pub(super) fn pump(&mut self, allow: Filter) {
        pump_holding(
            &mut self.replicas,
            &mut self.committed,
            &self.persist_ok,
            allow,
            &mut self.held,
        );
    }

    /// Delivers the held messages `pred` passes; keeps holding the rest.
    pub(super) fn release(&mut self, pred: Filter) {
        for (from, out) in std::mem::take(&mut self.held) {
            if pred(from, out.to, &out.message) {
                deliver(&mut self.replicas, from, out);
            } else {
                self.held.push((from, out));
            }
        }
    }

    pub(super) fn tick(&mut self, which: &[usize], now: u64) {
        for &i in which {
            self.replicas[i].on_tick(now);
        }
    }

    pub(super) fn leader_among(&self, which: &[usize]) -> Option<usize> {
        which
            .iter()
            .copied()
            .find(|&i| self.replicas[i].role() == Role::Leader)
    }

    /// Ticks `which` in 10 ms steps on a perfect network until one of them
    /// leads, asserting that happens before `now` reaches 10 s; returns its
    /// index.
    pub(super) fn elect(&mut self, which: &[usize], now: &mut u64) -> usize {
        loop {
            *now += 10 * MS;
            self.tick(which, *now);
            self.pump(&|_, _, _| true);
            if let Some(l) = self.leader_among(which) {
                return l;
            }
            assert!(*now < 10_000 * MS);
        }
    }
}
