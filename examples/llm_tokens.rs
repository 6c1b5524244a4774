//! Token efficiency of grouped prompts against one prompt per profile, side by side on the
//! same model, profiles and event: tokens (the server's reported usage) per generated post.
//!
//! ```text
//! eval "$(scripts/llm-server.sh start)"
//! cargo run --release --example llm_tokens -- [BATCH] [RUNS] [batch|mixed] [FIRST]
//! ```
//!
//! BATCH is the number of profiles (default 10), RUNS the number of runs (default 6), FIRST
//! the first run (default 0: a later one repeats one run of a longer command alone). Run `r`
//! uses one of three player events (`r` mod 3) over 100,000 users and takes BATCH of its routed
//! items: by default (`batch`) the first BATCH of its largest batch group (same event, action
//! and feeling: what the batcher sends together), with `mixed` BATCH items taken in turn from
//! its posts, replies and quotes (a batch as mixed as it gets; the batcher never sends one). It sends them once as one grouped request and once as BATCH requests
//! of one profile each. Both use the same template (`templates/prompts/batch.hbs`), grammar,
//! `max_tokens` rule, sampling seed (42 + `r`) and retry policy; the cache is off. Per mode it
//! counts the tokens of the first attempts and of all attempts (retries of items missing or
//! rejected in an answer), and the posts accepted. Figures per run, and over all runs (total
//! tokens over total profiles or posts) with the spread of the per-run ratios:
//!
//! - `first`: first-attempt tokens per profile (what one answer per profile costs, whatever
//!   the checks then keep);
//! - `all`: all tokens, retries included, per accepted post (what a post really costs).
//!
//! Prints one JSON object per run, then a summary object; with `CHORUS_TOKENS_SHOW` set, every
//! answer and its usage go to standard error.

use chorus::engine::Pipeline;
use chorus::events::parse_event;
use chorus::llm::client::{completion, ClientConfig, Exchange, Http, Transport};
use chorus::llm::route::{Item, Router, RoutingConfig};
use chorus::llm::{Llm, LlmConfig};
use chorus::timeline::Source;
use chorus::{Population, SeedSet, World};
use std::sync::{Arc, Mutex};

const EVENTS: [&str; 3] = [
    r#"{"id": "p1", "time": 600, "text": "The player's club Redhawks sign a star striker from Dustwater", "priority": "high", "category": "sports"}"#,
    r#"{"id": "p2", "time": 900, "text": "Mayor (the player) announces free buses across Harbor City from next month", "priority": "high", "category": "politics"}"#,
    r#"{"id": "p3", "time": 1200, "text": "The player's studio delays its big game launch by six months", "priority": "high", "category": "gaming"}"#,
];

/// Tokens by attempt kind: (first-attempt prompt, first-attempt completion, retry total).
#[derive(Default, Clone, Copy)]
struct Count {
    first_prompt: u64,
    first_completion: u64,
    retries: u64,
    requests: u64,
}

/// The HTTP transport, counting reported usage; a request is a first attempt when it carries
/// the base sampling seed (retries move it).
struct Counting {
    inner: Http,
    seed: u64,
    count: Arc<Mutex<Count>>,
}

impl Transport for Counting {
    fn send(&self, body: &str, attempt: u32) -> Exchange {
        let x = self.inner.send(body, attempt);
        let first = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| v["seed"].as_u64())
            == Some(self.seed)
            && attempt == 0;
        let mut c = self.count.lock().unwrap_or_else(|e| e.into_inner());
        c.requests += 1;
        let done = (x.status == 200).then(|| completion(&x.body)).flatten();
        if let Some(c) = done.as_ref().filter(|_| std::env::var_os("CHORUS_TOKENS_SHOW").is_some()) {
            eprintln!("{:?}\n{}", c.usage, c.content);
        }
        if let Some(u) = done.and_then(|c| c.usage) {
            if first {
                c.first_prompt += u.prompt_tokens;
                c.first_completion += u.completion_tokens;
            } else {
                c.retries += u.total_tokens;
            }
        }
        x
    }
}

struct Mode {
    count: Count,
    posts: usize,
}

impl Mode {
    fn first_per_profile(&self, n: usize) -> f64 {
        (self.count.first_prompt + self.count.first_completion) as f64 / n as f64
    }
    fn all_per_post(&self) -> f64 {
        let all = self.count.first_prompt + self.count.first_completion + self.count.retries;
        if self.posts == 0 {
            f64::NAN
        } else {
            all as f64 / self.posts as f64
        }
    }
    fn json(&self, n: usize) -> serde_json::Value {
        serde_json::json!({
            "requests": self.count.requests,
            "prompt_first": self.count.first_prompt,
            "completion_first": self.count.first_completion,
            "retry_tokens": self.count.retries,
            "posts": self.posts,
            "first_per_profile": (self.first_per_profile(n) * 10.0).round() / 10.0,
            "all_per_post": (self.all_per_post() * 10.0).round() / 10.0,
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(6);
    let mixed = match args.next().as_deref() {
        None | Some("batch") => false,
        Some("mixed") => true,
        Some(other) => return Err(format!("expected batch or mixed, got {other}").into()),
    };
    let from: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0);
    let client = ClientConfig { timeout_ms: 600_000, ..ClientConfig::default() }.with_env();
    let world = World::embedded()?;
    let seeds = SeedSet::embedded(&world)?;
    let population = Population::generate(&seeds, &world, 100_000, 77)?;
    let router = Router::new(&population, RoutingConfig { low_rate: 1.0, ..RoutingConfig::default() });
    let mut pipeline = Pipeline::new(population)?;
    let mut batches: Vec<Vec<Item>> = Vec::new();
    for (k, text) in EVENTS.iter().enumerate() {
        let event = parse_event(k + 1, text).map_err(|e| e.to_string())?;
        let (posts, _) = pipeline.process(&event, k as u32, k + 1).map_err(|e| e.to_string())?;
        let class = pipeline.classifier().classify(&event, k + 1).map_err(|e| e.to_string())?;
        let mut items = router.items(pipeline.population(), Some(pipeline.state()), &event, &class, &posts);
        if mixed {
            // Round robin over the actions (post, reply, quote), each in routing order: a
            // batch as mixed as the event allows (no shared action to say once).
            let mut by_kind: Vec<std::collections::VecDeque<Item>> = Vec::new();
            for i in items.drain(..) {
                match by_kind.iter_mut().find(|q| q.front().is_some_and(|f| f.kind == i.kind)) {
                    Some(q) => q.push_back(i),
                    None => by_kind.push([i].into()),
                }
            }
            while by_kind.iter().any(|q| !q.is_empty()) {
                for q in by_kind.iter_mut() {
                    items.extend(q.pop_front());
                }
            }
        } else {
            // The largest batch group (first seen on ties), in routing order.
            let mut sizes: Vec<(u64, usize)> = Vec::new();
            for i in &items {
                let g = Llm::group(i);
                match sizes.iter_mut().find(|(k, _)| *k == g) {
                    Some((_, c)) => *c += 1,
                    None => sizes.push((g, 1)),
                }
            }
            let best = sizes.iter().fold(None, |b: Option<(u64, usize)>, &(g, c)| match b {
                Some((_, bc)) if bc >= c => b,
                _ => Some((g, c)),
            });
            items.retain(|i| Some(Llm::group(i)) == best.map(|b| b.0));
        }
        items.truncate(n);
        batches.push(items);
    }
    let measure = |items: &[Item], seed: u64, grouped: bool| -> Result<Mode, Box<dyn std::error::Error>> {
        let config = LlmConfig {
            client: client.clone(),
            cache: chorus::llm::cache::CacheConfig { enabled: false, ..Default::default() },
            budget: chorus::budget::BudgetConfig { per_day: 10_000_000, ..Default::default() },
            seed,
            ..LlmConfig::default()
        };
        let count = Arc::new(Mutex::new(Count::default()));
        let transport = Counting { inner: Http::new(&client)?, seed, count: count.clone() };
        let llm = Llm::new(config, Box::new(transport))?;
        let groups: Vec<&[Item]> = if grouped { vec![items] } else { items.chunks(1).collect() };
        let mut posts = 0;
        for g in groups {
            let out = llm.run_batch(g, &[], pipeline.population(), pipeline.templates());
            posts += out.iter().filter(|o| o.source == Source::Llm).count();
        }
        let count = *count.lock().unwrap_or_else(|e| e.into_inner());
        // What the transport counted is what the budget reconciled (unless an attempt failed:
        // a lost answer is charged its whole reservation).
        let report = llm.report();
        if report.faults.no_response + report.faults.garbage > 0 {
            return Err(format!("failed attempts, the counts are not comparable: {:?}", report.faults).into());
        }
        assert_eq!(report.budget.spent_total, count.first_prompt + count.first_completion + count.retries);
        Ok(Mode { count, posts })
    };
    let mut first = Vec::new();
    let mut all = Vec::new();
    // Totals over runs: (first-attempt tokens, all tokens, profiles, posts) per mode.
    let mut totals = [[0u64; 4]; 2];
    for r in from..runs {
        let items = &batches[r % batches.len()];
        let seed = 42 + r as u64;
        let g = measure(items, seed, true)?;
        let s = measure(items, seed, false)?;
        let m = items.len();
        let (rf, ra) = (g.first_per_profile(m) / s.first_per_profile(m), g.all_per_post() / s.all_per_post());
        first.push(rf);
        all.push(ra);
        for (t, mode) in totals.iter_mut().zip([&g, &s]) {
            let c = mode.count;
            t[0] += c.first_prompt + c.first_completion;
            t[1] += c.first_prompt + c.first_completion + c.retries;
            t[2] += m as u64;
            t[3] += mode.posts as u64;
        }
        println!(
            "{}",
            serde_json::json!({
                "run": r, "event": items.first().map(|i| i.event.id.clone()), "seed": seed, "profiles": m,
                "kinds": items.iter().map(|i| i.kind.name()).collect::<Vec<_>>(),
                "grouped": g.json(m), "single": s.json(m),
                "ratio_first": (rf * 1000.0).round() / 1000.0, "ratio_all": (ra * 1000.0).round() / 1000.0,
            })
        );
    }
    let stats = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        serde_json::json!({"mean": (mean * 1000.0).round() / 1000.0, "min": (min * 1000.0).round() / 1000.0, "max": (max * 1000.0).round() / 1000.0})
    };
    let per = |a: u64, b: u64| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    let (gf, sf) = (per(totals[0][0], totals[0][2]), per(totals[1][0], totals[1][2]));
    let (ga, sa) = (per(totals[0][1], totals[0][3]), per(totals[1][1], totals[1][3]));
    println!(
        "{}",
        serde_json::json!({
            "batch": n, "runs": runs.saturating_sub(from), "shape": if mixed { "mixed" } else { "batch" },
            "first": {"grouped": r1(gf), "single": r1(sf), "ratio": (gf / sf * 1000.0).round() / 1000.0, "per_run": stats(&first)},
            "all": {"grouped": r1(ga), "single": r1(sa), "ratio": (ga / sa * 1000.0).round() / 1000.0, "per_run": stats(&all)},
        })
    );
    Ok(())
}
