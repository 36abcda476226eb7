//! Hostile input: peer messages and client commands that are well-formed
//! wire values with nonsensical field values must never panic a replica or
//! its session table and kv machine ("bad input from the network or a
//! client gets a clear error and closes only what it came from").
//!
//! A small cluster is driven by hand (instant disks, a perfect network for
//! the honest traffic) while random peer messages of every variant, from
//! any node id (members, non-members, the replica itself), and random
//! client commands are fed to its replicas; the committed slots are applied
//! to a `Replicated<KvMachine>` per replica.
//!
//! Slot numbers far in the future but below the replicas' plausibility
//! ceiling are left out on purpose: a new leader fills every hole up to the
//! highest slot a promise reports, which is unbounded work (see the review
//! report); the values here are small, moderately ahead, or at the very top
//! of the u64 range.

use proptest::prelude::*;
use synod_engine::paxos::{Config, Metadata, Recovered, Replica, Role};
use synod_engine::sm::{KvCommand, KvMachine, Replicated, SessionConfig};
use synod_engine::wire::{AcceptedEntry, Ballot, Batch, Command, Message, NodeId, Slot, Snapshot};

const MS: u64 = 1_000_000;
const N: u8 = 3;

fn config(n: u8) -> Config {
    Config {
        nodes: (1..=n).map(NodeId).collect(),
        ..Config::default()
    }
}

fn session_config() -> SessionConfig {
    SessionConfig {
        ttl_ns: 2_000 * MS,
        window_seq_count: 8,
        sessions_max: 4,
    }
}

/// One replica with its driver-side state machine.
struct Node {
    replica: Replica,
    store: Replicated<KvMachine>,
    /// A restore failed (hostile snapshot bytes): the store no longer
    /// follows the replica, so it is not applied to any more.
    store_lost: bool,
}

impl Node {
    fn new(node: u8, recovered: Recovered) -> Node {
        Node {
            replica: Replica::new(config(N), NodeId(node), 7, recovered).unwrap(),
            store: Replicated::new(KvMachine::new(), session_config()),
            store_lost: false,
        }
    }
}

/// A hand-driven cluster.
struct Cluster {
    nodes: Vec<Node>,
    now_ns: u64,
    /// Nonces seen in recovery queries, so hostile answers can match them.
    nonces: Vec<u64>,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            nodes: (1..=N)
                .map(|i| Node::new(i, Recovered::default()))
                .collect(),
            now_ns: 0,
            nonces: Vec::new(),
        }
    }

    /// One round: drain every replica (instant disks), apply what it
    /// committed, deliver its messages to members. True if any message moved.
    fn round(&mut self) -> bool {
        let mut messages = Vec::new();
        for node in &mut self.nodes {
            let ready = node.replica.ready();
            if !ready.persist.is_empty() {
                node.replica.on_persisted(ready.persist_seq);
            }
            if let Some(snapshot) = &ready.snapshot_to_restore {
                if node.store.restore(snapshot).is_err() {
                    node.store_lost = true;
                }
            }
            for committed in &ready.committed {
                if !node.store_lost && committed.slot == node.store.applied_slot().next() {
                    node.store.apply(committed.slot, &committed.batch);
                } else {
                    node.store_lost = true;
                }
            }
            let from = node.replica.node();
            messages.extend(
                ready
                    .messages_now
                    .into_iter()
                    .chain(ready.messages_after_persist)
                    .map(|out| (from, out)),
            );
        }
        let any = !messages.is_empty();
        for (from, out) in messages {
            if let Message::RecoveryQuery { nonce, .. } = out.message {
                if !self.nonces.contains(&nonce) {
                    self.nonces.push(nonce);
                }
            }
            if let Some(node) = self.nodes.iter_mut().find(|n| n.replica.node() == out.to) {
                node.replica.on_message(from, out.message);
            }
        }
        any
    }

    fn pump(&mut self) {
        for _ in 0..200 {
            if !self.round() {
                return;
            }
        }
    }

    fn tick(&mut self, delta_ns: u64) {
        self.now_ns += delta_ns;
        for node in &mut self.nodes {
            node.replica.on_tick(self.now_ns);
        }
    }

    /// Ticks in 10 ms steps on a perfect network until someone leads.
    fn elect(&mut self) -> usize {
        loop {
            self.tick(10 * MS);
            self.pump();
            if let Some(i) = self
                .nodes
                .iter()
                .position(|n| n.replica.role() == Role::Leader)
            {
                return i;
            }
            assert!(self.now_ns < 20_000 * MS, "no leader elected");
        }
    }

    fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.replica.role() == Role::Leader)
    }
}

/// How the cluster looks before the hostile input starts.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// Nobody has ticked yet.
    Fresh,
    /// A leader was elected and committed a few client commands.
    Elected,
    /// As `Elected`, then node 3 restarted with a damaged log (non-voter).
    Damaged,
}

fn start(kind: Start) -> Cluster {
    let mut cluster = Cluster::new();
    if let Start::Fresh = kind {
        return cluster;
    }
    let leader = cluster.elect();
    for seq in 0..3 {
        let command = Command {
            client_id: 1,
            seq,
            acknowledged_below: 0,
            payload: KvCommand::Put {
                key: vec![b'k'],
                value: vec![u8::try_from(seq).unwrap()],
            }
            .encode(),
        };
        let batch = Batch::encode_commands(cluster.now_ns, &[command]);
        cluster.nodes[leader].replica.propose(batch).unwrap();
        cluster.pump();
    }
    cluster.tick(60 * MS);
    cluster.pump();
    if let Start::Damaged = kind {
        let promised = cluster.nodes[2].replica.promised_ballot();
        cluster.nodes[2] = Node::new(
            3,
            Recovered {
                metadata: Metadata {
                    promised,
                    commit_point: Slot(0),
                    recovering: false,
                },
                damaged: true,
                ..Recovered::default()
            },
        );
        cluster.nodes[2].replica.on_tick(cluster.now_ns);
        cluster.round();
    }
    cluster
}

// ---------------------------------------------------------------------------
// Strategies.

/// The plausibility ceiling the replicas apply to slots and rounds.
const CEILING: u64 = 1 << 62;

fn huge() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX - 1),
        (u64::MAX - 300)..=u64::MAX,
        CEILING..=CEILING + 2,
    ]
}

fn slot() -> BoxedStrategy<Slot> {
    prop_oneof![
        8 => 0_u64..12,
        1 => 100_u64..140,
        2 => huge(),
    ]
    .prop_map(Slot)
    .boxed()
}

fn round() -> BoxedStrategy<u64> {
    prop_oneof![6 => 0_u64..8, 1 => huge(), 1 => any::<u64>()].boxed()
}

fn node_id() -> BoxedStrategy<NodeId> {
    prop_oneof![8 => 0_u8..=4, 1 => Just(255_u8)]
        .prop_map(NodeId)
        .boxed()
}

fn ballot() -> BoxedStrategy<Ballot> {
    (round(), node_id())
        .prop_map(|(round, node)| Ballot { round, node })
        .boxed()
}

fn seq() -> BoxedStrategy<u64> {
    prop_oneof![6 => 0_u64..12, 1 => huge(), 1 => any::<u64>()].boxed()
}

fn payload() -> BoxedStrategy<Vec<u8>> {
    let key = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        3 => (key.clone(), prop::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(key, value)| KvCommand::Put { key, value }.encode()),
        1 => key.clone().prop_map(|key| KvCommand::Delete { key }.encode()),
        1 => key.clone().prop_map(|key| KvCommand::Get { key }.encode()),
        1 => (key, prop::option::of(prop::collection::vec(any::<u8>(), 0..3)), prop::collection::vec(any::<u8>(), 0..3))
            .prop_map(|(key, expected, new)| KvCommand::Cas { key, expected, new }.encode()),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => Just(vec![1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ]
    .boxed()
}

fn command() -> BoxedStrategy<Command> {
    (
        prop_oneof![4 => 0_u64..6, 1 => any::<u64>()],
        seq(),
        seq(),
        payload(),
    )
        .prop_map(|(client_id, seq, acknowledged_below, payload)| Command {
            client_id,
            seq,
            acknowledged_below,
            payload,
        })
        .boxed()
}

fn batch() -> BoxedStrategy<Batch> {
    prop_oneof![
        2 => Just(Batch::noop()),
        2 => prop::collection::vec(any::<u8>(), 1..24).prop_map(|b| Batch::copy_from_slice(&b)),
        3 => (prop_oneof![0_u64..5_000 * MS, huge()], prop::collection::vec(command(), 0..4))
            .prop_map(|(at, commands)| Batch::encode_commands(at, &commands)),
    ]
    .boxed()
}

fn batches() -> BoxedStrategy<Vec<Batch>> {
    prop::collection::vec(batch(), 0..4).boxed()
}

fn entries() -> BoxedStrategy<Vec<AcceptedEntry>> {
    prop::collection::vec(
        (slot(), ballot(), batch()).prop_map(|(slot, ballot, batch)| AcceptedEntry {
            slot,
            ballot,
            batch,
        }),
        0..4,
    )
    .boxed()
}

fn message() -> BoxedStrategy<Message> {
    prop_oneof![
        (ballot(), slot()).prop_map(|(ballot, from_slot)| Message::Prepare { ballot, from_slot }),
        (ballot(), slot(), entries(), slot(), slot()).prop_map(
            |(ballot, from_slot, accepted, commit_point, snapshot_slot)| Message::Promise {
                ballot,
                from_slot,
                accepted,
                commit_point,
                snapshot_slot,
            }
        ),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Message::Reject { ballot, promised }),
        (ballot(), slot(), batches(), slot()).prop_map(
            |(ballot, first_slot, batches, commit_point)| Message::Accept {
                ballot,
                first_slot,
                batches,
                commit_point,
            }
        ),
        (ballot(), slot(), seq(), slot()).prop_map(
            |(ballot, first_slot, slot_count, commit_point)| Message::Accepted {
                ballot,
                first_slot,
                slot_count,
                commit_point,
            }
        ),
        (ballot(), slot(), seq()).prop_map(|(ballot, commit_point, round)| Message::Heartbeat {
            ballot,
            commit_point,
            round,
        }),
        (ballot(), seq(), slot()).prop_map(|(ballot, round, commit_point)| {
            Message::HeartbeatAck {
                ballot,
                round,
                commit_point,
            }
        }),
        (ballot(), slot(), batches(), slot()).prop_map(
            |(ballot, first_slot, batches, commit_point)| Message::Chosen {
                ballot,
                first_slot,
                batches,
                commit_point,
            }
        ),
        slot().prop_map(|commit_point| Message::CatchUp { commit_point }),
        (ballot(), slot(), batch()).prop_map(|(ballot, slot, bytes)| Message::InstallSnapshot {
            ballot,
            snapshot: Snapshot { slot, bytes },
        }),
        (any::<u64>(), ballot(), slot()).prop_map(|(nonce, fence, from_slot)| {
            Message::RecoveryQuery {
                nonce,
                fence,
                from_slot,
            }
        }),
        (any::<u64>(), ballot(), entries(), slot(), slot()).prop_map(
            |(nonce, promised, accepted, commit_point, compacted_through)| Message::RecoveryInfo {
                nonce,
                promised,
                accepted,
                commit_point,
                compacted_through,
            }
        ),
    ]
    .boxed()
}

/// How a hostile message's ballots are chosen when it is delivered.
#[derive(Clone, Copy, Debug)]
enum BallotPick {
    /// As generated.
    Literal,
    /// The target's promised ballot (matches a leader's or candidate's own).
    TargetPromised,
    /// The promised ballot of the sender, if it is a member.
    SenderPromised,
}

#[derive(Clone, Debug)]
enum Op {
    /// A hostile peer message to `target`, claimed to come from `from`.
    Peer {
        target: usize,
        from: NodeId,
        pick: BallotPick,
        nonce: Option<usize>,
        message: Message,
    },
    /// A client command batch proposed at whoever leads (or `target`).
    Client {
        target: usize,
        commands: Vec<Command>,
    },
    /// A read.
    Read { target: usize, id: u64 },
    /// Time passes on every node.
    Tick { ms: u64 },
    /// Honest traffic flows until quiet.
    Pump,
    /// The driver snapshots `target`'s store (if it follows its replica).
    Snapshot { target: usize },
}

fn op() -> BoxedStrategy<Op> {
    let pick = prop_oneof![
        Just(BallotPick::Literal),
        Just(BallotPick::TargetPromised),
        Just(BallotPick::SenderPromised),
    ];
    prop_oneof![
        8 => (0_usize..3, node_id(), pick, prop::option::of(0_usize..4), message()).prop_map(
            |(target, from, pick, nonce, message)| Op::Peer {
                target,
                from,
                pick,
                nonce,
                message,
            }
        ),
        2 => (0_usize..3, prop::collection::vec(command(), 0..4))
            .prop_map(|(target, commands)| Op::Client { target, commands }),
        1 => (0_usize..3, any::<u64>()).prop_map(|(target, id)| Op::Read { target, id }),
        2 => prop_oneof![1_u64..80, 200_u64..800].prop_map(|ms| Op::Tick { ms }),
        2 => Just(Op::Pump),
        1 => (0_usize..3).prop_map(|target| Op::Snapshot { target }),
    ]
    .boxed()
}

fn set_ballots(message: &mut Message, to: Ballot) {
    match message {
        Message::Prepare { ballot, .. }
        | Message::Promise { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Accepted { ballot, .. }
        | Message::Heartbeat { ballot, .. }
        | Message::HeartbeatAck { ballot, .. }
        | Message::Chosen { ballot, .. }
        | Message::InstallSnapshot { ballot, .. } => *ballot = to,
        Message::Reject { ballot, .. } => *ballot = to,
        Message::RecoveryQuery { fence, .. } => *fence = to,
        Message::RecoveryInfo { promised, .. } => *promised = to,
        Message::CatchUp { .. } => {}
    }
}

fn run(cluster: &mut Cluster, op: Op) {
    match op {
        Op::Peer {
            target,
            from,
            pick,
            nonce,
            mut message,
        } => {
            let replaced = match pick {
                BallotPick::Literal => None,
                BallotPick::TargetPromised => Some(cluster.nodes[target].replica.promised_ballot()),
                BallotPick::SenderPromised => cluster
                    .nodes
                    .iter()
                    .find(|n| n.replica.node() == from)
                    .map(|n| n.replica.promised_ballot()),
            };
            if let Some(ballot) = replaced {
                set_ballots(&mut message, ballot);
            }
            if let (Message::RecoveryInfo { nonce: n, .. }, Some(index)) = (&mut message, nonce) {
                if !cluster.nonces.is_empty() {
                    *n = cluster.nonces[index % cluster.nonces.len()];
                }
            }
            cluster.nodes[target].replica.on_message(from, message);
        }
        Op::Client { target, commands } => {
            let target = cluster.leader().unwrap_or(target);
            let batch = Batch::encode_commands(cluster.now_ns, &commands);
            let _ = cluster.nodes[target].replica.propose(batch);
        }
        Op::Read { target, id } => {
            let _ = cluster.nodes[target]
                .replica
                .read(synod_engine::paxos::ReadId(id));
        }
        Op::Tick { ms } => cluster.tick(ms * MS),
        Op::Pump => cluster.pump(),
        Op::Snapshot { target } => {
            let node = &mut cluster.nodes[target];
            if !node.store_lost && node.store.applied_slot() == node.replica.commit_point() {
                let snapshot = node.store.snapshot();
                node.replica.on_snapshot(snapshot);
            }
        }
    }
}

fn start_kind() -> impl Strategy<Value = Start> {
    prop_oneof![
        1 => Just(Start::Fresh),
        3 => Just(Start::Elected),
        2 => Just(Start::Damaged),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    /// Random hostile peer messages and client commands, mixed with honest
    /// traffic and time, never panic a replica or its state machine.
    #[test]
    fn hostile_peers_and_clients_never_panic(
        kind in start_kind(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut cluster = start(kind);
        for op in ops {
            run(&mut cluster, op);
        }
        // Let the cluster settle: still no panic.
        for _ in 0..5 {
            cluster.tick(100 * MS);
            cluster.pump();
        }
    }

    /// Client commands with any field values go through a replicated kv
    /// machine without a panic, and every snapshot restores.
    #[test]
    fn hostile_client_commands_never_panic_the_session_table(
        batches in prop::collection::vec(
            (prop_oneof![0_u64..10_000 * MS, huge()], prop::collection::vec(command(), 0..6)),
            1..20,
        ),
    ) {
        let mut store = Replicated::new(KvMachine::new(), session_config());
        for (i, (at, commands)) in batches.iter().enumerate() {
            let slot = Slot(u64::try_from(i).unwrap() + 1);
            let outcomes = store.apply(slot, &Batch::encode_commands(*at, commands));
            prop_assert_eq!(outcomes.len(), commands.len());
            for outcome in outcomes {
                let _ = store.cached_result(outcome.client_id, outcome.seq);
            }
            // A snapshot taken now restores into a fresh table.
            let snapshot = store.snapshot();
            let mut other = Replicated::new(KvMachine::new(), session_config());
            prop_assert!(other.restore(&snapshot).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------
// Targeted cases: the nastiest values found by reading the code.

fn elected() -> (Cluster, usize) {
    let cluster = start(Start::Elected);
    let leader = cluster.leader().expect("Start::Elected has a leader");
    (cluster, leader)
}

fn id(index: usize) -> NodeId {
    NodeId(u8::try_from(index).unwrap() + 1)
}

/// Lets time pass far beyond every timeout, with honest traffic.
fn settle(cluster: &mut Cluster) {
    for _ in 0..20 {
        cluster.tick(100 * MS);
        cluster.pump();
    }
}

#[test]
fn accept_and_chosen_at_the_top_of_the_slot_space() {
    let (mut cluster, l) = elected();
    let f = (l + 1) % 3;
    let ballot = cluster.nodes[l].replica.promised_ballot();
    for first_slot in [u64::MAX, u64::MAX - 1, CEILING - 1, CEILING] {
        let batches = vec![Batch::noop(), Batch::copy_from_slice(b"z")];
        cluster.nodes[f].replica.on_message(
            id(l),
            Message::Accept {
                ballot,
                first_slot: Slot(first_slot),
                batches: batches.clone(),
                commit_point: Slot(u64::MAX),
            },
        );
        cluster.nodes[f].replica.on_message(
            id(l),
            Message::Chosen {
                ballot,
                first_slot: Slot(first_slot),
                batches,
                commit_point: Slot(u64::MAX),
            },
        );
    }
    settle(&mut cluster);
    assert!(cluster.leader().is_some());
}

#[test]
fn snapshot_and_catch_up_at_the_top_of_the_slot_space() {
    let (mut cluster, l) = elected();
    let f = (l + 1) % 3;
    let ballot = cluster.nodes[l].replica.promised_ballot();
    for slot in [u64::MAX, u64::MAX - 1, CEILING] {
        cluster.nodes[f].replica.on_message(
            id(l),
            Message::InstallSnapshot {
                ballot,
                snapshot: Snapshot {
                    slot: Slot(slot),
                    bytes: Batch::copy_from_slice(b"not a snapshot"),
                },
            },
        );
        cluster.nodes[l].replica.on_message(
            id(f),
            Message::CatchUp {
                commit_point: Slot(slot),
            },
        );
        cluster.nodes[l].replica.on_message(
            id(f),
            Message::Accepted {
                ballot,
                first_slot: Slot(slot),
                slot_count: u64::MAX,
                commit_point: Slot(slot),
            },
        );
    }
    cluster.nodes[l].replica.on_message(
        id(f),
        Message::Accepted {
            ballot,
            first_slot: Slot(0),
            slot_count: u64::MAX,
            commit_point: Slot(0),
        },
    );
    settle(&mut cluster);
    assert!(!cluster.nodes[f].store_lost, "no snapshot was installed");
}

#[test]
fn ballots_of_the_last_round_from_every_direction() {
    let (mut cluster, l) = elected();
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    for round in [u64::MAX, u64::MAX - 1, CEILING] {
        let top = Ballot {
            round,
            node: id(other),
        };
        let target = &mut cluster.nodes[f].replica;
        target.on_message(
            id(other),
            Message::Prepare {
                ballot: top,
                from_slot: Slot(1),
            },
        );
        target.on_message(
            id(other),
            Message::Heartbeat {
                ballot: top,
                commit_point: Slot(0),
                round: u64::MAX,
            },
        );
        target.on_message(
            id(other),
            Message::Reject {
                ballot: top,
                promised: top,
            },
        );
        target.on_message(
            id(other),
            Message::RecoveryQuery {
                nonce: 0,
                fence: top,
                from_slot: Slot(0),
            },
        );
    }
    settle(&mut cluster);
    assert!(cluster.leader().is_some());
}

#[test]
fn senders_outside_the_group_or_naming_themselves_are_ignored() {
    let (mut cluster, l) = elected();
    let promised = cluster.nodes[l].replica.promised_ballot();
    for from in [NodeId(0), NodeId(4), NodeId(255), id(l)] {
        cluster.nodes[l].replica.on_message(
            from,
            Message::Prepare {
                ballot: Ballot {
                    round: promised.round + 1,
                    node: from,
                },
                from_slot: Slot(1),
            },
        );
    }
    assert_eq!(cluster.nodes[l].replica.role(), Role::Leader);
    assert_eq!(cluster.nodes[l].replica.promised_ballot(), promised);
}

/// A put of `value` under key "k" by client 1 (whose session is open).
fn put(now_ns: u64, seq: u64, value: &[u8]) -> Batch {
    let command = Command {
        client_id: 1,
        seq,
        acknowledged_below: 0,
        payload: KvCommand::Put {
            key: b"k".to_vec(),
            value: value.to_vec(),
        }
        .encode(),
    };
    Batch::encode_commands(now_ns, &[command])
}

#[test]
fn a_peer_speaking_in_the_leaders_ballot_is_ignored() {
    let (mut cluster, l) = elected();
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    let ballot = cluster.nodes[l].replica.promised_ballot();
    let slot = cluster.nodes[l].replica.commit_point().next();
    let now = cluster.now_ns;
    cluster.nodes[l]
        .replica
        .propose(put(now, 5, b"real"))
        .unwrap();
    cluster.pump(); // accepted everywhere, committed at the leader only
    for target in [l, f] {
        cluster.nodes[target].replica.on_message(
            id(other),
            Message::Accept {
                ballot,
                first_slot: slot,
                batches: vec![put(now, 5, b"forged")],
                commit_point: Slot(0),
            },
        );
    }
    settle(&mut cluster);
    for node in &cluster.nodes {
        assert!(node.replica.commit_point() >= slot);
        assert!(!node.store_lost);
        assert_eq!(node.store.machine().value(b"k"), Some(&b"real"[..]));
    }
}

#[test]
fn a_promise_at_the_top_of_the_slot_space_is_ignored_by_a_candidate() {
    let mut cluster = Cluster::new();
    // Time passes with nothing delivered, until someone campaigns.
    let candidate = loop {
        cluster.tick(10 * MS);
        if let Some(i) = cluster
            .nodes
            .iter()
            .position(|n| n.replica.role() == Role::Candidate)
        {
            break i;
        }
        assert!(cluster.now_ns < 2_000 * MS, "nobody campaigned");
    };
    let ballot = cluster.nodes[candidate].replica.promised_ballot();
    let peer = (candidate + 1) % 3;
    cluster.nodes[candidate].replica.on_message(
        id(peer),
        Message::Promise {
            ballot,
            from_slot: Slot(1),
            accepted: vec![AcceptedEntry {
                slot: Slot(u64::MAX),
                ballot: Ballot {
                    round: u64::MAX,
                    node: NodeId(0),
                },
                batch: Batch::noop(),
            }],
            commit_point: Slot(u64::MAX),
            snapshot_slot: Slot(u64::MAX),
        },
    );
    assert_eq!(cluster.nodes[candidate].replica.role(), Role::Candidate);
    settle(&mut cluster);
    assert!(cluster.leader().is_some());
}

#[test]
fn client_commands_at_the_edges_of_their_numbers() {
    let mut store = Replicated::new(KvMachine::new(), session_config());
    let put = KvCommand::Put {
        key: Vec::new(),
        value: vec![0; 4096],
    }
    .encode();
    let edges = [
        (7, 0, u64::MAX),            // open, with a nonsense mark
        (7, u64::MAX, u64::MAX),     // the last sequence number
        (7, u64::MAX, u64::MAX),     // and its retry
        (7, 3, u64::MAX),            // below the mark
        (8, 5, 0),                   // a session never opened
        (u64::MAX, 0, 0),            // the last client id opens
        (u64::MAX, 1, 9),            // mark above the sequence number
        (u64::MAX, u64::MAX - 1, 1), // far beyond the window
        (0, 0, 0),                   // client id 0
        (0, 1, 0),                   // mark 0
    ];
    for (i, (client_id, seq, acknowledged_below)) in edges.into_iter().enumerate() {
        let command = Command {
            client_id,
            seq,
            acknowledged_below,
            payload: put.clone(),
        };
        let slot = Slot(u64::try_from(i).unwrap() + 1);
        let outcomes = store.apply(slot, &Batch::encode_commands(u64::MAX, &[command]));
        assert_eq!(outcomes.len(), 1);
    }
    // Time runs out for every session at the top of the clock.
    let late = Command {
        client_id: 7,
        seq: 1,
        acknowledged_below: 1,
        payload: vec![0xff; 3],
    };
    let outcomes = store.apply(Slot(11), &Batch::encode_commands(u64::MAX, &[late]));
    assert_eq!(outcomes.len(), 1);
    let mut other = Replicated::new(KvMachine::new(), session_config());
    other.restore(&store.snapshot()).unwrap();
}
