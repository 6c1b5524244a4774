//! Releasing timeline entries in timeline order while events are still coming: each event's
//! entries are sorted once and kept as a run; [`Ordered::ready`] merges the runs' heads below
//! a watermark (the earliest time any later entry can have). A batch run streams its timeline
//! this way instead of holding it whole.
//!
//! Invariant: entries come out in `(time, id)` order, the order of [`crate::timeline::sort`],
//! provided no entry pushed later is earlier than a watermark already passed to `ready`.

use crate::timeline::Post;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Entries waiting for their turn.
#[derive(Default)]
pub struct Ordered {
    runs: Vec<VecDeque<Post>>,
    /// The head of each non-empty run: (time, id, run).
    heads: BinaryHeap<Reverse<(i64, u64, usize)>>,
    /// Emptied runs, reused.
    free: Vec<usize>,
    waiting: usize,
}

impl Ordered {
    /// Adds one event's entries (any order).
    pub fn push(&mut self, mut posts: Vec<Post>) {
        if posts.is_empty() {
            return;
        }
        crate::timeline::sort(&mut posts);
        self.waiting += posts.len();
        let run: VecDeque<Post> = posts.into();
        let head = (run[0].time.0, run[0].id.0);
        let k = match self.free.pop() {
            Some(k) => {
                self.runs[k] = run;
                k
            }
            None => {
                self.runs.push(run);
                self.runs.len() - 1
            }
        };
        self.heads.push(Reverse((head.0, head.1, k)));
    }

    /// Moves every entry earlier than `watermark` to `out`, in order.
    pub fn ready(&mut self, watermark: i64, out: &mut Vec<Post>) {
        while let Some(&Reverse((time, _, k))) = self.heads.peek() {
            if time >= watermark {
                break;
            }
            self.heads.pop();
            let run = &mut self.runs[k];
            // Take the run's entries while they stay ahead of every other run's head.
            let bound = self.heads.peek().map(|Reverse((t, id, _))| (*t, *id));
            while let Some(p) = run.front() {
                let key = (p.time.0, p.id.0);
                if key.0 >= watermark || bound.is_some_and(|b| key > b) {
                    break;
                }
                out.extend(run.pop_front());
                self.waiting -= 1;
            }
            match run.front() {
                Some(p) => self.heads.push(Reverse((p.time.0, p.id.0, k))),
                None => {
                    self.runs[k] = VecDeque::new();
                    self.free.push(k);
                }
            }
        }
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.waiting
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::GameTime;
    use crate::ids::UserId;
    use crate::timeline::{PostId, PostKind, Source};

    fn post(event: u64, k: u64, time: i64) -> Post {
        Post {
            id: PostId(event << 32 | k),
            author: UserId(k as u32),
            handle: String::new(),
            kind: PostKind::Like,
            parent: None,
            quoted: None,
            root: None,
            depth: 0,
            text: None,
            gif: None,
            image: None,
            image_request: None,
            event: format!("e{event}"),
            time: GameTime(time),
            sentiment: crate::templates::Sentiment::Neutral,
            source: Source::Template,
        }
    }

    /// Released in pieces, the entries come out as the whole sorted timeline.
    #[test]
    fn released_in_pieces_equals_sorted_whole() {
        let mut rng = crate::rng::Stream::new(1, 2, 3, 4);
        let mut all = Vec::new();
        let mut ord = Ordered::default();
        let mut out = Vec::new();
        let times: Vec<i64> = (0..40).map(|e| e * 100 + (e % 3) * 40).collect();
        // The earliest time of any later event: what the batch run passes as the watermark.
        let mut after: Vec<i64> = times.clone();
        for e in (0..times.len().saturating_sub(1)).rev() {
            after[e] = after[e + 1].min(times[e]);
        }
        for (e, &t) in times.iter().enumerate() {
            let posts: Vec<Post> =
                (0..rng.below(50)).map(|k| post(e as u64, k, t + 5 + rng.below(3_000) as i64)).collect();
            all.extend(posts.clone());
            ord.push(posts);
            let watermark = after.get(e + 1).copied().unwrap_or(i64::MAX);
            ord.ready(watermark, &mut out);
        }
        ord.ready(i64::MAX, &mut out);
        assert!(ord.is_empty());
        crate::timeline::sort(&mut all);
        assert_eq!(out.len(), all.len());
        assert!(out.iter().zip(&all).all(|(a, b)| a.id == b.id && a.time == b.time));
    }
}
