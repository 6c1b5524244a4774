//! The `chorus` command line: glue between flags and the library.

use anyhow::{Context, Result};
use chorus::population::Progress;
use chorus::{Population, PopulationConfig, SeedSet, World};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "chorus", version, about = "A living virtual Twitter for games")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a population and its graph, print statistics, optionally save a snapshot.
    Population(PopulationArgs),
    /// Classify game events: one JSON classification (or error record) per event line.
    Classify(ClassifyArgs),
    /// Run the pipeline: events in, the simulated users' posts out as a JSONL timeline.
    Run(RunArgs),
    /// Show one user: profile, current state, recent history, reflections, relationships.
    Inspect(InspectArgs),
    /// Run the pipeline and stream the timeline (and optionally users and edges) to files
    /// (JSONL, CSV, Parquet, with a manifest) and/or a Bolt graph database.
    Export(ExportArgs),
    /// Query a JSONL timeline: a user's home and profile timelines, an event's reply trees,
    /// or the firehose in game-time order.
    Timeline(TimelineArgs),
    /// Replay an event script at several token budgets and report what each buys.
    Budget(BudgetArgs),
}

#[derive(clap::Args)]
struct StateArgs {
    /// User-state rules as JSON (a `StateConfig`: history_window, reflect_every, peak,
    /// mood_half_life_hours, relations, shifts...; unknown fields are refused).
    #[arg(long)]
    state_config: Option<PathBuf>,
    /// Experiment tags and external ids, JSON lines `{"user": 17, "tags": ["a"], "external_id": "u_1"}`.
    #[arg(long)]
    tags: Option<PathBuf>,
    /// Continue from a state saved by `--save-state` (same population).
    #[arg(long)]
    resume: Option<PathBuf>,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The user: an id or an @handle.
    #[arg(long)]
    user: String,
    /// Events to play first (JSON lines), so the state has a history.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    load: Option<PathBuf>,
    #[command(flatten)]
    state: StateArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct TimelineArgs {
    /// The timeline, as `chorus run --out` or `chorus export` (posts.jsonl) wrote it.
    #[arg(long)]
    timeline: PathBuf,
    /// Print this user's home and profile timelines (one JSON object).
    #[arg(long, value_name = "ID")]
    user: Option<u32>,
    /// Print this event's thread trees (one JSON object per original post, replies nested).
    #[arg(long, value_name = "EVENT")]
    event: Option<String>,
    /// Print every entry in game-time order (JSONL).
    #[arg(long)]
    firehose: bool,
    /// Game time of the query (default: the last entry's time).
    #[arg(long)]
    now: Option<i64>,
    /// Most home-timeline entries.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Number of users of the run (ignored with --load); must match the run's.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Master seed of the run (ignored with --load).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The run's population snapshot.
    #[arg(long)]
    load: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    events: PathBuf,
    /// Write the export files into this directory (created if needed).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Comma-separated formats: jsonl, csv, parquet.
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Also export the users with their traits (users.<format>).
    #[arg(long)]
    population: bool,
    /// Also export the relationship graph as an edge list (edges.<format>).
    #[arg(long)]
    graph: bool,
    /// Parquet row-group size in rows.
    #[arg(long, default_value_t = 65_536)]
    row_group: usize,
    /// Also write users, relationships and posts into this Bolt (Neo4j protocol) database,
    /// e.g. bolt://127.0.0.1:7687.
    #[arg(long, value_name = "URI")]
    neo4j: Option<String>,
    /// Bolt user name.
    #[arg(long, default_value = "neo4j")]
    neo4j_user: String,
    /// Bolt password (default: the CHORUS_NEO4J_PASSWORD environment variable).
    #[arg(long)]
    neo4j_password: Option<String>,
    /// Bolt database name.
    #[arg(long, default_value = "neo4j")]
    neo4j_db: String,
    /// Rows per Bolt transaction.
    #[arg(long, default_value_t = 5_000)]
    neo4j_batch: usize,
    /// Also write a training dataset of sampled (user, event) decisions to FILE (JSONL; schema
    /// in docs/TRAINING_DATA.md).
    #[arg(long, value_name = "FILE")]
    training: Option<PathBuf>,
    /// Share of each action class in the training data, summing to 1, e.g.
    /// none=0.5,like=0.15,repost=0.1,reply=0.1,quote=0.05,post=0.05,gif=0.05 (the default).
    #[arg(long, value_name = "RATES")]
    training_rates: Option<String>,
    /// Training records per event at most.
    #[arg(long, default_value_t = 1_000)]
    training_per_event: usize,
    /// Also write the CSV files `neo4j-admin database import` takes into DIR.
    #[arg(long, value_name = "DIR")]
    neo4j_admin: Option<PathBuf>,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Worker threads (default: all cores). The output is identical for any number.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// LLM flags shared by `run` and `budget`.
#[derive(clap::Args, Clone)]
struct LlmArgs {
    /// OpenAI-compatible API base URL (e.g. http://127.0.0.1:8080/v1); model and key come from
    /// CHORUS_LLM_MODEL and CHORUS_LLM_KEY (or --llm-config).
    #[arg(long, value_name = "URL")]
    llm: Option<String>,
    /// Record every LLM exchange (request hash -> response) to this JSONL file.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Answer LLM requests from a record file instead of a server (reproduces a recorded run).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["llm", "record"])]
    replay: Option<PathBuf>,
    /// LLM stage settings as a JSON file (see chorus::llm::LlmConfig: routing, budget shares,
    /// batch sizes, cache, client limits).
    #[arg(long, value_name = "FILE")]
    llm_config: Option<PathBuf>,
}

impl LlmArgs {
    fn enabled(&self) -> bool {
        self.llm.is_some() || self.replay.is_some()
    }

    /// The settings and the transport the flags ask for.
    fn resolve(&self) -> Result<(chorus::llm::LlmConfig, std::sync::Arc<dyn chorus::llm::client::Transport>)> {
        use chorus::llm::client::{Http, Recorder, Replay};
        let mut config: chorus::llm::LlmConfig = match &self.llm_config {
            Some(p) => serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("{}: not a valid LLM configuration", p.display()))?,
            None => chorus::llm::LlmConfig::default(),
        };
        if let Some(url) = &self.llm {
            config.client.url = url.clone();
        }
        config.client = config.client.with_env();
        let transport: std::sync::Arc<dyn chorus::llm::client::Transport> = match (&self.replay, &self.record) {
            (Some(path), _) => std::sync::Arc::new(Replay::load(path)?),
            (None, record) => std::sync::Arc::new(Recorder::new(Http::new(&config.client)?, record.as_deref())?),
        };
        Ok((config, transport))
    }
}

#[derive(clap::Args)]
struct BudgetArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    events: PathBuf,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Budgets to compare, tokens per game day, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,2000,5000,10000,50000")]
    budgets: Vec<u64>,
    /// Price per million tokens, for the cost column.
    #[arg(long, default_value_t = 0.10)]
    price_per_million: f64,
    /// Write the table here as well (Markdown).
    #[arg(long)]
    table: Option<PathBuf>,
    /// Write an SVG plot of post sources and tokens against the budget.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    llm: LlmArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    events: PathBuf,
    /// Write the timeline here (JSONL; default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Worker threads (default: all cores). The output is identical for any number.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    state: StateArgs,
    /// Save the evolving state at the end (to continue later with --resume).
    #[arg(long)]
    save_state: Option<PathBuf>,
    /// Token budget per game day for the LLM (with --llm or --replay; default 2,000, or the
    /// one in --llm-config).
    #[arg(long, value_name = "N")]
    budget: Option<u64>,
    #[command(flatten)]
    llm: LlmArgs,
}

#[derive(clap::Args)]
struct ClassifyArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    events: PathBuf,
    /// World file (default: the shipped seeds/world.jsonl).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Lexicon folder (default: the shipped templates/lexicon).
    #[arg(long)]
    lexicon: Option<PathBuf>,
    /// Lines carry a "label" with the expected classification: print an accuracy report to
    /// standard error.
    #[arg(long)]
    labels: bool,
}

#[derive(clap::Args)]
struct PopulationArgs {
    /// Number of users.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Master seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Save the population to this snapshot file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Load a snapshot instead of generating (ignores --users, --seed, --seeds, --world).
    #[arg(long, conflicts_with = "out")]
    load: Option<PathBuf>,
    /// Seed profiles file (default: the shipped seeds/profiles.jsonl).
    #[arg(long)]
    seeds: Option<PathBuf>,
    /// World file (default: the shipped seeds/world.jsonl).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Graph parameters as a JSON object (see GraphConfig), e.g. '{"follows_median": 40}'.
    #[arg(long)]
    graph: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also print K users spread evenly over the population, one JSON object per line.
    #[arg(long, value_name = "K")]
    sample: Option<u32>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Wall time and peak RSS of one stage.
#[derive(serde::Serialize, Clone)]
struct StageReport {
    stage: String,
    seconds: f64,
    peak_rss_mib: f64,
}

/// Peak RSS since the last reset, from /proc (Linux); 0 elsewhere.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resets the kernel's peak-RSS mark so each stage reports its own peak (Linux only).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Progress bar plus per-stage timing and peak memory.
struct StageMeter {
    bar: Option<indicatif::ProgressBar>,
    current: Mutex<Option<(String, Instant)>>,
    reports: Mutex<Vec<StageReport>>,
    done: AtomicU64,
}

impl StageMeter {
    fn new(show: bool) -> Self {
        let bar = show.then(|| {
            let b = indicatif::ProgressBar::new(1);
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        StageMeter { bar, current: Mutex::new(None), reports: Mutex::new(Vec::new()), done: AtomicU64::new(0) }
    }

    fn close(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((name, start)) = cur.take() {
            let report = StageReport {
                stage: name,
                seconds: start.elapsed().as_secs_f64(),
                peak_rss_mib: peak_rss_kib() as f64 / 1024.0,
            };
            self.reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
        }
    }

    fn begin(&self, name: &str, total: u64) {
        self.close();
        reset_peak_rss();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((name.to_string(), Instant::now()));
        self.done.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_prefix(name.to_string());
            b.set_length(total);
            b.set_position(0);
        }
    }

    fn finish(&self) -> Vec<StageReport> {
        self.close();
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Progress for StageMeter {
    fn stage(&self, name: &'static str, total: u64) {
        self.begin(name, total);
    }
    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
}

/// The world file given, or the shipped one.
fn load_world(path: Option<&std::path::Path>) -> Result<World> {
    Ok(match path {
        Some(p) => World::load(p)?,
        None => World::embedded()?,
    })
}

/// The bytes of an input file, or of standard input for `-`.
fn read_input(path: &std::path::Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("reading standard input")?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Flags resolved into what the library needs.
struct PopulationJob {
    config: PopulationConfig,
    world: World,
    seeds: SeedSet,
}

fn resolve(args: &PopulationArgs) -> Result<PopulationJob> {
    let world = load_world(args.world.as_deref())?;
    let seeds = match &args.seeds {
        Some(p) => SeedSet::load(p, &world)?,
        None => SeedSet::embedded(&world)?,
    };
    let mut config = PopulationConfig { users: args.users, seed: args.seed, ..PopulationConfig::default() };
    if let Some(g) = &args.graph {
        config.graph = serde_json::from_str(g).context("--graph is not a valid graph configuration")?;
    }
    Ok(PopulationJob { config, world, seeds })
}

fn run_population(args: PopulationArgs) -> Result<()> {
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("setting up threads")?;
    }
    let meter = StageMeter::new(!args.quiet && !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let population = match &args.load {
        Some(path) => {
            meter.begin("load", 1);
            chorus::snapshot::load(path)?
        }
        None => {
            let job = resolve(&args)?;
            Population::generate_with(&job.seeds, &job.world, &job.config, &meter)?
        }
    };
    if let Some(out) = &args.out {
        meter.begin("save", 1);
        chorus::snapshot::save(&population, out)?;
    }
    meter.begin("statistics", 1);
    let stats = chorus::stats::population_stats(&population);
    let stages = meter.finish();
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    if args.json {
        let v = serde_json::json!({ "stats": stats, "stages": stages, "snapshot": args.out });
        writeln!(w, "{v}")?;
    } else {
        write_text(&mut w, &stats, &stages)?;
    }
    if let Some(k) = args.sample {
        let n = population.len() as u64;
        let k = (k as u64).min(n);
        for i in 0..k {
            let id = chorus::UserId((i * n / k.max(1)) as u32);
            writeln!(w, "{}", serde_json::to_string(&population.user(id))?)?;
        }
    }
    Ok(())
}

fn write_text(w: &mut impl Write, s: &chorus::stats::PopulationStats, stages: &[StageReport]) -> std::io::Result<()> {
    writeln!(w, "users            {}", s.users)?;
    writeln!(w, "edges            {}  ({:.1} per user)", s.edges, s.edges as f64 / s.users.max(1) as f64)?;
    let kinds: Vec<String> = s.edges_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(w, "edges by kind    {}", kinds.join(", "))?;
    for (name, p) in [("following", &s.out_degree), ("followers", &s.in_degree)] {
        writeln!(
            w,
            "{name:<16} mean {:.1}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            p.mean, p.p50, p.p90, p.p99, p.p999, p.max
        )?;
    }
    match &s.in_degree_power_law {
        Some(f) => writeln!(
            w,
            "power law        alpha {:.2} for followers >= {} ({} users, KS {:.3})",
            f.alpha, f.xmin, f.tail, f.ks
        )?,
        None => writeln!(w, "power law        (too few users to fit)")?,
    }
    writeln!(w, "reciprocity      {:.3}", s.reciprocity)?;
    let c = &s.communities;
    for (name, z) in [
        ("circles", &c.circles),
        ("workplaces", &c.workplaces),
        ("towns", &c.towns),
        ("fandoms", &c.fandoms),
        ("parties", &c.parties),
    ] {
        writeln!(w, "{name:<16} {} communities, mean size {:.1}, median {}, max {}", z.count, z.mean, z.p50, z.max)?;
    }
    let h = &s.homophily;
    writeln!(
        w,
        "edges within     any shared community {:.1}% (random pairs {:.1}%): circle {:.1}%, workplace {:.1}%, town {:.1}%, team {:.1}%, party {:.1}%, main topic {:.1}%",
        h.any * 100.0,
        h.any_random * 100.0,
        h.circle * 100.0,
        h.workplace * 100.0,
        h.town * 100.0,
        h.team * 100.0,
        h.party * 100.0,
        h.topic * 100.0
    )?;
    writeln!(
        w,
        "memory           {:.0} bytes/user (profile), {:.1} bytes/edge (both directions)",
        s.bytes_per_user, s.bytes_per_edge
    )?;
    for st in stages {
        writeln!(w, "stage {:<12} {:>8.3} s  peak RSS {:>8.1} MiB", st.stage, st.seconds, st.peak_rss_mib)?;
    }
    Ok(())
}

fn run_classify(args: ClassifyArgs) -> Result<()> {
    use chorus::classify::{split_label, Accuracy, Classifier, Lexicon};
    use chorus::events::{parse_event, EventError};
    let world = load_world(args.world.as_deref())?;
    let lexicon = match &args.lexicon {
        Some(dir) => Lexicon::load(dir)?,
        None => Lexicon::embedded()?,
    };
    let classifier = Classifier::new(lexicon, &world);
    let bytes = read_input(&args.events)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let (mut ok, mut failed, mut scored) = (0usize, 0usize, Vec::new());
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let result = match std::str::from_utf8(raw) {
            Err(e) => Err(EventError {
                line,
                id: None,
                field: "-".into(),
                error: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            }),
            Ok(text) if text.trim().is_empty() || text.trim_start().starts_with('#') => continue,
            Ok(text) => {
                let split = if args.labels {
                    split_label(text.trim()).map_err(|error| EventError {
                        line,
                        id: None,
                        field: "label".into(),
                        error,
                    })
                } else {
                    Ok((text.trim().to_string(), None))
                };
                split.and_then(|(json, label)| {
                    parse_event(line, &json).and_then(|event| classifier.classify(&event, line)).map(|c| (c, label))
                })
            }
        };
        match result {
            Ok((c, label)) => {
                ok += 1;
                serde_json::to_writer(&mut w, &c)?;
                if let Some(l) = label {
                    scored.push((c, l));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("chorus: {}: {e}", args.events.display());
                serde_json::to_writer(&mut w, &e)?;
            }
        }
        writeln!(w)?;
    }
    w.flush()?;
    if args.labels {
        eprint!("{}", Accuracy::score(&world, &scored));
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} events could not be classified (error records above)", ok + failed);
    }
    Ok(())
}

fn run_pipeline(args: RunArgs) -> Result<()> {
    use chorus::events::parse_events_numbered;
    use chorus::timeline::{self, PostKind};
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("setting up threads")?;
    }
    let meter = StageMeter::new(!args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let population = run_population_for(args.load.as_deref(), args.users, args.seed, &meter)?;
    meter.begin("setup", 1);
    let mut pipeline = state_pipeline(population, &args.state)?;
    let bytes = read_input(&args.events)?;
    let parsed = parse_events_numbered(&bytes);
    meter.begin("events", parsed.len() as u64);
    // Events are numbered by position (post ids depend on it), after those of a resumed run.
    let base = pipeline.numbered();
    let count = parsed.len() as u32;
    let llm = if args.llm.enabled() {
        let (mut config, transport) = args.llm.resolve()?;
        if let Some(b) = args.budget {
            config.budget.per_day = b;
        }
        let router = chorus::llm::route::Router::new(pipeline.population(), config.routing.clone());
        Some((chorus::llm::Llm::new(config, Box::new(SharedTransport(transport)))?, router))
    } else {
        None
    };
    let router = llm.as_ref().map(|(_, r)| r);
    let reflect =
        llm.as_ref().filter(|(l, _)| l.config().reflections.enabled).map(|(l, _)| l.config().reflections.per_event);
    let (mut posts, failed, events, reacting, items, formed) =
        run_events(&mut pipeline, parsed, base, router, reflect, &args.events, &meter);
    if let Some((llm, _)) = &llm {
        meter.begin("llm", items.len() as u64);
        let started = Instant::now();
        let outcomes = llm.resolve(items, pipeline.population(), pipeline.templates());
        chorus::llm::apply(&mut posts, &outcomes);
        eprint!("{}", llm_summary(&llm.report(), started.elapsed()));
        // Reflections are low priority: they get what the posts left of the budget.
        let mut total = chorus::llm::reflect::ReflectionReport::default();
        for (time, requests) in &formed {
            let r = llm.write_reflections(pipeline.state_mut(), requests, *time)?;
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
    pipeline.set_numbered(base + count);
    if let Some(path) = &args.save_state {
        meter.begin("save state", 1);
        pipeline.save(path)?;
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
        if events > 0 { reacting as f64 / events as f64 / pipeline.population().len() as f64 * 100.0 } else { 0.0 }
    );
    let sources = if llm.is_some() {
        let n = |s: chorus::timeline::Source| posts.iter().filter(|p| p.text.is_some() && p.source == s).count();
        use chorus::timeline::Source;
        format!("text from llm {}, cache {}, templates {}", n(Source::Llm), n(Source::Cache), n(Source::Template))
    } else {
        "all text from templates".to_string()
    };
    eprintln!("timeline {} entries: {} ({sources})", posts.len(), kinds.join(", "));
    report_state(&pipeline, posts.last().map(|p| p.time).unwrap_or_default());
    for st in &stages {
        eprintln!("stage {:<12} {:>8.3} s  peak RSS {:>8.1} MiB", st.stage, st.seconds, st.peak_rss_mib);
    }
    if failed > 0 {
        anyhow::bail!("{failed} events were rejected (see the messages above); the others are in the timeline");
    }
    Ok(())
}

/// A pipeline over `population` with the user-state options applied.
fn state_pipeline(population: Population, args: &StateArgs) -> Result<chorus::engine::Pipeline> {
    let config = match &args.state_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let mut de = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?
        }
        None => chorus::state::StateConfig::default(),
    };
    let mut pipeline = chorus::engine::Pipeline::with_state(population, config)?;
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
fn report_state(pipeline: &chorus::engine::Pipeline, now: chorus::events::GameTime) {
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

fn run_inspect(args: InspectArgs) -> Result<()> {
    use chorus::events::parse_events_numbered;
    use chorus::state::{minute_of, subject_name};
    use chorus::timeline::PostKind;
    let population = run_population_for(args.load.as_deref(), args.users, args.seed, &StageMeter::new(false))?;
    let user = match args.user.strip_prefix('@') {
        Some(h) => population.find_handle(h).with_context(|| format!("no user @{h}"))?,
        None => {
            let id: u32 = args.user.parse().with_context(|| format!("--user {}: not an id or @handle", args.user))?;
            anyhow::ensure!(
                (id as usize) < population.len(),
                "--user {id}: the population has {} users",
                population.len()
            );
            chorus::UserId(id)
        }
    };
    let mut pipeline = state_pipeline(population, &args.state)?;
    let mut now = chorus::events::GameTime(0);
    if let Some(path) = &args.events {
        let bytes = read_input(path)?;
        let base = pipeline.numbered();
        let parsed = parse_events_numbered(&bytes);
        let count = parsed.len() as u32;
        for (i, (line, item)) in parsed.into_iter().enumerate() {
            match item.and_then(|e| {
                now = now.max(e.time);
                pipeline.process(&e, base + i as u32, line)
            }) {
                Ok(_) => {}
                Err(e) => eprintln!("chorus: {}: {e}", path.display()),
            }
        }
        pipeline.set_numbered(base + count);
    }
    let u = user.0;
    let p = pipeline.population();
    let st = pipeline.state();
    let minute = st.history().recent(u).next().map(|r| r.minute).unwrap_or(0).max(minute_of(now));
    let mood = st.mood(p, u, minute);
    let history: Vec<serde_json::Value> = st
        .history()
        .recent(u)
        .take(20)
        .map(|r| {
            let kind = PostKind::from_code(r.kind()).map_or("?", |k| k.name());
            serde_json::json!({
                "minute": r.minute,
                "kind": kind,
                "category": chorus::events::Category::ALL.get(r.category() as usize).map(|c| c.name()),
                "about": (r.entity != u16::MAX).then(|| subject_name(p, r.entity as u32)),
                "with": (r.other != u32::MAX).then(|| format!("@{}", p.handle(chorus::UserId(r.other)))),
                "stance": r.stance,
            })
        })
        .collect();
    let mut reflections: Vec<serde_json::Value> = st
        .reflections()
        .of(u)
        .iter()
        .map(|r| serde_json::json!({"minute": r.minute, "importance": r.importance, "text": st.reflection_text(p, u, r), "by": if r.is_written() { "llm" } else { "template" }}))
        .collect();
    reflections.reverse();
    let mut rels: Vec<(f32, u32)> =
        st.relations().of(u).iter().map(|r| (st.relation(u, r.other, minute), r.other)).collect();
    rels.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1)));
    let relationships: Vec<serde_json::Value> = rels
        .iter()
        .take(10)
        .map(|&(w, o)| {
            serde_json::json!({"with": format!("@{}", p.handle(chorus::UserId(o))), "weight": (w * 1000.0).round() / 1000.0, "label": st.label(u, o, minute)})
        })
        .collect();
    let h = st.habits(u);
    let tags: Vec<&str> =
        st.tag_names().iter().enumerate().filter(|(k, _)| h.tags & (1 << k) != 0).map(|(_, t)| t.as_str()).collect();
    let obsessions: Vec<&str> = h
        .obsession
        .iter()
        .filter(|&&o| o > 0)
        .filter_map(|&o| chorus::taxonomy::Topic::ALL.get(o as usize - 1).map(|t| t.name()))
        .collect();
    let out = serde_json::json!({
        "user": u,
        "handle": format!("@{}", p.handle(user)),
        "profile": p.user(user),
        "state": {
            "at_minute": minute,
            "mood": mood,
            "feeling": mood.word(),
            "obsessions": obsessions,
            "emoji_drift": h.emoji,
            "hashtag_drift": h.hashtag,
            "ticks": st.ticks(u),
            "cooldown_until_minute": st.cooldown_until(u),
            "actions_in_window": st.history().len_of(u),
            "folded_actions": st.history().folded(u).map(|f| f.by_kind.iter().sum::<u32>()).unwrap_or(0),
            "tags": tags,
            "external_id": st.external_id(u),
        },
        "recent_history": history,
        "reflections": reflections,
        "relationships": relationships,
        "follow_changes": st.follows().of(u).iter().map(|c| serde_json::json!({
            "minute": c.minute,
            "with": format!("@{}", p.handle(chorus::UserId(c.other))),
            "change": if c.follows == 1 { "followed" } else { "unfollowed" },
        })).collect::<Vec<_>>(),
        "following": st.following(p, u).len(),
    });
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

#[cfg(feature = "neo4j")]
use chorus::export::neo4j as bolt;

/// Stand-in for `chorus::export::neo4j` in a build without the `neo4j` feature: `--neo4j`
/// fails with a clear message.
#[cfg(not(feature = "neo4j"))]
mod bolt {
    use anyhow::{bail, Result};

    pub struct BoltConfig {
        pub database: String,
        pub batch: usize,
    }

    impl BoltConfig {
        pub fn new(_uri: &str, _user: &str, _password: &str) -> BoltConfig {
            BoltConfig { database: String::new(), batch: 0 }
        }
    }

    pub struct BoltCounts {
        pub users: u64,
        pub edges: u64,
        pub posts: u64,
    }

    pub enum BoltExporter {}

    impl BoltExporter {
        pub fn connect(_: &BoltConfig) -> Result<BoltExporter> {
            bail!("--neo4j: this chorus was built without the `neo4j` cargo feature")
        }
        pub fn begin(&mut self, _: &str) -> Result<()> {
            match *self {}
        }
        pub fn write_users(&mut self, _: &chorus::Population) -> Result<()> {
            match *self {}
        }
        pub fn write_edges(&mut self, _: &chorus::Population) -> Result<()> {
            match *self {}
        }
        pub fn write_posts(&mut self, _: &[chorus::timeline::Post]) -> Result<()> {
            match *self {}
        }
        pub fn finish(self) -> Result<BoltCounts> {
            match self {}
        }
    }
}

/// The population of `run`/`export`: loaded from a snapshot or generated from the embedded data.
fn run_population_for(load: Option<&std::path::Path>, users: u32, seed: u64, meter: &StageMeter) -> Result<Population> {
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

fn run_export(args: ExportArgs) -> Result<()> {
    use chorus::engine::Pipeline;
    use chorus::events::parse_events_numbered;
    use chorus::export::{ExportOptions, Exporter, Format, RunInfo};
    let formats = Format::parse_list(&args.format).context("--format")?;
    if args.out.is_none() && args.neo4j.is_none() && args.neo4j_admin.is_none() && args.training.is_none() {
        anyhow::bail!("nothing to export to: give --out DIR, --neo4j URI, --neo4j-admin DIR or --training FILE");
    }
    let training_config = chorus::export::training::TrainingConfig {
        rates: match &args.training_rates {
            Some(r) => chorus::export::training::SamplingRates::parse(r).context("--training-rates")?,
            None => Default::default(),
        },
        per_event: args.training_per_event,
    };
    let bolt_config = match &args.neo4j {
        None => None,
        Some(uri) => {
            let password = args.neo4j_password.clone().or_else(|| std::env::var("CHORUS_NEO4J_PASSWORD").ok());
            let Some(password) = &password else {
                anyhow::bail!("--neo4j needs a password: --neo4j-password or CHORUS_NEO4J_PASSWORD");
            };
            let mut c = bolt::BoltConfig::new(uri, &args.neo4j_user, password);
            c.database = args.neo4j_db.clone();
            c.batch = args.neo4j_batch;
            Some(c)
        }
    };
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("setting up threads")?;
    }
    let meter = StageMeter::new(!args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let population = run_population_for(args.load.as_deref(), args.users, args.seed, &meter)?;
    meter.begin("setup", 1);
    let mut pipeline = Pipeline::new(population)?;
    pipeline.capture_before(args.training.is_some());
    let bytes = read_input(&args.events)?;
    let parsed = parse_events_numbered(&bytes);
    let options = ExportOptions { formats, population: args.population, graph: args.graph, row_group: args.row_group };
    // Connect first: a server that is down fails the command before any work.
    let mut bolt = match &bolt_config {
        Some(c) => Some(bolt::BoltExporter::connect(c)?),
        None => None,
    };
    let mut exporter = match &args.out {
        Some(dir) => Some(Exporter::create(dir, &options)?),
        None => None,
    };
    let mut admin = match &args.neo4j_admin {
        Some(dir) => Some(chorus::export::neo4j_admin::AdminImport::create(dir, pipeline.population())?),
        None => None,
    };
    let mut training = match &args.training {
        Some(path) => Some(chorus::export::training::TrainingWriter::create(
            path,
            training_config,
            pipeline.population().config().seed,
        )?),
        None => None,
    };
    if let Some(exporter) = exporter.as_mut().filter(|_| args.population || args.graph) {
        meter.begin("population", 1);
        exporter.write_population(pipeline.population())?;
    }
    if let Some(bolt) = bolt.as_mut() {
        let pop = pipeline.population();
        let key = format!(
            "chorus {} seed {} users {} edges {} events crc32 {:08x}",
            env!("CARGO_PKG_VERSION"),
            pop.config().seed,
            pop.len(),
            pop.graph().edges(),
            crc32fast::hash(&bytes)
        );
        bolt.begin(&key)?;
        meter.begin("bolt users", 1);
        bolt.write_users(pipeline.population())?;
        meter.begin("bolt edges", 1);
        bolt.write_edges(pipeline.population())?;
    }
    meter.begin("events", parsed.len() as u64);
    let (mut failed, mut events) = (0u64, 0u64);
    for (i, (line, item)) in parsed.into_iter().enumerate() {
        let result = item.and_then(|event| pipeline.process_detailed(&event, i as u32, line).map(|p| (event, p)));
        match result {
            Err(e) => {
                failed += 1;
                eprintln!("chorus: {}: {e}", args.events.display());
            }
            Ok((event, processed)) => {
                events += 1;
                let mut posts = processed.posts;
                chorus::timeline::sort(&mut posts);
                if let Some(t) = training.as_mut() {
                    let pop = pipeline.population();
                    let state = Some((pipeline.state(), &processed.before));
                    t.write_event(pop, &event, i as u32, &processed.class, &processed.reactions, &posts, state)?;
                }
                if let Some(exporter) = exporter.as_mut() {
                    exporter.write_posts(&posts)?;
                }
                if let Some(bolt) = bolt.as_mut() {
                    bolt.write_posts(&posts)?;
                }
                if let Some(admin) = admin.as_mut() {
                    admin.write_posts(&posts)?;
                }
            }
        }
        meter.advance(1);
    }
    meter.begin("finish", 1);
    let pop = pipeline.population();
    let run = RunInfo {
        seed: pop.config().seed,
        users: pop.len() as u64,
        edges: pop.graph().edges(),
        events,
        rejected: failed,
    };
    let manifest = match (exporter, &args.out) {
        (Some(exporter), Some(dir)) => Some((dir, exporter.finish(run)?)),
        _ => None,
    };
    let bolt_counts = match bolt {
        Some(b) => Some(b.finish()?),
        None => None,
    };
    let training_done = match training {
        Some(t) => Some(t.finish()?),
        None => None,
    };
    let admin_files = match admin {
        Some(a) => Some(a.finish()?),
        None => None,
    };
    let stages = meter.finish();
    if let Some((dir, manifest)) = &manifest {
        for f in &manifest.files {
            eprintln!("wrote {}  {} rows, {} bytes", dir.join(&f.name).display(), f.rows, f.bytes);
        }
    }
    if let (Some(c), Some(uri)) = (&bolt_counts, &args.neo4j) {
        eprintln!("wrote {uri}: {} users, {} relationships, {} posts", c.users, c.edges, c.posts);
    }
    if let Some((file, rows)) = &training_done {
        eprintln!("wrote {}  {rows} training records, {} bytes", file.path.display(), file.bytes);
    }
    if let (Some(files), Some(dir)) = (&admin_files, &args.neo4j_admin) {
        eprintln!("wrote {} neo4j-admin import files to {} (see import.sh there)", files.len(), dir.display());
    }
    for st in &stages {
        eprintln!("stage {:<12} {:>8.3} s  peak RSS {:>8.1} MiB", st.stage, st.seconds, st.peak_rss_mib);
    }
    if failed > 0 {
        anyhow::bail!("{failed} events were rejected (see the messages above); the others are exported");
    }
    Ok(())
}

fn run_timeline(args: TimelineArgs) -> Result<()> {
    use chorus::timeline::{read_jsonl, Timeline};
    if args.user.is_none() && args.event.is_none() && !args.firehose {
        anyhow::bail!("nothing to show: give --user ID, --event EVENT or --firehose");
    }
    let file = std::fs::File::open(&args.timeline).with_context(|| format!("opening {}", args.timeline.display()))?;
    let posts = read_jsonl(std::io::BufReader::new(file), &args.timeline.display().to_string())?;
    let timeline = Timeline::new(posts);
    let now =
        chorus::events::GameTime(args.now.unwrap_or_else(|| timeline.firehose().last().map(|p| p.time.0).unwrap_or(0)));
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if args.firehose {
        chorus::timeline::write_jsonl(timeline.firehose(), &mut w)?;
    }
    if let Some(event) = &args.event {
        let threads = timeline.event_threads(event);
        if threads.is_empty() {
            anyhow::bail!("event {event:?} has no posts in {}", args.timeline.display());
        }
        for t in threads {
            serde_json::to_writer(&mut w, &t)?;
            writeln!(w)?;
        }
    }
    if let Some(user) = args.user {
        let meter = StageMeter::new(false);
        let population = run_population_for(args.load.as_deref(), args.users, args.seed, &meter)?;
        if user as usize >= population.len() {
            anyhow::bail!("--user {user}: the population has {} users (ids 0..{})", population.len(), population.len());
        }
        if let Some(p) = timeline.firehose().iter().find(|p| p.author.index() >= population.len()) {
            anyhow::bail!(
                "{}: post {} is by user {}, outside this population of {}: give the run's --users/--seed or --load",
                args.timeline.display(),
                p.id.0,
                p.author,
                population.len()
            );
        }
        let id = chorus::UserId(user);
        let v = serde_json::json!({
            "user": user,
            "handle": population.handle(id),
            "now": now.0,
            "home": timeline.home(population.graph(), id, now, args.limit),
            "profile": timeline.profile(id, now),
        });
        serde_json::to_writer(&mut w, &v)?;
        writeln!(w)?;
    }
    w.flush()?;
    Ok(())
}

/// A shared transport (one per process: the budget sweep reuses answers across budgets).
struct SharedTransport(std::sync::Arc<dyn chorus::llm::client::Transport>);

impl chorus::llm::client::Transport for SharedTransport {
    fn send(&self, body: &str, attempt: u32) -> chorus::llm::client::Exchange {
        self.0.send(body, attempt)
    }
    fn live(&self) -> bool {
        self.0.live()
    }
}

type EventsRun = (
    Vec<chorus::timeline::Post>,
    usize,
    usize,
    usize,
    Vec<chorus::llm::route::Item>,
    Vec<(chorus::events::GameTime, Vec<chorus::llm::reflect::ReflectionRequest>)>,
);

/// Runs every event through the pipeline; with a router, also collects the routed items, and
/// with `reflections` (most per event) the reflections each event formed, for the LLM.
fn run_events(
    pipeline: &mut chorus::engine::Pipeline,
    parsed: Vec<(usize, std::result::Result<chorus::events::GameEvent, chorus::events::EventError>)>,
    base: u32,
    router: Option<&chorus::llm::route::Router>,
    reflections: Option<usize>,
    file: &std::path::Path,
    meter: &StageMeter,
) -> EventsRun {
    let (mut posts, mut failed, mut events, mut reacting, mut items) = (Vec::new(), 0usize, 0usize, 0usize, Vec::new());
    let mut formed = Vec::new();
    // Events are numbered by position after `base` (post ids depend on it); errors name the
    // file line.
    for (i, (line, item)) in parsed.into_iter().enumerate() {
        match item.and_then(|event| pipeline.process(&event, base + i as u32, line).map(|r| (event, r))) {
            Err(e) => {
                failed += 1;
                eprintln!("chorus: {}: {e}", file.display());
            }
            Ok((event, (new_posts, reactions))) => {
                events += 1;
                reacting += reactions;
                if let Some(router) = router {
                    if let Ok(class) = pipeline.classifier().classify(&event, line) {
                        items.extend(router.items(
                            pipeline.population(),
                            Some(pipeline.state()),
                            &event,
                            &class,
                            &new_posts,
                        ));
                    }
                }
                if let Some(per_event) = reflections {
                    let st = pipeline.state();
                    let requests =
                        chorus::llm::reflect::requests(pipeline.population(), st, st.last_reflections(), per_event);
                    if !requests.is_empty() {
                        formed.push((event.time, requests));
                    }
                }
                posts.extend(new_posts);
            }
        }
        meter.advance(1);
    }
    (posts, failed, events, reacting, items, formed)
}

/// The LLM stage's report as text lines.
fn llm_summary(r: &chorus::llm::LlmReport, wall: std::time::Duration) -> String {
    let b = &r.budget;
    let sum = |a: [u64; 3]| a.iter().sum::<u64>();
    format!(
        "llm      items: llm {} (high {}, medium {}, low {}), cache {}, template fallback {}; {} requests in {:.1} s\n\
         llm      tokens spent {} of {}/day over {} day(s), by share: reply {}, quote {}, post {}, media {} ({} borrowed by high priority); fallbacks {:?}; refused reservations {}\n\
         llm      faults: {:?}\n\
         llm      queue wait ms p50 {:.1} p99 {:.1}; latency ms p50 {:.0} p99 {:.0}; batch size mean {:.1} max {}\n",
        sum(r.llm),
        r.llm[0],
        r.llm[1],
        r.llm[2],
        sum(r.cache),
        sum(r.template),
        r.requests,
        wall.as_secs_f64(),
        b.spent_total,
        b.per_day,
        b.days,
        b.spent[0],
        b.spent[1],
        b.spent[2],
        b.spent[3],
        b.borrowed,
        b.fallbacks,
        b.refused,
        r.faults,
        r.queue_wait_ms.p50,
        r.queue_wait_ms.p99,
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.batch_size.mean,
        r.batch_size.max,
    )
}

fn run_budget(args: BudgetArgs) -> Result<()> {
    use chorus::engine::Pipeline;
    use chorus::events::parse_events_numbered;
    use chorus::timeline::Source;
    if !args.llm.enabled() {
        anyhow::bail!("chorus budget needs --llm URL or --replay FILE");
    }
    let (base, transport) = args.llm.resolve()?;
    let meter = StageMeter::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let population = run_population_for(args.load.as_deref(), args.users, args.seed, &meter)?;
    let mut pipeline = Pipeline::new(population)?;
    let router = chorus::llm::route::Router::new(pipeline.population(), base.routing.clone());
    let parsed = parse_events_numbered(&read_input(&args.events)?);
    meter.begin("events", parsed.len() as u64);
    let (posts, failed, _, _, items, _) =
        run_events(&mut pipeline, parsed, 0, Some(&router), None, &args.events, &meter);
    meter.finish();
    let text_posts = posts.iter().filter(|p| p.text.is_some()).count().max(1);
    let mut rows = Vec::new();
    for &b in &args.budgets {
        let mut config = base.clone();
        config.budget.per_day = b;
        let llm = chorus::llm::Llm::new(config, Box::new(SharedTransport(transport.clone())))?;
        let outcomes = llm.resolve(items.clone(), pipeline.population(), pipeline.templates());
        let count = |s: Source| outcomes.iter().filter(|o| o.source == s).count();
        let (l, c) = (count(Source::Llm), count(Source::Cache));
        let r = llm.report();
        rows.push(BudgetRow {
            budget: b,
            tokens: r.budget.spent,
            total: r.budget.spent_total,
            llm: l as f64 / text_posts as f64,
            cache: c as f64 / text_posts as f64,
            template: (text_posts - l - c) as f64 / text_posts as f64,
            fallbacks: r.budget.fallbacks.iter().sum(),
            wait_p50_ms: r.queue_wait_ms.p50,
            wait_p99_ms: r.queue_wait_ms.p99,
            cost: r.budget.spent_total as f64 * args.price_per_million / 1e6,
            llm_by_priority: r.llm,
            borrowed: r.budget.borrowed,
        });
        eprintln!("budget {b}: done ({} requests)", r.requests);
    }
    let table = budget_table(&rows, text_posts, items.len(), args.price_per_million);
    print!("{table}");
    if let Some(p) = &args.table {
        std::fs::write(p, &table).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.plot {
        std::fs::write(p, budget_svg(&rows)).with_context(|| format!("writing {}", p.display()))?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} events were rejected (see the messages above)");
    }
    Ok(())
}

/// One budget's results.
struct BudgetRow {
    budget: u64,
    tokens: [u64; 4],
    total: u64,
    llm: f64,
    cache: f64,
    template: f64,
    fallbacks: u64,
    wait_p50_ms: f64,
    wait_p99_ms: f64,
    cost: f64,
    /// LLM posts by priority (high, medium, low).
    llm_by_priority: [u64; 3],
    borrowed: u64,
}

fn budget_table(rows: &[BudgetRow], posts: usize, routed: usize, price: f64) -> String {
    let mut t = format!(
        "{posts} posts with text, {routed} routed to the LLM stage; cost at ${price} per million tokens\n\n\
         | budget/day | tokens | reply | quote | post | media | llm % | cache % | template % | fallbacks | wait p50 ms | wait p99 ms | cost $ | llm high/medium/low | borrowed |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.4} | {}/{}/{} | {} |\n",
            r.budget,
            r.total,
            r.tokens[0],
            r.tokens[1],
            r.tokens[2],
            r.tokens[3],
            r.llm * 100.0,
            r.cache * 100.0,
            r.template * 100.0,
            r.fallbacks,
            r.wait_p50_ms,
            r.wait_p99_ms,
            r.cost,
            r.llm_by_priority[0],
            r.llm_by_priority[1],
            r.llm_by_priority[2],
            r.borrowed
        ));
    }
    t
}

/// A hand-written SVG: shares of LLM and cache posts (left axis, %) and tokens spent (right
/// axis) against the budget.
fn budget_svg(rows: &[BudgetRow]) -> String {
    let (w, h, l, r, top, bottom) = (720.0, 420.0, 70.0, 90.0, 40.0, 60.0);
    let pw = w - l - r;
    let ph = h - top - bottom;
    let n = rows.len().max(2) as f64 - 1.0;
    let x = |i: usize| l + pw * i as f64 / n;
    let max_share = rows.iter().map(|r| r.llm + r.cache).fold(0.0f64, f64::max).max(0.001) * 100.0;
    let max_tok = rows.iter().map(|r| r.total).max().unwrap_or(0).max(1) as f64;
    let ys = |v: f64| top + ph * (1.0 - v / max_share);
    let yt = |v: f64| top + ph * (1.0 - v / max_tok);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">What a token budget buys</text>\n\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{l}\" y1=\"{top}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{}\" y1=\"{top}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        top + ph,
        l + pw,
        top + ph,
        top + ph,
        l + pw,
        l + pw,
        top + ph
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.2}%</text>\n<text x=\"{}\" y=\"{:.1}\">{:.0}</text>\n",
            l - 6.0,
            top + ph * (1.0 - f) + 4.0,
            max_share * f,
            l + pw + 6.0,
            top + ph * (1.0 - f) + 4.0,
            max_tok * f
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            top + ph + 18.0,
            row.budget
        ));
    }
    let line = |pts: Vec<(f64, f64)>, colour: &str| {
        let p: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n", p.join(" "))
    };
    s.push_str(&line(rows.iter().enumerate().map(|(i, r)| (x(i), ys(r.llm * 100.0))).collect(), "#d62728"));
    s.push_str(&line(rows.iter().enumerate().map(|(i, r)| (x(i), ys((r.llm + r.cache) * 100.0))).collect(), "#1f77b4"));
    s.push_str(&line(rows.iter().enumerate().map(|(i, r)| (x(i), yt(r.total as f64))).collect(), "#7f7f7f"));
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">token budget per game day</text>\n\
         <text x=\"{l}\" y=\"{}\" fill=\"#d62728\">LLM posts (% of all)</text>\n\
         <text x=\"{}\" y=\"{}\" fill=\"#1f77b4\">LLM + cache (%)</text>\n\
         <text x=\"{}\" y=\"{}\" fill=\"#7f7f7f\">tokens spent (right axis)</text>\n</svg>\n",
        l + pw / 2.0,
        h - 18.0,
        h - 4.0,
        l + 190.0,
        h - 4.0,
        l + 360.0,
        h - 4.0
    ));
    s
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Population(args) => run_population(args),
        Command::Classify(args) => run_classify(args),
        Command::Run(args) => run_pipeline(args),
        Command::Inspect(args) => run_inspect(args),
        Command::Export(args) => run_export(args),
        Command::Timeline(args) => run_timeline(args),
        Command::Budget(args) => run_budget(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return std::process::ExitCode::SUCCESS;
            }
            eprintln!("chorus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
