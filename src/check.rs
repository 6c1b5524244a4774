//! The fact checker: a post may state only what its event carries. It fails a post that names
//! a world entity that is neither in the event (stakeholders, frame roles) nor the author's own
//! (team, party, favourites, town), a score or number the event text does not have, or a claim
//! word ("comeback", "overtime", "trailer": `templates/lexicon/claims.tsv`) without the event
//! text's evidence for it. Templates are written to pass it; tests run it over every labelled
//! event, and LLM lines can be held to it the same way.
//!
//! Invariant: pure; no I/O after loading; never panics on any text.

use crate::classify::{tokenize, Classification, Classifier};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::jsonl::tsv_fields;
use crate::population::Population;
use crate::world::{EntityIdx, EntityKind};

/// Why a post failed the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A claim word without the event's evidence.
    Claim(String),
    /// A world entity that is neither the event's nor the author's.
    Entity(String),
    /// A number (or score) the event text does not have.
    Number(String),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Claim(c) => write!(f, "claim {c:?} without evidence in the event"),
            Violation::Entity(e) => write!(f, "names {e}, which is not in the event nor the author's own"),
            Violation::Number(n) => write!(f, "number {n:?} is not in the event"),
        }
    }
}

/// The numbers of a text as written: runs of digits with inner `.` or `,`, not inside a word.
fn numbers_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || (matches!(b[i], b'.' | b',') && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(text[start..i].to_string());
        } else {
            i += 1;
        }
    }
    out
}

/// Claim words and the evidence each needs (`claims.tsv`).
#[derive(Clone, Debug)]
pub struct FactChecker {
    /// (claim tokens, evidence phrases as tokens).
    claims: Vec<(Vec<String>, Vec<Vec<String>>)>,
}

/// The shipped claims file.
pub const EMBEDDED_CLAIMS: (&str, &str) =
    ("templates/lexicon/claims.tsv", include_str!("../templates/lexicon/claims.tsv"));

fn contains(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A team's league and home town: named along with the team.
fn team_places(world: &crate::world::World, e: EntityIdx) -> Option<[EntityIdx; 2]> {
    match world.entities.get(e as usize).map(|x| &x.kind) {
        Some(EntityKind::Team { league, town, .. }) => Some([*league, *town]),
        _ => None,
    }
}

/// The world entities any post about `class` may name: the event's (the frame's are among
/// the stakeholders), a team with its league and home town. Once per event; [`may_name`] adds
/// the author's own.
pub fn event_entities(population: &Population, class: &Classification) -> Vec<EntityIdx> {
    let world = population.world();
    let mut allowed: Vec<EntityIdx> = class.stakes(world).map(|(e, _)| e).collect();
    for e in allowed.clone() {
        allowed.extend(team_places(world, e).into_iter().flatten());
    }
    allowed
}

/// Whether a post by `author` may name world entity `e`, given the event's
/// [`event_entities`]: one of those, or the author's own ([`Population::supports`]: team,
/// party, favourites, town, and their team's league and home town).
pub fn may_name(population: &Population, author: UserId, event: &[EntityIdx], e: EntityIdx) -> bool {
    let own_team = population.columns().affiliations[author.index()].team;
    event.contains(&e)
        || population.supports(author, e)
        || team_places(population.world(), own_team).is_some_and(|p| p.contains(&e))
}

impl FactChecker {
    /// The shipped claims.
    pub fn embedded() -> Result<FactChecker> {
        FactChecker::parse(EMBEDDED_CLAIMS.0, EMBEDDED_CLAIMS.1)
    }

    /// Parses a claims file: `claim<TAB>evidence|evidence...`.
    pub fn parse(file: &str, text: &str) -> Result<FactChecker> {
        let mut claims = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let f = tsv_fields(file, i + 1, raw, 2)?;
            let claim = tokenize(f[0]);
            if claim.is_empty() || claim.len() > 4 {
                return Err(Error::data(file, i + 1, "claim", format!("{:?} must be 1-4 words", f[0])));
            }
            let evidence = f[1].split('|').map(tokenize).filter(|e| !e.is_empty()).collect();
            claims.push((claim, evidence));
        }
        Ok(FactChecker { claims })
    }

    /// What is wrong with `text`, a post by `author` about the event `event_text` as
    /// `class`ified; empty when it states only the event's facts.
    pub fn check(
        &self,
        classifier: &Classifier,
        population: &Population,
        author: UserId,
        class: &Classification,
        event_text: &str,
        text: &str,
    ) -> Vec<Violation> {
        self.violations(classifier, population, Some(author), class, event_text, text)
    }

    /// As [`FactChecker::check`] for a line nobody owns yet (an LLM phrase-bank line, shared
    /// by many authors): it may name only the event's own entities.
    pub fn check_line(
        &self,
        classifier: &Classifier,
        population: &Population,
        class: &Classification,
        event_text: &str,
        text: &str,
    ) -> Vec<Violation> {
        self.violations(classifier, population, None, class, event_text, text)
    }

    fn violations(
        &self,
        classifier: &Classifier,
        population: &Population,
        author: Option<UserId>,
        class: &Classification,
        event_text: &str,
        text: &str,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        // Handles and hashtags are names of accounts and tags, not claims.
        let plain: String =
            text.split_whitespace().filter(|w| !w.starts_with(['@', '#'])).collect::<Vec<_>>().join(" ");
        let post = tokenize(&plain);
        let event = tokenize(event_text);
        for (claim, evidence) in &self.claims {
            if contains(&post, claim) && !contains(&event, claim) && !evidence.iter().any(|e| contains(&event, e)) {
                out.push(Violation::Claim(claim.join(" ")));
            }
        }
        // Numbers as written ("102", "6.25", "1,200"); "b4" is slang.
        let known = numbers_in(event_text);
        for n in numbers_in(&plain) {
            if !known.contains(&n) {
                out.push(Violation::Number(n));
            }
        }
        let world = population.world();
        let allowed = event_entities(population, class);
        // A world name inside a frame role's own words ("United" in "Manchester United") is
        // that role, not the world entity.
        let mut unnamed = plain.to_lowercase();
        for role in class.frame.roles.iter().flatten().filter(|r| r.entity.is_none()) {
            unnamed = unnamed.replace(&role.text.to_lowercase(), " ");
        }
        for e in classifier.entities_in(&unnamed) {
            let ok = match author {
                Some(a) => may_name(population, a, &allowed, e),
                None => allowed.contains(&e),
            };
            if !ok {
                out.push(Violation::Entity(world.entity(e).name.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SeedSet, World};

    #[test]
    fn claims_numbers_and_foreign_names_fail() {
        let world = World::embedded().expect("world");
        let seeds = SeedSet::embedded(&world).expect("seeds");
        let population = Population::generate(&seeds, &world, 2_000, 3).expect("population");
        let classifier = Classifier::embedded(&world).expect("classifier");
        let checker = FactChecker::embedded().expect("claims");
        let text = "Redhawks beat the Ironclads 102-99";
        let event =
            crate::events::parse_event(1, &format!(r#"{{"id": "x", "time": 0, "text": "{text}"}}"#)).expect("event");
        let class = classifier.classify(&event, 1).expect("classified");
        let check = |post: &str| checker.check(&classifier, &population, UserId(0), &class, text, post);
        assert!(check("What a night, the Redhawks won 102-99 @fan_99 #Hawks2").is_empty());
        assert_eq!(check("That comeback though"), vec![Violation::Claim("comeback".into())]);
        assert_eq!(check("Won 3-1, easy"), vec![Violation::Number("3".into()), Violation::Number("1".into())]);
        assert!(check("b4 the 102, gr8").is_empty());
        let other = check("Unlike the Bellhaven Comets");
        assert!(other.iter().all(|v| matches!(v, Violation::Entity(_))) && other.len() <= 1, "{other:?}");
        let overtime = "Redhawks beat the Ironclads in overtime";
        assert!(checker.check(&classifier, &population, UserId(0), &class, overtime, "overtime thriller").is_empty());
    }
}
