//! crc32c, the checksum of every frame body and log record, as fast as the
//! CPU allows.
//!
//! Inputs of [`FOLD_MIN_BYTES`] and more, on x86-64 with `VPCLMULQDQ`, are
//! folded with carry-less multiplies: with AVX-512, 256 bytes a step with
//! four 512-bit accumulators, then 64 bytes a step with one; with AVX2
//! only (AMD Zen 3, Intel Alder Lake), the same with 256-bit registers,
//! 128 and 32 bytes a step; then 16. Shorter inputs go through the `crc32`
//! instruction 8 bytes at a time (SSE 4.2), and everything else to the
//! `crc32c` crate (SSE 4.2 `crc32` instructions, three streams).
//! `cargo bench -p synod-net --bench frames -- crc32c`; on Zen 4 one run,
//! the crate against the 512-bit fold; on Zen 3 (2026-11-28) the binaries
//! before and after the 256-bit fold alternating, medians of three runs:
//!
//! | bytes | Zen 4: crate / 512-bit fold | Zen 3: crate / 256-bit fold | Zen 3, copying too: copy then crate / one pass |
//! |---|---|---|---|
//! | 176 | 17.1 / 9.9 ns | 22 / 21 ns | |
//! | 1,136 | 69 / 27 ns | 100 / 71 ns | 124 / 74 ns |
//! | 4,096 | 194 / 78 ns | 259 / 215 ns | 2,198 / 225 ns |
//! | 65,600 | 2.69 / 1.17 us | 3.39 / 3.02 us | 5.23 / 3.54 us |
//!
//! On Zen 3 the 256-bit multiplies take about what the crate's three
//! `crc32` streams take on long inputs; the gain there is
//! [`copy_crc32c_append`], which stores what it loads. The separate
//! `memcpy` of 4 KiB took 2 us: the benchmark's target, allocated right
//! after its source, lies 16 bytes past it modulo 4 KiB, where `rep movsb`
//! is slow on that CPU (see `crate::bytes::receive_buffer`).
//!
//! How the fold works (reflected bit order, as crc32c uses): a 128-bit
//! lane `X` that stands `D` bits before the data it is folded into is
//! replaced by `X * x^D mod P`, computed as two 64x64 carry-less products
//! of its halves with constants `x^(D+32) mod P` and `x^(D-32) mod P`
//! (laid out over 33 bits, see `fold_keys`); the result has the same
//! remainder, so the checksum of the folded 16 bytes followed by the rest
//! of the input, computed with the `crc32` instruction from a zero state,
//! is the checksum of the whole input. The starting crc is XORed into the
//! first four bytes, which is what starting the `crc32` instruction from
//! it does.
//!
//! Invariants:
//! - [`crc32c()`] and [`crc32c_append`] return exactly what the `crc32c`
//!   crate returns for every input and starting value (property tests
//!   against it, every length up to 2 KiB at several alignments, and
//!   every input under 64 bytes at every alignment from several starts).
//! - The fold runs only after runtime detection of every CPU feature it
//!   uses.

/// The shortest input the fold takes; shorter ones go through the `crc32`
/// instruction alone.
pub const FOLD_MIN_BYTES: usize = 64;

/// The crc32c (Castagnoli) of `data`.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// Continues `crc` (a finished crc32c of earlier bytes) over `data`:
/// `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
#[must_use]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= FOLD_MIN_BYTES {
        if let Some(width) = fold::width() {
            // SAFETY: `fold::width` checked at run time that this CPU has
            // every feature the fold of that width is compiled for; without
            // `COPY` it never touches `target`, so a null one is fine.
            return unsafe { fold::fold::<false>(width, crc, data, std::ptr::null_mut()) };
        }
    } else if std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the one feature `fold::short` needs was checked at run time.
        return unsafe { fold::short(crc, data) };
    }
    crc32c::crc32c_append(crc, data)
}

/// Which code computes checksums of [`FOLD_MIN_BYTES`] and more on this
/// CPU, for benchmark reports: `"512-bit fold"`, `"256-bit fold"` or
/// `"crc32c crate"`.
#[must_use]
pub fn implementation() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    match fold::width() {
        Some(fold::Width::Zmm) => return "512-bit fold",
        Some(fold::Width::Ymm) => return "256-bit fold",
        None => {}
    }
    "crc32c crate"
}

/// Copies `source` to `target` and continues `crc` over it, as
/// `target.copy_from_slice(source)` followed by
/// `crc32c_append(crc, source)` would, in one pass over the bytes where
/// the fold runs (each 64 bytes loaded once, stored and folded).
///
/// # Panics
/// When the lengths differ.
pub fn copy_crc32c_append(crc: u32, target: &mut [u8], source: &[u8]) -> u32 {
    assert_eq!(target.len(), source.len(), "copy between equal lengths");
    // SAFETY: `target` is valid for writes of its whole length, which is
    // `source.len()`, and a `&mut` borrow never overlaps `source`.
    unsafe { copy_crc32c_append_raw(crc, target.as_mut_ptr(), source) }
}

/// [`copy_crc32c_append`] into memory that may be uninitialised.
///
/// # Safety
/// `target` must be valid for writes of `source.len()` bytes and must not
/// overlap `source`.
pub unsafe fn copy_crc32c_append_raw(crc: u32, target: *mut u8, source: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(width) = fold::width().filter(|_| source.len() >= FOLD_MIN_BYTES) {
        // SAFETY: the features were checked at run time; the caller vouches
        // for `target`.
        return unsafe { fold::fold::<true>(width, crc, source, target) };
    }
    // SAFETY: the caller vouches for `target` (valid, not overlapping).
    unsafe { std::ptr::copy_nonoverlapping(source.as_ptr(), target, source.len()) };
    crc32c_append(crc, source)
}

/// The Castagnoli polynomial in normal bit order, without its x^32 term.
#[cfg(any(target_arch = "x86_64", test))]
const POLY: u64 = 0x1EDC_6F41;

/// `x^n mod P` in normal bit order (bit i is the coefficient of x^i).
#[cfg(any(target_arch = "x86_64", test))]
const fn xpow_mod(n: u32) -> u32 {
    let mut value: u64 = 1;
    let mut step = 0;
    while step < n {
        value <<= 1;
        if value & (1 << 32) != 0 {
            value ^= (1 << 32) | POLY;
        }
        step += 1;
    }
    value as u32
}

/// A remainder of degree below 32 laid out for a carry-less multiply with a
/// reflected 64-bit half-lane: bit `32 - i` holds the coefficient of x^i,
/// so the product lands in the reflected 128-bit lane without a shift.
#[cfg(any(target_arch = "x86_64", test))]
const fn reflect33(remainder: u32) -> u64 {
    let mut out = 0u64;
    let mut bit = 0;
    while bit < 32 {
        if remainder & (1 << bit) != 0 {
            out |= 1 << (32 - bit);
        }
        bit += 1;
    }
    out
}

/// The constants that move a 128-bit lane `distance` bits forward: for its
/// low half (the higher powers) and for its high half.
#[cfg(target_arch = "x86_64")]
const fn fold_keys(distance: u32) -> (u64, u64) {
    (
        reflect33(xpow_mod(distance + 32)),
        reflect33(xpow_mod(distance - 32)),
    )
}

#[cfg(target_arch = "x86_64")]
mod fold {
    use std::arch::x86_64::{
        __m128i, __m256i, __m512i, _mm256_clmulepi64_epi128, _mm256_extracti128_si256,
        _mm256_loadu_si256, _mm256_set_epi64x, _mm256_storeu_si256, _mm256_xor_si256,
        _mm256_zextsi128_si256, _mm512_clmulepi64_epi128, _mm512_extracti32x4_epi32,
        _mm512_loadu_si512, _mm512_set_epi64, _mm512_storeu_si512, _mm512_ternarylogic_epi64,
        _mm512_xor_si512, _mm512_zextsi128_si512, _mm_clmulepi64_si128, _mm_crc32_u16,
        _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8, _mm_cvtsi128_si64, _mm_cvtsi32_si128,
        _mm_extract_epi64, _mm_loadu_si128, _mm_set_epi64x, _mm_storeu_si128, _mm_xor_si128,
    };
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::fold_keys;

    /// One 128-bit lane into the next.
    const KEYS_128: (u64, u64) = fold_keys(128);

    /// The register width a fold runs with.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Width {
        /// AVX-512F and `VPCLMULQDQ`: 512-bit registers, 256 bytes a step.
        Zmm,
        /// AVX2 and `VPCLMULQDQ` (AMD Zen 3, Intel Alder Lake): 256-bit
        /// registers, 128 bytes a step.
        Ymm,
    }

    impl Width {
        /// True when this CPU has every feature this width's fold uses.
        ///
        /// That is every feature its `#[target_feature]` enables, and the
        /// ones rustc enables with them: `avx512f` brings `avx2`, `avx`,
        /// `fma` and `f16c`, `vpclmulqdq` brings `avx`. The standard
        /// library reports `avx512f` only with `fma` and `f16c`, but each
        /// CPUID bit on its own otherwise (and `vpclmulqdq` without asking
        /// whether the OS saves the vector registers), so `avx` and `avx2`
        /// are checked here for both widths: a hypervisor may hide one
        /// and not the other.
        fn detected(self) -> bool {
            let common = std::is_x86_feature_detected!("vpclmulqdq")
                && std::is_x86_feature_detected!("pclmulqdq")
                && std::is_x86_feature_detected!("sse4.2")
                && std::is_x86_feature_detected!("avx")
                && std::is_x86_feature_detected!("avx2");
            common
                && match self {
                    Width::Zmm => std::is_x86_feature_detected!("avx512f"),
                    Width::Ymm => true,
                }
        }
    }

    const UNKNOWN: u8 = 0;
    const ZMM: u8 = 1;
    const YMM: u8 = 2;
    const NONE: u8 = 3;
    static WIDTH: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// The widest fold this CPU runs, if any (detected once).
    pub(super) fn width() -> Option<Width> {
        match WIDTH.load(Ordering::Relaxed) {
            ZMM => Some(Width::Zmm),
            YMM => Some(Width::Ymm),
            NONE => None,
            _ => {
                let found = widths().next();
                let code = match found {
                    Some(Width::Zmm) => ZMM,
                    Some(Width::Ymm) => YMM,
                    None => NONE,
                };
                WIDTH.store(code, Ordering::Relaxed);
                found
            }
        }
    }

    /// Every fold this CPU runs, widest first.
    pub(super) fn widths() -> impl Iterator<Item = Width> {
        [Width::Zmm, Width::Ymm]
            .into_iter()
            .filter(|width| width.detected())
    }

    /// The fold; see the module documentation. With `COPY`, every byte of
    /// `data` is also stored at the same offset from `target`, from the
    /// registers the fold loads it into.
    ///
    /// # Safety
    /// The CPU must have every feature `width` needs (it came from
    /// [`width`] or [`widths`]). With `COPY`, `target` must be valid for
    /// writes of `data.len()` bytes and must not overlap `data`.
    ///
    /// # Panics
    /// When `data` is shorter than [`super::FOLD_MIN_BYTES`].
    pub(super) unsafe fn fold<const COPY: bool>(
        width: Width,
        crc: u32,
        data: &[u8],
        target: *mut u8,
    ) -> u32 {
        // SAFETY: the caller vouches for the features and for `target`.
        unsafe {
            match width {
                Width::Zmm => fold_zmm::<COPY>(crc, data, target),
                Width::Ymm => fold_ymm::<COPY>(crc, data, target),
            }
        }
    }

    #[target_feature(enable = "avx512f,vpclmulqdq,pclmulqdq,sse4.2")]
    unsafe fn fold_zmm<const COPY: bool>(crc: u32, data: &[u8], target: *mut u8) -> u32 {
        // SAFETY: as `fold`; the features `Zmm` uses are enabled here.
        unsafe { fold_with::<__m512i, COPY>(crc, data, target) }
    }

    #[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq,sse4.2")]
    unsafe fn fold_ymm<const COPY: bool>(crc: u32, data: &[u8], target: *mut u8) -> u32 {
        // SAFETY: as `fold`; the features `Ymm` uses are enabled here.
        unsafe { fold_with::<__m256i, COPY>(crc, data, target) }
    }

    /// A vector register the fold runs on. Its methods are inlined into a
    /// function that enables the features they need (`fold_zmm`,
    /// `fold_ymm`), so each compiles to the instructions it names.
    trait Register: Copy {
        /// Bytes per register.
        const BYTES: usize;
        /// The constants that move every 128-bit lane one register on.
        const NEXT: (u64, u64);
        /// The same, four registers on (four accumulators a step).
        const FOUR: (u64, u64);
        /// # Safety
        /// `from` is valid for reads of `BYTES`; the CPU has the features.
        unsafe fn load(from: *const u8) -> Self;
        /// # Safety
        /// `to` is valid for writes of `BYTES`; the CPU has the features.
        unsafe fn store(self, to: *mut u8);
        /// # Safety
        /// The CPU has the features (as for every method below).
        unsafe fn low32(value: u32) -> Self;
        /// # Safety
        /// As above.
        unsafe fn xor(self, other: Self) -> Self;
        /// `keys` in every 128-bit lane.
        ///
        /// # Safety
        /// As above.
        unsafe fn keys(keys: (u64, u64)) -> Self;
        /// Each 128-bit lane of `self` moved on by `keys` and added to `next`.
        ///
        /// # Safety
        /// As above.
        unsafe fn fold(self, keys: Self, next: Self) -> Self;
        /// Every lane moved onto the last one, each by its own distance.
        ///
        /// # Safety
        /// As above.
        unsafe fn last_lane(self) -> __m128i;
    }

    impl Register for __m512i {
        const BYTES: usize = 64;
        const NEXT: (u64, u64) = fold_keys(512);
        const FOUR: (u64, u64) = fold_keys(2048);

        #[inline(always)]
        unsafe fn load(from: *const u8) -> Self {
            // SAFETY: the caller's promise (readable, features).
            unsafe { _mm512_loadu_si512(from.cast()) }
        }

        #[inline(always)]
        unsafe fn store(self, to: *mut u8) {
            // SAFETY: the caller's promise (writable, features).
            unsafe { _mm512_storeu_si512(to.cast(), self) }
        }

        #[inline(always)]
        unsafe fn low32(value: u32) -> Self {
            // SAFETY: the caller's promise (features).
            unsafe { _mm512_zextsi128_si512(_mm_cvtsi32_si128(value as i32)) }
        }

        #[inline(always)]
        unsafe fn xor(self, other: Self) -> Self {
            // SAFETY: the caller's promise (features).
            unsafe { _mm512_xor_si512(self, other) }
        }

        #[inline(always)]
        unsafe fn keys(keys: (u64, u64)) -> Self {
            let (low, high) = (keys.0 as i64, keys.1 as i64);
            // SAFETY: the caller's promise (features).
            unsafe { _mm512_set_epi64(high, low, high, low, high, low, high, low) }
        }

        #[inline(always)]
        unsafe fn fold(self, keys: Self, next: Self) -> Self {
            // SAFETY: the caller's promise (features).
            unsafe {
                let low = _mm512_clmulepi64_epi128(self, keys, 0x00);
                let high = _mm512_clmulepi64_epi128(self, keys, 0x11);
                // 0x96: three-way XOR.
                _mm512_ternarylogic_epi64(low, high, next, 0x96)
            }
        }

        #[inline(always)]
        unsafe fn last_lane(self) -> __m128i {
            // The multiplies are independent, only the XORs chain.
            // SAFETY: the caller's promise (features).
            unsafe {
                fold128(
                    _mm512_extracti32x4_epi32::<0>(self),
                    const { fold_keys(384) },
                    fold128(
                        _mm512_extracti32x4_epi32::<1>(self),
                        const { fold_keys(256) },
                        fold128(
                            _mm512_extracti32x4_epi32::<2>(self),
                            KEYS_128,
                            _mm512_extracti32x4_epi32::<3>(self),
                        ),
                    ),
                )
            }
        }
    }

    impl Register for __m256i {
        const BYTES: usize = 32;
        const NEXT: (u64, u64) = fold_keys(256);
        const FOUR: (u64, u64) = fold_keys(1024);

        #[inline(always)]
        unsafe fn load(from: *const u8) -> Self {
            // SAFETY: the caller's promise (readable, features).
            unsafe { _mm256_loadu_si256(from.cast()) }
        }

        #[inline(always)]
        unsafe fn store(self, to: *mut u8) {
            // SAFETY: the caller's promise (writable, features).
            unsafe { _mm256_storeu_si256(to.cast(), self) }
        }

        #[inline(always)]
        unsafe fn low32(value: u32) -> Self {
            // SAFETY: the caller's promise (features).
            unsafe { _mm256_zextsi128_si256(_mm_cvtsi32_si128(value as i32)) }
        }

        #[inline(always)]
        unsafe fn xor(self, other: Self) -> Self {
            // SAFETY: the caller's promise (features).
            unsafe { _mm256_xor_si256(self, other) }
        }

        #[inline(always)]
        unsafe fn keys(keys: (u64, u64)) -> Self {
            let (low, high) = (keys.0 as i64, keys.1 as i64);
            // SAFETY: the caller's promise (features).
            unsafe { _mm256_set_epi64x(high, low, high, low) }
        }

        #[inline(always)]
        unsafe fn fold(self, keys: Self, next: Self) -> Self {
            // SAFETY: the caller's promise (features).
            unsafe {
                let low = _mm256_clmulepi64_epi128(self, keys, 0x00);
                let high = _mm256_clmulepi64_epi128(self, keys, 0x11);
                _mm256_xor_si256(_mm256_xor_si256(low, high), next)
            }
        }

        #[inline(always)]
        unsafe fn last_lane(self) -> __m128i {
            // SAFETY: the caller's promise (features).
            unsafe {
                fold128(
                    _mm256_extracti128_si256::<0>(self),
                    KEYS_128,
                    _mm256_extracti128_si256::<1>(self),
                )
            }
        }
    }

    /// `value` moved on by `keys` (the constants of `fold_keys`) and added
    /// to `next`.
    ///
    /// # Safety
    /// The CPU has PCLMULQDQ and SSE 2.
    #[inline(always)]
    unsafe fn fold128(value: __m128i, keys: (u64, u64), next: __m128i) -> __m128i {
        // SAFETY: the caller's promise (features).
        unsafe {
            let keys = _mm_set_epi64x(keys.1 as i64, keys.0 as i64);
            let low = _mm_clmulepi64_si128(value, keys, 0x00);
            let high = _mm_clmulepi64_si128(value, keys, 0x11);
            _mm_xor_si128(_mm_xor_si128(low, high), next)
        }
    }

    /// The fold with registers `R`, four accumulators while 4 registers'
    /// worth is left, then one, then 16 bytes a step, then the `crc32`
    /// instruction for the last bytes.
    ///
    /// # Safety
    /// As [`fold`], for the features `R` uses; inlined into a function
    /// that enables them.
    #[inline(always)]
    unsafe fn fold_with<R: Register, const COPY: bool>(
        crc: u32,
        data: &[u8],
        target: *mut u8,
    ) -> u32 {
        assert!(data.len() >= super::FOLD_MIN_BYTES && super::FOLD_MIN_BYTES >= R::BYTES);
        let load = |at: usize| {
            debug_assert!(at + R::BYTES <= data.len());
            // SAFETY: every caller below passes `at` with `at + R::BYTES <=
            // data.len()`, so the bytes read lie inside `data`; loads are
            // unaligned, and the features are the caller's promise. With
            // `COPY` the same bytes of `target` are valid for writes (the
            // caller's promise) and do not overlap `data`.
            unsafe {
                let value = R::load(data.as_ptr().add(at));
                if COPY {
                    value.store(target.add(at));
                }
                value
            }
        };
        // SAFETY: every register operation below needs the features `R`
        // uses, which the caller promises; the raw loads and stores are
        // argued where they are made.
        unsafe {
            // The starting crc enters as the first four bytes XORed with
            // it (inverted, as crc32c starts and ends inverted).
            let start = R::low32(!crc);
            let next_keys = R::keys(R::NEXT);
            let step = 4 * R::BYTES;
            let (mut folded, mut at) = if data.len() >= step {
                // Four accumulators, a step at a time, then folded into one.
                let mut lanes = [
                    load(0).xor(start),
                    load(R::BYTES),
                    load(2 * R::BYTES),
                    load(3 * R::BYTES),
                ];
                let mut at = step;
                let wide = R::keys(R::FOUR);
                while data.len() - at >= step {
                    for (index, lane) in lanes.iter_mut().enumerate() {
                        *lane = lane.fold(wide, load(at + R::BYTES * index));
                    }
                    at += step;
                }
                let mut folded = lanes[0].fold(next_keys, lanes[1]);
                folded = folded.fold(next_keys, lanes[2]);
                folded = folded.fold(next_keys, lanes[3]);
                (folded, at)
            } else {
                (load(0).xor(start), R::BYTES)
            };
            while data.len() - at >= R::BYTES {
                folded = folded.fold(next_keys, load(at));
                at += R::BYTES;
            }
            let mut lane = folded.last_lane();
            while data.len() - at >= 16 {
                // The 16 bytes at `at` lie inside `data` (`at + 16 <=
                // data.len()`); the load is unaligned.
                let next = _mm_loadu_si128(data.as_ptr().add(at).cast());
                if COPY {
                    // As for the register stores above.
                    _mm_storeu_si128(target.add(at).cast(), next);
                }
                lane = fold128(lane, KEYS_128, next);
                at += 16;
            }
            // The folded lane, then the last bytes (fewer than 16), through
            // the crc32 instruction from a zero state.
            let mut state = _mm_crc32_u64(0, _mm_cvtsi128_si64(lane) as u64);
            state = _mm_crc32_u64(state, _mm_extract_epi64::<1>(lane) as u64);
            let rest = &data[at..];
            if COPY {
                // The last `rest.len()` bytes of `target`, as above.
                std::ptr::copy_nonoverlapping(rest.as_ptr(), target.add(at), rest.len());
            }
            !words(state as u32, rest)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        /// The carry-less product of `a` and `b`, in software.
        fn clmul(a: u64, b: u64) -> u128 {
            (0..64)
                .filter(|bit| (b >> bit) & 1 == 1)
                .fold(0, |product, bit| product ^ (u128::from(a) << bit))
        }

        /// `fold128` in software.
        fn fold_lane(value: u128, keys: (u64, u64), next: u128) -> u128 {
            clmul(value as u64, keys.0) ^ clmul((value >> 64) as u64, keys.1) ^ next
        }

        /// `fold_with` in software for registers of `R::BYTES` with `R`'s
        /// constants, lanes reduced onto the last by 128 bits per lane (as
        /// both `last_lane`s do): checks the fold distances of a width on
        /// any CPU, the 512-bit one too where it cannot run.
        fn model<R: Register>(crc: u32, data: &[u8]) -> u32 {
            let lanes = R::BYTES / 16;
            let lane_at =
                |at: usize| u128::from_le_bytes(data[at..at + 16].try_into().expect("16 bytes"));
            let load = |at: usize| (0..lanes).map(|i| lane_at(at + 16 * i)).collect::<Vec<_>>();
            let fold = |value: &[u128], keys: (u64, u64), next: Vec<u128>| {
                value
                    .iter()
                    .zip(next)
                    .map(|(&value, next)| fold_lane(value, keys, next))
                    .collect::<Vec<_>>()
            };
            let mut first = load(0);
            first[0] ^= u128::from(!crc);
            let step = 4 * R::BYTES;
            let (mut folded, mut at) = if data.len() >= step {
                let mut registers = [
                    first,
                    load(R::BYTES),
                    load(2 * R::BYTES),
                    load(3 * R::BYTES),
                ];
                let mut at = step;
                while data.len() - at >= step {
                    for (index, register) in registers.iter_mut().enumerate() {
                        *register = fold(register, R::FOUR, load(at + R::BYTES * index));
                    }
                    at += step;
                }
                let [a, b, c, d] = registers;
                let folded = fold(&fold(&fold(&a, R::NEXT, b), R::NEXT, c), R::NEXT, d);
                (folded, at)
            } else {
                (first, R::BYTES)
            };
            while data.len() - at >= R::BYTES {
                folded = fold(&folded, R::NEXT, load(at));
                at += R::BYTES;
            }
            let mut lane = folded[lanes - 1];
            for (index, &value) in folded[..lanes - 1].iter().enumerate() {
                let distance = 128 * (lanes - 1 - index) as u32;
                lane ^= fold_lane(value, fold_keys(distance), 0);
            }
            while data.len() - at >= 16 {
                lane = fold_lane(lane, KEYS_128, lane_at(at));
                at += 16;
            }
            // The `crc32` instruction from a zero state over the lane, then
            // the rest, inverted: the crate's append from all ones.
            let state = crc32c::crc32c_append(u32::MAX, &lane.to_le_bytes());
            crc32c::crc32c_append(state, &data[at..])
        }

        /// Each width's constants are the distances its register implies:
        /// one register, and four.
        #[test]
        fn each_widths_constants_move_a_lane_one_and_four_registers_on() {
            fn check<R: Register>() {
                let bits = 8 * R::BYTES as u32;
                assert_eq!(R::NEXT, fold_keys(bits));
                assert_eq!(R::FOUR, fold_keys(4 * bits));
            }
            check::<__m512i>();
            check::<__m256i>();
        }

        /// The fold of both widths, in software, on every length across
        /// the 4-register, 1-register and 16-byte steps of each.
        #[test]
        fn both_widths_modelled_in_software_match_the_crate() {
            let data: Vec<u8> = (0..1300u32)
                .map(|index| (index.wrapping_mul(0x9E37_79B9) >> 11) as u8)
                .collect();
            let mut start = 0xC0FF_EE00u32;
            for length in super::super::FOLD_MIN_BYTES..=1200 {
                let offset = length % 37;
                let slice = &data[offset..offset + length];
                start = start.rotate_left(3) ^ length as u32;
                let expected = crc32c::crc32c_append(start, slice);
                assert_eq!(model::<__m512i>(start, slice), expected, "512, {length}");
                assert_eq!(model::<__m256i>(start, slice), expected, "256, {length}");
            }
        }

        /// Lengths anywhere up to 2 KiB, and within 17 bytes of a multiple
        /// of 128 (where the steps of both widths change).
        fn lengths() -> impl Strategy<Value = usize> {
            prop_oneof![
                super::super::FOLD_MIN_BYTES..2200usize,
                (1usize..=17, 0usize..=34)
                    .prop_map(|(blocks, delta)| (blocks * 128 + delta - 17)
                        .max(super::super::FOLD_MIN_BYTES)),
            ]
        }

        proptest! {
            /// Every width this CPU has, from any start, at any source and
            /// target alignment, checksumming and copying; and the software
            /// model of both widths.
            #[test]
            fn every_width_matches_the_crate_from_any_start_and_alignment(
                start in any::<u32>(),
                data in proptest::collection::vec(any::<u8>(), 2200 + 64),
                offset in 0usize..64,
                length in lengths(),
                target_offset in 0usize..64,
            ) {
                let slice = &data[offset..offset + length];
                let expected = crc32c::crc32c_append(start, slice);
                prop_assert_eq!(model::<__m512i>(start, slice), expected);
                prop_assert_eq!(model::<__m256i>(start, slice), expected);
                for width in widths() {
                    // SAFETY: `width` came from `widths`; without `COPY` the
                    // target is never touched.
                    let folded =
                        unsafe { fold::<false>(width, start, slice, std::ptr::null_mut()) };
                    prop_assert_eq!(folded, expected, "{:?}", width);
                    // 64 guard bytes either side of the target.
                    let mut target = vec![0xA5u8; length + 128 + target_offset];
                    let at = 64 + target_offset;
                    // SAFETY: as above; `target[at..at + length]` is valid
                    // for writes and does not overlap `data`.
                    let copied =
                        unsafe { fold::<true>(width, start, slice, target.as_mut_ptr().add(at)) };
                    prop_assert_eq!(copied, expected, "{:?} copying", width);
                    prop_assert_eq!(&target[at..at + length], slice, "{:?} copy", width);
                    prop_assert!(
                        target[..at].iter().chain(&target[at + length..]).all(|&b| b == 0xA5),
                        "{:?} wrote outside its target", width
                    );
                }
            }
        }
    }

    /// The crc32c of an input shorter than the fold takes, with the `crc32`
    /// instruction alone: at these lengths the crate's dispatch cost more
    /// than the work (a 16-byte hello body took 8 ns there, `perf` of
    /// `encode`).
    ///
    /// # Safety
    /// The CPU must have SSE 4.2.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn short(crc: u32, data: &[u8]) -> u32 {
        !words(!crc, data)
    }

    /// Continues the raw `crc32` state over `rest`: 8 bytes at a time, then
    /// 4, 2 and 1.
    #[target_feature(enable = "sse4.2")]
    fn words(state: u32, mut rest: &[u8]) -> u32 {
        let mut wide = u64::from(state);
        while let Some((word, after)) = rest.split_first_chunk::<8>() {
            wide = _mm_crc32_u64(wide, u64::from_le_bytes(*word));
            rest = after;
        }
        let mut state = wide as u32;
        if let Some((word, after)) = rest.split_first_chunk::<4>() {
            state = _mm_crc32_u32(state, u32::from_le_bytes(*word));
            rest = after;
        }
        if let Some((word, after)) = rest.split_first_chunk::<2>() {
            state = _mm_crc32_u16(state, u16::from_le_bytes(*word));
            rest = after;
        }
        if let Some(&byte) = rest.first() {
            state = _mm_crc32_u8(state, byte);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(length: usize, seed: u32) -> Vec<u8> {
        (0..length as u32)
            .map(|index| (index.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    #[test]
    fn matches_the_crate_for_every_length_to_2_kib_at_several_alignments() {
        let data = bytes(2048 + 64, 7);
        for offset in [0, 1, 3, 8, 13] {
            for length in 0..=2048 {
                let slice = &data[offset..offset + length];
                assert_eq!(
                    crc32c(slice),
                    crc32c::crc32c(slice),
                    "length {length} at offset {offset}"
                );
            }
        }
    }

    #[test]
    fn matches_the_crate_around_large_sizes() {
        let data = bytes((1 << 20) + 300, 11);
        for length in [
            65_536,
            65_600,
            65_536 + 17,
            131_072 + 5,
            1 << 20,
            (1 << 20) + 255,
        ] {
            assert_eq!(crc32c(&data[..length]), crc32c::crc32c(&data[..length]));
        }
    }

    /// Every fold this CPU has, called directly (the tests above go
    /// through the dispatch, which takes only the widest), checksumming and
    /// copying.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_fold_matches_the_crate_from_64_bytes_to_8_kib() {
        let widths: Vec<_> = fold::widths().collect();
        if widths.is_empty() {
            eprintln!("skipped: this CPU lacks VPCLMULQDQ, no fold runs here");
            return;
        }
        let data = bytes(8192 + 64, 5);
        let mut target = vec![0u8; 8192 + 2];
        for width in widths {
            let mut start = 0x1234_5678u32;
            for length in FOLD_MIN_BYTES..=8192 {
                let offset = length % 61;
                let slice = &data[offset..offset + length];
                start = start.rotate_left(5) ^ length as u32;
                let expected = crc32c::crc32c_append(start, slice);
                // SAFETY: `width` came from `fold::widths`; without `COPY`
                // the target is never touched.
                let folded =
                    unsafe { fold::fold::<false>(width, start, slice, std::ptr::null_mut()) };
                assert_eq!(
                    folded, expected,
                    "{width:?}, length {length}, offset {offset}, start {start:#x}"
                );
                target.fill(0xEE);
                // SAFETY: as above; `target[1..]` holds `length + 1` bytes
                // and does not overlap `data`.
                let copied =
                    unsafe { fold::fold::<true>(width, start, slice, target.as_mut_ptr().add(1)) };
                assert_eq!(copied, expected, "{width:?} copying, length {length}");
                assert_eq!(
                    &target[1..=length],
                    slice,
                    "{width:?} copy, length {length}"
                );
                assert!(
                    target[0] == 0xEE && target[length + 1] == 0xEE,
                    "{width:?} wrote outside its target, length {length}"
                );
            }
        }
    }

    /// Inputs under [`FOLD_MIN_BYTES`] (and just over it) from arbitrary
    /// starting values at every alignment, alone and chained: the tests
    /// above start these lengths from 0 or one value per length.
    #[test]
    fn short_inputs_match_the_crate_from_any_start_at_every_alignment() {
        let data = bytes(2 * FOLD_MIN_BYTES + 64, 9);
        let starts = [0, 1, 0xFFFF_FFFF, 0x8000_0000, 0xDEAD_BEEF, 0x1234_5678];
        for offset in 0..64 {
            for length in 0..=FOLD_MIN_BYTES + 16 {
                let slice = &data[offset..offset + length];
                for start in starts {
                    let start = start ^ (offset * 131 + length) as u32;
                    assert_eq!(
                        crc32c_append(start, slice),
                        crc32c::crc32c_append(start, slice),
                        "length {length}, offset {offset}, start {start:#x}"
                    );
                }
                let whole = crc32c::crc32c(slice);
                for split in 0..=length {
                    let (head, tail) = slice.split_at(split);
                    assert_eq!(
                        crc32c_append(crc32c(head), tail),
                        whole,
                        "length {length}, offset {offset}, split {split}"
                    );
                }
            }
        }
        // The short path itself, called directly.
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("sse4.2") {
            let mut start = 0x9E37_79B9u32;
            for length in 0..FOLD_MIN_BYTES {
                for offset in 0..16 {
                    let slice = &data[offset..offset + length];
                    start = start.rotate_left(7) ^ (length * 16 + offset) as u32;
                    // SAFETY: SSE 4.2 was detected above.
                    let short = unsafe { fold::short(start, slice) };
                    assert_eq!(short, crc32c::crc32c_append(start, slice));
                }
            }
        }
    }

    #[test]
    fn copying_checksums_match_and_copy_every_byte() {
        let data = bytes(70_000, 3);
        let mut lengths: Vec<usize> = (0..=1100).collect();
        lengths.extend([4095, 4096, 4097, 65_536, 65_600, 69_999]);
        for length in lengths {
            let offset = length % 7;
            let source = &data[offset..offset + length.min(data.len() - offset)];
            let mut target = vec![0xEEu8; source.len() + 9];
            let start = (length as u32).wrapping_mul(0x9E37_79B9);
            let crc = copy_crc32c_append(start, &mut target[4..4 + source.len()], source);
            assert_eq!(crc, crc32c::crc32c_append(start, source), "length {length}");
            assert_eq!(&target[4..4 + source.len()], source, "length {length}");
            assert!(
                target[..4]
                    .iter()
                    .chain(&target[4 + source.len()..])
                    .all(|&byte| byte == 0xEE),
                "nothing outside the target written, length {length}"
            );
        }
    }

    #[test]
    fn known_answer() {
        // RFC 3720 (iSCSI), appendix B.4: 32 bytes of zeros, of ones.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        // A long input of zeros, through the fold.
        assert_eq!(crc32c(&[0u8; 4096]), crc32c::crc32c(&[0u8; 4096]));
    }

    #[test]
    fn the_fold_keys_move_a_lane_as_the_polynomial_says() {
        // x^32 mod P is P without its top term.
        assert_eq!(u64::from(xpow_mod(32)), POLY);
        assert_eq!(xpow_mod(31), 1 << 31);
        // reflect33 puts x^0 at bit 32 and x^31 at bit 1.
        assert_eq!(reflect33(1), 1 << 32);
        assert_eq!(reflect33(1 << 31), 1 << 1);
    }

    proptest! {
        #[test]
        fn appending_matches_the_crate(
            start in any::<u32>(),
            split in 0usize..3000,
            data in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let split = split.min(data.len());
            let (head, rest) = data.split_at(split);
            prop_assert_eq!(crc32c_append(start, &data), crc32c::crc32c_append(start, &data));
            prop_assert_eq!(crc32c_append(crc32c(head), rest), crc32c(&data));
        }

        #[test]
        fn short_appending_matches_the_crate(
            start in any::<u32>(),
            offset in 0usize..64,
            split in 0usize..FOLD_MIN_BYTES,
            data in proptest::collection::vec(any::<u8>(), 64..2 * FOLD_MIN_BYTES),
        ) {
            let data = &data[offset..];
            let short = &data[..data.len().min(FOLD_MIN_BYTES - 1)];
            prop_assert_eq!(crc32c_append(start, short), crc32c::crc32c_append(start, short));
            let (head, rest) = short.split_at(split.min(short.len()));
            let chained = crc32c_append(crc32c_append(start, head), rest);
            prop_assert_eq!(chained, crc32c::crc32c_append(start, short));
        }
    }
}
