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
    let one_batch = || batch(1, payload_bytes);
    match kind {
        Kind::Prepare => Box::new(Message::Prepare {
            ballot: BALLOT,
            from_slot: Slot(10),
        }),
        Kind::Promise => Box::new(Message::Promise {
            ballot: BALLOT,
            from_slot: Slot(10),
            accepted: vec![AcceptedEntry {
                slot: Slot(10),
                ballot: BALLOT,
                batch: one_batch(),
            }],
            commit_point: Slot(9),
            snapshot_slot: Slot(0),
        }),
        Kind::Reject => Box::new(Message::Reject {
            ballot: BALLOT,
            promised: Ballot {
                round: 4,
                node: NodeId(2),
            },
        }),
        Kind::Accept => Box::new(Message::Accept {
            ballot: BALLOT,
            first_slot: Slot(11),
            batches: vec![one_batch()],
            commit_point: Slot(10),
        }),
        Kind::Accepted => Box::new(Message::Accepted {
            ballot: BALLOT,
            first_slot: Slot(11),
            slot_count: 1,
            commit_point: Slot(10),
        }),
        Kind::Heartbeat => Box::new(Message::Heartbeat {
            ballot: BALLOT,
            commit_point: Slot(10),
            round: 5,
        }),
        Kind::HeartbeatAck => Box::new(Message::HeartbeatAck {
            ballot: BALLOT,
            round: 5,
            commit_point: Slot(10),
        }),
        Kind::Chosen => Box::new(Message::Chosen {
            ballot: BALLOT,
            first_slot: Slot(11),
            batches: vec![one_batch(), Batch::noop()],
            commit_point: Slot(12),
        }),
        Kind::CatchUp => Box::new(Message::CatchUp {
            commit_point: Slot(3),
        }),
        Kind::InstallSnapshot => Box::new(Message::InstallSnapshot {
            ballot: BALLOT,
            snapshot: Snapshot {
                slot: Slot(100),
                bytes: Batch::copy_from_slice(&vec![9u8; payload_bytes]),
            },
        }),
        Kind::RecoveryQuery => Box::new(Message::RecoveryQuery {
            nonce: 77,
            fence: BALLOT,
        }),
        Kind::RecoveryInfo => Box::new(Message::RecoveryInfo {
            nonce: 77,
            promised: BALLOT,
            last_slot: Slot(12),
            commit_point: Slot(10),
        }),
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
