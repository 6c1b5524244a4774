//! The post transforms after filling: per-user restyling (slang, one plausible typo, casing,
//! ending, emoji by tone).

use super::{Finish, Sentiment, Templates};
use crate::ids::UserId;
use crate::population::columns::dq8;
use crate::population::Population;
use crate::rng::{domain, Stream};
use crate::seeds::Caps;

/// What an emoji says (`phrases/emoji.tsv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Fits good news only.
    Positive,
    /// Sadness, anger, worry.
    Negative,
    /// Laughter: mockery or light humour.
    Laughing,
    /// Fits any tone.
    Neutral,
    /// A thing, animal or plant: fine unless the event is grave.
    Object,
}

impl Tone {
    /// Whether an emoji of this tone fits a post with `sentiment` about an event that is
    /// `grave` or not.
    pub fn fits(self, sentiment: Sentiment, grave: bool) -> bool {
        match self {
            Tone::Positive => sentiment == Sentiment::Positive,
            Tone::Negative => sentiment != Sentiment::Positive,
            Tone::Laughing => sentiment == Sentiment::Positive && !grave,
            Tone::Neutral => true,
            Tone::Object => !grave,
        }
    }
}

/// Scales the stored typo rate (the seed's rate, mean 0.036, kept as a fifth of 0..1) to a
/// per-post chance of 1.4 times the seed's rate: about 5% of posts carry one typo.
pub(super) const TYPO_SCALE: f64 = 0.2 * 1.4;

/// Keys next to each letter on a QWERTY keyboard.
const NEIGHBOURS: [&[u8]; 26] = [
    b"qwsz", b"vghn", b"xdfv", b"serfcx", b"wsdr", b"drtgvc", b"ftyhbv", b"gyujnb", b"ujko", b"huikmn", b"jiolm",
    b"kop", b"njk", b"bhjm", b"iklp", b"ol", b"wa", b"edft", b"awedxz", b"rfgy", b"yhji", b"cfgb", b"qase", b"zsdc",
    b"tghu", b"asx",
];

/// Puts one plausible typo in the word at `buf[start..]` if it is all lowercase letters (bar
/// closing punctuation) and at least four letters long: an adjacent key, a doubled or a
/// dropped letter, or two neighbours swapped. Returns whether it did.
pub(super) fn typo(buf: &mut Vec<u8>, start: usize, rng: &mut Stream) -> bool {
    let word = &buf[start..];
    let letters = word.iter().take_while(|b| b.is_ascii_lowercase()).count();
    if letters < 4 || word[letters..].iter().any(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    // Somewhere inside the word, not the first letter.
    let k = start + 1 + rng.below(letters as u64 - 1) as usize;
    match rng.below(4) {
        0 => {
            let near = NEIGHBOURS[(buf[k] - b'a') as usize];
            buf[k] = near[rng.below(near.len() as u64) as usize];
        }
        1 => buf.insert(k, buf[k]),
        2 => {
            buf.remove(k);
        }
        _ => {
            let j = if k + 1 < start + letters { k + 1 } else { k - 1 };
            buf.swap(k, j);
        }
    }
    true
}

impl Templates {
    /// Re-styles a ready text (a cached LLM answer) for `user`, as a filled template is, but
    /// without typos (the model's words are kept): slang, casing, ending and emoji fitting
    /// `sentiment` by the user's style, drawn from a stream keyed by `key`.
    pub fn restyle_text(
        &self,
        population: &Population,
        user: UserId,
        key: u64,
        sentiment: Sentiment,
        text: &str,
    ) -> String {
        let mut rng = Stream::new(population.config().seed, domain::TEMPLATE ^ 0x7265_7374, key, user.0 as u64);
        let mut out = text.to_string();
        let finish = Finish { sentiment, grave: false, typos: false };
        self.restyle(population, user, false, 0, finish, &mut rng, &mut out);
        out
    }

    /// Per-user style transforms after filling, in one pass over the words: slang
    /// substitutions (probability = slang level), at most one typo per post (probability =
    /// the user's typo rate; an adjacent key, a doubled, dropped or swapped letter, only in an
    /// all-lowercase word of four letters or more, so never in names, handles, hashtags or
    /// numbers), casing habit (handles and hashtags keep theirs); then the formality of the
    /// ending and the user's emoji, among those whose tone fits the post (see [`Tone::fits`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn restyle(
        &self,
        population: &Population,
        user: UserId,
        hashtag_on: bool,
        emoji_drift: i8,
        finish: Finish,
        rng: &mut Stream,
        out: &mut String,
    ) {
        let cols = population.columns();
        let i = user.index();
        let style = cols.style[i];
        let caps = Caps::ALL[(cols.persona[i].habits & 3) as usize];
        let slang = dq8(style.slang) as f64;
        let src = std::mem::take(out);
        // The word a typo goes in (or the first fitting one after it).
        let typo_rate = dq8(style.typo_rate) as f64 * TYPO_SCALE;
        let mut typo_at = if finish.typos && rng.chance(typo_rate) {
            Some(rng.below(src.split_whitespace().count().max(1) as u64) as usize)
        } else {
            None
        };
        let mut buf: Vec<u8> = Vec::with_capacity(src.len() + 16);
        let mut lower = String::new();
        for (n, word) in src.split_whitespace().enumerate() {
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
            if typo_at.is_some_and(|at| n >= at) && !tagged {
                let before = buf[start..].to_vec();
                if typo(&mut buf, start, rng) {
                    // A typo that spells a world name ("heard" -> "herd", a team's nickname)
                    // would name something the post is not about: undo it, try the next word.
                    let letters = buf[start..].iter().take_while(|b| b.is_ascii_lowercase()).count();
                    let made = std::str::from_utf8(&buf[start..start + letters]).unwrap_or("");
                    if population.world().is_name_word(made) {
                        buf.truncate(start);
                        buf.extend_from_slice(&before);
                    } else {
                        typo_at = None;
                    }
                }
            }
            let w = &mut buf[start..];
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
            let own = &population.seeds().seeds[cols.demographics[i].seed as usize].style.emojis;
            let fits = |e: &&String| self.tone(e).fits(finish.sentiment, finish.grave);
            let fitting = own.iter().filter(fits).count();
            let n = 1 + (rng.below(3) == 0) as usize;
            if fitting > 0 {
                text.push(' ');
                for k in 0..n {
                    let pick = (style.variant as usize + k + rng.below(2) as usize) % fitting;
                    if let Some(e) = own.iter().filter(fits).nth(pick) {
                        text.push_str(e);
                    }
                }
            } else {
                // None of their own fits: one from the sentiment's set (none for neutral).
                let set = match finish.sentiment {
                    Sentiment::Positive if !finish.grave => &self.fallback_emoji[0][..],
                    Sentiment::Negative => &self.fallback_emoji[1][..],
                    _ => &[][..],
                };
                if !set.is_empty() {
                    text.push(' ');
                    text.push_str(&set[(style.variant as usize + rng.below(set.len() as u64) as usize) % set.len()]);
                }
            }
        }
        *out = text;
    }
}
