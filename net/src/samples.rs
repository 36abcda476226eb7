//! Sample values of every frame kind, for tests, benchmarks and fuzz seeds.

use crate::frame::Encode;
use crate::wire::{
    AcceptedEntry, Ballot, Batch, BatchBody, ClientId, ClientRequest, ClientResponse, Command,
    Hello, Kind, Message, NodeId, Operation, Outcome, Seq, Slot, Snapshot,
};

/// A batch of `commands` commands with `payload_bytes` bytes of payload each.
#[must_use]
pub fn batch(commands: usize, payload_bytes: usize) -> Batch {
    let commands: Vec<Command> = (0..commands as u64)
        .map(|index| Command {
            client_id: 7,
            seq: index + 1,
            acknowledged_below: index,
            payload: vec![(index % 251) as u8; payload_bytes],
        })
        .collect();
    Batch::encode(&BatchBody {
        proposed_at_ns: 1_000,
        commands,
    })
}

/// A boxed value of any frame kind.
pub type Sample = Box<dyn EncodeDebug>;

/// [`Encode`] plus `Debug`, so samples can be printed.
pub trait EncodeDebug: Encode + std::fmt::Debug {}
impl<T: Encode + std::fmt::Debug> EncodeDebug for T {}

const BALLOT: Ballot = Ballot {
    round: 3,
    node: NodeId(1),
};

/// One sample of `kind` whose batches or payloads carry about `payload_bytes`.
#[must_use]
pub fn sample(kind: Kind, payload_bytes: usize) -> Sample {
    match kind {
        Kind::ClientRequest => Box::new(request(1, payload_bytes)),
        Kind::ClientResponse => Box::new(ClientResponse {
            client_id: ClientId(7),
            seq: Seq(1),
            outcome: Outcome::Done {
                payload: vec![5u8; payload_bytes],
            },
        }),
        Kind::Hello => Box::new(Hello {
            cluster_id: 42,
            node: NodeId(1),
            shard: 0,
        }),
        replica => Box::new(replica_sample(replica, payload_bytes)),
    }
}

/// One replica message of `kind`.
///
/// # Panics
/// For a kind that is not a replica message.
#[must_use]
pub fn replica_sample(kind: Kind, payload_bytes: usize) -> Message {
    let one_batch = || batch(1, payload_bytes);
    match kind {
        Kind::Prepare => Message::Prepare {
            ballot: BALLOT,
            from_slot: Slot(10),
        },
        Kind::Promise => Message::Promise {
            ballot: BALLOT,
            from_slot: Slot(10),
            accepted: vec![AcceptedEntry {
                slot: Slot(10),
                ballot: BALLOT,
                batch: one_batch(),
            }],
            commit_point: Slot(9),
            snapshot_slot: Slot(0),
        },
        Kind::Reject => Message::Reject {
            ballot: BALLOT,
            promised: Ballot {
                round: 4,
                node: NodeId(2),
            },
        },
        Kind::Accept => Message::Accept {
            ballot: BALLOT,
            first_slot: Slot(11),
            batches: vec![one_batch()],
            commit_point: Slot(10),
        },
        Kind::Accepted => Message::Accepted {
            ballot: BALLOT,
            first_slot: Slot(11),
            slot_count: 1,
            commit_point: Slot(10),
        },
        Kind::Heartbeat => Message::Heartbeat {
            ballot: BALLOT,
            commit_point: Slot(10),
            round: 5,
        },
        Kind::HeartbeatAck => Message::HeartbeatAck {
            ballot: BALLOT,
            round: 5,
            commit_point: Slot(10),
        },
        Kind::Chosen => Message::Chosen {
            ballot: BALLOT,
            first_slot: Slot(11),
            batches: vec![one_batch(), Batch::noop()],
            commit_point: Slot(12),
        },
        Kind::CatchUp => Message::CatchUp {
            commit_point: Slot(3),
        },
        Kind::InstallSnapshot => Message::InstallSnapshot {
            ballot: BALLOT,
            snapshot: Snapshot {
                slot: Slot(100),
                bytes: Batch::copy_from_slice(&vec![9u8; payload_bytes]),
            },
        },
        Kind::RecoveryQuery => Message::RecoveryQuery {
            nonce: 77,
            fence: BALLOT,
            from_slot: Slot(11),
        },
        Kind::RecoveryInfo => Message::RecoveryInfo {
            nonce: 77,
            promised: BALLOT,
            accepted: vec![AcceptedEntry {
                slot: Slot(11),
                ballot: BALLOT,
                batch: one_batch(),
            }],
            commit_point: Slot(10),
            compacted_through: Slot(4),
        },
        other => panic!("{other:?} is not a replica message"),
    }
}

/// A client request with sequence `seq` and a payload of `payload_bytes`.
#[must_use]
pub fn request(seq: u64, payload_bytes: usize) -> ClientRequest {
    ClientRequest {
        client_id: ClientId(7),
        seq: Seq(seq),
        acknowledged_below: Seq(seq.saturating_sub(1)),
        operation: Operation::Command,
        key: b"key".to_vec(),
        payload: vec![3u8; payload_bytes],
    }
}
