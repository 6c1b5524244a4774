//! The population: seed profiles multiplied deterministically into millions of users, with
//! their communities and relationship graph.
//!
//! Users are laid out by town (contiguous id ranges sized by town population) and, within a
//! town, by friend circle (contiguous runs of 5-25 ids). Each circle has an anchor seed chosen
//! with a preference for seeds from that town; members derive from the anchor or a near
//! neighbour on the seed similarity chain ([`mod@derive`]), so circles are homophilous.
//!
//! Invariants: every column is a pure function of (seeds, world, config, master seed, user id),
//! so generation is byte-identical for any thread count; per-user profile state is
//! [`columns::BYTES_PER_USER`] (60) bytes.

pub use crate::columns;
pub mod derive;
pub mod handles;
pub mod model;

use crate::error::{Error, Result};
use crate::graph::build::{build_graph, communities, GraphConfig};
use crate::graph::Graph;
use crate::ids::UserId;
pub use crate::progress::{NoProgress, Progress};
use crate::rng::{domain, Stream};
use crate::seeds::{Caps, Gender, Length, SeedSet};
use crate::taxonomy::{Topic, TOPIC_COUNT};
use crate::world::{EntityIdx, World, NO_ENTITY};
use columns::*;
use model::Model;
use rayon::prelude::*;

/// Most users a population may have (a `u32` id leaves room for more; memory does not).
pub const MAX_USERS: u32 = 100_000_000;

/// How to generate a population.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PopulationConfig {
    /// Number of users (default 100,000; at least 2).
    pub users: u32,
    /// Master seed (default 42).
    pub seed: u64,
    /// Graph parameters.
    pub graph: GraphConfig,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        PopulationConfig { users: 100_000, seed: 42, graph: GraphConfig::default() }
    }
}

/// A whole population: seeds, world, per-user columns, communities and graph.
#[derive(Clone, Debug)]
pub struct Population {
    pub(crate) seeds: SeedSet,
    pub(crate) world: World,
    pub(crate) model: Model,
    pub(crate) config: PopulationConfig,
    pub(crate) cols: Columns,
    /// Friend circle `c` is users `circle_start[c]..circle_start[c + 1]`.
    pub(crate) circle_start: Vec<u32>,
    /// Town slot `t` is users `town_start[t]..town_start[t + 1]`.
    pub(crate) town_start: Vec<u32>,
    pub(crate) workplaces: u32,
    pub(crate) graph: Graph,
    /// Every handle, derived on first use ([`Population::handles`]).
    pub(crate) handles: std::sync::OnceLock<Option<handles::Handles>>,
}

/// Splits `n` into parts proportional to `weights` (largest remainder, ties to the lower index).
fn apportion(n: u32, weights: &[f64]) -> Vec<u32> {
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut parts: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    let mut left = n - parts.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

impl Population {
    /// Generates `users` users from `seeds` and `world` with master seed `seed` and default graph
    /// parameters. Cost: about 2 s and 0.7 GB per million users on 2 cores.
    pub fn generate(seeds: &SeedSet, world: &World, users: u32, seed: u64) -> Result<Population> {
        let config = PopulationConfig { users, seed, ..PopulationConfig::default() };
        Population::generate_with(seeds, world, &config, &NoProgress)
    }

    /// Generates a population from a full configuration, reporting progress.
    pub fn generate_with(
        seeds: &SeedSet,
        world: &World,
        config: &PopulationConfig,
        progress: &dyn Progress,
    ) -> Result<Population> {
        config.graph.validate()?;
        let n = config.users;
        if n < 2 {
            return Err(Error::Config("a population needs at least 2 users".into()));
        }
        if n > MAX_USERS {
            return Err(Error::Config(format!(
                "{n} users is more than {MAX_USERS} (about 700 bytes each while generating: 10M users peak at 7 GiB)"
            )));
        }
        let master = config.seed;
        progress.stage("model", 1);
        let model = Model::new(seeds, world);
        progress.advance(1);

        progress.stage("users", n as u64);
        let weights: Vec<f64> = (0..world.towns.len()).map(|t| world.town_population(t as u8) as f64).collect();
        let town_sizes = apportion(n, &weights);
        let mut town_start = vec![0u32];
        for s in &town_sizes {
            town_start.push(town_start[town_start.len() - 1] + s);
        }
        // Friend circles: contiguous runs inside each town, each with an anchor seed.
        let mut circle_start = vec![0u32];
        let mut anchors: Vec<u16> = Vec::new();
        let span = (config.graph.circle_max - config.graph.circle_min + 1) as u64;
        for t in 0..world.towns.len() {
            let (mut pos, end) = (town_start[t], town_start[t + 1]);
            while pos < end {
                let c = anchors.len() as u64;
                let mut rng = Stream::new(master, domain::LAYOUT, c, 0);
                let size = config.graph.circle_min + rng.below(span) as u32;
                let next = if end - pos < size + config.graph.circle_min { end } else { pos + size };
                anchors.push(rng.pick_cumulative(&model.anchor_cum[t]) as u16);
                circle_start.push(next);
                pos = next;
            }
        }
        let mut circle = vec![0u32; n as usize];
        let mut town_of = vec![0u8; n as usize];
        for c in 0..anchors.len() {
            let range = circle_start[c] as usize..circle_start[c + 1] as usize;
            circle[range].fill(c as u32);
        }
        for t in 0..world.towns.len() {
            town_of[town_start[t] as usize..town_start[t + 1] as usize].fill(t as u8);
        }
        let derived: Vec<derive::Derived> = (0..n)
            .into_par_iter()
            .with_min_len(4096)
            .map(|u| {
                let c = circle[u as usize] as usize;
                let d = derive::derive_user(seeds, world, &model, master, u, town_of[u as usize], anchors[c]);
                if u % 65_536 == 0 {
                    progress.advance(65_536.min((n - u) as u64));
                }
                d
            })
            .collect();
        drop(town_of);
        let mut cols = Columns {
            demographics: derived.iter().map(|d| d.demographics).collect(),
            persona: derived.iter().map(|d| d.persona).collect(),
            interests: derived.iter().map(|d| d.interests).collect(),
            style: derived.iter().map(|d| d.style).collect(),
            activity: derived.iter().map(|d| d.activity).collect(),
            affiliations: derived.iter().map(|d| d.affiliations).collect(),
            handle_suffix: Vec::new(),
            circle,
            workplace: vec![NONE_U32; n as usize],
        };
        drop(derived);

        progress.stage("handles", n as u64);
        cols.handle_suffix = resolve_handles(seeds, &model, master, &cols.demographics, progress);

        progress.stage("communities", 1);
        let com = communities(master, &config.graph, world, seeds.occupations.len(), &mut cols);
        let workplaces = (com.workplace_members.offsets.len() - 1) as u32;
        progress.advance(1);

        let graph = build_graph(master, &config.graph, world, &cols, &circle_start, &com, progress);
        drop(com);
        Ok(Population {
            seeds: seeds.clone(),
            world: world.clone(),
            model,
            config: config.clone(),
            cols,
            circle_start,
            town_start,
            workplaces,
            graph,
            handles: Default::default(),
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.cols.demographics.len()
    }

    /// True if there are no users (never, for a generated population).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All user ids.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = UserId> {
        (0..self.len() as u32).map(UserId)
    }

    /// The configuration it was generated with.
    pub fn config(&self) -> &PopulationConfig {
        &self.config
    }

    /// The seed set.
    pub fn seeds(&self) -> &SeedSet {
        &self.seeds
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Whether world entity `e` is `user`'s own: their team, party, a favourite (person or
    /// brand), or their town.
    pub fn supports(&self, user: UserId, e: crate::world::EntityIdx) -> bool {
        let i = user.index();
        let aff = &self.columns().affiliations[i];
        aff.team == e
            || aff.party == e
            || aff.favourites.contains(&e)
            || self.world.town_slot(e) == Some(self.columns().demographics[i].town)
    }

    /// The relationship graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The compact per-user columns (for hot loops: filtering, statistics).
    pub fn columns(&self) -> &Columns {
        &self.cols
    }

    /// Number of friend circles.
    pub fn circles(&self) -> usize {
        self.circle_start.len() - 1
    }

    /// Members of friend circle `c`.
    pub fn circle_members(&self, c: u32) -> std::ops::Range<u32> {
        self.circle_start[c as usize]..self.circle_start[c as usize + 1]
    }

    /// Number of workplaces.
    pub fn workplaces(&self) -> u32 {
        self.workplaces
    }

    /// Users per town slot.
    pub fn town_sizes(&self) -> Vec<u32> {
        self.town_start.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Display name of `u` (derived on demand; not unique).
    pub fn display_name(&self, u: UserId) -> String {
        let d = &self.cols.demographics[u.index()];
        derive::display_name(&self.seeds, &self.model, self.config.seed, u.0, d.seed, d.gender)
    }

    /// Every user's handle in one table, derived on the first call (about 0.3 s per million
    /// users on two cores, about 15 bytes a user) and kept: for code that names many users.
    /// `None` past 4 GiB of handles.
    pub fn handles(&self) -> Option<&handles::Handles> {
        self.handles.get_or_init(|| handles::Handles::build(self)).as_ref()
    }

    /// Handle of `u` (derived on demand; unique in the population).
    pub fn handle(&self, u: UserId) -> String {
        let d = &self.cols.demographics[u.index()];
        let name = self.display_name(u);
        let base = derive::base_handle(&name, self.config.seed, u.0, d.age);
        match self.cols.handle_suffix[u.index()] {
            0 => base,
            suffix => derive::suffixed_handle(&base, suffix),
        }
    }

    /// The full profile of `u`, expanded from the compact columns.
    pub fn user(&self, u: UserId) -> User {
        let i = u.index();
        let c = &self.cols;
        let d = c.demographics[i];
        let p = c.persona[i];
        let st = c.style[i];
        let a = c.activity[i];
        let seed = &self.seeds.seeds[d.seed as usize];
        let mut emojis = seed.style.emojis.clone();
        if !emojis.is_empty() {
            let k = st.variant as usize % emojis.len();
            emojis.rotate_left(k);
            if st.variant & 0x8000 != 0 {
                let near = &self.seeds.seeds
                    [self.model.knn[d.seed as usize][(st.variant >> 8) as usize % model::KNN] as usize];
                if let Some(e) = near.style.emojis.first() {
                    if !emojis.contains(e) {
                        let last = emojis.len() - 1;
                        emojis[last] = e.clone();
                    }
                }
            }
        }
        let mut hours = [0f32; 24];
        for (h, v) in seed.activity.hours.iter().enumerate() {
            hours[(h as i32 + p.hour_shift as i32).rem_euclid(24) as usize] = *v;
        }
        let affiliations = [
            c.affiliations[i].team,
            c.affiliations[i].party,
            c.affiliations[i].favourites[0],
            c.affiliations[i].favourites[1],
        ]
        .into_iter()
        .filter(|&e| e != NO_ENTITY)
        .collect();
        User {
            id: u,
            handle: self.handle(u),
            name: self.display_name(u),
            seed: d.seed,
            age: d.age,
            gender: Gender::from_code(d.gender),
            town: self.world.towns[d.town as usize],
            utc_offset: self.world.town_offset(d.town),
            occupation: self.seeds.occupations[d.occupation as usize].clone(),
            locale: self.seeds.locales[d.locale as usize].clone(),
            big5: p.big5.map(dq8),
            politics: p.politics as f32 / 127.0,
            interests: Topic::ALL
                .into_iter()
                .filter(|t| c.interests[i].get(t.index()) > 0)
                .map(|t| (t, c.interests[i].get(t.index()) as f32 / 15.0))
                .collect(),
            formality: dq8(st.formality),
            emoji_rate: dq8(st.emoji_rate),
            emojis,
            slang: dq8(st.slang),
            caps: Caps::ALL[(p.habits & 3) as usize],
            length: Length::ALL[((p.habits >> 2) & 3).min(2) as usize],
            hashtag_rate: dq8(st.hashtag_rate),
            typo_rate: dq8(st.typo_rate) * 0.2,
            posts_per_day: decode_ppd(a.posts_per_day),
            reply: dq8(a.reply),
            quote: dq8(a.quote),
            like: dq8(a.like),
            repost: dq8(a.repost),
            gif: dq8(a.gif),
            hours,
            affiliations,
            circle: c.circle[i],
            workplace: c.workplace[i],
            following: self.graph.out_degree(u),
            followers: self.graph.in_degree(u),
        }
    }

    /// Finds a user by handle (a parallel scan: O(users)).
    pub fn find_handle(&self, handle: &str) -> Option<UserId> {
        (0..self.len() as u32).into_par_iter().find_first(|&u| self.handle(UserId(u)) == handle).map(UserId)
    }

    /// Bytes held by the per-user columns.
    pub fn column_bytes(&self) -> usize {
        self.len() * BYTES_PER_USER
    }
}

/// Computes collision suffixes: the lowest id with a given base handle keeps it; every other
/// user whose base collides gets a globally unique number (in id order), appended as `_N`.
fn resolve_handles(
    seeds: &SeedSet,
    model: &Model,
    master: u64,
    demo: &[Demographics],
    progress: &dyn Progress,
) -> Vec<u32> {
    let n = demo.len();
    let mut keyed: Vec<(u64, u32)> = (0..n as u32)
        .into_par_iter()
        .with_min_len(4096)
        .map(|u| {
            let d = &demo[u as usize];
            let name = derive::display_name(seeds, model, master, u, d.seed, d.gender);
            let base = derive::base_handle(&name, master, u, d.age);
            if u % 65_536 == 0 {
                progress.advance(65_536.min((n as u32 - u) as u64));
            }
            (derive::handle_hash(&base), u)
        })
        .collect();
    keyed.par_sort_unstable();
    let mut collided: Vec<u32> = keyed
        .par_iter()
        .enumerate()
        .filter(|(k, (h, _))| *k > 0 && keyed[k - 1].0 == *h)
        .map(|(_, &(_, u))| u)
        .collect();
    drop(keyed);
    collided.par_sort_unstable();
    let mut suffix = vec![0u32; n];
    for (k, &u) in collided.iter().enumerate() {
        suffix[u as usize] = k as u32 + 1;
    }
    suffix
}

/// A user's full profile, expanded from the compact columns.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique handle (without `@`).
    pub handle: String,
    /// Display name.
    pub name: String,
    /// Index of the lineage seed.
    pub seed: u16,
    /// Age.
    pub age: u8,
    /// Gender.
    #[serde(serialize_with = "ser_gender")]
    pub gender: Gender,
    /// Home town (world entity).
    pub town: EntityIdx,
    /// Hours from UTC.
    pub utc_offset: f32,
    /// Occupation.
    pub occupation: String,
    /// Locale, like "en-US".
    pub locale: String,
    /// Openness, conscientiousness, extraversion, agreeableness, neuroticism.
    pub big5: [f32; 5],
    /// Left (-1) to right (+1).
    pub politics: f32,
    /// Topics with weight in `(0, 1]`.
    #[serde(serialize_with = "ser_interests")]
    pub interests: Vec<(Topic, f32)>,
    /// 0 casual .. 1 formal.
    pub formality: f32,
    /// Share of posts with emoji.
    pub emoji_rate: f32,
    /// Favourite emojis.
    pub emojis: Vec<String>,
    /// Slang level.
    pub slang: f32,
    /// Capitalisation habit.
    #[serde(serialize_with = "ser_caps")]
    pub caps: Caps,
    /// Typical length.
    #[serde(serialize_with = "ser_length")]
    pub length: Length,
    /// Share of posts with a hashtag.
    pub hashtag_rate: f32,
    /// Typos per word.
    pub typo_rate: f32,
    /// Posts per day.
    pub posts_per_day: f32,
    /// Reply propensity.
    pub reply: f32,
    /// Quote propensity.
    pub quote: f32,
    /// Like propensity.
    pub like: f32,
    /// Repost propensity.
    pub repost: f32,
    /// GIF propensity.
    pub gif: f32,
    /// Hourly activity in local time (sums to 1).
    pub hours: [f32; 24],
    /// Team, party, favourite people and brands (world entities).
    pub affiliations: Vec<EntityIdx>,
    /// Friend circle id.
    pub circle: u32,
    /// Workplace id.
    pub workplace: u32,
    /// Following count.
    pub following: u32,
    /// Follower count.
    pub followers: u32,
}

fn ser_gender<S: serde::Serializer>(g: &Gender, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(g.name())
}
fn ser_caps<S: serde::Serializer>(c: &Caps, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(c.name())
}
fn ser_length<S: serde::Serializer>(l: &Length, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(l.name())
}
fn ser_interests<S: serde::Serializer>(v: &[(Topic, f32)], s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (t, w) in v {
        m.serialize_entry(t.name(), w)?;
    }
    m.end()
}

const _: () = assert!(TOPIC_COUNT == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact_and_proportional() {
        let parts = apportion(10, &[1.0, 1.0, 1.0]);
        assert_eq!(parts.iter().sum::<u32>(), 10);
        assert_eq!(parts, vec![4, 3, 3]);
        assert_eq!(apportion(7, &[0.5, 2.0]), vec![1, 6]);
    }
}
