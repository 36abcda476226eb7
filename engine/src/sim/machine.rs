//! The state machine each simulated replica applies its log to: the kv
//! machine under the session table, and the encodings clients use.

use crate::sm::{
    CommandOutcome, KvCommand, KvMachine, KvResponse, Replicated, SessionConfig, SessionError,
};
use crate::wire::{Batch, ClientId, Seq, Slot, Snapshot};

/// A client's write, as it travels in a command's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum KvWrite {
    /// Set the key.
    Put { key: String, value: String },
    /// Remove the key.
    Delete { key: String },
    /// Set the key to `new` if it holds `expected` (`None`: absent).
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
}

impl KvWrite {
    /// The command payload.
    pub(super) fn encode(&self) -> Vec<u8> {
        let command = match self {
            KvWrite::Put { key, value } => KvCommand::Put {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
            },
            KvWrite::Delete { key } => KvCommand::Delete {
                key: key.as_bytes().to_vec(),
            },
            KvWrite::Cas { key, expected, new } => KvCommand::Cas {
                key: key.as_bytes().to_vec(),
                expected: expected.as_ref().map(|text| text.as_bytes().to_vec()),
                new: new.as_bytes().to_vec(),
            },
        };
        command.encode()
    }
}

/// What the kv machine answered to an applied write or a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum KvAnswer {
    /// A put or delete took effect.
    Done,
    /// A cas's result.
    Swapped(bool),
    /// A read's value.
    Value(Option<String>),
    /// The machine refused the payload, or the answer did not decode.
    Error(String),
}

impl KvAnswer {
    /// Decodes response bytes.
    pub(super) fn decode(bytes: &[u8]) -> KvAnswer {
        let text = |value: Vec<u8>| String::from_utf8_lossy(&value).into_owned();
        match KvResponse::decode(bytes) {
            Ok(KvResponse::Done) => KvAnswer::Done,
            Ok(KvResponse::Swapped(swapped)) => KvAnswer::Swapped(swapped),
            Ok(KvResponse::Value(value)) => KvAnswer::Value(value.map(text)),
            Ok(KvResponse::Error(reason)) => KvAnswer::Error(reason),
            Err(error) => KvAnswer::Error(error.to_string()),
        }
    }
}

/// Sessions stay open through a whole run: clients are never idle that long.
const SESSION_TTL_NS: u64 = 3_600 * 1_000_000_000;

/// One replica's replicated kv store.
#[derive(Debug)]
pub(super) struct KvStore {
    replicated: Replicated<KvMachine>,
}

impl KvStore {
    /// An empty store; with `apply_retries_twice` the session table's
    /// deliberate bug is on.
    pub(super) fn new(apply_retries_twice: bool) -> KvStore {
        let config = SessionConfig {
            ttl_ns: SESSION_TTL_NS,
            ..SessionConfig::default()
        };
        let mut replicated = Replicated::new(KvMachine::new(), config);
        replicated.set_bug_apply_retries_twice(apply_retries_twice);
        KvStore { replicated }
    }

    /// Applies the committed batch of `slot` (the slot after the applied one).
    pub(super) fn apply(&mut self, slot: Slot, batch: &Batch) -> Vec<CommandOutcome> {
        self.replicated.apply(slot, batch)
    }

    /// The recorded answer to (`client_id`, `seq`), if already applied.
    pub(super) fn cached_result(
        &self,
        client_id: ClientId,
        seq: Seq,
    ) -> Option<Result<Vec<u8>, SessionError>> {
        self.replicated.cached_result(client_id, seq)
    }

    /// Reads `key` from the current state.
    pub(super) fn read(&self, key: &str) -> KvAnswer {
        let request = KvCommand::Get {
            key: key.as_bytes().to_vec(),
        };
        match self.replicated.query(&request.encode()) {
            Ok(bytes) => KvAnswer::decode(&bytes),
            Err(error) => KvAnswer::Error(error.to_string()),
        }
    }

    /// The last slot applied.
    pub(super) fn applied_slot(&self) -> Slot {
        self.replicated.applied_slot()
    }

    /// A snapshot at the applied slot.
    pub(super) fn snapshot(&self) -> Snapshot {
        self.replicated.snapshot()
    }

    /// Replaces the state with a snapshot's.
    pub(super) fn restore(&mut self, snapshot: &Snapshot) -> Result<(), String> {
        self.replicated
            .restore(snapshot)
            .map_err(|error| error.to_string())
    }
}
