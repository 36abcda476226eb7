//! An embedder's own state machine in the simulator: a counter with
//! increments and reads, its own workload and its own history check, run
//! under every fault class; and broken counters the simulator must catch.

use std::cell::Cell;

use synod_engine::sim::{
    self, Completed, HistoryVerdict, KvWorkload, Outcome, Random, Recorded, Request, Response,
    SimConfig, SimReport, ViolationKind, Workload,
};
use synod_engine::sm::{QueryError, SnapshotError, StateMachine};
use synod_engine::wire::Slot;

/// The increment command's payload.
const INCREMENT: &[u8] = b"increment";

/// How a counter is broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    /// A correct counter.
    None,
    /// `apply` answers with a number from outside the state (a per-thread
    /// call count), so replicas answer the same slot differently.
    NondeterministicApply,
    /// `query` answers one less than the count once it passes 5: a stale
    /// read that only a history check can see.
    StaleQuery,
}

thread_local! {
    /// Calls to `apply` on this thread, across every replica: the outside
    /// input of [`Flaw::NondeterministicApply`].
    static APPLY_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Counts increments; a read returns the count.
#[derive(Debug)]
struct Counter {
    count: u64,
    flaw: Flaw,
}

fn encode(value: u64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn decode(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

impl StateMachine for Counter {
    fn apply(&mut self, _slot: Slot, payload: &[u8]) -> Vec<u8> {
        if payload != INCREMENT {
            return Vec::new();
        }
        self.count += 1;
        if self.flaw == Flaw::NondeterministicApply {
            let calls = APPLY_CALLS.with(|calls| {
                calls.set(calls.get() + 1);
                calls.get()
            });
            return encode(calls);
        }
        encode(self.count)
    }

    fn query(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        if !request.is_empty() {
            return Err(QueryError::Unsupported {
                reason: "a counter has one query: the empty request".to_owned(),
            });
        }
        match self.flaw {
            Flaw::StaleQuery if self.count > 5 => Ok(encode(self.count - 1)),
            _ => Ok(encode(self.count)),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        encode(self.count)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        self.count = decode(snapshot).ok_or_else(|| SnapshotError::Malformed {
            reason: format!("a counter snapshot is 8 bytes, not {}", snapshot.len()),
        })?;
        Ok(())
    }
}

/// What a counter client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Increment,
    Read,
}

/// One ended operation of the counter history.
#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    outcome: Outcome,
    /// The count an increment made or a read returned (when `ok`).
    value: Option<u64>,
    invoke_ns: u64,
    complete_ns: u64,
}

/// Increments and reads of one shared counter.
#[derive(Debug)]
struct CounterWorkload {
    flaw: Flaw,
    history: Vec<Entry>,
    /// Answers that do not decode.
    anomalies: u64,
}

impl CounterWorkload {
    fn new(flaw: Flaw) -> CounterWorkload {
        CounterWorkload {
            flaw,
            history: Vec::new(),
            anomalies: 0,
        }
    }
}

impl Workload for CounterWorkload {
    type Machine = Counter;
    type Operation = Kind;

    fn machine(&mut self) -> Counter {
        Counter {
            count: 0,
            flaw: self.flaw,
        }
    }

    fn next_operation(&mut self, _client: usize, random: &mut Random) -> (Kind, Request) {
        match random.below(100) {
            0..=39 => (Kind::Read, Request::Read { query: Vec::new() }),
            _ => (
                Kind::Increment,
                Request::Write {
                    payload: INCREMENT.to_vec(),
                },
            ),
        }
    }

    fn record(&mut self, completed: Completed<Kind>) -> Recorded {
        let (outcome, value) = match &completed.response {
            Response::Applied(bytes) | Response::Read(Ok(bytes)) => match decode(bytes) {
                Some(value) => (Outcome::Ok, Some(value)),
                None => (Outcome::Unknown, None),
            },
            Response::Unknown => (Outcome::Unknown, None),
            Response::Read(Err(_)) | Response::Unanswered => (Outcome::Failed, None),
        };
        let anomaly = match (&completed.response, value) {
            (Response::Applied(_) | Response::Read(Ok(_)), None) => {
                self.anomalies += 1;
                Some(format!("a counter answered {:?}", completed.response))
            }
            (Response::Read(Err(error)), _) => Some(format!("a counter read failed: {error}")),
            _ => None,
        };
        self.history.push(Entry {
            kind: completed.operation,
            outcome,
            value,
            invoke_ns: completed.invoke_ns,
            complete_ns: completed.complete_ns,
        });
        Recorded {
            outcome,
            description: format!("client {} {:?}", completed.client, completed.operation),
            answer: format!("{outcome:?} {value:?}"),
            anomaly,
        }
    }

    fn check(&mut self) -> HistoryVerdict {
        match check_counter(&self.history) {
            Ok(()) => HistoryVerdict::Passed,
            Err(description) => HistoryVerdict::Failed { description },
        }
    }
}

/// A counter history is consistent when every `ok` value lies between the
/// increments that surely happened before it (acknowledged before it was
/// invoked) and those that may have (invoked before it completed), and no
/// two increments made the same count.
fn check_counter(history: &[Entry]) -> Result<(), String> {
    let increments: Vec<&Entry> = history
        .iter()
        .filter(|entry| entry.kind == Kind::Increment && entry.outcome != Outcome::Failed)
        .collect();
    let mut made: Vec<u64> = Vec::new();
    for entry in history.iter().filter(|entry| entry.outcome == Outcome::Ok) {
        let value = entry.value.ok_or("an ok operation without a value")?;
        let before = increments
            .iter()
            .filter(|increment| {
                increment.outcome == Outcome::Ok && increment.complete_ns < entry.invoke_ns
            })
            .count() as u64;
        let possible = increments
            .iter()
            .filter(|increment| increment.invoke_ns <= entry.complete_ns)
            .count() as u64;
        // An increment's own count includes itself.
        let lowest = before + u64::from(entry.kind == Kind::Increment);
        if value < lowest || value > possible {
            return Err(format!(
                "{:?} in [{}, {}] ns saw {value}, but it must be in {lowest}..={possible}",
                entry.kind, entry.invoke_ns, entry.complete_ns
            ));
        }
        if entry.kind == Kind::Increment {
            made.push(value);
        }
    }
    made.sort_unstable();
    if let Some(pair) = made.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("two increments both made the count {}", pair[0]));
    }
    Ok(())
}

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        operations_min: 400,
        client_pipeline_depth: 1 + (seed % 3) as usize,
        ..SimConfig::default()
    }
}

fn run_counter(seed: u64, flaw: Flaw) -> (SimReport, CounterWorkload) {
    let mut workload = CounterWorkload::new(flaw);
    let report = sim::run_workload(&config(seed), &mut workload);
    (report, workload)
}

#[test]
fn a_correct_counter_passes_every_check_under_every_fault() {
    let mut faults = 0;
    for seed in 1..=20 {
        let (report, workload) = run_counter(seed, Flaw::None);
        assert!(
            report.passed(),
            "seed {seed}: {:#?}\n{}",
            report.violations,
            report.trace.join("\n")
        );
        assert!(report.operations >= 400, "seed {seed}");
        assert_eq!(report.operations, workload.history.len() as u64);
        assert!(report.history.is_empty(), "the workload keeps its history");
        assert_eq!(workload.anomalies, 0);
        let reads = workload
            .history
            .iter()
            .filter(|entry| entry.kind == Kind::Read && entry.outcome == Outcome::Ok)
            .count();
        assert!(reads > 0, "seed {seed} read the counter");
        faults += report.faults.crashes + report.faults.partitions;
    }
    assert!(faults > 0, "the runs injected crashes and partitions");
}

#[test]
fn a_counter_run_replays_exactly() {
    let (first, first_workload) = run_counter(5, Flaw::None);
    let (second, second_workload) = run_counter(5, Flaw::None);
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.events, second.events);
    let values = |workload: &CounterWorkload| -> Vec<Option<u64>> {
        workload.history.iter().map(|entry| entry.value).collect()
    };
    assert_eq!(values(&first_workload), values(&second_workload));
}

#[test]
fn a_nondeterministic_apply_is_caught_as_divergence() {
    let (report, _) = run_counter(1, Flaw::NondeterministicApply);
    assert!(
        report
            .violations
            .iter()
            .any(|violation| violation.kind == ViolationKind::Divergence),
        "{:#?}",
        report.violations
    );
}

#[test]
fn a_stale_query_is_caught_by_the_workload_check() {
    let caught = (1..=5).any(|seed| {
        let (report, _) = run_counter(seed, Flaw::StaleQuery);
        let kinds: Vec<ViolationKind> = report.violations.iter().map(|v| v.kind).collect();
        assert!(
            !kinds.contains(&ViolationKind::Divergence),
            "a stale query leaves the replicated state alone: {kinds:?}"
        );
        kinds.contains(&ViolationKind::NotLinearizable)
    });
    assert!(caught, "no seed of 1..=5 caught the stale query");
}

#[test]
fn the_history_check_catches_a_planted_inconsistency() {
    let entry = |kind, value, invoke_ns, complete_ns| Entry {
        kind,
        outcome: Outcome::Ok,
        value: Some(value),
        invoke_ns,
        complete_ns,
    };
    let good = [
        entry(Kind::Increment, 1, 0, 10),
        entry(Kind::Read, 1, 20, 30),
        entry(Kind::Increment, 2, 25, 40),
        entry(Kind::Read, 1, 26, 50),
    ];
    assert_eq!(check_counter(&good), Ok(()));
    let stale = [
        entry(Kind::Increment, 1, 0, 10),
        entry(Kind::Read, 0, 20, 30),
    ];
    assert!(check_counter(&stale).is_err());
    let twice = [
        entry(Kind::Increment, 1, 0, 10),
        entry(Kind::Increment, 1, 5, 12),
    ];
    assert!(check_counter(&twice).is_err());
}

#[test]
fn run_is_run_workload_with_the_kv_workload() {
    let config = SimConfig {
        seed: 3,
        operations_min: 300,
        ..SimConfig::default()
    };
    let through_run = sim::run(&config);
    let mut workload = KvWorkload::new(&config);
    let report = sim::run_workload(&config, &mut workload);
    assert!(through_run.passed(), "{:?}", through_run.violations);
    assert_eq!(through_run.history, workload.history());
    assert_eq!(through_run.trace, report.trace);
    assert_eq!(through_run.events, report.events);
}
