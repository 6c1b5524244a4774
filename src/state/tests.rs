//! Unit tests of the burst passes and the state rules.

use super::*;

fn acts(n: u32, minute_span: u32) -> Vec<Act> {
    (0..n)
        .map(|k| {
            let h = crate::rng::mix64(k as u64);
            Act {
                author: (h % 1_200) as u32,
                minute: 1 + (h >> 20) as u32 % minute_span,
                target: u32::MAX,
                target_author: u32::MAX,
                thread: u32::MAX,
                kind: PostKind::Like,
                sign: 0,
                hostile: false,
            }
        })
        .collect()
}

/// The radix-sorted author order is the 128-bit comparison sort's, and so is the fallback
/// when the minutes span too much to pack.
#[test]
fn author_order_packed_or_not_is_by_author_minute_index() {
    // 1,000 users: some authors are beyond, left out. 2^25 users and minutes over the
    // whole range need 26 + 32 + 13 bits: the 128-bit fallback.
    for (span, users) in [(1, 1_000), (90, 1_000), (10_080, 1_000), (u32::MAX - 2, 1_000), (u32::MAX - 2, 1 << 25)] {
        let acts = acts(5_000, span);
        let expected =
            sorted_acts(&acts, |k, a| ((a.author as usize) < users).then(|| key([0, a.author, a.minute, k])));
        assert_eq!(expected.len() < acts.len(), users == 1_000);
        assert_eq!(by_author(&acts, users), expected, "minute span {span}, {users} users");
    }
    assert!(by_author(&[], 10).is_empty());
}

/// Likewise the order of reactions by (author reacted to, post, minute, index).
#[test]
fn target_order_packed_or_not_is_by_target_author_post_minute_index() {
    for (span, users) in [(1, 1_000), (90, 1_000), (10_080, 1_000), (u32::MAX - 2, 1_000)] {
        let mut acts = acts(5_000, span);
        for k in 0..acts.len() {
            let h = crate::rng::mix64(k as u64 ^ 0x7461_7267);
            let t = (h % 5_000) as usize;
            if h >> 60 != 0 && t != k {
                let (kind, author) = (acts[t].kind, acts[t].author);
                let a = &mut acts[k];
                a.target = t as u32;
                a.target_author = author;
                a.kind = if h >> 62 == 0 { PostKind::Post } else { kind };
            }
        }
        let expected = sorted_acts(&acts, |k, a| {
            (a.target != u32::MAX
                && a.target_author != a.author
                && (a.target_author as usize) < users
                && a.kind != PostKind::Post)
                .then(|| key([a.target_author, a.target, a.minute, k]))
        });
        assert!(expected.len() > 1_000);
        assert_eq!(by_target(&acts, users), expected, "minute span {span}, {users} users");
    }
    assert!(by_target(&[], 10).is_empty());
}

/// Pass (1) forms the reflections that forming each after its push would: from the
/// history before the burst plus the burst's own acts, with the window's folds followed
/// (users acting up to dozens of times in a burst, windows smaller than a streak's span).
#[test]
fn reflections_formed_ahead_are_those_formed_after_each_push() {
    let world = crate::World::embedded().unwrap();
    let seeds = crate::SeedSet::embedded(&world).unwrap();
    let population = Population::generate(&seeds, &world, 2_000, 7).unwrap();
    let mut kinds = HashMap::new();
    for window in [1, 5, 12, 40, 500] {
        let config = StateConfig { history_window: window, reflect_every: 2, ..StateConfig::default() };
        let mut state = UserState::new(population.len(), config.clone()).unwrap();
        for burst in 0..6u32 {
            let acts: Vec<Act> = (0..600u64)
                .map(|k| {
                    let h = crate::rng::mix64(k ^ (burst as u64) << 32);
                    Act {
                        author: (h % 50) as u32,
                        minute: burst * 100 + (h >> 20) as u32 % 60,
                        target: u32::MAX,
                        target_author: u32::MAX,
                        thread: u32::MAX,
                        kind: PostKind::Reply,
                        sign: ((h >> 40) % 3) as i8 - 1,
                        hostile: false,
                    }
                })
                .collect();
            let order = by_author(&acts, population.len());
            let entity = [3u16, 3, 5, u16::MAX, 3, 7][burst as usize];
            let ctx = AuthorsCtx {
                config: &config,
                population: &population,
                history: &state.history,
                bank: &state.bank,
                topic: Some(0),
                intensity: 0.5,
                entity,
                category: 0,
                about: Some(9),
            };
            let (mut cells, mut ceilings) = (state.cells.clone(), state.ceilings.clone());
            let formed = authors_pass(&mut cells, &mut ceilings, &ctx, &acts, &order);
            let (mut cells_after, mut history) = (state.cells.clone(), state.history.clone());
            for (&k, got) in order.iter().zip(&formed) {
                let act = &acts[k as usize];
                let cell = &mut cells_after[act.author as usize];
                let (kind, now) = author_cell(&config, &population, cell, act, Some(0), 0.5);
                let stance = act.sign.saturating_mul(100);
                let record = Record {
                    minute: act.minute,
                    other: u32::MAX,
                    thread: u32::MAX,
                    entity,
                    kind_category: act.kind as u8,
                    stance,
                };
                history.push(act.author, record);
                let recent = history.recent(act.author).take(STREAK_OF).map(|r| (r.entity, r.stance));
                let want =
                    kind.and_then(|kind| form(&state.bank, act.author, kind, act.minute, 0, Some(9), now, recent));
                assert_eq!(*got, want, "window {window}, burst {burst}, act {k}");
                if let Some(r) = want {
                    *kinds.entry(state.bank.kind(r.template)).or_insert(0) += 1;
                }
            }
            state.cells = cells;
            let UserState { history: h, reflections, last_reflections, .. } = &mut state;
            record(h, reflections, last_reflections, &acts, &order, &formed, (entity, 0));
            for u in 0..50 {
                assert!(state.history.recent(u).eq(history.recent(u)), "window {window}, user {u}");
            }
        }
    }
    // Both routine reflections and streaks were checked.
    assert!(kinds.get(&Some(Kind::Routine)).is_some_and(|&n| n > 20), "{kinds:?}");
    assert!(kinds.get(&Some(Kind::Streak)).is_some_and(|&n| n > 20), "{kinds:?}");
}
