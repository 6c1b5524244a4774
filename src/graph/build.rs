//! Generating the relationship graph.
//!
//! 1. Popularity: every user gets a weighted random key (extraversion, activity); sorting by it
//!    gives the global popularity order. Community member lists (town, fandom, party, main topic)
//!    are bucketed from that order, so each list is sorted by popularity too.
//! 2. Workplaces: users bucketed by (town, occupation) in id order, cut into workplaces.
//! 3. Out-degree of each user, exactly: friend circle (all mutual), colleagues (a symmetric pair
//!    decision, so mostly reciprocal), and a lognormal number of follows.
//! 4. Follows: a community is drawn from a per-user mixture, then a member at rank
//!    `floor(n * U^skew)`; with `skew = 4` the in-degree tail is a power law with exponent
//!    1 + skew / (skew - 1) = 2.33. Duplicates are redrawn.
//! 5. The in-lists: a transpose in parallel over source chunks, each writing after the chunks
//!    before it, so in-lists come out sorted by source whatever the thread count.

use super::{pack_meta, EdgeKind, Graph};
use crate::columns::Columns;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::rng::{domain, hash3, hash3_head, hash3_middle, hash3_tail, unit_f64, Stream};
use crate::world::{World, NO_ENTITY};
use rayon::prelude::*;

/// Parameters of the relationship graph. Defaults aim at measured Twitter figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// Smallest friend circle (default 4).
    pub circle_min: u32,
    /// Largest friend circle (default 14).
    pub circle_max: u32,
    /// Smallest workplace (default 8).
    pub workplace_min: u32,
    /// Largest workplace (default 60).
    pub workplace_max: u32,
    /// Expected colleague ties per user (default 4).
    pub colleague_ties: f32,
    /// Median number of plain follows per user, besides friends and colleagues (default 52).
    pub follows_median: f32,
    /// Log-normal spread of follows (default 0.55).
    pub follows_sigma: f32,
    /// Most follows per user (default 5000).
    pub follows_max: u32,
    /// Popularity skew of target choice: in-degree tail exponent 1 + skew / (skew - 1)
    /// in theory; 5.5 measures about 2.3 with the community mixture (default 5.5).
    pub popularity_skew: f32,
    /// Softening of the top of every popularity list (see `RankLaw`): 0 is the pure rank law,
    /// under which the first account of the everyone list is followed by most users; the
    /// default 20 keeps the largest account's followers to a few percent of the population
    /// while the tail exponent stays (default 20).
    pub popularity_head: f32,
    /// Mixture weights of where follows come from: town, fandom, rival fandom, party, topic,
    /// everyone (defaults 0.22, 0.16, 0.03, 0.10, 0.31, 0.18).
    pub mix: [f32; 6],
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            circle_min: 4,
            circle_max: 14,
            workplace_min: 8,
            workplace_max: 60,
            colleague_ties: 4.0,
            follows_median: 52.0,
            follows_sigma: 0.55,
            follows_max: 5000,
            popularity_skew: 5.5,
            popularity_head: 20.0,
            mix: [0.22, 0.16, 0.03, 0.10, 0.31, 0.18],
        }
    }
}

impl GraphConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.circle_min < 2 || self.circle_max < self.circle_min || self.circle_max > 10_000 {
            return bad("circle sizes must satisfy 2 <= circle_min <= circle_max <= 10000");
        }
        if self.workplace_min < 2 || self.workplace_max < self.workplace_min || self.workplace_max > 100_000 {
            return bad("workplace sizes must satisfy 2 <= workplace_min <= workplace_max <= 100000");
        }
        if !(0.0..=1000.0).contains(&self.colleague_ties) || !(0.0..=100_000.0).contains(&self.follows_median) {
            return bad("colleague_ties and follows_median out of range");
        }
        if self.follows_max == 0 {
            return bad("follows_max must be at least 1");
        }
        if !(0.0..=3.0).contains(&self.follows_sigma) || !(1.0..=20.0).contains(&self.popularity_skew) {
            return bad("follows_sigma must be in [0, 3] and popularity_skew in [1, 20]");
        }
        if (self.popularity_skew * 2.0).fract() != 0.0 {
            return bad("popularity_skew must be a multiple of 0.5");
        }
        if !(0.0..=1.0e6).contains(&self.popularity_head) {
            return bad("popularity_head must be in [0, 1000000]");
        }
        if self.mix.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || self.mix[5] <= 0.0 {
            return bad("mix weights must be non-negative and the last (everyone) positive");
        }
        Ok(())
    }
}

/// A zeroed `u32` array for random reads and writes, backed by transparent huge pages where the
/// OS allows it (an anonymous mapping advised `MADV_HUGEPAGE`): the community lists and counters
/// are read at random, and 4 KiB pages make every such read a TLB miss. Falls back to a `Vec`.
pub(crate) enum U32Store {
    /// The mapping, the byte offset where the array starts (2 MiB aligned), its length.
    Mapped(memmap2::MmapMut, usize, usize),
    Heap(Vec<u32>),
}

const HUGE_PAGE: usize = 2 << 20;

impl U32Store {
    pub fn zeroed(len: usize) -> U32Store {
        if len >= (1 << 18) {
            // Over-allocate so the array can start on a huge-page boundary.
            if let Ok(map) = memmap2::MmapMut::map_anon(len * 4 + HUGE_PAGE) {
                #[cfg(target_os = "linux")]
                let _ = map.advise(memmap2::Advice::HugePage);
                let offset = (HUGE_PAGE - map.as_ptr() as usize % HUGE_PAGE) % HUGE_PAGE;
                return U32Store::Mapped(map, offset, len);
            }
        }
        U32Store::Heap(vec![0; len])
    }

    pub fn from_iter(len: usize, items: impl Iterator<Item = u32>) -> U32Store {
        let mut store = U32Store::zeroed(len);
        for (slot, x) in store.as_mut_slice().iter_mut().zip(items) {
            *slot = x;
        }
        store
    }

    #[inline]
    pub fn as_slice(&self) -> &[u32] {
        match self {
            // Mappings are page-aligned, so the cast cannot fail.
            U32Store::Mapped(m, offset, len) => bytemuck::cast_slice(&m[*offset..*offset + *len * 4]),
            U32Store::Heap(v) => v,
        }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u32] {
        match self {
            U32Store::Mapped(m, offset, len) => bytemuck::cast_slice_mut(&mut m[*offset..*offset + *len * 4]),
            U32Store::Heap(v) => v,
        }
    }
}

impl std::ops::Deref for U32Store {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        self.as_slice()
    }
}

/// Members grouped by key, each group in the order they were fed.
pub(crate) struct Buckets {
    pub offsets: Vec<u32>,
    pub items: U32Store,
}

impl Buckets {
    /// Groups `order` by `key(i)`, the key of `order[i]`.
    fn new(keys: usize, order: &[u32], key: impl Fn(usize) -> Option<usize>) -> Buckets {
        let mut offsets = vec![0u32; keys + 1];
        for i in 0..order.len() {
            if let Some(k) = key(i) {
                offsets[k + 1] += 1;
            }
        }
        for k in 0..keys {
            offsets[k + 1] += offsets[k];
        }
        let mut cursor = offsets.clone();
        let mut items = U32Store::zeroed(offsets[keys] as usize);
        let slots = items.as_mut_slice();
        for (i, &u) in order.iter().enumerate() {
            if let Some(k) = key(i) {
                slots[cursor[k] as usize] = u;
                cursor[k] += 1;
            }
        }
        Buckets { offsets, items }
    }

    #[inline]
    pub fn get(&self, k: usize) -> &[u32] {
        match (self.offsets.get(k), self.offsets.get(k + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// One member's community lists, by slot (`u16::MAX`: none).
struct ListKeys {
    town: u8,
    topic: u8,
    team: u16,
    party: u16,
}

/// Community lists used while generating edges.
pub(crate) struct Communities {
    pub by_popularity: U32Store,
    pub towns: Buckets,
    pub fandoms: Buckets,
    pub parties: Buckets,
    pub topics: Buckets,
    /// Members of each workplace: `workplace_members.get(w)`.
    pub workplace_members: Buckets,
    /// Team entity -> slot in `fandoms` (`u16::MAX` if not a team).
    pub team_slot: Vec<u16>,
    /// Party entity -> slot in `parties`.
    pub party_slot: Vec<u16>,
}

/// Computes popularity, community lists and workplace ids (written into `cols.workplace`).
pub(crate) fn communities(
    master: u64,
    cfg: &GraphConfig,
    world: &World,
    occupations: usize,
    cols: &mut Columns,
) -> Communities {
    let n = cols.demographics.len();
    let mut keyed: Vec<(u64, u32)> = (0..n as u32)
        .into_par_iter()
        .map(|u| {
            let p = &cols.persona[u as usize];
            let a = &cols.activity[u as usize];
            let weight =
                (0.3 + p.big5[2] as f64 / 255.0) * (crate::columns::decode_ppd(a.posts_per_day) as f64 + 0.2).sqrt();
            let x = unit_f64(hash3(master, domain::POPULARITY, u as u64, 0)).max(1e-300);
            // Efraimidis-Spirakis key x^(1/w): larger is more popular. Sort by -ln(key).
            let key = -x.ln() / weight;
            (key.to_bits(), u)
        })
        .collect();
    keyed.par_sort_unstable();
    let by_popularity = U32Store::from_iter(n, keyed.into_iter().map(|(_, u)| u));

    let mut team_slot = vec![u16::MAX; world.entities.len()];
    for (i, &t) in world.teams.iter().enumerate() {
        team_slot[t as usize] = i as u16;
    }
    let mut party_slot = vec![u16::MAX; world.entities.len()];
    for (i, &p) in world.parties.iter().enumerate() {
        party_slot[p as usize] = i as u16;
    }
    let slot = |table: &[u16], e: u16| -> Option<usize> {
        if e == NO_ENTITY {
            return None;
        }
        table.get(e as usize).copied().filter(|&s| s != u16::MAX).map(usize::from)
    };
    // Each member's lists, in popularity order: one gather, in parallel and with the cache
    // misses overlapping, instead of scattered column reads in every list's two passes.
    let keys: Vec<ListKeys> = by_popularity
        .par_iter()
        .map(|&u| {
            let (d, a) = (&cols.demographics[u as usize], &cols.affiliations[u as usize]);
            let none = u16::MAX as usize;
            ListKeys {
                town: d.town,
                topic: cols.interests[u as usize].primary() as u8,
                team: slot(&team_slot, a.team).unwrap_or(none) as u16,
                party: slot(&party_slot, a.party).unwrap_or(none) as u16,
            }
        })
        .collect();
    let known = |s: u16| (s != u16::MAX).then_some(s as usize);
    let towns = Buckets::new(world.towns.len(), &by_popularity, |i| Some(keys[i].town as usize));
    let fandoms = Buckets::new(world.teams.len(), &by_popularity, |i| known(keys[i].team));
    let parties = Buckets::new(world.parties.len(), &by_popularity, |i| known(keys[i].party));
    let topics = Buckets::new(crate::taxonomy::TOPIC_COUNT, &by_popularity, |i| Some(keys[i].topic as usize));
    drop(keys);

    // Workplaces: (town, occupation) groups in id order, cut into sizes drawn per group.
    let ids: Vec<u32> = (0..n as u32).collect();
    let groups = Buckets::new(world.towns.len() * occupations.max(1), &ids, |u| {
        let d = &cols.demographics[u];
        Some(d.town as usize * occupations.max(1) + d.occupation as usize)
    });
    let mut starts = vec![0u32];
    let span = (cfg.workplace_max - cfg.workplace_min + 1) as u64;
    for g in 0..groups.offsets.len() - 1 {
        let (mut pos, end) = (groups.offsets[g], groups.offsets[g + 1]);
        let mut k = 0u64;
        while pos < end {
            let mut rng = Stream::new(master, domain::WORKPLACE, g as u64, k);
            let size = cfg.workplace_min + rng.below(span) as u32;
            // Never leave a remainder smaller than the minimum: fold it into this workplace.
            let next = if end - pos < size + cfg.workplace_min { end } else { pos + size };
            let w = starts.len() as u32 - 1;
            for &u in &groups.items[pos as usize..next as usize] {
                cols.workplace[u as usize] = w;
            }
            starts.push(next);
            pos = next;
            k += 1;
        }
    }
    let workplace_members = Buckets { offsets: starts, items: groups.items };
    Communities { by_popularity, towns, fandoms, parties, topics, workplace_members, team_slot, party_slot }
}

/// `x^skew` for a skew that is a multiple of 0.5: integer powers by multiplication and the half
/// by `sqrt`, both exact in IEEE arithmetic, so every platform agrees.
#[inline]
fn skew_power(u: f64, skew: f32) -> f64 {
    let whole = skew as u32;
    // Straight-line products for the usual skews (the same left-to-right products as the loop,
    // so the same bits), the loop for the rest.
    let mut x = match whole {
        4 => u * u * u * u,
        5 => u * u * u * u * u,
        6 => u * u * u * u * u * u,
        _ => {
            let mut x = 1.0;
            for _ in 0..whole {
                x *= u;
            }
            x
        }
    };
    if skew - whole as f32 >= 0.5 {
        x *= u.sqrt();
    }
    x
}

/// `floor(n * u^skew)`: the rank law without a softened head ([`RankLaw`] with `head` 0).
#[cfg(test)]
fn skewed_rank(u: f64, n: usize, skew: f32) -> usize {
    RankLaw::new(n, skew, 0.0).rank(u)
}

/// Where in a popularity-ordered list of `n` a follow lands: rank `r` has density
/// proportional to `(r + head)^(1/skew - 1)`, drawn by inverting its distribution:
/// `r = (n + head) * (a + u * (1 - a))^skew - head` with `a = (head / (n + head))^(1/skew)`.
/// With `head` 0 this is `floor(n * u^skew)`; a positive `head` keeps the power-law tail but
/// softens the top, so the first account of a list draws about `head^(1/skew - 1)` times less
/// than it would alone, and no account is followed by most of the population.
#[derive(Clone, Copy, Debug)]
struct RankLaw {
    n: usize,
    skew: f32,
    head: f64,
    a: f64,
    scale: f64,
}

impl RankLaw {
    fn new(n: usize, skew: f32, head: f64) -> RankLaw {
        let scale = n as f64 + head;
        // a = (head / scale)^(1/skew) by bisection over the exact power, so it is the same on
        // every platform (no libm root).
        let target = if scale > 0.0 { head / scale } else { 0.0 };
        let (mut lo, mut hi) = (0f64, 1f64);
        if target > 0.0 {
            for _ in 0..64 {
                let mid = 0.5 * (lo + hi);
                if skew_power(mid, skew) < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        } else {
            hi = 0.0;
        }
        RankLaw { n, skew, head, a: hi, scale }
    }

    #[inline]
    fn rank(&self, u: f64) -> usize {
        let x = if self.head > 0.0 {
            skew_power(self.a + u * (1.0 - self.a), self.skew) * self.scale - self.head
        } else {
            skew_power(u, self.skew) * self.scale
        };
        (x.max(0.0) as usize).min(self.n.saturating_sub(1))
    }
}

/// A small open-addressing set of user ids for de-duplicating one user's targets, cleared in
/// O(1) by bumping a generation stamp. Reused across users by each worker.
#[derive(Default)]
pub(crate) struct SeenSet {
    keys: Vec<u32>,
    stamps: Vec<u32>,
    stamp: u32,
    mask: usize,
}

impl SeenSet {
    fn reset(&mut self, want: usize) {
        let cap = (want * 2).next_power_of_two().max(64);
        if self.keys.len() < cap {
            self.keys.resize(cap, 0);
            self.stamps.resize(cap, 0);
        }
        self.mask = cap - 1;
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.stamps.fill(0);
            self.stamp = 1;
        }
    }

    /// Inserts `v`; false if it was already there.
    #[inline]
    fn insert(&mut self, v: u32) -> bool {
        let mut i = (v.wrapping_mul(0x9e37_79b9) >> 7) as usize & self.mask;
        loop {
            if self.stamps[i] != self.stamp {
                self.stamps[i] = self.stamp;
                self.keys[i] = v;
                return true;
            }
            if self.keys[i] == v {
                return false;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// One user's workplace: members `v` outside the user's friend circle are colleagues when
/// `hash3(master, PAIR, min(u, v), max(u, v)) < p`, a symmetric draw per pair. The hash's rounds
/// shared by many pairs are computed once.
struct Workplace<'a> {
    u: u32,
    members: &'a [u32],
    p: f64,
    circle: (u32, u32),
    /// `hash3_head(master, PAIR)`.
    head: u64,
    /// `hash3_middle(head, u)`: the prefix of every pair where `u` is the smaller id.
    own: u64,
}

impl Workplace<'_> {
    #[inline]
    fn is_colleague(&self, v: u32) -> bool {
        if v == self.u || (self.circle.0..self.circle.1).contains(&v) {
            return false;
        }
        let h = if self.u < v {
            hash3_tail(self.own, v as u64)
        } else {
            hash3_tail(hash3_middle(self.head, v as u64), self.u as u64)
        };
        unit_f64(h) < self.p
    }
}

struct Ctx<'a> {
    master: u64,
    /// `hash3_head(master, PAIR)`.
    pair_head: u64,
    /// Meta byte of a pick from each source list, by its 8-bit weight jitter.
    pick_meta: [[u8; 256]; 6],
    cfg: &'a GraphConfig,
    cols: &'a Columns,
    circle_start: &'a [u32],
    com: &'a Communities,
    world: &'a World,
    n: usize,
    laws: Laws,
}

/// The rank law of every community list (an empty list stands for everyone).
struct Laws {
    towns: Vec<RankLaw>,
    fandoms: Vec<RankLaw>,
    parties: Vec<RankLaw>,
    topics: Vec<RankLaw>,
    all: RankLaw,
}

impl Laws {
    fn new(com: &Communities, cfg: &GraphConfig) -> Laws {
        let all = RankLaw::new(com.by_popularity.len(), cfg.popularity_skew, cfg.popularity_head as f64);
        let of = |b: &Buckets| -> Vec<RankLaw> {
            (0..b.offsets.len().saturating_sub(1))
                .map(|k| match b.get(k).len() {
                    0 => all,
                    len => RankLaw::new(len, cfg.popularity_skew, cfg.popularity_head as f64),
                })
                .collect()
        };
        Laws {
            towns: of(&com.towns),
            fandoms: of(&com.fandoms),
            parties: of(&com.parties),
            topics: of(&com.topics),
            all,
        }
    }
}

impl Ctx<'_> {
    /// List `k` of `b` and its rank law; an empty or missing list is everyone.
    fn list<'s>(&'s self, b: &'s Buckets, laws: &[RankLaw], k: usize) -> (&'s [u32], RankLaw) {
        match b.get(k) {
            [] => (&self.com.by_popularity[..], self.laws.all),
            list => (list, laws.get(k).copied().unwrap_or(self.laws.all)),
        }
    }

    fn circle_range(&self, u: u32) -> (u32, u32) {
        let c = self.cols.circle[u as usize] as usize;
        (self.circle_start[c], self.circle_start[c + 1])
    }

    fn workplace(&self, u: u32, circle: (u32, u32)) -> Workplace<'_> {
        let members = self.com.workplace_members.get(self.cols.workplace[u as usize] as usize);
        let p = if members.len() > 1 {
            (self.cfg.colleague_ties as f64 / (members.len() - 1) as f64).min(1.0)
        } else {
            0.0
        };
        let own = hash3_middle(self.pair_head, u as u64);
        Workplace { u, members, p, circle, head: self.pair_head, own }
    }

    fn follows_wanted(&self, u: u32) -> u32 {
        let mut rng = Stream::new(self.master, domain::EDGES, u as u64, 0);
        let e = self.cols.persona[u as usize].big5[2] as f64 / 255.0;
        let x = self.cfg.follows_median as f64 * (self.cfg.follows_sigma as f64 * rng.normal()).exp() * (0.7 + 0.6 * e);
        (x.round() as u32).clamp(1, self.cfg.follows_max)
    }

    fn degree(&self, u: u32) -> u64 {
        let circle = self.circle_range(u);
        let friends = (circle.1 - circle.0 - 1) as u64;
        let work = self.workplace(u, circle);
        let colleagues = work.members.iter().filter(|&&v| work.is_colleague(v)).count() as u64;
        let max = (self.n as u64).saturating_sub(1);
        (friends + colleagues + self.follows_wanted(u) as u64).min(max)
    }

    /// Fills `buf` with exactly `want` packed edges `(target << 8) | meta`, sorted by target.
    #[inline(never)]
    fn edges<'s>(&'s self, u: u32, want: usize, w: &mut Workspace<'s>) {
        let Workspace { buf, picks, gathered, seen } = w;
        buf.clear();
        seen.reset(want + 1);
        seen.insert(u);
        let circle = self.circle_range(u);
        let mut rng = Stream::new(self.master, domain::EDGES, u as u64, 1);
        for v in circle.0..circle.1 {
            if seen.insert(v) {
                buf.push(((v as u64) << 8) | pack_meta(EdgeKind::Friend, 0.75 + 0.25 * rng.f64() as f32) as u64);
            }
        }
        let work = self.workplace(u, circle);
        for &v in work.members {
            if work.is_colleague(v) && seen.insert(v) {
                buf.push(((v as u64) << 8) | pack_meta(EdgeKind::Colleague, 0.45 + 0.25 * rng.f64() as f32) as u64);
            }
        }
        let aff = &self.cols.affiliations[u as usize];
        let team = self.com.team_slot.get(aff.team as usize).copied().filter(|&s| s != u16::MAX);
        let rivals: &[u16] = if aff.team != NO_ENTITY { self.world.rivals(aff.team) } else { &[] };
        let party = self.com.party_slot.get(aff.party as usize).copied().filter(|&s| s != u16::MAX);
        let interests = self.cols.interests[u as usize];
        let primary = interests.primary();
        let mut cum = [0f32; 6];
        let mut acc = 0.0;
        let present = [true, team.is_some(), team.is_some() && !rivals.is_empty(), party.is_some(), true, true];
        for k in 0..6 {
            if present[k] {
                acc += self.cfg.mix[k];
            }
            cum[k] = acc;
        }
        let town = self.cols.demographics[u as usize].town as usize;
        // The lists that do not depend on the draw (rivals' fandoms and topics, slots 2 and 4,
        // do); an empty one falls back to everyone.
        let (com, laws) = (self.com, &self.laws);
        let fixed = [
            self.list(&com.towns, &laws.towns, town),
            self.list(&com.fandoms, &laws.fandoms, team.unwrap_or(0) as usize),
            (&[][..], laws.all),
            self.list(&com.parties, &laws.parties, party.unwrap_or(0) as usize),
            (&[][..], laws.all),
            (&com.by_popularity[..], laws.all),
        ];
        let mut rounds = 0;
        while buf.len() < want && rounds < 8 {
            // Draw every pick first (where in which list), then load them all (below).
            picks.clear();
            for _ in 0..want - buf.len() {
                // Two draws per pick: one split into small fields, one for the rank.
                let bits = rng.next_u64();
                let x = (bits >> 40) as f32 * (acc / (1u64 << 24) as f32);
                let src = (cum.iter().map(|&c| (c <= x) as usize).sum::<usize>()).min(5);
                let (list, law) = match src {
                    2 => {
                        let r = rivals[((bits >> 32) & 0xff) as usize % rivals.len()];
                        self.list(&com.fandoms, &laws.fandoms, com.team_slot[r as usize] as usize)
                    }
                    4 => {
                        let mut t = primary;
                        // With probability 0.4, another of the user's topics.
                        if (bits >> 24) & 0xff < 102 {
                            let k = ((bits >> 20) & 0xf) as usize;
                            if interests.get(k) > 0 {
                                t = k;
                            }
                        }
                        self.list(&com.topics, &laws.topics, t)
                    }
                    _ => fixed[src],
                };
                let rank = law.rank(rng.f64());
                picks.push((&list[rank], self.pick_meta[src][((bits >> 12) & 0xff) as usize] as u64));
            }
            // All loads first, in a loop with nothing else to wait for, so their cache misses
            // overlap; then the de-duplication.
            gathered.clear();
            gathered.extend(picks.iter().map(|&(v, meta)| ((*v as u64) << 8) | meta));
            for &packed in gathered.iter() {
                if seen.insert((packed >> 8) as u32) {
                    buf.push(packed);
                }
            }
            rounds += 1;
        }
        if buf.len() < want {
            // Small groups exhausted: take the remaining targets in popularity order from a
            // random start (always succeeds, since want < users).
            let all = &self.com.by_popularity;
            let start = rng.below(all.len() as u64) as usize;
            for j in 0..all.len() {
                if buf.len() >= want {
                    break;
                }
                let v = all[(start + j) % all.len()];
                if seen.insert(v) {
                    buf.push(((v as u64) << 8) | pack_meta(EdgeKind::Follows, 0.15) as u64);
                }
            }
        }
        buf.sort_unstable();
    }
}

/// Per-worker scratch space for [`Ctx::edges`].
#[derive(Default)]
struct Workspace<'s> {
    buf: Vec<u64>,
    picks: Vec<(&'s u32, u64)>,
    gathered: Vec<u64>,
    seen: SeenSet,
}

/// Generates the graph. `cols` must have demographics, persona, interests, activity,
/// affiliations and circle filled; `cols.workplace` is filled by [`communities`] first.
pub(crate) fn build_graph(
    master: u64,
    cfg: &GraphConfig,
    world: &World,
    cols: &Columns,
    circle_start: &[u32],
    com: &Communities,
    progress: &dyn Progress,
) -> Graph {
    let n = cols.demographics.len();
    let pair_head = hash3_head(master, domain::PAIR);
    let pick_meta = std::array::from_fn(|src| {
        let kind = if src == 2 { EdgeKind::Rival } else { EdgeKind::Follows };
        let base_w = [0.3f32, 0.35, 0.2, 0.35, 0.3, 0.15][src];
        std::array::from_fn(|j| pack_meta(kind, base_w + j as f32 * (0.15 / 255.0)))
    });
    let laws = Laws::new(com, cfg);
    let ctx = Ctx { master, pair_head, pick_meta, cfg, cols, circle_start, com, world, n, laws };
    progress.stage("degrees", n as u64);
    let degrees: Vec<u64> = (0..n as u32).into_par_iter().map(|u| ctx.degree(u)).collect();
    let mut out_offsets = Vec::with_capacity(n + 1);
    out_offsets.push(0u64);
    let mut acc = 0u64;
    for d in &degrees {
        acc += d;
        out_offsets.push(acc);
    }
    drop(degrees);
    progress.stage("edges", n as u64);
    let mut out_targets = vec![0u32; acc as usize];
    let mut out_meta = vec![0u8; acc as usize];
    const BLOCK: usize = 1024;
    // Blocks of users, each with its own stretch of the out-lists.
    let blocks: Vec<usize> = (0..n).step_by(BLOCK).chain([n]).collect();
    let stretches: Vec<usize> = blocks.iter().map(|&s| out_offsets[s] as usize).collect();
    let targets = split_at_bounds(&mut out_targets, &stretches);
    let metas = split_at_bounds(&mut out_meta, &stretches);
    targets.into_par_iter().zip(metas).enumerate().for_each_init(Workspace::default, |w, (i, (t, m))| {
        let (s, e) = (blocks[i], blocks[i + 1]);
        let base = out_offsets[s];
        for u in s..e {
            let (a, b) = ((out_offsets[u] - base) as usize, (out_offsets[u + 1] - base) as usize);
            ctx.edges(u as u32, b - a, w);
            for (k, &packed) in w.buf.iter().enumerate() {
                t[a + k] = (packed >> 8) as u32;
                m[a + k] = packed as u8;
            }
        }
        progress.advance((e - s) as u64);
    });

    progress.stage("followers", n as u64);
    let (in_offsets, in_sources) = transpose(&out_offsets, &out_targets);
    Graph { out_offsets, out_targets, out_meta, in_offsets, in_sources }
}

/// Builds the in-lists from the out-lists, which must be sorted. A cache-friendly bucket sort:
/// writing each source straight into its target's in-list would miss the cache and the TLB on
/// almost every edge (the in-lists of 10M users span 2.9 GB), so consecutive targets are grouped
/// in sub-buckets of up to 256, and a source is stored with its target's offset in the
/// sub-bucket packed into the id's unused high bits:
///
/// 1. edges are counted per sub-bucket (an array small enough to stay in cache), over equal
///    stretches of the edge array in parallel;
/// 2. each edge's packed source is appended to its sub-bucket's stretch of the output, in source
///    order, through a buffer of up to 256 bytes per sub-bucket, so the output is written a few
///    cache lines at a time rather than 4 bytes at a time;
/// 3. each sub-bucket is sorted by target with a stable counting sort, which leaves every
///    in-list ordered by source, and its targets' offsets are written.
///
/// Work is split by target range, one per thread: each thread reads every out-list but takes
/// only the slice in its own range (two binary searches per list), and writes only its own
/// part of the output, so the result does not depend on the number of threads. With more than
/// 2^24 users fewer bits are free and the sub-buckets shrink, down to one target each.
pub(crate) fn transpose(out_offsets: &[u64], out_targets: &[u32]) -> (Vec<u64>, Vec<u32>) {
    transpose_packed(out_offsets, out_targets, 8, WRITE_BUFFERS)
}

/// [`transpose`] with sub-buckets of at most `2^max_shift` targets and `buffers` bytes of write
/// buffers per thread (tests use smaller ones, as with more users).
fn transpose_packed(out_offsets: &[u64], out_targets: &[u32], max_shift: u32, buffers: usize) -> (Vec<u64>, Vec<u32>) {
    let n = out_offsets.len().saturating_sub(1);
    let total = out_targets.len();
    let out = |u: usize| &out_targets[out_offsets[u] as usize..out_offsets[u + 1] as usize];
    let id_bits = usize::BITS - n.saturating_sub(1).leading_zeros();
    let shift = 32u32.saturating_sub(id_bits).min(max_shift);
    let width = 1usize << shift;
    let buckets = n.div_ceil(width);
    let parts = rayon::current_num_threads().clamp(1, 64).min(buckets.max(1));
    // Part p holds sub-buckets `cut[p]..cut[p + 1]`.
    let cut: Vec<usize> = (0..=parts).map(|p| buckets * p / parts).collect();
    // The edges of out-list `u` whose targets fall in part `p`.
    let part_of = |u: usize, p: usize| {
        let list = out(u);
        let (lo, hi) = (cut[p] << shift, cut[p + 1] << shift);
        let a = list.partition_point(|&v| (v as usize) < lo);
        let b = a + list[a..].partition_point(|&v| (v as usize) < hi);
        &list[a..b]
    };
    // 1. Edges per sub-bucket, counted over equal stretches of the edge array, then summed;
    // `start[k]` becomes sub-bucket k's first position.
    let stretch = total.div_ceil(parts).max(1);
    let mut start = out_targets
        .par_chunks(stretch)
        .map(|edges| {
            let mut size = vec![0usize; buckets + 1];
            for &v in edges {
                size[(v as usize >> shift) + 1] += 1;
            }
            size
        })
        .reduce(
            || vec![0usize; buckets + 1],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    for k in 0..buckets {
        start[k + 1] += start[k];
    }
    // 2. Packed sources appended to their sub-buckets.
    let mut in_sources = vec![0u32; total];
    let edge_cut: Vec<usize> = cut.iter().map(|&c| start[c]).collect();
    split_at_bounds(&mut in_sources, &edge_cut).into_par_iter().enumerate().for_each(|(p, src)| {
        let base = edge_cut[p];
        let mut cursor: Vec<usize> = start[cut[p]..cut[p + 1]].iter().map(|&s| s - base).collect();
        // One buffer of `line` entries per sub-bucket, the first cache-line aligned: 64 entries
        // (256 bytes) while all of them fit in `buffers` bytes, fewer with more users.
        let line = (buffers / 4 / cursor.len().max(1)).clamp(1, 64);
        let mut buffer = vec![0u32; cursor.len() * line + 16];
        let skip = (64 - buffer.as_ptr() as usize % 64) % 64 / 4;
        let lines = &mut buffer[skip..skip + cursor.len() * line];
        let mut fill = vec![0u8; cursor.len()];
        for u in 0..n {
            for &v in part_of(u, p) {
                let k = (v as usize >> shift) - cut[p];
                let f = fill[k] as usize;
                lines[k * line + f] = ((v as usize & (width - 1)) << id_bits | u) as u32;
                if f + 1 == line {
                    src[cursor[k]..cursor[k] + line].copy_from_slice(&lines[k * line..(k + 1) * line]);
                    cursor[k] += line;
                    fill[k] = 0;
                } else {
                    fill[k] = f as u8 + 1;
                }
            }
        }
        for k in 0..cursor.len() {
            let f = fill[k] as usize;
            src[cursor[k]..cursor[k] + f].copy_from_slice(&lines[k * line..k * line + f]);
        }
    });
    // 3. Each sub-bucket sorted by target, stably; offsets written.
    let mut in_offsets = vec![0u64; n + 1];
    let target_cut: Vec<usize> = cut.iter().map(|&c| (c << shift).min(n)).collect();
    let sources = split_at_bounds(&mut in_sources, &edge_cut);
    let offsets = split_at_bounds(&mut in_offsets[1..], &target_cut);
    let id_mask = (1u64 << id_bits) - 1;
    sources.into_par_iter().zip(offsets).enumerate().for_each(|(p, (src, offsets))| {
        let mut scratch = Vec::new();
        let mut pos = vec![0usize; width];
        for k in cut[p]..cut[p + 1] {
            let s = &mut src[start[k] - edge_cut[p]..start[k + 1] - edge_cut[p]];
            let first = (k << shift) - target_cut[p];
            let last = (first + width).min(offsets.len());
            let o = &mut offsets[first..last];
            pos.fill(0);
            for &x in s.iter() {
                pos[(x as u64 >> id_bits) as usize] += 1;
            }
            let mut acc = 0;
            for (b, slot) in pos.iter_mut().enumerate() {
                let count = *slot;
                *slot = acc;
                acc += count;
                if let Some(off) = o.get_mut(b) {
                    *off = (start[k] + acc) as u64;
                }
            }
            scratch.clear();
            scratch.resize(s.len(), 0u32);
            for &x in s.iter() {
                let b = (x as u64 >> id_bits) as usize;
                scratch[pos[b]] = (x as u64 & id_mask) as u32;
                pos[b] += 1;
            }
            s.copy_from_slice(&scratch);
        }
    });
    (in_offsets, in_sources)
}

/// Bytes of write buffers per thread in [`transpose`]: at 10M users, 256 bytes for each of
/// about 20,000 sub-buckets.
const WRITE_BUFFERS: usize = 8 << 20;

/// Splits `items` into the disjoint slices between consecutive `bounds` (ascending, first 0,
/// last at most the length; whatever lies past the last bound is left out).
fn split_at_bounds<'a, T>(items: &'a mut [T], bounds: &[usize]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(bounds.len().saturating_sub(1));
    let mut rest = items;
    for w in bounds.windows(2) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
        parts.push(head);
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// The parallel transpose equals a naive one on random sorted out-lists.
        #[test]
        fn transpose_matches_a_naive_model(lists in proptest::collection::vec(proptest::collection::btree_set(0u32..300, 0..40), 1..300)) {
            let n = lists.len() as u32;
            let lists: Vec<Vec<u32>> = lists.into_iter().map(|l| l.into_iter().filter(|&v| v < n).collect()).collect();
            let mut off = vec![0u64];
            let mut tgt = Vec::new();
            for l in &lists {
                tgt.extend_from_slice(l);
                off.push(tgt.len() as u64);
            }
            let mut model: Vec<Vec<u32>> = vec![Vec::new(); lists.len()];
            for (u, l) in lists.iter().enumerate() {
                for &v in l {
                    model[v as usize].push(u as u32);
                }
            }
            // Sub-buckets of 256 targets as at 10M users, and of fewer, as with over 2^24 users;
            // write buffers of 64 entries, and of fewer or one, as with over 2^24 users.
            for (max_shift, buffers) in [(8, WRITE_BUFFERS), (8, 300), (3, 100), (1, 4), (0, WRITE_BUFFERS)] {
                let (io, is) = transpose_packed(&off, &tgt, max_shift, buffers);
                for (v, expect) in model.iter().enumerate() {
                    proptest::prop_assert_eq!(&is[io[v] as usize..io[v + 1] as usize], expect.as_slice());
                }
            }
        }

        /// SeenSet behaves like a HashSet over random sequences of resets and inserts.
        #[test]
        fn seen_set_matches_a_hash_set(ops in proptest::collection::vec(proptest::prop_oneof![
            (1usize..200).prop_map(Op::Reset),
            (0u32..300).prop_map(Op::Insert),
        ], 1..400)) {
            let mut set = SeenSet::default();
            let mut model = std::collections::HashSet::new();
            set.reset(1);
            for op in ops {
                match op {
                    Op::Reset(want) => {
                        set.reset(want);
                        model.clear();
                    }
                    Op::Insert(v) => {
                        // Keep within capacity, as the caller does (want bounds the inserts).
                        if model.len() < 32 {
                            proptest::prop_assert_eq!(set.insert(v), model.insert(v));
                        }
                    }
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reset(usize),
        Insert(u32),
    }

    #[test]
    fn transpose_is_sorted_and_complete() {
        // 0->1, 0->2, 1->2, 2->0, 3->0, 3->2
        let off = [0u64, 2, 3, 4, 6];
        let tgt = [1u32, 2, 2, 0, 0, 2];
        let (io, is) = transpose(&off, &tgt);
        assert_eq!(io, vec![0, 2, 3, 6, 6]);
        assert_eq!(is, vec![2, 3, 0, 0, 1, 3]);
    }

    #[test]
    fn skewed_rank_stays_in_range_and_favours_the_top() {
        let mut rng = Stream::new(1, 1, 1, 1);
        let n = 1000;
        let mut top10 = 0;
        for _ in 0..10_000 {
            let r = skewed_rank(rng.f64(), n, 4.0);
            assert_eq!(skewed_rank(0.5, 1 << 20, 5.5), ((0.5f64).powf(5.5) * (1u64 << 20) as f64) as usize);
            assert!(r < n);
            if r < 100 {
                top10 += 1;
            }
        }
        // P(r < n/10) = 0.1^(1/4) = 0.56
        assert!((5_200..6_000).contains(&top10), "{top10}");
    }
}
