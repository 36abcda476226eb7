//! The state machine each simulated replica applies its log to: the
//! workload's machine under the session table.

use crate::sm::{
    CommandOutcome, QueryError, Replicated, SessionConfig, SessionError, StateMachine,
};
use crate::wire::{Batch, ClientId, Seq, Slot, Snapshot};

/// Sessions stay open through a whole run: clients are never idle that long.
const SESSION_TTL_NS: u64 = 3_600 * 1_000_000_000;

/// One replica's workload machine under the session table.
#[derive(Debug)]
pub(super) struct Store<M: StateMachine> {
    replicated: Replicated<M>,
}

impl<M: StateMachine> Store<M> {
    /// A store around `machine` (in its initial state); with
    /// `apply_retries_twice` the session table's deliberate bug is on.
    pub(super) fn new(machine: M, apply_retries_twice: bool) -> Store<M> {
        let config = SessionConfig {
            ttl_ns: SESSION_TTL_NS,
            ..SessionConfig::default()
        };
        let mut replicated = Replicated::new(machine, config);
        replicated.set_bug_apply_retries_twice(apply_retries_twice);
        Store { replicated }
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

    /// Answers a read-only query from the current state.
    pub(super) fn query(&self, query: &[u8]) -> Result<Vec<u8>, QueryError> {
        self.replicated.query(query)
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
