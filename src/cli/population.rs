//! `chorus population`: generate a population and print its statistics.

use super::common::*;
use super::meter::*;
use anyhow::{Context, Result};
use chorus::{Population, PopulationConfig, SeedSet, World};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct PopulationArgs {
    /// Number of users.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u32,
    /// Master seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Save the population to this snapshot file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Load a snapshot instead of generating (ignores --users, --seed, --seeds, --world).
    #[arg(long, conflicts_with = "out")]
    pub(crate) load: Option<PathBuf>,
    /// Seed profiles file (default: the shipped seeds/profiles.jsonl).
    #[arg(long)]
    pub(crate) seeds: Option<PathBuf>,
    /// World file (default: the shipped seeds/world.jsonl).
    #[arg(long)]
    pub(crate) world: Option<PathBuf>,
    /// Graph parameters as a JSON object (see GraphConfig), e.g. '{"follows_median": 40}'.
    #[arg(long)]
    pub(crate) graph: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also print K users spread evenly over the population, one JSON object per line.
    #[arg(long, value_name = "K")]
    pub(crate) sample: Option<u32>,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Flags resolved into what the library needs.
pub(crate) struct PopulationJob {
    pub(crate) config: PopulationConfig,
    pub(crate) world: World,
    pub(crate) seeds: SeedSet,
}

pub(crate) fn resolve(args: &PopulationArgs) -> Result<PopulationJob> {
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

pub(crate) fn run_population(args: PopulationArgs) -> Result<()> {
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

pub(crate) fn write_text(
    w: &mut impl Write,
    s: &chorus::stats::PopulationStats,
    stages: &[StageReport],
) -> std::io::Result<()> {
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
