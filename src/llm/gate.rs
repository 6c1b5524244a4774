//! The gate every LLM-written line passes before it becomes (part of) a post: the same checks
//! the templates are held to, plus what only a model gets wrong.
//!
//! In order, the first failure names the reason ([`Rejection`]):
//! 1. **format**: [`super::prompt::check_text`] (length, echoes of the instructions, a
//!    taken-over model's talk), and at most `max_chars`;
//! 2. **banned**: a word or phrase of `templates/lexicon/banned.tsv` (links, profanity and
//!    slurs, model talk), as whole words;
//! 3. **language**: at least 85% of its letters ASCII and at least one common English word
//!    (the feed is English; a model drifting into another language or code is refused);
//! 4. **facts**: the fact checker ([`crate::check::FactChecker`]): no world entity, number or
//!    claim word the event does not carry (for a bank line, shared by many authors, only the
//!    event's own entities; for a post, also the author's own); and no capitalised name the
//!    event text lacks (a real-world name a model made up);
//!    a copy of the event text, or of the bank prompt's group descriptions, is refused as
//!    format;
//! 5. **stance**: the line's own valence (the event classifier run over the line) must not
//!    clearly oppose the feeling it was written for (intensity ≥ 0.5 the other way). Contest
//!    events (a win, a loss) are exempt: a rival fan's bitter line names the other side's win.
//!
//! A refused line is counted by reason ([`GateReport`]); the post keeps its template text.
//! Invariant: pure, no I/O after loading, never panics on any text.

use super::route::EventInfo;
use crate::check::FactChecker;
use crate::classify::Classifier;
use crate::error::{Error, Result};
use crate::events::{GameEvent, GameTime, Valence};
use crate::ids::UserId;
use crate::population::Population;
use crate::templates::Sentiment;
use serde::Serialize;
use std::collections::HashSet;

const BANNED: (&str, &str) = ("templates/lexicon/banned.tsv", include_str!("../../templates/lexicon/banned.tsv"));

/// Longest phrase-bank line, in characters (the bank prompt asks for 140).
pub const BANK_MAX_CHARS: usize = 200;

/// Intensity from which a line's valence counts as opposing its feeling.
const STANCE_MIN: f32 = 0.5;

/// Common English words: a line needs one.
const ENGLISH: [&str; 60] = [
    "the", "a", "an", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "is", "are", "was", "were",
    "be", "been", "it", "its", "this", "that", "what", "we", "our", "us", "i", "my", "me", "you", "your", "they",
    "their", "he", "she", "his", "her", "not", "no", "so", "just", "all", "can", "will", "do", "did", "have", "has",
    "from", "by", "up", "out", "how", "who", "again", "still", "never", "more", "than",
];

/// The bank prompt's own descriptions of a group: a line repeating them is an echo.
const PROMPT_PHRASES: [&str; 10] = [
    "people upset about it",
    "people glad about it",
    "no strong view",
    "bitter, disappointed",
    "shocked, sad",
    "annoyed, worried",
    "mildly interested",
    "neutral onlookers",
    "fans are celebrating",
    "fans are bitter",
];

/// A name the line uses that the event text does not have: a capitalised word inside a
/// sentence (or opening one as a possessive, "Germany's") that the event text lacks. Names of the world are the fact checker's; this catches
/// the real-world names a model invents ("France won" on a Spain–England final).
fn foreign_name(line: &str, event: &str) -> Option<String> {
    let known: Vec<String> = words(event);
    let toks: Vec<&str> = line.split_whitespace().collect();
    let mut start = true;
    for raw in &toks {
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        let ends = raw.ends_with(['.', '!', '?', ':']);
        let capital = w.chars().next().is_some_and(char::is_uppercase) && w.chars().skip(1).any(char::is_lowercase);
        let base = w.strip_suffix("'s").unwrap_or(w);
        if capital && base.len() > 1 && base != "I" && (!start || w.ends_with("'s")) {
            let lower = base.to_lowercase();
            if !known.contains(&lower) && !ENGLISH.contains(&lower.as_str()) && !raw.starts_with(['@', '#']) {
                return Some(base.to_string());
            }
        }
        start = ends;
    }
    None
}

/// Why a line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Length, echo, takeover talk.
    Format,
    /// A banned word or phrase.
    Banned,
    /// Not English.
    Language,
    /// A fact the event does not carry.
    Facts,
    /// Its valence opposes the feeling it was written for.
    Stance,
    /// A bank line sharing no word of substance with the event text.
    Topic,
}

/// Lines refused, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GateReport {
    /// Lines that passed.
    pub passed: u64,
    /// Refused for length, echo or takeover talk.
    pub format: u64,
    /// Refused for a banned word.
    pub banned: u64,
    /// Refused as not English.
    pub language: u64,
    /// Refused by the fact checker.
    pub facts: u64,
    /// Refused for opposing their feeling.
    pub stance: u64,
    /// Bank lines refused as not about the event.
    pub topic: u64,
}

impl GateReport {
    /// Counts one outcome.
    pub fn count<T>(&mut self, r: &std::result::Result<T, Rejection>) {
        match r {
            Ok(_) => self.passed += 1,
            Err(Rejection::Format) => self.format += 1,
            Err(Rejection::Banned) => self.banned += 1,
            Err(Rejection::Language) => self.language += 1,
            Err(Rejection::Facts) => self.facts += 1,
            Err(Rejection::Stance) => self.stance += 1,
            Err(Rejection::Topic) => self.topic += 1,
        }
    }

    /// Lines refused, all reasons.
    pub fn refused(&self) -> u64 {
        self.format + self.banned + self.language + self.facts + self.stance + self.topic
    }

    /// Adds another report.
    pub fn add(&mut self, o: &GateReport) {
        self.passed += o.passed;
        self.format += o.format;
        self.banned += o.banned;
        self.language += o.language;
        self.facts += o.facts;
        self.stance += o.stance;
        self.topic += o.topic;
    }
}

/// The gate: the event classifier (for entities and a line's valence), the fact checker and
/// the banned list.
#[derive(Clone, Debug)]
pub struct Gate {
    classifier: Classifier,
    checker: FactChecker,
    banned: Vec<Vec<String>>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '.'))
        .map(|w| w.trim_matches(|c: char| c == '.' || c == '\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

impl Gate {
    /// A gate with the shipped claims and banned list, over `classifier` (the pipeline's).
    pub fn embedded(classifier: Classifier) -> Result<Gate> {
        Gate::new(classifier, FactChecker::embedded()?, BANNED.0, BANNED.1)
    }

    /// A gate with a banned list read from `text` (named `file` in errors).
    pub fn new(classifier: Classifier, checker: FactChecker, file: &str, text: &str) -> Result<Gate> {
        let mut banned = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let w: Vec<String> = line.split_whitespace().map(str::to_lowercase).collect();
            if w.len() > 6 {
                return Err(Error::data(file, n + 1, "phrase", format!("at most 6 words, got {}", w.len())));
            }
            banned.push(w);
        }
        Ok(Gate { classifier, checker, banned })
    }

    /// As [`Gate::check`] for a phrase-bank line, also refusing (as format) a line made of
    /// its prompt's own words (at least 3 words that are not the event's, 70% of them found in
    /// the prompt outside the event text: the instructions and the group descriptions, which
    /// a small model parrots) and a line cut off by the token cap (ending on a word like
    /// "the"), and (as topic) a line sharing no word of substance with the event text (three
    /// letters or more, not a common word, a plural's `s` aside).
    pub fn check_bank_line(
        &self,
        population: &Population,
        event: &EventInfo,
        sentiment: Sentiment,
        prompt_words: &HashSet<String>,
        text: &str,
    ) -> std::result::Result<String, Rejection> {
        let t = self.check(population, None, event, sentiment, text, BANK_MAX_CHARS)?;
        let ev = words(&event.text);
        let mine = words(&t);
        let own: Vec<&String> = mine.iter().filter(|w| !ev.contains(w)).collect();
        let parroted = own.iter().filter(|w| prompt_words.contains(**w)).count();
        if own.len() >= 3 && parroted * 10 >= own.len() * 7 {
            return Err(Rejection::Format);
        }
        // A line cut off by the token cap ("... caused damage to the").
        if mine.last().is_some_and(|w| {
            ENGLISH.contains(&w.as_str()) && !matches!(w.as_str(), "it" | "us" | "me" | "again" | "still" | "more")
        }) {
            return Err(Rejection::Format);
        }
        // About this event: it shares a word of substance with the event text.
        let stem = |w: &str| w.trim_end_matches("'s").trim_end_matches('s').to_string();
        let content: Vec<String> =
            ev.iter().filter(|w| w.len() >= 3 && !ENGLISH.contains(&w.as_str())).map(|w| stem(w)).collect();
        if !content.is_empty() && !mine.iter().any(|w| content.contains(&stem(w))) {
            return Err(Rejection::Topic);
        }
        Ok(t)
    }

    /// The words of a prompt outside `event_text`, for [`Gate::check_bank_line`].
    pub fn prompt_words(prompt: &str, event_text: &str) -> HashSet<String> {
        let ev = words(event_text);
        words(prompt).into_iter().filter(|w| !ev.contains(w)).collect()
    }

    /// Checks `text`, written for `sentiment` about `event`, by `author` (or for a phrase
    /// bank, `None`). Returns the normalised text.
    pub fn check(
        &self,
        population: &Population,
        author: Option<UserId>,
        event: &EventInfo,
        sentiment: Sentiment,
        text: &str,
        max_chars: usize,
    ) -> std::result::Result<String, Rejection> {
        let t = super::prompt::check_text(text).ok_or(Rejection::Format)?;
        if t.chars().count() > max_chars {
            return Err(Rejection::Format);
        }
        let w = words(&t);
        let dotted = t.to_lowercase();
        if self.banned.iter().any(|b| {
            if b.len() == 1 && b[0].starts_with('.') {
                dotted.contains(&b[0])
            } else {
                w.windows(b.len()).any(|x| x == b.as_slice())
            }
        }) {
            return Err(Rejection::Banned);
        }
        let letters = t.chars().filter(|c| c.is_alphabetic()).count();
        let ascii = t.chars().filter(|c| c.is_ascii_alphabetic()).count();
        if letters == 0 || ascii * 100 < letters * 85 || !w.iter().any(|x| ENGLISH.contains(&x.as_str())) {
            return Err(Rejection::Language);
        }
        // A copy of the event text is not a post about it.
        let ev = words(&event.text);
        let shared = w.iter().filter(|x| ev.contains(x)).count();
        if !w.is_empty() && shared * 10 >= w.len() * 8 && w.len() * 10 >= ev.len() * 6 {
            return Err(Rejection::Format);
        }
        if PROMPT_PHRASES.iter().any(|p| dotted.contains(p)) {
            return Err(Rejection::Format);
        }
        let class = &event.class;
        if foreign_name(&t, &event.text).is_some_and(|n| self.classifier.entities_in(&n).is_empty()) {
            return Err(Rejection::Facts);
        }
        let facts = match author {
            Some(a) => self.checker.check(&self.classifier, population, a, class, &event.text, &t),
            None => self.checker.check_line(&self.classifier, population, class, &event.text, &t),
        };
        if !facts.is_empty() {
            return Err(Rejection::Facts);
        }
        if !class.frame.kind.is_contest() && sentiment != Sentiment::Neutral {
            let line = GameEvent {
                id: "line".into(),
                time: GameTime(0),
                text: t.clone(),
                category: Some(class.category),
                impact: None,
                valence: None,
                intensity: None,
                stakeholders: None,
                location: None,
                priority: None,
                audience: None,
                frame: None,
            };
            if let Ok(c) = self.classifier.classify(&line, 0) {
                let opposed = match sentiment {
                    Sentiment::Positive => c.valence == Valence::Negative,
                    Sentiment::Negative => c.valence == Valence::Positive,
                    Sentiment::Neutral => false,
                };
                if opposed && c.intensity >= STANCE_MIN {
                    return Err(Rejection::Stance);
                }
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_event_lacks_are_found() {
        let ev = "Spain beat England 2-1 in Berlin to win the European Championship final";
        assert_eq!(foreign_name("Even France would have won", ev).as_deref(), Some("France"));
        assert_eq!(foreign_name("Germany's team won the game", ev).as_deref(), Some("Germany"));
        assert_eq!(foreign_name("Real Madrid fans are quiet", ev).as_deref(), Some("Madrid"));
        assert_eq!(foreign_name("What a night for Spain in Berlin", ev), None);
        assert_eq!(foreign_name("Unbelievable. Spain did it!", ev), None);
        assert_eq!(foreign_name("so proud of @SpainFan and #Spain", ev), None);
    }
}
