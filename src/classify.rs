//! Event classification: category, impact, valence with intensity, stakeholders and
//! controversy, from lexicons kept as data files (`templates/lexicon/*.tsv`) and the world's
//! entity names. Rule-based and fast; hints from the game override.
//!
//! Invariants: classification does no I/O and never panics on any text; it is a pure
//! function of (lexicon, world, event). Loading a lexicon validates every line and names
//! file:line:field on error.

use crate::error::{Error, Result};
use crate::events::{Category, EventError, GameEvent, Impact, Valence};
use crate::frame::{longest_matches, Frame, FrameLexicon, Kind, RoleName};
use crate::jsonl::tsv_fields;
use crate::taxonomy::Topic;
use crate::world::{EntityIdx, EntityKind, World};
use serde::Serialize;
use std::collections::HashMap;

const CATS: usize = Category::ALL.len();
/// Longest phrase (in tokens) looked up.
const MAX_NGRAM: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Modifier {
    /// Scales the next sentiment word.
    Intensifier(f32),
    /// Flips (and damps) a sentiment word within the next three tokens.
    Negator(f32),
    /// A decrease ("fall", "lower"): next to a negative word it turns it positive
    /// ("burglaries fall"), and its own score is dropped.
    Reverser(f32),
    /// An increase ("rise", "surge"): next to a negative word its own score is dropped
    /// ("infections rise" stays negative).
    Increaser,
    /// A resolution ("restored", "rescued", "acquits"): anywhere in the text, it scales every
    /// negative word ("service restored after an outage" is good news) and keeps its own score.
    Resolver(f32),
}

#[derive(Clone, Debug, Default)]
struct Term {
    category: [f32; CATS],
    valence: Option<f32>,
    modifier: Option<Modifier>,
    impact: Option<Impact>,
    controversy: f32,
    entities: Vec<EntityIdx>,
}

/// The lexicons: terms (single words or phrases) with their category weights, valence,
/// modifiers, impact cues and controversy weights.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    terms: HashMap<String, Term>,
    /// Event kinds, role patterns and name rules (`frames.tsv`).
    frames: FrameLexicon,
}

/// The lexicon files, by name, as shipped in `templates/lexicon/`.
pub const EMBEDDED_LEXICON: [(&str, &str); 5] = [
    ("templates/lexicon/categories.tsv", include_str!("../templates/lexicon/categories.tsv")),
    ("templates/lexicon/valence.tsv", include_str!("../templates/lexicon/valence.tsv")),
    ("templates/lexicon/modifiers.tsv", include_str!("../templates/lexicon/modifiers.tsv")),
    ("templates/lexicon/impact.tsv", include_str!("../templates/lexicon/impact.tsv")),
    ("templates/lexicon/controversy.tsv", include_str!("../templates/lexicon/controversy.tsv")),
];

/// Splits text into lowercase word tokens (letters, digits, inner apostrophes; a trailing
/// possessive `'s` is dropped).
pub fn tokenize(text: &str) -> Vec<String> {
    crate::frame::tokens(text).into_iter().map(|t| t.lower).collect()
}

fn phrase(text: &str) -> String {
    tokenize(text).join(" ")
}

fn number(file: &str, line: usize, field: &str, s: &str, lo: f32, hi: f32) -> Result<f32> {
    let v: f32 = s.parse().map_err(|_| Error::data(file, line, field, format!("{s:?} is not a number")))?;
    crate::jsonl::check_range(file, line, field, v, lo as f64, hi as f64)?;
    Ok(v)
}

impl Lexicon {
    /// The lexicon shipped in `templates/lexicon/`, embedded in the binary.
    pub fn embedded() -> Result<Lexicon> {
        let mut lex = Lexicon::parse(&EMBEDDED_LEXICON)?;
        lex.frames = FrameLexicon::embedded()?;
        Ok(lex)
    }

    /// Loads the five lexicon files and `frames.tsv` from a directory.
    pub fn load(dir: &std::path::Path) -> Result<Lexicon> {
        let mut texts = Vec::new();
        for (name, _) in EMBEDDED_LEXICON {
            let file = name.rsplit('/').next().unwrap_or(name);
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            texts.push((path.display().to_string(), text));
        }
        let refs: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut lex = Lexicon::parse(&refs)?;
        let path = dir.join("frames.tsv");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        lex.frames = FrameLexicon::parse(&path.display().to_string(), &text)?;
        Ok(lex)
    }

    /// Parses the files `categories`, `valence`, `modifiers`, `impact`, `controversy` (in that
    /// order) given as (file name, text). The frame lexicon stays empty (every event of kind
    /// `other`) until set by [`Lexicon::embedded`] or [`Lexicon::load`].
    pub fn parse(files: &[(&str, &str)]) -> Result<Lexicon> {
        let mut lex = Lexicon::default();
        for (k, (file, text)) in files.iter().enumerate() {
            for (i, raw) in text.lines().enumerate() {
                let line = i + 1;
                if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
                    continue;
                }
                match k {
                    0 => {
                        let f = tsv_fields(file, line, raw, 3)?;
                        let cat = Category::from_name(f[0]).ok_or_else(|| {
                            Error::data(file, line, "category", format!("unknown category {:?}", f[0]))
                        })?;
                        let w = number(file, line, "weight", f[1], 0.0, 10.0)?;
                        lex.term(file, line, f[2])?.category[cat as usize] += w;
                    }
                    1 => {
                        let f = tsv_fields(file, line, raw, 2)?;
                        let s = number(file, line, "score", f[1], -5.0, 5.0)?;
                        lex.term(file, line, f[0])?.valence = Some(s);
                    }
                    2 => {
                        let f = tsv_fields(file, line, raw, 3)?;
                        let v = number(file, line, "value", f[2], -2.0, 3.0)?;
                        let m = match f[0] {
                            "intensifier" | "downtoner" => Modifier::Intensifier(v),
                            "negator" => Modifier::Negator(v),
                            "reverser" => Modifier::Reverser(v),
                            "increaser" => Modifier::Increaser,
                            "resolver" => Modifier::Resolver(v),
                            other => {
                                return Err(Error::data(file, line, "kind", format!("unknown modifier kind {other:?}")))
                            }
                        };
                        lex.term(file, line, f[1])?.modifier = Some(m);
                    }
                    3 => {
                        let f = tsv_fields(file, line, raw, 2)?;
                        let impact = match f[0] {
                            "local" => Impact::Local,
                            "national" => Impact::National,
                            "global" => Impact::Global,
                            other => {
                                return Err(Error::data(file, line, "impact", format!("unknown impact {other:?}")))
                            }
                        };
                        lex.term(file, line, f[1])?.impact = Some(impact);
                    }
                    _ => {
                        let f = tsv_fields(file, line, raw, 2)?;
                        let w = number(file, line, "weight", f[1], 0.0, 1.0)?;
                        lex.term(file, line, f[0])?.controversy = w;
                    }
                }
            }
        }
        Ok(lex)
    }

    fn term(&mut self, file: &str, line: usize, text: &str) -> Result<&mut Term> {
        let p = phrase(text);
        let n = p.split(' ').count();
        if p.is_empty() || n > MAX_NGRAM {
            return Err(Error::data(file, line, "term", format!("{text:?} must be 1-{MAX_NGRAM} words")));
        }
        Ok(self.terms.entry(p).or_default())
    }

    /// Number of distinct terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// The classification of one event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    /// The event id.
    pub id: String,
    /// Category.
    pub category: Category,
    /// Reach.
    pub impact: Impact,
    /// Direction.
    pub valence: Valence,
    /// Strength of feeling in `[0, 1]`.
    pub intensity: f32,
    /// World entity ids involved.
    pub stakeholders: Vec<String>,
    /// How divisive, in `[0, 1]`.
    pub controversy: f32,
    /// Share of the category evidence that went to the chosen category, in `[0, 1]`; 0 when
    /// nothing matched.
    pub confidence: f32,
    /// True when no lexicon term or entity gave category evidence (no template fits well).
    pub novel: bool,
    /// The event's audience tags (only users with one of them react); empty for everyone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// What happened, to whom, with which numbers.
    pub frame: Frame,
    /// Per stakeholder (same order): +1 when the event's valence is how its fans see it, -1
    /// when they see the opposite (the loser of a win, the winner of a loss).
    #[serde(skip)]
    pub sides: Vec<i8>,
}

/// How much the frame lexicon's strongest kind cue of a category adds to the category's score.
const CUE_SHARE: f32 = 0.3;

/// How much a kind's own polarity (layoffs are bad news, a rescue good) adds to the valence
/// sum of the text's words.
const KIND_PRIOR: f32 = 0.75;

impl Classification {
    /// The stakeholders that are world entities, each with its side (see
    /// [`Classification::sides`]; +1 where none is given).
    pub fn stakes<'a>(&'a self, world: &'a World) -> impl Iterator<Item = (EntityIdx, i8)> + 'a {
        let sides = self.sides.iter().copied().chain(std::iter::repeat(1));
        self.stakeholders.iter().zip(sides).filter_map(|(id, side)| world.find(id).map(|e| (e, side)))
    }
}

/// A classifier: the lexicon merged with the world's entity names.
#[derive(Clone, Debug)]
pub struct Classifier {
    lexicon: Lexicon,
    world: World,
}

fn topic_category(t: Topic) -> Category {
    match t {
        Topic::Sports => Category::Sports,
        Topic::Politics => Category::Politics,
        Topic::Tech => Category::Tech,
        Topic::Business | Topic::Finance => Category::Business,
        Topic::Science => Category::Science,
        Topic::Health => Category::Health,
        Topic::Gaming => Category::Gaming,
        Topic::Weather => Category::Weather,
        Topic::Crime => Category::Crime,
        _ => Category::Entertainment,
    }
}

impl Classifier {
    /// Builds a classifier from a lexicon and a world (entity names, short names and aliases
    /// become phrases that mark stakeholders).
    pub fn new(mut lexicon: Lexicon, world: &World) -> Classifier {
        for (i, e) in world.entities.iter().enumerate() {
            let mut names = vec![e.name.clone(), e.id.replace('-', " ")];
            names.extend(e.aliases.iter().cloned());
            if let EntityKind::Team { short, .. } | EntityKind::Party { short, .. } = &e.kind {
                names.push(short.clone());
            }
            for name in names {
                let p = phrase(&name);
                if !p.is_empty() && p.split(' ').count() <= MAX_NGRAM {
                    let t = lexicon.terms.entry(p).or_default();
                    if !t.entities.contains(&(i as EntityIdx)) {
                        t.entities.push(i as EntityIdx);
                    }
                }
            }
        }
        Classifier { lexicon, world: world.clone() }
    }

    /// The shipped lexicon with `world`.
    pub fn embedded(world: &World) -> Result<Classifier> {
        Ok(Classifier::new(Lexicon::embedded()?, world))
    }

    /// The world this classifier resolves stakeholders in.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The world entities a text names (longest names first), in order, each once.
    pub fn entities_in(&self, text: &str) -> Vec<EntityIdx> {
        let tokens = tokenize(text);
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for (_, _, term) in longest_matches(&tokens, MAX_NGRAM, |key, _| self.lexicon.terms.get(key)) {
            if let Some(&e) = term.entities.first() {
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        out
    }

    fn resolve(&self, name: &str) -> Option<EntityIdx> {
        self.world.find(name).or_else(|| {
            let p = phrase(name);
            self.lexicon.terms.get(&p).and_then(|t| t.entities.first().copied())
        })
    }

    /// Classifies one event. Errors (as records naming the event) only for hints that name
    /// unknown entities; any text classifies.
    pub fn classify(&self, event: &GameEvent, line: usize) -> std::result::Result<Classification, EventError> {
        let toks = crate::frame::tokens(&event.text);
        let tokens: Vec<&str> = toks.iter().map(|t| t.lower.as_str()).collect();
        let mut cat = [0f32; CATS];
        let mut impact_votes = [0u32; 3];
        let mut controversy = 0f32;
        // (first token, token count, valence, modifier) of each matched term, in order.
        let mut hits: Vec<(usize, usize, Option<f32>, Option<Modifier>)> = Vec::new();
        let mut entities: Vec<EntityIdx> = Vec::new();
        // (first token, token count, entity) of each entity name, for the frame.
        let mut entity_hits: Vec<(usize, usize, EntityIdx)> = Vec::new();
        for (i, n, term) in longest_matches(&tokens, MAX_NGRAM, |key, _| self.lexicon.terms.get(key)) {
            for (total, w) in cat.iter_mut().zip(&term.category) {
                *total += w;
            }
            if let Some(imp) = term.impact {
                impact_votes[imp as usize] += 1;
            }
            controversy += term.controversy;
            if term.valence.is_some() || term.modifier.is_some() {
                hits.push((i, n, term.valence, term.modifier));
            }
            for &e in &term.entities {
                if !entities.contains(&e) {
                    entities.push(e);
                }
            }
            if let Some(&e) = term.entities.first() {
                entity_hits.push((i, n, e));
            }
        }
        // Hints: stakeholders and location must name known entities.
        let record =
            |field: &str, error: String| EventError { line, id: Some(event.id.clone()), field: field.into(), error };
        if let Some(hints) = &event.stakeholders {
            for (k, h) in hints.iter().enumerate() {
                let e = self
                    .resolve(h)
                    .ok_or_else(|| record(&format!("stakeholders[{k}]"), format!("unknown entity {h:?}")))?;
                if !entities.contains(&e) {
                    entities.push(e);
                }
            }
        }
        if let Some(loc) = &event.location {
            let e = self
                .resolve(loc)
                .filter(|&e| matches!(self.world.entity(e).kind, EntityKind::Town { .. }))
                .ok_or_else(|| record("location", format!("unknown town {loc:?}")))?;
            if !entities.contains(&e) {
                entities.push(e);
            }
        }
        // Entity evidence.
        let (mut teams, mut parties, mut foreign, mut domestic_town) = (0, 0, false, false);
        for &e in &entities {
            match &self.world.entity(e).kind {
                EntityKind::Team { .. } | EntityKind::League { .. } => {
                    cat[Category::Sports as usize] += 1.5;
                    teams += 1;
                }
                EntityKind::Party { .. } => {
                    cat[Category::Politics as usize] += 1.5;
                    parties += 1;
                }
                EntityKind::Person { topic, party, .. } => {
                    let c = if party.is_some() { Category::Politics } else { topic_category(*topic) };
                    cat[c as usize] += 1.0;
                }
                EntityKind::Brand { topic } => cat[topic_category(*topic) as usize] += 0.7,
                EntityKind::Town { country, .. } => {
                    let home = self.world.towns.first().map(|&t| &self.world.entity(t).kind);
                    let same = matches!(home, Some(EntityKind::Town { country: c, .. }) if c == country);
                    if same {
                        domestic_town = true;
                    } else {
                        foreign = true;
                    }
                }
            }
        }
        // What happened is category evidence too ("elected", "delays", "sacked"): each
        // category's strongest kind.
        let frames = &self.lexicon.frames;
        let votes = frames.cue_votes(&tokens);
        let mut strongest = [0f32; CATS];
        for (k, v) in &votes {
            strongest[k.category as usize] = strongest[k.category as usize].max(*v);
        }
        for (c, v) in cat.iter_mut().zip(strongest) {
            *c += CUE_SHARE * v;
        }
        let total: f32 = cat.iter().sum();
        let (best, best_score) = cat.iter().enumerate().fold((0, 0f32), |b, (c, &s)| if s > b.1 { (c, s) } else { b });
        let novel = total <= 0.0;
        let mut category = event.category.unwrap_or(if novel { Category::Entertainment } else { Category::ALL[best] });
        // A typed frame's kind implies its category when the game gave none.
        if let (None, Some(k)) = (event.category, event.frame.as_ref().and_then(|f| f.kind.as_deref())) {
            if Kind::find(category, k).is_none() {
                if let Some(c) = Category::ALL.into_iter().find(|&c| Kind::find(c, k).is_some()) {
                    category = c;
                }
            }
        }
        let frame = match &event.frame {
            Some(hint) => frames
                .from_hint(&self.world, &event.text, category, hint, &|name| self.resolve(name))
                .map_err(|(field, error)| record(&field, error))?,
            None => {
                let (frame, absorbed) =
                    frames.extract(&self.world, &event.text, &toks, &votes, category, &entity_hits, &|w| {
                        self.lexicon.terms.get(w).is_some_and(|t| {
                            t.entities.is_empty()
                                && (t.valence.is_some() || t.modifier.is_some() || t.category.iter().any(|&c| c > 0.0))
                        })
                    });
                // Named only as part of a longer name, and not hinted: not a stakeholder.
                let hinted = |e: EntityIdx| {
                    event.stakeholders.iter().flatten().any(|h| self.resolve(h) == Some(e))
                        || event.location.as_deref().is_some_and(|l| self.resolve(l) == Some(e))
                };
                let elsewhere = |e: EntityIdx| {
                    entity_hits.iter().filter(|h| h.2 == e).count() > absorbed.iter().filter(|&&a| a == e).count()
                };
                entities.retain(|&e| !absorbed.contains(&e) || hinted(e) || elsewhere(e));
                frame
            }
        };
        for (_, e) in frame.entities() {
            if !entities.contains(&e) {
                entities.push(e);
            }
        }
        let impact = event.impact.unwrap_or(if impact_votes[2] > 0 || foreign {
            Impact::Global
        } else if impact_votes[1] > 0 || parties > 0 || (teams == 0 && !domestic_town) {
            Impact::National
        } else {
            Impact::Local
        });
        // Polarity by composition: when the kind says what the news is by itself (layoffs are
        // bad, a rescue good, a launch neutral), its own cue words ("cuts", "unveils", "drops"
        // an album) stand for that polarity instead of their word scores; the other words
        // (and every modifier) still count. A kind whose polarity the text decides keeps all,
        // and so does a text about a change.
        let change = hits.iter().any(|h| matches!(h.3, Some(Modifier::Reverser(_)) | Some(Modifier::Increaser)));
        let valence_sum = match frames.polarity(frame.kind) {
            // A change ("burglaries fall", "layoffs rise") is read from the words themselves.
            Some(p) if !change => {
                let described = |&&(start, len, _, m): &&(usize, usize, Option<f32>, Option<Modifier>)| {
                    m.is_none() && frames.is_cue(frame.kind, &tokens[start..start + len].join(" "))
                };
                let rest: Vec<_> = hits.iter().filter(|h| !described(h)).copied().collect();
                sentiment(&rest) + KIND_PRIOR * p as f32
            }
            _ => sentiment(&hits),
        };
        let compound = valence_sum / (valence_sum * valence_sum + 15.0).sqrt();
        let valence = event.valence.unwrap_or(if compound >= 0.05 {
            Valence::Positive
        } else if compound <= -0.05 {
            Valence::Negative
        } else {
            Valence::Neutral
        });
        let intensity = event.intensity.unwrap_or(compound.abs());
        let rivalry = teams >= 2 || parties >= 2;
        let mut c = controversy.min(1.0) * 0.7 + if rivalry { 0.15 } else { 0.0 };
        if category == Category::Politics {
            c += 0.15;
        }
        c += 0.15 * intensity;
        Ok(Classification {
            id: event.id.clone(),
            category,
            impact,
            valence,
            intensity: (intensity * 1000.0).round() / 1000.0,
            stakeholders: entities.iter().map(|&e| self.world.entity(e).id.clone()).collect(),
            controversy: (c.clamp(0.0, 1.0) * 1000.0).round() / 1000.0,
            confidence: if novel { 0.0 } else { ((best_score / total) * 1000.0).round() / 1000.0 },
            novel,
            audience: event.audience.clone().unwrap_or_default(),
            sides: sides(&entities, &frame, valence),
            frame,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_words() {
        assert_eq!(tokenize("The Redhawks' win — Hawks's 3rd!"), vec!["the", "redhawks", "win", "hawks", "3rd"]);
        assert_eq!(tokenize("{{#each x}}"), vec!["each", "x"]);
        assert!(tokenize("").is_empty());
    }

    #[test]
    fn lexicon_errors_name_file_line_and_field() {
        let files = [
            ("c.tsv", "# c\nsports\t1.0\twin\nsprots\t1\tx\n"),
            ("v.tsv", ""),
            ("m.tsv", ""),
            ("i.tsv", ""),
            ("k.tsv", ""),
        ];
        let err = Lexicon::parse(&files).unwrap_err().to_string();
        assert_eq!(err, "c.tsv:3: category: unknown category \"sprots\"");
        let files = [("c.tsv", ""), ("v.tsv", "great\tlots\n"), ("m.tsv", ""), ("i.tsv", ""), ("k.tsv", "")];
        let err = Lexicon::parse(&files).unwrap_err().to_string();
        assert_eq!(err, "v.tsv:1: score: \"lots\" is not a number");
    }
}

/// Each stakeholder's side (see [`Classification::sides`]): the winner's fans see a win (or a
/// loss) as it is for the winner, the loser's fans the opposite.
fn sides(entities: &[EntityIdx], frame: &Frame, valence: Valence) -> Vec<i8> {
    let of = |r: RoleName| frame.role(r).and_then(|x| x.entity);
    let (winner, loser) = (of(RoleName::Winner), of(RoleName::Loser));
    let win_side: i8 = if valence == Valence::Negative { -1 } else { 1 };
    entities
        .iter()
        .map(|&e| {
            if Some(e) == loser && frame.kind.is_contest() {
                -win_side
            } else if Some(e) == winner && frame.kind.is_contest() {
                win_side
            } else {
                1
            }
        })
        .collect()
}

/// Tokens after a negative word that a reverser following it may stand ("crime in the city
/// falls"); before it, three.
const REVERSER_REACH: usize = 5;

/// Sums the sentiment of matched terms with their modifiers: an intensifier right before a
/// sentiment word scales it; a negator up to three tokens before flips it; a reverser or
/// increaser within three tokens of a negative word (a reverser up to five after it) shifts it
/// and loses its own score; a reverser right after a positive word turns it bad news.
fn sentiment(hits: &[(usize, usize, Option<f32>, Option<Modifier>)]) -> f32 {
    let is_shifter = |m: Option<Modifier>| matches!(m, Some(Modifier::Reverser(_)) | Some(Modifier::Increaser));
    let mut used = vec![false; hits.len()];
    let mut sum = 0.0;
    let resolved = hits.iter().find_map(|h| match h.3 {
        Some(Modifier::Resolver(x)) => Some(x),
        _ => None,
    });
    for &(start, len, valence, m) in hits {
        let Some(mut v) = valence else { continue };
        if is_shifter(m) {
            continue;
        }
        let negative = v < 0.0;
        if let (true, Some(x)) = (negative, resolved) {
            v *= x;
        }
        for (j, &(s2, l2, _, mj)) in hits.iter().enumerate() {
            let before = s2 + l2 <= start && start - (s2 + l2) < 3;
            let after = s2 >= start + len && s2 - (start + len) < 3;
            // Headline verbs follow their subject's phrase ("homicides in Harbor City fall").
            let after_verb = s2 >= start + len && s2 - (start + len) < REVERSER_REACH;
            match mj {
                Some(Modifier::Intensifier(x)) if before && s2 + l2 == start => v *= x,
                Some(Modifier::Negator(x)) if before => v *= x,
                Some(Modifier::Reverser(x)) if (before || after_verb) && negative => {
                    v *= x;
                    used[j] = true;
                }
                // A good thing that falls is bad news ("profits fall", "support slumps").
                Some(Modifier::Reverser(x)) if after && !negative && x < 0.0 => {
                    v *= x;
                    used[j] = true;
                }
                Some(Modifier::Increaser) if (before || after) && negative => used[j] = true,
                _ => {}
            }
        }
        sum += v;
    }
    // Shifters that acted on a neighbour lose their own score; the others keep it.
    for (k, &(_, _, valence, m)) in hits.iter().enumerate() {
        if is_shifter(m) && !used[k] {
            sum += valence.unwrap_or(0.0);
        }
    }
    sum
}

/// The expected classification of a labelled event (the team's ground truth).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Expected category.
    pub category: Category,
    /// Expected impact.
    pub impact: Impact,
    /// Expected valence.
    pub valence: Valence,
    /// Expected stakeholders (entity ids).
    #[serde(default)]
    pub stakeholders: Vec<String>,
    /// Whether the event is divisive.
    #[serde(default)]
    pub controversial: bool,
    /// The expected frame: kind and roles (world ids or the headline's words).
    #[serde(default)]
    pub frame: Option<crate::events::FrameHint>,
}

/// Whether a found role names what a label says: the same world entity, or the same words
/// (case and a leading "the" aside).
pub fn role_matches(world: &World, found: &crate::frame::Role, label: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().to_lowercase();
        s.strip_prefix("the ").map(str::to_string).unwrap_or(s)
    };
    if let Some(e) = found.entity {
        let ent = world.entity(e);
        if ent.id == label || norm(&ent.name) == norm(label) || ent.aliases.iter().any(|a| norm(a) == norm(label)) {
            return true;
        }
        if let EntityKind::Team { short, .. } | EntityKind::Party { short, .. } = &ent.kind {
            if norm(short) == norm(label) {
                return true;
            }
        }
    }
    norm(&found.text) == norm(label)
}

/// Per-category and overall agreement of classifications with labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Labelled events scored.
    pub events: usize,
    /// Per category: (labelled, correctly classified).
    pub per_category: Vec<(String, usize, usize)>,
    /// Share with the right category.
    pub category: f64,
    /// Share with the right impact.
    pub impact: f64,
    /// Share with the right valence.
    pub valence: f64,
    /// Share of labelled stakeholders found.
    pub stakeholder_recall: f64,
    /// Share of found stakeholders that were labelled.
    pub stakeholder_precision: f64,
    /// Share where `controversy >= 0.4` agrees with the `controversial` label.
    pub controversy: f64,
    /// Events with a labelled frame.
    pub framed: usize,
    /// Share of those with the right frame kind.
    pub frame_kind: f64,
    /// Labelled main roles (winner, loser, actor) scored.
    pub main_roles: usize,
    /// Share of those found exactly (the same entity or words).
    pub main_role_exact: f64,
}

impl Accuracy {
    /// Scores `pairs` of (classification, label).
    pub fn score(world: &World, pairs: &[(Classification, Label)]) -> Accuracy {
        let n = pairs.len();
        let share = |k: usize, of: usize| if of > 0 { k as f64 / of as f64 } else { 0.0 };
        let mut per = [(0usize, 0usize); CATS];
        let (mut cat, mut imp, mut val, mut con) = (0, 0, 0, 0);
        let (mut found, mut labelled, mut given, mut right) = (0, 0, 0, 0);
        let (mut framed, mut kind_ok, mut roles, mut roles_ok) = (0, 0, 0, 0);
        for (c, l) in pairs {
            if let Some(f) = &l.frame {
                framed += 1;
                kind_ok += (f.kind.as_deref() == Some(c.frame.kind.name())) as usize;
                for r in [RoleName::Winner, RoleName::Loser, RoleName::Actor] {
                    if let Some(want) = f.role_at(r as usize) {
                        roles += 1;
                        roles_ok += c.frame.role(r).is_some_and(|got| role_matches(world, got, want)) as usize;
                    }
                }
            }
            per[l.category as usize].0 += 1;
            if c.category == l.category {
                per[l.category as usize].1 += 1;
                cat += 1;
            }
            imp += (c.impact == l.impact) as usize;
            val += (c.valence == l.valence) as usize;
            con += ((c.controversy >= 0.4) == l.controversial) as usize;
            labelled += l.stakeholders.len();
            found += l.stakeholders.iter().filter(|s| c.stakeholders.contains(s)).count();
            given += c.stakeholders.len();
            right += c.stakeholders.iter().filter(|s| l.stakeholders.contains(s)).count();
        }
        Accuracy {
            events: n,
            per_category: Category::ALL
                .iter()
                .map(|c| (c.name().to_string(), per[*c as usize].0, per[*c as usize].1))
                .collect(),
            category: share(cat, n),
            impact: share(imp, n),
            valence: share(val, n),
            stakeholder_recall: share(found, labelled),
            stakeholder_precision: share(right, given),
            controversy: share(con, n),
            framed,
            frame_kind: share(kind_ok, framed),
            main_roles: roles,
            main_role_exact: share(roles_ok, roles),
        }
    }
}

impl std::fmt::Display for Accuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<14} {:>6} {:>8} {:>9}", "category", "events", "correct", "accuracy")?;
        for (name, n, ok) in &self.per_category {
            let acc = if *n > 0 { *ok as f64 / *n as f64 * 100.0 } else { 0.0 };
            writeln!(f, "{name:<14} {n:>6} {ok:>8} {acc:>8.1}%")?;
        }
        writeln!(f, "overall: {} events; category {:.1}%, impact {:.1}%, valence {:.1}%, controversy {:.1}%, stakeholders recall {:.1}% precision {:.1}%",
            self.events, self.category * 100.0, self.impact * 100.0, self.valence * 100.0, self.controversy * 100.0,
            self.stakeholder_recall * 100.0, self.stakeholder_precision * 100.0)?;
        if self.framed > 0 {
            writeln!(
                f,
                "frames: {} labelled; kind {:.1}%, main roles (winner, loser, actor) {:.1}% exact of {}",
                self.framed,
                self.frame_kind * 100.0,
                self.main_role_exact * 100.0,
                self.main_roles
            )?;
        }
        Ok(())
    }
}

/// Splits a labelled line `{..event fields.., "label": {...}}` into the event JSON text and
/// its label.
pub fn split_label(line: &str) -> std::result::Result<(String, Option<Label>), String> {
    let mut v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
    let label = match v.as_object_mut().and_then(|o| o.remove("label")) {
        Some(l) => Some(serde_json::from_value(l).map_err(|e| format!("label: {e}"))?),
        None => None,
    };
    Ok((v.to_string(), label))
}
