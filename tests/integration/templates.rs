//! Template-filled posts: variety of a 100,000-post burst, data-only insertion, determinism.

use crate::common::{generate, world};
use chorus::events::Category;
use chorus::frame::Kind;
use chorus::templates::{Action, Facts, PostContext, Sentiment, Stance, Templates, NO_FACTS};
use chorus::{Population, UserId};
use std::collections::{HashMap, HashSet};

/// One post per user for the Redhawks' final: fans positive, rival fans negative, the rest
/// mixed; action by the user's reply and quote propensities.
fn burst(p: &Population, t: &Templates, posts: usize, what: &str, facts: &Facts) -> Vec<(u32, String)> {
    let w = p.world();
    let redhawks = w.find("redhawks").unwrap();
    let rivals = w.rivals(redhawks).to_vec();
    let c = p.columns();
    let mut out = Vec::with_capacity(posts);
    let mut buf = String::new();
    for u in 0..posts as u32 {
        let i = u as usize;
        let team = c.affiliations[i].team;
        let sentiment = if team == redhawks {
            Sentiment::Positive
        } else if rivals.contains(&team) {
            Sentiment::Negative
        } else {
            [Sentiment::Positive, Sentiment::Neutral, Sentiment::Negative][i % 3]
        };
        let a = &c.activity[i];
        let action = match (i * 7919) % 100 {
            x if x < (a.reply as usize * 40 / 255) => Action::Reply,
            x if x < (a.reply as usize * 40 / 255) + (a.quote as usize * 30 / 255) => Action::Quote,
            _ => Action::Post,
        };
        let ctx = PostContext {
            key: 0xf1a1 ^ (u as u64) << 20,
            category: Category::Sports,
            action,
            sentiment,
            subject: "the Redhawks",
            what,
            author: "@someone",
            hashtag: "#Redhawks",
            against_event: false,
            drift: [0, 0],
            facts,
            fan: team == redhawks || rivals.contains(&team),
            stance: Stance::plain(sentiment),
        };
        let id = t.render(p, UserId(u), &ctx, &mut buf);
        out.push((id, buf.clone()));
    }
    out
}

/// The facts of "the Redhawks beat the Ironclads 102-99 in Harbor City".
fn win_facts() -> Facts {
    let mut f = Facts { kind: Kind::find(Category::Sports, "win"), slots: 0b0110_0011, ..Facts::default() };
    for (k, v) in [(0, "the Redhawks"), (1, "the Ironclads"), (5, "Harbor City"), (6, "102-99")] {
        f.values[k] = v.to_string();
    }
    f
}

#[test]
fn a_burst_of_100k_posts_is_varied() {
    a_burst_is_varied(&NO_FACTS);
}

/// The same with a frame: kind templates and category templates mixed, still varied.
#[test]
fn a_burst_of_100k_framed_posts_is_varied() {
    a_burst_is_varied(&win_facts());
}

fn a_burst_is_varied(facts: &Facts) {
    let p = generate(100_000, 42);
    let t = Templates::embedded().unwrap();
    let posts = burst(&p, &t, 100_000, "the Redhawks win the final in overtime", facts);
    let distinct: HashSet<&str> = posts.iter().map(|(_, s)| s.as_str()).collect();
    let share = distinct.len() as f64 / posts.len() as f64;
    let mut per: HashMap<u32, usize> = HashMap::new();
    for (id, _) in &posts {
        *per.entry(*id).or_default() += 1;
    }
    let (&top, &most) = per.iter().max_by_key(|(_, &n)| n).unwrap();
    let top_share = most as f64 / posts.len() as f64;
    eprintln!(
        "distinct {:.1}%, templates used {}, most used {} at {:.2}%",
        share * 100.0,
        per.len(),
        t.template(top).origin,
        top_share * 100.0
    );
    assert!(share >= 0.90, "only {:.1}% distinct", share * 100.0);
    assert!(top_share <= 0.02, "{} behind {:.2}% of posts", t.template(top).origin, top_share * 100.0);
    assert!(posts.iter().all(|(_, s)| !s.trim().is_empty() && !s.contains("{{")));
}

#[test]
fn event_text_is_inserted_as_data_and_output_is_deterministic() {
    let p = generate(3_000, 7);
    let t = Templates::embedded().unwrap();
    let nasty = "{{#each users}}{{this}}{{/each}} {{> x}} {{{raw}}}";
    let a = burst(&p, &t, 3_000, nasty, &NO_FACTS);
    let b = burst(&p, &t, 3_000, nasty, &NO_FACTS);
    assert_eq!(a, b);
    let with_what: Vec<&String> =
        a.iter().map(|(_, s)| s).filter(|s| s.to_lowercase().contains("{{#each users}}{{this}}{{/each}}")).collect();
    assert!(!with_what.is_empty(), "templates using {{{{what}}}} should show the text verbatim");
    let _ = world();
}
