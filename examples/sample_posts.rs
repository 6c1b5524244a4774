//! Prints a few template-filled posts for one event, to eyeball voice and variety:
//! `cargo run --release --example sample_posts`.

use chorus::events::Category;
use chorus::templates::{Action, PostContext, Sentiment, Stance, Templates, NO_FACTS};
use chorus::{Population, SeedSet, UserId, World};

fn main() -> Result<(), chorus::Error> {
    let world = World::embedded()?;
    let seeds = SeedSet::embedded(&world)?;
    let population = Population::generate(&seeds, &world, 5_000, 42)?;
    let templates = Templates::embedded()?;
    let mut buf = String::new();
    for u in (0..5_000u32).step_by(250) {
        let action = [Action::Post, Action::Reply, Action::Quote][(u / 250 % 3) as usize];
        let sentiment = [Sentiment::Positive, Sentiment::Negative, Sentiment::Neutral][(u / 750 % 3) as usize];
        let ctx = PostContext {
            key: 17,
            category: Category::Sports,
            action,
            sentiment,
            subject: "the Redhawks",
            what: "the Redhawks win the final in overtime",
            author: "@maria_okafor",
            hashtag: "#Redhawks",
            against_event: false,
            drift: [0, 0],
            facts: &NO_FACTS,
            fan: false,
            stance: Stance::plain(sentiment),
        };
        templates.render(&population, UserId(u), &ctx, &mut buf);
        println!("@{:<16} {:?}/{:?}: {buf}", population.handle(UserId(u)), action, sentiment);
    }
    Ok(())
}
