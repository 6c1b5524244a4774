//! `chorus inspect`: one user's profile, state, history, reflections and relationships.

use super::common::*;
use super::meter::*;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// The user: an id or an @handle.
    #[arg(long)]
    pub(crate) user: String,
    /// Events to play first (JSON lines), so the state has a history.
    #[arg(long)]
    pub(crate) events: Option<PathBuf>,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    pub(crate) load: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) state: StateArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_inspect(args: InspectArgs) -> Result<()> {
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
