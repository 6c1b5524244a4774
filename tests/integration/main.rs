//! Integration tests for chorus: one test binary, one module per topic.
//!
//! Data-driven cases live under `tests/data/` (see `bad_input.rs`). Populations are kept small
//! (2k-20k users) except where a statistic needs 100k; shared ones are generated once.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod bank;
mod bolt;
mod classify;
mod cli;
mod common;
mod determinism;
mod engine;
mod export;
mod filter;
mod graph_stats;
mod grounding;
mod judges;
mod llm;
mod run;
mod seeds;
mod serve;
mod snapshot;
mod state;
mod templates;
