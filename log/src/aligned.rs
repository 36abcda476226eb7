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

/// Copies at least this many bytes with non-temporal stores.
pub const STREAMING_COPY_BYTES_MIN: usize = 4096;

/// Copies `source` into `target` (of the same length), for bytes that go
/// to the disk with `O_DIRECT`: from [`STREAMING_COPY_BYTES_MIN`] bytes on,
/// on x86-64, with non-temporal stores, which write around the cache.
///
/// A write buffer that was just read by the device (the host's I/O thread,
/// under virtualisation) is expensive to write through the cache again:
/// each line must first be taken back from the device's side. A
/// 64 KiB copy into a buffer after an `O_DIRECT` write took 4.9-7.2 us
/// with `memcpy` and 2.2-2.4 us with streaming stores here (copies into a
/// cached buffer: 0.7 us), and `memcpy` up to 30 us in some processes.
/// Read checksums from `source`, not `target`: the copy leaves `target`
/// out of the cache.
///
/// # Panics
/// When the lengths differ (a caller bug).
pub fn copy_for_device(target: &mut [u8], source: &[u8]) {
    assert_eq!(target.len(), source.len(), "copy between equal lengths");
    #[cfg(target_arch = "x86_64")]
    if source.len() >= STREAMING_COPY_BYTES_MIN {
        return stream_copy(target, source);
    }
    target.copy_from_slice(source);
}

/// `copy_for_device` with SSE2 streaming stores (every x86-64 CPU has
/// them): the unaligned head and the tail by ordinary copies, the rest
/// 16-byte aligned, 64 bytes (a cache line) per step.
#[cfg(target_arch = "x86_64")]
fn stream_copy(target: &mut [u8], source: &[u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};

    let length = source.len();
    let head = target.as_ptr().align_offset(16).min(length);
    target[..head].copy_from_slice(&source[..head]);
    let lines = (length - head) / 64;
    let body_end = head + lines * 64;
    let from = source[head..body_end].as_ptr();
    let to = target[head..body_end].as_mut_ptr();
    for line in 0..lines {
        for part in 0..4 {
            let at = line * 64 + part * 16;
            // SAFETY: `at + 16 <= lines * 64`, within both slices taken
            // above; `to + at` is 16-byte aligned (`head` aligns `to`, and
            // `at` is a multiple of 16); loads may be unaligned. SSE2 is
            // part of x86-64.
            unsafe {
                let value = _mm_loadu_si128(from.add(at).cast::<__m128i>());
                _mm_stream_si128(to.add(at).cast::<__m128i>(), value);
            }
        }
    }
    // SAFETY: SSE2 is part of x86-64. Orders the streaming stores before
    // every later store, such as the one that hands the buffer to the kernel.
    unsafe { _mm_sfence() };
    target[body_end..].copy_from_slice(&source[body_end..]);
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

    #[test]
    fn copies_for_the_device_copy_every_byte_at_every_alignment() {
        let source: Vec<u8> = (0..70_000u32).map(|at| (at * 7 + at / 251) as u8).collect();
        let mut target = AlignedBuf::zeroed(20 * BLOCK_BYTES);
        for length in [
            0, 1, 15, 16, 63, 64, 100, 4095, 4096, 4097, 5000, 65_536, 65_600,
        ] {
            for offset in [0, 1, 8, 15, 16, 48, 80] {
                for from in [0, 3] {
                    let bytes = target.as_mut_slice();
                    bytes.fill(0xEE);
                    copy_for_device(
                        &mut bytes[offset..offset + length],
                        &source[from..from + length],
                    );
                    assert_eq!(
                        &bytes[offset..offset + length],
                        &source[from..from + length],
                        "length {length} at {offset} from {from}"
                    );
                    assert!(
                        bytes[..offset].iter().all(|&byte| byte == 0xEE)
                            && bytes[offset + length..].iter().all(|&byte| byte == 0xEE),
                        "nothing outside the target written"
                    );
                }
            }
        }
    }
}
