//! Follows and unfollows that arise from relationships, kept as changes over the population's
//! fixed follow graph.
//!
//! Rule (thresholds in [`super::relations::RelationWeights`]): when an interaction lifts user
//! `a`'s weight toward `b` to `follow_at` or above and `a` does not follow `b`, `a` follows
//! `b`; when one drops it to `unfollow_at` or below and `a` follows `b`, `a` unfollows `b`.
//! Only crossings count, so a follow the game changed itself stands until the weight crosses
//! again, and the gap between the thresholds keeps a wavering relationship from flapping.
//!
//! Invariants: each user's list holds at most one change per other user (the latest), sorted
//! by the other user's id; a change always differs from the base graph (a change back to the
//! graph's state removes the entry), so "follows" is the graph with the list applied. The store
//! is sharded by user-id range like [`super::relations`], so the parallel update changes each
//! shard on its own thread.

use super::relations::SHARD;
use super::IdMap;
use crate::graph::Graph;
use crate::ids::UserId;

/// One change to a user's follows (12 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable, serde::Serialize)]
#[repr(C)]
pub struct Change {
    /// The other user.
    pub other: u32,
    /// Game minute of the change.
    pub minute: u32,
    /// 1: now follows them (not in the graph); 0: unfollowed them (in the graph).
    pub follows: u8,
    /// Padding, zero.
    #[serde(skip)]
    pub reserved: [u8; 3],
}

/// One shard's lists: users `s·SHARD .. (s+1)·SHARD`.
pub(crate) type Shard = IdMap<Vec<Change>>;

/// Everyone's changes to the follow graph.
#[derive(Clone, Debug, Default)]
pub struct Follows {
    shards: Vec<Shard>,
}

/// Whether `a` follows `b`: the graph, unless `a`'s `list` of changes says otherwise.
pub(crate) fn follows_in(graph: &Graph, list: &[Change], a: u32, b: u32) -> bool {
    match list.binary_search_by_key(&b, |c| c.other) {
        Ok(k) => list[k].follows == 1,
        Err(_) => graph.following(UserId(a)).binary_search(&b).is_ok(),
    }
}

/// Sets whether `a` follows `b` in `a`'s `list` (the entry is dropped when it matches the
/// graph). True if that changed anything.
pub(crate) fn set_in(graph: &Graph, list: &mut Vec<Change>, a: u32, b: u32, follow: bool, minute: u32) -> bool {
    if follows_in(graph, list, a, b) == follow {
        return false;
    }
    let in_graph = graph.following(UserId(a)).binary_search(&b).is_ok();
    match list.binary_search_by_key(&b, |c| c.other) {
        Ok(k) if in_graph == follow => {
            list.remove(k);
        }
        Ok(k) => list[k] = Change { other: b, minute, follows: follow as u8, reserved: [0; 3] },
        Err(k) => list.insert(k, Change { other: b, minute, follows: follow as u8, reserved: [0; 3] }),
    }
    true
}

impl Follows {
    /// No changes.
    pub fn new() -> Follows {
        Follows::default()
    }

    /// User `a`'s changes, sorted by the other user.
    pub fn of(&self, a: u32) -> &[Change] {
        self.shards.get(a as usize / SHARD).and_then(|m| m.get(&a)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `a` follows `b` now.
    pub fn follows(&self, graph: &Graph, a: u32, b: u32) -> bool {
        follows_in(graph, self.of(a), a, b)
    }

    /// Whom `a` follows now: the graph's list with `a`'s changes applied, sorted.
    pub fn following(&self, graph: &Graph, a: u32) -> Vec<u32> {
        let changes = self.of(a);
        let mut out: Vec<u32> = graph
            .following(UserId(a))
            .iter()
            .copied()
            .filter(|&b| changes.binary_search_by_key(&b, |c| c.other).map_or(true, |k| changes[k].follows == 1))
            .collect();
        out.extend(changes.iter().filter(|c| c.follows == 1).map(|c| c.other));
        out.sort_unstable();
        out
    }

    /// Sets whether `a` follows `b` (from outside the pipeline: the game's own follow button).
    /// True if that changed anything.
    pub fn set(&mut self, graph: &Graph, a: u32, b: u32, follow: bool, minute: u32) -> bool {
        if a == b {
            return false;
        }
        let s = a as usize / SHARD;
        let shard = &mut self.shards_mut((s + 1) * SHARD)[s];
        let list = shard.entry(a).or_default();
        let changed = set_in(graph, list, a, b, follow, minute);
        if list.is_empty() {
            shard.remove(&a);
        }
        changed
    }

    /// The shards, at least enough for `users` users.
    pub(crate) fn shards_mut(&mut self, users: usize) -> &mut [Shard] {
        if self.shards.len() < users.div_ceil(SHARD) {
            self.shards.resize_with(users.div_ceil(SHARD), Shard::default);
        }
        &mut self.shards
    }

    /// (follows added, follows removed) over everyone.
    pub fn counts(&self) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for c in self.shards.iter().flat_map(|m| m.values()).flatten() {
            if c.follows == 1 {
                on += 1;
            } else {
                off += 1;
            }
        }
        (on, off)
    }

    /// Bytes held (approximate).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|m| m.capacity() * 32 + m.values().map(|v| v.capacity() * 12).sum::<usize>()).sum()
    }

    /// All changes sorted by (user, other), for snapshots.
    pub(crate) fn flat(&self) -> Vec<(u32, Change)> {
        let mut out: Vec<(u32, Change)> =
            self.shards.iter().flatten().flat_map(|(&a, list)| list.iter().map(move |&c| (a, c))).collect();
        out.sort_unstable_by_key(|(a, c)| (*a, c.other));
        out
    }

    /// Rebuilds from [`Follows::flat`]'s output; `None` if it is not sorted by (user, other)
    /// without repeats.
    pub(crate) fn from_flat(items: Vec<(u32, Change)>) -> Option<Follows> {
        if !items.windows(2).all(|w| (w[0].0, w[0].1.other) < (w[1].0, w[1].1.other)) {
            return None;
        }
        let mut out = Follows::new();
        for (a, c) in items {
            let s = a as usize / SHARD;
            out.shards_mut((s + 1) * SHARD)[s].entry(a).or_default().push(c);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_over_the_graph_and_vanish_when_undone() {
        // 0 follows 1 and 2 in the graph.
        let graph = Graph {
            out_offsets: vec![0, 2, 2, 2, 3],
            out_targets: vec![1, 2, 0],
            out_meta: vec![0; 3],
            in_offsets: vec![0, 1, 2, 3, 3],
            in_sources: vec![3, 0, 0],
        };
        let mut f = Follows::new();
        assert!(f.follows(&graph, 0, 1) && !f.follows(&graph, 0, 3));
        assert!(f.set(&graph, 0, 3, true, 10));
        assert!(!f.set(&graph, 0, 3, true, 11), "already follows");
        assert!(f.set(&graph, 0, 1, false, 12));
        assert_eq!(f.following(&graph, 0), vec![2, 3]);
        assert_eq!(f.counts(), (1, 1));
        // Following again someone the graph has: the change disappears.
        assert!(f.set(&graph, 0, 1, true, 13));
        assert_eq!(f.of(0).len(), 1);
        let back = Follows::from_flat(f.flat()).unwrap();
        assert_eq!(back.following(&graph, 0), f.following(&graph, 0));
        assert!(!f.set(&graph, 2, 2, true, 1), "no self-follows");
    }
}
