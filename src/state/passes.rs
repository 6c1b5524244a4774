//! The burst passes behind [`super::UserState::apply`]: each post as a compact `Act`, sorted
//! by author, by target and by relationship pair (radix sorts over the acts), then one pass
//! per concern over user shards (authors, reactions received, relationships, reflections).

use super::*;

/// One post as the state update needs it.
#[derive(Clone, Copy)]
pub(super) struct Act {
    pub(super) author: u32,
    pub(super) minute: u32,
    /// Index of the post reacted to, or `u32::MAX`.
    pub(super) target: u32,
    pub(super) target_author: u32,
    /// Low 32 bits of the thread root's id, or `u32::MAX`.
    pub(super) thread: u32,
    pub(super) kind: PostKind,
    pub(super) sign: i8,
    pub(super) hostile: bool,
}

impl Act {
    /// The stance its history record keeps.
    fn stance(&self) -> i8 {
        self.sign.saturating_mul(100)
    }

    /// Whether it answers, quotes, likes or reposts a post by another user among `users`.
    fn answers_other(&self, users: usize) -> bool {
        self.target != u32::MAX && self.target_author != self.author && (self.target_author as usize) < users
    }
}

/// One compact record per post (the sorted passes read only these: a post is ~200 bytes, a
/// record 24), with `target(index, post)` giving the index of the post it answers or quotes,
/// if listed.
pub(super) fn acts_of(posts: &[Post], target: impl Fn(usize, &Post) -> Option<usize> + Sync) -> Vec<Act> {
    posts
        .par_iter()
        .enumerate()
        .map(|(k, p)| {
            let target = target(k, p);
            let sign = sentiment_sign(p);
            let (t_author, hostile) = match target {
                Some(t) => (posts[t].author.0, sign * sentiment_sign(&posts[t]) < 0.0),
                None => (u32::MAX, false),
            };
            let thread = p.root.or_else(|| target.map(|t| posts[t].root.unwrap_or(posts[t].id)));
            Act {
                author: p.author.0,
                minute: minute_of(p.time),
                target: target.map_or(u32::MAX, |t| t as u32),
                target_author: t_author,
                thread: thread.map_or(u32::MAX, |r| r.0 as u32),
                kind: p.kind,
                sign: sign as i8,
                hostile,
            }
        })
        .collect()
}

pub(super) fn sentiment_sign(p: &Post) -> f32 {
    p.sentiment.sign() as f32
}

/// Strengthens `topic` among the two obsessions, weakening the other.
pub(super) fn obsess(h: &mut Habits, topic: u8) {
    let code = topic + 1;
    let k = if h.obsession[0] == code {
        0
    } else if h.obsession[1] == code {
        1
    } else {
        let weaker = if h.strength[0] <= h.strength[1] { 0 } else { 1 };
        if h.strength[weaker] > 8 {
            h.strength[weaker] -= 8;
            return;
        }
        h.obsession[weaker] = code;
        h.strength[weaker] = 0;
        weaker
    };
    h.strength[k] = h.strength[k].saturating_add(16);
    if h.strength[1] > h.strength[0] {
        h.obsession.swap(0, 1);
        h.strength.swap(0, 1);
    }
}

/// Four 32-bit parts as one key ordering by the first, then the second, and so on.
pub(super) fn key(parts: [u32; 4]) -> u128 {
    parts.iter().fold(0u128, |k, &x| k << 32 | x as u128)
}

/// What pass (1) needs besides the cells: the history as it stood before the burst (read
/// only), the reflection bank, and the event's topic, intensity, main stakeholder, category
/// and reflection subject.
pub(super) struct AuthorsCtx<'a> {
    pub(super) config: &'a StateConfig,
    pub(super) population: &'a Population,
    pub(super) history: &'a History,
    pub(super) bank: &'a Bank,
    pub(super) topic: Option<u8>,
    pub(super) intensity: f32,
    pub(super) entity: u16,
    pub(super) category: u8,
    pub(super) about: Option<u32>,
}

/// Pass (1): each author, by (user, time): mood, energy, cooldown, ticks, obsessions (see
/// [`author_cell`]), and the reflection each act makes its author form, if any, in
/// `by_author` order. Parallel over shards of users.
///
/// A reflection reads its author's recent actions as they will stand once the act is in the
/// history, which is written after this pass: the act and the author's earlier acts in this
/// burst, then their window from before it, as many in all as the window will hold then
/// (the window's count is followed through the pushes and folds to come).
pub(super) fn authors_pass(
    cells: &mut [Cell],
    ceilings: &mut [u8],
    ctx: &AuthorsCtx,
    acts: &[Act],
    by_author: &[u32],
) -> Vec<Option<Reflection>> {
    let users = cells.len();
    let ranges = shard_ranges(users, by_author.len(), |i| acts[by_author[i] as usize].author);
    cells
        .par_chunks_mut(SHARD)
        .zip(ceilings.par_chunks_mut(SHARD))
        .zip(ranges)
        .enumerate()
        .map(|(s, ((cells, ceilings), range))| {
            let mine = &by_author[range];
            let mut out = Vec::with_capacity(mine.len());
            // The current author's first act in `mine`, and their window's count.
            let (mut first, mut count) = (0, 0);
            for (b, block) in mine.chunks(BLOCK).enumerate() {
                touch(block.iter().map(|&k| &cells[acts[k as usize].author as usize - s * SHARD]));
                for (j, &k) in block.iter().enumerate() {
                    let at = b * BLOCK + j;
                    let act = &acts[k as usize];
                    if at == 0 || acts[mine[at - 1] as usize].author != act.author {
                        first = at;
                        count = ctx.history.len_of(act.author);
                    }
                    count = ctx.history.len_after_push(count);
                    let cell = &mut cells[act.author as usize - s * SHARD];
                    let (kind, now) = author_cell(ctx.config, ctx.population, cell, act, ctx.topic, ctx.intensity);
                    ceilings[act.author as usize - s * SHARD] = ceiling_byte(cell.mental.arousal, count);
                    out.push(kind.and_then(|kind| {
                        let seen = count.min(STREAK_OF);
                        let burst =
                            mine[first..=at].iter().rev().map(|&k| (ctx.entity, acts[k as usize].stance())).take(seen);
                        let before = ctx.history.recent(act.author).map(|r| (r.entity, r.stance));
                        let recent = burst.chain(before).take(seen);
                        form(ctx.bank, act.author, kind, act.minute, ctx.category, ctx.about, now, recent)
                    }));
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .concat()
}

/// Pass (2): each author reacted to, by (user, post, time): mood from the reactions received,
/// style drift. Returns the (user, minute) of each praise reached.
pub(super) fn received_pass(
    cells: &mut [Cell],
    ceilings: &mut [u8],
    config: &StateConfig,
    acts: &[Act],
    posts: &[Post],
    users: usize,
) -> Vec<(u32, u32)> {
    let received = by_target(acts, users);
    let ranges = shard_ranges(users, received.len(), |i| acts[received[i] as usize].target_author);
    cells
        .par_chunks_mut(SHARD)
        .zip(ceilings.par_chunks_mut(SHARD))
        .zip(ranges)
        .enumerate()
        .map(|(s, ((cells, ceilings), range))| {
            let mut praised = Vec::new();
            let mut current = u32::MAX;
            let mut count = 0u32;
            for block in received[range].chunks(BLOCK) {
                touch(block.iter().map(|&k| &cells[acts[k as usize].target_author as usize - s * SHARD]));
                // A post's first reaction reads its text: load the texts of the block's posts
                // together too.
                load_together(block.iter().map(|&k| {
                    let text = posts[acts[k as usize].target as usize].text.as_deref().unwrap_or("");
                    text.as_bytes().first().copied().unwrap_or(0) as u32
                }));
                for &k in block {
                    let act = &acts[k as usize];
                    if current != act.target {
                        current = act.target;
                        count = 0;
                    }
                    count += 1;
                    let cell = &mut cells[act.target_author as usize - s * SHARD];
                    if received_cell(config, cell, act, count, posts) {
                        praised.push((act.target_author, act.minute));
                    }
                    let c = &mut ceilings[act.target_author as usize - s * SHARD];
                    *c = with_arousal(*c, cell.mental.arousal);
                }
            }
            praised
        })
        .collect::<Vec<_>>()
        .concat()
}

/// Per shard of pass (3): the feuds begun (a, b, minute) and the follow changes.
pub(super) type RelationsOut = (Vec<(u32, u32, u32)>, Vec<FollowChange>);

/// Pass (3): relationships, by (acting user, time). The other side's weight toward them is
/// read first, as it stood before this pass, so no shard reads another's changes. Returns
/// the number of interactions and each shard's feuds and follow changes.
#[allow(clippy::too_many_arguments)]
pub(super) fn relations_pass(
    relations: &mut Relations,
    follows: &mut Follows,
    config: &StateConfig,
    acts: &[Act],
    by_author: &[u32],
    graph: &crate::graph::Graph,
    users: usize,
) -> (usize, Vec<RelationsOut>) {
    let w = &config.relations;
    let pairs: Vec<u32> = by_author.iter().copied().filter(|&k| acts[k as usize].answers_other(users)).collect();
    let backs: Vec<f32> = pairs
        .par_iter()
        .map(|&k| {
            // Only a hostile interaction asks whether the pair are rivals.
            let a = &acts[k as usize];
            if a.hostile {
                relations.weight(a.target_author, a.author, a.minute, w)
            } else {
                0.0
            }
        })
        .collect();
    let ranges = shard_ranges(users, pairs.len(), |i| acts[pairs[i] as usize].author);
    let per_shard = relations
        .shards_mut(users)
        .par_iter_mut()
        .zip(follows.shards_mut(users).par_iter_mut())
        .zip(ranges)
        .map(|((shard, follow_shard), range)| {
            let (mut feuds, mut changes) = (Vec::new(), Vec::new());
            for (block, block_backs) in pairs[range.clone()].chunks(BLOCK).zip(backs[range].chunks(BLOCK)) {
                // As `touch` does for cells: the block's lists load together.
                load_together(
                    block
                        .iter()
                        .map(|&k| shard.get(&acts[k as usize].author).map_or(0, |l| l.first().map_or(0, |r| r.other))),
                );
                for (&k, &back) in block.iter().zip(block_backs) {
                    let act = &acts[k as usize];
                    let (a, b, minute) = (act.author, act.target_author, act.minute);
                    let list = shard.entry(a).or_insert_with(|| Vec::with_capacity(4));
                    let rival = |list: &Vec<relations::Relation>| {
                        list.iter().find(|r| r.other == b).is_some_and(|r| label_of(r, back, minute, w) == Label::Rival)
                    };
                    let was_rival = act.hostile && rival(list);
                    let (before, after) = relations::interact_in(list, b, minute, relation_delta(w, act), w);
                    if act.hostile && !was_rival && rival(list) {
                        feuds.push((a, b, minute));
                    }
                    // Follows follow the relationship: a weight rising to `follow_at` follows, one
                    // falling to `unfollow_at` unfollows (only at the crossing, so a follow state
                    // the game set stays until the weight crosses again).
                    let want = if after >= w.follow_at && before < w.follow_at {
                        true
                    } else if after <= w.unfollow_at && before > w.unfollow_at {
                        false
                    } else {
                        continue;
                    };
                    let current = follow_shard.get(&a).map_or(&[][..], Vec::as_slice);
                    if follows::follows_in(graph, current, a, b) != want {
                        let mine = follow_shard.entry(a).or_default();
                        follows::set_in(graph, mine, a, b, want, minute);
                        if mine.is_empty() {
                            follow_shard.remove(&a);
                        }
                        changes.push(FollowChange { user: a, other: b, minute, follows: want });
                    }
                }
            }
            (feuds, changes)
        })
        .collect();
    (pairs.len(), per_shard)
}

/// Items per block of [`touch`].
pub(super) const BLOCK: usize = 16;

/// Reads each cell once so that their cache lines load together before a block of updates
/// (a burst's users are scattered over the whole table, and one update at a time would wait
/// for each line in turn).
pub(super) fn touch<'a>(cells: impl Iterator<Item = &'a Cell>) {
    load_together(cells.map(|c| c.mental.minute));
}

/// Indices of `acts` by (author, minute, index), acts of authors beyond `users` left out.
pub(super) fn by_author(acts: &[Act], users: usize) -> Vec<u32> {
    let (lo, hi) = minute_range(acts);
    let (ub, mb) = (bits(users as u64), bits((hi - lo) as u64));
    if ub + mb > 64 {
        return sorted_acts(acts, |k, a| ((a.author as usize) < users).then(|| key([0, a.author, a.minute, k])));
    }
    radix_sorted(acts, ub + mb, |a| {
        ((a.author as usize) < users).then(|| (a.author as u64) << mb | (a.minute - lo) as u64)
    })
}

/// Indices of the reactions in `acts` (to another user's post, that user among `users`) by
/// (author reacted to, post, minute, index).
pub(super) fn by_target(acts: &[Act], users: usize) -> Vec<u32> {
    let keep = |a: &Act| a.answers_other(users) && a.kind != PostKind::Post;
    let (lo, hi) = minute_range(acts);
    // Targets are indices into `acts`.
    let (ub, tb, mb) = (bits(users as u64), bits(acts.len() as u64), bits((hi - lo) as u64));
    if ub + tb + mb > 64 {
        return sorted_acts(acts, |k, a| keep(a).then(|| key([a.target_author, a.target, a.minute, k])));
    }
    radix_sorted(acts, ub + tb + mb, |a| {
        keep(a).then(|| ((a.target_author as u64) << tb | a.target as u64) << mb | (a.minute - lo) as u64)
    })
}

/// Bits needed to hold `x`.
pub(super) fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The first and last minute of `acts` ((0, 0) for none).
pub(super) fn minute_range(acts: &[Act]) -> (u32, u32) {
    let (lo, hi) = acts.iter().fold((u32::MAX, 0), |(lo, hi), a| (lo.min(a.minute), hi.max(a.minute)));
    (lo.min(hi), hi)
}

/// Bits per digit of [`radix_sorted`].
pub(super) const DIGIT: u32 = 11;

/// Indices of the acts `key` keeps, in (key, index) order, where keys fit in `bits` bits: a
/// stable least-significant-digit radix sort (the acts are listed in index order, and a
/// stable sort keeps that order among equal keys). Digits that are the same in every key
/// are skipped. About four times faster than comparison sorting 100,000 keys with the
/// index appended.
pub(super) fn radix_sorted(acts: &[Act], bits: u32, key: impl Fn(&Act) -> Option<u64> + Sync) -> Vec<u32> {
    let mut items: Vec<(u64, u32)> = Vec::with_capacity(acts.len());
    items.extend(acts.iter().enumerate().filter_map(|(k, a)| key(a).map(|x| (x, k as u32))));
    let passes = bits.div_ceil(DIGIT) as usize;
    let radix = 1usize << DIGIT;
    let mut counts = vec![0u32; passes * radix];
    for &(x, _) in &items {
        for p in 0..passes {
            counts[p * radix + (x >> (p as u32 * DIGIT)) as usize % radix] += 1;
        }
    }
    let mut spare = vec![(0u64, 0u32); items.len()];
    for p in 0..passes {
        let counts = &mut counts[p * radix..(p + 1) * radix];
        if counts.iter().any(|&n| n as usize == items.len()) {
            continue;
        }
        let mut at = 0;
        for n in counts.iter_mut() {
            (*n, at) = (at, at + *n);
        }
        for &(x, k) in &items {
            let d = (x >> (p as u32 * DIGIT)) as usize % radix;
            spare[counts[d] as usize] = (x, k);
            counts[d] += 1;
        }
        std::mem::swap(&mut items, &mut spare);
    }
    items.into_iter().map(|(_, k)| k).collect()
}

/// Acts (indices into `acts`) that `key` keeps, sorted by their key (unique: it ends in the index).
pub(super) fn sorted_acts(acts: &[Act], key: impl Fn(u32, &Act) -> Option<u128> + Sync) -> Vec<u32> {
    let mut keys: Vec<u128> = acts.par_iter().enumerate().filter_map(|(k, a)| key(k as u32, a)).collect();
    keys.par_sort_unstable();
    keys.into_iter().map(|x| x as u32).collect()
}

/// The rest of pass (1), in `by_author` order: each act into its author's history, and the
/// reflections pass (1) formed into the store. Returns how many formed.
pub(super) fn record(
    history: &mut History,
    reflections: &mut Reflections,
    last: &mut Vec<(u32, Reflection)>,
    acts: &[Act],
    by_author: &[u32],
    formed: &[Option<Reflection>],
    (entity, category): (u16, u8),
) -> usize {
    history.reserve(by_author.len());
    let mut n = 0;
    for (&k, formed) in by_author.iter().zip(formed) {
        let act = &acts[k as usize];
        history.push(
            act.author,
            Record {
                minute: act.minute,
                other: act.target_author,
                thread: act.thread,
                entity,
                kind_category: act.kind as u8 | category << 4,
                stance: act.stance(),
            },
        );
        if let Some(r) = *formed {
            reflections.add(act.author, r);
            last.push((act.author, r));
            n += 1;
        }
    }
    n
}

/// Recent actions a routine reflection looks at for a streak.
pub(super) const STREAK_OF: usize = 32;

/// The reflection of `kind` user `u` forms at `minute` about `subject` with feeling
/// `valence`, given their `recent` actions as (entity, stance), newest first (at most
/// [`STREAK_OF`]): a routine one becomes a streak when most of them are about one entity.
/// `None` without a subject or a template.
#[allow(clippy::too_many_arguments)]
pub(super) fn form(
    bank: &Bank,
    u: u32,
    kind: Kind,
    minute: u32,
    category: u8,
    subject: Option<u32>,
    valence: f32,
    recent: impl Iterator<Item = (u16, i8)>,
) -> Option<Reflection> {
    // A streak: most of the recent actions about one subject with one feeling.
    let mut kind = kind;
    let mut subject = subject;
    let mut sign = if valence > 0.2 {
        1
    } else if valence < -0.2 {
        -1
    } else {
        0
    };
    if kind == Kind::Routine {
        // Per entity among the recent actions: (entity, count, stance sum); at most 32.
        let mut counts = [(0u16, 0u32, 0i32); STREAK_OF];
        let mut distinct = 0usize;
        let mut n = 0u32;
        for (entity, stance) in recent.take(STREAK_OF) {
            n += 1;
            if entity != u16::MAX {
                let k = counts[..distinct].iter().position(|c| c.0 == entity).unwrap_or_else(|| {
                    counts[distinct] = (entity, 0, 0);
                    distinct += 1;
                    distinct - 1
                });
                counts[k].1 += 1;
                counts[k].2 += stance.signum() as i32;
            }
        }
        if let Some(&(e, c, s)) = counts[..distinct].iter().max_by_key(|&&(e, c, _)| (c, std::cmp::Reverse(e))) {
            if c * 2 >= n && c >= 3 {
                kind = Kind::Streak;
                subject = Some(e as u32);
                sign = if s * 3 > c as i32 {
                    1
                } else if s * 3 < -(c as i32) {
                    -1
                } else {
                    0
                };
            }
        }
    }
    let subject = subject?;
    let choices = bank.choices(kind, sign);
    if choices.is_empty() {
        return None;
    }
    let h = crate::rng::hash3(u as u64, 0x7265_666c, minute as u64, subject as u64);
    let template = choices[(h % choices.len() as u64) as usize];
    let importance = match kind {
        Kind::Peak => 220,
        Kind::Feud => 200,
        Kind::Streak => 160 + (valence.abs() * 60.0) as u32,
        Kind::Praise => 140,
        Kind::Routine => 90,
    }
    .min(255) as u8;
    Some(Reflection { minute, subject, template, importance, category, sign, reserved: [0; 3] })
}

/// For `len` items sorted by user (`user_at(i)`), the item ranges of each shard of
/// [`SHARD`] users among `users`; items of users beyond are in none.
pub(super) fn shard_ranges(users: usize, len: usize, user_at: impl Fn(usize) -> u32) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::with_capacity(users.div_ceil(SHARD));
    let mut start = 0;
    for s in 0..users.div_ceil(SHARD) {
        let end = ((s + 1) * SHARD).min(users) as u64;
        let (mut lo, mut hi) = (start, len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (user_at(mid) as u64) < end {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        out.push(start..lo);
        start = lo;
    }
    out
}

/// Mood deviations and fatigue of a cell at `minute`, after decay.
pub(super) fn decayed(config: &StateConfig, m: &Mental, minute: u32) -> (f32, f32, f32) {
    if m.minute == 0 {
        return (0.0, 0.0, 0.0);
    }
    let dt = minute.saturating_sub(m.minute) as f32;
    // No time passed is common within a burst; skip the library calls then.
    if dt == 0.0 {
        return (m.valence as f32 / 127.0, m.arousal as f32 / 127.0, m.fatigue as f32 / 255.0);
    }
    let k = (-dt / (config.mood_half_life_hours * 60.0)).exp2();
    let fatigue = m.fatigue as f32 / 255.0 * (-dt / (config.energy_half_life_hours * 60.0)).exp2();
    (m.valence as f32 / 127.0 * k, m.arousal as f32 / 127.0 * k, fatigue)
}

/// Moves a cell's mood by (`dv`, `da`) and its fatigue by `fatigue`, after decay to `minute`.
pub(super) fn nudge(config: &StateConfig, cell: &mut Cell, minute: u32, dv: f32, da: f32, fatigue: f32) {
    let (v, a, f) = decayed(config, &cell.mental, minute);
    let m = &mut cell.mental;
    m.valence = to_i8(v + dv);
    m.arousal = to_i8(a + da);
    m.fatigue = ((f + fatigue).clamp(0.0, 1.0) * 255.0) as u8;
    m.minute = minute.max(m.minute);
}

/// Pass (1) on the author's cell: mood, energy, cooldown, ticks, obsession, and whether a
/// reflection forms (with the valence it forms at; the counter is reset here).
pub(super) fn author_cell(
    config: &StateConfig,
    population: &Population,
    cell: &mut Cell,
    act: &Act,
    topic: Option<u8>,
    intensity: f32,
) -> (Option<Kind>, f32) {
    let (cost, weight) = match act.kind {
        PostKind::Post => (10.0, 1.0),
        PostKind::Reply | PostKind::Quote => (7.0, 0.8),
        PostKind::Gif => (4.0, 0.5),
        PostKind::Repost => (2.0, 0.4),
        PostKind::Like => (1.0, 0.25),
    };
    let sign = act.sign as f32;
    if cell.flags & 1 == 0 {
        cell.habits.baseline = to_i8(UserState::baseline(population, act.author).0);
        cell.flags |= 1;
    }
    let minute = act.minute;
    nudge(
        config,
        cell,
        minute,
        sign * 0.15 * weight * (0.5 + intensity),
        0.08 * weight * (intensity + act.hostile as u8 as f32),
        cost / 255.0,
    );
    cell.cooldown_until = cell.cooldown_until.max(minute.saturating_add(config.cooldown_minutes));
    cell.ticks = cell.ticks.saturating_add(1);
    if let Some(t) = topic {
        obsess(&mut cell.habits, t);
    }
    cell.habits.since_reflection = cell.habits.since_reflection.saturating_add(1);
    let now = cell.habits.baseline as f32 / 127.0 + cell.mental.valence as f32 / 127.0;
    let mut formed = None;
    if cell.mental.peaked == 0 && now.abs() >= config.peak {
        cell.mental.peaked = 1;
        formed = Some(Kind::Peak);
    } else if cell.mental.peaked == 1 && now.abs() < config.peak / 2.0 {
        cell.mental.peaked = 0;
    }
    if formed.is_none() && config.reflect_every > 0 && cell.habits.since_reflection >= config.reflect_every {
        formed = Some(Kind::Routine);
    }
    if formed.is_some() {
        cell.habits.since_reflection = 0;
    }
    (formed, now)
}

/// Pass (2) on the cell of an author whose post got its `count`-th reaction `act`: each
/// post's k-th reaction counts 1/k (support) or 1/√k (hostility), so a viral post moves its
/// author a lot but not without bound; the first reaction moves their habits toward what the
/// post did. True when this reaction makes the post praised (a reflection forms; the counter
/// is reset here).
pub(super) fn received_cell(config: &StateConfig, cell: &mut Cell, act: &Act, count: u32, posts: &[Post]) -> bool {
    let n = count as f32;
    if act.hostile {
        nudge(config, cell, act.minute, -0.08 / n.sqrt(), 0.1 / n.sqrt(), 0.0);
        return false;
    }
    nudge(config, cell, act.minute, 0.03 / n, 0.01 / n, 0.0);
    let praised = count == config.praise_at.max(1);
    if praised {
        cell.habits.since_reflection = 0;
    }
    if count == 1 {
        let text = posts[act.target as usize].text.as_deref().unwrap_or("");
        let step = config.drift_step as i16;
        let h = &mut cell.habits;
        let emoji = text.chars().any(|c| c as u32 >= 0x1F000);
        h.emoji = (h.emoji as i16 + if emoji { step } else { -step / 2 }).clamp(-64, 64) as i8;
        let tag = text.contains('#');
        h.hashtag = (h.hashtag as i16 + if tag { step } else { -step / 2 }).clamp(-64, 64) as i8;
    }
    praised
}

/// How much an action moves its author's relationship to the author it answers.
pub(super) fn relation_delta(w: &RelationWeights, act: &Act) -> f32 {
    match (act.kind, act.hostile) {
        (PostKind::Like, _) => w.like,
        (PostKind::Repost, _) => w.repost,
        (PostKind::Reply, false) => w.reply,
        (PostKind::Reply, true) => w.hostile_reply,
        (PostKind::Quote, false) => w.quote,
        (PostKind::Quote, true) => w.hostile_quote,
        (PostKind::Gif, false) => w.gif,
        (PostKind::Gif, true) => w.hostile_gif,
        (PostKind::Post, _) => 0.0,
    }
}
