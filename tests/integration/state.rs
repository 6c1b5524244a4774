//! Evolving users: mood over a season, rivalries, bounded memory, save and resume.

use chorus::engine::Pipeline;
use chorus::events::{parse_event, parse_events_numbered, GameEvent, GameTime};
use chorus::state::relations::Label;
use chorus::state::{minute_of, StateConfig};
use chorus::templates::Sentiment;
use chorus::timeline::{Post, PostId, PostKind, Source};
use chorus::UserId;

fn event(id: &str, time: i64, text: &str) -> GameEvent {
    parse_event(1, &serde_json::json!({"id": id, "time": time, "text": text}).to_string()).unwrap()
}

/// Mean valence deviation from their baseline of `users` at `minute` (time of day aside).
fn mean_mood(p: &Pipeline, users: &[u32], minute: u32) -> f32 {
    users.iter().map(|&u| p.state().deviation(u, minute).0).sum::<f32>() / users.len() as f32
}

/// A scripted season: the Redhawks lose five times, then win four times, then nothing
/// happens for a week. Their fans' mood goes down, then up, and drifts back to baseline;
/// what they post about a neutral Redhawks story follows their mood.
#[test]
fn a_season_moves_fans_mood_down_then_up_and_it_decays() {
    let population = crate::common::generate(80_000, 11);
    let team = population.world().find("redhawks").unwrap();
    let fans: Vec<u32> =
        (0..population.len() as u32).filter(|&u| population.columns().affiliations[u as usize].team == team).collect();
    assert!(fans.len() > 300, "{} fans", fans.len());
    let mut p = Pipeline::new(population).unwrap();
    let hour = 3600;
    let mut t = 10 * hour;
    let mut n = 0u32;
    let mut play = |p: &mut Pipeline, text: &str, t: i64| -> Vec<Post> {
        n += 1;
        let mut e = event(&format!("s{n}"), t, text);
        if text.contains("kit") {
            // A story with no valence of its own: only moods can colour it.
            e.valence = Some(chorus::events::Valence::Neutral);
        }
        p.process(&e, n, n as usize).unwrap().0
    };
    let baseline = mean_mood(&p, &fans, minute_of(GameTime(t)));
    let neutral_story = "The Harbor City Redhawks announce a new kit for the coming season";
    let neg_share = |posts: &[Post]| {
        let fan_posts: Vec<&Post> =
            posts.iter().filter(|x| x.text.is_some() && fans.binary_search(&x.author.0).is_ok()).collect();
        let neg = fan_posts.iter().filter(|x| x.sentiment == Sentiment::Negative).count();
        (neg as f64 / fan_posts.len().max(1) as f64, fan_posts.len())
    };
    for _ in 0..5 {
        play(&mut p, "The Harbor City Redhawks lose again, a humiliating home defeat", t);
        t += 8 * hour;
    }
    let low = mean_mood(&p, &fans, minute_of(GameTime(t)));
    let after_losses = play(&mut p, neutral_story, t);
    t += 8 * hour;
    for _ in 0..4 {
        play(&mut p, "The Harbor City Redhawks win a thrilling victory, a brilliant performance", t);
        t += 8 * hour;
    }
    let high = mean_mood(&p, &fans, minute_of(GameTime(t)));
    let after_wins = play(&mut p, neutral_story, t);
    let week_later = mean_mood(&p, &fans, minute_of(GameTime(t + 7 * 24 * hour)));
    let fans_acted = fans.iter().filter(|&&u| p.state().ticks(u) > 0).count();
    eprintln!(
        "fans {}, acted {fans_acted}; mood baseline {baseline:.3}, after losses {low:.3}, after wins {high:.3}, \
         a week later {week_later:.3}",
        fans.len()
    );
    assert_eq!(baseline, 0.0);
    assert!(low < -0.05, "losses lower fans' mood: {low:.3}");
    assert!(high > low + 0.1, "wins lift it: {low:.3} -> {high:.3}");
    assert!(week_later.abs() < 0.01, "it decays back to baseline: {week_later:.4}");
    let (neg_low, n_low) = neg_share(&after_losses);
    let (neg_high, n_high) = neg_share(&after_wins);
    eprintln!("negative share of fans' posts on the neutral story: {neg_low:.2} ({n_low}) vs {neg_high:.2} ({n_high})");
    assert!(n_low >= 20 && n_high >= 20);
    assert!(neg_low > neg_high + 0.1, "what they post follows their mood: {neg_low:.2} vs {neg_high:.2}");
}

fn post(id: u64, author: u32, kind: PostKind, parent: Option<u64>, sentiment: Sentiment, minute: i64) -> Post {
    Post {
        id: PostId(id),
        author: UserId(author),
        handle: String::new(),
        kind,
        parent: parent.map(PostId),
        quoted: None,
        root: parent.map(PostId),
        depth: parent.is_some() as u8,
        text: Some("x".into()),
        gif: None,
        image: None,
        image_request: None,
        event: "e".into(),
        time: GameTime(minute * 60),
        sentiment,
        source: Source::Template,
    }
}

/// Action rules without activity scaling: every user writes and likes by their propensities
/// alone, one action per reaction.
fn plain_mix() -> chorus::actions::ActionConfig {
    chorus::actions::ActionConfig { voice_scale: 1.0, voice: 0.0, follow_ups: 0.0, ..Default::default() }
}

/// Repeated hostile exchanges between two users make them rivals; later, the rival's reply goes
/// to them and is hostile; a month without interaction and the rivalry has faded.
#[test]
fn hostile_exchanges_make_a_rivalry_that_shows_and_fades() {
    use chorus::actions::{act, ActionConfig};
    use chorus::classify::Classifier;
    use chorus::filter::Reaction;
    use chorus::media::{GifMemory, Media};
    use chorus::templates::Templates;
    let population = crate::common::generate(5_000, 3);
    let mut state = chorus::state::UserState::new(population.len(), StateConfig::default()).unwrap();
    let classifier = Classifier::embedded(population.world()).unwrap();
    let e = event("f", 60, "The Redhawks beat the Ironclads in the derby");
    let class = classifier.classify(&e, 1).unwrap();
    let (a, b) = (10u32, 20u32);
    for k in 0..4i64 {
        let m = 100 + k * 60;
        let posts = vec![
            post(1, a, PostKind::Post, None, Sentiment::Positive, m),
            post(2, b, PostKind::Reply, Some(1), Sentiment::Negative, m + 1),
            post(3, b, PostKind::Post, None, Sentiment::Negative, m + 2),
            post(4, a, PostKind::Reply, Some(3), Sentiment::Positive, m + 3),
        ];
        state.apply(&population, &class, &posts);
    }
    let now = 400;
    assert_eq!(state.label(a, b, now), Label::Rival);
    assert_eq!(state.label(b, a, now), Label::Rival);
    assert!(state.feuds(now) >= 1);
    assert!(state.reflections().of(b).iter().any(|r| state.reflection_text(&population, b, r).contains('@')));
    // A later event: b posts, a replies; the relationship pulls a to b, in a hostile tone.
    let later = event("g", 410 * 60, "The Redhawks and the Ironclads meet again tonight");
    let class = classifier.classify(&later, 1).unwrap();
    let templates = Templates::embedded().unwrap();
    let media = Media::embedded().unwrap();
    // Everyone with their propensities' own mix of writing and liking, one action each: the
    // test is about whom a answers, not how much users write.
    let config = ActionConfig { relationship_pull: 1.0, ..plain_mix() };
    let mut others: Vec<Reaction> =
        (100..160).map(|u| Reaction { user: UserId(u), stance: 60, engagement: 255 }).collect();
    others.push(Reaction { user: UserId(b), stance: 60, engagement: 255 });
    // Find a seed where a replies (its action draw is its own); try a few event ids.
    let mut found = false;
    for k in 0..40 {
        let ev = event(&format!("g{k}"), 410 * 60, &later.text);
        let mut rs = others.clone();
        rs.push(Reaction { user: UserId(a), stance: 60, engagement: 255 });
        rs.sort_by_key(|r| r.user);
        let posts = act(&population, &templates, &media, &GifMemory::new(), &config, &ev, &class, 1, &rs, Some(&state));
        let Some(reply) = posts.iter().find(|p| p.author.0 == a && matches!(p.kind, PostKind::Reply | PostKind::Quote))
        else {
            continue;
        };
        let target = posts.iter().find(|p| Some(p.id) == reply.parent.or(reply.quoted)).unwrap();
        if posts.iter().any(|p| p.author.0 == b && p.kind == PostKind::Post) {
            assert_eq!(target.author.0, b, "the rival is answered");
            assert_eq!(reply.sentiment, Sentiment::Negative, "and sharply, though a's stance was positive");
            found = true;
            break;
        }
    }
    assert!(found, "no draw where both post and reply; widen the search");
    // Without interaction it fades.
    assert_eq!(state.label(a, b, now + 30 * 1440), Label::Neutral);
}

/// Over 100,000 events the history windows stay bounded, and reflections form at the
/// configured rate (one per `reflect_every` actions, plus peaks, praise and feuds, which reset
/// the count).
#[test]
fn memory_stays_bounded_over_100k_events_and_reflections_keep_their_rate() {
    let population = crate::common::generate(600, 5);
    let config = StateConfig { history_window: 40, reflect_every: 10, ..StateConfig::default() };
    let mut p = Pipeline::with_state(population, config).unwrap();
    let texts = [
        "The Harbor City Redhawks win the derby in overtime",
        "The mayor resigns after the budget scandal",
        "A new phone launch breaks sales records",
        "Storm warning for the coast tonight",
    ];
    let mut actions = 0usize;
    let mut reflections = 0usize;
    for i in 0..100_000u32 {
        let e = event(&format!("b{i}"), i as i64 * 900, texts[i as usize % texts.len()]);
        p.process(&e, i, i as usize + 1).unwrap();
        let r = p.last_report();
        actions += r.actions;
        reflections += r.reflections;
    }
    let st = p.state();
    let window = st.history().window();
    let longest = (0..600u32).map(|u| st.history().len_of(u)).max().unwrap();
    let folded = (0..600u32).filter(|&u| st.history().folded(u).is_some()).count();
    eprintln!(
        "{actions} actions, longest window {longest} (limit {window}), {folded} users folded, \
         {reflections} reflections ({:.1} actions each), {} held",
        actions as f64 / reflections as f64,
        st.reflections().len()
    );
    assert!(actions > 100_000, "a long run: {actions} actions");
    assert!(longest < window + chorus::state::history::CHUNK);
    assert!(st.history().records() <= 600 * (window + chorus::state::history::CHUNK));
    assert!(folded > 100, "old history is folded into counters");
    let per = actions as f64 / reflections as f64;
    assert!((5.0..=10.5).contains(&per), "one reflection per {per:.1} actions, configured 10");
    assert!(st.reflections().len() <= 600 * chorus::state::reflect::MAX_PER_USER);
}

/// Save after half the demo, restore into a fresh pipeline, play the rest: the same timeline as
/// playing it all at once.
#[test]
fn save_restore_and_continue_gives_the_uninterrupted_timeline() {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).unwrap();
    let events: Vec<(usize, GameEvent)> =
        parse_events_numbered(&text).into_iter().map(|(l, e)| (l, e.unwrap())).collect();
    let play = |p: &mut Pipeline, range: std::ops::Range<usize>| -> Vec<Post> {
        let mut out = Vec::new();
        for i in range {
            out.extend(p.process(&events[i].1, i as u32, events[i].0).unwrap().0);
        }
        out
    };
    let mut whole = Pipeline::new(crate::common::generate(40_000, 9)).unwrap();
    let all = play(&mut whole, 0..events.len());
    let half = events.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("run.state");
    let mut first = Pipeline::new(crate::common::generate(40_000, 9)).unwrap();
    let mut parts = play(&mut first, 0..half);
    first.save(&saved).unwrap();
    drop(first);
    let mut second = Pipeline::new(crate::common::generate(40_000, 9)).unwrap();
    second.resume(&saved).unwrap();
    assert_eq!(second.numbered() as usize, half);
    parts.extend(play(&mut second, half..events.len()));
    let jsonl = |mut posts: Vec<Post>| {
        chorus::timeline::sort(&mut posts);
        let mut buf = Vec::new();
        chorus::timeline::write_jsonl(&posts, &mut buf).unwrap();
        buf
    };
    assert!(jsonl(all) == jsonl(parts), "a resumed run differs from the uninterrupted one");
    // A state saved for another population is refused, as is a damaged file.
    let mut other = Pipeline::new(crate::common::generate(30_000, 9)).unwrap();
    let err = other.resume(&saved).unwrap_err().to_string();
    assert!(err.contains("another population"), "{err}");
    let mut bytes = std::fs::read(&saved).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&saved, &bytes).unwrap();
    let mut again = Pipeline::new(crate::common::generate(40_000, 9)).unwrap();
    let err = again.resume(&saved).unwrap_err().to_string();
    assert!(err.contains("checksum") || err.contains("snapshot"), "{err}");
    std::fs::write(&saved, &bytes[..bytes.len() / 3]).unwrap();
    assert!(again.resume(&saved).is_err());
}

/// `Pipeline::reset` (which clears the state in place) leaves what a fresh pipeline has: the
/// same timeline and the same saved state after replaying the events, tags kept.
#[test]
fn reset_gives_a_fresh_pipeline_keeping_tags() {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).unwrap();
    let events: Vec<(usize, GameEvent)> =
        parse_events_numbered(&text).into_iter().map(|(l, e)| (l, e.unwrap())).collect();
    let tags: String =
        (0..30_000u32).step_by(3).map(|u| format!("{{\"user\": {u}, \"tags\": [\"trial\"]}}\n")).collect();
    let play = |p: &mut Pipeline| -> Vec<u8> {
        let mut posts = Vec::new();
        for (i, (line, e)) in events.iter().enumerate() {
            posts.extend(p.process(e, i as u32, *line).unwrap().0);
        }
        chorus::timeline::sort(&mut posts);
        let mut buf = Vec::new();
        chorus::timeline::write_jsonl(&posts, &mut buf).unwrap();
        buf
    };
    let dir = tempfile::tempdir().unwrap();
    let mut fresh = Pipeline::new(crate::common::generate(30_000, 3)).unwrap();
    fresh.state_mut().load_tags("tags.jsonl", &tags).unwrap();
    let expected = play(&mut fresh);
    fresh.save(&dir.path().join("fresh.state")).unwrap();
    let mut reused = Pipeline::new(crate::common::generate(30_000, 3)).unwrap();
    reused.state_mut().load_tags("tags.jsonl", &tags).unwrap();
    play(&mut reused);
    reused.reset().unwrap();
    assert_eq!(reused.numbered(), 0);
    let bit = reused.state().tag_bit("trial").unwrap();
    assert!(reused.state().has_tag(3, bit) && !reused.state().has_tag(4, bit), "tags kept");
    assert!(play(&mut reused) == expected, "a reset pipeline's timeline differs from a fresh one's");
    reused.save(&dir.path().join("reused.state")).unwrap();
    let (a, b) = (
        std::fs::read(dir.path().join("fresh.state")).unwrap(),
        std::fs::read(dir.path().join("reused.state")).unwrap(),
    );
    assert!(a == b, "a reset pipeline's saved state differs from a fresh one's");
}

/// Tags select an event's audience; external ids are kept; unknown tags are an error record.
#[test]
fn tags_select_the_audience_and_unknown_tags_are_refused() {
    let mut p = Pipeline::new(crate::common::generate(20_000, 4)).unwrap();
    let lines: String = (0..20_000u32)
        .step_by(2)
        .map(|u| format!("{{\"user\": {u}, \"tags\": [\"group-a\"], \"external_id\": \"real-{u}\"}}\n"))
        .collect();
    p.state_mut().load_tags("tags.jsonl", &lines).unwrap();
    assert_eq!(p.state().external_id(4), Some("real-4"));
    let e = parse_event(
        1,
        r#"{"id": "t1", "time": 72000, "text": "The Harbor City Redhawks win the final", "audience": ["group-a"]}"#,
    )
    .unwrap();
    let posts = p.process(&e, 0, 1).unwrap().0;
    assert!(posts.len() > 20);
    assert!(posts.iter().all(|x| x.author.0 % 2 == 0), "only tagged users react");
    let bad = parse_event(1, r#"{"id": "t2", "time": 72000, "text": "x", "audience": ["nobody"]}"#).unwrap();
    let err = p.process(&bad, 1, 2).unwrap_err();
    assert_eq!((err.field.as_str(), err.id.as_deref()), ("audience", Some("t2")));
    let err = p.state_mut().load_tags("tags.jsonl", "{\"user\": 99999999}\n").unwrap_err().to_string();
    assert!(err.starts_with("tags.jsonl:1: user:"), "{err}");
}

/// `chorus run --save-state` then `--resume` on the CLI equals one run over both halves, and
/// `chorus inspect` shows a user who acted, from the saved state.
#[test]
fn cli_save_resume_and_inspect() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    let (first, second, all) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"), dir.path().join("all.jsonl"));
    std::fs::write(&first, lines[..40].join("\n")).unwrap();
    std::fs::write(&second, lines[40..].join("\n")).unwrap();
    std::fs::write(&all, lines.join("\n")).unwrap();
    let state = dir.path().join("s.state");
    let run = |events: &std::path::Path, out: &str, extra: &[&std::ffi::OsStr]| {
        let r = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args(["run", "--users", "20000", "--seed", "3", "-q", "--events"])
            .arg(events)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(extra)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::fs::read_to_string(dir.path().join(out)).unwrap()
    };
    let whole = run(&all, "whole.jsonl", &[]);
    let a = run(&first, "1.jsonl", &["--save-state".as_ref(), state.as_os_str()]);
    let b = run(&second, "2.jsonl", &["--resume".as_ref(), state.as_os_str()]);
    let mut parts: Vec<&str> = a.lines().chain(b.lines()).collect();
    let key = |l: &&str| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        (v["time"].as_i64().unwrap(), v["id"].as_u64().unwrap())
    };
    parts.sort_by_key(key);
    assert!(parts == whole.lines().collect::<Vec<_>>(), "resumed CLI run differs from the whole run");
    // Someone who acted in the first half.
    let first_post: serde_json::Value = serde_json::from_str(a.lines().next().unwrap()).unwrap();
    let user = first_post["author"].as_u64().unwrap().to_string();
    let r = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["inspect", "--users", "20000", "--seed", "3", "--json", "--user", &user, "--resume"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["state"]["ticks"].as_u64().unwrap() >= 1, "{v}");
    assert!(!v["recent_history"].as_array().unwrap().is_empty());
    assert!(v["state"]["mood"]["valence"].is_f64() && v["profile"]["handle"].is_string());
    let r = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["inspect", "--users", "20000", "--seed", "3", "--user", "99999999"])
        .output()
        .unwrap();
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("--user 99999999"));
}

/// The state update runs in parallel over shards of users: the demo played on 1 thread and on
/// 4 gives the same timeline and a byte-identical saved state.
#[test]
fn state_is_the_same_for_any_thread_count() {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).unwrap();
    let events: Vec<(usize, GameEvent)> =
        parse_events_numbered(&text).into_iter().map(|(l, e)| (l, e.unwrap())).collect();
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: usize| -> (Vec<u8>, Vec<u8>) {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            // 50,000 users: four shards of the parallel update.
            let mut p = Pipeline::new(crate::common::generate(50_000, 4)).unwrap();
            let mut posts = Vec::new();
            for (i, (line, e)) in events.iter().enumerate() {
                posts.extend(p.process(e, i as u32, *line).unwrap().0);
            }
            let (rels, formed) = (p.state().relations().len(), p.state().reflections().formed());
            assert!(rels > 1000 && formed > 50, "{rels} relationships, {formed} reflections");
            let path = dir.path().join(format!("t{threads}.state"));
            p.save(&path).unwrap();
            let mut buf = Vec::new();
            chorus::timeline::write_jsonl(&posts, &mut buf).unwrap();
            (buf, std::fs::read(&path).unwrap())
        })
    };
    let (one_posts, one_state) = run(1);
    let (four_posts, four_state) = run(4);
    assert!(one_posts == four_posts, "the timeline differs between 1 and 4 threads");
    assert!(one_state == four_state, "the saved state differs between 1 and 4 threads");
}

/// Friendly replies make a user follow someone they did not; hostile replies make them
/// unfollow someone they did; and the changed follows decide whom they answer.
#[test]
fn relationships_make_follows_and_unfollows_that_change_whom_users_answer() {
    use chorus::actions::{act, ActionConfig};
    use chorus::classify::Classifier;
    use chorus::filter::Reaction;
    use chorus::media::{GifMemory, Media};
    use chorus::templates::Templates;
    let population = crate::common::generate(5_000, 3);
    let graph = population.graph();
    // a follows c in the graph, not b.
    let (a, c) =
        (0..population.len() as u32).find_map(|u| graph.following(UserId(u)).first().map(|&c| (u, c))).unwrap();
    let b = (0..population.len() as u32).find(|&v| v != a && !graph.following(UserId(a)).contains(&v)).unwrap();
    let mut state = chorus::state::UserState::new(population.len(), StateConfig::default()).unwrap();
    let classifier = Classifier::embedded(population.world()).unwrap();
    let e = event("f", 60, "The Redhawks beat the Ironclads in the derby");
    let class = classifier.classify(&e, 1).unwrap();
    let mut changes = Vec::new();
    for k in 0..3i64 {
        let m = 100 + k * 60;
        let posts = vec![
            post(1, b, PostKind::Post, None, Sentiment::Positive, m),
            post(2, a, PostKind::Reply, Some(1), Sentiment::Positive, m + 1),
            post(3, c, PostKind::Post, None, Sentiment::Positive, m + 2),
            post(4, a, PostKind::Reply, Some(3), Sentiment::Negative, m + 3),
        ];
        let report = state.apply(&population, &class, &posts);
        assert_eq!(report.follows + report.unfollows, state.last_follow_changes().len());
        changes.extend_from_slice(state.last_follow_changes());
    }
    assert!(state.follows().follows(graph, a, b), "three friendly replies: a follows b");
    assert!(!state.follows().follows(graph, a, c), "two hostile replies: a unfollowed c");
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().any(|x| x.user == a && x.other == b && x.follows));
    assert!(changes.iter().any(|x| x.user == a && x.other == c && !x.follows));
    let following = state.following(&population, a);
    assert!(following.contains(&b) && !following.contains(&c));
    // Later, with both b and c posting, a answers someone they follow: b, never c.
    let templates = Templates::embedded().unwrap();
    let media = Media::embedded().unwrap();
    let config = ActionConfig { relationship_pull: 0.0, in_network: 1e9, ..plain_mix() };
    let fresh = chorus::state::UserState::new(population.len(), StateConfig::default()).unwrap();
    // Whom a answers when b and c both post, over draws (event ids) where that happens.
    let answers = |st: &chorus::state::UserState| -> Vec<u32> {
        let mut out = Vec::new();
        for k in 0..300 {
            let ev = event(&format!("g{k}"), 900 * 60, "The Redhawks and the Ironclads meet again tonight");
            let rs: Vec<Reaction> =
                [a, b, c].iter().map(|&u| Reaction { user: UserId(u), stance: 60, engagement: 255 }).collect();
            let mut rs = rs;
            rs.sort_by_key(|r| r.user);
            let posts = act(&population, &templates, &media, &GifMemory::new(), &config, &ev, &class, 1, &rs, Some(st));
            let roots: Vec<u32> = posts.iter().filter(|p| p.kind == PostKind::Post).map(|p| p.author.0).collect();
            if !(roots.contains(&b) && roots.contains(&c)) {
                continue;
            }
            let Some(reply) = posts.iter().find(|p| p.author.0 == a && p.kind != PostKind::Post) else { continue };
            let target = posts.iter().find(|p| Some(p.id) == reply.parent.or(reply.quoted)).unwrap();
            out.push(target.author.0);
        }
        out
    };
    let before = answers(&fresh);
    let after = answers(&state);
    assert!(before.len() >= 3 && after.len() >= 3, "{} and {} draws; widen the search", before.len(), after.len());
    assert!(before.iter().all(|&t| t == c), "before, a answers the account they follow: {before:?}");
    assert!(after.iter().all(|&t| t == b), "after, the one they now follow: {after:?}");
    // Saved and restored with the rest of the state.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    chorus::state::io::save(&path, &state, "fp", &Default::default()).unwrap();
    let (back, _) = chorus::state::io::load(&path, "fp", population.len()).unwrap();
    assert_eq!(back.following(&population, a), following);
}

/// A hostile reply draws a retort from the author it answers, on the author's own side and
/// after it; the replier may answer back. With `retort` 0 there are none.
#[test]
fn hostile_replies_draw_retorts_and_arguments() {
    use chorus::actions::{act, ActionConfig};
    use chorus::classify::Classifier;
    use chorus::filter::Reaction;
    use chorus::media::{GifMemory, Media};
    use chorus::templates::Templates;
    let population = crate::common::generate(2_000, 3);
    let classifier = Classifier::embedded(population.world()).unwrap();
    let templates = Templates::embedded().unwrap();
    let media = Media::embedded().unwrap();
    let e = event("d", 600 * 60, "The Redhawks beat the Ironclads in a bitter derby");
    let class = classifier.classify(&e, 1).unwrap();
    // Half cheer, half grumble: many replies oppose what they answer.
    let rs: Vec<Reaction> = (0..600u32)
        .map(|u| Reaction { user: UserId(u), stance: if u % 2 == 0 { 80 } else { -80 }, engagement: 255 })
        .collect();
    let run = |retort: f32| {
        let config = ActionConfig { retort, reply_to_reply: 0.0, ..plain_mix() };
        act(&population, &templates, &media, &GifMemory::new(), &config, &e, &class, 1, &rs, None)
    };
    let opposed = |a: Sentiment, b: Sentiment| a.sign() * b.sign() < 0;
    // Replies to replies (reply_to_reply is 0, so only retorts make them).
    let retorts = |posts: &[Post]| -> Vec<(Post, Post, Post)> {
        let by_id: std::collections::HashMap<PostId, &Post> = posts.iter().map(|p| (p.id, p)).collect();
        posts
            .iter()
            .filter(|p| p.kind == PostKind::Reply && p.depth >= 2)
            .map(|p| {
                let answered = by_id[&p.parent.unwrap()];
                let before = by_id[&answered.parent.unwrap()];
                (p.clone(), answered.clone(), before.clone())
            })
            .collect()
    };
    assert!(retorts(&run(0.0)).is_empty(), "no retorts without the rule");
    let posts = run(1.0);
    let found = retorts(&posts);
    let hostile = posts
        .iter()
        .filter(|p| p.kind == PostKind::Reply && p.depth == 1)
        .filter(|p| posts.iter().any(|t| Some(t.id) == p.parent && opposed(t.sentiment, p.sentiment)))
        .count();
    assert!(hostile > 10, "{hostile} hostile replies");
    assert!(found.len() * 4 >= hostile, "{} retorts to {hostile} hostile replies", found.len());
    for (r, answered, before) in &found {
        assert_eq!(r.author, before.author, "the answered author retorts");
        assert!(opposed(r.sentiment, answered.sentiment), "on their own side");
        assert!(r.time > answered.time, "after the reply");
        assert!(r.text.as_deref().is_some_and(|t| !t.is_empty()), "with text");
    }
    assert!(found.iter().any(|(r, ..)| r.depth >= 3), "someone answers back");
}

/// Arguments repeated over a run of contested events make feuds: pairs labelled rival both
/// ways, listed by the state for `chorus inspect`.
#[test]
fn repeated_arguments_make_feuds() {
    let population = crate::common::generate(20_000, 8);
    let mut p = Pipeline::new(population).unwrap();
    let texts = [
        "The Harbor City Redhawks beat the Ironclads in a bitter derby",
        "The Ironclads beat the Harbor City Redhawks after a late penalty row",
        "The mayor resigns after the budget scandal",
    ];
    let mut t = 3600;
    for i in 0..30u32 {
        let e = event(&format!("f{i}"), t, texts[i as usize % texts.len()]);
        p.process(&e, i, i as usize + 1).unwrap();
        t += 4 * 3600;
    }
    let now = minute_of(GameTime(t));
    let pairs = p.state().feud_pairs(now);
    assert!(!pairs.is_empty(), "no feud after 30 contested events");
    assert_eq!(p.state().feuds(now), pairs.len());
    for &(a, b) in &pairs {
        assert!(a < b);
        assert_eq!(p.state().label(a, b, now), Label::Rival);
        assert_eq!(p.state().label(b, a, now), Label::Rival);
    }
}

/// A save killed mid-way (a real child process, SIGKILL while the temporary file is being
/// written) leaves the previous state in place and loadable; the next save goes through.
#[test]
fn a_save_killed_midway_leaves_the_previous_state() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    let (first, rest) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&first, lines[..20].join("\n")).unwrap();
    std::fs::write(&rest, lines[20..].join("\n")).unwrap();
    let state = dir.path().join("s.state");
    let tmp = dir.path().join("s.state.tmp");
    let chorus = |events: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_chorus"));
        c.args(["run", "--users", "100000", "--seed", "5", "-q", "--events"])
            .arg(events)
            .arg("--out")
            .arg(dir.path().join("out.jsonl"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let r = chorus(&first, &["--save-state".as_ref(), state.as_os_str()]).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let before = std::fs::read(&state).unwrap();
    // The second run resumes from the state and saves over it at the end; kill it while the
    // temporary file exists. A run that finishes first is tried again from the first state.
    let mut killed = false;
    for _ in 0..8 {
        std::fs::write(&state, &before).unwrap();
        let _ = std::fs::remove_file(&tmp);
        let mut child =
            chorus(&rest, &["--resume".as_ref(), state.as_os_str(), "--save-state".as_ref(), state.as_os_str()])
                .spawn()
                .unwrap();
        loop {
            if tmp.exists() {
                child.kill().unwrap();
                child.wait().unwrap();
                killed = tmp.exists();
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if killed {
            break;
        }
    }
    assert!(killed, "never caught the save mid-way in 8 tries");
    assert!(std::fs::metadata(&tmp).unwrap().len() < before.len() as u64 * 4, "a partial temporary file is left");
    crate::common::assert_same_bytes(&std::fs::read(&state).unwrap(), &before, "the state after a killed save");
    // The previous state loads, and saving over the leftover temporary file works.
    let r = chorus(&rest, &["--resume".as_ref(), state.as_os_str(), "--save-state".as_ref(), state.as_os_str()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!tmp.exists(), "the finished save leaves no temporary file");
    let after = std::fs::read(&state).unwrap();
    assert!(after != before && after.len() > before.len(), "the resumed run saved its state");
}

/// The demo at its own pace, `reps` times over `reps × 4` game days (as
/// `scripts/long_events.py REPS DAYS 1` writes it).
fn months_of_demo(reps: usize) -> Vec<GameEvent> {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).unwrap();
    let demo: Vec<GameEvent> = parse_events_numbered(&text).into_iter().map(|(_, e)| e.unwrap()).collect();
    let mut out = Vec::new();
    for k in 0..reps {
        for e in &demo {
            let mut e = e.clone();
            e.id = format!("r{k}_{}", e.id);
            e.time = GameTime(e.time.0 + k as i64 * 4 * 86_400);
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.time);
    out
}

/// Retention (issue 23, item 4): over 64 game days the state stops growing once the run is
/// older than its spans (30 days of history, relationships faded below 0.02, 10 days of
/// reflections). Without retention it keeps growing. A run saved after a sweep and resumed
/// ends in the same state as the uninterrupted one.
#[test]
fn retention_keeps_a_months_long_state_flat_and_resumes_exactly() {
    let events = months_of_demo(16);
    // What the state holds that grows with time, in bytes: 16 per relationship, history record
    // and reflection (the allocations' spare capacity is left out: untouched, it takes no
    // memory). The folded counters are at most one per user, like the cells, and are checked
    // against that bound below.
    let held = |p: &Pipeline| {
        let st = p.state();
        let (r, h, m) = (st.relations().len(), st.history().records(), st.reflections().len());
        (16 * (r + h + m), r, h, m)
    };
    let run = |config: StateConfig| {
        let mut p = Pipeline::with_state(crate::common::generate(3_000, 4), config).unwrap();
        let mut at = Vec::new();
        for (i, e) in events.iter().enumerate() {
            p.process(e, i as u32, i + 1).unwrap();
            if (i + 1) % 160 == 0 {
                at.push(held(&p));
            }
        }
        (p, at)
    };
    // (bytes held, relationships, history records, reflections) every 8 days.
    let (kept, at) = run(StateConfig::default());
    eprintln!("with retention: {at:?}");
    let folded = (0..3_000u32).filter(|&u| kept.state().history().folded(u).is_some()).count();
    assert!(folded <= 3_000 && folded > 1_000, "{folded} users with folded history");
    let growth = |at: &[(usize, usize, usize, usize)]| at[7].0 as f64 / at[5].0 as f64 - 1.0;
    assert!(growth(&at) <= 0.05, "the state grew {:.1}% from day 48 to 64: {at:?}", growth(&at) * 100.0);
    let none = StateConfig {
        history_days: 0.0,
        reflection_days: 0.0,
        relations: chorus::state::relations::RelationWeights { forget_below: 0.0, ..Default::default() },
        ..StateConfig::default()
    };
    let (_, grew) = run(none);
    eprintln!("without: {grew:?}");
    assert!(growth(&grew) > growth(&at) + 0.03, "retention made the difference: {grew:?}");
    // Save on day 20 (after several sweeps), resume, play on: the same state at the end.
    let dir = tempfile::tempdir().unwrap();
    let mut first = Pipeline::new(crate::common::generate(3_000, 4)).unwrap();
    for (i, e) in events.iter().enumerate().take(400) {
        first.process(e, i as u32, i + 1).unwrap();
    }
    first.save(&dir.path().join("mid.state")).unwrap();
    let mut second = Pipeline::new(crate::common::generate(3_000, 4)).unwrap();
    second.resume(&dir.path().join("mid.state")).unwrap();
    for (i, e) in events.iter().enumerate().skip(400) {
        second.process(e, i as u32, i + 1).unwrap();
    }
    kept.save(&dir.path().join("whole.state")).unwrap();
    second.save(&dir.path().join("resumed.state")).unwrap();
    crate::common::assert_same_bytes(
        &std::fs::read(dir.path().join("resumed.state")).unwrap(),
        &std::fs::read(dir.path().join("whole.state")).unwrap(),
        "the resumed run's state",
    );
}
