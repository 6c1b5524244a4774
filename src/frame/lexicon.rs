//! The frame lexicon (`templates/lexicon/frames.tsv`): kind cues, role patterns and name rules,
//! and extraction of a frame from a headline or a typed frame from the game.

use super::numbers::{numbers, parse_score};
use super::{kinds_of, longest_matches, stem, tokens, Frame, Kind, Meaning, Number, Role, RoleName, Token};
use crate::error::{Error, Result};
use crate::events::{Category, FrameHint};
use crate::jsonl::tsv_fields;
use crate::world::{EntityIdx, EntityKind, World};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
enum Item {
    /// A role slot: X (0) or Y (1).
    Slot(usize),
    /// Up to three words.
    Any,
    /// One of these words.
    Words(Vec<String>),
}

#[derive(Clone, Debug)]
struct Pattern {
    /// Kinds the pattern applies to (empty: any); the first also gets a vote.
    kinds: Vec<String>,
    /// The roles of X and Y.
    roles: [Option<RoleName>; 2],
    items: Vec<Item>,
}

#[derive(Clone, Debug, Default)]
struct KindInfo {
    /// Good (> 0) or bad (< 0) news by itself, and how strongly (up to 3); 0 neutral; `None`
    /// when the text decides.
    polarity: Option<i8>,
    /// How users name the event when it names nobody ("the layoffs").
    noun: String,
}

/// The frame lexicon (`templates/lexicon/frames.tsv`).
#[derive(Clone, Debug, Default)]
pub struct FrameLexicon {
    /// Cue phrase -> (kind, weight).
    cues: HashMap<String, Vec<(Kind, f32)>>,
    /// One-word cues by their stem ([`stem`]), for the forms the file does not list
    /// ("delaying", "resigning"): the strongest weight of each kind, at [`STEM_SHARE`].
    stems: HashMap<String, Vec<(Kind, f32)>>,
    /// Words that extend a name before them into the role's words ("Northstar Motors
    /// workers", "Civic Union candidate").
    heads: HashMap<String, ()>,
    kinds: HashMap<Kind, KindInfo>,
    patterns: Vec<Pattern>,
    /// Words that make the capitalised words after them a person ("mayor", "coach").
    titles: HashMap<String, ()>,
    /// Words that make the capitalised words after them a place ("in", "at").
    place_words: HashMap<String, ()>,
    /// Capitalised words that are never names ("Monday", "Breaking").
    not_names: HashMap<String, ()>,
    /// Function words: never the unit of a count ("9 for").
    stop: HashMap<String, ()>,
}

/// The shipped frame lexicon file.
pub const EMBEDDED_FRAMES: (&str, &str) =
    ("templates/lexicon/frames.tsv", include_str!("../../templates/lexicon/frames.tsv"));

/// Longest cue (in tokens).
const MAX_CUE: usize = 4;
/// The weight a word gets from a cue it shares a stem with, as a share of the cue's.
const STEM_SHARE: f32 = 0.8;

impl FrameLexicon {
    /// The shipped lexicon.
    pub fn embedded() -> Result<FrameLexicon> {
        FrameLexicon::parse(EMBEDDED_FRAMES.0, EMBEDDED_FRAMES.1)
    }

    /// Parses a frames file (see `templates/lexicon/README.md`).
    pub fn parse(file: &str, text: &str) -> Result<FrameLexicon> {
        let mut lex = FrameLexicon::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
                continue;
            }
            let row = raw.split('\t').next().unwrap_or("");
            let kind_of = |cat: &str, name: &str| -> Result<Kind> {
                let c = Category::from_name(cat)
                    .ok_or_else(|| Error::data(file, line, "category", format!("unknown category {cat:?}")))?;
                Kind::find(c, name).ok_or_else(|| {
                    Error::data(
                        file,
                        line,
                        "kind",
                        format!("{name:?} is not a {cat} kind (one of other, {})", kinds_of(c).join(", ")),
                    )
                })
            };
            match row {
                "kind" => {
                    let f = tsv_fields(file, line, raw, 5)?;
                    let kind = kind_of(f[1], f[2])?;
                    let polarity = match f[3] {
                        "+" => Some(1),
                        "-" => Some(-1),
                        "?" => None,
                        other => match other.parse::<i8>() {
                            Ok(p) if (-3..=3).contains(&p) => Some(p),
                            _ => {
                                return Err(Error::data(
                                    file,
                                    line,
                                    "polarity",
                                    format!("{other:?} is not +, -, ?, or a whole number from -3 to 3"),
                                ))
                            }
                        },
                    };
                    if lex.kinds.insert(kind, KindInfo { polarity, noun: f[4].to_string() }).is_some() {
                        return Err(Error::data(file, line, "kind", format!("{} {} is declared twice", f[1], f[2])));
                    }
                }
                "cue" => {
                    let f = tsv_fields(file, line, raw, 5)?;
                    let kind = kind_of(f[1], f[2])?;
                    let w: f32 = f[3].parse().ok().filter(|w: &f32| (0.1..=5.0).contains(w)).ok_or_else(|| {
                        Error::data(file, line, "weight", format!("{:?} is not a number in 0.1-5", f[3]))
                    })?;
                    let p = phrase(f[4]);
                    if p.is_empty() || p.split(' ').count() > MAX_CUE {
                        return Err(Error::data(file, line, "term", format!("{:?} must be 1-{MAX_CUE} words", f[4])));
                    }
                    lex.cues.entry(p).or_default().push((kind, w));
                }
                "role" => {
                    let f = tsv_fields(file, line, raw, 4)?;
                    let kinds: Vec<String> =
                        if f[1] == "*" { Vec::new() } else { f[1].split(',').map(|s| s.trim().to_string()).collect() };
                    for k in &kinds {
                        if !Category::ALL.iter().any(|&c| Kind::find(c, k).is_some()) {
                            return Err(Error::data(file, line, "kinds", format!("{k:?} is not a frame kind")));
                        }
                    }
                    let mut roles = [None, None];
                    for (j, r) in f[2].split(',').enumerate() {
                        let role = RoleName::from_name(r.trim()).ok_or_else(|| {
                            Error::data(
                                file,
                                line,
                                "roles",
                                format!("{r:?} is not winner, loser, actor, target, person or place"),
                            )
                        })?;
                        match roles.get_mut(j) {
                            Some(slot) => *slot = Some(role),
                            None => return Err(Error::data(file, line, "roles", "at most two roles (X and Y)")),
                        }
                    }
                    let mut items = Vec::new();
                    for w in f[3].split_whitespace() {
                        items.push(match w {
                            "X" => Item::Slot(0),
                            "Y" => Item::Slot(1),
                            "*" => Item::Any,
                            words => Item::Words(words.split('|').map(|x| x.to_lowercase()).collect()),
                        });
                    }
                    let slots = items.iter().filter(|i| matches!(i, Item::Slot(_))).count();
                    let named = roles.iter().filter(|r| r.is_some()).count();
                    if slots == 0 || slots != named {
                        return Err(Error::data(
                            file,
                            line,
                            "pattern",
                            format!("the pattern has {slots} of X/Y but {named} roles are named"),
                        ));
                    }
                    lex.patterns.push(Pattern { kinds, roles, items });
                }
                "title" | "place" | "notname" | "stop" | "head" => {
                    let f = tsv_fields(file, line, raw, 2)?;
                    let map = match row {
                        "title" => &mut lex.titles,
                        "head" => &mut lex.heads,
                        "place" => &mut lex.place_words,
                        "stop" => &mut lex.stop,
                        _ => &mut lex.not_names,
                    };
                    map.insert(phrase(f[1]), ());
                }
                other => {
                    return Err(Error::data(
                        file,
                        line,
                        "row",
                        format!("{other:?} is not kind, cue, role, title, place, notname, stop or head"),
                    ))
                }
            }
        }
        for (cue, list) in &lex.cues {
            if cue.contains(' ') {
                continue;
            }
            let entry = lex.stems.entry(stem(cue)).or_default();
            for &(kind, w) in list {
                match entry.iter_mut().find(|x| x.0 == kind) {
                    Some(x) => x.1 = x.1.max(w * STEM_SHARE),
                    None => entry.push((kind, w * STEM_SHARE)),
                }
            }
        }
        for list in lex.stems.values_mut() {
            list.sort_by_key(|a| a.0);
        }
        for c in Category::ALL {
            for k in kinds_of(c) {
                if let Some(kind) = Kind::find(c, k) {
                    if !lex.kinds.contains_key(&kind) {
                        return Err(Error::data(
                            file,
                            crate::jsonl::last_line(text),
                            "kind",
                            format!("no `kind` row for {c} {k}"),
                        ));
                    }
                }
            }
        }
        Ok(lex)
    }

    /// The cue votes of a text's tokens (lowercase, as [`tokens`] gives them): each cue's
    /// weight added to its kind, longest cue first at each position; a one-word cue also
    /// matches by [`stem`].
    pub fn cue_votes(&self, tokens: &[&str]) -> HashMap<Kind, f32> {
        let mut votes: HashMap<Kind, f32> = HashMap::new();
        let found = longest_matches(tokens, MAX_CUE, |key, n| match self.cues.get(key) {
            Some(list) => Some(list),
            None if n == 1 => self.stems.get(stem(key).as_str()),
            None => None,
        });
        for (_, _, list) in found {
            for &(kind, w) in list {
                *votes.entry(kind).or_default() += w;
            }
        }
        votes
    }

    /// Whether `kind` is good (> 0) or bad (< 0) news by itself, and how strongly (up to 3), or
    /// neutral (0); `None` when the text decides (`crime_rate`: "falls" or "rises"), and for
    /// `other`.
    pub fn polarity(&self, kind: Kind) -> Option<i8> {
        self.kinds.get(&kind).and_then(|k| k.polarity)
    }

    /// Whether `phrase` (lowercase tokens joined by spaces) is a cue of `kind`.
    pub fn is_cue(&self, kind: Kind, phrase: &str) -> bool {
        self.cues.get(phrase).is_some_and(|list| list.iter().any(|(k, _)| *k == kind))
    }

    /// How users name an event of this kind that names nobody ("the layoffs").
    pub fn noun(&self, kind: Kind) -> Option<&str> {
        self.kinds.get(&kind).map(|k| k.noun.as_str()).filter(|n| !n.is_empty() && *n != "-")
    }

    /// The frame of an event's text in `category`, given its [`tokens`], their
    /// [`FrameLexicon::cue_votes`], and the world entities matched in it as (first token, token
    /// count, entity) over the tokens. `is_term` tells common words (the
    /// classifier's lexicon) from names at the start of the headline. Also returns the world
    /// entities whose match was only part of a longer name ("United" in "Manchester United"):
    /// the event is not about them.
    #[allow(clippy::too_many_arguments)]
    pub fn extract(
        &self,
        world: &World,
        text: &str,
        toks: &[Token],
        votes: &HashMap<Kind, f32>,
        category: Category,
        entities: &[(usize, usize, EntityIdx)],
        is_term: &dyn Fn(&str) -> bool,
    ) -> (Frame, Vec<EntityIdx>) {
        let (spans, absorbed) = self.spans(world, text, toks, entities, is_term);
        // Items: spans as slots, other tokens as words; an article before a span is dropped.
        let mut items: Vec<(Option<usize>, &str)> = Vec::new();
        let mut t = 0;
        let mut k = 0;
        while t < toks.len() {
            if k < spans.len() && spans[k].from == t {
                if items.last().is_some_and(|x| x.0.is_none() && x.1 == "the") {
                    items.pop();
                }
                items.push((Some(k), ""));
                t = spans[k].to;
                k += 1;
            } else {
                items.push((None, toks[t].lower.as_str()));
                t += 1;
            }
        }
        // Kind: cue votes within the category, plus the kinds of matched patterns.
        let mut votes: HashMap<Kind, f32> =
            votes.iter().filter(|(k, _)| k.category == category).map(|(k, v)| (*k, *v)).collect();
        let mut matched: Vec<(&Pattern, [Option<usize>; 2])> = Vec::new();
        for p in &self.patterns {
            if let Some(slots) = match_anywhere(&p.items, &items) {
                if let Some(kind) = p.kinds.first().and_then(|k| Kind::find(category, k)) {
                    *votes.entry(kind).or_default() += 1.5;
                }
                matched.push((p, slots));
            }
        }
        let kind = votes
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.index.cmp(&a.0.index)))
            .map(|(k, _)| *k)
            .unwrap_or(Kind::other(category));
        let mut roles: [Option<usize>; 6] = [None; 6];
        let contest_roles =
            |p: &Pattern| p.roles.iter().flatten().any(|r| matches!(r, RoleName::Winner | RoleName::Loser));
        for (p, slots) in &matched {
            if !p.kinds.is_empty() && !p.kinds.iter().any(|k| k == kind.name()) {
                continue;
            }
            // A contest has sides, not an actor; other kinds have no sides (an award has a
            // winner).
            if kind.is_contest() != contest_roles(p) && !(kind.name() == "award" && contest_roles(p)) {
                continue;
            }
            for (j, role) in p.roles.iter().enumerate() {
                if let (Some(r), Some(s)) = (role, slots[j]) {
                    let taken = roles.contains(&Some(s));
                    if roles[*r as usize].is_none() && !taken {
                        roles[*r as usize] = Some(s);
                    }
                }
            }
        }
        // Places: towns, and names after a place word.
        let is_place = |s: &Span| match s.entity {
            Some(e) => matches!(world.entity(e).kind, EntityKind::Town { .. }),
            None => s.after_place_word && !s.title,
        };
        if roles[RoleName::Place as usize].is_none() {
            roles[RoleName::Place as usize] =
                (0..spans.len()).find(|&s| is_place(&spans[s]) && !roles.contains(&Some(s)));
        }
        // The rest by the kind's shape, in headline order.
        // A league is where a contest happens, never one of its sides.
        let side_league = |s: &Span| {
            kind.is_contest() && s.entity.is_some_and(|e| matches!(world.entity(e).kind, EntityKind::League { .. }))
        };
        let free = |roles: &[Option<usize>; 6]| -> Vec<usize> {
            (0..spans.len())
                .filter(|&s| !roles.contains(&Some(s)) && !is_place(&spans[s]) && !side_league(&spans[s]))
                .collect()
        };
        let order: &[RoleName] = if kind.is_contest() {
            if kind.name() == "loss" {
                &[RoleName::Loser, RoleName::Winner]
            } else {
                &[RoleName::Winner, RoleName::Loser]
            }
        } else if kind.name() == "award" {
            &[RoleName::Winner]
        } else {
            &[RoleName::Actor, RoleName::Target]
        };
        for r in order {
            if roles[*r as usize].is_none() {
                roles[*r as usize] = free(&roles).first().copied();
            }
        }
        if roles[RoleName::Person as usize].is_none() {
            roles[RoleName::Person as usize] = free(&roles).into_iter().find(|&s| {
                spans[s].title
                    || spans[s].entity.is_some_and(|e| matches!(world.entity(e).kind, EntityKind::Person { .. }))
            });
        }
        let mut frame = Frame::empty(category);
        frame.kind = kind;
        frame.noun = self.noun(kind).unwrap_or("").to_string();
        for r in RoleName::ALL {
            frame.roles[r as usize] = roles[r as usize].map(|s| spans[s].role(world));
        }
        let (score, numbers) = numbers(text, toks, &self.stop);
        frame.score = score;
        frame.numbers = numbers;
        (frame, absorbed)
    }

    /// The name spans of a headline: world entities, then runs of capitalised words (with
    /// "of" inside, and a title before), outside them.
    fn spans(
        &self,
        world: &World,
        text: &str,
        toks: &[Token],
        entities: &[(usize, usize, EntityIdx)],
        is_term: &dyn Fn(&str) -> bool,
    ) -> (Vec<Span>, Vec<EntityIdx>) {
        let mut spans = Vec::new();
        let mut ent = entities.to_vec();
        ent.sort_unstable();
        let gap_ok = |a: usize, b: usize| text[toks[a].end..toks[b].start].chars().all(|c| c == ' ' || c == '-');
        // A one-word team, person or brand name inside a longer capitalised name is part of that
        // name: "United" in "Manchester United" is not Harbor United. (A town or league still
        // counts: "Lakeshore University" is in Lakeshore.)
        let covered = |i: usize, ent: &[(usize, usize, EntityIdx)]| ent.iter().any(|x| x.0 <= i && i < x.0 + x.1);
        // A common word (a lexicon term or a kind cue) opening the headline is no name.
        let common = |w: &str| is_term(w) || self.cues.contains_key(w);
        let loose = |i: usize, ent: &[(usize, usize, EntityIdx)]| {
            let w = toks[i].lower.as_str();
            let opening_word = i == 0 && common(w);
            toks[i].capital
                && !self.not_names.contains_key(w)
                && !self.stop.contains_key(w)
                && !self.titles.contains_key(w)
                && !opening_word
                && !covered(i, ent)
        };
        let mut absorbed = Vec::new();
        let all = ent.clone();
        ent.retain(|&(from, n, idx)| {
            let place_like = matches!(world.entity(idx).kind, EntityKind::Town { .. } | EntityKind::League { .. });
            let inside = n == 1
                && !place_like
                && ((from > 0 && gap_ok(from - 1, from) && loose(from - 1, &all))
                    || (from + 1 < toks.len() && gap_ok(from, from + 1) && loose(from + 1, &all)));
            if inside {
                absorbed.push(idx);
            }
            !inside
        });
        // A head noun right after a name belongs to it: "Northstar Motors workers".
        let headed = |to: usize| {
            let head = to < toks.len()
                && !toks[to].capital
                && gap_ok(to - 1, to)
                && self.heads.contains_key(toks[to].lower.as_str());
            to + head as usize
        };
        let mut e = 0;
        let mut t = 0;
        let place_before = |t: usize| t > 0 && self.place_words.contains_key(toks[t - 1].lower.as_str());
        while t < toks.len() {
            while e < ent.len() && ent[e].0 < t {
                e += 1;
            }
            if e < ent.len() && ent[e].0 == t {
                let (from, n, idx) = ent[e];
                let to = headed((from + n).min(toks.len()));
                spans.push(Span {
                    from,
                    to,
                    text: text[toks[from].start..toks[to - 1].end].to_string(),
                    entity: Some(idx),
                    after_place_word: place_before(from),
                    title: false,
                });
                t = to;
                continue;
            }
            let title = self.titles.contains_key(toks[t].lower.as_str());
            let capital_name = |i: usize| -> bool {
                let tok = &toks[i];
                tok.capital
                    && !self.not_names.contains_key(tok.lower.as_str())
                    && !self.stop.contains_key(tok.lower.as_str())
                    && !ent.iter().any(|x| x.0 == i)
                    && !tok.lower.chars().all(|c| c.is_ascii_digit())
            };
            // A headline's first word is a name if it is no common word, or if a name follows
            // it ("PlayStation Network").
            let name_at = |i: usize| -> bool {
                capital_name(i)
                    && (i > 0 || !common(&toks[i].lower) || (toks.len() > 1 && gap_ok(0, 1) && capital_name(1)))
            };
            // A model number after a name: "Switch 2", "Chandrayaan-3", not a score.
            let model_number = |i: usize| -> bool {
                let tok = &toks[i];
                let after = &text[tok.end..];
                tok.lower.len() <= 2
                    && tok.lower.chars().all(|c| c.is_ascii_digit())
                    && !after.starts_with(['-', '–', '%', '.', ','])
                    && !after.trim_start().starts_with(|c: char| c.is_ascii_digit())
            };
            let starts =
                if title { t + 1 < toks.len() && (name_at(t + 1) || toks[t + 1].lower == "of") } else { name_at(t) };
            if !starts {
                t += 1;
                continue;
            }
            let from = t;
            let mut to = t + 1;
            loop {
                if to < toks.len() && gap_ok(to - 1, to) && (name_at(to) || (!title && model_number(to))) {
                    to += 1;
                } else if to + 1 < toks.len()
                    && matches!(toks[to].lower.as_str(), "of" | "de" | "van" | "von" | "al")
                    && gap_ok(to - 1, to)
                    && gap_ok(to, to + 1)
                    && name_at(to + 1)
                {
                    to += 2;
                } else {
                    break;
                }
            }
            if title && to == from + 1 {
                t += 1;
                continue;
            }
            let to = headed(to);
            spans.push(Span {
                from,
                to,
                text: text[toks[from].start..toks[to - 1].end].to_string(),
                entity: None,
                after_place_word: place_before(from),
                title,
            });
            t = to;
        }
        (spans, absorbed)
    }

    /// The frame the game sent, validated against the world and the event text: an unknown
    /// kind, a role naming nothing, or a score that does not parse is an error naming the field.
    /// `resolve` finds a world entity by id, name or alias.
    pub fn from_hint(
        &self,
        world: &World,
        text: &str,
        category: Category,
        hint: &FrameHint,
        resolve: &dyn Fn(&str) -> Option<EntityIdx>,
    ) -> std::result::Result<Frame, (String, String)> {
        let mut frame = Frame::empty(category);
        frame.given = true;
        if let Some(k) = &hint.kind {
            frame.kind = Kind::find(category, k).ok_or_else(|| {
                (
                    "frame.kind".to_string(),
                    format!("{k:?} is not a {category} kind (one of other, {})", kinds_of(category).join(", ")),
                )
            })?;
        }
        frame.noun = self.noun(frame.kind).unwrap_or("").to_string();
        let lower = text.to_lowercase();
        for r in RoleName::ALL {
            let Some(name) = hint.role_at(r as usize) else { continue };
            let field = format!("frame.{}", r.name());
            let name = name.trim();
            if name.is_empty() || name.len() > 120 {
                return Err((field, "must be 1-120 bytes".into()));
            }
            let role = match resolve(name) {
                Some(e) => {
                    Role { text: world.entity(e).name.clone(), id: Some(world.entity(e).id.clone()), entity: Some(e) }
                }
                None if lower.contains(&name.to_lowercase()) => Role { text: name.to_string(), id: None, entity: None },
                None => {
                    return Err((
                        field,
                        format!("{name:?} names no world entity and does not appear in the event text"),
                    ))
                }
            };
            frame.roles[r as usize] = Some(role);
        }
        if let Some(s) = &hint.score {
            frame.score = Some(parse_score(s).ok_or_else(|| {
                ("frame.score".to_string(), format!("{s:?} is not a score like \"3-1\" (two numbers of 1-3 digits)"))
            })?);
        }
        match &hint.numbers {
            Some(list) => {
                for (k, n) in list.iter().enumerate() {
                    let t = n.text.trim();
                    if t.is_empty() || t.len() > 40 {
                        return Err((format!("frame.numbers[{k}].text"), "must be 1-40 bytes".into()));
                    }
                    let meaning = match n.meaning.as_str() {
                        "money" => Meaning::Money,
                        "percent" => Meaning::Percent,
                        "count" => Meaning::Count,
                        "measure" => Meaning::Measure,
                        "year" => Meaning::Year,
                        "amount" => Meaning::Amount,
                        other => {
                            return Err((
                                format!("frame.numbers[{k}].meaning"),
                                format!("{other:?} is not money, percent, count, measure, year or amount"),
                            ))
                        }
                    };
                    frame.numbers.push(Number { text: t.to_string(), meaning });
                }
            }
            None => frame.numbers = numbers(text, &tokens(text), &self.stop).1,
        }
        Ok(frame)
    }
}

/// A name in a headline.
#[derive(Clone, Debug)]
struct Span {
    from: usize,
    to: usize,
    text: String,
    entity: Option<EntityIdx>,
    after_place_word: bool,
    title: bool,
}

impl Span {
    fn role(&self, world: &World) -> Role {
        Role { text: self.text.clone(), id: self.entity.map(|e| world.entity(e).id.clone()), entity: self.entity }
    }
}

/// Lowercase tokens joined by spaces.
fn phrase(text: &str) -> String {
    tokens(text).into_iter().map(|t| t.lower).collect::<Vec<_>>().join(" ")
}

/// The first match of `pattern` in `items`: the span indices of X and Y.
fn match_anywhere(pattern: &[Item], items: &[(Option<usize>, &str)]) -> Option<[Option<usize>; 2]> {
    (0..items.len()).find_map(|start| {
        let mut slots = [None, None];
        match_at(pattern, &items[start..], &mut slots).then_some(slots)
    })
}

fn match_at(pattern: &[Item], items: &[(Option<usize>, &str)], slots: &mut [Option<usize>; 2]) -> bool {
    let Some((first, rest)) = pattern.split_first() else { return true };
    match first {
        Item::Any => (0..=3.min(items.len())).any(|skip| match_at(rest, &items[skip..], slots)),
        Item::Slot(j) => match items.first() {
            Some((Some(s), _)) => {
                let before = slots[*j];
                slots[*j] = Some(*s);
                if match_at(rest, &items[1..], slots) {
                    return true;
                }
                slots[*j] = before;
                false
            }
            _ => false,
        },
        Item::Words(ws) => match items.first() {
            Some((None, w)) if ws.iter().any(|x| x == w) => match_at(rest, &items[1..], slots),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex() -> FrameLexicon {
        FrameLexicon::embedded().expect("frames lexicon")
    }

    /// A frame with no world entities matched and no common words.
    fn extract(lex: &FrameLexicon, world: &World, text: &str, c: Category) -> (Frame, Vec<EntityIdx>) {
        let toks = tokens(text);
        let lower: Vec<&str> = toks.iter().map(|t| t.lower.as_str()).collect();
        lex.extract(world, text, &toks, &lex.cue_votes(&lower), c, &[], &|_| false)
    }

    #[test]
    fn tokens_keep_where_they_stand() {
        let lower = |text: &str| tokens(text).into_iter().map(|t| t.lower).collect::<Vec<_>>();
        assert_eq!(lower("O’Neil's 'big' night"), vec!["o'neil", "big", "night"]);
        assert!(lower("  '  ").is_empty());
        let t = tokens("Argentina beat France");
        assert!(t[0].capital && !t[1].capital && t[2].capital);
        assert_eq!(&"Argentina beat France"[t[2].start..t[2].end], "France");
    }

    #[test]
    fn numbers_and_scores_are_read_with_their_meaning() {
        let stop = lex().stop;
        let numbers = |t: &str| numbers(t, &tokens(t), &stop);
        let (score, n) = numbers("Argentina beat France 3-3 on penalties");
        assert_eq!(score.as_deref(), Some("3-3"));
        assert!(n.is_empty());
        let text = "Boeing cuts 400 jobs as profit falls 20% to $5 million in 2024";
        let (score, n) = numbers(text);
        assert_eq!(score, None);
        let got: Vec<(&str, Meaning)> = n.iter().map(|n| (n.text.as_str(), n.meaning)).collect();
        assert_eq!(
            got,
            vec![
                ("400 jobs", Meaning::Count),
                ("20%", Meaning::Percent),
                ("$5 million", Meaning::Money),
                ("2024", Meaning::Year)
            ]
        );
        let text = "Magnitude 6.1 earthquake shakes Cedar Bay after a 48-hour storm";
        let (_, n) = numbers(text);
        assert_eq!(n[0].text, "Magnitude 6.1");
        assert_eq!(n[1].text, "48-hour");
        assert_eq!(parse_score("102 - 99").as_deref(), Some("102-99"));
        assert_eq!(parse_score("2024-25x"), None);
        assert_eq!(parse_score("1234-1"), None);
    }

    #[test]
    fn unknown_names_take_roles_by_pattern() {
        let world = World::embedded().expect("world");
        let lex = lex();
        let text = "Argentina beat France on penalties to win the World Cup final after a 3-3 draw";
        let (f, _) = extract(&lex, &world, text, Category::Sports);
        assert_eq!(f.kind.name(), "win");
        assert_eq!(f.role(RoleName::Winner).map(|r| r.text.as_str()), Some("Argentina"));
        assert_eq!(f.role(RoleName::Loser).map(|r| r.text.as_str()), Some("France"));
        assert_eq!(f.score.as_deref(), Some("3-3"));
        let (f, _) = extract(&lex, &world, "Chelsea lose to Arsenal in London", Category::Sports);
        assert_eq!(f.kind.name(), "loss");
        assert_eq!(f.role(RoleName::Winner).map(|r| r.text.as_str()), Some("Arsenal"));
        assert_eq!(f.role(RoleName::Loser).map(|r| r.text.as_str()), Some("Chelsea"));
        assert_eq!(f.role(RoleName::Place).map(|r| r.text.as_str()), Some("London"));
    }

    proptest::proptest! {
        /// Any text extracts without a panic, with roles naming spans of the text.
        #[test]
        fn any_text_extracts(text in "(\\PC|İ|Magnitude |[0-9]){0,80}", words in proptest::collection::vec("[A-Z][a-z]{0,6}|[a-z]{1,6}|[0-9]{1,3}(-[0-9]{1,3})?|[-,.%$' ]", 0..24)) {
            let world = World::embedded().expect("world");
            let lex = lex();
            for t in [text, words.join(" ")] {
                for c in Category::ALL {
                    let toks = tokens(&t);
                    let lower: Vec<&str> = toks.iter().map(|t| t.lower.as_str()).collect();
                    let votes = lex.cue_votes(&lower);
                    let (f, _) = lex.extract(&world, &t, &toks, &votes, c, &[], &|w| w.len() < 4);
                    for r in f.roles.iter().flatten() {
                        proptest::prop_assert!(t.contains(&r.text));
                    }
                }
            }
        }
    }

    #[test]
    fn stems_match_word_forms() {
        for (a, b) in [("stunned", "stuns"), ("delaying", "delays"), ("resigned", "resign"), ("closes", "close")] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_eq!(stem("ßß"), "ßß");
        assert_eq!(stem("añé"), "añé");
    }

    #[test]
    fn bad_lexicon_rows_name_file_line_and_field() {
        let cases = [
            ("kind\tsports\tfly\t+\tthe flight\n", "f.tsv:1: kind: \"fly\" is not a sports kind"),
            ("cue\tsprots\twin\t1\tbeat\n", "f.tsv:1: category: unknown category \"sprots\""),
            ("role\t*\twinner\tX beat Y\n", "f.tsv:1: pattern: the pattern has 2 of X/Y but 1 roles"),
            ("role\t*\tboss\tX\n", "f.tsv:1: roles: \"boss\" is not"),
            ("nonsense\tx\n", "f.tsv:1: row: \"nonsense\" is not"),
            ("", "f.tsv:1: kind: no `kind` row for sports win"),
        ];
        for (text, want) in cases {
            let err = FrameLexicon::parse("f.tsv", text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
