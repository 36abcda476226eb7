use std::sync::Arc;

use rkyv::util::AlignedVec;

use super::*;
use crate::frame::{encode, encode_into, Archived, BODY_BYTES_MAX_DEFAULT, HEADER_BYTES, MAGIC};
use crate::samples::{request, sample};
use crate::wire::{Kind, Message};

const MAX: u32 = BODY_BYTES_MAX_DEFAULT;

fn stream_of(count: u64, payload_bytes: usize) -> AlignedVec<16> {
    let mut out = AlignedVec::new();
    for seq in 0..count {
        encode_into(
            &mut out,
            &request(seq, payload_bytes + seq as usize % 37),
            MAX,
        )
        .expect("encodes");
    }
    out
}

fn seqs(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .map(|frame| match frame.archived() {
            Archived::Request(request) => request.seq.to_native().0,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn every_kind_round_trips_in_place() {
    for kind in Kind::ALL {
        let value = sample(kind, 100);
        let bytes = encode(value.as_ref(), MAX).expect("encodes");
        assert_eq!(bytes.len() % 16, 0);
        let mut decoder = Decoder::new(MAX);
        let mut frames = Vec::new();
        decoder
            .feed(&Arc::new(bytes), 0..0, &mut frames)
            .expect("empty feed");
        let bytes = encode(value.as_ref(), MAX).expect("encodes");
        let length = bytes.len();
        decoder
            .feed(&Arc::new(bytes), 0..length, &mut frames)
            .expect("decodes");
        assert_eq!(frames.len(), 1, "{kind:?}");
        assert_eq!(frames[0].kind(), kind);
        assert_eq!(decoder.stats().frames_in_place, 1);
        assert!(decoder.is_between_frames());
        if kind.is_replica() {
            let message = frames[0].message().expect("a replica kind");
            assert_eq!(format!("{message:?}"), format!("{value:?}"));
        }
    }
}

#[test]
fn batches_are_ranges_of_the_receive_buffer() {
    let value = sample(Kind::Accept, 1000);
    let bytes = Arc::new(encode(value.as_ref(), MAX).expect("encodes"));
    let mut frames = Vec::new();
    Decoder::new(MAX)
        .feed(&bytes, 0..bytes.len(), &mut frames)
        .expect("decodes");
    let Some(Message::Accept { batches, .. }) = frames[0].message() else {
        panic!("an accept")
    };
    let start = batches[0].as_bytes().as_ptr() as usize;
    let base = bytes.as_ptr() as usize;
    assert!(
        start > base && start < base + bytes.len(),
        "the batch lies in the receive buffer"
    );
    assert_eq!(start % 16, 0);
    assert_eq!(batches[0].access().expect("valid batch").commands.len(), 1);
}

#[test]
fn every_split_point_and_every_misalignment_decodes_the_same_frames() {
    let stream = stream_of(5, 40);
    for shift in 0..16 {
        for split in 0..=stream.len() {
            let mut decoder = Decoder::new(MAX);
            let mut frames = Vec::new();
            for piece in [&stream[..split], &stream[split..]] {
                let mut buffer = AlignedVec::<16>::new();
                buffer.extend_from_slice(&vec![0u8; shift]);
                buffer.extend_from_slice(piece);
                decoder
                    .feed(&Arc::new(buffer), shift..shift + piece.len(), &mut frames)
                    .expect("decodes");
            }
            assert_eq!(
                seqs(&frames),
                vec![0, 1, 2, 3, 4],
                "shift {shift} split {split}"
            );
            let stats = decoder.stats();
            if shift == 0 && split % 16 == 0 {
                assert_eq!(stats.frames_copied_misaligned, 0);
            }
            if shift != 0 && split == 0 {
                assert_eq!(
                    stats.frames_copied_misaligned, 5,
                    "all misaligned, all copied once"
                );
            }
        }
    }
}

#[test]
fn straddling_bodies_are_assembled_once_and_byte_by_byte_feeding_works() {
    let stream = stream_of(3, 300);
    let mut decoder = Decoder::new(MAX);
    let mut frames = Vec::new();
    for byte in stream.iter() {
        decoder.feed_slice(&[*byte], &mut frames).expect("decodes");
        assert!(
            decoder.buffered_bytes() <= 2 * 400,
            "grows only with bytes that arrived"
        );
    }
    assert_eq!(seqs(&frames), vec![0, 1, 2]);
    assert_eq!(decoder.stats().frames_copied_straddling, 3);
}

#[test]
fn a_lying_length_allocates_nothing_up_front() {
    let mut header = encode(&request(1, 10), MAX).expect("encodes");
    header[8..12].copy_from_slice(&(MAX - 1).to_le_bytes());
    let mut decoder = Decoder::new(MAX);
    let mut frames = Vec::new();
    decoder
        .feed_slice(&header[..HEADER_BYTES + 20], &mut frames)
        .expect("waits for more");
    assert!(frames.is_empty());
    assert!(
        decoder.buffered_bytes() < 1024,
        "{} buffered",
        decoder.buffered_bytes()
    );
}

fn first_error(bytes: &[u8], max: u32) -> FrameError {
    let mut frames = Vec::new();
    let mut decoder = Decoder::new(max);
    let error = decoder.feed_slice(bytes, &mut frames).expect_err("refused");
    assert!(frames.is_empty());
    assert_eq!(
        decoder.feed_slice(bytes, &mut frames),
        Err(error.clone()),
        "stays failed"
    );
    error
}

#[test]
fn every_kind_of_bad_frame_is_refused_with_its_reason() {
    let good = encode(&request(1, 64), MAX).expect("encodes");
    let with = |at: usize, value: u8| {
        let mut bytes = good.to_vec();
        bytes[at] = value;
        bytes
    };
    assert!(matches!(
        first_error(&with(0, b'X'), MAX),
        FrameError::BadMagic { .. }
    ));
    assert!(matches!(
        first_error(&with(4, 9), MAX),
        FrameError::UnknownVersion { found: 9 }
    ));
    assert!(matches!(
        first_error(&with(5, 13), MAX),
        FrameError::UnknownKind { found: 13 }
    ));
    assert!(matches!(
        first_error(&with(6, 1), MAX),
        FrameError::ReservedFlags { .. }
    ));
    assert!(matches!(first_error(&good, 8), FrameError::TooLong { .. }));
    assert!(matches!(
        first_error(&with(20, 0xEE), MAX),
        FrameError::ChecksumMismatch { .. }
    ));
    // Re-checksum a damaged body so that validation is what refuses it.
    let mut bytes = with(HEADER_BYTES + 2, 0xFF);
    let body_bytes = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let body_end = HEADER_BYTES + body_bytes;
    bytes[HEADER_BYTES..body_end].fill(0xFF);
    let crc = crc32c::crc32c(&bytes[HEADER_BYTES..body_end]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        first_error(&bytes, MAX),
        FrameError::Invalid { .. }
    ));
    // A valid heartbeat under an accept's kind number.
    let mut bytes = encode(sample(Kind::Heartbeat, 0).as_ref(), MAX)
        .expect("encodes")
        .to_vec();
    bytes[5] = Kind::Accept.number();
    assert!(matches!(
        first_error(&bytes, MAX),
        FrameError::KindMismatch { .. }
    ));
    assert_eq!(u32::from_le_bytes(*b"SYND"), MAGIC);
}

#[test]
fn a_misaligned_receive_is_realigned_by_one_copy_for_all_its_frames() {
    let stream = stream_of(6, 50);
    let mut buffer = AlignedVec::<16>::new();
    buffer.extend_from_slice(&[0u8; 5]);
    buffer.extend_from_slice(&stream);
    let mut frames = Vec::new();
    let mut decoder = Decoder::new(MAX);
    decoder
        .feed(&Arc::new(buffer), 5..5 + stream.len(), &mut frames)
        .expect("decodes");
    assert_eq!(seqs(&frames), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(decoder.stats().frames_copied_misaligned, 6);
    assert!(
        frames
            .windows(2)
            .all(|pair| pair[0].body().same_buffer(pair[1].body())),
        "one aligned copy holds every frame of the receive"
    );
}

#[test]
fn a_long_split_body_grows_by_doubling_and_a_lying_one_costs_at_most_twice_what_arrived() {
    let stream = stream_of(1, 400 << 10);
    let body_bytes = u32::from_le_bytes([stream[8], stream[9], stream[10], stream[11]]) as usize;
    let mut decoder = Decoder::new(MAX);
    let mut frames = Vec::new();
    let mut capacities = Vec::new();
    for piece in stream.chunks(16 << 10) {
        decoder.feed_slice(piece, &mut frames).expect("decodes");
        let arrived = capacities.len() * (16 << 10) + piece.len() - HEADER_BYTES;
        if frames.is_empty() {
            let capacity = decoder.buffered_bytes();
            assert!(capacity >= arrived && capacity <= 2 * arrived);
            capacities.push(capacity);
        }
    }
    assert_eq!(seqs(&frames), vec![0]);
    let mut grown = capacities.clone();
    grown.dedup();
    assert!(
        grown.len() <= 6 && grown.last() == Some(&body_bytes),
        "a body of 26 receives grows by doubling, then is reserved whole: {grown:?}"
    );
    let small = stream_of(1, 100 << 10);
    let mut decoder = Decoder::new(MAX);
    decoder
        .feed_slice(&small[..HEADER_BYTES + 10], &mut frames)
        .expect("decodes");
    assert!(
        decoder.buffered_bytes() >= 100 << 10,
        "a body up to PARTIAL_RESERVE_BYTES_MAX is reserved whole at once"
    );
    assert_eq!(partial_capacity(MAX as usize, 1 << 20), 2 << 20, "a liar");
    assert_eq!(partial_capacity(MAX as usize, 2 << 20), 4 << 20);
    assert_eq!(
        partial_capacity(MAX as usize, MAX as usize / 2),
        MAX as usize
    );
    assert_eq!(
        partial_capacity(1000, 1),
        1000,
        "small bodies whole at once"
    );
}

/// Fills the decoder's partial body from `bytes` through `partial_room`,
/// as a receive straight into it would, in pieces of at most `piece`.
fn fill_directly(decoder: &mut Decoder, bytes: &[u8], piece: usize, out: &mut Vec<Frame>) -> usize {
    let mut at = 0;
    while let Some((start, room)) = decoder.partial_room() {
        let count = room.min(piece).min(bytes.len() - at);
        assert!(count > 0, "the stream holds the rest of the body");
        // SAFETY: `partial_room` gave `room >= count` writable bytes at
        // `start`; `bytes` is another allocation.
        unsafe { std::ptr::copy_nonoverlapping(bytes[at..].as_ptr(), start, count) };
        // SAFETY: `count` bytes were written at the room's start just above.
        unsafe { decoder.partial_filled(count, out) }.expect("decodes");
        at += count;
    }
    at
}

#[test]
fn a_partial_body_is_received_straight_into_its_buffer() {
    let stream = stream_of(3, 100 << 10);
    let mut decoder = Decoder::new(MAX);
    let mut frames = Vec::new();
    assert!(decoder.partial_room().is_none(), "nothing partial yet");
    let first = 5_000;
    decoder
        .feed_slice(&stream[..first], &mut frames)
        .expect("decodes");
    let (_, room) = decoder.partial_room().expect("a partial body");
    let body_bytes = u32::from_le_bytes([stream[8], stream[9], stream[10], stream[11]]) as usize;
    assert_eq!(
        room,
        body_bytes - (first - HEADER_BYTES),
        "room for exactly the rest"
    );
    let filled = fill_directly(&mut decoder, &stream[first..], 30_000, &mut frames);
    assert_eq!(filled, room);
    assert_eq!(seqs(&frames), vec![0]);
    assert_eq!(decoder.stats().frames_received_direct, 1);
    assert!(decoder.partial_room().is_none(), "between frames again");
    decoder
        .feed_slice(&stream[first + filled..], &mut frames)
        .expect("the padding and the other frames decode");
    assert_eq!(seqs(&frames), vec![0, 1, 2]);
}

#[test]
fn a_direct_partial_body_grows_only_with_what_arrived_and_is_checked() {
    // A header claiming 32 MiB, with 1,000 bytes of body: the room never
    // exceeds what arrived (the buffer at most doubles).
    let mut lying = stream_of(1, 100).to_vec();
    lying[8..12].copy_from_slice(&(32u32 << 20).to_le_bytes());
    let mut decoder = Decoder::new(64 << 20);
    let mut frames = Vec::new();
    let mut fake = lying[..HEADER_BYTES].to_vec();
    fake.resize(HEADER_BYTES + 1_000, 9);
    decoder
        .feed_slice(&fake, &mut frames)
        .expect("a header, a partial body");
    let (_, room) = decoder.partial_room().expect("a partial body");
    assert!(room <= 1_000, "room {room} after 1,000 bytes arrived");
    assert!(decoder.buffered_bytes() <= 2_000);
    // A body damaged in the part received straight into the buffer is
    // refused like any other, and the decoder refuses all after it.
    let mut damaged = stream_of(1, 50_000).to_vec();
    damaged[40_000] ^= 1;
    let mut decoder = Decoder::new(MAX);
    decoder
        .feed_slice(&damaged[..10_000], &mut frames)
        .expect("a partial body so far");
    let (start, room) = decoder.partial_room().expect("a partial body");
    let body_bytes =
        u32::from_le_bytes([damaged[8], damaged[9], damaged[10], damaged[11]]) as usize;
    assert_eq!(room, body_bytes + HEADER_BYTES - 10_000);
    // SAFETY: as in `fill_directly`.
    unsafe { std::ptr::copy_nonoverlapping(damaged[10_000..].as_ptr(), start, room) };
    // SAFETY: `room` bytes were written just above.
    let result = unsafe { decoder.partial_filled(room, &mut frames) };
    assert!(
        matches!(result, Err(FrameError::ChecksumMismatch { .. })),
        "{result:?}"
    );
    assert!(
        decoder.partial_room().is_none(),
        "refuses all after an error"
    );
    assert!(decoder.feed_slice(&damaged[..16], &mut frames).is_err());
}

#[test]
fn a_body_received_directly_returns_its_buffer_to_the_shared_pool() {
    let stream = stream_of(1, 60 << 10);
    let mut decoder = Decoder::new(MAX);
    let mut pool = RealignPool::new(8);
    let mut frames = Vec::new();
    let mut first = AlignedVec::<16>::new();
    first.extend_from_slice(&stream[..3_000]);
    decoder
        .feed_with_pool(&Arc::new(first), 0..3_000, &mut frames, &mut pool)
        .expect("decodes");
    let (start, room) = decoder.partial_room().expect("a partial body");
    // SAFETY: `room` writable bytes at `start`, from another allocation.
    unsafe { std::ptr::copy_nonoverlapping(stream[3_000..].as_ptr(), start, room) };
    // SAFETY: `room` bytes were written just above.
    unsafe { decoder.partial_filled_with_pool(room, &mut frames, &mut pool) }.expect("decodes");
    assert_eq!(seqs(&frames), vec![0]);
    assert_eq!(
        pool.buffers.len(),
        1,
        "the body's buffer went back to the shared pool"
    );
    assert!(
        decoder.realign_pool.buffers.is_empty(),
        "not to the decoder's own"
    );
}

/// A body that needs more scratch space than the stack gives the
/// serializer (a promise carrying many accepted entries) is archived again
/// with the arena, whole: it decodes to the value, its checksum holds.
#[test]
fn a_body_beyond_the_stack_scratch_is_archived_whole() {
    use crate::samples::batch;
    use crate::wire::{AcceptedEntry, Ballot, NodeId, Slot};
    let ballot = Ballot {
        round: 3,
        node: NodeId(1),
    };
    let promise = Message::Promise {
        ballot,
        from_slot: Slot(10),
        accepted: (0..500)
            .map(|slot| AcceptedEntry {
                slot: Slot(10 + slot),
                ballot,
                batch: batch(2, 10),
            })
            .collect(),
        commit_point: Slot(9),
        snapshot_slot: Slot(0),
    };
    // The stack's scratch alone does not hold this value.
    let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); crate::frame::SCRATCH_BYTES];
    let on_stack = rkyv::api::low::to_bytes_in_with_alloc::<_, _, rkyv::rancor::Error>(
        &promise,
        AlignedVec::<16>::new(),
        rkyv::ser::allocator::SubAllocator::new(&mut scratch),
    );
    assert!(on_stack.is_err(), "the value fits the stack's scratch");
    // Encoded after the frames before it, which stay as they were.
    let mut bytes = stream_of(3, 50);
    let before = bytes.len();
    encode_into(&mut bytes, &promise, MAX).expect("encodes");
    let length = bytes.len();
    let mut frames = Vec::new();
    Decoder::new(MAX)
        .feed(&Arc::new(bytes), 0..length, &mut frames)
        .expect("decodes");
    assert_eq!(frames.len(), 4);
    assert_eq!(seqs(&frames[..3]), vec![0, 1, 2]);
    let message = frames[3].message().expect("a replica kind");
    assert_eq!(format!("{message:?}"), format!("{promise:?}"));
    assert!(length > before);
}

/// The checksum of a body that comes in pieces is computed as the pieces
/// are copied in (and right after the kernel writes the direct part):
/// damage in any piece, on either path, is refused; an intact body whose
/// pieces took both paths decodes.
#[test]
fn a_body_in_pieces_is_checked_across_every_piece_and_path() {
    let stream = stream_of(1, 20_000).to_vec();
    for direct in [false, true] {
        for damage_at in [None, Some(HEADER_BYTES + 5), Some(7_000), Some(15_000)] {
            let mut bytes = stream.clone();
            if let Some(at) = damage_at {
                bytes[at] ^= 0x10;
            }
            let mut decoder = Decoder::new(MAX);
            let mut frames = Vec::new();
            // Copied pieces, then (when `direct`) the rest straight into the
            // body's buffer, or more copied pieces.
            let mut result = Ok(());
            for piece in [&bytes[..3_000], &bytes[3_000..9_000]] {
                result = result.and(decoder.feed_slice(piece, &mut frames));
            }
            if direct {
                let rest = &bytes[9_000..];
                let (start, room) = decoder.partial_room().expect("a partial body");
                assert!(room <= rest.len(), "the body's rest, without its padding");
                // SAFETY: `room` writable bytes at `start`, as in `fill_directly`.
                unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), start, room) };
                // SAFETY: `room` bytes were written just above.
                result = result.and(unsafe { decoder.partial_filled(room, &mut frames) });
            } else {
                result = result.and(decoder.feed_slice(&bytes[9_000..], &mut frames));
            }
            match damage_at {
                None => {
                    result.expect("an intact body decodes");
                    assert_eq!(seqs(&frames), vec![0]);
                    assert_eq!(
                        frames[0].body().as_slice(),
                        &stream[HEADER_BYTES..HEADER_BYTES + frames[0].body().len()]
                    );
                }
                Some(at) => assert!(
                    matches!(result, Err(FrameError::ChecksumMismatch { .. })) && frames.is_empty(),
                    "damage at {at} (direct {direct}): {result:?}"
                ),
            }
        }
    }
}

/// Feeds `bytes` as a receive that starts `shift` bytes past an aligned
/// address (a misaligned receive is copied from where it lies).
fn feed_at(
    decoder: &mut Decoder,
    bytes: &[u8],
    shift: usize,
    frames: &mut Vec<Frame>,
) -> Result<(), FrameError> {
    let mut buffer = AlignedVec::<16>::with_capacity(shift + bytes.len());
    buffer.resize(shift, 0);
    buffer.extend_from_slice(bytes);
    decoder.feed(&Arc::new(buffer), shift..shift + bytes.len(), frames)
}

/// Writes up to `bytes.len()` bytes into the decoder's partial room, as a
/// direct receive does; returns how many were written.
fn fill_direct(
    decoder: &mut Decoder,
    bytes: &[u8],
    frames: &mut Vec<Frame>,
) -> Result<usize, FrameError> {
    let (start, room) = decoder.partial_room().expect("a partial body with room");
    let count = room.min(bytes.len());
    // SAFETY: `count` is at most the room `partial_room` gave at `start`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), start, count) };
    // SAFETY: `count` bytes of that room were written just above, and the
    // decoder was not fed since.
    unsafe { decoder.partial_filled(count, frames) }.map(|()| count)
}

/// A body begun by a header split mid-way across receives, then continued
/// by direct receives and copied pieces in turn (some copied from
/// misaligned receives): its running checksum covers exactly the body, in
/// order, so an intact body decodes (and the frame after it too), damage
/// anywhere in it is refused, and the failed decoder stays failed.
#[test]
fn a_body_after_a_split_header_is_checked_across_copied_and_direct_pieces() {
    let mut stream = stream_of(2, 40_000).to_vec();
    let first_end = {
        let body_bytes = u32::from_le_bytes(stream[8..12].try_into().expect("4 bytes"));
        HEADER_BYTES + (body_bytes as usize).next_multiple_of(ALIGNMENT)
    };
    let body_end = HEADER_BYTES + u32::from_le_bytes(stream[8..12].try_into().expect("4")) as usize;
    let intact = stream.clone();
    let total = stream.len();
    // Pieces: (end, direct). The first ends inside the header, the second
    // brings the rest of it and the body's start.
    let pieces = |last_direct: bool| {
        [
            (7, false),
            (HEADER_BYTES + 1_000, false),
            (5_000, true),
            (12_000, false),
            (12_001, true),
            (25_000, true),
            (31_000, false),
            (body_end - 1, !last_direct),
            (body_end, last_direct),
            (total, false),
        ]
    };
    let damages = [
        None,
        Some(HEADER_BYTES),
        Some(HEADER_BYTES + 999),
        Some(HEADER_BYTES + 1_000),
        Some(4_999),
        Some(11_000),
        Some(12_000),
        Some(20_000),
        Some(30_999),
        Some(body_end - 2),
        Some(body_end - 1),
    ];
    for (shift, last_direct) in [(0, false), (3, false), (0, true), (5, true)] {
        for damage in damages {
            stream.copy_from_slice(&intact);
            if let Some(at) = damage {
                stream[at] ^= 0x40;
            }
            let mut decoder = Decoder::new(MAX);
            let mut frames = Vec::new();
            let mut result = Ok(());
            let mut at = 0;
            for (end, direct) in pieces(last_direct) {
                while at < end && result.is_ok() {
                    if direct {
                        match fill_direct(&mut decoder, &stream[at..end], &mut frames) {
                            Ok(count) => at += count,
                            Err(error) => result = Err(error),
                        }
                    } else {
                        result = feed_at(&mut decoder, &stream[at..end], shift, &mut frames);
                        at = end;
                    }
                }
            }
            match damage {
                None => {
                    result.expect("an intact stream decodes");
                    assert_eq!(seqs(&frames), vec![0, 1], "shift {shift}");
                    assert_eq!(frames[0].body().as_slice(), &intact[HEADER_BYTES..body_end]);
                    assert_eq!(
                        frames[1].body().as_slice(),
                        &intact[first_end + HEADER_BYTES
                            ..first_end + HEADER_BYTES + frames[1].body().len()]
                    );
                    assert_eq!(decoder.stats().frames_received_direct, 1);
                    assert!(decoder.is_between_frames());
                }
                Some(at) => {
                    let error = result.expect_err("damage is refused");
                    assert!(
                        matches!(error, FrameError::ChecksumMismatch { .. }) && frames.is_empty(),
                        "damage at {at}, shift {shift}: {error:?}"
                    );
                    assert!(
                        decoder.partial_room().is_none(),
                        "a failed decoder lends no room"
                    );
                    assert_eq!(
                        feed_at(&mut decoder, &intact[..64], 0, &mut frames),
                        Err(error.clone())
                    );
                    // SAFETY: no bytes are claimed.
                    let filled = unsafe { decoder.partial_filled(0, &mut frames) };
                    assert_eq!(filled, Err(error));
                    assert!(frames.is_empty());
                }
            }
        }
    }
}
