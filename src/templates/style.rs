//! Style pieces of the post transforms: emoji tones and plausible typos.

use super::Sentiment;
use crate::rng::Stream;

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
