//! `chorus run`: events in, a JSONL timeline out.

use super::common::*;
use super::llm::*;
use super::meter::*;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    pub(crate) events: PathBuf,
    /// Write the timeline here (JSONL; default: standard output).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    pub(crate) load: Option<PathBuf>,
    /// Worker threads (default: all cores). The output is identical for any number.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) state: StateArgs,
    /// Save the evolving state at the end (to continue later with --resume).
    #[arg(long)]
    pub(crate) save_state: Option<PathBuf>,
    /// Also save it every N events (to --save-state's path), so a long run can be continued
    /// from its last save.
    #[arg(long, value_name = "N", requires = "save_state")]
    pub(crate) save_every: Option<usize>,
    /// Token budget per game day for the LLM (with --llm or --replay; default 2,000, or the
    /// one in --llm-config).
    #[arg(long, value_name = "N")]
    pub(crate) budget: Option<u64>,
    #[command(flatten)]
    pub(crate) llm: LlmArgs,
}

pub(crate) fn run_pipeline(args: RunArgs) -> Result<()> {
    use chorus::events::parse_events_numbered;
    use chorus::timeline::{self, PostKind};
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("setting up threads")?;
    }
    let meter = StageMeter::new(!args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let population = run_population_for(args.load.as_deref(), args.users, args.seed, &meter)?;
    meter.begin("setup", 1);
    let mut sim = chorus::sim::Simulation::from_pipeline(state_pipeline(population, &args.state)?, Default::default());
    sim.keep_feed(false);
    let bytes = read_input(&args.events)?;
    let parsed = parse_events_numbered(&bytes);
    meter.begin("events", parsed.len() as u64);
    // Events are numbered by position (post ids depend on it), after those of a resumed run.
    let base = sim.pipeline().numbered();
    let count = parsed.len() as u32;
    let llm = if args.llm.enabled() {
        let run = chorus::llm::client::RunMeta {
            seed: sim.pipeline().population().config().seed,
            users: sim.pipeline().population().len() as u64,
            events: chorus::llm::client::RunMeta::digest(&bytes),
            ..Default::default()
        };
        let (config, transport) = args.llm.resolve(run, args.budget)?;
        let replayed = transport.clone();
        let router = chorus::llm::route::Router::new(sim.pipeline().population(), config.routing.clone());
        let gate = chorus::llm::gate::Gate::embedded(sim.pipeline().classifier().clone())?;
        Some((chorus::llm::Llm::new(config, Box::new(SharedTransport(transport)))?.with_gate(gate), router, replayed))
    } else {
        None
    };
    let mut out = match &args.out {
        Some(path) => Out::File(chorus::export::files::AtomicFile::create(path)?),
        None => Out::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut tally = Tally::default();
    let (failed, events, reacting) = match &llm {
        Some((llm, router, replayed)) => {
            // The LLM stage fills items across the whole run, so the timeline is held whole.
            let reflect = llm.config().reflections.enabled.then_some(llm.config().reflections.per_event);
            let banks = Some(&llm.config().banks);
            let EventsRun { mut posts, failed, events, reacting, items, banks, formed } =
                run_events(&mut sim, parsed, base, Some(router), banks, reflect, &args.events, &meter);
            meter.begin("llm", items.len() as u64);
            let started = Instant::now();
            let outcomes = llm.resolve_all(items, banks, sim.pipeline().population(), sim.pipeline().templates());
            check_replayed(replayed.as_ref(), args.llm.replay.as_deref())?;
            chorus::llm::apply(&mut posts, &outcomes);
            eprint!("{}", llm_summary(&llm.report(), started.elapsed()));
            // Reflections are low priority: they get what the posts left of the budget.
            let mut total = chorus::llm::reflect::ReflectionReport::default();
            for (time, requests) in &formed {
                let r = llm.write_reflections(sim.pipeline_mut().state_mut(), requests, *time)?;
                total.offered += r.offered;
                total.written += r.written;
                total.skipped_for_budget += r.skipped_for_budget;
                total.failed += r.failed;
                total.requests += r.requests;
            }
            eprintln!(
                "llm      reflections: {} offered, {} written by the LLM in {} requests, {} left to templates for the budget, {} failed",
                total.offered, total.written, total.requests, total.skipped_for_budget, total.failed
            );
            meter.begin("write", posts.len() as u64);
            timeline::sort(&mut posts);
            tally.write(&posts, out.writer())?;
            (failed, events, reacting)
        }
        None => stream_events(&mut sim, parsed, base, &args, &meter, &mut tally, out.writer())?,
    };
    sim.pipeline_mut().set_numbered(base + count);
    if let Some(path) = &args.save_state {
        meter.begin("save state", 1);
        sim.pipeline().save(path)?;
    }
    out.finish()?;
    let stages = meter.finish();
    let kinds: Vec<String> =
        PostKind::ALL.iter().map(|k| format!("{} {}", k.name(), tally.by_kind[*k as usize])).collect();
    eprintln!(
        "events {events} processed, {failed} rejected; {} reactions ({:.2}% of users per event on average)",
        reacting,
        if events > 0 {
            reacting as f64 / events as f64 / sim.pipeline().population().len() as f64 * 100.0
        } else {
            0.0
        }
    );
    let sources = if llm.is_some() {
        let [l, c, t, b] = tally.sources;
        format!("text from llm {l}, phrase banks {b}, cache {c}, templates {t}")
    } else {
        "all text from templates".to_string()
    };
    eprintln!("timeline {} entries: {} ({sources})", tally.entries, kinds.join(", "));
    report_state(sim.pipeline(), tally.last);
    for st in &stages {
        eprintln!("stage {:<12} {:>8.3} s  peak RSS {:>8.1} MiB", st.stage, st.seconds, st.peak_rss_mib);
    }
    if failed > 0 {
        anyhow::bail!("{failed} events were rejected (see the messages above); the others are in the timeline");
    }
    Ok(())
}

/// What the written timeline held, counted as it goes out.
#[derive(Default)]
struct Tally {
    entries: usize,
    by_kind: [usize; chorus::timeline::PostKind::ALL.len()],
    /// Texts from the LLM, the cache, templates and phrase banks.
    sources: [usize; 4],
    last: chorus::events::GameTime,
}

impl Tally {
    fn write(&mut self, posts: &[chorus::timeline::Post], out: &mut dyn std::io::Write) -> Result<()> {
        use chorus::timeline::Source;
        for p in posts {
            self.by_kind[p.kind as usize] += 1;
            if p.text.is_some() {
                match p.source {
                    Source::Llm => self.sources[0] += 1,
                    Source::Cache => self.sources[1] += 1,
                    Source::Bank => self.sources[3] += 1,
                    _ => self.sources[2] += 1,
                }
            }
        }
        self.entries += posts.len();
        if let Some(p) = posts.last() {
            self.last = self.last.max(p.time);
        }
        chorus::timeline::write_jsonl(posts, out).context("writing the timeline")?;
        Ok(())
    }
}

/// Plays the events and streams the timeline: an entry is written once no later event can
/// produce an earlier one (its time is before every later event's), so only the entries of
/// the last hours are held. The output is the same as sorting the whole timeline at the end.
fn stream_events(
    sim: &mut chorus::sim::Simulation,
    parsed: Vec<(usize, std::result::Result<chorus::events::GameEvent, chorus::events::EventError>)>,
    base: u32,
    args: &RunArgs,
    meter: &StageMeter,
    tally: &mut Tally,
    out: &mut dyn std::io::Write,
) -> Result<(usize, usize, usize)> {
    // The earliest time of the events from each position on.
    let mut after = vec![i64::MAX; parsed.len() + 1];
    for (i, (_, e)) in parsed.iter().enumerate().rev() {
        after[i] = after[i + 1].min(e.as_ref().map_or(i64::MAX, |e| e.time.0));
    }
    let (mut failed, mut events, mut reacting) = (0usize, 0usize, 0usize);
    let mut waiting = chorus::ordered::Ordered::default();
    let mut ready = Vec::new();
    let (total, mut produced) = (parsed.len(), 0usize);
    for (i, (line, item)) in parsed.into_iter().enumerate() {
        match item.and_then(|event| sim.apply_at(&event, base + i as u32, line)) {
            Err(e) => {
                failed += 1;
                eprintln!("chorus: {}: {e}", args.events.display());
            }
            Ok((applied, _)) => {
                events += 1;
                reacting += applied.info.reactions;
                produced += applied.posts.len();
                waiting.push(applied.posts);
            }
        }
        waiting.ready(after[i + 1], &mut ready);
        if ready.len() >= 1 << 16 {
            tally.write(&ready, out)?;
            ready.clear();
        }
        if let (Some(every), Some(path)) = (args.save_every, &args.save_state) {
            // (The save at the end covers the last events.)
            if every > 0 && (i + 1) % every == 0 && i + 1 < total {
                sim.pipeline_mut().set_numbered(base + i as u32 + 1);
                sim.pipeline().save(path)?;
                let st = sim.pipeline().state();
                let mib = |b: usize| b as f64 / (1 << 20) as f64;
                eprintln!(
                    "saved after {} events: state {:.1} MiB (history {:.1}: {} actions, relationships {:.1}: {}, \
                     follows {:.1}, reflections {:.1}: {}); {} entries made, {} waiting",
                    i + 1,
                    mib(st.bytes()),
                    mib(st.history().bytes()),
                    st.history().records(),
                    mib(st.relations().bytes()),
                    st.relations().len(),
                    mib(st.follows().bytes()),
                    mib(st.reflections().bytes()),
                    st.reflections().len(),
                    produced,
                    waiting.len()
                );
            }
        }
        chorus::population::Progress::advance(meter, 1);
    }
    waiting.ready(i64::MAX, &mut ready);
    meter.begin("write", ready.len() as u64);
    tally.write(&ready, out)?;
    anyhow::ensure!(tally.entries == produced, "{produced} entries made but {} written", tally.entries);
    Ok((failed, events, reacting))
}

/// Where the timeline goes: a file written under a temporary name and renamed when complete,
/// or standard output.
enum Out {
    File(chorus::export::files::AtomicFile),
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
}

impl Out {
    fn writer(&mut self) -> &mut dyn std::io::Write {
        match self {
            Out::File(f) => f.writer(),
            Out::Stdout(s) => s,
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Out::File(f) => {
                f.commit()?;
            }
            Out::Stdout(mut s) => std::io::Write::flush(&mut s).context("writing the timeline")?,
        }
        Ok(())
    }
}
