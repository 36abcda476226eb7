//! The deterministic simulator (feature `sim`).
//!
//! [`run_workload`] drives a cluster of [`crate::paxos::Replica`]s, each
//! with a [`Workload`]'s state machine under the session table, a simulated
//! disk and a drifting local clock, plus a set of closed-loop clients that
//! ask the workload what to do, on virtual time with one seeded random
//! generator. [`run`] does the same with the built-in [`KvWorkload`] (the
//! replicated kv store and its linearizability check). A run injects the
//! faults a [`SimConfig`] allows (message drop, duplication, reordering and
//! delay spikes; partitions; crashes that lose, keep or tear at any byte
//! the write in flight; flipped bits in synced records; slow and full
//! disks; clock drift), or a scripted [`Schedule`] of them, then heals
//! everything and requires progress.
//!
//! Each replica's disk is synod-log's real `Log` over its in-memory block
//! device `MemStorage` (small segments, so runs roll over, recycle and
//! compact them): writes, crashes, torn writes, corruption and recovery all
//! go through the real record format and recovery code, and a replica
//! whose recovery dropped anything restarts as a non-voter because the log
//! says so (its durable `recovering` flag). The group commit runs as the
//! runtime will run it: one write and one sync in flight per replica, the
//! next group built meanwhile (see `disk.rs`).
//!
//! It checks, for every workload, and reports as [`Violation`]s:
//!
//! - agreement: one batch per slot across all replicas and incarnations;
//! - apply order: each replica applies slots in order, each once;
//! - identical state: equal outcomes per slot and equal snapshots at equal
//!   slots, and equal final states;
//! - no acknowledged write missing from the committed log;
//! - the workload's own check of its client history ([`Workload::check`];
//!   for [`KvWorkload`], linearizability);
//! - liveness once the faults heal, and convergence of every replica;
//! - no replica panic (a panic is caught and reported with the seed).
//!
//! The same seed and configuration replay exactly: every random decision
//! goes through one generator in event order (a workload draws through the
//! [`Random`] it is handed), and no hash map is iterated.
//!
//! # Testing your own state machine
//!
//! Implement [`Workload`] for your [`crate::sm::StateMachine`]: make a
//! machine, pick each client's next operation (a [`Request::Write`] goes
//! through the log, a [`Request::Read`] is served by `query`), record how
//! each ended, and check the history at the end. A counter whose reads
//! must never go backwards for one client:
//!
//! ```
//! use synod_engine::sim::{
//!     self, Completed, HistoryVerdict, Outcome, Random, Recorded, Request, Response,
//!     SimConfig, Workload,
//! };
//! use synod_engine::sm::{QueryError, SnapshotError, StateMachine};
//! use synod_engine::wire::Slot;
//!
//! /// Adds one per command; reads return the count.
//! #[derive(Debug, Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _slot: Slot, _payload: &[u8]) -> Vec<u8> {
//!         self.0 += 1;
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn query(&self, _request: &[u8]) -> Result<Vec<u8>, QueryError> {
//!         Ok(self.0.to_le_bytes().to_vec())
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
//!         let bytes = snapshot.try_into().map_err(|_| SnapshotError::Malformed {
//!             reason: "not 8 bytes".to_owned(),
//!         })?;
//!         self.0 = u64::from_le_bytes(bytes);
//!         Ok(())
//!     }
//! }
//!
//! /// Increments and reads; each client's reads must not go backwards.
//! #[derive(Default)]
//! struct Counting {
//!     last_read: Vec<u64>,
//!     backwards: Option<String>,
//! }
//!
//! impl Workload for Counting {
//!     type Machine = Counter;
//!     type Operation = bool; // true: a read
//!
//!     fn machine(&mut self) -> Counter {
//!         Counter::default()
//!     }
//!     fn next_operation(&mut self, _client: usize, random: &mut Random) -> (bool, Request) {
//!         match random.chance(500_000) {
//!             true => (true, Request::Read { query: Vec::new() }),
//!             false => (false, Request::Write { payload: Vec::new() }),
//!         }
//!     }
//!     fn record(&mut self, completed: Completed<bool>) -> Recorded {
//!         let outcome = match &completed.response {
//!             Response::Applied(_) => Outcome::Ok,
//!             Response::Read(Ok(bytes)) => {
//!                 let value = u64::from_le_bytes(bytes[..8].try_into().unwrap());
//!                 self.last_read.resize(self.last_read.len().max(completed.client + 1), 0);
//!                 if value < self.last_read[completed.client] {
//!                     self.backwards = Some(format!("client {} read {value}", completed.client));
//!                 }
//!                 self.last_read[completed.client] = value;
//!                 Outcome::Ok
//!             }
//!             Response::Unknown => Outcome::Unknown,
//!             Response::Read(Err(_)) | Response::Unanswered => Outcome::Failed,
//!         };
//!         Recorded {
//!             outcome,
//!             description: format!("read {}", completed.operation),
//!             answer: format!("{:?}", completed.response),
//!             anomaly: None,
//!         }
//!     }
//!     fn check(&mut self) -> HistoryVerdict {
//!         match self.backwards.take() {
//!             None => HistoryVerdict::Passed,
//!             Some(description) => HistoryVerdict::Failed { description },
//!         }
//!     }
//! }
//!
//! let config = SimConfig { seed: 1, operations_min: 100, ..SimConfig::default() };
//! let report = sim::run_workload(&config, &mut Counting::default());
//! assert!(report.passed(), "{:?}", report.violations);
//! ```
//!
//! Invariants:
//! - Nothing here reads a clock, a socket, a file or an OS random source.
//! - A run never panics out of [`run`] or [`run_workload`]: replica and
//!   workload panics become violations.

#![forbid(unsafe_code)]

mod checker;
mod client;
mod clock;
mod config;
mod disk;
mod envelope;
mod fault;
mod history;
mod kv_workload;
mod machine;
mod network;
mod node;
mod node_ready;
mod queue;
mod random;
mod report;
mod trace;
mod verdict;
mod workload;
mod world;
mod world_faults;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use config::{FaultRates, FaultSet, FaultSetParseError, SimConfig};
pub use fault::{DiskLoss, Fault, FaultCounts, NodeTarget, Partition, Schedule};
pub use history::{Operation, OperationKind, Outcome, Output};
pub use kv_workload::KvWorkload;
pub use random::Random;
pub use report::{RunStats, SimReport, Violation, ViolationKind};
pub use workload::{Completed, HistoryVerdict, Recorded, Request, Response, Workload};

use world::World;

/// Runs one simulation of the built-in [`KvWorkload`] and checks it; the
/// report carries the kv client history.
///
/// Never panics for a replica's sake: a panic inside the run (a protocol
/// core assertion) is caught and reported as a [`ViolationKind::Panic`]
/// violation, with the trace up to it.
///
/// # Panics
/// When `config` asks for fewer than 1 or more than 64 replicas or for no
/// clients (a caller bug).
#[must_use]
pub fn run(config: &SimConfig) -> SimReport {
    let mut workload = KvWorkload::new(config);
    let mut report = run_workload(config, &mut workload);
    report.history = workload.into_history();
    report
}

/// Runs one simulation of `workload` and checks it. The report's `history`
/// is empty: the workload keeps its own.
///
/// Never panics for a replica's or the workload's sake: a panic inside the
/// run (a protocol core assertion, or one in the workload's callbacks) is
/// caught and reported as a [`ViolationKind::Panic`] violation, with the
/// trace up to it.
///
/// # Panics
/// When `config` asks for fewer than 1 or more than 64 replicas or for no
/// clients (a caller bug).
#[must_use]
pub fn run_workload<W: Workload>(config: &SimConfig, workload: &mut W) -> SimReport {
    assert!(
        (1..=64).contains(&config.replicas),
        "a group has 1 to 64 replicas"
    );
    assert!(config.clients > 0, "a run needs at least one client");
    let mut world = World::new(config, workload);
    let outcome = catch_unwind(AssertUnwindSafe(|| world.run()));
    match outcome {
        Ok(()) => {
            if world.phase_finished() {
                let checks = catch_unwind(AssertUnwindSafe(|| world.final_checks()));
                if let Err(payload) = checks {
                    world.report_panic(&payload);
                }
            }
        }
        Err(payload) => world.report_panic(&payload),
    }
    world.into_report()
}

impl<W: Workload> World<'_, W> {
    fn phase_finished(&self) -> bool {
        self.phase == world::Phase::Finished
    }

    fn report_panic(&mut self, payload: &Box<dyn std::any::Any + Send>) {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| {
                payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
            })
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let description = format!("seed {}: panic: {message}", self.config.seed);
        self.trace.record(
            self.now_ns,
            trace::TraceEvent::Violation {
                description: description.clone(),
            },
        );
        self.checker
            .violation(ViolationKind::Panic, self.now_ns, description);
    }
}
