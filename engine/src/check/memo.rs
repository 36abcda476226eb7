//! The search's memory of configurations it has already entered.
//!
//! A configuration is the register value and three sets of linearized
//! operations: required ones (minus unread writes), unread writes (required
//! puts of a value nobody reads, in keys without a failed cas), and optional
//! ones. Configuration A *covers* B when both have the same value and core
//! set, A has linearized every unread write B has, and A's optional set is
//! a subset of B's. Then every way to finish from B also finishes from A:
//! optional operations never block anything and A still has all of B's
//! left, and dropping an unread write from B's way changes only what the
//! operations between it and the next write see, which can be none but
//! failed cas operations (absent from such keys). Once entered, A is either
//! still being explored or has failed, so B can be skipped.
//!
//! Invariants:
//! - Every stored configuration was entered by the search.
//! - Within one entry no stored variant covers another, and an entry holds
//!   at most [`VARIANTS_PER_ENTRY_MAX`] variants, so one lookup costs a
//!   bounded number of comparisons.
//! - The bytes counted never exceed the limit by more than one entry;
//!   beyond the limit nothing new is stored, which only weakens pruning.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::bitset::{PackedRef, PackedSet};
use super::register::ValueId;

/// The most variants kept for one (core set, value) pair.
pub(super) const VARIANTS_PER_ENTRY_MAX: usize = 16;

/// An estimate of what an entry or variant costs beyond its sets' words.
const ENTRY_OVERHEAD_BYTES: usize = 96;

/// Whether a configuration is new to the memo.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Visit {
    /// Never entered, nor covered by one entered: explore it.
    New,
    /// Covered by a configuration already entered: skip it.
    Covered,
}

/// A configuration as the memo sees it, borrowed from the search.
#[derive(Clone, Copy, Debug)]
pub(super) struct Configuration<'a> {
    /// The linearized required operations that are not unread writes.
    pub(super) core: PackedRef<'a>,
    /// The register value.
    pub(super) state: ValueId,
    /// The linearized unread writes.
    pub(super) unread: PackedRef<'a>,
    /// The linearized optional operations.
    pub(super) optional: PackedRef<'a>,
}

struct Variant {
    unread: PackedSet,
    optional: PackedSet,
}

impl Variant {
    /// Whether the configuration this variant stands for covers one with
    /// these sets.
    fn covers(&self, unread: PackedRef<'_>, optional: PackedRef<'_>) -> bool {
        unread.is_subset(self.unread.as_ref()) && self.optional.as_ref().is_subset(optional)
    }
}

struct MemoEntry {
    core: PackedSet,
    state: ValueId,
    variants: Vec<Variant>,
}

/// The configurations entered so far, keyed by a hash of (core set, value)
/// the search keeps up to date as it linearizes and undoes operations.
pub(super) struct Memo {
    buckets: HashMap<u64, Vec<MemoEntry>, BuildHasherDefault<PremixedHasher>>,
    bytes: usize,
    bytes_max: usize,
}

impl Memo {
    /// An empty memo that stores at most about `bytes_max` bytes.
    pub(super) fn new(bytes_max: usize) -> Memo {
        Memo {
            buckets: HashMap::default(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Looks the configuration up and, when it is new, stores it. `hash`
    /// must be a function of the core set and the value alone.
    pub(super) fn visit(&mut self, hash: u64, configuration: Configuration<'_>) -> Visit {
        let full = self.bytes >= self.bytes_max;
        let Configuration {
            core,
            state,
            unread,
            optional,
        } = configuration;
        let bucket = self.buckets.entry(hash).or_default();
        match bucket
            .iter_mut()
            .find(|entry| entry.state == state && entry.core.as_ref() == core)
        {
            Some(entry) => {
                if entry
                    .variants
                    .iter()
                    .any(|variant| variant.covers(unread, optional))
                {
                    return Visit::Covered;
                }
                if !full {
                    let new = Variant {
                        unread: unread.to_owned(),
                        optional: optional.to_owned(),
                    };
                    entry
                        .variants
                        .retain(|old| !new.covers(old.unread.as_ref(), old.optional.as_ref()));
                    if entry.variants.len() < VARIANTS_PER_ENTRY_MAX {
                        self.bytes += ENTRY_OVERHEAD_BYTES
                            + new.unread.heap_bytes()
                            + new.optional.heap_bytes();
                        entry.variants.push(new);
                    }
                }
            }
            None if !full => {
                let variant = Variant {
                    unread: unread.to_owned(),
                    optional: optional.to_owned(),
                };
                let core = core.to_owned();
                self.bytes += 2 * ENTRY_OVERHEAD_BYTES
                    + core.heap_bytes()
                    + variant.unread.heap_bytes()
                    + variant.optional.heap_bytes();
                bucket.push(MemoEntry {
                    core,
                    state,
                    variants: vec![variant],
                });
            }
            None => {}
        }
        Visit::New
    }
}

/// A hasher for keys that are already well-mixed `u64`s.
#[derive(Default)]
struct PremixedHasher {
    hash: u64,
}

impl Hasher for PremixedHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.hash = mix(self.hash ^ u64::from(*byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.hash = value;
    }
}

/// SplitMix64's finalizer: a bijection on `u64` that spreads every input
/// bit over the output, for the search's incremental (Zobrist) hash.
pub(super) fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::{Configuration, Memo, Visit};
    use crate::check::bitset::Bitset;
    use crate::check::register::ValueId;

    fn set(members: &[usize]) -> Bitset {
        let mut set = Bitset::new(100);
        members.iter().for_each(|member| set.insert(*member));
        set
    }

    fn visit(
        memo: &mut Memo,
        core: &[usize],
        state: u32,
        unread: &[usize],
        optional: &[usize],
    ) -> Visit {
        let (core, unread, optional) = (set(core), set(unread), set(optional));
        let configuration = Configuration {
            core: core.packed(),
            state: ValueId(state),
            unread: unread.packed(),
            optional: optional.packed(),
        };
        memo.visit(7, configuration)
    }

    #[test]
    fn fewer_optional_and_more_unread_cover() {
        let mut memo = Memo::new(1 << 20);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[5], &[0]), Visit::New);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[5], &[0]), Visit::Covered);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[5], &[0, 2]), Visit::Covered);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[], &[0]), Visit::Covered);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[5, 6], &[0]), Visit::New);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[], &[]), Visit::New);
        assert_eq!(visit(&mut memo, &[1, 2], 3, &[6], &[0, 3]), Visit::Covered);
        // Same hash, different value or core set: distinct.
        assert_eq!(visit(&mut memo, &[1, 2], 4, &[5], &[0]), Visit::New);
        assert_eq!(visit(&mut memo, &[1], 3, &[5], &[0]), Visit::New);
    }

    #[test]
    fn a_full_memo_stores_nothing_more() {
        let mut memo = Memo::new(0);
        assert_eq!(visit(&mut memo, &[1], 1, &[], &[]), Visit::New);
        assert_eq!(visit(&mut memo, &[1], 1, &[], &[]), Visit::New);
    }
}
