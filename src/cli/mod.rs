//! The subcommands, one module each, and what they share.

pub(crate) mod budget;
pub(crate) mod classify;
pub(crate) mod common;
pub(crate) mod export;
pub(crate) mod inspect;
pub(crate) mod llm;
pub(crate) mod meter;
pub(crate) mod population;
pub(crate) mod publish;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod stats;
pub(crate) mod timeline;
