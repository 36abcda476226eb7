//! synod-tests: integration tests and the simulate driver.
//!
//! Shared by the `simulate` binary and the `sim_*` tests: the deliberate
//! bugs by name, and a compact summary of a failing run.

use synod_engine::paxos::Config;
use synod_engine::sim::{
    DiskLoss, Fault, FaultSet, NodeTarget, Partition, Schedule, SimConfig, SimReport,
};

/// A deliberate bug the simulator must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Bug {
    /// A new leader ignores the accepted values reported in promises.
    IgnorePromisedValues,
    /// Acceptors reply to prepares and accepts before the state is durable.
    ReplyBeforePersist,
    /// Acceptors promise while a lease they granted runs, and do not wait
    /// out leases after a restart.
    SkipLeaseWait,
    /// The session table applies a retry of an applied command again.
    ApplyRetryTwice,
}

impl Bug {
    /// Every bug, in a fixed order.
    pub const ALL: [Bug; 4] = [
        Bug::IgnorePromisedValues,
        Bug::ReplyBeforePersist,
        Bug::SkipLeaseWait,
        Bug::ApplyRetryTwice,
    ];

    /// Switches the bug on in `config`.
    pub fn switch_on(self, config: &mut SimConfig) {
        match self {
            Bug::IgnorePromisedValues => config.bugs.ignore_promised_values = true,
            Bug::ReplyBeforePersist => config.bugs.reply_before_persist = true,
            Bug::SkipLeaseWait => config.bugs.skip_lease_wait = true,
            Bug::ApplyRetryTwice => config.session_bug_apply_twice = true,
        }
    }

    /// The bug's command-line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Bug::IgnorePromisedValues => "ignore-promised-values",
            Bug::ReplyBeforePersist => "reply-before-persist",
            Bug::SkipLeaseWait => "skip-lease-wait",
            Bug::ApplyRetryTwice => "apply-retry-twice",
        }
    }
}

/// A failing run in a few lines: the seed, the violations and the last
/// `trace_lines` events.
#[must_use]
pub fn describe_failure(report: &SimReport, trace_lines: usize) -> String {
    let mut text = format!(
        "seed {}: {} violation(s)\n",
        report.seed,
        report.violations.len()
    );
    for violation in &report.violations {
        text.push_str(&format!("  {violation}\n"));
    }
    let skip = report.trace.len().saturating_sub(trace_lines);
    text.push_str("  last events:\n");
    for line in &report.trace[skip..] {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// One millisecond of virtual time.
const MS: u64 = 1_000_000;

/// A scripted run aimed at `bug`: a schedule of faults that breaks exactly
/// the rule the bug breaks, on a cluster of three with no random faults.
/// The bug itself is not switched on: the same run must pass without it.
#[must_use]
pub fn aimed_config(bug: Bug, seed: u64) -> SimConfig {
    let base = SimConfig {
        seed,
        faults: FaultSet::none(),
        operations_min: 1_000,
        ..SimConfig::default()
    };
    match bug {
        Bug::IgnorePromisedValues => aimed_at_ignored_promises(base),
        Bug::ReplyBeforePersist => aimed_at_early_replies(base),
        Bug::SkipLeaseWait => aimed_at_skipped_lease_wait(base),
        Bug::ApplyRetryTwice => aimed_at_retries_applied_twice(base),
    }
}

/// The leader cannot reach one follower, which keeps calling elections;
/// the old leader promises it (no lease binds a leader to itself), and the
/// new leader must re-propose the values the old leader reported.
fn aimed_at_ignored_promises(base: SimConfig) -> SimConfig {
    let cut = Partition::OneWay {
        from: NodeTarget::Leader,
        to: NodeTarget::Follower(1),
    };
    SimConfig {
        schedule: Some(
            Schedule::new()
                .at(1_200 * MS, Fault::Partition(cut))
                .at(3_000 * MS, Fault::HealPartitions),
        ),
        ..base
    }
}

/// The leader commits with one follower whose disk is slow (the other is
/// cut off); that follower crashes and loses its unsynced records while
/// the leader is isolated; the survivors elect a leader without them.
fn aimed_at_early_replies(base: SimConfig) -> SimConfig {
    let slow = Fault::SlowDisk {
        node: NodeTarget::Follower(0),
        sync_ns: 300 * MS,
    };
    let cut = Partition::Pair(NodeTarget::Leader, NodeTarget::Follower(1));
    let crash = Fault::Crash {
        node: NodeTarget::Follower(0),
        loss: DiskLoss::LoseUnsynced,
        corrupt: false,
    };
    SimConfig {
        schedule: Some(
            Schedule::new()
                .at(1_200 * MS, slow)
                .at(1_200 * MS, Fault::Partition(cut))
                .at(1_800 * MS, crash)
                .at(
                    1_800 * MS,
                    Fault::Partition(Partition::Isolate(NodeTarget::Leader)),
                )
                .at(1_850 * MS, Fault::Restart(NodeTarget::LastCrashed))
                .at(4_000 * MS, Fault::HealPartitions),
        ),
        ..base
    }
}

/// The leader and one follower cannot talk; the other follower keeps
/// granting the leader its lease, then stops reaching it just before the
/// cut-off follower's election (timeouts made near-fixed here). Promising
/// that candidate while the lease runs lets the old leader serve stale
/// reads for most of a second.
fn aimed_at_skipped_lease_wait(base: SimConfig) -> SimConfig {
    let replica_config = Config {
        election_timeout_min_ns: 1_000 * MS,
        election_timeout_max_ns: 1_010 * MS,
        lease_ns: 950 * MS,
        // The cut-off follower lags far behind; keep the log so it can
        // still lead (a compacted peer would make it step down).
        retained_slot_count_max: 1 << 40,
        ..base.replica_config.clone()
    };
    let cut = Partition::Pair(NodeTarget::Leader, NodeTarget::Follower(1));
    let silence = Partition::OneWay {
        from: NodeTarget::Follower(0),
        to: NodeTarget::Leader,
    };
    SimConfig {
        keys: 2,
        clients: 7,
        reader_clients: 2,
        replica_config,
        schedule: Some(
            Schedule::new()
                .at(1_300 * MS, Fault::Partition(cut))
                .at(2_290 * MS, Fault::Partition(silence))
                .at(4_500 * MS, Fault::HealPartitions),
        ),
        ..base
    }
}

/// Both followers' disks turn slow, so a write commits only after
/// hundreds of milliseconds: clients time out and retry writes before their
/// first copies are applied, and both copies commit.
fn aimed_at_retries_applied_twice(base: SimConfig) -> SimConfig {
    let slow = |follower, sync_ns| Fault::SlowDisk {
        node: NodeTarget::Follower(follower),
        sync_ns,
    };
    SimConfig {
        // One key: another client's write lands between the two copies,
        // and readers see the value the second copy brings back.
        keys: 1,
        clients: 7,
        reader_clients: 2,
        schedule: Some(
            Schedule::new()
                .at(1_200 * MS, slow(0, 400 * MS))
                .at(1_200 * MS, slow(1, 400 * MS))
                .at(3_500 * MS, slow(0, 0))
                .at(3_500 * MS, slow(1, 0)),
        ),
        ..base
    }
}
