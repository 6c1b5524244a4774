//! Priority queues and batching. Items wait in one bounded queue set, grouped per priority by
//! a group key (event and similar profiles); a group becomes a batch when it holds the
//! priority's batch size, or when its oldest item has waited the priority's maximum wait.
//! High priority goes first.
//!
//! Invariants: at most `capacity` items wait; when full, a new item displaces the newest item
//! of a strictly lower priority (which is handed back for fallback), else it is handed back
//! itself: nothing is dropped silently. Every pushed item leaves exactly once, in a batch or
//! handed back. Time is a caller-given number (microseconds), so batching is deterministic.

use crate::events::Priority;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Batch sizes, waits and the queue bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Batch size for high, medium and low priority (default 4, 10, 20).
    pub size: [usize; 3],
    /// Longest wait before a partial batch goes, in milliseconds (default 50, 2,000, 10,000).
    pub max_wait_ms: [u64; 3],
    /// Items waiting at most, all priorities together (default 4,096).
    pub capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { size: [4, 10, 20], max_wait_ms: [50, 2_000, 10_000], capacity: 4_096 }
    }
}

/// A priority's queue index: high 0, medium 1, low 2.
pub(crate) fn level(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Medium => 1,
        Priority::Low => 2,
    }
}

/// The level's priority.
pub fn priority(level: usize) -> Priority {
    [Priority::High, Priority::Medium, Priority::Low][level.min(2)]
}

/// A batch ready to send.
#[derive(Debug)]
pub struct Batch<T> {
    /// Its priority.
    pub priority: Priority,
    /// Its group key.
    pub group: u64,
    /// Items with the time each was queued.
    pub items: Vec<(u64, T)>,
}

/// The queues.
pub struct Batcher<T> {
    config: BatchConfig,
    groups: [BTreeMap<u64, VecDeque<(u64, T)>>; 3],
    len: [usize; 3],
}

impl<T> Batcher<T> {
    /// Empty queues.
    pub fn new(config: BatchConfig) -> Batcher<T> {
        Batcher { config, groups: [BTreeMap::new(), BTreeMap::new(), BTreeMap::new()], len: [0; 3] }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.len.iter().sum()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `item` at `now`. `Err` hands back the item that must fall back: a displaced
    /// lower-priority item, or `item` itself when nothing lower waits.
    pub fn push(&mut self, item: T, p: Priority, group: u64, now: u64) -> Result<(), T> {
        let l = level(p);
        if self.len() >= self.config.capacity.max(1) {
            let Some(victim_level) = (l + 1..3).rev().find(|&k| self.len[k] > 0) else { return Err(item) };
            let victim = self.evict_newest(victim_level);
            self.insert(item, l, group, now);
            return match victim {
                Some(v) => Err(v),
                None => Ok(()),
            };
        }
        self.insert(item, l, group, now);
        Ok(())
    }

    fn insert(&mut self, item: T, l: usize, group: u64, now: u64) {
        self.groups[l].entry(group).or_default().push_back((now, item));
        self.len[l] += 1;
    }

    fn evict_newest(&mut self, l: usize) -> Option<T> {
        let (&g, _) = self.groups[l].iter().max_by_key(|(g, q)| (q.back().map(|x| x.0), std::cmp::Reverse(**g)))?;
        let q = self.groups[l].get_mut(&g)?;
        let (_, item) = q.pop_back()?;
        if q.is_empty() {
            self.groups[l].remove(&g);
        }
        self.len[l] -= 1;
        Some(item)
    }

    fn take(&mut self, l: usize, g: u64) -> Option<Batch<T>> {
        let size = self.config.size[l].max(1);
        let q = self.groups[l].get_mut(&g)?;
        let n = size.min(q.len());
        let items: Vec<(u64, T)> = q.drain(..n).collect();
        if q.is_empty() {
            self.groups[l].remove(&g);
        }
        self.len[l] -= items.len();
        Some(Batch { priority: priority(l), group: g, items })
    }

    /// The next batch due at `now`: a full group, or one whose oldest item has waited its
    /// priority's maximum, highest priority first (ties: lowest group key).
    pub fn pop(&mut self, now: u64) -> Option<Batch<T>> {
        for l in 0..3 {
            if self.len[l] == 0 {
                continue;
            }
            let size = self.config.size[l].max(1);
            let wait = self.config.max_wait_ms[l].saturating_mul(1_000);
            let due = self.groups[l]
                .iter()
                .find(|(_, q)| q.len() >= size || q.front().is_some_and(|x| now.saturating_sub(x.0) >= wait))
                .map(|(g, _)| *g);
            if let Some(g) = due {
                return self.take(l, g);
            }
        }
        None
    }

    /// The next batch regardless of waits (draining), highest priority first.
    pub fn flush(&mut self) -> Option<Batch<T>> {
        let l = (0..3).find(|&l| self.len[l] > 0)?;
        let g = *self.groups[l].keys().next()?;
        self.take(l, g)
    }

    /// When the earliest partial batch becomes due (microseconds), if anything waits.
    pub fn next_due(&self) -> Option<u64> {
        (0..3)
            .filter_map(|l| {
                let wait = self.config.max_wait_ms[l].saturating_mul(1_000);
                self.groups[l].values().filter_map(|q| q.front().map(|x| x.0.saturating_add(wait))).min()
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BatchConfig {
        BatchConfig { size: [2, 3, 3], max_wait_ms: [1, 10, 10], capacity: 4 }
    }

    #[test]
    fn full_groups_go_first_then_waits() {
        let mut b = Batcher::new(cfg());
        for i in 0..3 {
            b.push(i, Priority::Medium, 7, 0).unwrap();
        }
        b.push(9, Priority::Medium, 8, 0).unwrap();
        let batch = b.pop(0).unwrap();
        assert_eq!(batch.items.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(b.pop(5_000).is_none());
        assert_eq!(b.pop(10_000).unwrap().items.len(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn full_queue_displaces_lower_priority() {
        let mut b = Batcher::new(cfg());
        for i in 0..4 {
            b.push(i, Priority::Low, i as u64, i as u64).unwrap();
        }
        assert_eq!(b.push(10, Priority::High, 0, 5), Err(3));
        assert_eq!(b.push(11, Priority::Low, 0, 6), Err(11));
        assert_eq!(b.flush().unwrap().items[0].1, 10);
    }
}
