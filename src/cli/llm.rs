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
    /// batch sizes, cache, client limits, phrase banks).
    #[arg(long, value_name = "FILE")]
    pub(crate) llm_config: Option<PathBuf>,
    /// Model name sent with each request (default: CHORUS_LLM_MODEL, else the config's).
    #[arg(long, value_name = "NAME")]
    pub(crate) llm_model: Option<String>,
    /// Name of the environment variable holding the API key (default CHORUS_LLM_KEY). The key
    /// is sent as a bearer token only: never printed, logged or recorded.
    #[arg(long, value_name = "VAR")]
    pub(crate) llm_key_env: Option<String>,
    /// How to ask for structured output: `openai` (response_format with a JSON schema; the
    /// default, which llama.cpp's server accepts too) or `llamacpp` (its GBNF grammar field).
    #[arg(long, value_name = "DIALECT", value_parser = ["openai", "llamacpp"])]
    pub(crate) llm_dialect: Option<String>,
}

impl LlmArgs {
    pub(crate) fn enabled(&self) -> bool {
        self.llm.is_some() || self.replay.is_some()
    }

    /// The settings and the transport the flags ask for. `run` describes this run: a
    /// recording gets it as its header, and a replay made for another run is refused.
    /// `budget` (the --budget flag, or the sweep's list) overrides the configured budget in
    /// the description.
    pub(crate) fn resolve(
        &self,
        mut run: chorus::llm::client::RunMeta,
        budget: Option<u64>,
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
        if let Some(m) = &self.llm_model {
            config.client.model = m.clone();
        }
        if let Some(var) = &self.llm_key_env {
            let key = std::env::var(var).ok().filter(|k| !k.trim().is_empty());
            if key.is_none() {
                anyhow::bail!("--llm-key-env {var}: that environment variable is not set");
            }
            config.client.key = key;
        }
        if let Some(d) = &self.llm_dialect {
            config.dialect = chorus::llm::wire::Dialect::from_name(d)
                .with_context(|| format!("--llm-dialect {d:?}: expected openai or llamacpp"))?;
        }
        config.client = config.client.with_env();
        if let Some(b) = budget {
            config.budget.per_day = b;
        }
        if run.budget.is_empty() {
            run.budget = config.budget.per_day.to_string();
        }
        run.model = config.client.model.clone();
        run.dialect =
            serde_json::to_value(config.dialect).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let transport: std::sync::Arc<dyn chorus::llm::client::Transport> = match (&self.replay, &self.record) {
            (Some(path), _) => {
                let replay = Replay::load(path)?;
                replay.check(&path.display().to_string(), &run)?;
                std::sync::Arc::new(replay)
            }
            (None, record) => {
                let http = Http::new(&config.client)?;
                http.probe()?;
                std::sync::Arc::new(Recorder::with_meta(http, record.as_deref(), Some(&run))?)
            }
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
    fn unanswered(&self) -> u64 {
        self.0.unanswered()
    }
}

/// Fails a replay that did not reproduce its recording: some request had no recorded answer
/// (the run differs from the recorded one in a way the header did not catch).
pub(crate) fn check_replayed(
    transport: &dyn chorus::llm::client::Transport,
    file: Option<&std::path::Path>,
) -> Result<()> {
    let missed = transport.unanswered();
    if let (Some(f), true) = (file, missed > 0) {
        anyhow::bail!(
            "{}: {missed} LLM requests of this run have no recorded answer, so the replay does not reproduce the recording \
             (another budget, seed, event file, model or chorus version?); record the run again",
            f.display()
        );
    }
    Ok(())
}

/// The LLM stage's report as text lines.
pub(crate) fn llm_summary(r: &chorus::llm::LlmReport, wall: std::time::Duration) -> String {
    let b = &r.budget;
    let sum = |a: [u64; 3]| a.iter().sum::<u64>();
    format!(
        "llm      items: llm {} (high {}, medium {}, low {}), cache {}, template fallback {}; {} requests in {:.1} s\n\
         llm      tokens spent {} of {}/day over {} day(s), by share: reply {}, quote {}, post {}, media {} ({} borrowed by high priority); fallbacks {:?}; refused reservations {}\n\
         llm      phrase banks: {} events qualified, {} written, {} skipped for the budget, {} failed; {} lines kept ({} duplicates dropped); {} posts carry them, {} tokens: {:.1} posts per 1,000 tokens\n\
         llm      gate: {} lines passed; refused: format {}, banned {}, language {}, facts {}, stance {}, off-topic {}\n\
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
        r.banks.requested,
        r.banks.written,
        r.banks.skipped_for_budget,
        r.banks.failed,
        r.banks.lines,
        r.banks.duplicates,
        r.banks.posts,
        r.banks.tokens,
        r.banks.posts_per_kilotoken(),
        r.gate.passed,
        r.gate.format,
        r.gate.banned,
        r.gate.language,
        r.gate.facts,
        r.gate.stance,
        r.gate.topic,
        r.faults,
        r.queue_wait_ms.p50,
        r.queue_wait_ms.p99,
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.batch_size.mean,
        r.batch_size.max,
    )
}
