//! The variation rules: how one user is derived from a seed profile. Every function here is a
//! pure function of (master seed, user index, the layout), so users can be generated in any
//! order on any number of threads.
//!
//! Rules (documented in docs/ARCHITECTURE.md):
//! - lineage: 40% the circle's anchor seed, else 1-2 steps of the seed similarity chain from it;
//! - age: seed age + N(0, 3) years, clamped to 13..=99; town: the circle's town;
//! - occupation: the seed's (88%) or a similar seed's; gender and locale: the seed's;
//! - Big Five: seed + N(0, 0.07) each; politics: seed + N(0, 0.1), pulled 20% toward the anchor;
//! - interests: seed weights x (1 + N(0, 0.15)), then 0-2 swaps along the topic chain;
//! - style: rates + N(0, 0.08), typos + N(0, 0.015); caps / length take a step of their chains
//!   with probability 0.15;
//! - activity: posts per day x lognormal(0, 0.35), propensities + N(0, 0.06), hourly curve
//!   shifted by round(N(0, 1)) hours (clamped to +-3);
//! - affiliations: a fan who lives away from the seed's town adopts the local team of the same
//!   league with probability 0.6; a sports lover without a team adopts a local one with
//!   probability 0.3; a party far from the user's politics (> 0.6) is swapped for the nearest;
//!   each favourite person or brand is swapped for one of the same topic with probability 0.2.

use super::columns::*;
use super::model::Model;
use crate::rng::{domain, mix64, Stream};
use crate::seeds::{Seed, SeedSet};
use crate::taxonomy::TOPIC_COUNT;
use crate::world::{EntityKind, World, NO_ENTITY};

/// Log-normal spread of a user's posts per day around their seed's: with the seeds' own spread
/// (about 1.2 in log) it gives posting rates with a log spread of about 1.5 over users.
pub const PPD_SIGMA: f32 = 0.9;

/// The derived columns of one user (everything but the graph-related ones).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Derived {
    /// Demographics column.
    pub demographics: Demographics,
    /// Persona column.
    pub persona: Persona,
    /// Interests column.
    pub interests: Interests,
    /// Style column.
    pub style: StyleCol,
    /// Activity column.
    pub activity: ActivityCol,
    /// Affiliations column.
    pub affiliations: Affiliations,
}

fn jitter(rng: &mut Stream, x: f32, sd: f32) -> f32 {
    (x + rng.normal() as f32 * sd).clamp(0.0, 1.0)
}

/// Derives user `user` living in town slot `town`, whose friend circle is anchored on seed
/// `anchor`.
pub fn derive_user(
    seeds: &SeedSet,
    world: &World,
    model: &Model,
    master: u64,
    user: u32,
    town: u8,
    anchor: u16,
) -> Derived {
    let mut rng = Stream::new(master, domain::USER, user as u64, 0);
    let anchor = anchor as usize;
    let mut lineage = anchor;
    if !rng.chance(0.4) {
        let steps = 1 + rng.below(2);
        for _ in 0..steps {
            lineage = model.neighbour(lineage, &mut rng);
        }
    }
    let s: &Seed = &seeds.seeds[lineage];
    let age = (s.age as f64 + rng.normal() * 3.0).round().clamp(13.0, 99.0) as u8;
    let occupation =
        if rng.chance(0.88) { s.occupation } else { seeds.seeds[model.neighbour(lineage, &mut rng)].occupation };
    let demographics =
        Demographics { seed: lineage as u16, occupation, town, age, gender: s.gender as u8, locale: s.locale };

    let mut big5 = [0u8; 5];
    for (k, b) in big5.iter_mut().enumerate() {
        *b = q8(jitter(&mut rng, s.big5[k], 0.07));
    }
    let anchor_politics = seeds.seeds[anchor].politics;
    let politics = (0.8 * (s.politics + rng.normal() as f32 * 0.1) + 0.2 * anchor_politics).clamp(-1.0, 1.0);
    let hour_shift = (rng.normal().round() as i8).clamp(-3, 3);
    let mut caps = s.style.caps as usize;
    if rng.chance(0.15) {
        caps = model.caps.step(caps, &mut rng);
    }
    let mut length = s.style.length as usize;
    if rng.chance(0.15) {
        length = model.length.step(length, &mut rng);
    }
    let persona = Persona {
        big5,
        politics: (politics * 127.0).round() as i8,
        hour_shift,
        habits: (caps as u8) | ((length as u8) << 2),
    };

    let mut w = [0.0f32; TOPIC_COUNT];
    for (t, v) in w.iter_mut().enumerate() {
        if s.interests[t] > 0.0 {
            *v = (s.interests[t] * (1.0 + rng.normal() as f32 * 0.15)).clamp(0.05, 1.0);
        }
    }
    let swaps = rng.chance(0.35) as u32 + rng.chance(0.1) as u32;
    for _ in 0..swaps {
        let present: u32 = (0..TOPIC_COUNT).filter(|&t| w[t] > 0.0).count() as u32;
        if present == 0 {
            break;
        }
        let k = rng.below(present as u64) as usize;
        let Some(a) = (0..TOPIC_COUNT).filter(|&t| w[t] > 0.0).nth(k) else { break };
        let b = model.topics.step(a, &mut rng);
        if b == a {
            continue;
        }
        if w[b] == 0.0 {
            w[b] = w[a];
            w[a] = 0.0;
        } else {
            w[b] = w[b].max(w[a] * 0.8);
        }
    }
    let mut interests = Interests::default();
    for (t, &v) in w.iter().enumerate() {
        interests.set(t, (v * 15.0).round() as u8);
    }
    if (0..TOPIC_COUNT).all(|t| interests.get(t) == 0) {
        let best = (0..TOPIC_COUNT).fold(0, |b, t| if s.interests[t] > s.interests[b] { t } else { b });
        interests.set(best, 1);
    }

    let st = &s.style;
    let style = StyleCol {
        formality: q8(jitter(&mut rng, st.formality, 0.08)),
        emoji_rate: q8(jitter(&mut rng, st.emoji_rate, 0.08)),
        slang: q8(jitter(&mut rng, st.slang, 0.08)),
        hashtag_rate: q8(jitter(&mut rng, st.hashtag_rate, 0.08)),
        typo_rate: q8(((st.typo_rate + rng.normal() as f32 * 0.015).clamp(0.0, 0.2)) / 0.2),
        reserved: 0,
        variant: rng.next_u64() as u16,
    };
    let a = &s.activity;
    let activity = ActivityCol {
        // Log-normal around the seed: posting is heavy-tailed within a seed too (issue 22).
        posts_per_day: encode_ppd(a.posts_per_day * (rng.normal() as f32 * PPD_SIGMA).exp()),
        reply: q8(jitter(&mut rng, a.reply, 0.06)),
        quote: q8(jitter(&mut rng, a.quote, 0.06)),
        like: q8(jitter(&mut rng, a.like, 0.06)),
        repost: q8(jitter(&mut rng, a.repost, 0.06)),
        gif: q8(jitter(&mut rng, a.gif, 0.06)),
        reserved: [0; 2],
    };

    let mut aff = Affiliations::default();
    let local_team = |league| model.town_teams[town as usize].iter().find(|&&(_, l)| l == league).map(|&(t, _)| t);
    if let Some(team) = s.team(world) {
        aff.team = team;
        if s.town != town && rng.chance(0.6) {
            if let Some(local) = world.team_league(team).and_then(local_team) {
                aff.team = local;
            }
        }
    } else if interests.get(crate::taxonomy::Topic::Sports.index()) >= 8 && rng.chance(0.3) {
        if let Some(&(t, _)) = model.town_teams[town as usize].first() {
            aff.team = t;
        }
    }
    if let Some(party) = s.party(world) {
        aff.party = party;
        let leaning = world.party_leaning(party).unwrap_or(0.0);
        if (leaning - politics).abs() > 0.6 {
            if let Some(&(p, _)) =
                model.parties.iter().min_by(|a, b| (a.1 - politics).abs().total_cmp(&(b.1 - politics).abs()))
            {
                aff.party = p;
            }
        }
    }
    let favs = s
        .affiliations
        .iter()
        .copied()
        .filter(|&e| matches!(world.entity(e).kind, EntityKind::Person { .. } | EntityKind::Brand { .. }))
        .take(2);
    for (k, fav) in favs.enumerate() {
        let mut f = fav;
        if rng.chance(0.2) {
            if let EntityKind::Person { topic, .. } | EntityKind::Brand { topic } = world.entity(fav).kind {
                let pool = &model.topic_entities[topic.index()];
                if !pool.is_empty() {
                    f = pool[rng.below(pool.len() as u64) as usize];
                }
            }
        }
        if !aff.favourites.contains(&f) {
            aff.favourites[k] = f;
        }
    }
    debug_assert!(aff.team == NO_ENTITY || (aff.team as usize) < world.entities.len());
    Derived { demographics, persona, interests, style, activity, affiliations: aff }
}

/// Folds a name to lowercase ASCII letters for handles (common Latin accents mapped, the rest
/// dropped).
pub fn fold_ascii(s: &str, out: &mut String) {
    if s.is_ascii() {
        // The common case, without the Unicode case tables.
        out.extend(s.bytes().filter(u8::is_ascii_alphabetic).map(|b| b.to_ascii_lowercase() as char));
        return;
    }
    for c in s.chars().flat_map(char::to_lowercase) {
        let m = match c {
            'a'..='z' => c,
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'ś' | 'š' | 'ş' | 'ß' => 's',
            'ź' | 'ż' | 'ž' => 'z',
            'ł' => 'l',
            'ř' => 'r',
            'ğ' => 'g',
            'đ' | 'ð' => 'd',
            _ => continue,
        };
        out.push(m);
    }
}

/// A user's display name: first name (a similar seed's, or from the chain), last name likewise.
pub fn display_name(seeds: &SeedSet, model: &Model, master: u64, user: u32, lineage: u16, gender: u8) -> String {
    let mut rng = Stream::new(master, domain::NAME, user as u64, 0);
    let near = model.neighbour(lineage as usize, &mut rng);
    let mut name = String::with_capacity(24);
    let first_chain = &model.first[(gender as usize).min(2)];
    if rng.chance(0.45) {
        let s = &seeds.seeds[if rng.chance(0.5) { lineage as usize } else { near }];
        if s.gender as u8 == gender {
            name.push_str(&s.first);
        } else {
            first_chain.generate_into(&mut rng, 10, &mut name);
        }
    } else {
        first_chain.generate_into(&mut rng, 10, &mut name);
    }
    name.push(' ');
    if rng.chance(0.5) {
        name.push_str(&seeds.seeds[if rng.chance(0.5) { lineage as usize } else { near }].last);
    } else {
        model.last.generate_into(&mut rng, 12, &mut name);
    }
    name
}

/// The handle before collision resolution, built from the display name in one of several
/// common shapes. Never ends in `_` followed by digits (that shape is reserved for suffixes).
pub fn base_handle(name: &str, master: u64, user: u32, age: u8) -> String {
    let mut rng = Stream::new(master, domain::NAME, user as u64, 1);
    let mut words = name.split_whitespace();
    let (mut first, mut last) = (String::with_capacity(16), String::with_capacity(16));
    fold_ascii(words.next().unwrap_or(""), &mut first);
    fold_ascii(words.last().unwrap_or(""), &mut last);
    if first.is_empty() {
        first.push_str("user");
    }
    if last.is_empty() {
        last.push('x');
    }
    // Both are ASCII (`fold_ascii`) and non-empty, so byte cuts are character cuts.
    let (first, last) = (first.as_str(), last.as_str());
    let year = (2026 - age as i32).rem_euclid(100);
    let mut h = match rng.below(10) {
        0 => [first, last].concat(),
        1 => [first, "_", last].concat(),
        2 => [prefix(first, 1), last].concat(),
        3 => [first, prefix(last, 1)].concat(),
        4 => format!("{first}{}", 10 + rng.below(990)),
        5 => [last, prefix(first, 1)].concat(),
        6 => ["the", first].concat(),
        7 => [first, "_", prefix(last, 3)].concat(),
        8 => format!("{first}{year:02}"),
        _ => [prefix(first, 4), prefix(last, 4)].concat(),
    };
    h.truncate(15);
    while h.ends_with('_') {
        h.pop();
    }
    // Reserve `_<digits>` endings for collision suffixes.
    let digits = h.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < h.len() && h.as_bytes()[h.len() - digits - 1] == b'_' {
        let at = h.len() - digits - 1;
        h.replace_range(at..at + 1, "x");
    }
    while h.len() < 3 {
        h.push('x');
    }
    h
}

/// The first `n` bytes of an ASCII `s` (all of it if shorter).
fn prefix(s: &str, n: usize) -> &str {
    &s[..n.min(s.len())]
}

/// Applies a collision suffix: `base` cut so that `base_suffix` fits in 15 characters.
pub fn suffixed_handle(base: &str, suffix: u32) -> String {
    if suffix == 0 {
        return base.to_string();
    }
    let tail = format!("_{suffix}");
    let keep = 15usize.saturating_sub(tail.len()).max(1);
    let mut h: String = base.chars().take(keep).collect();
    h.push_str(&tail);
    h
}

/// 64-bit hash of a handle, for collision detection.
pub fn handle_hash(h: &str) -> u64 {
    let mut x = 0x243f_6a88_85a3_08d3u64;
    for chunk in h.as_bytes().chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        x = mix64(x ^ u64::from_le_bytes(b)).wrapping_add(chunk.len() as u64);
    }
    mix64(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_have_the_right_shape() {
        for u in 0..2000 {
            let h = base_handle("José Müller-Ñúñez", 7, u, 30);
            assert!((3..=15).contains(&h.len()), "{h}");
            assert!(h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{h}");
            let digits = h.bytes().rev().take_while(u8::is_ascii_digit).count();
            assert!(!(digits > 0 && h.as_bytes()[h.len() - digits - 1] == b'_'), "{h}");
        }
        assert_eq!(suffixed_handle("abcdefghijklmno", 12345), "abcdefghi_12345");
        assert_eq!(suffixed_handle("abc", 0), "abc");
    }
}
