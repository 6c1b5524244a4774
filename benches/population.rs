//! Population benchmarks: generating users with their graph, loading a snapshot, expanding
//! profiles. `CHORUS_BENCH_USERS` (comma-separated) overrides the generation sizes, e.g.
//! `CHORUS_BENCH_USERS=10000000 cargo bench --bench population -- generate`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function
use chorus::{Population, SeedSet, UserId, World};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn sizes() -> Vec<u32> {
    std::env::var("CHORUS_BENCH_USERS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000])
}

fn data() -> (World, SeedSet) {
    let world = World::embedded().expect("shipped world");
    let seeds = SeedSet::embedded(&world).expect("shipped seeds");
    (world, seeds)
}

fn generate(c: &mut Criterion) {
    let (world, seeds) = data();
    let mut group = c.benchmark_group("generate");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    for n in sizes() {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| Population::generate(&seeds, &world, n, 42).expect("generate"))
        });
    }
    group.finish();
}

fn snapshot_load(c: &mut Criterion) {
    let (world, seeds) = data();
    let n = 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pop.snap");
    let population = Population::generate(&seeds, &world, n, 42).expect("generate");
    chorus::snapshot::save(&population, &path).expect("save");
    drop(population);
    let mut group = c.benchmark_group("snapshot_load");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| chorus::snapshot::load(&path).expect("load")));
    group.finish();
}

fn expand_profiles(c: &mut Criterion) {
    let (world, seeds) = data();
    let population = Population::generate(&seeds, &world, 100_000, 42).expect("generate");
    let ids: Vec<UserId> = (0..10_000u32).map(|k| UserId(k * 10)).collect();
    let mut group = c.benchmark_group("expand_profiles");
    group.throughput(Throughput::Elements(ids.len() as u64));
    group.bench_function("user", |b| b.iter(|| ids.iter().map(|&u| population.user(u).followers as u64).sum::<u64>()));
    group.bench_function("handle", |b| b.iter(|| ids.iter().map(|&u| population.handle(u).len()).sum::<usize>()));
    group.finish();
}

criterion_group!(benches, generate, snapshot_load, expand_profiles);
criterion_main!(benches);
