//! `chorus export`: a run streamed to files and/or a Bolt graph database.

use super::common::*;
use super::meter::*;
use anyhow::{Context, Result};
use chorus::population::Progress;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct ExportArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    pub(crate) events: PathBuf,
    /// Write the export files into this directory (created if needed).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Comma-separated formats: jsonl, csv, parquet.
    #[arg(long, default_value = "jsonl")]
    pub(crate) format: String,
    /// Also export the users with their traits (users.<format>).
    #[arg(long)]
    pub(crate) population: bool,
    /// Also export the relationship graph as an edge list (edges.<format>).
    #[arg(long)]
    pub(crate) graph: bool,
    /// Parquet row-group size in rows.
    #[arg(long, default_value_t = 65_536)]
    pub(crate) row_group: usize,
    /// Also write users, relationships and posts into this Bolt (Neo4j protocol) database,
    /// e.g. bolt://127.0.0.1:7687.
    #[arg(long, value_name = "URI")]
    pub(crate) neo4j: Option<String>,
    /// Bolt user name.
    #[arg(long, default_value = "neo4j")]
    pub(crate) neo4j_user: String,
    /// Bolt password (default: the CHORUS_NEO4J_PASSWORD environment variable).
    #[arg(long)]
    pub(crate) neo4j_password: Option<String>,
    /// Bolt database name.
    #[arg(long, default_value = "neo4j")]
    pub(crate) neo4j_db: String,
    /// Rows per Bolt transaction.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) neo4j_batch: usize,
    /// Also write a training dataset of sampled (user, event) decisions to FILE (JSONL; schema
    /// in docs/TRAINING_DATA.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) training: Option<PathBuf>,
    /// Share of each action class in the training data, summing to 1, e.g.
    /// none=0.5,like=0.15,repost=0.1,reply=0.1,quote=0.05,post=0.05,gif=0.05 (the default).
    #[arg(long, value_name = "RATES")]
    pub(crate) training_rates: Option<String>,
    /// Training records per event at most.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) training_per_event: usize,
    /// Also write the CSV files `neo4j-admin database import` takes into DIR.
    #[arg(long, value_name = "DIR")]
    pub(crate) neo4j_admin: Option<PathBuf>,
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
}

#[cfg(feature = "neo4j")]
use chorus::export::neo4j as bolt;

/// Stand-in for `chorus::export::neo4j` in a build without the `neo4j` feature: `--neo4j`
/// fails with a clear message.
#[cfg(not(feature = "neo4j"))]
pub(crate) mod bolt {
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

pub(crate) fn run_export(args: ExportArgs) -> Result<()> {
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
