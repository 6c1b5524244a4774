//! A game loop feeding a match day to chorus through the channel API and printing the feed as
//! the game clock advances: `cargo run --release --example match_day`.

use chorus::engine::{Engine, Input, Output};
use chorus::events::{parse_event, GameTime};
use chorus::timeline::PostKind;
use chorus::{Population, SeedSet, World};

const MATCH_DAY: [(i64, &str); 6] = [
    (0, "Kick-off: the Harbor City Redhawks host the Ironclads in the league final"),
    (1_800, "The Ironclads score first after a defensive mistake by the Redhawks"),
    (3_000, "Controversial penalty call by the referee sparks protests from both benches"),
    (4_500, "The Redhawks equalise with a stunning free kick in the second half"),
    (6_000, "The Harbor City Redhawks win the championship final in overtime"),
    (7_200, "The mayor announces a victory parade downtown for Saturday"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let world = World::embedded()?;
    let seeds = SeedSet::embedded(&world)?;
    let population = Population::generate(&seeds, &world, 100_000, 42)?;
    let engine = Engine::start(population, 256)?;
    let mut next = 0;
    // The game's own clock: one tick per 10 game minutes.
    for now in (0..=10_800).step_by(600) {
        while next < MATCH_DAY.len() && MATCH_DAY[next].0 <= now {
            let (time, text) = MATCH_DAY[next];
            let mut json = serde_json::json!({"id": format!("m{next}"), "time": time, "text": text});
            // The game knows the facts of the result: a typed frame replaces extraction.
            if next == 4 {
                json["frame"] =
                    serde_json::json!({"kind": "win", "winner": "redhawks", "loser": "ironclads", "score": "3-2"});
            }
            let json = json.to_string();
            let event = parse_event(next + 1, &json).map_err(|e| e.to_string())?;
            println!("\n[{:>5}s] EVENT: {text}", time);
            engine.events().send(Input::Event(event))?;
            next += 1;
        }
        engine.events().send(Input::Tick(GameTime(now)))?;
        let (mut shown, mut likes) = (0, 0);
        loop {
            match engine.timeline().recv()? {
                Output::Post(p) if p.kind == PostKind::Like || p.kind == PostKind::Repost => likes += 1,
                Output::Post(p) => {
                    if shown < 4 {
                        println!(
                            "  @{:<16} {:<6} {}",
                            p.handle,
                            format!("{:?}", p.kind).to_lowercase(),
                            p.text.unwrap_or_default()
                        );
                    }
                    shown += 1;
                }
                Output::Rejected(e) => eprintln!("rejected: {e}"),
                Output::Clock(_) => break,
            }
        }
        if shown + likes > 0 {
            println!("  [{now:>5}s] {shown} posts, replies and quotes; {likes} likes and reposts");
        }
    }
    engine.shutdown();
    Ok(())
}
