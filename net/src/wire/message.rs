//! The messages replicas exchange, and their archived (wire) forms.
//!
//! A received message is read from its archived form in place; turning it
//! into a [`Message`] copies the small fixed fields and hands every batch on
//! as a range of the frame's buffer (no copy of a payload).

use super::{Ballot, Batch, Kind, Slot};
use crate::bytes::{SharedBytes, ALIGNMENT};

/// A value an acceptor has accepted: the slot, the ballot it was accepted
/// in, and the batch. In a promise it tells the new leader what may already
/// be chosen; on disk it is one acceptor record.
#[derive(Clone, PartialEq, Eq, Debug, rkyv::Archive, rkyv::Serialize)]
#[rkyv(derive(Debug))]
pub struct AcceptedEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot the value was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub batch: Batch,
}

/// A state machine snapshot (session table included) taken after applying
/// every slot up to and including `slot`. Its bytes are opaque to the
/// replica, which only stores and ships them.
#[derive(Clone, PartialEq, Eq, Debug, rkyv::Archive, rkyv::Serialize)]
#[rkyv(derive(Debug))]
pub struct Snapshot {
    /// The last slot the snapshot includes.
    pub slot: Slot,
    /// The encoded state machine and session table.
    pub bytes: Batch,
}

/// The messages replicas exchange. Each names the sender's ballot where it
/// has one; the transport adds the sender's node id.
#[derive(Clone, PartialEq, Eq, Debug, rkyv::Archive, rkyv::Serialize)]
#[rkyv(derive(Debug))]
pub enum Message {
    /// Phase 1a: a candidate asks for a promise covering every slot from
    /// `from_slot` onward.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The first slot the candidate does not know to be chosen.
        from_slot: Slot,
    },
    /// Phase 1b: the acceptor promises to accept nothing below `ballot` and
    /// reports every value it accepted at or above `from_slot`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// Echo of the prepare's `from_slot`.
        from_slot: Slot,
        /// The acceptor's last accepted value per slot at or above `from_slot`.
        accepted: Vec<AcceptedEntry>,
        /// The acceptor's commit point: every slot up to it is chosen.
        commit_point: Slot,
        /// The acceptor's snapshot slot: it no longer holds the values of
        /// slots up to here, so a candidate whose `from_slot` is not above it
        /// cannot learn them from this promise.
        snapshot_slot: Slot,
    },
    /// A rejection: the acceptor has promised `promised`, above the ballot of
    /// the message it refuses. A leader or candidate that sees it steps down.
    Reject {
        /// The ballot the refused message carried.
        ballot: Ballot,
        /// The acceptor's promised ballot.
        promised: Ballot,
    },
    /// Phase 2a: the leader asks to accept `batches[i]` at `first_slot + i`.
    /// The leader's commit point rides along.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot of the first batch.
        first_slot: Slot,
        /// One batch per consecutive slot.
        batches: Vec<Batch>,
        /// The leader's commit point.
        commit_point: Slot,
    },
    /// Phase 2b: the acceptor has durably accepted the slots
    /// `first_slot .. first_slot + slot_count` in `ballot`.
    Accepted {
        /// The ballot accepted in.
        ballot: Ballot,
        /// The first slot accepted.
        first_slot: Slot,
        /// How many consecutive slots.
        slot_count: u64,
        /// The acceptor's commit point, so the leader sees who lags.
        commit_point: Slot,
    },
    /// The leader's keep-alive: it asserts leadership, carries the commit
    /// point, and asks for an acknowledgement that renews the lease and
    /// confirms read indexes.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's commit point.
        commit_point: Slot,
        /// Identifies the heartbeat round for the lease and read confirmation.
        round: u64,
    },
    /// An acceptor's answer to a heartbeat: it has promised nothing above
    /// `ballot`, and grants the lease for `round`.
    HeartbeatAck {
        /// The leader's ballot, echoed.
        ballot: Ballot,
        /// The heartbeat round, echoed.
        round: u64,
        /// The acceptor's commit point.
        commit_point: Slot,
    },
    /// Catch-up: chosen values, one per consecutive slot from `first_slot`,
    /// for a replica that lacks them.
    Chosen {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot of the first batch.
        first_slot: Slot,
        /// The chosen batches.
        batches: Vec<Batch>,
        /// The leader's commit point.
        commit_point: Slot,
    },
    /// A replica that lacks chosen values asks for those after `commit_point`.
    CatchUp {
        /// The asking replica's commit point.
        commit_point: Slot,
    },
    /// Catch-up when the entries were compacted away: the state machine at
    /// `snapshot.slot`; chosen entries after it follow as [`Message::Chosen`].
    InstallSnapshot {
        /// The leader's ballot.
        ballot: Ballot,
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// A replica whose durable state was damaged fences the group before it
    /// may vote again: every other replica promises `fence` (so no value can
    /// be chosen any more at a lower ballot with the damaged replica's lost
    /// votes) and reports the slots it holds.
    RecoveryQuery {
        /// Matches the answers to this query.
        nonce: u64,
        /// The ballot to promise; the damaged replica's own id is in it, and
        /// it never leads with it.
        fence: Ballot,
        /// The first slot the damaged replica does not know chosen.
        from_slot: Slot,
    },
    /// The answer to a [`Message::RecoveryQuery`].
    RecoveryInfo {
        /// The query's nonce.
        nonce: u64,
        /// The answering acceptor's promised ballot: equal to the query's
        /// fence when it promised it (the answer then left only once that
        /// promise was durable), higher when the fence must be raised.
        promised: Ballot,
        /// The answering replica's last accepted value per slot from the
        /// query's `from_slot` on, above `compacted_through`.
        accepted: Vec<AcceptedEntry>,
        /// The answering replica's commit point.
        commit_point: Slot,
        /// The answering replica holds no values up to here (they are chosen
        /// and in its snapshot): the damaged replica must learn them by
        /// catch-up before it may vote.
        compacted_through: Slot,
    },
}

impl Message {
    /// The frame kind this message travels under.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Message::Prepare { .. } => Kind::Prepare,
            Message::Promise { .. } => Kind::Promise,
            Message::Reject { .. } => Kind::Reject,
            Message::Accept { .. } => Kind::Accept,
            Message::Accepted { .. } => Kind::Accepted,
            Message::Heartbeat { .. } => Kind::Heartbeat,
            Message::HeartbeatAck { .. } => Kind::HeartbeatAck,
            Message::Chosen { .. } => Kind::Chosen,
            Message::CatchUp { .. } => Kind::CatchUp,
            Message::InstallSnapshot { .. } => Kind::InstallSnapshot,
            Message::RecoveryQuery { .. } => Kind::RecoveryQuery,
            Message::RecoveryInfo { .. } => Kind::RecoveryInfo,
        }
    }
}

impl ArchivedMessage {
    /// The frame kind of the archived variant.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            ArchivedMessage::Prepare { .. } => Kind::Prepare,
            ArchivedMessage::Promise { .. } => Kind::Promise,
            ArchivedMessage::Reject { .. } => Kind::Reject,
            ArchivedMessage::Accept { .. } => Kind::Accept,
            ArchivedMessage::Accepted { .. } => Kind::Accepted,
            ArchivedMessage::Heartbeat { .. } => Kind::Heartbeat,
            ArchivedMessage::HeartbeatAck { .. } => Kind::HeartbeatAck,
            ArchivedMessage::Chosen { .. } => Kind::Chosen,
            ArchivedMessage::CatchUp { .. } => Kind::CatchUp,
            ArchivedMessage::InstallSnapshot { .. } => Kind::InstallSnapshot,
            ArchivedMessage::RecoveryQuery { .. } => Kind::RecoveryQuery,
            ArchivedMessage::RecoveryInfo { .. } => Kind::RecoveryInfo,
        }
    }

    /// Reads the archived message into a [`Message`]. `body` must be the
    /// frame body this archive lies in: every batch becomes a range of it
    /// (no copy) when it lies aligned there, and is copied otherwise (a
    /// sender that misplaced it; never the case for our own encoder).
    #[must_use]
    pub fn to_message(&self, body: &SharedBytes) -> Message {
        let batches = |archived: &rkyv::vec::ArchivedVec<rkyv::vec::ArchivedVec<u8>>| {
            archived
                .iter()
                .map(|batch| batch_in(body, batch))
                .collect::<Vec<_>>()
        };
        match self {
            ArchivedMessage::Prepare { ballot, from_slot } => Message::Prepare {
                ballot: ballot.to_native(),
                from_slot: from_slot.to_native(),
            },
            ArchivedMessage::Promise {
                ballot,
                from_slot,
                accepted,
                commit_point,
                snapshot_slot,
            } => Message::Promise {
                ballot: ballot.to_native(),
                from_slot: from_slot.to_native(),
                accepted: accepted_entries(body, accepted),
                commit_point: commit_point.to_native(),
                snapshot_slot: snapshot_slot.to_native(),
            },
            ArchivedMessage::Reject { ballot, promised } => Message::Reject {
                ballot: ballot.to_native(),
                promised: promised.to_native(),
            },
            ArchivedMessage::Accept {
                ballot,
                first_slot,
                batches: archived,
                commit_point,
            } => Message::Accept {
                ballot: ballot.to_native(),
                first_slot: first_slot.to_native(),
                batches: batches(archived),
                commit_point: commit_point.to_native(),
            },
            ArchivedMessage::Accepted {
                ballot,
                first_slot,
                slot_count,
                commit_point,
            } => Message::Accepted {
                ballot: ballot.to_native(),
                first_slot: first_slot.to_native(),
                slot_count: slot_count.to_native(),
                commit_point: commit_point.to_native(),
            },
            _ => self.to_message_rest(body),
        }
    }

    fn to_message_rest(&self, body: &SharedBytes) -> Message {
        match self {
            ArchivedMessage::Heartbeat {
                ballot,
                commit_point,
                round,
            } => Message::Heartbeat {
                ballot: ballot.to_native(),
                commit_point: commit_point.to_native(),
                round: round.to_native(),
            },
            ArchivedMessage::HeartbeatAck {
                ballot,
                round,
                commit_point,
            } => Message::HeartbeatAck {
                ballot: ballot.to_native(),
                round: round.to_native(),
                commit_point: commit_point.to_native(),
            },
            ArchivedMessage::Chosen {
                ballot,
                first_slot,
                batches,
                commit_point,
            } => Message::Chosen {
                ballot: ballot.to_native(),
                first_slot: first_slot.to_native(),
                batches: batches.iter().map(|batch| batch_in(body, batch)).collect(),
                commit_point: commit_point.to_native(),
            },
            ArchivedMessage::CatchUp { commit_point } => Message::CatchUp {
                commit_point: commit_point.to_native(),
            },
            ArchivedMessage::InstallSnapshot { ballot, snapshot } => Message::InstallSnapshot {
                ballot: ballot.to_native(),
                snapshot: Snapshot {
                    slot: snapshot.slot.to_native(),
                    bytes: batch_in(body, &snapshot.bytes),
                },
            },
            ArchivedMessage::RecoveryQuery {
                nonce,
                fence,
                from_slot,
            } => Message::RecoveryQuery {
                nonce: nonce.to_native(),
                fence: fence.to_native(),
                from_slot: from_slot.to_native(),
            },
            ArchivedMessage::RecoveryInfo {
                nonce,
                promised,
                accepted,
                commit_point,
                compacted_through,
            } => Message::RecoveryInfo {
                nonce: nonce.to_native(),
                promised: promised.to_native(),
                accepted: accepted_entries(body, accepted),
                commit_point: commit_point.to_native(),
                compacted_through: compacted_through.to_native(),
            },
            ArchivedMessage::Prepare { .. }
            | ArchivedMessage::Promise { .. }
            | ArchivedMessage::Reject { .. }
            | ArchivedMessage::Accept { .. }
            | ArchivedMessage::Accepted { .. } => {
                unreachable!("to_message handles the first five variants itself")
            }
        }
    }
}

/// The batch whose archived bytes lie in `body`: a range of it when aligned
/// there, else a copy.
fn batch_in(body: &SharedBytes, archived: &rkyv::vec::ArchivedVec<u8>) -> Batch {
    let bytes = archived.as_slice();
    let base = body.as_slice().as_ptr() as usize;
    let address = bytes.as_ptr() as usize;
    let inside = address >= base && address + bytes.len() <= base + body.len();
    if bytes.is_empty() {
        return Batch::noop();
    }
    if inside && address.is_multiple_of(ALIGNMENT) {
        let start = address - base;
        Batch::from_shared(body.subrange(start, start + bytes.len()))
    } else {
        Batch::copy_from_slice(bytes)
    }
}

/// Reads archived accepted entries, each batch a range of `body` where it
/// lies aligned (see [`ArchivedMessage::to_message`]).
fn accepted_entries(
    body: &SharedBytes,
    archived: &rkyv::vec::ArchivedVec<ArchivedAcceptedEntry>,
) -> Vec<AcceptedEntry> {
    archived
        .iter()
        .map(|entry| AcceptedEntry {
            slot: entry.slot.to_native(),
            ballot: entry.ballot.to_native(),
            batch: batch_in(body, &entry.batch),
        })
        .collect()
}
