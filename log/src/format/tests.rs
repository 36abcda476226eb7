use super::*;

fn header() -> RecordHeader {
    RecordHeader {
        kind: RecordKind::Accepted,
        flags: FLAG_GROUP_END,
        payload_bytes: 32,
        segment: SegmentId(7),
        commit_seq: CommitSeq(42),
        first_slot: Slot(1000),
        entry_count: 1,
        ballot: Ballot {
            round: 9,
            node: NodeId(3),
        },
    }
}

fn record() -> Vec<u8> {
    let mut bytes = vec![0u8; RECORD_HEADER_BYTES + 32];
    header().encode(&mut bytes);
    encode_entry_prefix(&mut bytes[RECORD_HEADER_BYTES..], 5);
    bytes[RECORD_HEADER_BYTES + ENTRY_PREFIX_BYTES..][..5].copy_from_slice(b"hello");
    let payload_crc = crc32c::crc32c(&bytes[RECORD_HEADER_BYTES..]);
    seal_record(&mut bytes, payload_crc);
    bytes
}

#[test]
fn a_record_round_trips_and_its_entries_read_back() {
    let bytes = record();
    let decoded = decode_record(&bytes).expect("valid");
    assert_eq!(decoded, header());
    let payload = &bytes[RECORD_HEADER_BYTES..];
    let read: Vec<&[u8]> = entries(payload)
        .map(|entry| entry.expect("valid"))
        .collect();
    assert_eq!(read, vec![&b"hello"[..]]);
}

#[test]
fn every_single_bit_flip_of_a_record_is_caught() {
    let bytes = record();
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[index] ^= 1 << bit;
            assert!(
                decode_record(&damaged).is_err(),
                "flip at {index} bit {bit}"
            );
        }
    }
}

#[test]
fn lengths_beyond_the_input_are_refused_not_trusted() {
    let mut bytes = record();
    bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode_record(&bytes), Err(RecordDefect::Truncated));
    assert_eq!(decode_record(&bytes[..10]), Err(RecordDefect::Truncated));
    let mut newer = record();
    newer[4] = 3;
    assert_eq!(decode_record(&newer), Err(RecordDefect::NewerVersion(3)));
    let mut older = record();
    older[4] = 1;
    assert_eq!(decode_record(&older), Err(RecordDefect::OlderVersion(1)));
}

#[test]
fn segment_headers_round_trip_and_refuse_strangers() {
    let mut block = vec![0u8; BLOCK_BYTES];
    let header = SegmentHeader {
        segment: SegmentId(3),
        segment_bytes: 1 << 20,
        recycled: true,
    };
    header.encode(&mut block);
    assert_eq!(decode_segment_header(&block), Ok(header));
    let mut newer = block.clone();
    newer[8] = 5;
    assert_eq!(
        decode_segment_header(&newer),
        Err(HeaderDefect::NewerVersion(5))
    );
    let mut older = block.clone();
    older[8] = 1;
    assert_eq!(
        decode_segment_header(&older),
        Err(HeaderDefect::OlderVersion(1))
    );
    let mut damaged = block.clone();
    damaged[20] ^= 1;
    assert!(matches!(
        decode_segment_header(&damaged),
        Err(HeaderDefect::Corrupt(_))
    ));
    assert!(matches!(
        decode_segment_header(&block[..100]),
        Err(HeaderDefect::Foreign(_))
    ));
    assert_eq!(
        SegmentId::from_file_name(&SegmentId(3).file_name()),
        Some(SegmentId(3))
    );
    assert_eq!(SegmentId::from_file_name("0003.seg"), None);
    assert_eq!(SegmentId(0xab_cdef).file_name(), "0000000000abcdef.seg");
    assert_eq!(SegmentId(u64::MAX).file_name(), "ffffffffffffffff.seg");
}

fn metadata_record(recovering: bool) -> Vec<u8> {
    let header = RecordHeader {
        kind: RecordKind::Metadata,
        flags: FLAG_GROUP_END | if recovering { FLAG_RECOVERING } else { 0 },
        payload_bytes: 0,
        segment: SegmentId(2),
        commit_seq: CommitSeq(5),
        first_slot: Slot(40),
        entry_count: 0,
        ballot: Ballot {
            round: 6,
            node: NodeId(1),
        },
    };
    let mut bytes = vec![0u8; RECORD_HEADER_BYTES];
    header.encode(&mut bytes);
    seal_record(&mut bytes, crc32c::crc32c(&[]));
    bytes
}

#[test]
fn metadata_records_carry_the_recovering_flag() {
    for recovering in [false, true] {
        let bytes = metadata_record(recovering);
        let header = decode_record(&bytes).expect("valid");
        assert_eq!(
            header.metadata(),
            Some(Metadata {
                promised: Ballot {
                    round: 6,
                    node: NodeId(1)
                },
                commit_point: Slot(40),
                recovering,
            })
        );
    }
    assert_eq!(decode_record(&record()).expect("valid").metadata(), None);
    // The flag means nothing on an accepted record: refused, not ignored.
    let mut accepted = record();
    accepted[7] |= FLAG_RECOVERING;
    let payload_crc = crc32c::crc32c(&accepted[RECORD_HEADER_BYTES..]);
    seal_record(&mut accepted, payload_crc);
    assert_eq!(
        decode_record(&accepted),
        Err(RecordDefect::BadField("flags"))
    );
}

#[test]
fn metadata_copies_and_snapshots_round_trip_and_detect_damage() {
    for recovering in [false, true] {
        let copy = MetadataCopy {
            write_seq: 5,
            metadata: Metadata {
                promised: Ballot {
                    round: 4,
                    node: NodeId(2),
                },
                commit_point: Slot(77),
                recovering,
            },
            log_start: CommitSeq(12),
            supersedes_below: CommitSeq(31),
        };
        let mut block = vec![0u8; BLOCK_BYTES];
        encode_metadata_copy(&mut block, &copy);
        assert_eq!(decode_metadata_copy(&block), Ok(Some(copy)));
        for index in 0..METADATA_COPY_BYTES {
            let mut damaged = block.clone();
            damaged[index] ^= 4;
            // A flip anywhere, the version bytes included, is damage (the
            // other copy may be good), never "another version".
            assert!(
                matches!(
                    decode_metadata_copy(&damaged),
                    Err(HeaderDefect::Corrupt(_))
                ),
                "flip at {index}"
            );
        }
        // Only a copy whose checksum holds is of another version.
        let mut older = block.clone();
        older[8] = 1;
        assert!(matches!(
            decode_metadata_copy(&older),
            Err(HeaderDefect::Corrupt(_))
        ));
        let crc = crc32c::crc32c(&older[0..64]);
        older[64..68].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_metadata_copy(&older),
            Err(HeaderDefect::OlderVersion(1))
        );
    }
    assert_eq!(decode_metadata_copy(&vec![0u8; BLOCK_BYTES]), Ok(None));

    let file = encode_snapshot(Slot(9), b"state");
    assert_eq!(decode_snapshot(&file), Ok((Slot(9), &b"state"[..])));
    let mut damaged = file.clone();
    *damaged.last_mut().expect("bytes") ^= 1;
    assert!(matches!(
        decode_snapshot(&damaged),
        Err(HeaderDefect::Corrupt(_))
    ));
}

#[test]
fn promises_and_commit_points_only_rise_and_recovering_follows_the_later_value() {
    let low = Metadata {
        promised: Ballot {
            round: 1,
            node: NodeId(9),
        },
        commit_point: Slot(50),
        recovering: true,
    };
    let high = Metadata {
        promised: Ballot {
            round: 2,
            node: NodeId(1),
        },
        commit_point: Slot(10),
        recovering: false,
    };
    let both = low.followed_by(high);
    assert_eq!(both.promised, high.promised);
    assert_eq!(both.commit_point, Slot(50));
    assert!(!both.recovering, "cleared by the later value");
    let again = both.followed_by(low);
    assert_eq!(again.promised, high.promised, "a promise never falls");
    assert!(again.recovering, "set again by the later value");
}

#[test]
fn a_record_of_group_u64_max_is_refused_even_with_a_valid_checksum() {
    let mut bytes = vec![0u8; RECORD_HEADER_BYTES + 32];
    RecordHeader {
        commit_seq: CommitSeq(u64::MAX),
        ..header()
    }
    .encode(&mut bytes);
    encode_entry_prefix(&mut bytes[RECORD_HEADER_BYTES..], 5);
    let payload_crc = crc32c::crc32c(&bytes[RECORD_HEADER_BYTES..]);
    seal_record(&mut bytes, payload_crc);
    assert_eq!(
        decode_record(&bytes),
        Err(RecordDefect::BadField("commit sequence number"))
    );
}
