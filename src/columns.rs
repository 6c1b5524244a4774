//! Compact per-user columns (struct of arrays). Every column type is plain old data so a
//! snapshot can write and read it as bytes. 60 bytes per user in all.

use bytemuck::{Pod, Zeroable};

/// Marker for "none" in `u32` columns.
pub const NONE_U32: u32 = u32::MAX;

/// Who the user is: lineage and demographics. 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Demographics {
    /// Index of the seed profile this user derives from (lineage).
    pub seed: u16,
    /// Index into the seed set's occupations.
    pub occupation: u16,
    /// Town slot in the world's towns.
    pub town: u8,
    /// Age in years.
    pub age: u8,
    /// Gender code (see [`crate::seeds::Gender`]).
    pub gender: u8,
    /// Index into the seed set's locales.
    pub locale: u8,
}

/// Personality: Big Five, politics, habits. 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Persona {
    /// Openness, conscientiousness, extraversion, agreeableness, neuroticism, 0..=255.
    pub big5: [u8; 5],
    /// Left (-127) to right (+127).
    pub politics: i8,
    /// Shift of the hourly curve in hours (chronotype variation).
    pub hour_shift: i8,
    /// Capitalisation code (low 2 bits) and length code (next 2 bits).
    pub habits: u8,
}

/// Interest weights, 4 bits per topic in taxonomy order (16 topics). 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Interests(pub [u8; 8]);

impl Interests {
    /// Weight of topic `t` in `0..=15`.
    #[inline]
    pub fn get(&self, t: usize) -> u8 {
        (self.0[t / 2] >> ((t % 2) * 4)) & 15
    }
    /// Sets topic `t` to `w` (`0..=15`).
    #[inline]
    pub fn set(&mut self, t: usize, w: u8) {
        let shift = (t % 2) * 4;
        self.0[t / 2] = (self.0[t / 2] & !(15 << shift)) | ((w.min(15)) << shift);
    }
    /// The strongest topic (lowest index on ties).
    #[inline]
    pub fn primary(&self) -> usize {
        // Key = weight * 16 + (15 - topic): the maximum key is the heaviest, lowest topic.
        let mut best = 0u32;
        for (i, &b) in self.0.iter().enumerate() {
            let lo = ((b & 15) as u32) << 4 | (15 - 2 * i as u32);
            let hi = ((b >> 4) as u32) << 4 | (14 - 2 * i as u32);
            best = best.max(lo).max(hi);
        }
        15 - (best & 15) as usize
    }
}

/// Writing style, each rate 0..=255. 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct StyleCol {
    /// 0 casual .. 255 formal.
    pub formality: u8,
    /// Share of posts with emoji.
    pub emoji_rate: u8,
    /// Slang level.
    pub slang: u8,
    /// Share of posts with a hashtag.
    pub hashtag_rate: u8,
    /// Typo rate, 255 = 0.2 per word.
    pub typo_rate: u8,
    /// Padding, zero.
    pub reserved: u8,
    /// Variant bits: which favourite emojis, phrase preferences.
    pub variant: u16,
}

/// Activity pattern. 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ActivityCol {
    /// Posts per day, log-coded: `0.01 * 1.05^code`.
    pub posts_per_day: u8,
    /// Reply propensity.
    pub reply: u8,
    /// Quote propensity.
    pub quote: u8,
    /// Like propensity.
    pub like: u8,
    /// Repost propensity.
    pub repost: u8,
    /// GIF propensity.
    pub gif: u8,
    /// Padding, zero.
    pub reserved: [u8; 2],
}

/// Encodes posts per day on the log scale of [`ActivityCol::posts_per_day`].
pub fn encode_ppd(ppd: f32) -> u8 {
    ((ppd.max(0.01) / 0.01).ln() / 1.05f32.ln()).round().clamp(0.0, 255.0) as u8
}

/// Decodes [`ActivityCol::posts_per_day`].
pub fn decode_ppd(code: u8) -> f32 {
    0.01 * 1.05f32.powi(code as i32)
}

/// Affiliations as world entity indices (`NO_ENTITY` = none). 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Affiliations {
    /// Supported team.
    pub team: u16,
    /// Party.
    pub party: u16,
    /// Favourite people or brands.
    pub favourites: [u16; 2],
}

impl Default for Affiliations {
    fn default() -> Self {
        let none = crate::world::NO_ENTITY;
        Affiliations { team: none, party: none, favourites: [none; 2] }
    }
}

/// Quantises a `[0, 1]` float to a byte.
#[inline]
pub fn q8(x: f32) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Byte back to `[0, 1]`.
#[inline]
pub fn dq8(x: u8) -> f32 {
    x as f32 / 255.0
}

/// All per-user columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Columns {
    /// Lineage and demographics.
    pub demographics: Vec<Demographics>,
    /// Personality.
    pub persona: Vec<Persona>,
    /// Interests.
    pub interests: Vec<Interests>,
    /// Writing style.
    pub style: Vec<StyleCol>,
    /// Activity pattern.
    pub activity: Vec<ActivityCol>,
    /// Affiliations.
    pub affiliations: Vec<Affiliations>,
    /// Handle collision suffix (0 = plain handle).
    pub handle_suffix: Vec<u32>,
    /// Friend circle id.
    pub circle: Vec<u32>,
    /// Workplace id.
    pub workplace: Vec<u32>,
}

/// Bytes of profile state per user held in [`Columns`].
pub const BYTES_PER_USER: usize = std::mem::size_of::<Demographics>()
    + std::mem::size_of::<Persona>()
    + std::mem::size_of::<Interests>()
    + std::mem::size_of::<StyleCol>()
    + std::mem::size_of::<ActivityCol>()
    + std::mem::size_of::<Affiliations>()
    + 3 * 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sizes() {
        assert_eq!(BYTES_PER_USER, 60);
        const { assert!(BYTES_PER_USER <= 64) };
    }

    #[test]
    fn nibbles_and_codes_round_trip() {
        let mut i = Interests::default();
        for t in 0..16 {
            i.set(t, (t as u8 * 7) % 16);
        }
        for t in 0..16 {
            assert_eq!(i.get(t), (t as u8 * 7) % 16);
        }
        assert_eq!(i.primary(), 9); // 63 % 16 = 15 is the largest
        for ppd in [0.05f32, 1.0, 3.5, 60.0] {
            let back = decode_ppd(encode_ppd(ppd));
            assert!((back / ppd - 1.0).abs() < 0.03, "{ppd} -> {back}");
        }
    }
}
