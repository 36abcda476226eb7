//! Choosing, commit by commit, how an io_uring group commit becomes durable
//! ([`SyncMode::Adaptive`](crate::SyncMode::Adaptive)).
//!
//! Under io_uring the two ways trade places with the machine's load (crate
//! README, "Performance"): a write linked to an `fdatasync` pays one hop to
//! an io-wq worker on every commit (15-25 us); an `RWF_DSYNC` write is
//! finished by the file system's per-CPU completion worker, which is the
//! faster way on a quiet machine and, on a busy CPU, waits for a scheduler
//! tick (4-8 ms). [`SyncChooser`] keeps the way that has been faster lately
//! and tries the other one now and then.
//!
//! Invariants:
//! - The choice never touches durability: either way, a commit is durable
//!   once its completions are in. Only latency is at stake.
//! - A way that keeps losing is tried ever more rarely, down to one commit
//!   in [`PROBE_INTERVAL_MAX`]: a way that costs a scheduler tick costs at
//!   most one tick per that many commits.
//! - Estimates are in log2 of nanoseconds, so one slow outlier moves an
//!   estimate by a bounded factor rather than by its size.

use std::time::Duration;

/// How one group commit is made durable under io_uring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncWay {
    /// The write linked to an `fdatasync` (two operations).
    LinkedFdatasync,
    /// One write with `RWF_DSYNC`.
    DsyncWrite,
}

impl SyncWay {
    fn index(self) -> usize {
        match self {
            SyncWay::LinkedFdatasync => 0,
            SyncWay::DsyncWrite => 1,
        }
    }

    fn other(self) -> SyncWay {
        match self {
            SyncWay::LinkedFdatasync => SyncWay::DsyncWrite,
            SyncWay::DsyncWrite => SyncWay::LinkedFdatasync,
        }
    }
}

/// Commits between two tries of the other way, right after a switch.
pub const PROBE_INTERVAL_MIN: u32 = 16;
/// Commits between two tries of the other way, at most (after losing tries).
pub const PROBE_INTERVAL_MAX: u32 = 1024;
/// How much faster (log2) a way must look to take over: about 15 %.
const MARGIN_LOG2: f64 = 0.2;
/// The weight of a new sample in its way's estimate.
const WEIGHT: f64 = 0.25;

/// Picks the way for each commit from the latencies of the last ones.
#[derive(Clone, Debug)]
pub struct SyncChooser {
    current: SyncWay,
    /// Per way: a moving average of log2(latency in ns), once measured.
    estimate: [Option<f64>; 2],
    until_probe: u32,
    probe_interval: u32,
    switches: u64,
}

impl Default for SyncChooser {
    fn default() -> Self {
        SyncChooser::new()
    }
}

impl SyncChooser {
    /// Starts with the linked `fdatasync`, whose worst case is the milder.
    #[must_use]
    pub fn new() -> SyncChooser {
        SyncChooser {
            current: SyncWay::LinkedFdatasync,
            estimate: [None, None],
            until_probe: PROBE_INTERVAL_MIN,
            probe_interval: PROBE_INTERVAL_MIN,
            switches: 0,
        }
    }

    /// The way the chooser currently prefers.
    #[must_use]
    pub fn current(&self) -> SyncWay {
        self.current
    }

    /// How many times the preferred way changed.
    #[must_use]
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// The way for the next commit: the preferred one, or now and then the
    /// other one, to see whether it has become the faster.
    pub fn choose(&mut self) -> SyncWay {
        if self.until_probe == 0 {
            self.until_probe = self.probe_interval;
            return self.current.other();
        }
        self.until_probe -= 1;
        self.current
    }

    /// Records how long a commit made `way` took, from its submission to
    /// its last completion, and switches when the other way looks faster.
    pub fn record(&mut self, way: SyncWay, latency: Duration) {
        let sample = (latency.as_nanos().max(1) as f64).log2();
        let slot = &mut self.estimate[way.index()];
        *slot = Some(match *slot {
            None => sample,
            Some(old) => old + WEIGHT * (sample - old),
        });
        let (Some(mine), Some(theirs)) = (
            self.estimate[self.current.index()],
            self.estimate[self.current.other().index()],
        ) else {
            return;
        };
        if theirs + MARGIN_LOG2 < mine {
            self.current = self.current.other();
            self.switches += 1;
            self.probe_interval = PROBE_INTERVAL_MIN;
            self.until_probe = PROBE_INTERVAL_MIN;
        } else if way != self.current {
            // The other way was tried and did not take over. If this try
            // beat the preferred way, its estimate is catching up: try
            // again soon. Otherwise it lost: try it less often.
            self.probe_interval = if sample + MARGIN_LOG2 < mine {
                PROBE_INTERVAL_MIN
            } else {
                (self.probe_interval * 2).min(PROBE_INTERVAL_MAX)
            };
            self.until_probe = self.until_probe.min(self.probe_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    /// Runs `commits` commits where each way costs what `cost` says.
    fn run(
        chooser: &mut SyncChooser,
        commits: usize,
        cost: impl Fn(SyncWay) -> Duration,
    ) -> [usize; 2] {
        let mut used = [0usize; 2];
        for _ in 0..commits {
            let way = chooser.choose();
            used[way.index()] += 1;
            chooser.record(way, cost(way));
        }
        used
    }

    fn quiet(way: SyncWay) -> Duration {
        match way {
            SyncWay::LinkedFdatasync => micros(216),
            SyncWay::DsyncWrite => micros(163),
        }
    }

    fn busy(way: SyncWay) -> Duration {
        match way {
            SyncWay::LinkedFdatasync => micros(150),
            SyncWay::DsyncWrite => micros(4_000),
        }
    }

    #[test]
    fn starts_linked_and_moves_to_the_faster_dsync_write() {
        let mut chooser = SyncChooser::new();
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        let used = run(&mut chooser, 1000, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        // Only the first PROBE_INTERVAL_MIN commits and the rare later
        // probes used the slower way.
        assert!(used[0] < 60, "linked used {} times of 1000", used[0]);
    }

    #[test]
    fn a_way_costing_a_tick_is_tried_ever_more_rarely() {
        let mut chooser = SyncChooser::new();
        let used = run(&mut chooser, 20_000, busy);
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        // Intervals double from 16 to 1024: 16, 32, ..., 1024, then every
        // 1024 commits: well under 30 tries in 20,000 commits.
        assert!(used[1] <= 30, "dsync tried {} times", used[1]);
        assert!(used[1] >= 6, "dsync must still be tried, was {}", used[1]);
    }

    #[test]
    fn follows_the_load_both_ways() {
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 2000, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        // The machine gets busy: the next dsync commits cost a tick each and
        // the chooser leaves within a few of them.
        let used = run(&mut chooser, 2000, busy);
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        assert!(used[1] < 40, "dsync used {} times while busy", used[1]);
        // Quiet again: it comes back, at the latest after one maximal interval.
        let used = run(&mut chooser, 3 * PROBE_INTERVAL_MAX as usize, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        assert!(used[1] > PROBE_INTERVAL_MAX as usize);
    }

    #[test]
    fn a_single_outlier_does_not_flip_a_clear_choice() {
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 2000, busy);
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        let switches = chooser.switches();
        chooser.record(SyncWay::LinkedFdatasync, micros(4_000));
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        assert_eq!(chooser.switches(), switches);
    }

    #[test]
    fn close_ways_do_not_flap() {
        // Within the margin: the chooser stays where it is.
        let mut chooser = SyncChooser::new();
        let used = run(&mut chooser, 5000, |way| match way {
            SyncWay::LinkedFdatasync => micros(100),
            SyncWay::DsyncWrite => micros(95),
        });
        assert_eq!(chooser.switches(), 0);
        assert!(used[0] > 4900);
    }
}
