//! The engine behind a channel API: the game sends events and clock ticks through a bounded
//! crossbeam channel; the engine runs the pipeline on its own thread (and rayon's pool) and
//! sends back the timeline as game time advances.
//!
//! ```no_run
//! use chorus::engine::{Engine, Input, Output};
//! use chorus::events::{parse_event, GameTime};
//! # fn main() -> chorus::Result<()> {
//! let world = chorus::World::embedded()?;
//! let seeds = chorus::SeedSet::embedded(&world)?;
//! let population = chorus::Population::generate(&seeds, &world, 50_000, 42)?;
//! let engine = Engine::start(population, 64)?;
//! let event = parse_event(1, r#"{"id": "e1", "time": 60, "text": "The Redhawks win the final"}"#).unwrap();
//! engine.events().send(Input::Event(event)).unwrap();
//! engine.events().send(Input::Tick(GameTime(7200))).unwrap();
//! for out in engine.timeline().iter() {
//!     match out {
//!         Output::Post(post) => println!("{} {:?}", post.handle, post.text),
//!         Output::Rejected(e) => eprintln!("{e}"),
//!         Output::Clock(t) if t.0 >= 7200 => break,
//!         Output::Clock(_) => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Invariants: both channels are bounded, so a game that sends faster than the engine works is
//! pushed back (`try_send` returns the input) and memory stays bounded by the capacities plus
//! the posts scheduled for the future. Posts come out in (time, id) order, each once, only
//! when the game clock has reached their time. The same inputs give the same outputs.

use crate::actions::{act, ActionConfig};
use crate::classify::Classifier;
use crate::error::Result;
use crate::events::{EventError, GameEvent, GameTime};
use crate::filter::{filter, AudienceIndex, FilterConfig};
use crate::llm::reflect::ReflectionRequest;
use crate::llm::route::Router;
use crate::llm::stage::Stage;
use crate::llm::{Llm, LlmConfig, Outcome};
use crate::media::{GifMemory, Media};
use crate::population::Population;
use crate::state::io::PipelineMemory;
use crate::state::reflect::Reflection;
use crate::state::{minute_of, ApplyReport, StateConfig, UserState};
use crate::templates::Templates;
use crate::timeline::Post;
use crate::timeline::PostId;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The per-event pipeline shared by `chorus run` and the [`Engine`] thread: validate,
/// classify, filter (reading user state), act, then update user state. Events are numbered by
/// the caller; [`Pipeline::numbered`] remembers how far, for save and resume.
/// Cloning it shares the population, lexicon, templates, media and audience index and copies
/// the evolving state: a fork that goes on independently.
#[derive(Clone)]
pub struct Pipeline {
    population: Arc<Population>,
    classifier: Arc<Classifier>,
    templates: Arc<Templates>,
    media: Arc<Media>,
    gif_memory: GifMemory,
    index: Arc<AudienceIndex>,
    filter: FilterConfig,
    actions: ActionConfig,
    state: UserState,
    numbered: u32,
    last_report: ApplyReport,
    capture_before: bool,
}

impl Pipeline {
    /// Builds the pipeline over `population` with the shipped lexicon and templates. Costs the
    /// audience index build and the handle table ([`Population::handles`]): about 0.5 s per
    /// million users on two cores.
    pub fn new(population: Population) -> Result<Pipeline> {
        Pipeline::with_state(population, StateConfig::default())
    }

    /// [`Pipeline::new`] with user-state rules of one's own.
    pub fn with_state(population: Population, state: StateConfig) -> Result<Pipeline> {
        let classifier = Classifier::embedded(population.world())?;
        let templates = Templates::embedded()?;
        let media = Media::embedded()?;
        let filter = FilterConfig::default();
        let index = AudienceIndex::new(&population, &filter);
        // Every post names its author: derive all handles now, not on the first event.
        population.handles();
        let state = UserState::new(population.len(), state)?;
        Ok(Pipeline {
            population: Arc::new(population),
            classifier: Arc::new(classifier),
            templates: Arc::new(templates),
            media: Arc::new(media),
            gif_memory: GifMemory::new(),
            index: Arc::new(index),
            filter,
            actions: ActionConfig::default(),
            state,
            numbered: 0,
            last_report: ApplyReport::default(),
            capture_before: false,
        })
    }

    /// Forgets what happened (user state, GIF picks, numbering), keeping tags and external
    /// ids: the next event meets the population as it was generated.
    pub fn reset(&mut self) -> Result<()> {
        self.state.forget();
        self.gif_memory = GifMemory::new();
        self.numbered = 0;
        Ok(())
    }

    /// Sets the volume knob ([`FilterConfig::activity`]): every event's reactions scale by it.
    pub fn set_activity(&mut self, activity: f32) {
        self.filter.activity = activity;
    }

    /// The volume knob.
    pub fn activity(&self) -> f32 {
        self.filter.activity
    }

    /// The user state.
    pub fn state(&self) -> &UserState {
        &self.state
    }

    /// The user state, to load tags or external ids before a run.
    pub fn state_mut(&mut self) -> &mut UserState {
        &mut self.state
    }

    /// What the last processed event changed in the user state.
    pub fn last_report(&self) -> ApplyReport {
        self.last_report
    }

    /// Whether [`Pipeline::process_detailed`] records the state it is about to change (for
    /// training data; costs a map of the touched users per event).
    pub fn capture_before(&mut self, on: bool) {
        self.capture_before = on;
    }

    /// Events numbered so far: the next event's index after a resume.
    pub fn numbered(&self) -> u32 {
        self.numbered
    }

    /// Records that event indices below `n` are used (callers that also number bad lines).
    pub fn set_numbered(&mut self, n: u32) {
        self.numbered = self.numbered.max(n);
    }

    /// A key binding saved state to this population.
    pub fn fingerprint(&self) -> String {
        let c = self.population.config();
        format!("seed {} users {} edges {}", c.seed, self.population.len(), self.population.graph().edges())
    }

    /// Saves the run's evolving state (user state, GIF memory, numbering) to `path`.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let memory = PipelineMemory { events: self.numbered, gifs: self.gif_memory.entries() };
        crate::state::io::save(path, &self.state, &self.fingerprint(), &memory)
    }

    /// Restores what [`Pipeline::save`] wrote, so the run continues as if never stopped.
    pub fn resume(&mut self, path: &std::path::Path) -> Result<()> {
        let (state, memory) = crate::state::io::load(path, &self.fingerprint(), self.population.len())?;
        self.state = state;
        self.gif_memory = GifMemory::from_entries(memory.gifs);
        self.numbered = memory.events;
        Ok(())
    }

    /// The population.
    pub fn population(&self) -> &Population {
        &self.population
    }

    /// The classifier (to re-classify an event for routing).
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Processes event number `event_index` (0-based; `line` is used in error records) and
    /// returns its posts and the number of users who reacted.
    pub fn process(
        &mut self,
        event: &GameEvent,
        event_index: u32,
        line: usize,
    ) -> std::result::Result<(Vec<Post>, usize), EventError> {
        self.process_detailed(event, event_index, line).map(|p| (p.posts, p.reactions.len()))
    }

    /// [`Pipeline::process`] keeping the classification and the reactions (for training data).
    pub fn process_detailed(
        &mut self,
        event: &GameEvent,
        event_index: u32,
        line: usize,
    ) -> std::result::Result<Processed, EventError> {
        event.validate().map_err(|(field, error)| EventError { line, id: Some(event.id.clone()), field, error })?;
        if let Some(tag) = event.audience.iter().flatten().find(|t| self.state.tag_bit(t).is_none()) {
            return Err(EventError {
                line,
                id: Some(event.id.clone()),
                field: "audience".into(),
                error: format!("no user carries the tag {tag:?}"),
            });
        }
        let class = self.classifier.classify(event, line)?;
        self.numbered = self.numbered.max(event_index.saturating_add(1));
        self.state.advance(minute_of(event.time));
        let reactions = filter(&self.population, &self.index, &self.filter, &class, event.time, Some(&self.state));
        let posts = act(
            &self.population,
            &self.templates,
            &self.media,
            &self.gif_memory,
            &self.actions,
            event,
            &class,
            event_index,
            &reactions,
            Some(&self.state),
        );
        let touched = crate::filter::affected(&self.population, &self.index, &class);
        let minute = minute_of(event.time);
        let mut before = StateBefore::default();
        if self.capture_before {
            // What the update below will change: the mood of reactors and affiliated users,
            // and each actor's relationship to the author they react to.
            for u in reactions.iter().map(|r| r.user.0).chain(touched.iter().map(|t| t.0)) {
                before.moods.entry(u).or_insert_with(|| self.state.mood(&self.population, u, minute));
            }
            let author: HashMap<PostId, u32> = posts.iter().map(|p| (p.id, p.author.0)).collect();
            for p in &posts {
                if let Some(&b) = p.parent.or(p.quoted).and_then(|id| author.get(&id)) {
                    before.relations.insert(p.author.0, (b, self.state.relation(p.author.0, b, minute)));
                }
            }
        }
        self.state.feel(&touched, &class, minute);
        self.last_report = self.state.apply(&self.population, &class, &posts);
        for p in &posts {
            if let Some(g) = p.gif.as_deref().and_then(|id| self.media.gif_index(id)) {
                self.gif_memory.record(p.author.0, g);
            }
        }
        let follows = self.state.last_follow_changes().to_vec();
        Ok(Processed { posts, reactions, class, before, follows })
    }
}

/// One processed event: its posts, the users who reacted, and its classification.
pub struct Processed {
    /// The posts, in no particular order.
    pub posts: Vec<Post>,
    /// Who reacted and how (the filter's output).
    pub reactions: Vec<crate::filter::Reaction>,
    /// The event's classification.
    pub class: crate::classify::Classification,
    /// State the event changed, as it was before (filled when [`Pipeline::capture_before`] is
    /// on).
    pub before: StateBefore,
    /// Follows and unfollows the event's interactions caused.
    pub follows: Vec<crate::state::FollowChange>,
}

/// Parts of the user state as they were before an event changed them.
#[derive(Clone, Debug, Default)]
pub struct StateBefore {
    /// Mood at the event's time of every user the event's update touches.
    pub moods: HashMap<u32, crate::state::MoodNow>,
    /// Each actor's (author reacted to, relationship weight toward them) before the event.
    pub relations: HashMap<u32, (u32, f32)>,
}

/// What the game sends.
#[derive(Clone, Debug)]
pub enum Input {
    /// Something happened.
    Event(GameEvent),
    /// The game clock reached this time: release every post due by then.
    Tick(GameTime),
}

/// What the engine sends back.
#[derive(Clone, Debug)]
pub enum Output {
    /// A timeline entry whose time has come.
    Post(Post),
    /// An event that could not be processed, with the reason.
    Rejected(EventError),
    /// All posts due by this game time have been sent.
    Clock(GameTime),
}

/// A running engine: its input sender, output receiver and thread.
pub struct Engine {
    events: Sender<Input>,
    timeline: Receiver<Output>,
    thread: Option<JoinHandle<Pipeline>>,
}

struct Due(Post);
impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.0.time, self.0.id) == (o.0.time, o.0.id)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    /// Reversed, so the max-heap pops the earliest post.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.0.time, o.0.id).cmp(&(self.0.time, self.0.id))
    }
}

impl Engine {
    /// Starts an engine over `population` with channels of `capacity` messages each (at least
    /// 1). Costs the audience index build and the handle table (about 0.5 s per million users).
    pub fn start(population: Population, capacity: usize) -> Result<Engine> {
        Engine::launch(Pipeline::new(population)?, None, capacity)
    }

    /// Starts an engine whose routed posts (see [`crate::llm::route`]) are filled by an LLM
    /// stage over `transport`. The engine never waits for the LLM: a routed post is released
    /// with its template text (source `template`) if no answer arrived before its game time.
    /// Output then depends on the LLM's timing; without `--llm` it does not.
    pub fn start_with_llm(
        population: Population,
        capacity: usize,
        config: LlmConfig,
        transport: Box<dyn crate::llm::client::Transport>,
    ) -> Result<Engine> {
        let pipeline = Pipeline::new(population)?;
        let router = Router::new(&pipeline.population, config.routing.clone());
        let llm = Arc::new(Llm::new(config, transport)?);
        let stage = Stage::start(llm.clone(), pipeline.population.clone(), pipeline.templates.clone())?;
        let reflections = if llm.config().reflections.enabled { Some(Reflector::start(llm)?) } else { None };
        Engine::launch(
            pipeline,
            Some(LlmHook { router, stage, pending: HashSet::new(), ready: HashMap::new(), reflections }),
            capacity,
        )
    }

    fn launch(pipeline: Pipeline, llm: Option<LlmHook>, capacity: usize) -> Result<Engine> {
        let (in_tx, in_rx) = bounded::<Input>(capacity.max(1));
        let (out_tx, out_rx) = bounded::<Output>(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("chorus-engine".into())
            .spawn(move || run(pipeline, llm, in_rx, out_tx))
            .map_err(|e| crate::Error::io("chorus-engine thread", e))?;
        Ok(Engine { events: in_tx, timeline: out_rx, thread: Some(thread) })
    }

    /// Where the game sends events and ticks. `send` blocks when full; `try_send` returns the
    /// input in `TrySendError::Full` instead.
    pub fn events(&self) -> &Sender<Input> {
        &self.events
    }

    /// Where the timeline comes out.
    pub fn timeline(&self) -> &Receiver<Output> {
        &self.timeline
    }

    /// Stops accepting input, lets the engine finish what it has, and hands back its pipeline:
    /// to save the run's state ([`Pipeline::save`]) and resume it later, or to read it. Posts
    /// still scheduled for the future are dropped, as are outputs not yet received.
    pub fn stop(mut self) -> Result<Pipeline> {
        let (tx, _) = bounded(1);
        drop(std::mem::replace(&mut self.events, tx));
        while self.timeline.recv().is_ok() {}
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(pipeline)) => Ok(pipeline),
            _ => Err(crate::Error::io("chorus-engine thread", std::io::Error::other("the engine thread panicked"))),
        }
    }

    /// Stops accepting input, lets the engine finish what it has, and waits for its thread.
    /// Posts still scheduled for the future are dropped.
    pub fn shutdown(self) {
        let _ = self.stop();
    }
}

/// The engine's side of the LLM stage: routed posts in flight and answers not yet due, and
/// the reflection writer.
struct LlmHook {
    router: Router,
    stage: Stage,
    pending: HashSet<PostId>,
    ready: HashMap<PostId, Outcome>,
    reflections: Option<Reflector>,
}

/// Reflections formed by an event, and the texts the LLM wrote for them.
type Formed = (GameTime, Vec<ReflectionRequest>);
type Written = Vec<(u32, Reflection, String)>;

/// A thread that rewrites reflections with the LLM at low priority: it takes an event's
/// reflections only while no routed post is waiting for an answer (`busy`), and drops them
/// when its queue is full (they keep their template text).
struct Reflector {
    requests: Option<Sender<Formed>>,
    written: Receiver<Written>,
    busy: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    per_event: usize,
}

impl Reflector {
    fn start(llm: Arc<Llm>) -> Result<Reflector> {
        let per_event = llm.config().reflections.per_event;
        let (req_tx, req_rx) = bounded::<Formed>(64);
        let (out_tx, out_rx) = crossbeam_channel::unbounded::<Written>();
        let busy = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, st) = (busy.clone(), stop.clone());
        std::thread::Builder::new()
            .name("chorus-llm-reflect".into())
            .spawn(move || {
                for (time, requests) in req_rx.iter() {
                    // Posts first: wait while any routed post is in flight.
                    while b.load(Ordering::Relaxed) > 0 && !st.load(Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    if st.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok((texts, _)) = llm.compose_reflections(&requests, time) else { continue };
                    let written: Written = requests
                        .into_iter()
                        .zip(texts)
                        .filter_map(|(r, t)| t.map(|t| (r.user, r.reflection, t)))
                        .collect();
                    if !written.is_empty() && out_tx.send(written).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| crate::Error::io("chorus-llm-reflect thread", e))?;
        Ok(Reflector { requests: Some(req_tx), written: out_rx, busy, stop, per_event })
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        // The thread finishes the request in hand, if any, and exits; it is not joined, so a
        // slow server never holds up shutdown.
        self.stop.store(true, Ordering::Relaxed);
        self.requests = None;
    }
}

impl LlmHook {
    /// Stores the reflection texts the writer has finished, and tells it whether posts wait.
    fn collect(&mut self, pipeline: &mut Pipeline) {
        if self.reflections.is_none() {
            return;
        }
        self.drain();
        let Some(r) = &self.reflections else { return };
        // Routed posts still waiting for an answer (answers not yet due are in `ready`).
        r.busy.store(self.pending.len() - self.ready.len(), Ordering::Relaxed);
        while let Ok(written) = r.written.try_recv() {
            for (u, refl, text) in written {
                pipeline.state.write_reflection(u, &refl, text);
            }
        }
    }

    /// Stores the reflection texts the writer has finished, and offers it the reflections the
    /// last event formed (at `time`).
    fn reflect(&mut self, pipeline: &mut Pipeline, time: GameTime) {
        self.collect(pipeline);
        let Some(r) = &self.reflections else { return };
        let st = &pipeline.state;
        let requests = crate::llm::reflect::requests(&pipeline.population, st, st.last_reflections(), r.per_event);
        if let (false, Some(tx)) = (requests.is_empty(), &r.requests) {
            let _ = tx.try_send((time, requests));
        }
    }

    fn submit(&mut self, pipeline: &Pipeline, event: &GameEvent, line: usize, posts: &[Post]) {
        let Ok(class) = pipeline.classifier.classify(event, line) else { return };
        for item in self.router.items(&pipeline.population, Some(&pipeline.state), event, &class, posts) {
            let id = item.post;
            if self.stage.submit(item).is_ok() {
                self.pending.insert(id);
            }
        }
    }

    /// Moves the answers that have arrived into `ready`.
    fn drain(&mut self) {
        while let Ok(o) = self.stage.outcomes().try_recv() {
            if self.pending.contains(&o.post) {
                self.ready.insert(o.post, o);
            }
        }
    }

    /// Fills `post` from its answer if one has arrived; a late answer is dropped later.
    fn fill(&mut self, post: &mut Post) {
        self.drain();
        if self.pending.remove(&post.id) {
            if let Some(o) = self.ready.remove(&post.id) {
                post.text = Some(o.text);
                post.source = o.source;
            }
        }
    }
}

fn run(mut pipeline: Pipeline, mut llm: Option<LlmHook>, input: Receiver<Input>, output: Sender<Output>) -> Pipeline {
    let mut due: BinaryHeap<Due> = BinaryHeap::new();
    // Events are numbered from 0 in arrival order, as `chorus run` numbers lines, so post ids
    // match between the two.
    let mut seq: u32 = 0;
    for msg in input.iter() {
        match msg {
            Input::Event(event) => {
                let event_index = seq;
                seq = seq.wrapping_add(1);
                match pipeline.process(&event, event_index, event_index as usize + 1) {
                    Ok((posts, _)) => {
                        if let Some(hook) = llm.as_mut() {
                            hook.submit(&pipeline, &event, event_index as usize + 1, &posts);
                            hook.reflect(&mut pipeline, event.time);
                        }
                        due.extend(posts.into_iter().map(Due));
                    }
                    Err(e) => {
                        if output.send(Output::Rejected(e)).is_err() {
                            return pipeline;
                        }
                    }
                }
            }
            Input::Tick(now) => {
                if let Some(hook) = llm.as_mut() {
                    hook.collect(&mut pipeline);
                }
                while due.peek().is_some_and(|d| d.0.time <= now) {
                    if let Some(Due(mut p)) = due.pop() {
                        if let Some(hook) = llm.as_mut() {
                            hook.fill(&mut p);
                        }
                        if output.send(Output::Post(p)).is_err() {
                            return pipeline;
                        }
                    }
                }
                if output.send(Output::Clock(now)).is_err() {
                    return pipeline;
                }
            }
        }
    }
    pipeline
}

/// The channel API for tokio games: the same engine behind bounded `tokio::sync::mpsc`
/// channels. Two bridge threads forward between the tokio and crossbeam channels, with
/// blocking sends, so a full channel still pushes back: `try_send` returns
/// `TrySendError::Full(input)`, and `send().await` waits.
#[cfg(feature = "async")]
pub struct AsyncEngine {
    events: tokio::sync::mpsc::Sender<Input>,
    timeline: tokio::sync::mpsc::Receiver<Output>,
    bridges: Vec<JoinHandle<()>>,
    engine: Option<JoinHandle<Pipeline>>,
}

#[cfg(feature = "async")]
impl AsyncEngine {
    /// Starts an engine over `population` with channels of `capacity` messages each.
    pub fn start(population: Population, capacity: usize) -> Result<AsyncEngine> {
        let mut engine = Engine::start(population, capacity)?;
        let cap = capacity.max(1);
        let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<Input>(cap);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Output>(cap);
        let to_engine = engine.events.clone();
        let from_engine = engine.timeline.clone();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| crate::Error::io("chorus bridge thread", e))
        };
        let inbound = spawn(
            "chorus-async-in",
            Box::new(move || {
                while let Some(input) = in_rx.blocking_recv() {
                    if to_engine.send(input).is_err() {
                        break;
                    }
                }
            }),
        )?;
        let outbound = spawn(
            "chorus-async-out",
            Box::new(move || {
                for output in from_engine.iter() {
                    if out_tx.blocking_send(output).is_err() {
                        break;
                    }
                }
            }),
        )?;
        // The engine thread lives on while the bridges hold its channel ends.
        let bridges = vec![inbound, outbound];
        Ok(AsyncEngine { events: in_tx, timeline: out_rx, bridges, engine: engine.thread.take() })
    }

    /// Where the game sends events and ticks.
    pub fn events(&self) -> &tokio::sync::mpsc::Sender<Input> {
        &self.events
    }

    /// Where the timeline comes out.
    pub fn timeline(&mut self) -> &mut tokio::sync::mpsc::Receiver<Output> {
        &mut self.timeline
    }

    /// Stops accepting input and lets the threads finish (call from outside the runtime's
    /// worker threads, or after the runtime is done). Scheduled future posts are dropped.
    pub fn shutdown(self) {
        let AsyncEngine { events, mut timeline, bridges, engine } = self;
        drop(events);
        timeline.close();
        while timeline.try_recv().is_ok() {}
        drop(timeline);
        for b in bridges {
            let _ = b.join();
        }
        if let Some(e) = engine {
            let _ = e.join();
        }
    }
}
