//! Routing: which would-be posts go to the LLM, at which priority, and the work item each
//! routed post becomes (profile summary, event, thread context, template fallback).
//!
//! Policy (configurable with [`RoutingConfig`]):
//! - **high**: the direct reactions to an event the game marked `"priority": "high"` (the
//!   player's own post or a mention of the player): new posts about it, which address the
//!   player;
//! - **medium**: the replies and quotes around a high-priority event, text posts by influential
//!   accounts (the top `influential_top` fraction by follower count), posts about events the
//!   game marked medium, and posts about events no template fits well (classification `novel`
//!   or confidence below `weak_match`);
//! - **low**: background chatter, routed only with probability `low_rate` (default 0: templates).
//!
//! Each item carries what the prompt needs about its author: a voice summary (age, job, town,
//! interests, tone), their feeling about the event (the post's sentiment), their mood and a
//! memory worth recalling from the user state (when there is one), and for replies and quotes
//! the post answered and the author's tie to its writer (follows or not, and the relationship
//! label).
//!
//! Invariant: the routing decision is a pure function of (population, event, classification,
//! post); the item's content also reads the user state as it stands after the event; likes and
//! reposts are never routed.

use crate::budget::ContentType;
use crate::classify::Classification;
use crate::events::{Category, GameEvent, Priority};
use crate::ids::UserId;
use crate::population::Population;
use crate::rng::Stream;
use crate::state::{minute_of, UserState};
use crate::templates::Sentiment;
use crate::timeline::{Post, PostId, PostKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Domain tag of routing draws.
const ROUTE: u64 = 0x726f_7574;

/// Routing settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Fraction of users, by follower count, that count as influential (default 0.001).
    pub influential_top: f64,
    /// Classification confidence below which an event has no good template match (default 0.3).
    pub weak_match: f32,
    /// Route medium-priority items at all (default true).
    pub medium: bool,
    /// Probability that a background post is routed (default 0).
    pub low_rate: f64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig { influential_top: 0.001, weak_match: 0.3, medium: true, low_rate: 0.0 }
    }
}

/// What the prompt needs to know about the event (shared by its items).
#[derive(Clone, Debug, PartialEq)]
pub struct EventInfo {
    /// Event id.
    pub id: String,
    /// Event text (data, fenced in the prompt).
    pub text: String,
    /// Category.
    pub category: Category,
    /// The classification (frame, sides, stakeholders), for phrase banks and the fact checker.
    pub class: Classification,
    /// The frame as JSON (what the prompts state about the event).
    pub frame: String,
    /// A hash of the event's id, text and frame: the event's part of every cache key.
    pub key: u64,
}

impl EventInfo {
    /// The prompt's and the cache's view of an event.
    pub fn new(event: &GameEvent, class: &Classification) -> EventInfo {
        let frame = serde_json::to_string(&class.frame).unwrap_or_default();
        let key = fnv(&[event.id.as_bytes(), b"\0", event.text.as_bytes(), b"\0", frame.as_bytes()]);
        EventInfo {
            id: event.id.clone(),
            text: event.text.clone(),
            category: class.category,
            class: class.clone(),
            frame,
            key,
        }
    }
}

/// FNV-1a over byte strings (cache keys and batch groups: stable across runs and platforms).
pub fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A routed would-be post.
#[derive(Clone, Debug)]
pub struct Item {
    /// The post it fills.
    pub post: PostId,
    /// Its author.
    pub author: UserId,
    /// The author's handle.
    pub handle: String,
    /// Post, reply or quote.
    pub kind: PostKind,
    /// Routing priority.
    pub priority: Priority,
    /// Budget type.
    pub ty: ContentType,
    /// Game time of the post (its budget day).
    pub time: crate::events::GameTime,
    /// The event.
    pub event: Arc<EventInfo>,
    /// The author's feeling about the event (their side of it).
    pub sentiment: Sentiment,
    /// The author's mood from the user state ("angry", "calm", ...; "calm" without a state).
    pub mood: &'static str,
    /// A memory the author would recall for this event (a reflection), if any.
    pub memory: Option<String>,
    /// Voice summary (one line of profile facts: age, job, town; interests; tone).
    pub voice: String,
    /// For replies and quotes: the target's handle and text, and whether the author follows them.
    pub target: Option<Target>,
    /// The template text, used when the LLM does not deliver.
    pub fallback: String,
    /// Coarse persona archetype (cache key part, batch grouping).
    pub archetype: u8,
}

/// The post a reply or quote answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Handle of its author.
    pub handle: String,
    /// Its text.
    pub text: String,
    /// Whether the replying user follows that author.
    pub follows: bool,
    /// The replying user's relationship to that author ("friend", "rival", ...; "neutral"
    /// without a state).
    pub relation: &'static str,
}

/// Decides routing for a population.
pub struct Router {
    config: RoutingConfig,
    influential_min: u32,
}

impl Router {
    /// Builds the router (costs one pass over the population's in-degrees).
    pub fn new(population: &Population, config: RoutingConfig) -> Router {
        let n = population.len();
        let mut degrees: Vec<u32> = (0..n as u32).map(|u| population.graph().in_degree(UserId(u))).collect();
        let top = ((n as f64 * config.influential_top.clamp(0.0, 1.0)).ceil() as usize).min(n);
        let influential_min = if top == 0 || n == 0 {
            u32::MAX
        } else {
            let k = n - top;
            *degrees.select_nth_unstable(k).1
        };
        Router { config, influential_min: influential_min.max(1) }
    }

    /// The settings.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Followers needed to count as influential.
    pub fn influential_min(&self) -> u32 {
        self.influential_min
    }

    /// The priority of `post` if it goes to the LLM.
    pub fn route(
        &self,
        population: &Population,
        event: &GameEvent,
        class: &Classification,
        post: &Post,
    ) -> Option<Priority> {
        if ContentType::of(post.kind).is_none() || post.text.is_none() {
            return None;
        }
        match event.priority {
            Some(Priority::High) if post.kind == PostKind::Post => return Some(Priority::High),
            Some(Priority::High | Priority::Medium) if self.config.medium => return Some(Priority::Medium),
            _ => {}
        }
        let influential = population.graph().in_degree(post.author) >= self.influential_min;
        let weak = class.novel || class.confidence < self.config.weak_match;
        if self.config.medium && (influential || weak) {
            return Some(Priority::Medium);
        }
        if self.config.low_rate > 0.0 {
            let mut rng = Stream::new(population.config().seed, ROUTE, post.id.0, post.author.0 as u64);
            if rng.chance(self.config.low_rate) {
                return Some(Priority::Low);
            }
        }
        None
    }

    /// The routed items among one event's `posts` (in post order). `state` (the user state
    /// after the event) supplies mood, memory and relationships; without it the items say
    /// "calm", no memory and "neutral".
    pub fn items(
        &self,
        population: &Population,
        state: Option<&UserState>,
        event: &GameEvent,
        class: &Classification,
        posts: &[Post],
    ) -> Vec<Item> {
        let info = Arc::new(EventInfo::new(event, class));
        let by_id: HashMap<PostId, usize> = posts.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let minute = minute_of(event.time);
        let subject: Option<u32> =
            class.stakeholders.first().and_then(|id| population.world().find(id)).map(|e| e as u32);
        let mut out = Vec::new();
        for p in posts {
            let Some(priority) = self.route(population, event, class, p) else { continue };
            let Some(ty) = ContentType::of(p.kind) else { continue };
            let target = p.parent.or(p.quoted).and_then(|t| by_id.get(&t)).map(|&i| {
                let t = &posts[i];
                Target {
                    handle: t.handle.clone(),
                    text: t.text.clone().unwrap_or_default(),
                    follows: population.graph().following(p.author).contains(&t.author.0),
                    relation: state.map_or("neutral", |st| st.label(p.author.0, t.author.0, minute).word()),
                }
            });
            let (voice, archetype) = voice(population, p.author);
            let mood = state.map_or("calm", |st| st.mood(population, p.author.0, minute).word());
            let memory = state.and_then(|st| {
                st.reflections()
                    .recall(p.author.0, class.category as u8, subject, minute)
                    .map(|r| st.reflection_text(population, p.author.0, r))
            });
            out.push(Item {
                post: p.id,
                author: p.author,
                handle: p.handle.clone(),
                kind: p.kind,
                priority,
                ty,
                time: p.time,
                event: info.clone(),
                sentiment: p.sentiment,
                mood,
                memory,
                voice,
                target,
                fallback: p.text.clone().unwrap_or_default(),
                archetype,
            });
        }
        out
    }
}

/// A persona's tone, as the groups use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tone {
    /// Formal, complete sentences.
    Formal,
    /// Casual.
    Casual,
    /// Slangy, lower case.
    Slangy,
}

impl Tone {
    /// The author's tone: formality > 0.6 formal; else slang > 0.5 slangy; else casual.
    pub fn of(population: &Population, user: UserId) -> Tone {
        let u = population.user(user);
        match (u.formality > 0.6, u.slang > 0.5) {
            (true, _) => Tone::Formal,
            (false, true) => Tone::Slangy,
            (false, false) => Tone::Casual,
        }
    }

    /// The voice summary's word for it ([`voice`]).
    fn name(self) -> &'static str {
        match self {
            Tone::Formal => "formal",
            Tone::Casual => "plain",
            Tone::Slangy => "slangy",
        }
    }

    /// How a phrase-bank prompt asks for it.
    pub fn words(self) -> &'static str {
        match self {
            Tone::Formal => "formal, complete sentences",
            Tone::Casual => "casual",
            Tone::Slangy => "slangy, lower case",
        }
    }
}

/// A one-line voice summary of a user ("58, mechanic, Northgate; sports, weather; plain, warm":
/// age, job, town; two interests; register and temper) and their coarse archetype (age band x
/// formality x slang: 12 archetypes).
pub fn voice(population: &Population, user: UserId) -> (String, u8) {
    let u = population.user(user);
    let town = &population.world().entity(u.town).name;
    let mut interests: Vec<&str> = u.interests.iter().take(2).map(|(t, _)| t.name()).collect();
    if interests.is_empty() {
        interests.push("news");
    }
    let tone = Tone::of(population, user).name();
    let temper = if u.big5[4] > 0.6 {
        "easily riled"
    } else if u.big5[3] > 0.6 {
        "warm"
    } else {
        "dry"
    };
    let band = match u.age {
        0..=29 => 0,
        30..=49 => 1,
        _ => 2,
    };
    let archetype = band * 4 + (u.formality > 0.6) as u8 * 2 + (u.slang > 0.5) as u8;
    let text = format!(
        "{age}, {occupation}, {town}; {interests}; {tone}, {temper}",
        age = u.age,
        occupation = u.occupation,
        interests = interests.join(", "),
    );
    (text, archetype)
}
