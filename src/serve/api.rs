//! The `/v1` handlers: sessions, events, clock, reads, fork and save. Each parses its own
//! inputs so that every refusal names its field (see [`super::error`]).

use super::error::{parse_body, ApiError};
use super::session::{Origin, Session};
use super::App;
use crate::ids::UserId;
use crate::sim::{Page, Simulation};
use crate::timeline::{Post, PostId};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

type Q = Query<HashMap<String, String>>;
type Res = Result<Response, ApiError>;

/// The session named in the path, or 404 naming `session`.
pub fn session(app: &App, id: &str) -> Result<Arc<Session>, ApiError> {
    app.sessions
        .get(id)
        .ok_or_else(|| ApiError::not_found("session", format!("no session {:?}", super::error::cut(id, 40))))
}

/// The body of a request, or the extractor's refusal as an API error (413 for too large).
pub fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| ApiError { status: e.status(), error: e.body_text(), field: Some("body".into()) })
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn num<T: std::str::FromStr>(q: &HashMap<String, String>, name: &str) -> Result<Option<T>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ApiError::bad(name, format!("not a valid number: {:?}", super::error::cut(v, 40))))
        })
        .transpose()
}

/// The page a list read asks for; a cursor must name a post of this session.
fn page(q: &HashMap<String, String>, sim: &Simulation) -> Result<Page, ApiError> {
    let limit = num::<usize>(q, "limit")?.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad("limit", "must be 1..=200"));
    }
    let page = Page { max_id: num(q, "max_id")?, since_id: num(q, "since_id")?, min_id: num(q, "min_id")?, limit };
    for (name, id) in [("max_id", page.max_id), ("since_id", page.since_id)] {
        if let Some(id) = id {
            if sim.feed().post(PostId(id)).is_none() {
                return Err(ApiError::bad(
                    name,
                    "not a post of this session (a cursor is the id of a post in this session's timeline)",
                ));
            }
        }
    }
    Ok(page)
}

fn user(sim: &Simulation, raw: &str) -> Result<UserId, ApiError> {
    let u: u32 = raw.parse().map_err(|_| ApiError::bad("user", "a user id is a number"))?;
    if u as usize >= sim.population().len() {
        return Err(ApiError::not_found("user", format!("the session has users 0..{}", sim.population().len())));
    }
    Ok(UserId(u))
}

fn list(posts: Vec<&Post>) -> Response {
    let next = posts.last().map(|p| p.id.0);
    Json(serde_json::json!({ "posts": posts, "next_max_id": next })).into_response()
}

/// Times a read into the metrics.
fn timed<T>(app: &App, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    app.metrics.read_took(t.elapsed());
    out
}

/// Runs blocking work (a simulation step) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    users: Option<u32>,
    seed: Option<u64>,
    state: Option<String>,
}

/// A save name: letters, digits, `-` and `_` (it names a folder under the data dir).
fn save_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(field, "a name is 1-64 letters, digits, '-' or '_'"))
    }
}

/// `POST /v1/sessions`
pub async fn create_session(State(app): State<Arc<App>>, b: Result<Bytes, BytesRejection>) -> Res {
    let req: NewSession = parse_body(&body(b)?)?;
    if app.sessions.len() >= app.config.max_sessions {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            error: format!("the server holds its maximum of {} sessions: delete one first", app.config.max_sessions),
            field: None,
        });
    }
    let sim = if let Some(name) = req.state {
        save_name("state", &name)?;
        let dir = app.config.data_dir.join(&name);
        if !dir.join("session.json").exists() {
            return Err(ApiError::not_found("state", format!("no saved session {name:?} in the data dir")));
        }
        blocking(move || Simulation::resume(&dir)).await?.map_err(|e| ApiError::bad("state", e.to_string()))?
    } else {
        let users = req.users.unwrap_or(100_000);
        if users < 2 || users > app.config.max_users {
            return Err(ApiError::bad("users", format!("must be 2..={}", app.config.max_users)));
        }
        let seed = req.seed.unwrap_or(42);
        blocking(move || Simulation::generate(users, seed, Default::default())).await?.map_err(ApiError::internal)?
    };
    let s = app.add_session(app.sessions.next_id(), sim, None);
    tracing::info!(session = %s.id, users = s.sim.read().population().len(), "session created");
    Ok((StatusCode::CREATED, Json(s.summary())).into_response())
}

/// `GET /v1/sessions`
pub async fn list_sessions(State(app): State<Arc<App>>) -> Res {
    let all: Vec<_> = app.sessions.all().iter().map(|s| s.summary()).collect();
    Ok(Json(serde_json::json!({ "sessions": all })).into_response())
}

/// `GET /v1/sessions/{id}`
pub async fn get_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Res {
    Ok(Json(session(&app, &id)?.summary()).into_response())
}

/// `DELETE /v1/sessions/{id}`
pub async fn delete_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Res {
    app.sessions.remove(&id).ok_or_else(|| ApiError::not_found("session", "no such session"))?;
    app.mastodon.forget(&id);
    tracing::info!(session = %id, "session deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveReq {
    name: Option<String>,
}

/// `POST /v1/sessions/{id}/save`
pub async fn save_session(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Res {
    let req: SaveReq = parse_body(&body(b)?)?;
    let s = session(&app, &id)?;
    let name = req.name.unwrap_or_else(|| id.clone());
    save_name("name", &name)?;
    let dir = app.config.data_dir.join(&name);
    let path = dir.clone();
    blocking(move || {
        std::fs::create_dir_all(path.parent().unwrap_or(&path)).map_err(|e| e.to_string())?;
        s.sim.read().save(&path).map_err(|e| e.to_string())
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "name": name, "path": dir.display().to_string() })).into_response())
}

/// `POST /v1/sessions/{id}/fork`
pub async fn fork_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Res {
    if app.sessions.len() >= app.config.max_sessions {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            "the server holds its maximum of sessions: delete one first",
        ));
    }
    let parent = session(&app, &id)?;
    let p = parent.clone();
    let (sim, events, ms) = blocking(move || {
        let t = Instant::now();
        let sim = p.sim.read();
        let events = sim.events().len();
        let copy = sim.fork();
        (copy, events, t.elapsed().as_secs_f64() * 1e3)
    })
    .await?;
    let origin = Origin { parent: id, events, fork_ms: ms };
    let s = app.add_session(app.sessions.next_id(), sim, Some(origin));
    tracing::info!(session = %s.id, parent = %parent.id, fork_ms = ms, "session forked");
    Ok((StatusCode::CREATED, Json(s.summary())).into_response())
}

/// `POST /v1/sessions/{id}/events`: applies one event line; answers with its first wave
/// (entries within `wave` game seconds of the event, default 600) and the total.
pub async fn post_event(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: Q,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Res {
    let bytes = body(b)?;
    let s = session(&app, &id)?;
    let wave = num::<i64>(&q, "wave")?.unwrap_or(600);
    if wave < 0 {
        return Err(ApiError::bad("wave", "must be ≥ 0"));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().map_err(|_| ApiError::bad("Idempotency-Key", "must be visible ASCII"))?;
            if k.is_empty() || k.len() > 200 {
                return Err(ApiError::bad("Idempotency-Key", "must be 1-200 characters"));
            }
            Some(k.to_string())
        }
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::bad("body", format!("not UTF-8: {e}")))?.to_string();
    let hash = super::session::body_hash(text.as_bytes());
    let app2 = app.clone();
    let (status, out) = blocking(move || -> Result<(u16, Arc<Vec<u8>>), ApiError> {
        let started = Instant::now();
        let mut sim = s.sim.write();
        if let Some(answer) = s.replay(key.as_deref(), hash)? {
            return Ok(answer);
        }
        let applied = match sim.apply_line(&text) {
            Ok(a) => a,
            Err(e) => {
                app2.metrics.events_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let field = super::error::field_of(&e.field, &e.error);
                let status = if field == "id" && e.error.contains("already applied") {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::BAD_REQUEST
                };
                return Err(ApiError { status, error: e.error, field: Some(field) });
            }
        };
        let until = applied.info.time.saturating_add(wave);
        let out = Arc::new(event_answer(&applied, until, wave).map_err(ApiError::internal)?);
        let n = applied.posts.len() as u64;
        // Sent under the lock: streams see events in the order they were applied.
        let _ = s.tx.send(Arc::new(applied.posts));
        drop(sim);
        if let Some(k) = key {
            s.idempotency.lock().put(k, hash, 201, out.clone());
        }
        app2.metrics.event_applied(n, started.elapsed());
        Ok((201, out))
    })
    .await??;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
    Ok(json_response(status, out.as_ref().clone()))
}

/// The answer to an event: its classification, its totals and the first wave (`time <=
/// until`), the posts written by the export's own JSON writer (no value tree in between).
fn event_answer(applied: &crate::sim::Applied, until: i64, wave: i64) -> serde_json::Result<Vec<u8>> {
    let head = serde_json::json!({
        "event": applied.info.id,
        "index": applied.info.index,
        "time": applied.info.time,
        "category": applied.info.category,
        "valence": applied.info.valence,
        "kind": applied.info.kind,
        "sides": applied.info.sides,
        "reactions": applied.info.reactions,
        "total": applied.posts.len(),
        "wave": wave,
    });
    let mut out = serde_json::to_vec(&head)?;
    out.pop(); // the closing brace
    out.extend_from_slice(b",\"posts\":[");
    let mut first = true;
    for p in applied.posts.iter().filter(|p| p.time.0 <= until) {
        if !first {
            out.push(b',');
        }
        first = false;
        crate::timeline::json_line(p, &mut out);
        if out.last() == Some(&b'\n') {
            out.pop();
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockReq {
    to: Option<i64>,
    advance: Option<i64>,
}

/// `POST /v1/sessions/{id}/clock`
pub async fn post_clock(State(app): State<Arc<App>>, Path(id): Path<String>, b: Result<Bytes, BytesRejection>) -> Res {
    let req: ClockReq = parse_body(&body(b)?)?;
    let s = session(&app, &id)?;
    let limit = 1i64 << 40;
    let clock = blocking(move || {
        let mut sim = s.sim.write();
        let to = match (req.to, req.advance) {
            (Some(t), None) if (0..limit).contains(&t) => t,
            (None, Some(a)) if (0..limit).contains(&a) => sim.clock().saturating_add(a),
            (Some(_), None) => return Err(ApiError::bad("to", "a game time 0..2^40 seconds")),
            (None, Some(_)) => return Err(ApiError::bad("advance", "0..2^40 seconds")),
            _ => return Err(ApiError::bad("body", "give exactly one of \"to\" and \"advance\"")),
        };
        Ok(sim.advance_to(to))
    })
    .await??;
    Ok(Json(serde_json::json!({ "clock": clock })).into_response())
}

/// `GET /v1/sessions/{id}/users/{user}/home`
pub async fn home(State(app): State<Arc<App>>, Path((id, u)): Path<(String, String)>, q: Q) -> Res {
    let s = session(&app, &id)?;
    timed(&app, || {
        let sim = s.sim.read();
        let user = user(&sim, &u)?;
        let page = page(&q, &sim)?;
        Ok(list(sim.home(user, page)))
    })
}

/// `GET /v1/sessions/{id}/users/{user}`
pub async fn get_user(State(app): State<Arc<App>>, Path((id, u)): Path<(String, String)>) -> Res {
    let s = session(&app, &id)?;
    let sim = s.sim.read();
    let user = user(&sim, &u)?;
    let graph = sim.population().graph();
    Ok(Json(serde_json::json!({
        "id": user.0,
        "handle": sim.population().handle(user),
        "followers": graph.in_degree(user),
        "following": sim.following(user).len(),
        "posts": sim.feed().by_author(user, Page::first(usize::MAX)).len(),
    }))
    .into_response())
}

/// `GET /v1/sessions/{id}/users/{user}/posts`
pub async fn user_posts(State(app): State<Arc<App>>, Path((id, u)): Path<(String, String)>, q: Q) -> Res {
    let s = session(&app, &id)?;
    timed(&app, || {
        let sim = s.sim.read();
        let user = user(&sim, &u)?;
        let page = page(&q, &sim)?;
        Ok(list(sim.feed().by_author(user, page)))
    })
}

fn post_id(raw: &str) -> Result<PostId, ApiError> {
    raw.parse().map(PostId).map_err(|_| ApiError::bad("post", "a post id is a number"))
}

/// `GET /v1/sessions/{id}/posts/{post}`
pub async fn get_post(State(app): State<Arc<App>>, Path((id, p)): Path<(String, String)>) -> Res {
    let s = session(&app, &id)?;
    let sim = s.sim.read();
    let post =
        sim.feed().post(post_id(&p)?).ok_or_else(|| ApiError::not_found("post", "no such post in this session"))?;
    Ok(Json(post).into_response())
}

/// `GET /v1/sessions/{id}/posts/{post}/thread`
pub async fn thread(State(app): State<Arc<App>>, Path((id, p)): Path<(String, String)>) -> Res {
    let s = session(&app, &id)?;
    let sim = s.sim.read();
    let t =
        sim.feed().thread(post_id(&p)?).ok_or_else(|| ApiError::not_found("post", "no such post in this session"))?;
    Ok(Json(t).into_response())
}

/// `GET /v1/sessions/{id}/events`
pub async fn list_events(State(app): State<Arc<App>>, Path(id): Path<String>) -> Res {
    let s = session(&app, &id)?;
    let sim = s.sim.read();
    Ok(Json(serde_json::json!({ "events": sim.events() })).into_response())
}

/// `GET /v1/sessions/{id}/events/{event}/posts`
pub async fn event_posts(State(app): State<Arc<App>>, Path((id, e)): Path<(String, String)>, q: Q) -> Res {
    let s = session(&app, &id)?;
    timed(&app, || {
        let sim = s.sim.read();
        if !sim.events().iter().any(|x| x.id == e) {
            return Err(ApiError::not_found("event", "no such event in this session"));
        }
        let page = page(&q, &sim)?;
        Ok(list(sim.feed().by_event(&e, page)))
    })
}

/// `GET /v1/sessions/{id}/trends`
pub async fn trends(State(app): State<Arc<App>>, Path(id): Path<String>, q: Q) -> Res {
    let s = session(&app, &id)?;
    let limit = num::<usize>(&q, "limit")?.unwrap_or(10).min(200);
    let sim = s.sim.read();
    let tags: Vec<_> =
        sim.feed().trending(limit).into_iter().map(|(t, n)| serde_json::json!({"tag": t, "posts": n})).collect();
    Ok(Json(serde_json::json!({ "tags": tags })).into_response())
}

/// `GET /v1/sessions/{id}/stats`
pub async fn stats(State(app): State<Arc<App>>, Path(id): Path<String>) -> Res {
    let s = session(&app, &id)?;
    let sim = s.sim.read();
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut sentiment: std::collections::BTreeMap<String, usize> = Default::default();
    let mut source: std::collections::BTreeMap<&str, usize> = Default::default();
    for p in sim.feed().iter() {
        *kinds.entry(p.kind.name()).or_default() += 1;
        if p.text.is_some() {
            *sentiment.entry(format!("{:?}", p.sentiment).to_lowercase()).or_default() += 1;
            *source.entry(p.source.name()).or_default() += 1;
        }
    }
    let (follows, unfollows) = sim.pipeline().state().follows().counts();
    Ok(Json(serde_json::json!({
        "users": sim.population().len(),
        "clock": sim.clock(),
        "events": sim.events().len(),
        "posts": sim.feed().len(),
        "by_kind": kinds,
        "by_sentiment": sentiment,
        "by_source": source,
        "follows": follows,
        "unfollows": unfollows,
        "feed_bytes": sim.feed().bytes(),
        "state_bytes": sim.pipeline().state().bytes(),
    }))
    .into_response())
}
