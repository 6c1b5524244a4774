//! Reflections: short memories a user forms from their recent history, every N actions or after
//! an emotional peak, stored with an importance score and recalled into later posts by
//! recency, relevance and importance.
//!
//! The text comes from `templates/memory/reflections.tsv` (kind, sentiment, text with one
//! variable, `{{subject}}`); it is rendered when read, from the stored template id and subject,
//! so a reflection costs 16 bytes.
//!
//! Invariants: at most [`MAX_PER_USER`] reflections per user (the least important, then the
//! oldest, is forgotten); recall is a pure function of the store and its arguments.

use crate::error::{Error, Result};
use crate::jsonl::tsv_fields;
use std::collections::HashMap;

/// Most reflections kept per user.
pub const MAX_PER_USER: usize = 6;

/// What a reflection is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A run of actions about one subject with one feeling.
    Streak,
    /// An emotional peak.
    Peak,
    /// A returned hostility with another user.
    Feud,
    /// Their posts got engagement.
    Praise,
    /// Every N actions, nothing special.
    Routine,
}

const KINDS: [(&str, Kind); 5] = [
    ("streak", Kind::Streak),
    ("peak", Kind::Peak),
    ("feud", Kind::Feud),
    ("praise", Kind::Praise),
    ("routine", Kind::Routine),
];

/// What a subject code refers to.
pub mod subject {
    /// A world entity index is stored as is (`0..0x8000`).
    pub const ENTITY_MAX: u32 = 0x8000;
    /// A topic: `TOPIC + topic index`.
    pub const TOPIC: u32 = 0x8000;
    /// A user: `USER + user id`.
    pub const USER: u32 = 0x1_0000;
}

/// One stored reflection (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Reflection {
    /// Game minute it was formed.
    pub minute: u32,
    /// Subject: a world entity, `subject::TOPIC + topic` or `subject::USER + user id`.
    pub subject: u32,
    /// Template line in the bank.
    pub template: u16,
    /// Importance, 0..=255.
    pub importance: u8,
    /// Event category index it relates to (255: any).
    pub category: u8,
    /// Sentiment: -1, 0 or 1.
    pub sign: i8,
    /// Byte 0: 1 when the LLM wrote this reflection's text (see [`Reflections::written`]);
    /// the rest zero.
    pub reserved: [u8; 3],
}

impl Reflection {
    /// True when the LLM wrote its text.
    pub fn is_written(&self) -> bool {
        self.reserved[0] == 1
    }

    fn key(&self, u: u32) -> (u32, u32, u32, u16) {
        (u, self.minute, self.subject, self.template)
    }
}

/// The reflection texts.
#[derive(Clone, Debug)]
pub struct Bank {
    /// (kind, sign) -> (template id, text) list.
    by: HashMap<(Kind, i8), Vec<u16>>,
    texts: Vec<(Kind, i8, String)>,
}

impl Bank {
    /// The shipped bank.
    pub fn embedded() -> Result<Bank> {
        Bank::parse("templates/memory/reflections.tsv", include_str!("../../templates/memory/reflections.tsv"))
    }

    /// Parses a bank; errors name file, line and field.
    pub fn parse(file: &str, text: &str) -> Result<Bank> {
        let mut by: HashMap<(Kind, i8), Vec<u16>> = HashMap::new();
        let mut texts = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let f = tsv_fields(file, line, raw, 3)?;
            let kind = KINDS.iter().find(|k| k.0 == f[0]).map(|k| k.1).ok_or_else(|| {
                Error::data(file, line, "kind", format!("{:?} is not streak, peak, feud, praise or routine", f[0]))
            })?;
            let sign = match f[1] {
                "positive" => 1,
                "negative" => -1,
                "neutral" => 0,
                other => {
                    return Err(Error::data(
                        file,
                        line,
                        "sentiment",
                        format!("{other:?} is not positive, negative or neutral"),
                    ))
                }
            };
            let rest = f[2].replace("{{subject}}", "");
            if rest.contains("{{") || rest.contains("}}") {
                return Err(Error::data(file, line, "text", "the only variable is {{subject}}"));
            }
            if !f[2].contains("{{subject}}") {
                return Err(Error::data(file, line, "text", "must mention {{subject}}"));
            }
            by.entry((kind, sign)).or_default().push(texts.len() as u16);
            texts.push((kind, sign, f[2].to_string()));
        }
        for (name, kind) in KINDS {
            for sign in [-1i8, 1] {
                let needed = !(kind == Kind::Praise && sign < 0 || kind == Kind::Feud && sign > 0);
                if needed && !by.contains_key(&(kind, sign)) {
                    let s = if sign > 0 { "positive" } else { "negative" };
                    return Err(Error::data(
                        file,
                        crate::jsonl::last_line(text),
                        "-",
                        format!("no {s} {name} reflection"),
                    ));
                }
            }
        }
        Ok(Bank { by, texts })
    }

    /// Templates for a kind and sign (falls back to neutral, then any sign).
    pub fn choices(&self, kind: Kind, sign: i8) -> &[u16] {
        for s in [sign, 0, -sign] {
            if let Some(v) = self.by.get(&(kind, s)) {
                return v;
            }
        }
        &[]
    }

    /// The text of template `id` about `subject` (already named).
    pub fn render(&self, id: u16, subject: &str) -> String {
        self.texts.get(id as usize).map(|t| t.2.replace("{{subject}}", subject)).unwrap_or_default()
    }

    /// The kind of template `id`.
    pub fn kind(&self, id: u16) -> Option<Kind> {
        self.texts.get(id as usize).map(|t| t.0)
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// True if empty (never after a successful parse).
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// All users' reflections.
#[derive(Clone, Debug, Default)]
pub struct Reflections {
    by_user: super::IdMap<Vec<Reflection>>,
    formed: u64,
    /// LLM-written texts by (user, minute, subject, template), for reflections still held.
    texts: HashMap<(u32, u32, u32, u16), String>,
}

impl Reflections {
    /// None yet.
    pub fn new() -> Reflections {
        Reflections::default()
    }

    /// User `u`'s reflections, oldest first.
    pub fn of(&self, u: u32) -> &[Reflection] {
        self.by_user.get(&u).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Stores a reflection, forgetting the least important (then oldest) beyond the cap.
    pub fn add(&mut self, u: u32, r: Reflection) {
        self.formed += 1;
        let list = self.by_user.entry(u).or_default();
        list.push(r);
        if list.len() > MAX_PER_USER {
            let k = (0..list.len()).min_by_key(|&k| (list[k].importance, list[k].minute)).unwrap_or(0);
            let gone = list.remove(k);
            if gone.is_written() {
                self.texts.remove(&gone.key(u));
            }
        }
    }

    /// Gives user `u`'s reflection `r` a text of its own (the LLM's); false if `u` no longer
    /// holds it.
    pub fn write(&mut self, u: u32, r: &Reflection, text: String) -> bool {
        let Some(held) = self.by_user.get_mut(&u).and_then(|l| l.iter_mut().find(|x| x.key(u) == r.key(u))) else {
            return false;
        };
        held.reserved[0] = 1;
        self.texts.insert(r.key(u), text);
        true
    }

    /// The LLM-written text of user `u`'s reflection `r`, if it has one.
    pub fn written(&self, u: u32, r: &Reflection) -> Option<&str> {
        if r.is_written() {
            self.texts.get(&r.key(u)).map(String::as_str)
        } else {
            None
        }
    }

    /// The reflection of `u` most worth recalling for an event of `category` about `entity`
    /// at minute `now`: score = importance × recency (half-life 3 days) × relevance (×3 for the
    /// same subject, ×1.5 for the same category). `None` below a minimum score.
    pub fn recall(&self, u: u32, category: u8, entity: Option<u32>, now: u32) -> Option<&Reflection> {
        let mut best: Option<(f32, &Reflection)> = None;
        for r in self.of(u) {
            let days = now.saturating_sub(r.minute) as f32 / 1440.0;
            let recency = 0.5f32.powf(days / 3.0);
            let relevance = if entity == Some(r.subject) {
                3.0
            } else if r.category == category {
                1.5
            } else {
                0.5
            };
            let score = r.importance as f32 / 255.0 * recency * relevance;
            if best.is_none_or(|(s, b)| score > s || (score == s && r.minute > b.minute)) {
                best = Some((score, r));
            }
        }
        best.filter(|(s, _)| *s >= 0.4).map(|(_, r)| r)
    }

    /// Forgets the reflections formed before game minute `before` (and their texts), and the
    /// users left with none; returns how many went.
    pub fn forget_before(&mut self, before: u32) -> usize {
        let mut gone = 0;
        let texts = &mut self.texts;
        self.by_user.retain(|&u, list| {
            list.retain(|r| {
                let keep = r.minute >= before;
                if !keep {
                    gone += 1;
                    if r.is_written() {
                        texts.remove(&r.key(u));
                    }
                }
                keep
            });
            !list.is_empty()
        });
        gone
    }

    /// Reflections formed so far (including forgotten ones).
    pub fn formed(&self) -> u64 {
        self.formed
    }

    /// Reflections held.
    pub fn len(&self) -> usize {
        self.by_user.values().map(Vec::len).sum()
    }

    /// True if none are held.
    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Bytes held (approximate).
    pub fn bytes(&self) -> usize {
        self.by_user.capacity() * 32 + self.by_user.values().map(|v| v.capacity() * 16).sum::<usize>()
    }

    pub(crate) fn flat(&self) -> (u64, Vec<(u32, Reflection)>) {
        let mut out: Vec<(u32, Reflection)> =
            self.by_user.iter().flat_map(|(&u, l)| l.iter().map(move |&r| (u, r))).collect();
        // Stable within a user: list order is kept.
        out.sort_by_key(|x| x.0);
        (self.formed, out)
    }

    /// The LLM-written texts, sorted by key, for snapshots.
    pub(crate) fn flat_texts(&self) -> Vec<((u32, u32, u32, u16), String)> {
        let mut out: Vec<_> = self.texts.iter().map(|(&k, t)| (k, t.clone())).collect();
        out.sort_unstable_by_key(|x| x.0);
        out
    }

    /// Rebuilds from [`Reflections::flat`] and [`Reflections::flat_texts`]; `None` if a text
    /// has no written reflection or a written reflection no text.
    pub(crate) fn from_flat(
        formed: u64,
        items: Vec<(u32, Reflection)>,
        texts: Vec<((u32, u32, u32, u16), String)>,
    ) -> Option<Reflections> {
        let mut by_user: super::IdMap<Vec<Reflection>> = super::IdMap::default();
        let mut written = 0;
        for (u, r) in items {
            written += r.is_written() as usize;
            by_user.entry(u).or_default().push(r);
        }
        let texts: HashMap<_, _> = texts.into_iter().collect();
        let found = by_user
            .iter()
            .flat_map(|(&u, l)| l.iter().filter(|r| r.is_written()).map(move |r| r.key(u)))
            .filter(|k| texts.contains_key(k))
            .count();
        (found == written && texts.len() == written).then_some(Reflections { by_user, formed, texts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_reflections_are_forgotten_with_their_texts() {
        let r = |minute: u32| Reflection {
            minute,
            subject: 7,
            template: 1,
            importance: 200,
            category: 0,
            sign: 1,
            reserved: [0; 3],
        };
        let mut rs = Reflections::new();
        rs.add(1, r(10));
        rs.add(1, r(5_000));
        rs.add(2, r(20));
        assert!(rs.write(1, &r(10), "a text the LLM wrote".into()));
        assert_eq!(rs.forget_before(1_000), 2);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs.of(1).len(), 1);
        assert!(rs.of(2).is_empty());
        assert!(rs.texts.is_empty(), "the forgotten one's text goes with it");
        assert_eq!(rs.formed(), 3, "formed counts every one ever formed");
    }

    #[test]
    fn the_shipped_bank_loads_and_bad_lines_are_named() {
        let b = Bank::embedded().unwrap();
        assert!(b.len() >= 30);
        let id = b.choices(Kind::Streak, -1)[0];
        assert_eq!(b.render(id, "the Redhawks"), "I'm done defending the Redhawks.");
        for (line, want) in [
            ("streak\tpositive\tno subject here", "r.tsv:1: text: must mention"),
            ("streak\tpositive\t{{subject}} {{what}}", "r.tsv:1: text: the only variable"),
            ("mood\tpositive\t{{subject}}", "r.tsv:1: kind:"),
            ("streak\tglad\t{{subject}}", "r.tsv:1: sentiment:"),
        ] {
            let err = Bank::parse("r.tsv", line).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn recall_weighs_relevance_recency_and_importance() {
        let mut r = Reflections::new();
        let mk = |minute, subject, importance, category| Reflection {
            minute,
            subject,
            template: 0,
            importance,
            category,
            sign: -1,
            reserved: [0; 3],
        };
        r.add(1, mk(0, 5, 200, 0));
        r.add(1, mk(100, 9, 200, 1));
        assert_eq!(r.recall(1, 0, Some(5), 200).map(|x| x.subject), Some(5));
        assert_eq!(r.recall(1, 1, Some(9), 200).map(|x| x.subject), Some(9));
        // A month later nothing is worth recalling.
        assert!(r.recall(1, 0, Some(5), 200 + 30 * 1440).is_none());
        for k in 0..10 {
            r.add(2, mk(k, k, (k * 20) as u8, 0));
        }
        assert_eq!(r.of(2).len(), MAX_PER_USER);
        assert!(r.of(2).iter().all(|x| x.importance >= 80));
    }

    #[test]
    fn written_texts_follow_their_reflections() {
        let mut r = Reflections::new();
        let mk = |minute, importance| Reflection {
            minute,
            subject: 3,
            template: 1,
            importance,
            category: 0,
            sign: 0,
            reserved: [0; 3],
        };
        r.add(7, mk(10, 50));
        let held = r.of(7)[0];
        assert!(r.written(7, &held).is_none());
        assert!(r.write(7, &held, "I keep coming back to this.".into()));
        assert!(!r.write(8, &held, "not theirs".into()), "only a reflection the user holds");
        let held = r.of(7)[0];
        assert_eq!(r.written(7, &held), Some("I keep coming back to this."));
        let (formed, flat) = r.flat();
        let back = Reflections::from_flat(formed, flat.clone(), r.flat_texts()).unwrap();
        assert_eq!(back.written(7, &back.of(7)[0]), Some("I keep coming back to this."));
        assert!(Reflections::from_flat(formed, flat, vec![]).is_none(), "a written flag without its text");
        // Forgotten (least important), its text goes too.
        for k in 0..MAX_PER_USER as u32 {
            r.add(7, mk(20 + k, 100));
        }
        assert!(r.of(7).iter().all(|x| !x.is_written()));
        assert!(r.flat_texts().is_empty());
    }
}
