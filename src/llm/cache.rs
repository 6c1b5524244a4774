//! The LLM output cache (moka): generated texts kept per (event class, persona archetype,
//! action, mood) so one good generation serves several similar users, re-styled per user.
//!
//! Expiry is usage-aware: an entry lives `ttl` after it is written, and each read extends its
//! life to `ttl * min(1 + reads, 8)`, so popular entries outlive ones nobody asks for.
//!
//! Invariant: a cached text was accepted by `prompt::check_text` when it was generated; a
//! lookup picks among an entry's texts by a hash of (post, user), never by time or thread.

use crate::events::Category;
use crate::templates::Sentiment;
use crate::timeline::PostKind;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cache settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Entries kept at most (default 10,000).
    pub capacity: u64,
    /// Base time to live in seconds (default 3,600).
    pub ttl_seconds: u64,
    /// Texts kept per entry (default 8).
    pub texts_per_entry: usize,
    /// Whether lookups are made at all (default true).
    pub enabled: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { capacity: 10_000, ttl_seconds: 3_600, texts_per_entry: 8, enabled: true }
    }
}

/// What makes two requests similar enough to share a text: the same event (its id, text and
/// frame, hashed: [`super::route::EventInfo::key`]), the same content the prompt gives the
/// item beyond its author's voice (the post answered), and the same archetype, action and
/// feeling. A text never crosses events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The event (hash of id, text and frame).
    pub event: u64,
    /// The prompt content beyond the voice: a hash of the answered post's text (0 for posts).
    pub content: u64,
    /// Event class.
    pub category: Category,
    /// Persona archetype (see `route::voice`).
    pub archetype: u8,
    /// Post, reply or quote.
    pub action: PostKind,
    /// Mood.
    pub sentiment: Sentiment,
}

struct Entry {
    texts: Mutex<Vec<String>>,
    reads: AtomicU32,
}

struct UsageExpiry {
    ttl: Duration,
}

impl moka::Expiry<CacheKey, Arc<Entry>> for UsageExpiry {
    fn expire_after_create(&self, _: &CacheKey, _: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(self.ttl)
    }
    fn expire_after_read(
        &self,
        _: &CacheKey,
        value: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        let reads = value.reads.fetch_add(1, Ordering::Relaxed) + 1;
        Some(self.ttl * reads.saturating_add(1).min(8))
    }
    fn expire_after_update(
        &self,
        _: &CacheKey,
        _: &Arc<Entry>,
        _: Instant,
        left: Option<Duration>,
    ) -> Option<Duration> {
        left
    }
}

/// The cache; cheap to share by reference.
pub struct TextCache {
    inner: moka::sync::Cache<CacheKey, Arc<Entry>>,
    config: CacheConfig,
}

impl TextCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> TextCache {
        let inner = moka::sync::Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(UsageExpiry { ttl: Duration::from_secs(config.ttl_seconds.max(1)) })
            .build();
        TextCache { inner, config }
    }

    /// A text for `key`, picked by `pick` (a hash of post and user), if any is cached.
    pub fn get(&self, key: &CacheKey, pick: u64) -> Option<String> {
        if !self.config.enabled {
            return None;
        }
        let e = self.inner.get(key)?;
        let texts = e.texts.lock().unwrap_or_else(|p| p.into_inner());
        if texts.is_empty() {
            return None;
        }
        Some(texts[(pick % texts.len() as u64) as usize].clone())
    }

    /// Adds a generated text under `key` (the oldest goes when the entry is full).
    pub fn insert(&self, key: CacheKey, text: String) {
        if !self.config.enabled {
            return;
        }
        let e =
            self.inner.get_with(key, || Arc::new(Entry { texts: Mutex::new(Vec::new()), reads: AtomicU32::new(0) }));
        let mut texts = e.texts.lock().unwrap_or_else(|p| p.into_inner());
        if texts.len() >= self.config.texts_per_entry.max(1) {
            texts.remove(0);
        }
        texts.push(text);
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
