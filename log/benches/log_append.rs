//! Criterion: one durable group commit through each back end (io_uring with
//! the linked `fdatasync` and with the adaptive default), beside a bare
//! `O_DIRECT` write + `fdatasync` loop of the same size on the same disk, in
//! the same run. `cargo bench -p synod-log -- --test` runs each once.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synod_log::bench::log_write_bytes;
use synod_log::uring::{open_best, Backend, DiskLog};
use synod_log::{AlignedBuf, LogConfig, SyncMode};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

const FILE_BYTES: u64 = 256 << 20;

fn scratch(name: &str) -> PathBuf {
    let directory = std::env::var_os("SYNOD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .join(format!("log-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

fn bare_loop(c: &mut Criterion, group_name: &str, write_bytes: usize) {
    let directory = scratch("bare");
    let path = directory.join("bare");
    let mut file = std::fs::File::create(&path).expect("create");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES / (1 << 20) {
        file.write_all(&zeros).expect("zero-fill");
    }
    file.sync_all().expect("sync");
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .expect("open O_DIRECT");
    let buffer = AlignedBuf::zeroed(write_bytes);
    let mut offset = 0u64;
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(write_bytes as u64));
    group.bench_function("bare O_DIRECT write + fdatasync", |b| {
        b.iter(|| {
            if offset + write_bytes as u64 > FILE_BYTES {
                offset = 0;
            }
            file.write_all_at(buffer.as_slice(), offset).expect("write");
            file.sync_data().expect("fdatasync");
            offset += write_bytes as u64;
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&directory);
}

fn log_commits(
    c: &mut Criterion,
    group_name: &str,
    record_bytes: usize,
    backend: Backend,
    sync_mode: SyncMode,
) {
    let directory = scratch(&format!("{backend:?}-{sync_mode:?}"));
    let write_bytes = log_write_bytes(record_bytes, 1);
    let config = LogConfig {
        segment_bytes: FILE_BYTES,
        group_bytes_max: write_bytes.max(64 * 1024),
        ..LogConfig::default()
    };
    let (mut log, _) = open_best(&directory, config, sync_mode, Some(backend)).expect("open");
    log.log()
        .storage_mut()
        .wait_for_preparation()
        .expect("prepared");
    let batch = Batch::copy_from_slice(&vec![7u8; record_bytes]);
    let mut slot = 1u64;
    let backend_name = match log {
        DiskLog::Uring(_) => "io_uring",
        DiskLog::Portable(_) => "portable",
    };
    let name = format!("log {backend_name} {sync_mode:?} append + commit");
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(write_bytes as u64));
    group.bench_function(&name, |b| {
        b.iter(|| {
            let entry = AcceptedEntry {
                slot: Slot(slot),
                ballot: Ballot {
                    round: 1,
                    node: NodeId(1),
                },
                batch: batch.clone(),
            };
            log.log().append(&entry).expect("append");
            log.commit().expect("commit");
            slot += 1;
        })
    });
    group.finish();
    drop(log);
    let _ = std::fs::remove_dir_all(&directory);
}

fn durable_append(c: &mut Criterion) {
    for (group_name, record_bytes) in [
        ("durable append 4 KiB write", 1024),
        ("group commit 64 KiB record", 64 * 1024),
    ] {
        bare_loop(c, group_name, log_write_bytes(record_bytes, 1));
        for (backend, sync_mode) in [
            (Backend::IoUring, SyncMode::Fdatasync),
            (Backend::IoUring, SyncMode::Adaptive),
            (Backend::Portable, SyncMode::Fdatasync),
        ] {
            log_commits(c, group_name, record_bytes, backend, sync_mode);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = durable_append
}
criterion_main!(benches);
