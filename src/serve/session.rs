//! Live sessions: each a [`Simulation`] behind a lock, a broadcast of the entries each event
//! produces (one message per event, shared, so a stream client costs a cursor, not a copy),
//! and the answers of recent idempotent requests.
//!
//! Invariants: the simulation lock is held only by blocking tasks (event, clock, fork, save)
//! or short reads; the broadcast never waits for a receiver (a receiver that falls
//! `stream_buffer` events behind is told it lagged and is dropped); the idempotency cache
//! holds at most `IDEMPOTENCY_KEYS` answers per session.

use super::error::ApiError;
use crate::sim::Simulation;
use crate::timeline::Post;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events a stream client may fall behind before it is dropped (the default of
/// `ServeConfig::stream_buffer`).
pub const STREAM_BUFFER: usize = 256;
/// Idempotency keys remembered per session (oldest forgotten first).
pub const IDEMPOTENCY_KEYS: usize = 4096;

/// One event's entries as the stream carries them.
pub type Batch = Arc<Vec<Post>>;

/// Where a fork came from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Origin {
    /// The parent session.
    pub parent: String,
    /// Events the parent had applied when forked.
    pub events: usize,
    /// Milliseconds the copy took.
    pub fork_ms: f64,
}

/// A live session.
pub struct Session {
    /// Its id ("s1").
    pub id: String,
    /// The simulation.
    pub sim: RwLock<Simulation>,
    /// Entries of each applied event, to stream clients.
    pub tx: broadcast::Sender<Batch>,
    /// Answers of recent requests by idempotency key: (request body hash, status, body).
    pub idempotency: Mutex<Idempotency>,
    /// Set for a fork.
    pub origin: Option<Origin>,
}

impl Session {
    /// A session over `sim` whose stream clients may fall `stream_buffer` events behind.
    pub fn new(id: String, sim: Simulation, origin: Option<Origin>, stream_buffer: usize) -> Session {
        let (tx, _) = broadcast::channel(stream_buffer.max(1));
        Session { id, sim: RwLock::new(sim), tx, idempotency: Mutex::new(Idempotency::default()), origin }
    }

    /// The stored answer to a request with idempotency key `key` and body hash `hash`
    /// ([`body_hash`]): `Some` to send again, `None` for a new request, a 422 when the key came
    /// with another body.
    pub fn replay(&self, key: Option<&str>, hash: u64) -> Result<Option<Answer>, ApiError> {
        let Some(k) = key else { return Ok(None) };
        match self.idempotency.lock().get(k, hash) {
            Some(Ok(answer)) => Ok(Some(answer)),
            Some(Err(())) => Err(ApiError {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                error: "this Idempotency-Key was used with another body".into(),
                field: Some("Idempotency-Key".into()),
            }),
            None => Ok(None),
        }
    }

    /// The summary the API reports.
    pub fn summary(&self) -> serde_json::Value {
        let sim = self.sim.read();
        let c = sim.population().config();
        serde_json::json!({
            "id": self.id,
            "users": sim.population().len(),
            "seed": c.seed,
            "clock": sim.clock(),
            "events": sim.events().len(),
            "posts": sim.feed().len(),
            "origin": self.origin,
        })
    }
}

/// The hash of a request body the idempotency cache compares.
pub fn body_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A stored answer: status and body.
pub type Answer = (u16, Arc<Vec<u8>>);

/// Bounded memory of answered requests.
#[derive(Default)]
pub struct Idempotency {
    answers: HashMap<String, (u64, u16, Arc<Vec<u8>>)>,
    order: VecDeque<String>,
}

impl Idempotency {
    /// The stored answer for `key`, if any: `Ok` when the body hash matches, `Err` when the key
    /// was used with another body.
    pub fn get(&self, key: &str, hash: u64) -> Option<Result<Answer, ()>> {
        self.answers.get(key).map(|(h, s, b)| if *h == hash { Ok((*s, b.clone())) } else { Err(()) })
    }

    /// Remembers an answer.
    pub fn put(&mut self, key: String, hash: u64, status: u16, body: Arc<Vec<u8>>) {
        if self.answers.insert(key.clone(), (hash, status, body)).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > IDEMPOTENCY_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.answers.remove(&old);
            }
        }
    }
}

/// All live sessions.
#[derive(Default)]
pub struct Sessions {
    map: RwLock<BTreeMap<String, Arc<Session>>>,
    next: Mutex<u64>,
}

impl Sessions {
    /// A fresh id.
    pub fn next_id(&self) -> String {
        let mut n = self.next.lock();
        *n += 1;
        format!("s{n}")
    }

    /// Adds a session (an id restored from disk moves the counter past it).
    pub fn insert(&self, session: Session) -> Arc<Session> {
        if let Some(n) = session.id.strip_prefix('s').and_then(|n| n.parse::<u64>().ok()) {
            let mut next = self.next.lock();
            *next = (*next).max(n);
        }
        let s = Arc::new(session);
        self.map.write().insert(s.id.clone(), s.clone());
        s
    }

    /// A session by id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map.read().get(id).cloned()
    }

    /// Removes a session.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.map.write().remove(id)
    }

    /// Every session, by id.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map.read().values().cloned().collect()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }
}
