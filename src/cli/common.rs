//! What several subcommands share: reading inputs, the population of a run, the user-state
//! options and the per-event loop.

use super::meter::*;
use anyhow::{Context, Result};
use chorus::population::Progress;
use chorus::{Population, PopulationConfig, SeedSet, World};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct StateArgs {
    /// User-state rules as JSON (a `StateConfig`: history_window, reflect_every, peak,
    /// mood_half_life_hours, relations, shifts...; unknown fields are refused).
    #[arg(long)]
    pub(crate) state_config: Option<PathBuf>,
    /// Experiment tags and external ids, JSON lines `{"user": 17, "tags": ["a"], "external_id": "u_1"}`.
    #[arg(long)]
    pub(crate) tags: Option<PathBuf>,
    /// Continue from a state saved by `--save-state` (same population).
    #[arg(long)]
    pub(crate) resume: Option<PathBuf>,
    /// Volume knob: scales every event's reactions (0.01 to 100; default 1).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) activity: f32,
}

/// The world file given, or the shipped one.
pub(crate) fn load_world(path: Option<&std::path::Path>) -> Result<World> {
    Ok(match path {
        Some(p) => World::load(p)?,
        None => World::embedded()?,
    })
}

/// The bytes of an input file, or of standard input for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("reading standard input")?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// A pipeline over `population` with the user-state options applied.
pub(crate) fn state_pipeline(population: Population, args: &StateArgs) -> Result<chorus::engine::Pipeline> {
    let config = match &args.state_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let mut de = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?
        }
        None => chorus::state::StateConfig::default(),
    };
    if !chorus::filter::ACTIVITY_RANGE.contains(&args.activity) {
        anyhow::bail!("--activity {}: must be between 0.01 and 100", args.activity);
    }
    let mut pipeline = chorus::engine::Pipeline::with_state(population, config)?;
    pipeline.set_activity(args.activity);
    if let Some(path) = &args.resume {
        pipeline.resume(path)?;
    }
    if let Some(path) = &args.tags {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        pipeline.state_mut().load_tags(&path.display().to_string(), &text)?;
    }
    Ok(pipeline)
}

/// The state lines of the run summary: mood distribution, feuds, memory.
pub(crate) fn report_state(pipeline: &chorus::engine::Pipeline, now: chorus::events::GameTime) {
    let st = pipeline.state();
    let minute = chorus::state::minute_of(now);
    let (shares, energy, n) = st.mood_summary(pipeline.population(), minute);
    eprintln!(
        "state: {n} users touched by events; mood negative {:.1}%, neutral {:.1}%, positive {:.1}%, mean energy {:.2}; \
         {} active feuds, {} relationships, {} follows and {} unfollows from them, {} reflections formed, \
         {} actions in history windows, {:.1} MiB",
        shares[0] * 100.0,
        shares[1] * 100.0,
        shares[2] * 100.0,
        energy,
        st.feuds(minute),
        st.relations().len(),
        st.follows().counts().0,
        st.follows().counts().1,
        st.reflections().formed(),
        st.history().records(),
        st.bytes() as f64 / (1 << 20) as f64,
    );
}

/// The population a timeline was made from (`timeline`, `stats`).
#[derive(clap::Args)]
pub(crate) struct RunPopulationArgs {
    /// Number of users of the run (ignored with --load); must match the run's.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u32,
    /// Master seed of the run (ignored with --load).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// The run's population snapshot.
    #[arg(long)]
    pub(crate) load: Option<PathBuf>,
}

impl RunPopulationArgs {
    /// The population, loaded or generated as the run did.
    pub(crate) fn get(&self, meter: &StageMeter) -> Result<Population> {
        run_population_for(self.load.as_deref(), self.users, self.seed, meter)
    }
}

/// The population of `run`/`export`: loaded from a snapshot or generated from the embedded data.
pub(crate) fn run_population_for(
    load: Option<&std::path::Path>,
    users: u32,
    seed: u64,
    meter: &StageMeter,
) -> Result<Population> {
    Ok(match load {
        Some(path) => {
            meter.begin("load", 1);
            chorus::snapshot::load(path)?
        }
        None => {
            let world = World::embedded()?;
            let seeds = SeedSet::embedded(&world)?;
            let config = PopulationConfig { users, seed, ..PopulationConfig::default() };
            Population::generate_with(&seeds, &world, &config, meter)?
        }
    })
}

/// What [`run_events`] gives back.
#[derive(Default)]
pub(crate) struct EventsRun {
    /// Every event's entries, in event order.
    pub(crate) posts: Vec<chorus::timeline::Post>,
    /// Events rejected.
    pub(crate) failed: usize,
    /// Events processed.
    pub(crate) events: usize,
    /// Reactions, all events.
    pub(crate) reacting: usize,
    /// Posts routed to the LLM on their own.
    pub(crate) items: Vec<chorus::llm::route::Item>,
    /// Events that call for a phrase bank.
    pub(crate) banks: Vec<chorus::llm::bank::BankRequest>,
    /// Reflections formed, by event time.
    pub(crate) formed: Vec<(chorus::events::GameTime, Vec<chorus::llm::reflect::ReflectionRequest>)>,
}

/// Runs every event through the pipeline; with a router, also collects the routed items and
/// (with `banks`) the phrase banks the events call for, and with `reflections` (most per
/// event) the reflections each event formed, for the LLM.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_events(
    sim: &mut chorus::sim::Simulation,
    parsed: Vec<(usize, std::result::Result<chorus::events::GameEvent, chorus::events::EventError>)>,
    base: u32,
    router: Option<&chorus::llm::route::Router>,
    banks: Option<&chorus::llm::bank::BankConfig>,
    reflections: Option<usize>,
    file: &std::path::Path,
    meter: &StageMeter,
) -> EventsRun {
    let mut run = EventsRun::default();
    // Events are numbered by position after `base` (post ids depend on it); errors name the
    // file line.
    for (i, (line, item)) in parsed.into_iter().enumerate() {
        let index = base + i as u32;
        match item.and_then(|event| sim.apply_at(&event, index, line).map(|r| (event, r))) {
            Err(e) => {
                run.failed += 1;
                eprintln!("chorus: {}: {e}", file.display());
            }
            Ok((event, (applied, class))) => {
                run.events += 1;
                run.reacting += applied.info.reactions;
                let pipeline = sim.pipeline();
                if let Some(router) = router {
                    run.items.extend(router.items(
                        pipeline.population(),
                        Some(pipeline.state()),
                        &event,
                        &class,
                        &applied.posts,
                    ));
                    if let Some(b) =
                        banks.and_then(|c| router.bank(pipeline.population(), c, &event, &class, index, &applied.posts))
                    {
                        run.banks.push(b);
                    }
                }
                if let Some(per_event) = reflections {
                    let st = pipeline.state();
                    let requests =
                        chorus::llm::reflect::requests(pipeline.population(), st, st.last_reflections(), per_event);
                    if !requests.is_empty() {
                        run.formed.push((event.time, requests));
                    }
                }
                run.posts.extend(applied.posts);
            }
        }
        meter.advance(1);
    }
    run
}
