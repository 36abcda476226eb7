//! Frames: a fixed 16-byte header and an rkyv-archived body, padded to 16.
//!
//! | bytes  | field        | meaning                                          |
//! |--------|--------------|--------------------------------------------------|
//! | 0..4   | magic        | `SYND` (0x444E5953 little endian)                |
//! | 4      | version      | [`VERSION`]                                      |
//! | 5      | kind         | [`Kind`] number                                  |
//! | 6..8   | flags        | reserved, zero                                   |
//! | 8..12  | body_bytes   | body length without padding (u32 LE)            |
//! | 12..16 | body_crc32c  | crc32c of the body bytes (u32 LE)                |
//! | 16..   | body         | the archive, then zeros up to a multiple of 16   |
//!
//! Invariants:
//! - Every frame's length is a multiple of 16, so in a stream whose first
//!   byte is aligned, every header and body starts 16-byte aligned.
//! - A [`Frame`] exists only for a body whose checksum matched and whose
//!   archive passed bytecheck validation for its kind.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::bytes::{SharedBytes, ALIGNMENT};
use crate::wire::{
    ArchivedClientRequest, ArchivedClientResponse, ArchivedHello, ArchivedMessage, ClientRequest,
    ClientResponse, Hello, Kind, Message,
};

/// The header's length in bytes.
pub const HEADER_BYTES: usize = 16;
/// The frame magic: `SYND` read as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"SYND");
/// The frame format version this code speaks.
pub const VERSION: u8 = 1;
/// The default limit on one frame's body (16 MiB): large enough for a
/// catch-up of many batches, small enough that a lying header costs little.
pub const BODY_BYTES_MAX_DEFAULT: u32 = 16 << 20;

const _: () = assert!(HEADER_BYTES.is_multiple_of(ALIGNMENT));

/// A decoded frame header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// The body's kind.
    pub kind: Kind,
    /// The body's length without padding.
    pub body_bytes: u32,
    /// The crc32c of the body.
    pub body_crc32c: u32,
}

impl Header {
    /// The body length including padding: what follows the header on the wire.
    #[must_use]
    pub fn padded_body_bytes(&self) -> usize {
        padded(self.body_bytes as usize)
    }

    /// Parses and checks a header against the body limit.
    ///
    /// # Errors
    /// Bad magic, unknown version or kind, non-zero flags, a body over
    /// `body_bytes_max`.
    pub fn parse(bytes: &[u8; HEADER_BYTES], body_bytes_max: u32) -> Result<Header, FrameError> {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let magic = word(0);
        if magic != MAGIC {
            return Err(FrameError::BadMagic { found: magic });
        }
        if bytes[4] != VERSION {
            return Err(FrameError::UnknownVersion { found: bytes[4] });
        }
        let kind =
            Kind::from_number(bytes[5]).ok_or(FrameError::UnknownKind { found: bytes[5] })?;
        let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
        if flags != 0 {
            return Err(FrameError::ReservedFlags { found: flags });
        }
        let body_bytes = word(8);
        if body_bytes > body_bytes_max {
            return Err(FrameError::TooLong {
                body_bytes,
                body_bytes_max,
            });
        }
        Ok(Header {
            kind,
            body_bytes,
            body_crc32c: word(12),
        })
    }

    /// The header's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[4] = VERSION;
        bytes[5] = self.kind.number();
        bytes[8..12].copy_from_slice(&self.body_bytes.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.body_crc32c.to_le_bytes());
        bytes
    }
}

/// `length` rounded up to the frame alignment.
#[must_use]
pub fn padded(length: usize) -> usize {
    length.next_multiple_of(ALIGNMENT)
}

/// Why a frame was refused. Any of these closes the connection it came on.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The header does not start with the magic.
    #[error("bad frame magic {found:#010x}")]
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// A version this code does not speak.
    #[error("unknown frame version {found}")]
    UnknownVersion {
        /// The version found.
        found: u8,
    },
    /// A reserved or unknown kind number.
    #[error("unknown frame kind {found}")]
    UnknownKind {
        /// The kind number found.
        found: u8,
    },
    /// Reserved flag bits set.
    #[error("reserved frame flags {found:#06x} set")]
    ReservedFlags {
        /// The flags found.
        found: u16,
    },
    /// The header claims a body over the limit.
    #[error("frame body of {body_bytes} bytes exceeds the limit of {body_bytes_max}")]
    TooLong {
        /// The claimed length.
        body_bytes: u32,
        /// The configured limit.
        body_bytes_max: u32,
    },
    /// The body's checksum does not match the header's.
    #[error("frame body checksum {computed:#010x} does not match header {expected:#010x}")]
    ChecksumMismatch {
        /// The header's checksum.
        expected: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// The body is not a valid archive of its kind.
    #[error("{kind:?} body failed validation: {reason}")]
    Invalid {
        /// The header's kind.
        kind: Kind,
        /// What bytecheck reported.
        reason: String,
    },
    /// The body is a valid message of another kind than the header's.
    #[error("header kind {header:?} does not match body kind {body:?}")]
    KindMismatch {
        /// The header's kind.
        header: Kind,
        /// The archived message's kind.
        body: Kind,
    },
}

/// A value that travels as a frame body.
pub trait Encode {
    /// The kind of this value's frame.
    fn kind(&self) -> Kind;
    /// Archives the value at the end of `out` (whose length is a multiple of 16).
    ///
    /// # Errors
    /// Whatever rkyv reports (not expected for in-memory buffers).
    fn archive_into(&self, out: &mut BodyWriter<'_>) -> Result<(), rancor::Error>;
}

/// Where a frame body is archived: the frame buffer, with the body's
/// checksum computed as it is written. Writes of [`FUSED_COPY_BYTES_MIN`]
/// bytes and more (a payload) are copied and checksummed in one pass over
/// the bytes ([`crate::checksum::copy_crc32c_append`]); the short ones
/// around them are checksummed from the buffer, where they are in the cache.
///
/// Invariant: `crc` is the checksum of the body's bytes up to `checked_to`
/// (the body starts where the buffer ended when the writer was made).
pub struct BodyWriter<'a> {
    out: &'a mut AlignedVec<ALIGNMENT>,
    /// Where the body starts.
    start: usize,
    checked_to: usize,
    crc: u32,
}

/// Writes at least this long are copied and checksummed in one pass.
pub const FUSED_COPY_BYTES_MIN: usize = 2048;

impl BodyWriter<'_> {
    fn new(out: &mut AlignedVec<ALIGNMENT>) -> BodyWriter<'_> {
        let start = out.len();
        BodyWriter {
            out,
            start,
            checked_to: start,
            crc: 0,
        }
    }

    /// Drops what was written, to archive the body again.
    fn rewind(&mut self) {
        self.out.resize(self.start, 0);
        self.checked_to = self.start;
        self.crc = 0;
    }

    /// The checksum of everything written since `new`.
    fn checksum(&mut self) -> u32 {
        self.catch_up();
        self.crc
    }

    /// Checksums what the short writes added since the last long one.
    fn catch_up(&mut self) {
        self.crc = crate::checksum::crc32c_append(self.crc, &self.out[self.checked_to..]);
        self.checked_to = self.out.len();
    }

    /// A write of [`FUSED_COPY_BYTES_MIN`] bytes or more.
    #[inline(never)]
    fn write_long(&mut self, bytes: &[u8]) {
        self.catch_up();
        let length = self.out.len();
        self.out.reserve(bytes.len());
        // SAFETY: `reserve` made room for `bytes.len()` bytes after
        // `length`, which the call writes in full before `set_len` exposes
        // them; `bytes` is borrowed from the value being archived, never
        // from this buffer, so they do not overlap.
        unsafe {
            self.crc = crate::checksum::copy_crc32c_append_raw(
                self.crc,
                self.out.as_mut_ptr().add(length),
                bytes,
            );
            self.out.set_len(length + bytes.len());
        }
        self.checked_to = self.out.len();
    }
}

impl rkyv::ser::Positional for BodyWriter<'_> {
    #[inline]
    fn pos(&self) -> usize {
        self.out.len()
    }
}

impl<E> rkyv::ser::Writer<E> for BodyWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        if bytes.len() < FUSED_COPY_BYTES_MIN {
            self.out.extend_from_slice(bytes);
            return Ok(());
        }
        self.write_long(bytes);
        Ok(())
    }
}

/// Scratch space for archiving a body, on the stack. Only a vector of
/// non-copy elements takes scratch (a 4-byte resolver per element while it
/// is archived): a batch's commands are archived already and its bytes
/// need none, so this holds every fixed-size message and the `accepted` or
/// `batches` of up to 255 entries.
pub(crate) const SCRATCH_BYTES: usize = 1024;

/// Archives `$value` into `$out` with rkyv's low-level serializer and a
/// scratch allocator on the stack: no thread-local arena to acquire and
/// shrink and no shared-pointer map to build, which were about a fifth of
/// encoding a small frame (`perf` of `encode/Hello`). A value that needs
/// more scratch than [`SCRATCH_BYTES`] (a promise or an accept of
/// hundreds of entries) is archived again with the high-level serializer,
/// whose arena grows. The two differ only in the allocator and in sharing,
/// which no wire type uses (the low one has none and would not compile for
/// an `Rc`/`Arc`), so the archives are the same bytes
/// (`low_high_tests`); an error that is not the scratch's recurs in the
/// high-level attempt and is reported from there.
macro_rules! archive_body {
    ($value:expr, $out:expr) => {{
        let out: &mut BodyWriter<'_> = $out;
        let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); SCRATCH_BYTES];
        let on_stack = rkyv::api::low::to_bytes_in_with_alloc::<_, _, rancor::Error>(
            $value,
            &mut *out,
            rkyv::ser::allocator::SubAllocator::new(&mut scratch),
        );
        match on_stack {
            Ok(_) => Ok(()),
            Err(_) => {
                out.rewind();
                rkyv::api::high::to_bytes_in::<_, rancor::Error>($value, &mut *out).map(|_| ())
            }
        }
    }};
}

macro_rules! encode_fixed_kind {
    ($type:ty, $kind:expr) => {
        impl Encode for $type {
            fn kind(&self) -> Kind {
                $kind
            }
            fn archive_into(&self, out: &mut BodyWriter<'_>) -> Result<(), rancor::Error> {
                archive_body!(self, out)
            }
        }
    };
}

encode_fixed_kind!(ClientRequest, Kind::ClientRequest);
encode_fixed_kind!(ClientResponse, Kind::ClientResponse);
encode_fixed_kind!(Hello, Kind::Hello);

impl Encode for Message {
    fn kind(&self) -> Kind {
        Message::kind(self)
    }
    fn archive_into(&self, out: &mut BodyWriter<'_>) -> Result<(), rancor::Error> {
        archive_body!(self, out)
    }
}

/// Appends one frame (header, body, padding) to `out` and returns its length.
///
/// # Errors
/// [`EncodeError`] when the body exceeds `body_bytes_max` (the frame is not
/// appended) or rkyv fails.
///
/// # Panics
/// When `out`'s length is not a multiple of 16 (frames are appended whole).
pub fn encode_into<T: Encode + ?Sized>(
    out: &mut AlignedVec<ALIGNMENT>,
    value: &T,
    body_bytes_max: u32,
) -> Result<usize, EncodeError> {
    assert_eq!(out.len() % ALIGNMENT, 0, "frames are appended whole");
    let frame_start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    let body_start = out.len();
    let mut writer = BodyWriter::new(out);
    let body_crc32c = match value.archive_into(&mut writer) {
        Ok(()) => writer.checksum(),
        Err(error) => {
            // The frames queued before this one stay; this one goes.
            out.resize(frame_start, 0);
            return Err(EncodeError::Archive {
                reason: error.to_string(),
            });
        }
    };
    let body_bytes = out.len() - body_start;
    let too_long = u32::try_from(body_bytes)
        .ok()
        .filter(|&length| length <= body_bytes_max);
    let Some(body_bytes_u32) = too_long else {
        out.resize(frame_start, 0);
        return Err(EncodeError::TooLong {
            body_bytes,
            body_bytes_max,
        });
    };
    let header = Header {
        kind: value.kind(),
        body_bytes: body_bytes_u32,
        body_crc32c,
    };
    out[frame_start..body_start].copy_from_slice(&header.to_bytes());
    let padding = padded(body_bytes) - body_bytes;
    out.extend_from_slice(&[0u8; ALIGNMENT][..padding]);
    Ok(out.len() - frame_start)
}

/// Encodes one frame into a new buffer.
///
/// # Errors
/// As [`encode_into`].
pub fn encode<T: Encode + ?Sized>(
    value: &T,
    body_bytes_max: u32,
) -> Result<AlignedVec<ALIGNMENT>, EncodeError> {
    let mut out = AlignedVec::new();
    encode_into(&mut out, value, body_bytes_max)?;
    Ok(out)
}

/// Why a frame could not be encoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The archived body is over the limit.
    #[error("body of {body_bytes} bytes exceeds the frame limit of {body_bytes_max}")]
    TooLong {
        /// The body's length.
        body_bytes: usize,
        /// The limit.
        body_bytes_max: u32,
    },
    /// rkyv failed.
    #[error("archiving failed: {reason}")]
    Archive {
        /// What rkyv reported.
        reason: String,
    },
}

/// The checksum a header carries for `body`.
#[must_use]
pub fn body_crc32c(body: &[u8]) -> u32 {
    crate::checksum::crc32c(body)
}

/// Checks a complete body against its header: checksum, then bytecheck
/// validation of the archive for the kind.
///
/// # Errors
/// [`FrameError::ChecksumMismatch`], [`FrameError::Invalid`],
/// [`FrameError::KindMismatch`].
pub fn check_body(header: &Header, body: &[u8]) -> Result<(), FrameError> {
    check_summed(header, body, crate::checksum::crc32c(body))
}

/// [`check_body`] for a body whose crc32c the caller computed (as it
/// copied the body together).
fn check_summed(header: &Header, body: &[u8], computed: u32) -> Result<(), FrameError> {
    if computed != header.body_crc32c {
        return Err(FrameError::ChecksumMismatch {
            expected: header.body_crc32c,
            computed,
        });
    }
    validate(header.kind, body)
}

/// Validates an archive of `kind` in place (bytecheck), without the checksum.
///
/// # Errors
/// [`FrameError::Invalid`] or [`FrameError::KindMismatch`].
pub fn validate(kind: Kind, body: &[u8]) -> Result<(), FrameError> {
    let invalid = |error: rancor::Error| FrameError::Invalid {
        kind,
        reason: error.to_string(),
    };
    match kind {
        Kind::ClientRequest => rkyv::access::<ArchivedClientRequest, rancor::Error>(body)
            .map(drop)
            .map_err(invalid),
        Kind::ClientResponse => rkyv::access::<ArchivedClientResponse, rancor::Error>(body)
            .map(drop)
            .map_err(invalid),
        Kind::Hello => rkyv::access::<ArchivedHello, rancor::Error>(body)
            .map(drop)
            .map_err(invalid),
        replica => {
            let message = rkyv::access::<ArchivedMessage, rancor::Error>(body).map_err(invalid)?;
            if message.kind() == replica {
                Ok(())
            } else {
                Err(FrameError::KindMismatch {
                    header: replica,
                    body: message.kind(),
                })
            }
        }
    }
}

/// A received frame whose checksum and archive have been checked: its body
/// can be read in place without further validation.
#[derive(Clone, Debug)]
pub struct Frame {
    kind: Kind,
    body: SharedBytes,
}

/// The archived body of a [`Frame`], by kind.
#[derive(Debug)]
#[non_exhaustive]
pub enum Archived<'a> {
    /// A replica message.
    Replica(&'a ArchivedMessage),
    /// A client request.
    Request(&'a ArchivedClientRequest),
    /// A client response.
    Response(&'a ArchivedClientResponse),
    /// A connection's hello.
    Hello(&'a ArchivedHello),
}

impl Frame {
    /// Checks a complete body and makes it a frame.
    ///
    /// # Errors
    /// As [`check_body`].
    pub fn checked(header: &Header, body: SharedBytes) -> Result<Frame, FrameError> {
        check_body(header, body.as_slice())?;
        Ok(Frame {
            kind: header.kind,
            body,
        })
    }

    /// [`Frame::checked`] for a body whose crc32c the caller computed over
    /// exactly these bytes (the decoder, as it copied a body that came in
    /// pieces).
    ///
    /// # Errors
    /// As [`check_body`].
    pub(crate) fn checked_summed(
        header: &Header,
        body: SharedBytes,
        crc: u32,
    ) -> Result<Frame, FrameError> {
        check_summed(header, body.as_slice(), crc)?;
        Ok(Frame {
            kind: header.kind,
            body,
        })
    }

    /// The frame's kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The body bytes (the archive, without padding).
    #[must_use]
    pub fn body(&self) -> &SharedBytes {
        &self.body
    }

    /// The archived body, in place, without validating again.
    #[must_use]
    pub fn archived(&self) -> Archived<'_> {
        let bytes = self.body.as_slice();
        // SAFETY: a `Frame` is built only by `Frame::checked`, which validated
        // these exact bytes as an archive of `self.kind` (bytecheck), and the
        // bytes are immutable and 16-byte aligned (SharedBytes invariants).
        unsafe {
            match self.kind {
                Kind::ClientRequest => Archived::Request(rkyv::access_unchecked(bytes)),
                Kind::ClientResponse => Archived::Response(rkyv::access_unchecked(bytes)),
                Kind::Hello => Archived::Hello(rkyv::access_unchecked(bytes)),
                _ => Archived::Replica(rkyv::access_unchecked(bytes)),
            }
        }
    }

    /// The replica message this frame carries, its batches as ranges of the
    /// frame's buffer; `None` for other kinds.
    #[must_use]
    pub fn message(&self) -> Option<Message> {
        match self.archived() {
            Archived::Replica(message) => Some(message.to_message(&self.body)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rkyv::ser::Writer;

    use super::*;

    /// A rewound writer forgets what it wrote, short and long writes alike:
    /// the body written after it is checksummed from scratch.
    #[test]
    fn a_rewound_body_writer_checksums_only_what_follows() {
        let mut out = AlignedVec::<ALIGNMENT>::new();
        out.extend_from_slice(&[9u8; 16]);
        let mut writer = BodyWriter::new(&mut out);
        let long = vec![3u8; FUSED_COPY_BYTES_MIN + 5];
        Writer::<rancor::Error>::write(&mut writer, &long).expect("writes");
        Writer::<rancor::Error>::write(&mut writer, b"short").expect("writes");
        writer.rewind();
        Writer::<rancor::Error>::write(&mut writer, b"again").expect("writes");
        Writer::<rancor::Error>::write(&mut writer, &long).expect("writes");
        let crc = writer.checksum();
        let mut body = b"again".to_vec();
        body.extend_from_slice(&long);
        assert_eq!(crc, crate::checksum::crc32c(&body));
        assert_eq!(&out[16..], &body[..]);
        assert_eq!(&out[..16], &[9u8; 16]);
    }
}

/// The stack's serializer archives every wire type exactly as the
/// high-level one does, and a body that fails over to the arena (before or
/// after the stack's attempt wrote part of it) is the high-level archive.
#[cfg(test)]
mod low_high_tests {
    use rkyv::ser::allocator::SubAllocator;
    use rkyv::ser::Positional;

    use super::*;
    use crate::samples::{batch, replica_sample, request, sample};
    use crate::wire::{AcceptedEntry, Ballot, Batch, ClientId, NodeId, Outcome, Seq, Slot};

    const PAYLOADS: [usize; 8] = [0, 1, 15, 100, 1000, 2047, 2048, 5000];

    /// The high-level archive of `value`, from a 16-aligned start.
    fn high<T>(value: &T) -> Vec<u8>
    where
        T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                AlignedVec<ALIGNMENT>,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rancor::Error,
            >,
        >,
    {
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, AlignedVec::<ALIGNMENT>::new())
            .expect("archives")
            .to_vec()
    }

    /// The low-level archive of `value` with scratch enough for any sample.
    fn low<T>(value: &T) -> Vec<u8>
    where
        T: for<'a> rkyv::Serialize<
            rkyv::api::low::LowSerializer<AlignedVec<ALIGNMENT>, SubAllocator<'a>, rancor::Error>,
        >,
    {
        let mut scratch = vec![std::mem::MaybeUninit::<u8>::uninit(); 1 << 16];
        rkyv::api::low::to_bytes_in_with_alloc::<_, _, rancor::Error>(
            value,
            AlignedVec::<ALIGNMENT>::new(),
            SubAllocator::new(&mut scratch),
        )
        .expect("archives")
        .to_vec()
    }

    /// Encodes `value` after two frames and checks that its body is
    /// `expected` with the right checksum, and the frames before it stayed.
    fn encodes_as(value: &dyn crate::samples::EncodeDebug, expected: &[u8]) {
        let mut out = encode(&*sample(Kind::Hello, 0), u32::MAX).expect("encodes");
        encode_into(&mut out, &*sample(Kind::Accept, 3000), u32::MAX).expect("encodes");
        let before = out.to_vec();
        let frame_start = out.len();
        let length = encode_into(&mut out, value, u32::MAX).expect("encodes");
        assert_eq!(&out[..frame_start], &before[..], "{value:?}: frames before");
        assert_eq!(length % ALIGNMENT, 0);
        assert_eq!(out.len(), frame_start + length);
        let header_bytes: &[u8; HEADER_BYTES] = out[frame_start..frame_start + HEADER_BYTES]
            .try_into()
            .expect("a header");
        let header = Header::parse(header_bytes, u32::MAX).expect("a header");
        let body_start = frame_start + HEADER_BYTES;
        let body = &out[body_start..body_start + header.body_bytes as usize];
        assert_eq!(body, expected, "{value:?}: body");
        check_body(&header, body).expect("the checksum holds");
        validate(header.kind, body).expect("validates");
        assert!(out[body_start + body.len()..].iter().all(|&byte| byte == 0));
    }

    /// Whether the stack's scratch holds the archive of `value`.
    fn fits_on_stack<T>(value: &T) -> bool
    where
        T: for<'a> rkyv::Serialize<
            rkyv::api::low::LowSerializer<AlignedVec<ALIGNMENT>, SubAllocator<'a>, rancor::Error>,
        >,
    {
        let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); SCRATCH_BYTES];
        rkyv::api::low::to_bytes_in_with_alloc::<_, _, rancor::Error>(
            value,
            AlignedVec::<ALIGNMENT>::new(),
            SubAllocator::new(&mut scratch),
        )
        .is_ok()
    }

    macro_rules! same_both_ways {
        ($value:expr) => {{
            let value = $value;
            let high = high(&value);
            assert_eq!(low(&value), high, "{value:?}: low and high archives differ");
            encodes_as(&value, &high);
            fits_on_stack(&value)
        }};
    }

    #[test]
    fn every_sample_kind_archives_as_the_high_level_serializer_does() {
        for payload in PAYLOADS {
            for kind in Kind::ALL {
                let on_stack = match kind {
                    Kind::ClientRequest => same_both_ways!(request(1, payload)),
                    Kind::ClientResponse => {
                        let response = ClientResponse {
                            client_id: ClientId(7),
                            seq: Seq(1),
                            outcome: Outcome::Done {
                                payload: vec![5u8; payload],
                            },
                        };
                        assert_eq!(
                            format!("{response:?}"),
                            format!("{:?}", sample(kind, payload))
                        );
                        same_both_ways!(response)
                    }
                    Kind::Hello => {
                        let hello = Hello {
                            cluster_id: 42,
                            node: NodeId(1),
                            shard: 0,
                        };
                        assert_eq!(format!("{hello:?}"), format!("{:?}", sample(kind, payload)));
                        same_both_ways!(hello)
                    }
                    replica => same_both_ways!(replica_sample(replica, payload)),
                };
                assert!(on_stack, "{kind:?} ({payload} B) needs the arena");
            }
        }
        for outcome in [
            Outcome::NotLeader {
                leader: Some(NodeId(3)),
            },
            Outcome::NotLeader { leader: None },
            Outcome::Busy,
            Outcome::SessionExpired,
            Outcome::Rejected {
                reason: "x".repeat(3000),
            },
        ] {
            assert!(same_both_ways!(ClientResponse {
                client_id: ClientId(7),
                seq: Seq(1),
                outcome,
            }));
        }
    }

    #[test]
    fn values_beyond_the_stack_scratch_archive_as_the_high_level_serializer_does() {
        let ballot = Ballot {
            round: 3,
            node: NodeId(1),
        };
        let entries = |count: u64, payload: usize| -> Vec<AcceptedEntry> {
            (0..count)
                .map(|slot| AcceptedEntry {
                    slot: Slot(10 + slot),
                    ballot,
                    batch: batch(1, payload),
                })
                .collect()
        };
        for payload in [0, 100, 3000] {
            for count in [200, 255, 257, 300] {
                // 4-byte resolvers; the scratch may lose up to 3 bytes to alignment.
                let expect_on_stack = count <= 255;
                let on_stack = same_both_ways!(Message::Promise {
                    ballot,
                    from_slot: Slot(10),
                    accepted: entries(count, payload),
                    commit_point: Slot(9),
                    snapshot_slot: Slot(0),
                });
                assert_eq!(on_stack, expect_on_stack, "Promise of {count}");
                let on_stack = same_both_ways!(Message::RecoveryInfo {
                    nonce: 1,
                    promised: ballot,
                    accepted: entries(count, payload),
                    commit_point: Slot(9),
                    compacted_through: Slot(0),
                });
                assert_eq!(on_stack, expect_on_stack, "RecoveryInfo of {count}");
                let batches: Vec<Batch> = (0..count).map(|_| batch(1, payload)).collect();
                let on_stack = same_both_ways!(Message::Accept {
                    ballot,
                    first_slot: Slot(10),
                    batches: batches.clone(),
                    commit_point: Slot(9),
                });
                assert_eq!(on_stack, expect_on_stack, "Accept of {count}");
                let on_stack = same_both_ways!(Message::Chosen {
                    ballot,
                    first_slot: Slot(10),
                    batches,
                    commit_point: Slot(9),
                });
                assert_eq!(on_stack, expect_on_stack, "Chosen of {count}");
            }
        }
    }

    /// No wire type runs out of scratch after writing part of its body; this
    /// one does (a long payload first, then more resolvers than fit).
    #[derive(rkyv::Archive, rkyv::Serialize, Debug)]
    struct PartlyWritten {
        head: Vec<u8>,
        batches: Vec<Batch>,
        tail: Vec<u8>,
    }

    impl Encode for PartlyWritten {
        fn kind(&self) -> Kind {
            Kind::Hello
        }
        fn archive_into(&self, out: &mut BodyWriter<'_>) -> Result<(), rancor::Error> {
            archive_body!(self, out)
        }
    }

    #[test]
    fn a_body_that_fails_over_after_partial_writes_is_the_high_level_archive() {
        for head in [5, FUSED_COPY_BYTES_MIN + 3] {
            let value = PartlyWritten {
                head: vec![1u8; head],
                batches: (0..300).map(|_| batch(1, 10)).collect(),
                tail: vec![2u8; FUSED_COPY_BYTES_MIN],
            };
            // The stack's attempt writes the head before it fails.
            let mut out = AlignedVec::<ALIGNMENT>::new();
            out.extend_from_slice(&[7u8; 16]);
            let mut writer = BodyWriter::new(&mut out);
            let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); SCRATCH_BYTES];
            let on_stack = rkyv::api::low::to_bytes_in_with_alloc::<_, _, rancor::Error>(
                &value,
                &mut writer,
                SubAllocator::new(&mut scratch),
            );
            assert!(on_stack.is_err());
            assert!(writer.pos() >= 16 + head, "the head was written");
            let high = high(&value);
            assert_eq!(low(&value), high);
            encodes_as(&value, &high);
        }
    }
}
