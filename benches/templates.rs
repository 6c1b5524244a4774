//! Template-filled posts per second: choosing a template, filling it and applying the user's
//! style transforms.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::events::Category;
use chorus::templates::{Action, PostContext, Sentiment, Stance, Templates, NO_FACTS};
use chorus::{Population, SeedSet, UserId, World};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The context of post `u` of the burst: actions and sentiments cycle.
fn context(u: u32) -> PostContext<'static> {
    PostContext {
        key: u as u64,
        category: Category::Sports,
        action: [Action::Post, Action::Reply, Action::Quote][(u % 3) as usize],
        sentiment: [Sentiment::Positive, Sentiment::Negative, Sentiment::Neutral][(u % 7 % 3) as usize],
        subject: "the Redhawks",
        what: "the Redhawks win the final in overtime",
        author: "@someone",
        hashtag: "#Redhawks",
        against_event: false,
        drift: [0, 0],
        facts: &NO_FACTS,
        fan: false,
        stance: Stance::plain([Sentiment::Positive, Sentiment::Negative, Sentiment::Neutral][(u % 7 % 3) as usize]),
    }
}

fn fill(c: &mut Criterion) {
    let world = World::embedded().expect("world");
    let seeds = SeedSet::embedded(&world).expect("seeds");
    let population = Population::generate(&seeds, &world, 100_000, 42).expect("population");
    let templates = Templates::embedded().expect("templates");
    let n = 100_000u32;
    let mut group = c.benchmark_group("templates");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    group.bench_function("fill_100k_posts", |b| {
        let mut buf = String::new();
        b.iter(|| {
            let mut bytes = 0;
            for u in 0..n {
                templates.render(&population, UserId(u), &context(u), &mut buf);
                bytes += buf.len();
            }
            bytes
        })
    });
    group.bench_function("fill_100k_posts_parallel", |b| {
        use rayon::prelude::*;
        b.iter(|| {
            (0..n)
                .into_par_iter()
                .map_init(String::new, |buf, u| {
                    templates.render(&population, UserId(u), &context(u), buf);
                    buf.len()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, fill);
criterion_main!(benches);
