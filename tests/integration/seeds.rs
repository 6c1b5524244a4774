//! The shipped seed set is large, varied and free of duplicates, and the users derived from it
//! vary around their lineage seed rather than copying it.

use crate::common::{mean_std, pop_20k, seeds, world};
use chorus::seeds::Seed;
use chorus::Topic;
use std::collections::{HashMap, HashSet};

#[test]
fn there_are_about_a_thousand_seeds() {
    let n = seeds().seeds.len();
    assert!(n >= 900, "only {n} seed profiles");
}

/// Everything that makes a profile a distinct person, floats by bit pattern.
fn identity(s: &Seed) -> impl Eq + std::hash::Hash {
    let st = &s.style;
    (
        (s.age, s.gender as u8, s.town, s.occupation),
        s.big5.map(f32::to_bits),
        [st.formality, st.emoji_rate, st.slang, st.hashtag_rate, st.typo_rate].map(f32::to_bits),
        (st.emojis.clone(), st.caps as u8, st.length as u8),
    )
}

#[test]
fn no_two_seeds_are_alike() {
    let mut seen = HashMap::new();
    for s in &seeds().seeds {
        if let Some(first) = seen.insert(identity(s), s.id.clone()) {
            panic!("seeds {first} and {} are identical in age, gender, town, occupation, big5 and style", s.id);
        }
    }
}

#[test]
fn ages_cover_every_decade() {
    let ages: Vec<u8> = seeds().seeds.iter().map(|s| s.age).collect();
    let (min, max) = (*ages.iter().min().unwrap(), *ages.iter().max().unwrap());
    assert!(min <= 16 && max >= 80, "ages span only {min}..{max}");
    let decades: HashSet<u8> = ages.iter().map(|a| a / 10 * 10).collect();
    for decade in (10..=80).step_by(10) {
        assert!(decades.contains(&decade), "no seed in their {decade}s");
    }
}

#[test]
fn personalities_and_styles_spread_out() {
    let ss = &seeds().seeds;
    let traits = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"];
    for (k, name) in traits.iter().enumerate() {
        let (_, sd) = mean_std(ss.iter().map(|s| s.big5[k] as f64));
        assert!(sd > 0.1, "big5.{name}: std {sd:.3}");
    }
    let (_, sd) = mean_std(ss.iter().map(|s| s.style.emoji_rate as f64));
    assert!(sd > 0.15, "emoji_rate: std {sd:.3}");
    let (_, sd) = mean_std(ss.iter().map(|s| s.style.formality as f64));
    assert!(sd > 0.15, "formality: std {sd:.3}");
}

/// Number of distinct values each used by at least 2% of `values`.
fn common_values<T: Eq + std::hash::Hash>(values: impl Iterator<Item = T>) -> (usize, HashMap<T, usize>) {
    let mut counts = HashMap::new();
    let mut total = 0;
    for v in values {
        *counts.entry(v).or_insert(0) += 1;
        total += 1;
    }
    let common = counts.values().filter(|&&c| c * 50 >= total).count();
    (common, counts)
}

#[test]
fn caps_and_length_habits_vary() {
    let ss = &seeds().seeds;
    let (common, counts) = common_values(ss.iter().map(|s| s.style.caps));
    assert!(common >= 3, "caps: {counts:?}");
    let (common, counts) = common_values(ss.iter().map(|s| s.style.length));
    assert!(common >= 3, "length: {counts:?}");
}

#[test]
fn occupations_towns_and_topics_are_varied() {
    let set = seeds();
    let occupations: HashSet<u16> = set.seeds.iter().map(|s| s.occupation).collect();
    assert!(occupations.len() >= 50, "only {} occupations", occupations.len());
    assert_eq!(occupations.len(), set.occupations.len(), "interned but unused occupations");
    let towns: HashSet<u8> = set.seeds.iter().map(|s| s.town).collect();
    assert!(towns.len() >= 10, "only {} towns used of {}", towns.len(), world().towns.len());
    for t in Topic::ALL {
        assert!(set.seeds.iter().any(|s| s.interests[t.index()] > 0.0), "no seed is interested in {}", t.name());
    }
}

/// Unit value quantised the way user columns store it (0..=255).
fn q8(x: f32) -> i32 {
    (x * 255.0).round() as i32
}

#[test]
fn derived_users_vary_around_their_lineage_seed() {
    let p = pop_20k();
    let ss = &p.seeds().seeds;
    let mut clones = 0;
    let mut lineages = HashSet::new();
    for id in p.ids() {
        let u = p.user(id);
        let s = &ss[u.seed as usize];
        lineages.insert(u.seed);
        // Compare at the columns' 8-bit precision: equal there means an exact copy.
        if u.age == s.age && u.big5.map(q8) == s.big5.map(q8) {
            clones += 1;
        }
    }
    let share = clones as f64 / p.len() as f64;
    assert!(share < 0.05, "{:.1}% of users copy their lineage seed's age and big5", share * 100.0);
    // 20k users draw on most of the seed set, not a handful of favourites.
    assert!(lineages.len() * 2 > ss.len(), "only {} of {} seeds have descendants", lineages.len(), ss.len());
}
