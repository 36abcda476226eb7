//! Linearizability checking of client histories of a key-value store.
//!
//! A history is a list of [`Operation`]s (get, put, delete, cas on string
//! keys), each with the real-time interval its client saw and an
//! [`Outcome`]. [`check_history`] decides whether some order of the
//! operations is both legal for a map of registers and consistent with real
//! time. The module does no I/O: histories come in as values or as text the
//! caller has read ([`parse_history`], [`read_history`]), so the checker runs
//! the same beside the simulator, in tests and in the `synod check` tool.
//!
//! # Semantics
//!
//! - Each key is a register: absent or a string. A put sets it, a delete
//!   makes it absent, a get returns it, and a cas sets it to its new value
//!   and returns true exactly when it held the expected value (absent
//!   matching absent), else leaves it and returns false.
//! - An `ok` operation takes effect once, atomically, at a point within
//!   `[invoke_ns, complete_ns]`. Operation A precedes B in real time only when
//!   `A.complete_ns < B.invoke_ns`; at equal times (A completes at the
//!   nanosecond B is invoked) they count as concurrent, the permissive
//!   choice, since one virtual instant does not order two events.
//! - A `failed` operation never took effect and is dropped.
//! - An `unknown` put, delete or cas may take effect at any point after its
//!   invoke time (its complete time is ignored) or never; an unknown cas's
//!   result is unconstrained. An `unknown` get observed nothing and is
//!   dropped.
//! - Keys are checked separately: a history of independent registers is
//!   linearizable exactly when each key's part is (linearizability is
//!   compositional), which keeps every search small.
//!
//! # Algorithm and budget
//!
//! Per key, a backtracking search over the orders real time allows (Wing and
//! Gong, with Lowe's event list and memo as in Porcupine), extended with
//! optional operations for unknown outcomes and with reductions that hold
//! for registers: fitting reads are placed at once, an unknown write is
//! tried only where it makes a waiting operation possible, and values no
//! operation reads are not told apart (see the `search` and `memo`
//! modules). The
//! search's work is capped by a [`CheckBudget`]; when a key exhausts it the
//! verdict is [`Verdict::Unknown`], never a silent pass. The result is
//! deterministic: keys are checked in key order and each search's order is
//! fixed by the history.
//!
//! # Example
//!
//! ```
//! use synod_engine::check::{check_history, parse_history, CheckBudget, Verdict};
//!
//! let history = parse_history(concat!(
//!     r#"{"client":1,"kind":"put","key":"k","value":"a","expected":null,"output":null,"invoke":0,"complete":10,"outcome":"ok"}"#,
//!     "\n",
//!     r#"{"client":2,"kind":"get","key":"k","value":null,"expected":null,"output":"a","invoke":5,"complete":30,"outcome":"ok"}"#,
//!     "\n",
//! ))?;
//! let report = check_history(&history, CheckBudget::default())?;
//! assert_eq!(report.verdict, Verdict::Linearizable);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod bitset;
mod events;
mod history;
mod memo;
mod progress;
mod register;
mod search;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use history::{
    parse_history, read_history, HistoryError, InvalidOperation, Operation, OperationKind, Outcome,
    Output,
};

use search::SearchResult;

/// Limits on the work of [`check_history`], applied to each key separately
/// so that one hard key cannot starve the others of a verdict.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CheckBudget {
    /// The most search steps for one key. A step is one attempt to place
    /// one candidate operation next, whether or not the model and the memo
    /// accept it.
    pub steps_max: u64,
    /// The most memory the memo of visited configurations may take for one
    /// key. Beyond it the search goes on without storing more, so it stays
    /// correct but prunes less.
    pub memo_bytes_max: usize,
}

impl CheckBudget {
    /// The default steps per key. Histories from simulator runs need a few
    /// steps per operation; a step costs roughly 0.1 to 0.3 µs in a release
    /// build, so a key that exhausts this budget takes a few seconds.
    pub const STEPS_MAX_DEFAULT: u64 = 10_000_000;
    /// The default memo memory per key, 256 MiB.
    pub const MEMO_BYTES_MAX_DEFAULT: usize = 256 << 20;
}

impl Default for CheckBudget {
    /// [`CheckBudget::STEPS_MAX_DEFAULT`] steps and
    /// [`CheckBudget::MEMO_BYTES_MAX_DEFAULT`] bytes per key.
    fn default() -> CheckBudget {
        CheckBudget {
            steps_max: CheckBudget::STEPS_MAX_DEFAULT,
            memo_bytes_max: CheckBudget::MEMO_BYTES_MAX_DEFAULT,
        }
    }
}

/// What the checker concluded about a history.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Every key's operations fit a valid sequential order.
    Linearizable,
    /// No valid order exists for `key` (the first such key in key order).
    NotLinearizable {
        /// The key whose operations cannot be ordered.
        key: String,
        /// Where the search got stuck: how many operations the longest
        /// valid order placed, its last operations, and the operations that
        /// could not follow them.
        detail: String,
    },
    /// The budget ran out on `key` (the first such key in key order) and no
    /// key was found not linearizable.
    Unknown {
        /// The key the search gave up on.
        key: String,
        /// How far the search got.
        detail: String,
    },
}

/// The result of [`check_history`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckReport {
    /// The conclusion.
    pub verdict: Verdict,
    /// Keys searched: all keys, unless a non-linearizable key stopped the
    /// check early.
    pub keys_checked: usize,
    /// Operations those searches considered: `ok` operations and `unknown`
    /// writes (`failed` operations and `unknown` gets are dropped).
    pub operations_checked: usize,
    /// Search steps taken over all keys.
    pub steps: u64,
}

/// Why [`check_history`] could not check a history.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An operation's fields do not fit together (see
    /// [`Operation::validate`]).
    #[error("operation {index}: {reason}")]
    InvalidOperation {
        /// The operation's position in the history, from 0.
        index: usize,
        /// What is wrong with it.
        reason: InvalidOperation,
    },
}

/// Checks whether `operations` is linearizable for a store of registers.
///
/// Stops at the first key (in key order) found not linearizable; a key that
/// exhausts the budget makes the verdict [`Verdict::Unknown`] unless a later
/// key is not linearizable.
///
/// # Errors
/// [`CheckError::InvalidOperation`] when an operation fails
/// [`Operation::validate`]; histories from [`parse_history`] never do.
pub fn check_history(
    operations: &[Operation],
    budget: CheckBudget,
) -> Result<CheckReport, CheckError> {
    let keys = register::split_by_key(operations)?;
    let mut report = CheckReport {
        verdict: Verdict::Linearizable,
        keys_checked: 0,
        operations_checked: 0,
        steps: 0,
    };
    let mut first_unknown = None;
    for (key, history) in &keys {
        let outcome = search::search(history, budget);
        report.keys_checked += 1;
        report.operations_checked += history.operation_count();
        report.steps += outcome.steps;
        match outcome.result {
            SearchResult::Linearizable => {}
            SearchResult::NotLinearizable { detail } => {
                report.verdict = Verdict::NotLinearizable {
                    key: (*key).to_owned(),
                    detail,
                };
                return Ok(report);
            }
            SearchResult::BudgetExhausted { detail } => {
                first_unknown.get_or_insert(Verdict::Unknown {
                    key: (*key).to_owned(),
                    detail,
                });
            }
        }
    }
    if let Some(unknown) = first_unknown {
        report.verdict = unknown;
    }
    Ok(report)
}
