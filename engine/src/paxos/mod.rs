//! The sans-IO Multi-Paxos replica.
//!
//! [`Replica`] never reads a clock, a socket, a file or a random source: a
//! driver (the simulator, later the runtime) feeds it inputs
//! (`on_message`, `on_tick`, `propose`, `read`, `on_persisted`,
//! `on_snapshot`) and drains its outputs as one [`Ready`] value.
//!
//! # The driver's contract
//! 1. Call [`Replica::on_tick`] with the local monotonic clock before the
//!    other inputs of a loop turn; every input is judged at that time.
//! 2. After the inputs, call [`Replica::ready`] and:
//!    - send `messages_now` at once;
//!    - write `persist` items to durable storage in order (a crash may keep
//!      any prefix of them, never a later item without the earlier ones),
//!      then report [`Replica::on_persisted`] with `persist_seq`. One
//!      exception: a snapshot item may become durable before the items
//!      ahead of it (a log installs a snapshot file at once, while those
//!      items wait for their group commit), since a snapshot holds only
//!      chosen slots and vouches for no vote or promise; `on_persisted`
//!      still waits for every item up to `persist_seq`;
//!    - send `messages_after_persist` only once everything up to
//!      `persist_seq` is durable (promises and accepteds live here);
//!    - restore `snapshot_to_restore` into the state machine, then apply
//!      `committed` in order;
//!    - serve each of `reads_ready` once the state machine has applied every
//!      slot up to its `read_slot`.
//! 3. Now and then take a state machine snapshot at the applied slot and give
//!    it to [`Replica::on_snapshot`], which lets the log be compacted.

#![forbid(unsafe_code)]

mod config;
mod replica;

#[cfg(feature = "sim")]
pub use config::Bugs;
pub use config::{Config, ConfigError};
pub use replica::Replica;

use synod_net::wire::{AcceptedEntry, Ballot, Batch, Message, NodeId, PersistSeq, Slot, Snapshot};

/// A message for one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The receiving replica.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// Acceptor metadata that must survive a crash: the promised ballot (an
/// acceptor's phase-1 vow) and the commit point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// No ballot below this will be accepted or promised.
    pub promised: Ballot,
    /// Every slot up to here is chosen and its value is in the log or snapshot.
    pub commit_point: Slot,
    /// The replica is recovering from damaged state and must not vote until
    /// it has finished, even if a later restart finds its log intact.
    pub recovering: bool,
}

/// One thing to make durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersistItem {
    /// An acceptor record: a later record for the same slot supersedes it.
    Accepted(AcceptedEntry),
    /// The acceptor metadata, replacing the previous copy.
    Metadata(Metadata),
    /// A snapshot; records at or below its slot may be dropped once it is durable.
    Snapshot(Snapshot),
}

/// A committed slot, to apply to the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The slot.
    pub slot: Slot,
    /// The chosen batch (empty for a no-op).
    pub batch: Batch,
}

/// A driver-chosen identity for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadId(pub u64);

/// A read that may now be served: it is linearizable once the state machine
/// has applied every slot up to `read_slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadReady {
    /// The read.
    pub read_id: ReadId,
    /// Serve it from a state machine that has applied at least this slot.
    pub read_slot: Slot,
}

/// Why a proposal was refused.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProposeError {
    /// Only the leader proposes; the hint names who may be.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The replica this one believes leads, if any.
        leader_hint: Option<NodeId>,
    },
    /// The window and the proposal queue are full: retry later.
    #[error("busy: the proposal queue is full")]
    Busy,
}

/// Why a read was refused or abandoned.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// Only the leader serves linearizable reads; the hint names who may be.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The replica this one believes leads, if any.
        leader_hint: Option<NodeId>,
    },
    /// Too many reads wait for a quorum round: retry later.
    #[error("busy: too many pending reads")]
    Busy,
}

/// The replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts and learns from a leader.
    Follower,
    /// Runs phase 1 with its own ballot.
    Candidate,
    /// Won phase 1: proposes, commits, serves reads.
    Leader,
    /// Lost durable state it may have voted with: learns only, votes not,
    /// until it has caught up past everything it may have accepted.
    NonVoter,
}

/// What a replica recovered from durable storage at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last durable metadata.
    pub metadata: Metadata,
    /// The last durable record per slot, in any order.
    pub accepted: Vec<AcceptedEntry>,
    /// The last durable snapshot.
    pub snapshot: Option<Snapshot>,
    /// Recovery dropped something that may have been synced (a torn or
    /// corrupt record): the replica must rejoin as a non-voter. It records
    /// that in its metadata with its first persist; a driver that repairs
    /// the damage (cuts a torn tail) must wait until that is durable.
    pub damaged: bool,
}

/// The replica's outputs since the last call to [`Replica::ready`].
#[derive(Debug, Default)]
pub struct Ready {
    /// Messages that may leave at once.
    pub messages_now: Vec<Outgoing>,
    /// Messages that may leave only once everything up to `persist_seq` is durable.
    pub messages_after_persist: Vec<Outgoing>,
    /// Items to make durable, in order.
    pub persist: Vec<PersistItem>,
    /// The persist sequence number covering every item handed out so far
    /// (this `Ready`'s and earlier ones); report it to `on_persisted`.
    pub persist_seq: PersistSeq,
    /// A snapshot to restore into the state machine before applying `committed`.
    pub snapshot_to_restore: Option<Snapshot>,
    /// Newly committed slots, in slot order, each exactly once.
    pub committed: Vec<Committed>,
    /// Reads that may be served.
    pub reads_ready: Vec<ReadReady>,
    /// Reads abandoned (the replica stopped leading).
    pub reads_failed: Vec<(ReadId, ReadError)>,
}

impl Ready {
    /// True when there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages_now.is_empty()
            && self.messages_after_persist.is_empty()
            && self.persist.is_empty()
            && self.snapshot_to_restore.is_none()
            && self.committed.is_empty()
            && self.reads_ready.is_empty()
            && self.reads_failed.is_empty()
    }
}
