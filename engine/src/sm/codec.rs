//! A small, self-describing binary encoding shared by the session table and
//! the kv machine: little-endian fixed-width integers and length-prefixed
//! byte strings.
//!
//! Decoding is for untrusted bytes (a snapshot from a peer, a client's
//! payload), so every read is bounds-checked and a claimed length or count is
//! checked against the bytes that are actually left before anything is
//! allocated: garbage gives a [`DecodeError`], never a panic and never a huge
//! allocation.
//!
//! Invariants:
//! - A [`Reader`]'s position never passes the end of its bytes.

/// Why a byte string could not be decoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{reason} at byte {offset}")]
pub(crate) struct DecodeError {
    /// What was wrong.
    pub(crate) reason: &'static str,
    /// Where the reader was when it found out.
    pub(crate) offset: usize,
}

/// Builds an encoding by appending fields.
#[derive(Default)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty encoding.
    pub(crate) fn new() -> Writer {
        Writer::default()
    }

    /// Appends one byte.
    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    /// Appends a little-endian u64.
    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a count or length; `usize` indexes memory, the encoding is u64.
    pub(crate) fn length(&mut self, value: usize) {
        let value = u64::try_from(value).expect("a usize fits in a u64 on every supported target");
        self.u64(value);
    }

    /// Appends a length-prefixed byte string.
    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.length(value.len());
        self.bytes.extend_from_slice(value);
    }

    /// The finished encoding.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads an encoding field by field, checking every bound.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    /// The bytes not read yet.
    pub(crate) fn remaining_byte_count(&self) -> usize {
        assert!(
            self.position <= self.bytes.len(),
            "a reader never passes its end"
        );
        self.bytes.len() - self.position
    }

    /// An error at the current position.
    pub(crate) fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            reason,
            offset: self.position,
        }
    }

    /// Takes the next `count` bytes.
    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.remaining_byte_count() {
            return Err(self.error("truncated"));
        }
        let taken = &self.bytes[self.position..self.position + count];
        self.position += count;
        assert!(
            self.position <= self.bytes.len(),
            "a reader never passes its end"
        );
        Ok(taken)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a little-endian u64.
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0_u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// Reads a count of items that each take at least `item_bytes_min` bytes,
    /// and rejects a count the remaining bytes cannot hold, so a caller may
    /// size an allocation by it.
    pub(crate) fn count(&mut self, item_bytes_min: usize) -> Result<usize, DecodeError> {
        assert!(
            item_bytes_min > 0,
            "every encoded item takes at least one byte"
        );
        let claimed = self.u64()?;
        let possible = self.remaining_byte_count() / item_bytes_min;
        match usize::try_from(claimed) {
            Ok(count) if count <= possible => Ok(count),
            _ => Err(self.error("count larger than the remaining bytes")),
        }
    }

    /// Reads a length-prefixed byte string, borrowed from the input.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let claimed = self.u64()?;
        let length = usize::try_from(claimed).map_err(|_| self.error("length too large"))?;
        self.take(length)
    }

    /// Checks that every byte was read: trailing bytes mean the input is not
    /// the encoding it claims to be.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.remaining_byte_count() == 0 {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_field_kind() {
        let mut writer = Writer::new();
        writer.u8(7);
        writer.u64(u64::MAX - 1);
        writer.bytes(b"hello");
        writer.length(3);
        let bytes = writer.finish();

        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.u8(), Ok(7));
        assert_eq!(reader.u64(), Ok(u64::MAX - 1));
        assert_eq!(reader.bytes(), Ok(&b"hello"[..]));
        assert_eq!(reader.u64(), Ok(3));
        assert_eq!(reader.finish(), Ok(()));
    }

    #[test]
    fn claimed_length_beyond_the_input_is_an_error() {
        let mut writer = Writer::new();
        writer.u64(u64::MAX);
        let bytes = writer.finish();
        assert!(Reader::new(&bytes).bytes().is_err());
        assert!(Reader::new(&bytes).count(1).is_err());
    }

    #[test]
    fn count_is_bounded_by_remaining_bytes() {
        let mut writer = Writer::new();
        writer.u64(3);
        writer.u64(0);
        writer.u64(0);
        let bytes = writer.finish();
        // Two 8-byte items remain, so a claim of three 8-byte items fails.
        assert!(Reader::new(&bytes).count(8).is_err());
        assert_eq!(Reader::new(&bytes).count(5), Ok(3));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let bytes = [1_u8, 2];
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.u8(), Ok(1));
        assert!(reader.finish().is_err());
    }
}
