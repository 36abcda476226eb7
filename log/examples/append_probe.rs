//! Times the parts of a group commit through the portable back end:
//! building the group (copy + checksum) and writing + syncing it.
//!
//! `cargo run --release -p synod-log --example append_probe -- DIR RECORD_BYTES PER_GROUP [uring|adaptive]`
//! (`uring`: io_uring with the linked `fdatasync`; `adaptive`: io_uring with
//! `SyncMode::Adaptive`, printing how many commits went each way;
//! `COMMITS=n` commits, 4000 by default).

use std::time::Instant;

use synod_log::uring::{open_best, Backend};
use synod_log::{LogConfig, SyncMode};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

fn main() {
    let mut arguments = std::env::args().skip(1);
    let directory = std::path::PathBuf::from(arguments.next().expect("DIR")).join("append-probe");
    let record_bytes: usize = arguments
        .next()
        .map_or(65536, |a| a.parse().expect("bytes"));
    let per_group: usize = arguments.next().map_or(16, |a| a.parse().expect("count"));
    let (backend, sync_mode) = match arguments.next().as_deref() {
        Some("uring") => (Backend::IoUring, SyncMode::Fdatasync),
        Some("adaptive") => (Backend::IoUring, SyncMode::Adaptive),
        _ => (Backend::Portable, SyncMode::Fdatasync),
    };
    let commit_count: usize = std::env::var("COMMITS")
        .ok()
        .map_or(4000, |n| n.parse().expect("count"));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("dir");
    let write_bytes = synod_log::bench::log_write_bytes(record_bytes, per_group);
    // SPARES=N: start with N retired segments, so every segment is recycled.
    let spares: u64 = std::env::var("SPARES")
        .ok()
        .map_or(0, |n| n.parse().expect("count"));
    let segment_bytes: u64 = if spares > 0 { 256 << 20 } else { 1 << 30 };
    for index in 0..spares {
        let path = directory.join(format!("{:016x}.spare", 0xffff_0000 + index));
        let mut file = std::fs::File::create(&path).expect("spare");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..segment_bytes >> 20 {
            std::io::Write::write_all(&mut file, &zeros).expect("zero-fill");
        }
        file.sync_all().expect("sync");
    }
    let config = LogConfig {
        segment_bytes,
        group_bytes_max: write_bytes.max(64 * 1024),
        ..LogConfig::default()
    };
    let opening = Instant::now();
    let (mut log, _) = open_best(&directory, config, sync_mode, Some(backend)).expect("open");
    log.log()
        .storage_mut()
        .wait_for_preparation()
        .expect("prepared");
    // Two segments made: the first at open, the next in the background.
    println!(
        "open with two new segments: {:.0} ms",
        opening.elapsed().as_secs_f64() * 1e3
    );
    let batch = Batch::copy_from_slice(&vec![0xA5u8; record_bytes]);
    let ballot = Ballot {
        round: 1,
        node: NodeId(1),
    };
    let mut slot = 1u64;
    let (mut appends, mut commits) = (Vec::new(), Vec::new());
    let mut total_us = 0.0;
    for _ in 0..commit_count {
        let started = Instant::now();
        for _ in 0..per_group {
            let entry = AcceptedEntry {
                slot: Slot(slot),
                ballot,
                batch: batch.clone(),
            };
            log.log().append(&entry).expect("append");
            slot += 1;
        }
        let appended = Instant::now();
        log.commit().expect("commit");
        appends.push((appended - started).as_secs_f64() * 1e6);
        commits.push(appended.elapsed().as_secs_f64() * 1e6);
        total_us += commits[commits.len() - 1];
    }
    appends.sort_by(f64::total_cmp);
    commits.sort_by(f64::total_cmp);
    println!(
        "{record_bytes} B x {per_group}: append p50 {:.1} us ({:.2} GB/s), commit p50 {:.1} us",
        appends[appends.len() / 2],
        (record_bytes * per_group) as f64 / appends[appends.len() / 2] / 1e3,
        commits[commits.len() / 2]
    );
    println!(
        "commit mean {:.1} us, p99 {:.1} us",
        total_us / commits.len() as f64,
        commits[commits.len() * 99 / 100]
    );
    if let synod_log::uring::DiskLog::Uring(uring) = &log {
        if let Some(chooser) = uring.writer().chooser() {
            let (linked, dsync) = chooser.commits_by_way();
            println!(
                "adaptive: {linked} commits linked fdatasync, {dsync} RWF_DSYNC, {} switches, now {:?}",
                chooser.switches(),
                chooser.current()
            );
        }
    }
    drop(log);
    let _ = std::fs::remove_dir_all(&directory);
}
