//! Throws arbitrary bytes at the frame decoder, cut into receives of
//! fuzzer-chosen sizes at a fuzzer-chosen misalignment (for inputs of odd
//! length, the rest of a partial body received straight into its buffer),
//! and at every kind's validator; whatever decodes is read back in full.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rkyv::util::AlignedVec;
use synod_net::decode::Decoder;
use synod_net::frame::{validate, Archived};
use synod_net::wire::Kind;

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else { return };
    let shift = usize::from(control & 15);
    let cut = usize::from(control >> 4) * 97 + 1;
    let mut decoder = Decoder::new(1 << 20);
    let mut frames = Vec::new();
    // Inputs of odd length also receive the rest of partial bodies straight
    // into the decoder's buffer (as the io_uring back end does).
    let direct = bytes.len() % 2 == 1;
    let mut at = 0;
    while at < bytes.len() {
        let room = if direct { decoder.partial_room() } else { None };
        if let Some((start, room)) = room {
            let count = room.min(cut).min(bytes.len() - at);
            // SAFETY: `partial_room` gave `room >= count` writable bytes at
            // `start`; `bytes` is the fuzzer's own allocation.
            unsafe { std::ptr::copy_nonoverlapping(bytes[at..].as_ptr(), start, count) };
            at += count;
            // SAFETY: `count` bytes were written at the room's start just above.
            if unsafe { decoder.partial_filled(count, &mut frames) }.is_err() {
                break;
            }
            continue;
        }
        let piece = &bytes[at..(at + cut).min(bytes.len())];
        at += piece.len();
        let mut buffer = AlignedVec::<16>::new();
        buffer.extend_from_slice(&[0u8; 16][..shift]);
        buffer.extend_from_slice(piece);
        if decoder.feed(&Arc::new(buffer), shift..shift + piece.len(), &mut frames).is_err() {
            break;
        }
    }
    for frame in &frames {
        if let Some(message) = frame.message() {
            let _ = format!("{message:?}");
        }
        if let Archived::Request(request) = frame.archived() {
            let _ = request.payload.len() + request.key.len();
        }
    }
    // The validators alone, on the raw bytes (no checksum in the way).
    let mut aligned = AlignedVec::<16>::new();
    aligned.extend_from_slice(bytes);
    let kind = Kind::ALL[usize::from(control) % Kind::ALL.len()];
    if validate(kind, &aligned).is_ok() {
        let header = synod_net::frame::Header { kind, body_bytes: aligned.len() as u32, body_crc32c: crc(&aligned) };
        let body = synod_net::bytes::SharedBytes::copy_from_slice(&aligned);
        if let Ok(frame) = synod_net::frame::Frame::checked(&header, body) {
            let _ = format!("{:?}", frame.message());
        }
    }
});

fn crc(bytes: &[u8]) -> u32 {
    synod_net::frame::body_crc32c(bytes)
}
