//! Faults as values: what the random fault generator and a scripted
//! [`Schedule`] inject, and the [`FaultCounts`] a run reports.

use std::fmt;

use crate::wire::NodeId;

/// Which replica a fault aims at, resolved when the fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeTarget {
    /// This replica.
    Node(NodeId),
    /// The replica that leads now (the highest ballot among the leaders;
    /// the lowest id when none leads).
    Leader,
    /// The n-th (from 0, in id order, wrapping) replica that does not lead now.
    Follower(usize),
    /// The replica the last crash fault hit.
    LastCrashed,
}

/// A cut of links between replicas. Cuts add up; [`Fault::HealPartitions`]
/// removes them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// The two replicas cannot reach each other.
    Pair(NodeTarget, NodeTarget),
    /// Messages from `from` to `to` are lost; the other way works.
    OneWay {
        /// The sender whose messages are lost.
        from: NodeTarget,
        /// The receiver that hears nothing from `from`.
        to: NodeTarget,
    },
    /// The replica can reach no peer and no peer can reach it (clients
    /// still can).
    Isolate(NodeTarget),
    /// These replicas are cut off from all the others (both ways).
    Split(Vec<NodeTarget>),
}

/// What a crash does to the writes a disk has not synced yet. A replica's
/// log has at most one group commit write in flight (the group being built
/// behind it was never written, and is always lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskLoss {
    /// Every unsynced write is lost.
    LoseUnsynced,
    /// A random prefix of the unsynced writes reached the disk: the write
    /// in flight landed whole, or not at all.
    KeepPrefix,
    /// The write in flight is torn: it landed up to a random byte strictly
    /// inside it (mostly inside its records), and recovery finds a torn
    /// group commit unless the cut fell in its padding.
    TearLast,
}

/// One fault, random or scripted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cut links.
    Partition(Partition),
    /// Remove every cut.
    HealPartitions,
    /// Crash a replica: it loses its volatile state and the unsynced writes
    /// `loss` says; with `corrupt`, one of its synced records (or a copy
    /// of its metadata file) is also corrupted.
    Crash {
        /// The replica.
        node: NodeTarget,
        /// What happens to its unsynced writes.
        loss: DiskLoss,
        /// Also corrupt an already synced record.
        corrupt: bool,
    },
    /// Restart a crashed replica from its disk (nothing if it is up).
    Restart(NodeTarget),
    /// Make a replica's disk syncs take this long (0: back to normal).
    SlowDisk {
        /// The replica.
        node: NodeTarget,
        /// The sync latency from now on.
        sync_ns: u64,
    },
    /// Fill a running replica's disk (`full`: nothing may grow any more, so
    /// a new segment, a larger snapshot or a new metadata file fails with
    /// `ENOSPC` and the replica's log waits), or give it room again. A
    /// crash gives it room too.
    DiskFull {
        /// The replica.
        node: NodeTarget,
        /// Full, or room again.
        full: bool,
    },
    /// Heal everything: remove every cut, restart crashed replicas, stop
    /// message faults, slow disks and full disks.
    HealAll,
}

/// A scripted fault schedule: faults at virtual times, for tests that aim
/// at one bug.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The faults and when they fire (virtual nanoseconds since the start).
    pub faults: Vec<(u64, Fault)>,
}

impl Schedule {
    /// An empty schedule.
    #[must_use]
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Adds `fault` at `time_ns`.
    #[must_use]
    pub fn at(mut self, time_ns: u64, fault: Fault) -> Schedule {
        self.faults.push((time_ns, fault));
        self
    }
}

/// How many faults of each class a run injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Messages dropped (by the drop fault, not by cuts or crashes).
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Messages delayed so that later ones may overtake them.
    pub reordered: u64,
    /// Delay spikes.
    pub delayed: u64,
    /// Messages lost to cut links.
    pub cut_off: u64,
    /// Partitions made.
    pub partitions: u64,
    /// Replica crashes.
    pub crashes: u64,
    /// Replica restarts.
    pub restarts: u64,
    /// Power failures: every replica crashed at once.
    pub power_failures: u64,
    /// Crashes (or power failures) timed to hit a write in flight.
    pub crashes_during_writes: u64,
    /// Crashes that lost unsynced writes.
    pub unsynced_lost: u64,
    /// Crashes that kept only a prefix of the unsynced writes.
    pub prefixes_kept: u64,
    /// Torn writes.
    pub torn: u64,
    /// Synced records or metadata copies corrupted.
    pub corrupted: u64,
    /// Of those, metadata copies.
    pub corrupted_metadata: u64,
    /// Slow-disk periods.
    pub slow_disks: u64,
    /// Full-disk periods.
    pub full_disks: u64,
    /// Replicas whose clock drifts.
    pub drifting_clocks: u64,
}

impl FaultCounts {
    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &FaultCounts) {
        self.dropped += other.dropped;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.delayed += other.delayed;
        self.cut_off += other.cut_off;
        self.partitions += other.partitions;
        self.crashes += other.crashes;
        self.restarts += other.restarts;
        self.power_failures += other.power_failures;
        self.crashes_during_writes += other.crashes_during_writes;
        self.unsynced_lost += other.unsynced_lost;
        self.prefixes_kept += other.prefixes_kept;
        self.torn += other.torn;
        self.corrupted += other.corrupted;
        self.corrupted_metadata += other.corrupted_metadata;
        self.slow_disks += other.slow_disks;
        self.full_disks += other.full_disks;
        self.drifting_clocks += other.drifting_clocks;
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drop {} dup {} reorder {} delay {} cut-off {} partition {} crash {} restart {} \
             power-failure {} during-write {} unsynced-lost {} prefix-kept {} torn {} corrupt {} (metadata {}) slow-disk {} \
             full-disk {} clock {}",
            self.dropped,
            self.duplicated,
            self.reordered,
            self.delayed,
            self.cut_off,
            self.partitions,
            self.crashes,
            self.restarts,
            self.power_failures,
            self.crashes_during_writes,
            self.unsynced_lost,
            self.prefixes_kept,
            self.torn,
            self.corrupted,
            self.corrupted_metadata,
            self.slow_disks,
            self.full_disks,
            self.drifting_clocks
        )
    }
}
