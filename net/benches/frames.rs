//! Frame encoding and access per message kind: ns per message (the time),
//! bytes per message (printed once, and as criterion's throughput).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rkyv::util::AlignedVec;
use synod_net::decode::Decoder;
use synod_net::frame::{encode_into, validate, Frame, BODY_BYTES_MAX_DEFAULT, HEADER_BYTES};
use synod_net::samples::sample;
use synod_net::wire::Kind;

const PAYLOAD_BYTES: usize = 100;

fn encoded(kind: Kind) -> (AlignedVec<16>, Frame) {
    let value = sample(kind, PAYLOAD_BYTES);
    let mut bytes = AlignedVec::new();
    encode_into(&mut bytes, value.as_ref(), BODY_BYTES_MAX_DEFAULT).expect("encodes");
    let mut frames = Vec::new();
    Decoder::new(BODY_BYTES_MAX_DEFAULT)
        .feed_slice(&bytes, &mut frames)
        .expect("decodes");
    let frame = frames.pop().expect("one frame");
    (bytes, frame)
}

fn frames(c: &mut Criterion) {
    eprintln!("bytes per message (payload {PAYLOAD_BYTES} B where the kind has one):");
    for kind in Kind::ALL {
        let (bytes, frame) = encoded(kind);
        eprintln!(
            "  {kind:?}: frame {} B, body {} B",
            bytes.len(),
            frame.body().len()
        );
    }
    let mut group = c.benchmark_group("encode");
    for kind in Kind::ALL {
        let value = sample(kind, PAYLOAD_BYTES);
        let (bytes, _) = encoded(kind);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = AlignedVec::<16>::with_capacity(1 << 16);
        group.bench_function(BenchmarkId::from_parameter(format!("{kind:?}")), |b| {
            b.iter(|| {
                out.clear();
                encode_into(&mut out, black_box(value.as_ref()), BODY_BYTES_MAX_DEFAULT)
                    .expect("encodes")
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("access_validated");
    for kind in Kind::ALL {
        let (bytes, frame) = encoded(kind);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{kind:?}")), |b| {
            b.iter(|| validate(kind, black_box(frame.body().as_slice())).expect("valid"))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("access_unvalidated");
    for kind in Kind::ALL {
        let (bytes, frame) = encoded(kind);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{kind:?}")), |b| {
            b.iter(|| {
                matches!(
                    black_box(&frame).archived(),
                    synod_net::frame::Archived::Replica(_)
                )
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decode_checked");
    for kind in [Kind::Accept, Kind::Accepted, Kind::ClientRequest] {
        let (bytes, _) = encoded(kind);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let buffer = std::sync::Arc::new(bytes);
        let mut out = Vec::with_capacity(1);
        group.bench_function(BenchmarkId::from_parameter(format!("{kind:?}")), |b| {
            b.iter(|| {
                out.clear();
                let mut decoder = Decoder::new(BODY_BYTES_MAX_DEFAULT);
                decoder
                    .feed(&buffer, 0..buffer.len(), &mut out)
                    .expect("decodes");
                out.len()
            })
        });
    }
    group.finish();
    let _ = HEADER_BYTES;
    // A 64 KiB request arriving in 16 KiB receives (the provided buffers'
    // size): the decoder joins the pieces and checks the body.
    let mut group = c.benchmark_group("decode_pieces");
    for size in [16 * 1024, 64 * 1024] {
        let value = sample(Kind::ClientRequest, size);
        let mut bytes = AlignedVec::<16>::new();
        encode_into(&mut bytes, value.as_ref(), BODY_BYTES_MAX_DEFAULT).expect("encodes");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let buffer = std::sync::Arc::new(bytes);
        let mut out = Vec::with_capacity(1);
        let mut decoder = Decoder::new(BODY_BYTES_MAX_DEFAULT);
        group.bench_function(BenchmarkId::new("ClientRequest", size), |b| {
            b.iter(|| {
                out.clear();
                for start in (0..buffer.len()).step_by(16 << 10) {
                    let end = (start + (16 << 10)).min(buffer.len());
                    decoder
                        .feed(&buffer, start..end, &mut out)
                        .expect("decodes");
                }
                out.len()
            })
        });
    }
    group.finish();
}

/// The frame checksum: the crate every caller used before against
/// `synod_net::checksum` (the AVX-512 fold where the CPU has it, the bare
/// `crc32c` instruction below 64 bytes), same run.
fn checksums(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32c");
    for size in [16usize, 56, 176, 1136, 4096, 65_600] {
        let data: Vec<u8> = (0..size).map(|index| (index * 7 + 3) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("crc32c crate", size), &data, |b, data| {
            b.iter(|| crc32c::crc32c(black_box(data)))
        });
        group.bench_with_input(
            BenchmarkId::new("synod_net::checksum", size),
            &data,
            |b, data| b.iter(|| synod_net::checksum::crc32c(black_box(data))),
        );
    }
    group.finish();
    // Copying a payload and checksumming it: two passes (what encoding
    // did before) against one, same run.
    let mut group = c.benchmark_group("copy_and_crc32c");
    for size in [1136usize, 4096, 65_600] {
        let data: Vec<u8> = (0..size).map(|index| (index * 7 + 3) as u8).collect();
        let mut target = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("copy, then crc32c", size), |b| {
            b.iter(|| {
                target.copy_from_slice(black_box(&data));
                synod_net::checksum::crc32c(&target)
            })
        });
        group.bench_function(BenchmarkId::new("copy_crc32c_append", size), |b| {
            b.iter(|| synod_net::checksum::copy_crc32c_append(0, &mut target, black_box(&data)))
        });
    }
    group.finish();
    // Whole frames with large payloads (the copy and the checksum dominate).
    let mut group = c.benchmark_group("encode_payload");
    for size in [1024usize, 16 * 1024, 64 * 1024] {
        let value = sample(Kind::ClientRequest, size);
        let mut out = AlignedVec::<16>::with_capacity(1 << 17);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("ClientRequest", size), |b| {
            b.iter(|| {
                out.clear();
                encode_into(&mut out, black_box(value.as_ref()), BODY_BYTES_MAX_DEFAULT)
                    .expect("encodes")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frames, checksums);
criterion_main!(benches);
