//! The simulated network: latency, the message faults (drop, duplicate,
//! reorder, delay spikes) and cut links between replicas.
//!
//! Invariants:
//! - A message over a cut link is lost when it arrives (a cut made while it
//!   was in flight loses it too).
//! - With message faults off, every message between live endpoints arrives
//!   exactly once, after a latency within the healthy range.

use std::collections::BTreeSet;

use crate::wire::NodeId;

use super::config::{FaultRates, FaultSet};
use super::fault::FaultCounts;
use super::random::Random;

/// Links and message faults.
#[derive(Debug)]
pub(super) struct Network {
    /// Directed links that lose every message: (from, to).
    cuts: BTreeSet<(NodeId, NodeId)>,
    /// The message fault classes in force (none once the faults heal).
    faults: FaultSet,
    rates: FaultRates,
}

impl Network {
    /// A healthy network with these fault classes and rates.
    pub(super) fn new(faults: FaultSet, rates: FaultRates) -> Network {
        Network {
            cuts: BTreeSet::new(),
            faults,
            rates,
        }
    }

    /// Decides when a message sent now arrives: no delivery (dropped), one,
    /// or two (duplicated); each is a delay from now.
    pub(super) fn plan(&self, random: &mut Random, counts: &mut FaultCounts) -> Vec<u64> {
        if self.faults.drop && random.chance(self.rates.drop_ppm) {
            counts.dropped += 1;
            return Vec::new();
        }
        let copies = if self.faults.duplicate && random.chance(self.rates.duplicate_ppm) {
            counts.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies).map(|_| self.delay(random, counts)).collect()
    }

    fn delay(&self, random: &mut Random, counts: &mut FaultCounts) -> u64 {
        let rates = &self.rates;
        let mut delay = random.between(rates.latency_min_ns, rates.latency_max_ns + 1);
        if self.faults.reorder && random.chance(rates.reorder_ppm) {
            counts.reordered += 1;
            delay += random.between(0, rates.reorder_delay_max_ns + 1);
        }
        if self.faults.delay && random.chance(rates.spike_ppm) {
            counts.delayed += 1;
            delay += random.between(rates.spike_min_ns, rates.spike_max_ns + 1);
        }
        delay
    }

    /// True when messages from `from` to `to` are lost.
    pub(super) fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cuts.contains(&(from, to))
    }

    /// Cuts the link from `from` to `to`.
    pub(super) fn cut(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.cuts.insert((from, to));
        }
    }

    /// True when some link is cut.
    pub(super) fn has_cuts(&self) -> bool {
        !self.cuts.is_empty()
    }

    /// Restores every link.
    pub(super) fn heal_cuts(&mut self) {
        self.cuts.clear();
    }

    /// Stops every message fault: from now on the network is healthy.
    pub(super) fn stop_faults(&mut self) {
        self.faults = FaultSet::none();
        self.cuts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_network_delivers_once_within_latency() {
        let rates = FaultRates::default();
        let network = Network::new(FaultSet::none(), rates);
        let mut random = Random::new(5);
        let mut counts = FaultCounts::default();
        for _ in 0..1000 {
            let plan = network.plan(&mut random, &mut counts);
            assert_eq!(plan.len(), 1);
            assert!((rates.latency_min_ns..=rates.latency_max_ns).contains(&plan[0]));
        }
        assert_eq!(counts, FaultCounts::default());
    }

    #[test]
    fn cuts_are_directed() {
        let mut network = Network::new(FaultSet::all(), FaultRates::default());
        network.cut(NodeId(1), NodeId(2));
        assert!(network.is_cut(NodeId(1), NodeId(2)));
        assert!(!network.is_cut(NodeId(2), NodeId(1)));
        network.heal_cuts();
        assert!(!network.has_cuts());
    }
}
