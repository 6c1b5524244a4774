//! Loading scattered cache lines together before a batch is worked through one item at a time.
//!
//! A batch of users (or posts, or lists) is scattered over tables much larger than the cache.
//! Working through it one item at a time waits for each item's line in turn; reading one value
//! from every item first, in a loop with nothing else to wait for, lets those misses overlap.
//! A safe software prefetch instruction is not available (`_mm_prefetch` needs `unsafe`
//! outside a `#[target_feature]` function), so the reads are real loads kept by `black_box`.

/// Reads every value of `values` (one per scattered place a batch will touch) so that their
/// cache lines load together.
#[inline]
pub(crate) fn load_together(values: impl Iterator<Item = u32>) {
    std::hint::black_box(values.fold(0u32, |x, v| x ^ v));
}
