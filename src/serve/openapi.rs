//! The machine-readable OpenAPI 3.1 document served at `/openapi.json`, built with utoipa
//! from one table of the routes (method, path, summary, parameters, body, answers).

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Required, ResponseBuilder};

/// (method, path, summary, query parameters, takes a JSON body, success status).
type Route = (HttpMethod, &'static str, &'static str, &'static [&'static str], bool, &'static str);

const PAGE: &[&str] = &["limit", "max_id", "since_id", "min_id"];
const FILTER: &[&str] = &["event", "tag", "user", "token"];

/// Every route of the service.
pub const ROUTES: &[Route] = &[
    (HttpMethod::Post, "/v1/sessions", "Create a session: {users, seed} or {state} (a saved name)", &[], true, "201"),
    (HttpMethod::Get, "/v1/sessions", "List sessions", &[], false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}", "One session", &[], false, "200"),
    (HttpMethod::Delete, "/v1/sessions/{id}", "Delete a session", &[], false, "204"),
    (HttpMethod::Post, "/v1/sessions/{id}/save", "Save a session under the data dir: {name}", &[], true, "200"),
    (HttpMethod::Post, "/v1/sessions/{id}/fork", "Copy a session for a what-if", &[], false, "201"),
    (
        HttpMethod::Post,
        "/v1/sessions/{id}/events",
        "Apply one event line (Idempotency-Key header); the first wave",
        &["wave"],
        true,
        "201",
    ),
    (HttpMethod::Post, "/v1/sessions/{id}/clock", "Advance game time: {to} or {advance}", &[], true, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/users/{user}", "A user", &[], false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/users/{user}/home", "A user's home timeline", PAGE, false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/users/{user}/posts", "A user's own entries", PAGE, false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/posts/{post}", "One entry", &[], false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/posts/{post}/thread", "The reply tree under an entry", &[], false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/events", "The events applied", &[], false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/events/{event}/posts", "An event's entries", PAGE, false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/trends", "Trending hashtags", &["limit"], false, "200"),
    (HttpMethod::Get, "/v1/sessions/{id}/stats", "Counts by kind, sentiment and source", &[], false, "200"),
    (
        HttpMethod::Post,
        "/v1/sessions/{id}/tokens",
        "A Mastodon API token: {} for the player ({handle, display_name}), {account} for a user",
        &[],
        true,
        "201",
    ),
    (
        HttpMethod::Get,
        "/v1/sessions/{id}/stream",
        "Server-Sent Events, one `post` event per entry",
        FILTER,
        false,
        "200",
    ),
    (HttpMethod::Get, "/v1/sessions/{id}/ws", "WebSocket, one Post JSON message per entry", FILTER, false, "101"),
    (HttpMethod::Get, "/v1/compare", "What-if comparison of two sessions (JSON)", &["a", "b"], false, "200"),
    (HttpMethod::Get, "/v1/compare.svg", "What-if comparison as an SVG chart", &["a", "b"], false, "200"),
    (HttpMethod::Get, "/health", "Liveness", &[], false, "200"),
    (HttpMethod::Get, "/ready", "Readiness", &[], false, "200"),
    (HttpMethod::Get, "/metrics", "Prometheus metrics", &[], false, "200"),
    // The Mastodon-compatible subset (docs/MASTODON.md has every route).
    (HttpMethod::Get, "/api/v2/instance", "Mastodon: the instance document", &[], false, "200"),
    (HttpMethod::Get, "/api/v1/timelines/home", "Mastodon: the token account's home", MASTODON_PAGE, false, "200"),
    (HttpMethod::Get, "/api/v1/timelines/public", "Mastodon: every status", MASTODON_PAGE, false, "200"),
    (HttpMethod::Post, "/api/v1/statuses", "Mastodon: post a status (an event)", &[], true, "200"),
    (HttpMethod::Get, "/api/v1/statuses/{status}/context", "Mastodon: a status's thread", &[], false, "200"),
    (HttpMethod::Get, "/api/v1/accounts/{account}", "Mastodon: an account", &[], false, "200"),
    (HttpMethod::Get, "/api/v1/streaming", "Mastodon: WebSocket streaming (subscribe messages)", &[], false, "101"),
];

const MASTODON_PAGE: &[&str] = &["limit", "max_id", "since_id", "min_id"];

/// The document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (method, path, summary, query, body, ok) in ROUTES {
        let (path, summary, body, ok) = (*path, *summary, *body, *ok);
        let mut op =
            OperationBuilder::new().summary(Some(summary)).response(ok, ResponseBuilder::new().description("success"));
        for err in ["400", "401", "404", "413", "429"] {
            op = op.response(err, ResponseBuilder::new().description("{\"error\", \"field\"}"));
        }
        for seg in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            op = op
                .parameter(ParameterBuilder::new().name(seg).parameter_in(ParameterIn::Path).required(Required::True));
        }
        for q in query.iter() {
            op = op
                .parameter(ParameterBuilder::new().name(*q).parameter_in(ParameterIn::Query).required(Required::False));
        }
        if body {
            op = op.request_body(Some(
                RequestBodyBuilder::new().content("application/json", ContentBuilder::new().build()).build(),
            ));
        }
        paths = paths.path(path, PathItem::new(method.clone(), op));
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("chorus serve").version(env!("CARGO_PKG_VERSION")).build())
        .paths(paths)
        .build()
}
