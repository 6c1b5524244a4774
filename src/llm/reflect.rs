//! LLM-written reflections: the reflections the state update forms from templates
//! ([`crate::state::reflect`]) are rewritten in each user's voice by the LLM, at low priority,
//! when a budget is configured.
//!
//! Low priority means: reflections are sent after the posts of a run have had the budget
//! (`chorus run` resolves them last), only while at least `min_left` of the day's `post` share
//! is unspent, at most `per_event` per event, in groups of `batch` users per prompt
//! (`templates/prompts/reflection.hbs`), never retried. A reflection the LLM does not write
//! keeps its template text; nothing else depends on it.
//!
//! Invariants: user content enters the prompt only fenced (see [`super::prompt::fence`]); a
//! text is stored only after [`super::prompt::check_text`]; the budget is reserved before a
//! request and reconciled with the server's usage, as for posts.

use super::prompt::{fence, parse_batch};
use super::{completion, wire::Shape, Llm};
use crate::budget::ContentType;
use crate::events::GameTime;
use crate::ids::UserId;
use crate::population::Population;
use crate::state::reflect::Reflection;
use crate::state::{subject_name, UserState};
use crate::timeline::PostKind;
use crate::Result;
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};

/// The shipped reflection prompt.
pub const REFLECTION_TEMPLATE: &str = include_str!("../../templates/prompts/reflection.hbs");

/// When and how much the LLM rewrites reflections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReflectionConfig {
    /// Rewrite reflections at all (default true; without an LLM they stay template-made).
    pub enabled: bool,
    /// Most reflections rewritten per event (default 10).
    pub per_event: usize,
    /// Users per prompt (default 10).
    pub batch: usize,
    /// Spend only while at least this fraction of the day's `post` share is unspent
    /// (default 0.5).
    pub min_left: f64,
}

impl Default for ReflectionConfig {
    fn default() -> Self {
        ReflectionConfig { enabled: true, per_event: 10, batch: 10, min_left: 0.5 }
    }
}

/// A reflection to rewrite, with what the prompt says about its user.
#[derive(Clone, Debug)]
pub struct ReflectionRequest {
    /// Whose.
    pub user: u32,
    /// The reflection as formed.
    pub reflection: Reflection,
    /// One line of profile facts.
    pub voice: String,
    /// Mood word at the reflection's time.
    pub mood: &'static str,
    /// The template text: what the thought says.
    pub gist: String,
    /// The user's last few actions, described.
    pub lately: String,
}

/// What rewriting a set of reflections came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReflectionReport {
    /// Reflections offered.
    pub offered: usize,
    /// Written by the LLM.
    pub written: usize,
    /// Not sent: the budget's `post` share was below `min_left` (or refused the reservation).
    pub skipped_for_budget: usize,
    /// Sent but not written (an error, a missing or a rejected line).
    pub failed: usize,
    /// Requests sent.
    pub requests: usize,
}

/// The requests for reflections `formed` (user, reflection), at most `per_event` of them,
/// the most important first (then in formation order).
pub fn requests(
    population: &Population,
    state: &UserState,
    formed: &[(u32, Reflection)],
    per_event: usize,
) -> Vec<ReflectionRequest> {
    // Only reflections still held: a user who formed several in one update may have let an
    // earlier one go (the per-user limit), and a text for it would have nowhere to live.
    let held = |(u, r): &(u32, Reflection)| {
        state
            .reflections()
            .of(*u)
            .iter()
            .any(|x| (x.minute, x.subject, x.template) == (r.minute, r.subject, r.template))
    };
    let mut order: Vec<usize> = (0..formed.len()).filter(|&k| held(&formed[k])).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(formed[k].1.importance), k));
    order.truncate(per_event);
    order.sort_unstable();
    order
        .into_iter()
        .map(|k| {
            let (u, r) = formed[k];
            let lately: Vec<String> = state
                .history()
                .recent(u)
                .take(5)
                .map(|h| {
                    let what = match PostKind::from_code(h.kind()) {
                        Some(PostKind::Post) => "posted",
                        Some(PostKind::Reply) => "replied",
                        Some(PostKind::Quote) => "quoted",
                        Some(PostKind::Gif) => "answered with a GIF",
                        Some(PostKind::Repost) => "reposted",
                        Some(PostKind::Like) => "liked a post",
                        None => "acted",
                    };
                    let side = match h.stance.signum() {
                        1 => " (for)",
                        -1 => " (against)",
                        _ => "",
                    };
                    let mut s = what.to_string();
                    if h.other != u32::MAX {
                        s += &format!(" to @{}", population.handle(UserId(h.other)));
                    }
                    if h.entity != u16::MAX {
                        s += &format!(" about {}", subject_name(population, h.entity as u32));
                    }
                    s + side
                })
                .collect();
            ReflectionRequest {
                user: u,
                reflection: r,
                voice: super::route::voice(population, UserId(u)).0,
                mood: state.mood(population, u, r.minute).word(),
                gist: state.reflection_text(population, u, &r),
                lately: lately.join("; "),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct UserView {
    id: String,
    voice: String,
    mood: &'static str,
    gist: String,
    lately: String,
}

#[derive(Serialize)]
struct View {
    users: Vec<UserView>,
}

/// Renders reflection prompts.
pub struct ReflectionPrompts {
    hb: Handlebars<'static>,
}

impl ReflectionPrompts {
    /// The shipped template.
    pub fn embedded() -> Result<ReflectionPrompts> {
        Ok(ReflectionPrompts {
            hb: super::prompt::registry("reflection", "templates/prompts/reflection.hbs", REFLECTION_TEMPLATE)?,
        })
    }

    /// The prompt for `requests`, with ids "1".."n" in order.
    pub fn render(&self, requests: &[ReflectionRequest]) -> Result<String> {
        let users = requests
            .iter()
            .enumerate()
            .map(|(i, r)| UserView {
                id: (i + 1).to_string(),
                voice: fence(&r.voice),
                mood: r.mood,
                gist: fence(&r.gist),
                lately: fence(&r.lately),
            })
            .collect();
        self.hb.render("reflection", &View { users }).map_err(|e| crate::Error::Config(format!("prompt template: {e}")))
    }
}

impl Llm {
    /// Rewrites `requests` (reflections formed by game time `time`) at low priority and stores
    /// each text the LLM writes in `state`. See the module documentation for the rules.
    pub fn write_reflections(
        &self,
        state: &mut UserState,
        requests: &[ReflectionRequest],
        time: GameTime,
    ) -> Result<ReflectionReport> {
        let (texts, mut report) = self.compose_reflections(requests, time)?;
        report.written = 0;
        for (r, text) in requests.iter().zip(texts) {
            if let Some(t) = text {
                if state.write_reflection(r.user, &r.reflection, t) {
                    report.written += 1;
                } else {
                    report.failed += 1; // forgotten meanwhile
                }
            }
        }
        Ok(report)
    }

    /// The LLM's texts for `requests` (by position; `None`: not sent or not written), without
    /// storing them: for a caller that holds the state elsewhere (the engine thread).
    pub fn compose_reflections(
        &self,
        requests: &[ReflectionRequest],
        time: GameTime,
    ) -> Result<(Vec<Option<String>>, ReflectionReport)> {
        let config = &self.config.reflections;
        let mut report = ReflectionReport { offered: requests.len(), ..ReflectionReport::default() };
        let mut out: Vec<Option<String>> = vec![None; requests.len()];
        if !config.enabled {
            report.skipped_for_budget = requests.len();
            return Ok((out, report));
        }
        let prompts = ReflectionPrompts::embedded()?;
        let ty = ContentType::Post;
        let size = config.batch.max(1);
        for (g, group) in requests.chunks(size).enumerate() {
            let limit = self.budget.config().limits()[ty.index()];
            let used = self.budget.used_in_day(time)[ty.index()];
            if limit == 0 || (limit.saturating_sub(used) as f64) < config.min_left * limit as f64 {
                report.skipped_for_budget += group.len();
                continue;
            }
            let prompt = prompts.render(group)?;
            let max_tokens = self.config.max_tokens_base + self.config.max_tokens_per_item * group.len() as u32;
            let body = self.wire().body(&prompt, max_tokens, self.config.seed, Shape::Lines(group.len()))?;
            let Some(res) =
                self.budget.reserve(time, ty, crate::events::Priority::Low, self.reservation(&prompt, max_tokens))
            else {
                report.skipped_for_budget += group.len();
                continue;
            };
            report.requests += 1;
            let x = self.transport.send(&body, 0);
            let content = if x.status == 200 { completion(&x.body) } else { None };
            let Some(c) = content else {
                // As for posts: a timeout may have done the work, so it is charged; a refusal is not.
                if x.status == 0 && (x.body.starts_with("timeout") || x.body.starts_with("transport")) {
                    let all = res.tokens;
                    self.budget.reconcile(res, all);
                    self.charge_ledger("-", "reflection", all, all);
                } else {
                    let planned = res.tokens;
                    self.budget.release(res);
                    self.charge_ledger("-", "reflection", planned, 0);
                }
                report.failed += group.len();
                continue;
            };
            let actual = c.usage.map(|u| u.total_tokens).unwrap_or(res.tokens);
            self.charge_ledger("-", "reflection", res.tokens, actual);
            self.budget.reconcile(res, actual);
            for (k, text) in parse_batch(&c.content, group.len()).into_iter().enumerate() {
                match text {
                    Some(t) => {
                        report.written += 1;
                        out[g * size + k] = Some(t);
                    }
                    None => report.failed += 1,
                }
            }
        }
        Ok((out, report))
    }
}
