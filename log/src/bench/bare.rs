//! The baselines: bare loops of block-aligned writes, each made durable,
//! with no log around them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::aligned::AlignedBuf;
use crate::error::Result;
use crate::format::BLOCK_BYTES;

use super::{bench_io, new_sample, Sample};

pub(super) fn segment_bytes_for(write_bytes: usize) -> u64 {
    ((write_bytes as u64) * 16)
        .clamp(64 << 20, 512 << 20)
        .next_multiple_of(BLOCK_BYTES as u64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Bare {
    DirectFdatasync,
    /// As `DirectFdatasync`, each write the size of the group's payload
    /// (rounded up to the block) rather than of the log's write: the
    /// issue's "same-size O_DIRECT writes" for a group of that payload.
    DirectFdatasyncPayloadSize,
    DirectDsync,
    DirectFallocateOnly,
    BufferedFdatasync,
}

pub(super) fn prepare_file(path: &Path, bytes: u64, bare: Bare) -> Result<()> {
    let mut file = File::create(path).map_err(|e| bench_io("creating", path, e))?;
    if bare == Bare::DirectFallocateOnly {
        // SAFETY: fallocate on a descriptor we own; no memory is involved.
        let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if result != 0 {
            return Err(bench_io("fallocate", path, std::io::Error::last_os_error()));
        }
    } else if bare != Bare::BufferedFdatasync {
        let zeros = vec![0u8; 1 << 20];
        let mut written = 0u64;
        while written < bytes {
            let chunk = (bytes - written).min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..chunk])
                .map_err(|e| bench_io("zero-filling", path, e))?;
            written += chunk as u64;
        }
    }
    file.sync_all().map_err(|e| bench_io("syncing", path, e))?;
    // Like the log's segments: no cached pages for O_DIRECT to invalidate.
    // SAFETY: posix_fadvise on a descriptor we own; it is only advice.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    Ok(())
}

pub(super) fn open_bare_file(bare: Bare, path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    match bare {
        Bare::DirectFdatasync | Bare::DirectFdatasyncPayloadSize | Bare::DirectFallocateOnly => {
            options.custom_flags(libc::O_DIRECT);
        }
        Bare::DirectDsync => {
            options.custom_flags(libc::O_DIRECT | libc::O_DSYNC);
        }
        Bare::BufferedFdatasync => {
            options.append(true);
        }
    }
    options.open(path).map_err(|e| bench_io("opening", path, e))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn bare_slice(
    bare: Bare,
    path: &Path,
    file: &mut Option<File>,
    offset: &mut u64,
    file_bytes: u64,
    buffer: &AlignedBuf,
    seconds: f64,
    payload_bytes: usize,
) -> Result<Sample> {
    let write_bytes = buffer.len() as u64;
    // Fresh unwritten extents (or a fresh growing file) for every slice of
    // the baselines that measure them; the zero-filled file is reused.
    let fresh = matches!(bare, Bare::DirectFallocateOnly | Bare::BufferedFdatasync);
    if fresh || file.is_none() {
        *file = None;
        if fresh {
            prepare_file(path, file_bytes, bare)?;
        }
        *file = Some(open_bare_file(bare, path)?);
        *offset = 0;
    }
    let handle = file.as_ref().expect("opened just above");
    let mut sample = new_sample();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    while Instant::now() < deadline {
        if *offset + write_bytes > file_bytes {
            *offset = 0;
        }
        let write_started = Instant::now();
        let result = match bare {
            Bare::BufferedFdatasync => (&*handle).write_all(&buffer.as_slice()[..payload_bytes]),
            _ => handle.write_all_at(buffer.as_slice(), *offset),
        };
        result.map_err(|e| bench_io("writing", path, e))?;
        if bare != Bare::DirectDsync {
            handle
                .sync_data()
                .map_err(|e| bench_io("syncing", path, e))?;
            sample.syncs += 1;
        }
        sample.latencies.push(write_started.elapsed());
        sample.groups += 1;
        *offset += write_bytes;
    }
    sample.elapsed = started.elapsed();
    Ok(sample)
}
