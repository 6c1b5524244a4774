//! `chorus publish`: mirror a timeline to a Mastodon-compatible server.

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct PublishArgs {
    /// The timeline, as `chorus run --out` or `chorus export` (posts.jsonl) wrote it.
    #[arg(long)]
    pub(crate) timeline: PathBuf,
    /// Base URL of the Mastodon-compatible server.
    #[arg(long)]
    pub(crate) server: String,
    /// File of access tokens the server gave, one per line: the accounts to post as.
    #[arg(long)]
    pub(crate) tokens: PathBuf,
    /// Progress file (created, appended to): a rerun resumes after what it records.
    #[arg(long)]
    pub(crate) progress: PathBuf,
    /// Most requests per second.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) rate: f64,
    /// Stop after this many entries this run.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Visibility of the statuses: public, unlisted, private or direct.
    #[arg(long, default_value = "unlisted")]
    pub(crate) visibility: String,
}

pub(crate) fn run_publish(args: PublishArgs) -> Result<()> {
    let file = std::fs::File::open(&args.timeline).with_context(|| format!("reading {}", args.timeline.display()))?;
    let mut posts = chorus::timeline::read_jsonl(std::io::BufReader::new(file), &args.timeline.display().to_string())?;
    chorus::timeline::sort(&mut posts);
    let config = chorus::publish::PublishConfig {
        server: args.server,
        tokens: chorus::publish::read_tokens(&args.tokens)?,
        progress: args.progress,
        rate: args.rate,
        limit: args.limit,
        visibility: args.visibility,
    };
    let report = chorus::publish::publish(&posts, &config)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
