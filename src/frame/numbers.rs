//! Numbers of a headline with their meaning: a score, money, a percentage, a measure, a year,
//! a count with its noun.

use super::{Meaning, Number, Token};
use std::collections::HashMap;

/// Where the word "magnitude" (any case) starts, if `before` ends with it and spaces.
fn magnitude_before(before: &str) -> Option<usize> {
    let t = before.trim_end();
    let at = t.len().checked_sub("magnitude".len())?;
    (t.is_char_boundary(at) && t[at..].eq_ignore_ascii_case("magnitude")).then_some(at)
}

/// "3-1", "3 - 1" or "3–1" as "3-1", for numbers of 1-3 digits.
pub fn parse_score(s: &str) -> Option<String> {
    let s = s.trim();
    let (a, b) = s.split_once(['-', '–'])?;
    let (a, b) = (a.trim(), b.trim());
    let ok = |x: &str| (1..=3).contains(&x.len()) && x.bytes().all(|c| c.is_ascii_digit());
    (ok(a) && ok(b)).then(|| format!("{a}-{b}"))
}

const SCALES: [&str; 8] = ["million", "billion", "trillion", "thousand", "bn", "m", "k", "mn"];
const MEASURES: [&str; 12] =
    ["c", "f", "degrees", "km", "miles", "mm", "cm", "inches", "hours", "minutes", "days", "kph"];

/// The score and the other numbers of a text, in order; a count takes the word after it
/// unless `stop` has it ("400 jobs", but not "9 for").
pub(super) fn numbers(text: &str, toks: &[Token], stop: &HashMap<String, ()>) -> (Option<String>, Vec<Number>) {
    let bytes = text.as_bytes();
    let mut score = None;
    let mut out = Vec::new();
    let mut i = 0;
    let is_digit = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_digit);
    while i < bytes.len() {
        if !is_digit(i) || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.')) {
            i += 1;
            continue;
        }
        let start = i;
        while is_digit(i) || (matches!(bytes.get(i), Some(b'.') | Some(b',')) && is_digit(i + 1)) {
            i += 1;
        }
        let digits = &text[start..i];
        // A score: digits, a dash, digits (not a date or a range of years).
        let rest = &text[i..];
        let dash = rest.strip_prefix('-').or_else(|| rest.strip_prefix('–')).map(|r| (rest.len() - r.len(), r));
        if let Some((dl, r)) = dash {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            let after = r.as_bytes().get(n);
            if n > 0 && !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                if let Some(s) = parse_score(&text[start..i + dl + n]) {
                    if score.is_none() {
                        score = Some(s.clone());
                    }
                    out.push(Number { text: s, meaning: Meaning::Score });
                    i += dl + n;
                    continue;
                }
            }
        }
        let currency = start > 0 && matches!(text[..start].chars().last(), Some('$' | '£' | '€' | '¥'));
        let from = if currency { start - text[..start].chars().last().map_or(0, char::len_utf8) } else { start };
        // The word right after it (after spaces, or a hyphen: "48-hour"), if any.
        let next = toks.iter().find(|t| t.start >= i).filter(|t| {
            let gap = &text[i..t.start];
            gap.trim().is_empty() || gap == "-"
        });
        let mut end = i;
        let meaning;
        if text[i..].starts_with('%') {
            end = i + 1;
            meaning = Meaning::Percent;
        } else if let Some(t) = next.filter(|t| t.lower == "percent" || t.lower == "per") {
            end = t.end;
            if t.lower == "per" {
                if let Some(c) = toks.iter().find(|x| x.start > t.end && x.lower == "cent") {
                    end = c.end;
                }
            }
            meaning = Meaning::Percent;
        } else if let Some(t) = next.filter(|t| SCALES.contains(&t.lower.as_str())) {
            end = t.end;
            meaning = if currency { Meaning::Money } else { Meaning::Amount };
        } else if currency {
            meaning = Meaning::Money;
        } else if let Some(t) = next.filter(|t| MEASURES.contains(&t.lower.as_str())) {
            end = t.end;
            meaning = Meaning::Measure;
        } else if let Some(m) = magnitude_before(&text[..start]) {
            out.push(Number { text: text[m..i].to_string(), meaning: Meaning::Measure });
            continue;
        } else if digits.len() == 4 && (digits.starts_with("19") || digits.starts_with("20")) {
            meaning = Meaning::Year;
        } else if text[i..].starts_with("-") && next.is_some_and(|t| t.start == i + 1) {
            // "48-hour": the unit is part of it.
            let t = next.map_or(i, |t| t.end);
            end = t;
            meaning = Meaning::Measure;
        } else if let Some(t) = next.filter(|t| {
            t.lower.len() >= 3
                && t.lower.chars().all(char::is_alphabetic)
                && !t.capital
                && !stop.contains_key(t.lower.as_str())
        }) {
            end = t.end;
            meaning = Meaning::Count;
        } else {
            meaning = Meaning::Amount;
        }
        out.push(Number { text: text[from..end].to_string(), meaning });
        i = end.max(i);
    }
    (score, out.into_iter().filter(|n| n.meaning != Meaning::Score).collect())
}
