//! What a simulation run is asked to do: [`SimConfig`] and the fault
//! classes it may inject ([`FaultSet`]), with the rates and timings they use
//! ([`FaultRates`]).

use std::fmt;

use crate::paxos::{Bugs, Config};

use super::fault::Schedule;

/// One simulation run: cluster shape, workload, faults and deliberate bugs.
/// The fields marked [`super::KvWorkload`] shape the built-in workload only;
/// another [`super::Workload`] ignores them.
/// Every field has a default ([`SimConfig::default`]); a run is fully
/// determined by this value (the seed included).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of the run's one random generator.
    pub seed: u64,
    /// Replica count: 3, 5 or 7.
    pub replicas: usize,
    /// Client count; each runs a closed loop, one operation at a time.
    pub clients: usize,
    /// Operations each client keeps in flight at once (1: a strict closed
    /// loop; 2-4: a small pipeline, so batches carry several commands).
    pub client_pipeline_depth: usize,
    /// [`super::KvWorkload`]: the first this many clients only read (the
    /// others mix gets, puts, deletes and cas).
    pub reader_clients: usize,
    /// [`super::KvWorkload`]: how many keys the clients share.
    pub keys: usize,
    /// The run ends once this many client operations have completed.
    pub operations_min: u64,
    /// The fault classes that may be injected.
    pub faults: FaultSet,
    /// Rates and timings of the faults and of the healthy network and disk.
    pub rates: FaultRates,
    /// A scripted fault schedule. When set, it replaces the random
    /// partitions, crashes and disk slowdowns; per-message faults still
    /// follow `faults`.
    pub schedule: Option<Schedule>,
    /// Deliberate protocol bugs to switch on in every replica.
    pub bugs: Bugs,
    /// The session table's deliberate bug: a retry of an applied command
    /// is applied again.
    pub session_bug_apply_twice: bool,
    /// Model a driver that forgets a damaged recovery once the bad records
    /// are cut off, so a replica that crashes again before it has caught up
    /// is told its log is intact. The replica records that it is recovering
    /// in its own durable metadata, so it still rejoins as a non-voter; the
    /// simulator's disk also stops sparing a second replica from damage
    /// while one recovers.
    pub driver_forgets_damage: bool,
    /// The replica configuration template; the simulator fills in `nodes`
    /// and `bugs`.
    pub replica_config: Config,
    /// Each replica snapshots its state machine every this many applied slots.
    pub snapshot_interval_slot_count: u64,
    /// Faults run until this share (in percent) of `operations_min` has
    /// completed and every scripted fault has fired (or `fault_phase_ns_max`
    /// has passed); then everything heals.
    pub fault_phase_percent: u64,
    /// The fault phase ends at this virtual time at the latest.
    pub fault_phase_ns_max: u64,
    /// After healing, a write must commit within this virtual time.
    pub liveness_timeout_ns: u64,
    /// A client retries an unanswered request after this long.
    pub request_timeout_ns: u64,
    /// A client gives up on an operation after this many attempts.
    pub attempts_max: u32,
    /// A run that has not finished by this virtual time is a violation.
    pub run_ns_max: u64,
    /// [`super::KvWorkload`]: search steps per key that the
    /// linearizability checker may take.
    pub check_steps_max: u64,
    /// The report's trace keeps the last this many events.
    pub trace_entries_max: usize,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        let replica_config = Config {
            retained_slot_count_max: 16,
            ..Config::default()
        };
        SimConfig {
            seed: 0,
            replicas: 3,
            clients: 5,
            reader_clients: 0,
            client_pipeline_depth: 1,
            keys: 10,
            operations_min: 1_000,
            faults: FaultSet::all(),
            rates: FaultRates::default(),
            schedule: None,
            bugs: Bugs::default(),
            session_bug_apply_twice: false,
            driver_forgets_damage: false,
            replica_config,
            snapshot_interval_slot_count: 32,
            fault_phase_percent: 75,
            fault_phase_ns_max: 120_000_000_000,
            liveness_timeout_ns: 10_000_000_000,
            request_timeout_ns: 250_000_000,
            attempts_max: 40,
            run_ns_max: 600_000_000_000,
            check_steps_max: 10_000_000,
            trace_entries_max: 128,
        }
    }
}

/// Rates and timings of the simulated network and disks, healthy and faulty.
/// Probabilities are in parts per million.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRates {
    /// A message takes between this and `latency_max_ns` in a healthy network.
    pub latency_min_ns: u64,
    /// See `latency_min_ns`.
    pub latency_max_ns: u64,
    /// Chance that a message is dropped (fault class `drop`).
    pub drop_ppm: u64,
    /// Chance that a message is delivered twice (fault class `dup`).
    pub duplicate_ppm: u64,
    /// Chance that a message gets up to `reorder_delay_max_ns` extra delay,
    /// so later messages overtake it (fault class `reorder`).
    pub reorder_ppm: u64,
    /// See `reorder_ppm`.
    pub reorder_delay_max_ns: u64,
    /// Chance of a delay spike between `spike_min_ns` and `spike_max_ns`
    /// (fault class `delay`).
    pub spike_ppm: u64,
    /// See `spike_ppm`.
    pub spike_min_ns: u64,
    /// See `spike_ppm`.
    pub spike_max_ns: u64,
    /// A disk sync takes between this and `sync_max_ns`.
    pub sync_min_ns: u64,
    /// See `sync_min_ns`.
    pub sync_max_ns: u64,
    /// Mean virtual time between two random partition or crash faults.
    pub fault_interval_mean_ns: u64,
    /// A random partition heals after at most this long.
    pub partition_ns_max: u64,
    /// A crashed replica restarts after at most this long.
    pub down_ns_max: u64,
    /// Chance that a crash also corrupts a synced record, or one time in
    /// eight a copy of the metadata file (fault class `corrupt`).
    pub corrupt_ppm: u64,
    /// Chance that a crash fault is a power failure: every replica crashes
    /// at once (fault class `crash`).
    pub power_failure_ppm: u64,
    /// Chance that a crash waits for the moment its replica (any replica,
    /// for a power failure) has just started a group commit write, so that
    /// the write in flight is lost, torn or kept.
    pub crash_during_write_ppm: u64,
}

impl Default for FaultRates {
    fn default() -> FaultRates {
        FaultRates {
            latency_min_ns: 100_000,
            latency_max_ns: 600_000,
            drop_ppm: 20_000,
            duplicate_ppm: 10_000,
            reorder_ppm: 50_000,
            reorder_delay_max_ns: 20_000_000,
            spike_ppm: 3_000,
            spike_min_ns: 100_000_000,
            spike_max_ns: 800_000_000,
            sync_min_ns: 100_000,
            sync_max_ns: 2_000_000,
            fault_interval_mean_ns: 700_000_000,
            partition_ns_max: 2_500_000_000,
            down_ns_max: 2_000_000_000,
            corrupt_ppm: 150_000,
            power_failure_ppm: 100_000,
            crash_during_write_ppm: 500_000,
        }
    }
}

/// The fault classes a run may inject. Each can be switched on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[allow(clippy::struct_excessive_bools)] // One switch per fault class, read by name.
pub struct FaultSet {
    /// Messages are dropped.
    pub drop: bool,
    /// Messages are delivered twice.
    pub duplicate: bool,
    /// Messages are delayed a little at random, so they arrive out of order.
    pub reorder: bool,
    /// Messages now and then take hundreds of milliseconds.
    pub delay: bool,
    /// Links between replicas are cut: a pair, one way, the leader
    /// isolated, a minority split from the majority; later healed.
    pub partition: bool,
    /// Replicas crash (losing all volatile state) and restart from disk.
    pub crash: bool,
    /// A crash loses the unsynced write, or keeps it, or tears it at any
    /// byte; disks are now and then slow, or full for a while.
    pub disk: bool,
    /// A crash rarely corrupts an already synced record.
    pub corrupt: bool,
    /// Clocks drift within the configured bound.
    pub clock: bool,
}

/// The names [`FaultSet::parse`] accepts, in display order.
const FAULT_NAMES: [&str; 9] = [
    "drop",
    "dup",
    "reorder",
    "delay",
    "partition",
    "crash",
    "disk",
    "corrupt",
    "clock",
];

/// A fault list that [`FaultSet::parse`] cannot read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown fault class {name:?}: expected all, none or a list of drop, dup, reorder, delay, partition, crash, disk, corrupt, clock")]
pub struct FaultSetParseError {
    /// The name that was not recognised.
    pub name: String,
}

impl FaultSet {
    /// Every fault class.
    #[must_use]
    pub fn all() -> FaultSet {
        FaultSet {
            drop: true,
            duplicate: true,
            reorder: true,
            delay: true,
            partition: true,
            crash: true,
            disk: true,
            corrupt: true,
            clock: true,
        }
    }

    /// No fault at all.
    #[must_use]
    pub fn none() -> FaultSet {
        FaultSet::default()
    }

    fn switch(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "drop" => &mut self.drop,
            "dup" | "duplicate" => &mut self.duplicate,
            "reorder" => &mut self.reorder,
            "delay" => &mut self.delay,
            "partition" => &mut self.partition,
            "crash" => &mut self.crash,
            "disk" => &mut self.disk,
            "corrupt" => &mut self.corrupt,
            "clock" => &mut self.clock,
            _ => return None,
        })
    }

    /// Reads `all`, `none` or a comma-separated list of class names
    /// (`drop,dup,reorder,delay,partition,crash,disk,corrupt,clock`).
    ///
    /// # Errors
    /// [`FaultSetParseError`] naming the first unknown class.
    pub fn parse(text: &str) -> Result<FaultSet, FaultSetParseError> {
        match text.trim() {
            "all" => return Ok(FaultSet::all()),
            "none" | "" => return Ok(FaultSet::none()),
            _ => {}
        }
        let mut set = FaultSet::none();
        for name in text.split(',').map(str::trim) {
            let switch = set.switch(name).ok_or_else(|| FaultSetParseError {
                name: name.to_owned(),
            })?;
            *switch = true;
        }
        Ok(set)
    }

    /// True when any message fault (drop, duplicate, reorder, delay) is on.
    #[must_use]
    pub fn any_message_fault(&self) -> bool {
        self.drop || self.duplicate || self.reorder || self.delay
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut copy = *self;
        let names: Vec<&str> = FAULT_NAMES
            .iter()
            .copied()
            .filter(|name| copy.switch(name).is_some_and(|on| *on))
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_shorthands() {
        assert_eq!(FaultSet::parse("all"), Ok(FaultSet::all()));
        assert_eq!(FaultSet::parse("none"), Ok(FaultSet::none()));
        let set = FaultSet::parse("drop,crash").expect("valid list");
        assert!(set.drop && set.crash && !set.partition);
        assert_eq!(set.to_string(), "drop,crash");
        assert_eq!(FaultSet::all().to_string(), FAULT_NAMES.join(","));
        assert!(FaultSet::parse("drop,flood").is_err());
    }
}
