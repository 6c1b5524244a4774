//! Counter-based randomness.
//!
//! Every random decision in chorus is a pure function of a key: the master seed, a domain tag
//! naming the kind of decision, and the entities it concerns (user, event, pair). There is no
//! shared generator, so results never depend on thread count or scheduling.
//!
//! Invariant: nothing here holds global state; the same key always yields the same stream.

use rand::RngCore;
use rand_pcg::Pcg64Mcg;

/// SplitMix64 finaliser: a fast, well-mixing bijection on `u64`.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes a master seed, a domain tag and two keys into one well-mixed `u64`.
#[inline]
pub fn hash3(seed: u64, domain: u64, a: u64, b: u64) -> u64 {
    let h = mix64(seed ^ domain.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let h = mix64(h ^ a.wrapping_mul(0xd6e8_feb8_6659_fd93));
    mix64(h ^ b.wrapping_mul(0xa076_1d64_78bd_642f))
}

/// The first two rounds of [`hash3`], for hashing many `b` under one `(seed, domain, a)`:
/// `hash3_tail(hash3_prefix(s, d, a), b) == hash3(s, d, a, b)`.
#[inline]
pub fn hash3_prefix(seed: u64, domain: u64, a: u64) -> u64 {
    hash3_middle(hash3_head(seed, domain), a)
}

/// The first round of [`hash3`], for many `(a, b)` under one `(seed, domain)`:
/// `hash3_middle(hash3_head(s, d), a) == hash3_prefix(s, d, a)`.
#[inline]
pub fn hash3_head(seed: u64, domain: u64) -> u64 {
    mix64(seed ^ domain.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The second round of [`hash3`]; see [`hash3_head`].
#[inline]
pub fn hash3_middle(head: u64, a: u64) -> u64 {
    mix64(head ^ a.wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// The last round of [`hash3`]; see [`hash3_prefix`].
#[inline]
pub fn hash3_tail(prefix: u64, b: u64) -> u64 {
    mix64(prefix ^ b.wrapping_mul(0xa076_1d64_78bd_642f))
}

/// Maps a `u64` to a float uniform in `[0, 1)` with 53 bits of precision.
#[inline]
pub fn unit_f64(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Domain tags: one per kind of decision, so streams never collide.
pub mod domain {
    /// Town sizes, circle boundaries and circle anchors.
    pub const LAYOUT: u64 = 1;
    /// Per-user trait derivation.
    pub const USER: u64 = 2;
    /// Display names and handles.
    pub const NAME: u64 = 3;
    /// Popularity keys.
    pub const POPULARITY: u64 = 4;
    /// Per-user out-degree and follow targets.
    pub const EDGES: u64 = 5;
    /// Symmetric pair decisions (colleague ties).
    pub const PAIR: u64 = 6;
    /// Workplace sizes.
    pub const WORKPLACE: u64 = 7;
    /// Template choice, phrases and style transforms of one post.
    pub const TEMPLATE: u64 = 8;
    /// Training-data sampling.
    pub const TRAINING: u64 = 9;
}

/// A deterministic stream for one key: a PCG generator seeded from [`hash3`].
#[derive(Clone, Debug)]
pub struct Stream {
    inner: Pcg64Mcg,
}

impl Stream {
    /// Opens the stream for `(seed, domain, a, b)`.
    #[inline]
    pub fn new(seed: u64, domain: u64, a: u64, b: u64) -> Self {
        let lo = hash3(seed, domain, a, b);
        let hi = mix64(lo ^ 0x6a09_e667_f3bc_c909);
        Stream { inner: Pcg64Mcg::new(((hi as u128) << 64) | lo as u128 | 1) }
    }

    /// Next raw 64 bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }

    /// Uniform in `[0, n)`; `n` must be non-zero.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant for simulation.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Ziggurat, from `rand_distr`).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        use rand::distr::Distribution;
        rand_distr::StandardNormal.sample(&mut self.inner)
    }

    /// Picks an index from cumulative weights (last element is the total).
    #[inline]
    pub fn pick_cumulative(&mut self, cumulative: &[f32]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.f64() as f32 * total;
        cumulative.partition_point(|&c| c <= x).min(cumulative.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream_and_different_keys_differ() {
        let mut a = Stream::new(7, domain::USER, 1, 0);
        let mut b = Stream::new(7, domain::USER, 1, 0);
        let mut c = Stream::new(7, domain::USER, 2, 0);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_and_unit_stay_in_range() {
        let mut s = Stream::new(1, 2, 3, 4);
        for _ in 0..10_000 {
            assert!(s.below(17) < 17);
            let f = s.f64();
            assert!((0.0..1.0).contains(&f));
        }
    }

    #[test]
    fn pick_cumulative_respects_weights() {
        let cum = [0.0f32, 1.0, 1.0, 4.0];
        let mut s = Stream::new(9, 9, 9, 9);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[s.pick_cumulative(&cum)] += 1;
        }
        assert_eq!(counts[0], 0);
        assert_eq!(counts[2], 0);
        let ratio = counts[3] as f64 / counts[1] as f64;
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
    }
}
