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
}

/// Where a post's text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A filled template.
    Template,
    /// A cached LLM answer (not produced yet).
    Cache,
    /// An LLM answer (not produced yet).
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
