//! Block-aligned heap buffers for `O_DIRECT` writes.
//!
//! Invariants:
//! - A buffer's address and length are multiples of [`BLOCK_BYTES`], so the
//!   kernel accepts it for `O_DIRECT` and it can be registered with io_uring.
//! - The allocation never moves or changes size while the buffer lives, so
//!   an address handed to a ring for registration stays valid.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::format::BLOCK_BYTES;

/// A zero-initialised, [`BLOCK_BYTES`]-aligned byte buffer of fixed size.
pub struct AlignedBuf {
    pointer: NonNull<u8>,
    length_bytes: usize,
}

// SAFETY: the buffer owns its allocation exclusively (like a `Box<[u8]>`);
// nothing else aliases it, so moving it to another thread is sound.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `length_bytes` zeroed bytes aligned to [`BLOCK_BYTES`].
    ///
    /// # Panics
    /// If `length_bytes` is zero or not a multiple of [`BLOCK_BYTES`]
    /// (a programmer error), or if the allocator fails.
    #[must_use]
    pub fn zeroed(length_bytes: usize) -> AlignedBuf {
        assert!(length_bytes > 0, "an aligned buffer is never empty");
        assert!(
            length_bytes.is_multiple_of(BLOCK_BYTES),
            "aligned buffers hold whole blocks"
        );
        let layout = Self::layout(length_bytes);
        // SAFETY: the layout has a non-zero size (asserted above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(pointer) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        AlignedBuf {
            pointer,
            length_bytes,
        }
    }

    fn layout(length_bytes: usize) -> Layout {
        Layout::from_size_align(length_bytes, BLOCK_BYTES)
            .expect("a block-multiple size with block alignment is a valid layout")
    }

    /// The buffer's size in bytes (a multiple of [`BLOCK_BYTES`]).
    #[must_use]
    pub fn len(&self) -> usize {
        self.length_bytes
    }

    /// Never true: buffers hold at least one block.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer is a live allocation of `length_bytes`
        // initialised bytes owned by `self`, borrowed immutably here.
        unsafe { std::slice::from_raw_parts(self.pointer.as_ptr(), self.length_bytes) }
    }

    /// The bytes, writable.
    #[must_use]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.pointer.as_ptr(), self.length_bytes) }
    }

    /// The start address, for io_uring buffer registration and fixed writes.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.pointer.as_ptr()
    }

    /// The buffer as an iovec for `register_buffers`.
    #[must_use]
    pub fn iovec(&mut self) -> libc::iovec {
        libc::iovec {
            iov_base: self.pointer.as_ptr().cast(),
            iov_len: self.length_bytes,
        }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with exactly this layout, freed once.
        unsafe { alloc::dealloc(self.pointer.as_ptr(), Self::layout(self.length_bytes)) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.length_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_block_aligned_and_zeroed() {
        let mut buffer = AlignedBuf::zeroed(3 * BLOCK_BYTES);
        assert_eq!(buffer.as_ptr() as usize % BLOCK_BYTES, 0);
        assert!(buffer.as_slice().iter().all(|&byte| byte == 0));
        buffer.as_mut_slice()[5] = 7;
        assert_eq!(buffer.as_slice()[5], 7);
        assert_eq!(buffer.iovec().iov_len, 3 * BLOCK_BYTES);
    }
}
