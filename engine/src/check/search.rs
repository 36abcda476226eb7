//! The search for a linearization of one key's history: Wing and Gong's
//! backtracking with Lowe's improvements, as in Porcupine.
//!
//! The required (`ok`) operations' call and return events sit in an
//! [`EventList`]. An operation may be linearized next when its call comes
//! before every return still in the list, that is, when no pending
//! operation completed before it was invoked. Linearizing an operation lifts
//! both of its events out; backtracking puts them back. Each configuration
//! entered goes into the [`Memo`], which prunes configurations that cannot
//! do better than one already entered.
//!
//! Reductions specific to registers keep the search small. Each keeps at
//! least one valid order whenever there is one.
//!
//! - **Reads go first, without alternatives.** When a read-only operation (a
//!   get, or a cas that returned false) may come next and fits the current
//!   value, it is linearized at once and nothing else is tried in its
//!   place: any valid order from here stays valid with that read moved to
//!   the front, since it changes nothing and moving it earlier only frees
//!   the operations that must follow it. Without this, many concurrent reads
//!   of one value make the search try every subset of them.
//! - **Optional operations** (`unknown`-outcome writes) have no return
//!   event: they never block anything, may be linearized any time after
//!   their invoke, and the search succeeds once every required operation is
//!   placed. Any valid order can be rewritten so that each optional step is
//!   followed at once by a step it makes possible, one that could not run
//!   on the value before it: an optional step followed by a write is
//!   dropped (its value is never seen), one followed by a read that fits
//!   either way swaps places with the read, and one at the end is dropped.
//!   So the search tries an optional step only when a candidate wants the
//!   value it writes, lets only such a candidate follow it, tries required
//!   candidates first, and of several optional operations with the same
//!   step tries one (they are interchangeable: each stays possible from
//!   then on). A configuration whose last step is optional is not put in
//!   the memo, since what may follow it is restricted.
//!
//! Invariants:
//! - The event list holds exactly the required operations not yet
//!   linearized.
//! - An operation is in `required_done` or `optional_done` exactly when a
//!   frame on the stack linearized it.
//! - `state` is the register value after the stack's operations, applied in
//!   stack order to an absent key.
//! - `core_done` and `unread_done` split `required_done` into operations
//!   that are not unread writes and those that are; `core_hash` is the XOR
//!   of [`operation_key`] over `core_done`.
//! - `steps` never exceeds the budget's `steps_max`.

use super::bitset::Bitset;
use super::events::{EventKind, EventList, HEAD};
use super::history::Operation;
use super::memo::{mix, Configuration, Memo, Visit};
use super::progress::{Deepest, RECENT_SHOWN_MAX};
use super::register::{KeyHistory, Need, RegisterStep, ValueId};
use super::CheckBudget;

/// How the search of one key ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) enum SearchResult {
    /// Every required operation was placed in a valid order.
    Linearizable,
    /// No valid order exists; `detail` explains where the search got stuck.
    NotLinearizable { detail: String },
    /// The step budget ran out first.
    BudgetExhausted { detail: String },
}

/// The result of one key's search and the steps it took.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct SearchOutcome {
    pub(super) result: SearchResult,
    pub(super) steps: u64,
}

/// Searches for a linearization of `history` within `budget`.
pub(super) fn search(history: &KeyHistory<'_>, budget: CheckBudget) -> SearchOutcome {
    let mut search = Search::new(history, budget);
    let result = search.run();
    assert!(
        search.steps <= budget.steps_max,
        "the search stays within its step budget"
    );
    SearchOutcome {
        result,
        steps: search.steps,
    }
}

/// A candidate for the next step, and the record of a step taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Choice {
    /// The required operation whose call event this is.
    Required { event: usize },
    /// An optional operation, considered while the earliest pending
    /// return was at `frontier_ns`.
    Optional { index: usize, frontier_ns: u64 },
}

/// Where the enumeration of the current configuration's candidates stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cursor {
    /// The configuration was just entered: look for a read to force first.
    Entered,
    /// At an event of the list.
    Required { event: usize },
    /// Among the optional operations, from `index`.
    Optional { index: usize, frontier_ns: u64 },
    /// No candidates left.
    Exhausted,
}

/// Whether a step was the only one its configuration tried.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Selection {
    /// A read taken without alternatives: if it fails, so does its
    /// configuration.
    Forced,
    /// One candidate among several.
    Chosen,
}

#[derive(Clone, Copy, Debug)]
struct Frame<'h> {
    choice: Choice,
    selection: Selection,
    state_before: ValueId,
    /// The operation that wrote the value after this step, if any did.
    writer: Option<&'h Operation>,
}

/// The values some candidate needs the register to hold before it can run.
#[derive(Default)]
struct Wanted {
    values: Vec<ValueId>,
    any_other: bool,
}

impl Wanted {
    fn add(&mut self, need: Need) {
        match need {
            Need::Nothing => {}
            Need::Value(value) if self.values.contains(&value) => {}
            Need::Value(value) => self.values.push(value),
            Need::AnyOther => self.any_other = true,
        }
    }

    fn includes(&self, value: ValueId) -> bool {
        self.any_other || self.values.contains(&value)
    }
}

struct Search<'k, 'h> {
    history: &'k KeyHistory<'h>,
    budget: CheckBudget,
    events: EventList,
    required_done: Bitset,
    /// `required_done` without unread writes.
    core_done: Bitset,
    /// `required_done`'s unread writes.
    unread_done: Bitset,
    optional_done: Bitset,
    core_hash: u64,
    required_remaining: usize,
    state: ValueId,
    stack: Vec<Frame<'h>>,
    memo: Memo,
    steps: u64,
    deepest: Deepest<'h>,
    /// A reused buffer for [`Search::next_optional`].
    wanted: Wanted,
}

/// The Zobrist key of one required operation.
fn operation_key(operation: usize) -> u64 {
    mix(operation as u64)
}

impl<'k, 'h> Search<'k, 'h> {
    fn new(history: &'k KeyHistory<'h>, budget: CheckBudget) -> Search<'k, 'h> {
        let required_count = history.required.len();
        Search {
            history,
            budget,
            events: EventList::new(&history.required),
            required_done: Bitset::new(required_count),
            core_done: Bitset::new(required_count),
            unread_done: Bitset::new(required_count),
            optional_done: Bitset::new(history.optional.len()),
            core_hash: 0,
            required_remaining: required_count,
            state: ValueId::ABSENT,
            stack: Vec::with_capacity(history.operation_count()),
            memo: Memo::new(budget.memo_bytes_max),
            steps: 0,
            deepest: Deepest::new(required_count),
            wanted: Wanted::default(),
        }
    }

    fn run(&mut self) -> SearchResult {
        let mut cursor = Cursor::Entered;
        loop {
            if self.required_remaining == 0 {
                return SearchResult::Linearizable;
            }
            let Some((choice, selection)) = self.next_candidate(cursor) else {
                let Some(frame) = self.stack.pop() else {
                    return SearchResult::NotLinearizable {
                        detail: self.deepest.describe_failure(self.history),
                    };
                };
                self.undo(frame);
                cursor = match frame.selection {
                    Selection::Forced => Cursor::Exhausted,
                    Selection::Chosen => self.after(frame.choice),
                };
                continue;
            };
            if self.steps >= self.budget.steps_max {
                let detail = self.deepest.describe_exhaustion(self.history, self.steps);
                return SearchResult::BudgetExhausted { detail };
            }
            self.steps += 1;
            cursor = match (self.linearize(choice, selection), selection) {
                (true, _) => Cursor::Entered,
                (false, Selection::Forced) => Cursor::Exhausted,
                (false, Selection::Chosen) => self.after(choice),
            };
        }
    }

    /// The cursor just past a candidate (which is back in the list if it was
    /// lifted and undone).
    fn after(&self, choice: Choice) -> Cursor {
        match choice {
            Choice::Required { event } => Cursor::Required {
                event: self.events.next(event),
            },
            Choice::Optional { index, frontier_ns } => Cursor::Optional {
                index: index + 1,
                frontier_ns,
            },
        }
    }

    /// The first candidate at or after `cursor`, or `None` when the current
    /// configuration has no more.
    fn next_candidate(&mut self, mut cursor: Cursor) -> Option<(Choice, Selection)> {
        loop {
            match cursor {
                Cursor::Entered => {
                    if let Some(event) = self.fitting_read() {
                        return Some((Choice::Required { event }, Selection::Forced));
                    }
                    cursor = Cursor::Required {
                        event: self.events.next(HEAD),
                    };
                }
                Cursor::Required { event } => {
                    let event_data = self.events.event(event);
                    match event_data.kind {
                        EventKind::Call
                            if self
                                .may_follow(self.history.required[event_data.operation].step) =>
                        {
                            return Some((Choice::Required { event }, Selection::Chosen));
                        }
                        EventKind::Call => {
                            cursor = Cursor::Required {
                                event: self.events.next(event),
                            }
                        }
                        // The first pending return closes the candidates in
                        // the list and bounds the optional ones.
                        EventKind::Return => {
                            cursor = Cursor::Optional {
                                index: 0,
                                frontier_ns: event_data.time_ns,
                            }
                        }
                        EventKind::Head => {
                            cursor = Cursor::Optional {
                                index: 0,
                                frontier_ns: u64::MAX,
                            }
                        }
                    }
                }
                Cursor::Optional { index, frontier_ns } => {
                    return self
                        .next_optional(index, frontier_ns)
                        .map(|choice| (choice, Selection::Chosen));
                }
                Cursor::Exhausted => return None,
            }
        }
    }

    /// A read-only operation that may come next and fits the current value.
    fn fitting_read(&self) -> Option<usize> {
        let mut event = self.events.next(HEAD);
        while self.events.event(event).kind == EventKind::Call {
            let step = self.history.required[self.events.event(event).operation].step;
            if step.is_read_only()
                && step.apply(self.state) == Some(self.state)
                && self.may_follow(step)
            {
                return Some(event);
            }
            event = self.events.next(event);
        }
        None
    }

    /// Whether `step` may come next: after an optional step, only a step
    /// that could not run on the value before it.
    fn may_follow(&self, step: RegisterStep) -> bool {
        match self.stack.last() {
            Some(Frame {
                choice: Choice::Optional { .. },
                state_before,
                ..
            }) => step.apply(*state_before).is_none(),
            _ => true,
        }
    }

    /// The next optional candidate from `start`: invoked by `frontier_ns`,
    /// not yet linearized, the first of its step, allowed to follow the last
    /// step, and writing a value some candidate wants.
    fn next_optional(&mut self, start: usize, frontier_ns: u64) -> Option<Choice> {
        // The buffer is taken out and put back so that its allocation is
        // reused while `self` is borrowed.
        let mut wanted = std::mem::take(&mut self.wanted);
        self.collect_wanted(frontier_ns, &mut wanted);
        let found = if wanted.any_other {
            self.first_optional(start..self.history.optional.len(), frontier_ns, &wanted)
        } else {
            // Only writers of a wanted value can pass; look at those alone.
            let firsts = wanted.values.iter().filter_map(|value| {
                let list = self.history.optional_writing(*value);
                let from = list.partition_point(|index| *index < start);
                self.first_optional(list[from..].iter().copied(), frontier_ns, &wanted)
            });
            firsts.min()
        };
        self.wanted = wanted;
        found.map(|index| Choice::Optional { index, frontier_ns })
    }

    /// The first optional candidate among `indexes` (increasing).
    fn first_optional(
        &self,
        indexes: impl Iterator<Item = usize>,
        frontier_ns: u64,
        wanted: &Wanted,
    ) -> Option<usize> {
        for index in indexes {
            let entry = &self.history.optional[index];
            if entry.operation.invoke_ns > frontier_ns {
                return None;
            }
            let twin_pending = self.history.same_step_before[index]
                .is_some_and(|twin| !self.optional_done.contains(twin));
            if self.optional_done.contains(index) || twin_pending || !self.may_follow(entry.step) {
                continue;
            }
            match entry.step.apply(self.state) {
                Some(next_state) if next_state != self.state && wanted.includes(next_state) => {
                    return Some(index)
                }
                _ => {}
            }
        }
        None
    }

    /// Collects what the required candidates that cannot run now need, and,
    /// transitively, what optional cas operations invoked by `frontier_ns`
    /// need to write a wanted value.
    fn collect_wanted(&self, frontier_ns: u64, wanted: &mut Wanted) {
        wanted.values.clear();
        wanted.any_other = false;
        let mut event = self.events.next(HEAD);
        while self.events.event(event).kind == EventKind::Call {
            wanted.add(
                self.history.required[self.events.event(event).operation]
                    .step
                    .need(self.state),
            );
            event = self.events.next(event);
        }
        if wanted.any_other {
            return;
        }
        let mut next = 0;
        while let Some(&value) = wanted.values.get(next) {
            next += 1;
            for &index in self.history.optional_writing(value) {
                let entry = &self.history.optional[index];
                if entry.operation.invoke_ns > frontier_ns {
                    break;
                }
                if let RegisterStep::Cas { expected, .. } = entry.step {
                    if !self.optional_done.contains(index) && expected != self.state {
                        wanted.add(Need::Value(expected));
                    }
                }
            }
        }
    }

    /// Tries to linearize a candidate next; true when it did.
    fn linearize(&mut self, choice: Choice, selection: Selection) -> bool {
        let (step, operation) = self.step_of(choice);
        let Some(next_state) = step.apply(self.state) else {
            return false;
        };
        match choice {
            Choice::Required { event } => {
                let index = self.events.event(event).operation;
                self.toggle_required(index);
                if self.visit(next_state) == Visit::Covered {
                    self.toggle_required(index);
                    return false;
                }
                self.events.lift(event);
                self.required_remaining -= 1;
            }
            Choice::Optional { index, .. } => {
                assert!(
                    next_state != self.state,
                    "an optional step changes the value"
                );
                self.optional_done.insert(index);
            }
        }
        let writes = matches!(
            step,
            RegisterStep::Write { .. }
                | RegisterStep::Cas {
                    swapped: Some(true) | None,
                    ..
                }
        );
        let writer = if writes {
            Some(operation)
        } else {
            self.stack.last().and_then(|frame| frame.writer)
        };
        self.stack.push(Frame {
            choice,
            selection,
            state_before: self.state,
            writer,
        });
        self.state = next_state;
        if matches!(choice, Choice::Required { .. }) {
            self.record_progress();
        }
        true
    }

    fn undo(&mut self, frame: Frame<'h>) {
        self.state = frame.state_before;
        match frame.choice {
            Choice::Required { event } => {
                let operation = self.events.event(event).operation;
                assert!(
                    self.required_done.contains(operation),
                    "only a linearized operation is undone"
                );
                self.events.unlift(event);
                self.toggle_required(operation);
                self.required_remaining += 1;
            }
            Choice::Optional { index, .. } => {
                assert!(
                    self.optional_done.contains(index),
                    "only a linearized operation is undone"
                );
                self.optional_done.remove(index);
            }
        }
    }

    /// Adds a required operation to `required_done` or removes it, keeping
    /// the hash in step.
    fn toggle_required(&mut self, operation: usize) {
        let adding = !self.required_done.contains(operation);
        let done = &mut self.required_done;
        let part = if self.history.unread_write[operation] {
            &mut self.unread_done
        } else {
            &mut self.core_done
        };
        for set in [done, part] {
            if adding {
                set.insert(operation);
            } else {
                set.remove(operation);
            }
        }
        if !self.history.unread_write[operation] {
            self.core_hash ^= operation_key(operation);
        }
    }

    fn visit(&mut self, next_state: ValueId) -> Visit {
        let hash = self.core_hash ^ mix(u64::from(next_state.0) | (1 << 63));
        let configuration = Configuration {
            core: self.core_done.packed(),
            state: next_state,
            unread: self.unread_done.packed(),
            optional: self.optional_done.packed(),
        };
        self.memo.visit(hash, configuration)
    }

    fn step_of(&self, choice: Choice) -> (RegisterStep, &'h Operation) {
        let entry = match choice {
            Choice::Required { event } => {
                &self.history.required[self.events.event(event).operation]
            }
            Choice::Optional { index, .. } => &self.history.optional[index],
        };
        (entry.step, entry.operation)
    }

    fn record_progress(&mut self) {
        let required_count = self.history.required.len() - self.required_remaining;
        if required_count <= self.deepest.required_count() {
            return;
        }
        let recent_start = self.stack.len().saturating_sub(RECENT_SHOWN_MAX);
        let recent = self.stack[recent_start..]
            .iter()
            .map(|frame| self.step_of(frame.choice).1)
            .collect();
        let optional_count = self.stack.len() - required_count;
        let writer = self.stack.last().and_then(|frame| frame.writer);
        self.deepest.record(
            &self.required_done,
            optional_count,
            self.state,
            writer,
            recent,
        );
    }
}
