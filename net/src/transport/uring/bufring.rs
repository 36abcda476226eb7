//! The provided-buffer ring multishot receives land in.
//!
//! Invariants:
//! - A buffer is in the kernel's ring only while its `Arc` is unique (no
//!   frame refers to it), and the kernel is the only writer while it is there;
//!   a buffer frames still hold is swapped out of its slot, never rewritten.
//! - `in_ring` counts the buffers handed to the kernel and not yet returned
//!   by a completion; it never exceeds the ring's size.
//! - The ring's memory outlives its registration: [`BufRing::unregister`]
//!   runs before it is freed, or the memory is leaked.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use rkyv::util::AlignedVec;

use crate::bytes::{page_start, receive_buffer, ALIGNMENT, PAGE_BYTES};
use crate::transport::TransportError;

/// Buffers kept aside (lent out or spare) for reuse.
const SPARES_MAX: usize = 64;

/// The buffer ring and its buffers.
pub(crate) struct BufRing {
    entries: *mut BufRingEntry,
    layout: Layout,
    mask: u16,
    tail: u16,
    group: u16,
    buffers: Vec<Arc<AlignedVec<ALIGNMENT>>>,
    buffer_bytes: usize,
    /// Buffers frames still refer to, swapped out of the ring (watched
    /// until they come back, at most `SPARES_MAX`; beyond that the frames
    /// alone own them).
    lent: Vec<Arc<AlignedVec<ALIGNMENT>>>,
    /// Unreferenced buffers ready to swap into the ring.
    spares: Vec<Arc<AlignedVec<ALIGNMENT>>>,
    in_ring: usize,
    registered: bool,
}

impl BufRing {
    /// Allocates `count` buffers of `buffer_bytes` and registers the ring
    /// under `group`.
    pub fn register(
        submitter: &Submitter<'_>,
        group: u16,
        count: u16,
        buffer_bytes: usize,
    ) -> Result<BufRing, TransportError> {
        assert!(
            count.is_power_of_two() && count <= 1 << 15,
            "the kernel takes 1..=2^15 entries, a power of two"
        );
        let bytes = (usize::from(count) * size_of::<BufRingEntry>()).max(PAGE_BYTES);
        let layout = Layout::from_size_align(bytes, PAGE_BYTES)
            .expect("a page-aligned layout of a few pages");
        // SAFETY: the layout has a non-zero size.
        let entries = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        assert!(!entries.is_null(), "out of memory for the buffer ring");
        let buffers = (0..count).map(|_| receive_buffer(buffer_bytes)).collect();
        let mut ring = BufRing {
            entries,
            layout,
            mask: count - 1,
            tail: 0,
            group,
            buffers,
            buffer_bytes,
            lent: Vec::new(),
            spares: Vec::new(),
            in_ring: 0,
            registered: false,
        };
        // SAFETY: the entries are page aligned, hold `count` entries, and stay
        // allocated until `unregister` (or are leaked by Drop).
        unsafe { submitter.register_buf_ring_with_flags(entries as u64, count, group, 0) }
            .map_err(|source| TransportError::Uring {
                context: "register_buf_ring",
                source,
            })?;
        ring.registered = true;
        for bid in 0..count {
            ring.give(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The buffer group id receives select from.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// Buffers the kernel can fill now.
    pub fn available(&self) -> usize {
        self.in_ring
    }

    /// The buffer a completion named, now ours; its bytes start at
    /// [`page_start`] of it.
    pub fn take(&mut self, bid: u16) -> Option<&Arc<AlignedVec<ALIGNMENT>>> {
        let buffer = self.buffers.get(usize::from(bid))?;
        assert!(
            self.in_ring > 0,
            "a completion returns a buffer that was in the ring"
        );
        self.in_ring -= 1;
        Some(buffer)
    }

    /// Returns a taken buffer's slot to the kernel at once. When frames
    /// still refer to the buffer, they keep it and the slot gets a spare
    /// (or a new buffer): frames held for long never starve the ring.
    pub fn recycle(&mut self, bid: u16) {
        let slot = usize::from(bid);
        if Arc::strong_count(&self.buffers[slot]) > 1 {
            let spare = self
                .spares
                .pop()
                .unwrap_or_else(|| receive_buffer(self.buffer_bytes));
            let held = std::mem::replace(&mut self.buffers[slot], spare);
            if self.lent.len() < SPARES_MAX {
                self.lent.push(held);
            }
        }
        self.give(bid);
        self.publish();
    }

    /// Turns lent buffers whose frames have all been dropped into spares.
    pub fn reclaim(&mut self) {
        let mut at = 0;
        while at < self.lent.len() {
            if Arc::strong_count(&self.lent[at]) == 1 {
                let buffer = self.lent.swap_remove(at);
                if self.spares.len() < SPARES_MAX {
                    self.spares.push(buffer);
                }
            } else {
                at += 1;
            }
        }
    }

    /// Every buffer the ring holds, has lent or keeps spare (tests).
    #[cfg(test)]
    pub fn every_buffer(&self) -> impl Iterator<Item = &Arc<AlignedVec<ALIGNMENT>>> {
        self.buffers.iter().chain(&self.lent).chain(&self.spares)
    }

    fn give(&mut self, bid: u16) {
        let length = u32::try_from(self.buffer_bytes).expect("provided buffers are below 4 GiB");
        let buffer = Arc::get_mut(&mut self.buffers[usize::from(bid)])
            .expect("only unreferenced buffers go to the kernel");
        // The kernel writes from the buffer's first page boundary on, with
        // `buffer_bytes` of room there (`receive_buffer`).
        let start = page_start(buffer);
        // SAFETY: `start` lies within the buffer (`page_start`).
        let address = unsafe { buffer.as_mut_ptr().add(start) } as u64;
        // SAFETY: `tail & mask` indexes one of the ring's `mask + 1` entries;
        // the kernel reads an entry only after the tail is published past it.
        let entry = unsafe { &mut *self.entries.add(usize::from(self.tail & self.mask)) };
        entry.set_addr(address);
        entry.set_len(length);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.in_ring += 1;
        assert!(
            self.in_ring <= usize::from(self.mask) + 1,
            "no more buffers in the ring than it holds"
        );
    }

    /// Makes the entries written so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: `entries` is the ring's first entry, initialised (zeroed);
        // its `resv` field is the shared tail, a u16 the kernel reads.
        let tail = unsafe { BufRingEntry::tail(self.entries) }.cast_mut();
        // SAFETY: the tail is a naturally aligned u16 in memory we own, that
        // the kernel only reads; the release store orders the entries before it.
        unsafe { AtomicU16::from_ptr(tail) }.store(self.tail, Ordering::Release);
    }

    /// Unregisters the ring; its memory can then be freed.
    pub fn unregister(&mut self, submitter: &Submitter<'_>) {
        if self.registered && submitter.unregister_buf_ring(self.group).is_ok() {
            self.registered = false;
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.registered {
            // The kernel may still write into these buffers: leak them rather
            // than free memory it owns.
            std::mem::forget(std::mem::take(&mut self.buffers));
            return;
        }
        // SAFETY: allocated in `register` with this layout, and no longer
        // registered with any ring.
        unsafe { dealloc(self.entries.cast(), self.layout) };
    }
}
