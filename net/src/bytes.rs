//! Shared, immutable, 16-byte aligned byte ranges: how received bytes travel
//! from a receive buffer to the replica and the log without a copy.
//!
//! Invariants:
//! - `start <= end <= buffer.len()`.
//! - `buffer.as_ptr() + start` is 16-byte aligned, so an rkyv archive in the
//!   range can be accessed in place.
//! - The bytes never change while any handle exists: receive paths write a
//!   buffer only while its `Arc` is unique.

use std::sync::Arc;

use rkyv::util::AlignedVec;

/// The alignment every frame body and every batch starts on.
pub const ALIGNMENT: usize = 16;

/// Bytes in a memory page.
pub(crate) const PAGE_BYTES: usize = 4096;

/// A zeroed receive buffer with room for `bytes` from its first page
/// boundary on ([`page_start`]), where receives write.
///
/// Why on a page: on AMD Zen 3 the kernel's copy into user memory (`rep
/// movsb`) runs 2-3x slower when the destination lies a few bytes past the
/// source modulo 4 KiB, and a socket's bytes sit in the kernel's pages
/// from their start. The allocator puts a buffer of 128 KiB 16 bytes into
/// its first page, and smaller ones anywhere. In C, blocking sockets, one
/// CPU (2026-11-28): 64 KiB ping-pong ran at 20-23k round trips/s reading
/// at a page boundary or 32 bytes and more past one, and at 7.6-9.9k
/// reading 8, 16 or 24 bytes past one. The io_uring transport's 64 KiB
/// ping-pong over one connection went from 8.6k to 14.1k round trips/s
/// when its large receives started on a page (net/README.md, "What was
/// tried").
pub(crate) fn receive_buffer(bytes: usize) -> Arc<AlignedVec<ALIGNMENT>> {
    // The buffer starts 16-byte aligned, so its first page boundary is at
    // most a page less 16 bytes in.
    let total = bytes + PAGE_BYTES - ALIGNMENT;
    let mut buffer = AlignedVec::<ALIGNMENT>::with_capacity(total);
    buffer.resize(total, 0);
    Arc::new(buffer)
}

/// How far into `buffer` its first page boundary lies (a multiple of
/// [`ALIGNMENT`], below [`PAGE_BYTES`]): receives into a buffer from
/// [`receive_buffer`] start there.
pub(crate) fn page_start(buffer: &AlignedVec<ALIGNMENT>) -> usize {
    let start = buffer.as_ptr().align_offset(PAGE_BYTES);
    assert!(
        start.is_multiple_of(ALIGNMENT) && start < PAGE_BYTES,
        "a receive buffer's first page boundary lies {start} bytes in: not a 16-byte multiple below a page"
    );
    start
}

/// An immutable, reference-counted, 16-byte aligned range of bytes.
#[derive(Clone)]
pub struct SharedBytes {
    buffer: Arc<AlignedVec<ALIGNMENT>>,
    start: usize,
    end: usize,
}

impl Default for SharedBytes {
    fn default() -> SharedBytes {
        SharedBytes::from_aligned(AlignedVec::new())
    }
}

impl SharedBytes {
    /// Takes ownership of an aligned buffer, without a copy.
    #[must_use]
    pub fn from_aligned(bytes: AlignedVec<ALIGNMENT>) -> SharedBytes {
        let end = bytes.len();
        SharedBytes {
            buffer: Arc::new(bytes),
            start: 0,
            end,
        }
    }

    /// Copies bytes into a new aligned buffer.
    #[must_use]
    pub fn copy_from_slice(bytes: &[u8]) -> SharedBytes {
        let mut aligned = AlignedVec::<ALIGNMENT>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        SharedBytes::from_aligned(aligned)
    }

    /// A range of a shared buffer, without a copy.
    ///
    /// # Panics
    /// When the range is out of bounds or its start is not 16-byte aligned:
    /// callers check both (a programmer error otherwise).
    #[must_use]
    pub fn slice_of(buffer: &Arc<AlignedVec<ALIGNMENT>>, start: usize, end: usize) -> SharedBytes {
        assert!(
            start <= end && end <= buffer.len(),
            "range within the buffer"
        );
        assert_eq!(
            (buffer.as_ptr() as usize + start) % ALIGNMENT,
            0,
            "shared ranges start aligned"
        );
        SharedBytes {
            buffer: Arc::clone(buffer),
            start,
            end,
        }
    }

    /// A sub-range of this range (offsets relative to it).
    ///
    /// # Panics
    /// As [`SharedBytes::slice_of`].
    #[must_use]
    pub fn subrange(&self, start: usize, end: usize) -> SharedBytes {
        assert!(
            start <= end && self.start + end <= self.end,
            "sub-range within the range"
        );
        SharedBytes::slice_of(&self.buffer, self.start + start, self.start + end)
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.buffer.as_slice()[self.start..self.end]
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the range is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True when both handles are the same range of the same buffer.
    #[must_use]
    pub fn same_range(&self, other: &SharedBytes) -> bool {
        Arc::ptr_eq(&self.buffer, &other.buffer)
            && self.start == other.start
            && self.end == other.end
    }

    /// True when both handles keep the same underlying buffer alive.
    #[must_use]
    pub fn same_buffer(&self, other: &SharedBytes) -> bool {
        Arc::ptr_eq(&self.buffer, &other.buffer)
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBytes({} bytes)", self.len())
    }
}

#[cfg(test)]
#[test]
fn receive_buffers_have_their_room_from_a_page_boundary_on() {
    // Sizes the allocator serves from its heap and from fresh mappings.
    for bytes in [4096, 16 << 10, 64 << 10, 128 << 10, 1 << 20] {
        let buffers: Vec<_> = (0..8).map(|_| receive_buffer(bytes)).collect();
        for buffer in &buffers {
            let start = page_start(buffer);
            assert_eq!((buffer.as_ptr() as usize + start) % PAGE_BYTES, 0);
            assert_eq!(start % ALIGNMENT, 0, "frames received there lie aligned");
            assert!(
                buffer.len() - start >= bytes,
                "{bytes} bytes of room after the page start"
            );
            assert!(buffer.iter().all(|&byte| byte == 0));
        }
    }
}
