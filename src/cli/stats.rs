//! `chorus stats`: behaviour figures of a timeline next to published ones.

use super::common::*;
use super::meter::*;
use anyhow::{Context, Result};
use chorus::feedstats::{self, Entries, FeedStats};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct StatsArgs {
    /// The timeline, as `chorus run --out` or `chorus export` (posts.jsonl) wrote it.
    #[arg(long)]
    pub(crate) timeline: PathBuf,
    #[command(flatten)]
    pub(crate) population: RunPopulationArgs,
    /// A state saved by the run's `--save-state`: adds follows, unfollows and feuds.
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
    /// Skip lines that are not timeline entries (counted) instead of stopping at the first.
    #[arg(long)]
    pub(crate) partial: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write the distributions as an SVG page here.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,
}

pub(crate) fn run_stats(args: StatsArgs) -> Result<()> {
    let name = args.timeline.display().to_string();
    let file = std::fs::File::open(&args.timeline).with_context(|| format!("opening {name}"))?;
    let entries = Entries::read(std::io::BufReader::new(file), &name, args.partial)?;
    let meter = StageMeter::new(false);
    let population = args.population.get(&meter)?;
    let mut stats =
        feedstats::feed_stats(&entries, population.len() as u64).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    stats.followers = Some(feedstats::followers(&population));
    if let Some(path) = &args.state {
        let mut pipeline = chorus::engine::Pipeline::new(population)?;
        pipeline.resume(path)?;
        let st = pipeline.state();
        let last = entries.entries.iter().map(|e| e.time).max().unwrap_or(0);
        let minute = chorus::state::minute_of(chorus::events::GameTime(last));
        let (follows, unfollows) = st.follows().counts();
        let (_, energy, _) = st.mood_summary(pipeline.population(), minute);
        let (busiest_energy, _) = st.busiest_energy(pipeline.population(), minute, 0.01);
        let feuds = st.feud_pairs(minute);
        stats.dynamics = Some(feedstats::Dynamics {
            follows: follows as u64,
            unfollows: unfollows as u64,
            feuds: feuds.len() as u64,
            relationships: st.relations().len() as u64,
            mean_energy: energy,
            busiest_energy,
            feud_examples: feuds.into_iter().take(10).collect(),
        });
    }
    for (line, what) in entries.skipped.iter().take(5) {
        eprintln!("{name}:{line}: skipped: {what}");
    }
    if entries.skipped.len() > 5 {
        eprintln!("{name}: {} more lines skipped", entries.skipped.len() - 5);
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, feedstats::svg::render(&stats)).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        print!("{}", text(&stats));
    }
    Ok(())
}

fn pct(x: f64) -> String {
    if x > 0.0 && x < 0.001 {
        format!("{:.3}%", x * 100.0)
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

/// The report as text: each figure, then the published one where there is one.
fn text(s: &FeedStats) -> String {
    let a = &s.activity;
    let v = &s.volume;
    let c = &s.cascades;
    let d = &s.delays;
    let mut out = format!(
        "{} entries ({} lines skipped), {} users, {:.2} game days\nby kind: {}\n\n",
        s.entries,
        s.skipped,
        s.users,
        s.days,
        s.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    );
    let mut row = |figure: &str, value: String, reference: &str| {
        out.push_str(&format!("{figure:<44} {value:>16}   {reference}\n"));
    };
    row("activity", String::new(), "published");
    row("  text posts / authors", format!("{} / {}", a.text_posts, a.authors), "");
    row("  top 10% of authors' share of text posts", pct(a.top10_authors_share), "80% (Pew 2019)");
    row("  top 1% of users' share", pct(a.top1_users_share), "");
    row("  users who wrote nothing", pct(a.silent_users_share), "most; median user 2 tweets/month (Pew 2019)");
    row("  top 1% of users: at least, per game day", format!("{:.1}", a.top1_users_min_per_day), "");
    row("  most text posts by one author", a.max_per_author.to_string(), "");
    row("volume per event", String::new(), "");
    row(
        &format!("  heaviest ({}): writers / likers-reposters", v.heaviest.event),
        format!("{} / {}", pct(v.heaviest.text_share), pct(v.heaviest.like_repost_share)),
        "",
    );
    row(&format!("  lightest ({}): writers", v.lightest.event), pct(v.lightest.text_share), "");
    row("  median writers per event", pct(v.median_text_share), "");
    row("  heaviest / lightest", format!("{:.0}x", v.spread), "");
    if let Some(f) = &s.followers {
        row("followers", String::new(), "");
        row("  largest account's share of users", pct(f.max_share), "a few percent of active users");
        row("  99.9th percentile account", f.p999.to_string(), "");
        row("  in-degree exponent", f.alpha.map_or("-".into(), |x| format!("{x:.2}")), "2.276 (Kwak et al. 2010)");
    }
    row("engagement", String::new(), "");
    row("  root posts", c.roots.to_string(), "");
    row("  with no reaction at all", pct(c.zero_engagement_share), "");
    row("  with no reply, quote or repost", pct(c.no_spread_share), "71% without reply or retweet (Sysomos 2010)");
    row("  mean / largest cascade", format!("{:.2} / {}", c.mean_size, c.max_size), "heavy-tailed (Goel et al. 2012)");
    let bins: Vec<String> = c.size_bins.iter().map(|(lo, sh)| format!("{lo}+:{}", pct(*sh))).collect();
    out_bins(&mut row, &bins);
    row("reply delay", String::new(), "");
    row("  replies", d.replies.to_string(), "");
    row("  median, minutes", format!("{:.1}", d.median_minutes), "half-life ~20 min (Wiselytics 2014)");
    row("  within the first hour", pct(d.first_hour_share), "most");
    row("  busiest hour after the root", d.mode_hour.to_string(), "the first");
    if let Some(x) = &s.dynamics {
        row("relationships", String::new(), "");
        row("  follows / unfollows", format!("{} / {}", x.follows, x.unfollows), "");
        row("  active feuds", x.feuds.to_string(), "");
        row("  relationships held", x.relationships.to_string(), "");
        row("  mean energy (baseline 1)", format!("{:.2}", x.mean_energy), "");
        row("  energy of the busiest 1%", format!("{:.2}", x.busiest_energy), "");
        if let Some((a, b)) = x.feud_examples.first() {
            row("  a feud to inspect", format!("{a} and {b}"), "chorus inspect --user N");
        }
    }
    out.push_str("\nsources:\n");
    for r in s.references {
        out.push_str(&format!("  {}: {} ({})\n", r.figure, r.value, r.source));
    }
    out
}

fn out_bins(row: &mut impl FnMut(&str, String, &str), bins: &[String]) {
    for chunk in bins.chunks(4) {
        row("  cascade sizes (bin: share of roots)", chunk.join(" "), "");
    }
}
