//! Damage to a crashed replica's synced state: a bit flipped in a synced
//! record or in one copy of the metadata file (a damaged sector), which
//! recovery must notice.

use synod_log::format::{decode_metadata_copy, SegmentId, METADATA_COPY_BYTES};
use synod_log::scan::scan_segment;
use synod_log::{BLOCK_BYTES, METADATA_FILE};

use super::MemoryDisk;

/// What a corruption hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::sim) enum Corrupted {
    /// A synced record of a segment.
    Record,
    /// One copy of the metadata file.
    MetadataCopy,
}

impl MemoryDisk {
    /// Flips one bit of a crashed replica's synced state (a damaged
    /// sector): one time in eight, when the metadata file holds a valid
    /// copy, of one of its copies; else of the `choice`-th (modulo their
    /// count) synced record. Returns what was hit (`None`: nothing to flip).
    ///
    /// # Panics
    /// While the replica runs (a world bug), or when recovery would not
    /// notice the flip, or would not use the other metadata copy (a log
    /// bug).
    pub(in crate::sim) fn corrupt(&mut self, choice: u64) -> Option<Corrupted> {
        assert!(
            self.log.is_none(),
            "a record rots while its replica is down"
        );
        let copies = if (choice >> 56) & 7 == 7 {
            self.metadata_copies()
        } else {
            Vec::new()
        };
        let regions = if copies.is_empty() {
            self.synced_records()
        } else {
            copies
                .iter()
                .map(|&(index, _)| {
                    (
                        METADATA_FILE.to_string(),
                        index * BLOCK_BYTES,
                        METADATA_COPY_BYTES,
                    )
                })
                .collect()
        };
        if regions.is_empty() {
            return None;
        }
        let pick = usize::try_from(choice % regions.len() as u64).expect("below a usize length");
        let (name, offset, length) = &regions[pick];
        let within = usize::try_from((choice >> 16) % *length as u64).expect("below a usize");
        let mask = 1u8 << (choice >> 61);
        assert!(self.storage.corrupt(name, offset + within, mask));
        let peeked = self.peek();
        assert!(
            peeked.damaged,
            "recovery missed a flipped bit in synced {name} at {}: {}",
            offset + within,
            peeked.report
        );
        let hit_block = copies.get(pick).map(|&(index, _)| index);
        if let Some(&(_, other)) = copies.iter().find(|&&(index, _)| Some(index) != hit_block) {
            // The intact copy is used: its promise is not lost.
            assert!(
                peeked.metadata.promised >= other.promised,
                "recovery dropped the intact metadata copy ({other:?}) when the other was hit: {:?}",
                peeked.metadata
            );
        }
        self.down_damaged = true;
        Some(if copies.is_empty() {
            Corrupted::Record
        } else {
            Corrupted::MetadataCopy
        })
    }

    /// The valid copies of the durable metadata file: (block index, metadata).
    fn metadata_copies(&self) -> Vec<(usize, synod_log::Metadata)> {
        let Some(file) = self.storage.durable_bytes(METADATA_FILE) else {
            return Vec::new();
        };
        (0..2)
            .filter_map(|index| {
                let block = file.get(index * BLOCK_BYTES..(index + 1) * BLOCK_BYTES)?;
                let copy = decode_metadata_copy(block).ok()??;
                Some((index, copy.metadata))
            })
            .collect()
    }

    /// Every synced record: (segment file, offset, length).
    fn synced_records(&self) -> Vec<(String, usize, usize)> {
        let mut records = Vec::new();
        for name in self.storage.file_names() {
            let Some(segment) = SegmentId::from_file_name(&name) else {
                continue;
            };
            let Some(bytes) = self.storage.durable_bytes(&name) else {
                continue;
            };
            for record in scan_segment(&bytes, segment, None).records {
                records.push((name.clone(), record.offset, record.header.record_bytes()));
            }
        }
        records
    }
}
