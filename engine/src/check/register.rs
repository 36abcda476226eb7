//! The sequential model (one register per key) and the per-key histories the
//! search runs on.
//!
//! Values are interned per key. Every value that no operation observes (no
//! get reads it, no cas expects it) shares one id, [`ValueId::UNOBSERVED`]:
//! the model only ever compares the register with observed values, so such
//! values cannot be told apart, and merging them lets the search treat
//! writes of them as one move instead of many.
//!
//! Invariants:
//! - Id 0 is "absent", id 1 every unobserved value; every other id names
//!   exactly one observed string of the key's history, and one string has
//!   exactly one id.
//! - A [`KeyHistory`]'s required operations are the key's `ok` operations,
//!   sorted by invoke time (ties in history order); its optional operations are the key's `unknown` writes,
//!   sorted by invoke time (ties in history order). `failed` operations and
//!   `unknown` gets appear in neither.
//! - `same_step_before[i]` is the latest optional operation before `i` with
//!   the same step, if any; `optional_by_written` lists the optional
//!   operations by the value they write, each list in increasing order.
//! - `unread_write` has one entry per required operation.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::history::{Operation, OperationKind, Outcome, Output};
use super::CheckError;

/// A register value of one key, interned: absent, unobserved, or a string
/// some operation observes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct ValueId(pub(super) u32);

impl ValueId {
    /// The key holds no value.
    pub(super) const ABSENT: ValueId = ValueId(0);
    /// The key holds a value that no operation observes.
    pub(super) const UNOBSERVED: ValueId = ValueId(1);
    /// The first id of an observed string.
    const FIRST_OBSERVED: u32 = 2;
}

/// One operation as a transition of the register model.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum RegisterStep {
    /// A read that returned `read`.
    Get { read: ValueId },
    /// A write of `written` (a put, or a delete when `written` is absent).
    Write { written: ValueId },
    /// A compare-and-set; `swapped` is its result, `None` when unknown.
    Cas {
        expected: ValueId,
        new: ValueId,
        swapped: Option<bool>,
    },
}

/// What value a step needs to run, when it cannot run on the current one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Need {
    /// It runs already, or never needs a particular value (a write).
    Nothing,
    /// It runs on exactly this value.
    Value(ValueId),
    /// It runs on any value but the current one (a failed cas expecting it).
    AnyOther,
}

impl RegisterStep {
    /// The register's value after this step runs on `state`, or `None` when
    /// the step cannot run there (a get or cas whose output contradicts it).
    ///
    /// A cas with an unknown result only ever runs as a swap: as a no-op it
    /// would be the same as not running at all.
    pub(super) fn apply(self, state: ValueId) -> Option<ValueId> {
        match self {
            RegisterStep::Get { read } => (read == state).then_some(state),
            RegisterStep::Write { written } => Some(written),
            RegisterStep::Cas {
                expected,
                new,
                swapped,
            } => match swapped {
                Some(true) | None => (expected == state).then_some(new),
                Some(false) => (expected != state).then_some(state),
            },
        }
    }

    /// What this step needs that `state` does not give it.
    pub(super) fn need(self, state: ValueId) -> Need {
        if self.apply(state).is_some() {
            return Need::Nothing;
        }
        match self {
            RegisterStep::Get { read } => Need::Value(read),
            RegisterStep::Cas {
                expected,
                swapped: Some(true) | None,
                ..
            } => Need::Value(expected),
            RegisterStep::Cas {
                swapped: Some(false),
                ..
            } => Need::AnyOther,
            RegisterStep::Write { .. } => Need::Nothing,
        }
    }

    /// Whether the step never changes the value: a get, or a cas known to
    /// have failed.
    pub(super) fn is_read_only(self) -> bool {
        matches!(
            self,
            RegisterStep::Get { .. }
                | RegisterStep::Cas {
                    swapped: Some(false),
                    ..
                }
        )
    }
}

/// One operation of a key's history with its model step.
#[derive(Debug)]
pub(super) struct KeyOperation<'h> {
    /// The operation as recorded.
    pub(super) operation: &'h Operation,
    /// Its transition of the model.
    pub(super) step: RegisterStep,
}

/// The part of a history that touches one key, ready for the search.
#[derive(Debug)]
pub(super) struct KeyHistory<'h> {
    /// `ok` operations: each must be linearized within its interval.
    pub(super) required: Vec<KeyOperation<'h>>,
    /// For each required operation, whether it is an unread write: a put of
    /// an unobserved value, in a key where no cas failed.
    pub(super) unread_write: Vec<bool>,
    /// `unknown` writes: each may be linearized after its invoke time, or never.
    pub(super) optional: Vec<KeyOperation<'h>>,
    /// For each optional operation, the latest earlier one with the same step.
    pub(super) same_step_before: Vec<Option<usize>>,
    /// The optional operations by the id of the value they write, each list
    /// in increasing order.
    optional_by_written: Vec<Vec<usize>>,
    value_ids: HashMap<&'h str, ValueId>,
    values: Vec<&'h str>,
}

impl<'h> KeyHistory<'h> {
    /// The key's history from its (validated) operations, in history order.
    fn new(operations: &[&'h Operation]) -> KeyHistory<'h> {
        let mut history = KeyHistory {
            required: Vec::new(),
            unread_write: Vec::new(),
            optional: Vec::new(),
            same_step_before: Vec::new(),
            optional_by_written: Vec::new(),
            value_ids: HashMap::new(),
            values: Vec::new(),
        };
        for text in observed_values(operations) {
            history.values.push(text);
            let id = u32::try_from(history.values.len())
                .ok()
                .and_then(|count| count.checked_add(ValueId::FIRST_OBSERVED - 1))
                .expect("a key has fewer than 2^32 distinct values: each comes from an operation");
            history.value_ids.insert(text, ValueId(id));
        }
        for operation in operations {
            history.push(operation);
        }
        // Stable sorts: equal invoke times keep history order, so the search
        // is deterministic. Required operations in invoke order keep the
        // search's sets of them close to prefixes, which the memo packs.
        history
            .required
            .sort_by_key(|entry| entry.operation.invoke_ns);
        history
            .optional
            .sort_by_key(|entry| entry.operation.invoke_ns);
        history.mark_unread_writes();
        history.index_optional();
        history
    }

    /// Marks the required puts of unobserved values, in keys where no cas
    /// failed (see the memo for why).
    fn mark_unread_writes(&mut self) {
        let failed_cas = self.required.iter().any(|entry| {
            matches!(
                entry.step,
                RegisterStep::Cas {
                    swapped: Some(false),
                    ..
                }
            )
        });
        self.unread_write = self
            .required
            .iter()
            .map(|entry| {
                !failed_cas
                    && entry.step
                        == RegisterStep::Write {
                            written: ValueId::UNOBSERVED,
                        }
            })
            .collect();
    }

    fn index_optional(&mut self) {
        let mut latest = HashMap::new();
        self.optional_by_written =
            vec![Vec::new(); self.values.len() + ValueId::FIRST_OBSERVED as usize];
        for (index, entry) in self.optional.iter().enumerate() {
            self.same_step_before.push(latest.insert(entry.step, index));
            let written = match entry.step {
                RegisterStep::Write { written } => written,
                RegisterStep::Cas { new, .. } => new,
                RegisterStep::Get { .. } => continue,
            };
            self.optional_by_written[written.0 as usize].push(index);
        }
    }

    /// The optional operations that write `value`, in increasing order.
    pub(super) fn optional_writing(&self, value: ValueId) -> &[usize] {
        self.optional_by_written
            .get(value.0 as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// How many operations the search considers.
    pub(super) fn operation_count(&self) -> usize {
        self.required.len() + self.optional.len()
    }

    /// A value for people to read.
    pub(super) fn describe_value(&self, value: ValueId) -> String {
        match value {
            ValueId::ABSENT => "absent".to_owned(),
            ValueId::UNOBSERVED => "a value no operation reads".to_owned(),
            ValueId(id) => match self.values.get((id - ValueId::FIRST_OBSERVED) as usize) {
                Some(text) => format!("{text:?}"),
                None => format!("value #{id}"),
            },
        }
    }

    fn id_of(&self, value: Option<&str>) -> ValueId {
        match value {
            None => ValueId::ABSENT,
            Some(text) => self
                .value_ids
                .get(text)
                .copied()
                .unwrap_or(ValueId::UNOBSERVED),
        }
    }

    /// Adds a validated operation of this key.
    fn push(&mut self, operation: &'h Operation) {
        let step = match operation.kind {
            // A validated get always carries `Output::Value`.
            OperationKind::Get => RegisterStep::Get {
                read: self.id_of(read_value(operation).flatten()),
            },
            OperationKind::Put | OperationKind::Delete => RegisterStep::Write {
                written: self.id_of(operation.value.as_deref()),
            },
            OperationKind::Cas => RegisterStep::Cas {
                expected: self.id_of(operation.expected.as_deref()),
                new: self.id_of(operation.value.as_deref()),
                swapped: match (&operation.output, operation.outcome) {
                    (Output::Cas(swapped), Outcome::Ok) => Some(*swapped),
                    _ => None,
                },
            },
        };
        let entry = KeyOperation { operation, step };
        match (operation.outcome, operation.kind) {
            (Outcome::Ok, _) => self.required.push(entry),
            (Outcome::Unknown, OperationKind::Get) | (Outcome::Failed, _) => {}
            (Outcome::Unknown, _) => self.optional.push(entry),
        }
    }
}

/// A get's read value: `Some(None)` for absent, `None` if not a get.
fn read_value(operation: &Operation) -> Option<Option<&str>> {
    match &operation.output {
        Output::Value(read) => Some(read.as_deref()),
        _ => None,
    }
}

/// The strings the search compares the register with: read by an `ok` get
/// or expected by a cas that may take effect, in first-seen order.
fn observed_values<'h>(operations: &[&'h Operation]) -> Vec<&'h str> {
    let mut seen = HashSet::new();
    let mut observed = Vec::new();
    for operation in operations {
        let text = match (operation.kind, operation.outcome) {
            (OperationKind::Get, Outcome::Ok) => read_value(operation).flatten(),
            (OperationKind::Cas, Outcome::Ok | Outcome::Unknown) => operation.expected.as_deref(),
            _ => None,
        };
        if let Some(text) = text {
            if seen.insert(text) {
                observed.push(text);
            }
        }
    }
    observed
}

/// Validates every operation and splits the history by key, in key order.
///
/// # Errors
/// [`CheckError::InvalidOperation`] for the first operation that fails
/// [`Operation::validate`].
pub(super) fn split_by_key(
    operations: &[Operation],
) -> Result<BTreeMap<&str, KeyHistory<'_>>, CheckError> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for (index, operation) in operations.iter().enumerate() {
        operation
            .validate()
            .map_err(|reason| CheckError::InvalidOperation { index, reason })?;
        by_key
            .entry(operation.key.as_str())
            .or_default()
            .push(operation);
    }
    Ok(by_key
        .into_iter()
        .map(|(key, operations)| (key, KeyHistory::new(&operations)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{split_by_key, Need, RegisterStep, ValueId};
    use crate::check::history::parse_history;

    const A: ValueId = ValueId(2);
    const B: ValueId = ValueId(3);

    #[test]
    fn get_reads_only_the_current_value() {
        assert_eq!(RegisterStep::Get { read: A }.apply(A), Some(A));
        assert_eq!(RegisterStep::Get { read: A }.apply(B), None);
        assert_eq!(RegisterStep::Get { read: A }.need(B), Need::Value(A));
        assert_eq!(
            RegisterStep::Get {
                read: ValueId::ABSENT
            }
            .apply(ValueId::ABSENT),
            Some(ValueId::ABSENT)
        );
    }

    #[test]
    fn write_always_runs() {
        assert_eq!(RegisterStep::Write { written: B }.apply(A), Some(B));
        assert_eq!(
            RegisterStep::Write {
                written: ValueId::ABSENT
            }
            .apply(A),
            Some(ValueId::ABSENT)
        );
        assert_eq!(RegisterStep::Write { written: B }.need(A), Need::Nothing);
    }

    #[test]
    fn cas_follows_its_result() {
        let swap = |swapped| RegisterStep::Cas {
            expected: A,
            new: B,
            swapped,
        };
        assert_eq!(swap(Some(true)).apply(A), Some(B));
        assert_eq!(swap(Some(true)).apply(ValueId::ABSENT), None);
        assert_eq!(swap(Some(true)).need(ValueId::ABSENT), Need::Value(A));
        assert_eq!(swap(Some(false)).apply(A), None);
        assert_eq!(swap(Some(false)).need(A), Need::AnyOther);
        assert_eq!(swap(Some(false)).apply(B), Some(B));
        assert_eq!(swap(None).apply(A), Some(B));
        assert_eq!(swap(None).apply(B), None);
        let from_absent = RegisterStep::Cas {
            expected: ValueId::ABSENT,
            new: A,
            swapped: Some(true),
        };
        assert_eq!(from_absent.apply(ValueId::ABSENT), Some(A));
    }

    #[test]
    fn unobserved_values_share_one_id() {
        let text = [
            r#"{"client":1,"kind":"put","key":"k","value":"x","expected":null,"output":null,"invoke":0,"complete":1,"outcome":"ok"}"#,
            r#"{"client":1,"kind":"put","key":"k","value":"y","expected":null,"output":null,"invoke":2,"complete":3,"outcome":"unknown"}"#,
            r#"{"client":1,"kind":"put","key":"k","value":"z","expected":null,"output":null,"invoke":1,"complete":3,"outcome":"unknown"}"#,
            r#"{"client":1,"kind":"get","key":"k","value":null,"expected":null,"output":"z","invoke":4,"complete":5,"outcome":"ok"}"#,
            r#"{"client":1,"kind":"get","key":"k","value":null,"expected":null,"output":"w","invoke":4,"complete":5,"outcome":"unknown"}"#,
        ]
        .join("\n");
        let operations = parse_history(&text).expect("valid history");
        let keys = split_by_key(&operations).expect("valid history");
        let history = &keys["k"];
        assert_eq!(
            history.required[0].step,
            RegisterStep::Write {
                written: ValueId::UNOBSERVED
            }
        );
        assert_eq!(history.required[1].step, RegisterStep::Get { read: A });
        // Sorted by invoke: z (observed) before y (unobserved).
        assert_eq!(history.optional[0].step, RegisterStep::Write { written: A });
        assert_eq!(
            history.optional[1].step,
            RegisterStep::Write {
                written: ValueId::UNOBSERVED
            }
        );
        assert_eq!(history.same_step_before, vec![None, None]);
        assert_eq!(history.describe_value(A), r#""z""#);
        assert_eq!(
            history.describe_value(ValueId::UNOBSERVED),
            "a value no operation reads"
        );
    }
}
