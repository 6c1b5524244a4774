//! The LLM flags and the LLM stage's report.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// LLM flags shared by `run` and `budget`.
#[derive(clap::Args, Clone)]
pub(crate) struct LlmArgs {
    /// OpenAI-compatible API base URL (e.g. http://127.0.0.1:8080/v1); model and key come from
    /// CHORUS_LLM_MODEL and CHORUS_LLM_KEY (or --llm-config).
    #[arg(long, value_name = "URL")]
    pub(crate) llm: Option<String>,
    /// Record every LLM exchange (request hash -> response) to this JSONL file.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,
    /// Answer LLM requests from a record file instead of a server (reproduces a recorded run).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["llm", "record"])]
    pub(crate) replay: Option<PathBuf>,
    /// LLM stage settings as a JSON file (see chorus::llm::LlmConfig: routing, budget shares,
    /// batch sizes, cache, client limits).
    #[arg(long, value_name = "FILE")]
    pub(crate) llm_config: Option<PathBuf>,
}

impl LlmArgs {
    pub(crate) fn enabled(&self) -> bool {
        self.llm.is_some() || self.replay.is_some()
    }

    /// The settings and the transport the flags ask for.
    pub(crate) fn resolve(
        &self,
    ) -> Result<(chorus::llm::LlmConfig, std::sync::Arc<dyn chorus::llm::client::Transport>)> {
        use chorus::llm::client::{Http, Recorder, Replay};
        let mut config: chorus::llm::LlmConfig = match &self.llm_config {
            Some(p) => serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("{}: not a valid LLM configuration", p.display()))?,
            None => chorus::llm::LlmConfig::default(),
        };
        if let Some(url) = &self.llm {
            config.client.url = url.clone();
        }
        config.client = config.client.with_env();
        let transport: std::sync::Arc<dyn chorus::llm::client::Transport> = match (&self.replay, &self.record) {
            (Some(path), _) => std::sync::Arc::new(Replay::load(path)?),
            (None, record) => std::sync::Arc::new(Recorder::new(Http::new(&config.client)?, record.as_deref())?),
        };
        Ok((config, transport))
    }
}

/// A shared transport (one per process: the budget sweep reuses answers across budgets).
pub(crate) struct SharedTransport(pub(crate) std::sync::Arc<dyn chorus::llm::client::Transport>);

impl chorus::llm::client::Transport for SharedTransport {
    fn send(&self, body: &str, attempt: u32) -> chorus::llm::client::Exchange {
        self.0.send(body, attempt)
    }
    fn live(&self) -> bool {
        self.0.live()
    }
}

/// The LLM stage's report as text lines.
pub(crate) fn llm_summary(r: &chorus::llm::LlmReport, wall: std::time::Duration) -> String {
    let b = &r.budget;
    let sum = |a: [u64; 3]| a.iter().sum::<u64>();
    format!(
        "llm      items: llm {} (high {}, medium {}, low {}), cache {}, template fallback {}; {} requests in {:.1} s\n\
         llm      tokens spent {} of {}/day over {} day(s), by share: reply {}, quote {}, post {}, media {} ({} borrowed by high priority); fallbacks {:?}; refused reservations {}\n\
         llm      faults: {:?}\n\
         llm      queue wait ms p50 {:.1} p99 {:.1}; latency ms p50 {:.0} p99 {:.0}; batch size mean {:.1} max {}\n",
        sum(r.llm),
        r.llm[0],
        r.llm[1],
        r.llm[2],
        sum(r.cache),
        sum(r.template),
        r.requests,
        wall.as_secs_f64(),
        b.spent_total,
        b.per_day,
        b.days,
        b.spent[0],
        b.spent[1],
        b.spent[2],
        b.spent[3],
        b.borrowed,
        b.fallbacks,
        b.refused,
        r.faults,
        r.queue_wait_ms.p50,
        r.queue_wait_ms.p99,
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.batch_size.mean,
        r.batch_size.max,
    )
}
