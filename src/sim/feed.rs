//! A session's timeline as it grows: every entry in id order (event by event) with the indexes reads need — by id, by author, by
//! event, replies under a post, engagement received and hashtag counts.
//!
//! Invariant: entries arrive in increasing id order (ids are `event index << 32 | k` and
//! events are numbered in arrival order), so every per-key position list is sorted by id and
//! a cursor (`max_id`, `since_id`) is a binary search.

use crate::graph::Graph;
use crate::ids::{IdMap, UserId};
use crate::timeline::{Post, PostId, PostKind, ThreadNode};
use std::collections::HashMap;

/// Cursor and size of a list read: entries with `since_id < id < max_id`, newest first, at
/// most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Only entries older than this id.
    pub max_id: Option<u64>,
    /// Only entries newer than this id.
    pub since_id: Option<u64>,
    /// Most entries.
    pub limit: usize,
}

impl Page {
    /// The first page of `limit` entries.
    pub fn first(limit: usize) -> Page {
        Page { max_id: None, since_id: None, limit }
    }

    fn admits(&self, id: PostId) -> bool {
        self.max_id.is_none_or(|m| id.0 < m) && self.since_id.is_none_or(|s| id.0 > s)
    }
}

/// The growing timeline of one simulation.
#[derive(Clone, Default)]
pub struct Feed {
    posts: Vec<Post>,
    index: HashMap<PostId, u32>,
    by_author: IdMap<Vec<u32>>,
    by_event: HashMap<String, Vec<u32>>,
    replies: HashMap<PostId, Vec<u32>>,
    engagement: HashMap<PostId, u32>,
    tags: HashMap<String, u32>,
    latest: i64,
}

impl Feed {
    /// Appends one event's entries (sorted by id first; ids must be above those held, which
    /// event numbering guarantees). Entries whose id is already held are skipped, so a
    /// replayed batch never duplicates.
    pub fn push(&mut self, mut posts: Vec<Post>) -> std::ops::Range<usize> {
        posts.sort_unstable_by_key(|p| p.id);
        let start = self.posts.len();
        for p in posts {
            if self.index.contains_key(&p.id) || self.posts.last().is_some_and(|l| l.id >= p.id) {
                continue;
            }
            let i = self.posts.len() as u32;
            self.index.insert(p.id, i);
            self.by_author.entry(p.author.0).or_default().push(i);
            match self.by_event.get_mut(&p.event) {
                Some(v) => v.push(i),
                None => {
                    self.by_event.insert(p.event.clone(), vec![i]);
                }
            }
            for target in [p.parent, p.quoted].into_iter().flatten() {
                *self.engagement.entry(target).or_default() += 1;
            }
            if let (Some(parent), PostKind::Reply | PostKind::Gif) = (p.parent, p.kind) {
                self.replies.entry(parent).or_default().push(i);
            }
            if let Some(text) = &p.text {
                for tag in hashtags(text) {
                    *self.tags.entry(tag).or_default() += 1;
                }
            }
            self.latest = self.latest.max(p.time.0);
            self.posts.push(p);
        }
        start..self.posts.len()
    }

    /// Every entry in id order (event by event).
    pub fn posts(&self) -> &[Post] {
        &self.posts
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.posts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty()
    }

    /// The latest game time of any entry (0 when empty).
    pub fn latest_time(&self) -> i64 {
        self.latest
    }

    /// A post by id.
    pub fn post(&self, id: PostId) -> Option<&Post> {
        self.index.get(&id).map(|&i| &self.posts[i as usize])
    }

    /// Likes, reposts, replies and quotes a post received.
    pub fn engagement(&self, id: PostId) -> u32 {
        self.engagement.get(&id).copied().unwrap_or(0)
    }

    /// The reply tree under `id`.
    pub fn thread(&self, id: PostId) -> Option<ThreadNode<'_>> {
        let &i = self.index.get(&id)?;
        Some(self.subtree(i, 0))
    }

    fn subtree(&self, i: u32, depth: usize) -> ThreadNode<'_> {
        let post = &self.posts[i as usize];
        // Reply trees are shallow; the bound only keeps a hostile chain from the stack.
        let replies = match self.replies.get(&post.id) {
            Some(c) if depth < 64 => c.iter().map(|&j| self.subtree(j, depth + 1)).collect(),
            _ => Vec::new(),
        };
        ThreadNode { post, replies }
    }

    /// A user's own entries (likes included), newest first.
    pub fn by_author(&self, user: UserId, page: Page) -> Vec<&Post> {
        self.page_of(self.by_author.get(&user.0).map(Vec::as_slice).unwrap_or(&[]), page)
    }

    /// An event's entries, newest first.
    pub fn by_event(&self, event: &str, page: Page) -> Vec<&Post> {
        self.page_of(self.by_event.get(event).map(Vec::as_slice).unwrap_or(&[]), page)
    }

    /// Every entry, newest first.
    pub fn all(&self, page: Page) -> Vec<&Post> {
        let lo = page.since_id.map_or(0, |s| self.posts.partition_point(|p| p.id.0 <= s));
        let hi = page.max_id.map_or(self.posts.len(), |m| self.posts.partition_point(|p| p.id.0 < m));
        self.posts[lo..hi.max(lo)].iter().rev().take(page.limit).collect()
    }

    fn page_of(&self, positions: &[u32], page: Page) -> Vec<&Post> {
        let id = |&i: &u32| self.posts[i as usize].id.0;
        let lo = page.since_id.map_or(0, |s| positions.partition_point(|i| id(i) <= s));
        let hi = page.max_id.map_or(positions.len(), |m| positions.partition_point(|i| id(i) < m));
        positions[lo..hi.max(lo)].iter().rev().take(page.limit).map(|&i| &self.posts[i as usize]).collect()
    }

    /// A user's home timeline at `now`: posts, quotes and reposts by the accounts in
    /// `following` within the page's cursor, ranked by `sqrt(1 + engagement) * exp(-age / 6 h)`
    /// (ties: newer, then lower id) — the ranking of [`crate::timeline::Timeline::home`].
    pub fn home(&self, following: &[u32], now: i64, page: Page) -> Vec<&Post> {
        let mut scored: Vec<(f64, &Post)> = Vec::new();
        for v in following {
            for &i in self.by_author.get(v).map(Vec::as_slice).unwrap_or(&[]) {
                let p = &self.posts[i as usize];
                if p.time.0 > now || !matches!(p.kind, PostKind::Post | PostKind::Quote | PostKind::Repost) {
                    continue;
                }
                if !page.admits(p.id) {
                    continue;
                }
                let age = (now - p.time.0) as f64;
                let score = (1.0 + self.engagement(p.id) as f64).sqrt() * (-age / 21_600.0).exp();
                scored.push((score, p));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.time.cmp(&a.1.time)).then(a.1.id.cmp(&b.1.id)));
        scored.into_iter().take(page.limit).map(|(_, p)| p).collect()
    }

    /// The home timeline of `user` over the generated graph alone.
    pub fn home_in(&self, graph: &Graph, user: UserId, now: i64, page: Page) -> Vec<&Post> {
        self.home(graph.following(user), now, page)
    }

    /// The most used hashtags (lowercase, without `#`), most first (ties by name).
    pub fn trending(&self, limit: usize) -> Vec<(&str, u32)> {
        let mut v: Vec<(&str, u32)> = self.tags.iter().map(|(t, &n)| (t.as_str(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(limit);
        v
    }

    /// Rough bytes held (entries and indexes), for the memory report.
    pub fn bytes(&self) -> usize {
        let text: usize =
            self.posts.iter().map(|p| p.handle.len() + p.event.len() + p.text.as_ref().map_or(0, String::len)).sum();
        self.posts.capacity() * std::mem::size_of::<Post>() + text + self.index.len() * 24 + self.posts.len() * 12
    }
}

/// The hashtags of a text, lowercase and without `#` (letters, digits and `_`, at least two
/// characters, not all digits).
pub fn hashtags(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split('#').skip(1).filter_map(|rest| {
        let tag: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        (tag.chars().count() >= 2 && !tag.chars().all(|c| c.is_ascii_digit())).then(|| tag.to_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::GameTime;
    use crate::templates::Sentiment;
    use crate::timeline::Source;

    fn post(event: u64, k: u64, author: u32, kind: PostKind, parent: Option<u64>, text: Option<&str>) -> Post {
        Post {
            id: PostId(event << 32 | k),
            author: UserId(author),
            handle: format!("u{author}"),
            kind,
            parent: parent.map(PostId),
            quoted: None,
            root: parent.map(PostId),
            depth: parent.is_some() as u8,
            text: text.map(str::to_string),
            gif: None,
            image: None,
            image_request: None,
            event: format!("e{event}"),
            time: GameTime(1000 * event as i64 + k as i64),
            sentiment: Sentiment::Neutral,
            source: Source::Template,
        }
    }

    #[test]
    fn pages_threads_tags_and_no_duplicates() {
        let mut f = Feed::default();
        let a = vec![
            post(0, 0, 1, PostKind::Post, None, Some("Go #Redhawks! #Final")),
            post(0, 1, 2, PostKind::Reply, Some(0), Some("#redhawks all day")),
            post(0, 2, 3, PostKind::Like, Some(0), None),
        ];
        assert_eq!(f.push(a.clone()), 0..3);
        assert_eq!(f.push(a), 3..3, "a replayed batch adds nothing");
        f.push(vec![post(1, 0, 1, PostKind::Post, None, Some("again #2024"))]);
        assert_eq!(f.len(), 4);
        assert_eq!(f.trending(5), vec![("redhawks", 2), ("final", 1)]);
        assert_eq!(f.engagement(PostId(0)), 2);
        assert_eq!(f.thread(PostId(0)).map(|t| t.size()), Some(2));
        let ids = |v: Vec<&Post>| v.iter().map(|p| p.id.0).collect::<Vec<_>>();
        assert_eq!(ids(f.by_author(UserId(1), Page::first(10))), vec![1 << 32, 0]);
        assert_eq!(ids(f.all(Page { max_id: Some(1 << 32), since_id: Some(0), limit: 10 })), vec![2, 1]);
        assert_eq!(ids(f.by_event("e0", Page { max_id: None, since_id: None, limit: 1 })), vec![2]);
        // Post 0 is older but engaged twice: sqrt(3)·e^(-5000/21600) > e^(-4000/21600).
        assert_eq!(ids(f.home(&[1, 2], 5000, Page::first(10))), vec![0, 1 << 32]);
    }
}
