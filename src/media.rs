//! GIFs and images: the curated catalogues in `templates/media/` and the deterministic choice
//! of what a user attaches.
//!
//! A GIF reply's emotion comes from the author's sentiment, the event's intensity and category,
//! and whether they side with the post they answer; the GIF is then drawn among the catalogue
//! entries tagged with that emotion for that category (or `any`). Each user remembers their last
//! [`RECENT`] picks ([`GifMemory`]): a fresh pick avoids them (no robotic repeats), but now and
//! then a user goes back to one of their own earlier GIFs for the same emotion (everyone has a
//! signature GIF). Posts may carry a pre-made image chosen by scenario (category, sentiment,
//! keywords of the event text); when no catalogue image fits, the post carries an image request
//! for the generation path instead.
//!
//! Invariants: every choice is a pure function of (master seed, event, user, memory before the
//! event); the memory is updated in timeline order after each event, so thread count never
//! changes a pick. Disaster and crime events never get laughing, celebrating or sarcastic GIFs.

use crate::error::{Error, Result};
use crate::events::Category;
use crate::jsonl::tsv_fields;
use crate::rng::Stream;
use crate::templates::Sentiment;
use std::collections::HashMap;

/// How many of a user's recent GIF picks are remembered.
pub const RECENT: usize = 4;

/// What a GIF expresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Emotion {
    Joy,
    Celebration,
    Excitement,
    Approval,
    Love,
    Laughter,
    Relief,
    Surprise,
    Shock,
    Anger,
    Disappointment,
    Sadness,
    Facepalm,
    Disgust,
    Fear,
    Sarcasm,
    Boredom,
    Popcorn,
    Thinking,
    Skeptical,
    Shrug,
    Waiting,
}

impl Emotion {
    /// All emotions, in declaration order.
    pub const ALL: [Emotion; 22] = [
        Emotion::Joy,
        Emotion::Celebration,
        Emotion::Excitement,
        Emotion::Approval,
        Emotion::Love,
        Emotion::Laughter,
        Emotion::Relief,
        Emotion::Surprise,
        Emotion::Shock,
        Emotion::Anger,
        Emotion::Disappointment,
        Emotion::Sadness,
        Emotion::Facepalm,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Sarcasm,
        Emotion::Boredom,
        Emotion::Popcorn,
        Emotion::Thinking,
        Emotion::Skeptical,
        Emotion::Shrug,
        Emotion::Waiting,
    ];

    /// The name used in the catalogue (`joy`, `facepalm`...).
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// Parses a catalogue name.
    pub fn from_name(name: &str) -> Option<Emotion> {
        NAMES.iter().position(|n| *n == name).map(|i| Emotion::ALL[i])
    }

    /// True for emotions that mock or celebrate: never used for disaster or crime.
    pub fn is_light(self) -> bool {
        matches!(self, Emotion::Laughter | Emotion::Celebration | Emotion::Sarcasm | Emotion::Excitement)
    }
}

const NAMES: [&str; 22] = [
    "joy",
    "celebration",
    "excitement",
    "approval",
    "love",
    "laughter",
    "relief",
    "surprise",
    "shock",
    "anger",
    "disappointment",
    "sadness",
    "facepalm",
    "disgust",
    "fear",
    "sarcasm",
    "boredom",
    "popcorn",
    "thinking",
    "skeptical",
    "shrug",
    "waiting",
];

/// One catalogue GIF.
#[derive(Clone, Debug, PartialEq)]
pub struct Gif {
    /// Stable id (`gif-slow-clap`); games map ids to their assets.
    pub id: String,
    /// What it expresses (bit `e as u32` for each [`Emotion`]).
    pub emotions: u32,
    /// Categories it suits (bit `c as u16`; all bits for `any`).
    pub contexts: u16,
    /// What it shows.
    pub description: String,
}

impl Gif {
    /// True if the GIF expresses `e`.
    pub fn has(&self, e: Emotion) -> bool {
        self.emotions & (1 << e as u32) != 0
    }

    /// True if the GIF suits events of category `c`.
    pub fn suits(&self, c: Category) -> bool {
        self.contexts & (1 << c as u16) != 0
    }
}

/// One catalogue image.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Stable id (`img-stadium-confetti`).
    pub id: String,
    /// The category it belongs to.
    pub category: Category,
    /// The sentiment it suits (`None`: any).
    pub sentiment: Option<Sentiment>,
    /// Words of an event's text that make it fit; empty for a category fallback.
    pub keywords: Vec<String>,
    /// What it shows.
    pub description: String,
}

/// The GIF and image catalogues.
#[derive(Clone, Debug)]
pub struct Media {
    gifs: Vec<Gif>,
    /// GIF indices per (category, emotion).
    by_context: Vec<Vec<u16>>,
    index: HashMap<String, u16>,
    images: Vec<Image>,
}

/// Where a post's picture comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Picture<'a> {
    /// A catalogue image.
    Catalogue(&'a Image),
    /// Nothing fits: ask the generation path for this.
    Request(String),
}

fn slot(c: Category, e: Emotion) -> usize {
    c as usize * Emotion::ALL.len() + e as usize
}

impl Media {
    /// The catalogues shipped in `templates/media/`, embedded in the binary.
    pub fn embedded() -> Result<Media> {
        Media::parse(
            ("templates/media/gifs.tsv", include_str!("../templates/media/gifs.tsv")),
            ("templates/media/images.tsv", include_str!("../templates/media/images.tsv")),
        )
    }

    /// Loads `gifs.tsv` and `images.tsv` from a media folder.
    pub fn load(dir: &std::path::Path) -> Result<Media> {
        let read = |name: &str| -> Result<(String, String)> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            Ok((path.display().to_string(), text))
        };
        let (gf, gt) = read("gifs.tsv")?;
        let (imf, imt) = read("images.tsv")?;
        Media::parse((&gf, &gt), (&imf, &imt))
    }

    /// Parses the two catalogues, each as (file name, text). Errors name file, line and field.
    pub fn parse(gifs: (&str, &str), images: (&str, &str)) -> Result<Media> {
        let (file, text) = gifs;
        let mut list: Vec<Gif> = Vec::new();
        let mut index = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let f = tsv_fields(file, line, raw, 4)?;
            let id = check_id(file, line, f[0], "gif-")?;
            let mut emotions = 0u32;
            for name in f[1].split(',') {
                let e = Emotion::from_name(name.trim()).ok_or_else(|| {
                    Error::data(file, line, "emotions", format!("{name:?} is not one of {}", NAMES.join(", ")))
                })?;
                emotions |= 1 << e as u32;
            }
            let contexts = if f[2] == "any" {
                (1u16 << Category::ALL.len()) - 1
            } else {
                let mut bits = 0u16;
                for name in f[2].split(',') {
                    let c = Category::from_name(name.trim()).ok_or_else(|| {
                        Error::data(file, line, "contexts", format!("{name:?} is not a category or any"))
                    })?;
                    bits |= 1 << c as u16;
                }
                bits
            };
            if list.len() >= u16::MAX as usize {
                return Err(Error::data(file, line, "-", "more than 65,534 GIFs"));
            }
            if index.insert(id.to_string(), list.len() as u16).is_some() {
                return Err(Error::data(file, line, "id", format!("{id} is listed twice")));
            }
            list.push(Gif { id: id.to_string(), emotions, contexts, description: f[3].to_string() });
        }
        let mut by_context = vec![Vec::new(); Category::ALL.len() * Emotion::ALL.len()];
        for (k, g) in list.iter().enumerate() {
            for c in Category::ALL {
                for e in Emotion::ALL {
                    let sensitive = matches!(c, Category::Disaster | Category::Crime) && e.is_light();
                    if g.suits(c) && g.has(e) && !sensitive {
                        by_context[slot(c, e)].push(k as u16);
                    }
                }
            }
        }
        let (file, text) = images;
        let mut imgs: Vec<Image> = Vec::new();
        let mut seen = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let f = tsv_fields(file, line, raw, 5)?;
            let id = check_id(file, line, f[0], "img-")?;
            if seen.insert(id.to_string(), ()).is_some() {
                return Err(Error::data(file, line, "id", format!("{id} is listed twice")));
            }
            let category = Category::from_name(f[1])
                .ok_or_else(|| Error::data(file, line, "category", format!("{:?} is not a category", f[1])))?;
            let sentiment = match f[2] {
                "*" => None,
                "positive" => Some(Sentiment::Positive),
                "negative" => Some(Sentiment::Negative),
                "neutral" => Some(Sentiment::Neutral),
                other => {
                    return Err(Error::data(
                        file,
                        line,
                        "sentiment",
                        format!("{other:?} is not positive, negative, neutral or *"),
                    ))
                }
            };
            let keywords: Vec<String> = if f[3] == "*" {
                Vec::new()
            } else {
                f[3].split(',').map(|w| w.trim().to_lowercase()).filter(|w| !w.is_empty()).collect()
            };
            if f[3] != "*" && keywords.is_empty() {
                return Err(Error::data(file, line, "keywords", "no keyword (use * for a category fallback)"));
            }
            imgs.push(Image { id: id.to_string(), category, sentiment, keywords, description: f[4].to_string() });
        }
        if list.is_empty() {
            return Err(Error::data(gifs.0, 1, "-", "the GIF catalogue is empty"));
        }
        Ok(Media { gifs: list, by_context, index, images: imgs })
    }

    /// All GIFs.
    pub fn gifs(&self) -> &[Gif] {
        &self.gifs
    }

    /// All images.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// The index of the GIF with this id.
    pub fn gif_index(&self, id: &str) -> Option<u16> {
        self.index.get(id).copied()
    }

    /// GIFs suited to an emotion in a category.
    pub fn candidates(&self, c: Category, e: Emotion) -> &[u16] {
        &self.by_context[slot(c, e)]
    }

    /// Picks a GIF for a reply among the catalogue entries that express one of the mood's
    /// emotions in the event's category (each entry once, however many of the emotions it
    /// has), avoiding the user's recent picks, sometimes going back to one of their own
    /// earlier picks that fits.
    pub fn pick_gif(&self, mood: &GifMood, recent: &[u16; RECENT], rng: &mut Stream) -> u16 {
        let mut pool: Vec<u16> = Vec::with_capacity(64);
        for &e in mood.emotions() {
            pool.extend_from_slice(self.candidates(mood.category, e));
        }
        if pool.is_empty() {
            // Never empty with the shipped catalogue; a custom one may lack these emotions.
            pool.extend_from_slice(self.candidates(mood.category, Emotion::Thinking));
        }
        pool.sort_unstable();
        pool.dedup();
        if pool.is_empty() {
            return 0;
        }
        // A signature pick: an earlier GIF of theirs for this emotion, not the very last one.
        if rng.chance(0.25) {
            if let Some(&g) = recent[1..].iter().find(|&&g| pool.contains(&g)) {
                return g;
            }
        }
        // A fresh pick: none of the recent ones if possible, else anything but the last one.
        let fresh = pool.iter().filter(|g| !recent.contains(g)).count();
        if fresh > 0 {
            let k = rng.below(fresh as u64) as usize;
            return pool.iter().copied().filter(|g| !recent.contains(g)).nth(k).unwrap_or(pool[0]);
        }
        let others = pool.iter().filter(|&&g| g != recent[0]).count();
        if others > 0 {
            let k = rng.below(others as u64) as usize;
            return pool.iter().copied().filter(|&g| g != recent[0]).nth(k).unwrap_or(pool[0]);
        }
        pool[0]
    }

    /// The picture for a post about an event: the best catalogue image for its category,
    /// sentiment and the words of its text, or a generation request when none fits.
    pub fn picture(&self, category: Category, sentiment: Sentiment, text: &str, rng: &mut Stream) -> Picture<'_> {
        let words: Vec<String> =
            text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(|w| w.to_lowercase()).collect();
        let mut best: Vec<&Image> = Vec::new();
        let mut best_score = 0u32;
        for img in self.images.iter().filter(|i| i.category == category) {
            if img.sentiment.is_some_and(|s| s != sentiment) {
                continue;
            }
            let hits = img.keywords.iter().filter(|k| words.iter().any(|w| w == *k)).count() as u32;
            let score = if img.keywords.is_empty() { 1 } else { hits * 4 } + img.sentiment.is_some() as u32;
            if img.keywords.is_empty() || hits > 0 {
                if score > best_score {
                    best.clear();
                    best_score = score;
                }
                if score == best_score {
                    best.push(img);
                }
            }
        }
        if best.is_empty() {
            let mood = match sentiment {
                Sentiment::Positive => "upbeat",
                Sentiment::Negative => "sombre",
                Sentiment::Neutral => "matter-of-fact",
            };
            let gist: String = text.chars().take(160).collect();
            return Picture::Request(format!("a {mood} news-style photo for a {category} post about: {gist}"));
        }
        Picture::Catalogue(best[rng.below(best.len() as u64) as usize])
    }
}

fn check_id<'a>(file: &str, line: usize, id: &'a str, prefix: &str) -> Result<&'a str> {
    let ok = id.starts_with(prefix)
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(Error::data(file, line, "id", format!("{id:?} is not {prefix}… in lowercase letters, digits and -")))
    }
}

/// What a GIF reply should express.
#[derive(Clone, Copy, Debug)]
pub struct GifMood {
    /// The event's category.
    pub category: Category,
    /// How the replier feels.
    pub sentiment: Sentiment,
    /// The event's intensity in `[0, 1]`.
    pub intensity: f32,
    /// True if the post answered is on the other side.
    pub opposed: bool,
}

impl GifMood {
    /// Candidate emotions, most fitting first.
    pub fn emotions(&self) -> &'static [Emotion] {
        use Emotion::*;
        let grave = matches!(self.category, Category::Disaster | Category::Crime);
        match (self.sentiment, grave) {
            (Sentiment::Positive, true) => &[Relief, Approval, Love, Joy],
            (Sentiment::Negative, true) => &[Sadness, Shock, Fear, Disappointment],
            (Sentiment::Neutral, true) => &[Thinking, Shock, Waiting, Sadness],
            (Sentiment::Positive, false) if self.opposed => &[Laughter, Sarcasm, Joy, Popcorn],
            (Sentiment::Positive, false) if self.intensity >= 0.6 => &[Celebration, Excitement, Joy, Love],
            (Sentiment::Positive, false) => &[Joy, Approval, Love, Relief, Excitement],
            (Sentiment::Negative, false) if self.opposed => &[Facepalm, Skeptical, Sarcasm, Disgust],
            (Sentiment::Negative, false) if self.intensity >= 0.6 => &[Anger, Shock, Disappointment, Sadness],
            (Sentiment::Negative, false) => &[Disappointment, Facepalm, Sadness, Disgust, Boredom],
            (Sentiment::Neutral, false) => &[Popcorn, Thinking, Skeptical, Shrug, Waiting, Surprise],
        }
    }
}

/// Each user's last [`RECENT`] GIF picks, most recent first. Sparse: only users who sent a GIF.
#[derive(Clone, Debug, Default)]
pub struct GifMemory {
    recent: HashMap<u32, [u16; RECENT]>,
}

impl GifMemory {
    /// An empty memory.
    pub fn new() -> GifMemory {
        GifMemory::default()
    }

    /// A user's recent picks (`u16::MAX` where empty).
    pub fn recent(&self, user: u32) -> [u16; RECENT] {
        self.recent.get(&user).copied().unwrap_or([u16::MAX; RECENT])
    }

    /// Records a pick.
    pub fn record(&mut self, user: u32, gif: u16) {
        let r = self.recent.entry(user).or_insert([u16::MAX; RECENT]);
        r.copy_within(0..RECENT - 1, 1);
        r[0] = gif;
    }

    /// Number of users remembered.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Every user's picks, by user id (for saving).
    pub fn entries(&self) -> Vec<(u32, [u16; RECENT])> {
        let mut v: Vec<(u32, [u16; RECENT])> = self.recent.iter().map(|(&u, &r)| (u, r)).collect();
        v.sort_unstable_by_key(|x| x.0);
        v
    }

    /// Rebuilds a memory from [`GifMemory::entries`].
    pub fn from_entries(entries: impl IntoIterator<Item = (u32, [u16; RECENT])>) -> GifMemory {
        GifMemory { recent: entries.into_iter().collect() }
    }

    /// True if nobody sent a GIF yet.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIFS: &str = "# test\n\
gif-a\tjoy,celebration\tany\tA\n\
gif-b\tjoy\tsports\tB\n\
gif-c\tlaughter\tany\tC\n\
gif-d\tsadness\tdisaster,crime\tD\n\
gif-e\tthinking\tany\tE\n";
    const IMAGES: &str = "img-cup\tsports\tpositive\ttrophy,final\tCup\n\
img-any\tsports\t*\t*\tStadium\n";

    fn media(gifs: &str, images: &str) -> Result<Media> {
        Media::parse(("gifs.tsv", gifs), ("images.tsv", images))
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let cases = [
            ("gif-x\tjoy\tany\n", "gifs.tsv:1: -: expected 4"),
            ("gif-x\tglee\tany\tX\n", "gifs.tsv:1: emotions: \"glee\""),
            ("gif-x\tjoy\tcooking\tX\n", "gifs.tsv:1: contexts: \"cooking\""),
            ("GIF X\tjoy\tany\tX\n", "gifs.tsv:1: id:"),
            ("gif-x\tjoy\tany\tX\ngif-x\tjoy\tany\tY\n", "gifs.tsv:2: id: gif-x is listed twice"),
        ];
        for (gifs, want) in cases {
            let err = media(gifs, IMAGES).unwrap_err().to_string();
            assert!(err.starts_with(want), "{gifs:?}: {err}");
        }
        let err = media(GIFS, "img-x\tsports\tglad\t*\tX\n").unwrap_err().to_string();
        assert!(err.starts_with("images.tsv:1: sentiment:"), "{err}");
        let err = media(GIFS, "img-x\tcooking\t*\t*\tX\n").unwrap_err().to_string();
        assert!(err.starts_with("images.tsv:1: category:"), "{err}");
    }

    #[test]
    fn grave_categories_never_get_light_gifs() {
        let m = media(GIFS, IMAGES).unwrap();
        assert!(m.candidates(Category::Disaster, Emotion::Laughter).is_empty());
        assert_eq!(m.candidates(Category::Sports, Emotion::Laughter), &[2]);
        assert_eq!(m.candidates(Category::Sports, Emotion::Joy), &[0, 1]);
        assert_eq!(m.candidates(Category::Politics, Emotion::Joy), &[0]);
        let mood =
            GifMood { category: Category::Disaster, sentiment: Sentiment::Positive, intensity: 1.0, opposed: true };
        assert!(mood.emotions().iter().all(|e| !e.is_light()));
    }

    #[test]
    fn fresh_picks_avoid_recent_ones() {
        let m = media(GIFS, IMAGES).unwrap();
        let mood =
            GifMood { category: Category::Sports, sentiment: Sentiment::Positive, intensity: 0.3, opposed: false };
        let mut mem = GifMemory::new();
        let mut repeats = 0;
        for k in 0..200u64 {
            let mut rng = Stream::new(1, 99, k, 7);
            let g = m.pick_gif(&mood, &mem.recent(7), &mut rng);
            if mem.recent(7)[0] == g {
                repeats += 1;
            }
            mem.record(7, g);
        }
        // Two joy GIFs (plus one shared with celebration) for one user: the last pick is
        // almost never repeated.
        assert!(repeats < 10, "{repeats} immediate repeats");
    }

    #[test]
    fn pictures_match_keywords_or_fall_back_or_request() {
        let m = media(GIFS, IMAGES).unwrap();
        let mut rng = Stream::new(1, 2, 3, 4);
        let p = m.picture(Category::Sports, Sentiment::Positive, "Redhawks win the final", &mut rng);
        assert!(matches!(p, Picture::Catalogue(i) if i.id == "img-cup"));
        let p = m.picture(Category::Sports, Sentiment::Negative, "Redhawks lose the final", &mut rng);
        assert!(matches!(p, Picture::Catalogue(i) if i.id == "img-any"));
        let p = m.picture(Category::Science, Sentiment::Neutral, "A new comet", &mut rng);
        assert!(matches!(p, Picture::Request(r) if r.contains("A new comet")));
    }
}
