//! Recovery: from the files of a log directory to the acceptor's durable
//! state, the longest valid prefix, and a report of anything dropped.
//!
//! Invariants (the rules of DESIGN.md, "Write-ahead log"):
//! - Segments are scanned in id order; the prefix of whole group commits
//!   that validate, with rising commit sequence numbers and no missing
//!   segment, is kept.
//! - Where the prefix ends, a look further on decides what happened: if a
//!   later group of this log is intact, something synced was damaged
//!   ([`Damage::Corruption`], reported with file and offset); if not, the
//!   last write was torn ([`Damage::TornTail`]) or the log simply ends.
//! - Anything dropped that is not zeros or a recycled segment's stale bytes
//!   sets `damaged`, since a checksum cannot tell an unsynced write from a
//!   synced one that was damaged later.
//! - The last record per slot wins; slots at or below the snapshot are dropped.
//! - The promised ballot and the commit point are the maximum over the
//!   metadata file and the metadata records of the prefix (both only ever
//!   rise); `recovering` is the latest value in log order: the newest
//!   metadata copy, unless a metadata record of a group at or after the
//!   copy's `supersedes_below` follows it (then the last such record).

use std::collections::BTreeMap;
use std::path::PathBuf;

use synod_net::wire::{AcceptedEntry, Batch, Slot, Snapshot};

use crate::error::{LogError, Result};
use crate::format::{
    decode_metadata_copy, decode_segment_header, decode_snapshot, entries, CommitSeq, HeaderDefect,
    Metadata, MetadataCopy, SegmentId, BLOCK_BYTES, FORMAT_VERSION,
};
use crate::report::{Damage, RecoveryReport, SegmentReport};
use crate::scan::{find_later_group, scan_segment, SegmentEnd};
use crate::storage::Storage;

/// The metadata file's name.
pub const METADATA_FILE: &str = "metadata";
/// The snapshot file's name.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Snapshots larger than this are refused as foreign on read.
pub const SNAPSHOT_BYTES_MAX: u64 = 1 << 34;

/// What a restart recovered: maps one to one onto the replica's `Recovered`.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last durable acceptor metadata.
    pub metadata: Metadata,
    /// The last durable record per slot above the snapshot, in slot order.
    pub accepted: Vec<AcceptedEntry>,
    /// The durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Recovery dropped something that may have been synced: the replica
    /// must rejoin as a non-voter.
    pub damaged: bool,
    /// What was found, file by file.
    pub report: RecoveryReport,
}

/// Where the writer resumes, and the indexes the log keeps for compaction.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    pub(crate) active: Option<(SegmentId, u64)>,
    /// Each segment's actual length (a configuration change leaves older sizes).
    pub(crate) segment_sizes: BTreeMap<SegmentId, u64>,
    pub(crate) scrub: bool,
    pub(crate) next_commit: CommitSeq,
    pub(crate) durable_commit: Option<CommitSeq>,
    pub(crate) segments: Vec<SegmentId>,
    pub(crate) slot_index: BTreeMap<Slot, SegmentId>,
    pub(crate) metadata_file_seq: u64,
    /// Metadata records of groups from this one on would supersede the
    /// recovered `recovering` flag (see [`MetadataOrder`]).
    pub(crate) metadata_order: MetadataOrder,
    /// The metadata file places its copy after groups that are gone.
    pub(crate) metadata_file_ahead: bool,
    /// The metadata file's word on the oldest kept group (0: none).
    pub(crate) log_start_hint: CommitSeq,
    /// What to drop after a corruption, when the policy allows going on.
    pub(crate) repair: Option<Repair>,
}

/// The prefix ends in `segment` (bytes from `drop_from` on are dropped);
/// every later segment is moved aside.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Repair {
    pub(crate) segment: SegmentId,
    pub(crate) drop_from: Option<u64>,
}

/// Where the current `recovering` flag stands in log order: metadata
/// records of groups at or after `records_from` supersede it, earlier ones
/// do not. A metadata copy written with `supersedes_below = K` stands at K
/// (just before the first record of group K); a metadata record of group G
/// stands at G as well, so the later records of its own group (which the
/// walk meets after it) still supersede it: within a group, as across
/// groups, the last record in log order wins, as the writer folds a group
/// ([`Metadata::followed_by`]).
///
/// Taking a record of group G again (a checkpoint placed at G holds the
/// fold of G's records, whose last one is re-read on recovery) gives the
/// same flag, since the fold of a group ends with its last record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetadataOrder {
    pub(crate) records_from: CommitSeq,
}

impl MetadataOrder {
    /// Combines `current` with `record`, a metadata record of group
    /// `group` (or the fold of that group's records, in order) met after
    /// everything `current` holds: promised and commit point by maximum;
    /// `recovering` only when the record is newer than the current value
    /// in log order. Returns the combination.
    pub(crate) fn take_record(
        &mut self,
        current: Metadata,
        record: Metadata,
        group: CommitSeq,
    ) -> Metadata {
        if group >= self.records_from {
            self.records_from = group;
            current.followed_by(record)
        } else {
            Metadata {
                recovering: current.recovering,
                ..current.followed_by(record)
            }
        }
    }
}

/// What recovery would find in `storage`, without changing anything: no
/// repair, no damage marker (see [`crate::Log::open`], which does both).
/// A simulator asks this of a crashed disk to learn whether its next
/// restart will be damaged and which groups survived.
///
/// # Errors
/// As [`crate::Log::open`], except that corruption is reported in the
/// result (`damaged`, `report.damage`), never as an error.
pub fn peek(storage: &mut impl Storage, config: &crate::LogConfig) -> Result<Recovered> {
    config.validate()?;
    let (recovered, _) = recover(
        storage,
        config.segment_bytes.max(1 << 30),
        config.group_bytes_max,
    )?;
    Ok(recovered)
}

/// Reads a log directory; pure apart from reading files.
pub(crate) fn recover(
    storage: &mut impl Storage,
    segment_bytes_max: u64,
    group_bytes_max: usize,
) -> Result<(Recovered, Resume)> {
    let names = storage.list()?;
    let mut recovered = Recovered::default();
    let mut resume = Resume {
        next_commit: CommitSeq(1),
        ..Resume::default()
    };
    recover_snapshot(storage, &mut recovered)?;
    recover_metadata_file(storage, &mut recovered, &mut resume)?;
    // A file named like a segment but not as this log names them (upper-case
    // hex, say, after a copy through another tool) would be skipped, and
    // its records with it: refuse it instead.
    if let Some(name) = names
        .iter()
        .find(|name| name.ends_with(".seg") && SegmentId::from_file_name(name).is_none())
    {
        return Err(LogError::ForeignFile {
            path: storage.path_of(name),
            reason: "named like a segment, but not as this log names them \
                     (16 lower-case hex digits, then .seg)"
                .to_string(),
        });
    }
    let mut segment_ids: Vec<SegmentId> = names
        .iter()
        .filter_map(|name| SegmentId::from_file_name(name))
        .collect();
    segment_ids.sort();
    let mut walk = Walk::new(
        group_bytes_max,
        resume.log_start_hint,
        resume.metadata_order,
    );
    let mut present = Vec::with_capacity(segment_ids.len());
    for &segment in &segment_ids {
        let name = segment.file_name();
        let path = storage.path_of(&name);
        let Some(bytes) = storage.read(&name, segment_bytes_max)? else {
            // Gone from the directory since the listing: retired (or moved
            // aside) by the log's owner, which a reader that takes no lock
            // sees (`inspect` on a running node). Ids are never reused, so
            // this is the log as listed a moment later: go on without it
            // (a gap it leaves is the walk's "missing segment").
            if !storage.list()?.contains(&name) {
                continue;
            }
            // Still listed, yet it cannot be opened: a dangling symbolic
            // link. Its records are not here, so say so rather than
            // recover without them.
            return Err(LogError::ForeignFile {
                path,
                reason: "listed, but it cannot be opened (a dangling symbolic link?)".to_string(),
            });
        };
        present.push(segment);
        check_segment_header(&bytes, segment, path.clone())?;
        resume.segment_sizes.insert(segment, bytes.len() as u64);
        walk.segment(segment, path, &bytes, &mut recovered);
    }
    walk.finish(&mut recovered, &mut resume);
    // Groups the metadata file placed itself after may have been lost
    // (unsynced, or cut off): their numbers are given out again, to groups
    // written after the copy, which must supersede it. Open rewrites the
    // copy in that case, before anything is appended.
    resume.metadata_file_ahead = walk.metadata_order.records_from > resume.next_commit;
    resume.metadata_order = MetadataOrder {
        records_from: walk.metadata_order.records_from.min(resume.next_commit),
    };
    resume.segments = present;
    let snapshot_slot = recovered
        .snapshot
        .as_ref()
        .map_or(Slot(0), |snapshot| snapshot.slot);
    resume.slot_index = walk.slot_index.split_off(&snapshot_slot.next());
    recovered.accepted = walk
        .accepted
        .split_off(&snapshot_slot.next())
        .into_values()
        .collect();
    recovered.damaged |= !recovered.report.damage.is_empty();
    Ok((recovered, resume))
}

fn header_error(path: PathBuf, defect: HeaderDefect) -> LogError {
    match defect {
        HeaderDefect::Foreign(reason) => LogError::ForeignFile { path, reason },
        HeaderDefect::NewerVersion(found) | HeaderDefect::OlderVersion(found) => {
            LogError::UnsupportedVersion {
                path,
                found,
                supported: FORMAT_VERSION,
            }
        }
        HeaderDefect::Corrupt(reason) => LogError::Corruption {
            path,
            offset: 0,
            reason,
        },
    }
}

fn check_segment_header(bytes: &[u8], segment: SegmentId, path: PathBuf) -> Result<()> {
    let header =
        decode_segment_header(bytes).map_err(|defect| header_error(path.clone(), defect))?;
    if header.segment != segment {
        return Err(LogError::ForeignFile {
            path,
            reason: format!("its header names segment {}", header.segment.0),
        });
    }
    if segment.0 == u64::MAX {
        // The writer never gets here (ids rise by one from 1): no id
        // would be left for the segment after it.
        return Err(LogError::ForeignFile {
            path,
            reason: "segment id u64::MAX leaves no id for the next segment".to_string(),
        });
    }
    if header.segment_bytes != bytes.len() as u64 {
        return Err(LogError::Corruption {
            path,
            offset: 0,
            reason: format!(
                "header says {} bytes, the file has {}",
                header.segment_bytes,
                bytes.len()
            ),
        });
    }
    Ok(())
}

fn recover_snapshot(storage: &mut impl Storage, recovered: &mut Recovered) -> Result<()> {
    let path = storage.path_of(SNAPSHOT_FILE);
    let Some(file) = storage.read(SNAPSHOT_FILE, SNAPSHOT_BYTES_MAX)? else {
        return Ok(());
    };
    let (slot, bytes) =
        decode_snapshot(&file).map_err(|defect| header_error(path.clone(), defect))?;
    if slot.0 == u64::MAX {
        // Slots never run out; only damage with a valid checksum says so.
        return Err(LogError::Corruption {
            path,
            offset: 16,
            reason: "snapshot slot u64::MAX".to_string(),
        });
    }
    recovered.report.snapshot = Some((path, slot, bytes.len()));
    recovered.snapshot = Some(Snapshot {
        slot,
        bytes: Batch::copy_from_slice(bytes),
    });
    Ok(())
}

fn recover_metadata_file(
    storage: &mut impl Storage,
    recovered: &mut Recovered,
    resume: &mut Resume,
) -> Result<()> {
    let path = storage.path_of(METADATA_FILE);
    let Some(file) = storage.read(METADATA_FILE, 2 * BLOCK_BYTES as u64)? else {
        return Ok(());
    };
    let mut best: Option<MetadataCopy> = None;
    for copy_index in 0..2 {
        let block = file.get(copy_index * BLOCK_BYTES..(copy_index + 1) * BLOCK_BYTES);
        match block.map(decode_metadata_copy) {
            // The writer creates the file with both copies, so a block that
            // is missing or reads back as zeros lost a copy that was there.
            None | Some(Ok(None)) => recovered.report.damage.push(Damage::MetadataCopy {
                file: path.clone(),
                offset: (copy_index * BLOCK_BYTES) as u64,
                reason: "the copy is missing or reads back as zeros (both copies are written \
                         when the file is created)"
                    .to_string(),
            }),
            Some(Ok(Some(copy))) => {
                recovered
                    .report
                    .metadata_copies
                    .push((copy_index, copy.write_seq, copy.metadata));
                if best.is_none_or(|best| copy.write_seq > best.write_seq) {
                    best = Some(copy);
                }
            }
            Some(Err(HeaderDefect::NewerVersion(found) | HeaderDefect::OlderVersion(found))) => {
                return Err(LogError::UnsupportedVersion {
                    path,
                    found,
                    supported: FORMAT_VERSION,
                })
            }
            // A copy failing its checksum is damage, whatever its version
            // bytes say (`decode_metadata_copy` checks the checksum first).
            Some(Err(defect)) => recovered.report.damage.push(Damage::MetadataCopy {
                file: path.clone(),
                offset: (copy_index * BLOCK_BYTES) as u64,
                reason: format!("{defect:?}"),
            }),
        }
    }
    if let Some(copy) = best {
        recovered.metadata = copy.metadata;
        resume.metadata_file_seq = copy.write_seq;
        resume.log_start_hint = copy.log_start;
        resume.metadata_order = MetadataOrder {
            records_from: copy.supersedes_below,
        };
    }
    Ok(())
}

/// Where the valid prefix stopped.
struct Stop {
    /// The segment holding the end of the valid prefix.
    segment: SegmentId,
    /// Where the problem was seen (for the report).
    file: PathBuf,
    offset: u64,
    /// From where bytes of `segment` are dropped (`None`: none of it).
    drop_from: Option<u64>,
    reason: String,
    torn: bool,
    /// The smallest commit sequence number that proves a later write, in
    /// segments after the stop.
    later_min: CommitSeq,
}

struct Walk {
    group_bytes_max: usize,
    /// The first group of the log, when the metadata file knows it.
    log_start_hint: CommitSeq,
    /// Where the recovered `recovering` flag stands in log order.
    metadata_order: MetadataOrder,
    expected: Option<CommitSeq>,
    previous: Option<SegmentId>,
    stop: Option<Stop>,
    evidence: Option<(PathBuf, u64, CommitSeq)>,
    /// The last segment holding a group, or the first one seen: (id, valid end, dirty tail).
    last_used: Option<(SegmentId, u64, bool)>,
    accepted: BTreeMap<Slot, AcceptedEntry>,
    slot_index: BTreeMap<Slot, SegmentId>,
}

impl Walk {
    fn new(
        group_bytes_max: usize,
        log_start_hint: CommitSeq,
        metadata_order: MetadataOrder,
    ) -> Walk {
        Walk {
            group_bytes_max,
            log_start_hint: CommitSeq(log_start_hint.0.max(1)),
            metadata_order,
            expected: None,
            previous: None,
            stop: None,
            evidence: None,
            last_used: None,
            accepted: BTreeMap::new(),
            slot_index: BTreeMap::new(),
        }
    }

    fn segment(
        &mut self,
        segment: SegmentId,
        file: PathBuf,
        bytes: &[u8],
        recovered: &mut Recovered,
    ) {
        if let (None, Some(previous), Some(expected)) = (&self.stop, self.previous, self.expected) {
            if previous.next() != segment {
                self.stop = Some(Stop {
                    segment: previous,
                    file: file.clone(),
                    offset: 0,
                    drop_from: None,
                    reason: format!("segment file {} is missing", previous.next().file_name()),
                    torn: false,
                    later_min: expected,
                });
            }
        }
        if let Some(stop) = &self.stop {
            if self.evidence.is_none() {
                self.evidence = find_later_group(bytes, segment, BLOCK_BYTES, stop.later_min)
                    .map(|(offset, commit)| (file.clone(), offset as u64, commit));
            }
            recovered
                .report
                .segments
                .push(SegmentReport::unscanned(segment, file));
            return;
        }
        self.previous = Some(segment);
        let scan = scan_segment(bytes, segment, self.expected);
        let mut report = SegmentReport::scanned(segment, file.clone(), &scan);
        for record in &scan.records {
            match record.header.metadata() {
                Some(metadata) => {
                    recovered.metadata = self.metadata_order.take_record(
                        recovered.metadata,
                        metadata,
                        record.header.commit_seq,
                    );
                }
                None => self.take_entries(segment, record, &mut report),
            }
        }
        recovered.report.segments.push(report);
        let valid_end = scan.valid_end;
        let tail_end = bytes.len().min(valid_end + self.group_bytes_max);
        let dirty = bytes
            .get(valid_end..tail_end)
            .is_some_and(|tail| tail.iter().any(|&b| b != 0));
        if scan.last_commit.is_some() || self.last_used.is_none() {
            self.last_used = Some((segment, valid_end as u64, dirty));
        }
        if let Some(last) = scan.last_commit {
            self.expected = Some(CommitSeq(last.0 + 1));
        }
        self.after_scan(segment, file, bytes, scan.end, valid_end);
    }

    fn take_entries(
        &mut self,
        segment: SegmentId,
        record: &crate::scan::ScannedRecord<'_>,
        report: &mut SegmentReport,
    ) {
        let mut slot = record.header.first_slot;
        for entry in entries(record.payload).flatten() {
            self.accepted.insert(
                slot,
                AcceptedEntry {
                    slot,
                    ballot: record.header.ballot,
                    batch: Batch::copy_from_slice(entry),
                },
            );
            self.slot_index.insert(slot, segment);
            report.note_slot(slot);
            slot = slot.next();
        }
    }

    fn after_scan(
        &mut self,
        segment: SegmentId,
        file: PathBuf,
        bytes: &[u8],
        end: SegmentEnd,
        valid_end: usize,
    ) {
        let expected = self.expected.unwrap_or(CommitSeq(0));
        match end {
            SegmentEnd::Clean => {
                // Zeros at a group boundary: the segment's end, unless a
                // later group of it survived (a synced group was wiped).
                if let Some((offset, commit)) =
                    find_later_group(bytes, segment, valid_end, expected)
                {
                    self.stop = Some(Stop {
                        segment,
                        file: file.clone(),
                        offset: valid_end as u64,
                        drop_from: Some(valid_end as u64),
                        reason: "a group commit is missing (zeros or stale bytes)".to_string(),
                        torn: false,
                        later_min: expected,
                    });
                    self.evidence = Some((file, offset as u64, commit));
                }
            }
            SegmentEnd::Broken {
                group_offset,
                offset,
                reason,
            } => {
                // The broken group is `expected`; a group after it proves damage.
                // (The hint comes from a metadata copy: with u64::MAX there,
                // no later group can exist.)
                let broken_group = self.expected.unwrap_or(self.log_start_hint);
                self.evidence = broken_group
                    .0
                    .checked_add(1)
                    .and_then(|same_min| {
                        find_later_group(
                            bytes,
                            segment,
                            group_offset + BLOCK_BYTES,
                            CommitSeq(same_min),
                        )
                    })
                    .map(|(found, commit)| (file.clone(), found as u64, commit));
                self.stop = Some(Stop {
                    segment,
                    file,
                    offset: offset as u64,
                    drop_from: Some(group_offset as u64),
                    reason,
                    torn: true,
                    later_min: expected,
                });
                self.last_used = Some((segment, group_offset as u64, true));
            }
        }
    }

    fn finish(&mut self, recovered: &mut Recovered, resume: &mut Resume) {
        resume.durable_commit = self.expected.map(|next| CommitSeq(next.0 - 1));
        resume.next_commit = self.expected.unwrap_or(CommitSeq(1));
        if let Some((segment, valid_end, dirty)) = self.last_used {
            resume.active = Some((segment, valid_end));
            resume.scrub = dirty;
        }
        let Some(stop) = self.stop.take() else {
            return;
        };
        match self.evidence.take() {
            Some((later_file, later_offset, commit)) => {
                recovered.report.damage.push(Damage::Corruption {
                    file: stop.file,
                    offset: stop.offset,
                    reason: format!(
                        "{}; group {} is intact later in {} at offset {later_offset}",
                        stop.reason,
                        commit.0,
                        later_file.display()
                    ),
                });
                resume.repair = Some(Repair {
                    segment: stop.segment,
                    drop_from: stop.drop_from,
                });
                if let Some(drop_from) = stop.drop_from {
                    resume.active = Some((stop.segment, drop_from));
                }
            }
            None if stop.torn => recovered.report.damage.push(Damage::TornTail {
                file: stop.file,
                offset: stop.offset,
                reason: stop.reason,
            }),
            None => {}
        }
    }
}
