//! What recovery found, file by file: the basis of `synod log inspect`.

use std::fmt;
use std::path::PathBuf;

use synod_net::wire::Slot;

use crate::format::{CommitSeq, Metadata, SegmentId};
use crate::scan::{SegmentEnd, SegmentScan};

/// Something recovery dropped or could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The last group commit was incomplete (a torn or unsynced write) and
    /// was cut off; nothing valid follows it.
    TornTail {
        /// The segment.
        file: PathBuf,
        /// Offset of the first record that did not validate.
        offset: u64,
        /// Why it did not validate.
        reason: String,
    },
    /// Data that fails its checksum or sequence with intact groups after it.
    Corruption {
        /// The file.
        file: PathBuf,
        /// Offset of the damage.
        offset: u64,
        /// What was wrong, and where the later intact group is.
        reason: String,
    },
    /// A metadata copy failed its checksum (the other copy was used).
    MetadataCopy {
        /// The metadata file.
        file: PathBuf,
        /// Offset of the copy.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::TornTail {
                file,
                offset,
                reason,
            } => {
                write!(
                    f,
                    "torn tail cut off: {} at offset {offset}: {reason}",
                    file.display()
                )
            }
            Damage::Corruption {
                file,
                offset,
                reason,
            } => {
                write!(
                    f,
                    "CORRUPTION: {} at offset {offset}: {reason}",
                    file.display()
                )
            }
            Damage::MetadataCopy {
                file,
                offset,
                reason,
            } => {
                write!(
                    f,
                    "bad metadata copy: {} at offset {offset}: {reason}",
                    file.display()
                )
            }
        }
    }
}

/// One segment as recovery saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The segment's id.
    pub segment: SegmentId,
    /// Its file.
    pub file: PathBuf,
    /// False when it lies after the end of the valid prefix (only searched
    /// for evidence of damage).
    pub scanned: bool,
    /// Whole group commits.
    pub group_count: u64,
    /// Records in them.
    pub record_count: u64,
    /// Slot entries in them.
    pub entry_count: u64,
    /// The lowest and highest slot held.
    pub slots: Option<(Slot, Slot)>,
    /// The first and last group's commit sequence numbers.
    pub commits: Option<(CommitSeq, CommitSeq)>,
    /// Where the valid prefix ends in this file.
    pub valid_end_bytes: u64,
    /// "clean" or why the scan stopped.
    pub end: String,
}

impl SegmentReport {
    pub(crate) fn scanned(
        segment: SegmentId,
        file: PathBuf,
        scan: &SegmentScan<'_>,
    ) -> SegmentReport {
        let commits = scan
            .records
            .first()
            .zip(scan.records.last())
            .map(|(first, last)| (first.header.commit_seq, last.header.commit_seq));
        SegmentReport {
            segment,
            file,
            scanned: true,
            group_count: scan.group_count,
            record_count: scan.records.len() as u64,
            entry_count: 0,
            slots: None,
            commits,
            valid_end_bytes: scan.valid_end as u64,
            end: match &scan.end {
                SegmentEnd::Clean => "clean".to_string(),
                SegmentEnd::Broken { offset, reason, .. } => {
                    format!("stopped at {offset}: {reason}")
                }
            },
        }
    }

    pub(crate) fn unscanned(segment: SegmentId, file: PathBuf) -> SegmentReport {
        SegmentReport {
            segment,
            file,
            scanned: false,
            group_count: 0,
            record_count: 0,
            entry_count: 0,
            slots: None,
            commits: None,
            valid_end_bytes: 0,
            end: "after the end of the valid prefix".to_string(),
        }
    }

    pub(crate) fn note_slot(&mut self, slot: Slot) {
        self.entry_count += 1;
        self.slots = Some(match self.slots {
            None => (slot, slot),
            Some((low, high)) => (low.min(slot), high.max(slot)),
        });
    }
}

/// Everything recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments in id order.
    pub segments: Vec<SegmentReport>,
    /// Valid metadata copies: (copy index, write number, value).
    pub metadata_copies: Vec<(usize, u64, Metadata)>,
    /// The snapshot: file, slot, size in bytes.
    pub snapshot: Option<(PathBuf, Slot, usize)>,
    /// Everything dropped or unreadable.
    pub damage: Vec<Damage>,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "segments: {}", self.segments.len())?;
        for segment in &self.segments {
            write!(f, "  {}  ", segment.file.display())?;
            if !segment.scanned {
                writeln!(f, "{}", segment.end)?;
                continue;
            }
            match segment.slots {
                Some((low, high)) => write!(f, "slots {}..={}", low.0, high.0)?,
                None => write!(f, "no slots")?,
            }
            write!(
                f,
                "  groups {}  records {}  entries {}",
                segment.group_count, segment.record_count, segment.entry_count
            )?;
            if let Some((first, last)) = segment.commits {
                write!(f, "  commits {}..={}", first.0, last.0)?;
            }
            writeln!(
                f,
                "  valid to {}  checksums: {}",
                segment.valid_end_bytes, segment.end
            )?;
        }
        match self.metadata_copies.iter().max_by_key(|(_, write_seq, _)| *write_seq) {
            Some((copy, write_seq, metadata)) => writeln!(
                f,
                "metadata file: promised {} commit point {} recovering {} (copy {copy}, write {write_seq}, {} valid copies)",
                metadata.promised,
                metadata.commit_point.0,
                if metadata.recovering { "YES" } else { "no" },
                self.metadata_copies.len()
            )?,
            None => writeln!(f, "metadata file: none")?,
        }
        match &self.snapshot {
            Some((file, slot, bytes)) => writeln!(
                f,
                "snapshot: {} at slot {} ({bytes} bytes)",
                file.display(),
                slot.0
            )?,
            None => writeln!(f, "snapshot: none")?,
        }
        if self.damage.is_empty() {
            writeln!(f, "damage: none")?;
        }
        for damage in &self.damage {
            writeln!(f, "damage: {damage}")?;
        }
        Ok(())
    }
}
