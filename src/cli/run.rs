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
        let (mut config, transport) = args.llm.resolve()?;
        if let Some(b) = args.budget {
            config.budget.per_day = b;
        }
        let router = chorus::llm::route::Router::new(sim.pipeline().population(), config.routing.clone());
        Some((chorus::llm::Llm::new(config, Box::new(SharedTransport(transport)))?, router))
    } else {
        None
    };
    let router = llm.as_ref().map(|(_, r)| r);
    let reflect =
        llm.as_ref().filter(|(l, _)| l.config().reflections.enabled).map(|(l, _)| l.config().reflections.per_event);
    let (mut posts, failed, events, reacting, items, formed) =
        run_events(&mut sim, parsed, base, router, reflect, &args.events, &meter);
    if let Some((llm, _)) = &llm {
        meter.begin("llm", items.len() as u64);
        let started = Instant::now();
        let outcomes = llm.resolve(items, sim.pipeline().population(), sim.pipeline().templates());
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
    }
    sim.pipeline_mut().set_numbered(base + count);
    if let Some(path) = &args.save_state {
        meter.begin("save state", 1);
        sim.pipeline().save(path)?;
    }
    meter.begin("write", posts.len() as u64);
    timeline::sort(&mut posts);
    match &args.out {
        Some(path) => {
            let mut file = chorus::export::files::AtomicFile::create(path)?;
            timeline::write_jsonl(&posts, file.writer()).map_err(|e| file.err(e))?;
            file.commit()?;
        }
        None => timeline::write_jsonl(&posts, std::io::BufWriter::new(std::io::stdout().lock()))?,
    }
    let stages = meter.finish();
    let mut by_kind = std::collections::BTreeMap::new();
    for p in &posts {
        *by_kind.entry(p.kind).or_insert(0usize) += 1;
    }
    let kinds: Vec<String> =
        PostKind::ALL.iter().map(|k| format!("{} {}", k.name(), by_kind.get(k).copied().unwrap_or(0))).collect();
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
        let n = |s: chorus::timeline::Source| posts.iter().filter(|p| p.text.is_some() && p.source == s).count();
        use chorus::timeline::Source;
        format!("text from llm {}, cache {}, templates {}", n(Source::Llm), n(Source::Cache), n(Source::Template))
    } else {
        "all text from templates".to_string()
    };
    eprintln!("timeline {} entries: {} ({sources})", posts.len(), kinds.join(", "));
    report_state(sim.pipeline(), posts.last().map(|p| p.time).unwrap_or_default());
    for st in &stages {
        eprintln!("stage {:<12} {:>8.3} s  peak RSS {:>8.1} MiB", st.stage, st.seconds, st.peak_rss_mib);
    }
    if failed > 0 {
        anyhow::bail!("{failed} events were rejected (see the messages above); the others are in the timeline");
    }
    Ok(())
}
