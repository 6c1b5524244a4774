//! Event classification throughput on the team's labelled events.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::classify::{split_label, Classifier};
use chorus::events::{parse_event, GameEvent};
use chorus::World;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn classify(c: &mut Criterion) {
    let world = World::embedded().expect("shipped world");
    let classifier = Classifier::embedded(&world).expect("shipped lexicon");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/events/labelled.jsonl"))
        .expect("labelled events");
    let events: Vec<GameEvent> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .enumerate()
        .filter_map(|(i, l)| split_label(l).ok().and_then(|(json, _)| parse_event(i + 1, &json).ok()))
        .collect();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("labelled_events", |b| {
        b.iter(|| {
            events.iter().filter_map(|e| classifier.classify(e, 0).ok()).map(|k| k.stakeholders.len()).sum::<usize>()
        })
    });
    group.bench_function("parse_and_classify", |b| {
        b.iter(|| {
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .filter_map(|l| split_label(l).ok())
                .filter_map(|(json, _)| parse_event(1, &json).ok())
                .filter_map(|e| classifier.classify(&e, 0).ok())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
