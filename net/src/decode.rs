//! The stream decoder: cuts checked frames out of a byte stream that arrives
//! in receives of any size (frames split across receives and packed within).
//!
//! A body that lies whole and 16-byte aligned in one receive buffer becomes a
//! frame in place (the frame keeps that buffer alive). When frames lie
//! misaligned (the receive began off the stream's 16-byte grid), the rest of
//! the receive is copied once into an aligned buffer and its frames are
//! taken in place there; a body split across receives is copied once, piece
//! by piece as the pieces arrive.
//!
//! Invariants:
//! - The decoder never holds more than one partial header and one partial
//!   body, and a partial body's buffer grows only with bytes received: a
//!   header's claimed length is never allocated up front beyond
//!   [`PARTIAL_RESERVE_BYTES_MAX`], and a longer body's buffer is at most
//!   twice the bytes of it that arrived (see [`partial_capacity`]).
//! - A body is checked (length limit, checksum, bytecheck) before its frame is
//!   handed out; after the first error the decoder refuses all input.

use std::ops::Range;
use std::sync::Arc;

use rkyv::util::AlignedVec;

use crate::bytes::{SharedBytes, ALIGNMENT};
use crate::checksum::{copy_crc32c_append_raw, crc32c_append};
use crate::frame::{Frame, FrameError, Header, HEADER_BYTES};

/// A partial body up to this size is reserved whole when it starts (one
/// allocation, so a 64 KiB message with its frame is never grown by
/// copying reallocations); a larger one grows only with the bytes that
/// arrive.
pub const PARTIAL_RESERVE_BYTES_MAX: usize = 128 << 10;

/// The capacity a partial body of `body_bytes` needs once `arrived` of its
/// bytes are here: all of it when it is small or half of it has arrived,
/// else twice what arrived (so a lying length costs at most
/// [`PARTIAL_RESERVE_BYTES_MAX`] or twice the bytes actually sent, and a
/// long body is grown by doubling: each byte copied about once more).
#[must_use]
pub fn partial_capacity(body_bytes: usize, arrived: usize) -> usize {
    if body_bytes <= PARTIAL_RESERVE_BYTES_MAX || arrived.saturating_mul(2) >= body_bytes {
        body_bytes
    } else {
        arrived.saturating_mul(2).min(body_bytes)
    }
}

/// Realignment buffers a decoder keeps for reuse when it is not given a
/// shared pool.
const REALIGN_POOL_OWN_MAX: usize = 2;
/// The smallest realignment buffer allocated.
const REALIGN_BUFFER_BYTES: usize = 16 << 10;
/// Buffers larger than this are not kept for reuse (bounds what a pool holds).
const POOLED_BUFFER_BYTES_MAX: usize = 256 << 10;

/// Aligned buffers for realigning misaligned receives and for assembling
/// bodies that straddle receives, reused once no frame refers to them (a
/// fresh large allocation costs page faults every time). A transport shares
/// one among its connections.
pub struct RealignPool {
    buffers: Vec<Arc<AlignedVec<ALIGNMENT>>>,
    buffers_max: usize,
}

impl RealignPool {
    /// A pool that keeps at most `buffers_max` buffers.
    #[must_use]
    pub fn new(buffers_max: usize) -> RealignPool {
        RealignPool {
            buffers: Vec::new(),
            buffers_max,
        }
    }

    /// A buffer no frame refers to, empty, with room for `length` bytes; a
    /// new one has room for at least `length_new` (at least `length`).
    fn take(&mut self, length: usize, length_new: usize) -> Arc<AlignedVec<ALIGNMENT>> {
        let unused = self
            .buffers
            .iter()
            .position(|buffer| Arc::strong_count(buffer) == 1 && buffer.capacity() >= length);
        let mut buffer = match unused {
            Some(at) => self.buffers.swap_remove(at),
            None => Arc::new(AlignedVec::with_capacity(length_new.max(length))),
        };
        Arc::get_mut(&mut buffer)
            .expect("the pool hands out buffers no frame refers to")
            .clear();
        buffer
    }

    /// Keeps a buffer for reuse (frames may still refer to it). A full
    /// pool makes room by dropping a smaller unused buffer.
    fn give_back(&mut self, buffer: Arc<AlignedVec<ALIGNMENT>>) {
        if buffer.capacity() > POOLED_BUFFER_BYTES_MAX {
            return;
        }
        if self.buffers.len() < self.buffers_max {
            self.buffers.push(buffer);
        } else if let Some(at) = self
            .buffers
            .iter()
            .position(|kept| Arc::strong_count(kept) == 1 && kept.capacity() < buffer.capacity())
        {
            self.buffers[at] = buffer;
        }
    }
}

/// How the decoder's frames were obtained.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct DecoderStats {
    /// Frames accessed in place in their receive buffer (no copy).
    pub frames_in_place: u64,
    /// Frames whose body lay misaligned in one receive and was copied once.
    pub frames_copied_misaligned: u64,
    /// Frames whose body straddled receives and was assembled by one copy.
    pub frames_copied_straddling: u64,
    /// Of those, frames whose body's rest was received straight into its
    /// buffer ([`Decoder::partial_room`]): only the first receive's share
    /// was copied (and, for a body over [`PARTIAL_RESERVE_BYTES_MAX`],
    /// what arrived before each doubling of its buffer).
    pub frames_received_direct: u64,
}

/// A body arriving in pieces, in a pooled buffer that only the decoder
/// refers to until the body is complete.
struct Partial {
    header: Header,
    bytes: Arc<AlignedVec<ALIGNMENT>>,
    /// The crc32c of `bytes` so far, computed as they are copied in (or
    /// right after the kernel wrote them), so a whole body is not read
    /// once more to check it.
    crc: u32,
    /// Some of the body was received straight into `bytes`.
    direct: bool,
}

impl Partial {
    /// The body's buffer (only the decoder refers to it until the body is
    /// complete) and the body's length.
    fn target(&mut self) -> (&mut AlignedVec<ALIGNMENT>, usize) {
        let body_bytes = self.header.body_bytes as usize;
        let target =
            Arc::get_mut(&mut self.bytes).expect("no frame refers to a body before it is complete");
        (target, body_bytes)
    }
}

/// Appends `bytes` to `target` and continues `crc` over them in the same
/// pass (each byte loaded once, stored and checksummed).
fn append_summing(target: &mut AlignedVec<ALIGNMENT>, crc: u32, bytes: &[u8]) -> u32 {
    target.reserve(bytes.len());
    let length = target.len();
    // SAFETY: the reserve leaves room for `bytes.len()` bytes after
    // `length`, which `bytes` (a shared borrow) cannot overlap, as
    // `target` is borrowed mutably.
    let crc = unsafe { copy_crc32c_append_raw(crc, target.as_mut_ptr().add(length), bytes) };
    // SAFETY: the bytes up to the new length were just written.
    unsafe { target.set_len(length + bytes.len()) };
    crc
}

/// Decodes one connection's byte stream into frames.
pub struct Decoder {
    body_bytes_max: u32,
    header: [u8; HEADER_BYTES],
    header_filled: usize,
    partial: Option<Partial>,
    padding_left: usize,
    failed: Option<FrameError>,
    stats: DecoderStats,
    realign_pool: RealignPool,
    realigning: bool,
    last_body_bytes: usize,
    headers_read: u64,
}

impl Decoder {
    /// A decoder that refuses bodies over `body_bytes_max`.
    #[must_use]
    pub fn new(body_bytes_max: u32) -> Decoder {
        Decoder {
            body_bytes_max,
            header: [0; HEADER_BYTES],
            header_filled: 0,
            partial: None,
            padding_left: 0,
            failed: None,
            stats: DecoderStats::default(),
            realign_pool: RealignPool::new(REALIGN_POOL_OWN_MAX),
            realigning: false,
            last_body_bytes: 0,
            headers_read: 0,
        }
    }

    /// The body length the last frame header read announced (0 before the
    /// first): a transport picks how to receive what follows by it.
    #[must_use]
    pub fn last_body_bytes(&self) -> usize {
        self.last_body_bytes
    }

    /// Frame headers read so far (frames begun).
    #[must_use]
    pub fn headers_read(&self) -> u64 {
        self.headers_read
    }

    /// How frames were obtained so far.
    #[must_use]
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// True between frames (nothing partial buffered).
    #[must_use]
    pub fn is_between_frames(&self) -> bool {
        self.header_filled == 0 && self.partial.is_none() && self.padding_left == 0
    }

    /// Bytes held in partial state (for memory accounting and tests).
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.header_filled
            + self
                .partial
                .as_ref()
                .map_or(0, |partial| partial.bytes.capacity())
    }

    /// Copies `bytes` into a buffer of its own and feeds it (tests, fuzzing).
    ///
    /// # Errors
    /// As [`Decoder::feed`].
    pub fn feed_slice(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        let mut buffer = AlignedVec::<ALIGNMENT>::with_capacity(bytes.len());
        buffer.extend_from_slice(bytes);
        let buffer = Arc::new(buffer);
        self.feed(&buffer, 0..bytes.len(), out)
    }

    /// As [`Decoder::feed`], realigning misaligned receives in buffers from
    /// `pool` (shared by a transport's connections) instead of its own.
    ///
    /// # Errors
    /// As [`Decoder::feed`].
    pub fn feed_with_pool(
        &mut self,
        buffer: &Arc<AlignedVec<ALIGNMENT>>,
        range: Range<usize>,
        out: &mut Vec<Frame>,
        pool: &mut RealignPool,
    ) -> Result<(), FrameError> {
        std::mem::swap(&mut self.realign_pool, pool);
        let result = self.feed(buffer, range, out);
        std::mem::swap(&mut self.realign_pool, pool);
        result
    }

    /// Feeds the received bytes `buffer[range]`, appending every frame they
    /// complete to `out`.
    ///
    /// # Errors
    /// The first [`FrameError`] in the stream; the connection must close, and
    /// every later call returns the same error.
    ///
    /// # Panics
    /// When `range` is outside `buffer` (a caller bug).
    pub fn feed(
        &mut self,
        buffer: &Arc<AlignedVec<ALIGNMENT>>,
        range: Range<usize>,
        out: &mut Vec<Frame>,
    ) -> Result<(), FrameError> {
        assert!(
            range.start <= range.end && range.end <= buffer.len(),
            "range within the buffer"
        );
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.feed_inner(buffer, range, out);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
            self.partial = None;
        }
        result
    }

    fn feed_inner(
        &mut self,
        buffer: &Arc<AlignedVec<ALIGNMENT>>,
        range: Range<usize>,
        out: &mut Vec<Frame>,
    ) -> Result<(), FrameError> {
        let mut at = range.start;
        while at < range.end {
            let bytes = &buffer.as_slice()[at..range.end];
            if self.padding_left > 0 {
                let skipped = self.padding_left.min(bytes.len());
                self.padding_left -= skipped;
                at += skipped;
            } else if self.partial.is_some() {
                at += self.continue_body(bytes, out)?;
            } else if self.should_realign(buffer, at, range.end) {
                return self.realign(bytes, out);
            } else {
                let Some((header, used)) = self.take_header(bytes)? else {
                    return Ok(());
                };
                at += used;
                at += self.begin_body(header, buffer, at..range.end, out)?;
            }
        }
        Ok(())
    }

    /// True when the frames from `at` on lie misaligned (the receive began
    /// off the stream's 16-byte grid) and are worth one copy of the rest of
    /// the receive, rather than one allocation and copy per frame.
    fn should_realign(&self, buffer: &Arc<AlignedVec<ALIGNMENT>>, at: usize, end: usize) -> bool {
        let misaligned = !(buffer.as_ptr() as usize + at).is_multiple_of(ALIGNMENT);
        misaligned && !self.realigning && self.header_filled == 0 && end - at >= 2 * HEADER_BYTES
    }

    /// Copies the rest of a receive once into an aligned buffer and decodes
    /// it there, its frames in place.
    fn realign(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        let mut copy = self
            .realign_pool
            .take(bytes.len(), bytes.len().max(REALIGN_BUFFER_BYTES));
        let target =
            Arc::get_mut(&mut copy).expect("the pool hands out buffers no frame refers to");
        target.extend_from_slice(bytes);
        self.realigning = true;
        let result = self.feed_inner(&copy, 0..bytes.len(), out);
        self.realigning = false;
        self.realign_pool.give_back(copy);
        result
    }

    /// Completes a header from `bytes`: returns it and the bytes used, or
    /// `None` when `bytes` ran out first (all of them buffered).
    fn take_header(&mut self, bytes: &[u8]) -> Result<Option<(Header, usize)>, FrameError> {
        if self.header_filled == 0 && bytes.len() >= HEADER_BYTES {
            let mut header = [0u8; HEADER_BYTES];
            header.copy_from_slice(&bytes[..HEADER_BYTES]);
            return Ok(Some((
                Header::parse(&header, self.body_bytes_max)?,
                HEADER_BYTES,
            )));
        }
        let used = (HEADER_BYTES - self.header_filled).min(bytes.len());
        self.header[self.header_filled..self.header_filled + used].copy_from_slice(&bytes[..used]);
        self.header_filled += used;
        if self.header_filled < HEADER_BYTES {
            return Ok(None);
        }
        self.header_filled = 0;
        Ok(Some((
            Header::parse(&self.header, self.body_bytes_max)?,
            used,
        )))
    }

    /// Starts a body at `buffer[range.start]`; returns the bytes used.
    fn begin_body(
        &mut self,
        header: Header,
        buffer: &Arc<AlignedVec<ALIGNMENT>>,
        range: Range<usize>,
        out: &mut Vec<Frame>,
    ) -> Result<usize, FrameError> {
        let body_bytes = header.body_bytes as usize;
        self.last_body_bytes = body_bytes;
        self.headers_read += 1;
        let available = range.end - range.start;
        if available >= body_bytes {
            self.padding_left = header.padded_body_bytes() - body_bytes;
            let start = range.start;
            let aligned = (buffer.as_ptr() as usize + start).is_multiple_of(ALIGNMENT);
            let body = if aligned {
                if self.realigning {
                    self.stats.frames_copied_misaligned += 1;
                } else {
                    self.stats.frames_in_place += 1;
                }
                SharedBytes::slice_of(buffer, start, start + body_bytes)
            } else {
                self.stats.frames_copied_misaligned += 1;
                SharedBytes::copy_from_slice(&buffer.as_slice()[start..start + body_bytes])
            };
            out.push(Frame::checked(&header, body)?);
            return Ok(body_bytes);
        }
        // Split across receives: see `partial_capacity` (a lying header
        // costs nothing up front).
        let capacity = partial_capacity(body_bytes, available);
        let mut bytes = self.realign_pool.take(capacity, capacity);
        let crc = append_summing(
            Arc::get_mut(&mut bytes).expect("the pool hands out buffers no frame refers to"),
            0,
            &buffer.as_slice()[range],
        );
        self.partial = Some(Partial {
            header,
            bytes,
            crc,
            direct: false,
        });
        Ok(available)
    }

    /// Adds `bytes` to the partial body; returns the bytes used.
    fn continue_body(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<usize, FrameError> {
        let partial = self
            .partial
            .as_mut()
            .expect("continue_body runs only with a partial body");
        let crc = partial.crc;
        let (target, body_bytes) = partial.target();
        let needed = body_bytes - target.len();
        let used = needed.min(bytes.len());
        if target.capacity() < target.len() + used {
            let capacity = partial_capacity(body_bytes, target.len() + used);
            target.reserve_exact(capacity - target.len());
        }
        let crc = append_summing(target, crc, &bytes[..used]);
        partial.crc = crc;
        if used == needed {
            self.finish_partial(out)?;
        }
        Ok(used)
    }

    /// Hands out the complete partial body as a checked frame.
    fn finish_partial(&mut self, out: &mut Vec<Frame>) -> Result<(), FrameError> {
        let Partial {
            header,
            bytes,
            crc,
            direct,
        } = self.partial.take().expect("a partial body to finish");
        let body_bytes = header.body_bytes as usize;
        assert_eq!(bytes.len(), body_bytes, "a finished body is whole");
        self.stats.frames_copied_straddling += 1;
        self.stats.frames_received_direct += u64::from(direct);
        self.padding_left = header.padded_body_bytes() - body_bytes;
        let body = SharedBytes::slice_of(&bytes, 0, body_bytes);
        self.realign_pool.give_back(bytes);
        out.push(Frame::checked_summed(&header, body, crc)?);
        Ok(())
    }

    /// Room for receiving the rest of a partial body straight into its
    /// buffer, without a copy: the start and length of the spare room after
    /// the bytes that arrived, at most what the body still needs. The
    /// buffer grows as [`partial_capacity`] allows, so a lying length still
    /// costs nothing up front. `None` between frames, before a body's first
    /// bytes, and after an error.
    ///
    /// The room stays valid until the decoder is next fed, filled or
    /// dropped; pass what was written there to [`Decoder::partial_filled`]
    /// before anything else.
    pub fn partial_room(&mut self) -> Option<(*mut u8, usize)> {
        if self.failed.is_some() {
            return None;
        }
        let (target, body_bytes) = self.partial.as_mut()?.target();
        let needed = body_bytes - target.len();
        if target.capacity() == target.len() {
            let capacity = partial_capacity(body_bytes, target.len() + 1);
            target.reserve_exact(capacity - target.len());
        }
        let room = (target.capacity() - target.len()).min(needed);
        assert!(room > 0, "a partial body needs bytes and has room for some");
        // SAFETY: `len <= capacity`, so the pointer stays within (or one
        // past the end of) the allocation.
        let start = unsafe { target.as_mut_ptr().add(target.len()) };
        Some((start, room))
    }

    /// Takes `count` bytes received into the room the last
    /// [`Decoder::partial_room`] returned, appending the frame they
    /// complete to `out`.
    ///
    /// # Errors
    /// As [`Decoder::feed`].
    ///
    /// # Safety
    /// The first `count` bytes of that room were written, and the decoder
    /// was neither fed nor filled since `partial_room` returned it.
    ///
    /// # Panics
    /// When no body is partial, or `count` exceeds the room (caller bugs).
    pub unsafe fn partial_filled(
        &mut self,
        count: usize,
        out: &mut Vec<Frame>,
    ) -> Result<(), FrameError> {
        // SAFETY: passed on from the caller.
        unsafe { self.partial_filled_inner(count, out) }
    }

    /// As [`Decoder::partial_filled`], returning the finished body's buffer
    /// to `pool` (shared by a transport's connections), as
    /// [`Decoder::feed_with_pool`] does.
    ///
    /// # Errors
    /// As [`Decoder::feed`].
    ///
    /// # Safety
    /// As [`Decoder::partial_filled`].
    pub unsafe fn partial_filled_with_pool(
        &mut self,
        count: usize,
        out: &mut Vec<Frame>,
        pool: &mut RealignPool,
    ) -> Result<(), FrameError> {
        std::mem::swap(&mut self.realign_pool, pool);
        // SAFETY: passed on from the caller.
        let result = unsafe { self.partial_filled_inner(count, out) };
        std::mem::swap(&mut self.realign_pool, pool);
        result
    }

    /// # Safety
    /// As [`Decoder::partial_filled`].
    unsafe fn partial_filled_inner(
        &mut self,
        count: usize,
        out: &mut Vec<Frame>,
    ) -> Result<(), FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let partial = self
            .partial
            .as_mut()
            .expect("partial_filled follows partial_room");
        partial.direct = true;
        let crc = partial.crc;
        let (target, body_bytes) = partial.target();
        let room = (target.capacity() - target.len()).min(body_bytes - target.len());
        assert!(count <= room, "no more bytes filled than the room held");
        let length = target.len();
        // SAFETY: the caller wrote `count` bytes right after `len`, within
        // the capacity (checked above).
        unsafe { target.set_len(length + count) };
        // Checksummed now, while the kernel's copy left them in the cache.
        let crc = crc32c_append(crc, &target[length..]);
        let done = target.len() == body_bytes;
        partial.crc = crc;
        if !done {
            return Ok(());
        }
        let result = self.finish_partial(out);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }
}

#[cfg(test)]
mod tests;
