//! `synod log inspect DIR`: segments, slot ranges, record counts, checksum
//! status, the metadata and the snapshot; with records, every record.
//!
//! Reads only: it takes no lock and writes nothing, so it can look at the
//! directory of a running or crashed node.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::aligned::AlignedBuf;
use crate::error::{LogError, Result};
use crate::format::{RecordKind, SegmentId};
use crate::recovery::recover;
use crate::report::RecoveryReport;
use crate::scan::scan_segment;
use crate::storage::Storage;

/// How much to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Segments, metadata, snapshot, damage.
    Summary,
    /// Also every record of the valid prefix of each segment.
    Records,
}

/// One record, as listed by `--records`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLine {
    /// The segment file.
    pub file: PathBuf,
    /// The record's offset.
    pub offset: u64,
    /// Its group commit.
    pub commit_seq: u64,
    /// "accepted" or "metadata".
    pub kind: &'static str,
    /// First slot (commit point for metadata).
    pub first_slot: u64,
    /// Slot entries.
    pub entry_count: u32,
    /// The ballot (promised ballot for metadata).
    pub ballot: String,
    /// Payload bytes.
    pub payload_bytes: u32,
    /// A metadata record's recovering flag (false for accepted records).
    pub recovering: bool,
}

/// What `inspect` found.
#[derive(Clone, Debug)]
pub struct InspectReport {
    /// The directory.
    pub directory: PathBuf,
    /// Recovery's view.
    pub recovery: RecoveryReport,
    /// Whether a restart would rejoin as a non-voter: recovery would drop
    /// data, or the durable metadata says the owner is still recovering.
    pub damaged: bool,
    /// The metadata a restart recovers (file and records combined).
    pub metadata: crate::format::Metadata,
    /// Records, when asked for.
    pub records: Vec<RecordLine>,
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "log directory: {}", self.directory.display())?;
        write!(f, "{}", self.recovery)?;
        writeln!(
            f,
            "recovered metadata (file and records): promised {} commit point {} recovering {}",
            self.metadata.promised,
            self.metadata.commit_point.0,
            if self.metadata.recovering {
                "YES"
            } else {
                "no"
            }
        )?;
        let role = match (self.damaged, self.recovery.damage.is_empty()) {
            (false, _) => "a voter",
            (true, false) => "a NON-VOTER (recovery dropped data)",
            (true, true) => "a NON-VOTER (it had not finished recovering from damage)",
        };
        writeln!(f, "a restart would rejoin as {role}")?;
        for record in &self.records {
            write!(
                f,
                "  {} @{}  group {}  ",
                record.file.display(),
                record.offset,
                record.commit_seq
            )?;
            if record.kind == "metadata" {
                writeln!(
                    f,
                    "metadata  promised {}  commit point {}{}",
                    record.ballot,
                    record.first_slot,
                    if record.recovering {
                        "  RECOVERING"
                    } else {
                        ""
                    }
                )?;
            } else {
                writeln!(
                    f,
                    "accepted  slots {}..={}  ballot {}  {} bytes",
                    record.first_slot,
                    record.first_slot + u64::from(record.entry_count) - 1,
                    record.ballot,
                    record.payload_bytes
                )?;
            }
        }
        Ok(())
    }
}

/// A log directory opened for reading only.
struct ReadOnlyDirectory {
    directory: PathBuf,
}

fn refuse(op: &'static str, path: PathBuf) -> LogError {
    LogError::ReadOnly {
        op,
        path,
        source: std::io::Error::from_raw_os_error(libc::EROFS),
    }
}

impl Storage for ReadOnlyDirectory {
    fn path_of(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }

    fn list(&mut self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.directory)
            .map_err(|error| LogError::from_io("listing directory", &self.directory, error))?;
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads a regular file of at most `length_max_bytes`. Anything else
    /// under a log file's name (a device such as `/dev/zero` behind a
    /// symlink, a fifo, a directory) is refused before it is opened, and
    /// the read stops one byte past the limit whatever the file's size said.
    fn read(&mut self, name: &str, length_max_bytes: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(name);
        let too_long = |path: PathBuf, length: u64| LogError::ForeignFile {
            path,
            reason: format!("{length} bytes is more than {length_max_bytes}"),
        };
        match std::fs::metadata(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(LogError::from_io("reading", path, error)),
            Ok(metadata) if !metadata.is_file() => {
                return Err(LogError::ForeignFile {
                    path,
                    reason: "not a regular file".to_string(),
                })
            }
            Ok(metadata) if metadata.len() > length_max_bytes => {
                return Err(too_long(path, metadata.len()))
            }
            Ok(_) => {}
        }
        // The owner of a running log may retire the file between the check
        // and the open: that is a missing file, as if listed a moment later.
        let file = match std::fs::File::open(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            opened => opened.map_err(|error| LogError::from_io("reading", path.clone(), error))?,
        };
        let mut bytes = Vec::new();
        file.take(length_max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|error| LogError::from_io("reading", path.clone(), error))?;
        if bytes.len() as u64 > length_max_bytes {
            return Err(too_long(path, bytes.len() as u64));
        }
        Ok(Some(bytes))
    }

    fn write_atomic(&mut self, name: &str, _bytes: &[u8]) -> Result<()> {
        Err(refuse("inspect never writes", self.path_of(name)))
    }

    fn overwrite(&mut self, name: &str, _offset_bytes: u64, _bytes: &[u8]) -> Result<()> {
        Err(refuse("inspect never writes", self.path_of(name)))
    }

    fn rename(&mut self, from: &str, _to: &str) -> Result<()> {
        Err(refuse("inspect never renames", self.path_of(from)))
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        Err(refuse("inspect never removes", self.path_of(name)))
    }

    fn prepare_segment(&mut self, _segment: SegmentId, _segment_bytes: u64) {}

    fn activate_segment(&mut self, segment: SegmentId, _segment_bytes: u64) -> Result<bool> {
        Err(refuse(
            "inspect never writes",
            self.path_of(&segment.file_name()),
        ))
    }

    fn write_group(
        &mut self,
        segment: SegmentId,
        _offset: u64,
        _buffer: &AlignedBuf,
        _length: usize,
    ) -> Result<()> {
        Err(refuse(
            "inspect never writes",
            self.path_of(&segment.file_name()),
        ))
    }

    fn release_segment(&mut self, _segment: SegmentId) {}

    fn retire_segment(&mut self, segment: SegmentId, _spares_max: usize) -> Result<()> {
        Err(refuse(
            "inspect never removes",
            self.path_of(&segment.file_name()),
        ))
    }
}

/// Reads the log in `directory` as recovery would, without changing it.
///
/// # Errors
/// A missing directory, foreign or newer files, I/O errors. Corruption is
/// not an error here: it is listed in the report.
pub fn inspect(directory: &Path, listing: Listing) -> Result<InspectReport> {
    if !directory.is_dir() {
        return Err(LogError::MissingDirectory {
            path: directory.to_path_buf(),
        });
    }
    let mut storage = ReadOnlyDirectory {
        directory: directory.to_path_buf(),
    };
    let (recovered, _) = recover(&mut storage, 1 << 32, 1 << 26)?;
    let mut records = Vec::new();
    if listing == Listing::Records {
        for segment in &recovered.report.segments {
            let Some(bytes) = storage.read(&segment.segment.file_name(), 1 << 32)? else {
                continue;
            };
            for record in scan_segment(&bytes, segment.segment, None).records {
                let header = record.header;
                records.push(RecordLine {
                    file: segment.file.clone(),
                    offset: record.offset as u64,
                    commit_seq: header.commit_seq.0,
                    kind: match header.kind {
                        RecordKind::Accepted => "accepted",
                        RecordKind::Metadata => "metadata",
                    },
                    first_slot: header.first_slot.0,
                    entry_count: header.entry_count,
                    ballot: header.ballot.to_string(),
                    payload_bytes: header.payload_bytes,
                    recovering: header
                        .metadata()
                        .is_some_and(|metadata| metadata.recovering),
                });
            }
        }
    }
    Ok(InspectReport {
        directory: directory.to_path_buf(),
        damaged: recovered.damaged || recovered.metadata.recovering,
        metadata: recovered.metadata,
        recovery: recovered.report,
        records,
    })
}
