//! The log's errors: operating errors are typed, corruption has its own variant.

use std::io;
use std::path::PathBuf;

/// Everything the log can fail with.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum LogError {
    /// The log directory does not exist (open never creates it silently).
    #[error("log directory {path} does not exist")]
    MissingDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// The file system refused access: it is mounted read-only, or the
    /// directory or a file in it may not be read or written by this user
    /// (`EROFS`, `EACCES`, `EPERM`; the source says which).
    #[error(
        "{op} {path}: the log directory is read-only or not accessible to this user ({source})"
    )]
    ReadOnly {
        /// What the log was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The disk is full. Everything durable before stays durable; appends
    /// are refused until a commit succeeds again.
    #[error("disk full while {op} {path}: the durable prefix is intact; appends resume when space returns")]
    DiskFull {
        /// What the log was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// Any other I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the log was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file written in another version of the format: a newer one, or an
    /// older one that was never deployed and is not read.
    #[error("{path} has format version {found}; this build reads only version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A file named like a log file that was not written by this log.
    #[error("{path} is not a synod log file: {reason}")]
    ForeignFile {
        /// The file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// Durable data that fails its checksum or its sequence, with valid data
    /// after it: something synced was damaged. Never skipped silently.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        /// The file.
        path: PathBuf,
        /// The byte offset of the damaged record or block.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The current group commit has no room for the entry: commit, then append again.
    #[error("the group commit holds {available_bytes} more bytes; the entry needs {needed_bytes}: commit first")]
    GroupFull {
        /// Bytes the entry needs, headers included.
        needed_bytes: usize,
        /// Bytes left in the group's write buffer.
        available_bytes: usize,
    },
    /// An entry larger than a whole group commit can never be written.
    #[error(
        "an entry of {entry_bytes} bytes exceeds the group commit limit of {group_bytes_max} bytes"
    )]
    EntryTooLarge {
        /// The entry's batch length.
        entry_bytes: usize,
        /// The configured group commit buffer size.
        group_bytes_max: usize,
    },
    /// An earlier write or sync failed in a way that leaves the file's state
    /// unknown; the log must be reopened (and recovered) before further use.
    #[error("the log stopped after a failed write or sync ({reason}); reopen it to recover")]
    Failed {
        /// The first failure.
        reason: String,
    },
    /// Another process holds the log directory.
    #[error("log directory {path} is locked by another process")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The configuration is inconsistent.
    #[error("invalid log configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// The log's result type.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl LogError {
    /// Classifies an I/O error: a full disk and a read-only file system get
    /// their own variants so callers can react to them.
    #[must_use]
    pub fn from_io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LogError {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => LogError::DiskFull { op, path },
            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => {
                LogError::ReadOnly { op, path, source }
            }
            Some(libc::ENOENT) if op == "opening directory" => LogError::MissingDirectory { path },
            _ => LogError::Io { op, path, source },
        }
    }

    /// True for [`LogError::DiskFull`].
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LogError::DiskFull { .. })
    }

    /// True for [`LogError::Corruption`].
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(self, LogError::Corruption { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A permission error on a read is not called a read-only file system:
    /// the message names both causes and carries the system's own words.
    #[test]
    fn permission_errors_say_what_the_system_said() {
        let error = LogError::from_io(
            "reading",
            "/log/0000000000000001.seg",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        let message = error.to_string();
        assert!(matches!(error, LogError::ReadOnly { .. }), "{message}");
        assert!(message.contains("not accessible to this user"), "{message}");
        assert!(message.contains("Permission denied"), "{message}");
        let error = LogError::from_io(
            "writing",
            "/log/0000000000000001.seg",
            io::Error::from_raw_os_error(libc::EROFS),
        );
        assert!(
            error.to_string().contains("Read-only file system"),
            "{error}"
        );
    }
}
