//! Updating user state after an event burst of 100,000 posts (target ≤ 20 ms on 2 cores):
//! the affected users' mood (`feel`) and every post's author, target and relationship
//! (`apply`): on a fresh state (cold), a state that has seen the crowd a few times (warm),
//! and one whose history windows are full so bursts fold old actions (steady).
//! `CHORUS_BENCH_USERS` sets the population (default 1,000,000).
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::actions::{act, ActionConfig};
use chorus::classify::Classifier;
use chorus::events::parse_event;
use chorus::filter::{affected, AudienceIndex, FilterConfig, Reaction};
use chorus::media::{GifMemory, Media};
use chorus::state::{minute_of, StateConfig, UserState};
use chorus::templates::Templates;
use chorus::{Population, SeedSet, UserId, World};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn burst(c: &mut Criterion) {
    let users: u32 = std::env::var("CHORUS_BENCH_USERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let world = World::embedded().expect("world");
    let seeds = SeedSet::embedded(&world).expect("seeds");
    let population = Population::generate(&seeds, &world, users, 42).expect("population");
    let index = AudienceIndex::new(&population, &FilterConfig::default());
    let classifier = Classifier::embedded(&world).expect("lexicon");
    let event =
        parse_event(1, r#"{"id": "b", "time": 72000, "text": "The Harbor City Redhawks win the championship final"}"#)
            .expect("event");
    let class = classifier.classify(&event, 1).expect("classify");
    // 100,000 reacting users spread over the population, half on each side.
    let step = (users / 100_000).max(1);
    let reactions: Vec<Reaction> = (0..users)
        .step_by(step as usize)
        .take(100_000)
        .map(|u| Reaction { user: UserId(u), stance: if u % 2 == 0 { 70 } else { -70 }, engagement: 120 })
        .collect();
    let templates = Templates::embedded().expect("templates");
    let media = Media::embedded().expect("media");
    let posts = act(
        &population,
        &templates,
        &media,
        &GifMemory::new(),
        &ActionConfig::default(),
        &event,
        &class,
        0,
        &reactions,
        None,
    );
    let touched = affected(&population, &index, &class);
    eprintln!("burst: {} posts, {} affiliated users", posts.len(), touched.len());
    let fresh = UserState::new(population.len(), StateConfig::default()).expect("state");
    let minute = minute_of(event.time);
    // One update: the burst's mood moves, then its posts.
    let update = |st: &mut UserState| {
        st.feel(&touched, &class, minute);
        st.apply(&population, &class, &posts)
    };
    let mut group = c.benchmark_group("state");
    group.sample_size(20);
    group.throughput(Throughput::Elements(posts.len() as u64));
    // Cold: the first burst a fresh state sees (every history chunk and relationship list is
    // new, so this includes growing the stores).
    group.bench_function("update_after_100k_post_burst_cold", |b| {
        b.iter_batched(
            || fresh.clone(),
            |mut st| {
                update(&mut st);
                st // dropped outside the measurement
            },
            BatchSize::LargeInput,
        )
    });
    // Warm: a running game's state, which has seen this crowd before (stores allocated).
    let mut warm = fresh.clone();
    for _ in 0..3 {
        update(&mut warm);
    }
    group.bench_function("update_after_100k_post_burst", |b| b.iter(|| update(&mut warm)));
    // Steady: a long game's state, where every acting user's window (500 actions by default)
    // is full, so each burst also folds the oldest actions out of the windows (one user in
    // eight per burst here: the same crowd acts each time, so a user folds every 8 bursts).
    let mut steady = warm;
    for _ in 0..StateConfig::default().history_window + 8 {
        update(&mut steady);
    }
    group.bench_function("update_after_100k_post_burst_steady", |b| b.iter(|| update(&mut steady)));
    group.finish();
}

criterion_group!(benches, burst);
criterion_main!(benches);
