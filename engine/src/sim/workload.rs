//! What the simulator runs on the log: a [`Workload`] names the state
//! machine every replica applies, makes up the clients' operations, records
//! how each ended and checks the finished history. The built-in one is
//! [`super::KvWorkload`]; an embedder writes their own to test their machine.
//!
//! Invariants:
//! - A workload draws randomness only from the [`Random`] it is handed, and
//!   only inside the simulator's callbacks, so a seed replays exactly.
//! - The simulator calls [`Workload::record`] exactly once per operation
//!   that [`Workload::next_operation`] made, in completion order.

use std::fmt;

use crate::sm::{QueryError, StateMachine};

use super::history::Outcome;
use super::random::Random;

/// What a client asks the cluster for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A write: the payload goes through the log as a command and is
    /// applied by [`StateMachine::apply`] exactly once (the session table
    /// answers retries).
    Write {
        /// The command payload.
        payload: Vec<u8>,
    },
    /// A linearizable read: the leader confirms it may serve it
    /// (`Replica::read`), then answers with [`StateMachine::query`].
    Read {
        /// The query bytes.
        query: Vec<u8>,
    },
}

/// How the cluster answered an operation, as far as its client learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The write was applied: the machine's response bytes.
    Applied(Vec<u8>),
    /// The read was served: [`StateMachine::query`]'s answer.
    Read(Result<Vec<u8>, QueryError>),
    /// A write without a settling answer: its client gave up, or its
    /// session expired or was refused. It may or may not have taken effect.
    Unknown,
    /// A read its client gave up on: it had no effect.
    Unanswered,
}

/// One operation that ended, handed to [`Workload::record`].
#[derive(Clone, Debug)]
pub struct Completed<O> {
    /// The client's index, `0..SimConfig::clients`.
    pub client: usize,
    /// What [`Workload::next_operation`] returned for it.
    pub operation: O,
    /// How it ended.
    pub response: Response,
    /// When the client issued it, virtual nanoseconds.
    pub invoke_ns: u64,
    /// When the client learned its end (or gave up), virtual nanoseconds.
    pub complete_ns: u64,
}

/// What [`Workload::record`] tells the simulator about an ended operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The outcome as the history holds it. A write counts as acknowledged
    /// (and must be in the committed log) when this is [`Outcome::Ok`].
    pub outcome: Outcome,
    /// The operation, for the trace and for violation reports (for example
    /// `Put k3 "v1"`).
    pub description: String,
    /// Its answer, for the trace (for example `Ok None`).
    pub answer: String,
    /// An answer no correct cluster gives: reported as a
    /// [`super::ViolationKind::Unexpected`] violation.
    pub anomaly: Option<String>,
}

/// What [`Workload::check`] concluded about the finished history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryVerdict {
    /// The history is consistent with the workload's model.
    Passed,
    /// The history breaks the model: reported as a
    /// [`super::ViolationKind::NotLinearizable`] violation.
    Failed {
        /// What is wrong, with enough detail to find it in the history.
        description: String,
    },
    /// The check could not decide (it ran out of budget, say): reported as
    /// a [`super::ViolationKind::CheckInconclusive`] violation, because no
    /// verdict is not a pass.
    Unknown {
        /// Why there is no verdict.
        description: String,
    },
}

/// A state machine and the client workload that tests it in the simulator.
///
/// [`super::run_workload`] runs every replica's log into a fresh
/// [`Workload::Machine`] (under the session table), asks the workload for
/// each client operation, reports every end back to it, and at the end
/// asks it to check its history. The Paxos-level checks (agreement, apply
/// order, identical state at equal slots, no lost acknowledged write,
/// liveness, no panic) run for every workload; [`Workload::check`] adds the
/// machine's own consistency model on top.
pub trait Workload {
    /// The state machine every replica runs.
    type Machine: StateMachine;
    /// What the workload remembers of an operation while it is in flight.
    type Operation: fmt::Debug;

    /// A machine in its initial state, for a replica that starts or
    /// restarts (its log and snapshot then rebuild the state).
    fn machine(&mut self) -> Self::Machine;

    /// Client `client`'s next operation and the request that carries it.
    /// Every random choice must come from `random`.
    fn next_operation(&mut self, client: usize, random: &mut Random) -> (Self::Operation, Request);

    /// An operation ended: add it to the history and say how it ended.
    fn record(&mut self, completed: Completed<Self::Operation>) -> Recorded;

    /// Checks the finished history.
    fn check(&mut self) -> HistoryVerdict;
}
