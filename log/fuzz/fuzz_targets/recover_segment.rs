//! Arbitrary bytes as a log segment (and as the metadata and snapshot
//! files): recovery returns an error or a valid prefix, never panics, and
//! allocates no more than a bounded multiple of its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synod_log::format::{SegmentHeader, BLOCK_BYTES};
use synod_log::{CorruptionPolicy, Log, LogConfig, MemStorage, SegmentId};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let storage = MemStorage::new();
    let mut segment = Vec::with_capacity(BLOCK_BYTES + body.len());
    if mode & 1 == 1 {
        // A valid header, so the fuzzer spends its time on the records.
        let mut header = vec![0u8; BLOCK_BYTES];
        let length = (BLOCK_BYTES + body.len()) as u64;
        SegmentHeader { segment: SegmentId(1), segment_bytes: length, recycled: mode & 16 == 16 }.encode(&mut header);
        segment.extend_from_slice(&header);
    }
    segment.extend_from_slice(body);
    storage.put_file(&SegmentId(1).file_name(), segment);
    if mode & 2 == 2 {
        storage.put_file(synod_log::METADATA_FILE, body.iter().copied().take(2 * BLOCK_BYTES).collect());
    }
    if mode & 4 == 4 {
        storage.put_file(synod_log::SNAPSHOT_FILE, body.to_vec());
    }
    let on_corruption = if mode & 8 == 8 {
        CorruptionPolicy::RejoinAsNonVoter
    } else {
        CorruptionPolicy::Refuse
    };
    let config = LogConfig {
        segment_bytes: 1 << 20,
        group_bytes_max: 64 * 1024,
        on_corruption,
        ..LogConfig::default()
    };
    if let Ok((mut log, recovered)) = Log::open(storage, config) {
        // Whatever came back must be appendable after.
        let _ = recovered.accepted.len();
        let _ = log.commit();
    }
});
