//! The log: appends, group commits, durability, over any [`Storage`].
//!
//! Invariants:
//! - At most one group commit is in flight; groups become durable in
//!   commit sequence order, and `durable` only rises.
//! - A group is written whole into one segment, at a block-aligned offset
//!   past every earlier group of that segment, and never past its end.
//! - The slot index only learns of records once they are durable, so
//!   compaction never deletes a segment whose records a crash could need.
//! - After a failed write or sync (other than a full disk) the log refuses
//!   everything: the bytes on disk are unknown until recovery reads them.

use std::io;

use synod_net::wire::{AcceptedEntry, Slot};

use crate::aligned::AlignedBuf;
use crate::error::{LogError, Result};
use crate::format::{CommitSeq, Metadata, RecordKind, SegmentId, BLOCK_BYTES};
use crate::group::{Group, Terminator};
use crate::recovery::{recover, Recovered, Repair, Resume};
use crate::storage::Storage;

/// What the log does when recovery finds corruption (a damaged record with
/// intact records after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptionPolicy {
    /// Refuse to open: [`LogError::Corruption`] names the file and offset.
    Refuse,
    /// Keep the valid prefix, move the damaged files aside
    /// (`*.damaged-N`), report `damaged`: the replica rejoins as a non-voter.
    RejoinAsNonVoter,
}

/// The log's limits and choices.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// The size of each segment file.
    pub segment_bytes: u64,
    /// The size of each group commit write buffer (two are allocated).
    pub group_bytes_max: usize,
    /// How many retired segments are kept for recycling.
    pub spare_segments_max: usize,
    /// What to do on corruption.
    pub on_corruption: CorruptionPolicy,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 64 << 20,
            group_bytes_max: 4 << 20,
            spare_segments_max: 2,
            on_corruption: CorruptionPolicy::Refuse,
        }
    }
}

impl LogConfig {
    /// Checks the limits against each other.
    ///
    /// # Errors
    /// [`LogError::Config`] naming what is inconsistent.
    pub fn validate(&self) -> Result<()> {
        let block = BLOCK_BYTES as u64;
        let problem =
            if self.group_bytes_max == 0 || !self.group_bytes_max.is_multiple_of(BLOCK_BYTES) {
                Some("group_bytes_max must be a positive multiple of 4096")
            } else if self.group_bytes_max > 1 << 30 {
                Some("group_bytes_max must be at most 1 GiB")
            } else if !self.segment_bytes.is_multiple_of(block) {
                Some("segment_bytes must be a multiple of 4096")
            } else if self.segment_bytes < block + self.group_bytes_max as u64 {
                Some("segment_bytes must hold the header block and one whole group commit")
            } else {
                None
            };
        match problem {
            Some(reason) => Err(LogError::Config {
                reason: reason.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// A sealed group commit, ready to write: the back end writes `len` bytes
/// of the buffer at `offset` of the segment, makes them durable, and hands
/// the write back with [`Log::finish_commit`]. The buffer belongs to the
/// write until then.
#[derive(Debug)]
pub struct PendingWrite {
    pub(crate) segment: SegmentId,
    pub(crate) offset_bytes: u64,
    pub(crate) length_bytes: usize,
    pub(crate) commit_seq: CommitSeq,
    pub(crate) group: Group,
}

impl PendingWrite {
    /// The segment written.
    #[must_use]
    pub fn segment(&self) -> SegmentId {
        self.segment
    }
    /// The byte offset in the segment (block aligned).
    #[must_use]
    pub fn offset_bytes(&self) -> u64 {
        self.offset_bytes
    }
    /// The write length (block multiple).
    #[must_use]
    pub fn length_bytes(&self) -> usize {
        self.length_bytes
    }
    /// The group's commit sequence number.
    #[must_use]
    pub fn commit_seq(&self) -> CommitSeq {
        self.commit_seq
    }
    /// The buffer's index among the log's two buffers (see [`Log::buffers_for_registration`]).
    #[must_use]
    pub fn buffer_index(&self) -> u16 {
        self.group.buffer_index
    }
    /// The buffer.
    #[must_use]
    pub fn buffer(&self) -> &AlignedBuf {
        &self.group.buffer
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    Healthy,
    DiskFull,
    Failed(String),
}

/// The write-ahead log of one replica.
pub struct Log<S: Storage> {
    pub(crate) storage: S,
    pub(crate) config: LogConfig,
    building: Group,
    spare: Option<Group>,
    retry: Option<PendingWrite>,
    in_flight: Option<CommitSeq>,
    pub(crate) active: SegmentId,
    pub(crate) active_offset_bytes: u64,
    active_bytes: u64,
    active_recycled: bool,
    next_commit: CommitSeq,
    durable: Option<CommitSeq>,
    health: Health,
    pub(crate) state: crate::compaction::DurableState,
}

impl<S: Storage> Log<S> {
    /// Recovers the log in `storage` and opens it for appending.
    ///
    /// When recovery dropped anything (`damaged`), the owner must rejoin as
    /// a non-voter, and a crash must not make it forget that once the
    /// damage is cut off: before repairing anything, `open` writes the
    /// metadata file with `recovering` set (unless the durable metadata
    /// already says so). The returned metadata carries the flag; the owner
    /// clears it by appending metadata without it once it has caught up.
    /// The metadata file is also rewritten when it was placed (in log
    /// order) after groups that turned out lost, whose numbers the next
    /// groups take again, and (both copies) when a copy was damaged.
    ///
    /// # Errors
    /// Configuration errors; foreign files, other format versions;
    /// corruption when the policy is [`CorruptionPolicy::Refuse`]; I/O errors
    /// (a full disk or a read-only directory among them). On error nothing
    /// durable is changed, except that the damage marker may be set.
    pub fn open(mut storage: S, config: LogConfig) -> Result<(Log<S>, Recovered)> {
        config.validate()?;
        let (mut recovered, resume) = recover(
            &mut storage,
            config.segment_bytes.max(1 << 30),
            config.group_bytes_max,
        )?;
        if let Some(damage) = recovered
            .report
            .damage
            .iter()
            .find(|damage| matches!(damage, crate::report::Damage::Corruption { .. }))
        {
            if config.on_corruption == CorruptionPolicy::Refuse {
                let crate::report::Damage::Corruption {
                    file,
                    offset,
                    reason,
                } = damage.clone()
                else {
                    unreachable!("matched just above")
                };
                return Err(LogError::Corruption {
                    path: file,
                    offset,
                    reason,
                });
            }
        }
        // One block more than a group: room for the terminator block.
        let buffer_bytes = config.group_bytes_max + BLOCK_BYTES;
        let mut log = Log {
            building: Group::new(AlignedBuf::zeroed(buffer_bytes), 0),
            spare: Some(Group::new(AlignedBuf::zeroed(buffer_bytes), 1)),
            retry: None,
            in_flight: None,
            active: SegmentId(1),
            active_offset_bytes: BLOCK_BYTES as u64,
            active_bytes: config.segment_bytes,
            active_recycled: false,
            next_commit: resume.next_commit,
            durable: resume.durable_commit,
            health: Health::Healthy,
            state: crate::compaction::DurableState::new(&recovered, &resume),
            storage,
            config,
        };
        let unmarked = recovered.damaged && !recovered.metadata.recovering;
        let copy_damaged = recovered
            .report
            .damage
            .iter()
            .any(|damage| matches!(damage, crate::report::Damage::MetadataCopy { .. }));
        if unmarked || resume.metadata_file_ahead || copy_damaged {
            let metadata = Metadata {
                recovering: recovered.metadata.recovering || recovered.damaged,
                ..recovered.metadata
            };
            log.persist_metadata(metadata)?;
            if copy_damaged {
                // Each write goes to the other block, so a second one
                // rewrites both: no damaged copy outlives the repair (it
                // would make every later restart damaged, until the next
                // checkpoint, though the owner had caught up).
                log.persist_metadata(metadata)?;
            }
            recovered.metadata = metadata;
        }
        log.resume_writer(&resume)?;
        Ok((log, recovered))
    }

    fn resume_writer(&mut self, resume: &Resume) -> Result<()> {
        if let Some(repair) = resume.repair {
            self.move_damaged_aside(repair, &resume.segments)?;
        }
        let (segment, offset) = resume.active.unwrap_or((SegmentId(1), BLOCK_BYTES as u64));
        let segment_bytes = resume
            .segment_sizes
            .get(&segment)
            .copied()
            .unwrap_or(self.config.segment_bytes);
        assert!(
            offset <= segment_bytes,
            "the valid prefix lies inside its segment"
        );
        self.active_recycled = self.storage.activate_segment(segment, segment_bytes)?;
        if resume.scrub || resume.repair.is_some() {
            let scrub_end = match resume.repair {
                Some(_) => segment_bytes,
                None => {
                    segment_bytes.min(offset + (self.config.group_bytes_max + BLOCK_BYTES) as u64)
                }
            };
            if scrub_end > offset {
                let zeros = vec![0u8; (scrub_end - offset) as usize];
                self.storage
                    .overwrite(&segment.file_name(), offset, &zeros)?;
            }
        }
        self.active = segment;
        self.active_offset_bytes = offset;
        self.active_bytes = segment_bytes;
        self.state.note_segment(segment);
        self.storage
            .prepare_segment(segment.next(), self.config.segment_bytes);
        Ok(())
    }

    fn move_damaged_aside(&mut self, repair: Repair, segments: &[SegmentId]) -> Result<()> {
        let stamp = self.next_commit.0;
        if repair.drop_from.is_some() {
            let name = repair.segment.file_name();
            if let Some(bytes) = self.storage.read(&name, u64::MAX)? {
                self.storage
                    .write_atomic(&format!("{name}.damaged-{stamp}"), &bytes)?;
            }
        }
        for &later in segments.iter().filter(|&&segment| segment > repair.segment) {
            let name = later.file_name();
            self.storage
                .rename(&name, &format!("{name}.damaged-{stamp}"))?;
            self.state.forget_segment(later);
        }
        Ok(())
    }

    fn check_appendable(&self) -> Result<()> {
        match &self.health {
            Health::Healthy => Ok(()),
            Health::DiskFull => Err(LogError::DiskFull {
                op: "appending (the last commit found the disk full)",
                path: self.storage.path_of(&self.active.file_name()),
            }),
            Health::Failed(reason) => Err(LogError::Failed {
                reason: reason.clone(),
            }),
        }
    }

    /// Appends an accepted value to the group being built. Consecutive slots
    /// of one ballot share a record. Returns the commit sequence number the
    /// group will have: the entry is durable once [`Log::durable`] reaches it.
    ///
    /// # Errors
    /// [`LogError::GroupFull`] (commit, then append again),
    /// [`LogError::EntryTooLarge`], and refusals after a full disk or a failure.
    pub fn append(&mut self, entry: &AcceptedEntry) -> Result<CommitSeq> {
        self.check_appendable()?;
        assert!(entry.slot > Slot(0), "slot 0 never holds a value");
        self.building.append_accepted(entry)?;
        Ok(self.next_commit)
    }

    /// Appends acceptor metadata to the group being built, so a promise is
    /// made durable by the same write and sync as the accepted values.
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn append_metadata(&mut self, metadata: Metadata) -> Result<CommitSeq> {
        self.check_appendable()?;
        self.building.append_metadata(metadata)?;
        Ok(self.next_commit)
    }

    /// True when appended records wait for a commit.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.building.is_empty() || self.retry.is_some()
    }

    /// The highest durable group commit (every earlier one is durable too).
    #[must_use]
    pub fn durable(&self) -> Option<CommitSeq> {
        self.durable
    }

    /// Seals the group being built into a write for the back end to perform,
    /// rolling over to the next segment when it does not fit. `None` when
    /// nothing waits or a write is already in flight.
    ///
    /// # Errors
    /// [`LogError::DiskFull`] when the next segment could not be prepared
    /// (the group stays pending; try again later), refusals after a failure,
    /// and [`LogError::Corruption`] when no group number is left (recovery
    /// resumed after a damaged group number of u64::MAX - 1).
    pub fn start_commit(&mut self) -> Result<Option<PendingWrite>> {
        if let Health::Failed(reason) = &self.health {
            return Err(LogError::Failed {
                reason: reason.clone(),
            });
        }
        if self.in_flight.is_some() {
            return Ok(None);
        }
        if let Some(retry) = self.retry.take() {
            self.in_flight = Some(retry.commit_seq);
            return Ok(Some(retry));
        }
        if self.building.is_empty() {
            return Ok(None);
        }
        let Some(next_commit) = self.next_commit.0.checked_add(1) else {
            // Recovery resumed after a group numbered u64::MAX - 1, which
            // only damage with a valid checksum can put on disk.
            return Err(LogError::Corruption {
                path: self.storage.path_of(&self.active.file_name()),
                offset: self.active_offset_bytes,
                reason: "group numbers are exhausted (the last group is u64::MAX - 1)".to_string(),
            });
        };
        let length_bytes = self.building.sealed_bytes();
        if self.active_offset_bytes + length_bytes as u64 > self.active_bytes {
            self.roll_over()?;
        }
        assert!(
            self.active_offset_bytes + length_bytes as u64 <= self.active_bytes,
            "a group fits an empty segment (validated config)"
        );
        let commit_seq = self.next_commit;
        let end = self.active_offset_bytes + length_bytes as u64;
        let terminator = if self.active_recycled && end + BLOCK_BYTES as u64 <= self.active_bytes {
            Terminator::ZeroBlock
        } else {
            Terminator::None
        };
        let sealed = self.building.seal(self.active, commit_seq, terminator);
        assert_eq!(sealed, length_bytes, "sealing keeps the planned length");
        let write_bytes = match terminator {
            Terminator::ZeroBlock => length_bytes + BLOCK_BYTES,
            Terminator::None => length_bytes,
        };
        let spare = self
            .spare
            .take()
            .expect("with no write in flight both buffers are home");
        let group = std::mem::replace(&mut self.building, spare);
        let write = PendingWrite {
            segment: self.active,
            offset_bytes: self.active_offset_bytes,
            length_bytes: write_bytes,
            commit_seq,
            group,
        };
        self.active_offset_bytes += length_bytes as u64;
        self.next_commit = CommitSeq(next_commit);
        self.in_flight = Some(commit_seq);
        Ok(Some(write))
    }

    fn roll_over(&mut self) -> Result<()> {
        let next = self.active.next();
        let recycled = match self
            .storage
            .activate_segment(next, self.config.segment_bytes)
        {
            Ok(recycled) => recycled,
            Err(error) if error.is_disk_full() => {
                self.health = Health::DiskFull;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        self.storage.release_segment(self.active);
        self.active = next;
        self.active_recycled = recycled;
        self.active_offset_bytes = BLOCK_BYTES as u64;
        self.active_bytes = self.config.segment_bytes;
        self.state.note_segment(next);
        self.storage
            .prepare_segment(next.next(), self.config.segment_bytes);
        Ok(())
    }

    /// Takes back a write the back end performed (or failed to).
    ///
    /// # Errors
    /// A full disk keeps the group for a retry ([`LogError::DiskFull`]); any
    /// other failure stops the log ([`LogError::Failed`]).
    ///
    /// # Panics
    /// If `write` is not the write in flight (a programmer error).
    pub fn finish_commit(
        &mut self,
        mut write: PendingWrite,
        outcome: io::Result<()>,
    ) -> Result<CommitSeq> {
        assert_eq!(
            self.in_flight,
            Some(write.commit_seq),
            "only the write in flight finishes"
        );
        self.in_flight = None;
        if let Err(error) = outcome {
            let error = LogError::from_io(
                "writing group commit",
                self.storage.path_of(&write.segment.file_name()),
                error,
            );
            if error.is_disk_full() {
                self.health = Health::DiskFull;
                self.retry = Some(write);
            } else {
                self.health = Health::Failed(error.to_string());
            }
            return Err(error);
        }
        assert!(self.durable < Some(write.commit_seq), "durability rises");
        self.durable = Some(write.commit_seq);
        self.state
            .note_durable_group(write.segment, write.commit_seq);
        if self.health == Health::DiskFull {
            self.health = Health::Healthy;
        }
        for span in &write.group.records {
            match span.header.kind {
                RecordKind::Accepted => self.state.note_durable_record(write.segment, &span.header),
                RecordKind::Metadata => {}
            }
        }
        if let Some(metadata) = write.group.metadata {
            self.state.note_durable_metadata(metadata, write.commit_seq);
        }
        write.group.clear();
        self.spare = Some(write.group);
        Ok(write.commit_seq)
    }

    /// Writes and syncs the pending group commit through the storage (the
    /// portable and in-memory back ends). Returns the durable position.
    ///
    /// # Errors
    /// As [`Log::start_commit`] and [`Log::finish_commit`].
    pub fn commit(&mut self) -> Result<Option<CommitSeq>> {
        while let Some(write) = self.start_commit()? {
            let outcome = self.storage.write_group(
                write.segment,
                write.offset_bytes,
                &write.group.buffer,
                write.length_bytes,
            );
            let outcome = outcome.map_err(|error| match error {
                LogError::DiskFull { .. } => io::Error::from_raw_os_error(libc::ENOSPC),
                other => io::Error::other(other.to_string()),
            });
            self.finish_commit(write, outcome)?;
        }
        Ok(self.durable)
    }

    /// The two group buffers, for registration with an io_uring (buffer
    /// index `i` of [`PendingWrite::buffer_index`] is element `i`).
    ///
    /// # Panics
    /// If a write is in flight (register before the first commit).
    pub fn buffers_for_registration(&mut self) -> [libc::iovec; 2] {
        let spare = self
            .spare
            .as_mut()
            .expect("buffers are registered before any write");
        let mut pair = [self.building.buffer.iovec(), spare.buffer.iovec()];
        if self.building.buffer_index == 1 {
            pair.swap(0, 1);
        }
        pair
    }

    /// The storage.
    #[must_use]
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutable (fault injection, tests).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Ends the log without writing anything, returning its storage (a
    /// simulated crash drops unsynced groups exactly like this).
    #[must_use]
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Rewrites the metadata records of the group being built to agree with
    /// `later`, just made durable in the metadata file.
    pub(crate) fn supersede_pending_metadata(&mut self, later: Metadata) {
        self.building.supersede_metadata(later);
    }

    /// The commit sequence number the group being built will have.
    #[must_use]
    pub fn next_commit_seq(&self) -> CommitSeq {
        self.next_commit
    }

    /// The active segment and the offset the next group will be written at.
    #[must_use]
    pub fn write_position(&self) -> (SegmentId, u64) {
        (self.active, self.active_offset_bytes)
    }
}
