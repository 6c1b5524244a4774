//! The `chorus` command line: parses arguments and hands each subcommand to its module in
//! `cli/`, which calls the library and prints.

mod cli;

/// jemalloc: it hands freed memory back to the system, so a long run's RSS follows what it
/// holds (`scripts/soak.py`), and its speed does not fade as the heap ages.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};
use cli::{
    budget::*, classify::*, export::*, inspect::*, population::*, publish::*, run::*, serve::*, stats::*, timeline::*,
};

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
    /// Behaviour figures of a timeline (activity concentration, volume per event, followers,
    /// engagement, cascades, reply delays, relationships) next to published ones, and an SVG.
    Stats(StatsArgs),
    /// Replay an event script at several token budgets and report what each buys.
    Budget(BudgetArgs),
    /// Serve sessions over HTTP, Server-Sent Events and WebSocket, with a live viewer at /.
    Serve(ServeArgs),
    /// Mirror a timeline to a Mastodon-compatible server, as the accounts its tokens name.
    Publish(PublishArgs),
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
        Command::Stats(args) => run_stats(args),
        Command::Budget(args) => run_budget(args),
        Command::Serve(args) => run_serve(args),
        Command::Publish(args) => run_publish(args),
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
