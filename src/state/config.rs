//! What the state rules are tuned by: [`StateConfig`] (every default documented) and
//! scheduled mood shifts ([`MoodShift`]).

use super::relations::RelationWeights;
use crate::events::GameTime;

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
    /// Actions kept per user before folding (default 64: what the readers look at, the
    /// involvement over the last 64 and the streak of the last 32).
    pub history_window: usize,
    /// Retention: actions older than this many game days are folded too (default 30; 0
    /// keeps them until the window is full). Applied once per game day.
    pub history_days: f32,
    /// Retention: reflections older than this many game days are forgotten (default 10;
    /// recall's score can no longer reach its threshold after 8.7 days; 0 keeps them).
    pub reflection_days: f32,
    /// A reflection every this many actions (default 25; 0 turns the rule off).
    pub reflect_every: u16,
    /// |valence| that makes an emotional peak (default 0.75).
    pub peak: f32,
    /// Reactions to one post that make its author reflect on the praise (default 10).
    pub praise_at: u32,
    /// Half-life of mood deviations in hours of game time (default 12).
    pub mood_half_life_hours: f32,
    /// Half-life of fatigue in hours of game time (default 3): energy returns toward 1 by
    /// halving what is missing every this many hours.
    pub energy_half_life_hours: f32,
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
            history_window: 64,
            history_days: 30.0,
            reflection_days: 10.0,
            reflect_every: 25,
            peak: 0.75,
            praise_at: 10,
            mood_half_life_hours: 12.0,
            energy_half_life_hours: 3.0,
            cooldown_minutes: 30,
            drift_step: 2,
            relations: RelationWeights::default(),
            shifts: Vec::new(),
        }
    }
}
