//! Random histories that are linearizable by construction: a sequential run
//! of the model whose operations' intervals are then stretched around their
//! linearization points so they overlap.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{
    check_history, parse_history, CheckBudget, Operation, OperationKind, Outcome, Output, Verdict,
};

/// Time between consecutive linearization points.
const POINT_SPACING_NS: u64 = 100;

/// How far an interval may reach past its linearization point on each side:
/// up to seven neighbours' points, so intervals overlap heavily.
const STRETCH_MAX_NS: u64 = 7 * POINT_SPACING_NS;

/// What happened to a planned operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    Ok,
    UnknownTookEffect,
    UnknownNoEffect,
    Failed,
}

#[derive(Clone, Debug)]
struct Planned {
    key: u8,
    kind: OperationKind,
    value: u8,
    /// For a cas: 0 expects absent, n expects value n - 1.
    expected: u8,
    fate: Fate,
    client: u8,
    before_ns: u64,
    after_ns: u64,
}

fn planned() -> impl Strategy<Value = Planned> {
    let kind = prop_oneof![
        Just(OperationKind::Get),
        Just(OperationKind::Put),
        Just(OperationKind::Delete),
        Just(OperationKind::Cas)
    ];
    let fate = prop_oneof![
        6 => Just(Fate::Ok),
        1 => Just(Fate::UnknownTookEffect),
        1 => Just(Fate::UnknownNoEffect),
        1 => Just(Fate::Failed),
    ];
    (
        0..3u8,
        kind,
        0..4u8,
        0..5u8,
        fate,
        0..8u8,
        0..=STRETCH_MAX_NS,
        0..=STRETCH_MAX_NS,
    )
        .prop_map(
            |(key, kind, value, expected, fate, client, before_ns, after_ns)| Planned {
                key,
                kind,
                value,
                expected,
                fate,
                client,
                before_ns,
                after_ns,
            },
        )
}

/// Runs the plan on the model, one operation per linearization point, and
/// records each with an interval around its point.
fn build(plan: &[Planned]) -> Vec<Operation> {
    let mut store: BTreeMap<String, String> = BTreeMap::new();
    let mut history = Vec::with_capacity(plan.len());
    for (position, planned) in plan.iter().enumerate() {
        let point_ns = STRETCH_MAX_NS + POINT_SPACING_NS * position as u64;
        let key = format!("k{}", planned.key);
        let value = format!("v{}", planned.value);
        let expected = planned
            .expected
            .checked_sub(1)
            .map(|value| format!("v{value}"));
        let current = store.get(&key).cloned();
        let takes_effect = matches!(planned.fate, Fate::Ok | Fate::UnknownTookEffect);
        let mut output = Output::None;
        match planned.kind {
            OperationKind::Get => output = Output::Value(current.clone()),
            OperationKind::Put if takes_effect => drop(store.insert(key.clone(), value.clone())),
            OperationKind::Delete if takes_effect => drop(store.remove(&key)),
            OperationKind::Cas => {
                let swapped = current == expected;
                if takes_effect && swapped {
                    store.insert(key.clone(), value.clone());
                }
                output = Output::Cas(swapped);
            }
            OperationKind::Put | OperationKind::Delete => {}
        }
        let outcome = match planned.fate {
            Fate::Ok => Outcome::Ok,
            Fate::UnknownTookEffect | Fate::UnknownNoEffect => Outcome::Unknown,
            Fate::Failed => Outcome::Failed,
        };
        if planned.kind == OperationKind::Cas && outcome != Outcome::Ok {
            output = Output::None;
        }
        let writes_value = matches!(planned.kind, OperationKind::Put | OperationKind::Cas);
        history.push(Operation {
            client: u64::from(planned.client),
            kind: planned.kind,
            key,
            value: writes_value.then_some(value),
            expected: if planned.kind == OperationKind::Cas {
                expected
            } else {
                None
            },
            output,
            invoke_ns: point_ns - planned.before_ns,
            complete_ns: point_ns + planned.after_ns,
            outcome,
        });
    }
    history
}

fn verdict(history: &[Operation]) -> Verdict {
    check_history(history, CheckBudget::default())
        .expect("built histories are valid")
        .verdict
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stretched_sequential_histories_are_linearizable(plan in prop::collection::vec(planned(), 0..80)) {
        let history = build(&plan);
        prop_assert_eq!(verdict(&history), Verdict::Linearizable);
    }

    #[test]
    fn a_read_of_a_never_written_value_is_caught(
        plan in prop::collection::vec(planned(), 1..80),
        selector in any::<prop::sample::Index>(),
    ) {
        let mut history = build(&plan);
        let ok_gets: Vec<usize> = history
            .iter()
            .enumerate()
            .filter(|(_, operation)| operation.kind == OperationKind::Get && operation.outcome == Outcome::Ok)
            .map(|(index, _)| index)
            .collect();
        prop_assume!(!ok_gets.is_empty());
        let mutated = ok_gets[selector.index(ok_gets.len())];
        history[mutated].output = Output::Value(Some("never written".to_owned()));
        let verdict = verdict(&history);
        prop_assert!(
            matches!(&verdict, Verdict::NotLinearizable { key, .. } if *key == history[mutated].key),
            "{:?}",
            verdict
        );
    }

    #[test]
    fn histories_survive_the_json_round_trip(plan in prop::collection::vec(planned(), 0..40)) {
        let history = build(&plan);
        let text: String = history.iter().map(|operation| operation.to_json_line() + "\n").collect();
        prop_assert_eq!(parse_history(&text).expect("written histories parse"), history);
    }
}

/// Arbitrary small one-key histories, mostly not linearizable: random
/// intervals, outputs and outcomes over two values.
fn arbitrary_operation() -> impl Strategy<Value = Operation> {
    let kind = prop_oneof![
        Just(OperationKind::Get),
        Just(OperationKind::Put),
        Just(OperationKind::Delete),
        Just(OperationKind::Cas)
    ];
    let outcome = prop_oneof![3 => Just(Outcome::Ok), 2 => Just(Outcome::Unknown), 1 => Just(Outcome::Failed)];
    let text = || prop::option::of(prop_oneof![Just("a".to_owned()), Just("b".to_owned())]);
    (
        kind,
        outcome,
        text(),
        text(),
        text(),
        any::<bool>(),
        0..40u64,
        0..25u64,
    )
        .prop_map(
            |(kind, outcome, value, expected, read, swapped, invoke_ns, duration_ns)| {
                let value = match kind {
                    OperationKind::Put | OperationKind::Cas => {
                        Some(value.unwrap_or_else(|| "a".to_owned()))
                    }
                    OperationKind::Get | OperationKind::Delete => None,
                };
                let output = match (kind, outcome) {
                    (OperationKind::Get, _) => Output::Value(read),
                    (OperationKind::Cas, Outcome::Ok) => Output::Cas(swapped),
                    _ => Output::None,
                };
                Operation {
                    client: 0,
                    kind,
                    key: "k".to_owned(),
                    value,
                    expected: if kind == OperationKind::Cas {
                        expected
                    } else {
                        None
                    },
                    output,
                    invoke_ns,
                    complete_ns: invoke_ns + duration_ns,
                    outcome,
                }
            },
        )
}

/// Linearizability straight from the definition: every order real time
/// allows, key by key, remembering only (operations placed, value) pairs
/// already seen to fail. No reductions beyond that.
fn reference_linearizable(history: &[Operation]) -> bool {
    let keys: std::collections::BTreeSet<&str> = history
        .iter()
        .map(|operation| operation.key.as_str())
        .collect();
    keys.into_iter().all(|key| {
        let candidates: Vec<&Operation> = history
            .iter()
            .filter(|operation| operation.key == key)
            .filter(|operation| match operation.outcome {
                Outcome::Ok => true,
                Outcome::Unknown => operation.kind != OperationKind::Get,
                Outcome::Failed => false,
            })
            .collect();
        assert!(
            candidates.len() <= 64,
            "the reference search handles up to 64 operations a key"
        );
        reference_from(&candidates, 0, None, &mut std::collections::HashSet::new())
    })
}

fn reference_from(
    candidates: &[&Operation],
    placed: u64,
    state: Option<String>,
    failed: &mut std::collections::HashSet<(u64, Option<String>)>,
) -> bool {
    let pending =
        |index: usize| placed & (1 << index) == 0 && candidates[index].outcome == Outcome::Ok;
    if !(0..candidates.len()).any(pending) {
        return true;
    }
    if failed.contains(&(placed, state.clone())) {
        return false;
    }
    for (index, operation) in candidates.iter().enumerate() {
        let blocked = (0..candidates.len()).any(|other| {
            other != index && pending(other) && candidates[other].complete_ns < operation.invoke_ns
        });
        if placed & (1 << index) != 0 || blocked {
            continue;
        }
        let Some(next) = reference_step(operation, &state) else {
            continue;
        };
        if reference_from(candidates, placed | (1 << index), next, failed) {
            return true;
        }
    }
    failed.insert((placed, state));
    false
}

/// The register's value after `operation` runs on `state`, if it can run.
fn reference_step(operation: &Operation, state: &Option<String>) -> Option<Option<String>> {
    match (operation.kind, &operation.output) {
        (OperationKind::Get, Output::Value(read)) => (read == state).then(|| state.clone()),
        (OperationKind::Get, _) => None,
        (OperationKind::Put, _) => Some(operation.value.clone()),
        (OperationKind::Delete, _) => Some(None),
        (OperationKind::Cas, output) => {
            let matches = *state == operation.expected;
            match output {
                Output::Cas(swapped) if *swapped != matches => None,
                _ if matches => Some(operation.value.clone()),
                _ => Some(state.clone()),
            }
        }
    }
}

/// Changes some outputs of a history so it may no longer be linearizable.
fn mutate(history: &mut [Operation], mutations: &[(prop::sample::Index, u8)]) {
    if history.is_empty() {
        return;
    }
    for (index, choice) in mutations {
        let operation = &mut history[index.index(history.len())];
        operation.output = match &operation.output {
            Output::Value(_) => {
                Output::Value(choice.checked_sub(1).map(|value| format!("v{value}")))
            }
            Output::Cas(swapped) => Output::Cas(!swapped),
            Output::None => Output::None,
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_the_reference_on_small_histories(
        history in prop::collection::vec(arbitrary_operation(), 0..10),
    ) {
        let expected = reference_linearizable(&history);
        let verdict = verdict(&history);
        prop_assert_eq!(verdict == Verdict::Linearizable, expected, "{:?}", verdict);
        let exhausted = matches!(verdict, Verdict::Unknown { .. });
        prop_assert!(!exhausted, "{:?}", verdict);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn agrees_with_the_reference_on_mutated_histories(
        plan in prop::collection::vec(planned(), 0..40),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), 0..5u8), 0..3),
    ) {
        let mut history = build(&plan);
        mutate(&mut history, &mutations);
        let expected = reference_linearizable(&history);
        let verdict = verdict(&history);
        prop_assert_eq!(verdict == Verdict::Linearizable, expected, "{:?}", verdict);
    }
}
