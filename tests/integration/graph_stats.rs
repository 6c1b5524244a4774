//! Shape of the relationship graph at 100k users with default parameters (targets from measured
//! Twitter figures), its structural invariants, edge kinds and the petgraph export.

use crate::common::{generate, pop_20k, sample_ids};
use chorus::stats::{population_stats, PopulationStats};
use chorus::{EdgeKind, Population, UserId};
use std::collections::HashSet;
use std::sync::OnceLock;

fn pop_100k() -> &'static (Population, PopulationStats) {
    static P: OnceLock<(Population, PopulationStats)> = OnceLock::new();
    P.get_or_init(|| {
        let p = generate(100_000, 42);
        let s = population_stats(&p);
        (p, s)
    })
}

#[test]
fn stats_are_consistent_with_the_graph() {
    let (p, s) = pop_100k();
    assert_eq!(s.users, 100_000);
    assert_eq!(s.edges, p.graph().edges());
    assert_eq!(s.edges_by_kind.iter().map(|(_, n)| n).sum::<u64>(), s.edges);
    let kinds: Vec<&str> = s.edges_by_kind.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, EdgeKind::ALL.map(EdgeKind::name));
    let max_following = p.ids().map(|u| p.graph().out_degree(u)).max().unwrap();
    let max_followers = p.ids().map(|u| p.graph().in_degree(u)).max().unwrap();
    assert_eq!((s.out_degree.max, s.in_degree.max), (max_following, max_followers));
    let mean = s.edges as f64 / s.users as f64;
    assert!((s.out_degree.mean - mean).abs() < 1e-9 && (s.in_degree.mean - mean).abs() < 1e-9);
}

#[test]
fn follower_distribution_has_a_power_law_tail() {
    let (_, s) = pop_100k();
    let fit = s.in_degree_power_law.as_ref().expect("no power-law fit at 100k users");
    assert!((2.0..=2.6).contains(&fit.alpha), "in-degree exponent {fit:?}");
    // Heavy tail: the most followed user has far more followers than the median user.
    let d = &s.in_degree;
    assert!(d.max as f64 > 50.0 * d.p50 as f64, "max followers {} vs median {}", d.max, d.p50);
}

#[test]
fn degrees_and_reciprocity_look_like_twitter() {
    let (_, s) = pop_100k();
    assert!((0.1..=0.35).contains(&s.reciprocity), "reciprocity {}", s.reciprocity);
    let (out, inn) = (&s.out_degree, &s.in_degree);
    assert!((40..=100).contains(&out.p50), "median following {}", out.p50);
    assert!(inn.p50 < out.p50, "median followers {} >= median following {}", inn.p50, out.p50);
}

#[test]
fn edges_are_homophilous() {
    let (_, s) = pop_100k();
    let h = &s.homophily;
    assert!(h.edges > 0);
    assert!(h.any > 0.5, "{h:?}");
    assert!(h.any > 2.0 * h.any_random, "{h:?}");
}

#[test]
fn graph_check_accepts_a_generated_graph() {
    let p = generate(10_000, 3);
    assert_eq!(p.graph().users(), p.len());
    p.graph().check().unwrap();
}

#[test]
fn friend_edges_are_mutual_and_inside_the_circle() {
    let p = pop_20k();
    let g = p.graph();
    let mut checked = 0;
    for u in sample_ids(p.len(), 2_000) {
        let circle = p.user(u).circle;
        for e in g.out_edges(u) {
            assert_eq!(g.edge(u, e.target), Some(e), "edge({u}, {}) disagrees with out_edges", e.target);
            if e.kind != EdgeKind::Friend {
                continue;
            }
            checked += 1;
            let back = g.edge(e.target, u);
            assert!(
                back.is_some_and(|b| b.kind == EdgeKind::Friend),
                "friend edge {u}->{} has reverse {back:?}",
                e.target
            );
            assert!(
                p.circle_members(circle).contains(&e.target.0),
                "friend {} of {u} outside circle {circle}",
                e.target
            );
        }
        // Every other member of the circle is a friend.
        let friends = g.out_edges(u).filter(|e| e.kind == EdgeKind::Friend).count();
        assert_eq!(friends, p.circle_members(circle).len() - 1, "friends of {u}");
    }
    assert!(checked > 1_000, "only {checked} friend edges checked");
}

#[test]
fn petgraph_export_matches_a_hand_count() {
    let p = pop_20k();
    let g = p.graph();
    // Two blocks of neighbouring ids (several whole friend circles) plus the 50 most followed.
    let mut by_followers: Vec<UserId> = p.ids().collect();
    by_followers.sort_by_key(|&u| std::cmp::Reverse(g.in_degree(u)));
    let mut users: Vec<UserId> = (0..150).chain(9_000..9_150).map(UserId).collect();
    let top: Vec<UserId> = by_followers.into_iter().take(50).filter(|u| !users.contains(u)).collect();
    users.extend(top);
    let set: HashSet<UserId> = users.iter().copied().collect();
    let mut by_hand = 0;
    for &u in &users {
        by_hand += g.following(u).iter().filter(|&&v| set.contains(&UserId(v))).count();
    }
    assert!(by_hand > users.len(), "subgraph too sparse to be a test: {by_hand} edges");
    let pg = g.to_petgraph(&users);
    assert_eq!(pg.node_count(), users.len());
    assert_eq!(pg.edge_count(), by_hand);
    for e in pg.edge_indices() {
        let (a, b) = pg.edge_endpoints(e).unwrap();
        let (u, v) = (pg[a], pg[b]);
        assert_eq!(g.edge(u, v), Some(pg[e]), "petgraph edge {u}->{v}");
    }
    // Repeated ids count once.
    let mut doubled = users.clone();
    doubled.extend_from_slice(&users[..40]);
    let pg2 = g.to_petgraph(&doubled);
    assert_eq!((pg2.node_count(), pg2.edge_count()), (users.len(), by_hand));
}
