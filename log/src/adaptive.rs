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
//! - Estimates are mean latencies (nanoseconds), so rare ticks count at
//!   their full cost: a way that is fast nine times in ten and costs a tick
//!   the tenth loses, as it should.
//! - The interval between tries of the other way only grows (doubling after
//!   every try that does not win and after every retreat, up to
//!   [`PROBE_INTERVAL_MAX`]): whatever the machine does, tries of a way that
//!   costs a scheduler tick cost at most one tick per that many commits,
//!   and two ways whose costs alternate cannot make the chooser flap.

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

/// Commits before the first try of the other way.
pub const PROBE_INTERVAL_MIN: u32 = 16;
/// Commits between two tries of the other way, at most.
pub const PROBE_INTERVAL_MAX: u32 = 1024;
/// A try wins when the other way's estimate drops below this share of the
/// preferred way's (15 % faster).
const WIN_RATIO: f64 = 0.85;
/// The preferred way is left at once when its estimate exceeds the other
/// way's by this factor: a clear, sustained loss (two scheduler ticks in
/// a row), not a single slow commit.
const RETREAT_RATIO: f64 = 1.5;
/// The weight of one sample of the preferred way in its estimate: a long
/// memory, since it gets every commit.
const WEIGHT_PREFERRED: f64 = 1.0 / 32.0;
/// The weight of one try of the other way in its estimate: tries are rare.
const WEIGHT_TRY: f64 = 0.5;

/// Picks the way for each commit from the latencies of the last ones.
#[derive(Clone, Debug)]
pub struct SyncChooser {
    current: SyncWay,
    /// Per way: a moving mean of the latency in nanoseconds, once measured.
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

    /// The way for the next commit: the preferred one, or every
    /// `probe_interval` commits the other one, to see whether it has
    /// become the faster.
    pub fn choose(&mut self) -> SyncWay {
        if self.until_probe == 0 {
            return self.current.other();
        }
        self.until_probe -= 1;
        self.current
    }

    /// Records how long a commit made `way` took, from its submission to
    /// its last completion, and switches when the other way looks faster.
    pub fn record(&mut self, way: SyncWay, latency: Duration) {
        let sample = latency.as_nanos() as f64;
        let weight = if way == self.current {
            WEIGHT_PREFERRED
        } else {
            WEIGHT_TRY
        };
        let slot = &mut self.estimate[way.index()];
        *slot = Some(match *slot {
            None => sample,
            Some(old) => old + weight * (sample - old),
        });
        let mine = self.estimate[self.current.index()];
        let theirs = self.estimate[self.current.other().index()];
        if way != self.current {
            // A try of the other way: it takes over if it now looks clearly
            // faster; either way the next try is `probe_interval` away.
            let won =
                matches!((mine, theirs), (Some(mine), Some(theirs)) if theirs < WIN_RATIO * mine);
            if won {
                self.switch();
            } else {
                self.back_off();
            }
            self.until_probe = self.probe_interval;
        } else if let (Some(mine), Some(theirs)) = (mine, theirs) {
            if mine > RETREAT_RATIO * theirs {
                // The preferred way got clearly slower: retreat now rather
                // than at the next try, and try it again later than before.
                self.switch();
                self.back_off();
                self.until_probe = self.probe_interval;
            }
        }
    }

    fn switch(&mut self) {
        self.current = self.current.other();
        self.switches += 1;
    }

    fn back_off(&mut self) {
        self.probe_interval = (self.probe_interval * 2).min(PROBE_INTERVAL_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    /// Runs `commits` commits where the n-th commit made a way costs
    /// `cost(way, n)`; returns how often each way was used and the mean
    /// latency in microseconds.
    fn run(
        chooser: &mut SyncChooser,
        commits: usize,
        cost: impl Fn(SyncWay, usize) -> Duration,
    ) -> ([usize; 2], f64) {
        let mut used = [0usize; 2];
        let mut total = Duration::ZERO;
        for _ in 0..commits {
            let way = chooser.choose();
            let latency = cost(way, used[way.index()]);
            used[way.index()] += 1;
            total += latency;
            chooser.record(way, latency);
        }
        (used, total.as_secs_f64() * 1e6 / commits as f64)
    }

    /// Idle machine (measured, `synod bench log`): the `RWF_DSYNC` write wins.
    fn quiet(way: SyncWay, _: usize) -> Duration {
        match way {
            SyncWay::LinkedFdatasync => micros(216),
            SyncWay::DsyncWrite => micros(163),
        }
    }

    /// Busy CPUs: every `RWF_DSYNC` completion waits for a tick.
    fn busy(way: SyncWay, _: usize) -> Duration {
        match way {
            SyncWay::LinkedFdatasync => micros(150),
            SyncWay::DsyncWrite => micros(4_000),
        }
    }

    /// Every `period`-th `RWF_DSYNC` commit waits for a tick.
    fn ticks_every(period: usize) -> impl Fn(SyncWay, usize) -> Duration {
        move |way, n| match way {
            SyncWay::LinkedFdatasync => micros(216),
            SyncWay::DsyncWrite if n % period == period - 1 => micros(4_000),
            SyncWay::DsyncWrite => micros(163),
        }
    }

    #[test]
    fn starts_linked_and_moves_to_the_faster_dsync_write() {
        let mut chooser = SyncChooser::new();
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        let (used, mean) = run(&mut chooser, 1000, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        assert_eq!(chooser.switches(), 1);
        // The first PROBE_INTERVAL_MIN commits and the rare later tries.
        assert!(used[0] < 30, "linked used {} times of 1000", used[0]);
        assert!(mean < 170.0, "mean {mean} us");
    }

    #[test]
    fn a_way_costing_a_tick_is_tried_ever_more_rarely() {
        let mut chooser = SyncChooser::new();
        let (used, _) = run(&mut chooser, 20_000, busy);
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        assert_eq!(chooser.switches(), 0);
        // Tries after 16, 32, ..., 1024 commits, then every 1024: 7 + 12.
        assert!(
            (15..=25).contains(&used[1]),
            "dsync tried {} times",
            used[1]
        );
    }

    #[test]
    fn follows_the_load_both_ways() {
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 2000, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        // The machine gets busy: the chooser retreats after two ticks, and
        // pays at most one more tick per PROBE_INTERVAL_MAX commits.
        let (used, _) = run(&mut chooser, 4096, busy);
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        assert!(
            used[1] <= 2 + 4096 / PROBE_INTERVAL_MAX as usize,
            "{used:?}"
        );
        // Quiet again: after a few winning tries it comes back.
        let (used, _) = run(&mut chooser, 16 * PROBE_INTERVAL_MAX as usize, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        assert!(used[1] > 4 * PROBE_INTERVAL_MAX as usize, "{used:?}");
    }

    #[test]
    fn a_single_slow_commit_does_not_flip_a_choice() {
        // On the slow way's side (busy machine, linked preferred)...
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 2000, busy);
        chooser.record(SyncWay::LinkedFdatasync, micros(4_000));
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        assert_eq!(chooser.switches(), 0);
        // ...and on the fast way's side (quiet machine, dsync preferred).
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 2000, quiet);
        let switches = chooser.switches();
        chooser.record(SyncWay::DsyncWrite, micros(4_000));
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        assert_eq!(chooser.switches(), switches);
    }

    #[test]
    fn intermittent_ticks_cost_little_more_than_always_linking() {
        // A way fast most of the time but costing a tick every 10th (or
        // 5th) commit is slower on average (547 us) than the linked way
        // (216 us): the chooser must end up no worse than always linking,
        // within a few percent.
        for period in [5, 10] {
            let mut chooser = SyncChooser::new();
            let (_, mean) = run(&mut chooser, 100_000, ticks_every(period));
            assert!(
                mean < 216.0 * 1.05,
                "ticks every {period}: mean {mean:.1} us against 216 us always linked"
            );
            // It may go back and forth, but at most about once per
            // PROBE_INTERVAL_MAX commits (each round costs two ticks).
            assert!(
                chooser.switches() <= 100_000 / u64::from(PROBE_INTERVAL_MAX),
                "ticks every {period}: {} switches",
                chooser.switches()
            );
        }
    }

    #[test]
    fn close_ways_do_not_flap() {
        // Within the margin: the chooser stays where it is.
        let mut chooser = SyncChooser::new();
        let (used, _) = run(&mut chooser, 5000, |way, _| match way {
            SyncWay::LinkedFdatasync => micros(100),
            SyncWay::DsyncWrite => micros(95),
        });
        assert_eq!(chooser.switches(), 0);
        assert!(used[0] > 4980);
    }

    #[test]
    fn extreme_latencies_are_harmless() {
        let mut chooser = SyncChooser::new();
        for _ in 0..5000 {
            let way = chooser.choose();
            let latency = if way == SyncWay::DsyncWrite {
                Duration::MAX
            } else {
                Duration::ZERO
            };
            chooser.record(way, latency);
        }
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
    }
}
