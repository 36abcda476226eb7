//! Client requests and responses, and the hello that opens every connection.
//!
//! A client pipelines requests on one connection; a response names the
//! (client id, sequence) it answers, so responses may come back in any order.

use super::{ClientId, NodeId, Seq};

/// What a request asks of the replicated state machine.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub enum Operation {
    /// A command: goes through the log and is applied once.
    Command,
    /// A linearizable read: served by the state machine's query once safe.
    Read,
}

/// A client's request. The key routes it to its group; the payload is the
/// state machine's request bytes.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, PartialEq, Eq, Debug)]
#[rkyv(derive(Debug))]
pub struct ClientRequest {
    /// The client session.
    pub client_id: ClientId,
    /// The request's sequence number in its session; 0 opens the session.
    pub seq: Seq,
    /// Every sequence number below this one has been answered to the client.
    pub acknowledged_below: Seq,
    /// Command or read.
    pub operation: Operation,
    /// The routing key: group = crc32c(key) mod groups.
    pub key: Vec<u8>,
    /// The state machine's request bytes.
    pub payload: Vec<u8>,
}

/// How a request ended.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, PartialEq, Eq, Debug)]
#[rkyv(derive(Debug))]
pub enum Outcome {
    /// Applied (or read): the state machine's response bytes.
    Done {
        /// The response bytes.
        payload: Vec<u8>,
    },
    /// This replica does not lead the key's group; retry at `leader` if known.
    NotLeader {
        /// The leader this replica knows of.
        leader: Option<NodeId>,
    },
    /// The proposal queue is full: retry later with the same sequence number.
    Busy,
    /// The session expired; open a new one.
    SessionExpired,
    /// The request was refused, with the reason.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// The answer to one [`ClientRequest`].
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, PartialEq, Eq, Debug)]
#[rkyv(derive(Debug))]
pub struct ClientResponse {
    /// The client session answered.
    pub client_id: ClientId,
    /// The request answered.
    pub seq: Seq,
    /// The outcome.
    pub outcome: Outcome,
}

/// The first frame on every connection: who is calling. Clients send node 0.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[rkyv(derive(Debug))]
pub struct Hello {
    /// The cluster the caller belongs to (0 before a cluster id is known).
    pub cluster_id: u64,
    /// The caller's node id; 0 for a client.
    pub node: NodeId,
    /// The caller's shard.
    pub shard: u16,
}
