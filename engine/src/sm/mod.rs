//! State machines on the log.
//!
//! An embedder implements [`StateMachine`]; the engine wraps it in a
//! [`Replicated`], which holds the one session table beneath every machine
//! (exactly-once for pipelined clients) and applies committed batches to both.
//! [`KvMachine`] is the bundled key-value machine.
//!
//! Everything here is sans-IO and deterministic: time comes only from the
//! leader's timestamp in each batch, and every map that a result or a
//! snapshot depends on is ordered.

#![forbid(unsafe_code)]

mod codec;
pub mod kv;
pub mod session;

pub use kv::{KvCommand, KvError, KvMachine, KvResponse};
pub use session::{CommandOutcome, Replicated, SessionConfig, SessionError};

use crate::wire::Slot;

/// A deterministic state machine that the replicated log drives.
///
/// Every replica applies the same committed payloads in the same slot order,
/// so an implementation must depend on nothing but its state and its
/// arguments: no clock, no randomness, no iteration over a hash map.
pub trait StateMachine {
    /// Applies one committed command's payload at `slot` and returns the
    /// response bytes for the client.
    ///
    /// Bad payload bytes come from a client and must give an error
    /// *response*, never a panic: a panic here would stop every replica.
    fn apply(&mut self, slot: Slot, payload: &[u8]) -> Vec<u8>;

    /// Answers a read-only request from the current state. The engine calls
    /// it only when the replica says the read is safe (a lease or a read
    /// index), so the answer is linearizable.
    ///
    /// # Errors
    /// [`QueryError`] when the request cannot be decoded or is not a read.
    fn query(&self, request: &[u8]) -> Result<Vec<u8>, QueryError>;

    /// Encodes the whole state. Two machines in the same state must give the
    /// same bytes.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot's.
    ///
    /// # Errors
    /// [`SnapshotError`] when the bytes are not a valid snapshot; the machine
    /// must then be left unchanged.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError>;
}

/// Why a read-only request could not be answered.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryError {
    /// The request bytes do not decode.
    #[error("malformed query: {reason}")]
    Malformed {
        /// What was wrong with the bytes.
        reason: String,
    },
    /// The request decodes but cannot be answered without the log (it is
    /// not a read).
    #[error("unsupported query: {reason}")]
    Unsupported {
        /// Which request it was and why it is refused.
        reason: String,
    },
}

/// Why a snapshot could not be restored.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are truncated, inconsistent or not a snapshot at all.
    #[error("malformed snapshot: {reason}")]
    Malformed {
        /// What was wrong with the bytes.
        reason: String,
    },
    /// The snapshot was written by an encoding version this build cannot read.
    #[error("unsupported snapshot version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
}

impl From<codec::DecodeError> for SnapshotError {
    fn from(error: codec::DecodeError) -> SnapshotError {
        SnapshotError::Malformed {
            reason: error.to_string(),
        }
    }
}

impl From<codec::DecodeError> for QueryError {
    fn from(error: codec::DecodeError) -> QueryError {
        QueryError::Malformed {
            reason: error.to_string(),
        }
    }
}
