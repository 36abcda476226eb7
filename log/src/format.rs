//! The on-disk format: segment headers, records, metadata copies, snapshots.
//!
//! Every integer is little-endian and fixed width. Every structure carries a
//! magic, a format version and a crc32c, and is checked on both sides: just
//! before it is written and again when it is read back.
//!
//! Invariants:
//! - A segment file starts with one [`BLOCK_BYTES`] header block naming its
//!   segment id; records follow from offset [`BLOCK_BYTES`].
//! - A group commit starts on a block boundary; its records follow each
//!   other at [`RECORD_ALIGN_BYTES`] boundaries; its last record carries
//!   [`FLAG_GROUP_END`]; the group is padded with zeros to the block.
//! - A record's crc32c covers its payload and then its header (crc field
//!   zeroed);
//!   a record names the segment it was written to and its group's commit
//!   sequence number, so stale bytes of a recycled segment never validate.
//! - Decoding never trusts a length field beyond the bytes it was given.
//! - Files of another format version are refused, never guessed at: a
//!   newer one says so, an older one too (version 1 was never deployed).

use synod_net::wire::{Ballot, NodeId, Slot};

/// The block size: `O_DIRECT` alignment of buffers, offsets and lengths.
pub const BLOCK_BYTES: usize = 4096;
/// The current format version, the only one this build reads. Version 2
/// added the `recovering` flag to metadata records and metadata copies (and
/// the copies' place in log order); version 1 was never deployed, so it is
/// refused rather than converted.
pub const FORMAT_VERSION: u32 = 2;
/// Records inside a group start at multiples of this, so batches stay
/// 16-byte aligned (rkyv archives are accessed in place).
pub const RECORD_ALIGN_BYTES: usize = 16;
/// A record header's size.
pub const RECORD_HEADER_BYTES: usize = 64;
/// An entry's length prefix inside a record's payload.
pub const ENTRY_PREFIX_BYTES: usize = 16;
/// The segment header's meaningful prefix (the rest of its block is zero).
pub const SEGMENT_HEADER_BYTES: usize = 36;
/// One metadata copy's meaningful prefix (each copy has its own block).
pub const METADATA_COPY_BYTES: usize = 68;
/// The snapshot file's header size.
pub const SNAPSHOT_HEADER_BYTES: usize = 48;

const SEGMENT_MAGIC: [u8; 8] = *b"SYNODSEG";
const RECORD_MAGIC: [u8; 4] = *b"SYNR";
const METADATA_MAGIC: [u8; 8] = *b"SYNODMET";
const SNAPSHOT_MAGIC: [u8; 8] = *b"SYNODSNP";

/// The record's last in its group commit.
pub const FLAG_GROUP_END: u8 = 1;
/// A metadata record's `recovering` flag (see [`Metadata::recovering`]).
pub const FLAG_RECOVERING: u8 = 2;

const _: () = assert!(BLOCK_BYTES.is_power_of_two() && BLOCK_BYTES >= 512);
const _: () = assert!(RECORD_HEADER_BYTES.is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!(ENTRY_PREFIX_BYTES.is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!(BLOCK_BYTES.is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!(SEGMENT_HEADER_BYTES <= BLOCK_BYTES);
const _: () = assert!(METADATA_COPY_BYTES <= BLOCK_BYTES);

/// A segment's number: segments are used in rising order, without gaps.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct SegmentId(pub u64);

impl SegmentId {
    /// The file name of this segment: the id in 16 lower-case hex digits,
    /// then `.seg`. (Spelt out by hand: a simulator names a segment on
    /// every write, and the formatting machinery showed in its profile.)
    #[must_use]
    pub fn file_name(self) -> String {
        const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut name = String::with_capacity(20);
        for shift in (0..16).rev() {
            let digit = (self.0 >> (4 * shift)) & 0xf;
            name.push(char::from(HEX_DIGITS[digit as usize]));
        }
        name.push_str(".seg");
        name
    }

    /// Parses a segment file name, exactly as [`SegmentId::file_name`]
    /// spells it (lower-case hex); `None` for any other name.
    #[must_use]
    pub fn from_file_name(name: &str) -> Option<SegmentId> {
        let hex = name.strip_suffix(".seg")?;
        let lower_hex = |byte: u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
        if hex.len() != 16 || !hex.bytes().all(lower_hex) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(SegmentId)
    }

    /// The next segment.
    #[must_use]
    pub fn next(self) -> SegmentId {
        SegmentId(
            self.0
                .checked_add(1)
                .expect("segment ids are u64 and never run out"),
        )
    }
}

/// A group commit's number: rises by one per group, across segments. The
/// caller learns durability as "every group up to this one is durable".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct CommitSeq(pub u64);

/// What a record holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordKind {
    /// Accepted values for `entry_count` consecutive slots from `first_slot`.
    Accepted,
    /// Acceptor metadata: `ballot` is the promised ballot, `first_slot`
    /// the commit point and [`FLAG_RECOVERING`] the recovering flag; no payload.
    Metadata,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Accepted => 1,
            RecordKind::Metadata => 2,
        }
    }

    fn from_code(code: u8) -> Option<RecordKind> {
        match code {
            1 => Some(RecordKind::Accepted),
            2 => Some(RecordKind::Metadata),
            _ => None,
        }
    }
}

/// A decoded record header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RecordHeader {
    /// The record's kind.
    pub kind: RecordKind,
    /// [`FLAG_GROUP_END`], and for a metadata record [`FLAG_RECOVERING`].
    pub flags: u8,
    /// The payload's length in bytes (a multiple of [`RECORD_ALIGN_BYTES`]).
    pub payload_bytes: u32,
    /// The segment the record was written to.
    pub segment: SegmentId,
    /// The group commit the record belongs to.
    pub commit_seq: CommitSeq,
    /// The first slot (the commit point for a metadata record).
    pub first_slot: Slot,
    /// How many consecutive slots the record holds.
    pub entry_count: u32,
    /// The ballot (the promised ballot for a metadata record).
    pub ballot: Ballot,
}

impl RecordHeader {
    /// The whole record's length: header plus payload.
    #[must_use]
    pub fn record_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + self.payload_bytes as usize
    }

    /// True when the record closes its group commit.
    #[must_use]
    pub fn ends_group(&self) -> bool {
        self.flags & FLAG_GROUP_END != 0
    }

    /// The metadata a metadata record holds (`None` for an accepted record).
    #[must_use]
    pub fn metadata(&self) -> Option<Metadata> {
        (self.kind == RecordKind::Metadata).then_some(Metadata {
            promised: self.ballot,
            commit_point: self.first_slot,
            recovering: self.flags & FLAG_RECOVERING != 0,
        })
    }

    /// Writes the header (crc field zero) into `out`.
    pub fn encode(&self, out: &mut [u8]) {
        assert!(out.len() >= RECORD_HEADER_BYTES, "room for a record header");
        assert!(
            (self.payload_bytes as usize).is_multiple_of(RECORD_ALIGN_BYTES),
            "payloads are padded to the record alignment"
        );
        let out = &mut out[..RECORD_HEADER_BYTES];
        out.fill(0);
        out[0..4].copy_from_slice(&RECORD_MAGIC);
        out[4..6].copy_from_slice(&(FORMAT_VERSION as u16).to_le_bytes());
        out[6] = self.kind.code();
        out[7] = self.flags;
        out[12..16].copy_from_slice(&self.payload_bytes.to_le_bytes());
        out[16..24].copy_from_slice(&self.segment.0.to_le_bytes());
        out[24..32].copy_from_slice(&self.commit_seq.0.to_le_bytes());
        out[32..40].copy_from_slice(&self.first_slot.0.to_le_bytes());
        out[40..44].copy_from_slice(&self.entry_count.to_le_bytes());
        out[48..56].copy_from_slice(&self.ballot.round.to_le_bytes());
        out[56] = self.ballot.node.0;
    }
}

/// Why bytes at a record position are not a valid record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RecordDefect {
    /// Fewer bytes than a header remain.
    Truncated,
    /// The header's magic is wrong.
    BadMagic,
    /// A newer format version.
    NewerVersion(u32),
    /// An older format version (never deployed, not read).
    OlderVersion(u32),
    /// A field is out of range (named).
    BadField(&'static str),
    /// The checksum does not match.
    BadChecksum,
}

impl std::fmt::Display for RecordDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordDefect::Truncated => write!(f, "record truncated by the end of the file"),
            RecordDefect::BadMagic => write!(f, "bad record magic"),
            RecordDefect::NewerVersion(version) => {
                write!(f, "record of newer format version {version}")
            }
            RecordDefect::OlderVersion(version) => {
                write!(f, "record of older format version {version}")
            }
            RecordDefect::BadField(field) => write!(f, "record field {field} out of range"),
            RecordDefect::BadChecksum => write!(f, "record checksum mismatch"),
        }
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The crc32c of a record: over the payload first, then the header with
/// its crc field read as zero. Payload first lets the writer checksum each
/// entry as it copies it in (while it is in cache) and add the header at seal.
#[must_use]
pub fn record_checksum(header: &[u8], payload: &[u8]) -> u32 {
    record_checksum_from(synod_net::checksum::crc32c(payload), header)
}

/// The record checksum given the payload's crc32c.
#[must_use]
pub fn record_checksum_from(payload_crc: u32, header: &[u8]) -> u32 {
    let crc = synod_net::checksum::crc32c_append(payload_crc, &header[0..8]);
    let crc = synod_net::checksum::crc32c_append(crc, &[0u8; 4]);
    synod_net::checksum::crc32c_append(crc, &header[12..RECORD_HEADER_BYTES])
}

/// Stores a record's checksum into its header, given its payload's crc32c.
pub fn seal_record(header: &mut [u8], payload_crc: u32) {
    let crc = record_checksum_from(payload_crc, &header[..RECORD_HEADER_BYTES]);
    header[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes and verifies the record starting at `bytes[0]`; `bytes` may run
/// past the record. Checks magic, version, fields and checksum; the payload's
/// entries are checked by [`entries`].
///
/// # Errors
/// The first defect found.
pub fn decode_record(bytes: &[u8]) -> Result<RecordHeader, RecordDefect> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Err(RecordDefect::Truncated);
    }
    if bytes[0..4] != RECORD_MAGIC {
        return Err(RecordDefect::BadMagic);
    }
    let version = u32::from(read_u16(bytes, 4));
    if version > FORMAT_VERSION {
        return Err(RecordDefect::NewerVersion(version));
    }
    if version < FORMAT_VERSION {
        return Err(RecordDefect::OlderVersion(version));
    }
    let kind = RecordKind::from_code(bytes[6]).ok_or(RecordDefect::BadField("kind"))?;
    let payload_bytes = read_u32(bytes, 12);
    let available = bytes.len() - RECORD_HEADER_BYTES;
    if payload_bytes as usize > available {
        return Err(RecordDefect::Truncated);
    }
    if !(payload_bytes as usize).is_multiple_of(RECORD_ALIGN_BYTES) {
        return Err(RecordDefect::BadField("payload length"));
    }
    let record_end = RECORD_HEADER_BYTES + payload_bytes as usize;
    let stored_crc = read_u32(bytes, 8);
    if record_checksum(
        &bytes[..RECORD_HEADER_BYTES],
        &bytes[RECORD_HEADER_BYTES..record_end],
    ) != stored_crc
    {
        return Err(RecordDefect::BadChecksum);
    }
    let header = RecordHeader {
        kind,
        flags: bytes[7],
        payload_bytes,
        segment: SegmentId(read_u64(bytes, 16)),
        commit_seq: CommitSeq(read_u64(bytes, 24)),
        first_slot: Slot(read_u64(bytes, 32)),
        entry_count: read_u32(bytes, 40),
        ballot: Ballot {
            round: read_u64(bytes, 48),
            node: NodeId(bytes[56]),
        },
    };
    check_record_fields(&header, &bytes[RECORD_HEADER_BYTES..record_end])?;
    Ok(header)
}

fn check_record_fields(header: &RecordHeader, payload: &[u8]) -> Result<(), RecordDefect> {
    let allowed = match header.kind {
        RecordKind::Accepted => FLAG_GROUP_END,
        RecordKind::Metadata => FLAG_GROUP_END | FLAG_RECOVERING,
    };
    if header.flags & !allowed != 0 {
        return Err(RecordDefect::BadField("flags"));
    }
    // The writer never seals group u64::MAX (no number would follow it),
    // so readers may count on `commit_seq + 1`.
    if header.commit_seq.0 == u64::MAX {
        return Err(RecordDefect::BadField("commit sequence number"));
    }
    match header.kind {
        RecordKind::Metadata if header.entry_count != 0 || !payload.is_empty() => {
            Err(RecordDefect::BadField("metadata record size"))
        }
        RecordKind::Accepted if header.entry_count == 0 => {
            Err(RecordDefect::BadField("entry count"))
        }
        RecordKind::Accepted
            if header
                .first_slot
                .0
                .checked_add(u64::from(header.entry_count))
                .is_none() =>
        {
            Err(RecordDefect::BadField("slot range"))
        }
        RecordKind::Accepted => {
            let mut count = 0u32;
            for entry in entries(payload) {
                entry?;
                count += 1;
            }
            if count == header.entry_count {
                Ok(())
            } else {
                Err(RecordDefect::BadField("entry count"))
            }
        }
        RecordKind::Metadata => Ok(()),
    }
}

/// The entry bytes inside a verified accepted record's payload, in slot order.
pub fn entries(payload: &[u8]) -> impl Iterator<Item = Result<&[u8], RecordDefect>> {
    let mut position = 0usize;
    std::iter::from_fn(move || {
        if position >= payload.len() {
            return None;
        }
        if payload.len() - position < ENTRY_PREFIX_BYTES {
            position = payload.len();
            return Some(Err(RecordDefect::BadField("entry prefix")));
        }
        let length = read_u32(payload, position) as usize;
        let start = position + ENTRY_PREFIX_BYTES;
        let padded = length.next_multiple_of(RECORD_ALIGN_BYTES);
        if payload.len() - start < padded {
            position = payload.len();
            return Some(Err(RecordDefect::BadField("entry length")));
        }
        position = start + padded;
        Some(Ok(&payload[start..start + length]))
    })
}

/// Writes an entry's length prefix.
pub fn encode_entry_prefix(out: &mut [u8], length_bytes: u32) {
    out[..ENTRY_PREFIX_BYTES].fill(0);
    out[0..4].copy_from_slice(&length_bytes.to_le_bytes());
}

/// A decoded segment header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SegmentHeader {
    /// The segment's id (matches its file name).
    pub segment: SegmentId,
    /// The segment file's full length.
    pub segment_bytes: u64,
    /// Recycled from a retired segment: bytes past the writer's end may be
    /// stale, so every group write also zeroes the block after it.
    pub recycled: bool,
}

impl SegmentHeader {
    /// Encodes the header block (the first `BLOCK_BYTES` of the file).
    pub fn encode(&self, block: &mut [u8]) {
        assert_eq!(block.len(), BLOCK_BYTES, "a segment header fills one block");
        block.fill(0);
        block[0..8].copy_from_slice(&SEGMENT_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[12..16].copy_from_slice(&u32::from(self.recycled).to_le_bytes());
        block[16..24].copy_from_slice(&self.segment.0.to_le_bytes());
        block[24..32].copy_from_slice(&self.segment_bytes.to_le_bytes());
        let crc = synod_net::checksum::crc32c(&block[0..32]);
        block[32..36].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Why a segment header was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum HeaderDefect {
    /// Not ours at all.
    Foreign(String),
    /// Ours, from a newer version.
    NewerVersion(u32),
    /// Ours, from an older version (never deployed, not read).
    OlderVersion(u32),
    /// Ours, damaged.
    Corrupt(String),
}

fn check_version(version: u32) -> Result<(), HeaderDefect> {
    match version.cmp(&FORMAT_VERSION) {
        std::cmp::Ordering::Greater => Err(HeaderDefect::NewerVersion(version)),
        std::cmp::Ordering::Less => Err(HeaderDefect::OlderVersion(version)),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Decodes a segment header block.
///
/// # Errors
/// Foreign (wrong magic or too short), newer version, or a damaged header.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderDefect> {
    if bytes.len() < BLOCK_BYTES {
        return Err(HeaderDefect::Foreign(format!(
            "{} bytes is shorter than a segment header block",
            bytes.len()
        )));
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err(HeaderDefect::Foreign("no segment magic".to_string()));
    }
    check_version(read_u32(bytes, 8))?;
    if synod_net::checksum::crc32c(&bytes[0..32]) != read_u32(bytes, 32) {
        return Err(HeaderDefect::Corrupt(
            "segment header checksum mismatch".to_string(),
        ));
    }
    let flags = read_u32(bytes, 12);
    if flags > 1 {
        return Err(HeaderDefect::Corrupt(format!(
            "unknown segment flags {flags:#x}"
        )));
    }
    Ok(SegmentHeader {
        segment: SegmentId(read_u64(bytes, 16)),
        segment_bytes: read_u64(bytes, 24),
        recycled: flags == 1,
    })
}

/// Acceptor metadata: the promised ballot, the commit point, and whether
/// the owner is recovering from damaged state.
///
/// The first two only ever rise, so any two durable values combine by
/// their maximum. `recovering` is set and later cleared, so it is taken
/// from the *latest* durable value in log order (see
/// [`Metadata::followed_by`] and [`MetadataCopy::supersedes_below`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// No ballot below this will be accepted or promised.
    pub promised: Ballot,
    /// Every slot up to here is chosen.
    pub commit_point: Slot,
    /// The owner recovered from damaged state and may not vote until it
    /// has caught up (DESIGN.md, non-voter recovery). [`crate::Log::open`]
    /// sets it durably when recovery dropped anything; the owner clears it
    /// with the metadata it appends once it has caught up.
    pub recovering: bool,
}

impl Metadata {
    /// `self` followed by the `later` value: the maximum of the promised
    /// ballots and of the commit points (they only rise), and `later`'s
    /// `recovering` flag (it is set and cleared, so the latest counts).
    #[must_use]
    pub fn followed_by(self, later: Metadata) -> Metadata {
        Metadata {
            promised: self.promised.max(later.promised),
            commit_point: self.commit_point.max(later.commit_point),
            recovering: later.recovering,
        }
    }
}

/// One copy of the metadata file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataCopy {
    /// Rises by one per write; the copy with write number `n` lives in
    /// block `n % 2`.
    pub write_seq: u64,
    /// The acceptor metadata.
    pub metadata: Metadata,
    /// The commit sequence number of the first group of the oldest segment
    /// kept when this copy was written (recovery's hint for the first group).
    pub log_start: CommitSeq,
    /// The copy's place in log order: it supersedes the metadata records of
    /// groups below this commit sequence number, and the metadata records
    /// of this group and later ones supersede it. Only `recovering` depends
    /// on the order; the other fields combine by their maximum.
    pub supersedes_below: CommitSeq,
}

/// Encodes one metadata copy into its block.
pub fn encode_metadata_copy(block: &mut [u8], copy: &MetadataCopy) {
    assert_eq!(block.len(), BLOCK_BYTES, "a metadata copy fills one block");
    block.fill(0);
    block[0..8].copy_from_slice(&METADATA_MAGIC);
    block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    block[16..24].copy_from_slice(&copy.write_seq.to_le_bytes());
    block[24..32].copy_from_slice(&copy.metadata.promised.round.to_le_bytes());
    block[32] = copy.metadata.promised.node.0;
    block[33] = u8::from(copy.metadata.recovering);
    block[40..48].copy_from_slice(&copy.metadata.commit_point.0.to_le_bytes());
    block[48..56].copy_from_slice(&copy.log_start.0.to_le_bytes());
    block[56..64].copy_from_slice(&copy.supersedes_below.0.to_le_bytes());
    let crc = synod_net::checksum::crc32c(&block[0..64]);
    block[64..68].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes one metadata copy: `Ok(None)` for an all-zero (never written) block.
///
/// The checksum is checked before the version: a copy that fails it is a
/// damaged copy (the other copy may still be good), whatever its version
/// bytes say; only a copy whose checksum holds can be of another version.
///
/// # Errors
/// A damaged copy (described), or a checksum-valid copy of another version.
pub fn decode_metadata_copy(block: &[u8]) -> Result<Option<MetadataCopy>, HeaderDefect> {
    if block.len() < METADATA_COPY_BYTES || block[..METADATA_COPY_BYTES].iter().all(|&b| b == 0) {
        return Ok(None);
    }
    if block[0..8] != METADATA_MAGIC {
        return Err(HeaderDefect::Corrupt("no metadata magic".to_string()));
    }
    if synod_net::checksum::crc32c(&block[0..64]) != read_u32(block, 64) {
        return Err(HeaderDefect::Corrupt(format!(
            "metadata checksum mismatch (version field {})",
            read_u32(block, 8)
        )));
    }
    check_version(read_u32(block, 8))?;
    let recovering = match block[33] {
        0 => false,
        1 => true,
        other => {
            return Err(HeaderDefect::Corrupt(format!(
                "metadata recovering flag {other}"
            )))
        }
    };
    Ok(Some(MetadataCopy {
        write_seq: read_u64(block, 16),
        metadata: Metadata {
            promised: Ballot {
                round: read_u64(block, 24),
                node: NodeId(block[32]),
            },
            commit_point: Slot(read_u64(block, 40)),
            recovering,
        },
        log_start: CommitSeq(read_u64(block, 48)),
        supersedes_below: CommitSeq(read_u64(block, 56)),
    }))
}

/// Encodes a snapshot file: header, then the bytes.
#[must_use]
pub fn encode_snapshot(slot: Slot, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; SNAPSHOT_HEADER_BYTES + bytes.len()];
    out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&slot.0.to_le_bytes());
    out[24..32].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    out[SNAPSHOT_HEADER_BYTES..].copy_from_slice(bytes);
    let crc = synod_net::checksum::crc32c(&out);
    out[32..36].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a snapshot file into its slot and bytes.
///
/// # Errors
/// Foreign, newer version, or damaged.
pub fn decode_snapshot(file: &[u8]) -> Result<(Slot, &[u8]), HeaderDefect> {
    if file.len() < SNAPSHOT_HEADER_BYTES || file[0..8] != SNAPSHOT_MAGIC {
        return Err(HeaderDefect::Foreign("no snapshot magic".to_string()));
    }
    check_version(read_u32(file, 8))?;
    let length = read_u64(file, 24);
    if length != (file.len() - SNAPSHOT_HEADER_BYTES) as u64 {
        return Err(HeaderDefect::Corrupt(format!(
            "snapshot says {length} bytes, file holds {}",
            file.len() - SNAPSHOT_HEADER_BYTES
        )));
    }
    let stored = read_u32(file, 32);
    let crc = synod_net::checksum::crc32c(&file[0..32]);
    let crc = synod_net::checksum::crc32c_append(crc, &[0u8; 4]);
    let crc = synod_net::checksum::crc32c_append(crc, &file[36..]);
    if crc != stored {
        return Err(HeaderDefect::Corrupt(
            "snapshot checksum mismatch".to_string(),
        ));
    }
    Ok((Slot(read_u64(file, 16)), &file[SNAPSHOT_HEADER_BYTES..]))
}

#[cfg(test)]
mod tests;
