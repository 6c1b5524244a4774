//! Memory of user state at scale: `cargo run --release --example state_memory -- USERS ACTIONS_PER_USER`
//! (defaults 10,000,000 and 2.2). Allocates the state for USERS users, then records a
//! heavy-tailed fill of USERS × ACTIONS_PER_USER actions (a few very active users, most with
//! one or two actions; targets drawn by popularity) into the history windows and relationships,
//! and prints the state's own accounting. Run it under `/usr/bin/time -v` for the peak RSS.
use chorus::rng::{hash3, unit_f64};
use chorus::state::history::Record;
use chorus::state::{StateConfig, UserState};

fn main() -> chorus::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let users: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let per_user: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.2);
    let mut state = UserState::new(users as usize, StateConfig::default())?;
    let weights = chorus::state::relations::RelationWeights::default();
    let actions = (users as f64 * per_user) as u64;
    for k in 0..actions {
        // Author: Zipf-like (exponent about 1) over a hashed order; target: more concentrated.
        let a = (unit_f64(hash3(1, 1, k, 0)).powf(2.5) * users as f64) as u32 % users;
        let a = (hash3(2, 2, a as u64, 0) % users as u64) as u32;
        let b = (unit_f64(hash3(1, 3, k, 0)).powf(6.0) * users as f64) as u32 % users;
        let b = (hash3(2, 2, b as u64, 0) % users as u64) as u32;
        let minute = (k * 43_200 / actions.max(1)) as u32 + 1;
        let kind = (hash3(1, 4, k, 0) % 6) as u8;
        state
            .history_mut()
            .push(a, Record { minute, other: b, thread: k as u32, entity: 3, kind_category: kind, stance: 40 });
        if kind != 0 && a != b {
            state.relations_mut().interact(a, b, minute, weights.like, &weights);
        }
    }
    let acted = (0..users).filter(|&u| state.history().len_of(u) > 0).count();
    println!(
        "{users} users, {actions} actions ({acted} users acted), {} relationships: state {:.1} MiB \
         ({:.1} bytes per user)",
        state.relations().len(),
        state.bytes() as f64 / (1 << 20) as f64,
        state.bytes() as f64 / users as f64
    );
    Ok(())
}
