//! Scanning segment bytes for the valid prefix of group commits (pure, no I/O).
//!
//! Invariants:
//! - Only whole group commits are returned: a group counts once its
//!   group-end record validates, so a torn group is dropped whole.
//! - A record is valid only in the segment it names and only with the
//!   commit sequence number the scan expects next; stale records of a
//!   recycled segment are indistinguishable from zeros.
//! - Nothing here trusts a length field beyond the slice it was given, and
//!   nothing allocates more than a bounded multiple of the input.

use crate::format::{
    decode_record, CommitSeq, RecordDefect, RecordHeader, SegmentId, BLOCK_BYTES,
    RECORD_ALIGN_BYTES, RECORD_HEADER_BYTES,
};

/// What lies at a record position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A valid record of this segment.
    Record(RecordHeader),
    /// Zeros, or a valid record of another segment (a recycled file's stale
    /// bytes): nothing was written here by this segment.
    Nothing,
    /// Bytes that are neither: a torn or damaged write.
    Garbage(RecordDefect),
}

/// Classifies the bytes at `offset` of a segment's bytes.
#[must_use]
pub fn classify(bytes: &[u8], offset: usize, segment: SegmentId) -> Found {
    let Some(rest) = bytes.get(offset..) else {
        return Found::Nothing;
    };
    let header_end = rest.len().min(RECORD_HEADER_BYTES);
    if rest[..header_end].iter().all(|&byte| byte == 0) {
        return Found::Nothing;
    }
    match decode_record(rest) {
        Ok(header) if header.segment == segment => Found::Record(header),
        Ok(_) => Found::Nothing,
        Err(defect) => Found::Garbage(defect),
    }
}

/// A record of a complete group.
#[derive(Clone, Debug)]
pub struct ScannedRecord<'a> {
    /// The record's offset in the segment file.
    pub offset: usize,
    /// Its header.
    pub header: RecordHeader,
    /// Its payload (entries, for an accepted record).
    pub payload: &'a [u8],
}

/// How the valid prefix of a segment ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Zeros or stale bytes at a group boundary, or the end of the file.
    Clean,
    /// A group that did not validate: bytes from `group_offset` on were
    /// dropped; `offset` is the first record that failed.
    Broken {
        /// Where the dropped group starts.
        group_offset: usize,
        /// The record position that failed.
        offset: usize,
        /// Why.
        reason: String,
    },
}

/// The result of scanning one segment.
#[derive(Clone, Debug)]
pub struct SegmentScan<'a> {
    /// Records of complete groups, in order.
    pub records: Vec<ScannedRecord<'a>>,
    /// How many complete groups.
    pub group_count: u64,
    /// The block-aligned offset after the last complete group.
    pub valid_end: usize,
    /// How the valid prefix ends.
    pub end: SegmentEnd,
    /// The commit sequence number of the last complete group, if any.
    pub last_commit: Option<CommitSeq>,
}

/// Scans a segment's bytes (header block included) from the first record.
/// `expected` is the commit sequence number the first group must carry
/// (`None` for the first segment of the log, which may start anywhere).
#[must_use]
pub fn scan_segment(
    bytes: &[u8],
    segment: SegmentId,
    expected: Option<CommitSeq>,
) -> SegmentScan<'_> {
    let mut scan = SegmentScan {
        records: Vec::new(),
        group_count: 0,
        valid_end: BLOCK_BYTES.min(bytes.len()),
        end: SegmentEnd::Clean,
        last_commit: None,
    };
    let mut expected = expected;
    let mut position = BLOCK_BYTES;
    let mut group_start = position;
    let mut group: Vec<ScannedRecord<'_>> = Vec::new();
    loop {
        let found = if position + RECORD_HEADER_BYTES > bytes.len() {
            Found::Nothing
        } else {
            classify(bytes, position, segment)
        };
        let header = match found {
            Found::Record(header) => header,
            Found::Nothing if group.is_empty() => return scan,
            Found::Nothing => {
                scan.end = broken(group_start, position, "group commit cut short".to_string());
                return scan;
            }
            Found::Garbage(defect) => {
                scan.end = broken(group_start, position, defect.to_string());
                return scan;
            }
        };
        let wanted = group
            .first()
            .map(|first| first.header.commit_seq)
            .or(expected);
        if let Some(wanted) = wanted.filter(|&wanted| wanted != header.commit_seq) {
            let reason = format!(
                "record of group {} where group {} was expected",
                header.commit_seq.0, wanted.0
            );
            scan.end = broken(group_start, position, reason);
            return scan;
        }
        let end = position + header.record_bytes();
        group.push(ScannedRecord {
            offset: position,
            header,
            payload: &bytes[position + RECORD_HEADER_BYTES..end],
        });
        assert!(
            end.is_multiple_of(RECORD_ALIGN_BYTES),
            "records end aligned"
        );
        position = end;
        if header.ends_group() {
            scan.records.append(&mut group);
            scan.group_count += 1;
            scan.last_commit = Some(header.commit_seq);
            // `decode_record` refuses group u64::MAX: this cannot overflow.
            expected = Some(CommitSeq(header.commit_seq.0 + 1));
            position = position.next_multiple_of(BLOCK_BYTES);
            scan.valid_end = position.min(bytes.len());
            group_start = position;
        }
    }
}

fn broken(group_offset: usize, offset: usize, reason: String) -> SegmentEnd {
    SegmentEnd::Broken {
        group_offset,
        offset,
        reason,
    }
}

/// Looks for a valid record of `segment` with a commit sequence number of
/// at least `commit_min` at any block boundary from `from` on: proof that a
/// group was written after the point where the valid prefix ended.
#[must_use]
pub fn find_later_group(
    bytes: &[u8],
    segment: SegmentId,
    from: usize,
    commit_min: CommitSeq,
) -> Option<(usize, CommitSeq)> {
    let mut position = from.next_multiple_of(BLOCK_BYTES).max(BLOCK_BYTES);
    while position + RECORD_HEADER_BYTES <= bytes.len() {
        if let Found::Record(header) = classify(bytes, position, segment) {
            if header.commit_seq >= commit_min {
                return Some((position, header.commit_seq));
            }
        }
        position += BLOCK_BYTES;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aligned::AlignedBuf;
    use crate::group::Group;
    use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

    fn segment_with_groups(group_count: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 16 * BLOCK_BYTES];
        let mut group = Group::new(AlignedBuf::zeroed(5 * BLOCK_BYTES), 0);
        let mut offset = BLOCK_BYTES;
        for commit in 1..=group_count {
            for slot in 0..3 {
                let entry = AcceptedEntry {
                    slot: Slot(commit * 10 + slot),
                    ballot: Ballot {
                        round: 1,
                        node: NodeId(1),
                    },
                    batch: Batch::copy_from_slice(&[commit as u8; 100]),
                };
                group.append_accepted(&entry).expect("room");
            }
            let length = group.seal(
                SegmentId(1),
                CommitSeq(commit),
                crate::group::Terminator::None,
            );
            bytes[offset..offset + length].copy_from_slice(&group.buffer.as_slice()[..length]);
            offset += length;
            group.clear();
        }
        bytes
    }

    #[test]
    fn whole_groups_are_found_and_the_end_is_clean() {
        let bytes = segment_with_groups(3);
        let scan = scan_segment(&bytes, SegmentId(1), None);
        assert_eq!(scan.group_count, 3);
        assert_eq!(scan.records.len(), 3, "consecutive slots share a record");
        assert_eq!(scan.end, SegmentEnd::Clean);
        assert_eq!(scan.last_commit, Some(CommitSeq(3)));
        assert_eq!(scan.valid_end, 4 * BLOCK_BYTES);
    }

    #[test]
    fn records_of_another_segment_count_as_nothing() {
        let bytes = segment_with_groups(2);
        let scan = scan_segment(&bytes, SegmentId(2), None);
        assert_eq!(scan.group_count, 0);
        assert_eq!(scan.end, SegmentEnd::Clean);
    }

    #[test]
    fn an_unexpected_commit_number_stops_the_scan_and_later_groups_are_found() {
        let bytes = segment_with_groups(3);
        let scan = scan_segment(&bytes, SegmentId(1), Some(CommitSeq(5)));
        assert!(matches!(scan.end, SegmentEnd::Broken { offset: 4096, .. }));
        assert_eq!(
            find_later_group(&bytes, SegmentId(1), BLOCK_BYTES + 1, CommitSeq(3)),
            Some((3 * BLOCK_BYTES, CommitSeq(3)))
        );
        assert_eq!(
            find_later_group(&bytes, SegmentId(1), 0, CommitSeq(4)),
            None
        );
    }
}
