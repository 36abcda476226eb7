//! The simulator's one source of randomness: a ChaCha8 generator seeded
//! from the run's seed. Every random decision of a run goes through it, in
//! event order, so a seed replays exactly. A [`super::Workload`] draws its
//! clients' operations from the same generator, through [`Random`]'s few
//! helpers, so an embedder needs no random crate of its own.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Parts per million: the unit of every probability in the simulator.
pub(super) const PPM: u64 = 1_000_000;

/// The run's seeded generator, with the few helpers the simulator and its
/// workloads need. Draw from it only in event order (inside the callbacks
/// the simulator makes); then the same seed replays the same run.
#[derive(Debug)]
pub struct Random {
    generator: ChaCha8Rng,
}

impl Random {
    /// A generator that replays exactly for the same seed (for unit tests of
    /// a workload; a run makes its own).
    #[must_use]
    pub fn new(seed: u64) -> Random {
        Random {
            generator: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A uniformly random 64-bit number.
    pub fn next_u64(&mut self) -> u64 {
        self.generator.next_u64()
    }

    /// A number in `low..high` (`low` when the range is empty).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// A number in `0..count` (0 when `count` is 0).
    pub fn below(&mut self, count: u64) -> u64 {
        self.between(0, count)
    }

    /// An index in `0..count`.
    ///
    /// # Panics
    /// When `count` is 0: there is nothing to choose from (a caller bug).
    pub fn index(&mut self, count: usize) -> usize {
        assert!(count > 0, "choosing from an empty set");
        usize::try_from(self.between(0, count as u64)).expect("an index below a usize count")
    }

    /// True with probability `chance_ppm` parts per million.
    pub fn chance(&mut self, chance_ppm: u64) -> bool {
        chance_ppm > 0 && self.between(0, PPM) < chance_ppm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let mut first = Random::new(7);
        let mut second = Random::new(7);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
    }

    #[test]
    fn between_stays_in_range() {
        let mut random = Random::new(1);
        for _ in 0..1000 {
            let value = random.between(10, 20);
            assert!((10..20).contains(&value));
        }
        assert_eq!(random.between(5, 5), 5);
        assert!(!random.chance(0));
        assert!(random.chance(PPM));
    }
}
