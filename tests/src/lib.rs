//! synod-tests: integration tests and the simulate driver.
//!
//! Shared by the `simulate` binary and the `sim_*` tests: the deliberate
//! bugs by name, and a compact summary of a failing run.

use synod_engine::sim::{SimConfig, SimReport};

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
