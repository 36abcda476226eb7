//! The bundled key-value machine: get, put, delete and compare-and-swap on
//! an ordered map of byte strings.
//!
//! Encodings (all integers little-endian u64, byte strings length-prefixed):
//! - command: a kind byte (1 put, 2 delete, 3 cas, 4 get), then the fields in
//!   declaration order; an optional byte string is a byte 0 (absent) or 1
//!   (present) followed by the string.
//! - response: a kind byte (1 done, 2 value, 3 swapped, 4 error), then the
//!   fields; a bool is a byte 0 or 1.
//! - snapshot: a version byte, the entry count, then every key and value in
//!   ascending key order.
//!
//! Decoding rejects trailing bytes and any other byte value, so every value
//! has exactly one encoding and replicas cannot disagree about one.
//!
//! Invariants:
//! - A restore either replaces the whole map or leaves it untouched.
//! - A snapshot lists keys in strictly ascending order (checked on restore).

use std::collections::BTreeMap;

use super::codec::{DecodeError, Reader, Writer};
use super::{QueryError, SnapshotError, StateMachine};
use crate::wire::Slot;

const COMMAND_PUT: u8 = 1;
const COMMAND_DELETE: u8 = 2;
const COMMAND_CAS: u8 = 3;
const COMMAND_GET: u8 = 4;

const RESPONSE_DONE: u8 = 1;
const RESPONSE_VALUE: u8 = 2;
const RESPONSE_SWAPPED: u8 = 3;
const RESPONSE_ERROR: u8 = 4;

const SNAPSHOT_VERSION: u8 = 1;
/// An encoded snapshot entry is at least two empty length-prefixed strings.
const SNAPSHOT_ENTRY_BYTES_MIN: usize = 16;

/// Why kv bytes could not be decoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvError {
    /// The bytes are truncated, have trailing bytes or an unknown kind.
    #[error("malformed kv bytes: {reason}")]
    Malformed {
        /// What was wrong with the bytes.
        reason: String,
    },
}

impl From<DecodeError> for KvError {
    fn from(error: DecodeError) -> KvError {
        KvError::Malformed {
            reason: error.to_string(),
        }
    }
}

/// A request to the kv machine, carried as a command's payload.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KvCommand {
    /// Sets `key` to `value`. Answered with [`KvResponse::Done`].
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key` if present. Answered with [`KvResponse::Done`].
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Sets `key` to `new` only if its current value is `expected`, where
    /// `None` means "the key is absent". Answered with
    /// [`KvResponse::Swapped`].
    Cas {
        /// The key.
        key: Vec<u8>,
        /// The value the key must hold, or `None` for "absent".
        expected: Option<Vec<u8>>,
        /// The value to set when the comparison holds.
        new: Vec<u8>,
    },
    /// Reads `key`. Answered with [`KvResponse::Value`]. It may go through
    /// the log or, when the replica says the read is safe, be served by
    /// [`StateMachine::query`].
    Get {
        /// The key.
        key: Vec<u8>,
    },
}

/// The kv machine's answer to one [`KvCommand`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KvResponse {
    /// A put or delete took effect.
    Done,
    /// A get's answer: the value, or `None` when the key is absent.
    Value(Option<Vec<u8>>),
    /// A cas's answer: true when the comparison held and the value was set.
    Swapped(bool),
    /// The payload did not decode; nothing changed.
    Error(String),
}

fn write_optional_bytes(writer: &mut Writer, value: Option<&[u8]>) {
    match value {
        None => writer.u8(0),
        Some(bytes) => {
            writer.u8(1);
            writer.bytes(bytes);
        }
    }
}

fn read_optional_bytes(reader: &mut Reader<'_>) -> Result<Option<Vec<u8>>, DecodeError> {
    match reader.u8()? {
        0 => Ok(None),
        1 => Ok(Some(reader.bytes()?.to_vec())),
        _ => Err(reader.error("an option's tag is neither 0 nor 1")),
    }
}

impl KvCommand {
    /// Encodes the command as a payload.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        match self {
            KvCommand::Put { key, value } => {
                writer.u8(COMMAND_PUT);
                writer.bytes(key);
                writer.bytes(value);
            }
            KvCommand::Delete { key } => {
                writer.u8(COMMAND_DELETE);
                writer.bytes(key);
            }
            KvCommand::Cas { key, expected, new } => {
                writer.u8(COMMAND_CAS);
                writer.bytes(key);
                write_optional_bytes(&mut writer, expected.as_deref());
                writer.bytes(new);
            }
            KvCommand::Get { key } => {
                writer.u8(COMMAND_GET);
                writer.bytes(key);
            }
        }
        writer.finish()
    }

    /// Decodes a payload.
    ///
    /// # Errors
    /// [`KvError::Malformed`] when the bytes are not exactly one encoded command.
    pub fn decode(bytes: &[u8]) -> Result<KvCommand, KvError> {
        let mut reader = Reader::new(bytes);
        let command = match reader.u8()? {
            COMMAND_PUT => {
                let key = reader.bytes()?.to_vec();
                KvCommand::Put {
                    key,
                    value: reader.bytes()?.to_vec(),
                }
            }
            COMMAND_DELETE => KvCommand::Delete {
                key: reader.bytes()?.to_vec(),
            },
            COMMAND_CAS => {
                let key = reader.bytes()?.to_vec();
                let expected = read_optional_bytes(&mut reader)?;
                KvCommand::Cas {
                    key,
                    expected,
                    new: reader.bytes()?.to_vec(),
                }
            }
            COMMAND_GET => KvCommand::Get {
                key: reader.bytes()?.to_vec(),
            },
            _ => return Err(reader.error("unknown command kind").into()),
        };
        reader.finish()?;
        Ok(command)
    }
}

impl KvResponse {
    /// Encodes the response for the client.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        match self {
            KvResponse::Done => writer.u8(RESPONSE_DONE),
            KvResponse::Value(value) => {
                writer.u8(RESPONSE_VALUE);
                write_optional_bytes(&mut writer, value.as_deref());
            }
            KvResponse::Swapped(swapped) => {
                writer.u8(RESPONSE_SWAPPED);
                writer.u8(u8::from(*swapped));
            }
            KvResponse::Error(message) => {
                writer.u8(RESPONSE_ERROR);
                writer.bytes(message.as_bytes());
            }
        }
        writer.finish()
    }

    /// Decodes a response.
    ///
    /// # Errors
    /// [`KvError::Malformed`] when the bytes are not exactly one encoded
    /// response (an error message must also be UTF-8).
    pub fn decode(bytes: &[u8]) -> Result<KvResponse, KvError> {
        let mut reader = Reader::new(bytes);
        let response = match reader.u8()? {
            RESPONSE_DONE => KvResponse::Done,
            RESPONSE_VALUE => KvResponse::Value(read_optional_bytes(&mut reader)?),
            RESPONSE_SWAPPED => match reader.u8()? {
                0 => KvResponse::Swapped(false),
                1 => KvResponse::Swapped(true),
                _ => return Err(reader.error("a bool is neither 0 nor 1").into()),
            },
            RESPONSE_ERROR => {
                let message = std::str::from_utf8(reader.bytes()?)
                    .map_err(|_| reader.error("an error message is not UTF-8"))?;
                KvResponse::Error(message.to_owned())
            }
            _ => return Err(reader.error("unknown response kind").into()),
        };
        reader.finish()?;
        Ok(response)
    }
}

/// The key-value state machine: an ordered map from key bytes to value bytes.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct KvMachine {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KvMachine {
    /// An empty map.
    #[must_use]
    pub fn new() -> KvMachine {
        KvMachine::default()
    }

    /// The value of `key`, if present.
    #[must_use]
    pub fn value(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// The number of keys present.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.entries.len()
    }

    /// Executes one decoded command.
    fn execute(&mut self, command: KvCommand) -> KvResponse {
        match command {
            KvCommand::Put { key, value } => {
                self.entries.insert(key, value);
                KvResponse::Done
            }
            KvCommand::Delete { key } => {
                self.entries.remove(&key);
                KvResponse::Done
            }
            KvCommand::Cas { key, expected, new } => {
                let holds = self.entries.get(&key).map(Vec::as_slice) == expected.as_deref();
                if holds {
                    self.entries.insert(key, new);
                }
                KvResponse::Swapped(holds)
            }
            KvCommand::Get { key } => KvResponse::Value(self.entries.get(&key).cloned()),
        }
    }

    /// Decodes a snapshot into a new map without touching this one.
    fn decode_snapshot(bytes: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, SnapshotError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { version });
        }
        let entry_count = reader.count(SNAPSHOT_ENTRY_BYTES_MIN)?;
        let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for _ in 0..entry_count {
            let key = reader.bytes()?;
            let value = reader.bytes()?;
            if let Some((last, _)) = entries.last_key_value() {
                if last.as_slice() >= key {
                    return Err(reader.error("keys not in strictly ascending order").into());
                }
            }
            entries.insert(key.to_vec(), value.to_vec());
        }
        reader.finish()?;
        assert_eq!(entries.len(), entry_count, "ascending keys are distinct");
        Ok(entries)
    }
}

impl StateMachine for KvMachine {
    /// Applies an encoded [`KvCommand`]; the kv machine does not use the
    /// slot. A payload that does not decode is answered with
    /// [`KvResponse::Error`] and changes nothing.
    fn apply(&mut self, _slot: Slot, payload: &[u8]) -> Vec<u8> {
        let response = match KvCommand::decode(payload) {
            Ok(command) => self.execute(command),
            Err(error) => KvResponse::Error(error.to_string()),
        };
        response.encode()
    }

    /// Serves an encoded [`KvCommand::Get`]; any other command needs the log.
    fn query(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        match KvCommand::decode(request) {
            Ok(KvCommand::Get { key }) => {
                Ok(KvResponse::Value(self.entries.get(&key).cloned()).encode())
            }
            Ok(_) => Err(QueryError::Unsupported {
                reason: "only a get can be served without the log".to_owned(),
            }),
            Err(error) => Err(QueryError::Malformed {
                reason: error.to_string(),
            }),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(SNAPSHOT_VERSION);
        writer.length(self.entries.len());
        for (key, value) in &self.entries {
            writer.bytes(key);
            writer.bytes(value);
        }
        writer.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        self.entries = KvMachine::decode_snapshot(snapshot)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
