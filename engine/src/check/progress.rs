//! The search's furthest point, kept to explain a failure to people.
//!
//! Invariants:
//! - [`Deepest`] holds the first configuration that placed its number of
//!   required operations, and that number only grows.

use super::bitset::Bitset;
use super::history::Operation;
use super::register::{KeyHistory, ValueId};

/// How many of the operations that could come next a report lists.
const CANDIDATES_SHOWN_MAX: usize = 8;

/// How many of the last placed operations a report lists.
pub(super) const RECENT_SHOWN_MAX: usize = 3;

/// The configuration with the most required operations placed.
pub(super) struct Deepest<'h> {
    required_count: usize,
    optional_count: usize,
    state: ValueId,
    /// The operation that wrote `state`, to name an unobserved value.
    writer: Option<&'h Operation>,
    required_done: Bitset,
    recent: Vec<&'h Operation>,
}

impl<'h> Deepest<'h> {
    /// The start: nothing placed, the key absent.
    pub(super) fn new(required_capacity: usize) -> Deepest<'h> {
        Deepest {
            required_count: 0,
            optional_count: 0,
            state: ValueId::ABSENT,
            writer: None,
            required_done: Bitset::new(required_capacity),
            recent: Vec::new(),
        }
    }

    /// How many required operations the deepest configuration placed.
    pub(super) fn required_count(&self) -> usize {
        self.required_count
    }

    /// Replaces the record with a configuration that places more required
    /// operations. `recent` lists its last placed operations, oldest first.
    ///
    /// # Panics
    /// If the configuration does not place more (a programmer error).
    pub(super) fn record(
        &mut self,
        required_done: &Bitset,
        optional_count: usize,
        state: ValueId,
        writer: Option<&'h Operation>,
        recent: Vec<&'h Operation>,
    ) {
        let required_count = required_done.len();
        assert!(
            required_count > self.required_count,
            "the deepest configuration only gets deeper"
        );
        *self = Deepest {
            required_count,
            optional_count,
            state,
            writer,
            required_done: required_done.clone(),
            recent,
        };
    }

    /// Why the budget ran out, for [`super::SearchResult::BudgetExhausted`].
    pub(super) fn describe_exhaustion(&self, history: &KeyHistory<'h>, steps: u64) -> String {
        let mut text = format!(
            "the step budget ran out after {steps} steps; the longest valid order found places {} of {} \
             completed operations",
            self.required_count,
            history.required.len()
        );
        self.describe_end(
            history,
            &mut text,
            " and ends with:",
            "; the operations that may come next there are:",
        );
        text
    }

    /// Where no valid order could go on, for
    /// [`super::SearchResult::NotLinearizable`].
    pub(super) fn describe_failure(&self, history: &KeyHistory<'h>) -> String {
        let mut text = format!(
            "at most {} of {} completed operations fit a valid order",
            self.required_count,
            history.required.len()
        );
        let heading = ", and none of the operations that may come next leads to a valid order:";
        self.describe_end(
            history,
            &mut text,
            "; the longest one found ends with:",
            heading,
        );
        text
    }

    /// Appends how the longest order ends (after `ends_with`) and the
    /// operations that could come next (after `candidates_heading`).
    fn describe_end(
        &self,
        history: &KeyHistory<'h>,
        text: &mut String,
        ends_with: &str,
        candidates_heading: &str,
    ) {
        if self.optional_count > 0 {
            *text += &format!(
                " (with {} unknown-outcome writes taking effect)",
                self.optional_count
            );
        }
        if self.recent.is_empty() {
            *text += "; at the start";
        } else {
            *text += ends_with;
            for operation in &self.recent {
                *text += &format!("\n  {operation}");
            }
            *text += "\nafter which";
        }
        *text += &format!(
            " the key holds {}{candidates_heading}",
            self.describe_state(history)
        );
        let candidates = self.stuck_candidates(history);
        for operation in candidates.iter().take(CANDIDATES_SHOWN_MAX) {
            *text += &format!("\n  {operation}");
        }
        if candidates.len() > CANDIDATES_SHOWN_MAX {
            *text += &format!(
                "\n  ... and {} more",
                candidates.len() - CANDIDATES_SHOWN_MAX
            );
        }
    }

    /// The deepest configuration's value; an unobserved one is named by its
    /// writer's value.
    fn describe_state(&self, history: &KeyHistory<'h>) -> String {
        match (
            self.state,
            self.writer.and_then(|writer| writer.value.as_deref()),
        ) {
            (ValueId::UNOBSERVED, Some(text)) => format!("{text:?}"),
            (state, _) => history.describe_value(state),
        }
    }

    /// The required operations that could come next: not placed, and
    /// invoked no later than the earliest completion among those not placed.
    fn stuck_candidates(&self, history: &KeyHistory<'h>) -> Vec<&'h Operation> {
        let pending = || {
            history
                .required
                .iter()
                .enumerate()
                .filter(|(index, _)| !self.required_done.contains(*index))
                .map(|(_, entry)| entry.operation)
        };
        let frontier_ns = pending()
            .map(|operation| operation.complete_ns)
            .min()
            .unwrap_or(u64::MAX);
        pending()
            .filter(|operation| operation.invoke_ns <= frontier_ns)
            .collect()
    }
}
