//! Statistics of a population and its graph: degree distributions, the fitted power-law
//! exponent of the follower distribution, reciprocity, community sizes and homophily.
//!
//! Invariant: pure functions of the population; deterministic (sampling uses fixed strides and
//! counter-based randomness).

use crate::graph::EdgeKind;
use crate::ids::UserId;
use crate::population::Population;
use crate::rng::{hash3, Stream};
use rayon::prelude::*;
use serde::Serialize;

/// Percentiles of a degree distribution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
    /// 99.9th percentile.
    pub p999: u32,
    /// Maximum.
    pub max: u32,
}

impl Percentiles {
    /// From a histogram `counts[d]` = number of nodes with degree `d`.
    pub fn from_histogram(counts: &[u64]) -> Percentiles {
        let total: u64 = counts.iter().sum();
        let sum: f64 = counts.iter().enumerate().map(|(d, &c)| d as f64 * c as f64).sum();
        let at = |q: f64| -> u32 {
            let rank = ((total as f64 * q).ceil() as u64).max(1);
            let mut acc = 0;
            for (d, &c) in counts.iter().enumerate() {
                acc += c;
                if acc >= rank {
                    return d as u32;
                }
            }
            counts.len().saturating_sub(1) as u32
        };
        Percentiles {
            mean: if total > 0 { sum / total as f64 } else { 0.0 },
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: counts.iter().rposition(|&c| c > 0).unwrap_or(0) as u32,
        }
    }
}

/// A discrete power-law fit of a distribution's tail (Clauset, Shalizi & Newman 2009).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PowerLawFit {
    /// Fitted exponent alpha of `P(k) ~ k^-alpha` for `k >= xmin`.
    pub alpha: f64,
    /// Start of the tail, chosen to minimise the Kolmogorov-Smirnov distance.
    pub xmin: u32,
    /// Nodes in the tail.
    pub tail: u64,
    /// The KS distance at `xmin`.
    pub ks: f64,
}

/// Fits a power law to the tail of a degree histogram. `xmin` is scanned over values with at
/// least 100 nodes at or above them; alpha uses the discrete approximation
/// `1 + n / sum(ln(k / (xmin - 0.5)))`.
pub fn fit_power_law(counts: &[u64]) -> Option<PowerLawFit> {
    let maxd = counts.iter().rposition(|&c| c > 0)?;
    // Suffix sums for tail sizes and sum of logs.
    let mut best: Option<PowerLawFit> = None;
    let mut candidates: Vec<usize> = Vec::new();
    let mut x = 1.0f64;
    while (x as usize) <= maxd {
        candidates.push(x as usize);
        x = (x * 1.08).max(x + 1.0);
    }
    for &xmin in &candidates {
        let n: u64 = counts[xmin..=maxd].iter().sum();
        if n < 100 {
            break;
        }
        let denom = xmin as f64 - 0.5;
        let s: f64 = (xmin..=maxd).map(|k| counts[k] as f64 * (k as f64 / denom).ln()).sum();
        if s <= 0.0 {
            continue;
        }
        let alpha = 1.0 + n as f64 / s;
        // KS distance between empirical and fitted CCDF, checked on both sides of every jump
        // of the empirical CCDF (the only places the supremum can occur).
        let mut ks: f64 = 0.0;
        let mut above = n as f64;
        for (k, &c) in counts.iter().enumerate().take(maxd + 1).skip(xmin) {
            if c == 0 {
                continue;
            }
            let fit = ((k as f64 - 0.5) / denom).powf(1.0 - alpha);
            let fit_next = ((k as f64 + 0.5) / denom).powf(1.0 - alpha);
            ks = ks.max((above / n as f64 - fit).abs());
            above -= c as f64;
            ks = ks.max((above / n as f64 - fit_next).abs());
        }
        if best.as_ref().is_none_or(|b| ks < b.ks) {
            best = Some(PowerLawFit { alpha, xmin: xmin as u32, tail: n, ks });
        }
    }
    best
}

/// Size summary of a family of communities.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sizes {
    /// Number of communities.
    pub count: u64,
    /// Mean size.
    pub mean: f64,
    /// Median size.
    pub p50: u32,
    /// Largest.
    pub max: u32,
}

impl Sizes {
    fn of(mut sizes: Vec<u32>) -> Sizes {
        sizes.retain(|&s| s > 0);
        sizes.sort_unstable();
        let count = sizes.len() as u64;
        Sizes {
            count,
            mean: if count > 0 { sizes.iter().map(|&s| s as f64).sum::<f64>() / count as f64 } else { 0.0 },
            p50: sizes.get(sizes.len() / 2).copied().unwrap_or(0),
            max: sizes.last().copied().unwrap_or(0),
        }
    }
}

/// Community sizes by family.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommunityStats {
    /// Friend circles.
    pub circles: Sizes,
    /// Workplaces.
    pub workplaces: Sizes,
    /// Towns.
    pub towns: Sizes,
    /// Fandoms (team supporters).
    pub fandoms: Sizes,
    /// Parties.
    pub parties: Sizes,
}

/// Share of edges whose two ends share a community, and the same for random pairs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Homophily {
    /// Edges examined (all edges of the sampled sources).
    pub edges: u64,
    /// Share in the same friend circle.
    pub circle: f64,
    /// Share in the same workplace.
    pub workplace: f64,
    /// Share in the same town.
    pub town: f64,
    /// Share supporting the same team (among edges whose source has one).
    pub team: f64,
    /// Share in the same party (among edges whose source has one).
    pub party: f64,
    /// Share with the same main topic.
    pub topic: f64,
    /// Share sharing any of: circle, workplace, town, team, party, main topic.
    pub any: f64,
    /// The `any` share for uniformly random pairs: the no-homophily baseline.
    pub any_random: f64,
}

/// Everything `chorus population` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PopulationStats {
    /// Users.
    pub users: u64,
    /// Directed edges.
    pub edges: u64,
    /// Edges by kind, in [`EdgeKind::ALL`] order.
    pub edges_by_kind: Vec<(String, u64)>,
    /// Following counts.
    pub out_degree: Percentiles,
    /// Follower counts.
    pub in_degree: Percentiles,
    /// Power-law fit of the follower distribution.
    pub in_degree_power_law: Option<PowerLawFit>,
    /// Share of edges whose reverse exists.
    pub reciprocity: f64,
    /// Community sizes.
    pub communities: CommunityStats,
    /// Homophily of edges.
    pub homophily: Homophily,
    /// Bytes of profile state per user.
    pub bytes_per_user: f64,
    /// Bytes of graph storage per edge, both directions, offsets excluded.
    pub bytes_per_edge: f64,
}

fn histogram(n: usize, degree: impl Fn(u32) -> u32 + Sync + Send) -> Vec<u64> {
    let degrees: Vec<u32> = (0..n as u32).into_par_iter().map(degree).collect();
    let max = degrees.iter().copied().max().unwrap_or(0) as usize;
    let mut counts = vec![0u64; max + 1];
    for d in degrees {
        counts[d as usize] += 1;
    }
    counts
}

/// Computes the statistics. Homophily is measured on the edges of at most 200,000 sources
/// (a fixed stride) and 1,000,000 random pairs.
pub fn population_stats(p: &Population) -> PopulationStats {
    let g = p.graph();
    let n = p.len();
    let out_h = histogram(n, |u| g.out_degree(UserId(u)));
    let in_h = histogram(n, |u| g.in_degree(UserId(u)));
    let mut by_kind = [0u64; 4];
    for &m in &g.out_meta {
        by_kind[(m >> 6) as usize] += 1;
    }
    let reciprocity = if g.edges() > 0 { g.reciprocal_edges() as f64 / g.edges() as f64 } else { 0.0 };
    PopulationStats {
        users: n as u64,
        edges: g.edges(),
        edges_by_kind: EdgeKind::ALL.iter().map(|k| (k.name().to_string(), by_kind[*k as usize])).collect(),
        out_degree: Percentiles::from_histogram(&out_h),
        in_degree: Percentiles::from_histogram(&in_h),
        in_degree_power_law: fit_power_law(&in_h),
        reciprocity,
        communities: community_stats(p),
        homophily: homophily(p),
        bytes_per_user: p.column_bytes() as f64 / n.max(1) as f64,
        bytes_per_edge: if g.edges() > 0 {
            (g.out_targets.len() * 4 + g.out_meta.len() + g.in_sources.len() * 4) as f64 / g.edges() as f64
        } else {
            0.0
        },
    }
}

fn community_stats(p: &Population) -> CommunityStats {
    let c = p.columns();
    let world = p.world();
    let mut workplaces = vec![0u32; p.workplaces() as usize];
    for &w in &c.workplace {
        if let Some(s) = workplaces.get_mut(w as usize) {
            *s += 1;
        }
    }
    let mut fandoms = vec![0u32; world.entities.len()];
    let mut parties = vec![0u32; world.entities.len()];
    for a in &c.affiliations {
        if let Some(s) = fandoms.get_mut(a.team as usize) {
            *s += 1;
        }
        if let Some(s) = parties.get_mut(a.party as usize) {
            *s += 1;
        }
    }
    CommunityStats {
        circles: Sizes::of((0..p.circles() as u32).map(|k| p.circle_members(k).len() as u32).collect()),
        workplaces: Sizes::of(workplaces),
        towns: Sizes::of(p.town_sizes()),
        fandoms: Sizes::of(fandoms),
        parties: Sizes::of(parties),
    }
}

/// Which communities `u` and `v` share: circle, workplace, town, team, party, topic.
fn shared(p: &Population, u: usize, v: usize) -> [bool; 6] {
    let c = p.columns();
    let (au, av) = (&c.affiliations[u], &c.affiliations[v]);
    let none = crate::world::NO_ENTITY;
    [
        c.circle[u] == c.circle[v],
        c.workplace[u] == c.workplace[v],
        c.demographics[u].town == c.demographics[v].town,
        au.team != none && au.team == av.team,
        au.party != none && au.party == av.party,
        c.interests[u].primary() == c.interests[v].primary(),
    ]
}

fn homophily(p: &Population) -> Homophily {
    let n = p.len();
    let g = p.graph();
    let stride = n.div_ceil(200_000).max(1);
    let c = p.columns();
    let none = crate::world::NO_ENTITY;
    // counts: 6 shared kinds, any, edges, edges with team source, edges with party source
    let counts = (0..n)
        .into_par_iter()
        .step_by(stride)
        .map(|u| {
            let mut k = [0u64; 10];
            for &v in g.following(UserId(u as u32)) {
                let s = shared(p, u, v as usize);
                for i in 0..6 {
                    k[i] += s[i] as u64;
                }
                k[6] += s.iter().any(|&b| b) as u64;
                k[7] += 1;
                k[8] += (c.affiliations[u].team != none) as u64;
                k[9] += (c.affiliations[u].party != none) as u64;
            }
            k
        })
        .reduce(|| [0u64; 10], |a, b| std::array::from_fn(|i| a[i] + b[i]));
    let pairs = 1_000_000u64;
    let random_any = (0..pairs)
        .into_par_iter()
        .filter(|&k| {
            let mut rng = Stream::new(hash3(p.config().seed, 99, 0, 0), 99, k, 0);
            let (u, v) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
            shared(p, u, v).iter().any(|&b| b)
        })
        .count() as f64
        / pairs as f64;
    let share = |x: u64, of: u64| if of > 0 { x as f64 / of as f64 } else { 0.0 };
    Homophily {
        edges: counts[7],
        circle: share(counts[0], counts[7]),
        workplace: share(counts[1], counts[7]),
        town: share(counts[2], counts[7]),
        team: share(counts[3], counts[8]),
        party: share(counts[4], counts[9]),
        topic: share(counts[5], counts[7]),
        any: share(counts[6], counts[7]),
        any_random: random_any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_small_histogram() {
        // degrees: 1,1,2,3,10
        let mut h = vec![0u64; 11];
        h[1] = 2;
        h[2] = 1;
        h[3] = 1;
        h[10] = 1;
        let p = Percentiles::from_histogram(&h);
        assert_eq!((p.p50, p.max), (2, 10));
        assert!((p.mean - 3.4).abs() < 1e-9);
    }

    #[test]
    fn power_law_fit_recovers_a_known_exponent() {
        // Sample a discrete power law with alpha = 2.3 by inverse transform.
        let alpha = 2.3f64;
        let mut counts = vec![0u64; 1];
        let mut rng = Stream::new(5, 5, 5, 5);
        for _ in 0..200_000 {
            let u = 1.0 - rng.f64();
            let k = ((10.0 - 0.5) * u.powf(-1.0 / (alpha - 1.0)) + 0.5).floor() as usize;
            if k >= counts.len() {
                counts.resize(k + 1, 0);
            }
            counts[k] += 1;
        }
        let fit = fit_power_law(&counts).unwrap();
        assert!((fit.alpha - alpha).abs() < 0.1, "{fit:?}");
    }
}
