//! A simulated client: a closed loop of kv operations over shared keys,
//! up to a small pipeline of them at a time, each retried with the same
//! (client id, sequence number) until it is answered or the client gives up.
//!
//! Invariants:
//! - A write is `ok` only when a replica answered it; `unknown` when the
//!   client gave up; never `failed` (no answer proves a write did not apply).
//! - A get that is not answered is `failed`: a read has no effect.
//! - Sequence numbers rise by one per write; a retry reuses its number.

use std::collections::BTreeMap;

use crate::sm::SessionError;
use crate::wire::{ClientId, Command, NodeId};

use super::envelope::{ClientReply, ClientRequest, ReplyBody, RequestBody, RequestId};
use super::history::{Operation, OperationKind, Outcome, Output};
use super::machine::{KvAnswer, KvWrite};
use super::random::SimRandom;

/// What a client asks the world to do.
#[derive(Debug)]
pub(super) enum ClientAction {
    /// Send a request to a replica.
    Send { to: NodeId, request: ClientRequest },
    /// Wake the client at this time for this attempt (a timeout or a backoff).
    Wake {
        at_ns: u64,
        operation: u64,
        attempt: u32,
    },
    /// An operation ended; `acknowledged` carries a write's sequence number
    /// when it ended `ok`.
    Done {
        operation: Operation,
        acknowledged: Option<u64>,
    },
    /// The cluster answered something a correct cluster never does.
    Anomaly(String),
}

/// The operation a client is working on.
#[derive(Debug)]
struct Pending {
    number: u64,
    /// `None` for the session open, which is not part of the history.
    kind: Option<OperationKind>,
    key: String,
    value: Option<String>,
    expected: Option<String>,
    command: Option<Command>,
    invoke_ns: u64,
    attempt: u32,
    backing_off: bool,
}

/// Timings and limits every client uses.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClientLimits {
    pub(super) request_timeout_ns: u64,
    pub(super) attempts_max: u32,
    pub(super) node_count: usize,
    pub(super) key_count: usize,
    /// Operations a client keeps in flight at once (at least 1).
    pub(super) pipeline_depth: usize,
}

/// One client.
#[derive(Debug)]
pub(super) struct Client {
    index: usize,
    id: ClientId,
    next_seq: u64,
    session_open: bool,
    target: NodeId,
    operations: u64,
    writes: u64,
    /// The operations in flight, oldest first.
    in_flight: Vec<Pending>,
    /// The last value this client saw per key, for plausible cas guesses.
    last_seen: BTreeMap<String, Option<String>>,
    /// A reader issues only gets.
    reader: bool,
}

impl Client {
    /// A client with a random session id that will first open its session.
    pub(super) fn new(
        index: usize,
        random: &mut SimRandom,
        node_count: usize,
        reader: bool,
    ) -> Client {
        let target = node_id(random.index(node_count));
        Client {
            index,
            id: ClientId(random.next_u64() | 1),
            next_seq: 0,
            session_open: false,
            target,
            operations: 0,
            writes: 0,
            in_flight: Vec::new(),
            last_seen: BTreeMap::new(),
            reader,
        }
    }

    /// True while an operation is in progress.
    pub(super) fn is_busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// True when the client may start another operation now: its session
    /// is open and its pipeline has room, or it has nothing in flight.
    pub(super) fn can_start(&self, limits: &ClientLimits) -> bool {
        if self.session_open {
            self.in_flight.len() < limits.pipeline_depth.max(1)
        } else {
            self.in_flight.is_empty()
        }
    }

    fn position(&self, number: u64) -> Option<usize> {
        self.in_flight
            .iter()
            .position(|pending| pending.number == number)
    }

    /// The client's session id.
    pub(super) fn id(&self) -> ClientId {
        self.id
    }

    /// Starts the next operation: the session open first, then a random
    /// get, put, delete or cas.
    pub(super) fn start(
        &mut self,
        now_ns: u64,
        random: &mut SimRandom,
        limits: &ClientLimits,
    ) -> Vec<ClientAction> {
        assert!(self.can_start(limits), "the pipeline has room");
        self.operations += 1;
        let pending = if self.session_open {
            self.random_operation(now_ns, random, limits)
        } else {
            self.open_operation(now_ns)
        };
        let number = pending.number;
        self.in_flight.push(pending);
        self.send(number, now_ns, random, limits)
    }

    fn open_operation(&mut self, now_ns: u64) -> Pending {
        self.next_seq = 1;
        let command = Command {
            client_id: self.id.0,
            seq: 0,
            acknowledged_below: 0,
            payload: Vec::new(),
        };
        Pending {
            number: self.operations,
            kind: None,
            key: String::new(),
            value: None,
            expected: None,
            command: Some(command),
            invoke_ns: now_ns,
            attempt: 0,
            backing_off: false,
        }
    }

    fn random_operation(
        &mut self,
        now_ns: u64,
        random: &mut SimRandom,
        limits: &ClientLimits,
    ) -> Pending {
        let key = format!("k{}", random.index(limits.key_count));
        let roll = random.between(0, 100);
        let kind = match roll {
            _ if self.reader => OperationKind::Get,
            0..=34 => OperationKind::Get,
            35..=64 => OperationKind::Put,
            65..=74 => OperationKind::Delete,
            _ => OperationKind::Cas,
        };
        let mut pending = Pending {
            number: self.operations,
            kind: Some(kind),
            key: key.clone(),
            value: None,
            expected: None,
            command: None,
            invoke_ns: now_ns,
            attempt: 0,
            backing_off: false,
        };
        let write = match kind {
            OperationKind::Get => return pending,
            OperationKind::Put => {
                let value = self.fresh_value();
                pending.value = Some(value.clone());
                KvWrite::Put { key, value }
            }
            OperationKind::Delete => KvWrite::Delete { key },
            OperationKind::Cas => {
                let new = self.fresh_value();
                let expected = match random.between(0, 4) {
                    0 => None,
                    _ => self.last_seen.get(&key).cloned().flatten(),
                };
                pending.value = Some(new.clone());
                pending.expected.clone_from(&expected);
                KvWrite::Cas { key, expected, new }
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        // Every write below the oldest one in flight has been answered (or
        // given up on, which the session table may then refuse).
        let acknowledged_below = self
            .in_flight
            .iter()
            .filter_map(|other| other.command.as_ref().map(|command| command.seq))
            .min()
            .unwrap_or(seq);
        pending.command = Some(Command {
            client_id: self.id.0,
            seq,
            acknowledged_below,
            payload: write.encode(),
        });
        pending
    }

    fn fresh_value(&mut self) -> String {
        self.writes += 1;
        format!("c{}-{}", self.index, self.writes)
    }

    /// Sends operation `number`'s next attempt to the current target.
    fn send(
        &mut self,
        number: u64,
        now_ns: u64,
        random: &mut SimRandom,
        limits: &ClientLimits,
    ) -> Vec<ClientAction> {
        let index = self.index;
        let target = self.target;
        let Some(position) = self.position(number) else {
            return Vec::new();
        };
        let pending = &mut self.in_flight[position];
        pending.attempt += 1;
        pending.backing_off = false;
        if pending.attempt > limits.attempts_max {
            return self.abandon(position, now_ns);
        }
        let body = match &pending.command {
            Some(command) => RequestBody::Write(command.clone()),
            None => RequestBody::Read {
                key: pending.key.clone(),
            },
        };
        let id = RequestId {
            client: index,
            operation: pending.number,
            attempt: pending.attempt,
        };
        let timeout = limits.request_timeout_ns + random.between(0, limits.request_timeout_ns / 2);
        vec![
            ClientAction::Send {
                to: target,
                request: ClientRequest { id, body },
            },
            ClientAction::Wake {
                at_ns: now_ns + timeout,
                operation: id.operation,
                attempt: id.attempt,
            },
        ]
    }

    /// A timeout or a backoff ended.
    pub(super) fn on_wake(
        &mut self,
        now_ns: u64,
        operation: u64,
        attempt: u32,
        random: &mut SimRandom,
        limits: &ClientLimits,
    ) -> Vec<ClientAction> {
        let Some(position) = self.position(operation) else {
            return Vec::new();
        };
        let pending = &self.in_flight[position];
        if pending.attempt != attempt {
            return Vec::new();
        }
        if !pending.backing_off {
            // No answer in time: try another replica.
            self.target = node_id(random.index(limits.node_count));
        }
        self.send(operation, now_ns, random, limits)
    }

    /// A reply from a replica.
    pub(super) fn on_reply(
        &mut self,
        now_ns: u64,
        reply: ClientReply,
        random: &mut SimRandom,
        limits: &ClientLimits,
    ) -> Vec<ClientAction> {
        let number = reply.id.operation;
        let Some(position) = self.position(number) else {
            return Vec::new();
        };
        let pending = &self.in_flight[position];
        let current_attempt = pending.attempt == reply.id.attempt && !pending.backing_off;
        match reply.body {
            ReplyBody::Written(result) => self.on_written(position, now_ns, result),
            ReplyBody::Read(answer) => self.on_read(position, now_ns, answer),
            ReplyBody::Redirect(hint) if current_attempt => {
                match hint {
                    Some(leader) if leader != self.target => {
                        self.target = leader;
                        return self.send(number, now_ns, random, limits);
                    }
                    _ => self.target = node_id(random.index(limits.node_count)),
                }
                self.back_off(position, now_ns, random)
            }
            ReplyBody::Busy if current_attempt => self.back_off(position, now_ns, random),
            ReplyBody::Redirect(_) | ReplyBody::Busy => Vec::new(),
        }
    }

    fn back_off(
        &mut self,
        position: usize,
        now_ns: u64,
        random: &mut SimRandom,
    ) -> Vec<ClientAction> {
        let pending = &mut self.in_flight[position];
        pending.backing_off = true;
        vec![ClientAction::Wake {
            at_ns: now_ns + random.between(5_000_000, 30_000_000),
            operation: pending.number,
            attempt: pending.attempt,
        }]
    }

    fn on_written(
        &mut self,
        position: usize,
        now_ns: u64,
        result: Result<Vec<u8>, SessionError>,
    ) -> Vec<ClientAction> {
        let Some(kind) = self.in_flight[position].kind else {
            // The session open: any answer but an error means it is open.
            return match result {
                Ok(_) => {
                    self.session_open = true;
                    self.in_flight.remove(position);
                    Vec::new()
                }
                Err(error) => vec![ClientAction::Anomaly(format!(
                    "client {} session open refused: {error}",
                    self.index
                ))],
            };
        };
        let answer = match result {
            Ok(bytes) => KvAnswer::decode(&bytes),
            Err(SessionError::Expired) => {
                // The session is gone, so an earlier copy may have applied:
                // the outcome is unknown. Reopen before the next operation.
                self.session_open = false;
                return self.finish(position, now_ns, Outcome::Unknown, Output::None);
            }
            Err(error) => {
                let mut actions = self.finish(position, now_ns, Outcome::Unknown, Output::None);
                actions.push(ClientAction::Anomaly(format!(
                    "client {} write refused by the session table: {error}",
                    self.index
                )));
                return actions;
            }
        };
        match (kind, answer) {
            (OperationKind::Put | OperationKind::Delete, KvAnswer::Done) => {
                self.finish(position, now_ns, Outcome::Ok, Output::None)
            }
            (OperationKind::Cas, KvAnswer::Swapped(swapped)) => {
                self.finish(position, now_ns, Outcome::Ok, Output::Cas(swapped))
            }
            (_, answer) => {
                let mut actions = self.finish(position, now_ns, Outcome::Unknown, Output::None);
                actions.push(ClientAction::Anomaly(format!(
                    "client {} {kind:?} answered {answer:?}",
                    self.index
                )));
                actions
            }
        }
    }

    fn on_read(&mut self, position: usize, now_ns: u64, answer: KvAnswer) -> Vec<ClientAction> {
        if self.in_flight[position].kind != Some(OperationKind::Get) {
            return vec![ClientAction::Anomaly(format!(
                "client {} got a read answer for a write",
                self.index
            ))];
        }
        match answer {
            KvAnswer::Value(value) => {
                self.finish(position, now_ns, Outcome::Ok, Output::Value(value))
            }
            other => {
                let mut actions =
                    self.finish(position, now_ns, Outcome::Failed, Output::Value(None));
                actions.push(ClientAction::Anomaly(format!(
                    "client {} get answered {other:?}",
                    self.index
                )));
                actions
            }
        }
    }

    /// Gives up on every operation in flight: a write's outcome is
    /// unknown, a read failed.
    pub(super) fn give_up(&mut self, now_ns: u64) -> Vec<ClientAction> {
        let mut actions = Vec::new();
        while !self.in_flight.is_empty() {
            actions.extend(self.abandon(0, now_ns));
        }
        actions
    }

    /// Gives up on the operation at `position`.
    fn abandon(&mut self, position: usize, now_ns: u64) -> Vec<ClientAction> {
        match self.in_flight[position].kind {
            None => {
                self.in_flight.remove(position);
                Vec::new()
            }
            Some(OperationKind::Get) => {
                self.finish(position, now_ns, Outcome::Failed, Output::Value(None))
            }
            Some(_) => self.finish(position, now_ns, Outcome::Unknown, Output::None),
        }
    }

    /// Ends the operation at `position` and records it.
    fn finish(
        &mut self,
        position: usize,
        now_ns: u64,
        outcome: Outcome,
        output: Output,
    ) -> Vec<ClientAction> {
        let pending = self.in_flight.remove(position);
        let kind = pending
            .kind
            .expect("the session open is not recorded in the history");
        self.remember(kind, &pending, outcome, &output);
        let acknowledged = match (outcome, &pending.command) {
            (Outcome::Ok, Some(command)) => Some(command.seq),
            _ => None,
        };
        let output = match (kind, outcome) {
            (OperationKind::Get, _) => output,
            (_, Outcome::Ok) => output,
            _ => Output::None,
        };
        let operation = Operation {
            client: self.index as u64,
            kind,
            key: pending.key,
            value: pending.value,
            expected: pending.expected,
            output,
            invoke_ns: pending.invoke_ns,
            complete_ns: now_ns,
            outcome,
        };
        vec![ClientAction::Done {
            operation,
            acknowledged,
        }]
    }

    /// Updates the client's idea of each key's value for later cas guesses.
    fn remember(
        &mut self,
        kind: OperationKind,
        pending: &Pending,
        outcome: Outcome,
        output: &Output,
    ) {
        let key = pending.key.clone();
        match (kind, outcome, output) {
            (OperationKind::Get, Outcome::Ok, Output::Value(value)) => {
                self.last_seen.insert(key, value.clone());
            }
            (OperationKind::Put, Outcome::Ok, _)
            | (OperationKind::Cas, Outcome::Ok, Output::Cas(true)) => {
                self.last_seen.insert(key, pending.value.clone());
            }
            (OperationKind::Delete, Outcome::Ok, _) => {
                self.last_seen.insert(key, None);
            }
            _ => {}
        }
    }
}

/// The node id of the replica at `index` (ids are 1..=N).
pub(super) fn node_id(index: usize) -> NodeId {
    NodeId(u8::try_from(index + 1).expect("at most 64 replicas"))
}
