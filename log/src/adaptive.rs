//! Choosing, commit by commit, how an io_uring group commit becomes durable
//! ([`SyncMode::Adaptive`](crate::SyncMode::Adaptive)).
//!
//! Under io_uring the two ways trade places with the machine's load (crate
//! README, "Performance"): a write linked to an `fdatasync` pays one hop to
//! an io-wq worker on every commit (15-25 us on a quiet machine, about 50 us
//! on a busy one); an `RWF_DSYNC` write is
//! finished by the file system's per-CPU completion worker, which is the
//! faster way on a quiet machine and, on a busy CPU, waits for a scheduler
//! tick (4-8 ms). [`SyncChooser`] keeps the way that has been faster lately
//! and tries the other one now and then.
//!
//! Invariants:
//! - The choice never touches durability: either way, a commit is durable
//!   once its completions are in. Only latency is at stake.
//! - The preferred way is judged by its mean latency (a moving mean over
//!   every commit it makes), so rare ticks count at their full cost: a way
//!   that is fast nine times in ten and costs a tick the tenth loses. One
//!   commit counts as at most [`OUTLIER_CAP`] times the mean, so a single
//!   stall of the whole disk (hundreds of milliseconds, whichever way is
//!   used) does not alone make the other way look faster.
//! - The other way is judged by the median of its last three tries, so one
//!   unlucky try neither condemns it nor, one lucky one, crowns it (its
//!   first try counts beside two copies of the preferred way's mean).
//! - When the preferred way's mean turns clearly worse than what is known of
//!   the other, the other way is tried at the next commit, and taken if that
//!   fresh try beats the preferred way's mean: a retreat rests on a new
//!   measurement, not on a stale one (both ways may have slowed down).
//! - The interval between tries grows (doubling after every try that does
//!   not win, up to [`PROBE_INTERVAL_MAX`]) and starts again from
//!   [`PROBE_INTERVAL_MIN`] only after a retreat that follows
//!   [`RETREAT_MEMORY`] commits without one. So an isolated burst of slow
//!   commits costs a short detour; retreats that keep coming meet ever
//!   longer intervals, so a way that wins its tries but loses on the mean
//!   is taken back ever more rarely; and a way that costs a scheduler tick
//!   is tried, after seven losing tries, once per [`PROBE_INTERVAL_MAX`]
//!   commits.

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
/// A try wins when the other way's median try drops below this share of
/// the preferred way's mean (15 % faster).
const WIN_RATIO: f64 = 0.85;
/// The other way is tried at the next commit when the preferred way's mean
/// exceeds the other way's estimate by this factor: a clear, sustained
/// loss (two scheduler ticks close together), not a single slow commit.
const RETREAT_RATIO: f64 = 1.5;
/// A retreat this many commits after the previous one starts the try
/// interval afresh; an earlier one keeps it.
pub const RETREAT_MEMORY: u64 = 4_096;
/// The weight of one commit in the preferred way's moving mean.
const WEIGHT: f64 = 1.0 / 32.0;
/// A commit counts in the preferred way's mean as at most this many times
/// the mean. A stall of the whole disk (a journal commit after a segment
/// was retired: 6-400 ms, measured in `synod bench log`) hits either way
/// and must not alone make the other look faster; it now adds at most
/// 15/32 of the mean, less than a retreat needs. Ticks that keep coming
/// (every commit, or every 5th or 10th) still raise the mean to their
/// full cost within a few of them.
pub const OUTLIER_CAP: f64 = 16.0;

/// What is known of one way's latency, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
struct WayStats {
    /// Moving mean over its commits while preferred.
    mean: Option<f64>,
    /// Its last three tries while not preferred (oldest replaced first).
    tries: Option<[f64; 3]>,
    next_try: usize,
}

impl WayStats {
    fn median_try(&self) -> Option<f64> {
        self.tries.map(|mut tries| {
            tries.sort_by(f64::total_cmp);
            tries[1]
        })
    }
}

/// Picks the way for each commit from the latencies of the last ones.
#[derive(Clone, Debug)]
pub struct SyncChooser {
    current: SyncWay,
    stats: [WayStats; 2],
    until_probe: u32,
    probe_interval: u32,
    /// The preferred way looked clearly worse: the next try decides alone.
    retreating: bool,
    switches: u64,
    /// Commits recorded per way.
    recorded: [u64; 2],
    /// Commits since the last retreat.
    since_retreat: u64,
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
            stats: [WayStats::default(); 2],
            until_probe: PROBE_INTERVAL_MIN,
            probe_interval: PROBE_INTERVAL_MIN,
            retreating: false,
            switches: 0,
            recorded: [0; 2],
            since_retreat: u64::MAX,
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

    /// How many commits went each way: (linked `fdatasync`, `RWF_DSYNC`).
    #[must_use]
    pub fn commits_by_way(&self) -> (u64, u64) {
        (self.recorded[0], self.recorded[1])
    }

    /// The way for the next commit: the preferred one, or every
    /// `probe_interval` commits the other one, to see whether it has
    /// become the faster.
    pub fn choose(&mut self) -> SyncWay {
        if self.until_probe == 0 {
            // Counted from here, so a try whose commit failed (and is never
            // recorded) does not make every later commit a try.
            self.until_probe = self.probe_interval;
            return self.current.other();
        }
        self.until_probe -= 1;
        self.current
    }

    /// Records how long a commit made `way` took, from its submission to
    /// its last completion, and switches when the other way looks faster.
    pub fn record(&mut self, way: SyncWay, latency: Duration) {
        let sample = latency.as_nanos() as f64;
        self.recorded[way.index()] += 1;
        self.since_retreat = self.since_retreat.saturating_add(1);
        let preferred = self.current.index();
        let other = self.current.other().index();
        if way == self.current {
            let stats = &mut self.stats[preferred];
            stats.mean = Some(stats.mean.map_or(sample, |old| {
                old + WEIGHT * (sample.min(OUTLIER_CAP * old) - old)
            }));
            if let (Some(mine), Some(theirs)) =
                (self.stats[preferred].mean, self.stats[other].median_try())
            {
                if mine > RETREAT_RATIO * theirs && !self.retreating {
                    // The preferred way got clearly slower than the other
                    // was: try the other at the next commit, not in up to
                    // PROBE_INTERVAL_MAX commits.
                    self.retreating = true;
                    self.until_probe = 0;
                }
            }
            return;
        }
        let mine = self.stats[preferred].mean;
        let stats = &mut self.stats[other];
        match &mut stats.tries {
            None => {
                stats.tries = Some([sample, mine.unwrap_or(sample), mine.unwrap_or(sample)]);
                stats.next_try = 1;
            }
            Some(tries) => {
                tries[stats.next_try] = sample;
                stats.next_try = (stats.next_try + 1) % 3;
            }
        }
        let retreating = std::mem::take(&mut self.retreating);
        let won = match (mine, self.stats[other].median_try()) {
            // A retreat's try is judged alone: the other tries may be stale.
            (Some(mine), _) if retreating => sample < WIN_RATIO * mine,
            (Some(mine), Some(theirs)) => theirs < WIN_RATIO * mine,
            // Nothing known of the preferred way yet: keep it.
            _ => false,
        };
        if won && retreating {
            if self.since_retreat > RETREAT_MEMORY {
                self.probe_interval = PROBE_INTERVAL_MIN;
            }
            self.since_retreat = 0;
        }
        if won {
            self.switch();
        } else {
            self.back_off();
        }
    }

    /// Prefers the other way: it starts from its median try as its mean, and
    /// the way left behind is remembered by its mean as its tries.
    fn switch(&mut self) {
        let leaving = self.current.index();
        let taking = self.current.other().index();
        if let Some(mean) = self.stats[leaving].mean {
            self.stats[leaving].tries = Some([mean; 3]);
        }
        self.stats[taking].mean = self.stats[taking].median_try();
        self.current = self.current.other();
        self.switches += 1;
        self.until_probe = self.probe_interval;
    }

    fn back_off(&mut self) {
        self.probe_interval = (self.probe_interval * 2).min(PROBE_INTERVAL_MAX);
        self.until_probe = self.probe_interval;
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
        // Two winning tries (after 16 and 32 more commits), then rare tries.
        assert!(used[0] < 60, "linked used {} times of 1000", used[0]);
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
        // The machine gets busy: the chooser retreats after two ticks, then
        // tries again after 16, 32, ..., 1024 commits (the first retreat in
        // a long while starts the interval afresh), then every 1024.
        let (used, _) = run(&mut chooser, 4096, busy);
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync);
        assert!(
            used[1] <= 2 + 7 + 4096 / PROBE_INTERVAL_MAX as usize,
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
    fn a_stall_of_the_whole_disk_does_not_flip_a_choice() {
        // Measured: single commits of 6.5, 8, 140 and 396 ms between
        // quiet ones, when a retired segment's journal commit held the disk.
        for stall_ms in [6, 8, 140, 400] {
            let mut chooser = SyncChooser::new();
            run(&mut chooser, 2000, quiet);
            let switches = chooser.switches();
            chooser.record(SyncWay::DsyncWrite, micros(stall_ms * 1000));
            run(&mut chooser, 200, quiet);
            assert_eq!(chooser.current(), SyncWay::DsyncWrite, "{stall_ms} ms");
            assert_eq!(chooser.switches(), switches, "{stall_ms} ms");
        }
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
            // It may go back and forth, but at most about one round trip
            // per PROBE_INTERVAL_MAX commits (each costs two ticks).
            assert!(
                chooser.switches() <= 2 * 100_000 / u64::from(PROBE_INTERVAL_MAX),
                "ticks every {period}: {} switches",
                chooser.switches()
            );
        }
    }

    #[test]
    fn one_unlucky_first_try_delays_the_faster_way_only_briefly() {
        let mut chooser = SyncChooser::new();
        let (used, _) = run(&mut chooser, 200, |way, n| match (way, n) {
            (SyncWay::DsyncWrite, 0) => micros(4_000),
            _ => quiet(way, n),
        });
        assert_eq!(chooser.current(), SyncWay::DsyncWrite, "{used:?}");
    }

    #[test]
    fn one_lucky_first_try_does_not_win_alone() {
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 2000, |way, n| match (way, n) {
            (SyncWay::DsyncWrite, 0) => micros(100),
            _ => busy(way, n),
        });
        assert_eq!(chooser.switches(), 0);
    }

    #[test]
    fn both_ways_slowing_down_together_cause_no_burst_of_switches() {
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 4000, quiet);
        let switches = chooser.switches();
        let (_, mean) = run(&mut chooser, 4000, |way, n| quiet(way, n) * 10);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        assert!(chooser.switches() - switches <= 1, "{}", chooser.switches());
        assert!(mean < 1700.0, "mean {mean:.0} us");
    }

    #[test]
    fn an_isolated_burst_of_ticks_costs_a_short_detour() {
        let mut chooser = SyncChooser::new();
        run(&mut chooser, 20_000, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite);
        // Three ticks in a row make it retreat...
        let (used, _) = run(&mut chooser, 3, |way, _| match way {
            SyncWay::DsyncWrite => micros(4_000),
            SyncWay::LinkedFdatasync => micros(216),
        });
        assert_eq!(chooser.current(), SyncWay::LinkedFdatasync, "{used:?}");
        // ...and it is back within a hundred commits, not thousands.
        let (used, _) = run(&mut chooser, 100, quiet);
        assert_eq!(chooser.current(), SyncWay::DsyncWrite, "{used:?}");
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
