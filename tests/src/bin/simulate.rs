//! Runs the deterministic simulator over many seeds and reports every
//! violation with the command line that replays it.
//!
//! `cargo run --release -p synod-tests --bin simulate -- --seeds 1000`

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use synod_engine::sim::{self, FaultCounts, FaultSet, RunStats, SimConfig, SimReport};
use synod_tests::{describe_failure, Bug};

/// Runs simulation seeds and checks every run.
#[derive(Parser, Debug, Clone)]
#[command(name = "simulate")]
struct Arguments {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Rerun exactly this seed (overrides --seeds and --first-seed).
    #[arg(long)]
    seed: Option<u64>,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Replica count: 3, 5 or 7.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Client count.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Operations each client keeps in flight (1-4).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Clients (among --clients) that only read.
    #[arg(long, default_value_t = 0)]
    readers: usize,
    /// Shared keys.
    #[arg(long, default_value_t = 10)]
    keys: usize,
    /// Client operations per seed (at least).
    #[arg(long, default_value_t = 1000)]
    ops: u64,
    /// Fault classes: all, none, or a list of
    /// drop,dup,reorder,delay,partition,crash,disk,corrupt,clock.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Chance (parts per million) that a crash corrupts a synced record
    /// (or, one time in eight, a metadata copy).
    #[arg(long)]
    corrupt_ppm: Option<u64>,
    /// Mean virtual time between random partitions and crashes, in ms.
    #[arg(long)]
    fault_interval_ms: Option<u64>,
    /// A deliberate bug to switch on (may be given more than once).
    #[arg(long, value_enum)]
    bug: Vec<Bug>,
    /// Write the JSON-lines history of the (single) run to this file.
    #[arg(long)]
    history: Option<std::path::PathBuf>,
    /// Print the event trace of every run.
    #[arg(long)]
    trace: bool,
    /// How many of the last events the trace keeps.
    #[arg(long, default_value_t = 128)]
    trace_events: usize,
    /// Model a driver that forgets a damaged recovery after a restart.
    #[arg(long)]
    forget_damage: bool,
    /// Stop at the first seed with a violation and say how many seeds it took.
    #[arg(long)]
    stop_on_violation: bool,
    /// Run the scripted fault schedule aimed at this bug (the bug itself is
    /// switched on only with --bug) instead of random faults.
    #[arg(long, value_enum)]
    aimed_at: Option<Bug>,
    /// Worker threads (default: the available cores).
    #[arg(long)]
    jobs: Option<usize>,
}

thread_local! {
    /// Set while a worker runs a seed: its panics are reported as violations.
    static IN_SIMULATION: Cell<bool> = const { Cell::new(false) };
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("simulate: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn sim_config(arguments: &Arguments, seed: u64) -> anyhow::Result<SimConfig> {
    if let Some(bug) = arguments.aimed_at {
        let mut config = synod_tests::aimed_config(bug, seed);
        config.trace_entries_max = arguments.trace_events;
        for bug in &arguments.bug {
            bug.switch_on(&mut config);
        }
        return Ok(config);
    }
    let mut config = SimConfig {
        seed,
        replicas: arguments.replicas,
        clients: arguments.clients,
        keys: arguments.keys,
        client_pipeline_depth: arguments.pipeline,
        reader_clients: arguments.readers,
        operations_min: arguments.ops,
        faults: FaultSet::parse(&arguments.faults)?,
        trace_entries_max: arguments.trace_events,
        driver_forgets_damage: arguments.forget_damage,
        ..SimConfig::default()
    };
    if let Some(corrupt_ppm) = arguments.corrupt_ppm {
        config.rates.corrupt_ppm = corrupt_ppm;
    }
    if let Some(interval_ms) = arguments.fault_interval_ms {
        config.rates.fault_interval_mean_ns = interval_ms * 1_000_000;
    }
    anyhow::ensure!(
        (1..=7).contains(&config.replicas),
        "--replicas must be between 1 and 7"
    );
    anyhow::ensure!(config.clients > 0, "--clients must be positive");
    for bug in &arguments.bug {
        bug.switch_on(&mut config);
    }
    Ok(config)
}

fn rerun_command(arguments: &Arguments, seed: u64) -> String {
    let mut command = format!(
        "cargo run --release -p synod-tests --bin simulate -- --seed {seed} --replicas {} --clients {} --readers {} --pipeline {} --keys {} --ops {} --faults {}",
        arguments.replicas,
        arguments.clients,
        arguments.readers,
        arguments.pipeline,
        arguments.keys,
        arguments.ops,
        arguments.faults
    );
    for bug in &arguments.bug {
        let _ = write!(command, " --bug {}", bug.name());
    }
    if arguments.forget_damage {
        command.push_str(" --forget-damage");
    }
    if let Some(corrupt_ppm) = arguments.corrupt_ppm {
        let _ = write!(command, " --corrupt-ppm {corrupt_ppm}");
    }
    if let Some(interval_ms) = arguments.fault_interval_ms {
        let _ = write!(command, " --fault-interval-ms {interval_ms}");
    }
    if let Some(bug) = arguments.aimed_at {
        let _ = write!(command, " --aimed-at {}", bug.name());
    }
    command.push_str(" --trace");
    command
}

/// Totals over all seeds.
#[derive(Default)]
struct Totals {
    seeds: u64,
    failing_seeds: Vec<u64>,
    violations: u64,
    operations: u64,
    ok: u64,
    unknown: u64,
    failed: u64,
    commits: u64,
    elections: u64,
    events: u64,
    faults: FaultCounts,
    stats: RunStats,
}

impl Totals {
    fn add(&mut self, report: &SimReport) {
        self.seeds += 1;
        self.violations += report.violations.len() as u64;
        if !report.passed() {
            self.failing_seeds.push(report.seed);
        }
        self.operations += report.operations;
        self.ok += report.operations_ok;
        self.unknown += report.operations_unknown;
        self.failed += report.operations_failed;
        self.commits += report.commits;
        self.elections += report.elections;
        self.events += report.events;
        self.faults.add(&report.faults);
        self.stats.add(&report.stats);
    }
}

fn run() -> anyhow::Result<bool> {
    let arguments = Arguments::parse();
    let (first, count) = match arguments.seed {
        Some(seed) => (seed, 1),
        None => (arguments.first_seed, arguments.seeds),
    };
    sim_config(&arguments, first)?;
    install_quiet_panic_hook();
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut stopped_at = None;
    run_seeds(&arguments, first, count, |report| {
        if arguments.trace {
            for line in &report.trace {
                println!("{line}");
            }
        }
        if let Some(path) = &arguments.history {
            std::fs::write(path, report.history_json_lines())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        totals.add(&report);
        if !report.passed() {
            print!("{}", describe_failure(&report, 60));
            println!("  rerun: {}", rerun_command(&arguments, report.seed));
            if arguments.stop_on_violation {
                stopped_at = Some(report.seed);
                return Ok(false);
            }
        }
        if totals.seeds % 100 == 0 && count > 100 {
            eprintln!("... {} seeds", totals.seeds);
        }
        Ok(true)
    })?;
    let elapsed = started.elapsed();
    print_totals(&arguments, &totals, elapsed.as_secs_f64());
    if let Some(seed) = stopped_at {
        println!(
            "first violation at seed {seed}: {} seeds run",
            seed - first + 1
        );
    }
    println!(
        "simulated {} seeds: {} violations",
        totals.seeds, totals.violations
    );
    Ok(totals.violations == 0)
}

fn print_totals(arguments: &Arguments, totals: &Totals, seconds: f64) {
    let faults = match arguments.aimed_at {
        Some(bug) => format!("scripted, aimed at {}", bug.name()),
        None => arguments.faults.clone(),
    };
    let shape = sim_config(arguments, arguments.first_seed).unwrap_or_default();
    println!(
        "replicas {} clients {} (readers {}, pipeline {}) keys {} faults {}{}",
        shape.replicas,
        shape.clients,
        shape.reader_clients,
        shape.client_pipeline_depth,
        shape.keys,
        faults,
        arguments
            .bug
            .iter()
            .map(|bug| format!(" bug {}", bug.name()))
            .collect::<String>()
    );
    println!(
        "operations {} (ok {} unknown {} failed {}), commits {}, elections {}, events {}",
        totals.operations,
        totals.ok,
        totals.unknown,
        totals.failed,
        totals.commits,
        totals.elections,
        totals.events
    );
    println!("replicas did: {}", totals.stats);
    println!("faults injected: {}", totals.faults);
    if !totals.failing_seeds.is_empty() {
        let shown = &totals.failing_seeds[..totals.failing_seeds.len().min(20)];
        println!(
            "failing seeds: {} of {} ({:.1} %), first {:?}",
            totals.failing_seeds.len(),
            totals.seeds,
            totals.failing_seeds.len() as f64 * 100.0 / totals.seeds.max(1) as f64,
            shown
        );
    }
    println!(
        "wall time {seconds:.2} s ({:.1} ms per seed)",
        seconds * 1000.0 / totals.seeds.max(1) as f64
    );
}

/// Runs `count` seeds from `first` on worker threads and hands the reports
/// to `each` in seed order; `each` returns false to stop early.
fn run_seeds(
    arguments: &Arguments,
    first: u64,
    count: u64,
    mut each: impl FnMut(SimReport) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let jobs = arguments
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()))
        .max(1);
    let next = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let keep_history = arguments.history.is_some();
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<SimReport>();
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || loop {
                let offset = next.fetch_add(1, Ordering::SeqCst);
                if offset >= count || stop.load(Ordering::SeqCst) {
                    return;
                }
                let config = sim_config(arguments, first + offset)
                    .expect("checked before the workers start");
                IN_SIMULATION.with(|flag| flag.set(true));
                let mut report = sim::run(&config);
                IN_SIMULATION.with(|flag| flag.set(false));
                if !keep_history {
                    report.history = Vec::new();
                }
                if sender.send(report).is_err() {
                    return;
                }
            });
        }
        drop(sender);
        let mut pending: BTreeMap<u64, SimReport> = BTreeMap::new();
        let mut expected = first;
        for report in receiver {
            pending.insert(report.seed, report);
            while let Some(report) = pending.remove(&expected) {
                expected += 1;
                if !each(report)? {
                    stop.store(true, Ordering::SeqCst);
                    return Ok(());
                }
            }
        }
        Ok(())
    })
}

/// Panics inside a simulation are caught and reported as violations; keep
/// them off stderr. Any other panic prints as usual.
fn install_quiet_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_SIMULATION.with(Cell::get) {
            default(info);
        }
    }));
}
