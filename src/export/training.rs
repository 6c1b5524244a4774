//! Training data: a JSONL dataset of decisions. For each processed event, a sample of
//! (user, event) pairs, reacting or not, with the state the user decided in, the action taken
//! and the outcomes that followed in the run. The schema is documented in
//! `docs/TRAINING_DATA.md`.
//!
//! Sampling: [`SamplingRates`] give the share of each action class in the dataset (they must
//! sum to 1); each event contributes up to `per_event` records, `round(per_event * rate)` of
//! each class (fewer when the run has fewer). Within a class, users are picked by a
//! counter-based hash of (seed, event, user), so the dataset is a pure function of the run.
//!
//! Invariant: one record per sampled (user, event); memory is one event's posts and reactions.

use super::files::{AtomicFile, Written};
use crate::classify::Classification;
use crate::error::{Error, Result};
use crate::events::GameEvent;
use crate::filter::Reaction;
use crate::ids::UserId;
use crate::population::Population;
use crate::rng::{domain, hash3, Stream};
use crate::timeline::{Post, PostId, PostKind};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The action a sampled user took about an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Did not react.
    None,
    /// Liked a post.
    Like,
    /// Reposted a post.
    Repost,
    /// Replied with text.
    Reply,
    /// Quoted a post.
    Quote,
    /// Posted about the event.
    Post,
    /// Replied with a GIF.
    Gif,
}

impl Action {
    /// All actions, in the order of [`SamplingRates`].
    pub const ALL: [Action; 7] =
        [Action::None, Action::Like, Action::Repost, Action::Reply, Action::Quote, Action::Post, Action::Gif];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        ["none", "like", "repost", "reply", "quote", "post", "gif"][self as usize]
    }

    fn of(kind: PostKind) -> Action {
        match kind {
            PostKind::Like => Action::Like,
            PostKind::Repost => Action::Repost,
            PostKind::Reply => Action::Reply,
            PostKind::Quote => Action::Quote,
            PostKind::Post => Action::Post,
            PostKind::Gif => Action::Gif,
        }
    }
}

/// The share of each action class in the dataset, indexed like [`Action::ALL`]; sums to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingRates(pub [f64; 7]);

impl Default for SamplingRates {
    /// none 0.5, like 0.15, repost 0.1, reply 0.1, quote 0.05, post 0.05, gif 0.05.
    fn default() -> Self {
        SamplingRates([0.5, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])
    }
}

impl SamplingRates {
    /// Parses `none=0.5,like=0.2,...`: every class named at most once, the others 0; each rate
    /// in `[0, 1]` and the sum 1 (within 1e-6), or a clear error.
    pub fn parse(s: &str) -> Result<SamplingRates> {
        let mut rates = [0.0; 7];
        let mut seen = [false; 7];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("sampling rate {part:?}: expected class=rate, like none=0.5")))?;
            let i = Action::ALL.iter().position(|a| a.name() == name.trim()).ok_or_else(|| {
                Error::Config(format!(
                    "sampling rate {part:?}: unknown action class {:?} (expected none, like, repost, reply, quote, post, gif)",
                    name.trim()
                ))
            })?;
            if seen[i] {
                return Err(Error::Config(format!("sampling rate for {:?} given twice", name.trim())));
            }
            seen[i] = true;
            rates[i] = value
                .trim()
                .parse::<f64>()
                .map_err(|_| Error::Config(format!("sampling rate {part:?}: {:?} is not a number", value.trim())))?;
        }
        let r = SamplingRates(rates);
        r.validate()?;
        Ok(r)
    }

    /// Checks each rate is in `[0, 1]` and they sum to 1.
    pub fn validate(&self) -> Result<()> {
        for (a, &r) in Action::ALL.iter().zip(&self.0) {
            if !(0.0..=1.0).contains(&r) {
                return Err(Error::Config(format!("sampling rate of {} is {r}, outside [0, 1]", a.name())));
            }
        }
        let sum: f64 = self.0.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(Error::Config(format!("sampling rates sum to {sum}, not 1")));
        }
        Ok(())
    }
}

/// What to sample.
#[derive(Clone, Copy, Debug)]
pub struct TrainingConfig {
    /// Class shares. Default: [`SamplingRates::default`].
    pub rates: SamplingRates,
    /// Records per event at most. Default: 1,000.
    pub per_event: usize,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig { rates: SamplingRates::default(), per_event: 1_000 }
    }
}

/// The dataset being written (`<file>.tmp` until [`TrainingWriter::finish`]).
pub struct TrainingWriter {
    file: AtomicFile,
    config: TrainingConfig,
    seed: u64,
    rows: u64,
    line: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Record<'a> {
    event: &'a str,
    event_index: u32,
    event_time: i64,
    user: u32,
    action: &'static str,
    state: State<'a>,
    outcome: Outcome,
}

#[derive(serde::Serialize)]
struct State<'a> {
    profile: Profile,
    event: &'a Classification,
    filter: Option<FilterView>,
    target: Option<Target>,
    mood: Option<crate::state::MoodNow>,
}

#[derive(serde::Serialize)]
struct Profile {
    age: u8,
    gender: &'static str,
    big5: [f32; 5],
    politics: f32,
    topic_interest: f32,
    posts_per_day: f32,
    reply: f32,
    quote: f32,
    like: f32,
    repost: f32,
    gif: f32,
    following: u32,
    followers: u32,
}

#[derive(serde::Serialize)]
struct FilterView {
    stance: i8,
    engagement: u8,
}

#[derive(serde::Serialize)]
struct Target {
    post: u64,
    author: u32,
    kind: &'static str,
    follows: bool,
    edge_kind: Option<&'static str>,
    weight: Option<f32>,
    followed_by: bool,
}

#[derive(serde::Serialize)]
struct Outcome {
    post: Option<u64>,
    delay: Option<i64>,
    replies: u32,
    likes: u32,
    reposts: u32,
    quotes: u32,
    relationship_change: Option<f32>,
}

impl TrainingWriter {
    /// Starts the dataset at `path`; `seed` keys the sampling (use the population's).
    pub fn create(path: &Path, config: TrainingConfig, seed: u64) -> Result<TrainingWriter> {
        config.rates.validate()?;
        Ok(TrainingWriter { file: AtomicFile::create(path)?, config, seed, rows: 0, line: Vec::with_capacity(2048) })
    }

    /// Samples and writes the records of one processed event.
    #[allow(clippy::too_many_arguments)]
    pub fn write_event(
        &mut self,
        pop: &Population,
        event: &GameEvent,
        event_index: u32,
        class: &Classification,
        reactions: &[Reaction],
        posts: &[Post],
        state: Option<(&crate::state::UserState, &crate::engine::StateBefore)>,
    ) -> Result<()> {
        let minute = crate::state::minute_of(event.time);
        // Each user's own entry about the event (the earliest), and what their posts received.
        let mut own: HashMap<UserId, &Post> = HashMap::new();
        let mut by_id: HashMap<PostId, &Post> = HashMap::new();
        let mut received: HashMap<PostId, [u32; 4]> = HashMap::new();
        for p in posts {
            by_id.insert(p.id, p);
            own.entry(p.author)
                .and_modify(|q| {
                    if (p.time, p.id) < (q.time, q.id) {
                        *q = p
                    }
                })
                .or_insert(p);
            if let Some(parent) = p.parent {
                let slot = match p.kind {
                    PostKind::Reply | PostKind::Gif => 0,
                    PostKind::Like => 1,
                    PostKind::Repost => 2,
                    _ => 3,
                };
                received.entry(parent).or_default()[slot] += 1;
            }
            if let Some(q) = p.quoted {
                received.entry(q).or_default()[3] += 1;
            }
        }
        let reacted: HashMap<UserId, &Reaction> = reactions.iter().map(|r| (r.user, r)).collect();
        let key = |u: UserId| hash3(self.seed, domain::TRAINING, event_index as u64, u.0 as u64);
        let mut chosen: Vec<(Action, UserId)> = Vec::new();
        for (i, &action) in Action::ALL.iter().enumerate() {
            let quota = (self.config.per_event as f64 * self.config.rates.0[i]).round() as usize;
            if quota == 0 {
                continue;
            }
            if action == Action::None {
                let n = pop.len() as u64;
                let available = n.saturating_sub(reacted.len() as u64) as usize;
                let quota = quota.min(available);
                let mut rng = Stream::new(self.seed, domain::TRAINING, event_index as u64, u64::MAX);
                let mut picked = std::collections::HashSet::new();
                let mut tries = 0usize;
                while picked.len() < quota && tries < quota * 20 + 1000 {
                    tries += 1;
                    let u = UserId(rng.below(n) as u32);
                    if !reacted.contains_key(&u) && picked.insert(u) {
                        chosen.push((Action::None, u));
                    }
                }
            } else {
                let mut candidates: Vec<(u64, UserId)> = own
                    .iter()
                    .filter(|(u, p)| Action::of(p.kind) == action && reacted.contains_key(u))
                    .map(|(&u, _)| (key(u), u))
                    .collect();
                candidates.sort_unstable();
                chosen.extend(candidates.into_iter().take(quota).map(|(_, u)| (action, u)));
            }
        }
        let topics = class.category.topics();
        for (action, u) in chosen {
            let user = pop.user(u);
            let topic_interest =
                user.interests.iter().filter(|(t, _)| topics.contains(t)).map(|&(_, w)| w).fold(0.0, f32::max);
            let post = if action == Action::None { None } else { own.get(&u).copied() };
            let target = post.and_then(|p| p.parent.or(p.quoted)).and_then(|t| by_id.get(&t)).map(|t| {
                let edge = pop.graph().edge(u, t.author);
                Target {
                    post: t.id.0,
                    author: t.author.0,
                    kind: t.kind.name(),
                    follows: edge.is_some(),
                    edge_kind: edge.map(|e| e.kind.name()),
                    weight: edge.map(|e| e.weight),
                    followed_by: pop.graph().edge(t.author, u).is_some(),
                }
            });
            let got = post.and_then(|p| received.get(&p.id)).copied().unwrap_or_default();
            let record = Record {
                event: &event.id,
                event_index,
                event_time: event.time.0,
                user: u.0,
                action: action.name(),
                state: State {
                    profile: Profile {
                        age: user.age,
                        gender: user.gender.name(),
                        big5: user.big5,
                        politics: user.politics,
                        topic_interest,
                        posts_per_day: user.posts_per_day,
                        reply: user.reply,
                        quote: user.quote,
                        like: user.like,
                        repost: user.repost,
                        gif: user.gif,
                        following: user.following,
                        followers: user.followers,
                    },
                    event: class,
                    filter: reacted.get(&u).map(|r| FilterView { stance: r.stance, engagement: r.engagement }),
                    target,
                    mood: state.map(|(st, before)| {
                        before.moods.get(&u.0).copied().unwrap_or_else(|| st.mood(pop, u.0, minute))
                    }),
                },
                outcome: Outcome {
                    post: post.map(|p| p.id.0),
                    delay: post.map(|p| p.time.0 - event.time.0),
                    replies: got[0],
                    likes: got[1],
                    reposts: got[2],
                    quotes: got[3],
                    relationship_change: state.and_then(|(st, before)| {
                        let &(b, was) = before.relations.get(&u.0)?;
                        let at = post.map_or(minute, |p| crate::state::minute_of(p.time));
                        Some(((st.relation(u.0, b, at) - was) * 1000.0).round() / 1000.0)
                    }),
                },
            };
            self.line.clear();
            serde_json::to_writer(&mut self.line, &record).map_err(|e| self.file.err(e.into()))?;
            self.line.push(b'\n');
            self.file.writer().write_all(&self.line).map_err(|e| self.file.err(e))?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Commits the file; returns it and the number of records.
    pub fn finish(self) -> Result<(Written, u64)> {
        let rows = self.rows;
        Ok((self.file.commit()?, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_name_known_classes_and_sum_to_one() {
        let r = SamplingRates::parse("none=0.5, like=0.25,reply=0.25").unwrap();
        assert_eq!(r.0, [0.5, 0.25, 0.0, 0.25, 0.0, 0.0, 0.0]);
        for (bad, says) in [
            ("none=0.5,like=0.4", "sum to"),
            ("none=1.5,like=-0.5", "outside [0, 1]"),
            ("click=1", "unknown action class"),
            ("none=0.5,none=0.5", "twice"),
            ("none", "expected class=rate"),
            ("none=abc", "not a number"),
        ] {
            let e = SamplingRates::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        SamplingRates::default().validate().unwrap();
    }
}
