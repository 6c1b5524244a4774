//! Token efficiency of grouped prompts against one prompt per profile, on the same model,
//! profiles and event: total tokens (the server's reported usage) per generated post.
//!
//! ```text
//! eval "$(scripts/llm-server.sh start)"
//! cargo run --release --example llm_tokens -- 10
//! ```
//!
//! The argument is the batch size (default 10): the first n routed items of one player event
//! (posts, replies and quotes), sent as one grouped batch and then one request each. Prints
//! one JSON object.

use chorus::engine::Pipeline;
use chorus::events::parse_event;
use chorus::llm::client::{ClientConfig, Http};
use chorus::llm::route::{Router, RoutingConfig};
use chorus::llm::{Llm, LlmConfig};
use chorus::timeline::Source;
use chorus::{Population, SeedSet, World};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10);
    let client = ClientConfig { timeout_ms: 600_000, ..ClientConfig::default() }.with_env();
    let world = World::embedded()?;
    let seeds = SeedSet::embedded(&world)?;
    let mut pipeline = Pipeline::new(Population::generate(&seeds, &world, 20_000, 77)?)?;
    let event = parse_event(
        1,
        r#"{"id": "p1", "time": 600, "text": "The player's club Redhawks sign a star striker from Dustwater", "priority": "high", "category": "sports"}"#,
    )
    .map_err(|e| e.to_string())?;
    let (posts, _) = pipeline.process(&event, 0, 1).map_err(|e| e.to_string())?;
    let class = pipeline.classifier().classify(&event, 1).map_err(|e| e.to_string())?;
    let router = Router::new(pipeline.population(), RoutingConfig { low_rate: 1.0, ..RoutingConfig::default() });
    let mut items = router.items(pipeline.population(), &event, &class, &posts);
    items.truncate(n);
    let config = LlmConfig {
        client: client.clone(),
        cache: chorus::llm::cache::CacheConfig { enabled: false, ..Default::default() },
        budget: chorus::budget::BudgetConfig { per_day: 10_000_000, ..Default::default() },
        ..LlmConfig::default()
    };
    let measure =
        |batches: Vec<Vec<chorus::llm::route::Item>>| -> Result<(u64, usize, u64), Box<dyn std::error::Error>> {
            let llm = Llm::new(config.clone(), Box::new(Http::new(&client)?))?;
            let mut made = 0;
            for b in &batches {
                made += llm
                    .run_batch(b, &[], pipeline.population(), pipeline.templates())
                    .iter()
                    .filter(|o| o.source == Source::Llm)
                    .count();
            }
            let r = llm.report();
            Ok((r.budget.spent_total, made, r.requests))
        };
    let (g_tokens, g_posts, g_requests) = measure(vec![items.clone()])?;
    let (s_tokens, s_posts, s_requests) = measure(items.iter().map(|i| vec![i.clone()]).collect())?;
    let per = |t: u64, p: usize| if p == 0 { f64::NAN } else { t as f64 / p as f64 };
    let (g, s) = (per(g_tokens, g_posts), per(s_tokens, s_posts));
    println!(
        "{}",
        serde_json::json!({
            "profiles": items.len(),
            "grouped": {"tokens": g_tokens, "posts": g_posts, "requests": g_requests, "tokens_per_post": g},
            "single": {"tokens": s_tokens, "posts": s_posts, "requests": s_requests, "tokens_per_post": s},
            "ratio": g / s,
        })
    );
    Ok(())
}
