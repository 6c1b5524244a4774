//! Behaviour figures of a timeline, next to what real networks measure: how concentrated
//! posting is, how volume follows the event, how many posts get no reaction, how big the
//! cascades grow, how fast replies come, and (with the population) how concentrated following
//! is. `chorus stats` prints them; [`svg`] draws their distributions.
//!
//! Definitions (the same in the report, the tests and BENCHMARKS.md):
//! - a *text post* is a post, reply, quote or GIF reply; its author is an *author*;
//! - a *root* is a `post` entry; its *cascade* is every entry that reaches it through
//!   `parent` or `quoted` links (likes, reposts, replies, quotes, and theirs in turn); a root with
//!   an empty cascade has *zero engagement*;
//! - a *game day* is 86,400 s of game time; the run's span is from its first entry to its
//!   last, and at least one day;
//! - a reply's *delay* is its time minus its root's.
//!
//! Invariant: the figures are a pure function of the entries (and population), whatever
//! their order in the file.

pub mod svg;

use crate::timeline::PostKind;
use serde::Serialize;
use std::collections::HashMap;

/// What the figures need of one timeline entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// The entry's id.
    pub id: u64,
    /// Its author.
    pub author: u32,
    /// What it is.
    pub kind: PostKind,
    /// The post it answers, likes or reposts, or the one it quotes.
    pub target: Option<u64>,
    /// Its event, as an index into [`Entries::events`].
    pub event: u32,
    /// Game time, seconds.
    pub time: i64,
}

/// The entries of a timeline, read leniently or strictly.
#[derive(Default)]
pub struct Entries {
    /// The entries, in file order.
    pub entries: Vec<Entry>,
    /// Event ids, in order of first appearance.
    pub events: Vec<String>,
    /// Lines that were not timeline entries (line number, what was wrong), with `partial`.
    pub skipped: Vec<(usize, String)>,
}

/// Longest error detail kept from a bad line.
const DETAIL: usize = 160;

#[derive(serde::Deserialize)]
struct Line<'a> {
    id: u64,
    author: u32,
    kind: PostKind,
    #[serde(default)]
    parent: Option<u64>,
    #[serde(default)]
    quoted: Option<u64>,
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    time: i64,
}

impl Entries {
    /// Reads a JSONL timeline as `chorus run` writes it. A line that is not an entry is an
    /// error naming `name:line` and what was expected, unless `partial`: then it is skipped and
    /// listed in [`Entries::skipped`].
    pub fn read<R: std::io::BufRead>(r: R, name: &str, partial: bool) -> crate::Result<Entries> {
        let mut out = Entries::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        for (i, line) in r.split(b'\n').enumerate() {
            let line = line.map_err(|e| crate::Error::io(name, e))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = std::str::from_utf8(&line)
                .map_err(|e| format!("not UTF-8 ({e})"))
                .and_then(|s| serde_json::from_str::<Line>(s).map_err(|e| e.to_string()));
            match parsed {
                Ok(l) => {
                    let n = index.len() as u32;
                    let event = *index.entry(l.event.to_string()).or_insert_with(|| {
                        out.events.push(l.event.to_string());
                        n
                    });
                    out.entries.push(Entry {
                        id: l.id,
                        author: l.author,
                        kind: l.kind,
                        target: l.parent.or(l.quoted),
                        event,
                        time: l.time,
                    });
                }
                Err(e) => {
                    let what = format!(
                        "expected a timeline entry (id, author, kind, event, time; as `chorus run` writes): {}",
                        crate::error::cut(&e, DETAIL)
                    );
                    if !partial {
                        return Err(crate::Error::data(name, i + 1, "-", what));
                    }
                    out.skipped.push((i + 1, what));
                }
            }
        }
        Ok(out)
    }
}

/// A published figure the report puts beside its own.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reference {
    /// Which figure.
    pub figure: &'static str,
    /// The published value.
    pub value: &'static str,
    /// Where it comes from.
    pub source: &'static str,
}

/// The published figures the project compares with.
pub const REFERENCES: &[Reference] = &[
    Reference {
        figure: "top 10% of authors' share of posts",
        value: "80%",
        source: "Pew Research Center, 'Sizing Up Twitter Users' (2019): the most active 10% of US adult users create 80% of tweets",
    },
    Reference {
        figure: "share of users posting little or nothing",
        value: "median user: 2 tweets a month",
        source: "Pew Research Center (2019); Pew (2021): the top 25% of users produce 97% of tweets",
    },
    Reference {
        figure: "in-degree exponent",
        value: "2.276",
        source: "Kwak, Lee, Park & Moon, 'What is Twitter, a social network or a news media?' (WWW 2010)",
    },
    Reference {
        figure: "reciprocity",
        value: "22.1%",
        source: "Kwak et al. (2010)",
    },
    Reference {
        figure: "posts with no reaction",
        value: "71% get no reply or retweet",
        source: "Sysomos, 'Replies and retweets on Twitter' (2010), 1.2 billion tweets",
    },
    Reference {
        figure: "cascade sizes",
        value: "heavy-tailed; over 90% of cascades never spread past the seed",
        source: "Goel, Watts & Goldstein, 'The structure of online diffusion networks' (EC 2012)",
    },
    Reference {
        figure: "reply timing",
        value: "most responses within the first hour; half-life about 20 minutes",
        source: "Wiselytics (2014), tweet half-life 18-24 minutes",
    },
];

/// How concentrated posting is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activity {
    /// Text posts (posts, replies, quotes, GIF replies).
    pub text_posts: u64,
    /// Users who wrote at least one.
    pub authors: u64,
    /// Share of the text posts by the most active 10% of authors.
    pub top10_authors_share: f64,
    /// Share of the text posts by the most active 1% of users.
    pub top1_users_share: f64,
    /// Share of the population that wrote nothing.
    pub silent_users_share: f64,
    /// Text posts per game day of the least active user of the most active 1% (each of them
    /// posts at least this much).
    pub top1_users_min_per_day: f64,
    /// Text posts of the most active author.
    pub max_per_author: u64,
    /// Text posts per author: (count, authors with that many), ascending.
    pub per_author: Vec<(u64, u64)>,
}

/// How volume follows the event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Volume {
    /// Events with at least one entry.
    pub events: u64,
    /// The event drawing the most text posts, and its share of users writing one (each
    /// author once) and liking or reposting.
    pub heaviest: EventVolume,
    /// The event drawing the fewest.
    pub lightest: EventVolume,
    /// Median share of users writing about an event.
    pub median_text_share: f64,
    /// Heaviest over lightest text-writing share (1 when they are equal).
    pub spread: f64,
}

/// One event's volume.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventVolume {
    /// Its id.
    pub event: String,
    /// Text posts.
    pub text_posts: u64,
    /// Share of users who wrote about it.
    pub text_share: f64,
    /// Share of users who liked or reposted something about it.
    pub like_repost_share: f64,
}

/// What became of the root posts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cascades {
    /// Root posts.
    pub roots: u64,
    /// Share of them with an empty cascade.
    pub zero_engagement_share: f64,
    /// Share of them without a direct reply, quote or repost (likes aside: what the published
    /// figure counts).
    pub no_spread_share: f64,
    /// Mean cascade size.
    pub mean_size: f64,
    /// Largest cascade.
    pub max_size: u64,
    /// Share of roots by cascade size bin: 0, 1, 2–3, 4–7, 8–15, …, (bin's lower bound, share).
    pub size_bins: Vec<(u64, f64)>,
    /// Cascade sizes: (size, roots with that size), ascending.
    pub sizes: Vec<(u64, u64)>,
}

/// How fast replies come.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delays {
    /// Replies (and GIF replies) with a known root.
    pub replies: u64,
    /// Median delay, minutes.
    pub median_minutes: f64,
    /// Share within the first hour.
    pub first_hour_share: f64,
    /// The hour (0-based) with the most replies.
    pub mode_hour: u32,
    /// Replies by hour after the root, for the first 48 hours (the last bin holds the rest).
    pub by_hour: Vec<u64>,
}

/// How concentrated following is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Followers {
    /// The largest account's followers, as a share of the population.
    pub max_share: f64,
    /// Followers of the 99.9th percentile account.
    pub p999: u32,
    /// In-degree power-law exponent (Clauset–Shalizi–Newman).
    pub alpha: Option<f64>,
    /// In-degree histogram: (followers, accounts), ascending, nonzero counts only.
    pub histogram: Vec<(u64, u64)>,
}

/// Relationship dynamics, from a saved state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dynamics {
    /// Follows the run's interactions made.
    pub follows: u64,
    /// Unfollows.
    pub unfollows: u64,
    /// Active feuds at the end.
    pub feuds: u64,
    /// Relationships held.
    pub relationships: u64,
    /// Mean energy of the users events touched (baseline 1).
    pub mean_energy: f64,
    /// Mean energy of the 1% of users who acted most, at the end.
    pub busiest_energy: f64,
    /// Up to 10 feuding pairs (user ids, ascending), for `chorus inspect`.
    pub feud_examples: Vec<(u32, u32)>,
}

/// Every figure of a timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedStats {
    /// Entries read.
    pub entries: u64,
    /// Lines skipped (with `--partial`).
    pub skipped: u64,
    /// The population's size.
    pub users: u64,
    /// Game days the run spans (at least 1).
    pub days: f64,
    /// Entries by kind, in [`PostKind::ALL`] order.
    pub by_kind: Vec<(&'static str, u64)>,
    /// Posting concentration.
    pub activity: Activity,
    /// Volume per event.
    pub volume: Volume,
    /// Root posts and their cascades.
    pub cascades: Cascades,
    /// Reply delays.
    pub delays: Delays,
    /// Following, when the population is known.
    pub followers: Option<Followers>,
    /// Relationship dynamics, when a saved state is given.
    pub dynamics: Option<Dynamics>,
    /// The published figures.
    pub references: &'static [Reference],
}

fn is_text(k: PostKind) -> bool {
    matches!(k, PostKind::Post | PostKind::Reply | PostKind::Quote | PostKind::Gif)
}

/// Sorted (value, count) pairs of a list of values.
fn histogram(mut values: Vec<u64>) -> Vec<(u64, u64)> {
    values.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some(last) if last.0 == v => last.1 += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

/// The figures of `entries` over a population of `users`.
///
/// # Errors
/// An entry by a user outside the population, or `users` 0.
pub fn feed_stats(entries: &Entries, users: u64) -> Result<FeedStats, String> {
    if users == 0 {
        return Err("the population is empty".into());
    }
    let list = &entries.entries;
    if let Some(e) = list.iter().find(|e| e.author as u64 >= users) {
        return Err(format!(
            "entry {} is by user {}, outside a population of {users}: give the run's --users/--seed or --load",
            e.id, e.author
        ));
    }
    let (first, last) = list.iter().fold((i64::MAX, i64::MIN), |(a, b), e| (a.min(e.time), b.max(e.time)));
    let days = if list.is_empty() { 1.0 } else { ((last - first) as f64 / 86_400.0).max(1.0) };
    let index: HashMap<u64, u32> = list.iter().enumerate().map(|(i, e)| (e.id, i as u32)).collect();
    let roots = roots_of(list, &index);
    let by_kind =
        PostKind::ALL.iter().map(|&k| (k.name(), list.iter().filter(|e| e.kind == k).count() as u64)).collect();
    Ok(FeedStats {
        entries: list.len() as u64,
        skipped: entries.skipped.len() as u64,
        users,
        days,
        by_kind,
        activity: activity(list, users, days),
        volume: volume(entries, users),
        cascades: cascades(list, &roots, &index),
        delays: delays(list, &roots),
        followers: None,
        dynamics: None,
        references: REFERENCES,
    })
}

fn activity(list: &[Entry], users: u64, days: f64) -> Activity {
    let mut per: HashMap<u32, u64> = HashMap::new();
    for e in list.iter().filter(|e| is_text(e.kind)) {
        *per.entry(e.author).or_default() += 1;
    }
    let mut counts: Vec<u64> = per.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().sum();
    let share = |k: usize| if total == 0 { 0.0 } else { counts.iter().take(k).sum::<u64>() as f64 / total as f64 };
    let top_authors = counts.len().div_ceil(10);
    let top_users = (users as usize).div_ceil(100);
    Activity {
        text_posts: total,
        authors: counts.len() as u64,
        top10_authors_share: share(top_authors),
        top1_users_share: share(top_users),
        silent_users_share: 1.0 - counts.len() as f64 / users as f64,
        top1_users_min_per_day: counts.get(top_users - 1).copied().unwrap_or(0) as f64 / days,
        max_per_author: counts.first().copied().unwrap_or(0),
        per_author: histogram(counts),
    }
}

fn volume(entries: &Entries, users: u64) -> Volume {
    let n = entries.events.len();
    // Distinct (event, author) pairs per kind class: writing, and liking or reposting.
    let mut writers: Vec<(u32, u32)> = Vec::new();
    let mut likers: Vec<(u32, u32)> = Vec::new();
    let mut text = vec![0u64; n];
    for e in &entries.entries {
        if is_text(e.kind) {
            writers.push((e.event, e.author));
            text[e.event as usize] += 1;
        } else {
            likers.push((e.event, e.author));
        }
    }
    let distinct = |mut v: Vec<(u32, u32)>| {
        v.sort_unstable();
        v.dedup();
        let mut per = vec![0u64; n];
        v.iter().for_each(|&(e, _)| per[e as usize] += 1);
        per
    };
    let (writers, likers) = (distinct(writers), distinct(likers));
    let of = |i: usize| EventVolume {
        event: entries.events[i].clone(),
        text_posts: text[i],
        text_share: writers[i] as f64 / users as f64,
        like_repost_share: likers[i] as f64 / users as f64,
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (writers[i], std::cmp::Reverse(i)));
    let empty = EventVolume { event: String::new(), text_posts: 0, text_share: 0.0, like_repost_share: 0.0 };
    let heaviest = order.last().map_or(empty.clone(), |&i| of(i));
    let lightest = order.first().map_or(empty, |&i| of(i));
    let spread = if lightest.text_share > 0.0 { heaviest.text_share / lightest.text_share } else { f64::INFINITY };
    Volume {
        events: n as u64,
        median_text_share: order.get(n / 2).map_or(0.0, |&i| writers[i] as f64 / users as f64),
        spread: if n == 0 { 1.0 } else { spread },
        heaviest,
        lightest,
    }
}

/// For every entry, the index of the root post its links lead to (`None` for an entry whose
/// chain leaves the file or loops). `index` maps ids to positions in `list`.
fn roots_of(list: &[Entry], index: &HashMap<u64, u32>) -> Vec<Option<u32>> {
    const UNKNOWN: u32 = u32::MAX;
    const NONE: u32 = u32::MAX - 1;
    let mut root = vec![UNKNOWN; list.len()];
    let mut path: Vec<usize> = Vec::new();
    for start in 0..list.len() {
        let mut i = start;
        path.clear();
        let found = loop {
            if root[i] != UNKNOWN {
                break root[i];
            }
            if list[i].kind == PostKind::Post && list[i].target.is_none() {
                break i as u32;
            }
            // Chains are as deep as reply trees; a longer one loops.
            if path.len() > 4096 {
                break NONE;
            }
            path.push(i);
            match list[i].target.and_then(|t| index.get(&t)) {
                Some(&j) => i = j as usize,
                None => break NONE,
            }
        };
        for &p in &path {
            root[p] = found;
        }
        if root[start] == UNKNOWN {
            root[start] = found;
        }
    }
    root.into_iter().map(|r| (r < NONE).then_some(r)).collect()
}

fn cascades(list: &[Entry], roots: &[Option<u32>], index: &HashMap<u64, u32>) -> Cascades {
    let mut size = vec![0u64; list.len()];
    for (i, r) in roots.iter().enumerate() {
        if let Some(r) = *r {
            if r as usize != i {
                size[r as usize] += 1;
            }
        }
    }
    let mut spread = vec![false; list.len()];
    for e in list.iter().filter(|e| e.kind != PostKind::Like) {
        if let Some(&t) = e.target.and_then(|t| index.get(&t)) {
            spread[t as usize] = true;
        }
    }
    let no_spread = (0..list.len()).filter(|&i| roots[i] == Some(i as u32) && !spread[i]).count() as u64;
    let sizes: Vec<u64> = (0..list.len()).filter(|&i| roots[i] == Some(i as u32)).map(|i| size[i]).collect();
    let n = sizes.len() as u64;
    let zero = sizes.iter().filter(|&&s| s == 0).count() as u64;
    let mut bins: Vec<(u64, f64)> = Vec::new();
    let max = sizes.iter().copied().max().unwrap_or(0);
    let mut lo = 0u64;
    loop {
        let hi = if lo == 0 { 1 } else { lo * 2 };
        let c = sizes.iter().filter(|&&s| s >= lo && s < hi).count();
        bins.push((lo, if n == 0 { 0.0 } else { c as f64 / n as f64 }));
        if hi > max {
            break;
        }
        lo = hi;
    }
    Cascades {
        roots: n,
        zero_engagement_share: if n == 0 { 0.0 } else { zero as f64 / n as f64 },
        no_spread_share: if n == 0 { 0.0 } else { no_spread as f64 / n as f64 },
        mean_size: if n == 0 { 0.0 } else { sizes.iter().sum::<u64>() as f64 / n as f64 },
        max_size: max,
        size_bins: bins,
        sizes: histogram(sizes),
    }
}

fn delays(list: &[Entry], roots: &[Option<u32>]) -> Delays {
    let mut minutes: Vec<f64> = Vec::new();
    let mut by_hour = vec![0u64; 49];
    for (i, e) in list.iter().enumerate() {
        if !matches!(e.kind, PostKind::Reply | PostKind::Gif) {
            continue;
        }
        if let Some(r) = roots[i] {
            let d = (e.time - list[r as usize].time).max(0);
            minutes.push(d as f64 / 60.0);
            by_hour[((d / 3600) as usize).min(48)] += 1;
        }
    }
    minutes.sort_by(f64::total_cmp);
    let n = minutes.len();
    let mode_hour =
        by_hour.iter().enumerate().max_by_key(|&(h, &c)| (c, std::cmp::Reverse(h))).map_or(0, |(h, _)| h as u32);
    Delays {
        replies: n as u64,
        median_minutes: if n == 0 { 0.0 } else { minutes[n / 2] },
        first_hour_share: if n == 0 { 0.0 } else { by_hour[0] as f64 / n as f64 },
        mode_hour,
        by_hour,
    }
}

/// The following figures of a population.
pub fn followers(population: &crate::Population) -> Followers {
    let g = population.graph();
    let n = population.len() as u64;
    let degrees: Vec<u64> = (0..n as u32).map(|u| g.in_degree(crate::UserId(u)) as u64).collect();
    let hist = histogram(degrees);
    let max = hist.last().map_or(0, |h| h.0);
    let mut counts = vec![0u64; max as usize + 1];
    hist.iter().for_each(|&(d, c)| counts[d as usize] = c);
    let mut seen = 0u64;
    let target = n - n / 1000;
    let p999 = hist
        .iter()
        .find(|&&(_, c)| {
            seen += c;
            seen > target
        })
        .map_or(0, |h| h.0 as u32);
    Followers {
        max_share: max as f64 / n.max(1) as f64,
        p999,
        alpha: crate::stats::fit_power_law(&counts).map(|f| f.alpha),
        histogram: hist,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, author: u32, kind: PostKind, target: Option<u64>, event: u32, time: i64) -> Entry {
        Entry { id, author, kind, target, event, time }
    }

    fn entries(list: Vec<Entry>, events: usize) -> Entries {
        Entries { entries: list, events: (0..events).map(|i| format!("e{i}")).collect(), skipped: Vec::new() }
    }

    #[test]
    fn cascades_follow_links_through_replies_and_quotes() {
        use PostKind::*;
        let e = entries(
            vec![
                entry(1, 0, Post, None, 0, 0),
                entry(2, 1, Post, None, 0, 10),
                entry(3, 2, Reply, Some(1), 0, 60),
                entry(4, 3, Like, Some(3), 0, 70),
                entry(5, 4, Quote, Some(1), 0, 4000),
                entry(6, 5, Reply, Some(5), 0, 8000),
                entry(7, 6, Like, Some(99), 0, 9000),
            ],
            1,
        );
        let s = feed_stats(&e, 10).expect("stats");
        assert_eq!(s.cascades.roots, 2);
        assert_eq!(s.cascades.max_size, 4, "reply, its like, the quote and the quote's reply");
        assert!((s.cascades.zero_engagement_share - 0.5).abs() < 1e-9);
        assert!((s.cascades.no_spread_share - 0.5).abs() < 1e-9);
        assert_eq!(s.cascades.sizes, vec![(0, 1), (4, 1)]);
        // Delays from the root: 60 s and 7990 s.
        assert_eq!(s.delays.replies, 2);
        assert_eq!(s.delays.by_hour[0], 1);
        assert_eq!(s.delays.by_hour[2], 1);
    }

    #[test]
    fn activity_shares_count_text_posts_per_author() {
        use PostKind::*;
        let mut list = Vec::new();
        // User 0 writes 9 posts, users 1..=9 one each; likes do not count.
        for i in 0..9 {
            list.push(entry(i, 0, Post, None, 0, i as i64));
        }
        for u in 1..10 {
            list.push(entry(100 + u as u64, u, Reply, Some(0), 0, 5));
            list.push(entry(200 + u as u64, u + 10, Like, Some(0), 0, 5));
        }
        let s = feed_stats(&entries(list, 1), 100).expect("stats");
        assert_eq!(s.activity.text_posts, 18);
        assert_eq!(s.activity.authors, 10);
        assert!((s.activity.top10_authors_share - 0.5).abs() < 1e-9, "{}", s.activity.top10_authors_share);
        assert!((s.activity.silent_users_share - 0.9).abs() < 1e-9);
        assert_eq!(s.activity.max_per_author, 9);
        assert_eq!(s.volume.heaviest.text_posts, 18);
        assert!((s.volume.heaviest.like_repost_share - 0.09).abs() < 1e-9);
    }

    #[test]
    fn bad_lines_name_the_line_and_partial_skips_them() {
        let text =
            "{\"id\":1,\"author\":0,\"handle\":\"a\",\"kind\":\"post\",\"depth\":0,\"event\":\"e1\",\"time\":5}\n\
                    {\"id\":\"e2\",\"time\":5,\"text\":\"an event line\"}\n\
                    {\"id\":2,\"author\":0,\"kind\":\"li";
        let err = Entries::read(text.as_bytes(), "t.jsonl", false).err().expect("refused").to_string();
        assert!(err.contains("t.jsonl:2") && err.contains("expected a timeline entry"), "{err}");
        let e = Entries::read(text.as_bytes(), "t.jsonl", true).expect("partial");
        assert_eq!(e.entries.len(), 1);
        assert_eq!(e.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), vec![2, 3]);
        assert!(feed_stats(&e, 1).is_ok());
        assert!(feed_stats(&e, 0).is_err());
    }

    #[test]
    fn an_author_outside_the_population_is_refused() {
        let e = entries(vec![entry(1, 50, PostKind::Post, None, 0, 0)], 1);
        let err = feed_stats(&e, 10).expect_err("refused");
        assert!(err.contains("user 50") && err.contains("--users"), "{err}");
    }
}
