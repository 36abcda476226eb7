//! The log subjects: a log on disk through either back end, started with
//! spare segments, driven one group at a time or pipelined.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot, Snapshot};

use crate::aligned::AlignedBuf;
use crate::error::Result;
use crate::format::BLOCK_BYTES;
use crate::storage::SyncMode;
use crate::uring::{Backend, DiskLog};

use super::{bench_io, new_sample, Sample};

/// How the log subjects drive their group commits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Driver {
    /// Append a group, commit it, wait until it is durable.
    OneAtATime,
    /// Build the next group while the previous one is on the disk
    /// (the io_uring driver's `submit` / `wait`).
    Pipelined,
}

#[derive(Clone, Copy)]
pub(super) struct LogSubject {
    pub(super) backend: Backend,
    pub(super) sync_mode: SyncMode,
    pub(super) driver: Driver,
}

/// How many retired segments each log subject keeps for recycling.
pub(super) const LOG_SPARES: usize = 3;

/// The fastest a group commit stream is expected to go on one disk: at
/// most this many bytes per second, and at most this many groups per second
/// (a flush takes tens of microseconds). They size the log subjects'
/// segments so that one slice rolls over at most [`LOG_SPARES`] times.
const LOG_BYTES_PER_SECOND_MAX: f64 = 3e9;
const LOG_GROUPS_PER_SECOND_MAX: f64 = 20_000.0;

/// The log subjects' segment size: one slice's writes fit the spares, so
/// after the warm-up every segment the log moves into is recycled, never
/// zero-filled while a slice is timed (the steady state of a log whose
/// snapshots keep up; zero-filling is measured apart, by the `fallocate only`
/// baseline against the zero-filled one).
pub(super) fn log_segment_bytes(
    seconds_per_slice: f64,
    write_bytes: usize,
    group_bytes_max: usize,
) -> u64 {
    let bytes_per_second =
        (write_bytes as f64 * LOG_GROUPS_PER_SECOND_MAX).min(LOG_BYTES_PER_SECOND_MAX);
    let per_slice = (bytes_per_second * seconds_per_slice / LOG_SPARES as f64) as u64;
    per_slice
        .clamp(16 << 20, 1 << 30)
        .max(2 * (group_bytes_max + BLOCK_BYTES) as u64)
        .next_multiple_of(1 << 20)
}

/// Writes `count` retired segments (`*.spare`) of `segment_bytes` into a
/// new log directory, as a log that has run for a while has them, with
/// large `O_DIRECT` writes and one sync each.
pub(super) fn create_spares(directory: &Path, count: usize, segment_bytes: u64) -> Result<()> {
    const CHUNK_BYTES: usize = 4 << 20;
    let zeros = AlignedBuf::zeroed(CHUNK_BYTES);
    for index in 0..count {
        let path = directory.join(format!("{:016x}.spare", 0xffff_0000u64 + index as u64));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .map_err(|e| bench_io("creating spare", &path, e))?;
        let mut written = 0u64;
        while written < segment_bytes {
            let chunk = (segment_bytes - written).min(CHUNK_BYTES as u64) as usize;
            file.write_all_at(&zeros.as_slice()[..chunk], written)
                .map_err(|e| bench_io("writing spare", &path, e))?;
            written += chunk as u64;
        }
        file.sync_all()
            .map_err(|e| bench_io("syncing spare", &path, e))?;
    }
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| bench_io("syncing", directory, e))
}

pub(super) fn log_slice(
    log: &mut DiskLog,
    driver: Driver,
    batch: &Batch,
    next_slot: &mut u64,
    seconds: f64,
    per_group: usize,
) -> Result<Sample> {
    // Retire what the last slice wrote (segments become spares, recycled
    // without zero-filling) and let any preparation finish before timing.
    let top = Slot(next_slot.saturating_sub(1));
    if top > log.log().snapshot_slot() {
        let snapshot = Snapshot {
            slot: top,
            bytes: Batch::noop(),
        };
        log.log().install_snapshot(&snapshot)?;
    }
    log.log().storage_mut().wait_for_preparation()?;
    let ballot = Ballot {
        round: 1,
        node: NodeId(1),
    };
    let mut append_group = |log: &mut DiskLog| -> Result<()> {
        for _ in 0..per_group {
            let entry = AcceptedEntry {
                slot: Slot(*next_slot),
                ballot,
                batch: batch.clone(),
            };
            log.log().append(&entry)?;
            *next_slot += 1;
        }
        Ok(())
    };
    let mut sample = new_sample();
    let syncs_before = log.sync_count();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut in_flight_since: Option<Instant> = None;
    while Instant::now() < deadline {
        let group_started = Instant::now();
        append_group(log)?;
        sample.builds.push(group_started.elapsed());
        match (driver, &mut *log) {
            // One group at a time: appended, written, synced, then the
            // next; the latency is a durable append's.
            (Driver::OneAtATime, log) => {
                log.commit()?;
                sample.latencies.push(group_started.elapsed());
                sample.groups += 1;
            }
            // This group was built while the previous one was on the disk;
            // now wait for that one and put this one on the ring. The
            // latency runs from a group's first append to its durability,
            // so it includes waiting behind the previous group.
            (Driver::Pipelined, DiskLog::Uring(uring)) => {
                uring.wait()?;
                if let Some(since) = in_flight_since.take() {
                    sample.latencies.push(since.elapsed());
                    sample.groups += 1;
                }
                uring.submit()?;
                in_flight_since = Some(group_started);
            }
            // Without io_uring (the fallback back end) there is no
            // pipelined driver: one group at a time.
            (Driver::Pipelined, DiskLog::Portable(portable)) => {
                portable.commit()?;
                sample.latencies.push(group_started.elapsed());
                sample.groups += 1;
            }
        }
    }
    if let DiskLog::Uring(uring) = log {
        uring.wait()?;
        if let Some(since) = in_flight_since.take() {
            sample.latencies.push(since.elapsed());
            sample.groups += 1;
        }
    }
    sample.elapsed = started.elapsed();
    sample.syncs = log.sync_count() - syncs_before;
    Ok(sample)
}
