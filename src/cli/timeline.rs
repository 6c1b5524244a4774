//! `chorus timeline`: queries over a JSONL timeline.

use super::common::*;
use super::meter::*;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct TimelineArgs {
    /// The timeline, as `chorus run --out` or `chorus export` (posts.jsonl) wrote it.
    #[arg(long)]
    pub(crate) timeline: PathBuf,
    /// Print this user's home and profile timelines (one JSON object).
    #[arg(long, value_name = "ID")]
    pub(crate) user: Option<u32>,
    /// Print this event's thread trees (one JSON object per original post, replies nested).
    #[arg(long, value_name = "EVENT")]
    pub(crate) event: Option<String>,
    /// Print every entry in game-time order (JSONL).
    #[arg(long)]
    pub(crate) firehose: bool,
    /// Game time of the query (default: the last entry's time).
    #[arg(long)]
    pub(crate) now: Option<i64>,
    /// Most home-timeline entries.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    #[command(flatten)]
    pub(crate) population: RunPopulationArgs,
}

pub(crate) fn run_timeline(args: TimelineArgs) -> Result<()> {
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
        let population = args.population.get(&meter)?;
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
