//! Event frames: what happened (a kind from a fixed vocabulary per category), to whom (roles:
//! winner, loser, actor, target, person, place, each a world entity or the headline's own
//! words), and with which numbers (score, money, percentage, count...). Frames come from the
//! pattern file `templates/lexicon/frames.tsv` (kind cues, role patterns, titles), or from the
//! game, which knows its facts and may send a typed frame with the event.
//!
//! Templates read the frame's facts through slots (`{{winner}}`, `{{score}}`, `{{place}}`...);
//! a template is used only when the frame carries every fact it names.
//!
//! Invariants: extraction does no I/O, never panics on any text, and is a pure function of
//! (lexicon, world, event text, category, entity matches). A typed frame is validated field by
//! field (`frame.kind`, `frame.winner`, `frame.score`...), and a bad one is an error for its
//! event only.

mod lexicon;
mod numbers;

pub use lexicon::{FrameLexicon, EMBEDDED_FRAMES};
pub use numbers::parse_score;

use crate::events::Category;
use crate::world::EntityIdx;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// The frame kinds of a category (besides `other`, which every category has), in the
/// documented order (`templates/lexicon/README.md`).
pub fn kinds_of(c: Category) -> &'static [&'static str] {
    match c {
        Category::Sports => &[
            "win",
            "loss",
            "draw",
            "upset",
            "record",
            "injury",
            "transfer",
            "sacking",
            "suspension",
            "retirement",
            "qualification",
            "schedule",
        ],
        Category::Politics => &[
            "election_result",
            "resignation",
            "scandal",
            "law_passed",
            "protest",
            "poll",
            "appointment",
            "policy",
            "summit",
        ],
        Category::Entertainment => &["release", "award", "controversy", "tour", "death", "announcement", "record"],
        Category::Tech => &["launch", "outage", "breach", "update", "regulation"],
        Category::Business => &[
            "merger",
            "layoffs",
            "earnings",
            "launch",
            "strike",
            "deal",
            "prices",
            "bankruptcy",
            "expansion",
            "market",
        ],
        Category::Science => &["discovery", "mission", "study"],
        Category::Health => &["outbreak", "vaccine", "trial", "recall", "study", "staffing"],
        Category::Weather => &["forecast", "heat", "cold", "storm_warning", "rain", "snow", "record"],
        Category::Disaster => &["flood", "fire", "quake", "storm", "crash", "collapse", "explosion", "rescue"],
        Category::Crime => &["arrest", "charge", "verdict", "theft", "hack", "fraud", "violence", "crime_rate"],
        Category::Gaming => &["release", "delay", "update", "tournament", "stream", "outage", "record", "ban"],
    }
}

/// A frame kind: `other` (index 0) or one of [`kinds_of`] its category (index 1..).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    /// The category the kind belongs to.
    pub category: Category,
    /// 0 for `other`, else 1 + the position in [`kinds_of`].
    pub index: u8,
}

impl Kind {
    /// `other` in category `c`.
    pub fn other(c: Category) -> Kind {
        Kind { category: c, index: 0 }
    }

    /// The kind named `name` in category `c`.
    pub fn find(c: Category, name: &str) -> Option<Kind> {
        if name == "other" {
            return Some(Kind::other(c));
        }
        kinds_of(c).iter().position(|k| *k == name).map(|i| Kind { category: c, index: i as u8 + 1 })
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self.index {
            0 => "other",
            i => kinds_of(self.category).get(i as usize - 1).copied().unwrap_or("other"),
        }
    }

    /// Whether the kind is a contest with a winner and a loser.
    pub fn is_contest(self) -> bool {
        matches!(self.name(), "win" | "loss" | "draw" | "upset" | "election_result")
    }

    /// Whether the event is grave (deaths, disasters, violence): no laughing or celebrating
    /// emoji, no jokes.
    pub fn is_grave(self) -> bool {
        matches!(self.category, Category::Disaster)
            || matches!(self.name(), "death" | "violence" | "outbreak")
            || (self.category == Category::Crime && self.name() != "crime_rate")
    }

    /// Kinds of all categories (for vocabulary checks): (category, kind).
    pub fn all() -> impl Iterator<Item = Kind> {
        Category::ALL
            .into_iter()
            .flat_map(|c| (0..=kinds_of(c).len() as u8).map(move |index| Kind { category: c, index }))
    }
}

/// A role an entity plays in the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleName {
    /// The side that won a contest.
    Winner,
    /// The side that lost it.
    Loser,
    /// Who did the thing.
    Actor,
    /// Who or what it was done to.
    Target,
    /// A named person not in another role.
    Person,
    /// Where it happened.
    Place,
}

impl RoleName {
    /// Every role, in slot order.
    pub const ALL: [RoleName; 6] =
        [RoleName::Winner, RoleName::Loser, RoleName::Actor, RoleName::Target, RoleName::Person, RoleName::Place];

    /// Lowercase name, as in event JSON and templates.
    pub fn name(self) -> &'static str {
        ["winner", "loser", "actor", "target", "person", "place"][self as usize]
    }

    /// By name.
    pub fn from_name(s: &str) -> Option<RoleName> {
        RoleName::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Who plays a role: the headline's words, and the world entity when it is one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Role {
    /// The words naming it ("Argentina", "Harbor City Redhawks").
    pub text: String,
    /// The world entity's id, when it is one.
    #[serde(rename = "entity", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The world entity, when it is one.
    #[serde(skip)]
    pub entity: Option<EntityIdx>,
}

/// What a number in the event means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Meaning {
    /// A result, "3-1".
    Score,
    /// An amount of money, "$5 million".
    Money,
    /// A percentage, "20%".
    Percent,
    /// A count of something, "400 jobs".
    Count,
    /// A measure: magnitude, temperature, distance, duration.
    Measure,
    /// A calendar year.
    Year,
    /// Anything else ("1.2 million").
    Amount,
}

/// A number of the event with its meaning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Number {
    /// As written, with its unit ("1.2 million", "400 jobs", "magnitude 6.1").
    pub text: String,
    /// What it is.
    pub meaning: Meaning,
}

/// The frame of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// What happened.
    pub kind: Kind,
    /// The roles, indexed by [`RoleName`].
    pub roles: [Option<Role>; 6],
    /// The result, "3-1", when there is one.
    pub score: Option<String>,
    /// The other numbers, in order.
    pub numbers: Vec<Number>,
    /// True when the game sent the frame (it overrides extraction).
    pub given: bool,
    /// How users name the event when it names nobody ("the layoffs"), from the lexicon; empty
    /// when the kind has none.
    pub noun: String,
}

/// Slot bits of [`Frame::slots`], by role (`1 << role`), then score and number.
pub const SLOT_SCORE: u16 = 1 << 6;
/// The bit of a main number.
pub const SLOT_NUMBER: u16 = 1 << 7;

impl Frame {
    /// An empty frame of kind `other`.
    pub fn empty(c: Category) -> Frame {
        Frame {
            kind: Kind::other(c),
            roles: Default::default(),
            score: None,
            numbers: Vec::new(),
            given: false,
            noun: String::new(),
        }
    }

    /// The role `r`, if the event has it.
    pub fn role(&self, r: RoleName) -> Option<&Role> {
        self.roles[r as usize].as_ref()
    }

    /// The number a `{{number}}` slot names: the first that is not a year.
    pub fn main_number(&self) -> Option<&Number> {
        self.numbers.iter().find(|n| n.meaning != Meaning::Year && n.meaning != Meaning::Score)
    }

    /// Which slots the frame can fill: bit `1 << role` per role, [`SLOT_SCORE`],
    /// [`SLOT_NUMBER`].
    pub fn slots(&self) -> u16 {
        let mut s = 0;
        for r in RoleName::ALL {
            if self.roles[r as usize].is_some() {
                s |= 1 << r as u16;
            }
        }
        if self.score.is_some() {
            s |= SLOT_SCORE;
        }
        if self.main_number().is_some() {
            s |= SLOT_NUMBER;
        }
        s
    }

    /// The world entities of the frame with the role they play.
    pub fn entities(&self) -> impl Iterator<Item = (RoleName, EntityIdx)> + '_ {
        RoleName::ALL.into_iter().filter_map(|r| self.role(r).and_then(|x| x.entity).map(|e| (r, e)))
    }
}

impl Serialize for Frame {
    /// `{"kind": "win", "winner": {"text", "entity"?}, ..., "score"?, "numbers"?, "given"?}`.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind.name())?;
        for r in RoleName::ALL {
            if let Some(role) = self.role(r) {
                m.serialize_entry(r.name(), role)?;
            }
        }
        if let Some(score) = &self.score {
            m.serialize_entry("score", score)?;
        }
        if !self.numbers.is_empty() {
            m.serialize_entry("numbers", &self.numbers)?;
        }
        if self.given {
            m.serialize_entry("given", &true)?;
        }
        m.end()
    }
}

/// A token of event text: its lowercase form and where it stands in the text.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// Lowercase, apostrophes normalised, a trailing `'s` dropped.
    pub lower: String,
    /// Byte range of the token (after trimming) in the text.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
    /// Whether the token opens with an uppercase letter.
    pub capital: bool,
}

/// Splits text into word tokens (letters, digits, inner apostrophes; a trailing possessive
/// `'s` dropped), keeping where each stands. `classify::tokenize` is this, lowercased.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    let flush = |from: usize, to: usize, out: &mut Vec<Token>| {
        let raw = &text[from..to];
        let trimmed_start = raw.len() - raw.trim_start_matches(['\'', '’']).len();
        let mut core = raw.trim_matches(['\'', '’']);
        if let Some(c) = core.strip_suffix("'s").or_else(|| core.strip_suffix("’s")) {
            core = c;
        }
        if core.is_empty() {
            return;
        }
        let mut lower = String::with_capacity(core.len());
        for c in core.chars() {
            if c == '’' {
                lower.push('\'');
            } else {
                lower.extend(c.to_lowercase());
            }
        }
        let s = from + trimmed_start;
        out.push(Token {
            lower,
            start: s,
            end: s + core.len(),
            // "Paris", "iPhone", "xQuasar": an uppercase first letter, or one inside.
            capital: core.chars().next().is_some_and(char::is_uppercase)
                || (core.chars().next().is_some_and(char::is_lowercase)
                    && core.chars().skip(1).any(char::is_uppercase)),
        });
    };
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take() {
            flush(s, i, &mut out);
        }
    }
    if let Some(s) = start {
        flush(s, text.len(), &mut out);
    }
    out
}

/// The longest phrase (up to `max` tokens) that `lookup` knows at each position, left to
/// right: (first token, token count, what `lookup` gave), the next search starting after it.
/// `lookup` gets the tokens joined by spaces and their count. The one phrase matcher of the
/// classifier's lexicon, the frame cues and the fact checker.
pub fn longest_matches<V>(
    tokens: &[&str],
    max: usize,
    mut lookup: impl FnMut(&str, usize) -> Option<V>,
) -> Vec<(usize, usize, V)> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut i = 0;
    while i < tokens.len() {
        let mut step = 1;
        for n in (1..=max.min(tokens.len() - i)).rev() {
            key.clear();
            for (j, t) in tokens[i..i + n].iter().enumerate() {
                if j > 0 {
                    key.push(' ');
                }
                key.push_str(t);
            }
            if let Some(v) = lookup(&key, n) {
                out.push((i, n, v));
                step = n;
                break;
            }
        }
        i += step;
    }
    out
}

/// A crude English stem for matching word forms the cue list does not spell out: one of the
/// endings -ing, -ed, -es, -s removed, then a doubled final consonant or a final e
/// ("stunned" and "stuns" -> "stun", "delaying" -> "delay", "resigned" -> "resign").
pub fn stem(word: &str) -> String {
    // Only plain ASCII words have these endings (and byte slicing is safe on them).
    if !word.is_ascii() {
        return word.to_string();
    }
    let mut w = word;
    for end in ["ing", "ed", "es", "s"] {
        if let Some(x) = w.strip_suffix(end) {
            if x.len() >= 3 {
                w = x;
                break;
            }
        }
    }
    let b = w.as_bytes();
    let n = b.len();
    let doubled = n >= 4 && b[n - 1] == b[n - 2] && !b"aeiouls".contains(&b[n - 1]);
    if doubled || (n >= 4 && b[n - 1] == b'e') {
        w = &w[..n - 1];
    }
    w.to_string()
}
