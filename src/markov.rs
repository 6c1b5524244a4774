//! Markov chains trained on the seed set: character-level chains for names, and state chains
//! for "similar but different" trait variation.
//!
//! Invariant: training is deterministic (inputs in file order, no hashing of iteration order).

use crate::rng::Stream;
use std::collections::BTreeMap;

/// A character-level chain of order 2, trained on a list of words.
#[derive(Clone, Debug)]
pub struct CharChain {
    alphabet: Vec<char>,
    /// Per context `c1 * (A+1) + c2`: range into `next`.
    contexts: Vec<(u32, u32)>,
    /// (next symbol, cumulative count); symbol 0 is the word boundary.
    next: Vec<(u16, u32)>,
    words: Vec<String>,
}

impl CharChain {
    /// Trains on `words` (lowercased internally).
    pub fn train<'a>(words: impl IntoIterator<Item = &'a str>) -> CharChain {
        let words: Vec<String> = words.into_iter().map(|w| w.to_lowercase()).filter(|w| !w.is_empty()).collect();
        let mut alphabet: Vec<char> = words.iter().flat_map(|w| w.chars()).collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        let a = alphabet.len() + 1;
        let sym = |c: char| alphabet.binary_search(&c).map(|i| i as u16 + 1).unwrap_or(0);
        let mut counts: BTreeMap<(u32, u16), u32> = BTreeMap::new();
        for w in &words {
            let (mut c1, mut c2) = (0u16, 0u16);
            for ch in w.chars().chain(std::iter::once('\0')) {
                let s = if ch == '\0' { 0 } else { sym(ch) };
                *counts.entry((c1 as u32 * a as u32 + c2 as u32, s)).or_default() += 1;
                c1 = c2;
                c2 = s;
            }
        }
        let mut contexts = vec![(0u32, 0u32); a * a];
        let mut next = Vec::new();
        let mut current = u32::MAX;
        let mut cum = 0;
        for (&(ctx, s), &n) in &counts {
            if ctx != current {
                current = ctx;
                cum = 0;
                contexts[ctx as usize].0 = next.len() as u32;
            }
            cum += n;
            next.push((s, cum));
            contexts[ctx as usize].1 = next.len() as u32;
        }
        CharChain { alphabet, contexts, next, words }
    }

    /// Generates a capitalised word of 3..=max_len characters. Falls back to a training word
    /// if the chain keeps producing words out of range.
    pub fn generate(&self, rng: &mut Stream, max_len: usize) -> String {
        let mut out = String::new();
        self.generate_into(rng, max_len, &mut out);
        out
    }

    /// [`CharChain::generate`], appending the word to `dest` (no allocation of its own
    /// beyond one scratch buffer).
    pub fn generate_into(&self, rng: &mut Stream, max_len: usize, dest: &mut String) {
        let a = self.alphabet.len() + 1;
        let mut out = String::with_capacity(max_len * 2 + 2);
        for _ in 0..8 {
            out.clear();
            let (mut c1, mut c2) = (0usize, 0usize);
            let mut len = 0;
            loop {
                let (start, end) = self.contexts[c1 * a + c2];
                if start == end {
                    break;
                }
                let row = &self.next[start as usize..end as usize];
                let total = row[row.len() - 1].1;
                let x = rng.below(total as u64) as u32;
                let s = row[row.partition_point(|&(_, c)| c <= x)].0 as usize;
                if s == 0 {
                    break;
                }
                out.push(self.alphabet[s - 1]);
                len += 1;
                if len > max_len {
                    break;
                }
                c1 = c2;
                c2 = s;
            }
            if (3..=max_len).contains(&len) && !out.ends_with(['-', '\'']) {
                capitalise_into(&out, dest);
                return;
            }
        }
        if self.words.is_empty() {
            dest.push_str("Anon");
            return;
        }
        capitalise_into(&self.words[rng.below(self.words.len() as u64) as usize], dest);
    }
}

/// Upper-cases the first letter and any letter after `-`, `'` or a space.
pub fn capitalise(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    capitalise_into(word, &mut out);
    out
}

/// [`capitalise`], appending to `out`.
pub fn capitalise_into(word: &str, out: &mut String) {
    let mut up = true;
    for c in word.chars() {
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        up = matches!(c, '-' | '\'' | ' ');
    }
}

/// A Markov chain over `n` discrete states with add-one smoothing.
#[derive(Clone, Debug)]
pub struct StateChain {
    n: usize,
    /// Row-major cumulative transition weights.
    cumulative: Vec<f32>,
}

impl StateChain {
    /// Builds a chain from observed transitions `(from, to)` over `n` states, with a small
    /// pseudo-count `smoothing` on every transition.
    pub fn from_transitions(
        n: usize,
        transitions: impl IntoIterator<Item = (usize, usize)>,
        smoothing: f32,
    ) -> StateChain {
        let mut counts = vec![smoothing; n * n];
        for (a, b) in transitions {
            if a < n && b < n {
                counts[a * n + b] += 1.0;
            }
        }
        for row in counts.chunks_mut(n) {
            let mut acc = 0.0;
            for v in row.iter_mut() {
                acc += *v;
                *v = acc;
            }
        }
        StateChain { n, cumulative: counts }
    }

    /// One step from `state`.
    pub fn step(&self, state: usize, rng: &mut Stream) -> usize {
        let s = state.min(self.n - 1);
        rng.pick_cumulative(&self.cumulative[s * self.n..(s + 1) * self.n])
    }

    /// Probability of moving from `a` to `b`.
    pub fn probability(&self, a: usize, b: usize) -> f32 {
        let row = &self.cumulative[a * self.n..(a + 1) * self.n];
        let prev = if b == 0 { 0.0 } else { row[b - 1] };
        (row[b] - prev) / row[self.n - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_chain_makes_plausible_words_deterministically() {
        let names = ["Maria", "Mario", "Marta", "Martin", "Anna", "Hannah", "Johanna", "Marianne", "Ann-Marie"];
        let chain = CharChain::train(names);
        let gen = |k| {
            let mut rng = Stream::new(1, 2, k, 0);
            chain.generate(&mut rng, 12)
        };
        let a: Vec<String> = (0..50).map(gen).collect();
        let b: Vec<String> = (0..50).map(gen).collect();
        assert_eq!(a, b);
        for w in &a {
            let n = w.chars().count();
            assert!((3..=12).contains(&n), "{w}");
            assert!(w.chars().next().is_some_and(char::is_uppercase), "{w}");
        }
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 5, "{distinct:?}");
    }

    #[test]
    fn state_chain_follows_observed_transitions() {
        let chain = StateChain::from_transitions(3, vec![(0, 1); 98], 1.0);
        assert!(chain.probability(0, 1) > 0.9);
        assert!((chain.probability(2, 0) - 1.0 / 3.0).abs() < 1e-6);
        let mut rng = Stream::new(3, 3, 3, 3);
        let ones = (0..1000).filter(|_| chain.step(0, &mut rng) == 1).count();
        assert!(ones > 900);
    }
}
