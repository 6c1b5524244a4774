//! The dense per-user columns: the mental state as deviations from the baseline (`Mental`),
//! habits and counters (`Habits`), one user's `Cell`, the mood as read (`MoodNow`), and the
//! ceiling byte the filter reads first.

use crate::events::GameTime;
use bytemuck::{Pod, Zeroable};

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
    /// Experiment tag bits (see [`super::UserState::tag_names`]).
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
/// Largest value of [`super::UserState::involvement_factor`].
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

/// A user's ceiling byte: how far their arousal deviation can lift the mood's reaction factor
/// (low 5 bits, the positive deviation in 31sts, rounded up) and how many actions their
/// history window holds, up to 5 (high 3 bits: the involvement factor's largest). Zero for a
/// user nothing happened to.
pub(super) fn ceiling_byte(arousal: i8, records: usize) -> u8 {
    let lift = (arousal.max(0) as u32 * 31).div_ceil(127) as u8;
    lift | (records.min(5) as u8) << 5
}

/// The ceiling byte with the arousal part of a new mental state.
pub(super) fn with_arousal(byte: u8, arousal: i8) -> u8 {
    (byte & !31) | ceiling_byte(arousal, 0)
}

/// By ceiling byte: the most the product of [`MoodNow::reaction_factor`] and
/// [`super::UserState::involvement_factor`] can be at any game minute from the user's last update
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
pub(super) fn to_i8(x: f32) -> i8 {
    let y = (x * 127.0).clamp(-127.0, 127.0);
    (y + 0.5f32.copysign(y)) as i8
}
