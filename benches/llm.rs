//! The LLM stage's own cost per item, excluding the server: routing into items, queueing and
//! batching, prompt and grammar rendering, budget reservation and reconciliation, parsing and
//! checking the answer, and cache writes. The transport answers instantly from memory with a
//! well-formed reply for every id, so what is measured is chorus's overhead.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::budget::BudgetConfig;
use chorus::engine::Pipeline;
use chorus::events::parse_event;
use chorus::llm::batch::{BatchConfig, Batcher};
use chorus::llm::client::{Exchange, Transport};
use chorus::llm::route::{Router, RoutingConfig};
use chorus::llm::{Llm, LlmConfig};
use chorus::{Population, SeedSet, World};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Answers every request at once with one line per id in its grammar.
struct Instant;

impl Transport for Instant {
    fn send(&self, body: &str, _attempt: u32) -> Exchange {
        let n = body.matches(" ::= \\\"{").count();
        let content: String = (1..=n)
            .map(|i| format!("{{\"id\": \"{i}\", \"text\": \"what a day for the club, number {i}\"}}\n"))
            .collect();
        let body = serde_json::json!({"choices": [{"message": {"content": content}}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 20 * n, "total_tokens": 300 + 20 * n}});
        Exchange { status: 200, retry_after_ms: None, body: body.to_string() }
    }
    fn live(&self) -> bool {
        false
    }
}

fn stage(c: &mut Criterion) {
    let world = World::embedded().expect("world");
    let seeds = SeedSet::embedded(&world).expect("seeds");
    let population = Population::generate(&seeds, &world, 100_000, 42).expect("population");
    let mut pipeline = Pipeline::new(population).expect("pipeline");
    let event = parse_event(
        1,
        r#"{"id": "p1", "time": 600, "text": "The player's club Redhawks sign a star striker", "priority": "high"}"#,
    )
    .expect("event");
    let (posts, _) = pipeline.process(&event, 0, 1).expect("posts");
    let class = pipeline.classifier().classify(&event, 1).expect("class");
    // Route every text post (low_rate 1) so the batch is large.
    let router = Router::new(pipeline.population(), RoutingConfig { low_rate: 1.0, ..RoutingConfig::default() });
    let items = router.items(pipeline.population(), Some(pipeline.state()), &event, &class, &posts);
    assert!(items.len() > 50, "{} items", items.len());
    let config = LlmConfig {
        budget: BudgetConfig { per_day: u64::MAX / 4, ..BudgetConfig::default() },
        cache: chorus::llm::cache::CacheConfig { enabled: false, ..Default::default() },
        ..LlmConfig::default()
    };
    let mut group = c.benchmark_group("llm");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.sample_size(20);
    group.bench_function("stage_per_item_no_server", |b| {
        b.iter(|| {
            let llm = Llm::new(config.clone(), Box::new(Instant)).expect("llm");
            let out = llm.resolve(items.clone(), pipeline.population(), pipeline.templates());
            assert_eq!(out.len(), items.len());
            out
        })
    });
    group.bench_function("route_items", |b| {
        b.iter(|| router.items(pipeline.population(), Some(pipeline.state()), &event, &class, &posts))
    });
    let n = 10_000u64;
    group.throughput(Throughput::Elements(n));
    group.bench_function("batcher_push_pop", |b| {
        b.iter(|| {
            let mut q: Batcher<u64> = Batcher::new(BatchConfig::default());
            let mut sent = 0;
            for i in 0..n {
                let p =
                    [chorus::events::Priority::High, chorus::events::Priority::Medium, chorus::events::Priority::Low]
                        [(i % 3) as usize];
                let _ = q.push(i, p, i % 17, i);
                while let Some(batch) = q.pop(i) {
                    sent += batch.items.len();
                }
            }
            while let Some(batch) = q.flush() {
                sent += batch.items.len();
            }
            sent
        })
    });
    group.finish();
}

criterion_group!(benches, stage);
criterion_main!(benches);
