//! The server's hot path at 1M users: one event applied to a warm `Simulation` (classify,
//! react, update the state, append to the feed) and the feed's append alone, per entry.
//! `chorus serve` answers an event with this plus the first wave's JSON (issue 20's latency
//! target: p50 ≤ 5 ms, p99 ≤ 20 ms for a medium event). `CHORUS_BENCH_USERS` sets the
//! population (default 1,000,000).
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::sim::{Feed, Simulation};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const MEDIUM: [&str; 2] =
    ["The mayor resigns after the budget scandal", "Floods close the coast road after a night of storms"];

fn apply(c: &mut Criterion) {
    let users: u32 = std::env::var("CHORUS_BENCH_USERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut sim = Simulation::generate(users, 42, Default::default()).expect("population");
    let mut g = c.benchmark_group("sim");
    g.sample_size(50);
    let mut i = 0u64;
    g.bench_function("apply_medium_event", |b| {
        b.iter(|| {
            i += 1;
            let line = format!(r#"{{"id": "m{i}", "time": {}, "text": "{}"}}"#, 1000 + i * 600, MEDIUM[i as usize % 2]);
            sim.apply_line(&line).expect("event").posts.len()
        })
    });
    // The entries of 100 medium events, appended to an empty feed.
    let mut batches = Vec::new();
    let mut fresh = Simulation::generate(users.min(200_000), 7, Default::default()).expect("population");
    fresh.keep_feed(false);
    for k in 0..100u64 {
        let line = format!(r#"{{"id": "f{k}", "time": {}, "text": "{}"}}"#, 1000 + k * 600, MEDIUM[k as usize % 2]);
        batches.push(fresh.apply_line(&line).expect("event").posts);
    }
    let entries: usize = batches.iter().map(Vec::len).sum();
    g.throughput(Throughput::Elements(entries as u64));
    g.bench_function("feed_push_100_events", |b| {
        b.iter_batched(
            || batches.clone(),
            |batches| {
                let mut f = Feed::default();
                for x in batches {
                    f.push(x);
                }
                f.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
