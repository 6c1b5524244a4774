//! A Mastodon-compatible subset of the client API over the same sessions, so existing client
//! libraries (Mastodon.py, masto) show the feed: timelines (home, public, tag), statuses and
//! threads, accounts with followers and following, trending tags, the instance documents,
//! streaming (SSE and the WebSocket protocol with `subscribe` messages), and posting: a status
//! by the token's account is an event the population reacts to (its replies form the thread);
//! favourites and boosts are recorded per account.
//!
//! Tokens are issued by the admin call `POST /v1/sessions/{id}/tokens` (behind the server's
//! own token when one is set), not OAuth: each maps to one session and one account, the
//! session's player (an account outside the population) or a synthetic user.
//!
//! Invariants: every answer is JSON with `Content-Type: application/json` (errors too, as
//! `{"error": ...}`); ids are strings of digits; list answers carry a `Link` header with
//! absolute `max_id` (next) and `min_id` (prev) URLs; the API shows everything simulated so
//! far (a status's replies are readable at once, whatever the game clock says).

pub mod entities;
pub mod streaming;

use super::api::{body, session};
use super::error::ApiError;
use super::session::Session;
use super::App;
use crate::ids::UserId;
use crate::sim::{Page, Simulation};
use crate::timeline::{Post, PostId};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use entities::{Ctx, Marks, Player};
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Q = Query<HashMap<String, String>>;
type Res = Result<Response, ApiError>;

/// Longest status text by default (`ServeConfig::max_status_chars`; the instance documents
/// say the configured one).
pub const MAX_CHARACTERS: usize = 500;

/// One token's grant.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The session it reads and posts to.
    pub session: String,
    /// Its account (a user id, or the player's).
    pub account: u32,
}

/// A session's Mastodon-side state: its player and what each account favourited or boosted.
pub struct Accounts {
    /// The player's account.
    pub player: Player,
    /// Each account's favourites and boosts (shared with readers, copied on a change).
    marks: Mutex<HashMap<u32, Arc<Marks>>>,
    cache: entities::AccountCache,
}

impl Accounts {
    fn marks(&self, account: u32) -> Arc<Marks> {
        self.marks.lock().get(&account).cloned().unwrap_or_default()
    }
}

/// Tokens and per-session accounts.
#[derive(Default)]
pub struct Mastodon {
    tokens: RwLock<HashMap<String, Grant>>,
    sessions: RwLock<HashMap<String, Arc<Accounts>>>,
}

impl Mastodon {
    /// Drops a deleted session's tokens and accounts (a later session under the same id starts
    /// clean).
    pub fn forget(&self, session: &str) {
        self.tokens.write().retain(|_, g| g.session != session);
        self.sessions.write().remove(session);
    }

    fn accounts(&self, s: &Session, handle: Option<&str>, name: Option<&str>) -> Arc<Accounts> {
        if let Some(a) = self.sessions.read().get(&s.id) {
            return a.clone();
        }
        let sim = s.sim.read();
        let id = sim.population().len() as u32;
        let handle = handle.unwrap_or("player").to_string();
        let name = name.map(str::to_string).unwrap_or_else(|| handle.clone());
        let player = Player { id, name, handle, follows: entities::player_following(&sim) };
        let a = Arc::new(Accounts { player, marks: Mutex::default(), cache: Default::default() });
        self.sessions.write().entry(s.id.clone()).or_insert(a).clone()
    }
}

/// The routes under `/api`.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/instance", get(instance_v1))
        .route("/api/v1/instance/", get(instance_v1))
        .route("/api/v2/instance", get(instance_v2))
        .route("/api/v2/instance/", get(instance_v2))
        .route("/api/v1/accounts/verify_credentials", get(verify_credentials))
        .route("/api/v1/accounts/{account}", get(get_account))
        .route("/api/v1/accounts/{account}/statuses", get(account_statuses))
        .route("/api/v1/accounts/{account}/followers", get(followers))
        .route("/api/v1/accounts/{account}/following", get(following))
        .route("/api/v1/timelines/home", get(home))
        .route("/api/v1/timelines/public", get(public))
        .route("/api/v1/timelines/tag/{tag}", get(tag))
        .route("/api/v1/statuses", post(post_status))
        .route("/api/v1/statuses/{status}", get(get_status))
        .route("/api/v1/statuses/{status}/context", get(context))
        .route("/api/v1/statuses/{status}/favourite", post(|a, h, p, u| mark(a, h, p, u, Mark::Favourite)))
        .route("/api/v1/statuses/{status}/unfavourite", post(|a, h, p, u| mark(a, h, p, u, Mark::Unfavourite)))
        .route("/api/v1/statuses/{status}/reblog", post(|a, h, p, u| mark(a, h, p, u, Mark::Reblog)))
        .route("/api/v1/statuses/{status}/unreblog", post(|a, h, p, u| mark(a, h, p, u, Mark::Unreblog)))
        .route("/api/v1/trends/tags", get(trends))
        .route("/api/v1/streaming", get(streaming::websocket))
        .route("/api/v1/streaming/health", get(|| async { "OK" }))
        .route("/api/v1/streaming/{stream}", get(streaming::sse))
        .route("/api/v1/streaming/{stream}/{sub}", get(streaming::sse_sub))
        .route("/api/chorus/avatars/{file}", get(avatar))
        .route("/api/chorus/media/{file}", get(media))
        .fallback(|| async { ApiError::not_found("path", "no such Mastodon route (this server speaks a subset)") })
}

/// `POST /v1/sessions/{id}/tokens`: `{}` for the player (`"handle"`, `"display_name"` name it
/// when the session's player is first made), `{"account": USER}` for a synthetic user.
pub async fn issue_token(State(app): State<Arc<App>>, Path(id): Path<String>, b: Result<Bytes, BytesRejection>) -> Res {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        account: Option<u32>,
        handle: Option<String>,
        display_name: Option<String>,
    }
    let bytes = body(b)?;
    let req: Req = if bytes.iter().all(u8::is_ascii_whitespace) {
        Req { account: None, handle: None, display_name: None }
    } else {
        super::error::parse_body(&bytes)?
    };
    if let Some(h) = &req.handle {
        if h.is_empty() || h.len() > 30 || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ApiError::bad("handle", "1-30 letters, digits or _"));
        }
    }
    if req.display_name.as_ref().is_some_and(|n| n.chars().count() > 60) {
        return Err(ApiError::bad("display_name", "at most 60 characters"));
    }
    let s = session(&app, &id)?;
    let accounts = app.mastodon.accounts(&s, req.handle.as_deref(), req.display_name.as_deref());
    let users = s.sim.read().population().len() as u32;
    let account = match req.account {
        Some(u) if u < users => u,
        Some(_) => return Err(ApiError::not_found("account", format!("the session has users 0..{users}"))),
        None => accounts.player.id,
    };
    let token = format!("{:032x}", rand::random::<u128>());
    app.mastodon.tokens.write().insert(token.clone(), Grant { session: s.id.clone(), account });
    let acct = if account == accounts.player.id {
        accounts.player.handle.clone()
    } else {
        s.sim.read().population().handle(UserId(account))
    };
    let out = json!({"access_token": token, "token_type": "Bearer", "scope": "read write", "account_id": account.to_string(), "acct": acct});
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// What a request's token grants: its session, the session's accounts, the account.
pub(crate) struct Caller {
    session: Arc<Session>,
    accounts: Arc<Accounts>,
    account: u32,
}

fn token_of<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<String> {
    if let Some(b) = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(b.trim().to_string());
    }
    if let Some(p) = headers.get("sec-websocket-protocol").and_then(|v| v.to_str().ok()) {
        if let Some(first) = p.split(',').next() {
            return Some(first.trim().to_string());
        }
    }
    query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned())
    })
}

fn caller(app: &App, headers: &HeaderMap, uri: &axum::http::Uri) -> Result<Caller, ApiError> {
    let unauthorized = |m: &str| ApiError::status(StatusCode::UNAUTHORIZED, m);
    let token = token_of(headers, uri.query()).ok_or_else(|| unauthorized("The access token is missing"))?;
    let grant = {
        let tokens = app.mastodon.tokens.read();
        // A map lookup, then a constant-time compare of the stored key against the given one.
        tokens.get_key_value(token.as_str()).and_then(|(k, g)| {
            use subtle::ConstantTimeEq;
            bool::from(k.as_bytes().ct_eq(token.as_bytes())).then(|| g.clone())
        })
    };
    let grant = grant.ok_or_else(|| unauthorized("The access token is invalid"))?;
    let s = app.sessions.get(&grant.session).ok_or_else(|| unauthorized("The access token's session is gone"))?;
    let accounts = app.mastodon.accounts(&s, None, None);
    Ok(Caller { session: s, accounts, account: grant.account })
}

/// `http://HOST` as the client reached this server.
fn base(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
    let proto = if proto == "https" { "https" } else { "http" };
    format!("{proto}://{host}")
}

fn json_ok(v: Value) -> Response {
    json_bytes(v.to_string().into_bytes())
}

fn json_bytes(v: Vec<u8>) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json; charset=utf-8")], v).into_response()
}

fn num(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::bad(name, "an id is a string of digits")))
        .transpose()
}

fn page(q: &HashMap<String, String>, default: usize, most: usize) -> Result<Page, ApiError> {
    let limit = match q.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| ApiError::bad("limit", "a number"))?.clamp(1, most),
        None => default,
    };
    Ok(Page { max_id: num(q, "max_id")?, since_id: num(q, "since_id")?, min_id: num(q, "min_id")?, limit })
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// A list answer with its `Link` header (next: older than the last; prev: newer than the first).
fn paged(items: Vec<u8>, first_last: Option<(String, String)>, headers: &HeaderMap, uri: &axum::http::Uri) -> Response {
    let mut res = json_bytes(items);
    if let Some((newest, oldest)) = first_last {
        let keep: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| !matches!(k.as_ref(), "max_id" | "min_id" | "since_id" | "access_token"))
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let url = |k: &str, v: &str| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (a, b) in &keep {
                q.append_pair(a, b);
            }
            q.append_pair(k, v);
            format!("{}{}?{}", base(headers), uri.path(), q.finish())
        };
        let link = format!("<{}>; rel=\"next\", <{}>; rel=\"prev\"", url("max_id", &oldest), url("min_id", &newest));
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert("link", v);
        }
    }
    res
}

fn statuses(c: &Ctx, posts: &[&Post]) -> (Vec<u8>, Option<(String, String)>) {
    let ends = match (posts.first(), posts.last()) {
        (Some(a), Some(b)) => Some((a.id.0.to_string(), b.id.0.to_string())),
        _ => None,
    };
    (array(posts.iter().map(|p| |out: &mut Vec<u8>| entities::write_status(c, p, out))), ends)
}

/// A page of statuses (newest first) with its `Link` header.
fn list_page(c: &Ctx, posts: &[&Post], headers: &HeaderMap, uri: &axum::http::Uri) -> Response {
    let (items, ends) = statuses(c, posts);
    paged(items, ends, headers, uri)
}

/// One Status.
fn one_status(c: &Ctx, p: &Post) -> Response {
    let mut out = Vec::new();
    entities::write_status(c, p, &mut out);
    json_bytes(out)
}

/// A JSON array of what each writer appends.
fn array<F: FnOnce(&mut Vec<u8>)>(items: impl Iterator<Item = F>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    for (k, write) in items.enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write(&mut out);
    }
    out.push(b']');
    out
}

/// Reads the caller's session with the context entities need.
fn read<T>(app: &App, caller: &Caller, headers: &HeaderMap, f: impl FnOnce(&Ctx) -> T) -> T {
    let t = std::time::Instant::now();
    let sim = caller.session.sim.read();
    let marks = caller.accounts.marks(caller.account);
    let base = base(headers);
    let c =
        Ctx { sim: &sim, base: &base, player: &caller.accounts.player, marks: &marks, cache: &caller.accounts.cache };
    let out = f(&c);
    app.metrics.read_took(t.elapsed());
    out
}

/// The account a path names: a user id of the session or the player's.
fn account_id(c: &Ctx, raw: &str) -> Result<u32, ApiError> {
    let u: u32 = raw.parse().map_err(|_| ApiError::not_found("account", "Record not found"))?;
    if (u as usize) < c.sim.population().len() || u == c.player.id {
        Ok(u)
    } else {
        Err(ApiError::not_found("account", "Record not found"))
    }
}

fn status_id(raw: &str) -> Result<PostId, ApiError> {
    raw.parse().map(PostId).map_err(|_| ApiError::not_found("status", "Record not found"))
}

/// The time the API shows the feed at: everything simulated so far.
fn view_time(sim: &Simulation) -> i64 {
    sim.now().max(sim.feed().latest_time())
}

/// What both instance documents say: the host, the streaming URL and the version (a
/// Mastodon version the clients parse, then this build).
fn instance_doc(headers: &HeaderMap) -> (String, String, String) {
    let b = base(headers);
    let host = b.split("://").nth(1).unwrap_or("localhost").to_string();
    let version = format!("4.3.0+chorus{}", env!("CARGO_PKG_VERSION").replace('.', "-"));
    (host, b.replacen("http", "ws", 1), version)
}

async fn instance_v1(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (host, ws, version) = instance_doc(&headers);
    json_ok(json!({
        "uri": host, "title": "chorus", "short_description": "A simulated social network (chorus).",
        "description": "A simulated social network: synthetic users react to game events.",
        "email": "", "version": version,
        "urls": {"streaming_api": ws}, "stats": {"user_count": 0, "status_count": 0, "domain_count": 1},
        "thumbnail": null, "languages": ["en"], "registrations": false, "approval_required": false,
        "invites_enabled": false, "configuration": {"statuses": {"max_characters": app.config.max_status_chars}},
        "contact_account": null, "rules": [], "chorus": {"sessions": app.sessions.len()},
    }))
}

async fn instance_v2(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (host, ws, version) = instance_doc(&headers);
    let public = json!({"local": "public", "remote": "public"});
    json_ok(json!({
        "domain": host, "title": "chorus",
        "version": version,
        "source_url": "https://github.com/", "description": "A simulated social network: synthetic users react to game events.",
        "usage": {"users": {"active_month": 0}}, "thumbnail": {"url": ""}, "languages": ["en"],
        "api_versions": {"mastodon": 2},
        "configuration": {
            "urls": {"streaming": ws},
            "statuses": {"max_characters": app.config.max_status_chars, "max_media_attachments": 0, "characters_reserved_per_url": 23},
            "timelines_access": {"live_feeds": public, "hashtag_feeds": public, "trending_link_feeds": public},
        },
        "registrations": {"enabled": false, "approval_required": false, "message": null},
        "contact": {"email": "", "account": null}, "rules": [],
    }))
}

async fn verify_credentials(State(app): State<Arc<App>>, headers: HeaderMap, OriginalUri(uri): OriginalUri) -> Res {
    let c = caller(&app, &headers, &uri)?;
    Ok(read(&app, &c, &headers, |ctx| {
        let mut a = entities::account(ctx, c.account);
        a["source"] = json!({"privacy": "public", "sensitive": false, "language": "en", "note": "", "fields": []});
        json_ok(a)
    }))
}

async fn get_account(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    read(&app, &c, &headers, |ctx| {
        let mut out = Vec::new();
        entities::write_account(ctx, account_id(ctx, &raw)?, &mut out);
        Ok(json_bytes(out))
    })
}

async fn account_statuses(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
    q: Q,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let page = page(&q, 20, 40)?;
    let (no_replies, no_reblogs, only_media) =
        (flag(&q, "exclude_replies"), flag(&q, "exclude_reblogs"), flag(&q, "only_media"));
    let tagged = q.get("tagged").map(|t| t.trim_start_matches('#').to_lowercase());
    read(&app, &c, &headers, |ctx| {
        let u = account_id(ctx, &raw)?;
        let posts = ctx.sim.feed().by_author_where(UserId(u), page, |p| {
            entities::is_status(p)
                && !(no_replies && p.parent.is_some() && p.kind != crate::timeline::PostKind::Repost)
                && !(no_reblogs && p.kind == crate::timeline::PostKind::Repost)
                && !(only_media && entities::media_of(p).next().is_none())
                && tagged
                    .as_ref()
                    .is_none_or(|t| p.text.as_deref().is_some_and(|x| crate::sim::feed::hashtags(x).any(|h| h == *t)))
        });
        Ok(list_page(ctx, &posts, &headers, &uri))
    })
}

/// Followers or following, `limit` (≤ 80) at a time; the cursor `max_id` is a position in the
/// list (the `Link` header carries it).
fn relations(
    app: &App,
    c: &Caller,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    raw: &str,
    q: &HashMap<String, String>,
    followers: bool,
) -> Res {
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(40).clamp(1, 80);
    let from = num(q, "max_id")?.unwrap_or(0) as usize;
    read(app, c, headers, |ctx| {
        let u = account_id(ctx, raw)?;
        let list: Vec<u32> = if u == ctx.player.id {
            if followers {
                Vec::new()
            } else {
                c.accounts.player.follows.clone()
            }
        } else if followers {
            ctx.sim.population().graph().followers(UserId(u)).to_vec()
        } else {
            ctx.sim.following(UserId(u))
        };
        let end = (from + limit).min(list.len());
        let items = array(
            list.get(from..end)
                .unwrap_or(&[])
                .iter()
                .map(|&a| move |out: &mut Vec<u8>| entities::write_account(ctx, a, out)),
        );
        let ends = (end < list.len()).then(|| (from.to_string(), end.to_string()));
        let mut res = paged(items, None, headers, uri);
        if let Some((_, next)) = ends {
            let link = format!("<{}{}?limit={limit}&max_id={next}>; rel=\"next\"", base(headers), uri.path());
            if let Ok(v) = HeaderValue::from_str(&link) {
                res.headers_mut().insert("link", v);
            }
        }
        Ok(res)
    })
}

async fn followers(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
    q: Q,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    relations(&app, &c, &headers, &uri, &raw, &q, true)
}

async fn following(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
    q: Q,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    relations(&app, &c, &headers, &uri, &raw, &q, false)
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap, OriginalUri(uri): OriginalUri, q: Q) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let page = page(&q, 20, 40)?;
    Ok(read(&app, &c, &headers, |ctx| {
        let now = view_time(ctx.sim);
        let posts = if c.account == ctx.player.id {
            ctx.sim.feed().home(&c.accounts.player.home(), now, page)
        } else {
            ctx.sim.feed().home(&ctx.sim.following(UserId(c.account)), now, page)
        };
        // Ranked, not chronological: the cursors still hold (next: older than the oldest).
        let mut by_id = posts.clone();
        by_id.sort_by_key(|p| std::cmp::Reverse(p.id));
        let ends = match (by_id.first(), by_id.last()) {
            (Some(a), Some(b)) => Some((a.id.0.to_string(), b.id.0.to_string())),
            _ => None,
        };
        let items = array(posts.iter().map(|p| |out: &mut Vec<u8>| entities::write_status(ctx, p, out)));
        paged(items, ends, &headers, &uri)
    }))
}

async fn public(State(app): State<Arc<App>>, headers: HeaderMap, OriginalUri(uri): OriginalUri, q: Q) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let page = page(&q, 20, 40)?;
    let only_media = flag(&q, "only_media");
    Ok(read(&app, &c, &headers, |ctx| {
        let posts = ctx
            .sim
            .feed()
            .all_where(page, |p| entities::is_status(p) && (!only_media || entities::media_of(p).next().is_some()));
        list_page(ctx, &posts, &headers, &uri)
    }))
}

async fn tag(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
    q: Q,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let page = page(&q, 20, 40)?;
    let t = raw.trim_start_matches('#').to_lowercase();
    Ok(read(&app, &c, &headers, |ctx| {
        let posts = ctx.sim.feed().by_tag_where(&t, page, entities::is_status);
        list_page(ctx, &posts, &headers, &uri)
    }))
}

async fn get_status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let id = status_id(&raw)?;
    read(&app, &c, &headers, |ctx| match ctx.sim.feed().post(id).filter(|p| entities::is_status(p)) {
        Some(p) => Ok(one_status(ctx, p)),
        None => Err(ApiError::not_found("status", "Record not found")),
    })
}

/// Most statuses a context lists on each side.
const CONTEXT_MOST: usize = 4000;

async fn context(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(raw): Path<String>,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let id = status_id(&raw)?;
    read(&app, &c, &headers, |ctx| {
        let feed = ctx.sim.feed();
        let p = feed
            .post(id)
            .filter(|p| entities::is_status(p))
            .ok_or_else(|| ApiError::not_found("status", "Record not found"))?;
        let mut ancestors: Vec<&Post> = Vec::new();
        let mut at =
            p.parent.filter(|_| matches!(p.kind, crate::timeline::PostKind::Reply | crate::timeline::PostKind::Gif));
        while let Some(a) = at.and_then(|a| feed.post(a)) {
            if ancestors.len() >= 64 {
                break;
            }
            ancestors.push(a);
            at = a.parent;
        }
        ancestors.reverse();
        // Depth first, in thread order.
        let mut descendants: Vec<&Post> = Vec::new();
        let mut stack: Vec<&Post> = feed.replies(p.id).into_iter().rev().collect();
        while let Some(r) = stack.pop() {
            if descendants.len() >= CONTEXT_MOST {
                break;
            }
            descendants.push(r);
            stack.extend(feed.replies(r.id).into_iter().rev());
        }
        let mut out = b"{\"ancestors\":".to_vec();
        out.extend(statuses(ctx, &ancestors).0);
        out.extend_from_slice(b",\"descendants\":");
        out.extend(statuses(ctx, &descendants).0);
        out.push(b'}');
        Ok(json_bytes(out))
    })
}

/// The fields of a new status, from a form or a JSON body.
struct NewStatus {
    status: String,
    in_reply_to_id: Option<PostId>,
}

fn new_status(headers: &HeaderMap, bytes: &[u8], max_chars: usize) -> Result<NewStatus, ApiError> {
    let json =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    let fields: HashMap<String, Value> = if json {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
        match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => return Err(ApiError::bad("body", "a JSON object")),
        }
    } else {
        form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
    };
    let status = match fields.get("status") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => {
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                error: "Validation failed: Text can't be blank".into(),
                field: Some("status".into()),
            })
        }
        Some(_) => return Err(ApiError::bad("status", "a string")),
    };
    if status.chars().count() > max_chars {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: format!("Validation failed: Text character limit of {max_chars} exceeded"),
            field: Some("status".into()),
        });
    }
    let in_reply_to_id = match fields.get("in_reply_to_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            Some(status_id(s).map_err(|_| ApiError::bad("in_reply_to_id", "an id is a string of digits"))?)
        }
        Some(Value::Number(n)) => n.as_u64().map(PostId),
        Some(_) => return Err(ApiError::bad("in_reply_to_id", "an id is a string of digits")),
    };
    Ok(NewStatus { status, in_reply_to_id })
}

async fn post_status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    b: Result<Bytes, BytesRejection>,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let bytes = body(b)?;
    let req = new_status(&headers, &bytes, app.config.max_status_chars)?;
    let key =
        headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(|k| format!("mastodon:{}:{k}", c.account));
    let hash = super::session::body_hash(&bytes);
    let base = base(&headers);
    let app2 = app.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<Arc<Vec<u8>>, ApiError> {
        let started = std::time::Instant::now();
        let mut sim = c.session.sim.write();
        if let Some((_, answer)) = c.session.replay(key.as_deref(), hash)? {
            return Ok(answer);
        }
        if let Some(r) = req.in_reply_to_id {
            if sim.feed().post(r).is_none() {
                return Err(ApiError::not_found("in_reply_to_id", "Record not found"));
            }
        }
        let handle = if c.account == c.accounts.player.id {
            c.accounts.player.handle.clone()
        } else {
            sim.population().handle(UserId(c.account))
        };
        let (status, applied) = sim
            .apply_status(UserId(c.account), &handle, &req.status, req.in_reply_to_id)
            .map_err(|e| ApiError::bad(super::error::field_of(&e.field, &e.error), e.error))?;
        let marks = c.accounts.marks(c.account);
        let ctx = Ctx { sim: &sim, base: &base, player: &c.accounts.player, marks: &marks, cache: &c.accounts.cache };
        let mut out = Vec::new();
        entities::write_status(&ctx, &status, &mut out);
        let out = Arc::new(out);
        let n = applied.posts.len() as u64;
        let _ = c.session.tx.send(Arc::new(applied.posts));
        drop(sim);
        if let Some(k) = key {
            c.session.idempotency.lock().put(k, hash, 200, out.clone());
        }
        app2.metrics.event_applied(n, started.elapsed());
        Ok(out)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json; charset=utf-8")], out.as_ref().clone())
        .into_response())
}

#[derive(Clone, Copy)]
enum Mark {
    Favourite,
    Unfavourite,
    Reblog,
    Unreblog,
}

async fn mark(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    OriginalUri(uri): OriginalUri,
    m: Mark,
) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let id = status_id(&raw)?;
    if c.session.sim.read().feed().post(id).filter(|p| entities::is_status(p)).is_none() {
        return Err(ApiError::not_found("status", "Record not found"));
    }
    {
        let mut all = c.accounts.marks.lock();
        let marks = Arc::make_mut(all.entry(c.account).or_default());
        match m {
            Mark::Favourite => marks.favourites.insert(id.0),
            Mark::Unfavourite => marks.favourites.remove(&id.0),
            Mark::Reblog => marks.reblogs.insert(id.0),
            Mark::Unreblog => marks.reblogs.remove(&id.0),
        };
    }
    read(&app, &c, &headers, |ctx| match ctx.sim.feed().post(id) {
        Some(p) => Ok(one_status(ctx, p)),
        None => Err(ApiError::not_found("status", "Record not found")),
    })
}

async fn trends(State(app): State<Arc<App>>, headers: HeaderMap, OriginalUri(uri): OriginalUri, q: Q) -> Res {
    let c = caller(&app, &headers, &uri)?;
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(10).clamp(1, 20);
    let offset = q.get("offset").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0).min(10_000);
    Ok(read(&app, &c, &headers, |ctx| {
        let day = (entities::EPOCH + view_time(ctx.sim)).div_euclid(86_400) * 86_400;
        let items: Vec<Value> = ctx
            .sim
            .feed()
            .trending(offset + limit)
            .into_iter()
            .skip(offset)
            .map(|(t, n)| {
                json!({"name": t, "url": format!("{}/tags/{t}", ctx.base),
                    "history": [{"day": day.to_string(), "uses": n.to_string(), "accounts": n.to_string()}]})
            })
            .collect();
        json_ok(Value::Array(items))
    }))
}

fn svg(body: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], body).into_response()
}

/// `GET /api/chorus/avatars/{id}.svg`: the colour depends on the id alone, the initials on
/// the name the first session holding that user gives it.
async fn avatar(State(app): State<Arc<App>>, Path(file): Path<String>) -> Res {
    let id: u32 = file
        .strip_suffix(".svg")
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| ApiError::not_found("file", "an avatar is ID.svg"))?;
    let name = app
        .sessions
        .all()
        .into_iter()
        .find_map(|s| {
            let sim = s.sim.read();
            ((id as usize) < sim.population().len()).then(|| sim.population().display_name(UserId(id)))
        })
        .unwrap_or_else(|| "P".to_string());
    Ok(svg(entities::avatar_svg(id, &name)))
}

/// `GET /api/chorus/media/{post}-{k}.svg`: a placeholder naming what the post showed.
async fn media(State(app): State<Arc<App>>, Path(file): Path<String>) -> Res {
    let bad = || ApiError::not_found("file", "media is POST-K.svg");
    let (post, k) = file.strip_suffix(".svg").and_then(|f| f.split_once('-')).ok_or_else(bad)?;
    let (post, k): (u64, usize) = (post.parse().map_err(|_| bad())?, k.parse().map_err(|_| bad())?);
    for s in app.sessions.all() {
        let sim = s.sim.read();
        if let Some(p) = sim.feed().post(PostId(post)) {
            if let Some((_, w)) = entities::media_of(p).nth(k) {
                return Ok(svg(entities::media_svg(w)));
            }
        }
    }
    Err(bad())
}
