//! Filtering: for one classified event, which users react and with what stance. Runs in
//! parallel (rayon) over the event's candidate audience, found through an index by interest
//! and affiliation, so a niche event never scans the whole population.
//!
//! A user's reaction probability multiplies: the event's base rate for its impact, the
//! event's weight ([`volume_weight`]: intensity and controversy), the activity knob, the
//! user's interest in the event's topics plus their affinity to its stakeholders (fan, rival
//! fan, party member or opponent, admirer, resident), their activity at the event's local hour,
//! their posting rate ([`rate_of`], heavy-tailed like their posts per day), and a cooldown
//! after a recent reaction. Stance is the event's valence as seen from the user's side (a
//! rival fan sees a win as a loss).
//!
//! Invariants: the decision for a user is a pure function of (master seed, event id, user,
//! population, cooldowns); results come out ordered by user id, identical for any thread
//! count.

use crate::classify::Classification;
use crate::events::{GameTime, Impact};
use crate::ids::UserId;
use crate::population::columns::{decode_ppd, dq8};
use crate::population::Population;
use crate::prefetch::load_together;
use crate::rng::{hash3_prefix, hash3_tail, mix64, unit_f64};
use crate::state::{ceiling_sixteenths, UserState, INVOLVEMENT_FACTOR_MAX, REACTION_FACTOR_MAX};
use crate::taxonomy::Topic;
use crate::world::{EntityIdx, EntityKind, NO_ENTITY};
use rayon::prelude::*;

/// Domain tag of the reaction decision.
const REACT: u64 = 0x0072_6561_6374;
/// Largest activity factor (hourly activity relative to the user's daily mean).
const ACTIVITY_CAP: f32 = 3.0;

/// Tunable rates of the filter.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Base reaction rate for local, national and global events (defaults 0.40, 0.20, 0.16).
    pub base_rate: [f32; 3],
    /// Interest (0..15) at or above which a user is in a topic's audience (default 6).
    pub interest_threshold: u8,
    /// Factor applied while a user cools down after acting (default 0.3; the cooldown's
    /// length is `StateConfig::cooldown_minutes`).
    pub cooldown_factor: f32,
    /// Highest probability for any user (default 0.95).
    pub max_probability: f32,
    /// Volume knob: scales every event's reaction rate (default 1, within [`ACTIVITY_RANGE`];
    /// `--activity`).
    pub activity: f32,
}

/// The volume knobs the command line and the server take.
pub const ACTIVITY_RANGE: std::ops::RangeInclusive<f32> = 0.01..=100.0;

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            base_rate: [0.40, 0.20, 0.16],
            interest_threshold: 6,
            cooldown_factor: 0.3,
            max_probability: 0.95,
            activity: 1.0,
        }
    }
}

/// One user's reaction to an event (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Reaction {
    /// Who reacts.
    pub user: UserId,
    /// How they see it: -127 (very bad) .. 127 (very good).
    pub stance: i8,
    /// How strongly they are engaged: 0..255 (their reaction probability).
    pub engagement: u8,
}

/// What the filter needs of one audience member, packed so a scan reads one array (24 bytes).
#[derive(Clone, Copy, Debug, Default)]
struct Member {
    user: u32,
    seed: u16,
    town: u8,
    hour_shift: i8,
    team: u16,
    party: u16,
    /// Activity code (posts per day).
    ppd: u8,
    /// Agreeableness, 0..255.
    agreeable: u8,
    /// The most the member's activity and posting rate can give at any hour, in steps of
    /// [`PEAK_STEP`], rounded up (see [`Decider::first_test`]).
    peak: u8,
    interests: crate::population::columns::Interests,
}

/// Largest posting-rate factor.
pub const RATE_MAX: f32 = 40.0;

/// Taking-part factor of an activity code (posts per day): `1 + 0.05 * r^1.5` with
/// `r = ppd / 1.5`, at most [`RATE_MAX`]. Everyone likes and reposts (the constant part);
/// taking part grows with posts per day, which are log-normal over users (the seeds' spread
/// times the variation rules' `exp(0.9 N)`), so the most active users take part in most
/// events of their interests.
pub fn rate_of(code: u8) -> f32 {
    let r = decode_ppd(code) / 1.5;
    (1.0 + 0.05 * r * r.sqrt()).min(RATE_MAX)
}

/// An event's weight in the reaction rate: `((0.1 + intensity) / 0.6)^2 * (1 + 2 *
/// controversy)`, about 1 for a middling event, 0.03 for a flat notice and up to 8 for an
/// intense, divisive one, so volume spans over two orders of magnitude.
pub fn volume_weight(event: &Classification) -> f32 {
    let i = (0.1 + event.intensity.clamp(0.0, 1.0)) / 0.6;
    i * i * (1.0 + 2.0 * event.controversy.clamp(0.0, 1.0))
}

/// Unit of [`Member::peak`]: 255 steps reach the largest activity factor times the largest
/// posting-rate factor.
const PEAK_STEP: f32 = ACTIVITY_CAP * RATE_MAX / 255.0;

impl Member {
    fn of(c: &crate::population::columns::Columns, hours: &[[f32; 24]], u: u32) -> Member {
        let i = u as usize;
        let (d, p, a) = (&c.demographics[i], &c.persona[i], &c.affiliations[i]);
        let ppd = c.activity[i].posts_per_day;
        let busiest = hours.get(d.seed as usize).map_or(ACTIVITY_CAP, |h| h.iter().fold(0f32, |m, &x| m.max(x)));
        let peak = busiest.min(ACTIVITY_CAP) * rate_of(ppd);
        Member {
            peak: ((peak / PEAK_STEP).ceil() as u32 + 1).min(255) as u8,
            user: u,
            seed: d.seed,
            town: d.town,
            hour_shift: p.hour_shift,
            team: a.team,
            party: a.party,
            ppd,
            agreeable: p.big5[3],
            interests: c.interests[i],
        }
    }
}

/// Audience index: users by strong interest in each topic and by affiliation to each entity,
/// as packed member records in id order. Built once per population (linear time), 24 bytes
/// per membership (about 5 memberships per user).
pub struct AudienceIndex {
    topic_offsets: Vec<u32>,
    topic_members: Vec<Member>,
    entity_offsets: Vec<u32>,
    entity_members: Vec<Member>,
    threshold: u8,
    /// Users of the population the index was built from.
    users: usize,
    /// Per user: the hourly activity curve scaled so its mean is 1, by (seed, shift) on demand.
    hours: Vec<[f32; 24]>,
    home_country: Option<String>,
}

fn group(keys: usize, n: usize, mut each: impl FnMut(u32, &mut dyn FnMut(usize))) -> (Vec<u32>, Vec<u32>) {
    let mut counts = vec![0u32; keys + 1];
    for u in 0..n as u32 {
        each(u, &mut |k| counts[k + 1] += 1);
    }
    for k in 0..keys {
        counts[k + 1] += counts[k];
    }
    let mut cursor = counts.clone();
    let mut items = vec![0u32; counts[keys] as usize];
    for u in 0..n as u32 {
        each(u, &mut |k| {
            items[cursor[k] as usize] = u;
            cursor[k] += 1;
        });
    }
    (counts, items)
}

impl AudienceIndex {
    /// Builds the index for `population` with the given interest threshold.
    pub fn new(population: &Population, config: &FilterConfig) -> AudienceIndex {
        let c = population.columns();
        let n = population.len();
        let threshold = config.interest_threshold;
        let hours: Vec<[f32; 24]> = population
            .seeds()
            .seeds
            .iter()
            .map(|s| {
                let mut h = s.activity.hours;
                h.iter_mut().for_each(|x| *x *= 24.0);
                h
            })
            .collect();
        let (topic_offsets, topic_users) = group(Topic::ALL.len(), n, |u, push| {
            let i = &c.interests[u as usize];
            for t in 0..Topic::ALL.len() {
                if i.get(t) >= threshold {
                    push(t);
                }
            }
        });
        let topic_members = topic_users.par_iter().map(|&u| Member::of(c, &hours, u)).collect();
        let entities = population.world().entities.len();
        let (entity_offsets, entity_users) = group(entities, n, |u, push| {
            let a = &c.affiliations[u as usize];
            for e in [a.team, a.party, a.favourites[0], a.favourites[1]] {
                if e != NO_ENTITY && (e as usize) < entities {
                    push(e as usize);
                }
            }
        });
        let world = population.world();
        let home_country = world.towns.first().and_then(|&t| match &world.entity(t).kind {
            EntityKind::Town { country, .. } => Some(country.clone()),
            _ => None,
        });
        let entity_members = entity_users.par_iter().map(|&u| Member::of(c, &hours, u)).collect();
        AudienceIndex {
            topic_offsets,
            topic_members,
            entity_offsets,
            entity_members,
            threshold,
            users: n,
            hours,
            home_country,
        }
    }

    fn topic(&self, t: Topic) -> &[Member] {
        let i = t.index();
        &self.topic_members[self.topic_offsets[i] as usize..self.topic_offsets[i + 1] as usize]
    }

    fn entity(&self, e: EntityIdx) -> &[Member] {
        let i = e as usize;
        match (self.entity_offsets.get(i), self.entity_offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.entity_members[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// The users an event touches whether or not they react: those affiliated to a stakeholder
/// (fans, party members, admirers: side +1) and fans of a stakeholder team's rivals (side −1),
/// sorted by user, each once (sides summed, then signed).
pub fn affected(population: &Population, index: &AudienceIndex, event: &Classification) -> Vec<(u32, i8)> {
    let world = population.world();
    // Each entity's list is sorted by user: merge them (sides summed) instead of sorting.
    let mut merged: Vec<(u32, i8)> = Vec::new();
    let mut spare: Vec<(u32, i8)> = Vec::new();
    for (e, side) in event.stakes(world) {
        let lists = std::iter::once((e, side)).chain(world.rivals(e).iter().map(move |&r| (r, -side)));
        for (list, side) in lists {
            merge_sides(&merged, index.entity(list), side, &mut spare);
            std::mem::swap(&mut merged, &mut spare);
        }
    }
    merged.retain(|x| x.1 != 0);
    for x in &mut merged {
        x.1 = x.1.signum();
    }
    merged
}

/// `a` (sorted by user, each once) with every user of `b` (sorted) added on `side`, into `out`
/// (sorted, each once, sides summed; a user twice in `b` counts twice).
fn merge_sides(a: &[(u32, i8)], b: &[Member], side: i8, out: &mut Vec<(u32, i8)>) {
    out.clear();
    out.reserve(a.len() + b.len());
    let mut push = |u: u32, s: i8| match out.last_mut() {
        Some(last) if last.0 == u => last.1 = last.1.saturating_add(s),
        _ => out.push((u, s)),
    };
    let mut a = a.iter().peekable();
    for m in b {
        while let Some(&&(u, s)) = a.peek() {
            if u > m.user {
                break;
            }
            push(u, s);
            a.next();
        }
        push(m.user, side);
    }
    a.for_each(|&(u, s)| push(u, s));
}

/// Stable 64-bit key of an event id, for counter-based randomness.
pub fn event_key(id: &str) -> u64 {
    id.bytes().fold(0x51_7cc1_b727_220a, |h, b| mix64(h ^ b as u64))
}

struct Stake {
    entity: EntityIdx,
    /// How the entity's fans see the event: +1 as its valence says, -1 the opposite (the
    /// loser of a win).
    side: f32,
    /// Rival teams of a stakeholder team.
    rivals: Vec<EntityIdx>,
    is_party: bool,
    town: Option<u8>,
}

/// Which users react to `event`, at game time `time`, and how. Deterministic; parallel over
/// the candidate audience.
///
/// # Panics
/// If `index` was built from a population of another size (a caller error).
pub fn filter(
    population: &Population,
    index: &AudienceIndex,
    config: &FilterConfig,
    event: &Classification,
    time: GameTime,
    state: Option<&UserState>,
) -> Vec<Reaction> {
    filter_with(population, index, config, event, time, state, true)
}

/// [`filter`], or with `bounded` false, the same decisions without the upper bounds that
/// spare most members the exact probability (for tests).
fn filter_with(
    population: &Population,
    index: &AudienceIndex,
    config: &FilterConfig,
    event: &Classification,
    time: GameTime,
    state: Option<&UserState>,
    bounded: bool,
) -> Vec<Reaction> {
    assert_eq!(index.users, population.len(), "the audience index was built from another population");
    let world = population.world();
    let master = population.config().seed;
    let key = event_key(&event.id);
    let stakes: Vec<Stake> = event
        .stakes(world)
        .map(|(e, side)| Stake {
            entity: e,
            side: side as f32,
            rivals: world.rivals(e).to_vec(),
            is_party: world.party_leaning(e).is_some(),
            town: match &world.entity(e).kind {
                EntityKind::Town { .. } => world.town_slot(e),
                EntityKind::Team { .. } => world.team_town_slot(e),
                _ => None,
            },
        })
        .collect();
    let topics = event.category.topics();
    let needs_favourites = stakes
        .iter()
        .any(|s| matches!(world.entity(s.entity).kind, EntityKind::Person { .. } | EntityKind::Brand { .. }));
    let impact_rate = config.base_rate[event.impact as usize] * config.activity.max(0.0);
    let minute = crate::state::minute_of(time);
    let valence_sign = event.valence.sign();
    // Per-town tables are indexed by the member's u8 town slot (no bounds checks in the scan).
    let domestic: [bool; 256] = std::array::from_fn(|t| {
        world.towns.get(t).is_some_and(|&t| match &world.entity(t).kind {
            EntityKind::Town { country, .. } => Some(country) == index.home_country.as_ref(),
            _ => false,
        })
    });
    let weight = volume_weight(event);
    // Per-town local hour at the event, and the posting-rate factor per activity code.
    let hours_now = time.0 as f64 / 3600.0;
    let town_hour: [i32; 256] = std::array::from_fn(|t| {
        if t < world.towns.len() {
            ((hours_now + world.town_offset(t as u8) as f64).rem_euclid(24.0)) as i32 % 24
        } else {
            0
        }
    });
    let rates: [f32; 256] = std::array::from_fn(|code| rate_of(code as u8));
    let prefix = hash3_prefix(master, REACT, key);
    // Affinity and side toward the stakeholders, by the member's team, party and town
    // (summed over stakeholders; one table lookup each instead of a loop per member). The
    // last slot of the entity tables stands for "none".
    let entities = world.entities.len();
    let slot = |e: EntityIdx| (e as usize).min(entities);
    let mut by_team = vec![(0f32, 0f32); entities + 1];
    let mut by_party = vec![(0f32, 0f32); entities + 1];
    let mut by_town = vec![0f32; 256];
    for s in &stakes {
        by_team[slot(s.entity)].0 += 1.0;
        by_team[slot(s.entity)].1 += s.side;
        for &r in &s.rivals {
            if r != s.entity {
                by_team[slot(r)].0 += 0.7;
                by_team[slot(r)].1 -= s.side;
            }
        }
        if s.is_party {
            for (e, x) in by_party[..entities].iter_mut().enumerate() {
                let own = e == s.entity as usize;
                x.0 += if own { 0.8 } else { 0.3 };
                x.1 += if own { s.side } else { -0.5 * s.side };
            }
        }
        if let Some(t) = s.town {
            by_town[t as usize] += 0.3;
        }
    }
    by_team[entities] = (0.0, 0.0);
    // Favourites (people, brands) live outside the member record; they can add at most this.
    let favourite_slack = if needs_favourites { 0.6 * stakes.len() as f32 } else { 0.0 };
    // The state's factors on the probability: a cooldown (at most 1 with the default factor
    // below 1), and mood and involvement, bounded per user by the state's ceilings (in
    // sixteenths; without state, 1).
    let cooldown_max = config.cooldown_factor.max(1.0);
    let (ceilings, no_ceiling) = match state {
        None => (&[][..], 16),
        Some(st) => {
            let most = (REACTION_FACTOR_MAX * INVOLVEMENT_FACTOR_MAX * 16.0 * 1.001).ceil() as u32;
            (st.factor_ceilings().unwrap_or(&[]), most)
        }
    };
    // Audience tags: a mask over the state's tag bits (no state or no known tag: nobody).
    let audience: Option<u8> = (!event.audience.is_empty()).then(|| {
        state.map_or(0, |st| event.audience.iter().filter_map(|t| st.tag_bit(t)).fold(0u8, |m, b| m | 1 << b))
    });
    let bound_factor = impact_rate * weight * cooldown_max * 1.001 / 16.0;
    let reach: [[f32; 256]; 2] = [false, true].map(|affine| {
        std::array::from_fn(|t| match event.impact {
            Impact::Local if !affine => 0.15,
            Impact::National if !domestic[t] => 0.3,
            _ => 1.0,
        })
    });
    // The most any member's bound can be apart from activity, rate and the state's ceiling,
    // for the first test of a draw in `Decider::bound`: interest at most 1, the largest
    // affinity from each table, the largest reach; 1% of margin covers the rounding of the
    // exact bound's products. Capped at 1 (in units of 2^-53).
    let most = |t: &[(f32, f32)]| t.iter().fold(0f32, |m, x| m.max(x.0)) as f64;
    let high = most(&by_team) + most(&by_party) + by_town.iter().fold(0f32, |m, &x| m.max(x)) as f64;
    let widest = reach.iter().flatten().fold(0f32, |m, &x| m.max(x)) as f64;
    let shared = bound_factor as f64 * (0.6 + high + favourite_slack as f64) * widest * 1.01;
    let peak_limit: [u64; 256] = std::array::from_fn(|q| {
        let p = shared * (q as f64 * PEAK_STEP as f64) * (1u64 << 53) as f64;
        p.ceil().min((1u64 << 53) as f64) as u64
    });
    let decider = Decider {
        population,
        config,
        event,
        state,
        hours: &index.hours,
        topics,
        threshold: index.threshold,
        stakes: &stakes,
        stake_ids: stakes.iter().map(|s| s.entity).collect(),
        needs_favourites,
        favourite_slack,
        entities,
        by_team,
        by_party,
        by_town,
        reach,
        peak_limit,
        ceilings,
        no_ceiling,
        sixteenths: std::array::from_fn(|b| ceiling_sixteenths(b as u8)),
        bounded,
        town_hour,
        rates,
        prefix,
        impact_rate,
        weight,
        bound_factor,
        valence_sign,
        minute,
        audience,
    };
    let decider = &decider;
    // Candidates: the topic audiences (a user in several is taken from the first), then
    // stakeholder followers and rival fans outside them. Each user is decided once.
    let mut out: Vec<Reaction> = topics
        .par_iter()
        .enumerate()
        .flat_map(|(k, &t)| index.topic(t).par_chunks(8192).flat_map_iter(move |chunk| decider.scan(chunk, k)))
        .collect();
    let mut extra: Vec<&[Member]> = Vec::new();
    for s in &stakes {
        extra.push(index.entity(s.entity));
        for &r in &s.rivals {
            extra.push(index.entity(r));
        }
    }
    let extra = &extra;
    let more: Vec<Reaction> = extra
        .par_iter()
        .enumerate()
        .flat_map_iter(|(k, list)| {
            list.iter()
                .filter(move |m| {
                    !decider.in_topic(m, topics.len())
                        && !extra[..k].iter().any(|l| l.binary_search_by_key(&m.user, |x| x.user).is_ok())
                })
                .filter_map(|m| decider.decide(m))
        })
        .collect();
    out.extend(more);
    out.par_sort_unstable_by_key(|r| r.user);
    out
}

/// Candidates per batch of [`Decider::finish`] in a scan.
const BATCH: usize = 16;

/// Members per block of the scan's first test.
const PASS_BLOCK: usize = 512;

/// A member whose draw fell under the bound, with what [`Decider::finish`] needs.
struct Candidate<'m> {
    m: &'m Member,
    draw: f64,
    own: (f32, f32),
    interest: f32,
    rates: (f32, f32),
}

/// One event's decision, with its per-event tables: [`Decider::decide`] is a pure function of
/// the member (and the user state).
struct Decider<'a> {
    population: &'a Population,
    config: &'a FilterConfig,
    event: &'a Classification,
    state: Option<&'a UserState>,
    hours: &'a [[f32; 24]],
    topics: &'static [Topic],
    threshold: u8,
    stakes: &'a [Stake],
    stake_ids: Vec<u16>,
    needs_favourites: bool,
    favourite_slack: f32,
    entities: usize,
    /// Affinity and side toward the stakeholders by team and by party (summed over
    /// stakeholders; the last slot stands for "none"), and affinity by town slot.
    by_team: Vec<(f32, f32)>,
    by_party: Vec<(f32, f32)>,
    by_town: Vec<f32>,
    /// Per town slot: the event's reach to a member without and with affinity; the local
    /// hour at the event.
    reach: [[f32; 256]; 2],
    /// By [`Member::peak`]: a limit no draw under a member's bound reaches, in units of
    /// 2^-53 (the draw's resolution), per sixteenth of the state's ceiling.
    peak_limit: [u64; 256],
    /// The state's ceiling bytes ([`UserState::factor_ceilings`]), and the ceiling in
    /// sixteenths of everyone without (no state: 16; state without ceilings: the largest).
    ceilings: &'a [u8],
    no_ceiling: u32,
    /// [`ceiling_sixteenths`] by byte.
    sixteenths: [u32; 256],
    /// False: every draw goes to [`Decider::finish`] (see [`filter_with`]).
    bounded: bool,
    town_hour: [i32; 256],
    /// Posting-rate factor per activity code.
    rates: [f32; 256],
    prefix: u64,
    impact_rate: f32,
    /// The event's [`volume_weight`].
    weight: f32,
    /// The event's rate, weight and largest cooldown factor, with a 0.1% margin, per
    /// sixteenth of the state's ceiling: the part of the probability's upper bound shared by
    /// every member.
    bound_factor: f32,
    valence_sign: f32,
    minute: u32,
    audience: Option<u8>,
}

impl Decider<'_> {
    /// Whether `m` is in the audience of one of the first `upto` topics.
    #[inline]
    fn in_topic(&self, m: &Member, upto: usize) -> bool {
        self.topics[..upto].iter().any(|t| m.interests.get(t.index()) >= self.threshold)
    }

    /// The decisions over one chunk of topic `k`'s audience (members of an earlier topic are
    /// skipped: they were decided there).
    ///
    /// Members under the bound are finished a batch at a time, after loading the lines
    /// [`Decider::finish`] will read for the whole batch (favourites; with user state, the
    /// state cell, history count, persona and town): one scattered cache miss after another
    /// otherwise. The order of the decisions is unchanged.
    fn scan(&self, chunk: &[Member], k: usize) -> Vec<Reaction> {
        let mut out = Vec::new();
        let mut batch: Vec<Candidate> = Vec::with_capacity(BATCH);
        let mut passed = [0u16; PASS_BLOCK];
        for block in chunk.chunks(PASS_BLOCK) {
            // A tight loop over the block for the first test, then the rest for the few that
            // pass it, in order.
            let mut n = 0;
            for (i, m) in block.iter().enumerate() {
                passed[n] = i as u16;
                n += self.first_test(m) as usize;
            }
            for &i in &passed[..n] {
                let m = &block[i as usize];
                if k > 0 && self.in_topic(m, k) {
                    continue;
                }
                if let Some(c) = self.rest(m) {
                    batch.push(c);
                    if batch.len() == BATCH {
                        self.finish_batch(&mut batch, &mut out);
                    }
                }
            }
        }
        self.finish_batch(&mut batch, &mut out);
        out
    }

    /// Finishes the candidates of `batch` in order into `out`, and empties it.
    fn finish_batch(&self, batch: &mut Vec<Candidate>, out: &mut Vec<Reaction>) {
        let c = self.population.columns();
        load_together(batch.iter().map(|cand| {
            let u = cand.m.user;
            let f = if self.needs_favourites { c.affiliations[u as usize].favourites[0] as u32 } else { 0 };
            // With user state, the mood reads the persona and town and the involvement the
            // history's count.
            let s = self.state.map_or(0, |st| st.mood_lines(self.population, u) ^ st.history().len_of(u) as u32);
            f ^ s
        }));
        out.extend(batch.drain(..).filter_map(|c| self.finish(c)));
    }

    #[inline]
    fn own_affinity(&self, m: &Member) -> (f32, f32) {
        let slot = |e: EntityIdx| (e as usize).min(self.entities);
        let (t, p) = (self.by_team[slot(m.team)], self.by_party[slot(m.party)]);
        (t.0 + p.0 + self.by_town[m.town as usize], t.1 + p.1)
    }

    /// The event's reach to `m`: local events reach the unaffiliated less, national ones
    /// foreigners.
    #[inline]
    fn reach(&self, m: &Member, affinity: f32) -> f32 {
        self.reach[(affinity != 0.0) as usize][m.town as usize]
    }

    /// Whether and how `m` reacts. The draw comes first, then an upper bound of the
    /// probability from the member record alone; the lookups outside it (favourites, user
    /// state) happen only below the bound, in [`Decider::finish`]. The decision is exactly the
    /// one without the bound.
    #[inline(always)]
    fn decide(&self, m: &Member) -> Option<Reaction> {
        self.finish(self.bound(m)?)
    }

    /// The first part of [`Decider::decide`]: `None` if the draw is at or above the bound.
    #[inline(always)]
    fn bound<'m>(&self, m: &'m Member) -> Option<Candidate<'m>> {
        if !self.first_test(m) {
            return None;
        }
        self.rest(m)
    }

    /// The member's draw, in units of 2^-53.
    #[inline(always)]
    fn draw(&self, m: &Member) -> u64 {
        hash3_tail(self.prefix, m.user as u64) >> 11
    }

    /// Whether the draw is under a first, loose bound from two bytes: the member's peak
    /// activity and rate, and the state's ceiling for the user. Most draws fail it.
    #[inline(always)]
    fn first_test(&self, m: &Member) -> bool {
        !self.bounded || self.draw(m) < self.peak_limit[m.peak as usize] * self.ceiling(m.user) as u64
    }

    /// User `u`'s state ceiling, in sixteenths.
    #[inline(always)]
    fn ceiling(&self, u: u32) -> u32 {
        self.ceilings.get(u as usize).map_or(self.no_ceiling, |&c| self.sixteenths[c as usize])
    }

    /// The rest of [`Decider::bound`] after [`Decider::first_test`]: audience tags, then the
    /// bound from the whole member record.
    #[inline(always)]
    fn rest<'m>(&self, m: &'m Member) -> Option<Candidate<'m>> {
        if let Some(mask) = self.audience {
            if self.state.is_none_or(|st| st.habits(m.user).tags & mask == 0) {
                return None;
            }
        }
        let ceiling = self.ceiling(m.user);
        let draw = unit_f64(hash3_tail(self.prefix, m.user as u64));
        let (own, own_side) = self.own_affinity(m);
        let interest = match self.topics {
            [t] => m.interests.get(t.index()),
            ts => ts.iter().map(|t| m.interests.get(t.index())).max().unwrap_or(0),
        } as f32
            / 15.0;
        let shifted = (self.town_hour[m.town as usize] - m.hour_shift as i32).rem_euclid(24) as usize;
        let activity = self.hours[m.seed as usize][shifted].min(ACTIVITY_CAP);
        let rate = self.rates[m.ppd as usize];
        let high = own + self.favourite_slack;
        // Factored for a short dependency chain; `bound_factor` carries a 0.1% margin, far
        // above the rounding differences of the reordering.
        let bound =
            (self.bound_factor * ceiling as f32 * (0.6 * interest + high)) * (self.reach(m, high) * (activity * rate));
        if self.bounded && draw >= bound.min(self.config.max_probability) as f64 {
            return None;
        }
        Some(Candidate { m, draw, own: (own, own_side), interest, rates: (activity, rate) })
    }

    /// The exact decision for a draw below the bound.
    #[inline(never)]
    fn finish(&self, c: Candidate) -> Option<Reaction> {
        let Candidate { m, draw, own, interest, rates: (activity, rate) } = c;
        let u = m.user;
        let i = u as usize;
        let c = self.population.columns();
        debug_assert_eq!(m.team, c.affiliations[i].team);
        let (affinity, side) = if self.needs_favourites {
            let favourites = c.affiliations[i].favourites;
            let (n, side) = self
                .stakes
                .iter()
                .filter(|s| favourites.contains(&s.entity))
                .fold((0f32, 0f32), |(n, side), s| (n + 1.0, side + s.side));
            (own.0 + 0.6 * n, own.1 + side)
        } else {
            own
        };
        let reach = self.reach(m, affinity);
        let mut p = self.impact_rate * (0.6 * interest + affinity) * reach * activity * rate * self.weight;
        if let Some(st) = self.state {
            if st.cooling(u, self.minute) {
                p *= self.config.cooldown_factor;
            }
            p *= st.mood(self.population, u, self.minute).reaction_factor() * st.involvement_factor(u, &self.stake_ids);
        }
        let p = p.min(self.config.max_probability);
        if draw >= p as f64 {
            return None;
        }
        // Stance: the event's valence from the user's side, softened by agreeableness.
        let side = if side == 0.0 { 1.0 } else { side.signum() };
        let temper = 0.7 + 0.3 * (1.0 - dq8(m.agreeable));
        let stance = (self.valence_sign * side * (0.3 + self.event.intensity) * temper).clamp(-1.0, 1.0);
        Some(Reaction { user: UserId(u), stance: (stance * 127.0) as i8, engagement: (p * 255.0) as u8 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Pipeline;
    use crate::events::parse_events_numbered;
    use crate::state::{ceiling_sixteenths, MoodNow};
    use crate::{SeedSet, World};

    /// The bounds never turn a reaction away: over the demo's events, with the user state
    /// they build (moods, fatigue, histories, cooldowns), the bounded filter decides exactly
    /// as the exhaustive one; and every user's state factors stay under their ceiling.
    #[test]
    fn bounds_change_no_decision() {
        let world = World::embedded().expect("world");
        let seeds = SeedSet::embedded(&world).expect("seeds");
        let population = Population::generate(&seeds, &world, 20_000, 7).expect("population");
        let mut pipeline = Pipeline::new(population.clone()).expect("pipeline");
        let config = FilterConfig::default();
        let index = AudienceIndex::new(&population, &config);
        let text = include_bytes!("../examples/events/demo.jsonl");
        let all: Vec<u16> = (0..world.entities.len() as u16).collect();
        let mut reactions = 0;
        for (i, (line, event)) in parse_events_numbered(text).into_iter().enumerate() {
            let event = event.expect("demo event");
            let class = pipeline.classifier().classify(&event, line).expect("classified");
            let state = Some(pipeline.state());
            let bounded = filter(&population, &index, &config, &class, event.time, state);
            let exhaustive = filter_with(&population, &index, &config, &class, event.time, state, false);
            assert_eq!(bounded, exhaustive, "event {}", event.id);
            reactions += bounded.len();
            // Without state too.
            let (a, b) = (
                filter(&population, &index, &config, &class, event.time, None),
                filter_with(&population, &index, &config, &class, event.time, None, false),
            );
            assert_eq!(a, b, "event {} without state", event.id);
            pipeline.process(&event, i as u32, line).expect("processed");
            let state = pipeline.state();
            let ceilings = state.factor_ceilings().expect("exact ceilings");
            let minute = crate::state::minute_of(event.time);
            for u in 0..population.len() as u32 {
                let most = ceiling_sixteenths(ceilings[u as usize]) as f32 / 16.0;
                for later in [minute, minute + 90, minute + 600, minute + 1000] {
                    let m: MoodNow = state.mood(&population, u, later);
                    let factor = m.reaction_factor() * state.involvement_factor(u, &all);
                    assert!(factor <= most, "user {u} at minute {later}: {factor} over the ceiling {most}");
                }
            }
        }
        assert!(reactions > 1_000, "the demo draws reactions ({reactions})");
    }
}
