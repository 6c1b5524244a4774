//! The hard token budget for LLM calls: tokens per game day (and optionally per game hour),
//! split by content type, reserved before a request is sent and reconciled with the `usage` the
//! server reports.
//!
//! Invariant: for every game day, tokens spent plus tokens reserved never exceed the day's
//! budget (nor a type's share, nor an hour's cap), whatever the number of concurrent callers
//! and retries: a reservation is taken under one lock before anything is sent, and only a
//! reconciliation with the server's reported usage turns it into spending. A reservation is
//! meant as an upper bound (the prompt at the tokens per byte the server has reported, with a
//! margin, plus `max_tokens`: see [`crate::llm::Llm::reservation`]), so reconciling does not
//! raise spending above what was reserved; a server reporting more than that is counted in
//! [`BudgetReport::overruns`].
//!
//! **Who may spend which share.** Each content type has its share of the day (reply 40%, quote
//! 20%, post 30%, media 10% by default). A medium- or low-priority request spends only its own
//! type's share (plus, with `flow_down`, the unused shares of the types above it). A
//! high-priority request (a reply to or mention of the player) spends its own type's share
//! first and then **borrows** what it still needs from the other types' unused shares, least
//! important type first (media, post, quote, reply). Borrowed tokens are charged to the lending
//! share, so every share still holds its limit and the lower-priority items of that type find
//! less left; [`BudgetReport::borrowed`] counts them. A high-priority request is therefore
//! refused only when the whole day (or hour) cannot pay for it, and from then on the day (or
//! that hour, when its cap refused) is closed to lower priorities: they do not spend what the
//! player's replies could not get (strict priority). Borrowing is first come, first served: to
//! serve high priority *before* lower priority spends the shares, [`crate::llm::Llm::resolve`]
//! sends all high-priority items of a run before the others, and the live stage
//! ([`crate::llm::stage`]) always sends waiting high-priority batches first.

use crate::events::{GameTime, Priority};
use crate::timeline::PostKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What a post is, for budget shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    /// Replies in threads (direct replies to the player are the point of the LLM).
    Reply,
    /// Quote posts.
    Quote,
    /// New posts.
    Post,
    /// GIF and image posts.
    Media,
}

impl ContentType {
    /// All types, most important first (the order unused shares flow down in; high priority
    /// borrows in the reverse order).
    pub const ALL: [ContentType; 4] = [ContentType::Reply, ContentType::Quote, ContentType::Post, ContentType::Media];

    /// The type of a post kind with text; `None` for likes and reposts.
    pub fn of(kind: PostKind) -> Option<ContentType> {
        match kind {
            PostKind::Reply => Some(ContentType::Reply),
            PostKind::Quote => Some(ContentType::Quote),
            PostKind::Post => Some(ContentType::Post),
            PostKind::Gif => Some(ContentType::Media),
            PostKind::Like | PostKind::Repost => None,
        }
    }

    /// Position in [`ContentType::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        ["reply", "quote", "post", "media"][self.index()]
    }
}

/// Budget settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Tokens (prompt + completion) per game day (default 2,000: on the shipped demo, 100,000
    /// users and 80 events in one game day, it keeps at least 99% of posts from templates or
    /// cache and spends it all on replies to the player; see BENCHMARKS.md for the sweep; 0
    /// turns the LLM off).
    pub per_day: u64,
    /// Optional cap per game hour, across types (default none).
    pub per_hour: Option<u64>,
    /// Shares of the day's budget for reply, quote, post and media (default 40/20/30/10;
    /// normalised by their sum).
    pub shares: [f64; 4],
    /// Whether a type may spend what the types above it (in [`ContentType::ALL`] order) have
    /// not used yet that day (default false: replies keep their share all day).
    pub flow_down: bool,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { per_day: 2_000, per_hour: None, shares: [0.4, 0.2, 0.3, 0.1], flow_down: false }
    }
}

impl BudgetConfig {
    /// Checks the shares are finite, non-negative and not all zero.
    pub fn validate(&self) -> crate::Result<()> {
        if self.shares.iter().any(|s| !s.is_finite() || *s < 0.0) || self.shares.iter().sum::<f64>() <= 0.0 {
            return Err(crate::Error::Config(format!(
                "budget shares must be non-negative and not all zero, got {:?}",
                self.shares
            )));
        }
        Ok(())
    }

    /// The day's limit for each type.
    pub fn limits(&self) -> [u64; 4] {
        let sum: f64 = self.shares.iter().sum();
        let mut out = [0u64; 4];
        for (o, s) in out.iter_mut().zip(self.shares) {
            // The epsilon absorbs float error in shares that sum to 1 (0.4 + 0.2 + 0.3 + 0.1).
            *o = if sum > 0.0 { (self.per_day as f64 * s / sum + 1e-6).floor() as u64 } else { 0 };
        }
        out
    }
}

/// Tokens held for one request until it is reconciled or released.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reservation holds budget until it is reconciled or released"]
pub struct Reservation {
    day: i64,
    hour: i64,
    ty: ContentType,
    /// Tokens held against each share (reply, quote, post, media): all in the request's own
    /// type unless a high-priority request borrowed.
    parts: [u64; 4],
    /// Tokens held.
    pub tokens: u64,
    /// A phrase bank's reservation (counted against the day's bank cap too).
    bank: bool,
}

impl Reservation {
    /// Tokens held against each share (reply, quote, post, media).
    pub fn parts(&self) -> [u64; 4] {
        self.parts
    }
}

/// The shares a request of share `own` spends from, in order: its own, then the others from
/// the least important (media, post, quote, reply), which is how high priority borrows.
fn spend_order(own: usize) -> impl Iterator<Item = usize> {
    std::iter::once(own).chain([3, 2, 1, 0].into_iter().filter(move |&i| i != own))
}

#[derive(Default, Clone)]
struct Day {
    spent: [u64; 4],
    reserved: [u64; 4],
    hours: BTreeMap<i64, u64>,
    /// A high-priority request was refused for lack of the day's budget: lower priorities get
    /// nothing more this day.
    closed: bool,
    /// Hours whose cap refused a high-priority request: closed to lower priorities.
    closed_hours: std::collections::BTreeSet<i64>,
    /// Tokens spent plus reserved by phrase banks.
    bank: u64,
}

impl Day {
    fn used(&self, i: usize) -> u64 {
        self.spent[i] + self.reserved[i]
    }

    /// Reserves `tokens` from the shares in `order`, each up to its room, or reserves nothing
    /// and returns `None` when they cannot pay it all. Each part is added as it is taken, so
    /// the next share's room sees it (with `flow_down` the rooms overlap).
    fn take(
        &mut self,
        limits: &[u64; 4],
        flow_down: bool,
        order: impl Iterator<Item = usize>,
        tokens: u64,
    ) -> Option<[u64; 4]> {
        let mut parts = [0u64; 4];
        let mut left = tokens;
        for i in order {
            let take = left.min(self.room(i, limits, flow_down));
            self.reserved[i] += take;
            parts[i] = take;
            left -= take;
            if left == 0 {
                return Some(parts);
            }
        }
        for (i, p) in parts.iter().enumerate() {
            self.reserved[i] -= p;
        }
        None
    }

    /// Tokens share `i` can still take without breaking a limit.
    fn room(&self, i: usize, limits: &[u64; 4], flow_down: bool) -> u64 {
        if flow_down {
            // Every prefix (types at or above each type at or below `i`) stays within the sum
            // of its limits; the full prefix is the day's total.
            (i..4)
                .map(|k| {
                    let used: u64 = (0..=k).map(|j| self.used(j)).sum();
                    let limit: u64 = limits[..=k].iter().sum();
                    limit.saturating_sub(used)
                })
                .min()
                .unwrap_or(0)
        } else {
            limits[i].saturating_sub(self.used(i))
        }
    }
}

#[derive(Default)]
struct State {
    days: BTreeMap<i64, Day>,
    fallbacks: [u64; 4],
    refused: u64,
    overruns: u64,
    requests: u64,
    borrowed: u64,
}

/// The budget: thread-safe, shared by reference.
pub struct Budget {
    config: BudgetConfig,
    limits: [u64; 4],
    state: Mutex<State>,
}

/// Spending so far.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetReport {
    /// Budget per day.
    pub per_day: u64,
    /// Tokens spent, all days, per type (reply, quote, post, media).
    pub spent: [u64; 4],
    /// Tokens spent, all days.
    pub spent_total: u64,
    /// Tokens reserved by requests in flight.
    pub reserved: u64,
    /// Unspent tokens over the days that saw requests (per type).
    pub remaining: [u64; 4],
    /// Game days that saw requests.
    pub days: usize,
    /// Items that fell back to cache or templates, per type.
    pub fallbacks: [u64; 4],
    /// Reservations refused for lack of budget.
    pub refused: u64,
    /// Requests reconciled.
    pub requests: u64,
    /// Tokens the server reported beyond a reservation (0 unless the server's tokenizer makes
    /// more tokens than bytes).
    pub overruns: u64,
    /// Tokens high-priority requests spent from other types' shares (included in `spent`,
    /// under the lending type).
    pub borrowed: u64,
}

impl Budget {
    /// A fresh budget (validate the config first with [`BudgetConfig::validate`]).
    pub fn new(config: BudgetConfig) -> Budget {
        let limits = config.limits();
        Budget { config, limits, state: Mutex::new(State::default()) }
    }

    /// The settings.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `tokens` for a request of type `ty` at `priority` in the game day (and hour)
    /// of `time`, or `None` if that would break the hour's cap or the shares it may spend: its
    /// own type's share (with `flow_down`, also the unused shares above it), and for
    /// [`Priority::High`] also the other shares' unused tokens, borrowed least important type
    /// first. A refused high-priority request closes the day (or the hour, when its cap
    /// refused) to lower priorities (see the module docs).
    pub fn reserve(&self, time: GameTime, ty: ContentType, priority: Priority, tokens: u64) -> Option<Reservation> {
        let day = time.0.div_euclid(86_400);
        let hour = time.0.div_euclid(3_600);
        let mut st = self.lock();
        let d = st.days.entry(day).or_default();
        let own = ty.index();
        let high = priority == Priority::High;
        let hour_ok = self.config.per_hour.is_none_or(|cap| d.hours.get(&hour).copied().unwrap_or(0) + tokens <= cap);
        // Strict priority: what high priority was refused, lower priorities do not get.
        let open = high || !(d.closed || d.closed_hours.contains(&hour));
        // Own share first; then, for high priority only, the others.
        let taken = (open && hour_ok && tokens > 0)
            .then(|| {
                d.take(&self.limits, self.config.flow_down, spend_order(own).take(if high { 4 } else { 1 }), tokens)
            })
            .flatten();
        let Some(parts) = taken else {
            if high && tokens > 0 {
                if !hour_ok {
                    d.closed_hours.insert(hour);
                } else {
                    d.closed = true;
                }
            }
            st.refused += 1;
            return None;
        };
        *d.hours.entry(hour).or_default() += tokens;
        Some(Reservation { day, hour, ty, parts, tokens, bank: false })
    }

    /// Reserves `tokens` for a phrase bank of the game day (and hour) of `time`, or `None`. A
    /// bank writes lines for posts, quotes and replies alike, so it spends from every type's
    /// unused share (post first, then media, quote, reply), charged to the lending shares as
    /// a high-priority borrow is, but within `cap` of the day (all banks together) and without
    /// closing the day to anyone when it is refused. [`crate::llm::Llm`] writes banks after the
    /// high-priority items and before the others.
    pub fn reserve_bank(&self, time: GameTime, tokens: u64, cap: u64) -> Option<Reservation> {
        let day = time.0.div_euclid(86_400);
        let hour = time.0.div_euclid(3_600);
        let mut st = self.lock();
        let d = st.days.entry(day).or_default();
        let hour_ok = self.config.per_hour.is_none_or(|c| d.hours.get(&hour).copied().unwrap_or(0) + tokens <= c);
        let taken = (tokens > 0 && hour_ok && d.bank + tokens <= cap)
            .then(|| d.take(&self.limits, self.config.flow_down, spend_order(ContentType::Post.index()), tokens))
            .flatten();
        let Some(parts) = taken else {
            st.refused += 1;
            return None;
        };
        d.bank += tokens;
        *d.hours.entry(hour).or_default() += tokens;
        Some(Reservation { day, hour, ty: ContentType::Post, parts, tokens, bank: true })
    }

    /// Tokens the day of `time` can still give a phrase bank under `cap` (what
    /// [`Budget::reserve_bank`] would accept at most).
    pub fn bank_room(&self, time: GameTime, cap: u64) -> u64 {
        let day = time.0.div_euclid(86_400);
        let st = self.lock();
        let Some(d) = st.days.get(&day) else {
            return cap.min(self.limits.iter().sum());
        };
        let room: u64 = (0..4).map(|i| d.room(i, &self.limits, self.config.flow_down)).sum();
        room.min(cap.saturating_sub(d.bank))
    }

    /// Turns a reservation into spending of `actual` tokens (the server's reported usage). The
    /// request's own share is charged first, then the shares it borrowed from, each at most
    /// what it held; usage beyond the reservation (an overrun) is charged to the own share.
    pub fn reconcile(&self, r: Reservation, actual: u64) {
        let mut st = self.lock();
        st.requests += 1;
        if actual > r.tokens {
            st.overruns += actual - r.tokens;
        }
        let own = r.ty.index();
        let mut left = actual;
        let mut charge = [0u64; 4];
        for i in spend_order(own) {
            charge[i] = left.min(r.parts[i]);
            left -= charge[i];
        }
        charge[own] += left;
        let borrowed: u64 = (0..4).filter(|&i| i != own).map(|i| charge[i]).sum();
        if !r.bank {
            st.borrowed += borrowed;
        }
        let d = st.days.entry(r.day).or_default();
        for (i, c) in charge.iter().enumerate() {
            d.reserved[i] -= r.parts[i];
            d.spent[i] += c;
        }
        if r.bank {
            d.bank = d.bank - r.tokens + actual;
        }
        let h = d.hours.entry(r.hour).or_default();
        *h = *h - r.tokens + actual;
    }

    /// Gives a reservation back unspent (the request was not sent, or the server refused it).
    pub fn release(&self, r: Reservation) {
        let mut st = self.lock();
        let d = st.days.entry(r.day).or_default();
        for i in 0..4 {
            d.reserved[i] -= r.parts[i];
        }
        if r.bank {
            d.bank -= r.tokens;
        }
        let h = d.hours.entry(r.hour).or_default();
        *h -= r.tokens;
    }

    /// Counts `n` items of type `ty` that fell back to cache or templates.
    pub fn record_fallback(&self, ty: ContentType, n: u64) {
        self.lock().fallbacks[ty.index()] += n;
    }

    /// Tokens spent plus reserved in the day of `time`, per type.
    pub fn used_in_day(&self, time: GameTime) -> [u64; 4] {
        let st = self.lock();
        st.days.get(&time.0.div_euclid(86_400)).map(|d| [0, 1, 2, 3].map(|i| d.used(i))).unwrap_or_default()
    }

    /// The state so far.
    pub fn report(&self) -> BudgetReport {
        let st = self.lock();
        let mut spent = [0u64; 4];
        let mut remaining = [0u64; 4];
        let mut reserved = 0;
        for d in st.days.values() {
            for i in 0..4 {
                spent[i] += d.spent[i];
                reserved += d.reserved[i];
                remaining[i] += self.limits[i].saturating_sub(d.used(i));
            }
        }
        BudgetReport {
            per_day: self.config.per_day,
            spent,
            spent_total: spent.iter().sum(),
            reserved,
            remaining,
            days: st.days.len(),
            fallbacks: st.fallbacks,
            refused: st.refused,
            requests: st.requests,
            overruns: st.overruns,
            borrowed: st.borrowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Priority = Priority::Medium;
    const H: Priority = Priority::High;

    #[test]
    fn shares_and_refusal() {
        let b = Budget::new(BudgetConfig { per_day: 1000, ..BudgetConfig::default() });
        let r = b.reserve(GameTime(10), ContentType::Reply, M, 400).unwrap();
        assert!(b.reserve(GameTime(20), ContentType::Reply, M, 1).is_none());
        b.reconcile(r, 150);
        assert!(b.reserve(GameTime(20), ContentType::Reply, M, 250).is_some());
        // Another day has its own budget.
        assert!(b.reserve(GameTime(86_400 + 5), ContentType::Reply, M, 400).is_some());
        let rep = b.report();
        assert_eq!(rep.spent, [150, 0, 0, 0]);
        assert_eq!(rep.reserved, 650);
    }

    #[test]
    fn flow_down_takes_unused_share_from_above() {
        let cfg = BudgetConfig { per_day: 1000, flow_down: true, ..BudgetConfig::default() };
        let b = Budget::new(cfg);
        // Posts (300) may use the unused reply and quote shares: up to 900 in all.
        assert!(b.reserve(GameTime(0), ContentType::Post, M, 900).is_some());
        assert!(b.reserve(GameTime(0), ContentType::Post, M, 1).is_none());
        // Media still has its own 100.
        assert!(b.reserve(GameTime(0), ContentType::Media, M, 100).is_some());
        assert!(b.reserve(GameTime(0), ContentType::Reply, M, 1).is_none());
    }

    #[test]
    fn a_bank_spends_every_share_within_its_cap_and_closes_nothing() {
        let b = Budget::new(BudgetConfig { per_day: 1000, ..BudgetConfig::default() });
        assert_eq!(b.bank_room(GameTime(0), 800), 800);
        // Over the cap: refused, and the day stays open to everyone.
        assert!(b.reserve_bank(GameTime(0), 801, 800).is_none());
        assert!(b.reserve(GameTime(0), ContentType::Reply, M, 10).is_some());
        let r = b.reserve_bank(GameTime(0), 700, 800).unwrap();
        // Post (300) first, then media (100), quote (200), reply (the 100 of 390 left).
        assert_eq!(r.parts(), [100, 200, 300, 100]);
        assert_eq!(b.bank_room(GameTime(0), 800), 100);
        b.reconcile(r, 500);
        assert_eq!(b.bank_room(GameTime(0), 800), 300);
        let rep = b.report();
        assert_eq!(rep.spent_total, 500);
        assert_eq!(rep.borrowed, 0, "a bank's spending is not a high-priority borrow");
        assert_eq!(rep.overruns, 0);
    }

    #[test]
    fn hour_cap() {
        let b = Budget::new(BudgetConfig { per_day: 1000, per_hour: Some(100), ..BudgetConfig::default() });
        assert!(b.reserve(GameTime(0), ContentType::Reply, M, 100).is_some());
        assert!(b.reserve(GameTime(10), ContentType::Reply, M, 1).is_none());
        assert!(b.reserve(GameTime(3_600), ContentType::Reply, M, 100).is_some());
    }

    #[test]
    fn high_priority_borrows_least_important_share_first() {
        // Shares of 1,000: reply 400, quote 200, post 300, media 100.
        let b = Budget::new(BudgetConfig { per_day: 1000, ..BudgetConfig::default() });
        // A medium post cannot go past the post share; a high one borrows media, then quote.
        assert!(b.reserve(GameTime(0), ContentType::Post, M, 301).is_none());
        let r = b.reserve(GameTime(0), ContentType::Post, H, 550).unwrap();
        assert_eq!(r.parts(), [0, 150, 300, 100]);
        assert_eq!(b.used_in_day(GameTime(0)), [0, 150, 300, 100]);
        // What it borrowed is gone for the lenders' own lower-priority items.
        assert!(b.reserve(GameTime(0), ContentType::Media, M, 1).is_none());
        assert!(b.reserve(GameTime(0), ContentType::Quote, M, 51).is_none());
        // Usage is charged to the own share first: 320 of 550 used means 20 borrowed.
        b.reconcile(r, 320);
        assert_eq!(b.used_in_day(GameTime(0)), [0, 0, 300, 20]);
        let rep = b.report();
        assert_eq!((rep.borrowed, rep.spent_total, rep.reserved), (20, 320, 0));
        // High priority is refused only when the whole day is used.
        let r = b.reserve(GameTime(0), ContentType::Post, H, 680).unwrap();
        assert_eq!(r.parts(), [400, 200, 0, 80]);
        assert!(b.reserve(GameTime(0), ContentType::Post, H, 1).is_none());
        b.release(r);
        assert_eq!(b.used_in_day(GameTime(0)), [0, 0, 300, 20]);
    }

    #[test]
    fn a_refused_high_request_closes_the_day_to_lower_priorities() {
        let b = Budget::new(BudgetConfig { per_day: 1000, per_hour: Some(800), ..BudgetConfig::default() });
        // The hour cap refuses a high request: that hour closes to medium, not the next one.
        assert!(b.reserve(GameTime(0), ContentType::Post, H, 801).is_none());
        assert!(b.reserve(GameTime(0), ContentType::Reply, M, 10).is_none());
        assert!(b.reserve(GameTime(0), ContentType::Reply, H, 10).is_some());
        assert!(b.reserve(GameTime(3_600), ContentType::Reply, M, 10).is_some());
        // 520 of 1,000 held; the day cannot pay for a high request of 600 (the hour could):
        // the day closes to medium and low, though the reply share still has room; high
        // priority goes on.
        assert!(b.reserve(GameTime(3_600), ContentType::Post, H, 500).is_some());
        assert!(b.reserve(GameTime(7_200), ContentType::Post, H, 600).is_none());
        assert!(b.reserve(GameTime(7_200), ContentType::Reply, M, 10).is_none());
        assert!(b.reserve(GameTime(10_800), ContentType::Reply, Priority::Low, 10).is_none());
        assert!(b.reserve(GameTime(10_800), ContentType::Reply, H, 10).is_some());
        // Another day is open again.
        assert!(b.reserve(GameTime(86_400), ContentType::Reply, M, 10).is_some());
    }

    #[test]
    fn high_priority_borrowing_respects_flow_down_and_the_hour() {
        let cfg = BudgetConfig { per_day: 1000, per_hour: Some(600), flow_down: true, ..BudgetConfig::default() };
        let b = Budget::new(cfg);
        // Posts may take reply and quote's unused shares: 900.
        let p = b.reserve(GameTime(0), ContentType::Post, M, 500).unwrap();
        // The hour cap holds for high priority too.
        assert!(b.reserve(GameTime(0), ContentType::Reply, H, 101).is_none());
        let r = b.reserve(GameTime(0), ContentType::Reply, H, 100).unwrap();
        assert_eq!(r.parts(), [100, 0, 0, 0]);
        b.release(p);
        // Next hour: a high reply takes the 300 left in its share, then borrows the rest from
        // media, which with flow_down may use what the types above it left unused.
        let r2 = b.reserve(GameTime(3_600), ContentType::Reply, H, 600).unwrap();
        assert_eq!(r2.parts(), [300, 0, 0, 300]);
        let used = b.used_in_day(GameTime(0));
        assert_eq!(used.iter().sum::<u64>(), 700);
        for k in 0..4 {
            let limits = b.config().limits();
            assert!(used[..=k].iter().sum::<u64>() <= limits[..=k].iter().sum::<u64>(), "{used:?}");
        }
    }
}
