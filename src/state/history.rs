//! Action history: a rolling window of each user's recent actions, stored in fixed-size chunks
//! from one shared pool (no per-user allocation), with what falls out of the window folded into
//! per-user counters.
//!
//! Invariants: a user's window holds their most recent actions, at least `window` of them once
//! they have that many (unless older ones were folded by age, [`History::forget_before`]), at
//! most `window + CHUNK - 1`; chunks are recycled, so the pool never
//! grows beyond what the windows hold; the fold keeps exact totals. A user's chunks are linked
//! both ways: `older` from the newest to the oldest (ending in `NONE`), and `newer` the other
//! way round, closed into a ring (the newest chunk's `newer` is the oldest), so that a push and
//! a fold each take constant time whatever the window.

use super::IdMap;
use bytemuck::{Pod, Zeroable};

/// Records per chunk.
pub const CHUNK: usize = 8;
const NONE: u32 = u32::MAX;

/// One remembered action (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Record {
    /// Game minute of the action.
    pub minute: u32,
    /// The other user (author answered, liked, quoted), or `u32::MAX`.
    pub other: u32,
    /// Thread key: low 32 bits of the thread root's post id, or `u32::MAX`.
    pub thread: u32,
    /// The event's main stakeholder (world entity), or `u16::MAX`.
    pub entity: u16,
    /// Action kind (see [`crate::timeline::PostKind`] order) in the low 4 bits, event category
    /// in the high 4 bits.
    pub kind_category: u8,
    /// Stance of the action, -127..=127.
    pub stance: i8,
}

impl Record {
    /// The action kind index.
    pub fn kind(&self) -> u8 {
        self.kind_category & 15
    }

    /// The event category index.
    pub fn category(&self) -> u8 {
        self.kind_category >> 4
    }
}

/// What a user's history held before their window: counts by kind and category, and stance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Folded {
    /// Actions by kind.
    pub by_kind: [u32; 8],
    /// Actions by event category.
    pub by_category: [u32; 12],
    /// Sum of stances.
    pub stance_sum: i64,
    /// Game minute of the first folded action.
    pub first_minute: u32,
    /// Padding, zero.
    pub reserved: u32,
}

/// Adds one action to a user's folded counters.
fn fold_into(f: &mut Folded, r: &Record) {
    if f.by_kind.iter().all(|&k| k == 0) {
        f.first_minute = r.minute;
    }
    f.by_kind[r.kind() as usize & 7] += 1;
    f.by_category[(r.category() as usize).min(11)] += 1;
    f.stance_sum += r.stance as i64;
}

/// The history store: per-user chunk lists plus the shared pool.
#[derive(Clone, Debug)]
pub struct History {
    window: usize,
    /// Newest chunk per user (`NONE` for none).
    head: Vec<u32>,
    /// Records in each user's window.
    count: Vec<u16>,
    /// Chunk records.
    pool: Vec<[Record; CHUNK]>,
    /// Next older chunk of each chunk (`NONE` for a user's oldest).
    older: Vec<u32>,
    /// Next newer chunk of each chunk; a user's newest points to their oldest. Not saved:
    /// rebuilt from `older`.
    newer: Vec<u32>,
    free: Vec<u32>,
    folded: IdMap<Folded>,
}

impl History {
    /// An empty store for `users` users keeping at least `window` actions each (≥ 1).
    pub fn new(users: usize, window: usize) -> History {
        History {
            window: window.clamp(1, u16::MAX as usize - CHUNK),
            head: vec![NONE; users],
            count: vec![0; users],
            pool: Vec::new(),
            older: Vec::new(),
            newer: Vec::new(),
            free: Vec::new(),
            folded: IdMap::default(),
        }
    }

    /// The configured window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Empties every window, keeping the allocations.
    pub fn clear(&mut self) {
        self.head.fill(NONE);
        self.count.fill(0);
        self.pool.clear();
        self.older.clear();
        self.newer.clear();
        self.free.clear();
        self.folded = IdMap::default();
    }

    /// Makes room for `n` more chunks without reallocating (a burst's worth, at most one per
    /// acting user).
    pub fn reserve(&mut self, n: usize) {
        let missing = n.saturating_sub(self.free.len());
        self.pool.reserve(missing);
        self.older.reserve(missing);
        self.newer.reserve(missing);
    }

    /// Appends an action to user `u`'s window, folding the oldest chunk when the window is
    /// full.
    pub fn push(&mut self, u: u32, r: Record) {
        let i = u as usize;
        let n = self.count[i] as usize;
        if n % CHUNK == 0 {
            let chunk = match self.free.pop() {
                Some(c) => c,
                None => {
                    self.pool.push([Record::default(); CHUNK]);
                    self.older.push(NONE);
                    self.newer.push(NONE);
                    (self.pool.len() - 1) as u32
                }
            };
            let h = self.head[i];
            self.older[chunk as usize] = h;
            if h == NONE {
                self.newer[chunk as usize] = chunk;
            } else {
                self.newer[chunk as usize] = self.newer[h as usize];
                self.newer[h as usize] = chunk;
            }
            self.head[i] = chunk;
        }
        let head = self.head[i] as usize;
        self.pool[head][n % CHUNK] = r;
        self.count[i] += 1;
        if self.overfull(self.count[i] as usize) {
            self.fold_oldest(u);
        }
    }

    /// Whether a window of `len` records is over full, so that its oldest chunk folds.
    fn overfull(&self, len: usize) -> bool {
        len >= self.window + CHUNK
    }

    /// How many records a window of `len` holds after one more push (and the fold it may
    /// cause): what [`History::len_of`] will say once [`History::push`] has run.
    pub fn len_after_push(&self, len: usize) -> usize {
        if self.overfull(len + 1) {
            len + 1 - CHUNK
        } else {
            len + 1
        }
    }

    fn fold_oldest(&mut self, u: u32) {
        let i = u as usize;
        // The oldest chunk is the newest's `newer`; the window spans at least two chunks here.
        let h = self.head[i];
        let c = self.newer[h as usize];
        let next = self.newer[c as usize];
        self.older[next as usize] = NONE;
        self.newer[h as usize] = next;
        let f = self.folded.entry(u).or_default();
        for r in &self.pool[c as usize] {
            fold_into(f, r);
        }
        self.older[c as usize] = NONE;
        self.newer[c as usize] = NONE;
        self.free.push(c);
        self.count[i] -= CHUNK as u16;
    }

    /// Folds the actions before game minute `before`: whole chunks whose newest action is
    /// older, then, in a window of one chunk, each older action. Returns the users whose window
    /// changed.
    pub fn forget_before(&mut self, before: u32) -> Vec<u32> {
        let mut changed = Vec::new();
        for u in 0..self.head.len() as u32 {
            let i = u as usize;
            let mut moved = false;
            loop {
                let n = self.count[i] as usize;
                if n == 0 {
                    break;
                }
                let h = self.head[i];
                if n > CHUNK {
                    // The oldest chunk is full; its last record is its newest.
                    let c = self.newer[h as usize];
                    if self.pool[c as usize][CHUNK - 1].minute >= before {
                        break;
                    }
                    self.fold_oldest(u);
                } else {
                    // One chunk left: its old actions fold one by one, the rest move to its
                    // front; an emptied chunk is freed.
                    let chunk = &mut self.pool[h as usize];
                    let old = chunk[..n].iter().take_while(|r| r.minute < before).count();
                    if old == 0 {
                        break;
                    }
                    let f = self.folded.entry(u).or_default();
                    for r in &chunk[..old] {
                        fold_into(f, r);
                    }
                    chunk.copy_within(old..n, 0);
                    self.count[i] = (n - old) as u16;
                    if old == n {
                        self.older[h as usize] = NONE;
                        self.newer[h as usize] = NONE;
                        self.free.push(h);
                        self.head[i] = NONE;
                    }
                }
                moved = true;
            }
            if moved {
                changed.push(u);
            }
        }
        changed
    }

    /// User `u`'s window, newest first.
    pub fn recent(&self, u: u32) -> impl Iterator<Item = &Record> + '_ {
        let i = u as usize;
        let n = self.count.get(i).copied().unwrap_or(0) as usize;
        let mut chunk = self.head.get(i).copied().unwrap_or(NONE);
        let mut in_head = n % CHUNK;
        if in_head == 0 && n > 0 {
            in_head = CHUNK;
        }
        std::iter::from_fn(move || {
            if chunk == NONE {
                return None;
            }
            let c = chunk;
            let take = in_head;
            chunk = self.older[c as usize];
            in_head = CHUNK;
            Some(self.pool[c as usize][..take].iter().rev())
        })
        .flatten()
    }

    /// Number of actions in user `u`'s window.
    pub fn len_of(&self, u: u32) -> usize {
        self.count.get(u as usize).copied().unwrap_or(0) as usize
    }

    /// What fell out of user `u`'s window.
    pub fn folded(&self, u: u32) -> Option<&Folded> {
        self.folded.get(&u)
    }

    /// Records held in all windows.
    pub fn records(&self) -> usize {
        self.count.iter().map(|&c| c as usize).sum()
    }

    /// Bytes held: per-user arrays, the pool and the folded counters.
    pub fn bytes(&self) -> usize {
        self.head.len() * 6
            + self.pool.capacity() * (CHUNK * 16 + 8)
            + self.free.capacity() * 4
            + self.folded.capacity() * (std::mem::size_of::<Folded>() + 8)
    }

    /// The raw parts, for snapshots: (head, count, pool, older, free, folded sorted by user).
    #[allow(clippy::type_complexity)]
    pub(crate) fn parts(&self) -> (&[u32], &[u16], &[[Record; CHUNK]], &[u32], &[u32], Vec<(u32, Folded)>) {
        let mut folded: Vec<(u32, Folded)> = self.folded.iter().map(|(&u, &f)| (u, f)).collect();
        folded.sort_unstable_by_key(|x| x.0);
        (&self.head, &self.count, &self.pool, &self.older, &self.free, folded)
    }

    /// Rebuilds a store from its parts, checking every link.
    pub(crate) fn from_parts(
        window: usize,
        head: Vec<u32>,
        count: Vec<u16>,
        pool: Vec<[Record; CHUNK]>,
        older: Vec<u32>,
        free: Vec<u32>,
        folded: Vec<(u32, Folded)>,
    ) -> Result<History, String> {
        let chunks = pool.len();
        if older.len() != chunks || head.len() != count.len() {
            return Err("history arrays disagree in length".into());
        }
        let ok = |c: u32| c == NONE || (c as usize) < chunks;
        if !head.iter().chain(&older).all(|&c| ok(c)) || !free.iter().all(|&c| (c as usize) < chunks) {
            return Err("history chunk link out of range".into());
        }
        // Every chain must be as long as its count says, and no chunk used twice.
        let mut seen = vec![false; chunks];
        for &c in &free {
            if std::mem::replace(&mut seen[c as usize], true) {
                return Err("history chunk listed twice".into());
            }
        }
        for (i, &h) in head.iter().enumerate() {
            let mut n = 0usize;
            let mut c = h;
            while c != NONE {
                if std::mem::replace(&mut seen[c as usize], true) {
                    return Err(format!("history chunk {c} of user {i} shared or cyclic"));
                }
                n += 1;
                c = older[c as usize];
            }
            if n != (count[i] as usize).div_ceil(CHUNK) {
                return Err(format!("history of user {i} has {n} chunks for {} records", count[i]));
            }
        }
        let users = head.len();
        let mut map = IdMap::with_capacity_and_hasher(folded.len(), Default::default());
        for (u, f) in folded {
            if u as usize >= users {
                return Err("folded history of an unknown user".into());
            }
            map.insert(u, f);
        }
        // The `newer` ring, from the `older` chains.
        let mut newer = vec![NONE; chunks];
        for &h in &head {
            if h == NONE {
                continue;
            }
            let mut c = h;
            while older[c as usize] != NONE {
                newer[older[c as usize] as usize] = c;
                c = older[c as usize];
            }
            newer[h as usize] = c;
        }
        Ok(History {
            window: window.clamp(1, u16::MAX as usize - CHUNK),
            head,
            count,
            pool,
            older,
            newer,
            free,
            folded: map,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(minute: u32) -> Record {
        Record { minute, other: NONE, thread: NONE, entity: u16::MAX, kind_category: 2 | 3 << 4, stance: 10 }
    }

    /// Folding by age takes whole chunks whose newest action is older, keeps exact totals,
    /// and empties a window that is all old.
    #[test]
    fn old_actions_fold_by_age() {
        let mut h = History::new(3, 64);
        for m in 0..40 {
            h.push(1, rec(m));
        }
        for m in 0..5 {
            h.push(2, rec(m));
        }
        for m in 0..5 {
            h.push(0, rec(100 + m));
        }
        let changed = h.forget_before(20);
        assert_eq!(changed, vec![1, 2], "user 0's actions are all recent");
        // Chunks of 8: 0–7 and 8–15 go; 16–23 holds 20 and stays.
        assert_eq!(h.len_of(1), 24);
        assert_eq!(h.recent(1).last().map(|r| r.minute), Some(16));
        assert_eq!(h.folded(1).unwrap().by_kind[2], 16);
        // A single chunk that is all old goes whole.
        assert_eq!(h.len_of(2), 0);
        assert_eq!(h.folded(2).unwrap().by_kind[2], 5);
        assert_eq!(h.len_of(0), 5);
        // In a one-chunk window the old actions fold one by one.
        let mut g = History::new(1, 64);
        for m in [10, 11, 30, 31, 32] {
            g.push(0, rec(m));
        }
        assert_eq!(g.forget_before(20), vec![0]);
        assert_eq!(g.recent(0).map(|r| r.minute).collect::<Vec<_>>(), vec![32, 31, 30]);
        assert_eq!(g.folded(0).unwrap().by_kind[2], 2);
        g.push(0, rec(40));
        assert_eq!(g.recent(0).map(|r| r.minute).collect::<Vec<_>>(), vec![40, 32, 31, 30]);
        assert_eq!(h.forget_before(1_000), vec![0, 1]);
        assert_eq!((h.len_of(0), h.len_of(1), h.len_of(2)), (0, 0, 0));
        assert_eq!(h.recent(1).count(), 0);
        assert_eq!(h.folded(1).unwrap().by_kind[2], 40);
        // The freed chunks are reused.
        let pool = h.pool.len();
        for m in 2_000..2_040 {
            h.push(1, rec(m));
        }
        assert_eq!(h.pool.len(), pool);
        assert_eq!(h.recent(1).next().map(|r| r.minute), Some(2_039));
        assert_eq!(h.len_of(1), 40);
    }

    #[test]
    fn windows_stay_bounded_and_fold_exact_totals() {
        let mut h = History::new(3, 20);
        for m in 0..1000 {
            h.push(1, rec(m));
            if m % 3 == 0 {
                h.push(2, rec(m));
            }
        }
        assert!(h.len_of(1) >= 20 && h.len_of(1) < 20 + CHUNK);
        let minutes: Vec<u32> = h.recent(1).map(|r| r.minute).collect();
        assert_eq!(minutes.len(), h.len_of(1));
        assert!(minutes.windows(2).all(|w| w[0] == w[1] + 1), "newest first, contiguous");
        assert_eq!(minutes[0], 999);
        let f = h.folded(1).unwrap();
        assert_eq!(f.by_kind[2] as usize + h.len_of(1), 1000);
        assert_eq!(f.first_minute, 0);
        assert_eq!(h.len_of(0), 0);
        assert_eq!(h.recent(0).count(), 0);
        // Recycling: the pool holds no more chunks than the windows need.
        assert!(h.pool.len() <= (h.len_of(1) + h.len_of(2)).div_ceil(CHUNK) + 2);
        let (head, count, pool, older, free, folded) = h.parts();
        let back = History::from_parts(
            20,
            head.to_vec(),
            count.to_vec(),
            pool.to_vec(),
            older.to_vec(),
            free.to_vec(),
            folded,
        )
        .unwrap();
        assert!(back.recent(1).eq(h.recent(1)));
        // The rebuilt links fold the same way as the originals.
        let (mut back, mut h) = (back, h);
        for m in 1000..1100 {
            for u in [0, 1, 2] {
                back.push(u, rec(m));
                h.push(u, rec(m));
            }
        }
        for u in [0, 1, 2] {
            assert!(back.recent(u).eq(h.recent(u)));
            assert_eq!(back.folded(u), h.folded(u));
        }
        assert_eq!(back.folded(1).map(|f| f.by_kind[2] as usize + back.len_of(1)), Some(1100));
        let (head, count, pool, older, free, _) = h.parts();
        let mut bad = older.to_vec();
        if let Some(x) = bad.first_mut() {
            *x = 0;
        }
        assert!(
            History::from_parts(20, head.to_vec(), count.to_vec(), pool.to_vec(), bad, free.to_vec(), vec![]).is_err()
        );
    }
}
