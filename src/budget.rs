//! The hard token budget for LLM calls: tokens per game day (and optionally per game hour),
//! split by content type, reserved before a request is sent and reconciled with the `usage` the
//! server reports.
//!
//! Invariant: for every game day, tokens spent plus tokens reserved never exceed the day's
//! budget (nor a type's share, nor an hour's cap), whatever the number of concurrent callers
//! and retries: a reservation is taken under one lock before anything is sent, and only a
//! reconciliation with the server's reported usage turns it into spending. A reservation is an
//! upper bound (prompt bytes plus `max_tokens`: no tokenizer makes more tokens than bytes), so
//! reconciling never raises spending above what was reserved; a server reporting more than that
//! is counted in [`BudgetReport::overruns`].

use crate::events::GameTime;
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
    /// All types, most important first (the order unused shares flow down in).
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
    /// Tokens (prompt + completion) per game day (default 50,000; 0 turns the LLM off).
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
        BudgetConfig { per_day: 50_000, per_hour: None, shares: [0.4, 0.2, 0.3, 0.1], flow_down: false }
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
    /// Tokens held.
    pub tokens: u64,
}

#[derive(Default, Clone)]
struct Day {
    spent: [u64; 4],
    reserved: [u64; 4],
    hours: BTreeMap<i64, u64>,
}

impl Day {
    fn used(&self, i: usize) -> u64 {
        self.spent[i] + self.reserved[i]
    }
}

#[derive(Default)]
struct State {
    days: BTreeMap<i64, Day>,
    fallbacks: [u64; 4],
    refused: u64,
    overruns: u64,
    requests: u64,
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

    /// Reserves `tokens` of type `ty` in the game day (and hour) of `time`, or `None` if that
    /// would exceed the type's share, the day or the hour.
    pub fn reserve(&self, time: GameTime, ty: ContentType, tokens: u64) -> Option<Reservation> {
        let day = time.0.div_euclid(86_400);
        let hour = time.0.div_euclid(3_600);
        let mut st = self.lock();
        let d = st.days.entry(day).or_default();
        let i = ty.index();
        let fits = if self.config.flow_down {
            // Every prefix (types at or above each type at or below `ty`) stays within the sum
            // of its limits; the full prefix is the day's total.
            (i..4).all(|k| {
                let used: u64 = (0..=k).map(|j| d.used(j)).sum();
                let limit: u64 = self.limits[..=k].iter().sum();
                used + tokens <= limit
            })
        } else {
            d.used(i) + tokens <= self.limits[i]
        };
        let hour_ok = self.config.per_hour.is_none_or(|cap| d.hours.get(&hour).copied().unwrap_or(0) + tokens <= cap);
        if !(fits && hour_ok) || tokens == 0 {
            st.refused += 1;
            return None;
        }
        d.reserved[i] += tokens;
        *d.hours.entry(hour).or_default() += tokens;
        Some(Reservation { day, hour, ty, tokens })
    }

    /// Turns a reservation into spending of `actual` tokens (the server's reported usage).
    pub fn reconcile(&self, r: Reservation, actual: u64) {
        let mut st = self.lock();
        st.requests += 1;
        if actual > r.tokens {
            st.overruns += actual - r.tokens;
        }
        let d = st.days.entry(r.day).or_default();
        let i = r.ty.index();
        d.reserved[i] -= r.tokens;
        d.spent[i] += actual;
        let h = d.hours.entry(r.hour).or_default();
        *h = *h - r.tokens + actual;
    }

    /// Gives a reservation back unspent (the request was not sent, or the server refused it).
    pub fn release(&self, r: Reservation) {
        self.reconcile_inner(r);
    }

    fn reconcile_inner(&self, r: Reservation) {
        let mut st = self.lock();
        let d = st.days.entry(r.day).or_default();
        let i = r.ty.index();
        d.reserved[i] -= r.tokens;
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_refusal() {
        let b = Budget::new(BudgetConfig { per_day: 1000, ..BudgetConfig::default() });
        let r = b.reserve(GameTime(10), ContentType::Reply, 400).unwrap();
        assert!(b.reserve(GameTime(20), ContentType::Reply, 1).is_none());
        b.reconcile(r, 150);
        assert!(b.reserve(GameTime(20), ContentType::Reply, 250).is_some());
        // Another day has its own budget.
        assert!(b.reserve(GameTime(86_400 + 5), ContentType::Reply, 400).is_some());
        let rep = b.report();
        assert_eq!(rep.spent, [150, 0, 0, 0]);
        assert_eq!(rep.reserved, 650);
    }

    #[test]
    fn flow_down_takes_unused_share_from_above() {
        let cfg = BudgetConfig { per_day: 1000, flow_down: true, ..BudgetConfig::default() };
        let b = Budget::new(cfg);
        // Posts (300) may use the unused reply and quote shares: up to 900 in all.
        assert!(b.reserve(GameTime(0), ContentType::Post, 900).is_some());
        assert!(b.reserve(GameTime(0), ContentType::Post, 1).is_none());
        // Media still has its own 100.
        assert!(b.reserve(GameTime(0), ContentType::Media, 100).is_some());
        assert!(b.reserve(GameTime(0), ContentType::Reply, 1).is_none());
    }

    #[test]
    fn hour_cap() {
        let b = Budget::new(BudgetConfig { per_day: 1000, per_hour: Some(100), ..BudgetConfig::default() });
        assert!(b.reserve(GameTime(0), ContentType::Reply, 100).is_some());
        assert!(b.reserve(GameTime(10), ContentType::Reply, 1).is_none());
        assert!(b.reserve(GameTime(3_600), ContentType::Reply, 100).is_some());
    }
}
