//! `chorus serve`: the channel API as a network service (axum on tokio). Sessions keep
//! simulations warm; events go in as the CLI's event lines; timelines, threads, trends and
//! stats come out as JSON with the JSONL export's fields; entries stream as Server-Sent
//! Events and WebSocket messages; forks and comparisons answer "what if". See
//! `docs/SERVE.md` for the routes.
//!
//! Layers, outermost first: response counting, CORS, compression (not for streams), request
//! tracing, a per-request timeout (not for streams), the per-client rate limit (429), bearer
//! auth on `/v1` (401), the body limit (413). Shutdown (SIGTERM or Ctrl-C): stop accepting,
//! let requests in flight finish, save every session under the data dir, return.

pub mod api;
pub mod compare;
pub mod error;
pub mod mastodon;
pub mod metrics;
pub mod openapi;
pub mod session;
pub mod stream;

use crate::sim::Simulation;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use session::{Session, Sessions, STREAM_BUFFER};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The live viewer, compiled in.
const VIEWER: &str = include_str!("viewer.html");

/// How the server runs. Precedence (highest first): command-line flags, environment
/// variables (`CHORUS_SERVE_*`), the config file (`--config`, JSON with these field names),
/// these defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: String,
    /// Where sessions are saved (on request and at shutdown) and restored from at start.
    pub data_dir: PathBuf,
    /// Bearer token every `/v1` request must carry (none: open).
    #[serde(skip_serializing)]
    pub token: Option<String>,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Requests per second each client (IP address) may make; 0 turns the limit off.
    pub rate_per_second: u32,
    /// Requests a client may make at once above the rate.
    pub rate_burst: u32,
    /// Seconds a request may take (streams excepted).
    pub timeout_seconds: u64,
    /// Most live sessions.
    pub max_sessions: usize,
    /// Most users in a session.
    pub max_users: u32,
    /// Restore the sessions saved in the data dir at start.
    pub restore: bool,
    /// Create one session of this many users (seed 42) at start when none was restored
    /// (0: none).
    pub preload_users: u32,
    /// Events a stream client may fall behind before it is dropped (at least 1).
    pub stream_buffer: usize,
    /// Longest status the Mastodon API takes, in characters (longer: 422).
    pub max_status_chars: usize,
    /// Volume knob of every session (`FilterConfig::activity`, 0.01 to 100; default 1): an
    /// event's burst, and so its answer's latency, scales with it.
    pub activity: f32,
    /// Retention: entries each session keeps for reads, the newest, whole events (default
    /// 5,000,000, about 1.3 GB; 0 keeps everything). Older ones are dropped, and reads of
    /// them answer 404.
    pub feed_entries: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("chorus-data"),
            token: None,
            body_limit: 1 << 20,
            rate_per_second: 50_000,
            rate_burst: 10_000,
            timeout_seconds: 120,
            max_sessions: 16,
            max_users: 10_000_000,
            restore: true,
            preload_users: 0,
            stream_buffer: STREAM_BUFFER,
            max_status_chars: mastodon::MAX_CHARACTERS,
            activity: 1.0,
            feed_entries: 5_000_000,
        }
    }
}

/// What every handler shares.
pub struct App {
    /// The configuration.
    pub config: ServeConfig,
    /// Live sessions.
    pub sessions: Sessions,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// The Mastodon API's tokens and accounts.
    pub mastodon: mastodon::Mastodon,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    ready: AtomicBool,
}

impl App {
    /// Adds a session over `sim`, with the server's volume knob, feed retention and stream
    /// buffer.
    pub(crate) fn add_session(&self, id: String, mut sim: Simulation, origin: Option<session::Origin>) -> Arc<Session> {
        sim.pipeline_mut().set_activity(self.config.activity);
        sim.limit_feed((self.config.feed_entries > 0).then_some(self.config.feed_entries));
        self.sessions.insert(Session::new(id, sim, origin, self.config.stream_buffer))
    }

    /// Shared state for `config`, with no sessions yet.
    pub fn new(config: ServeConfig) -> Arc<App> {
        let limiter = NonZeroU32::new(config.rate_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.rate_burst.max(1)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Arc::new(App {
            config,
            sessions: Sessions::default(),
            metrics: Default::default(),
            mastodon: Default::default(),
            limiter,
            ready: AtomicBool::new(false),
        })
    }

    /// Restores every session saved in the data dir (each folder with a `session.json`),
    /// under its folder's name. Returns how many; a folder that fails is logged and skipped.
    pub fn restore(&self) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.config.data_dir) else { return 0 };
        let mut names: Vec<PathBuf> =
            dir.flatten().map(|e| e.path()).filter(|p| p.join("session.json").is_file()).collect();
        names.sort();
        let mut n = 0;
        for path in names {
            let id = path.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            match Simulation::resume(&path) {
                Ok(sim) => {
                    self.add_session(id.clone(), sim, None);
                    tracing::info!(session = %id, "session restored");
                    n += 1;
                }
                Err(e) => tracing::error!(session = %id, error = %e, "saved session not restored"),
            }
        }
        n
    }

    /// Saves every session to `<data dir>/<id>`. Returns how many were saved.
    pub fn save_all(&self) -> usize {
        let mut n = 0;
        if let Err(e) = std::fs::create_dir_all(&self.config.data_dir) {
            tracing::error!(error = %e, dir = %self.config.data_dir.display(), "data dir not created");
            return 0;
        }
        for s in self.sessions.all() {
            let dir = self.config.data_dir.join(&s.id);
            match s.sim.read().save(&dir) {
                Ok(()) => n += 1,
                Err(e) => tracing::error!(session = %s.id, error = %e, "session not saved"),
            }
        }
        n
    }

    /// Marks the server ready (after the restore).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

/// The whole service's router.
pub fn router(app: Arc<App>) -> Router {
    use api::*;
    let s = "/v1/sessions/{id}";
    let v1 = Router::new()
        .route("/v1/sessions", post(create_session).get(list_sessions))
        .route(s, get(get_session).delete(delete_session))
        .route(&format!("{s}/save"), post(save_session))
        .route(&format!("{s}/fork"), post(fork_session))
        .route(&format!("{s}/events"), post(post_event).get(list_events))
        .route(&format!("{s}/clock"), post(post_clock))
        .route(&format!("{s}/users/{{user}}"), get(get_user))
        .route(&format!("{s}/users/{{user}}/home"), get(home))
        .route(&format!("{s}/users/{{user}}/posts"), get(user_posts))
        .route(&format!("{s}/posts/{{post}}"), get(get_post))
        .route(&format!("{s}/posts/{{post}}/thread"), get(thread))
        .route(&format!("{s}/events/{{event}}/posts"), get(event_posts))
        .route(&format!("{s}/trends"), get(trends))
        .route(&format!("{s}/stats"), get(stats))
        .route(&format!("{s}/tokens"), post(mastodon::issue_token))
        .route("/v1/compare", get(compare::compare_json))
        .route("/v1/compare.svg", get(compare::compare_svg))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(app.config.timeout_seconds),
        ))
        .layer(tower_http::compression::CompressionLayer::new());
    let streams =
        Router::new().route(&format!("{s}/stream"), get(stream::sse)).route(&format!("{s}/ws"), get(stream::ws));
    let protected = v1
        .merge(streams)
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        .layer(DefaultBodyLimit::max(app.config.body_limit));
    Router::new()
        .route("/", get(|| async { Html(VIEWER) }))
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .merge(protected)
        .merge(mastodon::router().layer(DefaultBodyLimit::max(app.config.body_limit)))
        .fallback(|| async { ApiError::not_found("path", "no such route (see /openapi.json)") })
        .layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::cors::CorsLayer::permissive())
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .with_state(app)
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        axum::Json(serde_json::json!({"status": "ready", "sessions": app.sessions.len()})).into_response()
    } else {
        ApiError::status(StatusCode::SERVICE_UNAVAILABLE, "restoring saved sessions").into_response()
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render(app.sessions.len()))
        .into_response()
}

async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    app.metrics.responded(res.status().as_u16());
    res
}

/// 429 for a client over its rate (keyed by IP address).
async fn rate_limit(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &app.limiter {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if limiter.check_key(&ip).is_err() {
            app.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            let mut res =
                ApiError::status(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded: slow down").into_response();
            res.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
            return res;
        }
    }
    next.run(req).await
}

/// 401 unless the request carries the configured token (`Authorization: Bearer`, or
/// `?token=` for browsers' EventSource), compared in constant time.
async fn auth(State(app): State<Arc<App>>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(token) = &app.config.token {
        let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let query = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.to_string()));
        let given = bearer.map(str::to_string).or(query);
        let ok = given.is_some_and(|g| subtle::ConstantTimeEq::ct_eq(g.as_bytes(), token.as_bytes()).into());
        if !ok {
            let mut res = ApiError {
                status: StatusCode::UNAUTHORIZED,
                error: "missing or wrong bearer token".into(),
                field: Some("Authorization".into()),
            }
            .into_response();
            res.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    next.run(req).await
}

/// Serves until SIGTERM or Ctrl-C, then saves every session. `on_listen` hears the bound
/// address (port 0 picks a free one).
pub async fn run(config: ServeConfig, on_listen: impl FnOnce(SocketAddr)) -> crate::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| crate::Error::io(PathBuf::from(&config.listen), e))?;
    let addr = listener.local_addr().map_err(|e| crate::Error::io(PathBuf::from(&config.listen), e))?;
    let restore = config.restore;
    let app = App::new(config);
    on_listen(addr);
    tracing::info!(%addr, "listening");
    if restore {
        let a = app.clone();
        let n = tokio::task::spawn_blocking(move || a.restore()).await.unwrap_or(0);
        tracing::info!(sessions = n, "restored saved sessions");
    }
    if app.config.preload_users > 0 && app.sessions.is_empty() {
        let users = app.config.preload_users;
        let sim = tokio::task::spawn_blocking(move || Simulation::generate(users, 42, Default::default()))
            .await
            .map_err(|e| crate::Error::Config(e.to_string()))??;
        let s = app.add_session(app.sessions.next_id(), sim, None);
        tracing::info!(session = %s.id, users, "session preloaded");
    }
    app.set_ready();
    let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| crate::Error::io(PathBuf::from(addr.to_string()), e))?;
    let a = app.clone();
    let saved = tokio::task::spawn_blocking(move || a.save_all()).await.unwrap_or(0);
    tracing::info!(sessions = saved, dir = %app.config.data_dir.display(), "saved sessions; bye");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining requests, then saving sessions");
}
