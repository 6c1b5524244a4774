//! What the multiplication learns from the seed set before generating anyone: the seed
//! similarity chain (k nearest neighbours), trait state chains, name chains, and per-town tables.
//! Pure function of (seeds, world); rebuilt when a snapshot loads.

use crate::markov::{CharChain, StateChain};
use crate::seeds::{Gender, SeedSet};
use crate::taxonomy::TOPIC_COUNT;
use crate::world::{EntityIdx, EntityKind, World};

/// Neighbours per seed in the similarity chain.
pub const KNN: usize = 8;

/// Tables derived from the seeds and world.
#[derive(Clone, Debug)]
pub struct Model {
    /// For each seed: its `KNN` most similar seeds.
    pub knn: Vec<[u16; KNN]>,
    /// For each seed: cumulative transition weights over `knn`.
    pub knn_cum: Vec<[f32; KNN]>,
    /// Interest swaps: topic -> topic, from co-occurrence in seeds.
    pub topics: StateChain,
    /// Capitalisation habit transitions between similar seeds.
    pub caps: StateChain,
    /// Length habit transitions between similar seeds.
    pub length: StateChain,
    /// First names by gender code (female, male, all).
    pub first: [CharChain; 3],
    /// Last names.
    pub last: CharChain,
    /// Per town slot: cumulative weights over seeds for a circle's anchor.
    pub anchor_cum: Vec<Vec<f32>>,
    /// Per town slot: the teams based there (entity, league).
    pub town_teams: Vec<Vec<(EntityIdx, EntityIdx)>>,
    /// Per topic: persons and brands with that topic.
    pub topic_entities: Vec<Vec<EntityIdx>>,
    /// Parties with their leaning.
    pub parties: Vec<(EntityIdx, f32)>,
}

fn features(s: &crate::seeds::Seed) -> Vec<f32> {
    let mut f = Vec::with_capacity(32);
    f.extend(s.big5);
    f.push(s.politics * 0.5);
    f.extend(s.interests.iter().map(|w| w * 0.7));
    f.extend([s.style.formality, s.style.emoji_rate, s.style.slang, s.style.hashtag_rate]);
    f.push(s.age as f32 / 80.0);
    f.push((s.activity.posts_per_day + 0.1).ln() / 5.0);
    f
}

impl Model {
    /// Learns the model; deterministic.
    pub fn new(seeds: &SeedSet, world: &World) -> Model {
        let n = seeds.seeds.len();
        let feats: Vec<Vec<f32>> = seeds.seeds.iter().map(features).collect();
        let mut knn = Vec::with_capacity(n);
        let mut knn_cum = Vec::with_capacity(n);
        for i in 0..n {
            let mut d: Vec<(f32, u16)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let dist: f32 = feats[i].iter().zip(&feats[j]).map(|(a, b)| (a - b) * (a - b)).sum();
                    (dist, j as u16)
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut ids = [i as u16; KNN];
            let mut cum = [0.0f32; KNN];
            let mut acc = 0.0;
            for k in 0..KNN {
                if let Some(&(dist, j)) = d.get(k) {
                    ids[k] = j;
                    acc += (-dist / 0.5).exp().max(1e-6);
                }
                cum[k] = if d.get(k).is_some() { acc } else { acc + 1e-6 * k as f32 };
            }
            knn.push(ids);
            knn_cum.push(cum);
        }
        let mut topic_pairs = Vec::new();
        for s in &seeds.seeds {
            for a in 0..TOPIC_COUNT {
                for b in 0..TOPIC_COUNT {
                    if a != b && s.interests[a] > 0.0 && s.interests[b] > 0.0 {
                        topic_pairs.push((a, b));
                    }
                }
            }
        }
        let topics = StateChain::from_transitions(TOPIC_COUNT, topic_pairs, 0.2);
        let pairs = |f: fn(&crate::seeds::Seed) -> usize| {
            let mut v = Vec::new();
            for (i, s) in seeds.seeds.iter().enumerate() {
                for &j in &knn[i] {
                    v.push((f(s), f(&seeds.seeds[j as usize])));
                }
            }
            v
        };
        let caps = StateChain::from_transitions(4, pairs(|s| s.style.caps as usize), 0.5);
        let length = StateChain::from_transitions(3, pairs(|s| s.style.length as usize), 0.5);
        let firsts = |g: Option<Gender>| {
            CharChain::train(seeds.seeds.iter().filter(|s| g.is_none_or(|g| s.gender == g)).map(|s| s.first.as_str()))
        };
        let first = [firsts(Some(Gender::Female)), firsts(Some(Gender::Male)), firsts(None)];
        let last = CharChain::train(seeds.seeds.iter().map(|s| s.last.as_str()));
        let anchor_cum = (0..world.towns.len())
            .map(|t| {
                let offset = world.town_offset(t as u8);
                let mut acc = 0.0;
                seeds
                    .seeds
                    .iter()
                    .map(|s| {
                        let local = if s.town as usize == t { 40.0 } else { 0.0 };
                        let zone = if world.town_offset(s.town) == offset { 4.0 } else { 0.0 };
                        acc += 1.0 + local + zone;
                        acc
                    })
                    .collect()
            })
            .collect();
        let mut town_teams = vec![Vec::new(); world.towns.len()];
        for &team in &world.teams {
            if let (Some(slot), Some(league)) = (world.team_town_slot(team), world.team_league(team)) {
                town_teams[slot as usize].push((team, league));
            }
        }
        let mut topic_entities = vec![Vec::new(); TOPIC_COUNT];
        for (i, e) in world.entities.iter().enumerate() {
            if let EntityKind::Person { topic, .. } | EntityKind::Brand { topic } = &e.kind {
                topic_entities[topic.index()].push(i as EntityIdx);
            }
        }
        let parties = world.parties.iter().filter_map(|&p| Some((p, world.party_leaning(p)?))).collect();
        Model { knn, knn_cum, topics, caps, length, first, last, anchor_cum, town_teams, topic_entities, parties }
    }

    /// One step of the seed similarity chain from `seed`.
    pub fn neighbour(&self, seed: usize, rng: &mut crate::rng::Stream) -> usize {
        self.knn[seed][rng.pick_cumulative(&self.knn_cum[seed])] as usize
    }
}
