//! End to end: the shipped demo's events in, posts written as JSONL out (to memory), over a
//! generated population. `CHORUS_BENCH_USERS` sets its size (default 1,000,000).
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::engine::Pipeline;
use chorus::events::{parse_events_numbered, GameEvent};
use chorus::timeline::{sort, write_jsonl};
use chorus::{Population, SeedSet, World};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Processes every event and writes the sorted timeline; returns the number of entries.
fn run(pipeline: &mut Pipeline, events: &[(usize, GameEvent)], out: &mut Vec<u8>) -> usize {
    pipeline.reset().expect("reset");
    out.clear();
    let mut posts = Vec::new();
    for (i, (line, event)) in events.iter().enumerate() {
        if let Ok((p, _)) = pipeline.process(event, i as u32, *line) {
            posts.extend(p);
        }
    }
    sort(&mut posts);
    write_jsonl(&posts, &mut *out).expect("write to memory");
    posts.len()
}

fn end_to_end(c: &mut Criterion) {
    let users: u32 = std::env::var("CHORUS_BENCH_USERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let world = World::embedded().expect("world");
    let seeds = SeedSet::embedded(&world).expect("seeds");
    let population = Population::generate(&seeds, &world, users, 42).expect("population");
    let mut pipeline = Pipeline::new(population).expect("pipeline");
    let text = include_bytes!("../examples/events/demo.jsonl");
    let events: Vec<(usize, GameEvent)> =
        parse_events_numbered(text).into_iter().filter_map(|(line, e)| e.ok().map(|e| (line, e))).collect();
    let mut out = Vec::new();
    let entries = run(&mut pipeline, &events, &mut out);
    eprintln!("demo: {} events, {entries} timeline entries, {} bytes of JSONL", events.len(), out.len());
    let mut group = c.benchmark_group("end_to_end");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entries as u64));
    group.bench_function(format!("demo_{users}_users"), |b| b.iter(|| run(&mut pipeline, &events, &mut out)));
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
