//! Where the log's bytes live: a directory of files, on disk or in memory.
//!
//! The log's format and recovery code run unchanged over every [`Storage`]:
//! [`FileStorage`] (the portable back end: `pwrite` + `fdatasync` or
//! `O_DSYNC`, and the files the io_uring back end writes) and
//! [`MemStorage`] (an in-memory block device with fault injection for the
//! simulator and crash tests).
//!
//! Every directory operation (create, rename, remove) is durable when it
//! returns: the directory is synced.

mod file;
mod memory;

pub use file::FileStorage;
pub use memory::{CrashFault, MemStorage};

use std::path::PathBuf;

use crate::aligned::AlignedBuf;
use crate::error::Result;
use crate::format::SegmentId;

/// How a group commit's write becomes durable. The default is
/// [`SyncMode::Adaptive`]. Measured side by side (`synod bench log`, see the
/// crate README), the ways are equal within noise for the portable back
/// end, while under io_uring they trade places with the machine's load: an
/// `O_DSYNC` write is the faster on a quiet machine, and the write linked
/// to an `fdatasync` is much faster whenever the CPUs are busy (without
/// FUA, an `O_DSYNC` direct write is finished, its flush included, by a
/// per-CPU kernel worker, which then waits for a scheduler tick behind
/// whatever runs on that CPU). `Adaptive` lets the io_uring back end pick
/// per commit ([`crate::adaptive`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// The segment is opened `O_DIRECT | O_DSYNC`: each write is durable
    /// when it completes (one FUA write or write + flush in the kernel).
    Dsync,
    /// The segment is opened `O_DIRECT`; each write is followed by one
    /// `fdatasync` (linked after the write under io_uring).
    Fdatasync,
    /// The segment is opened `O_DIRECT`. Under io_uring each commit is
    /// either a write linked to an `fdatasync` or one `RWF_DSYNC` write,
    /// whichever has been faster lately ([`crate::adaptive::SyncChooser`]);
    /// the portable back end writes it as [`SyncMode::Fdatasync`].
    #[default]
    Adaptive,
}

/// A directory of files holding one log.
pub trait Storage {
    /// The path used in errors and reports for `name`.
    fn path_of(&self, name: &str) -> PathBuf;

    /// The names of the files in the directory, sorted.
    ///
    /// # Errors
    /// The directory cannot be read.
    fn list(&mut self) -> Result<Vec<String>>;

    /// The whole content of `name`, or `None` when it does not exist.
    ///
    /// # Errors
    /// I/O failures; a file longer than `length_max_bytes` is refused as foreign.
    fn read(&mut self, name: &str, length_max_bytes: u64) -> Result<Option<Vec<u8>>>;

    /// Replaces `name` with `bytes` atomically and durably: written to a
    /// temporary file, synced, renamed into place, directory synced.
    ///
    /// # Errors
    /// I/O failures, a full disk or a read-only directory; on error the old
    /// file is intact.
    fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> Result<()>;

    /// Overwrites bytes of an existing file in place and syncs its data.
    ///
    /// # Errors
    /// I/O failures.
    fn overwrite(&mut self, name: &str, offset_bytes: u64, bytes: &[u8]) -> Result<()>;

    /// Renames a file (durably).
    ///
    /// # Errors
    /// I/O failures.
    fn rename(&mut self, from: &str, to: &str) -> Result<()>;

    /// Removes a file (durably); a missing file is not an error.
    ///
    /// # Errors
    /// I/O failures.
    fn remove(&mut self, name: &str) -> Result<()>;

    /// Starts preparing segment `segment` of `segment_bytes`: a synced file
    /// with its header block and zeros (or a recycled spare's stale bytes)
    /// after it, so that writes into it are overwrites. May work in the
    /// background; [`Storage::activate_segment`] waits for it.
    fn prepare_segment(&mut self, segment: SegmentId, segment_bytes: u64);

    /// Makes `segment` writable (preparing it now if that was not started)
    /// and returns once it is durable in the directory. Returns true when the
    /// segment is recycled (its header says so): bytes past the writer's
    /// end may then be stale, except the first record block, which
    /// preparation zeroes.
    ///
    /// # Errors
    /// A full disk while preparing (retry later), or other I/O failures.
    fn activate_segment(&mut self, segment: SegmentId, segment_bytes: u64) -> Result<bool>;

    /// Writes a group commit at `offset_bytes` of an active segment and makes
    /// it durable (per the storage's [`SyncMode`]). `length_bytes` and the
    /// offset are block multiples.
    ///
    /// # Errors
    /// The write or sync failed; the bytes on disk are then unknown.
    fn write_group(
        &mut self,
        segment: SegmentId,
        offset_bytes: u64,
        buffer: &AlignedBuf,
        length_bytes: usize,
    ) -> Result<()>;

    /// Closes an active segment the writer has moved past.
    fn release_segment(&mut self, segment: SegmentId);

    /// Turns a segment that is no longer needed into a spare for a later
    /// segment (or removes it when enough spares exist).
    ///
    /// # Errors
    /// I/O failures.
    fn retire_segment(&mut self, segment: SegmentId, spares_max: usize) -> Result<()>;
}
