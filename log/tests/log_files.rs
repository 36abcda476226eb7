//! The log on a real directory: both back ends, every sync mode, bad input
//! (missing directory, foreign and newer files, corruption on disk).

use std::path::PathBuf;

use synod_log::uring::{open_best, Backend};
use synod_log::{FileStorage, Log, LogConfig, LogError, SegmentId, SyncMode};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let base = std::env::var_os("SYNOD_LOG_TEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        let path = base.join(format!("synod-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 * 1024,
        group_bytes_max: 64 * 1024,
        ..LogConfig::default()
    }
}

fn entry(slot: u64, length: usize) -> AcceptedEntry {
    AcceptedEntry {
        slot: Slot(slot),
        ballot: Ballot {
            round: 1,
            node: NodeId(2),
        },
        batch: Batch::copy_from_slice(&vec![slot as u8; length]),
    }
}

fn write_and_reopen(name: &str, backend: Backend, mode: SyncMode) {
    let directory = TempDir::new(name);
    let (mut log, recovered) =
        open_best(&directory.0, config(), mode, Some(backend)).expect("opening a new log");
    assert!(recovered.accepted.is_empty());
    for slot in 1..=400u64 {
        log.log().append(&entry(slot, 900)).expect("room");
        if slot.is_multiple_of(9) {
            log.commit().expect("commit");
        }
    }
    let durable = log.commit().expect("commit");
    assert!(durable.is_some());
    drop(log);
    let storage = FileStorage::open(&directory.0, mode).expect("reopen");
    let (_, recovered) = Log::open(storage, config()).expect("recover");
    assert_eq!(recovered.accepted.len(), 400);
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.accepted[399], entry(400, 900));
}

#[test]
fn the_portable_back_end_round_trips_with_fdatasync() {
    write_and_reopen("portable-fdatasync", Backend::Portable, SyncMode::Fdatasync);
}

#[test]
fn the_portable_back_end_round_trips_with_o_dsync() {
    write_and_reopen("portable-dsync", Backend::Portable, SyncMode::Dsync);
}

#[test]
fn the_io_uring_back_end_round_trips_with_a_linked_fdatasync() {
    write_and_reopen("uring-fdatasync", Backend::IoUring, SyncMode::Fdatasync);
}

#[test]
fn the_io_uring_back_end_round_trips_with_o_dsync() {
    write_and_reopen("uring-dsync", Backend::IoUring, SyncMode::Dsync);
}

#[test]
fn the_portable_back_end_writes_adaptive_as_fdatasync() {
    write_and_reopen("portable-adaptive", Backend::Portable, SyncMode::Adaptive);
}

#[test]
fn the_io_uring_back_end_round_trips_with_the_adaptive_default() {
    write_and_reopen("uring-adaptive", Backend::IoUring, SyncMode::Adaptive);
}

/// An adaptive log's commits go both ways (it tries the `RWF_DSYNC` write
/// after its first 16 linked ones), and recovery reads every record back
/// whichever way it went.
#[test]
fn an_adaptive_io_uring_log_commits_both_ways_and_recovers_every_record() {
    assert_eq!(SyncMode::default(), SyncMode::Adaptive);
    let directory = TempDir::new("uring-adaptive-both");
    let (mut log, _) = open_best(
        &directory.0,
        config(),
        SyncMode::Adaptive,
        Some(Backend::IoUring),
    )
    .expect("opening a new log");
    const COMMITS: u64 = 64;
    for slot in 1..=COMMITS {
        log.log().append(&entry(slot, 3000)).expect("room");
        log.commit().expect("commit");
    }
    let syncs = log.sync_count();
    if log.backend() == Backend::IoUring {
        assert!(
            (16..COMMITS).contains(&syncs),
            "{syncs} fdatasyncs for {COMMITS} commits: both ways expected"
        );
    } else {
        eprintln!("io_uring unavailable: the portable back end ran, only fdatasync checked");
        assert_eq!(syncs, COMMITS);
    }
    drop(log);
    let storage = FileStorage::open(&directory.0, SyncMode::Adaptive).expect("reopen");
    let (_, recovered) = Log::open(storage, config()).expect("recover");
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.accepted.len(), COMMITS as usize);
    for (index, accepted) in recovered.accepted.iter().enumerate() {
        assert_eq!(*accepted, entry(index as u64 + 1, 3000));
    }
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let error = FileStorage::open("/nonexistent/synod-log", SyncMode::Fdatasync)
        .err()
        .expect("missing");
    assert!(
        matches!(error, LogError::MissingDirectory { .. }),
        "{error}"
    );
}

#[test]
fn a_second_opener_is_refused() {
    let directory = TempDir::new("locked");
    let _first = FileStorage::open(&directory.0, SyncMode::Fdatasync).expect("first");
    let error = FileStorage::open(&directory.0, SyncMode::Fdatasync)
        .err()
        .expect("second");
    assert!(matches!(error, LogError::Locked { .. }), "{error}");
}

fn filled_directory(name: &str) -> TempDir {
    let directory = TempDir::new(name);
    let storage = FileStorage::open(&directory.0, SyncMode::Fdatasync).expect("open");
    let (mut log, _) = Log::open(storage, config()).expect("recover");
    for slot in 1..=20u64 {
        log.append(&entry(slot, 3000)).expect("room");
        log.commit().expect("commit");
    }
    directory
}

fn reopen(directory: &TempDir) -> Result<synod_log::Recovered, LogError> {
    let storage = FileStorage::open(&directory.0, SyncMode::Fdatasync)?;
    Log::open(storage, config()).map(|(_, recovered)| recovered)
}

fn flip_byte(path: &std::path::Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read");
    byte[0] ^= 0x10;
    file.write_all_at(&byte, offset).expect("write");
}

#[test]
fn corruption_on_disk_is_reported_with_file_and_offset_and_changes_nothing() {
    let directory = filled_directory("corrupt");
    let segment = directory.0.join(SegmentId(1).file_name());
    flip_byte(&segment, 4096 + 4096 + 20);
    let before = std::fs::read(&segment).expect("read");
    let error = reopen(&directory).expect_err("corruption");
    match &error {
        LogError::Corruption { path, offset, .. } => {
            assert_eq!(path, &segment);
            assert_eq!(*offset, 8192);
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        std::fs::read(&segment).expect("read"),
        before,
        "refusing changes nothing"
    );
}

#[test]
fn a_damaged_last_group_on_disk_is_cut_off() {
    let directory = filled_directory("torn");
    let segment = directory.0.join(SegmentId(1).file_name());
    // 20 groups of one 3000-byte entry: a block each, from 4096.
    flip_byte(&segment, 4096 + 19 * 4096 + 100);
    let recovered = reopen(&directory).expect("a torn tail is not an error");
    assert!(recovered.damaged);
    assert!(recovered.metadata.recovering, "the damage is marked");
    assert_eq!(recovered.accepted.len(), 19);
    // The tail is cut off, and `synod log inspect` still says the next
    // restart rejoins as a non-voter: the marker is in the metadata file.
    let report = synod_log::inspect::inspect(&directory.0, synod_log::inspect::Listing::Summary)
        .expect("inspect");
    assert!(report.recovery.damage.is_empty(), "{report}");
    assert!(report.damaged, "{report}");
    let text = report.to_string();
    assert!(text.contains("recovering YES"), "{text}");
    assert!(text.contains("had not finished recovering"), "{text}");
}

#[test]
fn foreign_and_newer_files_are_refused() {
    let directory = filled_directory("foreign");
    let segment = directory.0.join(SegmentId(1).file_name());
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[8] = 9; // format version 9
    std::fs::write(&segment, &bytes).expect("write");
    let error = reopen(&directory).expect_err("newer");
    assert!(
        matches!(error, LogError::UnsupportedVersion { found: 9, .. }),
        "{error}"
    );
    bytes[0..8].copy_from_slice(b"NOTOURS!");
    std::fs::write(&segment, &bytes).expect("write");
    let error = reopen(&directory).expect_err("foreign");
    assert!(matches!(error, LogError::ForeignFile { .. }), "{error}");
}

/// A segment whose name is spelt otherwise (upper-case hex) and a segment
/// that is a dangling symbolic link are refused by name, not skipped with
/// their records; the files stay as they were.
#[test]
fn segments_that_cannot_be_read_as_named_are_refused() {
    let directory = filled_directory("misnamed");
    let segment = directory.0.join(SegmentId(1).file_name());
    let upper = directory.0.join("000000000000000A.seg");
    std::fs::copy(&segment, &upper).expect("copy");
    let error = reopen(&directory).expect_err("an upper-case segment name");
    match &error {
        LogError::ForeignFile { path, reason } => {
            assert_eq!(path, &upper);
            assert!(reason.contains("lower-case hex"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert!(upper.exists(), "refusing removes nothing");
    std::fs::remove_file(&upper).expect("remove");
    let dangling = directory.0.join(SegmentId(9).file_name());
    std::os::unix::fs::symlink(directory.0.join("nowhere"), &dangling).expect("symlink");
    let error = reopen(&directory).expect_err("a dangling segment link");
    match &error {
        LogError::ForeignFile { path, reason } => {
            assert_eq!(path, &dangling);
            assert!(reason.contains("cannot be opened"), "{reason}");
        }
        other => panic!("{other}"),
    }
    std::fs::remove_file(&dangling).expect("remove");
    assert_eq!(reopen(&directory).expect("recovers").accepted.len(), 20);
}

#[test]
fn inspect_lists_segments_records_and_damage_without_writing() {
    let directory = filled_directory("inspect");
    let clean = synod_log::inspect::inspect(&directory.0, synod_log::inspect::Listing::Records)
        .expect("inspect");
    assert!(!clean.damaged);
    assert_eq!(clean.records.len(), 20);
    let text = clean.to_string();
    assert!(text.contains("slots 1..=20"), "{text}");
    assert!(text.contains("damage: none"), "{text}");
    let segment = directory.0.join(SegmentId(1).file_name());
    flip_byte(&segment, 4096 + 4096 + 20);
    let before = std::fs::read(&segment).expect("read");
    let damaged = synod_log::inspect::inspect(&directory.0, synod_log::inspect::Listing::Summary)
        .expect("corruption is reported, not an error");
    assert!(damaged.damaged);
    assert!(damaged.to_string().contains("CORRUPTION"), "{damaged}");
    assert_eq!(std::fs::read(&segment).expect("read"), before);
}
