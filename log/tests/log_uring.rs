//! The io_uring back end on a ring the caller owns: the log's buffers sit
//! at an offset in the caller's buffer table, its segment in one slot of the
//! caller's file table, and its completions among the caller's own.

use std::path::PathBuf;

use io_uring::{opcode, IoUring};
use synod_log::uring::{RingSlots, UringWriter, TAG_COUNT};
use synod_log::{AlignedBuf, FileStorage, Log, LogConfig, SyncMode};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

const CALLER_TAG: u64 = 7;

fn directory() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("synod-log-caller-ring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("directory");
    path
}

#[test]
fn the_log_shares_a_ring_with_its_caller() {
    let built: std::io::Result<IoUring> = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(32);
    let Ok(mut ring) = built else {
        println!("SKIPPED: io_uring is unavailable here");
        return;
    };
    let path = directory();
    let storage = FileStorage::open(&path, SyncMode::Fdatasync).expect("open");
    let config = LogConfig {
        segment_bytes: 128 * 1024,
        group_bytes_max: 32 * 1024,
        ..LogConfig::default()
    };
    let (mut log, _) = Log::open(storage, config.clone()).expect("recover");

    // The caller's own buffer takes index 0; the log's two follow at 1 and 2.
    let mut own_buffer = AlignedBuf::zeroed(4096);
    let [first, second] = log.buffers_for_registration();
    let table = [own_buffer.iovec(), first, second];
    // SAFETY: the buffers outlive the ring's use of them: the ring is
    // dropped explicitly before `log` and `own_buffer` at the end of this
    // test, no operation is in flight then, and the buffers never move or
    // shrink (AlignedBuf).
    unsafe { ring.submitter().register_buffers(&table) }.expect("register buffers");
    ring.submitter()
        .register_files(&[-1, -1, -1, -1])
        .expect("register files");
    let slots = RingSlots {
        buffer_index_base: 1,
        file_index: 3,
        tag_base: 100,
    };
    let mut writer = UringWriter::new(slots, SyncMode::Fdatasync);
    assert!(writer.owns(100) && writer.owns(100 + TAG_COUNT - 1) && !writer.owns(CALLER_TAG));

    let mut durable = None;
    for slot in 1..=60u64 {
        let entry = AcceptedEntry {
            slot: Slot(slot),
            ballot: Ballot {
                round: 1,
                node: NodeId(1),
            },
            batch: Batch::copy_from_slice(&vec![slot as u8; 2500]),
        };
        log.append(&entry).expect("room");
        // One loop turn: the caller's own operation and the log's group
        // commit go out with one submit.
        let own = opcode::Nop::new().build().user_data(CALLER_TAG);
        let pushed = {
            let (submitter, mut queue, _) = ring.split();
            // SAFETY: a NOP carries no buffer.
            unsafe { queue.push(&own) }.expect("room");
            writer
                .prepare(&mut log, &submitter, &mut queue)
                .expect("prepare")
        };
        assert!(
            pushed > 0,
            "a pending group goes out when nothing is in flight"
        );
        let mut own_seen = false;
        while writer.is_busy() || !own_seen {
            ring.submit_and_wait(1).expect("submit");
            let completions: Vec<(u64, i32)> = ring
                .completion()
                .map(|entry| (entry.user_data(), entry.result()))
                .collect();
            for (user_data, result) in completions {
                if writer.owns(user_data) {
                    if let Some(position) = writer
                        .complete(&mut log, user_data, result)
                        .expect("complete")
                    {
                        durable = Some(position);
                    }
                } else {
                    assert_eq!(user_data, CALLER_TAG);
                    own_seen = true;
                }
            }
        }
    }
    assert_eq!(durable, log.durable());
    assert!(
        writer.sync_count() >= 60,
        "one linked sync per group commit"
    );
    drop(ring);
    drop(log);
    drop(own_buffer);
    let storage = FileStorage::open(&path, SyncMode::Fdatasync).expect("reopen");
    let (_, recovered) = Log::open(storage, config).expect("recover");
    assert_eq!(recovered.accepted.len(), 60);
    assert!(!recovered.damaged, "{}", recovered.report);
    let _ = std::fs::remove_dir_all(&path);
}
