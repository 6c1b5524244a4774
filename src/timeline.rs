//! The timeline: what the simulated users did, as posts in game-time order, and a JSONL
//! writer. Posts carry their thread links (parent, quoted post, thread root).
//!
//! Invariant: posts sort by (time, id), a total order; ids are unique within a run.

use crate::events::GameTime;
use crate::ids::UserId;
use crate::templates::Sentiment;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A post's id: `(event index << 32) | sequence within the event`, unique in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PostId(pub u64);

/// What kind of action a timeline entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

impl PostKind {
    /// All kinds.
    pub const ALL: [PostKind; 6] =
        [PostKind::Post, PostKind::Reply, PostKind::Quote, PostKind::Gif, PostKind::Repost, PostKind::Like];

    /// The kind whose `as u8` code is `code` (as stored in history records).
    pub fn from_code(code: u8) -> Option<PostKind> {
        PostKind::ALL.into_iter().find(|k| *k as u8 == code)
    }

    /// Lowercase name, as in the JSONL.
    pub fn name(self) -> &'static str {
        match self {
            PostKind::Post => "post",
            PostKind::Reply => "reply",
            PostKind::Quote => "quote",
            PostKind::Repost => "repost",
            PostKind::Like => "like",
            PostKind::Gif => "gif",
        }
    }
}

/// Where a post's text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A filled template.
    Template,
    /// A cached LLM answer for a similar request, re-styled for the author.
    Cache,
    /// An LLM answer.
    Llm,
    /// Written by a player (a status posted through the server).
    Player,
    /// A template post around a line of the event's LLM phrase bank.
    Bank,
}

impl Source {
    /// Lowercase name, as in the JSONL.
    pub fn name(self) -> &'static str {
        match self {
            Source::Template => "template",
            Source::Cache => "cache",
            Source::Llm => "llm",
            Source::Player => "player",
            Source::Bank => "bank",
        }
    }
}

/// One timeline entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// What picture to generate, when the post wants one and no catalogue image fits (for the
    /// LLM / image path; the post's text is its caption).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_request: Option<String>,
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
    // Stable: posts read from files may repeat an id.
    posts.par_sort_by_key(|p| (p.time, p.id));
}

/// Appends `p` as one JSON line: the bytes `serde_json` writes for it (tested), written
/// directly (the JSONL writer's hot loop).
pub fn json_line(p: &Post, out: &mut Vec<u8>) {
    let mut num = itoa::Buffer::new();
    let field = |out: &mut Vec<u8>, name: &str, first: bool| {
        out.extend_from_slice(if first { b"{\"" } else { b",\"" });
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    field(out, "id", true);
    out.extend_from_slice(num.format(p.id.0).as_bytes());
    field(out, "author", false);
    out.extend_from_slice(num.format(p.author.0).as_bytes());
    field(out, "handle", false);
    json_str(&p.handle, out);
    field(out, "kind", false);
    json_str(p.kind.name(), out);
    for (name, id) in [("parent", p.parent), ("quoted", p.quoted), ("root", p.root)] {
        if let Some(id) = id {
            field(out, name, false);
            out.extend_from_slice(num.format(id.0).as_bytes());
        }
    }
    field(out, "depth", false);
    out.extend_from_slice(num.format(p.depth).as_bytes());
    for (name, text) in [("text", &p.text), ("gif", &p.gif), ("image", &p.image), ("image_request", &p.image_request)] {
        if let Some(t) = text {
            field(out, name, false);
            json_str(t, out);
        }
    }
    field(out, "event", false);
    json_str(&p.event, out);
    field(out, "time", false);
    out.extend_from_slice(num.format(p.time.0).as_bytes());
    field(out, "sentiment", false);
    json_str(p.sentiment.name(), out);
    field(out, "source", false);
    json_str(p.source.name(), out);
    out.extend_from_slice(b"}\n");
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes: `"`, `\\` and control
/// characters (`\n`, `\t` and the like by name, the rest as `\u00XX`); everything else as is.
pub fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let named: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if named.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(named);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes posts as JSON lines. Lines are formatted in parallel, a few thousand posts per
/// buffer and a bounded number of buffers at a time, and written in order.
pub fn write_jsonl<W: std::io::Write>(posts: &[Post], mut w: W) -> std::io::Result<()> {
    const CHUNK: usize = 2048;
    for group in posts.chunks(CHUNK * 16) {
        let buffers: Vec<Vec<u8>> = group
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut buf = Vec::with_capacity(chunk.len() * 256);
                for p in chunk {
                    json_line(p, &mut buf);
                }
                Ok::<_, std::io::Error>(buf)
            })
            .collect::<std::io::Result<_>>()?;
        for b in buffers {
            w.write_all(&b)?;
        }
    }
    w.flush()
}

/// Reads a JSONL timeline (as `chorus run` or `chorus export` write it); errors name the line.
pub fn read_jsonl<R: std::io::BufRead>(r: R, name: &str) -> crate::Result<Vec<Post>> {
    let mut posts = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|e| crate::Error::io(name, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let post: Post =
            serde_json::from_str(&line).map_err(|e| crate::Error::data(name, i + 1, "-", e.to_string()))?;
        posts.push(post);
    }
    Ok(posts)
}

/// A post with the reply tree below it (replies and GIF replies, oldest first).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadNode<'a> {
    /// The post.
    #[serde(flatten)]
    pub post: &'a Post,
    /// Its direct replies, each with its own subtree.
    pub replies: Vec<ThreadNode<'a>>,
}

impl ThreadNode<'_> {
    /// Number of posts in the tree, this one included.
    pub fn size(&self) -> usize {
        1 + self.replies.iter().map(ThreadNode::size).sum::<usize>()
    }
}

/// A run's timeline indexed for queries: per-author posts, per-post engagement, reply trees
/// and per-event posts.
pub struct Timeline {
    posts: Vec<Post>,
    by_author: std::collections::HashMap<UserId, Vec<usize>>,
    engagement: std::collections::HashMap<PostId, u32>,
    index: std::collections::HashMap<PostId, usize>,
    replies: std::collections::HashMap<PostId, Vec<usize>>,
    by_event: std::collections::HashMap<String, Vec<usize>>,
}

impl Timeline {
    /// Indexes `posts` (sorted into timeline order first).
    pub fn new(mut posts: Vec<Post>) -> Timeline {
        sort(&mut posts);
        let mut by_author: std::collections::HashMap<UserId, Vec<usize>> = std::collections::HashMap::new();
        let mut engagement: std::collections::HashMap<PostId, u32> = std::collections::HashMap::new();
        let mut index = std::collections::HashMap::with_capacity(posts.len());
        let mut replies: std::collections::HashMap<PostId, Vec<usize>> = std::collections::HashMap::new();
        let mut by_event: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
        for (i, p) in posts.iter().enumerate() {
            by_author.entry(p.author).or_default().push(i);
            index.insert(p.id, i);
            by_event.entry(p.event.clone()).or_default().push(i);
            for target in [p.parent, p.quoted].into_iter().flatten() {
                *engagement.entry(target).or_default() += 1;
            }
            if let (Some(parent), PostKind::Reply | PostKind::Gif) = (p.parent, p.kind) {
                replies.entry(parent).or_default().push(i);
            }
        }
        Timeline { posts, by_author, engagement, index, replies, by_event }
    }

    /// The global firehose: every entry in game-time order (ties by id).
    pub fn firehose(&self) -> &[Post] {
        &self.posts
    }

    /// The firehose between two game times (inclusive), by binary search.
    pub fn firehose_between(&self, from: GameTime, to: GameTime) -> &[Post] {
        let a = self.posts.partition_point(|p| p.time < from);
        let b = self.posts.partition_point(|p| p.time <= to);
        &self.posts[a..b.max(a)]
    }

    /// A post by id.
    pub fn post(&self, id: PostId) -> Option<&Post> {
        self.index.get(&id).map(|&i| &self.posts[i])
    }

    /// The reply tree under `root` (any post; replies of replies follow to any depth).
    pub fn thread(&self, root: PostId) -> Option<ThreadNode<'_>> {
        let &i = self.index.get(&root)?;
        Some(self.subtree(i))
    }

    fn subtree(&self, i: usize) -> ThreadNode<'_> {
        let post = &self.posts[i];
        let replies =
            self.replies.get(&post.id).map(|c| c.iter().map(|&j| self.subtree(j)).collect()).unwrap_or_default();
        ThreadNode { post, replies }
    }

    /// The thread trees of one event: each of its original posts and quotes, oldest first,
    /// with the replies under it.
    pub fn event_threads(&self, event: &str) -> Vec<ThreadNode<'_>> {
        self.by_event
            .get(event)
            .map(|ix| {
                ix.iter()
                    .filter(|&&i| matches!(self.posts[i].kind, PostKind::Post | PostKind::Quote))
                    .map(|&i| self.subtree(i))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The events with posts, in order of their first post.
    pub fn events(&self) -> Vec<&str> {
        let mut v: Vec<(usize, &str)> = self.by_event.iter().map(|(e, ix)| (ix[0], e.as_str())).collect();
        v.sort();
        v.into_iter().map(|(_, e)| e).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: u64, kind: PostKind, parent: Option<u64>, time: i64, event: &str) -> Post {
        Post {
            id: PostId(id),
            author: UserId(id as u32),
            handle: format!("u{id}"),
            kind,
            parent: parent.map(PostId),
            quoted: None,
            root: parent.map(|_| PostId(1)),
            depth: 0,
            text: None,
            gif: None,
            image: None,
            image_request: None,
            event: event.into(),
            time: GameTime(time),
            sentiment: Sentiment::Neutral,
            source: Source::Template,
        }
    }

    /// The hand-written JSON line is byte for byte what serde_json writes, for every field
    /// present or absent and strings with quotes, backslashes, control characters and
    /// non-ASCII text.
    #[test]
    fn json_line_is_serde_json() {
        let odd = [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\ncr\rtab\tbs\u{8}ff\u{c}",
            "\u{1}\u{1f}\u{7f}",
            "é 🎉 日本",
            "</script>",
        ];
        for (k, text) in odd.iter().enumerate() {
            for mask in 0..16u32 {
                let mut p = post(k as u64 * 1_000_003 + (1 << 40), PostKind::ALL[k % 6], None, -(k as i64) * 77, text);
                p.handle = text.to_string();
                p.parent = (mask & 1 != 0).then_some(PostId(u64::MAX));
                p.quoted = (mask & 2 != 0).then_some(PostId(0));
                p.root = (mask & 1 != 0).then_some(PostId(7));
                p.text = (mask & 4 != 0).then(|| text.to_string());
                p.gif = (mask & 8 != 0).then(|| "g".to_string());
                p.image = (mask & 4 == 0).then(|| text.to_string());
                p.image_request = (mask & 8 == 0).then(|| format!("{text}!"));
                p.depth = (mask * 17) as u8;
                p.time = GameTime(i64::MIN + k as i64);
                p.sentiment = [Sentiment::Positive, Sentiment::Negative, Sentiment::Neutral][k % 3];
                p.source = [Source::Template, Source::Cache, Source::Llm][mask as usize % 3];
                let mut want = serde_json::to_vec(&p).expect("serialize");
                want.push(b'\n');
                let mut got = Vec::new();
                json_line(&p, &mut got);
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "text {text:?}, mask {mask}");
            }
        }
    }

    /// The sort is the stable sort by (time, id): repeated keys keep their order.
    #[test]
    fn sort_is_stable_by_time_then_id() {
        for n in [0, 1, 2, 7, 100, 5_000] {
            let posts: Vec<Post> = (0..n as u64)
                .map(|k| {
                    let h = crate::rng::mix64(k ^ n as u64);
                    let mut p = post(h % 50, PostKind::Like, None, (h >> 8) as i64 % 40, "a");
                    p.handle = format!("#{k}");
                    p
                })
                .collect();
            let mut want = posts.clone();
            want.sort_by_key(|p| (p.time, p.id));
            let mut got = posts;
            sort(&mut got);
            assert!(got == want, "{n} posts");
        }
    }

    #[test]
    fn threads_firehose_and_jsonl_round_trip() {
        let posts = vec![
            post(4, PostKind::Reply, Some(2), 40, "a"),
            post(1, PostKind::Post, None, 10, "a"),
            post(2, PostKind::Reply, Some(1), 20, "a"),
            post(3, PostKind::Like, Some(1), 30, "a"),
            post(5, PostKind::Gif, Some(1), 35, "a"),
            post(6, PostKind::Post, None, 15, "b"),
        ];
        let mut bytes = Vec::new();
        write_jsonl(&posts, &mut bytes).unwrap();
        let back = read_jsonl(&bytes[..], "t.jsonl").unwrap();
        assert_eq!(back, posts);
        let t = Timeline::new(back);
        let ids: Vec<u64> = t.firehose().iter().map(|p| p.id.0).collect();
        assert_eq!(ids, [1, 6, 2, 3, 5, 4]);
        assert_eq!(t.firehose_between(GameTime(15), GameTime(30)).len(), 3);
        let tree = t.thread(PostId(1)).unwrap();
        assert_eq!(tree.size(), 4, "likes are not replies");
        assert_eq!(tree.replies[0].post.id, PostId(2));
        assert_eq!(tree.replies[0].replies[0].post.id, PostId(4));
        assert_eq!(t.event_threads("a").len(), 1);
        assert_eq!(t.events(), ["a", "b"]);
        let err = read_jsonl(&b"{}\n"[..], "bad.jsonl").unwrap_err().to_string();
        assert!(err.starts_with("bad.jsonl:1:"), "{err}");
    }
}
