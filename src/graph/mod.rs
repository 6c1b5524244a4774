//! The relationship graph: directed, typed, weighted edges between users, stored as CSR in both
//! directions with `u32` ids.
//!
//! Layout per edge: 4 bytes target in the out-lists, 1 byte kind-and-weight beside it, 4 bytes
//! source in the in-lists: 9 bytes counting both directions. Offsets are `u64` per user.
//!
//! Invariants: every out-list and in-list is sorted ascending and free of duplicates and
//! self-loops; `in` is exactly the transpose of `out`.

pub(crate) mod build;

use crate::ids::UserId;

/// The kind of a directed tie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum EdgeKind {
    /// Plain follow (interest, fandom, town, celebrity).
    Follows = 0,
    /// Mutual friend from the same friend circle.
    Friend = 1,
    /// Colleague from the same workplace.
    Colleague = 2,
    /// Follows someone of the opposing camp to argue.
    Rival = 3,
}

impl EdgeKind {
    /// All kinds, by code.
    pub const ALL: [EdgeKind; 4] = [EdgeKind::Follows, EdgeKind::Friend, EdgeKind::Colleague, EdgeKind::Rival];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        ["follows", "friend", "colleague", "rival"][self as usize]
    }
}

/// Packs a kind and a weight in `[0, 1]` into one byte (2 bits kind, 6 bits weight).
#[inline]
pub fn pack_meta(kind: EdgeKind, weight: f32) -> u8 {
    let w = (weight.clamp(0.0, 1.0) * 63.0 + 0.5) as u8;
    ((kind as u8) << 6) | w
}

/// Unpacks a meta byte into kind and weight.
#[inline]
pub fn unpack_meta(meta: u8) -> (EdgeKind, f32) {
    (EdgeKind::ALL[(meta >> 6) as usize], (meta & 63) as f32 / 63.0)
}

/// One out-edge as seen from its source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edge {
    /// The followed user.
    pub target: UserId,
    /// What kind of tie.
    pub kind: EdgeKind,
    /// Tie strength in `[0, 1]` (6-bit precision).
    pub weight: f32,
}

/// Compressed sparse rows in both directions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub(crate) out_offsets: Vec<u64>,
    pub(crate) out_targets: Vec<u32>,
    pub(crate) out_meta: Vec<u8>,
    pub(crate) in_offsets: Vec<u64>,
    pub(crate) in_sources: Vec<u32>,
}

impl Graph {
    /// Number of users (nodes).
    pub fn users(&self) -> usize {
        self.out_offsets.len().saturating_sub(1)
    }

    /// Number of directed edges.
    pub fn edges(&self) -> u64 {
        self.out_targets.len() as u64
    }

    #[inline]
    fn out_range(&self, u: UserId) -> std::ops::Range<usize> {
        let i = u.index();
        self.out_offsets[i] as usize..self.out_offsets[i + 1] as usize
    }

    #[inline]
    fn in_range(&self, u: UserId) -> std::ops::Range<usize> {
        let i = u.index();
        self.in_offsets[i] as usize..self.in_offsets[i + 1] as usize
    }

    /// Ids `u` follows, ascending. Panics if `u` is out of range.
    #[inline]
    pub fn following(&self, u: UserId) -> &[u32] {
        &self.out_targets[self.out_range(u)]
    }

    /// Ids following `u`, ascending. Panics if `u` is out of range.
    #[inline]
    pub fn followers(&self, u: UserId) -> &[u32] {
        &self.in_sources[self.in_range(u)]
    }

    /// Out-degree (following count).
    #[inline]
    pub fn out_degree(&self, u: UserId) -> u32 {
        self.out_range(u).len() as u32
    }

    /// In-degree (follower count).
    #[inline]
    pub fn in_degree(&self, u: UserId) -> u32 {
        self.in_range(u).len() as u32
    }

    /// Out-edges of `u` with kind and weight.
    pub fn out_edges(&self, u: UserId) -> impl Iterator<Item = Edge> + '_ {
        let r = self.out_range(u);
        self.out_targets[r.clone()].iter().zip(&self.out_meta[r]).map(|(&t, &m)| {
            let (kind, weight) = unpack_meta(m);
            Edge { target: UserId(t), kind, weight }
        })
    }

    /// The edge `u -> v`, if present (binary search in `u`'s out-list).
    pub fn edge(&self, u: UserId, v: UserId) -> Option<Edge> {
        let r = self.out_range(u);
        let pos = self.out_targets[r.clone()].binary_search(&v.0).ok()?;
        let (kind, weight) = unpack_meta(self.out_meta[r.start + pos]);
        Some(Edge { target: v, kind, weight })
    }

    /// Bytes held by the edge arrays and offsets.
    pub fn heap_bytes(&self) -> usize {
        self.out_offsets.len() * 8
            + self.in_offsets.len() * 8
            + self.out_targets.len() * 4
            + self.out_meta.len()
            + self.in_sources.len() * 4
    }

    /// Number of edges `u -> v` whose reverse `v -> u` also exists, for every `u` (merge join of
    /// each user's sorted out- and in-lists).
    pub fn reciprocal_edges(&self) -> u64 {
        use rayon::prelude::*;
        (0..self.users() as u32)
            .into_par_iter()
            .map(|u| {
                let (a, b) = (self.following(UserId(u)), self.followers(UserId(u)));
                let (mut i, mut j, mut n) = (0, 0, 0u64);
                while i < a.len() && j < b.len() {
                    match a[i].cmp(&b[j]) {
                        std::cmp::Ordering::Less => i += 1,
                        std::cmp::Ordering::Greater => j += 1,
                        std::cmp::Ordering::Equal => {
                            n += 1;
                            i += 1;
                            j += 1;
                        }
                    }
                }
                n
            })
            .sum()
    }

    /// Builds a petgraph graph of the subgraph induced by `users` (repeated ids count once; node weights are the
    /// [`UserId`]s, edge weights the [`Edge`]s), for algorithms that need one.
    pub fn to_petgraph(&self, users: &[UserId]) -> petgraph::Graph<UserId, Edge> {
        let mut g = petgraph::Graph::with_capacity(users.len(), 0);
        let mut index = std::collections::HashMap::with_capacity(users.len());
        let mut nodes = Vec::with_capacity(users.len());
        for &u in users {
            index.entry(u).or_insert_with(|| {
                nodes.push(u);
                g.add_node(u)
            });
        }
        for &u in &nodes {
            for e in self.out_edges(u) {
                if let (Some(&a), Some(&b)) = (index.get(&u), index.get(&e.target)) {
                    g.add_edge(a, b, e);
                }
            }
        }
        g
    }

    /// Checks the CSR invariants (sorted, no duplicates or self-loops, in = transpose of out).
    /// Linear time; used by tests and after loading snapshots.
    pub fn check(&self) -> Result<(), String> {
        let n = self.users();
        if self.in_offsets.len() != n + 1 || self.out_meta.len() != self.out_targets.len() {
            return Err("array lengths disagree".into());
        }
        if self.out_offsets.first() != Some(&0) || self.in_offsets.first() != Some(&0) {
            return Err("offsets must start at 0".into());
        }
        if *self.out_offsets.last().unwrap_or(&0) as usize != self.out_targets.len()
            || *self.in_offsets.last().unwrap_or(&0) as usize != self.in_sources.len()
            || self.out_targets.len() != self.in_sources.len()
        {
            return Err("offsets do not match edge counts".into());
        }
        let mut in_deg = vec![0u64; n];
        for u in 0..n {
            if self.out_offsets[u] > self.out_offsets[u + 1] || self.in_offsets[u] > self.in_offsets[u + 1] {
                return Err(format!("offsets decrease at user {u}"));
            }
            let list = self.following(UserId(u as u32));
            for w in list.windows(2) {
                if w[0] >= w[1] {
                    return Err(format!("out-list of {u} not strictly ascending"));
                }
            }
            for &v in list {
                if v as usize >= n || v as usize == u {
                    return Err(format!("bad target {v} in out-list of {u}"));
                }
                in_deg[v as usize] += 1;
            }
        }
        for (v, &d) in in_deg.iter().enumerate() {
            if self.in_degree(UserId(v as u32)) as u64 != d {
                return Err(format!("in-degree of {v} disagrees with out-lists"));
            }
            let list = self.followers(UserId(v as u32));
            for w in list.windows(2) {
                if w[0] >= w[1] {
                    return Err(format!("in-list of {v} not strictly ascending"));
                }
            }
            for &u in list {
                if u as usize >= n || self.edge(UserId(u), UserId(v as u32)).is_none() {
                    return Err(format!("in-edge {u}->{v} has no out-edge"));
                }
            }
        }
        Ok(())
    }
}
