//! A session's timeline as it grows: every entry in id order (event by event) with the indexes reads need — by author, by
//! event, replies under a post, engagement received and hashtag counts.
//!
//! Invariant: entries arrive in increasing id order (ids are `event index << 32 | k` and
//! events are numbered in arrival order), so every per-key position list is sorted by id and
//! a cursor (`max_id`, `since_id`) is a binary search. Retention ([`Feed::keep_last`]) drops
//! whole events from the old end only.

use crate::graph::Graph;
use crate::ids::{IdHasher, IdMap, UserId};
use crate::timeline::{Post, PostId, PostKind, ThreadNode};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// Cursor and size of a list read: entries with `since_id < id < max_id` (and `min_id <
/// id`), newest first, at most `limit`: the newest such entries, or with `min_id` the ones
/// just after it (Mastodon's cursors).
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    /// Only entries older than this id.
    pub max_id: Option<u64>,
    /// Only entries newer than this id.
    pub since_id: Option<u64>,
    /// Only entries newer than this id, the oldest of them first taken.
    pub min_id: Option<u64>,
    /// Most entries.
    pub limit: usize,
}

impl Page {
    /// The first page of `limit` entries.
    pub fn first(limit: usize) -> Page {
        Page { limit, ..Page::default() }
    }

    fn admits(&self, id: PostId) -> bool {
        self.max_id.is_none_or(|m| id.0 < m)
            && self.since_id.is_none_or(|s| id.0 > s)
            && self.min_id.is_none_or(|s| id.0 > s)
    }
}

/// A map keyed by post id with [`IdHasher`] (ids are not adversarial: the engine makes them).
type PostMap<V> = HashMap<PostId, V, BuildHasherDefault<IdHasher>>;

/// The growing timeline of one simulation.
///
/// Entries are held in id order, in one shared chunk per push (`Arc`), so a fork shares every
/// entry with its parent and copies only the indexes; a post is found by binary search and no
/// per-post id map is kept; engagement is a column beside the entries.
#[derive(Clone, Default)]
pub struct Feed {
    chunks: Vec<Arc<[Post]>>,
    /// Position of each chunk's first entry.
    starts: Vec<u32>,
    len: u32,
    engagement: Vec<u32>,
    by_author: IdMap<Vec<u32>>,
    by_event: HashMap<String, Vec<u32>>,
    replies: PostMap<Vec<u32>>,
    by_tag: HashMap<String, Vec<u32>>,
    /// Likes and reposts each entry received (replies are the `replies` lists).
    likes: Vec<u32>,
    reposts: Vec<u32>,
    latest: i64,
}

impl Feed {
    /// Appends one event's entries (sorted by id first; ids must be above those held, which
    /// event numbering guarantees). Entries whose id is already held are skipped, so a
    /// replayed batch never duplicates.
    pub fn push(&mut self, mut posts: Vec<Post>) -> std::ops::Range<usize> {
        posts.sort_unstable_by_key(|p| p.id);
        // Ids only grow, so one held at or above an entry's means a replayed entry.
        let last = self.last_id();
        posts.retain(|p| last.is_none_or(|l| p.id > l));
        posts.dedup_by_key(|p| p.id);
        self.add(posts.into())
    }

    /// Retention: when more than `entries` are held, drops the oldest events' chunks (whole
    /// chunks, the newest always kept) until at most `entries` are, and indexes the rest
    /// afresh. Every reaction comes after what it answers in id order, so the counts of the
    /// entries kept do not change. Returns how many went.
    pub fn keep_last(&mut self, entries: usize) -> usize {
        if self.len() <= entries {
            return 0;
        }
        let mut k = self.chunks.len() - 1;
        while k > 0 && (self.len - self.starts[k - 1]) as usize <= entries {
            k -= 1;
        }
        let gone = self.starts[k] as usize;
        let kept = self.chunks.split_off(k);
        let latest = self.latest;
        *self = Feed::default();
        for chunk in kept {
            self.add(chunk);
        }
        self.latest = latest;
        gone
    }

    /// Appends a chunk sorted by id, every id above those held.
    fn add(&mut self, posts: Arc<[Post]>) -> std::ops::Range<usize> {
        let start = self.len;
        let mut event: Option<(String, Vec<u32>)> = None;
        for (k, p) in posts.iter().enumerate() {
            let i = start + k as u32;
            self.by_author.entry(p.author.0).or_default().push(i);
            match &mut event {
                Some((id, list)) if *id == p.event => list.push(i),
                _ => {
                    if let Some((id, list)) = event.take() {
                        self.by_event.entry(id).or_default().extend(list);
                    }
                    event = Some((p.event.clone(), vec![i]));
                }
            }
            if let (Some(parent), PostKind::Reply | PostKind::Gif) = (p.parent, p.kind) {
                self.replies.entry(parent).or_default().push(i);
            }
            if let Some(text) = &p.text {
                if text.contains('#') {
                    for tag in hashtags(text) {
                        let list = self.by_tag.entry(tag).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
            self.latest = self.latest.max(p.time.0);
        }
        if let Some((id, list)) = event {
            self.by_event.entry(id).or_default().extend(list);
        }
        if posts.is_empty() {
            return start as usize..start as usize;
        }
        self.engagement.resize(self.engagement.len() + posts.len(), 0);
        self.likes.resize(self.engagement.len(), 0);
        self.reposts.resize(self.engagement.len(), 0);
        self.starts.push(start);
        self.len += posts.len() as u32;
        self.chunks.push(posts);
        // Counted once the batch is in, so a target later in the batch is found too.
        let chunk = self.chunks[self.chunks.len() - 1].clone();
        for p in chunk.iter() {
            for target in [p.parent, p.quoted].into_iter().flatten() {
                if let Some(t) = self.position(target) {
                    self.engagement[t as usize] += 1;
                    match p.kind {
                        PostKind::Like => self.likes[t as usize] += 1,
                        PostKind::Repost => self.reposts[t as usize] += 1,
                        _ => {}
                    }
                }
            }
        }
        start as usize..self.len as usize
    }

    fn last_id(&self) -> Option<PostId> {
        self.chunks.last().and_then(|c| c.last()).map(|p| p.id)
    }

    /// The entry at position `i` (`i < len`).
    fn at(&self, i: u32) -> &Post {
        let k = self.starts.partition_point(|&s| s <= i) - 1;
        &self.chunks[k][(i - self.starts[k]) as usize]
    }

    /// The entries at ascending `positions`, walking the chunks once.
    fn each_at<'a>(&'a self, positions: &'a [u32]) -> impl Iterator<Item = (u32, &'a Post)> + 'a {
        let mut k = positions.first().map_or(0, |&i| self.starts.partition_point(|&s| s <= i).saturating_sub(1));
        positions.iter().map(move |&i| {
            while k + 1 < self.starts.len() && self.starts[k + 1] <= i {
                k += 1;
            }
            (i, &self.chunks[k][(i - self.starts[k]) as usize])
        })
    }

    /// How many entries (a prefix in id order) satisfy `below` (true, then false).
    fn rank(&self, below: impl Fn(&Post) -> bool) -> u32 {
        let k = self.chunks.partition_point(|c| c.last().is_some_and(&below));
        match self.chunks.get(k) {
            Some(c) => self.starts[k] + c.partition_point(&below) as u32,
            None => self.len,
        }
    }

    /// Where the entry with `id` is held.
    fn position(&self, id: PostId) -> Option<u32> {
        let i = self.rank(|p| p.id < id);
        (i < self.len && self.at(i).id == id).then_some(i)
    }

    /// Every entry in id order (event by event).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Post> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The entries as held: one shared chunk per push, each in id order, chunks in id order.
    pub fn chunks(&self) -> &[Arc<[Post]>] {
        &self.chunks
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The latest game time of any entry (0 when empty).
    pub fn latest_time(&self) -> i64 {
        self.latest
    }

    /// A post by id.
    pub fn post(&self, id: PostId) -> Option<&Post> {
        self.position(id).map(|i| self.at(i))
    }

    /// Likes, reposts, replies and quotes a post received.
    pub fn engagement(&self, id: PostId) -> u32 {
        self.position(id).map_or(0, |i| self.engagement[i as usize])
    }

    /// Replies, reposts and likes the post `id` received (zeros for one not held).
    pub fn counts(&self, id: PostId) -> (u32, u32, u32) {
        match self.position(id) {
            Some(i) => {
                (self.replies.get(&id).map_or(0, |r| r.len() as u32), self.reposts[i as usize], self.likes[i as usize])
            }
            None => (0, 0, 0),
        }
    }

    /// The replies directly under `id`, oldest first.
    pub fn replies(&self, id: PostId) -> Vec<&Post> {
        self.each_at(self.replies.get(&id).map(Vec::as_slice).unwrap_or(&[])).map(|(_, p)| p).collect()
    }

    /// The reply tree under `id`.
    pub fn thread(&self, id: PostId) -> Option<ThreadNode<'_>> {
        let i = self.position(id)?;
        Some(self.subtree(i, 0))
    }

    fn subtree(&self, i: u32, depth: usize) -> ThreadNode<'_> {
        let post = self.at(i);
        // Reply trees are shallow; the bound only keeps a hostile chain from the stack.
        let replies = match self.replies.get(&post.id) {
            Some(c) if depth < 64 => c.iter().map(|&j| self.subtree(j, depth + 1)).collect(),
            _ => Vec::new(),
        };
        ThreadNode { post, replies }
    }

    /// How many entries `user` made (likes included).
    pub fn author_len(&self, user: UserId) -> usize {
        self.by_author.get(&user.0).map_or(0, Vec::len)
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
        self.all_where(page, |_| true)
    }

    /// The entries `keep` accepts, newest first.
    pub fn all_where(&self, page: Page, keep: impl Fn(&Post) -> bool) -> Vec<&Post> {
        let after = page.since_id.max(page.min_id);
        let lo = after.map_or(0, |s| self.rank(|p| p.id.0 <= s));
        let hi = page.max_id.map_or(self.len, |m| self.rank(|p| p.id.0 < m));
        let (lo, hi) = (lo, hi.max(lo));
        if page.min_id.is_some() {
            (lo..hi)
                .map(|i| self.at(i))
                .filter(|p| keep(p))
                .take(page.limit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect()
        } else {
            (lo..hi).rev().map(|i| self.at(i)).filter(|p| keep(p)).take(page.limit).collect()
        }
    }

    /// The entries carrying `#tag` (lowercase, without `#`) that `keep` accepts, newest first.
    pub fn by_tag_where(&self, tag: &str, page: Page, keep: impl Fn(&Post) -> bool) -> Vec<&Post> {
        self.page_where(self.by_tag.get(tag).map(Vec::as_slice).unwrap_or(&[]), page, keep)
    }

    /// A user's own entries that `keep` accepts, newest first.
    pub fn by_author_where(&self, user: UserId, page: Page, keep: impl Fn(&Post) -> bool) -> Vec<&Post> {
        self.page_where(self.by_author.get(&user.0).map(Vec::as_slice).unwrap_or(&[]), page, keep)
    }

    fn page_of<'a>(&'a self, positions: &'a [u32], page: Page) -> Vec<&'a Post> {
        self.page_where(positions, page, |_| true)
    }

    fn page_where<'a>(&'a self, positions: &'a [u32], page: Page, keep: impl Fn(&Post) -> bool) -> Vec<&'a Post> {
        let id = |&i: &u32| self.at(i).id.0;
        let after = page.since_id.max(page.min_id);
        let lo = after.map_or(0, |s| positions.partition_point(|i| id(i) <= s));
        let hi = page.max_id.map_or(positions.len(), |m| positions.partition_point(|i| id(i) < m));
        let range = &positions[lo..hi.max(lo)];
        if page.min_id.is_some() {
            let mut v: Vec<&Post> = self.each_at(range).map(|(_, p)| p).filter(|p| keep(p)).take(page.limit).collect();
            v.reverse();
            v
        } else {
            range.iter().rev().map(|&i| self.at(i)).filter(|p| keep(p)).take(page.limit).collect()
        }
    }

    /// A user's home timeline at `now`: posts, quotes and reposts by the accounts in
    /// `following` within the page's cursor, ranked by `sqrt(1 + engagement) * exp(-age / 6 h)`
    /// (ties: newer, then lower id) — the ranking of [`crate::timeline::Timeline::home`].
    pub fn home(&self, following: &[u32], now: i64, page: Page) -> Vec<&Post> {
        let mut scored: Vec<(f64, &Post)> = Vec::new();
        for v in following {
            for (i, p) in self.each_at(self.by_author.get(v).map(Vec::as_slice).unwrap_or(&[])) {
                if p.time.0 > now || !matches!(p.kind, PostKind::Post | PostKind::Quote | PostKind::Repost) {
                    continue;
                }
                if !page.admits(p.id) {
                    continue;
                }
                let age = (now - p.time.0) as f64;
                let score = (1.0 + self.engagement[i as usize] as f64).sqrt() * (-age / 21_600.0).exp();
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
        let mut v: Vec<(&str, u32)> = self.by_tag.iter().map(|(t, n)| (t.as_str(), n.len() as u32)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(limit);
        v
    }

    /// Rough bytes held (entries and indexes), for the memory report.
    pub fn bytes(&self) -> usize {
        let text: usize =
            self.iter().map(|p| p.handle.len() + p.event.len() + p.text.as_ref().map_or(0, String::len)).sum();
        self.len() * (std::mem::size_of::<Post>() + 12 + 12) + text
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
        assert_eq!(ids(f.all(Page { max_id: Some(1 << 32), since_id: Some(0), limit: 10, min_id: None })), vec![2, 1]);
        assert_eq!(ids(f.by_event("e0", Page { limit: 1, ..Page::default() })), vec![2]);
        // Post 0 is older but engaged twice: sqrt(3)·e^(-5000/21600) > e^(-4000/21600).
        assert_eq!(ids(f.home(&[1, 2], 5000, Page::first(10))), vec![0, 1 << 32]);
    }

    #[test]
    fn entries_across_chunks_are_found_paged_and_shared_by_a_copy() {
        let mut f = Feed::default();
        for e in 0..5u64 {
            // Pushed out of order within the batch; a reply to the previous event's post.
            let parent = e.checked_sub(1).map(|p| p << 32);
            f.push(vec![
                post(e, 2, 9, PostKind::Reply, parent, Some("x")),
                post(e, 0, e as u32, PostKind::Post, None, None),
            ]);
        }
        f.push(Vec::new());
        assert_eq!((f.len(), f.chunks().len()), (10, 5), "an empty batch adds no chunk");
        for e in 0..5u64 {
            assert_eq!(f.post(PostId(e << 32 | 2)).map(|p| p.author.0), Some(9));
            assert!(f.post(PostId(e << 32 | 1)).is_none(), "an id between two held is not held");
        }
        assert!(f.post(PostId(9 << 32)).is_none());
        assert_eq!(f.engagement(PostId(3 << 32)), 1, "a reply in a later chunk counts");
        let all: Vec<u64> = f.iter().map(|p| p.id.0).collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "id order across chunks");
        let ids = |v: Vec<&Post>| v.iter().map(|p| p.id.0).collect::<Vec<_>>();
        let page = f.all(Page { max_id: Some(3 << 32), since_id: Some(1 << 32), limit: 10, min_id: None });
        assert_eq!(ids(page), vec![2 << 32 | 2, 2 << 32, 1 << 32 | 2]);
        assert_eq!(ids(f.all(Page::first(3))), vec![4 << 32 | 2, 4 << 32, 3 << 32 | 2]);
        let copy = f.clone();
        assert!(copy.chunks().iter().zip(f.chunks()).all(|(a, b)| Arc::ptr_eq(a, b)), "a copy shares the entries");
    }

    /// Retention drops the oldest events' chunks and keeps reads of the rest as they were.
    #[test]
    fn keeping_the_last_entries_drops_old_events_and_keeps_the_rest_readable() {
        let mut f = Feed::default();
        for e in 0..6u64 {
            let parent = e.checked_sub(1).map(|p| p << 32);
            f.push(vec![
                post(e, 0, e as u32, PostKind::Post, None, Some("#tag")),
                post(e, 1, 9, PostKind::Reply, parent, Some("x")),
                post(e, 2, 8, PostKind::Like, Some(e << 32), None),
            ]);
        }
        let before: Vec<(u64, u32, (u32, u32, u32))> =
            (3..6u64).map(|e| (e << 32, f.engagement(PostId(e << 32)), f.counts(PostId(e << 32)))).collect();
        let latest = f.latest_time();
        assert_eq!(f.keep_last(100), 0, "under the limit nothing goes");
        assert_eq!(f.keep_last(9), 9, "three whole events go, leaving 9");
        assert_eq!(f.len(), 9);
        assert!(f.post(PostId(2 << 32)).is_none() && f.post(PostId(3 << 32)).is_some());
        let after: Vec<(u64, u32, (u32, u32, u32))> =
            (3..6u64).map(|e| (e << 32, f.engagement(PostId(e << 32)), f.counts(PostId(e << 32)))).collect();
        assert_eq!(after, before, "the kept entries' engagement is unchanged");
        assert_eq!(f.latest_time(), latest);
        assert_eq!(f.trending(1), vec![("tag", 3)]);
        assert_eq!(f.by_author(UserId(9), Page::first(10)).len(), 3);
        assert!(f.by_event("e1", Page::first(10)).is_empty());
        let ids: Vec<u64> = f.all(Page::first(2)).iter().map(|p| p.id.0).collect();
        assert_eq!(ids, vec![5 << 32 | 2, 5 << 32 | 1]);
        // The newest chunk stays even when it alone is over the limit.
        assert_eq!(f.keep_last(1), 6);
        assert_eq!(f.len(), 3);
        f.push(vec![post(6, 0, 1, PostKind::Post, None, None)]);
        assert_eq!(f.len(), 4);
    }
}
