//! Per-event phrase banks: one grouped LLM call per important event asks for a bank of short
//! lines per (side, feeling, tone) group, written about *this* event's frame (kind, roles,
//! score, place, numbers); then every eligible template post of that group draws its key line
//! from the bank, framed and styled for its author by the template engine
//! ([`Templates::around_line`]). One call of about a thousand tokens gives text to hundreds of
//! posts, where one post per call costs as much per post.
//!
//! **Which events, in which order.** An event gets a bank when at least
//! [`BankConfig::min_posts`] of its posts are eligible (root posts and quotes with template
//! text, not routed to the LLM on their own). Banks are requested in order of importance,
//! `impact × audience` (impact: local 1, national 2, global 3; audience: the eligible posts),
//! the event's position breaking ties, so when the budget runs short the events most people
//! read get their banks first.
//!
//! **Groups.** Eligible posts fall into groups by the author's feeling about the event
//! (positive, negative, neutral: for a contest, the winner's fans, the loser's fans and the
//! rest) and tone (formal, casual, slangy, from the persona). The `max_groups` largest with at
//! least `min_group_posts` posts are asked for, `lines` lines each.
//!
//! **Budget.** A bank's reservation is its prompt (by the server's observed tokens per byte)
//! plus `lines × groups × tokens_per_line` for the answer; it spends from every type's unused
//! share (a bank serves them all) within `day_share` of each game day (see
//! [`crate::budget::Budget::reserve_bank`]). When the room left is smaller, the bank asks for
//! fewer lines (down to `min_lines`), then fewer groups, so the end of a day's budget is still
//! spent.
//!
//! **Use.** Every line passes the gate ([`super::gate`], with [`super::gate::Gate::check_bank_line`]:
//! a line parroting the prompt is refused too); duplicates are dropped. A post of a group whose
//! bank has lines takes one with probability `share` (a draw keyed by (seed, post, author)),
//! each line serving at most `max_uses` posts (root posts are served before quotes); its
//! source is `bank`. The others keep their
//! template text.
//!
//! Invariant: the requests are a pure function of the run's posts; with the same exchanges
//! (live or replayed) the same posts get the same texts.

pub use super::route::Tone;
use super::route::{fnv, EventInfo, Router};
use super::wire::Shape;
use super::{Attempt, Llm, Outcome};
use crate::classify::Classification;
use crate::events::{GameEvent, GameTime, Impact};
use crate::frame::{Meaning, RoleName};
use crate::ids::UserId;
use crate::population::Population;
use crate::rng::Stream;
use crate::templates::{Sentiment, Templates};
use crate::timeline::{Post, PostId, PostKind, Source};
use crate::Result;
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Domain tag of the draws that give posts their bank line.
const BANK: u64 = 0x6261_6e6b;

/// The shipped bank prompt.
pub const BANK_TEMPLATE: &str = include_str!("../../templates/prompts/bank.hbs");

/// Longest bank line, in characters (the prompt asks for 140).
pub use super::gate::BANK_MAX_CHARS as MAX_LINE;

/// Phrase-bank settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BankConfig {
    /// Write phrase banks at all (default true).
    pub enabled: bool,
    /// Eligible posts an event needs for a bank (default 30).
    pub min_posts: usize,
    /// Eligible posts a group needs to be asked for (default 4).
    pub min_group_posts: usize,
    /// Groups per bank at most (default 6).
    pub max_groups: usize,
    /// Lines asked per group (default 8).
    pub lines: usize,
    /// Fewest lines per group worth asking for when the budget is short (default 3).
    pub min_lines: usize,
    /// Completion tokens reserved per line (default 40: 140 characters are about 35 tokens,
    /// plus JSON quoting).
    pub tokens_per_line: u32,
    /// Completion tokens reserved per bank besides its lines (default 24).
    pub tokens_base: u32,
    /// Share of a group's eligible posts that take a bank line (default 0.6; the others keep
    /// their templates, so a burst still reads varied).
    pub share: f64,
    /// Share of each game day's budget all banks may spend together (default 0.8: the rest is
    /// for posts the LLM writes one by one).
    pub day_share: f64,
    /// Posts one line may serve at most (default 30), so a burst does not read as one voice.
    pub max_uses: usize,
    /// Times a bank that kept fewer lines than it has groups is asked again (default 1).
    pub retries: u32,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            enabled: true,
            min_posts: 30,
            min_group_posts: 4,
            max_groups: 6,
            lines: 8,
            min_lines: 3,
            tokens_per_line: 40,
            tokens_base: 24,
            share: 0.6,
            day_share: 0.8,
            max_uses: 30,
            retries: 1,
        }
    }
}

/// One group of a bank: a feeling and a tone, with its eligible posts.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The authors' feeling about the event.
    pub sentiment: Sentiment,
    /// Their tone.
    pub tone: Tone,
    /// Eligible posts (post id, author): root posts first, then quotes, each in post order.
    pub posts: Vec<(PostId, UserId)>,
}

/// A bank to ask for: one event's groups.
#[derive(Clone, Debug)]
pub struct BankRequest {
    /// The event.
    pub event: Arc<EventInfo>,
    /// Its game time (the budget day).
    pub time: GameTime,
    /// Its position in the run (breaks ties of importance).
    pub index: u32,
    /// `impact × audience`.
    pub importance: f64,
    /// Eligible posts of all groups.
    pub audience: usize,
    /// Its groups, largest first.
    pub groups: Vec<Group>,
}

/// What the banks did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BankReport {
    /// Events that qualified for a bank.
    pub requested: u64,
    /// Banks written (at least one line came back).
    pub written: u64,
    /// Banks not asked for: the day's bank budget could not pay for even the smallest.
    pub skipped_for_budget: u64,
    /// Banks asked for but without a usable line (faults, or every line refused).
    pub failed: u64,
    /// Lines kept (after the gate and de-duplication).
    pub lines: u64,
    /// Duplicate lines dropped.
    pub duplicates: u64,
    /// Posts whose text now carries a bank line.
    pub posts: u64,
    /// Tokens the banks spent (as the server reported).
    pub tokens: u64,
}

impl BankReport {
    /// Posts carrying LLM text per 1,000 tokens the banks spent.
    pub fn posts_per_kilotoken(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.posts as f64 * 1000.0 / self.tokens as f64
        }
    }
}

fn impact_weight(i: Impact) -> f64 {
    match i {
        Impact::Local => 1.0,
        Impact::National => 2.0,
        Impact::Global => 3.0,
    }
}

impl Router {
    /// The phrase bank one event's `posts` call for, if any: its eligible posts (root posts
    /// and quotes with template text that [`Router::route`] does not send on their own) in
    /// groups by feeling and tone.
    pub fn bank(
        &self,
        population: &Population,
        config: &BankConfig,
        event: &GameEvent,
        class: &Classification,
        index: u32,
        posts: &[Post],
    ) -> Option<BankRequest> {
        if !config.enabled {
            return None;
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut audience = 0;
        for p in posts {
            if !matches!(p.kind, PostKind::Post | PostKind::Quote)
                || p.source != Source::Template
                || p.text.is_none()
                || self.route(population, event, class, p).is_some()
            {
                continue;
            }
            audience += 1;
            let tone = Tone::of(population, p.author);
            match groups.iter_mut().find(|g| g.sentiment == p.sentiment && g.tone == tone) {
                Some(g) => g.posts.push((p.id, p.author)),
                None => groups.push(Group { sentiment: p.sentiment, tone, posts: vec![(p.id, p.author)] }),
            }
        }
        if audience < config.min_posts.max(1) {
            return None;
        }
        // Root posts first: when a bank's lines run out of uses, the posts the feed leads with
        // have them, and quotes take what is left.
        let quotes: std::collections::HashSet<PostId> =
            posts.iter().filter(|p| p.kind == PostKind::Quote).map(|p| p.id).collect();
        for g in &mut groups {
            g.posts.sort_by_key(|(id, _)| quotes.contains(id));
        }
        groups.retain(|g| g.posts.len() >= config.min_group_posts.max(1));
        // Largest first; ties in a fixed order.
        groups.sort_by(|a, b| {
            b.posts.len().cmp(&a.posts.len()).then((a.sentiment as u8, a.tone).cmp(&(b.sentiment as u8, b.tone)))
        });
        groups.truncate(config.max_groups.max(1));
        if groups.is_empty() {
            return None;
        }
        Some(BankRequest {
            event: Arc::new(EventInfo::new(event, class)),
            time: event.time,
            index,
            importance: impact_weight(class.impact) * audience as f64,
            audience,
            groups,
        })
    }
}

/// Renders bank prompts.
pub struct BankPrompts {
    hb: Handlebars<'static>,
}

#[derive(Serialize)]
struct GroupView {
    id: usize,
    who: String,
    feeling: &'static str,
    tone: &'static str,
}

#[derive(Serialize)]
struct BankView {
    category: &'static str,
    kind: &'static str,
    event: String,
    facts: String,
    groups: Vec<GroupView>,
    lines: usize,
}

/// Who a group is, and how it feels, from the frame: for a contest with a winner and a loser,
/// the fans of each; otherwise people glad, upset or unsure about it.
fn who(class: &Classification, s: Sentiment) -> (String, &'static str) {
    let f = &class.frame;
    let grave = f.kind.is_grave();
    let name = |r: RoleName| f.role(r).map(|x| super::prompt::field(&x.text));
    match (f.kind.is_contest(), name(RoleName::Winner), name(RoleName::Loser), s) {
        (true, Some(w), _, Sentiment::Positive) => (format!("fans of {w}"), "celebrating"),
        (true, _, Some(l), Sentiment::Negative) => (format!("fans of {l}"), "bitter, disappointed"),
        (true, _, _, Sentiment::Neutral) => ("neutral onlookers".into(), "mildly interested"),
        (_, _, _, Sentiment::Positive) => ("people glad about it".into(), if grave { "relieved" } else { "pleased" }),
        (_, _, _, Sentiment::Negative) => {
            ("people upset about it".into(), if grave { "shocked, sad" } else { "annoyed, worried" })
        }
        (_, _, _, Sentiment::Neutral) => ("people with no strong view".into(), "curious"),
    }
}

/// The facts a bank may name: the frame's roles, score and numbers.
fn facts(class: &Classification) -> Vec<String> {
    let f = &class.frame;
    let mut out = Vec::new();
    for r in RoleName::ALL {
        if let Some(role) = f.role(r) {
            out.push(format!("{}: {}", r.name(), super::prompt::field(&role.text)));
        }
    }
    if let Some(score) = &f.score {
        out.push(format!("score: {}", super::prompt::field(score)));
    }
    for n in &f.numbers {
        if n.meaning != Meaning::Score {
            out.push(format!("number: {}", super::prompt::field(&n.text)));
        }
    }
    out
}

impl BankPrompts {
    /// The shipped template.
    pub fn embedded() -> Result<BankPrompts> {
        BankPrompts::new(BANK_TEMPLATE)
    }

    /// From a handlebars template source.
    pub fn new(template: &str) -> Result<BankPrompts> {
        Ok(BankPrompts { hb: super::prompt::registry("bank", "templates/prompts/bank.hbs", template)? })
    }

    /// The prompt for the first `groups` groups of `req`, `lines` lines each.
    pub fn render(&self, req: &BankRequest, groups: usize, lines: usize) -> Result<String> {
        let class = &req.event.class;
        let view = BankView {
            category: req.event.category.name(),
            kind: class.frame.kind.name(),
            event: super::prompt::fence(&req.event.text),
            facts: facts(class).join("; "),
            groups: req
                .groups
                .iter()
                .take(groups)
                .enumerate()
                .map(|(i, g)| {
                    let (who, feeling) = who(class, g.sentiment);
                    GroupView { id: i + 1, who, feeling, tone: g.tone.words() }
                })
                .collect(),
            lines,
        };
        self.hb.render("bank", &view).map_err(|e| crate::Error::Config(format!("bank prompt template: {e}")))
    }
}

/// Reads a bank answer leniently: every JSON object with an `id` among `1..=groups` and a
/// `lines` array (one per line, embedded in other text, or wrapped as `{"groups": [...]}`)
/// fills that group; the first answer for an id wins. Lines are raw (unchecked) strings.
pub fn parse_bank(content: &str, groups: usize) -> Vec<Vec<String>> {
    fn take(v: &serde_json::Value, out: &mut [Vec<String>], seen: &mut [bool]) {
        let id = match v.get("id") {
            Some(serde_json::Value::String(s)) => s.trim().parse::<usize>().ok(),
            Some(serde_json::Value::Number(x)) => x.as_u64().map(|x| x as usize),
            _ => None,
        };
        match (id, v.get("lines").and_then(|l| l.as_array())) {
            (Some(id), Some(lines)) if id >= 1 && id <= out.len() => {
                if !seen[id - 1] {
                    seen[id - 1] = true;
                    out[id - 1] = lines.iter().filter_map(|l| l.as_str().map(str::to_string)).collect();
                }
            }
            _ => match v {
                serde_json::Value::Object(m) => m.values().for_each(|x| take(x, out, seen)),
                serde_json::Value::Array(a) => a.iter().for_each(|x| take(x, out, seen)),
                _ => {}
            },
        }
    }
    let mut out = vec![Vec::new(); groups];
    let mut seen = vec![false; groups];
    super::prompt::json_objects(content, |v| take(v, &mut out, &mut seen));
    out
}

/// A model's hashtags are not the user's: a trailing run of them goes, an inner one keeps its
/// word ("#Redhawks win" → "Redhawks win").
pub fn strip_tags(line: &str) -> String {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    while words.last().is_some_and(|w| w.starts_with('#')) {
        words.pop();
    }
    words.iter().map(|w| w.strip_prefix('#').unwrap_or(w)).collect::<Vec<_>>().join(" ")
}

impl Llm {
    /// Writes the phrase banks of `requests` (in importance order, within the budget) and
    /// gives the posts that take a line their new text. Needs the gate ([`Llm::with_gate`]);
    /// without one no bank is written.
    pub fn write_banks(
        &self,
        mut requests: Vec<BankRequest>,
        population: &Population,
        templates: &Templates,
    ) -> Vec<Outcome> {
        let Some(gate) = &self.gate else { return Vec::new() };
        let config = &self.config.banks;
        requests.sort_by(|a, b| b.importance.total_cmp(&a.importance).then(a.index.cmp(&b.index)));
        let cap = (self.budget.config().per_day as f64 * config.day_share.clamp(0.0, 1.0)).floor() as u64;
        let mut out = Vec::new();
        for req in &requests {
            self.stats().banks.requested += 1;
            // Gated, de-duplicated lines per group. A line is kept once per group; the same
            // line in groups of different feelings is kept in the first only (a line that fits
            // both fits neither). A bank that kept fewer lines than it has groups is asked
            // again (another seed), `retries` times at most, while the budget pays.
            let mut kept: Vec<Vec<String>> = vec![Vec::new(); req.groups.len()];
            let mut seen: std::collections::HashMap<String, Sentiment> = Default::default();
            let mut asked = false;
            for round in 0..=config.retries {
                // The largest bank the day's room pays for: fewer lines first, then fewer groups.
                let room = self.budget.bank_room(req.time, cap);
                let mut chosen = None;
                'fit: for groups in (1..=req.groups.len()).rev() {
                    for lines in (config.min_lines.max(1)..=config.lines.max(1)).rev() {
                        let Ok(prompt) = self.banks.render(req, groups, lines) else { break 'fit };
                        let max_tokens = config.tokens_base + config.tokens_per_line * (groups * lines) as u32;
                        if self.reservation(&prompt, max_tokens) <= room {
                            chosen = Some((groups, lines, prompt, max_tokens));
                            break 'fit;
                        }
                    }
                }
                let Some((groups, lines, prompt, max_tokens)) = chosen else {
                    if round == 0 {
                        self.stats().banks.skipped_for_budget += 1;
                    }
                    break;
                };
                asked = true;
                let Some(raw) = self.ask_bank(req, &prompt, max_tokens, groups, lines, cap, round) else { continue };
                let mut report = super::gate::GateReport::default();
                let prompt_words = super::gate::Gate::prompt_words(&prompt, &req.event.text);
                let mut duplicates = 0;
                for ((g, lines), mine) in req.groups.iter().take(groups).zip(raw).zip(kept.iter_mut()) {
                    for line in lines {
                        let r = gate.check_bank_line(
                            population,
                            &req.event,
                            g.sentiment,
                            &prompt_words,
                            &strip_tags(&line),
                        );
                        report.count(&r);
                        if let Ok(t) = r {
                            let low = t.to_lowercase();
                            let first = *seen.entry(low.clone()).or_insert(g.sentiment);
                            if first == g.sentiment && !mine.iter().any(|m| m.to_lowercase() == low) {
                                mine.push(t);
                            } else {
                                duplicates += 1;
                            }
                        }
                    }
                }
                {
                    let mut s = self.stats();
                    s.gate.add(&report);
                    s.banks.duplicates += duplicates;
                }
                if kept.iter().map(Vec::len).sum::<usize>() >= groups {
                    break;
                }
            }
            if !asked {
                continue;
            }
            let total: usize = kept.iter().map(Vec::len).sum();
            {
                let mut s = self.stats();
                s.banks.lines += total as u64;
                if total == 0 {
                    s.banks.failed += 1;
                } else {
                    s.banks.written += 1;
                }
            }
            let grave = req.event.class.frame.kind.is_grave();
            let mut used = 0u64;
            for (g, lines) in req.groups.iter().zip(&kept) {
                if lines.is_empty() {
                    continue;
                }
                let mut uses = vec![0usize; lines.len()];
                for &(post, author) in &g.posts {
                    let mut rng = Stream::new(population.config().seed, BANK, post.0, author.0 as u64);
                    if !rng.chance(config.share) {
                        continue;
                    }
                    // A line serves at most `max_uses` posts: the next one with room, from a drawn start.
                    let start = rng.below(lines.len() as u64) as usize;
                    let Some(k) =
                        (0..lines.len()).map(|d| (start + d) % lines.len()).find(|&k| uses[k] < config.max_uses)
                    else {
                        break;
                    };
                    uses[k] += 1;
                    let line = &lines[k];
                    let key = post.0 ^ fnv(&[line.as_bytes()]);
                    let text =
                        templates.around_line(population, author, req.event.category, g.sentiment, grave, key, line);
                    out.push(Outcome { post, text, source: Source::Bank });
                    used += 1;
                }
            }
            self.stats().banks.posts += used;
        }
        out
    }

    /// Sends one bank request with retries; the answer's groups of raw lines, or `None`.
    #[allow(clippy::too_many_arguments)]
    fn ask_bank(
        &self,
        req: &BankRequest,
        prompt: &str,
        max_tokens: u32,
        groups: usize,
        lines: usize,
        cap: u64,
        round: u32,
    ) -> Option<Vec<Vec<String>>> {
        let shape = Shape::Bank { groups, lines };
        let mut tries = 0u32;
        while tries <= self.config.client.max_retries {
            tries += 1;
            // Each round (a bank asked again) and each retry samples with its own seed.
            let seed = self.config.seed.wrapping_add(tries as u64 - 1).wrapping_add(round as u64 * 1_000);
            let body = self.wire().body(prompt, max_tokens, seed, shape).ok()?;
            let estimate = self.reservation(prompt, max_tokens);
            let res = self.budget.reserve_bank(req.time, estimate, cap)?;
            match self.attempt(&body, 0, tries, res, prompt.len(), (&req.event.id, "bank")) {
                Attempt::Answer(c) => {
                    let raw = parse_bank(&c.content, groups);
                    if raw.iter().any(|g| !g.is_empty()) {
                        return Some(raw);
                    }
                    self.stats().faults.missing_items += 1;
                }
                Attempt::Retry => {}
                Attempt::Stop => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_answers_are_read_in_every_shape() {
        let lines = "{\"id\":1,\"lines\":[\"one here\",\"two here\"]}\nnoise {\"id\": \"2\", \"lines\": [\"three\"]}";
        assert_eq!(parse_bank(lines, 2), vec![vec!["one here".to_string(), "two here".into()], vec!["three".into()]]);
        let wrapped =
            r#"{"groups": [{"id": 2, "lines": ["b"]}, {"id": 1, "lines": ["a"]}, {"id": 9, "lines": ["x"]}]}"#;
        assert_eq!(parse_bank(wrapped, 2), vec![vec!["a".to_string()], vec!["b".to_string()]]);
        assert_eq!(parse_bank("{\"id\":1,\"lines\":[\"cut", 1), vec![Vec::<String>::new()]);
    }

    #[test]
    fn a_models_hashtags_go() {
        assert_eq!(strip_tags("#Redhawks win it #Cup #Final"), "Redhawks win it");
        assert_eq!(strip_tags("no tags here"), "no tags here");
    }
}
