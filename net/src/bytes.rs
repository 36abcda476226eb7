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
