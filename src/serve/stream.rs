//! Live entries as Server-Sent Events and WebSocket messages, filtered by event, tag or
//! author. A client reads from the session's broadcast and holds the shared batch and a
//! position in it; one that falls the session's stream buffer (`stream_buffer` events, default
//! [`super::session::STREAM_BUFFER`]) behind, or does not take a WebSocket message
//! within [`SEND_TIMEOUT`], is dropped with a logged reason. The simulation never waits.

use super::api::session;
use super::error::ApiError;
use super::session::Batch;
use super::App;
use crate::timeline::Post;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long a WebSocket client may take to accept one message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client asked to see (all given filters must match).
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    event: Option<String>,
    tag: Option<String>,
    user: Option<u32>,
}

impl Filter {
    fn parse(q: &HashMap<String, String>) -> Result<Filter, ApiError> {
        let user = q
            .get("user")
            .map(|u| u.parse::<u32>().map_err(|_| ApiError::bad("user", "a user id is a number")))
            .transpose()?;
        let tag = q.get("tag").map(|t| t.trim_start_matches('#').to_lowercase());
        Ok(Filter { event: q.get("event").cloned(), tag, user })
    }

    fn admits(&self, p: &Post) -> bool {
        self.event.as_ref().is_none_or(|e| *e == p.event)
            && self.user.is_none_or(|u| u == p.author.0)
            && self
                .tag
                .as_ref()
                .is_none_or(|t| p.text.as_deref().is_some_and(|text| crate::sim::feed::hashtags(text).any(|h| h == *t)))
    }
}

/// Counts a connected client while it lives.
pub(crate) struct Client(Arc<App>);

impl Client {
    pub(crate) fn new(app: Arc<App>) -> Client {
        app.metrics.stream_clients.fetch_add(1, Ordering::Relaxed);
        Client(app)
    }

    pub(crate) fn dropped(&self, session: &str, reason: &str) {
        self.0.metrics.stream_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(session, reason, "stream client dropped");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.0.metrics.stream_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The session and the filter a stream request names.
fn open(app: &App, id: &str, q: &HashMap<String, String>) -> Result<(Arc<super::session::Session>, Filter), ApiError> {
    Ok((session(app, id)?, Filter::parse(q)?))
}

/// The entries a client admits, one at a time as `(batch, index)`: a client holds the shared
/// batch and a position, never a copy of what it has yet to send. Ends (with a logged reason)
/// when the client falls the session's stream buffer behind, or when the session goes.
pub(crate) fn entries(
    rx: tokio::sync::broadcast::Receiver<Batch>,
    filter: Filter,
    client: Client,
    session: String,
) -> impl futures_util::Stream<Item = (Batch, usize)> + Send {
    let state = (rx, None::<(Batch, usize)>, filter, client, session);
    futures_util::stream::unfold(state, |(mut rx, mut at, filter, client, session)| async move {
        loop {
            if let Some((batch, i)) = at.take() {
                if let Some(k) = (i..batch.len()).find(|&k| filter.admits(&batch[k])) {
                    at = Some((batch.clone(), k + 1));
                    return Some(((batch, k), (rx, at, filter, client, session)));
                }
            }
            match rx.recv().await {
                Ok(batch) => at = Some((batch, 0)),
                Err(RecvError::Lagged(n)) => {
                    client.dropped(&session, &format!("fell {n} events behind"));
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

/// `GET /v1/sessions/{id}/stream` (SSE, one `post` event per entry).
pub async fn sse(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (s, filter) = match open(&app, &id, &q) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let client = Client::new(app.clone());
    let hello = futures_util::stream::once(async { Ok::<_, std::convert::Infallible>(Event::default().comment("ok")) });
    let posts = entries(s.tx.subscribe(), filter, client, id).map(|(batch, i)| {
        Ok(Event::default()
            .event("post")
            .json_data(&batch[i])
            .unwrap_or_else(|_| Event::default().comment("unencodable")))
    });
    let stream = hello.chain(posts);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// `GET /v1/sessions/{id}/ws` (WebSocket, one text message of Post JSON per entry).
pub async fn ws(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (s, filter) = match open(&app, &id, &q) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let rx = s.tx.subscribe();
    upgrade.on_upgrade(move |socket| pump(socket, rx, filter, Client::new(app), id))
}

async fn pump(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<Batch>,
    filter: Filter,
    client: Client,
    id: String,
) {
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Ok(batch) => {
                    for p in batch.iter().filter(|p| filter.admits(p)) {
                        let Ok(text) = serde_json::to_string(p) else { continue };
                        match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                client.dropped(&id, "a message waited over 5 s");
                                return;
                            }
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    client.dropped(&id, &format!("fell {n} events behind"));
                    let frame = CloseFrame { code: 1008, reason: "fell behind the stream".into() };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
