//! The wire module: protocol numbers, batches and replica messages.
//!
//! Every type here crosses a process boundary (network or disk), so integers
//! are fixed width and every protocol number has its own newtype: swapping a
//! slot and a ballot does not compile.
//!
//! Invariants:
//! - A [`Batch`] never changes after it is built; clones share its bytes.
//! - A [`Batch`]'s bytes start on a 16-byte boundary, so an rkyv archive inside
//!   it can be accessed in place.
//! - [`Ballot`]s are totally ordered by (round, node id); two proposers never
//!   share a ballot because the node id is part of it.

use std::fmt;
use std::sync::Arc;

use rkyv::util::AlignedVec;

/// A replica's identity, a small integer 1..=N given in the configuration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u8);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A log position: the index of one Paxos instance. Slot 0 is never used for
/// a value; it stands for "nothing yet" in commit points.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Slot(pub u64);

impl Slot {
    /// The slot after this one.
    ///
    /// # Panics
    /// On overflow of the u64 slot space (never reached in practice).
    #[must_use]
    pub fn next(self) -> Slot {
        Slot(
            self.0
                .checked_add(1)
                .expect("slot space is u64; it does not run out"),
        )
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A Paxos ballot (proposal number): a round and the proposer's node id,
/// ordered by round first. Ballot zero (round 0) is below every real ballot
/// and means "no promise / nothing accepted".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Ballot {
    /// The round; a candidate picks one above every round it has seen.
    pub round: u64,
    /// The proposer that owns this ballot.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot below every real ballot.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round, self.node.0)
    }
}

/// A client's session identity. Clients choose it (at random, 64 bits) and
/// open the session with a command of sequence number zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ClientId(pub u64);

/// A command's sequence number within its client session; the first command
/// after opening is 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Seq(pub u64);

/// The rising number that tags the persist items of one `Ready`: once the
/// driver has made them durable it reports that number back.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PersistSeq(pub u64);

/// The commands of one slot: an immutable, reference-counted, 16-byte
/// aligned byte buffer. The replica, the transport and the log carry it as
/// opaque bytes and never re-encode it; an empty batch is a no-op.
#[derive(Clone, Default)]
pub struct Batch {
    bytes: Arc<AlignedVec<16>>,
}

impl Batch {
    /// The empty batch: the no-op a new leader fills holes with.
    #[must_use]
    pub fn noop() -> Batch {
        Batch::default()
    }

    /// Wraps bytes that are already aligned (an rkyv archive), without a copy.
    #[must_use]
    pub fn from_aligned(bytes: AlignedVec<16>) -> Batch {
        Batch {
            bytes: Arc::new(bytes),
        }
    }

    /// Copies arbitrary bytes (for example a misaligned receive) into a new batch.
    #[must_use]
    pub fn copy_from_slice(bytes: &[u8]) -> Batch {
        let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        Batch::from_aligned(aligned)
    }

    /// The batch's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for the no-op batch.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// True when both handles share one buffer (a clone, not a copy).
    #[must_use]
    pub fn shares_buffer_with(&self, other: &Batch) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes)
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        self.shares_buffer_with(other) || self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Batch {}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch({} bytes)", self.len())
    }
}

/// One client command as it travels in a batch. The payload is opaque: only
/// the state machine reads it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct Command {
    /// The client session.
    pub client_id: u64,
    /// The command's sequence number in its session; 0 opens the session.
    pub seq: u64,
    /// Every sequence number below this one has been answered to the client,
    /// so the session table may forget their results.
    pub acknowledged_below: u64,
    /// The state machine's request bytes.
    pub payload: Vec<u8>,
}

/// The archived layout of a batch: the leader's clock when it built the
/// batch (sessions expire deterministically against it) and the commands.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct BatchBody {
    /// The proposing leader's clock in nanoseconds when it built the batch.
    pub proposed_at_ns: u64,
    /// The commands, applied in this order.
    pub commands: Vec<Command>,
}

/// An error decoding a batch that came from outside.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum BatchError {
    /// The bytes are not a valid archived [`BatchBody`].
    #[error("batch of {length} bytes failed validation: {reason}")]
    Invalid {
        /// The batch's length in bytes.
        length: usize,
        /// What bytecheck reported.
        reason: String,
    },
}

impl Batch {
    /// Archives a batch body into one contiguous batch: the leader does this
    /// once per slot; nobody re-encodes it afterwards.
    #[must_use]
    pub fn encode(body: &BatchBody) -> Batch {
        Batch::encode_commands(body.proposed_at_ns, &body.commands)
    }

    /// Archives borrowed commands into one contiguous batch (the same layout
    /// as [`BatchBody`]), into a buffer sized up front so it grows once.
    ///
    /// # Panics
    /// Only if rkyv fails to serialize into memory, which it does not for
    /// these plain types.
    #[must_use]
    pub fn encode_commands(proposed_at_ns: u64, commands: &[Command]) -> Batch {
        let payload_bytes: usize = commands
            .iter()
            .map(|command| command.payload.len().next_multiple_of(8))
            .sum();
        let capacity = 64 + commands.len() * size_of::<ArchivedCommand>() + payload_bytes;
        let body = BorrowedBody {
            proposed_at_ns,
            commands,
        };
        let bytes = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(
            &body,
            AlignedVec::<16>::with_capacity(capacity),
        )
        .expect("serializing plain integers and byte vectors into memory cannot fail");
        Batch::from_aligned(bytes)
    }

    /// Validates the batch and gives access to its archived commands in place.
    ///
    /// # Errors
    /// [`BatchError::Invalid`] when the bytes are not an archived batch. The
    /// no-op batch is not an archive; check [`Batch::is_empty`] first.
    pub fn access(&self) -> Result<&ArchivedBatchBody, BatchError> {
        rkyv::access::<ArchivedBatchBody, rkyv::rancor::Error>(self.as_bytes()).map_err(|error| {
            BatchError::Invalid {
                length: self.len(),
                reason: error.to_string(),
            }
        })
    }
}

/// A value an acceptor has accepted: the slot, the ballot it was accepted
/// in, and the batch. In a promise it tells the new leader what may already
/// be chosen; on disk it is one acceptor record.
#[derive(Clone, PartialEq, Eq, Debug)]
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
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Snapshot {
    /// The last slot the snapshot includes.
    pub slot: Slot,
    /// The encoded state machine and session table.
    pub bytes: Batch,
}

/// The messages replicas exchange. Each names the sender's ballot where it
/// has one; the transport adds the sender's node id.
#[derive(Clone, PartialEq, Eq, Debug)]
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
    /// votes) and reports the values it holds from `from_slot` on.
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

/// A batch body over borrowed commands: archives exactly as [`BatchBody`].
struct BorrowedBody<'a> {
    proposed_at_ns: u64,
    commands: &'a [Command],
}

impl rkyv::Archive for BorrowedBody<'_> {
    type Archived = ArchivedBatchBody;
    type Resolver = rkyv::vec::VecResolver;

    fn resolve(&self, resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
        rkyv::munge::munge!(let ArchivedBatchBody { proposed_at_ns, commands } = out);
        self.proposed_at_ns.resolve((), proposed_at_ns);
        rkyv::vec::ArchivedVec::resolve_from_len(self.commands.len(), resolver, commands);
    }
}

impl<S> rkyv::Serialize<S> for BorrowedBody<'_>
where
    S: rkyv::rancor::Fallible + rkyv::ser::Allocator + rkyv::ser::Writer + ?Sized,
    Command: rkyv::Serialize<S, Archived = ArchivedCommand>,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        rkyv::vec::ArchivedVec::serialize_from_slice(self.commands, serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(count: u64) -> Vec<Command> {
        (0..count)
            .map(|index| Command {
                client_id: index,
                seq: index + 1,
                acknowledged_below: index,
                payload: vec![index as u8; index as usize % 40],
            })
            .collect()
    }

    #[test]
    fn a_batch_round_trips_through_its_archive_in_place() {
        let body = BatchBody {
            proposed_at_ns: 42,
            commands: commands(100),
        };
        let batch = Batch::encode(&body);
        assert_eq!(batch.as_bytes().as_ptr() as usize % 16, 0);
        let archived = batch.access().expect("a batch we built validates");
        assert_eq!(archived.proposed_at_ns.to_native(), 42);
        assert_eq!(archived.commands.len(), 100);
        for (archived, command) in archived.commands.iter().zip(&body.commands) {
            assert_eq!(archived.client_id.to_native(), command.client_id);
            assert_eq!(archived.seq.to_native(), command.seq);
            assert_eq!(
                archived.acknowledged_below.to_native(),
                command.acknowledged_below
            );
            assert_eq!(archived.payload.as_slice(), command.payload.as_slice());
        }
    }

    #[test]
    fn borrowed_and_owned_encodings_are_identical() {
        let body = BatchBody {
            proposed_at_ns: 7,
            commands: commands(33),
        };
        let owned = rkyv::to_bytes::<rkyv::rancor::Error>(&body).expect("serializes");
        assert_eq!(
            Batch::encode_commands(7, &body.commands).as_bytes(),
            owned.as_slice()
        );
    }

    #[test]
    fn garbage_fails_validation_without_panicking() {
        for length in [0usize, 1, 7, 16, 64, 333] {
            let garbage: Vec<u8> = (0..length).map(|index| (index * 131 % 251) as u8).collect();
            let batch = Batch::copy_from_slice(&garbage);
            let _ = batch.access();
        }
        assert!(Batch::copy_from_slice(&[0xFF; 32]).access().is_err());
    }

    #[test]
    fn clones_share_the_buffer_and_ballots_order_by_round_then_node() {
        let batch = Batch::copy_from_slice(b"abc");
        assert!(batch.clone().shares_buffer_with(&batch));
        assert!(Batch::noop().is_empty());
        let low = Ballot {
            round: 1,
            node: NodeId(9),
        };
        let high = Ballot {
            round: 2,
            node: NodeId(1),
        };
        assert!(low < high && Ballot::ZERO < low);
        assert!(
            Ballot {
                round: 2,
                node: NodeId(2)
            } > high
        );
    }
}
