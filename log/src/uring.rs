//! The io_uring back end: group commits as a fixed-buffer write linked to an
//! `fdatasync` (or one `O_DSYNC` write, or per commit whichever of the two has
//! been faster lately), prepared for a ring the caller owns.
//!
//! The shard owns its ring, its registered buffer table, file table and
//! completion tags (DESIGN.md, "Thread-per-core runtime"): it registers the
//! log's two group buffers ([`Log::buffers_for_registration`]) and a file
//! table, and hands the log a [`RingSlots`]. [`UringWriter`] pushes the log's
//! operations onto that ring and recognises its completions by tag.
//! [`UringLog`] is the small standalone driver that owns a ring of its own,
//! for tests and benchmarks; [`open_best`] picks it, or the portable back
//! end when io_uring is unavailable, and says once which.
//!
//! Invariants:
//! - At most one group commit is on the ring; its buffer belongs to the
//!   operation until all its completions (the write, and the sync when
//!   one is linked) are reaped.
//! - The file slot holds the segment of the write in flight: it is updated
//!   only between group commits.
//! - Every SQE the writer pushes carries a tag in `tag_base..tag_base + TAG_COUNT`.

use std::io;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Instant;

use io_uring::{opcode, squeue, types, IoUring, SubmissionQueue, Submitter};

use crate::adaptive::{SyncChooser, SyncWay};
use crate::error::{LogError, Result};
use crate::format::{CommitSeq, SegmentId};
use crate::log::{Log, LogConfig, PendingWrite};
use crate::recovery::Recovered;
use crate::storage::{FileStorage, Storage, SyncMode};

/// How many completion tags the log uses.
pub const TAG_COUNT: u64 = 2;

/// The log's places in a ring the caller owns.
#[derive(Clone, Copy, Debug)]
pub struct RingSlots {
    /// The registered-buffer index of the log's buffer 0 (buffer 1 follows).
    pub buffer_index_base: u16,
    /// The fixed-file slot the log may use for its active segment.
    pub file_index: u32,
    /// The log's completion tags are `tag_base .. tag_base + TAG_COUNT`.
    pub tag_base: u64,
}

struct InFlight {
    write: PendingWrite,
    write_result: Option<i32>,
    sync_result: Option<i32>,
    /// The way an adaptive commit went, and when it was pushed.
    adaptive: Option<(SyncWay, Instant)>,
}

/// Prepares the log's group commits for a caller-owned ring.
pub struct UringWriter {
    slots: RingSlots,
    sync_mode: SyncMode,
    registered: Option<SegmentId>,
    in_flight: Option<InFlight>,
    sync_count: u64,
    chooser: Option<SyncChooser>,
}

impl UringWriter {
    /// A writer using `slots` of the caller's ring.
    #[must_use]
    pub fn new(slots: RingSlots, sync_mode: SyncMode) -> UringWriter {
        UringWriter {
            slots,
            sync_mode,
            registered: None,
            in_flight: None,
            sync_count: 0,
            chooser: (sync_mode == SyncMode::Adaptive).then(SyncChooser::new),
        }
    }

    /// Under [`SyncMode::Adaptive`], the chooser (which way it prefers, how
    /// often it switched).
    #[must_use]
    pub fn chooser(&self) -> Option<&SyncChooser> {
        self.chooser.as_ref()
    }

    /// True when `user_data` is one of the log's completion tags.
    #[must_use]
    pub fn owns(&self, user_data: u64) -> bool {
        (self.slots.tag_base..self.slots.tag_base + TAG_COUNT).contains(&user_data)
    }

    /// How many `fdatasync` operations this writer has put on the ring.
    #[must_use]
    pub fn sync_count(&self) -> u64 {
        self.sync_count
    }

    /// How many of the log's completions are still to come (0 when idle).
    #[must_use]
    pub fn outstanding_completions(&self) -> usize {
        self.in_flight.as_ref().map_or(0, |in_flight| {
            usize::from(in_flight.write_result.is_none())
                + usize::from(in_flight.sync_result.is_none())
        })
    }

    /// True while a group commit is on the ring.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Seals the log's pending group and pushes its operations (the caller
    /// submits them with the rest of its loop turn). Returns how many SQEs
    /// were pushed: 0 when nothing waits, a commit is already on the ring,
    /// or the queue lacks room.
    ///
    /// # Errors
    /// As [`Log::start_commit`]; a failed file-table update.
    pub fn prepare(
        &mut self,
        log: &mut Log<FileStorage>,
        submitter: &Submitter<'_>,
        queue: &mut SubmissionQueue<'_>,
    ) -> Result<usize> {
        // Room for the commit's operations (an adaptive commit: for the
        // larger of its two shapes, so a choice is made only for a commit
        // that goes out).
        let room = match self.sync_mode {
            SyncMode::Dsync => 1,
            SyncMode::Fdatasync | SyncMode::Adaptive => 2,
        };
        if self.in_flight.is_some() || queue.capacity() - queue.len() < room {
            return Ok(0);
        }
        let Some(write) = log.start_commit()? else {
            return Ok(0);
        };
        // The file is opened `O_DSYNC` only under `SyncMode::Dsync`; an
        // adaptive `DsyncWrite` asks for the same per write (`RWF_DSYNC`).
        let adaptive = self.chooser.as_mut().map(SyncChooser::choose);
        let (needed, rw_flags) = match (self.sync_mode, adaptive) {
            (SyncMode::Dsync, _) => (1, 0),
            (_, Some(SyncWay::DsyncWrite)) => (1, libc::RWF_DSYNC),
            _ => (2, 0),
        };
        if self.registered != Some(write.segment()) {
            let fd = log
                .storage()
                .segment_fd(write.segment())
                .expect("the log writes only active segments, which are open");
            let updated = submitter.register_files_update(self.slots.file_index, &[fd]);
            if let Err(error) = updated {
                let path = log.storage().path_of(&write.segment().file_name());
                let _ = log.finish_commit(write, Err(io::Error::other("file table update failed")));
                return Err(LogError::from_io(
                    "registering segment with io_uring",
                    path,
                    error,
                ));
            }
            self.registered = Some(write.segment());
        }
        let file = types::Fixed(self.slots.file_index);
        let length = u32::try_from(write.length_bytes()).expect("group buffers are below 4 GiB");
        let mut write_entry = opcode::WriteFixed::new(
            file,
            write.buffer().as_ptr(),
            length,
            self.slots.buffer_index_base + write.buffer_index(),
        )
        .offset(write.offset_bytes())
        .rw_flags(rw_flags)
        .build()
        .user_data(self.slots.tag_base);
        if needed == 2 {
            write_entry = write_entry.flags(squeue::Flags::IO_LINK);
        }
        // SAFETY: the buffer lives in `write`, which this writer keeps in
        // `in_flight` until the write's completion is reaped, and it is one
        // of the buffers the caller registered at `buffer_index_base`
        // (documented contract of `RingSlots`); the file slot was just updated.
        unsafe { queue.push(&write_entry) }.expect("room was checked above");
        if needed == 2 {
            let sync_entry = opcode::Fsync::new(file)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(self.slots.tag_base + 1);
            // SAFETY: fsync takes no buffer; the file slot stays registered.
            unsafe { queue.push(&sync_entry) }.expect("room was checked above");
            self.sync_count += 1;
        }
        self.in_flight = Some(InFlight {
            write,
            write_result: None,
            sync_result: (needed == 1).then_some(0),
            adaptive: adaptive.map(|way| (way, Instant::now())),
        });
        Ok(needed)
    }

    /// Takes one of the log's completions. Returns the durable position once
    /// the whole group commit (write and sync) has completed.
    ///
    /// # Errors
    /// A failed or short write, a failed sync: as [`Log::finish_commit`].
    ///
    /// # Panics
    /// On a completion the writer did not expect (a programmer error).
    pub fn complete(
        &mut self,
        log: &mut Log<FileStorage>,
        user_data: u64,
        result: i32,
    ) -> Result<Option<CommitSeq>> {
        assert!(
            self.owns(user_data),
            "only the log's own completions come here"
        );
        let in_flight = self
            .in_flight
            .as_mut()
            .expect("a completion follows a prepared commit");
        if user_data == self.slots.tag_base {
            assert!(
                in_flight.write_result.is_none(),
                "one write completion per commit"
            );
            in_flight.write_result = Some(result);
        } else {
            assert!(
                in_flight.sync_result.is_none(),
                "one sync completion per commit"
            );
            in_flight.sync_result = Some(result);
        }
        let (Some(written), Some(synced)) = (in_flight.write_result, in_flight.sync_result) else {
            return Ok(None);
        };
        let InFlight {
            write, adaptive, ..
        } = self.in_flight.take().expect("checked just above");
        let outcome = if written < 0 {
            Err(io::Error::from_raw_os_error(-written))
        } else if written as usize != write.length_bytes() {
            Err(io::Error::other(format!(
                "short write: {written} of {} bytes",
                write.length_bytes()
            )))
        } else if synced < 0 {
            Err(io::Error::from_raw_os_error(-synced))
        } else {
            Ok(())
        };
        if let (Ok(()), Some((way, pushed)), Some(chooser)) =
            (&outcome, adaptive, self.chooser.as_mut())
        {
            chooser.record(way, pushed.elapsed());
        }
        log.finish_commit(write, outcome).map(Some)
    }
}

/// The standalone driver: a log with an io_uring of its own
/// (`SINGLE_ISSUER | DEFER_TASKRUN`), buffers and segment registered.
pub struct UringLog {
    // Field order matters: the ring (which holds the buffer registration)
    // is dropped before the log that owns the buffers.
    ring: IoUring,
    writer: UringWriter,
    log: Log<FileStorage>,
}

const DRIVER_SLOTS: RingSlots = RingSlots {
    buffer_index_base: 0,
    file_index: 0,
    tag_base: 1,
};

fn ring_error(log: &Log<FileStorage>, op: &'static str, error: io::Error) -> LogError {
    LogError::from_io(op, log.storage().directory().to_path_buf(), error)
}

impl UringLog {
    /// Creates a ring for an opened log and registers its buffers and a file slot.
    ///
    /// # Errors
    /// The ring cannot be set up (io_uring unavailable) or registration fails;
    /// the log is handed back with the error so the caller can fall back.
    pub fn new(
        mut log: Log<FileStorage>,
    ) -> std::result::Result<UringLog, Box<(Log<FileStorage>, io::Error)>> {
        let ring = match IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(8)
        {
            Ok(ring) => ring,
            Err(error) => return Err(Box::new((log, error))),
        };
        let buffers = log.buffers_for_registration();
        // SAFETY: the buffers belong to `log`, which moves into the returned
        // driver next to the ring; the ring is dropped first (field order),
        // and the buffers never move or shrink (AlignedBuf invariant).
        if let Err(error) = unsafe { ring.submitter().register_buffers(&buffers) } {
            return Err(Box::new((log, error)));
        }
        if let Err(error) = ring.submitter().register_files(&[-1]) {
            return Err(Box::new((log, error)));
        }
        let writer = UringWriter::new(DRIVER_SLOTS, log.storage().sync_mode());
        Ok(UringLog { ring, writer, log })
    }

    /// The log (append, snapshots, metadata go straight to it).
    pub fn log(&mut self) -> &mut Log<FileStorage> {
        &mut self.log
    }

    /// The ring writer (its sync count, its adaptive chooser).
    #[must_use]
    pub fn writer(&self) -> &UringWriter {
        &self.writer
    }

    /// Writes and syncs every pending group through the ring. Returns the
    /// durable position.
    ///
    /// # Errors
    /// As [`Log::commit`], and ring failures.
    pub fn commit(&mut self) -> Result<Option<CommitSeq>> {
        loop {
            // `wait` submits what `push` queued and waits for all of it
            // with one `io_uring_enter`.
            self.wait()?;
            if !self.push()? {
                return Ok(self.log.durable());
            }
        }
    }

    /// Queues the pending group's operations without entering the kernel.
    fn push(&mut self) -> Result<bool> {
        let (submitter, mut queue, _) = self.ring.split();
        let pushed = self.writer.prepare(&mut self.log, &submitter, &mut queue)?;
        Ok(pushed > 0)
    }

    /// Puts the pending group on the ring without waiting for it, so the
    /// caller can build the next group while the disk works. Returns false
    /// when nothing was submitted (nothing pending, or a group in flight).
    ///
    /// # Errors
    /// As [`Log::start_commit`], and ring failures.
    pub fn submit(&mut self) -> Result<bool> {
        let pushed = self.push()?;
        if pushed {
            self.ring
                .submit()
                .map_err(|error| ring_error(&self.log, "submitting to io_uring", error))?;
        }
        Ok(pushed)
    }

    /// Waits until the group in flight (if any) is durable.
    ///
    /// # Errors
    /// A failed write or sync, ring failures.
    pub fn wait(&mut self) -> Result<Option<CommitSeq>> {
        while self.writer.is_busy() {
            // Wait for every completion still to come at once: one wake-up
            // per group commit rather than one per operation.
            self.ring
                .submit_and_wait(self.writer.outstanding_completions())
                .map_err(|error| ring_error(&self.log, "waiting on io_uring", error))?;
            let completions: Vec<(u64, i32)> = self
                .ring
                .completion()
                .map(|entry| (entry.user_data(), entry.result()))
                .collect();
            for (user_data, result) in completions {
                if self.writer.owns(user_data) {
                    self.writer.complete(&mut self.log, user_data, result)?;
                }
            }
        }
        Ok(self.log.durable())
    }

    /// Ends the driver, returning the log.
    #[must_use]
    pub fn into_log(self) -> Log<FileStorage> {
        let UringLog { ring, log, .. } = self;
        drop(ring);
        log
    }
}

/// Which back end a [`DiskLog`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// io_uring through the standalone driver.
    IoUring,
    /// `pwrite` + `fdatasync` (or `O_DSYNC`).
    Portable,
}

/// A log on disk through whichever back end is available.
pub enum DiskLog {
    /// The io_uring back end.
    Uring(Box<UringLog>),
    /// The portable back end.
    Portable(Box<Log<FileStorage>>),
}

impl DiskLog {
    /// The log.
    pub fn log(&mut self) -> &mut Log<FileStorage> {
        match self {
            DiskLog::Uring(uring) => uring.log(),
            DiskLog::Portable(log) => log,
        }
    }

    /// Commits every pending group.
    ///
    /// # Errors
    /// As [`Log::commit`].
    pub fn commit(&mut self) -> Result<Option<CommitSeq>> {
        match self {
            DiskLog::Uring(uring) => uring.commit(),
            DiskLog::Portable(log) => log.commit(),
        }
    }

    /// How many `fdatasync` calls group commits made (0 under `O_DSYNC`,
    /// where each write is durable by itself).
    #[must_use]
    pub fn sync_count(&self) -> u64 {
        match self {
            DiskLog::Uring(uring) => uring.writer.sync_count(),
            DiskLog::Portable(log) => log.storage().sync_count(),
        }
    }

    /// The back end in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            DiskLog::Uring(_) => Backend::IoUring,
            DiskLog::Portable(_) => Backend::Portable,
        }
    }
}

static SAY_BACKEND: Once = Once::new();

/// Opens (recovers) the log in `directory` with the requested back end:
/// `Some(Backend::IoUring)` falls back to the portable one when io_uring is
/// unavailable, `None` means "the best available". Says once per process,
/// on stderr, which back end it uses.
///
/// # Errors
/// As [`Log::open`] and [`FileStorage::open`].
pub fn open_best(
    directory: impl Into<PathBuf>,
    config: LogConfig,
    sync_mode: SyncMode,
    wanted: Option<Backend>,
) -> Result<(DiskLog, Recovered)> {
    let storage = FileStorage::open(directory, sync_mode)?;
    let (log, recovered) = Log::open(storage, config)?;
    let (disk_log, note) = match wanted {
        Some(Backend::Portable) => (
            DiskLog::Portable(Box::new(log)),
            "portable (requested)".to_string(),
        ),
        _ => match UringLog::new(log) {
            Ok(uring) => (DiskLog::Uring(Box::new(uring)), "io_uring".to_string()),
            Err(failed) => {
                let (log, error) = *failed;
                (
                    DiskLog::Portable(Box::new(log)),
                    format!("portable (io_uring unavailable: {error})"),
                )
            }
        },
    };
    SAY_BACKEND.call_once(|| eprintln!("synod-log: using the {note} back end"));
    Ok((disk_log, recovered))
}
