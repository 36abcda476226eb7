//! Batches: the commands of one slot as one immutable aligned archive.

use std::fmt;

use rkyv::ser::WriterExt as _;
use rkyv::util::AlignedVec;
use rkyv::vec::{ArchivedVec, VecResolver};

use crate::bytes::{SharedBytes, ALIGNMENT};

/// The commands of one slot: an immutable, reference-counted, 16-byte
/// aligned byte buffer. The replica, the transport and the log carry it as
/// opaque bytes and never re-encode it; an empty batch is a no-op.
///
/// A batch that arrived in a frame is a range of the receive buffer it
/// arrived in (no copy); it keeps that buffer alive until dropped.
#[derive(Clone, Default)]
pub struct Batch {
    bytes: SharedBytes,
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
            bytes: SharedBytes::from_aligned(bytes),
        }
    }

    /// Wraps a shared aligned range (a batch inside a received frame), without a copy.
    #[must_use]
    pub fn from_shared(bytes: SharedBytes) -> Batch {
        Batch { bytes }
    }

    /// Copies arbitrary bytes (for example a misaligned receive) into a new batch.
    #[must_use]
    pub fn copy_from_slice(bytes: &[u8]) -> Batch {
        Batch {
            bytes: SharedBytes::copy_from_slice(bytes),
        }
    }

    /// The batch's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The batch as a shared range (for handing it on without a copy).
    #[must_use]
    pub fn as_shared(&self) -> &SharedBytes {
        &self.bytes
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

    /// True when both handles are the same bytes in the same buffer (a clone,
    /// not a copy).
    #[must_use]
    pub fn shares_buffer_with(&self, other: &Batch) -> bool {
        self.bytes.same_range(&other.bytes)
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

/// On the wire a batch is an archived byte vector whose bytes start on a
/// 16-byte boundary of the archive, so a receiver can hand them on in place.
impl rkyv::Archive for Batch {
    type Archived = ArchivedVec<u8>;
    type Resolver = VecResolver;

    fn resolve(&self, resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
        ArchivedVec::resolve_from_len(self.len(), resolver, out);
    }
}

impl<S> rkyv::Serialize<S> for Batch
where
    S: rkyv::rancor::Fallible + rkyv::ser::Writer + ?Sized,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        let position = serializer.align(ALIGNMENT)?;
        serializer.write(self.as_bytes())?;
        Ok(VecResolver::from_pos(position))
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
