//! The timeline: what the simulated users did, as posts in game-time order, and a JSONL
//! writer. Posts carry their thread links (parent, quoted post, thread root).
//!
//! Invariant: posts sort by (time, id), a total order; ids are unique within a run.

use crate::events::GameTime;
use crate::ids::UserId;
use crate::templates::Sentiment;
use serde::Serialize;

/// A post's id: `(event index << 32) | sequence within the event`, unique in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PostId(pub u64);

/// What kind of action a timeline entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PostKind {
    /// A new post about the event.
    Post,
    /// A reply in a thread.
    Reply,
    /// A quote post.
    Quote,
    /// A repost of another post.
    Repost,
    /// A like of another post.
    Like,
    /// A reply that is a GIF (with optional caption text).
    Gif,
}

/// Where a post's text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A filled template.
    Template,
    /// A cached LLM answer for a similar request, re-styled for the author.
    Cache,
    /// An LLM answer.
    Llm,
}

/// One timeline entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Post {
    /// Unique id.
    pub id: PostId,
    /// Author's user id.
    pub author: UserId,
    /// Author's handle.
    pub handle: String,
    /// What they did.
    pub kind: PostKind,
    /// The post replied to, liked or reposted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<PostId>,
    /// The post quoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted: Option<PostId>,
    /// The root of the thread (replies only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PostId>,
    /// Depth in the reply tree (0 for posts).
    pub depth: u8,
    /// The text (posts, replies, quotes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The GIF's catalogue id (GIF replies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gif: Option<String>,
    /// A pre-made image reference (posts with an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The event it reacts to.
    pub event: String,
    /// When, in game time.
    pub time: GameTime,
    /// How the author feels.
    pub sentiment: Sentiment,
    /// Where the text came from.
    pub source: Source,
}

/// Sorts posts into timeline order: by game time, then id.
pub fn sort(posts: &mut [Post]) {
    posts.sort_by_key(|p| (p.time, p.id));
}

/// Writes posts as JSON lines.
pub fn write_jsonl<W: std::io::Write>(posts: &[Post], mut w: W) -> std::io::Result<()> {
    for p in posts {
        serde_json::to_writer(&mut w, p)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// A run's timeline indexed for queries: per-author posts and per-post engagement.
pub struct Timeline {
    posts: Vec<Post>,
    by_author: std::collections::HashMap<UserId, Vec<usize>>,
    engagement: std::collections::HashMap<PostId, u32>,
}

impl Timeline {
    /// Indexes `posts` (sorted into timeline order first).
    pub fn new(mut posts: Vec<Post>) -> Timeline {
        sort(&mut posts);
        let mut by_author: std::collections::HashMap<UserId, Vec<usize>> = std::collections::HashMap::new();
        let mut engagement: std::collections::HashMap<PostId, u32> = std::collections::HashMap::new();
        for (i, p) in posts.iter().enumerate() {
            by_author.entry(p.author).or_default().push(i);
            for target in [p.parent, p.quoted].into_iter().flatten() {
                *engagement.entry(target).or_default() += 1;
            }
        }
        Timeline { posts, by_author, engagement }
    }

    /// All entries in timeline order.
    pub fn posts(&self) -> &[Post] {
        &self.posts
    }

    /// Likes, reposts, replies and quotes a post received.
    pub fn engagement(&self, id: PostId) -> u32 {
        self.engagement.get(&id).copied().unwrap_or(0)
    }

    /// A user's profile timeline: their own posts, replies, quotes and reposts up to `now`,
    /// newest first.
    pub fn profile(&self, user: UserId, now: GameTime) -> Vec<&Post> {
        let mut out: Vec<&Post> = self
            .by_author
            .get(&user)
            .map(|ix| {
                ix.iter().map(|&i| &self.posts[i]).filter(|p| p.kind != PostKind::Like && p.time <= now).collect()
            })
            .unwrap_or_default();
        out.reverse();
        out
    }

    /// A user's home timeline at `now`: posts, quotes and reposts by accounts they follow,
    /// ranked by `sqrt(1 + engagement) * exp(-age / 6 h)` (ties: newer, then lower id), at
    /// most `limit` entries.
    pub fn home(&self, graph: &crate::graph::Graph, user: UserId, now: GameTime, limit: usize) -> Vec<&Post> {
        let mut scored: Vec<(f64, &Post)> = Vec::new();
        for &v in graph.following(user) {
            for &i in self.by_author.get(&UserId(v)).map(Vec::as_slice).unwrap_or(&[]) {
                let p = &self.posts[i];
                if p.time > now || !matches!(p.kind, PostKind::Post | PostKind::Quote | PostKind::Repost) {
                    continue;
                }
                let age = (now.0 - p.time.0) as f64;
                let score = (1.0 + self.engagement(p.id) as f64).sqrt() * (-age / 21_600.0).exp();
                scored.push((score, p));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.time.cmp(&a.1.time)).then(a.1.id.cmp(&b.1.id)));
        scored.into_iter().take(limit).map(|(_, p)| p).collect()
    }
}
