//! Classify and filter one event over a population: the per-event hot path of the pipeline.
//! `CHORUS_BENCH_USERS` sets the population size (default 1,000,000).
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::classify::Classifier;
use chorus::events::{parse_event, GameTime};
use chorus::filter::{filter, AudienceIndex, FilterConfig};
use chorus::{Population, SeedSet, World};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn classify_and_filter(c: &mut Criterion) {
    let users: u32 = std::env::var("CHORUS_BENCH_USERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let world = World::embedded().expect("world");
    let seeds = SeedSet::embedded(&world).expect("seeds");
    let population = Population::generate(&seeds, &world, users, 42).expect("population");
    let config = FilterConfig::default();
    let index = AudienceIndex::new(&population, &config);
    let classifier = Classifier::embedded(&world).expect("lexicon");
    let events = [
        (
            "broad",
            r#"{"id": "e1", "time": 72000, "text": "The Harbor City Redhawks win the championship final in overtime"}"#,
        ),
        ("political", r#"{"id": "e2", "time": 50000, "text": "The mayor resigns after the budget scandal"}"#),
        ("niche", r#"{"id": "e3", "time": 30000, "text": "New telescope images reveal a distant galaxy cluster"}"#),
    ];
    let mut group = c.benchmark_group("classify_and_filter");
    group.throughput(Throughput::Elements(users as u64));
    for (name, json) in events {
        let event = parse_event(1, json).expect("event");
        let reacting =
            filter(&population, &index, &config, &classifier.classify(&event, 1).expect("classify"), event.time, None)
                .len();
        eprintln!("{name}: {reacting} of {users} users react");
        group.bench_with_input(BenchmarkId::new(name, users), &event, |b, event| {
            b.iter(|| {
                let k = classifier.classify(event, 1).expect("classify");
                filter(&population, &index, &config, &k, GameTime(event.time.0), None).len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, classify_and_filter);
criterion_main!(benches);
