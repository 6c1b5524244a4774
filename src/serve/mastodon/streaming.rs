//! Mastodon streaming: `GET /api/v1/streaming/{public,user,hashtag}` as Server-Sent Events
//! (`event: update`, `data: <Status JSON>`) and `GET /api/v1/streaming` as a WebSocket that
//! takes `{"type": "subscribe", "stream": "public"}` messages (and `?stream=` at connect) and
//! sends `{"stream": ["public"], "event": "update", "payload": "<Status JSON>"}`.
//!
//! Both ride the session's broadcast through `serve::stream::entries`, so a client
//! holds the shared batch and a position, and one that falls behind is dropped with a logged
//! reason, as on the `/v1` streams. The token may come as `Authorization: Bearer`,
//! `?access_token=` or (browsers and masto) the `Sec-WebSocket-Protocol` header, which the
//! answer then echoes.

use super::entities::{self, Ctx, Marks};
use super::{base, caller, Caller};
use crate::serve::error::ApiError;
use crate::serve::stream::{entries, Client, Filter, SEND_TIMEOUT};
use crate::serve::App;
use crate::sim::Simulation;
use crate::timeline::Post;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// One subscription.
#[derive(Clone, Debug)]
enum Sub {
    Public,
    Hashtag(String),
    /// Statuses by whom the account follows and replies to the account's own.
    User {
        me: u32,
        following: Arc<HashSet<u32>>,
    },
}

impl Sub {
    fn parse(c: &Caller, stream: &str, tag: Option<&str>) -> Result<Sub, ApiError> {
        match stream {
            "public" | "public:local" | "public:remote" | "public/local" | "public/remote" => Ok(Sub::Public),
            "hashtag" | "hashtag:local" | "hashtag/local" => match tag {
                Some(t) if !t.trim_start_matches('#').is_empty() => {
                    Ok(Sub::Hashtag(t.trim_start_matches('#').to_lowercase()))
                }
                _ => Err(ApiError::bad("tag", "a hashtag stream needs a tag")),
            },
            "user" | "user:notification" => {
                let following: HashSet<u32> = if c.account == c.accounts.player.id {
                    c.accounts.player.home().into_iter().collect()
                } else {
                    c.session.sim.read().following(crate::ids::UserId(c.account)).into_iter().collect()
                };
                Ok(Sub::User { me: c.account, following: Arc::new(following) })
            }
            other => Err(ApiError::not_found("stream", format!("no stream {:?}", crate::serve::error::cut(other, 40)))),
        }
    }

    /// The stream names a WebSocket message carries.
    fn names(&self, asked: &str) -> Vec<String> {
        match self {
            Sub::Hashtag(t) => vec![asked.to_string(), t.clone()],
            _ => vec![asked.to_string()],
        }
    }

    fn admits(&self, p: &Post, sim: &Simulation) -> bool {
        match self {
            Sub::Public => true,
            Sub::Hashtag(t) => p.text.as_deref().is_some_and(|x| crate::sim::feed::hashtags(x).any(|h| h == *t)),
            Sub::User { me, following } => {
                following.contains(&p.author.0)
                    || p.parent.and_then(|q| sim.feed().post(q)).is_some_and(|q| q.author.0 == *me && p.author.0 != *me)
            }
        }
    }
}

/// The Status JSON of `p` for the subscriptions it matches (their indexes); each
/// subscription with the stream name it was asked by.
fn encode(c: &Caller, base: &str, subs: &[(Sub, String)], p: &Post) -> Option<(String, Vec<usize>)> {
    if !entities::is_status(p) {
        return None;
    }
    let sim = c.session.sim.read();
    let hits: Vec<usize> = subs.iter().enumerate().filter(|(_, s)| s.0.admits(p, &sim)).map(|(i, _)| i).collect();
    if hits.is_empty() {
        return None;
    }
    let marks = Marks::default();
    let ctx = Ctx { sim: &sim, base, player: &c.accounts.player, marks: &marks, cache: &c.accounts.cache };
    let mut out = Vec::new();
    entities::write_status(&ctx, p, &mut out);
    Some((String::from_utf8(out).ok()?, hits))
}

fn open_sse(app: Arc<App>, c: Caller, headers: &HeaderMap, sub: Sub) -> Response {
    let rx = c.session.tx.subscribe();
    let client = Client::new(app);
    let base = base(headers);
    let session = c.session.id.clone();
    let c = Arc::new(c);
    let subs = Arc::new(vec![(sub, String::new())]);
    let posts =
        entries(rx, Filter::default(), client, session).filter_map(move |(batch, i)| {
            let out = encode(&c, &base, &subs, &batch[i]);
            async move {
                out.map(|(json, _)| Ok::<_, std::convert::Infallible>(Event::default().event("update").data(json)))
            }
        });
    Sse::new(posts).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("thump")).into_response()
}

/// `GET /api/v1/streaming/{stream}` (SSE): `public`, `user`, `hashtag?tag=`.
pub async fn sse(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(stream): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let c = caller(&app, &headers, &uri)?;
    let sub = Sub::parse(&c, &stream, q.get("tag").map(String::as_str))?;
    Ok(open_sse(app, c, &headers, sub))
}

/// `GET /api/v1/streaming/{stream}/{sub}` (SSE): `public/local`, `public/remote`,
/// `hashtag/local` (one instance: the same as without the suffix).
pub async fn sse_sub(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((stream, sub)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let c = caller(&app, &headers, &uri)?;
    let sub = Sub::parse(&c, &format!("{stream}/{sub}"), q.get("tag").map(String::as_str))?;
    Ok(open_sse(app, c, &headers, sub))
}

/// `GET /api/v1/streaming` (WebSocket).
pub async fn websocket(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let c = caller(&app, &headers, &uri)?;
    let mut subs = Vec::new();
    if let Some(stream) = q.get("stream") {
        subs.push((Sub::parse(&c, stream, q.get("tag").map(String::as_str))?, stream.clone()));
    }
    let protocol = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|p| p.split(',').next())
        .map(|p| p.trim().to_string());
    let base = base(&headers);
    let upgrade = match protocol {
        Some(p) => upgrade.protocols([p]),
        None => upgrade,
    };
    Ok(upgrade.on_upgrade(move |socket| pump(socket, app, c, base, subs)))
}

#[derive(serde::Deserialize)]
struct Command {
    #[serde(rename = "type")]
    kind: String,
    stream: Option<String>,
    tag: Option<String>,
}

async fn pump(mut socket: WebSocket, app: Arc<App>, c: Caller, base: String, mut subs: Vec<(Sub, String)>) {
    let rx = c.session.tx.subscribe();
    let session = c.session.id.clone();
    let mut posts = Box::pin(entries(rx, Filter::default(), Client::new(app), session));
    loop {
        tokio::select! {
            item = posts.next() => {
                let Some((batch, i)) = item else {
                    let frame = CloseFrame { code: 1008, reason: "fell behind the stream".into() };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
                    return;
                };
                let Some((json, hits)) = encode(&c, &base, &subs, &batch[i]) else { continue };
                for k in hits {
                    let msg = serde_json::json!({"stream": subs[k].0.names(&subs[k].1), "event": "update", "payload": json});
                    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(msg.to_string().into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            tracing::warn!(session = %c.session.id, reason = "a message waited over 5 s", "stream client dropped");
                            return;
                        }
                    }
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => {
                    let Ok(cmd) = serde_json::from_str::<Command>(&t) else { continue };
                    let Some(stream) = cmd.stream else { continue };
                    match cmd.kind.as_str() {
                        "subscribe" => match Sub::parse(&c, &stream, cmd.tag.as_deref()) {
                            Ok(sub) => subs.push((sub, stream)),
                            Err(e) => {
                                let msg = serde_json::json!({"error": e.error, "status": e.status.as_u16()});
                                let _ = socket.send(Message::Text(msg.to_string().into())).await;
                            }
                        },
                        "unsubscribe" => {
                            let tag = cmd.tag.map(|t| t.trim_start_matches('#').to_lowercase());
                            subs.retain(|(s, name)| !(*name == stream && match s {
                                Sub::Hashtag(t) => tag.as_ref().is_none_or(|x| x == t),
                                _ => true,
                            }));
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    }
}
