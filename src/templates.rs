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
use crate::ids::UserId;
use crate::jsonl::tsv_fields;
use crate::population::columns::dq8;
use crate::population::Population;
use crate::rng::{domain, Stream};
use crate::seeds::Caps;
use std::collections::HashMap;

/// The variables a template may use.
pub const VARIABLES: [&str; 9] =
    ["subject", "what", "town", "reaction", "comment", "agree", "aspect", "author", "hashtag"];

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
}

/// Phrase banks, resolved per (bank, category, sentiment).
#[derive(Clone, Debug, Default)]
struct Banks {
    /// Per (bank, category, sentiment): ids into `all` of the specific entries plus the `*` ones.
    resolved: Vec<Vec<u32>>,
    all: Vec<String>,
}

const BANKS: [&str; 4] = ["reaction", "comment", "agree", "aspect"];

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
}

fn context_index(c: Category, a: Action, s: Sentiment) -> usize {
    (c as usize * 3 + a as usize) * 3 + s as usize
}

fn bank_index(bank: usize, c: Category, s: Sentiment) -> usize {
    (bank * Category::ALL.len() + c as usize) * 3 + s as usize
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
        Templates::parse(&embedded::POSTS, &embedded::PHRASES, embedded::SLANG)
    }

    /// Loads `posts/<category>.tsv`, `phrases/<bank>.tsv` and `phrases/slang.tsv` from a
    /// templates folder.
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
        Templates::parse(&p, &q, (slang.0.as_str(), slang.1.as_str()))
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
                let action = ACTIONS.iter().find(|a| a.0 == f[0]).map(|a| a.1).ok_or_else(|| {
                    Error::data(file, line, "action", format!("{:?} is not post, reply or quote", f[0]))
                })?;
                let sentiment = SENTIMENTS.iter().find(|s| s.0 == f[1]).map(|s| s.1).ok_or_else(|| {
                    Error::data(file, line, "sentiment", format!("{:?} is not positive, negative or neutral", f[1]))
                })?;
                let src = f[2].trim();
                if src.len() > 280 {
                    return Err(Error::data(file, line, "template", "longer than 280 bytes"));
                }
                hb.register_template_string("check", src)
                    .map_err(|e| Error::data(file, line, "template", format!("handlebars: {e}")))?;
                let segments = compile(file, line, src)?;
                if action == Action::Post && segments.contains(&Segment::Var(Var::Author)) {
                    return Err(Error::data(
                        file,
                        line,
                        "template",
                        "{{author}} is only for reply and quote templates",
                    ));
                }
                contexts[context_index(category, action, sentiment)].push(templates.len() as u32);
                templates.push(Template { origin: format!("{file}:{line}"), source: src.to_string(), segments });
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
                    3
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
                for (_, s) in SENTIMENTS {
                    let mut ids = Vec::new();
                    for key in [
                        (c as u8, s as u8),
                        (c as u8, 3),
                        (Category::ALL.len() as u8, s as u8),
                        (Category::ALL.len() as u8, 3),
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
                        return Err(Error::data(
                            file,
                            1,
                            "-",
                            format!("bank {bank} has no phrase for {} {c}", SENTIMENTS[s as usize].0),
                        ));
                    }
                    debug_assert_eq!(banks.resolved.len(), bank_index(b, c, s));
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
        Ok(Templates { templates, contexts, unquoted, banks, slang })
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

    fn phrase(&self, bank: usize, c: Category, s: Sentiment, rng: &mut Stream) -> &str {
        let ids = &self.banks.resolved[bank_index(bank, c, s)];
        &self.banks.all[ids[rng.below(ids.len() as u64) as usize] as usize]
    }

    /// Renders one post for `user` into `out` (cleared first) and returns the template id.
    pub fn render(&self, population: &Population, user: UserId, ctx: &PostContext, out: &mut String) -> u32 {
        out.clear();
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE, ctx.key, user.0 as u64);
        let ids = if ctx.against_event {
            &self.unquoted[context_index(ctx.category, ctx.action, ctx.sentiment)]
        } else {
            self.context(ctx.category, ctx.action, ctx.sentiment)
        };
        let id = ids[rng.below(ids.len() as u64) as usize];
        let cols = population.columns();
        let i = user.index();
        let style = cols.style[i];
        let town =
            population.world().entity(population.world().towns[cols.demographics[i].town as usize]).name.as_str();
        let hashtag_on = rng.chance((dq8(style.hashtag_rate) + ctx.drift[1] as f32 / 255.0) as f64);
        for seg in &self.templates[id as usize].segments {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(v) => match v {
                    Var::Subject => out.push_str(ctx.subject),
                    Var::What => out.push_str(ctx.what),
                    Var::Town => out.push_str(town),
                    Var::Author => out.push_str(ctx.author),
                    Var::Hashtag => {
                        if hashtag_on {
                            out.push_str(ctx.hashtag);
                        }
                    }
                    Var::Reaction => out.push_str(self.phrase(0, ctx.category, ctx.sentiment, &mut rng)),
                    Var::Comment => out.push_str(self.phrase(1, ctx.category, ctx.sentiment, &mut rng)),
                    Var::Agree => out.push_str(self.phrase(2, ctx.category, ctx.sentiment, &mut rng)),
                    Var::Aspect => out.push_str(self.phrase(3, ctx.category, ctx.sentiment, &mut rng)),
                },
            }
        }
        self.restyle(population, user, hashtag_on, ctx.drift[0], &mut rng, out);
        id
    }

    /// Renders a short caption for a GIF reply into `out` (cleared first): a reaction phrase
    /// in the user's style.
    pub fn caption(
        &self,
        population: &Population,
        user: UserId,
        category: Category,
        sentiment: Sentiment,
        key: u64,
        out: &mut String,
    ) {
        out.clear();
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE, key, user.0 as u64 | 1 << 40);
        out.push_str(self.phrase(0, category, sentiment, &mut rng));
        self.restyle(population, user, false, 0, &mut rng, out);
    }

    /// Re-styles a ready text (a cached LLM answer) for `user`, as a filled template is:
    /// slang, typos, casing, ending and emoji by the user's style, drawn from a stream keyed
    /// by `key`.
    pub fn restyle_text(&self, population: &Population, user: UserId, key: u64, text: &str) -> String {
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE ^ 0x7265_7374, key, user.0 as u64);
        let mut out = text.to_string();
        self.restyle(population, user, false, 0, &mut rng, &mut out);
        out
    }

    /// Per-user style transforms after filling, in one pass over the words: slang
    /// substitutions (probability = slang level), typos (two letters swapped, per-word
    /// probability = typo rate), casing habit (handles and hashtags keep theirs); then the
    /// formality of the ending and the user's emoji.
    fn restyle(
        &self,
        population: &Population,
        user: UserId,
        hashtag_on: bool,
        emoji_drift: i8,
        rng: &mut Stream,
        out: &mut String,
    ) {
        let cols = population.columns();
        let i = user.index();
        let style = cols.style[i];
        let caps = Caps::ALL[(cols.persona[i].habits & 3) as usize];
        let slang = dq8(style.slang) as f64;
        let typo = dq8(style.typo_rate) as f64 * 0.2;
        let src = std::mem::take(out);
        let mut buf: Vec<u8> = Vec::with_capacity(src.len() + 16);
        let mut lower = String::new();
        for word in src.split_whitespace() {
            if !buf.is_empty() {
                buf.push(b' ');
            }
            let start = buf.len();
            let tagged = word.starts_with(['@', '#']);
            let bare = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            let mut replaced = false;
            if slang > 0.05 && !tagged && !bare.is_empty() && bare.len() <= 24 {
                lower.clear();
                lower.extend(bare.chars().flat_map(char::to_lowercase));
                if let Some(sub) = self.slang.get(lower.as_str()) {
                    if rng.chance(slang) {
                        buf.extend_from_slice(word.replacen(bare, sub, 1).as_bytes());
                        replaced = true;
                    }
                }
            }
            if !replaced {
                buf.extend_from_slice(word.as_bytes());
            }
            let w = &mut buf[start..];
            if typo > 0.0 && !tagged && w.len() > 3 && w.is_ascii() && rng.chance(typo) {
                let k = 1 + rng.below(w.len() as u64 - 2) as usize;
                w.swap(k, k - 1);
            }
            if caps != Caps::Normal && !tagged {
                if w.is_ascii() {
                    match caps {
                        Caps::Lower => w.make_ascii_lowercase(),
                        Caps::Upper => w.make_ascii_uppercase(),
                        _ => w[0].make_ascii_uppercase(),
                    }
                } else if let Ok(text) = std::str::from_utf8(w) {
                    let cased: String = match caps {
                        Caps::Lower => text.to_lowercase(),
                        Caps::Upper => text.to_uppercase(),
                        _ => {
                            let mut c = text.chars();
                            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
                        }
                    };
                    buf.truncate(start);
                    buf.extend_from_slice(cased.as_bytes());
                }
            }
        }
        // Only whole ASCII bytes were swapped inside ASCII words, so this cannot fail.
        let mut text = String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let formal = dq8(style.formality);
        if formal > 0.7 && !text.ends_with(['.', '!', '?']) && !text.is_empty() && !hashtag_on {
            text.push('.');
        } else if formal < 0.3 && text.ends_with('.') && !text.ends_with("..") {
            text.pop();
        }
        if rng.chance((dq8(style.emoji_rate) + emoji_drift as f32 / 255.0) as f64) {
            let emojis = &population.seeds().seeds[cols.demographics[i].seed as usize].style.emojis;
            if !emojis.is_empty() {
                let n = 1 + (rng.below(3) == 0) as usize;
                text.push(' ');
                for k in 0..n {
                    text.push_str(&emojis[(style.variant as usize + k + rng.below(2) as usize) % emojis.len()]);
                }
            }
        }
        *out = text;
    }
}

/// What a post is about: the event, the action, and the names to fill in.
#[derive(Clone, Copy, Debug)]
pub struct PostContext<'a> {
    /// Randomness key: the event and the post's position (e.g. `event_key ^ salt`).
    pub key: u64,
    /// Event category.
    pub category: Category,
    /// Post, reply or quote.
    pub action: Action,
    /// How the author feels.
    pub sentiment: Sentiment,
    /// The main stakeholder as users name it ("the Redhawks").
    pub subject: &'a str,
    /// A short summary of the event.
    pub what: &'a str,
    /// `@handle` of the post replied to or quoted (empty for posts).
    pub author: &'a str,
    /// A hashtag (`#Redhawks`), used when the user's hashtag habit fires.
    pub hashtag: &'a str,
    /// The author's sentiment runs against the event's own valence (a rival fan on a win):
    /// templates that quote the event text are skipped, since its words carry the opposite
    /// mood.
    pub against_event: bool,
    /// The author's drifted emoji and hashtag habits (added to their rates, out of 255).
    pub drift: [i8; 2],
}

mod embedded {
    pub const POSTS: [(&str, &str); 11] = [
        ("templates/posts/sports.tsv", include_str!("../templates/posts/sports.tsv")),
        ("templates/posts/politics.tsv", include_str!("../templates/posts/politics.tsv")),
        ("templates/posts/entertainment.tsv", include_str!("../templates/posts/entertainment.tsv")),
        ("templates/posts/tech.tsv", include_str!("../templates/posts/tech.tsv")),
        ("templates/posts/business.tsv", include_str!("../templates/posts/business.tsv")),
        ("templates/posts/science.tsv", include_str!("../templates/posts/science.tsv")),
        ("templates/posts/health.tsv", include_str!("../templates/posts/health.tsv")),
        ("templates/posts/weather.tsv", include_str!("../templates/posts/weather.tsv")),
        ("templates/posts/disaster.tsv", include_str!("../templates/posts/disaster.tsv")),
        ("templates/posts/crime.tsv", include_str!("../templates/posts/crime.tsv")),
        ("templates/posts/gaming.tsv", include_str!("../templates/posts/gaming.tsv")),
    ];
    pub const PHRASES: [(&str, &str); 4] = [
        ("templates/phrases/reaction.tsv", include_str!("../templates/phrases/reaction.tsv")),
        ("templates/phrases/comment.tsv", include_str!("../templates/phrases/comment.tsv")),
        ("templates/phrases/agree.tsv", include_str!("../templates/phrases/agree.tsv")),
        ("templates/phrases/aspect.tsv", include_str!("../templates/phrases/aspect.tsv")),
    ];
    pub const SLANG: (&str, &str) = ("templates/phrases/slang.tsv", include_str!("../templates/phrases/slang.tsv"));
}

#[cfg(test)]
mod tests {
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
                    Segment::Var(v) => ours.push_str(&values[VARIABLES[*v as usize]]),
                }
            }
            assert_eq!(ours, expected, "{}", tpl.origin);
        }
    }
}
