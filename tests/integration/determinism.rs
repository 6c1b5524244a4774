//! Generation is a pure function of (seeds, world, config, master seed): same inputs give the
//! same bytes whatever the thread count; a different master seed gives a different population.

use crate::common::{assert_same_bytes, generate, pop_20k, sample_ids};
use chorus::{Population, UserId};
use std::collections::HashSet;
use std::path::Path;

/// Saves `p` as `<dir>/<name>.snap` and returns the file's bytes.
fn snapshot_bytes(p: &Population, dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(format!("{name}.snap"));
    chorus::snapshot::save(p, &path).unwrap();
    std::fs::read(&path).unwrap()
}

fn in_pool(threads: usize, users: u32, seed: u64) -> Population {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| generate(users, seed))
}

#[test]
fn same_seed_gives_identical_bytes_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(6_000, 11);
    let b = generate(6_000, 11);
    assert_same_bytes(
        &snapshot_bytes(&a, dir.path(), "a"),
        &snapshot_bytes(&b, dir.path(), "b"),
        "snapshots of two generations with seed 11",
    );
    assert_eq!(a.graph(), b.graph());
    for id in sample_ids(a.len(), 300) {
        assert_eq!(a.user(id), b.user(id), "user {id}");
    }
}

#[test]
fn thread_count_does_not_change_a_single_byte() {
    // 20k users: several rayon chunks in every parallel stage (min_len 4096, 1024-user blocks).
    let dir = tempfile::tempdir().unwrap();
    let reference = in_pool(1, 20_000, 5);
    let ref_bytes = snapshot_bytes(&reference, dir.path(), "t1");
    for threads in [2, 4] {
        let p = in_pool(threads, 20_000, 5);
        let bytes = snapshot_bytes(&p, dir.path(), &format!("t{threads}"));
        assert_same_bytes(&ref_bytes, &bytes, &format!("1 thread vs {threads} threads"));
        for id in sample_ids(p.len(), 100) {
            assert_eq!(reference.user(id), p.user(id), "user {id} with {threads} threads");
        }
    }
}

#[test]
fn a_different_seed_gives_a_different_population() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(6_000, 11);
    let b = generate(6_000, 12);
    let (ba, bb) = (snapshot_bytes(&a, dir.path(), "a"), snapshot_bytes(&b, dir.path(), "b"));
    assert_ne!(ba, bb, "seeds 11 and 12 gave the same snapshot");
    let ids = sample_ids(a.len(), 300);
    let same = ids.iter().filter(|&&id| a.user(id) == b.user(id)).count();
    assert_eq!(same, 0, "{same} of {} sampled users are identical across seeds", ids.len());
    let differing_handles = ids.iter().filter(|&&id| a.handle(id) != b.handle(id)).count();
    assert!(
        differing_handles * 10 >= ids.len() * 9,
        "only {differing_handles} of {} sampled handles differ across seeds",
        ids.len()
    );
}

fn is_valid_handle(h: &str) -> bool {
    (3..=15).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[test]
fn handles_are_unique_and_well_formed() {
    let p = pop_20k();
    let mut seen = HashSet::with_capacity(p.len());
    for id in p.ids() {
        let h = p.handle(id);
        assert!(is_valid_handle(&h), "user {id}: handle {h:?} does not match ^[a-z0-9_]{{3,15}}$");
        assert!(seen.insert(h.clone()), "user {id}: handle {h:?} is not unique");
        if id.0 % 997 == 0 {
            assert_eq!(p.user(id).handle, h, "user({id}).handle disagrees with handle({id})");
        }
    }
    // Lookup by handle finds the owner (a few: each lookup is a scan).
    for id in [UserId(0), UserId(p.len() as u32 / 2), UserId(p.len() as u32 - 1)] {
        assert_eq!(p.find_handle(&p.handle(id)), Some(id));
    }
    assert_eq!(p.find_handle("no such handle"), None);
}
