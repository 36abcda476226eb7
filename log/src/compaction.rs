//! Durable state the log tracks for compaction: which segment holds the
//! last record of each slot, the metadata, the snapshot; and the metadata
//! file and snapshot writes.
//!
//! Invariants:
//! - `live[segment]` counts the slots above the snapshot whose last durable
//!   record lies in `segment`; a segment with none is dead.
//! - Only a prefix of dead segments below the active one is retired, so the
//!   chain of commit sequence numbers recovery checks never gets a hole.
//! - The metadata file holds the durable metadata before any segment (which
//!   may hold a newer metadata record) is retired.
//! - `metadata` is what recovery would return now: promised ballot and
//!   commit point by maximum, `recovering` by log order ([`MetadataOrder`]);
//!   a metadata copy is placed in log order so that no record appended
//!   before it, landing later, can bring back an older `recovering` flag.

use std::collections::BTreeMap;

use synod_net::wire::{Slot, Snapshot};

use crate::error::{LogError, Result};
use crate::format::{
    encode_metadata_copy, encode_snapshot, CommitSeq, Metadata, MetadataCopy, RecordHeader,
    SegmentId, BLOCK_BYTES,
};
use crate::log::Log;
use crate::recovery::{MetadataOrder, Recovered, Resume, METADATA_FILE, SNAPSHOT_FILE};
use crate::storage::Storage;

/// What is durable, indexed for compaction.
#[derive(Debug, Default)]
pub(crate) struct DurableState {
    slot_index: BTreeMap<Slot, SegmentId>,
    live: BTreeMap<SegmentId, u64>,
    metadata: Metadata,
    metadata_order: MetadataOrder,
    metadata_file_seq: u64,
    snapshot_slot: Slot,
    first_commit: BTreeMap<SegmentId, CommitSeq>,
}

impl DurableState {
    pub(crate) fn new(recovered: &Recovered, resume: &Resume) -> DurableState {
        let mut live: BTreeMap<SegmentId, u64> = resume
            .segments
            .iter()
            .map(|&segment| (segment, 0))
            .collect();
        for segment in resume.slot_index.values() {
            *live.entry(*segment).or_default() += 1;
        }
        DurableState {
            slot_index: resume.slot_index.clone(),
            live,
            metadata: recovered.metadata,
            metadata_order: resume.metadata_order,
            metadata_file_seq: resume.metadata_file_seq,
            snapshot_slot: recovered
                .snapshot
                .as_ref()
                .map_or(Slot(0), |snapshot| snapshot.slot),
            first_commit: recovered
                .report
                .segments
                .iter()
                .filter_map(|report| Some((report.segment, report.commits?.0)))
                .collect(),
        }
    }

    pub(crate) fn note_segment(&mut self, segment: SegmentId) {
        self.live.entry(segment).or_default();
    }

    pub(crate) fn forget_segment(&mut self, segment: SegmentId) {
        self.live.remove(&segment);
        self.first_commit.remove(&segment);
        self.slot_index.retain(|_, holder| *holder != segment);
    }

    pub(crate) fn note_durable_record(&mut self, segment: SegmentId, header: &RecordHeader) {
        let mut slot = header.first_slot;
        for _ in 0..header.entry_count {
            if slot > self.snapshot_slot {
                if let Some(previous) = self.slot_index.insert(slot, segment) {
                    let count = self
                        .live
                        .get_mut(&previous)
                        .expect("indexed segments are tracked");
                    assert!(*count > 0, "a live count covers the slots indexed to it");
                    *count -= 1;
                }
                *self.live.entry(segment).or_default() += 1;
            }
            slot = slot.next();
        }
    }

    pub(crate) fn note_durable_group(&mut self, segment: SegmentId, commit_seq: CommitSeq) {
        self.first_commit.entry(segment).or_insert(commit_seq);
    }

    /// The metadata records of durable group `commit_seq`, folded.
    pub(crate) fn note_durable_metadata(&mut self, metadata: Metadata, commit_seq: CommitSeq) {
        self.metadata = self
            .metadata_order
            .take_record(self.metadata, metadata, commit_seq);
    }

    fn drop_through(&mut self, slot: Slot) {
        let kept = self.slot_index.split_off(&slot.next());
        for segment in self.slot_index.values() {
            let count = self
                .live
                .get_mut(segment)
                .expect("indexed segments are tracked");
            *count -= 1;
        }
        self.slot_index = kept;
        self.snapshot_slot = slot;
    }

    /// The durable metadata (file and records combined).
    pub(crate) fn metadata(&self) -> Metadata {
        self.metadata
    }
}

impl<S: Storage> Log<S> {
    /// Writes acceptor metadata to the metadata file now: the copy not
    /// holding the last value is overwritten and synced, so a torn write
    /// leaves the other copy intact.
    ///
    /// In log order the copy comes after everything appended so far: it
    /// supersedes the metadata records of groups already sealed (in flight
    /// or waiting for a retry), and the metadata records already in the
    /// group being built are rewritten to agree with it. Metadata appended
    /// after this call supersedes it once durable. The promised ballot and
    /// commit point written are at least the durable ones (they only rise);
    /// `recovering` is `metadata.recovering`.
    ///
    /// # Errors
    /// I/O errors (a full disk among them); the last good copy is intact.
    pub fn persist_metadata(&mut self, metadata: Metadata) -> Result<()> {
        let log_start = self.first_kept_commit();
        let combined = self.state.metadata.followed_by(metadata);
        let supersedes_below = self.next_commit_seq();
        self.write_metadata_file(combined, log_start, supersedes_below)?;
        self.supersede_pending_metadata(metadata);
        Ok(())
    }

    /// The first group of the oldest segment kept (or the next group when
    /// the kept segments hold none).
    fn first_kept_commit(&self) -> CommitSeq {
        self.state
            .live
            .keys()
            .find_map(|segment| self.state.first_commit.get(segment).copied())
            .unwrap_or(self.next_commit_seq())
    }

    /// Writes `metadata` (already combined with the durable value) as the
    /// next copy, placed in log order before group `supersedes_below`.
    fn write_metadata_file(
        &mut self,
        metadata: Metadata,
        log_start: CommitSeq,
        supersedes_below: CommitSeq,
    ) -> Result<()> {
        assert!(
            supersedes_below >= self.state.metadata_order.records_from,
            "a metadata copy never goes back in log order"
        );
        assert!(
            metadata.promised >= self.state.metadata.promised
                && metadata.commit_point >= self.state.metadata.commit_point,
            "durable promises and commit points never fall"
        );
        let Some(write_seq) = self.state.metadata_file_seq.checked_add(1) else {
            // Only a damaged (or crafted) copy with a valid checksum gets here.
            return Err(LogError::Corruption {
                path: self.storage.path_of(METADATA_FILE),
                offset: (self.state.metadata_file_seq % 2) * BLOCK_BYTES as u64,
                reason: "the metadata copy's write number is u64::MAX: no later copy can be \
                         numbered"
                    .to_string(),
            });
        };
        let copy_index = (write_seq % 2) as usize;
        let mut block = vec![0u8; BLOCK_BYTES];
        let copy = MetadataCopy {
            write_seq,
            metadata,
            log_start,
            supersedes_below,
        };
        encode_metadata_copy(&mut block, &copy);
        let exists = self
            .storage
            .read(METADATA_FILE, 2 * BLOCK_BYTES as u64)?
            .is_some_and(|file| file.len() == 2 * BLOCK_BYTES);
        if exists {
            self.storage
                .overwrite(METADATA_FILE, (copy_index * BLOCK_BYTES) as u64, &block)?;
        } else {
            // A new file gets both copies (the other numbered one lower), so
            // recovery can take any block that is not a valid copy for
            // damage: a zeroed newest copy never passes for "never written".
            let mut file = vec![0u8; 2 * BLOCK_BYTES];
            file[copy_index * BLOCK_BYTES..(copy_index + 1) * BLOCK_BYTES].copy_from_slice(&block);
            let other_index = 1 - copy_index;
            encode_metadata_copy(
                &mut file[other_index * BLOCK_BYTES..(other_index + 1) * BLOCK_BYTES],
                &MetadataCopy {
                    write_seq: write_seq - 1,
                    ..copy
                },
            );
            self.storage.write_atomic(METADATA_FILE, &file)?;
        }
        self.state.metadata_file_seq = write_seq;
        self.state.metadata = metadata;
        self.state.metadata_order = MetadataOrder {
            records_from: supersedes_below,
        };
        Ok(())
    }

    /// The durable acceptor metadata: what a restart would recover now
    /// (promised ballot and commit point by maximum, `recovering` the
    /// latest durable value in log order).
    #[must_use]
    pub fn durable_metadata(&self) -> Metadata {
        self.state.metadata()
    }

    /// The slot of the durable snapshot (0 when none).
    #[must_use]
    pub fn snapshot_slot(&self) -> Slot {
        self.state.snapshot_slot
    }

    /// Makes a snapshot durable (written aside, synced, renamed into place,
    /// directory synced), then drops every record at or below its slot and
    /// retires the segments left without live records.
    ///
    /// # Errors
    /// I/O errors (a full disk among them): the previous snapshot and every
    /// segment are then intact.
    ///
    /// # Panics
    /// If the snapshot is older than the durable one (a programmer error).
    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        assert!(
            snapshot.slot >= self.state.snapshot_slot,
            "snapshots only move forward"
        );
        let file = encode_snapshot(snapshot.slot, snapshot.bytes.as_bytes());
        self.storage.write_atomic(SNAPSHOT_FILE, &file)?;
        self.state.drop_through(snapshot.slot);
        self.compact()
    }

    /// Retires the oldest segments whose every record is superseded or at or
    /// below the snapshot (after checkpointing the metadata file). Returns
    /// nothing; see [`Log::segment_count`].
    ///
    /// # Errors
    /// I/O errors while checkpointing or retiring.
    pub fn compact(&mut self) -> Result<()> {
        let dead: Vec<SegmentId> = self
            .state
            .live
            .iter()
            .take_while(|(&segment, &count)| count == 0 && segment < self.active)
            .map(|(&segment, _)| segment)
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        // The oldest kept group after the retirement, written first: a crash
        // in between leaves older segments whose groups lie below it, which
        // recovery accepts.
        let survivor = self
            .state
            .live
            .keys()
            .find(|segment| !dead.contains(segment))
            .copied();
        let log_start = survivor
            .and_then(|segment| self.state.first_commit.get(&segment).copied())
            .unwrap_or(self.next_commit_seq());
        // The durable metadata, in log order where it stands: records of
        // groups not yet durable still supersede it.
        let order = self.state.metadata_order.records_from;
        self.write_metadata_file(self.state.metadata, log_start, order)?;
        for segment in dead {
            self.state.first_commit.remove(&segment);
            self.storage
                .retire_segment(segment, self.config.spare_segments_max)?;
            self.state.live.remove(&segment);
        }
        Ok(())
    }

    /// How many segments the log holds (the active one included).
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.state.live.len()
    }
}
