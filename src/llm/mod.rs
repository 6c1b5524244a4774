//! The LLM stage: routed would-be posts ([`route`]) are queued by priority and batched
//! ([`batch`]), turned into grouped prompts ([`prompt`]), sent within the token budget
//! ([`crate::budget`]) through the client ([`client`]), parsed and checked; what the LLM does
//! not deliver comes from the cache ([`cache`]) or stays the template text.
//!
//! ```no_run
//! use chorus::llm::{client::{ClientConfig, Http}, Llm, LlmConfig};
//! # fn main() -> chorus::Result<()> {
//! let mut config = LlmConfig::default();
//! config.client = ClientConfig { url: "http://127.0.0.1:8080/v1".into(), ..ClientConfig::default() }.with_env();
//! let llm = Llm::new(config.clone(), Box::new(Http::new(&config.client)?))?;
//! # let _ = llm; Ok(()) }
//! ```
//!
//! Invariants: every item handed to [`Llm::resolve`] or [`Llm::run_batch`] comes back exactly
//! once as an [`Outcome`] whose [`Source`] says where its text came from (LLM, cache or
//! template). Budget is reserved before each attempt and reconciled with the reported usage
//! (or charged in full when the usage is unknown), so retries never overspend. `resolve` is
//! sequential and uses no wall-clock time in its decisions: the same items and the same
//! exchanges (live or replayed) give the same outcomes.

pub mod bank;
pub mod batch;
pub mod cache;
pub mod client;
pub mod gate;
pub mod prompt;
pub mod reflect;
pub mod route;
pub mod stage;
pub mod wire;

use crate::budget::{Budget, BudgetConfig, BudgetReport, ContentType};
use crate::events::Priority;
use crate::population::Population;
use crate::rng::Stream;
use crate::templates::Templates;
use crate::timeline::{PostId, Source};
use crate::Result;
use batch::{level, BatchConfig, Batcher};
use cache::{CacheConfig, CacheKey, TextCache};
use client::{completion, ClientConfig, Transport};
use hdrhistogram::Histogram;
use route::{Item, RoutingConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Domain tag of backoff jitter.
const JITTER: u64 = 0x6a69_7474;

/// Everything the LLM stage needs to know.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Server, model, key, timeouts, retries and limits.
    pub client: ClientConfig,
    /// The token budget.
    pub budget: BudgetConfig,
    /// Which posts go to the LLM.
    pub routing: RoutingConfig,
    /// Queues and batches.
    pub batch: BatchConfig,
    /// The output cache.
    pub cache: CacheConfig,
    /// Completion tokens allowed per item in a batch (default 64: an answer line is 9 tokens
    /// of JSON and at most 200 characters of text, about 50 tokens of English; 10 items get
    /// 680 with the base). It caps what a runaway answer (symbol soup, a token per character)
    /// costs, and it is part of the budget reservation: a lower cap lets more requests fit.
    pub max_tokens_per_item: u32,
    /// Completion tokens added per request (default 40).
    pub max_tokens_base: u32,
    /// Sampling temperature (default 0.8).
    pub temperature: f32,
    /// Sampling seed sent with each request (default 42).
    pub seed: u64,
    /// How the server is asked for structured output (default `openai`: `response_format`
    /// with a JSON schema; `llamacpp`: the GBNF `grammar` field).
    pub dialect: wire::Dialect,
    /// Ask for structured output at all (default true; false for servers that support
    /// neither: the answer is then parsed leniently from the prompt's format only).
    pub structured: bool,
    /// LLM-written reflections (low priority).
    pub reflections: reflect::ReflectionConfig,
    /// Per-event phrase banks.
    pub banks: bank::BankConfig,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            client: ClientConfig::default(),
            budget: BudgetConfig::default(),
            routing: RoutingConfig::default(),
            batch: BatchConfig::default(),
            cache: CacheConfig::default(),
            max_tokens_per_item: 64,
            max_tokens_base: 40,
            temperature: 0.8,
            seed: 42,
            dialect: wire::Dialect::Openai,
            structured: true,
            reflections: reflect::ReflectionConfig::default(),
            banks: bank::BankConfig::default(),
        }
    }
}

/// How one routed item ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The post it fills.
    pub post: PostId,
    /// Its text.
    pub text: String,
    /// Where the text came from.
    pub source: Source,
}

/// Failed attempts by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// No response (timeout, connection error, not in the replay record).
    pub no_response: u64,
    /// 429 Too Many Requests.
    pub rate_limited: u64,
    /// 5xx (and 408).
    pub server_error: u64,
    /// Other 4xx (not retried).
    pub client_error: u64,
    /// A 200 whose body is not a chat completion.
    pub garbage: u64,
    /// Items missing or rejected in a parsed answer (wrong ids, truncation, failed checks).
    pub missing_items: u64,
}

/// Percentiles of a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Largest.
    pub max: f64,
}

fn summary(h: &Histogram<u64>, scale: f64) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len(),
        p50: h.value_at_quantile(0.5) as f64 / scale,
        p99: h.value_at_quantile(0.99) as f64 / scale,
        mean: h.mean() / scale,
        max: h.max() as f64 / scale,
    }
}

/// What the stage did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlmReport {
    /// Budget state.
    pub budget: BudgetReport,
    /// Items resolved by the LLM, per priority (high, medium, low).
    pub llm: [u64; 3],
    /// Items resolved from the cache, per priority.
    pub cache: [u64; 3],
    /// Items left with their template text, per priority.
    pub template: [u64; 3],
    /// HTTP attempts.
    pub requests: u64,
    /// Failed attempts by cause.
    pub faults: Faults,
    /// Queue wait per item, milliseconds.
    pub queue_wait_ms: Summary,
    /// Latency per attempt, milliseconds.
    pub latency_ms: Summary,
    /// Items per batch.
    pub batch_size: Summary,
    /// LLM lines that passed or were refused by the gate, by reason.
    pub gate: gate::GateReport,
    /// Phrase banks: requested, written, posts that carry their lines.
    pub banks: bank::BankReport,
    /// Planned and spent tokens per (event, kind).
    pub ledger: Vec<LedgerRow>,
}

/// Tokens planned (reserved) and spent (reported by the server) by one (event, kind) pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// HTTP attempts.
    pub requests: u64,
    /// Tokens reserved before sending.
    pub planned: u64,
    /// Tokens charged after the answer.
    pub spent: u64,
}

/// One row of the ledger: an event and a kind of request (`reply`, `quote`, `post`, `media`,
/// `bank`; reflections, which belong to no one event, under event `-` and kind `reflection`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    /// Event id.
    pub event: String,
    /// Kind of request.
    pub kind: String,
    /// Its figures.
    #[serde(flatten)]
    pub ledger: Ledger,
}

/// How an attempt ended.
enum Attempt {
    /// A chat completion (already charged).
    Answer(client::Completion),
    /// Worth another attempt (after backoff).
    Retry,
    /// Not worth another (a 4xx, or a replay without the exchange).
    Stop,
}

/// Tokens per byte reserved for an ASCII prompt before a server has reported any usage: the
/// BPE tokenizers of OpenAI-compatible providers make 0.2–0.35 tokens per byte of English
/// prose and JSON (Qwen2.5 here: 0.24 and 0.27 on the bank and batch prompt templates), so half a token leaves room; a
/// prompt with other characters reserves a token per byte. An overrun would be counted.
pub const FIRST_ASCII_RATIO: f64 = 0.5;

/// Margin on the largest tokens-per-byte ratio a server reported (see [`Llm::reservation`]).
pub const RATIO_MARGIN: f64 = 1.25;

struct Stats {
    ratio: Option<f64>,
    ledger: std::collections::BTreeMap<(String, String), Ledger>,
    gate: gate::GateReport,
    banks: bank::BankReport,
    queue_wait_us: Histogram<u64>,
    latency_us: Histogram<u64>,
    batch_size: Histogram<u64>,
    llm: [u64; 3],
    cache: [u64; 3],
    template: [u64; 3],
    requests: u64,
    faults: Faults,
}

fn histogram() -> Histogram<u64> {
    // Three significant digits; auto-resizing, so recording cannot fail on range.
    #[allow(clippy::expect_used)]
    let mut h = Histogram::new(3).expect("3 significant digits is a valid histogram precision");
    h.auto(true);
    h
}

/// The LLM stage. Thread-safe; share it by reference or `Arc`.
pub struct Llm {
    config: LlmConfig,
    transport: Box<dyn Transport>,
    budget: Budget,
    cache: TextCache,
    prompts: prompt::Prompts,
    banks: bank::BankPrompts,
    gate: Option<gate::Gate>,
    stats: Mutex<Stats>,
}

/// Per-item work state inside a batch.
struct Slot<'a> {
    item: &'a Item,
    queued_us: u64,
}

impl Llm {
    /// A stage over `transport` (an [`client::Http`], a [`client::Recorder`] or a
    /// [`client::Replay`]).
    pub fn new(config: LlmConfig, transport: Box<dyn Transport>) -> Result<Llm> {
        config.budget.validate()?;
        Ok(Llm {
            budget: Budget::new(config.budget.clone()),
            cache: TextCache::new(config.cache.clone()),
            prompts: prompt::Prompts::embedded()?,
            banks: bank::BankPrompts::embedded()?,
            gate: None,
            transport,
            stats: Mutex::new(Stats {
                ratio: None,
                ledger: Default::default(),
                gate: Default::default(),
                banks: Default::default(),
                queue_wait_us: histogram(),
                latency_us: histogram(),
                batch_size: histogram(),
                llm: [0; 3],
                cache: [0; 3],
                template: [0; 3],
                requests: 0,
                faults: Faults::default(),
            }),
            config,
        })
    }

    /// Holds every LLM text to `gate` (fact checker, stance, language, banned words) before
    /// it becomes a post; phrase banks need one.
    pub fn with_gate(mut self, gate: gate::Gate) -> Llm {
        self.gate = Some(gate);
        self
    }

    /// What every request shares: model, temperature, structured-output dialect.
    pub fn wire(&self) -> wire::Wire<'_> {
        wire::Wire {
            model: &self.config.client.model,
            temperature: self.config.temperature,
            dialect: self.config.dialect,
            structured: self.config.structured,
        }
    }

    /// The settings.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the stage did so far.
    pub fn report(&self) -> LlmReport {
        let s = self.stats();
        LlmReport {
            budget: self.budget.report(),
            llm: s.llm,
            cache: s.cache,
            template: s.template,
            requests: s.requests,
            faults: s.faults,
            queue_wait_ms: summary(&s.queue_wait_us, 1_000.0),
            latency_ms: summary(&s.latency_us, 1_000.0),
            batch_size: summary(&s.batch_size, 1.0),
            gate: s.gate,
            banks: bank::BankReport {
                tokens: s.ledger.iter().filter(|((_, k), _)| k == "bank").map(|(_, l)| l.spent).sum(),
                ..s.banks
            },
            ledger: s
                .ledger
                .iter()
                .map(|((event, kind), l)| LedgerRow { event: event.clone(), kind: kind.clone(), ledger: *l })
                .collect(),
        }
    }

    /// The batch group of an item: same event, same action, same mood.
    pub fn group(item: &Item) -> u64 {
        route::fnv(&[item.event.id.as_bytes(), &[item.kind as u8, item.sentiment as u8]])
    }

    fn cache_key(item: &Item) -> CacheKey {
        let answered = item.target.as_ref().map_or(0, |t| route::fnv(&[t.text.as_bytes()]));
        CacheKey {
            event: item.event.key,
            content: answered,
            category: item.event.category,
            archetype: item.archetype,
            action: item.kind,
            sentiment: item.sentiment,
        }
    }

    /// The request body for `items` (ids "1".."n") and its budget reservation
    /// ([`Llm::reservation`] of the prompt and the completion cap).
    pub fn request_body(&self, items: &[&Item]) -> Result<(String, u64)> {
        self.request_body_attempt(items, 0)
    }

    /// As [`Llm::request_body`], for retry number `attempt` (which moves the sampling seed, so
    /// a retry does not get the same answer again).
    pub fn request_body_attempt(&self, items: &[&Item], attempt: u32) -> Result<(String, u64)> {
        self.request(items, attempt).map(|(b, e, _)| (b, e))
    }

    /// The body, its reservation and the prompt's length in bytes.
    fn request(&self, items: &[&Item], attempt: u32) -> Result<(String, u64, usize)> {
        let prompt = self.prompts.render(items)?;
        let max_tokens = self.config.max_tokens_base + self.config.max_tokens_per_item * items.len() as u32;
        let seed = self.config.seed.wrapping_add(attempt as u64);
        let body = self.wire().body(&prompt, max_tokens, seed, wire::Shape::Lines(items.len()))?;
        Ok((body, self.reservation(&prompt, max_tokens), prompt.len()))
    }

    /// The budget reservation for a prompt and a completion cap: until a server has reported
    /// its prompt tokens, [`FIRST_ASCII_RATIO`] tokens per byte for an ASCII prompt and a token
    /// per byte otherwise (an upper bound); after that, the largest tokens-per-byte ratio seen so far, with a quarter more
    /// for margin (never above a byte per token), plus 64 for the chat template and the cap.
    /// The ratio only grows, and every overrun it would cause is counted in the budget report.
    pub fn reservation(&self, prompt: &str, max_tokens: u32) -> u64 {
        let first = if prompt.is_ascii() { FIRST_ASCII_RATIO } else { 1.0 };
        let ratio = self.stats().ratio.map_or(first, |r| (r * RATIO_MARGIN).min(1.0));
        (prompt.len() as f64 * ratio).ceil() as u64 + 64 + max_tokens as u64
    }

    /// Sends one attempt whose reservation is `res` and settles the budget: an answer is
    /// charged its reported usage (or all of `res` when the server reports none); a 429, 5xx
    /// or refused connection gives the reservation back and backs off; a timeout is charged in
    /// full (the server may have done the work); other 4xx stop.
    fn attempt(
        &self,
        body: &str,
        n: u32,
        tries: u32,
        res: crate::budget::Reservation,
        prompt_len: usize,
        (event, kind): (&str, &str),
    ) -> Attempt {
        let t0 = Instant::now();
        let planned = res.tokens;
        let x = self.transport.send(body, n);
        let body_key = crc32fast::hash(body.as_bytes()) as u64;
        {
            let mut s = self.stats();
            s.requests += 1;
            if self.transport.live() {
                s.latency_us.record(t0.elapsed().as_micros() as u64).ok();
            }
        }
        let charged = |me: &Self, actual: u64| me.charge_ledger(event, kind, planned, actual);
        match x.status {
            200 => match completion(&x.body) {
                Some(c) => {
                    let actual = c.usage.map(|u| u.total_tokens).unwrap_or(res.tokens);
                    if let Some(u) = c.usage.filter(|u| u.prompt_tokens > 0 && prompt_len > 0) {
                        let r = u.prompt_tokens as f64 / prompt_len as f64;
                        let mut s = self.stats();
                        s.ratio = Some(s.ratio.map_or(r, |o| o.max(r)));
                    }
                    self.budget.reconcile(res, actual);
                    charged(self, actual);
                    Attempt::Answer(c)
                }
                None => {
                    // Unknown usage: charge what was reserved.
                    let all = res.tokens;
                    self.budget.reconcile(res, all);
                    charged(self, all);
                    self.stats().faults.garbage += 1;
                    self.backoff(body_key, tries, None);
                    Attempt::Retry
                }
            },
            429 | 408 | 500..=599 => {
                self.budget.release(res);
                charged(self, 0);
                let mut s = self.stats();
                if x.status == 429 {
                    s.faults.rate_limited += 1;
                } else {
                    s.faults.server_error += 1;
                }
                drop(s);
                self.backoff(body_key, tries, x.retry_after_ms);
                Attempt::Retry
            }
            0 => {
                self.stats().faults.no_response += 1;
                if x.body.starts_with("timeout") || x.body.starts_with("transport") {
                    // The server may have done the work: charge the reservation.
                    let all = res.tokens;
                    self.budget.reconcile(res, all);
                    charged(self, all);
                } else {
                    self.budget.release(res);
                    charged(self, 0);
                }
                if !self.transport.live() && x.body == "not recorded" {
                    return Attempt::Stop;
                }
                self.backoff(body_key, tries, None);
                Attempt::Retry
            }
            _ => {
                self.budget.release(res);
                charged(self, 0);
                self.stats().faults.client_error += 1;
                Attempt::Stop
            }
        }
    }

    /// Records one attempt in the ledger: `planned` reserved, `spent` charged.
    fn charge_ledger(&self, event: &str, kind: &str, planned: u64, spent: u64) {
        let mut s = self.stats();
        let e = s.ledger.entry((event.to_string(), kind.to_string())).or_default();
        e.requests += 1;
        e.planned += planned;
        e.spent += spent;
    }

    /// An LLM text for `item` through the gate (when one is set), counted; `None` if refused.
    fn gate_item(&self, item: &Item, population: &Population, text: &str) -> Option<String> {
        let Some(gate) = &self.gate else { return Some(text.to_string()) };
        let r = gate.check(population, Some(item.author), &item.event, item.sentiment, text, prompt::MAX_CHARS);
        self.stats().gate.count(&r);
        r.ok()
    }

    /// A cached text for a similar request, re-styled for the item's author, if any.
    pub fn from_cache(&self, item: &Item, population: &Population, templates: &Templates) -> Option<Outcome> {
        let pick = item.post.0 ^ (item.author.0 as u64).rotate_left(29);
        let text = self.cache.get(&Self::cache_key(item), pick)?;
        self.stats().cache[level(item.priority)] += 1;
        let styled = templates.restyle_text(population, item.author, pick, item.sentiment, &text);
        Some(Outcome { post: item.post, text: styled, source: Source::Cache })
    }

    /// The outcome of an item the LLM did not answer: a cached text, else the template text.
    pub fn fallback(&self, item: &Item, population: &Population, templates: &Templates) -> Outcome {
        if let Some(o) = self.from_cache(item, population, templates) {
            return o;
        }
        self.stats().template[level(item.priority)] += 1;
        Outcome { post: item.post, text: item.fallback.clone(), source: Source::Template }
    }

    fn backoff(&self, body_key: u64, tries: u32, retry_after_ms: Option<u64>) {
        if !self.transport.live() {
            return;
        }
        let c = &self.config.client;
        let base = c.backoff_ms.saturating_mul(1u64 << (tries.saturating_sub(1)).min(20)).min(c.backoff_max_ms);
        let jitter = Stream::new(self.config.seed, JITTER, body_key, tries as u64).f64();
        let mut ms = (base as f64 * (0.5 + 0.5 * jitter)) as u64;
        if let Some(ra) = retry_after_ms {
            ms = ms.max(ra.min(c.backoff_max_ms));
        }
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// Sends one batch (items about one event, of one action), with retries for failed
    /// attempts and for items missing from an answer, within the budget. Items the LLM does
    /// not deliver fall back to the cache, then to their template text. `queued_us` is each
    /// item's wait in the queue so far (for the latency report).
    pub fn run_batch(
        &self,
        items: &[Item],
        queued_us: &[u64],
        population: &Population,
        templates: &Templates,
    ) -> Vec<Outcome> {
        let slots: Vec<Slot> = items
            .iter()
            .zip(queued_us.iter().chain(std::iter::repeat(&0)))
            .map(|(item, &q)| Slot { item, queued_us: q })
            .collect();
        let mut done: Vec<Option<Outcome>> = vec![None; slots.len()];
        let mut pending: Vec<usize> = (0..slots.len()).collect();
        {
            let mut s = self.stats();
            s.batch_size.record(slots.len() as u64).ok();
            for sl in &slots {
                s.queue_wait_us.record(sl.queued_us).ok();
            }
        }
        let mut sent: HashMap<String, u32> = HashMap::new();
        let mut tries = 0u32;
        while !pending.is_empty() && tries <= self.config.client.max_retries {
            tries += 1;
            let batch: Vec<&Item> = pending.iter().map(|&i| slots[i].item).collect();
            let Ok((body, estimate, prompt_len)) = self.request(&batch, tries - 1) else { break };
            let time = batch.iter().map(|i| i.time).min().unwrap_or_default();
            let ty = batch.first().map(|i| i.ty).unwrap_or(ContentType::Post);
            // A batch borrows across shares only if every item in it is high priority.
            let priority = batch.iter().map(|i| i.priority).max_by_key(|&p| level(p)).unwrap_or(Priority::Low);
            let Some(res) = self.budget.reserve(time, ty, priority, estimate) else { break };
            let attempt = sent.entry(body.clone()).or_insert(0);
            let n = *attempt;
            *attempt += 1;
            let label = batch.first().map_or("", |i| i.event.id.as_str());
            let kind = ty.name();
            match self.attempt(&body, n, tries, res, prompt_len, (label, kind)) {
                Attempt::Answer(c) => {
                    let texts = prompt::parse_batch(&c.content, batch.len());
                    let mut still = Vec::new();
                    for (&i, text) in pending.iter().zip(texts) {
                        let item = slots[i].item;
                        let text = text.and_then(|t| self.gate_item(item, population, &t));
                        match text {
                            Some(t) => {
                                self.cache.insert(Self::cache_key(item), t.clone());
                                self.stats().llm[level(item.priority)] += 1;
                                done[i] = Some(Outcome { post: item.post, text: t, source: Source::Llm });
                            }
                            None => still.push(i),
                        }
                    }
                    self.stats().faults.missing_items += still.len() as u64;
                    pending = still;
                }
                Attempt::Retry => {}
                Attempt::Stop => break,
            }
        }
        let mut out = Vec::with_capacity(slots.len());
        for (i, d) in done.into_iter().enumerate() {
            match d {
                Some(o) => out.push(o),
                None => {
                    let item = slots[i].item;
                    self.budget.record_fallback(item.ty, 1);
                    out.push(self.fallback(item, population, templates));
                }
            }
        }
        out
    }

    /// Resolves routed items deterministically: high-priority items go to the LLM; others are
    /// served from the cache when it has a similar text, else queued. Full groups are sent as
    /// they fill, the rest when the input ends; items the bounded queue refuses fall back.
    /// All high-priority items are handled before any medium one, and medium before low (in
    /// input order within a priority), so under a tight budget the replies to the player are
    /// served first and may borrow the other types' shares before lower priorities spend
    /// them. Sequential: the same items and exchanges give the same outcomes.
    pub fn resolve(&self, mut items: Vec<Item>, population: &Population, templates: &Templates) -> Vec<Outcome> {
        items.sort_by_key(|i| level(i.priority));
        let clock = Instant::now();
        let now = || clock.elapsed().as_micros() as u64;
        let mut out = Vec::with_capacity(items.len());
        let mut batcher: Batcher<Item> = Batcher::new(self.config.batch.clone());
        let send = |b: batch::Batch<Item>, out: &mut Vec<Outcome>| {
            let t = now();
            let queued: Vec<u64> = b.items.iter().map(|(q, _)| t.saturating_sub(*q)).collect();
            let items: Vec<Item> = b.items.into_iter().map(|(_, i)| i).collect();
            out.extend(self.run_batch(&items, &queued, population, templates));
        };
        for item in items {
            if item.priority != Priority::High {
                if let Some(o) = self.from_cache(&item, population, templates) {
                    out.push(o);
                    continue;
                }
            }
            let (p, g) = (item.priority, Self::group(&item));
            if let Err(back) = batcher.push(item, p, g, now()) {
                self.budget.record_fallback(back.ty, 1);
                out.push(self.fallback(&back, population, templates));
            }
            // Logical time 0: only full groups are due; waits do not depend on the wall clock.
            while let Some(b) = batcher.pop(0) {
                send(b, &mut out);
            }
        }
        while let Some(b) = batcher.flush() {
            send(b, &mut out);
        }
        out
    }
}

impl Llm {
    /// The whole LLM stage of a run, deterministically: the high-priority items first (the
    /// player's replies), then the phrase banks in importance order ([`Llm::write_banks`]),
    /// then the other items ([`Llm::resolve`]). Bank posts are never routed items, so every
    /// post has at most one outcome.
    pub fn resolve_all(
        &self,
        items: Vec<Item>,
        banks: Vec<bank::BankRequest>,
        population: &Population,
        templates: &Templates,
    ) -> Vec<Outcome> {
        let (high, rest): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|i| i.priority == Priority::High);
        let mut out = self.resolve(high, population, templates);
        out.extend(self.write_banks(banks, population, templates));
        out.extend(self.resolve(rest, population, templates));
        out
    }
}

/// Applies outcomes to posts (by id): text and source.
pub fn apply(posts: &mut [crate::timeline::Post], outcomes: &[Outcome]) {
    let by_id: HashMap<PostId, &Outcome> = outcomes.iter().map(|o| (o.post, o)).collect();
    for p in posts.iter_mut() {
        if let Some(o) = by_id.get(&p.id) {
            p.text = Some(o.text.clone());
            p.source = o.source;
        }
    }
}
