//! The group commit being built: records copied once into an aligned buffer.
//!
//! Sans-IO: this module fills a buffer and seals it; the back ends write it.
//!
//! Invariants:
//! - `used` never exceeds the group capacity (the buffer less one block);
//!   the sealed length is `used` rounded up to the block and every byte
//!   between them is zero; with a terminator, one more zero block follows.
//! - Records start at [`RECORD_ALIGN_BYTES`] boundaries; an accepted record
//!   holds consecutive slots of one ballot.
//! - A sealed group has at least one record and exactly one group-end flag,
//!   on its last record.

use synod_net::wire::{AcceptedEntry, Ballot, Slot};

use crate::aligned::{copy_for_device, AlignedBuf};
use crate::error::{LogError, Result};
use crate::format::{
    encode_entry_prefix, seal_record, CommitSeq, Metadata, RecordHeader, RecordKind, SegmentId,
    BLOCK_BYTES, ENTRY_PREFIX_BYTES, FLAG_GROUP_END, FLAG_RECOVERING, RECORD_ALIGN_BYTES,
    RECORD_HEADER_BYTES,
};
use synod_net::checksum::crc32c_append;

/// Whether a group write carries a zero block after the group, so that
/// the block after the durable end is known to be zeros even in a recycled
/// segment (recovery then never mistakes stale bytes for a torn write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Terminator {
    /// The segment past the group is zeros already.
    None,
    /// Write one zero block after the group.
    ZeroBlock,
}

fn metadata_flags(metadata: Metadata) -> u8 {
    if metadata.recovering {
        FLAG_RECOVERING
    } else {
        0
    }
}

/// One record's place in the buffer and what it covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordSpan {
    pub(crate) offset: usize,
    pub(crate) header: RecordHeader,
    /// The crc32c of the payload so far, computed as entries are copied in.
    pub(crate) payload_crc: u32,
}

/// A buffer and the records in it.
pub(crate) struct Group {
    pub(crate) buffer: AlignedBuf,
    /// Index of this buffer among the log's buffers (for registered buffers).
    pub(crate) buffer_index: u16,
    pub(crate) used_bytes: usize,
    pub(crate) records: Vec<RecordSpan>,
    pub(crate) entry_count: usize,
    /// The group's metadata records folded in order ([`Metadata::followed_by`]).
    pub(crate) metadata: Option<Metadata>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Group({} records, {} bytes)",
            self.records.len(),
            self.used_bytes
        )
    }
}

impl Group {
    pub(crate) fn new(buffer: AlignedBuf, buffer_index: u16) -> Group {
        Group {
            buffer,
            buffer_index,
            used_bytes: 0,
            records: Vec::with_capacity(256),
            entry_count: 0,
            metadata: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.used_bytes = 0;
        self.records.clear();
        self.entry_count = 0;
        self.metadata = None;
    }

    /// The length the write will have: whole blocks.
    pub(crate) fn sealed_bytes(&self) -> usize {
        self.used_bytes.next_multiple_of(BLOCK_BYTES)
    }

    /// Bytes records may fill: the buffer keeps one block for a terminator.
    fn capacity_bytes(&self) -> usize {
        self.buffer.len() - BLOCK_BYTES
    }

    fn available_bytes(&self) -> usize {
        self.capacity_bytes() - self.used_bytes
    }

    /// Appends an accepted entry, extending the open record when it holds
    /// the previous slot in the same ballot.
    pub(crate) fn append_accepted(&mut self, entry: &AcceptedEntry) -> Result<()> {
        let length = entry.batch.len();
        let entry_bytes = ENTRY_PREFIX_BYTES + length.next_multiple_of(RECORD_ALIGN_BYTES);
        let group_bytes_max = self.capacity_bytes();
        if RECORD_HEADER_BYTES + entry_bytes > group_bytes_max || u32::try_from(length).is_err() {
            return Err(LogError::EntryTooLarge {
                entry_bytes: length,
                group_bytes_max,
            });
        }
        let extends = self.records.last().is_some_and(|last| {
            last.header.kind == RecordKind::Accepted
                && last.header.ballot == entry.ballot
                && last.header.entry_count < u32::MAX
                && Some(entry.slot.0)
                    == last
                        .header
                        .first_slot
                        .0
                        .checked_add(u64::from(last.header.entry_count))
        });
        let needed = entry_bytes + if extends { 0 } else { RECORD_HEADER_BYTES };
        if needed > self.available_bytes() {
            return Err(LogError::GroupFull {
                needed_bytes: needed,
                available_bytes: self.available_bytes(),
            });
        }
        if !extends {
            self.open_record(RecordKind::Accepted, entry.slot, entry.ballot);
        }
        let start = self.used_bytes;
        let bytes = self.buffer.as_mut_slice();
        encode_entry_prefix(&mut bytes[start..], length as u32);
        let data_start = start + ENTRY_PREFIX_BYTES;
        let data_end = data_start + length;
        let batch = entry.batch.as_bytes();
        copy_for_device(&mut bytes[data_start..data_end], batch);
        bytes[data_end..start + entry_bytes].fill(0);
        self.used_bytes = start + entry_bytes;
        let last = self
            .records
            .last_mut()
            .expect("an accepted record is open: extended or just opened");
        // The checksum of the bytes just written, the batch read from its
        // source (which is in the cache; the copy wrote around it).
        let mut crc = crc32c_append(last.payload_crc, &bytes[start..data_start]);
        crc = crc32c_append(crc, batch);
        last.payload_crc = crc32c_append(crc, &bytes[data_end..start + entry_bytes]);
        last.header.entry_count += 1;
        last.header.payload_bytes += entry_bytes as u32;
        self.entry_count += 1;
        Ok(())
    }

    /// Appends a metadata record (promised ballot, commit point, recovering).
    pub(crate) fn append_metadata(&mut self, metadata: Metadata) -> Result<()> {
        if RECORD_HEADER_BYTES > self.available_bytes() {
            return Err(LogError::GroupFull {
                needed_bytes: RECORD_HEADER_BYTES,
                available_bytes: self.available_bytes(),
            });
        }
        self.open_record(
            RecordKind::Metadata,
            metadata.commit_point,
            metadata.promised,
        );
        let record = self
            .records
            .last_mut()
            .expect("a metadata record was just opened");
        record.header.flags = metadata_flags(metadata);
        self.metadata = Some(
            self.metadata
                .map_or(metadata, |earlier| earlier.followed_by(metadata)),
        );
        Ok(())
    }

    /// `later` was made durable apart from this group (the metadata file)
    /// after this group's metadata records were appended: rewrite them so
    /// that, should the group land, they say what `later` says (with the
    /// maximum promised ballot and commit point), never an older
    /// `recovering` flag.
    pub(crate) fn supersede_metadata(&mut self, later: Metadata) {
        let Some(earlier) = self.metadata else {
            return;
        };
        let combined = earlier.followed_by(later);
        for span in &mut self.records {
            if span.header.kind == RecordKind::Metadata {
                span.header.ballot = combined.promised;
                span.header.first_slot = combined.commit_point;
                span.header.flags = metadata_flags(combined);
            }
        }
        self.metadata = Some(combined);
    }

    fn open_record(&mut self, kind: RecordKind, first_slot: Slot, ballot: Ballot) {
        assert!(
            self.used_bytes.is_multiple_of(RECORD_ALIGN_BYTES),
            "records are aligned"
        );
        assert!(
            self.available_bytes() >= RECORD_HEADER_BYTES,
            "caller checked room"
        );
        self.records.push(RecordSpan {
            offset: self.used_bytes,
            header: RecordHeader {
                kind,
                flags: 0,
                payload_bytes: 0,
                segment: SegmentId(0),
                commit_seq: CommitSeq(0),
                first_slot,
                entry_count: 0,
                ballot,
            },
            payload_crc: 0,
        });
        self.used_bytes += RECORD_HEADER_BYTES;
    }

    /// Writes every header for its segment and commit sequence number, sets
    /// the group-end flag, checksums each record and zeroes the padding (and
    /// the terminator block after it, when asked for). Returns the group's
    /// length in bytes, terminator excluded.
    pub(crate) fn seal(
        &mut self,
        segment: SegmentId,
        commit_seq: CommitSeq,
        terminator: Terminator,
    ) -> usize {
        assert!(!self.records.is_empty(), "an empty group is never written");
        let sealed = self.sealed_bytes();
        assert!(
            sealed <= self.capacity_bytes(),
            "sealed group fits its buffer"
        );
        let last_index = self.records.len() - 1;
        let bytes = self.buffer.as_mut_slice();
        let zero_end = match terminator {
            Terminator::ZeroBlock => sealed + BLOCK_BYTES,
            Terminator::None => sealed,
        };
        bytes[self.used_bytes..zero_end].fill(0);
        for (index, span) in self.records.iter_mut().enumerate() {
            span.header.segment = segment;
            span.header.commit_seq = commit_seq;
            span.header.flags &= !FLAG_GROUP_END;
            if index == last_index {
                span.header.flags |= FLAG_GROUP_END;
            }
            let end = span.offset + span.header.record_bytes();
            assert!(end <= self.used_bytes, "a record lies inside the group");
            span.header.encode(&mut bytes[span.offset..]);
            seal_record(&mut bytes[span.offset..end], span.payload_crc);
        }
        sealed
    }
}
