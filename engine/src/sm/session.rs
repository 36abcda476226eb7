//! Client sessions and [`Replicated`], the session table and a state machine
//! applied together.
//!
//! Every client command carries (client id, sequence number, acknowledged
//! below). A pipelined client has many commands in flight and retries them
//! across leader changes, so one command may be committed in several slots
//! and sequence numbers may commit out of order; the session table makes
//! each one apply exactly once and answers every retry with the first
//! result. A session opens with sequence number 0 and expires after
//! `ttl_ns` without a command. Time is the log's clock: the highest leader
//! timestamp among the applied batches, so every replica expires the same
//! sessions at the same slot.
//!
//! A client must see its open (sequence number 0) applied before it sends
//! more: a command whose session is not open yet is answered
//! [`SessionError::Expired`], like one whose session expired.
//!
//! Invariants:
//! - Committed slots are applied in order, each once: `apply` takes exactly
//!   the slot after the last one applied.
//! - A command is passed to the machine at most once per (client id,
//!   sequence number) while its session stays open (unless the simulator's
//!   deliberate bug is switched on).
//! - A snapshot is taken and restored whole: the machine, the table and the
//!   applied slot always describe the same point in the log.

mod table;
#[cfg(test)]
mod tests;

use self::table::{Decision, SessionTable};
use super::codec::{Reader, Writer};
use super::{QueryError, SnapshotError, StateMachine};
use crate::wire::{Batch, ClientId, Seq, Slot, Snapshot};

/// The version byte of the snapshot encoding.
const SNAPSHOT_VERSION: u8 = 1;

/// The session table's limits. Every replica of a group must use the same
/// values: they decide outcomes, so they are part of the replicated state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SessionConfig {
    /// A session expires when the log's clock passes its last command by
    /// more than this. Default 60 s.
    pub ttl_ns: u64,
    /// A client may have at most this many sequence numbers at or above its
    /// acknowledged-below mark; this bounds the results remembered per
    /// session. Default 1024.
    pub window_seq_count: u64,
    /// The most sessions the table holds; opening one more evicts the least
    /// recently active. Default 65536.
    pub sessions_max: usize,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            ttl_ns: 60 * 1_000_000_000,
            window_seq_count: 1024,
            sessions_max: 65_536,
        }
    }
}

/// Why a command was not applied.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The client's session is not open: it expired, was evicted, or was
    /// never opened. The client must open a new session.
    #[error("the client's session has expired or was never opened")]
    Expired,
    /// The sequence number is below the session's acknowledged-below mark:
    /// the client already had its answer, and the table has forgotten it.
    #[error("the sequence number was already acknowledged by the client")]
    AlreadyAcknowledged,
    /// The sequence number is `window_seq_count` or more above the
    /// acknowledged-below mark.
    #[error("the sequence number is beyond the session's window")]
    WindowExceeded,
}

/// The outcome of one command of an applied batch, for the driver to send
/// back to the client.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommandOutcome {
    /// The command's client.
    pub client_id: ClientId,
    /// The command's sequence number.
    pub seq: Seq,
    /// The machine's response (the first one, for a retry), or why the
    /// command was not applied.
    pub result: Result<Vec<u8>, SessionError>,
}

/// A state machine with the session table beneath it: what a replica's
/// driver applies committed batches to.
#[derive(Debug)]
pub struct Replicated<M: StateMachine> {
    machine: M,
    sessions: SessionTable,
    config: SessionConfig,
    /// The last slot applied; slot 0 means none.
    applied: Slot,
    /// Batches that failed validation and were skipped as no-ops.
    invalid_batch_count: u64,
    /// The simulator's deliberate bug: a retry is applied again.
    #[cfg(feature = "sim")]
    bug_apply_retries_twice: bool,
}

impl<M: StateMachine> Replicated<M> {
    /// Wraps `machine`, which must be in its initial state, with an empty
    /// session table; nothing is applied yet.
    ///
    /// # Panics
    /// When `config.window_seq_count` or `config.sessions_max` is zero.
    #[must_use]
    pub fn new(machine: M, config: SessionConfig) -> Replicated<M> {
        assert!(
            config.window_seq_count > 0,
            "a session's window holds at least one command"
        );
        assert!(
            config.sessions_max > 0,
            "the table holds at least one session"
        );
        Replicated {
            machine,
            sessions: SessionTable::default(),
            config,
            applied: Slot(0),
            invalid_batch_count: 0,
            #[cfg(feature = "sim")]
            bug_apply_retries_twice: false,
        }
    }

    /// Applies the committed batch of `slot`: expires idle sessions against
    /// the batch's timestamp, then runs each command through the session
    /// table and, if it is new, the machine. Returns one outcome per command,
    /// in order. A no-op batch only advances the applied slot; so does a
    /// batch that fails validation (every replica fails it alike), which is
    /// counted in [`Replicated::invalid_batch_count`].
    ///
    /// # Panics
    /// When `slot` is not the slot after [`Replicated::applied_slot`]: the
    /// driver must apply committed slots in order, each once.
    pub fn apply(&mut self, slot: Slot, batch: &Batch) -> Vec<CommandOutcome> {
        assert_eq!(
            slot,
            self.applied.next(),
            "committed slots are applied in order, once"
        );
        self.applied = slot;
        if batch.is_empty() {
            return Vec::new();
        }
        let Ok(body) = batch.access() else {
            self.invalid_batch_count += 1;
            return Vec::new();
        };
        self.sessions.advance_clock(body.proposed_at_ns.to_native());
        self.sessions.expire(self.config.ttl_ns);
        let mut outcomes = Vec::with_capacity(body.commands.len());
        for command in body.commands.iter() {
            let client_id = ClientId(command.client_id.to_native());
            let seq = Seq(command.seq.to_native());
            let acknowledged_below = Seq(command.acknowledged_below.to_native());
            let result =
                self.apply_command(slot, client_id, seq, acknowledged_below, &command.payload);
            outcomes.push(CommandOutcome {
                client_id,
                seq,
                result,
            });
        }
        assert!(
            self.sessions.len() <= self.config.sessions_max,
            "the table stays within its limit"
        );
        outcomes
    }

    /// Runs one command through the session table and, if new, the machine.
    fn apply_command(
        &mut self,
        slot: Slot,
        client_id: ClientId,
        seq: Seq,
        acknowledged_below: Seq,
        payload: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        if seq == Seq(0) {
            self.sessions.open(client_id, self.config.sessions_max);
            return Ok(Vec::new());
        }
        let window_seq_count = self.config.window_seq_count;
        let session = self
            .sessions
            .session_mut(client_id)
            .ok_or(SessionError::Expired)?;
        session.acknowledge_below(acknowledged_below);
        let decision = session.decide(seq, window_seq_count);
        self.sessions.touch(client_id);
        match decision {
            Decision::AlreadyAcknowledged => Err(SessionError::AlreadyAcknowledged),
            Decision::WindowExceeded => Err(SessionError::WindowExceeded),
            Decision::Remembered(first) if !self.applies_retries_twice() => Ok(first),
            Decision::Remembered(_) | Decision::Fresh => {
                let result = self.machine.apply(slot, payload);
                let replace = self.applies_retries_twice();
                self.sessions
                    .remember(client_id, seq, result.clone(), window_seq_count, replace);
                Ok(result)
            }
        }
    }

    /// The answer to a retry of (`client_id`, `seq`) if the table already
    /// decides it, so the driver can answer without proposing the command
    /// again: the first result of an applied command, or
    /// [`SessionError::AlreadyAcknowledged`] below the mark. `None` when the
    /// log must decide (not applied yet, a session not open here yet, or an
    /// open, sequence number 0).
    #[must_use]
    pub fn cached_result(
        &self,
        client_id: ClientId,
        seq: Seq,
    ) -> Option<Result<Vec<u8>, SessionError>> {
        if seq == Seq(0) {
            return None;
        }
        self.sessions.session(client_id)?.cached(seq)
    }

    /// Answers a read-only request from the machine's current state; call it
    /// only when the replica says the read is safe.
    ///
    /// # Errors
    /// The machine's [`QueryError`].
    pub fn query(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        self.machine.query(request)
    }

    /// The last slot applied (or restored); slot 0 means none.
    #[must_use]
    pub fn applied_slot(&self) -> Slot {
        self.applied
    }

    /// The state machine.
    #[must_use]
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The number of open sessions.
    #[must_use]
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// True when `client_id` has an open session.
    #[must_use]
    pub fn has_session(&self, client_id: ClientId) -> bool {
        self.sessions.session(client_id).is_some()
    }

    /// The log's clock: the highest batch timestamp applied so far.
    #[must_use]
    pub fn clock_ns(&self) -> u64 {
        self.sessions.clock_ns()
    }

    /// How many batches this instance skipped because they failed
    /// validation. A local diagnostic: not part of snapshots.
    #[must_use]
    pub fn invalid_batch_count(&self) -> u64 {
        self.invalid_batch_count
    }

    /// The session limits in force.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// A snapshot at the applied slot: the session table and the machine's
    /// snapshot. Two replicas at the same slot give identical bytes.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let mut writer = Writer::new();
        writer.u8(SNAPSHOT_VERSION);
        writer.u64(self.applied.0);
        self.sessions.encode(&mut writer);
        writer.bytes(&self.machine.snapshot());
        Snapshot {
            slot: self.applied,
            bytes: Batch::copy_from_slice(&writer.finish()),
        }
    }

    /// Replaces the whole state (machine, session table, applied slot) with
    /// a snapshot's; the applied slot becomes `snapshot.slot`, which may be
    /// below the current one (the driver decides when to restore).
    ///
    /// # Errors
    /// [`SnapshotError`] when the bytes are malformed, name a slot other
    /// than `snapshot.slot`, hold a table this replica's [`SessionConfig`]
    /// could not have produced, or the machine refuses its part. Nothing
    /// changes then.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        let mut reader = Reader::new(snapshot.bytes.as_bytes());
        let version = reader.u8()?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { version });
        }
        let slot = Slot(reader.u64()?);
        if slot != snapshot.slot {
            return Err(SnapshotError::Malformed {
                reason: format!(
                    "the bytes are of slot {slot}, the snapshot says {}",
                    snapshot.slot
                ),
            });
        }
        let sessions = SessionTable::decode(&mut reader, &self.config)?;
        let machine_bytes = reader.bytes()?;
        reader.finish()?;
        // The machine goes last: it is the one part that could fail after
        // changing something, and it promises not to.
        self.machine.restore(machine_bytes)?;
        self.sessions = sessions;
        self.applied = slot;
        assert_eq!(
            self.applied, snapshot.slot,
            "a restore moves to the snapshot's slot"
        );
        Ok(())
    }

    /// The simulator's deliberate bug: when on, a retry of an applied
    /// command is applied to the machine again instead of being answered
    /// from the table. The simulator must catch it.
    #[cfg(feature = "sim")]
    pub fn set_bug_apply_retries_twice(&mut self, on: bool) {
        self.bug_apply_retries_twice = on;
    }

    #[cfg(feature = "sim")]
    fn applies_retries_twice(&self) -> bool {
        self.bug_apply_retries_twice
    }

    #[cfg(not(feature = "sim"))]
    fn applies_retries_twice(&self) -> bool {
        false
    }
}
