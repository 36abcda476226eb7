//! Property tests of the frame decoder: random, truncated, oversized and
//! bit-flipped input never panics it, never yields a frame that was not
//! sent, and valid streams decode the same however they are cut.

use proptest::prelude::*;
use rkyv::util::AlignedVec;
use synod_net::decode::Decoder;
use synod_net::frame::{encode_into, validate, Frame};
use synod_net::samples::sample;
use synod_net::wire::Kind;

const MAX: u32 = 1 << 16;

fn stream(kinds: &[(u8, u16)]) -> (AlignedVec<16>, Vec<Vec<u8>>) {
    let mut out = AlignedVec::new();
    let mut bodies = Vec::new();
    for &(kind, payload) in kinds {
        let kind = Kind::ALL[usize::from(kind) % Kind::ALL.len()];
        let start = out.len();
        encode_into(&mut out, sample(kind, usize::from(payload)).as_ref(), MAX).expect("encodes");
        let body_bytes = u32::from_le_bytes([
            out[start + 8],
            out[start + 9],
            out[start + 10],
            out[start + 11],
        ]);
        bodies.push(out[start + 16..start + 16 + body_bytes as usize].to_vec());
    }
    (out, bodies)
}

/// Feeds `bytes` in pieces of the given sizes (cycled), at a misalignment.
fn feed(bytes: &[u8], cuts: &[usize], shift: usize) -> (Vec<Frame>, bool) {
    feed_mixed(bytes, cuts, shift, &[false])
}

/// As [`feed`], but a piece whose turn in `direct` (cycled) is true, and
/// that comes while a body is partial, is written straight into the
/// decoder's partial room (as the io_uring back end's direct receives
/// are), up to the room it lends.
fn feed_mixed(bytes: &[u8], cuts: &[usize], shift: usize, direct: &[bool]) -> (Vec<Frame>, bool) {
    let mut decoder = Decoder::new(MAX);
    let mut frames = Vec::new();
    let mut at = 0;
    let mut cut = 0;
    while at < bytes.len() {
        let mut length = cuts[cut % cuts.len()].clamp(1, bytes.len() - at);
        let room = if direct[cut % direct.len()] {
            decoder.partial_room()
        } else {
            None
        };
        cut += 1;
        let failed = if let Some((start, room)) = room {
            length = length.min(room);
            // SAFETY: `length` is at most the room `partial_room` just
            // gave at `start`, which `bytes` does not overlap.
            unsafe { std::ptr::copy_nonoverlapping(bytes[at..].as_ptr(), start, length) };
            // SAFETY: `length` bytes of that room were written just above,
            // and the decoder was not fed since.
            unsafe { decoder.partial_filled(length, &mut frames) }.is_err()
        } else {
            let mut buffer = AlignedVec::<16>::new();
            buffer.extend_from_slice(&vec![0u8; shift]);
            buffer.extend_from_slice(&bytes[at..at + length]);
            let buffer = std::sync::Arc::new(buffer);
            decoder
                .feed(&buffer, shift..shift + length, &mut frames)
                .is_err()
        };
        if failed {
            return (frames, true);
        }
        at += length;
    }
    (frames, false)
}

fn bodies_of(frames: &[Frame]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|frame| frame.body().as_slice().to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_streams_decode_identically_however_cut(
        kinds in prop::collection::vec((any::<u8>(), 0u16..3000), 1..8),
        cuts in prop::collection::vec(1usize..5000, 1..8),
        shift in 0usize..16,
        direct in prop::collection::vec(any::<bool>(), 1..4),
    ) {
        let (bytes, bodies) = stream(&kinds);
        let (frames, failed) = feed_mixed(&bytes, &cuts, shift, &direct);
        prop_assert!(!failed);
        prop_assert_eq!(bodies_of(&frames), bodies);
        for frame in &frames {
            let _ = frame.message();
        }
    }

    #[test]
    fn damaged_streams_yield_only_frames_that_were_sent(
        kinds in prop::collection::vec((any::<u8>(), 0u16..2000), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
        truncate in any::<prop::sample::Index>(),
        oversize in any::<bool>(),
        cuts in prop::collection::vec(1usize..3000, 1..4),
        shift in 0usize..16,
        direct in prop::collection::vec(any::<bool>(), 1..4),
    ) {
        let (bytes, bodies) = stream(&kinds);
        let mut bytes = bytes.to_vec();
        for (at, bit) in &flips {
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        if oversize {
            bytes[8..12].copy_from_slice(&(MAX + 1).to_le_bytes());
        }
        bytes.truncate(truncate.index(bytes.len() + 1));
        let (frames, _) = feed_mixed(&bytes, &cuts, shift, &direct);
        let decoded = bodies_of(&frames);
        prop_assert!(decoded.len() <= bodies.len());
        prop_assert_eq!(&decoded[..], &bodies[..decoded.len()], "only frames that were sent, in order");
        for frame in &frames {
            let _ = frame.message();
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoder_or_the_validators(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(1usize..600, 1..4),
    ) {
        let (frames, _) = feed(&bytes, &cuts, 3);
        for frame in &frames {
            let _ = frame.message();
        }
        let mut aligned = AlignedVec::<16>::new();
        aligned.extend_from_slice(&bytes);
        for kind in Kind::ALL {
            let _ = validate(kind, &aligned);
        }
    }
}

/// Bodies with payloads around the size from which encoding copies and
/// checksums in one pass: the header's checksum is the body's, and a frame
/// encodes to the same bytes after other frames as alone.
#[test]
fn long_payloads_are_copied_and_checksummed_exactly() {
    let lead = sample(Kind::Accepted, 3);
    for size in [0usize, 1, 2047, 2048, 2049, 4099, 65_000] {
        for kind in [Kind::ClientRequest, Kind::ClientResponse, Kind::Accept] {
            let value = sample(kind, size);
            let mut alone = AlignedVec::<16>::new();
            encode_into(&mut alone, value.as_ref(), MAX).expect("encodes");
            let mut after = AlignedVec::<16>::new();
            encode_into(&mut after, lead.as_ref(), MAX).expect("encodes");
            let start = after.len();
            encode_into(&mut after, value.as_ref(), MAX).expect("encodes");
            assert_eq!(&after[start..], &alone[..], "{kind:?} with {size} B");
            let body_bytes = u32::from_le_bytes(alone[8..12].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(alone[12..16].try_into().expect("4 bytes"));
            let body = &alone[16..16 + body_bytes as usize];
            assert_eq!(crc, crc32c::crc32c(body), "{kind:?} with {size} B");
            let (frames, failed) = feed(&after, &[1 << 20], 0);
            assert!(
                !failed && frames.len() == 2,
                "{kind:?} with {size} B decodes"
            );
        }
    }
}
