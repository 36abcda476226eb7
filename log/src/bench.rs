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
//! each with `fdatasync` and `O_DSYNC` (and `log io_uring, adaptive`, the
//! default, choosing per commit), append a group, commit it and wait
//! until it is durable, one group at a time: their latency is a durable
//! append's. `log io_uring pipelined` builds the next group while the
//! previous one is on the disk (`submit` / `wait`); its latency runs from a
//! group's first append to its durability, waiting behind the previous
//! group included. Every log subject starts with spare segments and
//! retires what it wrote between slices, so segments are recycled and never
//! zero-filled while a slice is timed.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use synod_net::wire::Batch;

use crate::aligned::AlignedBuf;
use crate::error::{LogError, Result};
use crate::format::{BLOCK_BYTES, ENTRY_PREFIX_BYTES, RECORD_ALIGN_BYTES, RECORD_HEADER_BYTES};
use crate::log::LogConfig;
use crate::storage::SyncMode;
use crate::uring::{open_best, Backend, DiskLog};

mod bare;
mod log_subject;

use bare::{bare_slice, prepare_file, segment_bytes_for, Bare};
use log_subject::{create_spares, log_segment_bytes, log_slice, Driver, LogSubject, LOG_SPARES};

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

/// The goals, read off a report's rows, for each back end's
/// default (io_uring adaptive; portable, which writes adaptive as
/// `fdatasync`): a durable append of a one-block group (64 B and 1 KiB
/// records, one per group) within 1.2x of the bare loop's median latency;
/// 64 KiB group commits (one 64 KiB record each) at 90 % or more of the
/// bare payload-size loop's bandwidth; at most one sync per group commit
/// for every log row. One line per goal; cells the report lacks are left
/// out.
#[must_use]
pub fn goals(report: &BenchReport) -> String {
    const DEFAULTS: [(&str, &str); 2] = [
        ("io_uring", "log io_uring, adaptive (default)"),
        ("portable", "log portable, fdatasync"),
    ];
    let find = |subject: &str, record_bytes: usize, per_group: usize| {
        report.rows.iter().find(|row| {
            row.subject == subject
                && row.record_bytes == record_bytes
                && row.records_per_group == per_group
        })
    };
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let mut out = String::new();
    for (backend, subject) in DEFAULTS {
        let cells: Vec<String> = [64, 1024]
            .into_iter()
            .filter_map(|record_bytes| {
                let bare = find("bare O_DIRECT+fdatasync", record_bytes, 1)?;
                let log = find(subject, record_bytes, 1)?;
                let ratio = log.median_latency_us / bare.median_latency_us.max(1e-9);
                Some(format!(
                    "{record_bytes} B {ratio:.3}x ({:.0} against {:.0} us, {})",
                    log.median_latency_us,
                    bare.median_latency_us,
                    verdict(ratio <= 1.2)
                ))
            })
            .collect();
        if !cells.is_empty() {
            out.push_str(&format!(
                "goal: {backend} durable append within 1.2x of the bare loop: {}\n",
                cells.join(", ")
            ));
        }
    }
    for (backend, subject) in DEFAULTS {
        let bare = find("bare O_DIRECT+fdatasync, payload-size writes", 64 * 1024, 1);
        if let (Some(bare), Some(log)) = (bare, find(subject, 64 * 1024, 1)) {
            let share = log.megabytes_per_second / bare.megabytes_per_second.max(1e-9);
            out.push_str(&format!(
                "goal: {backend} 64 KiB group commits at 90 % of bare 64 KiB writes' bandwidth: {share:.3} ({:.1} against {:.1} MB/s, {})\n",
                log.megabytes_per_second,
                bare.megabytes_per_second,
                verdict(share >= 0.9)
            ));
        }
    }
    let worst = report
        .rows
        .iter()
        .filter(|row| row.subject.starts_with("log "))
        .map(|row| row.syncs_per_group)
        .fold(None, |worst: Option<f64>, syncs| {
            Some(worst.map_or(syncs, |w| w.max(syncs)))
        });
    if let Some(worst) = worst {
        out.push_str(&format!(
            "goal: at most one sync per group commit: at most {worst:.2} ({})\n",
            verdict(worst <= 1.0)
        ));
    }
    out
}

pub(crate) struct Sample {
    pub(crate) groups: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
    /// Log subjects: the time to append each group (copy and checksum).
    pub(crate) builds: Vec<Duration>,
    pub(crate) syncs: u64,
}

/// The bytes one group commit of the log writes.
#[must_use]
pub fn log_write_bytes(record_bytes: usize, records_per_group: usize) -> usize {
    let entry = ENTRY_PREFIX_BYTES + record_bytes.next_multiple_of(RECORD_ALIGN_BYTES);
    (RECORD_HEADER_BYTES + entry * records_per_group).next_multiple_of(BLOCK_BYTES)
}

pub(crate) fn bench_io(op: &'static str, path: &Path, error: std::io::Error) -> LogError {
    LogError::from_io(op, path, error)
}

pub(crate) fn new_sample() -> Sample {
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

const SUBJECTS: [(&str, Subject); 11] = [
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
        "log io_uring, adaptive (default)",
        log_subject(Backend::IoUring, SyncMode::Adaptive, Driver::OneAtATime),
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
    // hits them alike; medians over the slices are reported. Each round
    // starts one subject later than the one before, so no subject always
    // runs right after the same neighbour (whose retired segments or
    // journal commits it would otherwise meet every time).
    let count = runners.len();
    for round in 0..config.repeats {
        for turn in 0..count {
            let index = (round + turn) % count;
            samples[index].push(runners[index].slice(
                config.seconds_per_cell,
                per_group,
                payload_bytes,
            )?);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        subject: &str,
        record_bytes: usize,
        latency_us: f64,
        megabytes: f64,
        syncs: f64,
    ) -> BenchRow {
        BenchRow {
            subject: subject.to_string(),
            record_bytes,
            records_per_group: 1,
            write_bytes: log_write_bytes(record_bytes, 1),
            appends_per_second: megabytes * 1e6 / record_bytes as f64,
            megabytes_per_second: megabytes,
            median_latency_us: latency_us,
            median_build_us: subject.starts_with("log ").then_some(0.3),
            syncs_per_group: syncs,
            ratio_to_bare: 1.0,
        }
    }

    #[test]
    fn the_goals_are_read_off_the_rows() {
        let report = BenchReport {
            rows: vec![
                row("bare O_DIRECT+fdatasync", 64, 100.0, 0.6, 1.0),
                row("log io_uring, adaptive (default)", 64, 110.0, 0.6, 0.0),
                row("log portable, fdatasync", 64, 130.0, 0.5, 1.0),
                row(
                    "bare O_DIRECT+fdatasync, payload-size writes",
                    65536,
                    150.0,
                    400.0,
                    1.0,
                ),
                row("log io_uring, adaptive (default)", 65536, 155.0, 380.0, 0.0),
                row("log portable, fdatasync", 65536, 170.0, 340.0, 1.0),
            ],
        };
        let text = goals(&report);
        assert!(
            text.contains("io_uring durable append within 1.2x of the bare loop: 64 B 1.100x (110 against 100 us, met)"),
            "{text}"
        );
        assert!(text.contains("portable durable append within 1.2x of the bare loop: 64 B 1.300x (130 against 100 us, missed)"), "{text}");
        assert!(text.contains("io_uring 64 KiB group commits at 90 % of bare 64 KiB writes' bandwidth: 0.950 (380.0 against 400.0 MB/s, met)"), "{text}");
        assert!(text.contains("portable 64 KiB group commits at 90 % of bare 64 KiB writes' bandwidth: 0.850 (340.0 against 400.0 MB/s, missed)"), "{text}");
        assert!(
            text.contains("at most one sync per group commit: at most 1.00 (met)"),
            "{text}"
        );
    }
}
