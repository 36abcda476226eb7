//! The portable back end's files: a real directory, segments written with
//! `O_DIRECT` (and `O_DSYNC` or `fdatasync`), prepared ahead of the writer
//! by a background thread so that durable writes are overwrites.
//!
//! Invariants:
//! - A segment appears under its final name only once its header and its
//!   zeros (or a recycled spare's stale bytes) are synced and the directory
//!   is synced: a crash never leaves a half-made segment under that name.
//! - At most one preparation runs at a time, and only for the segment after
//!   the active one.
//! - The directory stays locked (`flock`) while the storage lives.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::aligned::AlignedBuf;
use crate::error::{LogError, Result};
use crate::format::{decode_segment_header, SegmentHeader, SegmentId, BLOCK_BYTES};
use crate::storage::{Storage, SyncMode};

const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// A log directory on a real file system.
pub struct FileStorage {
    directory: PathBuf,
    directory_handle: File,
    _lock: File,
    sync_mode: SyncMode,
    segments: HashMap<SegmentId, File>,
    preparing: Option<(SegmentId, JoinHandle<Result<()>>)>,
    sync_count: u64,
}

fn sync_directory(directory: &Path) -> Result<()> {
    let handle = File::open(directory)
        .map_err(|error| LogError::from_io("opening directory", directory, error))?;
    handle
        .sync_all()
        .map_err(|error| LogError::from_io("syncing directory", directory, error))
}

impl FileStorage {
    /// Opens an existing log directory, locks it, and removes leftovers of
    /// interrupted atomic writes (`*.tmp`).
    ///
    /// # Errors
    /// [`LogError::MissingDirectory`], [`LogError::ReadOnly`] when the lock
    /// file cannot be created or opened for writing, [`LogError::Locked`]
    /// when another process holds it, other I/O errors.
    pub fn open(directory: impl Into<PathBuf>, sync_mode: SyncMode) -> Result<FileStorage> {
        let directory = directory.into();
        if !directory.is_dir() {
            return Err(LogError::MissingDirectory { path: directory });
        }
        let directory_handle = File::open(&directory)
            .map_err(|error| LogError::from_io("opening directory", &directory, error))?;
        let lock_path = directory.join("LOCK");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|error| LogError::from_io("creating lock file", &lock_path, error))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            return Err(LogError::Locked { path: directory });
        }
        let mut storage = FileStorage {
            directory,
            directory_handle,
            _lock: lock,
            sync_mode,
            segments: HashMap::new(),
            preparing: None,
            sync_count: 0,
        };
        for name in storage.list()? {
            if name.ends_with(".tmp") {
                storage.remove(&name)?;
            }
        }
        Ok(storage)
    }

    /// Creates the directory (and its parents) when missing, then opens it.
    ///
    /// # Errors
    /// As [`FileStorage::open`], and failures to create the directory.
    pub fn create(directory: impl Into<PathBuf>, sync_mode: SyncMode) -> Result<FileStorage> {
        let directory = directory.into();
        std::fs::create_dir_all(&directory)
            .map_err(|error| LogError::from_io("creating directory", &directory, error))?;
        FileStorage::open(directory, sync_mode)
    }

    /// How group writes become durable.
    #[must_use]
    pub fn sync_mode(&self) -> SyncMode {
        self.sync_mode
    }

    /// The directory.
    #[must_use]
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The file descriptor of an active segment (for io_uring's file table).
    #[must_use]
    pub fn segment_fd(&self, segment: SegmentId) -> Option<RawFd> {
        self.segments.get(&segment).map(AsRawFd::as_raw_fd)
    }

    /// How many `fdatasync` calls group commits made through this storage.
    #[must_use]
    pub fn sync_count(&self) -> u64 {
        self.sync_count
    }

    /// Waits until the background preparation of the next segment is done
    /// (benchmarks call this so zero-filling does not compete with them).
    ///
    /// # Errors
    /// The preparation failed (a full disk, for example).
    pub fn wait_for_preparation(&mut self) -> Result<()> {
        match self.join_preparation() {
            Some((segment, Err(error))) => {
                let _ = segment;
                Err(error)
            }
            _ => Ok(()),
        }
    }

    fn sync_self_directory(&self) -> Result<()> {
        self.directory_handle
            .sync_all()
            .map_err(|error| LogError::from_io("syncing directory", &self.directory, error))
    }

    fn spare_names(&mut self) -> Result<Vec<String>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|name| name.ends_with(".spare"))
            .collect())
    }

    fn join_preparation(&mut self) -> Option<(SegmentId, Result<()>)> {
        let (segment, handle) = self.preparing.take()?;
        let result = handle.join().unwrap_or_else(|_| {
            Err(LogError::Failed {
                reason: "the segment preparation thread panicked".to_string(),
            })
        });
        Some((segment, result))
    }
}

/// Makes `segment` ready under its final name: recycles `spare` when given
/// (rewriting its header), else writes a new file of zeros.
fn prepare_segment_file(
    directory: &Path,
    segment: SegmentId,
    segment_bytes: u64,
    spare: Option<String>,
) -> Result<()> {
    let final_path = directory.join(segment.file_name());
    // The header block and, for a recycled spare, a zero first record
    // block: the writer's first group then never lands next to stale bytes
    // that recovery could take for a torn write.
    let mut header = vec![0u8; 2 * BLOCK_BYTES];
    SegmentHeader {
        segment,
        segment_bytes,
        recycled: spare.is_some(),
    }
    .encode(&mut header[..BLOCK_BYTES]);
    let source = match spare {
        Some(spare) => {
            let spare_path = directory.join(spare);
            let file = OpenOptions::new()
                .write(true)
                .open(&spare_path)
                .map_err(|error| LogError::from_io("opening spare segment", &spare_path, error))?;
            file.write_all_at(&header, 0)
                .and_then(|()| file.sync_data())
                .map_err(|error| LogError::from_io("recycling segment", &spare_path, error))?;
            drop_cached_pages(&file);
            spare_path
        }
        None => {
            let temporary = directory.join(format!("{}.tmp", segment.file_name()));
            if let Err(error) = write_zero_filled(&temporary, &header, segment_bytes) {
                // Give the space back: a full disk must be able to recover.
                let _ = std::fs::remove_file(&temporary);
                return Err(error);
            }
            temporary
        }
    };
    std::fs::rename(&source, &final_path)
        .map_err(|error| LogError::from_io("renaming segment", &final_path, error))?;
    sync_directory(directory)
}

/// Writes the header block and zeros up to `segment_bytes` with large
/// `O_DIRECT` writes (no page cache to fill, write back and drop: the
/// preparation thread then costs the writer's CPU and memory little), and
/// syncs the file.
fn write_zero_filled(path: &Path, header: &[u8], segment_bytes: u64) -> Result<()> {
    assert!(
        segment_bytes.is_multiple_of(BLOCK_BYTES as u64) && segment_bytes >= BLOCK_BYTES as u64,
        "segments are whole blocks (validated config)"
    );
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .map_err(|error| LogError::from_io("creating segment", path, error))?;
    let mut chunk_buffer = AlignedBuf::zeroed(ZERO_CHUNK_BYTES);
    chunk_buffer.as_mut_slice()[..BLOCK_BYTES].copy_from_slice(&header[..BLOCK_BYTES]);
    let mut written = 0u64;
    while written < segment_bytes {
        let chunk = (segment_bytes - written).min(ZERO_CHUNK_BYTES as u64) as usize;
        file.write_all_at(&chunk_buffer.as_slice()[..chunk], written)
            .map_err(|error| LogError::from_io("zero-filling segment", path, error))?;
        if written == 0 {
            // Only the first chunk carries the header.
            chunk_buffer.as_mut_slice()[..BLOCK_BYTES].fill(0);
        }
        written += chunk as u64;
    }
    file.sync_all()
        .map_err(|error| LogError::from_io("syncing new segment", path, error))?;
    drop_cached_pages(&file);
    Ok(())
}

/// Drops a file's clean pages from the page cache: `O_DIRECT` writes over
/// cached pages would otherwise have to invalidate them, write by write.
fn drop_cached_pages(file: &File) {
    // SAFETY: posix_fadvise on a descriptor we own; no memory is involved.
    // It is advice: a failure only leaves the pages cached.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

fn read_recycled_flag(file: &File) -> bool {
    let mut header = crate::aligned::AlignedBuf::zeroed(BLOCK_BYTES);
    file.read_exact_at(header.as_mut_slice(), 0).is_ok()
        && decode_segment_header(header.as_slice()).is_ok_and(|header| header.recycled)
}

impl Storage for FileStorage {
    fn path_of(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }

    fn list(&mut self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.directory)
            .map_err(|error| LogError::from_io("listing directory", &self.directory, error))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|error| LogError::from_io("listing directory", &self.directory, error))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&mut self, name: &str, length_max_bytes: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(name);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(LogError::from_io("opening", path, error)),
        };
        let length = file
            .metadata()
            .map_err(|error| LogError::from_io("reading", &path, error))?
            .len();
        if length > length_max_bytes {
            return Err(LogError::ForeignFile {
                path,
                reason: format!("{length} bytes is more than {length_max_bytes}"),
            });
        }
        let mut bytes = vec![0u8; length as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|error| LogError::from_io("reading", &path, error))?;
        Ok(Some(bytes))
    }

    fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let temporary = self.path_of(&format!("{name}.tmp"));
        let result = (|| {
            let mut file = File::create(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temporary);
            return Err(LogError::from_io("writing", temporary, error));
        }
        std::fs::rename(&temporary, self.path_of(name))
            .map_err(|error| LogError::from_io("renaming into place", self.path_of(name), error))?;
        self.sync_self_directory()
    }

    fn overwrite(&mut self, name: &str, offset_bytes: u64, bytes: &[u8]) -> Result<()> {
        let path = self.path_of(name);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|error| LogError::from_io("opening", &path, error))?;
        file.write_all_at(bytes, offset_bytes)
            .and_then(|()| file.sync_data())
            .map_err(|error| LogError::from_io("overwriting", path, error))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        std::fs::rename(self.path_of(from), self.path_of(to))
            .map_err(|error| LogError::from_io("renaming", self.path_of(from), error))?;
        self.sync_self_directory()
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        match std::fs::remove_file(self.path_of(name)) {
            Ok(()) => self.sync_self_directory(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(LogError::from_io("removing", self.path_of(name), error)),
        }
    }

    fn prepare_segment(&mut self, segment: SegmentId, segment_bytes: u64) {
        if self.preparing.is_some() || self.path_of(&segment.file_name()).exists() {
            return;
        }
        let spare = self.spare_names().ok().and_then(|mut spares| spares.pop());
        let directory = self.directory.clone();
        let handle = std::thread::Builder::new()
            .name("synod-log-prepare".to_string())
            .spawn(move || prepare_segment_file(&directory, segment, segment_bytes, spare));
        if let Ok(handle) = handle {
            self.preparing = Some((segment, handle));
        }
    }

    fn activate_segment(&mut self, segment: SegmentId, segment_bytes: u64) -> Result<bool> {
        if let Some(file) = self.segments.get(&segment) {
            return Ok(read_recycled_flag(file));
        }
        if let Some((prepared, result)) = self.join_preparation() {
            if prepared == segment {
                result?;
            }
        }
        let path = self.path_of(&segment.file_name());
        if !path.exists() {
            let spare = self.spare_names()?.pop();
            prepare_segment_file(&self.directory, segment, segment_bytes, spare)?;
        }
        let mut flags = libc::O_DIRECT;
        if self.sync_mode == SyncMode::Dsync {
            flags |= libc::O_DSYNC;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(&path)
            .map_err(|error| LogError::from_io("opening segment", &path, error))?;
        let recycled = read_recycled_flag(&file);
        self.segments.insert(segment, file);
        Ok(recycled)
    }

    fn write_group(
        &mut self,
        segment: SegmentId,
        offset_bytes: u64,
        buffer: &AlignedBuf,
        length_bytes: usize,
    ) -> Result<()> {
        assert!(
            offset_bytes.is_multiple_of(BLOCK_BYTES as u64)
                && length_bytes.is_multiple_of(BLOCK_BYTES),
            "O_DIRECT writes are block aligned"
        );
        let path = self.path_of(&segment.file_name());
        let file = self
            .segments
            .get(&segment)
            .expect("the log writes only segments it activated");
        file.write_all_at(&buffer.as_slice()[..length_bytes], offset_bytes)
            .map_err(|error| LogError::from_io("writing segment", &path, error))?;
        // `Adaptive` is an io_uring choice; written here, it is `Fdatasync`.
        if self.sync_mode != SyncMode::Dsync {
            self.sync_count += 1;
            file.sync_data()
                .map_err(|error| LogError::from_io("syncing segment", &path, error))?;
        }
        Ok(())
    }

    fn release_segment(&mut self, segment: SegmentId) {
        self.segments.remove(&segment);
    }

    fn retire_segment(&mut self, segment: SegmentId, spares_max: usize) -> Result<()> {
        self.segments.remove(&segment);
        let name = segment.file_name();
        if self.spare_names()?.len() < spares_max {
            self.rename(&name, &format!("{:016x}.spare", segment.0))
        } else {
            self.remove(&name)
        }
    }
}

impl Drop for FileStorage {
    fn drop(&mut self) {
        let _ = self.join_preparation();
    }
}
