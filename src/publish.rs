//! `chorus publish`: mirrors a timeline (the JSONL that `chorus run` writes) to any
//! Mastodon-compatible server, posting as the accounts that server gave (one access token per
//! line of a tokens file; a simulated author is posted by token `author mod tokens`).
//!
//! Posts, replies, quotes and GIF replies become statuses (a reply answers the mirrored
//! parent, a quote links the mirrored status), likes become favourites and reposts boosts of
//! the mirrored target; an entry whose target was not mirrored is skipped and counted.
//!
//! Invariants: requests are paced to the given rate and a 429 waits for `Retry-After` (or
//! `X-RateLimit-Reset`) before trying again; every status carries an `Idempotency-Key` made from
//! the entry id, so a retried or resumed post never posts twice on a server that honours it
//! (Mastodon and chorus do); progress is appended to a file after each entry, so a run stopped
//! at any point resumes where it was; tokens never appear in output or errors.

use crate::error::{cut, Error, Result};
use crate::timeline::{Post, PostKind};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to publish and how.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// Base URL of the server (`https://example.social`).
    pub server: String,
    /// Access tokens, one per account to post as.
    pub tokens: Vec<String>,
    /// Where progress is kept (created; appended to).
    pub progress: PathBuf,
    /// Most requests per second.
    pub rate: f64,
    /// Stop after this many entries this run (None: all).
    pub limit: Option<usize>,
    /// `public`, `unlisted`, `private` or `direct`.
    pub visibility: String,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    /// Entries done by an earlier run (skipped now).
    pub resumed: usize,
    /// Statuses posted.
    pub statuses: usize,
    /// Favourites made.
    pub favourites: usize,
    /// Boosts made.
    pub boosts: usize,
    /// Entries skipped: target not mirrored, or refused by the server (4xx).
    pub skipped: usize,
    /// Times a 429 made the run wait.
    pub rate_limited: usize,
}

/// One line of the progress file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Done {
    /// Our entry id.
    id: u64,
    /// The server's status id (None for favourites, boosts and skips).
    remote: Option<String>,
}

/// Reads the tokens file: one token per line, blank lines and `#` comments skipped.
pub fn read_tokens(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let tokens: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect();
    if tokens.is_empty() {
        return Err(Error::Config(format!("{}: no access tokens (one per line)", path.display())));
    }
    Ok(tokens)
}

fn load_progress(path: &Path) -> Result<HashMap<u64, Option<String>>> {
    let mut done = HashMap::new();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(Error::io(path, e)),
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Done>(&line) {
            Ok(d) => {
                done.insert(d.id, d.remote);
            }
            // A line cut by a kill mid-write is the last one: its entry is redone (the
            // idempotency key keeps the server from posting it twice).
            Err(e) => {
                tracing::warn!(file = %path.display(), line = i + 1, error = %e, "progress line unreadable, entry redone");
            }
        }
    }
    Ok(done)
}

/// The server's refusal or failure, without the token.
fn http_error(line: usize, what: &str, status: u16, body: &str) -> Error {
    Error::Config(format!("timeline line {line}: {what}: HTTP {status}: {}", cut(body, 200)))
}

struct Client {
    http: reqwest::blocking::Client,
    server: String,
    gap: Duration,
    last: Option<Instant>,
    rate_limited: usize,
}

impl Client {
    /// Sends with pacing, waiting out 429s (at most 8 times) and retrying 5xx and connection
    /// errors (at most 3 times, backing off).
    fn send(
        &mut self,
        line: usize,
        what: &str,
        make: &dyn Fn(&reqwest::blocking::Client) -> reqwest::blocking::RequestBuilder,
    ) -> Result<std::result::Result<serde_json::Value, (u16, String)>> {
        let (mut waits, mut fails) = (0, 0);
        loop {
            if let Some(last) = self.last {
                let since = last.elapsed();
                if since < self.gap {
                    std::thread::sleep(self.gap - since);
                }
            }
            self.last = Some(Instant::now());
            let res = make(&self.http).send();
            match res {
                Ok(r) if r.status().as_u16() == 429 && waits < 8 => {
                    waits += 1;
                    self.rate_limited += 1;
                    std::thread::sleep(retry_after(r.headers()));
                }
                Ok(r) if r.status().is_server_error() && fails < 3 => {
                    fails += 1;
                    std::thread::sleep(Duration::from_millis(500 << fails));
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.text().unwrap_or_default();
                    if (200..300).contains(&status) {
                        let v = serde_json::from_str(&body)
                            .map_err(|e| http_error(line, what, status, &format!("not JSON ({e}): {body}")))?;
                        return Ok(Ok(v));
                    }
                    if (400..500).contains(&status) && status != 401 && status != 403 && status != 429 {
                        return Ok(Err((status, body)));
                    }
                    return Err(http_error(line, what, status, &body));
                }
                Err(e) if fails < 3 => {
                    fails += 1;
                    tracing::warn!(line, error = %e.without_url(), "request failed, retrying");
                    std::thread::sleep(Duration::from_millis(500 << fails));
                }
                Err(e) => {
                    return Err(Error::Config(format!(
                        "timeline line {line}: {what}: {} unreachable: {}",
                        self.server,
                        e.without_url()
                    )))
                }
            }
        }
    }
}

/// How long a 429 asks to wait: `Retry-After` seconds, else `X-RateLimit-Reset` (an ISO date
/// is not parsed here: one second), else one second; at most a minute.
fn retry_after(h: &reqwest::header::HeaderMap) -> Duration {
    let secs =
        h.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(1.0);
    Duration::from_secs_f64(secs.clamp(0.05, 60.0))
}

/// The status text of an entry: its text, with a GIF pick named and a quote's link.
fn status_text(p: &Post, quoted_url: Option<&str>) -> Option<String> {
    let mut text = p.text.clone().unwrap_or_default();
    if let Some(g) = &p.gif {
        text = format!("{text} [GIF: {g}]").trim().to_string();
    }
    if let Some(u) = quoted_url {
        text = format!("{text} {u}");
    }
    (!text.trim().is_empty()).then_some(text)
}

/// Mirrors `posts` (in timeline order) to the server.
pub fn publish(posts: &[Post], config: &PublishConfig) -> Result<PublishReport> {
    if config.tokens.is_empty() {
        return Err(Error::Config("tokens: at least one access token".into()));
    }
    if !config.rate.is_finite() || config.rate <= 0.0 {
        return Err(Error::Config("rate: requests per second must be above 0".into()));
    }
    if !["public", "unlisted", "private", "direct"].contains(&config.visibility.as_str()) {
        return Err(Error::Config(format!(
            "visibility: {:?} is not public, unlisted, private or direct",
            config.visibility
        )));
    }
    let mut done = load_progress(&config.progress)?;
    let mut report = PublishReport { resumed: done.len(), ..Default::default() };
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.progress)
        .map_err(|e| Error::io(&config.progress, e))?;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
    let server = config.server.trim_end_matches('/').to_string();
    let mut client = Client {
        http,
        server: server.clone(),
        gap: Duration::from_secs_f64(1.0 / config.rate),
        last: None,
        rate_limited: 0,
    };
    let mut urls: HashMap<u64, String> = HashMap::new();
    let mut handled = 0usize;
    for (k, p) in posts.iter().enumerate() {
        let line = k + 1;
        if done.contains_key(&p.id.0) {
            continue;
        }
        if config.limit.is_some_and(|l| handled >= l) {
            break;
        }
        handled += 1;
        let token = &config.tokens[p.author.0 as usize % config.tokens.len()];
        let auth = format!("Bearer {token}");
        let remote_of = |id: Option<crate::timeline::PostId>, done: &HashMap<u64, Option<String>>| {
            id.and_then(|i| done.get(&i.0).cloned().flatten())
        };
        let remote: Option<String> = match p.kind {
            PostKind::Like | PostKind::Repost => {
                let target = remote_of(p.parent.or(p.quoted), &done);
                match target {
                    Some(t) => {
                        let verb = if p.kind == PostKind::Like { "favourite" } else { "reblog" };
                        let url = format!("{server}/api/v1/statuses/{t}/{verb}");
                        match client.send(line, verb, &|h| h.post(&url).header("authorization", &auth))? {
                            Ok(_) if p.kind == PostKind::Like => report.favourites += 1,
                            Ok(_) => report.boosts += 1,
                            Err(_) => report.skipped += 1,
                        }
                    }
                    None => report.skipped += 1,
                }
                None
            }
            PostKind::Post | PostKind::Reply | PostKind::Quote | PostKind::Gif => {
                let reply_to = match p.kind {
                    PostKind::Reply | PostKind::Gif => remote_of(p.parent, &done),
                    _ => None,
                };
                let quoted =
                    (p.kind == PostKind::Quote).then(|| p.quoted.and_then(|q| urls.get(&q.0).cloned())).flatten();
                match status_text(p, quoted.as_deref()) {
                    None => {
                        report.skipped += 1;
                        None
                    }
                    Some(text) => {
                        let mut form = vec![("status", text), ("visibility", config.visibility.clone())];
                        if let Some(r) = reply_to {
                            form.push(("in_reply_to_id", r));
                        }
                        let url = format!("{server}/api/v1/statuses");
                        let key = format!("chorus-{}", p.id.0);
                        match client.send(line, "status", &|h| {
                            h.post(&url).header("authorization", &auth).header("idempotency-key", &key).form(&form)
                        })? {
                            Ok(v) => {
                                report.statuses += 1;
                                if let Some(u) = v["url"].as_str().or(v["uri"].as_str()) {
                                    urls.insert(p.id.0, u.to_string());
                                }
                                v["id"].as_str().map(str::to_string).or_else(|| v["id"].as_u64().map(|n| n.to_string()))
                            }
                            Err((status, body)) => {
                                tracing::warn!(line, status, body = %cut(&body, 200), "status refused, skipped");
                                report.skipped += 1;
                                None
                            }
                        }
                    }
                }
            }
        };
        let record = serde_json::to_string(&Done { id: p.id.0, remote: remote.clone() })
            .map_err(|e| Error::Config(format!("progress: {e}")))?;
        writeln!(out, "{record}").and_then(|_| out.flush()).map_err(|e| Error::io(&config.progress, e))?;
        done.insert(p.id.0, remote);
    }
    report.rate_limited = client.rate_limited;
    Ok(report)
}
