//! The built-in workload: the replicated kv store, clients that mix gets,
//! puts, deletes and cas over a few shared keys, and the linearizability
//! check of [`crate::check`]. [`super::run`] runs it.
//!
//! Invariants:
//! - Every put and cas writes a value no other write writes (client index
//!   and a per-client counter), so the checker can tell writes apart.
//! - A read-only client draws the same numbers as a mixed one; only its
//!   choice of kind differs.

use std::collections::BTreeMap;

use crate::check::{check_history, CheckBudget, Verdict};
use crate::sm::{KvCommand, KvMachine, KvResponse};

use super::config::SimConfig;
use super::history::{Operation, OperationKind, Outcome, Output};
use super::random::Random;
use super::workload::{Completed, HistoryVerdict, Recorded, Request, Response, Workload};

/// A client's write, as it travels in a command's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KvWrite {
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
    fn encode(&self) -> Vec<u8> {
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
enum KvAnswer {
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
    fn decode(bytes: &[u8]) -> KvAnswer {
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

/// What one client of the kv workload remembers.
#[derive(Debug, Default)]
struct KvClient {
    /// Puts and cas made so far: numbers the client's fresh values.
    writes: u64,
    /// The last value this client saw per key, for plausible cas guesses.
    last_seen: BTreeMap<String, Option<String>>,
}

/// The built-in workload: a [`KvMachine`] per replica, clients mixing
/// gets, puts, deletes and cas over `SimConfig::keys` keys (the first
/// `SimConfig::reader_clients` only read), and a linearizability check of
/// the history within `SimConfig::check_steps_max` steps.
#[derive(Debug)]
pub struct KvWorkload {
    key_count: usize,
    reader_clients: usize,
    check_steps_max: u64,
    clients: Vec<KvClient>,
    history: Vec<Operation>,
}

impl KvWorkload {
    /// The workload `config` describes (its keys, readers and check budget).
    #[must_use]
    pub fn new(config: &SimConfig) -> KvWorkload {
        KvWorkload {
            key_count: config.keys.max(1),
            reader_clients: config.reader_clients,
            check_steps_max: config.check_steps_max,
            clients: Vec::new(),
            history: Vec::new(),
        }
    }

    /// The history so far, in completion order.
    #[must_use]
    pub fn history(&self) -> &[Operation] {
        &self.history
    }

    /// Takes the history, in completion order.
    #[must_use]
    pub fn into_history(self) -> Vec<Operation> {
        self.history
    }

    fn client(&mut self, client: usize) -> &mut KvClient {
        if self.clients.len() <= client {
            self.clients.resize_with(client + 1, KvClient::default);
        }
        &mut self.clients[client]
    }

    fn fresh_value(&mut self, client: usize) -> String {
        let state = self.client(client);
        state.writes += 1;
        format!("c{client}-{}", state.writes)
    }

    /// The write for a put, delete or cas, filling in `operation`'s value
    /// and expected value.
    ///
    /// # Panics
    /// When `operation` is a get (a caller bug).
    fn write(&mut self, client: usize, operation: &mut Operation, random: &mut Random) -> KvWrite {
        let key = operation.key.clone();
        match operation.kind {
            OperationKind::Put => {
                let value = self.fresh_value(client);
                operation.value = Some(value.clone());
                KvWrite::Put { key, value }
            }
            OperationKind::Delete => KvWrite::Delete { key },
            OperationKind::Get => unreachable!("a get is a read, never a write"),
            OperationKind::Cas => {
                let new = self.fresh_value(client);
                let expected = match random.between(0, 4) {
                    0 => None,
                    _ => self.client(client).last_seen.get(&key).cloned().flatten(),
                };
                operation.value = Some(new.clone());
                operation.expected.clone_from(&expected);
                KvWrite::Cas { key, expected, new }
            }
        }
    }
}

impl Workload for KvWorkload {
    type Machine = KvMachine;
    /// The history entry, with its output, completion time and outcome
    /// filled in when it ends.
    type Operation = Operation;

    fn machine(&mut self) -> KvMachine {
        KvMachine::new()
    }

    fn next_operation(&mut self, client: usize, random: &mut Random) -> (Operation, Request) {
        let key = format!("k{}", random.index(self.key_count));
        let roll = random.between(0, 100);
        let kind = match roll {
            _ if client < self.reader_clients => OperationKind::Get,
            0..=34 => OperationKind::Get,
            35..=64 => OperationKind::Put,
            65..=74 => OperationKind::Delete,
            _ => OperationKind::Cas,
        };
        let mut operation = Operation {
            client: client as u64,
            kind,
            key: key.clone(),
            value: None,
            expected: None,
            output: Output::None,
            invoke_ns: 0,
            complete_ns: 0,
            outcome: Outcome::Unknown,
        };
        if kind == OperationKind::Get {
            let query = KvCommand::Get {
                key: key.into_bytes(),
            };
            return (
                operation,
                Request::Read {
                    query: query.encode(),
                },
            );
        }
        let payload = self.write(client, &mut operation, random).encode();
        (operation, Request::Write { payload })
    }

    fn record(&mut self, completed: Completed<Operation>) -> Recorded {
        let Completed {
            client,
            mut operation,
            response,
            invoke_ns,
            complete_ns,
        } = completed;
        let (outcome, output, anomaly) = judge(client, operation.kind, response);
        operation.output = output;
        operation.outcome = outcome;
        operation.invoke_ns = invoke_ns;
        operation.complete_ns = complete_ns;
        self.remember(client, &operation);
        let recorded = Recorded {
            outcome,
            description: format!(
                "{:?} {} {:?}",
                operation.kind, operation.key, operation.value
            ),
            answer: format!("{:?} {:?}", operation.outcome, operation.output),
            anomaly,
        };
        self.history.push(operation);
        recorded
    }

    fn check(&mut self) -> HistoryVerdict {
        let budget = CheckBudget {
            steps_max: self.check_steps_max,
            ..CheckBudget::default()
        };
        match check_history(&self.history, budget) {
            Ok(report) => match report.verdict {
                Verdict::Linearizable => HistoryVerdict::Passed,
                Verdict::NotLinearizable { key, detail } => HistoryVerdict::Failed {
                    description: format!("the history of key {key} is not linearizable: {detail}"),
                },
                Verdict::Unknown { key, detail } => HistoryVerdict::Unknown {
                    description: format!(
                        "the checker ran out of budget on key {key} ({} steps): {detail}",
                        report.steps
                    ),
                },
            },
            Err(error) => HistoryVerdict::Failed {
                description: format!("the checker refused the history: {error}"),
            },
        }
    }
}

impl KvWorkload {
    /// Updates the client's idea of each key's value for later cas guesses.
    fn remember(&mut self, client: usize, operation: &Operation) {
        let key = operation.key.clone();
        let seen = match (operation.kind, operation.outcome, &operation.output) {
            (OperationKind::Get, Outcome::Ok, Output::Value(value)) => value.clone(),
            (OperationKind::Put, Outcome::Ok, _)
            | (OperationKind::Cas, Outcome::Ok, Output::Cas(true)) => operation.value.clone(),
            (OperationKind::Delete, Outcome::Ok, _) => None,
            _ => return,
        };
        self.client(client).last_seen.insert(key, seen);
    }
}

/// How an operation of `kind` ended, given its response: its outcome, its
/// output and an anomaly, if the answer does not fit the request.
fn judge(
    client: usize,
    kind: OperationKind,
    response: Response,
) -> (Outcome, Output, Option<String>) {
    let answer = match response {
        Response::Unknown => return (Outcome::Unknown, Output::None, None),
        Response::Unanswered => return (Outcome::Failed, Output::Value(None), None),
        Response::Applied(bytes) | Response::Read(Ok(bytes)) => KvAnswer::decode(&bytes),
        Response::Read(Err(error)) => KvAnswer::Error(error.to_string()),
    };
    match (kind, answer) {
        (OperationKind::Put | OperationKind::Delete, KvAnswer::Done) => {
            (Outcome::Ok, Output::None, None)
        }
        (OperationKind::Cas, KvAnswer::Swapped(swapped)) => {
            (Outcome::Ok, Output::Cas(swapped), None)
        }
        (OperationKind::Get, KvAnswer::Value(value)) => (Outcome::Ok, Output::Value(value), None),
        (OperationKind::Get, other) => (
            Outcome::Failed,
            Output::Value(None),
            Some(format!("client {client} get answered {other:?}")),
        ),
        (_, answer) => (
            Outcome::Unknown,
            Output::None,
            Some(format!("client {client} {kind:?} answered {answer:?}")),
        ),
    }
}
