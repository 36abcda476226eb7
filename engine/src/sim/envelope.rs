//! What travels through the simulated network: replica messages, client
//! requests and their replies.

use crate::sm::{QueryError, SessionError};
use crate::wire::{Command, Message, NodeId};

/// Names one attempt of one client operation, so a client can tell a
/// reply to its current attempt from a late one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RequestId {
    /// The client's index.
    pub(super) client: usize,
    /// The client's operation counter.
    pub(super) operation: u64,
    /// The attempt within the operation.
    pub(super) attempt: u32,
}

/// What a client asks a replica.
#[derive(Clone, Debug)]
pub(super) enum RequestBody {
    /// A command for the log (a session open or a write).
    Write(Command),
    /// A linearizable read: the workload's query bytes.
    Read { query: Vec<u8> },
}

/// A client's request.
#[derive(Clone, Debug)]
pub(super) struct ClientRequest {
    /// Which attempt of which operation.
    pub(super) id: RequestId,
    /// The request.
    pub(super) body: RequestBody,
}

/// What a replica answers.
#[derive(Clone, Debug)]
pub(super) enum ReplyBody {
    /// The command was applied (or refused by the session table).
    Written(Result<Vec<u8>, SessionError>),
    /// The read's answer from the machine's `query`.
    Read(Result<Vec<u8>, QueryError>),
    /// Not the leader: try the hinted replica.
    Redirect(Option<NodeId>),
    /// The leader's queue is full, or it could not serve the read now.
    Busy,
}

/// A replica's reply to a client.
#[derive(Clone, Debug)]
pub(super) struct ClientReply {
    /// The request it answers.
    pub(super) id: RequestId,
    /// The answer.
    pub(super) body: ReplyBody,
}

/// One message in flight.
#[derive(Clone, Debug)]
pub(super) enum Envelope {
    /// Between replicas.
    Peer {
        from: NodeId,
        to: NodeId,
        message: Message,
    },
    /// From a client to a replica.
    Request { to: NodeId, request: ClientRequest },
    /// From a replica to a client.
    Reply { reply: ClientReply },
}
