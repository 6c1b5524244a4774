//! The `Simulation` facade: one warm population with its evolving state and growing timeline,
//! driven an event at a time. The CLI (`chorus run`) and the server (`chorus serve`) both go
//! through it: generate or load a population, apply events, advance the clock, read
//! timelines, fork, save and resume.
//!
//! Invariants: events are numbered in arrival order and ids are unique within a simulation
//! (a repeated id is refused before anything changes); an event that fails leaves the
//! simulation as it was; a fork shares the population, lexicon, templates and audience index
//! with its parent (`Arc`) and copies the state and the feed, so the two go on independently
//! and byte-identically to an unforked run given the same events.

pub mod feed;

use crate::classify::Classification;
use crate::engine::Pipeline;
use crate::error::{Error, Result};
use crate::events::{parse_event, EventError, GameEvent, GameTime};
use crate::ids::UserId;
use crate::population::{NoProgress, Population, PopulationConfig, Progress};
use crate::seeds::SeedSet;
use crate::state::StateConfig;
use crate::timeline::{Post, PostId};
use crate::world::World;
pub use feed::{Feed, Page};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One applied event as reads report it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    /// The game's id.
    pub id: String,
    /// Its number in this simulation (post ids carry it in their high 32 bits).
    pub index: u32,
    /// Its game time.
    pub time: i64,
    /// Its text.
    pub text: String,
    /// The classified category.
    pub category: String,
    /// `positive`, `negative` or `neutral`.
    pub valence: String,
    /// The frame kind ("win", "resignation", "?" when none fits).
    pub kind: String,
    /// Entries it produced.
    pub posts: usize,
    /// Users who reacted.
    pub reactions: usize,
    /// Its stakeholders and the side each is on.
    #[serde(default)]
    pub sides: Vec<Side>,
}

/// A stakeholder of an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The world entity's id.
    pub entity: String,
    /// Its name.
    pub name: String,
    /// +1 gains by the event, -1 loses.
    pub side: i8,
}

/// What applying one event gave.
pub struct Applied {
    /// The event as reads report it.
    pub info: EventInfo,
    /// Its entries (in timeline order from [`Simulation::apply`]).
    pub posts: Vec<Post>,
}

/// What a saved simulation records besides the user state and the posts.
#[derive(Serialize, Deserialize)]
struct Manifest {
    users: u32,
    seed: u64,
    clock: i64,
    events: Vec<EventInfo>,
    /// The state rules it ran with.
    state: StateConfig,
}

/// A warm simulation: population, user state, feed, events and the game clock.
#[derive(Clone)]
pub struct Simulation {
    pipeline: Pipeline,
    feed: Feed,
    events: Vec<EventInfo>,
    clock: i64,
    state_config: StateConfig,
    ids: std::collections::HashSet<String>,
    keep_feed: bool,
    /// Retention of the feed: most entries kept (`None`: all).
    feed_limit: Option<usize>,
}

impl Simulation {
    /// Generates `users` users with `seed` from the shipped seeds and world.
    pub fn generate(users: u32, seed: u64, state: StateConfig) -> Result<Simulation> {
        Simulation::generate_with(users, seed, state, &NoProgress)
    }

    /// [`Simulation::generate`] reporting progress.
    pub fn generate_with(users: u32, seed: u64, state: StateConfig, progress: &dyn Progress) -> Result<Simulation> {
        let world = World::embedded()?;
        let seeds = SeedSet::embedded(&world)?;
        let config = PopulationConfig { users, seed, ..PopulationConfig::default() };
        Simulation::new(Population::generate_with(&seeds, &world, &config, progress)?, state)
    }

    /// A simulation over an existing population (generated, or loaded from a snapshot).
    pub fn new(population: Population, state: StateConfig) -> Result<Simulation> {
        let pipeline = Pipeline::with_state(population, state.clone())?;
        Ok(Simulation::from_pipeline(pipeline, state))
    }

    /// A simulation over a pipeline set up by the caller (tags, a resumed state); `state` is
    /// the rules it was built with (recorded by [`Simulation::save`]).
    pub fn from_pipeline(pipeline: Pipeline, state: StateConfig) -> Simulation {
        Simulation {
            pipeline,
            feed: Feed::default(),
            events: Vec::new(),
            clock: 0,
            state_config: state,
            ids: Default::default(),
            keep_feed: true,
            feed_limit: None,
        }
    }

    /// Whether applied entries are kept in the feed for reads (default on). A batch run that
    /// writes its entries itself turns it off and holds each entry once.
    pub fn keep_feed(&mut self, on: bool) {
        self.keep_feed = on;
    }

    /// Retention for a long-running session: keep about `entries` of the newest entries in
    /// the feed (whole events; the oldest are dropped once half as many again are held, so
    /// the re-indexing costs a constant per entry). `None` keeps everything.
    pub fn limit_feed(&mut self, entries: Option<usize>) {
        self.feed_limit = entries;
        self.trim_feed();
    }

    fn trim_feed(&mut self) {
        if let Some(n) = self.feed_limit {
            if self.feed.len() > n.saturating_add(n / 2) {
                self.feed.keep_last(n);
            }
        }
    }

    /// Parses one event line (the CLI's format) and applies it.
    pub fn apply_line(&mut self, line: &str) -> std::result::Result<Applied, EventError> {
        let event = parse_event(1, line)?;
        self.apply(&event)
    }

    /// Applies one event: classifies it, lets the population react, updates the state and
    /// appends the entries to the feed. The clock moves to the event's time if that is later.
    /// A refused event (a bad field, a repeated id) changes nothing.
    pub fn apply(&mut self, event: &GameEvent) -> std::result::Result<Applied, EventError> {
        let index = self.pipeline.numbered();
        let (mut applied, _) = self.apply_at(event, index, 1)?;
        crate::timeline::sort(&mut applied.posts);
        Ok(applied)
    }

    /// [`Simulation::apply`] as event number `index` (a batch run numbers events by their
    /// position in its file, bad lines included), naming input line `line` in errors; also
    /// returns the classification. The entries come in the pipeline's order.
    pub fn apply_at(
        &mut self,
        event: &GameEvent,
        index: u32,
        line: usize,
    ) -> std::result::Result<(Applied, Classification), EventError> {
        let (applied, class) = self.apply_unrecorded(event, index, line)?;
        if self.keep_feed {
            self.feed.push(applied.posts.clone());
            self.trim_feed();
        }
        Ok((applied, class))
    }

    /// [`Simulation::apply_at`] but for the feed: the caller appends the entries.
    fn apply_unrecorded(
        &mut self,
        event: &GameEvent,
        index: u32,
        line: usize,
    ) -> std::result::Result<(Applied, Classification), EventError> {
        if self.ids.contains(&event.id) {
            return Err(EventError {
                line,
                id: Some(event.id.clone()),
                field: "id".into(),
                error: "an event with this id was already applied to this simulation".into(),
            });
        }
        let processed = self.pipeline.process_detailed(event, index, line)?;
        let info = self.info(event, index, &processed.class, processed.posts.len(), processed.reactions.len());
        self.clock = self.clock.max(event.time.0);
        self.ids.insert(event.id.clone());
        self.events.push(info.clone());
        Ok((Applied { info, posts: processed.posts }, processed.class))
    }

    fn info(&self, event: &GameEvent, index: u32, class: &Classification, posts: usize, reactions: usize) -> EventInfo {
        let world = self.pipeline.population().world();
        EventInfo {
            id: event.id.clone(),
            index,
            time: event.time.0,
            text: event.text.clone(),
            category: class.category.name().to_string(),
            valence: format!("{:?}", class.valence).to_lowercase(),
            kind: class.frame.kind.name().to_string(),
            posts,
            reactions,
            sides: class
                .stakes(world)
                .map(|(e, side)| Side { entity: world.entity(e).id.clone(), name: world.entity(e).name.clone(), side })
                .collect(),
        }
    }

    /// A post by an account outside the population (the player's), as an event: its text is
    /// classified like any event's and the population reacts to it. The status becomes an
    /// entry (author `author`, handle `handle`, at [`Simulation::now`], replying to `reply_to`
    /// when that is held) and the event's new posts become replies to it (the threads under
    /// them move one level down), so the reaction reads as a thread under the status.
    /// Returns the status and the applied event (the status first in its entries).
    pub fn apply_status(
        &mut self,
        author: UserId,
        handle: &str,
        text: &str,
        reply_to: Option<PostId>,
    ) -> std::result::Result<(Post, Applied), EventError> {
        let index = self.pipeline.numbered();
        let time = self.now();
        let line = serde_json::json!({"id": format!("status-{index}"), "time": time, "text": text}).to_string();
        let event = parse_event(1, &line)?;
        let parent = reply_to.and_then(|id| self.feed.post(id)).map(|p| (p.id, p.root.unwrap_or(p.id), p.depth));
        let id = PostId((index as u64) << 32);
        let status = Post {
            id,
            author,
            handle: handle.to_string(),
            kind: if parent.is_some() { crate::timeline::PostKind::Reply } else { crate::timeline::PostKind::Post },
            parent: parent.map(|p| p.0),
            quoted: None,
            root: parent.map(|p| p.1),
            depth: parent.map_or(0, |p| p.2.saturating_add(1)),
            text: Some(text.to_string()),
            gif: None,
            image: None,
            image_request: None,
            event: event.id.clone(),
            time: GameTime(time),
            sentiment: crate::templates::Sentiment::Neutral,
            source: crate::timeline::Source::Player,
        };
        // The status takes index `index`; the event's entries come after it.
        self.pipeline.set_numbered(index + 1);
        let (mut applied, _) = self.apply_unrecorded(&event, index + 1, 1)?;
        let root = status.root.unwrap_or(id);
        let depth = status.depth;
        for p in &mut applied.posts {
            use crate::timeline::PostKind;
            match p.kind {
                PostKind::Post => {
                    p.kind = PostKind::Reply;
                    p.parent = Some(id);
                    p.root = Some(root);
                    p.depth = depth + 1;
                }
                PostKind::Reply | PostKind::Gif | PostKind::Quote => {
                    p.root = Some(root);
                    p.depth = p.depth.saturating_add(depth + 1);
                }
                PostKind::Like | PostKind::Repost if p.parent.is_none() => p.parent = Some(id),
                _ => {}
            }
        }
        crate::timeline::sort(&mut applied.posts);
        applied.posts.insert(0, status.clone());
        if self.keep_feed {
            self.feed.push(applied.posts.clone());
            self.trim_feed();
        }
        if let Some(info) = self.events.last_mut() {
            info.posts = applied.posts.len();
        }
        applied.info.posts = applied.posts.len();
        Ok((status, applied))
    }

    /// Moves the game clock to `to` (never back): moods decay and cooldowns run out as game
    /// time passes. Returns the clock.
    pub fn advance_to(&mut self, to: i64) -> i64 {
        if to > self.clock {
            self.clock = to;
            self.pipeline.state_mut().advance(crate::state::minute_of(GameTime(to)));
        }
        self.clock
    }

    /// The game clock: the latest of the last event's time and the last advance.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// The time reads rank at: the clock, or the latest entry if a burst runs past it.
    pub fn now(&self) -> i64 {
        self.clock.max(self.feed.latest_time())
    }

    /// The growing timeline.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// The events applied so far, oldest first.
    pub fn events(&self) -> &[EventInfo] {
        &self.events
    }

    /// The population.
    pub fn population(&self) -> &Population {
        self.pipeline.population()
    }

    /// The pipeline (state, classifier, templates).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The pipeline, mutably (to load tags or external ids).
    pub fn pipeline_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    /// Whom `user` follows now: the generated graph with the follows and unfollows the state
    /// made since.
    pub fn following(&self, user: UserId) -> Vec<u32> {
        self.pipeline.state().following(self.population(), user.0)
    }

    /// `user`'s home timeline at [`Simulation::now`].
    pub fn home(&self, user: UserId, page: Page) -> Vec<&Post> {
        self.feed.home(&self.following(user), self.now(), page)
    }

    /// A copy that goes on independently (see the module invariants).
    pub fn fork(&self) -> Simulation {
        self.clone()
    }

    /// Saves everything needed to go on later into the folder `dir` (created; replaced as a
    /// whole, through a temporary folder and renames): the user state, the entries and a
    /// manifest of the population, clock and events.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.with_extension("saving");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        self.pipeline.save(&tmp.join("state"))?;
        let posts = tmp.join("posts.jsonl");
        let file = std::fs::File::create(&posts).map_err(|e| Error::io(&posts, e))?;
        let mut w = std::io::BufWriter::new(file);
        for chunk in self.feed.chunks() {
            crate::timeline::write_jsonl(chunk, &mut w).map_err(|e| Error::io(&posts, e))?;
        }
        w.into_inner().map_err(|e| Error::io(&posts, e.into_error()))?.sync_all().map_err(|e| Error::io(&posts, e))?;
        let c = self.population().config();
        let manifest = Manifest {
            users: self.population().len() as u32,
            seed: c.seed,
            clock: self.clock,
            events: self.events.clone(),
            state: self.state_config.clone(),
        };
        let path = tmp.join("session.json");
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        let old = dir.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// The population size and seed a saved folder was made with (to check or regenerate).
    pub fn saved_population(dir: &Path) -> Result<(u32, u64)> {
        let m = read_manifest(dir)?;
        Ok((m.users, m.seed))
    }

    /// Restores a folder [`Simulation::save`] wrote, regenerating its population from the
    /// shipped seeds. The result continues as if never stopped.
    pub fn resume(dir: &Path) -> Result<Simulation> {
        let m = read_manifest(dir)?;
        let mut sim = Simulation::generate(m.users, m.seed, m.state.clone())?;
        sim.restore(dir, m)?;
        Ok(sim)
    }

    fn restore(&mut self, dir: &Path, m: Manifest) -> Result<()> {
        self.pipeline.resume(&dir.join("state"))?;
        let path = dir.join("posts.jsonl");
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let posts = crate::timeline::read_jsonl(std::io::BufReader::new(file), &path.display().to_string())?;
        let mut feed = Feed::default();
        feed.push(posts);
        self.feed = feed;
        self.clock = m.clock;
        self.ids = m.events.iter().map(|e| e.id.clone()).collect();
        self.events = m.events;
        Ok(())
    }
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("session.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        Error::data(&path.display().to_string(), e.inner().line(), e.path().to_string(), e.inner().to_string())
    })
}
