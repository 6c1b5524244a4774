//! The OpenAI-compatible chat-completions client (reqwest, blocking) and its record/replay
//! layer.
//!
//! One [`Transport::send`] is one HTTP attempt; its [`Exchange`] (status, Retry-After, body) is
//! what gets recorded, keyed by the SHA-256 of the request body and the attempt number, so a
//! replay reproduces failures and retries as well as answers. Retrying, backoff and budget
//! live in the stage (`llm::Llm`), which decides what each attempt may cost.
//!
//! Invariants: only this module talks HTTP; the API key is sent as a bearer token and never
//! written anywhere (`Debug` and `Serialize` leave it out); at most `concurrency` requests are
//! in flight and request starts are spaced by `1 / requests_per_second`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Client settings. `url`, `model` and `key` also come from `CHORUS_LLM_URL`,
/// `CHORUS_LLM_MODEL` and `CHORUS_LLM_KEY`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Base URL of the API, up to and including `/v1` (e.g. `http://127.0.0.1:8080/v1`).
    pub url: String,
    /// Model name sent in requests (default "default").
    pub model: String,
    /// API key (bearer token); never serialized or logged.
    #[serde(skip_serializing)]
    pub key: Option<String>,
    /// Whole-request timeout in milliseconds (default 120,000).
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds (default 5,000).
    pub connect_timeout_ms: u64,
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// First backoff in milliseconds, doubled per retry, with jitter (default 250).
    pub backoff_ms: u64,
    /// Longest backoff or Retry-After honoured, in milliseconds (default 20,000).
    pub backoff_max_ms: u64,
    /// Requests in flight at most (default 1: a 2-core llama.cpp gains nothing from more).
    pub concurrency: usize,
    /// Request starts per second at most (default 0: unlimited).
    pub requests_per_second: f64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            url: String::new(),
            model: "default".into(),
            key: None,
            timeout_ms: 120_000,
            connect_timeout_ms: 5_000,
            max_retries: 3,
            backoff_ms: 250,
            backoff_max_ms: 20_000,
            concurrency: 1,
            requests_per_second: 0.0,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("concurrency", &self.concurrency)
            .field("requests_per_second", &self.requests_per_second)
            .finish()
    }
}

impl ClientConfig {
    /// Fills `url`, `model` and `key` from the environment where they are empty.
    pub fn with_env(mut self) -> ClientConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if self.url.is_empty() {
            if let Some(u) = var("CHORUS_LLM_URL") {
                self.url = u;
            }
        }
        if self.model == "default" {
            if let Some(m) = var("CHORUS_LLM_MODEL") {
                self.model = m;
            }
        }
        if self.key.is_none() {
            self.key = var("CHORUS_LLM_KEY");
        }
        self
    }
}

/// One HTTP attempt's result, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// HTTP status; 0 when no response came (timeout, connection refused or reset).
    pub status: u16,
    /// Retry-After in milliseconds, when the server sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Response body (or the transport error's text when `status` is 0).
    pub body: String,
}

/// Something that answers chat-completion requests.
pub trait Transport: Send + Sync {
    /// Sends `body` (a JSON request) as attempt number `attempt` (0-based).
    fn send(&self, body: &str, attempt: u32) -> Exchange;
    /// Whether waiting (backoff, rate limit) means anything: false for replays.
    fn live(&self) -> bool {
        true
    }
    /// Requests a replay had no recorded answer for (0 for live transports): a replay that
    /// misses any did not reproduce its recording.
    fn unanswered(&self) -> u64 {
        0
    }
}

/// The HTTP transport with the concurrency and rate limits.
pub struct Http {
    client: reqwest::blocking::Client,
    endpoint: String,
    key: Option<String>,
    slots: Mutex<usize>,
    freed: Condvar,
    concurrency: usize,
    spacing: Option<Duration>,
    next_start: Mutex<Instant>,
}

impl Http {
    /// A client for `config.url` (the `/chat/completions` path is appended).
    pub fn new(config: &ClientConfig) -> crate::Result<Http> {
        if config.url.trim().is_empty() {
            return Err(crate::Error::Config("no LLM URL (give --llm URL or set CHORUS_LLM_URL)".into()));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)))
            .build()
            .map_err(|e| crate::Error::Config(format!("HTTP client: {e}")))?;
        let spacing = (config.requests_per_second > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / config.requests_per_second.min(1e6)));
        Ok(Http {
            client,
            endpoint: format!("{}/chat/completions", config.url.trim_end_matches('/')),
            key: config.key.clone(),
            slots: Mutex::new(0),
            freed: Condvar::new(),
            concurrency: config.concurrency.max(1),
            spacing,
            next_start: Mutex::new(Instant::now()),
        })
    }

    /// Checks that the server answers at all (`GET {url}/models`; any HTTP status counts, so
    /// servers without that route pass), before any work is done: an unreachable server is
    /// one clear error instead of a run of fallbacks.
    pub fn probe(&self) -> crate::Result<()> {
        let url = format!("{}/models", self.endpoint.trim_end_matches("/chat/completions"));
        let mut req = self.client.get(&url).timeout(Duration::from_secs(10));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        match req.send() {
            Ok(_) => Ok(()),
            Err(e) => Err(crate::Error::Config(format!(
                "cannot reach the LLM server at {}: {}",
                self.endpoint.trim_end_matches("/chat/completions"),
                transport_error(&e)
            ))),
        }
    }

    fn acquire(&self) {
        let mut n = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.concurrency {
            n = self.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        drop(n);
        if let Some(gap) = self.spacing {
            let wait = {
                let mut next = self.next_start.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let start = (*next).max(now);
                *next = start + gap;
                start - now
            };
            std::thread::sleep(wait);
        }
    }

    fn release(&self) {
        *self.slots.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.freed.notify_one();
    }
}

impl Transport for Http {
    fn send(&self, body: &str, _attempt: u32) -> Exchange {
        self.acquire();
        let mut req =
            self.client.post(&self.endpoint).header("content-type", "application/json").body(body.to_string());
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let out = match req.send() {
            Err(e) => Exchange { status: 0, retry_after_ms: None, body: transport_error(&e) },
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after_ms = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| (s * 1000.0) as u64);
                match resp.text() {
                    Ok(body) => Exchange { status, retry_after_ms, body },
                    Err(e) => Exchange { status: 0, retry_after_ms: None, body: transport_error(&e) },
                }
            }
        };
        self.release();
        out
    }
}

/// An error's kind and text (the key travels in a header, never in the URL).
fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    format!("{kind}: {e}")
}

/// The record key of a request body and attempt.
pub fn key(body: &str, attempt: u32) -> String {
    let h = Sha256::digest(body.as_bytes());
    let mut s = String::with_capacity(72);
    for b in h.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s.push_str(&format!("/{attempt}"));
    s
}

#[derive(Serialize, Deserialize)]
struct RecordLine {
    key: String,
    #[serde(flatten)]
    exchange: Exchange,
}

/// What a recording was made for: a replay of another run is refused, naming what differs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMeta {
    /// Population seed.
    pub seed: u64,
    /// Users.
    pub users: u64,
    /// Token budget per game day (or the list a budget sweep compared).
    pub budget: String,
    /// SHA-256 of the event file's bytes.
    pub events: String,
    /// Model name sent with the requests.
    pub model: String,
    /// Structured-output dialect.
    pub dialect: String,
}

impl RunMeta {
    /// SHA-256 of `bytes`, in hex (for [`RunMeta::events`]).
    pub fn digest(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The fields that differ from `recorded`, as `field: recorded X, this run Y` lines.
    pub fn mismatches(&self, recorded: &RunMeta) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: recorded {a}, this run {b}"));
            }
        };
        cmp("seed", recorded.seed.to_string(), self.seed.to_string());
        cmp("users", recorded.users.to_string(), self.users.to_string());
        // A budget sweep (`chorus budget`, a list) may replay a recording of one of its budgets.
        let swept = self.budget.contains(',') && self.budget.split(',').any(|b| b == recorded.budget);
        if !swept {
            cmp("budget", recorded.budget.clone(), self.budget.clone());
        }
        cmp("events (sha256 of the event file)", recorded.events.clone(), self.events.clone());
        cmp("model", recorded.model.clone(), self.model.clone());
        cmp("dialect", recorded.dialect.clone(), self.dialect.clone());
        out
    }
}

/// The first line of a recording.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    chorus_recording: u32,
    run: RunMeta,
}

/// Version of the recording header.
pub const RECORDING_VERSION: u32 = 1;

/// Records every exchange of an inner transport to a JSONL file (a header line with the
/// run's [`RunMeta`], then `{"key", "status", "body"}` per exchange, flushed as it goes), and
/// answers repeated requests from memory.
pub struct Recorder<T: Transport> {
    inner: T,
    seen: Mutex<HashMap<String, Exchange>>,
    file: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    path: Option<PathBuf>,
}

impl<T: Transport> Recorder<T> {
    /// Wraps `inner`; with `path`, appends each new exchange there (the file is truncated).
    pub fn new(inner: T, path: Option<&Path>) -> crate::Result<Recorder<T>> {
        Recorder::with_meta(inner, path, None)
    }

    /// As [`Recorder::new`], writing `meta` as the recording's header line first.
    pub fn with_meta(inner: T, path: Option<&Path>, meta: Option<&RunMeta>) -> crate::Result<Recorder<T>> {
        let file = match path {
            Some(p) => {
                let mut f = std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| crate::Error::io(p, e))?);
                if let Some(m) = meta {
                    let h = Header { chorus_recording: RECORDING_VERSION, run: m.clone() };
                    serde_json::to_writer(&mut f, &h).map_err(|e| crate::Error::Config(format!("recording: {e}")))?;
                    f.write_all(b"\n").and_then(|_| f.flush()).map_err(|e| crate::Error::io(p, e))?;
                }
                Some(f)
            }
            None => None,
        };
        Ok(Recorder { inner, seen: Mutex::new(HashMap::new()), file: Mutex::new(file), path: path.map(Into::into) })
    }

    /// Flushes the record file.
    pub fn flush(&self) -> crate::Result<()> {
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            f.flush().map_err(|e| crate::Error::io(self.path.clone().unwrap_or_default(), e))?;
        }
        Ok(())
    }
}

impl<T: Transport> Transport for Recorder<T> {
    fn send(&self, body: &str, attempt: u32) -> Exchange {
        let k = key(body, attempt);
        if let Some(x) = self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(&k) {
            return x.clone();
        }
        let x = self.inner.send(body, attempt);
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(k.clone(), x.clone());
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let line = RecordLine { key: k, exchange: x.clone() };
            // A failed record write must not change the run; flush() reports it at the end.
            if serde_json::to_writer(&mut *f, &line).is_ok() {
                let _ = f.write_all(b"\n").and_then(|_| f.flush());
            }
        }
        x
    }
    fn live(&self) -> bool {
        self.inner.live()
    }
}

/// Answers from a record file only: a request not in it gets status 0 ("not recorded"), which
/// ends in fallback like any failed request.
pub struct Replay {
    map: HashMap<String, Exchange>,
    meta: Option<RunMeta>,
    misses: std::sync::atomic::AtomicU64,
}

impl Replay {
    /// Loads a record file written by [`Recorder`].
    pub fn load(path: &Path) -> crate::Result<Replay> {
        let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
        let file = path.display().to_string();
        if let Some(why) = crate::filekind::wrong_kind(&bytes, "an LLM recording") {
            return Err(crate::Error::data(&file, 1, "-", why));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            crate::Error::data(&file, line, "-", format!("invalid UTF-8 at byte {at}"))
        })?;
        Replay::read(&file, &text)
    }

    /// Reads a record file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> crate::Result<Replay> {
        if let Some(why) = crate::filekind::wrong_kind(text.as_bytes(), "an LLM recording") {
            return Err(crate::Error::data(file, 1, "-", why));
        }
        Replay::read(file, text)
    }

    /// [`Replay::parse`] once the kind is checked.
    fn read(file: &str, text: &str) -> crate::Result<Replay> {
        let mut map = HashMap::new();
        let mut meta = None;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if i == 0 && line.trim_start().starts_with("{\"chorus_recording\"") {
                let h: Header = serde_json::from_str(line).map_err(|e| {
                    crate::Error::data(file, 1, "chorus_recording", crate::error::cut(&e.to_string(), 200))
                })?;
                if h.chorus_recording != RECORDING_VERSION {
                    return Err(crate::Error::data(
                        file,
                        1,
                        "chorus_recording",
                        format!("version {} (this chorus reads {RECORDING_VERSION})", h.chorus_recording),
                    ));
                }
                meta = Some(h.run);
                continue;
            }
            let r: RecordLine =
                serde_json::from_str(line).map_err(|e| crate::Error::data(file, i + 1, "-", e.to_string()))?;
            map.insert(r.key, r.exchange);
        }
        Ok(Replay { map, meta, misses: Default::default() })
    }

    /// What the recording was made for (`None` for a recording without a header).
    pub fn meta(&self) -> Option<&RunMeta> {
        self.meta.as_ref()
    }

    /// Checks the recording was made for `run`; the error names every field that differs.
    pub fn check(&self, file: &str, run: &RunMeta) -> crate::Result<()> {
        let Some(m) = &self.meta else { return Ok(()) };
        let diff = run.mismatches(m);
        if diff.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Config(format!(
                "{file}: the recording was made for another run ({}); replay it with the same settings, or record again",
                diff.join("; ")
            )))
        }
    }

    /// Exchanges held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the record is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Transport for Replay {
    fn send(&self, body: &str, attempt: u32) -> Exchange {
        self.map.get(&key(body, attempt)).cloned().unwrap_or_else(|| {
            self.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Exchange { status: 0, retry_after_ms: None, body: "not recorded".into() }
        })
    }
    fn live(&self) -> bool {
        false
    }
    fn unanswered(&self) -> u64 {
        self.misses.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Token usage reported by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Both.
    #[serde(default)]
    pub total_tokens: u64,
}

/// What a successful response carried.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The first choice's message content.
    pub content: String,
    /// Reported usage, if any.
    pub usage: Option<Usage>,
}

/// Reads a 200 response body; `None` if it is not a chat completion.
pub fn completion(body: &str) -> Option<Completion> {
    #[derive(Deserialize)]
    struct Msg {
        content: Option<String>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Msg,
    }
    #[derive(Deserialize)]
    struct Resp {
        choices: Vec<Choice>,
        usage: Option<Usage>,
    }
    let r: Resp = serde_json::from_str(body).ok()?;
    let content = r.choices.into_iter().next()?.message.content?;
    let usage = r.usage.map(|u| Usage {
        total_tokens: if u.total_tokens > 0 { u.total_tokens } else { u.prompt_tokens + u.completion_tokens },
        ..u
    });
    Some(Completion { content, usage })
}
