//! A replica's local monotonic clock: real (virtual) time scaled by a
//! per-replica drift rate, plus an offset.
//!
//! Invariants:
//! - A local clock never goes backwards while real time goes forwards.
//! - Each rate lies within half the configured drift bound of real time,
//!   so any two clocks drift apart by at most the bound.

use super::random::{Random, PPM};

/// One replica's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LocalClock {
    offset_ns: u64,
    rate_ppm: i64,
}

impl LocalClock {
    /// A clock running at real speed with no offset.
    pub(super) fn exact() -> LocalClock {
        LocalClock {
            offset_ns: 0,
            rate_ppm: 0,
        }
    }

    /// A clock with a random offset (under a second) and, when `drift_max_ppm`
    /// is not 0, a random rate within half of it either way.
    pub(super) fn random(random: &mut Random, drift_max_ppm: u64) -> LocalClock {
        let offset_ns = random.between(0, 1_000_000_000);
        let half = drift_max_ppm / 2;
        let rate = random.between(0, 2 * half + 1);
        LocalClock {
            offset_ns,
            rate_ppm: i64::try_from(rate).expect("a drift below 10 % fits")
                - i64::try_from(half).expect("a drift below 10 % fits"),
        }
    }

    /// True when the clock runs at a rate other than real time's.
    pub(super) fn drifts(&self) -> bool {
        self.rate_ppm != 0
    }

    /// The local time at real time `real_ns`.
    pub(super) fn local_ns(&self, real_ns: u64) -> u64 {
        let real = i128::from(real_ns);
        let scaled = real + real * i128::from(self.rate_ppm) / i128::from(PPM);
        let local = i128::from(self.offset_ns) + scaled;
        u64::try_from(local).expect("a drift below 10 % keeps local time positive")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_stay_monotonic_and_within_the_bound() {
        let mut random = Random::new(3);
        for _ in 0..50 {
            let clock = LocalClock::random(&mut random, 1_000);
            let mut previous = 0;
            for step in 0..100u64 {
                let local = clock.local_ns(step * 10_000_000);
                assert!(local >= previous);
                previous = local;
            }
            let elapsed = clock.local_ns(1_000_000_000) - clock.local_ns(0);
            assert!(elapsed.abs_diff(1_000_000_000) <= 500_000);
        }
        assert_eq!(LocalClock::exact().local_ns(5), 5);
    }
}
