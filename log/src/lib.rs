//! synod-log: the durable write-ahead log under every replica.
//!
//! An acceptor's record, not a Raft log: a slot may be accepted again at a
//! higher ballot, the later record supersedes the earlier, and recovery
//! returns the last record per slot. See `README.md` in this crate for the
//! format, the back ends and the recovery rules.
//!
//! - [`Log`] appends accepted values and metadata into group commits (one
//!   write and one sync each) over a [`Storage`]: [`FileStorage`] (the
//!   portable back end, `O_DIRECT` + `fdatasync` or `O_DSYNC`) or
//!   [`MemStorage`] (in memory, with fault injection, for the simulator).
//! - [`uring`] runs the same writes through an io_uring the caller owns, or
//!   through a small standalone driver with its own ring.
//! - [`Log::open`] recovers: the longest valid prefix, a damaged flag and a
//!   report, and marks a damaged log `recovering` in its durable metadata
//!   before repairing it; [`peek`] tells what it would recover without
//!   changing anything; [`inspect`] prints it for `synod log inspect`.

pub mod adaptive;
pub mod aligned;
pub mod bench;
mod compaction;
pub mod error;
pub mod format;
mod group;
pub mod inspect;
mod log;
mod recovery;
pub mod report;
pub mod scan;
pub mod storage;
pub mod uring;

pub use aligned::AlignedBuf;
pub use error::{LogError, Result};
pub use format::{CommitSeq, Metadata, SegmentId, BLOCK_BYTES};
pub use log::{CorruptionPolicy, Log, LogConfig, PendingWrite};
pub use recovery::{peek, Recovered, METADATA_FILE, SNAPSHOT_FILE};
pub use report::{Damage, RecoveryReport, SegmentReport};
pub use storage::{CrashFault, FileStorage, MemStorage, Storage, SyncMode};
