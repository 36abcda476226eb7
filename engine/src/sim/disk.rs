//! A replica's simulated durable storage: synod-log's [`Log`] over its
//! in-memory block device [`MemStorage`], so every simulated write, crash,
//! torn write, corruption and recovery goes through the real record format
//! and recovery code.
//!
//! The group commit runs the way the runtime will run it (ROADMAP: one
//! aligned write and one sync per loop turn), like synod-log's io_uring
//! back end: a replica's persist items are appended to the group being
//! built as its `Ready`s are drained; at the end of a loop turn, if no
//! write is in flight, the group is sealed and its bytes are written to
//! the device (unsynced) at once, and the world schedules the sync's
//! completion. At most one group write is in flight: what the replica
//! hands out meanwhile waits in the next group, and items that do not fit
//! it (`GroupFull`) wait in a backlog, in order, until a later turn. A
//! persist sequence number is durable once every group holding one of its
//! items (or an earlier item) is durable. A snapshot is written aside and
//! renamed into place when its turn in the backlog comes (durable at once,
//! which is the log's only way): it holds only chosen slots, so being
//! durable earlier than the items before it vouches for nothing.
//!
//! Invariants:
//! - Writes become durable in the order they were made: a group commit is
//!   durable only after every earlier one, and `durable_seq` only rises
//!   within an incarnation.
//! - A crash keeps every synced byte; of the one write in flight it keeps
//!   what the fault says (all, nothing, or a prefix cut at any byte); what
//!   was only appended to the group being built is lost.
//! - Any log error other than the faults modelled here (a full disk) is a
//!   bug and panics with its context; the simulator reports the panic.
//! - Corruption flips a bit of a synced record, or of one copy of the
//!   metadata file; recovery must notice it (checked: a flip that recovery
//!   does not report panics).
//! - Once recovery has reported damage, every later recovery reports it too
//!   until the replica's own metadata saying it finished recovering is
//!   durable: synod-log marks the damage (`recovering`) in the durable
//!   metadata before it repairs anything. A forgetful driver
//!   (`keeps_damage_marker` false) erases that mark right after the repair.
//!   Checked at every restart ([`oracle`]), as are: the disk's prediction
//!   of a damaged restart, and that a restart not flagged damaged returns
//!   every vote the replica made durable.

use std::collections::VecDeque;
use std::fmt;

use synod_log::{
    CommitSeq, CorruptionPolicy, CrashFault, Log, LogConfig, LogError, MemStorage, PendingWrite,
};

use oracle::RecoveryOracle;

use crate::paxos::{Metadata, PersistItem, Recovered};
use crate::wire::{AcceptedEntry, PersistSeq};

use super::fault::DiskLoss;

/// Segments are small, so every run rolls over, recycles and compacts them.
const SEGMENT_BYTES: u64 = 256 << 10;
/// A group commit's buffer: small enough that catch-up bursts fill it.
const GROUP_BYTES_MAX: usize = 64 << 10;
/// Retired segments kept for recycling.
const SPARE_SEGMENTS_MAX: usize = 2;

/// The log configuration of every simulated replica.
pub(super) fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        group_bytes_max: GROUP_BYTES_MAX,
        spare_segments_max: SPARE_SEGMENTS_MAX,
        on_corruption: CorruptionPolicy::RejoinAsNonVoter,
    }
}

/// What a crash did to the writes that were not durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CrashEffect {
    /// Items that reached the disk anyway (the write in flight survived).
    pub(super) items_kept: usize,
    /// Items lost: the write in flight (unless kept), the group being
    /// built and the backlog.
    pub(super) items_lost: usize,
    /// The next recovery drops something (the write in flight was torn).
    pub(super) torn: bool,
}

/// What a disk did, for the run's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct DiskCounts {
    /// Group commits written.
    pub(super) groups_written: u64,
    /// Times an item found the group being built full.
    pub(super) group_full_waits: u64,
    /// Loop turns at which a group waited for a full disk.
    pub(super) disk_full_waits: u64,
}

/// An item in the log, not yet durable: its group commit, for an accepted
/// record the vote it will be, for metadata the metadata.
#[derive(Debug)]
struct Appended {
    commit: CommitSeq,
    vote: Option<AcceptedEntry>,
    metadata: Option<Metadata>,
}

/// Why the backlog stops.
#[derive(Debug)]
enum Blocked {
    /// The group being built is full; it is written at the end of a turn.
    GroupFull,
    /// The disk is full: wait for space.
    DiskFull,
}

/// The simulated disk of one replica.
pub(super) struct MemoryDisk {
    storage: MemStorage,
    config: LogConfig,
    /// False to model a driver that erases the damage marker once the log
    /// is repaired (a crash before the replica's own metadata is durable
    /// then recovers as if nothing was lost).
    keeps_damage_marker: bool,
    /// The log while the replica runs.
    log: Option<Log<MemStorage>>,
    /// The group write on the device, waiting for its sync.
    in_flight: Option<PendingWrite>,
    /// Items handed out that the log has not taken yet, in order.
    backlog: VecDeque<(PersistSeq, PersistItem)>,
    /// Items in the log (in flight or being built), in order.
    appended: VecDeque<Appended>,
    /// Persist sequence numbers whose items are all in the log, with the
    /// group that must be durable for them (`None`: none).
    marks: VecDeque<(PersistSeq, Option<CommitSeq>)>,
    /// The group of the last item appended.
    last_appended: Option<CommitSeq>,
    /// The last persist sequence number handed to `write`.
    last_written: PersistSeq,
    durable_seq: PersistSeq,
    /// The durable persist sequence number the replica was last told of.
    reported_seq: PersistSeq,
    /// Acceptor records made durable since the last `take_newly_durable`.
    newly_durable: Vec<AcceptedEntry>,
    /// While the replica is down: its next recovery reports damage.
    down_damaged: bool,
    /// What the replica made durable, checked against every recovery.
    oracle: RecoveryOracle,
    /// Group commits written.
    groups_written: u64,
    /// Items that found the group being built full and waited for the next.
    group_full_waits: u64,
    /// Turns at which a group waited for a full disk.
    disk_full_waits: u64,
}

impl fmt::Debug for MemoryDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDisk")
            .field("up", &self.log.is_some())
            .field(
                "in_flight",
                &self.in_flight.as_ref().map(PendingWrite::commit_seq),
            )
            .field("backlog", &self.backlog.len())
            .field("appended", &self.appended.len())
            .field("durable_seq", &self.durable_seq)
            .field("files", &self.storage.file_names())
            .finish_non_exhaustive()
    }
}

impl MemoryDisk {
    /// An empty disk; `keeps_damage_marker` as the field says.
    pub(super) fn new(keeps_damage_marker: bool) -> MemoryDisk {
        MemoryDisk::with_config(keeps_damage_marker, log_config())
    }

    fn with_config(keeps_damage_marker: bool, config: LogConfig) -> MemoryDisk {
        MemoryDisk {
            storage: MemStorage::new(),
            config,
            keeps_damage_marker,
            log: None,
            in_flight: None,
            backlog: VecDeque::new(),
            appended: VecDeque::new(),
            marks: VecDeque::new(),
            last_appended: None,
            last_written: PersistSeq(0),
            durable_seq: PersistSeq(0),
            reported_seq: PersistSeq(0),
            newly_durable: Vec::new(),
            down_damaged: false,
            oracle: RecoveryOracle::new(keeps_damage_marker),
            groups_written: 0,
            group_full_waits: 0,
            disk_full_waits: 0,
        }
    }

    fn log(&mut self) -> &mut Log<MemStorage> {
        self.log
            .as_mut()
            .expect("the disk is written only while its replica runs")
    }

    /// True when the next recovery will report damage: the durable
    /// metadata says the replica is recovering, or (while it is down) its
    /// log will drop something.
    pub(super) fn will_recover_damaged(&self) -> bool {
        match &self.log {
            Some(log) => log.durable_metadata().recovering,
            None => self.down_damaged,
        }
    }

    /// Hands the disk the persist items of one `Ready`; they become durable
    /// once their group commits are.
    ///
    /// # Panics
    /// When `persist_seq` does not rise, `items` is empty or the replica is
    /// down (driver bugs), or on a log error other than a full disk.
    pub(super) fn write(&mut self, persist_seq: PersistSeq, items: Vec<PersistItem>) {
        assert!(self.log.is_some(), "only a running replica writes");
        assert!(
            persist_seq > self.last_written,
            "persist sequence numbers rise"
        );
        assert!(
            !items.is_empty(),
            "a Ready without persist items writes nothing"
        );
        self.last_written = persist_seq;
        self.backlog
            .extend(items.into_iter().map(|item| (persist_seq, item)));
        self.pump();
    }

    /// The end of a loop turn: if no write is in flight and the log holds
    /// appended items, seal the group and put its bytes on the device.
    /// Returns true when a write started (its sync is the world's to
    /// schedule).
    ///
    /// # Panics
    /// On a log error other than a full disk.
    pub(super) fn submit(&mut self) -> bool {
        if self.log.is_none() || self.in_flight.is_some() {
            return false;
        }
        self.pump();
        let log = self.log();
        if !log.has_pending() {
            return false;
        }
        let write = match log.start_commit() {
            Ok(Some(write)) => write,
            Ok(None) => unreachable!("a pending group and no write in flight"),
            Err(error) if error.is_disk_full() => {
                self.disk_full_waits += 1;
                return false;
            }
            Err(error) => panic!("starting a group commit: {error}"),
        };
        if let Err(error) = self.storage.write_pending(&write) {
            panic!("writing group commit {}: {error}", write.commit_seq().0);
        }
        self.groups_written += 1;
        self.in_flight = Some(write);
        self.pump();
        true
    }

    /// The sync of the write in flight completed: its group is durable.
    ///
    /// # Panics
    /// When no write is in flight (a world bug) or the log refuses it.
    pub(super) fn complete_write(&mut self) {
        let write = self
            .in_flight
            .take()
            .expect("a sync completes only for the write in flight");
        self.storage.sync_pending(&write);
        let commit = write.commit_seq();
        if let Err(error) = self.log().finish_commit(write, Ok(())) {
            panic!("finishing group commit {}: {error}", commit.0);
        }
        self.advance();
        self.pump();
    }

    /// The highest persist sequence number that is durable.
    pub(super) fn durable_seq(&self) -> PersistSeq {
        self.durable_seq
    }

    /// The durable persist sequence number, if it rose since the replica
    /// was last told.
    pub(super) fn take_persisted(&mut self) -> Option<PersistSeq> {
        (self.durable_seq > self.reported_seq).then(|| {
            self.reported_seq = self.durable_seq;
            self.durable_seq
        })
    }

    /// The acceptor records that became durable since the last call: the
    /// votes this acceptor can no longer forget.
    pub(super) fn take_newly_durable(&mut self) -> Vec<AcceptedEntry> {
        std::mem::take(&mut self.newly_durable)
    }

    /// What the disk's checks of recovery found since the last call
    /// (each a violation of the run).
    pub(super) fn take_violations(&mut self) -> Vec<String> {
        self.oracle.take_violations()
    }

    /// What the disk did since the last call.
    pub(super) fn take_counts(&mut self) -> DiskCounts {
        DiskCounts {
            groups_written: std::mem::take(&mut self.groups_written),
            group_full_waits: std::mem::take(&mut self.group_full_waits),
            disk_full_waits: std::mem::take(&mut self.disk_full_waits),
        }
    }

    /// Limits the disk to its current size plus `extra_bytes` (`None`:
    /// unlimited again): preparing a new segment, a snapshot or a new
    /// metadata file then fails with `ENOSPC` until space returns.
    pub(super) fn set_full(&mut self, extra_bytes: Option<u64>) {
        let capacity = extra_bytes.map(|extra| self.storage.used_bytes() + extra);
        self.storage.set_capacity(capacity);
    }

    /// Moves backlog items into the log while it takes them.
    fn pump(&mut self) {
        while let Some((persist_seq, item)) = self.backlog.pop_front() {
            if let Err(blocked) = self.append(&item) {
                if matches!(blocked, Blocked::GroupFull) {
                    self.group_full_waits += 1;
                }
                self.backlog.push_front((persist_seq, item));
                break;
            }
            let last_of_its_ready = self
                .backlog
                .front()
                .is_none_or(|(next, _)| *next != persist_seq);
            if last_of_its_ready {
                self.marks.push_back((persist_seq, self.last_appended));
            }
        }
        self.advance();
    }

    fn append(&mut self, item: &PersistItem) -> Result<(), Blocked> {
        let log = self.log();
        let (result, vote, metadata) = match item {
            PersistItem::Accepted(entry) => (log.append(entry), Some(entry.clone()), None),
            PersistItem::Metadata(metadata) => (
                log.append_metadata(to_log(*metadata)),
                None,
                Some(*metadata),
            ),
            PersistItem::Snapshot(snapshot) => {
                if snapshot.slot <= log.snapshot_slot() {
                    return Ok(());
                }
                return match log.install_snapshot(snapshot) {
                    Ok(()) => Ok(()),
                    Err(error) => Err(blocked(&error, "installing a snapshot")),
                };
            }
        };
        let commit = result.map_err(|error| blocked(&error, "appending"))?;
        self.appended.push_back(Appended {
            commit,
            vote,
            metadata,
        });
        self.last_appended = Some(commit);
        Ok(())
    }

    /// Moves what the log's durable group commit covers to durable.
    fn advance(&mut self) {
        let durable = self.log.as_ref().and_then(Log::durable);
        while self
            .appended
            .front()
            .is_some_and(|item| Some(item.commit) <= durable)
        {
            let item = self.appended.pop_front().expect("front() was Some");
            self.note_durable(item);
        }
        while let Some(&(persist_seq, commit)) = self.marks.front() {
            if commit > durable {
                break;
            }
            assert!(persist_seq >= self.durable_seq, "durability rises");
            self.durable_seq = persist_seq;
            self.marks.pop_front();
        }
    }

    /// An item of the replica's became durable.
    fn note_durable(&mut self, item: Appended) {
        if let Some(vote) = &item.vote {
            self.oracle.on_durable_vote(vote);
        }
        if let Some(metadata) = item.metadata {
            self.oracle.on_durable_metadata(metadata);
        }
        self.newly_durable.extend(item.vote);
    }

    /// The replica crashed: its log is gone, and the write in flight keeps
    /// what `loss` says, decided by `choice` (a random draw): with
    /// [`DiskLoss::KeepPrefix`] the write lands whole or not at all, with
    /// [`DiskLoss::TearLast`] it is cut at a byte strictly inside it.
    pub(super) fn crash(&mut self, loss: DiskLoss, choice: u64) -> CrashEffect {
        let recovering_now = self
            .log
            .as_ref()
            .map(|log| log.durable_metadata().recovering);
        self.log = None;
        self.storage.set_capacity(None);
        let in_flight = self.in_flight.take();
        let fault = match (loss, &in_flight) {
            (DiskLoss::LoseUnsynced, _) | (_, None) => CrashFault::LoseUnsynced,
            (DiskLoss::KeepPrefix, Some(_)) if choice % 2 == 1 => CrashFault::KeepUnsynced,
            (DiskLoss::KeepPrefix, Some(_)) => CrashFault::LoseUnsynced,
            (DiskLoss::TearLast, Some(write)) => CrashFault::TearLastWrite {
                keep_bytes: tear_point(write, choice),
            },
        };
        drop(in_flight);
        self.storage.restart(fault);
        let peeked = self.peek();
        let survived = peeked
            .report
            .segments
            .iter()
            .filter_map(|segment| segment.commits.map(|(_, last)| last))
            .max();
        let total = self.appended.len() + self.backlog.len();
        let mut items_kept = 0;
        for item in std::mem::take(&mut self.appended) {
            if Some(item.commit) <= survived {
                items_kept += 1;
                self.note_durable(item);
            }
        }
        self.backlog.clear();
        self.marks.clear();
        self.down_damaged = peeked.damaged || peeked.metadata.recovering;
        // With nothing unsynced kept, the restart finds exactly the durable
        // state, whose `recovering` flag the running log told the world.
        if matches!(fault, CrashFault::LoseUnsynced) && recovering_now != Some(self.down_damaged) {
            self.oracle.violation(format!(
                "the log said durable recovering = {recovering_now:?} while the replica ran, \
                 but a crash that kept nothing unsynced recovers damaged = {} (recovering {}, \
                 damage {:?})",
                self.down_damaged, peeked.metadata.recovering, peeked.report.damage
            ));
        }
        CrashEffect {
            items_kept,
            items_lost: total - items_kept,
            torn: peeked.damaged,
        }
    }

    /// What the next recovery will find (changes nothing).
    fn peek(&self) -> synod_log::Recovered {
        synod_log::peek(&mut self.storage.clone(), &self.config)
            .unwrap_or_else(|error| panic!("reading a crashed disk: {error}"))
    }

    /// Opens the log after a crash (or on the first start) and recovers it,
    /// as a restarting replica does. Resets the sync bookkeeping for the
    /// new incarnation.
    ///
    /// # Errors
    /// Recovery failed: only a bug can make it fail here.
    pub(super) fn recover(&mut self) -> Result<Recovered, String> {
        assert!(self.log.is_none(), "recovery runs on a stopped replica");
        let marked_before = !self.keeps_damage_marker && self.peek().metadata.recovering;
        let (mut log, recovered) = Log::open(self.storage.clone(), self.config.clone())
            .map_err(|error| format!("recovery failed: {error}"))?;
        if recovered.damaged && !self.keeps_damage_marker && !marked_before {
            // The forgetful driver erases the mark the log set.
            let forgotten = synod_log::Metadata {
                recovering: false,
                ..recovered.metadata
            };
            log.persist_metadata(forgotten)
                .map_err(|error| format!("rewriting the metadata file: {error}"))?;
        }
        self.log = Some(log);
        self.in_flight = None;
        self.last_appended = None;
        self.last_written = PersistSeq(0);
        self.durable_seq = PersistSeq(0);
        self.reported_seq = PersistSeq(0);
        let predicted_damaged = std::mem::take(&mut self.down_damaged);
        let metadata = from_log(recovered.metadata);
        let recovered = Recovered {
            metadata,
            accepted: recovered.accepted,
            snapshot: recovered.snapshot,
            damaged: recovered.damaged || metadata.recovering,
        };
        self.oracle.check_recovery(&recovered, predicted_damaged);
        if recovered.damaged {
            // A crash right after this open (before the replica has made
            // anything durable) must restart damaged too: the log has
            // repaired the damage, so only its marker can say so.
            let again = self.peek();
            self.oracle
                .check_marked_after_open(again.damaged || again.metadata.recovering);
        }
        Ok(recovered)
    }
}

/// Where a torn write is cut: at a byte strictly inside it; three times in
/// four inside its records (most of a small group write is zero padding, and
/// a cut there loses nothing), else anywhere (a cut in the padding, or in a
/// recycled segment's terminator block, is a fault recovery must get right
/// too).
fn tear_point(write: &PendingWrite, choice: u64) -> usize {
    let bytes = &write.buffer().as_slice()[..write.length_bytes()];
    let records_end = bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    let end = if choice >> 62 == 0 || records_end < 2 {
        bytes.len()
    } else {
        records_end
    };
    1 + usize::try_from(choice % (end as u64 - 1)).expect("below a usize length")
}

/// A log error while appending or installing a snapshot: a full disk makes
/// the backlog wait, a full group waits for the next write, anything else
/// is a bug.
fn blocked(error: &LogError, op: &str) -> Blocked {
    match error {
        LogError::GroupFull { .. } => Blocked::GroupFull,
        LogError::DiskFull { .. } => Blocked::DiskFull,
        other => panic!("{op}: {other}"),
    }
}

fn to_log(metadata: Metadata) -> synod_log::Metadata {
    synod_log::Metadata {
        promised: metadata.promised,
        commit_point: metadata.commit_point,
        recovering: metadata.recovering,
    }
}

fn from_log(metadata: synod_log::Metadata) -> Metadata {
    Metadata {
        promised: metadata.promised,
        commit_point: metadata.commit_point,
        recovering: metadata.recovering,
    }
}

mod corrupt;
mod oracle;

pub(super) use corrupt::Corrupted;
#[cfg(test)]
mod tests;
