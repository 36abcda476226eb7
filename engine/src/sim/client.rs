//! A simulated client: a closed loop of the workload's operations, up to
//! a small pipeline of them at a time, each retried with the same (client
//! id, sequence number) until it is answered or the client gives up.
//!
//! Invariants:
//! - A write ends [`Response::Applied`] only when a replica answered it;
//!   [`Response::Unknown`] when the client gave up or its session was
//!   refused; never as failed (no answer proves a write did not apply).
//! - A read that is not answered ends [`Response::Unanswered`]: a read has
//!   no effect.
//! - Sequence numbers rise by one per write; a retry reuses its number.

use crate::sm::{QueryError, SessionError};
use crate::wire::{ClientId, Command, NodeId};

use super::envelope::{ClientReply, ClientRequest, ReplyBody, RequestBody, RequestId};
use super::random::Random;
use super::workload::{Completed, Request, Response, Workload};

/// What a client asks the world to do.
#[derive(Debug)]
pub(super) enum ClientAction<O> {
    /// Send a request to a replica.
    Send { to: NodeId, request: ClientRequest },
    /// Wake the client at this time for this attempt (a timeout or a backoff).
    Wake {
        at_ns: u64,
        operation: u64,
        attempt: u32,
    },
    /// An operation ended, for the workload to record; `seq` is a write's
    /// sequence number.
    Done {
        completed: Completed<O>,
        seq: Option<u64>,
    },
    /// The cluster answered something a correct cluster never does.
    Anomaly(String),
}

/// The operation a client is working on.
#[derive(Debug)]
struct Pending<O> {
    number: u64,
    /// `None` for the session open, which is not part of the history.
    operation: Option<O>,
    /// What each attempt sends.
    body: RequestBody,
    invoke_ns: u64,
    attempt: u32,
    backing_off: bool,
}

impl<O> Pending<O> {
    /// The write's sequence number; `None` for a read.
    fn seq(&self) -> Option<u64> {
        match &self.body {
            RequestBody::Write(command) => Some(command.seq),
            RequestBody::Read { .. } => None,
        }
    }
}

/// Timings and limits every client uses.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClientLimits {
    pub(super) request_timeout_ns: u64,
    pub(super) attempts_max: u32,
    pub(super) node_count: usize,
    /// Operations a client keeps in flight at once (at least 1).
    pub(super) pipeline_depth: usize,
}

/// One client.
#[derive(Debug)]
pub(super) struct Client<O> {
    index: usize,
    id: ClientId,
    next_seq: u64,
    session_open: bool,
    target: NodeId,
    operations: u64,
    /// The operations in flight, oldest first.
    in_flight: Vec<Pending<O>>,
}

impl<O> Client<O> {
    /// A client with a random session id that will first open its session.
    pub(super) fn new(index: usize, random: &mut Random, node_count: usize) -> Client<O> {
        let target = node_id(random.index(node_count));
        Client {
            index,
            id: ClientId(random.next_u64() | 1),
            next_seq: 0,
            session_open: false,
            target,
            operations: 0,
            in_flight: Vec::new(),
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

    /// Starts the next operation: the session open first, then whatever
    /// the workload asks for.
    pub(super) fn start<W: Workload<Operation = O>>(
        &mut self,
        now_ns: u64,
        random: &mut Random,
        limits: &ClientLimits,
        workload: &mut W,
    ) -> Vec<ClientAction<O>> {
        assert!(self.can_start(limits), "the pipeline has room");
        self.operations += 1;
        let pending = if self.session_open {
            self.next_operation(now_ns, random, workload)
        } else {
            self.open_operation(now_ns)
        };
        let number = pending.number;
        self.in_flight.push(pending);
        self.send(number, now_ns, random, limits)
    }

    fn open_operation(&mut self, now_ns: u64) -> Pending<O> {
        self.next_seq = 1;
        let command = Command {
            client_id: self.id.0,
            seq: 0,
            acknowledged_below: 0,
            payload: Vec::new(),
        };
        Pending {
            number: self.operations,
            operation: None,
            body: RequestBody::Write(command),
            invoke_ns: now_ns,
            attempt: 0,
            backing_off: false,
        }
    }

    fn next_operation<W: Workload<Operation = O>>(
        &mut self,
        now_ns: u64,
        random: &mut Random,
        workload: &mut W,
    ) -> Pending<O> {
        let (operation, request) = workload.next_operation(self.index, random);
        let body = match request {
            Request::Read { query } => RequestBody::Read { query },
            Request::Write { payload } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                // Every write below the oldest one in flight has been
                // answered (or given up on, which the session table may
                // then refuse).
                let acknowledged_below = self
                    .in_flight
                    .iter()
                    .filter_map(Pending::seq)
                    .min()
                    .unwrap_or(seq);
                RequestBody::Write(Command {
                    client_id: self.id.0,
                    seq,
                    acknowledged_below,
                    payload,
                })
            }
        };
        Pending {
            number: self.operations,
            operation: Some(operation),
            body,
            invoke_ns: now_ns,
            attempt: 0,
            backing_off: false,
        }
    }

    /// Sends operation `number`'s next attempt to the current target.
    fn send(
        &mut self,
        number: u64,
        now_ns: u64,
        random: &mut Random,
        limits: &ClientLimits,
    ) -> Vec<ClientAction<O>> {
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
        let body = pending.body.clone();
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
        random: &mut Random,
        limits: &ClientLimits,
    ) -> Vec<ClientAction<O>> {
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
        random: &mut Random,
        limits: &ClientLimits,
    ) -> Vec<ClientAction<O>> {
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
        random: &mut Random,
    ) -> Vec<ClientAction<O>> {
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
    ) -> Vec<ClientAction<O>> {
        let pending = &self.in_flight[position];
        if pending.operation.is_none() {
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
        }
        if pending.seq().is_none() {
            return vec![ClientAction::Anomaly(format!(
                "client {} got a write answer for a read",
                self.index
            ))];
        }
        match result {
            Ok(bytes) => self.finish(position, now_ns, Response::Applied(bytes)),
            Err(SessionError::Expired) => {
                // The session is gone, so an earlier copy may have applied:
                // the outcome is unknown. Reopen before the next operation.
                self.session_open = false;
                self.finish(position, now_ns, Response::Unknown)
            }
            Err(error) => {
                let mut actions = self.finish(position, now_ns, Response::Unknown);
                actions.push(ClientAction::Anomaly(format!(
                    "client {} write refused by the session table: {error}",
                    self.index
                )));
                actions
            }
        }
    }

    fn on_read(
        &mut self,
        position: usize,
        now_ns: u64,
        answer: Result<Vec<u8>, QueryError>,
    ) -> Vec<ClientAction<O>> {
        if self.in_flight[position].seq().is_some() {
            return vec![ClientAction::Anomaly(format!(
                "client {} got a read answer for a write",
                self.index
            ))];
        }
        self.finish(position, now_ns, Response::Read(answer))
    }

    /// Gives up on every operation in flight: a write's outcome is
    /// unknown, a read failed.
    pub(super) fn give_up(&mut self, now_ns: u64) -> Vec<ClientAction<O>> {
        let mut actions = Vec::new();
        while !self.in_flight.is_empty() {
            actions.extend(self.abandon(0, now_ns));
        }
        actions
    }

    /// Gives up on the operation at `position`.
    fn abandon(&mut self, position: usize, now_ns: u64) -> Vec<ClientAction<O>> {
        let pending = &self.in_flight[position];
        if pending.operation.is_none() {
            self.in_flight.remove(position);
            return Vec::new();
        }
        let response = match pending.seq() {
            Some(_) => Response::Unknown,
            None => Response::Unanswered,
        };
        self.finish(position, now_ns, response)
    }

    /// Ends the operation at `position`, for the workload to record.
    fn finish(&mut self, position: usize, now_ns: u64, response: Response) -> Vec<ClientAction<O>> {
        let pending = self.in_flight.remove(position);
        let seq = pending.seq();
        let operation = pending
            .operation
            .expect("the session open is not recorded in the history");
        let completed = Completed {
            client: self.index,
            operation,
            response,
            invoke_ns: pending.invoke_ns,
            complete_ns: now_ns,
        };
        vec![ClientAction::Done { completed, seq }]
    }
}

/// The node id of the replica at `index` (ids are 1..=N).
pub(super) fn node_id(index: usize) -> NodeId {
    NodeId(u8::try_from(index + 1).expect("at most 64 replicas"))
}
