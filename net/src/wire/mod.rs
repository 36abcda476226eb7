//! The wire module: protocol numbers, batches, replica messages, client
//! requests and responses, and the frame kinds they travel under.
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
//! - Every message type has exactly one [`Kind`]; a frame's header kind and its
//!   archived body agree (the decoder checks it).

use std::fmt;

mod batch;
mod client;
mod kind;
mod message;

pub use batch::{ArchivedBatchBody, ArchivedCommand, Batch, BatchBody, BatchError, Command};
pub use client::{
    ArchivedClientRequest, ArchivedClientResponse, ArchivedHello, ArchivedOperation,
    ArchivedOutcome, ClientRequest, ClientResponse, Hello, Operation, Outcome,
};
pub use kind::Kind;
pub use message::{
    AcceptedEntry, ArchivedAcceptedEntry, ArchivedMessage, ArchivedSnapshot, Message, Snapshot,
};

/// A replica's identity, a small integer 1..=N given in the configuration.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct NodeId(pub u8);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A log position: the index of one Paxos instance. Slot 0 is never used for
/// a value; it stands for "nothing yet" in commit points.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
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
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
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
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct ClientId(pub u64);

/// A command's sequence number within its client session; the first command
/// after opening is 1.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct Seq(pub u64);

/// The rising number that tags the persist items of one `Ready`: once the
/// driver has made them durable it reports that number back.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct PersistSeq(pub u64);

/// Archived protocol numbers read back into their native newtypes.
impl ArchivedNodeId {
    /// The native node id.
    #[must_use]
    pub fn to_native(&self) -> NodeId {
        NodeId(self.0)
    }
}

impl ArchivedSlot {
    /// The native slot.
    #[must_use]
    pub fn to_native(&self) -> Slot {
        Slot(self.0.to_native())
    }
}

impl ArchivedBallot {
    /// The native ballot.
    #[must_use]
    pub fn to_native(&self) -> Ballot {
        Ballot {
            round: self.round.to_native(),
            node: self.node.to_native(),
        }
    }
}

impl ArchivedClientId {
    /// The native client id.
    #[must_use]
    pub fn to_native(&self) -> ClientId {
        ClientId(self.0.to_native())
    }
}

impl ArchivedSeq {
    /// The native sequence number.
    #[must_use]
    pub fn to_native(&self) -> Seq {
        Seq(self.0.to_native())
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
