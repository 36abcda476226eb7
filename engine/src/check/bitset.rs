//! Sets of small integers, one bit each: the search's record of which
//! operations it has linearized.
//!
//! The search's sets are nearly prefixes (everything up to some operation,
//! plus a few around it), so the memo stores them packed: the count of
//! leading all-ones words, then the words up to the last non-zero one.
//!
//! Invariants:
//! - A packed set's first stored word, if any, is not all ones, and its last
//!   stored word is not zero, so one set has exactly one packed form.
//! - A [`Bitset`] keeps its count of leading all-ones words and the end of
//!   its last non-zero word up to date as it changes, so packing it takes
//!   constant time.

/// A set of integers in `0..capacity`, fixed when it is made.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Bitset {
    words: Vec<u64>,
    /// How many words at the start are all ones.
    full_words: usize,
    /// One past the last non-zero word (0 when empty).
    end_word: usize,
}

const WORD_BITS: usize = u64::BITS as usize;

impl Bitset {
    /// An empty set that can hold `0..capacity`.
    pub(super) fn new(capacity: usize) -> Bitset {
        Bitset {
            words: vec![0; capacity.div_ceil(WORD_BITS)],
            full_words: 0,
            end_word: 0,
        }
    }

    /// Adds `member`.
    ///
    /// # Panics
    /// If `member` is not below the capacity (a programmer error).
    pub(super) fn insert(&mut self, member: usize) {
        let word = member / WORD_BITS;
        self.words[word] |= 1 << (member % WORD_BITS);
        self.end_word = self.end_word.max(word + 1);
        while self.words.get(self.full_words) == Some(&u64::MAX) {
            self.full_words += 1;
        }
    }

    /// Removes `member`.
    ///
    /// # Panics
    /// If `member` is not below the capacity (a programmer error).
    pub(super) fn remove(&mut self, member: usize) {
        let word = member / WORD_BITS;
        self.words[word] &= !(1 << (member % WORD_BITS));
        self.full_words = self.full_words.min(word);
        while self.end_word > 0 && self.words[self.end_word - 1] == 0 {
            self.end_word -= 1;
        }
    }

    /// Whether `member` is in the set; false for members beyond the capacity.
    pub(super) fn contains(&self, member: usize) -> bool {
        self.words
            .get(member / WORD_BITS)
            .is_some_and(|word| word & (1 << (member % WORD_BITS)) != 0)
    }

    /// How many members the set has.
    pub(super) fn len(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    /// The set in packed form, borrowing its words.
    pub(super) fn packed(&self) -> PackedRef<'_> {
        debug_assert_eq!(
            self.full_words,
            self.words
                .iter()
                .take_while(|word| **word == u64::MAX)
                .count()
        );
        debug_assert_eq!(
            self.end_word,
            self.words
                .iter()
                .rposition(|word| *word != 0)
                .map_or(0, |last| last + 1)
        );
        let end = self.end_word.max(self.full_words);
        PackedRef {
            full_words: self.full_words,
            words: &self.words[self.full_words..end],
        }
    }
}

/// A set in packed form, borrowed from a [`Bitset`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct PackedRef<'a> {
    full_words: usize,
    words: &'a [u64],
}

/// A set in packed form, owned: what the memo stores.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct PackedSet {
    full_words: usize,
    words: Box<[u64]>,
}

impl PackedRef<'_> {
    /// An owned copy.
    pub(super) fn to_owned(self) -> PackedSet {
        PackedSet {
            full_words: self.full_words,
            words: self.words.into(),
        }
    }
}

impl PackedSet {
    /// The borrowed form, for comparisons.
    pub(super) fn as_ref(&self) -> PackedRef<'_> {
        PackedRef {
            full_words: self.full_words,
            words: &self.words,
        }
    }

    /// The memory the stored words take, for the memo's byte limit.
    pub(super) fn heap_bytes(&self) -> usize {
        self.words.len() * std::mem::size_of::<u64>()
    }
}

impl PackedRef<'_> {
    /// Whether every member of `self` is also in `other`, in time
    /// proportional to the stored words.
    pub(super) fn is_subset(self, other: PackedRef<'_>) -> bool {
        // Below `other.full_words` every word of `other` is all ones. If we
        // have more full words, `other`'s first stored word (not all ones)
        // meets one of ours that is.
        let Some(offset) = other.full_words.checked_sub(self.full_words) else {
            return false;
        };
        let mine = self.words.get(offset..).unwrap_or_default();
        // Our last stored word is not zero, so it needs a word of `other`.
        mine.len() <= other.words.len()
            && mine
                .iter()
                .zip(other.words)
                .all(|(mine, theirs)| mine & !theirs == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    fn set(capacity: usize, members: impl IntoIterator<Item = usize>) -> Bitset {
        let mut set = Bitset::new(capacity);
        members.into_iter().for_each(|member| set.insert(member));
        set
    }

    #[test]
    fn insert_remove_contains() {
        let mut set = Bitset::new(130);
        assert!(!set.contains(129));
        set.insert(0);
        set.insert(64);
        set.insert(129);
        assert!(set.contains(0) && set.contains(64) && set.contains(129));
        assert!(!set.contains(1) && !set.contains(500));
        assert_eq!(set.len(), 3);
        set.remove(64);
        assert!(!set.contains(64));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn packing_stays_right_as_the_set_changes() {
        let mut set = Bitset::new(200);
        let mut members = std::collections::BTreeSet::new();
        // A fixed pseudo-random walk over inserts and removes.
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let member = (seed % 200) as usize;
            // One step in three removes (the workspace's Rust predates
            // `is_multiple_of`).
            match seed % 3 {
                0 => {
                    set.remove(member);
                    members.remove(&member);
                }
                _ => {
                    set.insert(member);
                    members.insert(member);
                }
            }
            // `packed` checks its cached bounds against a full scan in
            // debug builds; the round trip checks the packed form.
            let packed = set.packed();
            assert_eq!(packed.to_owned().as_ref(), packed);
            assert_eq!(set.len(), members.len());
            assert!(members.iter().all(|member| set.contains(*member)));
        }
    }

    #[test]
    fn packed_form_is_canonical() {
        let prefix = set(300, 0..128);
        assert_eq!(prefix.packed().full_words, 2);
        assert!(prefix.packed().words.is_empty());
        let with_extra = set(300, (0..130).chain([200]));
        let packed = with_extra.packed();
        assert_eq!((packed.full_words, packed.words.len()), (2, 2));
        assert_eq!(packed.to_owned().as_ref(), packed);
        assert_eq!(set(300, []).packed(), set(10, []).packed());
        assert_ne!(prefix.packed(), with_extra.packed());
    }

    #[test]
    fn packed_subset() {
        let sets = [
            set(300, []),
            set(300, [5]),
            set(300, 0..64),
            set(300, 0..70),
            set(300, (0..64).chain([200])),
            set(300, (0..128).chain([199, 200])),
            set(300, 0..300),
        ];
        for small in &sets {
            for large in &sets {
                let expected =
                    (0..300).all(|member| !small.contains(member) || large.contains(member));
                assert_eq!(
                    small.packed().is_subset(large.packed()),
                    expected,
                    "{small:?} {large:?}"
                );
            }
        }
    }
}
