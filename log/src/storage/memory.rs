//! An in-memory block device with fault injection, for the simulator and
//! the crash tests: the real format and recovery code run over it.
//!
//! Deterministic: no threads, no clocks, no randomness of its own. Faults
//! are the caller's decisions ([`CrashFault`], [`MemStorage::corrupt`],
//! [`MemStorage::set_capacity`], [`MemStorage::arm_crash`]) or derive from a
//! caller-supplied seed ([`CrashFault::from_seed`]).
//!
//! Two ways to write a group commit: through [`Log::commit`] (written and
//! synced at once, like the portable back end), or, for a simulator that
//! models the time a sync takes, [`MemStorage::write_pending`] when the
//! write is issued and [`MemStorage::sync_pending`] when its sync completes
//! (like the io_uring back end's write and linked `fdatasync`); a crash in
//! between ([`MemStorage::restart`]) decides what of it survives.
//!
//! Invariants:
//! - A file's durable bytes change only on a sync (explicit, `O_DSYNC`
//!   style, or a directory operation, which is durable at once).
//! - A crash keeps every synced byte; of the unsynced writes it keeps what
//!   the [`CrashFault`] says and nothing else. "The last write" is the
//!   last one still unsynced, in whichever file.
//! - The total of all files' lengths never exceeds the capacity.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use crate::aligned::AlignedBuf;
use crate::error::{LogError, Result};
use crate::format::{decode_segment_header, SegmentHeader, SegmentId, BLOCK_BYTES};
use crate::log::PendingWrite;
use crate::storage::Storage;
#[cfg(doc)]
use crate::Log;

/// What a crash does to writes that were not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashFault {
    /// Every unsynced write is lost.
    LoseUnsynced,
    /// Every unsynced write landed (the crash came after the write, before
    /// the sync returned).
    KeepUnsynced,
    /// Earlier unsynced writes landed; the last one landed only for its
    /// first `keep_bytes` bytes (a torn write; cut at any byte).
    TearLastWrite {
        /// Bytes of the last write that reached the disk.
        keep_bytes: usize,
    },
}

impl CrashFault {
    /// A fault chosen from a seed: reproducible for a simulator's seed.
    #[must_use]
    pub fn from_seed(seed: u64) -> CrashFault {
        let mixed = splitmix64(seed);
        match mixed % 3 {
            0 => CrashFault::LoseUnsynced,
            1 => CrashFault::KeepUnsynced,
            _ => CrashFault::TearLastWrite {
                keep_bytes: (splitmix64(mixed) % (1 << 20)) as usize,
            },
        }
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A write not synced yet: where and how long, where the bytes it replaced
/// (what a crash that loses it reads back) lie in its file's undo bytes,
/// and its number among all writes to the disk (the highest unsynced one
/// is "the last write").
#[derive(Clone, Copy)]
struct Unsynced {
    offset: usize,
    length: usize,
    undo_at: usize,
    write_number: u64,
}

/// One file: its bytes as they read now, and an undo record per unsynced
/// write (its durable bytes are the current ones with every unsynced write
/// undone, latest first). One image and the replaced bytes in one reused
/// buffer, not two images: a simulator creates, writes and syncs segments
/// all the time.
#[derive(Clone, Default)]
struct MemFile {
    current: Vec<u8>,
    unsynced: Vec<Unsynced>,
    undo: Vec<u8>,
}

impl MemFile {
    /// The bytes `write` replaced.
    fn replaced(&self, write: &Unsynced) -> &[u8] {
        &self.undo[write.undo_at..write.undo_at + write.length]
    }

    /// The durable image: the current one with every unsynced write undone.
    fn durable(&self) -> Vec<u8> {
        let mut image = self.current.clone();
        for write in self.unsynced.iter().rev() {
            image[write.offset..write.offset + write.length].copy_from_slice(self.replaced(write));
        }
        image
    }

    /// Applies `damage` to a byte range in every version of the file: the
    /// current image and the bytes each unsynced write replaced.
    fn damage(&mut self, start: usize, end: usize, damage: impl Fn(&mut [u8])) {
        damage(&mut self.current[start..end]);
        for write in &self.unsynced {
            let (from, to) = (
                start.max(write.offset),
                end.min(write.offset + write.length),
            );
            if from < to {
                let undo_from = write.undo_at + from - write.offset;
                damage(&mut self.undo[undo_from..undo_from + (to - from)]);
            }
        }
    }

    /// Every unsynced write is durable, or undone: nothing to undo any more.
    fn forget_unsynced(&mut self) {
        self.unsynced.clear();
        self.undo.clear();
    }
}

#[derive(Clone, Default)]
struct MemDisk {
    files: BTreeMap<String, MemFile>,
    capacity_bytes: Option<u64>,
    crash_armed: bool,
    crashed: bool,
    writes: u64,
}

/// A handle to an in-memory disk; clones share the disk, so a simulator can
/// keep one across a crash of the log that used it.
#[derive(Clone, Default)]
pub struct MemStorage {
    disk: Rc<RefCell<MemDisk>>,
}

fn io_error(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

impl MemStorage {
    /// An empty disk without a capacity limit.
    #[must_use]
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// A deep copy of the disk as it is now (unsynced writes included): a
    /// simulator or test can branch several crashes from one state.
    #[must_use]
    pub fn fork(&self) -> MemStorage {
        MemStorage {
            disk: Rc::new(RefCell::new(self.disk.borrow().clone())),
        }
    }

    /// Limits the total bytes of all files (`None`: unlimited); growing
    /// past it fails with `ENOSPC`.
    pub fn set_capacity(&self, capacity_bytes: Option<u64>) {
        self.disk.borrow_mut().capacity_bytes = capacity_bytes;
    }

    /// The next group write lands unsynced and then the machine "crashes":
    /// that call and every later one fail until [`MemStorage::restart`]
    /// decides what the unsynced writes left behind.
    pub fn arm_crash(&self) {
        self.disk.borrow_mut().crash_armed = true;
    }

    /// True after an armed crash fired, until [`MemStorage::restart`].
    #[must_use]
    pub fn has_crashed(&self) -> bool {
        self.disk.borrow().crashed
    }

    /// A crash now: unsynced writes are treated per `fault`; the disk then
    /// works again for the next log opened on it.
    pub fn restart(&self, fault: CrashFault) {
        let mut disk = self.disk.borrow_mut();
        let last_write = disk
            .files
            .values()
            .flat_map(|file| file.unsynced.iter().map(|write| write.write_number))
            .max();
        for file in disk.files.values_mut() {
            let MemFile {
                current,
                unsynced,
                undo,
            } = file;
            // Latest first, so that where unsynced writes overlap, undoing
            // a lost one brings back what the one before it wrote.
            for write in unsynced.iter().rev() {
                let length = write.length;
                let keep = match fault {
                    CrashFault::LoseUnsynced => 0,
                    CrashFault::KeepUnsynced => length,
                    CrashFault::TearLastWrite { keep_bytes }
                        if Some(write.write_number) == last_write =>
                    {
                        keep_bytes.min(length)
                    }
                    CrashFault::TearLastWrite { .. } => length,
                };
                current[write.offset + keep..write.offset + length]
                    .copy_from_slice(&undo[write.undo_at + keep..write.undo_at + length]);
            }
            file.forget_unsynced();
        }
        disk.crashed = false;
        disk.crash_armed = false;
    }

    /// Flips the bits of `mask` in the durable byte at `offset_bytes` of `name`
    /// (a damaged sector: every version of the byte, unsynced ones too).
    /// Returns false when the byte does not exist.
    pub fn corrupt(&self, name: &str, offset_bytes: usize, mask: u8) -> bool {
        let mut disk = self.disk.borrow_mut();
        let Some(file) = disk.files.get_mut(name) else {
            return false;
        };
        if offset_bytes >= file.current.len() {
            return false;
        }
        file.damage(offset_bytes, offset_bytes + 1, |bytes| bytes[0] ^= mask);
        true
    }

    /// Overwrites a whole 512-byte sector of `name` with `fill` (durably).
    pub fn corrupt_sector(&self, name: &str, sector_index: usize, fill: u8) -> bool {
        let mut disk = self.disk.borrow_mut();
        let Some(file) = disk.files.get_mut(name) else {
            return false;
        };
        let start = sector_index * 512;
        if start + 512 > file.current.len() {
            return false;
        }
        file.damage(start, start + 512, |bytes| bytes.fill(fill));
        true
    }

    /// The durable bytes of a file (what survives a crash that loses
    /// everything unsynced).
    #[must_use]
    pub fn durable_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.disk.borrow().files.get(name).map(MemFile::durable)
    }

    /// Replaces a file's bytes durably (tests and fuzzing build images with this).
    pub fn put_file(&self, name: &str, bytes: Vec<u8>) {
        let file = MemFile {
            current: bytes,
            ..MemFile::default()
        };
        self.disk.borrow_mut().files.insert(name.to_string(), file);
    }

    /// The total length of all files: what [`MemStorage::set_capacity`] limits.
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        self.disk
            .borrow()
            .files
            .values()
            .map(|file| file.current.len() as u64)
            .sum()
    }

    /// The names of the files.
    #[must_use]
    pub fn file_names(&self) -> Vec<String> {
        self.disk.borrow().files.keys().cloned().collect()
    }

    fn check_alive(&self, op: &'static str, name: &str) -> Result<()> {
        if self.disk.borrow().crashed {
            return Err(LogError::from_io(
                op,
                self.path_of(name),
                io_error(libc::EIO),
            ));
        }
        Ok(())
    }

    fn check_growth(&self, op: &'static str, name: &str, new_length: usize) -> Result<()> {
        let disk = self.disk.borrow();
        let Some(capacity) = disk.capacity_bytes else {
            return Ok(());
        };
        let others: usize = disk
            .files
            .iter()
            .filter(|(other, _)| other.as_str() != name)
            .map(|(_, file)| file.current.len())
            .sum();
        if (others + new_length) as u64 > capacity {
            return Err(LogError::from_io(
                op,
                self.path_of(name),
                io_error(libc::ENOSPC),
            ));
        }
        Ok(())
    }

    fn write_unsynced(&self, name: &str, offset: usize, bytes: &[u8]) {
        let mut disk = self.disk.borrow_mut();
        disk.writes += 1;
        let write_number = disk.writes;
        let file = disk
            .files
            .get_mut(name)
            .expect("callers write existing files only");
        assert!(
            offset + bytes.len() <= file.current.len(),
            "writes never grow a file"
        );
        let target = &mut file.current[offset..offset + bytes.len()];
        let undo_at = file.undo.len();
        file.undo.extend_from_slice(target);
        target.copy_from_slice(bytes);
        file.unsynced.push(Unsynced {
            offset,
            length: bytes.len(),
            undo_at,
            write_number,
        });
    }

    fn sync(&self, name: &str) {
        let mut disk = self.disk.borrow_mut();
        if let Some(file) = disk.files.get_mut(name) {
            file.forget_unsynced();
        }
    }

    /// Issues the group write `write` (from [`Log::start_commit`]): its
    /// bytes reach the device but are not durable until
    /// [`MemStorage::sync_pending`]; a crash before that keeps what its
    /// [`CrashFault`] says. The caller hands the write back to the log with
    /// [`Log::finish_commit`] once the sync is done.
    ///
    /// # Errors
    /// After an armed crash fired: an I/O error, as [`Storage::write_group`].
    pub fn write_pending(&self, write: &PendingWrite) -> Result<()> {
        let name = write.segment().file_name();
        self.check_alive("writing", &name)?;
        assert!(
            write.offset_bytes().is_multiple_of(BLOCK_BYTES as u64)
                && write.length_bytes().is_multiple_of(BLOCK_BYTES),
            "group writes are block aligned"
        );
        let offset = usize::try_from(write.offset_bytes()).expect("in-memory offsets fit a usize");
        let bytes = &write.buffer().as_slice()[..write.length_bytes()];
        self.write_unsynced(&name, offset, bytes);
        Ok(())
    }

    /// The sync of `write`, issued with [`MemStorage::write_pending`],
    /// completed: its segment's unsynced bytes are durable.
    pub fn sync_pending(&self, write: &PendingWrite) {
        self.sync(&write.segment().file_name());
    }

    fn create_segment(&mut self, segment: SegmentId, segment_bytes: u64) -> Result<()> {
        let name = segment.file_name();
        let length = segment_bytes as usize;
        let spare = self
            .file_names()
            .into_iter()
            .find(|name| name.ends_with(".spare"));
        let recycled = spare.is_some();
        // Built in place, never copied: a simulator rolls over segments
        // all the time.
        let mut file = match spare {
            Some(spare) => {
                let mut disk = self.disk.borrow_mut();
                let mut file = disk.files.remove(&spare).expect("listed just now");
                assert!(
                    file.unsynced.is_empty(),
                    "a retired segment has no write in flight"
                );
                file.current.resize(length, 0);
                file
            }
            None => {
                self.check_growth("preparing segment", &name, length)?;
                MemFile {
                    current: vec![0u8; length],
                    ..MemFile::default()
                }
            }
        };
        let first_block_end = (2 * BLOCK_BYTES).min(length);
        SegmentHeader {
            segment,
            segment_bytes,
            recycled,
        }
        .encode(&mut file.current[..BLOCK_BYTES]);
        file.current[BLOCK_BYTES..first_block_end].fill(0);
        self.disk.borrow_mut().files.insert(name, file);
        Ok(())
    }
}

impl Storage for MemStorage {
    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from("mem:").join(name)
    }

    fn list(&mut self) -> Result<Vec<String>> {
        self.check_alive("listing", "")?;
        Ok(self.file_names())
    }

    fn read(&mut self, name: &str, length_max_bytes: u64) -> Result<Option<Vec<u8>>> {
        self.check_alive("reading", name)?;
        let disk = self.disk.borrow();
        let Some(file) = disk.files.get(name) else {
            return Ok(None);
        };
        if file.current.len() as u64 > length_max_bytes {
            return Err(LogError::ForeignFile {
                path: self.path_of(name),
                reason: format!(
                    "{} bytes is more than {length_max_bytes}",
                    file.current.len()
                ),
            });
        }
        Ok(Some(file.current.clone()))
    }

    fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.check_alive("writing", name)?;
        self.check_growth("writing", name, bytes.len())?;
        self.put_file(name, bytes.to_vec());
        Ok(())
    }

    fn overwrite(&mut self, name: &str, offset_bytes: u64, bytes: &[u8]) -> Result<()> {
        self.check_alive("overwriting", name)?;
        self.write_unsynced(name, offset_bytes as usize, bytes);
        self.sync(name);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.check_alive("renaming", from)?;
        let mut disk = self.disk.borrow_mut();
        let file = disk.files.remove(from).ok_or_else(|| LogError::Io {
            op: "renaming",
            path: PathBuf::from("mem:").join(from),
            source: io_error(libc::ENOENT),
        })?;
        disk.files.insert(to.to_string(), file);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        self.check_alive("removing", name)?;
        self.disk.borrow_mut().files.remove(name);
        Ok(())
    }

    fn prepare_segment(&mut self, _segment: SegmentId, _segment_bytes: u64) {}

    fn activate_segment(&mut self, segment: SegmentId, segment_bytes: u64) -> Result<bool> {
        let name = segment.file_name();
        self.check_alive("preparing segment", &name)?;
        if !self.disk.borrow().files.contains_key(&name) {
            self.create_segment(segment, segment_bytes)?;
        }
        let disk = self.disk.borrow();
        let file = disk.files.get(&name).expect("present or just created");
        Ok(decode_segment_header(&file.current).is_ok_and(|header| header.recycled))
    }

    fn write_group(
        &mut self,
        segment: SegmentId,
        offset_bytes: u64,
        buffer: &AlignedBuf,
        length_bytes: usize,
    ) -> Result<()> {
        let name = segment.file_name();
        self.check_alive("writing", &name)?;
        assert!(
            offset_bytes.is_multiple_of(BLOCK_BYTES as u64)
                && length_bytes.is_multiple_of(BLOCK_BYTES),
            "group writes are block aligned"
        );
        self.write_unsynced(
            &name,
            offset_bytes as usize,
            &buffer.as_slice()[..length_bytes],
        );
        let armed = std::mem::take(&mut self.disk.borrow_mut().crash_armed);
        if armed {
            self.disk.borrow_mut().crashed = true;
            return Err(LogError::from_io(
                "syncing",
                self.path_of(&name),
                io_error(libc::EIO),
            ));
        }
        self.sync(&name);
        Ok(())
    }

    fn release_segment(&mut self, _segment: SegmentId) {}

    fn retire_segment(&mut self, segment: SegmentId, spares_max: usize) -> Result<()> {
        let name = segment.file_name();
        let spares = self
            .file_names()
            .iter()
            .filter(|name| name.ends_with(".spare"))
            .count();
        if spares < spares_max {
            self.rename(&name, &format!("{:016x}.spare", segment.0))
        } else {
            self.remove(&name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_with_file() -> MemStorage {
        let storage = MemStorage::new();
        storage.put_file("f", vec![0u8; 16]);
        storage
    }

    #[test]
    fn unsynced_writes_read_back_until_a_crash_undoes_them_latest_first() {
        for (fault, expected) in [
            (CrashFault::LoseUnsynced, [0u8; 8]),
            (CrashFault::KeepUnsynced, [1, 1, 2, 2, 2, 2, 0, 0]),
            // The last write is cut after one byte; the one before it shows
            // where the last did not land.
            (
                CrashFault::TearLastWrite { keep_bytes: 1 },
                [1, 1, 2, 1, 0, 0, 0, 0],
            ),
        ] {
            let storage = disk_with_file();
            storage.write_unsynced("f", 0, &[1, 1, 1, 1]);
            storage.write_unsynced("f", 2, &[2, 2, 2, 2]);
            assert_eq!(storage.durable_bytes("f").unwrap()[..8], [0u8; 8]);
            storage.restart(fault);
            assert_eq!(
                storage.durable_bytes("f").unwrap()[..8],
                expected,
                "{fault:?}"
            );
            assert_eq!(
                storage.clone().read("f", 16).unwrap().unwrap()[..8],
                expected,
                "{fault:?}"
            );
        }
    }

    #[test]
    fn a_sync_makes_writes_durable_and_damage_hits_every_version() {
        let storage = disk_with_file();
        storage.write_unsynced("f", 0, &[5, 5]);
        storage.sync("f");
        storage.write_unsynced("f", 0, &[7, 7]);
        assert!(storage.corrupt("f", 1, 0x80));
        assert_eq!(storage.durable_bytes("f").unwrap()[..2], [5, 0x85]);
        storage.restart(CrashFault::LoseUnsynced);
        assert_eq!(storage.durable_bytes("f").unwrap()[..2], [5, 0x85]);
        assert!(
            !storage.corrupt_sector("f", 0, 9),
            "a 16-byte file has no whole sector"
        );
    }
}
