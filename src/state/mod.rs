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
//!   out of 255), recovered linearly over `energy_recovery_hours`.
//! - **Behaviour**: the filter multiplies a user's reaction probability by
//!   [`MoodNow::reaction_factor`] (an exhausted user goes quiet, an aroused one reacts more) and
//!   by their previous involvement with the event's stakeholders; the action stage lets angry
//!   users reply and quote more and sharper, bored users like more, and the mood tints the
//!   sentiment of posts about neutral events.
//! - **History**: a rolling window per user (`history_window`, default 500 actions), older
//!   actions folded into counters.
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

pub mod follows;
pub mod history;
pub mod io;
pub mod reflect;
pub mod relations;

use crate::classify::Classification;
use crate::error::{Error, Result};
use crate::events::GameTime;
use crate::population::columns::dq8;
use crate::population::Population;
use crate::prefetch::load_together;
use crate::timeline::{Post, PostId, PostKind};
use crate::world::NO_ENTITY;
use bytemuck::{Pod, Zeroable};
use follows::Follows;
use history::{History, Record};
use rayon::prelude::*;
use reflect::{Bank, Kind, Reflection, Reflections};
use relations::{label_of, Label, RelationWeights, Relations, SHARD};
use std::collections::{BTreeMap, HashMap};

/// A scheduled mood change at a game time, for everyone or for one tag.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoodShift {
    /// When.
    pub at: GameTime,
    /// Only users with this tag (default: everyone).
    #[serde(default)]
    pub tag: Option<String>,
    /// Valence change, −1..1.
    #[serde(default)]
    pub valence: f32,
    /// Arousal change, −1..1.
    #[serde(default)]
    pub arousal: f32,
    /// Energy change, −1..1 (negative tires).
    #[serde(default)]
    pub energy: f32,
}

/// Tunable rules of user state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Actions kept per user before folding (default 500).
    pub history_window: usize,
    /// A reflection every this many actions (default 25; 0 turns the rule off).
    pub reflect_every: u16,
    /// |valence| that makes an emotional peak (default 0.75).
    pub peak: f32,
    /// Reactions to one post that make its author reflect on the praise (default 10).
    pub praise_at: u32,
    /// Half-life of mood deviations in hours of game time (default 12).
    pub mood_half_life_hours: f32,
    /// Hours to recover from full exhaustion (default 8).
    pub energy_recovery_hours: f32,
    /// Minutes after an action during which the user is cooling down (default 30).
    pub cooldown_minutes: u32,
    /// Step of the emoji and hashtag habit drift, out of 255 (default 2).
    pub drift_step: i8,
    /// Relationship weights.
    pub relations: RelationWeights,
    /// Scheduled mood shifts.
    pub shifts: Vec<MoodShift>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            history_window: 500,
            reflect_every: 25,
            peak: 0.75,
            praise_at: 10,
            mood_half_life_hours: 12.0,
            energy_recovery_hours: 8.0,
            cooldown_minutes: 30,
            drift_step: 2,
            relations: RelationWeights::default(),
            shifts: Vec::new(),
        }
    }
}

/// The stored mental state: deviations from the baseline as of `minute` (8 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Mental {
    /// Valence deviation, −127..=127 (÷127).
    pub valence: i8,
    /// Arousal deviation, −127..=127 (÷127).
    pub arousal: i8,
    /// Fatigue, 0 (rested) ..= 255 (exhausted), as of `minute`.
    pub fatigue: u8,
    /// 1 once |valence| went past the peak, until it falls back below half of it.
    pub peaked: u8,
    /// Game minute of the last update (0: never).
    pub minute: u32,
}

/// Per-user habits and counters (10 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Habits {
    /// Up to two obsession topics (topic index + 1; 0 = none).
    pub obsession: [u8; 2],
    /// Their strengths.
    pub strength: [u8; 2],
    /// Emoji habit drift (added to the emoji rate, out of 255).
    pub emoji: i8,
    /// Hashtag habit drift.
    pub hashtag: i8,
    /// Actions since the last reflection.
    pub since_reflection: u16,
    /// Experiment tag bits (see [`UserState::tag_names`]).
    pub tags: u8,
    /// The user's baseline valence (÷127), cached at their first action (see `Cell::flags`).
    pub baseline: i8,
}

/// Everything dense about one user, in one place so an update touches one cache line
/// (28 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Cell {
    /// Mood and fatigue.
    pub mental: Mental,
    /// Habits and counters.
    pub habits: Habits,
    /// Bit 0: `habits.baseline` holds the user's baseline (it is cached at their first action,
    /// which may come after events or reactions first moved their mood). Other bits zero.
    pub flags: u8,
    /// Padding, zero.
    pub reserved: u8,
    /// Game minute until which the user cools down (0: none).
    pub cooldown_until: u32,
    /// Times the user has acted.
    pub ticks: u32,
}

/// A user's mood as read at a moment: absolute values, with the time of day applied.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MoodNow {
    /// −1 (miserable) .. 1 (elated).
    pub valence: f32,
    /// −1 (bored) .. 1 (wound up).
    pub arousal: f32,
    /// 0 (exhausted) .. 1 (rested).
    pub energy: f32,
}

/// Largest value of [`MoodNow::reaction_factor`].
pub const REACTION_FACTOR_MAX: f32 = 1.4;
/// Largest value of [`UserState::involvement_factor`].
pub const INVOLVEMENT_FACTOR_MAX: f32 = 1.5;

impl MoodNow {
    /// How much more (or less) likely than usual the user is to react at all: an exhausted
    /// user goes quiet, an aroused one reacts more. In `[0.3·0.3, REACTION_FACTOR_MAX]`.
    pub fn reaction_factor(&self) -> f32 {
        let energy = 0.3 + 0.7 * (self.energy / 0.5).min(1.0);
        (energy * (1.0 + 0.4 * self.arousal.max(0.0))).min(REACTION_FACTOR_MAX)
    }

    /// Anger: negative valence with high arousal, 0..1.
    pub fn anger(&self) -> f32 {
        (self.arousal.max(0.0) * (-self.valence).max(0.0) * 2.0).min(1.0)
    }

    /// Boredom: low arousal, 0..1.
    pub fn boredom(&self) -> f32 {
        (-self.arousal).max(0.0)
    }

    /// A word for it.
    pub fn word(&self) -> &'static str {
        if self.energy < 0.25 {
            "exhausted"
        } else if self.anger() > 0.25 {
            "angry"
        } else if self.valence < -0.25 {
            "down"
        } else if self.valence > 0.35 && self.arousal > 0.2 {
            "elated"
        } else if self.valence > 0.25 {
            "happy"
        } else if self.boredom() > 0.3 {
            "bored"
        } else {
            "calm"
        }
    }
}

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
    /// Per user: the most the state's factors on the reaction probability can give (see
    /// [`UserState::factor_ceilings`]), kept with every change to the cell or the history.
    ceilings: Vec<u8>,
    /// False once the history was changed from outside ([`UserState::history_mut`]): the
    /// ceilings may then be short.
    ceilings_exact: bool,
}

/// A user's ceiling byte: how far their arousal deviation can lift the mood's reaction factor
/// (low 5 bits, the positive deviation in 31sts, rounded up) and how many actions their
/// history window holds, up to 5 (high 3 bits: the involvement factor's largest). Zero for a
/// user nothing happened to.
fn ceiling_byte(arousal: i8, records: usize) -> u8 {
    let lift = (arousal.max(0) as u32 * 31).div_ceil(127) as u8;
    lift | (records.min(5) as u8) << 5
}

/// The ceiling byte with the arousal part of a new mental state.
fn with_arousal(byte: u8, arousal: i8) -> u8 {
    (byte & !31) | ceiling_byte(arousal, 0)
}

/// By ceiling byte: the most the product of [`MoodNow::reaction_factor`] and
/// [`UserState::involvement_factor`] can be at any game minute from the user's last update
/// on, in sixteenths, rounded up. The arousal deviation only decays; energy gives at most 1;
/// the baseline arousal is at most 0.2 and the night adds 0.1. An untouched user's: 18 (1.12).
pub fn ceiling_sixteenths(byte: u8) -> u32 {
    let arousal = 0.3 + (byte & 31) as f32 / 31.0;
    let mood = (1.0 + 0.4 * arousal).min(REACTION_FACTOR_MAX);
    let involvement = (1.0 + 0.1 * (byte >> 5).min(5) as f32).min(INVOLVEMENT_FACTOR_MAX);
    (mood * involvement * 16.0 * 1.001).ceil() as u32
}

/// Game minute of a time (clamped into `1..u32::MAX`, so 0 can mean "never").
pub fn minute_of(t: GameTime) -> u32 {
    ((t.0.max(0) / 60) as u64).clamp(1, u32::MAX as u64 - 1) as u32
}

/// `x` in 1/127ths, rounded half away from zero (by adding ±0.5 and truncating: `round`
/// is a library call on baseline x86-64, and this runs for every update).
fn to_i8(x: f32) -> i8 {
    let y = (x * 127.0).clamp(-127.0, 127.0);
    (y + 0.5f32.copysign(y)) as i8
}

impl UserState {
    /// A fresh state for `users` users: everyone at their baseline, rested, with no history.
    pub fn new(users: usize, config: StateConfig) -> Result<UserState> {
        if !(config.mood_half_life_hours > 0.0 && config.energy_recovery_hours > 0.0) {
            return Err(Error::Config("state: half-life and recovery times must be positive".into()));
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
    pub fn mark_active(&mut self, reactions: &[crate::filter::Reaction], time: GameTime) {
        let until = minute_of(time).saturating_add(self.config.cooldown_minutes);
        for r in reactions {
            if let Some(c) = self.cells.get_mut(r.user.index()) {
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
        let topic = crate::filter::category_topics(class.category).first().map(|t| t.index() as u8);
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

/// One post as the state update needs it.
#[derive(Clone, Copy)]
struct Act {
    author: u32,
    minute: u32,
    /// Index of the post reacted to, or `u32::MAX`.
    target: u32,
    target_author: u32,
    /// Low 32 bits of the thread root's id, or `u32::MAX`.
    thread: u32,
    kind: PostKind,
    sign: i8,
    hostile: bool,
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
fn acts_of(posts: &[Post], target: impl Fn(usize, &Post) -> Option<usize> + Sync) -> Vec<Act> {
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

/// A fast hasher for user-id keys (a multiply and a fold; keys are not adversarial).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        let x = (self.0 ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }
}

/// A map keyed by user id with [`IdHasher`].
pub type IdMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<IdHasher>>;

fn sentiment_sign(p: &Post) -> f32 {
    p.sentiment.sign() as f32
}

/// Strengthens `topic` among the two obsessions, weakening the other.
fn obsess(h: &mut Habits, topic: u8) {
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
fn key(parts: [u32; 4]) -> u128 {
    parts.iter().fold(0u128, |k, &x| k << 32 | x as u128)
}

/// What pass (1) needs besides the cells: the history as it stood before the burst (read
/// only), the reflection bank, and the event's topic, intensity, main stakeholder, category
/// and reflection subject.
struct AuthorsCtx<'a> {
    config: &'a StateConfig,
    population: &'a Population,
    history: &'a History,
    bank: &'a Bank,
    topic: Option<u8>,
    intensity: f32,
    entity: u16,
    category: u8,
    about: Option<u32>,
}

/// Pass (1): each author, by (user, time): mood, energy, cooldown, ticks, obsessions (see
/// [`author_cell`]), and the reflection each act makes its author form, if any, in
/// `by_author` order. Parallel over shards of users.
///
/// A reflection reads its author's recent actions as they will stand once the act is in the
/// history, which is written after this pass: the act and the author's earlier acts in this
/// burst, then their window from before it, as many in all as the window will hold then
/// (the window's count is followed through the pushes and folds to come).
fn authors_pass(
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
fn received_pass(
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
type RelationsOut = (Vec<(u32, u32, u32)>, Vec<FollowChange>);

/// Pass (3): relationships, by (acting user, time). The other side's weight toward them is
/// read first, as it stood before this pass, so no shard reads another's changes. Returns
/// the number of interactions and each shard's feuds and follow changes.
#[allow(clippy::too_many_arguments)]
fn relations_pass(
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
const BLOCK: usize = 16;

/// Reads each cell once so that their cache lines load together before a block of updates
/// (a burst's users are scattered over the whole table, and one update at a time would wait
/// for each line in turn).
fn touch<'a>(cells: impl Iterator<Item = &'a Cell>) {
    load_together(cells.map(|c| c.mental.minute));
}

/// Indices of `acts` by (author, minute, index), acts of authors beyond `users` left out.
fn by_author(acts: &[Act], users: usize) -> Vec<u32> {
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
fn by_target(acts: &[Act], users: usize) -> Vec<u32> {
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
fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The first and last minute of `acts` ((0, 0) for none).
fn minute_range(acts: &[Act]) -> (u32, u32) {
    let (lo, hi) = acts.iter().fold((u32::MAX, 0), |(lo, hi), a| (lo.min(a.minute), hi.max(a.minute)));
    (lo.min(hi), hi)
}

/// Bits per digit of [`radix_sorted`].
const DIGIT: u32 = 11;

/// Indices of the acts `key` keeps, in (key, index) order, where keys fit in `bits` bits: a
/// stable least-significant-digit radix sort (the acts are listed in index order, and a
/// stable sort keeps that order among equal keys). Digits that are the same in every key
/// are skipped. About four times faster than comparison sorting 100,000 keys with the
/// index appended.
fn radix_sorted(acts: &[Act], bits: u32, key: impl Fn(&Act) -> Option<u64> + Sync) -> Vec<u32> {
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
fn sorted_acts(acts: &[Act], key: impl Fn(u32, &Act) -> Option<u128> + Sync) -> Vec<u32> {
    let mut keys: Vec<u128> = acts.par_iter().enumerate().filter_map(|(k, a)| key(k as u32, a)).collect();
    keys.par_sort_unstable();
    keys.into_iter().map(|x| x as u32).collect()
}

/// The rest of pass (1), in `by_author` order: each act into its author's history, and the
/// reflections pass (1) formed into the store. Returns how many formed.
fn record(
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
const STREAK_OF: usize = 32;

/// The reflection of `kind` user `u` forms at `minute` about `subject` with feeling
/// `valence`, given their `recent` actions as (entity, stance), newest first (at most
/// [`STREAK_OF`]): a routine one becomes a streak when most of them are about one entity.
/// `None` without a subject or a template.
#[allow(clippy::too_many_arguments)]
fn form(
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
fn shard_ranges(users: usize, len: usize, user_at: impl Fn(usize) -> u32) -> Vec<std::ops::Range<usize>> {
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
fn decayed(config: &StateConfig, m: &Mental, minute: u32) -> (f32, f32, f32) {
    if m.minute == 0 {
        return (0.0, 0.0, 0.0);
    }
    let dt = minute.saturating_sub(m.minute) as f32;
    // No time passed is common within a burst; skip the library call then.
    let k = if dt == 0.0 { 1.0 } else { (-dt / (config.mood_half_life_hours * 60.0)).exp2() };
    let fatigue = (m.fatigue as f32 / 255.0 - dt / (config.energy_recovery_hours * 60.0)).max(0.0);
    (m.valence as f32 / 127.0 * k, m.arousal as f32 / 127.0 * k, fatigue)
}

/// Moves a cell's mood by (`dv`, `da`) and its fatigue by `fatigue`, after decay to `minute`.
fn nudge(config: &StateConfig, cell: &mut Cell, minute: u32, dv: f32, da: f32, fatigue: f32) {
    let (v, a, f) = decayed(config, &cell.mental, minute);
    let m = &mut cell.mental;
    m.valence = to_i8(v + dv);
    m.arousal = to_i8(a + da);
    m.fatigue = ((f + fatigue).clamp(0.0, 1.0) * 255.0) as u8;
    m.minute = minute.max(m.minute);
}

/// Pass (1) on the author's cell: mood, energy, cooldown, ticks, obsession, and whether a
/// reflection forms (with the valence it forms at; the counter is reset here).
fn author_cell(
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
fn received_cell(config: &StateConfig, cell: &mut Cell, act: &Act, count: u32, posts: &[Post]) -> bool {
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
fn relation_delta(w: &RelationWeights, act: &Act) -> f32 {
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

/// How users name a reflection subject.
pub fn subject_name(population: &Population, subject: u32) -> String {
    use reflect::subject::{ENTITY_MAX, TOPIC, USER};
    if subject >= USER {
        format!("@{}", population.handle(crate::ids::UserId(subject - USER)))
    } else if subject >= TOPIC {
        crate::taxonomy::Topic::ALL.get((subject - TOPIC) as usize).map(|t| t.name().to_string()).unwrap_or_default()
    } else if subject < ENTITY_MAX && (subject as usize) < population.world().entities.len() {
        crate::actions::entity_name(population.world(), subject as u16)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
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
        for (span, users) in [(1, 1_000), (90, 1_000), (10_080, 1_000), (u32::MAX - 2, 1_000), (u32::MAX - 2, 1 << 25)]
        {
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
}
