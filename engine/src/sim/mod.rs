//! The deterministic simulator (feature `sim`).
//!
//! [`run`] drives a cluster of [`crate::paxos::Replica`]s, each with the
//! replicated kv store, a simulated disk and a drifting local clock, plus a
//! set of closed-loop clients, on virtual time with one seeded random
//! generator. It injects the faults a [`SimConfig`] allows (message drop,
//! duplication, reordering and delay spikes; partitions; crashes with lost,
//! kept or torn unsynced writes; corrupt records; clock drift), or a
//! scripted [`Schedule`] of them, then heals everything and requires
//! progress. It checks, and reports as [`Violation`]s:
//!
//! - agreement: one batch per slot across all replicas and incarnations;
//! - apply order: each replica applies slots in order, each once;
//! - identical state: equal outcomes per slot and equal snapshots at equal
//!   slots, and equal final states;
//! - no acknowledged write missing from the committed log;
//! - linearizability of the client history;
//! - liveness once the faults heal, and convergence of every replica;
//! - no replica panic (a panic is caught and reported with the seed).
//!
//! The same seed and configuration replay exactly: every random decision
//! goes through one generator in event order, and no hash map is iterated.
//!
//! Invariants:
//! - Nothing here reads a clock, a socket, a file or an OS random source.
//! - A run never panics out of [`run`]: replica panics become violations.

#![forbid(unsafe_code)]

mod checker;
mod client;
mod clock;
mod config;
mod disk;
mod envelope;
mod fault;
mod history;
mod machine;
mod network;
mod node;
mod node_ready;
mod queue;
mod random;
mod report;
mod trace;
mod verdict;
mod world;
mod world_faults;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use config::{FaultRates, FaultSet, FaultSetParseError, SimConfig};
pub use fault::{DiskLoss, Fault, FaultCounts, NodeTarget, Partition, Schedule};
pub use history::{Operation, OperationKind, Outcome, Output};
pub use report::{RunStats, SimReport, Violation, ViolationKind};

use world::World;

/// Runs one simulation and checks it.
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
    assert!(
        (1..=64).contains(&config.replicas),
        "a group has 1 to 64 replicas"
    );
    assert!(config.clients > 0, "a run needs at least one client");
    let mut world = World::new(config);
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

impl World<'_> {
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
