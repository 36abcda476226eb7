//! Throws arbitrary bytes at the frame decoder, cut into receives of
//! fuzzer-chosen sizes at a fuzzer-chosen misalignment, and at every kind's
//! validator; whatever decodes is read back in full.
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
    for piece in bytes.chunks(cut) {
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
