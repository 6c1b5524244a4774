//! Directed relationships between users, moved by interactions and drifting back to neutral.
//!
//! Weights (documented defaults, `RelationWeights`): like +0.10, repost +0.15, friendly reply
//! +0.20, friendly quote +0.15, GIF reply +0.10; hostile reply −0.20, hostile quote −0.30,
//! hostile GIF −0.15 (hostile: the action's sentiment opposes the post it answers). The weight
//! stays in [−1, 1] and halves toward 0 every `half_life_days` of game time without
//! interaction. Labels come from the weight and the history: `idolizes` (≥ 0.6, mostly one
//! way), `friend` (≥ 0.3), `rival` (≤ −0.3 with at least 3 hostile actions, and returned),
//! `disrespects` (≤ −0.3), `neutral` otherwise. A weight reaching `follow_at` (0.5) makes
//! its owner follow the other user, one reaching `unfollow_at` (−0.3) unfollow them
//! ([`super::follows`]).
//!
//! Invariant: each user keeps at most `MAX_PER_USER` relationships (the weakest is forgotten),
//! so memory is bounded by users × that; one that has faded below `forget_below` is
//! forgotten at the daily sweep ([`Relations::forget`]); every update is ordered and
//! deterministic.

use super::IdMap;
use rayon::prelude::*;

/// Most relationships remembered per user.
pub const MAX_PER_USER: usize = 32;

/// How much each interaction moves a relationship.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelationWeights {
    /// A like.
    pub like: f32,
    /// A repost.
    pub repost: f32,
    /// A reply on the same side.
    pub reply: f32,
    /// A quote on the same side.
    pub quote: f32,
    /// A GIF reply on the same side.
    pub gif: f32,
    /// A reply against the post answered.
    pub hostile_reply: f32,
    /// A quote against the post quoted.
    pub hostile_quote: f32,
    /// A GIF against the post answered.
    pub hostile_gif: f32,
    /// Days of game time without interaction for a weight to halve.
    pub half_life_days: f32,
    /// A weight at or above this makes its owner follow the other user (see
    /// [`super::follows`]).
    pub follow_at: f32,
    /// A weight at or below this makes its owner unfollow the other user.
    pub unfollow_at: f32,
    /// Retention: a relationship whose weight has drifted below this (in absolute value) is
    /// forgotten at the next daily sweep (default 0.02: a single like, +0.10, is forgotten
    /// after about 16 days without interaction; 0 keeps every relationship).
    pub forget_below: f32,
}

impl Default for RelationWeights {
    fn default() -> Self {
        RelationWeights {
            like: 0.10,
            repost: 0.15,
            reply: 0.20,
            quote: 0.15,
            gif: 0.10,
            hostile_reply: -0.20,
            hostile_quote: -0.30,
            hostile_gif: -0.15,
            half_life_days: 7.0,
            follow_at: 0.5,
            unfollow_at: -0.3,
            forget_below: 0.02,
        }
    }
}

/// One directed relationship (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Relation {
    /// The other user.
    pub other: u32,
    /// Game minute of the last interaction.
    pub minute: u32,
    /// Weight in thousandths, −1000..=1000, as of `minute`.
    pub weight: i16,
    /// Hostile actions toward them (saturating).
    pub hostile: u8,
    /// Friendly actions toward them (saturating).
    pub friendly: u8,
    /// Padding, zero.
    pub reserved: u32,
}

/// What a relationship amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Admires them, mostly one way.
    Idolizes,
    /// Friendly.
    Friend,
    /// Nothing much.
    Neutral,
    /// Looks down on them.
    Disrespects,
    /// A returned feud.
    Rival,
}

impl Label {
    /// The label as a word ("friend", "rival", ...), as it is serialised.
    pub fn word(self) -> &'static str {
        match self {
            Label::Idolizes => "idolizes",
            Label::Friend => "friend",
            Label::Neutral => "neutral",
            Label::Disrespects => "disrespects",
            Label::Rival => "rival",
        }
    }
}

/// Users per shard. The store is split by user-id range so that the state update can change
/// different users' relationships on different threads (see [`super::UserState::apply`]).
pub const SHARD: usize = 1 << 14;

/// One shard's lists: users `s·SHARD .. (s+1)·SHARD`.
pub(crate) type Shard = IdMap<Vec<Relation>>;

/// The relationships of all users.
#[derive(Clone, Debug, Default)]
pub struct Relations {
    shards: Vec<Shard>,
}

/// Weight after drifting from `minute` to `now` with the given half-life.
pub fn drifted(weight: i16, minute: u32, now: u32, half_life_days: f32) -> f32 {
    if now <= minute {
        // No time passed (common within a burst): the same value, without the library call.
        return weight as f32 / 1000.0;
    }
    let days = (now - minute) as f32 / 1440.0;
    weight as f32 / 1000.0 * 0.5f32.powf(days / half_life_days.max(0.01))
}

impl Relations {
    /// No relationships.
    pub fn new() -> Relations {
        Relations::default()
    }

    /// Forgets every relationship, freeing the per-user lists in parallel.
    pub fn clear(&mut self) {
        std::mem::take(&mut self.shards).into_par_iter().for_each(drop);
    }

    /// User `a`'s relationships (raw, weights as of each one's last interaction).
    pub fn of(&self, a: u32) -> &[Relation] {
        self.shards.get(a as usize / SHARD).and_then(|m| m.get(&a)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The shards, at least enough for `users` users.
    pub(crate) fn shards_mut(&mut self, users: usize) -> &mut [Shard] {
        if self.shards.len() < users.div_ceil(SHARD) {
            self.shards.resize_with(users.div_ceil(SHARD), Shard::default);
        }
        &mut self.shards
    }

    fn list_mut(&mut self, a: u32) -> &mut Vec<Relation> {
        let s = a as usize / SHARD;
        self.shards_mut((s + 1) * SHARD)[s].entry(a).or_insert_with(|| Vec::with_capacity(4))
    }

    /// The current weight of `a` toward `b` at game minute `now`.
    pub fn weight(&self, a: u32, b: u32, now: u32, w: &RelationWeights) -> f32 {
        self.of(a)
            .iter()
            .find(|r| r.other == b)
            .map(|r| drifted(r.weight, r.minute, now, w.half_life_days))
            .unwrap_or(0.0)
    }

    /// The label of `a` toward `b` at `now`.
    pub fn label(&self, a: u32, b: u32, now: u32, w: &RelationWeights) -> Label {
        let Some(r) = self.of(a).iter().find(|r| r.other == b) else { return Label::Neutral };
        label_of(r, self.weight(b, a, now, w), now, w)
    }

    /// Applies one interaction of `a` toward `b` at `now` with weight change `delta`.
    pub fn interact(&mut self, a: u32, b: u32, now: u32, delta: f32, w: &RelationWeights) {
        if a == b {
            return;
        }
        interact_in(self.list_mut(a), b, now, delta, w);
    }

    /// Number of users with at least one relationship.
    pub fn users(&self) -> usize {
        self.shards.iter().map(|m| m.len()).sum()
    }

    /// Number of relationships.
    pub fn len(&self) -> usize {
        self.shards.iter().flat_map(|m| m.values()).map(Vec::len).sum()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|m| m.is_empty())
    }

    /// Returned feuds at `now`: pairs (a < b) labelled rival both ways.
    pub fn feuds(&self, now: u32, w: &RelationWeights) -> usize {
        self.feuding(now, w).count()
    }

    /// The returned feuds at `now`, as pairs (a < b) in ascending order.
    pub fn feud_pairs(&self, now: u32, w: &RelationWeights) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = self.feuding(now, w).collect();
        out.sort_unstable();
        out
    }

    /// The returned feuds at `now`, in storage order.
    fn feuding<'a>(&'a self, now: u32, w: &'a RelationWeights) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.shards.iter().flatten().flat_map(move |(&a, list)| {
            list.iter()
                .filter(move |r| {
                    a < r.other
                        && self.label(a, r.other, now, w) == Label::Rival
                        && self.label(r.other, a, now, w) == Label::Rival
                })
                .map(move |r| (a, r.other))
        })
    }

    /// Forgets every relationship whose weight at `now` is below `w.forget_below` in absolute
    /// value, and the users left with none. Parallel over shards; returns how many went.
    pub fn forget(&mut self, now: u32, w: &RelationWeights) -> usize {
        if w.forget_below <= 0.0 {
            return 0;
        }
        self.shards
            .par_iter_mut()
            .map(|shard| {
                let mut gone = 0;
                shard.retain(|_, list| {
                    let before = list.len();
                    list.retain(|r| drifted(r.weight, r.minute, now, w.half_life_days).abs() >= w.forget_below);
                    gone += before - list.len();
                    if list.len() * 4 < list.capacity() {
                        list.shrink_to(list.len().max(4));
                    }
                    !list.is_empty()
                });
                gone
            })
            .sum()
    }

    /// Bytes held (approximate).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|m| m.capacity() * 32 + m.values().map(|v| v.capacity() * 16).sum::<usize>()).sum()
    }

    /// All relationships sorted by (user, other), for snapshots.
    pub(crate) fn flat(&self) -> Vec<(u32, Relation)> {
        let mut out: Vec<(u32, Relation)> =
            self.shards.iter().flatten().flat_map(|(&a, list)| list.iter().map(move |&r| (a, r))).collect();
        out.sort_unstable_by_key(|(a, r)| (*a, r.other));
        out
    }

    /// Rebuilds from [`Relations::flat`]'s output. Nothing depends on the order of a user's
    /// list (every choice over it breaks ties by id), so a restored store behaves exactly like
    /// the one saved.
    pub(crate) fn from_flat(items: Vec<(u32, Relation)>) -> Relations {
        let mut out = Relations::new();
        for (a, r) in items {
            out.list_mut(a).push(r);
        }
        out
    }
}

/// The label of relationship `r` at `now`, given the other side's weight `back` toward its
/// owner.
pub(crate) fn label_of(r: &Relation, back: f32, now: u32, w: &RelationWeights) -> Label {
    let x = drifted(r.weight, r.minute, now, w.half_life_days);
    if x <= -0.3 && r.hostile >= 3 && back <= -0.1 {
        Label::Rival
    } else if x <= -0.3 {
        Label::Disrespects
    } else if x >= 0.6 && back < 0.3 {
        Label::Idolizes
    } else if x >= 0.3 {
        Label::Friend
    } else {
        Label::Neutral
    }
}

/// Applies one interaction toward `b` at `now` to the owner's `list`. Returns the weight
/// toward `b` at `now` before and after (0 before for a new relationship).
pub(crate) fn interact_in(list: &mut Vec<Relation>, b: u32, now: u32, delta: f32, w: &RelationWeights) -> (f32, f32) {
    let found = list.iter().position(|r| r.other == b);
    let before = found.map_or(0.0, |k| drifted(list[k].weight, list[k].minute, now, w.half_life_days));
    let slot = match found {
        Some(k) => k,
        None => {
            if list.len() >= MAX_PER_USER {
                // Forget the weakest (ties: the oldest, then the lowest id).
                let weakest = (0..list.len())
                    .min_by_key(|&k| {
                        let r = &list[k];
                        let x = drifted(r.weight, r.minute, now, w.half_life_days).abs();
                        ((x * 1000.0) as i32, r.minute, r.other)
                    })
                    .unwrap_or(0);
                list.swap_remove(weakest);
            }
            list.push(Relation { other: b, minute: now, ..Relation::default() });
            list.len() - 1
        }
    };
    let r = &mut list[slot];
    let x = (drifted(r.weight, r.minute, now.max(r.minute), w.half_life_days) + delta).clamp(-1.0, 1.0);
    r.weight = (x * 1000.0).round() as i16;
    r.minute = now.max(r.minute);
    if delta < 0.0 {
        r.hostile = r.hostile.saturating_add(1);
    } else {
        r.friendly = r.friendly.saturating_add(1);
    }
    (before, drifted(r.weight, r.minute, now, w.half_life_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daily sweep forgets what faded below `forget_below` and keeps the rest.
    #[test]
    fn faded_relationships_are_forgotten() {
        let w = RelationWeights::default();
        let mut r = Relations::new();
        r.interact(1, 2, 0, w.like, &w);
        r.interact(1, 3, 0, w.hostile_quote, &w);
        r.interact(4, 5, 0, w.like, &w);
        let day = 1440;
        assert_eq!(r.forget(10 * day, &w), 0, "a like is still 0.037 after 10 days");
        // After 17 days the like (0.10) has drifted to 0.019; the hostile quote (−0.30) to −0.056.
        assert_eq!(r.forget(17 * day, &w), 2);
        assert_eq!(r.len(), 1);
        assert_eq!(r.users(), 1, "users left with none are dropped");
        assert!(r.weight(1, 3, 17 * day, &w) < -0.05);
        assert_eq!(r.weight(1, 2, 17 * day, &w), 0.0);
        let keep = RelationWeights { forget_below: 0.0, ..w.clone() };
        assert_eq!(r.forget(400 * day, &keep), 0, "0 keeps everything");
        assert_eq!(r.forget(400 * day, &w), 1);
        assert!(r.is_empty());
    }

    #[test]
    fn hostility_makes_rivals_and_time_heals() {
        let w = RelationWeights::default();
        let mut r = Relations::new();
        for k in 0..4 {
            r.interact(1, 2, k * 60, w.hostile_quote, &w);
            r.interact(2, 1, k * 60 + 5, w.hostile_reply, &w);
        }
        assert_eq!(r.label(1, 2, 300, &w), Label::Rival);
        assert_eq!(r.label(2, 1, 300, &w), Label::Rival);
        assert_eq!(r.feuds(300, &w), 1);
        assert_eq!(r.feud_pairs(300, &w), vec![(1, 2)]);
        // Four weeks later it has faded.
        assert_eq!(r.label(1, 2, 300 + 28 * 1440, &w), Label::Neutral);
        for k in 0..8 {
            r.interact(3, 4, k, w.like, &w);
        }
        assert_eq!(r.label(3, 4, 10, &w), Label::Idolizes);
    }

    #[test]
    fn lists_are_bounded() {
        let w = RelationWeights::default();
        let mut r = Relations::new();
        for b in 0..100 {
            r.interact(7, 1000 + b, b, w.like * (1 + b % 3) as f32, &w);
        }
        assert_eq!(r.of(7).len(), MAX_PER_USER);
    }
}
