//! Template-filled posts: a library of handlebars templates per (category, action, sentiment)
//! in `templates/posts/*.tsv`, phrase banks in `templates/phrases/*.tsv`, and per-user style
//! transforms applied after filling (slang, casing, emoji, hashtags, typos, formality).
//!
//! Every template is validated by the handlebars parser (strict mode) when loaded, and may
//! use only plain `{{variable}}` expressions from [`VARIABLES`]. Templates are then
//! precompiled into text and variable segments, so filling is a few string copies. A test
//! checks this fast path against handlebars' own rendering.
//!
//! Invariants: only this module knows handlebars. Values (event text, names, phrases) are
//! inserted as data and never parsed as template syntax. A rendered post is a pure function of
//! (library, user, context), keyed by counter-based randomness.

use crate::error::{Error, Result};
use crate::events::Category;
use crate::frame::Kind;
use crate::ids::UserId;
use crate::jsonl::tsv_fields;
use crate::population::columns::dq8;
use crate::population::Population;
use crate::rng::{domain, Stream};
use std::collections::HashMap;

mod context;
mod style;

pub use context::{Facts, PostContext, Stance, NO_FACTS, STANCES};
pub use style::Tone;

/// The variables a template may use: the first nine anywhere, the frame slots (winner ...
/// number) only where the event's frame has them.
pub const VARIABLES: [&str; 17] = [
    "subject", "what", "town", "reaction", "comment", "agree", "aspect", "author", "hashtag", "winner", "loser",
    "actor", "target", "person", "place", "score", "number",
];

/// The frame slots, in [`Facts::values`] order (roles as in [`crate::frame::RoleName`], then
/// score and number).
pub const SLOTS: [&str; 8] = ["winner", "loser", "actor", "target", "person", "place", "score", "number"];

/// What kind of post a template writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new post about the event.
    Post,
    /// A reply to another post.
    Reply,
    /// A quote post.
    Quote,
}

/// The user's feeling about what they post about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    /// Good news for them.
    Positive,
    /// Bad news for them.
    Negative,
    /// Neither.
    Neutral,
}

impl Sentiment {
    /// +1, -1 or 0.
    pub fn sign(self) -> i8 {
        match self {
            Sentiment::Positive => 1,
            Sentiment::Negative => -1,
            Sentiment::Neutral => 0,
        }
    }

    /// True when one is positive and the other negative (a hostile answer).
    pub fn opposes(self, other: Sentiment) -> bool {
        self.sign() * other.sign() < 0
    }

    /// Lowercase name, as in the JSONL.
    pub fn name(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
        }
    }

    /// From a stance in -127..=127.
    pub fn from_stance(stance: i8) -> Sentiment {
        match stance {
            s if s > 12 => Sentiment::Positive,
            s if s < -12 => Sentiment::Negative,
            _ => Sentiment::Neutral,
        }
    }
}

const ACTIONS: [(&str, Action); 3] = [("post", Action::Post), ("reply", Action::Reply), ("quote", Action::Quote)];
const SENTIMENTS: [(&str, Sentiment); 3] =
    [("positive", Sentiment::Positive), ("negative", Sentiment::Negative), ("neutral", Sentiment::Neutral)];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    Subject,
    What,
    Town,
    Reaction,
    Comment,
    Agree,
    Aspect,
    Author,
    Hashtag,
    /// A frame slot: index into [`SLOTS`].
    Slot(u8),
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Text(String),
    Var(Var),
}

/// One validated, precompiled template.
#[derive(Clone, Debug)]
pub struct Template {
    /// Where it came from: file and line.
    pub origin: String,
    /// The template source.
    pub source: String,
    segments: Vec<Segment>,
    /// The frame slots it fills (bits as in [`crate::frame::Frame::slots`]).
    needs: u16,
    /// Whether it quotes the event (`{{what}}`).
    quotes: bool,
}

impl Template {
    fn new(origin: String, source: &str, segments: Vec<Segment>) -> Template {
        let needs = segments.iter().fold(0u16, |m, s| if let Segment::Var(Var::Slot(k)) = s { m | 1 << k } else { m });
        let quotes = segments.contains(&Segment::Var(Var::What));
        Template { origin, source: source.to_string(), segments, needs, quotes }
    }

    /// Whether it can be filled from an event with frame slots `slots`.
    pub fn fits(&self, slots: u16) -> bool {
        self.needs & !slots == 0
    }
}

/// How the emoji and typos of one post are chosen.
#[derive(Clone, Copy, Debug)]
struct Finish {
    sentiment: Sentiment,
    grave: bool,
    typos: bool,
}

/// Phrase banks, resolved per (bank, category, key): the key is the sentiment, or for the
/// `agree` bank the stance.
#[derive(Clone, Debug, Default)]
struct Banks {
    /// Per (bank, category, key): ids into `all` of the specific entries plus the `*` ones.
    resolved: Vec<Vec<u32>>,
    all: Vec<String>,
}

const BANKS: [&str; 4] = ["reaction", "comment", "agree", "aspect"];
/// The `agree` bank, keyed by stance.
const AGREE: usize = 2;
/// Keys per category of each bank.
const BANK_KEYS: [usize; 4] = [3, 3, STANCES.len(), 3];

/// The loaded template library.
#[derive(Clone, Debug)]
pub struct Templates {
    templates: Vec<Template>,
    /// Template ids per (category, action, sentiment).
    contexts: Vec<Vec<u32>>,
    /// The same, without the templates that quote the event (`{{what}}`).
    unquoted: Vec<Vec<u32>>,
    banks: Banks,
    /// Single-word slang substitutions, keyed by the lowercase word.
    slang: HashMap<String, String>,
    /// Kind templates (`kinds/<category>.tsv`) per (kind, action, sentiment): those for any
    /// author, and those for the side's fans only.
    kinds: HashMap<(Kind, Action, Sentiment), [Vec<u32>; 2]>,
    /// Emoji tones.
    emoji: HashMap<String, Tone>,
    /// Emoji for posts whose author has none that fits: positive, negative.
    fallback_emoji: [Vec<String>; 2],
}

/// Chance that a post draws a kind template when at least [`KIND_FULL`] fit (else a category
/// template); proportionally less when fewer fit.
const KIND_SHARE: f64 = 0.8;
/// How many fitting kind templates get the full [`KIND_SHARE`].
const KIND_FULL: f64 = 8.0;

fn context_index(c: Category, a: Action, s: Sentiment) -> usize {
    (c as usize * 3 + a as usize) * 3 + s as usize
}

fn bank_index(bank: usize, c: Category, key: usize) -> usize {
    let before: usize = BANK_KEYS[..bank].iter().sum::<usize>() * Category::ALL.len();
    before + BANK_KEYS[bank] * c as usize + key
}

/// A template line's action, sentiment and template: the template validated by handlebars
/// (strict mode) and compiled, at most 280 bytes, `{{author}}` only in replies and quotes.
fn read_template(
    hb: &mut handlebars::Handlebars,
    file: &str,
    line: usize,
    action: &str,
    sentiment: &str,
    src: &str,
) -> Result<(Action, Sentiment, Vec<Segment>)> {
    let act = ACTIONS
        .iter()
        .find(|a| a.0 == action)
        .map(|a| a.1)
        .ok_or_else(|| Error::data(file, line, "action", format!("{action:?} is not post, reply or quote")))?;
    let sent = SENTIMENTS.iter().find(|s| s.0 == sentiment).map(|s| s.1).ok_or_else(|| {
        Error::data(file, line, "sentiment", format!("{sentiment:?} is not positive, negative or neutral"))
    })?;
    let src = src.trim();
    if src.len() > 280 {
        return Err(Error::data(file, line, "template", "longer than 280 bytes"));
    }
    hb.register_template_string("check", src)
        .map_err(|e| Error::data(file, line, "template", format!("handlebars: {e}")))?;
    let segments = compile(file, line, src)?;
    if act == Action::Post && segments.contains(&Segment::Var(Var::Author)) {
        return Err(Error::data(file, line, "template", "{{author}} is only for reply and quote templates"));
    }
    Ok((act, sent, segments))
}

/// Splits a template into segments, accepting only `{{name}}` with a known name.
fn compile(file: &str, line: usize, src: &str) -> Result<Vec<Segment>> {
    let bad = |msg: String| Err(Error::data(file, line, "template", msg));
    let mut segments = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            segments.push(Segment::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { return bad("unclosed {{".into()) };
        let name = after[..close].trim();
        let var = match name {
            "subject" => Var::Subject,
            "what" => Var::What,
            "town" => Var::Town,
            "reaction" => Var::Reaction,
            "comment" => Var::Comment,
            "agree" => Var::Agree,
            "aspect" => Var::Aspect,
            "author" => Var::Author,
            "hashtag" => Var::Hashtag,
            slot if SLOTS.contains(&slot) => Var::Slot(SLOTS.iter().position(|x| *x == slot).unwrap_or(0) as u8),
            other => return bad(format!("{{{{{other}}}}} is not one of the variables {}", VARIABLES.join(", "))),
        };
        segments.push(Segment::Var(var));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return bad("stray }}".into());
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_string()));
    }
    Ok(segments)
}

impl Templates {
    /// The library shipped in `templates/`, embedded in the binary.
    pub fn embedded() -> Result<Templates> {
        Templates::parse(&embedded::POSTS, &embedded::PHRASES, embedded::SLANG)?
            .with_kinds(&embedded::KINDS, embedded::EMOJI)
    }

    /// Loads `posts/<category>.tsv`, `kinds/<category>.tsv`, `phrases/<bank>.tsv`,
    /// `phrases/slang.tsv` and `phrases/emoji.tsv` from a templates folder.
    pub fn load(dir: &std::path::Path) -> Result<Templates> {
        let read = |rel: String| -> Result<(String, String)> {
            let path = dir.join(&rel);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            Ok((path.display().to_string(), text))
        };
        let posts: Vec<(String, String)> =
            Category::ALL.iter().map(|c| read(format!("posts/{}.tsv", c.name()))).collect::<Result<_>>()?;
        let phrases: Vec<(String, String)> =
            BANKS.iter().map(|b| read(format!("phrases/{b}.tsv"))).collect::<Result<_>>()?;
        let slang = read("phrases/slang.tsv".into())?;
        let p: Vec<(&str, &str)> = posts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let q: Vec<(&str, &str)> = phrases.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let kinds: Vec<(String, String)> =
            Category::ALL.iter().map(|c| read(format!("kinds/{}.tsv", c.name()))).collect::<Result<_>>()?;
        let k: Vec<(&str, &str)> = kinds.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let emoji = read("phrases/emoji.tsv".into())?;
        Templates::parse(&p, &q, (slang.0.as_str(), slang.1.as_str()))?
            .with_kinds(&k, (emoji.0.as_str(), emoji.1.as_str()))
    }

    /// Parses post files (one per category, in [`Category::ALL`] order), phrase bank files
    /// (reaction, comment, agree, aspect) and the slang file, each as (file name, text).
    pub fn parse(posts: &[(&str, &str)], phrases: &[(&str, &str)], slang: (&str, &str)) -> Result<Templates> {
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        let n_ctx = Category::ALL.len() * 9;
        let mut contexts = vec![Vec::new(); n_ctx];
        let mut templates = Vec::new();
        for (k, (file, text)) in posts.iter().enumerate() {
            let category = Category::ALL.get(k).copied().ok_or_else(|| Error::Config("too many post files".into()))?;
            for (i, raw) in text.lines().enumerate() {
                let line = i + 1;
                if raw.trim().is_empty() || raw.starts_with('#') {
                    continue;
                }
                let f = tsv_fields(file, line, raw, 3)?;
                let (action, sentiment, segments) = read_template(&mut hb, file, line, f[0], f[1], f[2])?;
                if segments.iter().any(|s| matches!(s, Segment::Var(Var::Slot(_)))) {
                    return Err(Error::data(
                        file,
                        line,
                        "template",
                        "frame slots are for kind templates (templates/kinds)",
                    ));
                }
                contexts[context_index(category, action, sentiment)].push(templates.len() as u32);
                templates.push(Template::new(format!("{file}:{line}"), f[2].trim(), segments));
            }
        }
        for c in Category::ALL {
            for (an, a) in ACTIONS {
                for (sn, s) in SENTIMENTS {
                    if contexts[context_index(c, a, s)].is_empty() {
                        let file = posts.get(c as usize).map(|p| p.0).unwrap_or("templates/posts");
                        return Err(Error::data(
                            file,
                            crate::jsonl::last_line(posts.get(c as usize).map(|p| p.1).unwrap_or("")),
                            "-",
                            format!("no {an} template for {sn} {c} events"),
                        ));
                    }
                }
            }
        }
        let mut banks = Banks::default();
        // (bank, category or 11 = any, sentiment or 3 = any) -> phrases, as read.
        let mut read: HashMap<(u8, u8, u8), Vec<String>> = HashMap::new();
        for (b, (file, text)) in phrases.iter().enumerate().take(BANKS.len()) {
            for (i, raw) in text.lines().enumerate() {
                let line = i + 1;
                if raw.trim().is_empty() || raw.starts_with('#') {
                    continue;
                }
                let f = tsv_fields(file, line, raw, 3)?;
                let cat = if f[0] == "*" {
                    Category::ALL.len() as u8
                } else {
                    Category::from_name(f[0])
                        .ok_or_else(|| Error::data(file, line, "key", format!("{:?} is not a category or *", f[0])))?
                        as u8
                };
                let sent = if f[1] == "*" {
                    u8::MAX
                } else if b == AGREE {
                    STANCES.iter().position(|s| s.0 == f[1]).map(|k| k as u8).ok_or_else(|| {
                        let codes: Vec<&str> = STANCES.iter().map(|s| s.0).collect();
                        Error::data(file, line, "stance", format!("{:?} is not one of {} or *", f[1], codes.join(", ")))
                    })?
                } else {
                    SENTIMENTS.iter().find(|s| s.0 == f[1]).map(|s| s.1 as u8).ok_or_else(|| {
                        Error::data(
                            file,
                            line,
                            "sentiment",
                            format!("{:?} is not positive, negative, neutral or *", f[1]),
                        )
                    })?
                };
                let phrase = f[2].trim();
                if phrase.contains("{{") || phrase.contains("}}") {
                    return Err(Error::data(file, line, "phrase", "phrases are plain text, not templates"));
                }
                read.entry((b as u8, cat, sent)).or_default().push(phrase.to_string());
            }
        }
        for (b, bank) in BANKS.iter().enumerate() {
            for c in Category::ALL {
                for s in 0..BANK_KEYS[b] as u8 {
                    let mut ids = Vec::new();
                    for key in [
                        (c as u8, s),
                        (c as u8, u8::MAX),
                        (Category::ALL.len() as u8, s),
                        (Category::ALL.len() as u8, u8::MAX),
                    ] {
                        if let Some(list) = read.get(&(b as u8, key.0, key.1)) {
                            for p in list {
                                ids.push(banks.all.len() as u32);
                                banks.all.push(p.clone());
                            }
                        }
                    }
                    if ids.is_empty() {
                        let file = phrases.get(b).map(|p| p.0).unwrap_or("templates/phrases");
                        let key = if b == AGREE { STANCES[s as usize].0 } else { SENTIMENTS[s as usize].0 };
                        return Err(Error::data(file, 1, "-", format!("bank {bank} has no phrase for {key} {c}")));
                    }
                    debug_assert_eq!(banks.resolved.len(), bank_index(b, c, s as usize));
                    banks.resolved.push(ids);
                }
            }
        }
        let (sfile, stext) = slang;
        let mut slang = HashMap::new();
        for (i, raw) in stext.lines().enumerate() {
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let f = tsv_fields(sfile, i + 1, raw, 2)?;
            let formal = f[0].trim().to_lowercase();
            // Multi-word phrases ("going to") are not matched by the one-word pass.
            if !formal.contains(' ') {
                slang.insert(formal, f[1].trim().to_string());
            }
        }
        let unquoted: Vec<Vec<u32>> = contexts
            .iter()
            .map(|ids| {
                let plain: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|&id| !templates[id as usize].segments.contains(&Segment::Var(Var::What)))
                    .collect();
                // A context where every template quotes the event keeps them all.
                if plain.is_empty() {
                    ids.clone()
                } else {
                    plain
                }
            })
            .collect();
        Ok(Templates {
            templates,
            contexts,
            unquoted,
            banks,
            slang,
            kinds: HashMap::new(),
            emoji: HashMap::new(),
            fallback_emoji: Default::default(),
        })
    }

    /// Adds the kind templates (`kinds/<category>.tsv`, one per category in
    /// [`Category::ALL`] order, as (file name, text); lines `kind<TAB>action<TAB>sentiment<TAB>
    /// side<TAB>template`, kinds comma-separated, side `any` or `fan`) and the emoji tones
    /// (`phrases/emoji.tsv`: `emoji<TAB>tone`).
    pub fn with_kinds(mut self, kinds: &[(&str, &str)], emoji: (&str, &str)) -> Result<Templates> {
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        for (k, (file, text)) in kinds.iter().enumerate() {
            let category = Category::ALL.get(k).copied().ok_or_else(|| Error::Config("too many kind files".into()))?;
            for (i, raw) in text.lines().enumerate() {
                let line = i + 1;
                if raw.trim().is_empty() || raw.starts_with('#') {
                    continue;
                }
                let f = tsv_fields(file, line, raw, 5)?;
                let mut list = Vec::new();
                for name in f[0].split(',') {
                    list.push(Kind::find(category, name.trim()).ok_or_else(|| {
                        Error::data(
                            file,
                            line,
                            "kind",
                            format!(
                                "{name:?} is not a {category} kind (one of {})",
                                crate::frame::kinds_of(category).join(", ")
                            ),
                        )
                    })?);
                }
                let fan = match f[3] {
                    "any" => 0,
                    "fan" => 1,
                    other => return Err(Error::data(file, line, "side", format!("{other:?} is not any or fan"))),
                };
                let (action, sentiment, segments) = read_template(&mut hb, file, line, f[1], f[2], f[4])?;
                let src = f[4].trim();
                if action == Action::Post && segments.contains(&Segment::Var(Var::Agree)) {
                    return Err(Error::data(
                        file,
                        line,
                        "template",
                        "{{author}} and {{agree}} are only for replies and quotes",
                    ));
                }
                let id = self.templates.len() as u32;
                self.templates.push(Template::new(format!("{file}:{line}"), src, segments));
                for kind in list {
                    self.kinds.entry((kind, action, sentiment)).or_default()[fan].push(id);
                }
            }
        }
        let (file, text) = emoji;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let f = tsv_fields(file, line, raw, 2)?;
            let tone = match f[1] {
                "positive" => Tone::Positive,
                "negative" => Tone::Negative,
                "laughing" => Tone::Laughing,
                "neutral" => Tone::Neutral,
                "object" => Tone::Object,
                other => {
                    return Err(Error::data(
                        file,
                        line,
                        "tone",
                        format!("{other:?} is not positive, negative, laughing, neutral or object"),
                    ))
                }
            };
            if self.emoji.insert(f[0].to_string(), tone).is_some() {
                return Err(Error::data(file, line, "emoji", format!("{} is listed twice", f[0])));
            }
            match tone {
                Tone::Positive => self.fallback_emoji[0].push(f[0].to_string()),
                Tone::Negative => self.fallback_emoji[1].push(f[0].to_string()),
                _ => {}
            }
        }
        Ok(self)
    }

    /// The emoji of the table with tone `tone`.
    pub fn emoji_with(&self, tone: Tone) -> Vec<&str> {
        let mut v: Vec<&str> = self.emoji.iter().filter(|(_, t)| **t == tone).map(|(e, _)| e.as_str()).collect();
        v.sort_unstable();
        v
    }

    /// The tone of an emoji (unknown ones count as objects: fine unless the event is grave).
    pub fn tone(&self, emoji: &str) -> Tone {
        self.emoji.get(emoji).copied().unwrap_or(Tone::Object)
    }

    /// The kind templates for (kind, action, sentiment): for any author, and for fans only.
    pub fn kind_templates(&self, kind: Kind, a: Action, s: Sentiment) -> (&[u32], &[u32]) {
        match self.kinds.get(&(kind, a, s)) {
            Some([any, fan]) => (any, fan),
            None => (&[], &[]),
        }
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// True if there are none (never, after a successful parse).
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The template with id `id`.
    pub fn template(&self, id: u32) -> &Template {
        &self.templates[id as usize]
    }

    /// Templates available for a context.
    pub fn context(&self, c: Category, a: Action, s: Sentiment) -> &[u32] {
        &self.contexts[context_index(c, a, s)]
    }

    fn phrase(&self, bank: usize, c: Category, key: usize, rng: &mut Stream) -> &str {
        let ids = &self.banks.resolved[bank_index(bank, c, key)];
        &self.banks.all[ids[rng.below(ids.len() as u64) as usize] as usize]
    }

    /// The template for a post: a kind template that the event's facts can fill (the fans'
    /// ones too for a fan), [`KIND_SHARE`] of the time when at least [`KIND_FULL`] fit (less
    /// when fewer do), else a category template. Templates quoting the event are skipped for
    /// authors against it.
    fn choose(&self, ctx: &PostContext, rng: &mut Stream) -> u32 {
        let fits = |id: &u32| {
            let t = &self.templates[*id as usize];
            t.fits(ctx.facts.slots) && !(ctx.against_event && t.quotes)
        };
        if let Some(kind) = ctx.facts.kind {
            let (any, fan) = self.kind_templates(kind, ctx.action, ctx.sentiment);
            let fan = if ctx.fan { fan } else { &[] };
            let n = any.iter().chain(fan).filter(|id| fits(id)).count();
            // Few fitting kind templates (an event missing most slots) get fewer posts, so no
            // one template dominates a burst.
            if n > 0 && rng.chance(KIND_SHARE * (n as f64 / KIND_FULL).min(1.0)) {
                let k = rng.below(n as u64) as usize;
                if let Some(&id) = any.iter().chain(fan).filter(|id| fits(id)).nth(k) {
                    return id;
                }
            }
        }
        let ids = if ctx.against_event {
            &self.unquoted[context_index(ctx.category, ctx.action, ctx.sentiment)]
        } else {
            self.context(ctx.category, ctx.action, ctx.sentiment)
        };
        ids[rng.below(ids.len() as u64) as usize]
    }

    /// Renders one post for `user` into `out` (cleared first) and returns the template id.
    pub fn render(&self, population: &Population, user: UserId, ctx: &PostContext, out: &mut String) -> u32 {
        out.clear();
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE, ctx.key, user.0 as u64);
        let id = self.choose(ctx, &mut rng);
        let cols = population.columns();
        let i = user.index();
        let style = cols.style[i];
        let town =
            population.world().entity(population.world().towns[cols.demographics[i].town as usize]).name.as_str();
        let hashtag_on = rng.chance((dq8(style.hashtag_rate) + ctx.drift[1] as f32 / 255.0) as f64);
        let sent = ctx.sentiment as usize;
        // A grave event (a death, violence) takes its interjections and reply openers from the
        // disaster banks, which hold no jokes ("flop", "what a great day").
        let tone_cat = if ctx.facts.grave { Category::Disaster } else { ctx.category };
        for seg in &self.templates[id as usize].segments {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(v) => match v {
                    Var::Slot(k) => out.push_str(&ctx.facts.values[*k as usize]),
                    Var::Subject => out.push_str(ctx.subject),
                    Var::What => out.push_str(ctx.what),
                    Var::Town => out.push_str(town),
                    Var::Author => out.push_str(ctx.author),
                    Var::Hashtag => {
                        if hashtag_on {
                            out.push_str(ctx.hashtag);
                        }
                    }
                    Var::Reaction => out.push_str(self.phrase(0, tone_cat, sent, &mut rng)),
                    Var::Comment => out.push_str(self.phrase(1, ctx.category, sent, &mut rng)),
                    Var::Agree => out.push_str(self.phrase(AGREE, tone_cat, ctx.stance as usize, &mut rng)),
                    Var::Aspect => out.push_str(self.phrase(3, ctx.category, sent, &mut rng)),
                },
            }
        }
        // A post opening with a name ("the Redhawks ...") opens with a capital.
        // "the {{actor}}" with an actor named "the Redhawks".
        while let Some(k) = out.find("the the ").or_else(|| out.find("The the ")) {
            out.replace_range(k + 4..k + 8, "");
        }
        if out.starts_with("the ") {
            out.replace_range(..1, "T");
        }
        let finish = Finish { sentiment: ctx.sentiment, grave: ctx.facts.grave, typos: true };
        self.restyle(population, user, hashtag_on, ctx.drift[0], finish, &mut rng, out);
        id
    }

    /// Renders a short caption for a GIF reply into `out` (cleared first): a reaction phrase
    /// in the user's style.
    #[allow(clippy::too_many_arguments)]
    pub fn caption(
        &self,
        population: &Population,
        user: UserId,
        category: Category,
        sentiment: Sentiment,
        grave: bool,
        key: u64,
        out: &mut String,
    ) {
        out.clear();
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE, key, user.0 as u64 | 1 << 40);
        let category = if grave { Category::Disaster } else { category };
        out.push_str(self.phrase(0, category, sentiment as usize, &mut rng));
        self.restyle(population, user, false, 0, Finish { sentiment, grave, typos: true }, &mut rng, out);
    }

    /// A post for `user` around an LLM-written `line` (a phrase-bank line about the event):
    /// [`BANK_OPENER`] of the time a reaction phrase of the user's feeling opens it, and the
    /// user's style finishes it (slang, casing, ending, emoji; never a typo).
    #[allow(clippy::too_many_arguments)]
    pub fn around_line(
        &self,
        population: &Population,
        user: UserId,
        category: Category,
        sentiment: Sentiment,
        grave: bool,
        key: u64,
        line: &str,
    ) -> String {
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE ^ 0x6261_6e6b, key, user.0 as u64);
        let category = if grave { Category::Disaster } else { category };
        let mut out = String::with_capacity(line.len() + 24);
        if rng.chance(BANK_OPENER) {
            let opener = self.phrase(0, category, sentiment as usize, &mut rng);
            let mut c = opener.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
            out.push_str(". ");
        }
        out.push_str(line);
        self.restyle(population, user, false, 0, Finish { sentiment, grave, typos: false }, &mut rng, &mut out);
        out
    }
}

/// Share of phrase-bank posts opened by a reaction phrase.
pub const BANK_OPENER: f64 = 0.3;

mod embedded {
    pub const POSTS: [(&str, &str); 11] = [
        ("templates/posts/sports.tsv", include_str!("../../templates/posts/sports.tsv")),
        ("templates/posts/politics.tsv", include_str!("../../templates/posts/politics.tsv")),
        ("templates/posts/entertainment.tsv", include_str!("../../templates/posts/entertainment.tsv")),
        ("templates/posts/tech.tsv", include_str!("../../templates/posts/tech.tsv")),
        ("templates/posts/business.tsv", include_str!("../../templates/posts/business.tsv")),
        ("templates/posts/science.tsv", include_str!("../../templates/posts/science.tsv")),
        ("templates/posts/health.tsv", include_str!("../../templates/posts/health.tsv")),
        ("templates/posts/weather.tsv", include_str!("../../templates/posts/weather.tsv")),
        ("templates/posts/disaster.tsv", include_str!("../../templates/posts/disaster.tsv")),
        ("templates/posts/crime.tsv", include_str!("../../templates/posts/crime.tsv")),
        ("templates/posts/gaming.tsv", include_str!("../../templates/posts/gaming.tsv")),
    ];
    pub const PHRASES: [(&str, &str); 4] = [
        ("templates/phrases/reaction.tsv", include_str!("../../templates/phrases/reaction.tsv")),
        ("templates/phrases/comment.tsv", include_str!("../../templates/phrases/comment.tsv")),
        ("templates/phrases/agree.tsv", include_str!("../../templates/phrases/agree.tsv")),
        ("templates/phrases/aspect.tsv", include_str!("../../templates/phrases/aspect.tsv")),
    ];
    pub const SLANG: (&str, &str) = ("templates/phrases/slang.tsv", include_str!("../../templates/phrases/slang.tsv"));
    pub const EMOJI: (&str, &str) = ("templates/phrases/emoji.tsv", include_str!("../../templates/phrases/emoji.tsv"));
    pub const KINDS: [(&str, &str); 11] = [
        ("templates/kinds/sports.tsv", include_str!("../../templates/kinds/sports.tsv")),
        ("templates/kinds/politics.tsv", include_str!("../../templates/kinds/politics.tsv")),
        ("templates/kinds/entertainment.tsv", include_str!("../../templates/kinds/entertainment.tsv")),
        ("templates/kinds/tech.tsv", include_str!("../../templates/kinds/tech.tsv")),
        ("templates/kinds/business.tsv", include_str!("../../templates/kinds/business.tsv")),
        ("templates/kinds/science.tsv", include_str!("../../templates/kinds/science.tsv")),
        ("templates/kinds/health.tsv", include_str!("../../templates/kinds/health.tsv")),
        ("templates/kinds/weather.tsv", include_str!("../../templates/kinds/weather.tsv")),
        ("templates/kinds/disaster.tsv", include_str!("../../templates/kinds/disaster.tsv")),
        ("templates/kinds/crime.tsv", include_str!("../../templates/kinds/crime.tsv")),
        ("templates/kinds/gaming.tsv", include_str!("../../templates/kinds/gaming.tsv")),
    ];
}

#[cfg(test)]
mod tests {
    use super::style::typo;
    use super::*;

    type Files = Vec<(String, String)>;

    fn mini(extra: &str) -> (Files, Files) {
        let posts = Category::ALL
            .iter()
            .map(|c| {
                let mut t = String::from("# test\n");
                for (a, _) in ACTIONS {
                    for (s, _) in SENTIMENTS {
                        t.push_str(&format!(
                            "{a}\t{s}\t{{{{reaction}}}} about {{{{subject}}}}: {{{{what}}}} {{{{hashtag}}}}\n"
                        ));
                    }
                }
                if *c == Category::Sports {
                    t.push_str(extra);
                }
                (format!("{}.tsv", c.name()), t)
            })
            .collect();
        let phrases = BANKS.iter().map(|b| (format!("{b}.tsv"), format!("*\t*\t{b} phrase\n"))).collect();
        (posts, phrases)
    }

    fn parse(extra: &str) -> Result<Templates> {
        let (posts, phrases) = mini(extra);
        let p: Vec<(&str, &str)> = posts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let q: Vec<(&str, &str)> = phrases.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Templates::parse(&p, &q, ("slang.tsv", "really\tfr\n"))
    }

    #[test]
    fn only_plain_known_variables_are_accepted() {
        assert_eq!(parse("").unwrap().len(), 99);
        let cases = [
            ("post\tpositive\t{{#each x}}y{{/each}}", "sports.tsv:11: template:"),
            ("post\tpositive\t{{{what}}}", "sports.tsv:11: template:"),
            ("post\tpositive\t{{> partial}}", "sports.tsv:11: template:"),
            ("post\tpositive\t{{nope}}", "sports.tsv:11: template: {{nope}} is not one of the variables"),
            ("post\tpositive\tunclosed {{what", "sports.tsv:11: template:"),
            ("post\tpositive\thi {{author}}", "sports.tsv:11: template: {{author}} is only for reply and quote"),
            ("shout\tpositive\tx", "sports.tsv:11: action: \"shout\" is not post, reply or quote"),
            ("post\tecstatic\tx", "sports.tsv:11: sentiment:"),
            ("post\tpositive", "sports.tsv:11: -: expected 3"),
        ];
        for (line, want) in cases {
            let err = parse(&format!("{line}\n")).unwrap_err().to_string();
            assert!(err.starts_with(want), "{line:?}: {err}");
        }
    }

    #[test]
    fn reply_stances_follow_both_sides() {
        use Sentiment::*;
        let s = |own, parent, roll| Stance::toward(own, parent, roll, 0.5, false);
        assert_eq!(s(Positive, Positive, 0.1), Stance::AgreePositive);
        assert_eq!(s(Negative, Negative, 0.9), Stance::AgreeNegative);
        assert_eq!(s(Negative, Negative, 0.1), Stance::ConsoleNegative);
        assert_eq!(s(Positive, Negative, 0.9), Stance::DisagreePositive);
        assert_eq!(s(Positive, Negative, 0.1), Stance::MockPositive);
        assert_eq!(s(Negative, Positive, 0.9), Stance::DisagreeNegative);
        assert_eq!(s(Neutral, Negative, 0.1), Stance::AskNeutral);
        // No mockery on grave events, nor from the most agreeable.
        assert_eq!(Stance::toward(Negative, Positive, 0.0, 0.5, true), Stance::DisagreeNegative);
        assert_eq!(Stance::toward(Positive, Negative, 0.01, 1.0, false), Stance::DisagreePositive);
        assert!(!s(Negative, Negative, 0.1).opposes() && s(Positive, Negative, 0.1).opposes());
    }

    #[test]
    fn typos_are_plausible_and_spare_names_numbers_and_tags() {
        let mut rng = Stream::new(1, 2, 3, 4);
        let mut changed = 0;
        for k in 0..2_000u32 {
            for word in ["Redhawks", "102-99", "#Hawks", "abc", "x1234", "GREAT"] {
                let mut buf = word.as_bytes().to_vec();
                assert!(!typo(&mut buf, 0, &mut rng), "{word} got a typo");
            }
            let mut buf = b"so brilliant,".to_vec();
            assert!(typo(&mut buf, 3, &mut rng));
            let out = String::from_utf8(buf).unwrap();
            assert!(out.starts_with("so b") && out.ends_with(','), "{out}");
            let word = &out[3..out.len() - 1];
            let diff = word.len() as i32 - "brilliant".len() as i32;
            assert!(diff.abs() <= 1 && word.bytes().all(|b| b.is_ascii_lowercase()), "{k}: {out}");
            changed += (word != "brilliant") as u32;
        }
        // A doubled "l" or a swap of the two "l"s can leave the word as it was, rarely.
        assert!(changed > 1_800, "{changed}");
    }

    #[test]
    fn precompiled_fill_matches_handlebars() {
        let t = parse("reply\tnegative\t{{agree}}, {{author}}! {{aspect}} in {{town}} :: {{comment}}\n").unwrap();
        let values: HashMap<&str, String> = VARIABLES.iter().map(|v| (*v, format!("<{v} & \"value\">"))).collect();
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        for tpl in &t.templates {
            let expected = hb.render_template(&tpl.source, &values).unwrap();
            let mut ours = String::new();
            for seg in &tpl.segments {
                match seg {
                    Segment::Text(s) => ours.push_str(s),
                    Segment::Var(Var::Slot(k)) => ours.push_str(&values[SLOTS[*k as usize]]),
                    Segment::Var(v) => {
                        let names =
                            ["subject", "what", "town", "reaction", "comment", "agree", "aspect", "author", "hashtag"];
                        let k = [
                            Var::Subject,
                            Var::What,
                            Var::Town,
                            Var::Reaction,
                            Var::Comment,
                            Var::Agree,
                            Var::Aspect,
                            Var::Author,
                            Var::Hashtag,
                        ]
                        .iter()
                        .position(|x| x == v)
                        .unwrap_or(0);
                        ours.push_str(&values[names[k]])
                    }
                }
            }
            assert_eq!(ours, expected, "{}", tpl.origin);
        }
    }
}
