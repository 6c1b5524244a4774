//! # chorus
//!
//! A living virtual Twitter for games: about a thousand curated seed profiles multiplied
//! deterministically into millions of users, grouped into communities and joined by a
//! heavy-tailed relationship graph.
//!
//! ```
//! use chorus::{Population, SeedSet, World, UserId};
//!
//! let world = World::embedded()?;
//! let seeds = SeedSet::embedded(&world)?;
//! let population = Population::generate(&seeds, &world, 2_000, 42)?;
//! let user = population.user(UserId(7));
//! assert_eq!(user.handle, population.handle(UserId(7)));
//! assert!(population.graph().edges() > 0);
//! // Same seed, same users, byte for byte.
//! let again = Population::generate(&seeds, &world, 2_000, 42)?;
//! assert_eq!(population.user(UserId(7)), again.user(UserId(7)));
//! # Ok::<(), chorus::Error>(())
//! ```
//!
//! See `docs/ARCHITECTURE.md` for the pipeline and each module's invariants.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod actions;
pub mod budget;
pub mod check;
pub mod classify;
pub mod columns;
pub mod engine;
pub mod error;
pub mod events;
pub mod export;
pub mod feedstats;
pub mod filekind;
pub mod filter;
pub mod frame;
pub mod graph;
pub mod ids;
pub(crate) mod jsonl;
pub mod llm;
pub mod markov;
pub mod media;
pub mod ordered;
pub mod population;
pub(crate) mod prefetch;
pub mod progress;
pub mod publish;
pub mod rng;
pub mod seeds;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sim;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod taxonomy;
pub mod templates;
pub mod timeline;
pub mod world;

pub use error::{Error, Result};
pub use graph::build::GraphConfig;
pub use graph::{Edge, EdgeKind, Graph};
pub use ids::UserId;
pub use population::{NoProgress, Population, PopulationConfig, Progress, User};
pub use seeds::SeedSet;
pub use taxonomy::Topic;
pub use world::World;
