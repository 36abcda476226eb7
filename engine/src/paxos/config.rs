//! One `Config` for every timing and limit of a replica group, shared by the
//! simulator and the runtime, with documented defaults.

use synod_net::wire::NodeId;

/// Every timing and limit of one Paxos group. All replicas of a group must
/// use the same values (the simulator and the runtime both start from
/// [`Config::default`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The replicas of the group, by node id (3, 5 or 7 of them).
    pub nodes: Vec<NodeId>,
    /// Phase-1 (prepare/promise) quorum size; 0 means a majority.
    pub quorum_phase1: usize,
    /// Phase-2 (accept/accepted) quorum size; 0 means a majority.
    /// Flexible Paxos: `quorum_phase1 + quorum_phase2` must exceed the node count.
    pub quorum_phase2: usize,
    /// How often a leader sends heartbeats (and retransmits unacknowledged
    /// accepts). Default 50 ms.
    pub heartbeat_interval_ns: u64,
    /// A follower that hears no leader for a random time in
    /// `[election_timeout_min_ns, election_timeout_max_ns)` becomes a
    /// candidate. Default 300-600 ms.
    pub election_timeout_min_ns: u64,
    /// See `election_timeout_min_ns`.
    pub election_timeout_max_ns: u64,
    /// Lease length: an acceptor that acknowledged a leader's heartbeat or
    /// accept promises no other candidate for this long (by its own clock),
    /// and the leader serves local reads within the lease, shortened for
    /// clock drift. 0 disables leases (every read takes a quorum round).
    /// Default 200 ms; it must be below `election_timeout_min_ns`.
    pub lease_ns: u64,
    /// Bound on the rate at which any two clocks drift apart, in parts per
    /// million. Default 1000 (0.1 %), far above real quartz drift.
    pub clock_drift_max_ppm: u64,
    /// The leader's window of slots in flight beyond its commit point
    /// (pipelining). Default 256.
    pub window_slot_count_max: u64,
    /// Proposals that wait for window space; past this, `propose` answers
    /// `Busy`. Default 4096.
    pub proposal_queue_max: usize,
    /// Reads waiting for a quorum round; past this, `read` answers `Busy`.
    /// Default 65536.
    pub reads_pending_max: usize,
    /// Most batches in one catch-up message. Default 64.
    pub catch_up_slot_count_max: u64,
    /// Most batches in one accept message. Default 256.
    pub accept_slot_count_max: u64,
    /// Chosen entries kept in memory behind the snapshot point for lagging
    /// followers before the log is compacted. Default 1024.
    pub retained_slot_count_max: u64,
    /// Deliberate protocol bugs, for proving the simulator's checks bite.
    #[cfg(feature = "sim")]
    pub bugs: Bugs,
}

/// Deliberate protocol bugs (feature `sim` only). Each one breaks a rule the
/// simulator must catch; none is ever on outside tests.
#[cfg(feature = "sim")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// A new leader ignores the accepted values reported in promises and
    /// fills every open slot with its own proposals or no-ops.
    pub ignore_promised_values: bool,
    /// An acceptor sends promises and accepteds before they are durable.
    pub reply_before_persist: bool,
    /// Acceptors promise a new candidate while another leader's lease runs,
    /// and a restarted acceptor does not wait out leases it may have granted.
    pub skip_lease_wait: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            nodes: vec![NodeId(1), NodeId(2), NodeId(3)],
            quorum_phase1: 0,
            quorum_phase2: 0,
            heartbeat_interval_ns: 50_000_000,
            election_timeout_min_ns: 300_000_000,
            election_timeout_max_ns: 600_000_000,
            lease_ns: 200_000_000,
            clock_drift_max_ppm: 1_000,
            window_slot_count_max: 256,
            proposal_queue_max: 4_096,
            reads_pending_max: 65_536,
            catch_up_slot_count_max: 64,
            accept_slot_count_max: 256,
            retained_slot_count_max: 1_024,
            #[cfg(feature = "sim")]
            bugs: Bugs::default(),
        }
    }
}

/// A configuration that cannot run safely or at all.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The group must have between 1 and 64 replicas, each id once, none zero.
    #[error("bad node list {nodes:?}: need 1..=64 distinct non-zero node ids")]
    Nodes {
        /// The list given.
        nodes: Vec<NodeId>,
    },
    /// This replica's id is not among the group's nodes.
    #[error("node {node} is not in the group {nodes:?}")]
    NotMember {
        /// This replica.
        node: NodeId,
        /// The group.
        nodes: Vec<NodeId>,
    },
    /// Flexible Paxos needs every phase-1 quorum to meet every phase-2
    /// quorum, and a phase-2 quorum of one would let one lost disk lose
    /// chosen values.
    #[error("unsafe quorums: phase 1 {phase1} + phase 2 {phase2} must exceed {node_count} nodes, each at most {node_count}, phase 2 at least 2 when there are several nodes")]
    Quorums {
        /// Phase-1 quorum size.
        phase1: usize,
        /// Phase-2 quorum size.
        phase2: usize,
        /// Number of replicas.
        node_count: usize,
    },
    /// A timing or limit is out of range.
    #[error("bad setting {name}: {reason}")]
    Setting {
        /// The field's name.
        name: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl Config {
    /// The phase-1 quorum size in force (a majority when 0 is configured).
    #[must_use]
    pub fn phase1_quorum(&self) -> usize {
        if self.quorum_phase1 == 0 {
            self.nodes.len() / 2 + 1
        } else {
            self.quorum_phase1
        }
    }

    /// The phase-2 quorum size in force (a majority when 0 is configured).
    #[must_use]
    pub fn phase2_quorum(&self) -> usize {
        if self.quorum_phase2 == 0 {
            self.nodes.len() / 2 + 1
        } else {
            self.quorum_phase2
        }
    }

    /// The part of a lease the leader may use by its own clock: a lease the
    /// acceptors hold for `lease_ns` by their clocks lasts at least this long
    /// by the leader's, given the drift bound.
    #[must_use]
    pub fn leader_lease_ns(&self) -> u64 {
        let ppm = u128::from(self.clock_drift_max_ppm);
        let shortened = u128::from(self.lease_ns) * (1_000_000 - ppm) / (1_000_000 + ppm);
        u64::try_from(shortened).unwrap_or(u64::MAX)
    }

    /// Checks the configuration for replica `node`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first setting that cannot work.
    pub fn validate(&self, node: NodeId) -> Result<(), ConfigError> {
        let mut sorted = self.nodes.clone();
        sorted.sort();
        sorted.dedup();
        let count = self.nodes.len();
        if count == 0 || count > 64 || sorted.len() != count || sorted[0] == NodeId(0) {
            return Err(ConfigError::Nodes {
                nodes: self.nodes.clone(),
            });
        }
        if !self.nodes.contains(&node) {
            return Err(ConfigError::NotMember {
                node,
                nodes: self.nodes.clone(),
            });
        }
        let (phase1, phase2) = (self.phase1_quorum(), self.phase2_quorum());
        let single_copy = count > 1 && phase2 < 2;
        if phase1 > count || phase2 > count || phase1 + phase2 <= count || single_copy {
            return Err(ConfigError::Quorums {
                phase1,
                phase2,
                node_count: count,
            });
        }
        self.validate_timings()
    }

    fn validate_timings(&self) -> Result<(), ConfigError> {
        let setting = |name, reason| Err(ConfigError::Setting { name, reason });
        if self.heartbeat_interval_ns == 0 {
            return setting("heartbeat_interval_ns", "must be positive");
        }
        if self.election_timeout_min_ns <= self.heartbeat_interval_ns {
            return setting(
                "election_timeout_min_ns",
                "must exceed heartbeat_interval_ns",
            );
        }
        if self.election_timeout_max_ns <= self.election_timeout_min_ns {
            return setting(
                "election_timeout_max_ns",
                "must exceed election_timeout_min_ns",
            );
        }
        if self.lease_ns >= self.election_timeout_min_ns {
            return setting("lease_ns", "must be below election_timeout_min_ns");
        }
        if self.clock_drift_max_ppm >= 100_000 {
            return setting("clock_drift_max_ppm", "must be below 100000 (10 %)");
        }
        if self.window_slot_count_max == 0 || self.accept_slot_count_max == 0 {
            return setting(
                "window_slot_count_max",
                "window and accept sizes must be positive",
            );
        }
        if self.catch_up_slot_count_max == 0 || self.proposal_queue_max == 0 {
            return setting(
                "catch_up_slot_count_max",
                "catch-up and queue sizes must be positive",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(count: u8) -> Vec<NodeId> {
        (1..=count).map(NodeId).collect()
    }

    #[test]
    fn majorities_by_default() {
        for (count, quorum) in [(3, 2), (5, 3), (7, 4)] {
            let config = Config {
                nodes: nodes(count),
                ..Config::default()
            };
            assert_eq!(config.phase1_quorum(), quorum);
            assert_eq!(config.phase2_quorum(), quorum);
            assert_eq!(config.validate(NodeId(1)), Ok(()));
        }
    }

    #[test]
    fn flexible_quorums_must_intersect() {
        let good = Config {
            nodes: nodes(5),
            quorum_phase1: 4,
            quorum_phase2: 2,
            ..Config::default()
        };
        assert_eq!(good.validate(NodeId(1)), Ok(()));
        let bad = Config {
            nodes: nodes(5),
            quorum_phase1: 3,
            quorum_phase2: 2,
            ..Config::default()
        };
        assert!(matches!(
            bad.validate(NodeId(1)),
            Err(ConfigError::Quorums { .. })
        ));
        let too_big = Config {
            nodes: nodes(3),
            quorum_phase1: 4,
            quorum_phase2: 1,
            ..Config::default()
        };
        assert!(matches!(
            too_big.validate(NodeId(1)),
            Err(ConfigError::Quorums { .. })
        ));
    }

    #[test]
    fn rejects_bad_members_and_timings() {
        let config = Config::default();
        assert!(matches!(
            config.validate(NodeId(9)),
            Err(ConfigError::NotMember { .. })
        ));
        let duplicate = Config {
            nodes: vec![NodeId(1), NodeId(1), NodeId(2)],
            ..Config::default()
        };
        assert!(matches!(
            duplicate.validate(NodeId(1)),
            Err(ConfigError::Nodes { .. })
        ));
        let lease = Config {
            lease_ns: 400_000_000,
            ..Config::default()
        };
        assert!(matches!(
            lease.validate(NodeId(1)),
            Err(ConfigError::Setting { .. })
        ));
    }

    #[test]
    fn leader_lease_is_shortened_for_drift() {
        let config = Config::default();
        assert!(config.leader_lease_ns() < config.lease_ns);
        assert!(config.leader_lease_ns() > config.lease_ns / 2);
    }
}
