//! Seed profiles: the ~1,000 hand-curated users that the population is multiplied from.
//! Format: `seeds/profiles.jsonl`, documented in `seeds/README.md`.
//!
//! Invariant: after [`SeedSet::parse`] every seed is in range, its town and affiliations resolve
//! in the world, ids and handles are unique, and the hourly curve sums to 1.

use crate::error::{Error, Result};
use crate::jsonl::{check_range, last_line, parse_lines};
use crate::taxonomy::{Topic, TOPIC_COUNT};
use crate::world::{EntityIdx, EntityKind, World};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    id: String,
    name: String,
    handle: String,
    age: u8,
    gender: String,
    town: String,
    occupation: String,
    locale: String,
    big5: RawBig5,
    politics: f32,
    interests: BTreeMap<String, f32>,
    style: RawStyle,
    activity: RawActivity,
    #[serde(default)]
    affiliations: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBig5 {
    openness: f32,
    conscientiousness: f32,
    extraversion: f32,
    agreeableness: f32,
    neuroticism: f32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    formality: f32,
    emoji_rate: f32,
    #[serde(default)]
    emojis: Vec<String>,
    slang: f32,
    caps: String,
    hashtag_rate: f32,
    typo_rate: f32,
    length: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActivity {
    posts_per_day: f32,
    reply: f32,
    quote: f32,
    like: f32,
    repost: f32,
    gif: f32,
    hours: Vec<f32>,
}

/// Gender as given in the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Gender {
    /// Female.
    Female = 0,
    /// Male.
    Male = 1,
    /// Non-binary.
    Nonbinary = 2,
}

impl Gender {
    /// The data-file name.
    pub fn name(self) -> &'static str {
        ["female", "male", "nonbinary"][self as usize]
    }
    /// From the compact code.
    pub fn from_code(code: u8) -> Gender {
        match code {
            0 => Gender::Female,
            1 => Gender::Male,
            _ => Gender::Nonbinary,
        }
    }
}

/// How a user capitalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Caps {
    /// Ordinary sentence case.
    Normal = 0,
    /// all lowercase.
    Lower = 1,
    /// ALL CAPS.
    Upper = 2,
    /// Title Case For Everything.
    Title = 3,
}

impl Caps {
    /// All values, by code.
    pub const ALL: [Caps; 4] = [Caps::Normal, Caps::Lower, Caps::Upper, Caps::Title];
    /// The data-file name.
    pub fn name(self) -> &'static str {
        ["normal", "lower", "upper", "title"][self as usize]
    }
}

/// Typical post length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Length {
    /// A few words.
    Short = 0,
    /// A sentence or two.
    Medium = 1,
    /// Up to the limit.
    Long = 2,
}

impl Length {
    /// All values, by code.
    pub const ALL: [Length; 3] = [Length::Short, Length::Medium, Length::Long];
    /// The data-file name.
    pub fn name(self) -> &'static str {
        ["short", "medium", "long"][self as usize]
    }
}

/// Writing style of a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedStyle {
    /// 0 casual .. 1 formal.
    pub formality: f32,
    /// Share of posts with emoji.
    pub emoji_rate: f32,
    /// Favourite emojis.
    pub emojis: Vec<String>,
    /// 0 none .. 1 heavy slang.
    pub slang: f32,
    /// Capitalisation habit.
    pub caps: Caps,
    /// Share of posts with a hashtag.
    pub hashtag_rate: f32,
    /// Typos per word, 0..0.2.
    pub typo_rate: f32,
    /// Typical length.
    pub length: Length,
}

/// Activity pattern of a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedActivity {
    /// Mean posts per day.
    pub posts_per_day: f32,
    /// Propensity to reply.
    pub reply: f32,
    /// Propensity to quote.
    pub quote: f32,
    /// Propensity to like.
    pub like: f32,
    /// Propensity to repost.
    pub repost: f32,
    /// Propensity to answer with a GIF.
    pub gif: f32,
    /// Hourly activity in local time, normalised to sum 1.
    pub hours: [f32; 24],
}

/// One validated seed profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Seed {
    /// Seed id ("s0001").
    pub id: String,
    /// Display name.
    pub name: String,
    /// First word of the name.
    pub first: String,
    /// Last word of the name.
    pub last: String,
    /// Handle, unique in the seed set.
    pub handle: String,
    /// Age in years.
    pub age: u8,
    /// Gender.
    pub gender: Gender,
    /// Town slot in [`World::towns`].
    pub town: u8,
    /// Index into [`SeedSet::occupations`].
    pub occupation: u16,
    /// Index into [`SeedSet::locales`].
    pub locale: u8,
    /// Openness, conscientiousness, extraversion, agreeableness, neuroticism in `[0, 1]`.
    pub big5: [f32; 5],
    /// Left (-1) to right (+1).
    pub politics: f32,
    /// Interest weight per topic (0 = none), indexed by [`Topic::index`].
    pub interests: [f32; TOPIC_COUNT],
    /// Writing style.
    pub style: SeedStyle,
    /// Activity pattern.
    pub activity: SeedActivity,
    /// Affiliated world entities (teams, parties, people, brands).
    pub affiliations: Vec<EntityIdx>,
    /// Line in the seed file.
    pub line: usize,
}

impl Seed {
    /// The team this seed supports, if any (first team in its affiliations).
    pub fn team(&self, world: &World) -> Option<EntityIdx> {
        self.affiliations.iter().copied().find(|&e| matches!(world.entity(e).kind, EntityKind::Team { .. }))
    }
    /// The party this seed belongs to, if any.
    pub fn party(&self, world: &World) -> Option<EntityIdx> {
        self.affiliations.iter().copied().find(|&e| matches!(world.entity(e).kind, EntityKind::Party { .. }))
    }
}

/// The loaded seed set.
#[derive(Clone, Debug)]
pub struct SeedSet {
    /// File name it was loaded from.
    pub file: String,
    /// The file's text (kept so snapshots are self-contained).
    pub source: String,
    /// The seeds in file order.
    pub seeds: Vec<Seed>,
    /// Interned occupations.
    pub occupations: Vec<String>,
    /// Interned locales.
    pub locales: Vec<String>,
}

fn unit(file: &str, line: usize, field: &str, v: f32) -> Result<f32> {
    check_range(file, line, field, v, 0.0, 1.0)?;
    Ok(v)
}

fn intern<T: TryFrom<usize>>(table: &mut Vec<String>, index: &mut HashMap<String, usize>, value: &str) -> Option<T> {
    let next = table.len();
    let i = *index.entry(value.to_string()).or_insert_with(|| {
        table.push(value.to_string());
        next
    });
    T::try_from(i).ok()
}

impl SeedSet {
    /// Loads a seed file from disk against `world`.
    pub fn load(path: &std::path::Path, world: &World) -> Result<SeedSet> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        SeedSet::parse(&path.display().to_string(), &text, world)
    }

    /// The seeds shipped in `seeds/profiles.jsonl`, embedded in the binary.
    pub fn embedded(world: &World) -> Result<SeedSet> {
        SeedSet::parse("seeds/profiles.jsonl", include_str!("../seeds/profiles.jsonl"), world)
    }

    /// Parses and validates a seed file's text against `world`.
    pub fn parse(file: &str, text: &str, world: &World) -> Result<SeedSet> {
        let rows: Vec<(usize, RawSeed)> = parse_lines(file, text)?;
        if rows.is_empty() {
            return Err(Error::data(file, last_line(text), "-", "no seed profiles"));
        }
        if rows.len() > u16::MAX as usize {
            return Err(Error::data(file, last_line(text), "-", "at most 65535 seed profiles"));
        }
        let mut ids = HashSet::new();
        let mut handles = HashSet::new();
        let (mut occupations, mut occ_index) = (Vec::new(), HashMap::new());
        let (mut locales, mut loc_index) = (Vec::new(), HashMap::new());
        let mut seeds = Vec::with_capacity(rows.len());
        for (line, r) in rows {
            let f = file;
            if r.id.is_empty() || !ids.insert(r.id.clone()) {
                return Err(Error::data(f, line, "id", format!("empty or duplicate id {:?}", r.id)));
            }
            let h = &r.handle;
            let handle_ok = (3..=15).contains(&h.len())
                && h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !handle_ok {
                return Err(Error::data(f, line, "handle", format!("{h:?} must be 3-15 characters of [a-z0-9_]")));
            }
            if !handles.insert(h.clone()) {
                return Err(Error::data(f, line, "handle", format!("duplicate handle {h:?}")));
            }
            let words: Vec<&str> = r.name.split_whitespace().collect();
            if words.len() < 2 || r.name.len() > 60 {
                return Err(Error::data(f, line, "name", "must be a first and last name, at most 60 bytes"));
            }
            check_range(f, line, "age", r.age, 13.0, 100.0)?;
            let gender = match r.gender.as_str() {
                "female" => Gender::Female,
                "male" => Gender::Male,
                "nonbinary" => Gender::Nonbinary,
                g => return Err(Error::data(f, line, "gender", format!("{g:?} is not female, male or nonbinary"))),
            };
            let town = match world.find(&r.town) {
                None => return Err(Error::data(f, line, "town", format!("unknown town {:?}", r.town))),
                Some(e) => world
                    .town_slot(e)
                    .ok_or_else(|| Error::data(f, line, "town", format!("{:?} is not a town", r.town)))?,
            };
            if r.occupation.trim().is_empty() || r.occupation.len() > 60 {
                return Err(Error::data(f, line, "occupation", "must be 1-60 bytes"));
            }
            let occupation = intern::<u16>(&mut occupations, &mut occ_index, &r.occupation)
                .ok_or_else(|| Error::data(f, line, "occupation", "too many distinct occupations"))?;
            let lb = r.locale.as_bytes();
            let locale_ok = lb.len() == 5
                && lb[..2].iter().all(u8::is_ascii_lowercase)
                && lb[2] == b'-'
                && lb[3..].iter().all(u8::is_ascii_uppercase);
            if !locale_ok {
                return Err(Error::data(f, line, "locale", format!("{:?} is not like \"en-US\"", r.locale)));
            }
            let locale = intern::<u8>(&mut locales, &mut loc_index, &r.locale)
                .filter(|&l| l < u8::MAX)
                .ok_or_else(|| Error::data(f, line, "locale", "too many distinct locales (at most 255)"))?;
            let b = &r.big5;
            let big5 = [
                unit(f, line, "big5.openness", b.openness)?,
                unit(f, line, "big5.conscientiousness", b.conscientiousness)?,
                unit(f, line, "big5.extraversion", b.extraversion)?,
                unit(f, line, "big5.agreeableness", b.agreeableness)?,
                unit(f, line, "big5.neuroticism", b.neuroticism)?,
            ];
            check_range(f, line, "politics", r.politics, -1.0, 1.0)?;
            if r.interests.is_empty() {
                return Err(Error::data(f, line, "interests", "needs at least one topic"));
            }
            let mut interests = [0.0f32; TOPIC_COUNT];
            for (name, &w) in &r.interests {
                let field = format!("interests.{name}");
                let topic = Topic::from_name(name)
                    .ok_or_else(|| Error::data(f, line, &field, format!("unknown topic {name:?}")))?;
                check_range(f, line, &field, w, 0.0, 1.0)?;
                interests[topic.index()] = w;
            }
            let s = &r.style;
            let caps = Caps::ALL.into_iter().find(|c| c.name() == s.caps).ok_or_else(|| {
                Error::data(f, line, "style.caps", format!("{:?} is not normal, lower, upper or title", s.caps))
            })?;
            let length = Length::ALL.into_iter().find(|l| l.name() == s.length).ok_or_else(|| {
                Error::data(f, line, "style.length", format!("{:?} is not short, medium or long", s.length))
            })?;
            if s.emojis.len() > 8 || s.emojis.iter().any(|e| e.is_empty() || e.chars().count() > 8) {
                return Err(Error::data(f, line, "style.emojis", "at most 8 emojis, each 1-8 characters"));
            }
            let style = SeedStyle {
                formality: unit(f, line, "style.formality", s.formality)?,
                emoji_rate: unit(f, line, "style.emoji_rate", s.emoji_rate)?,
                emojis: s.emojis.clone(),
                slang: unit(f, line, "style.slang", s.slang)?,
                caps,
                hashtag_rate: unit(f, line, "style.hashtag_rate", s.hashtag_rate)?,
                typo_rate: {
                    check_range(f, line, "style.typo_rate", s.typo_rate, 0.0, 0.2)?;
                    s.typo_rate
                },
                length,
            };
            let a = &r.activity;
            check_range(f, line, "activity.posts_per_day", a.posts_per_day, 0.0, 500.0)?;
            if a.hours.len() != 24 {
                return Err(Error::data(f, line, "activity.hours", format!("needs 24 values, got {}", a.hours.len())));
            }
            let mut hours = [0.0f32; 24];
            let mut sum = 0.0;
            for (h, &v) in a.hours.iter().enumerate() {
                check_range(f, line, &format!("activity.hours[{h}]"), v, 0.0, 1e6)?;
                hours[h] = v;
                sum += v;
            }
            if sum <= 0.0 {
                return Err(Error::data(f, line, "activity.hours", "all zero"));
            }
            hours.iter_mut().for_each(|v| *v /= sum);
            let activity = SeedActivity {
                posts_per_day: a.posts_per_day,
                reply: unit(f, line, "activity.reply", a.reply)?,
                quote: unit(f, line, "activity.quote", a.quote)?,
                like: unit(f, line, "activity.like", a.like)?,
                repost: unit(f, line, "activity.repost", a.repost)?,
                gif: unit(f, line, "activity.gif", a.gif)?,
                hours,
            };
            let mut affiliations = Vec::new();
            for (k, id) in r.affiliations.iter().enumerate() {
                let field = format!("affiliations[{k}]");
                let e = world
                    .find(id)
                    .ok_or_else(|| Error::data(f, line, &field, format!("unknown world entity {id:?}")))?;
                match world.entity(e).kind {
                    EntityKind::Team { .. }
                    | EntityKind::Party { .. }
                    | EntityKind::Person { .. }
                    | EntityKind::Brand { .. } => {}
                    _ => {
                        return Err(Error::data(
                            f,
                            line,
                            &field,
                            format!("{id:?} is not a team, party, person or brand"),
                        ))
                    }
                }
                if affiliations.contains(&e) {
                    return Err(Error::data(f, line, &field, format!("duplicate affiliation {id:?}")));
                }
                affiliations.push(e);
            }
            seeds.push(Seed {
                id: r.id,
                first: words[0].to_string(),
                last: words[words.len() - 1].to_string(),
                name: r.name,
                handle: r.handle,
                age: r.age,
                gender,
                town,
                occupation,
                locale,
                big5,
                politics: r.politics,
                interests,
                style,
                activity,
                affiliations,
                line,
            });
        }
        Ok(SeedSet { file: file.to_string(), source: text.to_string(), seeds, occupations, locales })
    }
}
