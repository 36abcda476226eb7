//! What a run reports: counts, the client history, the trace, and every
//! [`Violation`] its checks found.

use std::fmt;

use super::fault::FaultCounts;
use super::history::Operation;

/// Which check a violation broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Two replicas committed different batches for one slot.
    Agreement,
    /// A replica applied slots out of order, twice, or restored backwards.
    ApplyOrder,
    /// Replicas at the same applied slot hold different states, or applying
    /// one slot gave different outcomes.
    Divergence,
    /// A write acknowledged to its client is not in the committed log.
    LostWrite,
    /// The client history is not linearizable (for another workload: its
    /// history check failed, [`super::HistoryVerdict::Failed`]).
    NotLinearizable,
    /// The history checker ran out of budget: no verdict.
    CheckInconclusive,
    /// After the faults healed, no write committed in time, or replicas did
    /// not converge.
    Liveness,
    /// A replica panicked (the protocol core asserts its invariants).
    Panic,
    /// A restart broke what the disk knows was made durable: it was not
    /// flagged damaged yet lost a durable vote, or it forgot a damage the
    /// replica had not cleared, or the disk mispredicted whether it would
    /// be damaged (see the simulator's `disk/oracle.rs`).
    Recovery,
    /// A replica answered a client in a way a correct cluster never does,
    /// or the simulator found itself in a state its design rules out.
    Unexpected,
}

/// One broken check, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The check.
    pub kind: ViolationKind,
    /// When it was seen, virtual nanoseconds.
    pub time_ns: u64,
    /// What was seen.
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at {:.3}s: {}",
            self.kind,
            self.time_ns as f64 / 1e9,
            self.description
        )
    }
}

/// What the replicas did during a run, to show what a run exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Batches of client commands proposed.
    pub batches_proposed: u64,
    /// Client commands in those batches.
    pub commands_proposed: u64,
    /// State machine snapshots taken.
    pub snapshots_taken: u64,
    /// Snapshots restored into a running replica's state machine (catch-up
    /// by snapshot, or a restart from a snapshot).
    pub snapshots_restored: u64,
    /// Linearizable reads served.
    pub reads_served: u64,
    /// Client commands committed in more than one slot (retries the
    /// session table must answer, not apply).
    pub commands_committed_twice: u64,
    /// Group commits the replicas' logs wrote (one write and one sync each).
    pub group_commits: u64,
    /// Times a persist item found the group being built full and waited
    /// for the next group commit.
    pub group_full_waits: u64,
    /// Loop turns at which a group commit waited for a full disk.
    pub disk_full_waits: u64,
}

impl RunStats {
    /// Adds another run's numbers to these.
    pub fn add(&mut self, other: &RunStats) {
        self.batches_proposed += other.batches_proposed;
        self.commands_proposed += other.commands_proposed;
        self.snapshots_taken += other.snapshots_taken;
        self.snapshots_restored += other.snapshots_restored;
        self.reads_served += other.reads_served;
        self.commands_committed_twice += other.commands_committed_twice;
        self.group_commits += other.group_commits;
        self.group_full_waits += other.group_full_waits;
        self.disk_full_waits += other.disk_full_waits;
    }
}

impl fmt::Display for RunStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batches {} commands {} (committed twice {}) snapshots taken {} restored {} reads served {} \
             group commits {} (full groups {}, waits for a full disk {})",
            self.batches_proposed,
            self.commands_proposed,
            self.commands_committed_twice,
            self.snapshots_taken,
            self.snapshots_restored,
            self.reads_served,
            self.group_commits,
            self.group_full_waits,
            self.disk_full_waits
        )
    }
}

/// Everything a run reports.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// The run's seed.
    pub seed: u64,
    /// Client operations in the history (session opens not counted).
    pub operations: u64,
    /// Operations that completed `ok`.
    pub operations_ok: u64,
    /// Operations whose outcome the client never learned.
    pub operations_unknown: u64,
    /// Operations that surely took no effect.
    pub operations_failed: u64,
    /// Slots chosen.
    pub commits: u64,
    /// Times a replica became leader.
    pub elections: u64,
    /// What the replicas did.
    pub stats: RunStats,
    /// Events the run processed.
    pub events: u64,
    /// The virtual time at the end of the run.
    pub virtual_ns: u64,
    /// Faults injected, per class.
    pub faults: FaultCounts,
    /// Every broken check; empty for a passing run.
    pub violations: Vec<Violation>,
    /// The kv client history, in completion order, from [`super::run`];
    /// empty from [`super::run_workload`], whose workload keeps its own.
    pub history: Vec<Operation>,
    /// The last events of the run, one short line each, oldest first.
    pub trace: Vec<String>,
}

impl SimReport {
    /// True when no check was broken.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The history as JSON lines, one operation per line.
    #[must_use]
    pub fn history_json_lines(&self) -> String {
        let mut text = String::new();
        for operation in &self.history {
            text.push_str(&operation.to_json_line());
            text.push('\n');
        }
        text
    }
}
