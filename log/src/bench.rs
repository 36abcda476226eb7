//! The load loop behind `synod bench log` and the criterion benchmark:
//! appends/s, MB/s and group-commit latency of both back ends, with bare
//! baselines measured in the same run on the same disk.
//!
//! Baselines, per cell (same bytes per group commit as the log writes):
//! - `bare O_DIRECT+fdatasync`: a loop of block-aligned overwrites of a
//!   zero-filled file, each followed by `fdatasync` (the yardstick),
//!   the size of the log's write (records, headers, padding);
//! - `bare O_DIRECT+fdatasync, payload-size writes`: the same with writes
//!   the size of the group's payload (rounded up to the block), against
//!   which the log's payload bandwidth is read;
//! - `bare O_DIRECT|O_DSYNC`: the same with `O_DSYNC` instead of the sync;
//! - `bare O_DIRECT+fdatasync, fallocate only`: into unwritten extents (what
//!   zero-filling ahead avoids);
//! - `buffered write+fdatasync`: appending the payload bytes to a growing
//!   file with `write` and syncing each group.
//!
//! Log subjects: `log io_uring` (the standalone driver) and `log portable`,
//! each with `fdatasync` and `O_DSYNC`, append a group, commit it and wait
//! until it is durable, one group at a time: their latency is a durable
//! append's. `log io_uring pipelined` builds the next group while the
//! previous one is on the disk (`submit` / `wait`); its latency runs from a
//! group's first append to its durability, waiting behind the previous
//! group included. Every log subject starts with spare segments and
//! retires what it wrote between slices, so segments are recycled and never
//! zero-filled while a slice is timed.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot, Snapshot};

use crate::aligned::AlignedBuf;
use crate::error::{LogError, Result};
use crate::format::{BLOCK_BYTES, ENTRY_PREFIX_BYTES, RECORD_ALIGN_BYTES, RECORD_HEADER_BYTES};
use crate::log::LogConfig;
use crate::storage::SyncMode;
use crate::uring::{open_best, Backend, DiskLog};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Where the temporary files go (a directory on the disk to measure).
    pub directory: PathBuf,
    /// Time per slice: each subject of a cell runs `repeats` slices, the
    /// subjects taking turns.
    pub seconds_per_cell: f64,
    /// Slices per subject and cell; medians are reported.
    pub repeats: usize,
    /// Batch sizes in bytes.
    pub record_sizes: Vec<usize>,
    /// Records per group commit.
    pub records_per_group: Vec<usize>,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            directory: std::env::temp_dir(),
            seconds_per_cell: 0.2,
            repeats: 9,
            record_sizes: vec![64, 1024, 64 * 1024],
            records_per_group: vec![1, 16, 256],
        }
    }
}

/// One measured line.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// What ran.
    pub subject: String,
    /// Batch size.
    pub record_bytes: usize,
    /// Records per group commit.
    pub records_per_group: usize,
    /// Bytes written per group commit.
    pub write_bytes: usize,
    /// Records made durable per second (median of repeats).
    pub appends_per_second: f64,
    /// Payload megabytes (10^6) made durable per second (median).
    pub megabytes_per_second: f64,
    /// Median latency of one group commit (write + sync), microseconds.
    pub median_latency_us: f64,
    /// Log subjects: median time to build a group (its appends: the copy
    /// into the write buffer and the checksum), microseconds; `None` for
    /// the baselines.
    pub median_build_us: Option<f64>,
    /// Explicit syncs per group commit.
    pub syncs_per_group: f64,
    /// Throughput relative to the bare `O_DIRECT`+`fdatasync` loop of the cell.
    pub ratio_to_bare: f64,
}

/// The whole table.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    /// Rows, grouped by cell.
    pub rows: Vec<BenchRow>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| subject | record | per group | write | appends/s | MB/s | p50 commit | p50 build | syncs/commit | vs bare |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for row in &self.rows {
            writeln!(
                f,
                "| {} | {} B | {} | {} KiB | {:.0} | {:.1} | {:.0} us | {} | {:.2} | {:.2} |",
                row.subject,
                row.record_bytes,
                row.records_per_group,
                row.write_bytes / 1024,
                row.appends_per_second,
                row.megabytes_per_second,
                row.median_latency_us,
                row.median_build_us
                    .map_or_else(|| "-".to_string(), |build| format!("{build:.1} us")),
                row.syncs_per_group,
                row.ratio_to_bare
            )?;
        }
        Ok(())
    }
}

struct Sample {
    groups: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Log subjects: the time to append each group (copy and checksum).
    builds: Vec<Duration>,
    syncs: u64,
}

/// The bytes one group commit of the log writes.
#[must_use]
pub fn log_write_bytes(record_bytes: usize, records_per_group: usize) -> usize {
    let entry = ENTRY_PREFIX_BYTES + record_bytes.next_multiple_of(RECORD_ALIGN_BYTES);
    (RECORD_HEADER_BYTES + entry * records_per_group).next_multiple_of(BLOCK_BYTES)
}

fn bench_io(op: &'static str, path: &Path, error: std::io::Error) -> LogError {
    LogError::from_io(op, path, error)
}

fn segment_bytes_for(write_bytes: usize) -> u64 {
    ((write_bytes as u64) * 16)
        .clamp(64 << 20, 512 << 20)
        .next_multiple_of(BLOCK_BYTES as u64)
}

/// How many retired segments each log subject keeps for recycling.
const LOG_SPARES: usize = 3;

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
fn log_segment_bytes(seconds_per_slice: f64, write_bytes: usize, group_bytes_max: usize) -> u64 {
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
fn create_spares(directory: &Path, count: usize, segment_bytes: u64) -> Result<()> {
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

fn new_sample() -> Sample {
    Sample {
        groups: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        builds: Vec::new(),
        syncs: 0,
    }
}

/// One subject of a cell, kept open across its slices.
enum Runner {
    Log {
        log: DiskLog,
        driver: Driver,
        batch: Batch,
        next_slot: u64,
    },
    Bare {
        bare: Bare,
        path: PathBuf,
        file: Option<File>,
        offset: u64,
        file_bytes: u64,
        buffer: AlignedBuf,
    },
}

impl Runner {
    fn open_log(
        subject: LogSubject,
        record_bytes: usize,
        per_group: usize,
        seconds_per_slice: f64,
        directory: &Path,
    ) -> Result<Runner> {
        let write_bytes = log_write_bytes(record_bytes, per_group);
        let group_bytes_max = write_bytes.max(64 * 1024);
        let segment_bytes = log_segment_bytes(seconds_per_slice, write_bytes, group_bytes_max);
        let log_config = LogConfig {
            segment_bytes,
            group_bytes_max,
            spare_segments_max: LOG_SPARES,
            ..LogConfig::default()
        };
        std::fs::create_dir_all(directory).map_err(|e| bench_io("creating", directory, e))?;
        // The active segment, the one prepared after it, and the spares.
        create_spares(directory, LOG_SPARES + 2, segment_bytes)?;
        let (log, _) = open_best(
            directory,
            log_config,
            subject.sync_mode,
            Some(subject.backend),
        )?;
        Ok(Runner::Log {
            log,
            driver: subject.driver,
            batch: Batch::copy_from_slice(&vec![0xA5u8; record_bytes]),
            next_slot: 1,
        })
    }

    fn open_bare(bare: Bare, write_bytes: usize, path: PathBuf) -> Result<Runner> {
        let mut buffer = AlignedBuf::zeroed(write_bytes);
        buffer.as_mut_slice().fill(0x5A);
        let file_bytes = segment_bytes_for(write_bytes);
        if matches!(
            bare,
            Bare::DirectFdatasync | Bare::DirectFdatasyncPayloadSize | Bare::DirectDsync
        ) {
            prepare_file(&path, file_bytes, bare)?;
        }
        Ok(Runner::Bare {
            bare,
            path,
            file: None,
            offset: 0,
            file_bytes,
            buffer,
        })
    }

    /// Runs for `seconds`; `per_group` records of `record_bytes` per commit.
    fn slice(&mut self, seconds: f64, per_group: usize, payload_bytes: usize) -> Result<Sample> {
        match self {
            Runner::Log {
                log,
                driver,
                batch,
                next_slot,
            } => log_slice(log, *driver, batch, next_slot, seconds, per_group),
            Runner::Bare {
                bare,
                path,
                file,
                offset,
                file_bytes,
                buffer,
            } => bare_slice(
                *bare,
                path,
                file,
                offset,
                *file_bytes,
                buffer,
                seconds,
                payload_bytes,
            ),
        }
    }
}

fn log_slice(
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bare {
    DirectFdatasync,
    /// As `DirectFdatasync`, each write the size of the group's payload
    /// (rounded up to the block) rather than of the log's write: the
    /// issue's "same-size O_DIRECT writes" for a group of that payload.
    DirectFdatasyncPayloadSize,
    DirectDsync,
    DirectFallocateOnly,
    BufferedFdatasync,
}

fn prepare_file(path: &Path, bytes: u64, bare: Bare) -> Result<()> {
    let mut file = File::create(path).map_err(|e| bench_io("creating", path, e))?;
    if bare == Bare::DirectFallocateOnly {
        // SAFETY: fallocate on a descriptor we own; no memory is involved.
        let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if result != 0 {
            return Err(bench_io("fallocate", path, std::io::Error::last_os_error()));
        }
    } else if bare != Bare::BufferedFdatasync {
        let zeros = vec![0u8; 1 << 20];
        let mut written = 0u64;
        while written < bytes {
            let chunk = (bytes - written).min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..chunk])
                .map_err(|e| bench_io("zero-filling", path, e))?;
            written += chunk as u64;
        }
    }
    file.sync_all().map_err(|e| bench_io("syncing", path, e))?;
    // Like the log's segments: no cached pages for O_DIRECT to invalidate.
    // SAFETY: posix_fadvise on a descriptor we own; it is only advice.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    Ok(())
}

fn open_bare_file(bare: Bare, path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    match bare {
        Bare::DirectFdatasync | Bare::DirectFdatasyncPayloadSize | Bare::DirectFallocateOnly => {
            options.custom_flags(libc::O_DIRECT);
        }
        Bare::DirectDsync => {
            options.custom_flags(libc::O_DIRECT | libc::O_DSYNC);
        }
        Bare::BufferedFdatasync => {
            options.append(true);
        }
    }
    options.open(path).map_err(|e| bench_io("opening", path, e))
}

#[allow(clippy::too_many_arguments)]
fn bare_slice(
    bare: Bare,
    path: &Path,
    file: &mut Option<File>,
    offset: &mut u64,
    file_bytes: u64,
    buffer: &AlignedBuf,
    seconds: f64,
    payload_bytes: usize,
) -> Result<Sample> {
    let write_bytes = buffer.len() as u64;
    // Fresh unwritten extents (or a fresh growing file) for every slice of
    // the baselines that measure them; the zero-filled file is reused.
    let fresh = matches!(bare, Bare::DirectFallocateOnly | Bare::BufferedFdatasync);
    if fresh || file.is_none() {
        *file = None;
        if fresh {
            prepare_file(path, file_bytes, bare)?;
        }
        *file = Some(open_bare_file(bare, path)?);
        *offset = 0;
    }
    let handle = file.as_ref().expect("opened just above");
    let mut sample = new_sample();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    while Instant::now() < deadline {
        if *offset + write_bytes > file_bytes {
            *offset = 0;
        }
        let write_started = Instant::now();
        let result = match bare {
            Bare::BufferedFdatasync => (&*handle).write_all(&buffer.as_slice()[..payload_bytes]),
            _ => handle.write_all_at(buffer.as_slice(), *offset),
        };
        result.map_err(|e| bench_io("writing", path, e))?;
        if bare != Bare::DirectDsync {
            handle
                .sync_data()
                .map_err(|e| bench_io("syncing", path, e))?;
            sample.syncs += 1;
        }
        sample.latencies.push(write_started.elapsed());
        sample.groups += 1;
        *offset += write_bytes;
    }
    sample.elapsed = started.elapsed();
    Ok(sample)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn summarize(
    subject: &str,
    record_bytes: usize,
    per_group: usize,
    write_bytes: usize,
    samples: &[Sample],
) -> BenchRow {
    let mut appends: Vec<f64> = samples
        .iter()
        .map(|s| (s.groups * per_group as u64) as f64 / s.elapsed.as_secs_f64().max(1e-9))
        .collect();
    let mut latencies: Vec<f64> = samples
        .iter()
        .map(|s| {
            let mut each: Vec<f64> = s.latencies.iter().map(|l| l.as_secs_f64() * 1e6).collect();
            median(&mut each)
        })
        .collect();
    let mut builds: Vec<f64> = samples
        .iter()
        .filter(|s| !s.builds.is_empty())
        .map(|s| {
            let mut each: Vec<f64> = s.builds.iter().map(|b| b.as_secs_f64() * 1e6).collect();
            median(&mut each)
        })
        .collect();
    let groups: u64 = samples.iter().map(|s| s.groups).sum();
    let syncs: u64 = samples.iter().map(|s| s.syncs).sum();
    let appends_per_second = median(&mut appends);
    BenchRow {
        subject: subject.to_string(),
        record_bytes,
        records_per_group: per_group,
        write_bytes,
        appends_per_second,
        megabytes_per_second: appends_per_second * record_bytes as f64 / 1e6,
        median_latency_us: median(&mut latencies),
        median_build_us: (!builds.is_empty()).then(|| median(&mut builds)),
        syncs_per_group: syncs as f64 / groups.max(1) as f64,
        ratio_to_bare: 0.0,
    }
}

/// How the log subjects drive their group commits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Append a group, commit it, wait until it is durable.
    OneAtATime,
    /// Build the next group while the previous one is on the disk
    /// (the io_uring driver's `submit` / `wait`).
    Pipelined,
}

#[derive(Clone, Copy)]
struct LogSubject {
    backend: Backend,
    sync_mode: SyncMode,
    driver: Driver,
}

#[derive(Clone, Copy)]
enum Subject {
    Bare(Bare),
    Log(LogSubject),
}

const fn log_subject(backend: Backend, sync_mode: SyncMode, driver: Driver) -> Subject {
    Subject::Log(LogSubject {
        backend,
        sync_mode,
        driver,
    })
}

const SUBJECTS: [(&str, Subject); 10] = [
    (
        "bare O_DIRECT+fdatasync",
        Subject::Bare(Bare::DirectFdatasync),
    ),
    (
        "bare O_DIRECT+fdatasync, payload-size writes",
        Subject::Bare(Bare::DirectFdatasyncPayloadSize),
    ),
    ("bare O_DIRECT+O_DSYNC", Subject::Bare(Bare::DirectDsync)),
    (
        "bare O_DIRECT+fdatasync, fallocate only",
        Subject::Bare(Bare::DirectFallocateOnly),
    ),
    (
        "buffered write+fdatasync",
        Subject::Bare(Bare::BufferedFdatasync),
    ),
    (
        "log io_uring, fdatasync",
        log_subject(Backend::IoUring, SyncMode::Fdatasync, Driver::OneAtATime),
    ),
    (
        "log io_uring, O_DSYNC",
        log_subject(Backend::IoUring, SyncMode::Dsync, Driver::OneAtATime),
    ),
    (
        "log io_uring pipelined, fdatasync",
        log_subject(Backend::IoUring, SyncMode::Fdatasync, Driver::Pipelined),
    ),
    (
        "log portable, fdatasync",
        log_subject(Backend::Portable, SyncMode::Fdatasync, Driver::OneAtATime),
    ),
    (
        "log portable, O_DSYNC",
        log_subject(Backend::Portable, SyncMode::Dsync, Driver::OneAtATime),
    ),
];

fn run_cell(
    config: &BenchConfig,
    record_bytes: usize,
    per_group: usize,
    scratch: &Path,
) -> Result<Vec<BenchRow>> {
    let write_bytes = log_write_bytes(record_bytes, per_group);
    let payload_bytes = record_bytes * per_group;
    let mut runners = Vec::new();
    for (index, (_, subject)) in SUBJECTS.iter().enumerate() {
        runners.push(match *subject {
            Subject::Bare(bare) => {
                let bytes = match bare {
                    Bare::DirectFdatasyncPayloadSize => payload_bytes.next_multiple_of(BLOCK_BYTES),
                    _ => write_bytes,
                };
                Runner::open_bare(bare, bytes, scratch.join(format!("bare-{index}")))?
            }
            Subject::Log(subject) => Runner::open_log(
                subject,
                record_bytes,
                per_group,
                config.seconds_per_cell,
                &scratch.join(format!("log-{index}")),
            )?,
        });
    }
    // One short untimed slice each: io-wq workers started, caches warm,
    // the log's first segment in use.
    for runner in &mut runners {
        runner.slice(config.seconds_per_cell / 4.0, per_group, payload_bytes)?;
    }
    let mut samples: Vec<Vec<Sample>> = SUBJECTS.iter().map(|_| Vec::new()).collect();
    // Subjects take turns in short slices, so a noisy neighbour on the disk
    // hits them alike; medians over the slices are reported.
    for _ in 0..config.repeats {
        for (runner, samples) in runners.iter_mut().zip(samples.iter_mut()) {
            samples.push(runner.slice(config.seconds_per_cell, per_group, payload_bytes)?);
        }
    }
    drop(runners);
    for index in 0..SUBJECTS.len() {
        let _ = std::fs::remove_dir_all(scratch.join(format!("log-{index}")));
        let _ = std::fs::remove_file(scratch.join(format!("bare-{index}")));
    }
    let mut rows: Vec<BenchRow> = SUBJECTS
        .iter()
        .zip(&samples)
        .map(|((name, subject), samples)| {
            let bytes = match subject {
                Subject::Bare(Bare::DirectFdatasyncPayloadSize) => {
                    payload_bytes.next_multiple_of(BLOCK_BYTES)
                }
                _ => write_bytes,
            };
            summarize(name, record_bytes, per_group, bytes, samples)
        })
        .collect();
    let bare = rows[0].appends_per_second.max(1e-9);
    for row in &mut rows {
        row.ratio_to_bare = row.appends_per_second / bare;
    }
    Ok(rows)
}

/// Runs every cell. Temporary files live under `config.directory` and are
/// removed afterwards.
///
/// # Errors
/// I/O errors of the benchmark files or the log.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    let scratch = config
        .directory
        .join(format!("synod-bench-log-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| bench_io("creating", &scratch, e))?;
    let mut report = BenchReport::default();
    let mut outcome = Ok(());
    'cells: for &record_bytes in &config.record_sizes {
        for &per_group in &config.records_per_group {
            match run_cell(config, record_bytes, per_group, &scratch) {
                Ok(rows) => report.rows.extend(rows),
                Err(error) => {
                    outcome = Err(error);
                    break 'cells;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    outcome.map(|()| report)
}
