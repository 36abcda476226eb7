//! The replica's internal bookkeeping types: vote sets, log entries, and
//! what a candidate, a leader and a recovering non-voter track.

use std::collections::{BTreeMap, VecDeque};

use synod_net::wire::{Ballot, Batch, NodeId, PersistSeq, Slot};

use crate::paxos::ReadId;

/// A set of replicas as a bit mask over their positions in `Config::nodes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct NodeSet(pub(super) u64);

impl NodeSet {
    pub(super) fn insert(&mut self, index: usize) -> bool {
        let bit = 1u64 << index;
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }

    pub(super) fn contains(self, index: usize) -> bool {
        self.0 & (1u64 << index) != 0
    }

    pub(super) fn count(self) -> usize {
        self.0.count_ones() as usize
    }
}

/// One accepted value in the acceptor's log.
#[derive(Clone, Debug)]
pub(super) struct LogEntry {
    pub(super) ballot: Ballot,
    pub(super) batch: Batch,
}

/// A slot the leader has proposed and not yet seen chosen.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) votes: NodeSet,
    pub(super) sent_at_ns: u64,
}

/// A heartbeat round: acknowledged by a phase-2 quorum it renews the lease
/// and confirms the reads that waited for it.
#[derive(Debug)]
pub(super) struct Round {
    pub(super) number: u64,
    pub(super) sent_at_ns: u64,
    pub(super) acks: NodeSet,
}

/// A read waiting for a heartbeat round to confirm leadership.
#[derive(Debug)]
pub(super) struct PendingRead {
    pub(super) read_id: ReadId,
    pub(super) read_slot: Slot,
    pub(super) round_needed: u64,
}

/// What a candidate has gathered in phase 1.
#[derive(Debug)]
pub(super) struct CandidateState {
    pub(super) ballot: Ballot,
    pub(super) from_slot: Slot,
    pub(super) promises: NodeSet,
    pub(super) self_promise_seq: Option<PersistSeq>,
    pub(super) values: BTreeMap<Slot, LogEntry>,
    pub(super) prepare_sent_ns: u64,
}

/// What a leader tracks.
#[derive(Debug)]
pub(super) struct LeaderState {
    pub(super) ballot: Ballot,
    pub(super) next_slot: Slot,
    pub(super) unsent_from: Slot,
    pub(super) in_flight: BTreeMap<Slot, InFlight>,
    pub(super) queue: VecDeque<Batch>,
    pub(super) ready_slot: Slot,
    pub(super) lease_until_ns: u64,
    pub(super) next_round: u64,
    pub(super) rounds: VecDeque<Round>,
    pub(super) confirmed_round: u64,
    pub(super) last_quorum_ns: u64,
    pub(super) reads: VecDeque<PendingRead>,
    pub(super) round_wanted: bool,
    pub(super) next_heartbeat_ns: u64,
}

/// What a non-voter gathers before it may vote again.
#[derive(Debug)]
pub(super) struct RecoveryState {
    pub(super) nonce: u64,
    pub(super) fence: Ballot,
    pub(super) answers: NodeSet,
    pub(super) adopted: BTreeMap<Slot, LogEntry>,
    pub(super) compacted_seen: Slot,
    pub(super) all_answered: bool,
    pub(super) catch_up_turn: u64,
    pub(super) best_peer: Option<(NodeId, Slot)>,
    pub(super) next_query_ns: u64,
}

/// A vote of this replica's own acceptor that counts once it is durable.
#[derive(Debug)]
pub(super) enum SelfVote {
    Promise { ballot: Ballot },
    Accepted { ballot: Ballot, slot: Slot },
}

/// A tiny deterministic generator for election timeouts and nonces, seeded
/// by the driver (SplitMix64).
#[derive(Debug)]
pub(super) struct Random(pub(super) u64);

impl Random {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low < high);
        low + self.next() % (high - low)
    }
}

/// A peer's answer to a damaged replica's fence.
#[derive(Debug)]
pub(super) struct RecoveryAnswer {
    pub(super) promised: Ballot,
    pub(super) accepted: Vec<synod_net::wire::AcceptedEntry>,
    pub(super) commit_point: Slot,
    pub(super) compacted_through: Slot,
}
