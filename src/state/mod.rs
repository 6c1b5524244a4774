//! Evolving users: mood, energy, obsessions, action history, reflections, relationships,
//! drifting style habits, cooldowns and ticks, experiment tags and external ids, kept compact
//! for millions of users and updated as events and interactions happen.
//!
//! Dense per-user columns (33 bytes a user, all zero for a user nothing happened to, so untouched
//! users cost only untouched pages): the mental state as deviations from the user's baseline
//! (`Mental`), habits and counters (`Habits`), the cooldown-until minute, the tick count, the
//! history window's head, and a ceiling byte bounding what the state can add to the user's
//! reaction probability ([`UserState::factor_ceilings`], which the filter reads before the
//! rest). Sparse stores: history chunks (`history`), relationships
//! (`relations`), reflections (`reflect`), external ids.
//!
//! Rules (all documented defaults in [`StateConfig`]):
//! - **Mood** is a valence and an arousal deviation from the baseline the user's traits give
//!   (extraversion and agreeableness up, neuroticism down); each deviation halves every
//!   `mood_half_life_hours` of game time. An event moves everyone affiliated to its
//!   stakeholders (their team lost: fans down, rival fans up), whether or not they post
//!   ([`UserState::feel`]). An action moves the author's valence by its
//!   sentiment (and arousal by the event's intensity); reactions received lift it (the k-th
//!   reaction to a post by 0.03/k); hostile replies and quotes received ("dunked on") lower
//!   valence by 0.08/√k and raise arousal.
//!   Time of day shades the mood as read: mornings (6–10 local) refreshed, late nights (0–4)
//!   irritable. Scheduled shifts ([`MoodShift`]) move everyone or one tag at a game time.
//! - **Energy**: each action costs fatigue (post 10, reply 7, quote 7, GIF 4, repost 2, like 1
//!   out of 255), recovered toward rested with half-life `energy_half_life_hours` (3 h).
//! - **Behaviour**: the filter multiplies a user's reaction probability by
//!   [`MoodNow::reaction_factor`] (an exhausted user goes quiet, an aroused one reacts more) and
//!   by their previous involvement with the event's stakeholders; the action stage lets angry
//!   users reply and quote more and sharper, bored users like more, and the mood tints the
//!   sentiment of posts about neutral events.
//! - **History**: a rolling window per user (`history_window`, default 64 actions), older
//!   actions folded into counters.
//! - **Retention** ([`UserState::retain`], once per game day): actions older than
//!   `history_days` (30) fold, relationships whose weight drifted below
//!   `relations.forget_below` (0.02) and reflections older than `reflection_days` (10) are
//!   forgotten, so the state stops growing once a run is older than those spans.
//! - **Reflections**: every `reflect_every` actions, or when |valence| crosses `peak`, or when a
//!   feud is returned, or when a post draws `praise_at` reactions.
//! - **Relationships**: see [`relations`]; the follows and unfollows they cause: [`follows`].
//! - **Style drift**: when a post gets its first reaction, its author's emoji and hashtag habits
//!   move a step toward what that post did (+`drift_step` if it had them, −half a step if not,
//!   bounded to ±64 out of 255).
//!
//! Invariants: updates happen in a fixed order after each event (sorted by user and time), so
//! the state is a pure function of (population, events); the parallel passes split users into
//! shards of [`relations::SHARD`], and no user's data is reachable from two threads while it
//! changes.

mod cells;
mod config;
pub mod follows;
pub mod history;
pub mod io;
mod passes;
pub mod reflect;
pub mod relations;
#[cfg(test)]
mod tests;

pub use crate::ids::{IdHasher, IdMap};
pub use cells::*;
pub use config::*;
use passes::*;

use crate::classify::Classification;
use crate::error::{Error, Result};
use crate::events::GameTime;
use crate::population::columns::dq8;
use crate::population::Population;
use crate::prefetch::load_together;
use crate::timeline::{Post, PostId, PostKind};
use crate::world::NO_ENTITY;
use follows::Follows;
use history::{History, Record};
use rayon::prelude::*;
use reflect::{Bank, Kind, Reflection, Reflections};
use relations::{label_of, Label, RelationWeights, Relations, SHARD};
use std::collections::{BTreeMap, HashMap};

/// Counts from one [`UserState::apply`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Actions recorded.
    pub actions: usize,
    /// Reflections formed.
    pub reflections: usize,
    /// Relationship updates.
    pub interactions: usize,
    /// Follows the relationships added.
    pub follows: usize,
    /// Follows the relationships removed.
    pub unfollows: usize,
}

/// A follow or unfollow a relationship caused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FollowChange {
    /// Who (un)followed.
    pub user: u32,
    /// Whom.
    pub other: u32,
    /// Game minute.
    pub minute: u32,
    /// True: followed; false: unfollowed.
    pub follows: bool,
}

/// The state of all users.
#[derive(Clone, Debug)]
pub struct UserState {
    config: StateConfig,
    bank: Bank,
    cells: Vec<Cell>,
    history: History,
    relations: Relations,
    follows: Follows,
    /// The follow changes of the last [`UserState::apply`].
    last_follows: Vec<FollowChange>,
    /// The reflections the last [`UserState::apply`] formed.
    last_reflections: Vec<(u32, Reflection)>,
    reflections: Reflections,
    tag_names: Vec<String>,
    external: BTreeMap<u32, String>,
    /// Scheduled shifts already applied.
    shifts_done: usize,
    /// The last game day the retention sweep ran for ([`UserState::retain`]).
    swept_day: u32,
    /// Per user: the most the state's factors on the reaction probability can give (see
    /// [`UserState::factor_ceilings`]), kept with every change to the cell or the history.
    ceilings: Vec<u8>,
    /// False once the history was changed from outside ([`UserState::history_mut`]): the
    /// ceilings may then be short.
    ceilings_exact: bool,
}

impl UserState {
    /// A fresh state for `users` users: everyone at their baseline, rested, with no history.
    pub fn new(users: usize, config: StateConfig) -> Result<UserState> {
        if !(config.mood_half_life_hours > 0.0 && config.energy_half_life_hours > 0.0) {
            return Err(Error::Config("state: the mood and energy half-lives must be positive".into()));
        }
        if config.history_window == 0 {
            return Err(Error::Config("state: history_window must be at least 1".into()));
        }
        let mut shifts = config.shifts.clone();
        shifts.sort_by_key(|s| s.at);
        let config = StateConfig { shifts, ..config };
        Ok(UserState {
            bank: Bank::embedded()?,
            cells: vec![Cell::default(); users],
            history: History::new(users, config.history_window),
            relations: Relations::new(),
            follows: Follows::new(),
            last_follows: Vec::new(),
            last_reflections: Vec::new(),
            reflections: Reflections::new(),
            tag_names: Vec::new(),
            external: BTreeMap::new(),
            shifts_done: 0,
            swept_day: 0,
            ceilings: vec![0; users],
            ceilings_exact: true,
            config,
        })
    }

    /// Users covered.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True for a state of no users.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The rules in force.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    /// The reflection texts.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// The baseline (valence, arousal) of user `u` from their traits.
    pub fn baseline(population: &Population, u: u32) -> (f32, f32) {
        let b = population.columns().persona[u as usize].big5;
        let (e, a, n) = (dq8(b[2]), dq8(b[3]), dq8(b[4]));
        (0.3 * (e - n) + 0.2 * (a - 0.5), 0.4 * (e - 0.5))
    }

    fn decayed(&self, u: usize, minute: u32) -> (f32, f32, f32) {
        decayed(&self.config, &self.cells[u].mental, minute)
    }

    /// User `u`'s (valence, arousal) deviation from their baseline and their fatigue at
    /// `minute`, after decay (time of day aside).
    pub fn deviation(&self, u: u32, minute: u32) -> (f32, f32, f32) {
        if (u as usize) < self.len() {
            self.decayed(u as usize, minute)
        } else {
            (0.0, 0.0, 0.0)
        }
    }

    /// User `u`'s mood at game minute `minute`, with the time of day at their local hour.
    pub fn mood(&self, population: &Population, u: u32, minute: u32) -> MoodNow {
        let (bv, ba) = UserState::baseline(population, u);
        let (dv, da, fatigue) = self.decayed(u as usize, minute);
        let c = population.columns();
        let town = c.demographics[u as usize].town;
        let hour = ((minute as f64 / 60.0 + population.world().town_offset(town) as f64
            - c.persona[u as usize].hour_shift as f64)
            .rem_euclid(24.0)) as u32;
        let (tv, ta, te) = match hour {
            6..=9 => (0.05, 0.0, 0.1),
            0..=3 => (-0.1, 0.1, -0.1),
            _ => (0.0, 0.0, 0.0),
        };
        MoodNow {
            valence: (bv + dv + tv).clamp(-1.0, 1.0),
            arousal: (ba + da + ta).clamp(-1.0, 1.0),
            energy: (1.0 - fatigue + te).clamp(0.0, 1.0),
        }
    }

    /// One value from each scattered line [`UserState::mood`] reads for user `u` (the cell,
    /// persona and demographics), for [`load_together`] before a batch of moods.
    pub(crate) fn mood_lines(&self, population: &Population, u: u32) -> u32 {
        let c = population.columns();
        self.cooldown_until(u) ^ c.persona[u as usize].big5[2] as u32 ^ c.demographics[u as usize].town as u32
    }

    /// True if user `u` acted within the cooldown before `minute`.
    pub fn cooling(&self, u: u32, minute: u32) -> bool {
        self.cells.get(u as usize).is_some_and(|c| minute < c.cooldown_until)
    }

    /// Times user `u` has acted.
    pub fn ticks(&self, u: u32) -> u32 {
        self.cells.get(u as usize).map(|c| c.ticks).unwrap_or(0)
    }

    /// The cooldown-until game minute of user `u` (0: none).
    pub fn cooldown_until(&self, u: u32) -> u32 {
        self.cells.get(u as usize).map(|c| c.cooldown_until).unwrap_or(0)
    }

    /// Habits and counters of user `u`.
    pub fn habits(&self, u: u32) -> Habits {
        self.cells.get(u as usize).map(|c| c.habits).unwrap_or_default()
    }

    /// The stored mental state of user `u`.
    pub fn mental(&self, u: u32) -> Mental {
        self.cells.get(u as usize).map(|c| c.mental).unwrap_or_default()
    }

    /// Previous involvement: 1 + 0.1 per action in the user's last 64 about one of `entities`,
    /// up to [`INVOLVEMENT_FACTOR_MAX`].
    pub fn involvement_factor(&self, u: u32, entities: &[u16]) -> f32 {
        if entities.is_empty() || self.history.len_of(u) == 0 {
            return 1.0;
        }
        let n = self.history.recent(u).take(64).filter(|r| entities.contains(&r.entity)).count();
        (1.0 + 0.1 * n as f32).min(INVOLVEMENT_FACTOR_MAX)
    }

    /// The history store.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Per user, a byte bounding their mood and involvement factors ([`ceiling_sixteenths`]
    /// reads it): the filter's bound before it reads the state. `None` after
    /// [`UserState::history_mut`], when they may be short.
    pub fn factor_ceilings(&self) -> Option<&[u8]> {
        self.ceilings_exact.then_some(&self.ceilings[..])
    }

    /// Sets user `u`'s ceiling byte from their cell and history.
    fn refresh_ceiling(&mut self, u: usize) {
        self.ceilings[u] = ceiling_byte(self.cells[u].mental.arousal, self.history.len_of(u as u32));
    }

    /// Sets every user's ceiling byte (after loading).
    pub(crate) fn refresh_ceilings(&mut self) {
        let history = &self.history;
        self.ceilings.par_iter_mut().zip(&self.cells).enumerate().for_each(|(u, (c, cell))| {
            *c = ceiling_byte(cell.mental.arousal, history.len_of(u as u32));
        });
        self.ceilings_exact = true;
    }

    /// The history store, to record actions from outside the pipeline (imports, tests). The
    /// filter then bounds every user's state factors by the largest possible ones (slower,
    /// the same decisions).
    pub fn history_mut(&mut self) -> &mut History {
        self.ceilings_exact = false;
        &mut self.history
    }

    /// The relationships, to record interactions from outside the pipeline.
    pub fn relations_mut(&mut self) -> &mut Relations {
        &mut self.relations
    }

    /// The relationships.
    pub fn relations(&self) -> &Relations {
        &self.relations
    }

    /// The changes relationships made to the follow graph.
    pub fn follows(&self) -> &Follows {
        &self.follows
    }

    /// The follow changes, to record the game's own follows and unfollows.
    pub fn follows_mut(&mut self) -> &mut Follows {
        &mut self.follows
    }

    /// Whom user `a` follows now: the population's graph with the changes applied.
    pub fn following(&self, population: &Population, a: u32) -> Vec<u32> {
        self.follows.following(population.graph(), a)
    }

    /// The follows and unfollows the last [`UserState::apply`] caused, in update order.
    pub fn last_follow_changes(&self) -> &[FollowChange] {
        &self.last_follows
    }

    /// The reflections.
    pub fn reflections(&self) -> &Reflections {
        &self.reflections
    }

    /// Current relationship weight of `a` toward `b`.
    pub fn relation(&self, a: u32, b: u32, minute: u32) -> f32 {
        self.relations.weight(a, b, minute, &self.config.relations)
    }

    /// Label of `a` toward `b`.
    pub fn label(&self, a: u32, b: u32, minute: u32) -> Label {
        self.relations.label(a, b, minute, &self.config.relations)
    }

    /// The experiment tag names, bit `k` = name `k`.
    pub fn tag_names(&self) -> &[String] {
        &self.tag_names
    }

    /// The bit of a tag name.
    pub fn tag_bit(&self, name: &str) -> Option<u8> {
        self.tag_names.iter().position(|t| t == name).map(|k| k as u8)
    }

    /// True if user `u` carries tag bit `bit`.
    pub fn has_tag(&self, u: u32, bit: u8) -> bool {
        self.cells.get(u as usize).is_some_and(|c| c.habits.tags & (1 << bit) != 0)
    }

    /// User `u`'s external id, if mapped to a real platform user.
    pub fn external_id(&self, u: u32) -> Option<&str> {
        self.external.get(&u).map(String::as_str)
    }

    /// Users mapped to external ids.
    pub fn external_ids(&self) -> &BTreeMap<u32, String> {
        &self.external
    }

    /// Reads tags and external ids from JSON lines `{"user": 17, "tags": ["group-a"],
    /// "external_id": "u_8812"}`. At most 8 distinct tags; errors name file, line and field.
    pub fn load_tags(&mut self, file: &str, text: &str) -> Result<()> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line {
            user: u32,
            #[serde(default)]
            tags: Vec<String>,
            #[serde(default)]
            external_id: Option<String>,
        }
        for (line, l) in crate::jsonl::parse_lines::<Line>(file, text)? {
            if l.user as usize >= self.len() {
                return Err(Error::data(
                    file,
                    line,
                    "user",
                    format!("no user {} (population of {})", l.user, self.len()),
                ));
            }
            for t in &l.tags {
                let bad = t.is_empty() || t.len() > 64 || !t.chars().all(|c| c.is_alphanumeric() || "-_.:".contains(c));
                if bad {
                    return Err(Error::data(file, line, "tags", format!("{t:?} is not a tag (letters, digits, -_.:)")));
                }
                let bit = match self.tag_bit(t) {
                    Some(b) => b,
                    None if self.tag_names.len() < 8 => {
                        self.tag_names.push(t.clone());
                        (self.tag_names.len() - 1) as u8
                    }
                    None => {
                        return Err(Error::data(file, line, "tags", format!("{t:?} would be a 9th tag (at most 8)")))
                    }
                };
                self.cells[l.user as usize].habits.tags |= 1 << bit;
            }
            if let Some(id) = l.external_id {
                if id.is_empty() || id.len() > 256 {
                    return Err(Error::data(file, line, "external_id", "must be 1 to 256 bytes"));
                }
                self.external.insert(l.user, id);
            }
        }
        Ok(())
    }

    /// Starts the cooldown of users who reacted at `time` (as an action at that time would).
    pub fn mark_active(&mut self, users: impl IntoIterator<Item = crate::ids::UserId>, time: GameTime) {
        let until = minute_of(time).saturating_add(self.config.cooldown_minutes);
        for user in users {
            if let Some(c) = self.cells.get_mut(user.index()) {
                c.cooldown_until = c.cooldown_until.max(until);
            }
        }
    }

    /// Forgets what events did (moods, cooldowns, habits, histories, relationships, follows,
    /// reflections, the shifts applied), keeping tags and external ids: the state
    /// [`UserState::new`] gives plus [`UserState::copy_tags_from`], in place (its memory is
    /// already paged in).
    pub fn forget(&mut self) {
        self.cells.par_iter_mut().for_each(|c| {
            let tags = c.habits.tags;
            *c = Cell::default();
            c.habits.tags = tags;
        });
        self.ceilings.fill(0);
        self.ceilings_exact = true;
        self.history.clear();
        self.relations.clear();
        self.follows = Follows::new();
        self.last_follows.clear();
        self.last_reflections.clear();
        self.reflections = Reflections::new();
        self.shifts_done = 0;
        self.swept_day = 0;
    }

    /// Takes over `other`'s tags and external ids (same population).
    pub fn copy_tags_from(&mut self, other: &UserState) {
        self.tag_names = other.tag_names.clone();
        self.external = other.external.clone();
        for (h, o) in self.cells.iter_mut().zip(&other.cells) {
            h.habits.tags = o.habits.tags;
        }
    }

    /// Applies the scheduled shifts due by `minute` (each once).
    pub fn advance(&mut self, minute: u32) {
        self.retain(minute);
        while let Some(s) = self.config.shifts.get(self.shifts_done) {
            if minute_of(s.at) > minute {
                break;
            }
            let s = s.clone();
            self.shifts_done += 1;
            let bit = match &s.tag {
                Some(t) => match self.tag_bit(t) {
                    Some(b) => Some(b),
                    None => continue,
                },
                None => None,
            };
            let at = minute_of(s.at);
            for u in 0..self.len() {
                if bit.is_some_and(|b| self.cells[u].habits.tags & (1 << b) == 0) {
                    continue;
                }
                let (v, a, f) = self.decayed(u, at);
                self.cells[u].mental = Mental {
                    valence: to_i8(v + s.valence),
                    arousal: to_i8(a + s.arousal),
                    fatigue: ((f - s.energy).clamp(0.0, 1.0) * 255.0) as u8,
                    peaked: self.cells[u].mental.peaked,
                    minute: at,
                };
                self.refresh_ceiling(u);
            }
        }
    }

    /// The retention sweep, once per game day (at the first call in a new day, as of that
    /// day's start): folds actions older than `history_days`, forgets relationships that faded
    /// below `relations.forget_below` and reflections older than `reflection_days`. What is
    /// kept stops growing once a run is older than those spans.
    pub fn retain(&mut self, minute: u32) {
        let day = minute / 1440;
        if day <= self.swept_day {
            return;
        }
        self.swept_day = day;
        let at = day * 1440;
        let ago = |days: f32| (days > 0.0).then(|| at.saturating_sub((days * 1440.0) as u32)).filter(|&m| m > 0);
        if let Some(before) = ago(self.config.history_days) {
            for u in self.history.forget_before(before) {
                self.refresh_ceiling(u as usize);
            }
        }
        self.relations.forget(at, &self.config.relations);
        if let Some(before) = ago(self.config.reflection_days) {
            self.reflections.forget_before(before);
        }
    }

    /// Moves the mood of users an event touches whether or not they react (see
    /// [`crate::filter::affected`]): valence by side × the event's valence × 0.12 × (0.5 +
    /// intensity), arousal by 0.05 × intensity. Parallel over shards of users; a user listed
    /// twice is moved twice, in list order.
    pub fn feel(&mut self, affected: &[(u32, i8)], class: &Classification, minute: u32) {
        let valence = class.valence.sign();
        let intensity = class.intensity.clamp(0.0, 1.0);
        if valence == 0.0 && intensity == 0.0 {
            return;
        }
        let sorted;
        let list = if affected.windows(2).all(|w| w[0].0 <= w[1].0) {
            affected
        } else {
            let mut v = affected.to_vec();
            v.sort_by_key(|x| x.0); // stable: a user's entries keep their order
            sorted = v;
            &sorted
        };
        let ranges = shard_ranges(self.len(), list.len(), |i| list[i].0);
        let UserState { config, cells, ceilings, .. } = &mut *self;
        let shards = cells.par_chunks_mut(SHARD).zip(ceilings.par_chunks_mut(SHARD));
        shards.zip(ranges).enumerate().for_each(|(s, ((cells, ceilings), range))| {
            for block in list[range].chunks(BLOCK) {
                touch(block.iter().map(|&(u, _)| &cells[u as usize - s * SHARD]));
                for &(u, side) in block {
                    let dv = side as f32 * valence * 0.12 * (0.5 + intensity);
                    let cell = &mut cells[u as usize - s * SHARD];
                    nudge(config, cell, minute, dv, 0.05 * intensity, 0.0);
                    let c = &mut ceilings[u as usize - s * SHARD];
                    *c = with_arousal(*c, cell.mental.arousal);
                }
            }
        });
    }

    /// Updates everyone touched by one event's posts, in three ordered passes: (1) each
    /// author, by (user, time): mood, energy, cooldown, ticks, history, obsessions, reflections;
    /// (2) each author reacted to, by (user, post, time): mood from the reactions received,
    /// style drift, praise; (3) relationships, by (acting user, time), where the other side's
    /// weight is read as it stood before the pass.
    ///
    /// Each pass runs in parallel over shards of [`relations::SHARD`] users (a pass changes
    /// only the users it is about, each shard in the sorted order). Pass (3) touches no cell,
    /// so it runs beside passes (1) and (2). Pass (1) forms its reflections from the history
    /// as it stood before the burst plus the burst's own acts; what shards share — the
    /// history pool and the reflection store — is then written in one sequential pass in the
    /// same order, beside pass (2), which never reads it. The result is the same for any
    /// thread count.
    pub fn apply(&mut self, population: &Population, class: &Classification, posts: &[Post]) -> ApplyReport {
        let mut report = ApplyReport::default();
        let world = population.world();
        let entity = class.stakeholders.iter().filter_map(|s| world.find(s)).next().filter(|&e| e != NO_ENTITY);
        let topic = class.category.topics().first().map(|t| t.index() as u8);
        let about = entity.map(|e| e as u32).or(topic.map(|t| reflect::subject::TOPIC + t as u32));
        let category = class.category as u8;
        let intensity = class.intensity.clamp(0.0, 1.0);
        let users = self.len();
        self.last_reflections.clear();
        // Post ids from one event are `base | index`: the records are built on that
        // assumption while checking it, and built again with a map of ids if it fails.
        let base = posts.first().map(|p| p.id.0 & !0xffff_ffff).unwrap_or(0);
        let mismatch = std::sync::atomic::AtomicBool::new(false);
        let mut acts = acts_of(posts, |k, p| {
            if p.id.0 != base | k as u64 {
                mismatch.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let id = p.parent.or(p.quoted)?;
            let t = (id.0 & 0xffff_ffff) as usize;
            (id.0 & !0xffff_ffff == base && t < posts.len()).then_some(t)
        });
        if mismatch.into_inner() {
            let map: HashMap<PostId, usize> = posts.iter().enumerate().map(|(k, p)| (p.id, k)).collect();
            acts = acts_of(posts, |_, p| map.get(&p.parent.or(p.quoted)?).copied());
        }
        let config = &self.config.clone();

        let by_author = by_author(&acts, users);
        // The main stakeholder as history records keep it.
        let stake = entity.unwrap_or(u16::MAX);
        // Pass (3) touches only relationships and follows, so it runs beside passes (1) and
        // (2), which touch cells; its feuds reset their users' reflection counters below.
        // The history and the reflections formed in pass (1) are written in order on one
        // thread beside pass (2), which never reads them. The reflections of passes (2) and
        // (3) are formed after, in that order.
        let UserState { cells, ceilings, history, reflections, last_reflections, bank, relations, follows, .. } =
            &mut *self;
        let ((formed_count, praised), (interactions, per_shard)) = rayon::join(
            || {
                let ctx =
                    AuthorsCtx { config, population, history, bank, topic, intensity, entity: stake, category, about };
                let formed = authors_pass(cells, ceilings, &ctx, &acts, &by_author);
                rayon::join(
                    || record(history, reflections, last_reflections, &acts, &by_author, &formed, (stake, category)),
                    || received_pass(cells, ceilings, config, &acts, posts, users),
                )
            },
            || relations_pass(relations, follows, config, &acts, &by_author, population.graph(), users),
        );
        report.actions += by_author.len();
        report.reflections += formed_count;
        for (u, minute) in praised {
            self.reflect(u, Kind::Praise, minute, category, about, 1.0);
            report.reflections += 1;
        }
        self.last_follows.clear();
        let mut feuds = Vec::new();
        for (f, c) in per_shard {
            feuds.extend(f);
            self.last_follows.extend(c);
        }
        report.follows = self.last_follows.iter().filter(|c| c.follows).count();
        report.unfollows = self.last_follows.len() - report.follows;
        report.interactions += interactions;
        for (a, b, minute) in feuds {
            self.cells[a as usize].habits.since_reflection = 0;
            self.reflect(a, Kind::Feud, minute, category, Some(reflect::subject::USER + b), -1.0);
            report.reflections += 1;
        }
        report
    }

    /// Forms a reflection of `kind` for user `u` about `subject` (a routine one becomes a
    /// streak when most recent actions share a subject). The caller has reset the user's
    /// `since_reflection`.
    fn reflect(&mut self, u: u32, kind: Kind, minute: u32, category: u8, subject: Option<u32>, valence: f32) {
        let recent = self.history.recent(u).take(STREAK_OF).map(|r| (r.entity, r.stance));
        if let Some(r) = form(&self.bank, u, kind, minute, category, subject, valence, recent) {
            self.reflections.add(u, r);
            self.last_reflections.push((u, r));
        }
    }

    /// The text of user `u`'s reflection `r`: the LLM's if it wrote one, else the template's
    /// with its subject named ("the Redhawks", "@handle", "sports").
    pub fn reflection_text(&self, population: &Population, u: u32, r: &Reflection) -> String {
        match self.reflections.written(u, r) {
            Some(t) => t.to_string(),
            None => self.bank.render(r.template, &subject_name(population, r.subject)),
        }
    }

    /// The reflections the last [`UserState::apply`] formed, in update order (what an LLM
    /// may rewrite, see [`UserState::write_reflection`]).
    pub fn last_reflections(&self) -> &[(u32, Reflection)] {
        &self.last_reflections
    }

    /// Gives user `u`'s reflection `r` a text of its own (an LLM's); false if `u` no longer
    /// holds it.
    pub fn write_reflection(&mut self, u: u32, r: &Reflection, text: String) -> bool {
        self.reflections.write(u, r, text)
    }

    /// Mood distribution over users events have touched (acted, reacted to, or affiliated to a
    /// stakeholder): shares of (negative, neutral, positive)
    /// valence at `minute`, mean energy, and the number of such users.
    pub fn mood_summary(&self, population: &Population, minute: u32) -> ([f64; 3], f64, usize) {
        let mut counts = [0usize; 3];
        let mut energy = 0.0;
        let mut n = 0;
        for u in 0..self.len() {
            if self.cells[u].mental.minute == 0 {
                continue;
            }
            let m = self.mood(population, u as u32, minute);
            counts[if m.valence < -0.15 {
                0
            } else if m.valence > 0.15 {
                2
            } else {
                1
            }] += 1;
            energy += m.energy as f64;
            n += 1;
        }
        let share = |c: usize| if n > 0 { c as f64 / n as f64 } else { 0.0 };
        ([share(counts[0]), share(counts[1]), share(counts[2])], if n > 0 { energy / n as f64 } else { 0.0 }, n)
    }

    /// Returned feuds at `minute`.
    pub fn feuds(&self, minute: u32) -> usize {
        self.relations.feuds(minute, &self.config.relations)
    }

    /// The returned feuds at `minute`, as pairs of users (a < b), ascending.
    pub fn feud_pairs(&self, minute: u32) -> Vec<(u32, u32)> {
        self.relations.feud_pairs(minute, &self.config.relations)
    }

    /// Mean energy at `minute` of the `share` of users who acted most (by times acted; ties
    /// by id), and how many they are: where fatigue shows, since most users act once or never.
    pub fn busiest_energy(&self, population: &Population, minute: u32, share: f64) -> (f64, usize) {
        let mut busy: Vec<(u32, u32)> =
            (0..self.len() as u32).map(|u| (self.ticks(u), u)).filter(|&(t, _)| t > 0).collect();
        let n = ((self.len() as f64 * share).ceil() as usize).min(busy.len());
        if n == 0 {
            return (1.0, 0);
        }
        busy.select_nth_unstable_by(n - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let sum: f64 = busy[..n].iter().map(|&(_, u)| self.mood(population, u, minute).energy as f64).sum();
        (sum / n as f64, n)
    }

    /// Bytes held by the whole state.
    pub fn bytes(&self) -> usize {
        self.len() * std::mem::size_of::<Cell>()
            + self.ceilings.len()
            + self.history.bytes()
            + self.relations.bytes()
            + self.follows.bytes()
            + self.reflections.bytes()
    }
}

/// How users name a reflection subject.
pub fn subject_name(population: &Population, subject: u32) -> String {
    use reflect::subject::{ENTITY_MAX, TOPIC, USER};
    if subject >= USER {
        format!("@{}", population.handle(crate::ids::UserId(subject - USER)))
    } else if subject >= TOPIC {
        crate::taxonomy::Topic::ALL.get((subject - TOPIC) as usize).map(|t| t.name().to_string()).unwrap_or_default()
    } else if subject < ENTITY_MAX && (subject as usize) < population.world().entities.len() {
        population.world().display_name(subject as u16)
    } else {
        String::new()
    }
}
