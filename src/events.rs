//! Game events: what the game tells chorus happened. Read from JSON lines (`--events FILE`) or
//! built in code.
//!
//! Invariants: an event that parses came from a line of at most [`MAX_LINE`] bytes and has a
//! non-empty id of at most 64 bytes, non-empty text of at most [`MAX_TEXT`] bytes, and only
//! known fields (`docs/LIMITS.md` lists every limit). A bad line becomes an [`EventError`]
//! record naming the line and the event id when one can be read; it never stops the others.
//! Event text is data: nothing here interprets it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted event text, in bytes.
pub const MAX_TEXT: usize = 4096;
/// Longest accepted event line (the JSON object with its frame), in bytes: checked before it
/// is parsed.
pub const MAX_LINE: usize = 64 * 1024;
/// Most lines read from one event file; the rest become one error record.
pub const MAX_LINES: usize = 10_000_000;
/// Most numbers in a typed frame.
pub const MAX_FRAME_NUMBERS: usize = 8;

/// Game time in seconds: since game start, or since the Unix epoch when given as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(transparent)]
pub struct GameTime(pub i64);

impl<'de> Deserialize<'de> for GameTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(i64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(GameTime(s)),
            Raw::Float(f) if f.is_finite() && f.abs() < 1e15 => Ok(GameTime(f.floor() as i64)),
            Raw::Float(f) => Err(serde::de::Error::custom(format!(
                "time {} is out of range (seconds within ±10^15)",
                crate::error::cut(&format!("{f:e}"), 24)
            ))),
            Raw::Text(t) => parse_rfc3339(&t).map(GameTime).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "time {:?} is neither seconds nor RFC 3339",
                    crate::error::cut(&t, 40)
                ))
            }),
        }
    }
}

/// Parses an RFC 3339 date-time (`2026-05-01T18:30:00Z`, `...+02:00`, fractional seconds
/// ignored) into seconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Event categories (a superset of the topic taxonomy's news beats, plus disasters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Matches, transfers, leagues.
    Sports,
    /// Elections, government, parties.
    Politics,
    /// Film, TV, music, celebrities.
    Entertainment,
    /// Technology and gadgets.
    Tech,
    /// Companies, markets, jobs.
    Business,
    /// Research and discoveries.
    Science,
    /// Health and medicine.
    Health,
    /// Weather and climate.
    Weather,
    /// Fires, floods, earthquakes, accidents.
    Disaster,
    /// Crime and justice.
    Crime,
    /// Video games and esports.
    Gaming,
}

impl Category {
    /// Topics whose followers form the category's audience.
    pub fn topics(self) -> &'static [crate::taxonomy::Topic] {
        use crate::taxonomy::Topic;
        match self {
            Category::Sports => &[Topic::Sports],
            Category::Politics => &[Topic::Politics],
            Category::Entertainment => &[Topic::Entertainment, Topic::Music, Topic::Culture, Topic::Fashion],
            Category::Tech => &[Topic::Tech],
            Category::Business => &[Topic::Business, Topic::Finance],
            Category::Science => &[Topic::Science],
            Category::Health => &[Topic::Health],
            Category::Weather => &[Topic::Weather],
            Category::Disaster => &[Topic::Weather, Topic::Health, Topic::Politics],
            Category::Crime => &[Topic::Crime],
            Category::Gaming => &[Topic::Gaming],
        }
    }

    /// All categories.
    pub const ALL: [Category; 11] = [
        Category::Sports,
        Category::Politics,
        Category::Entertainment,
        Category::Tech,
        Category::Business,
        Category::Science,
        Category::Health,
        Category::Weather,
        Category::Disaster,
        Category::Crime,
        Category::Gaming,
    ];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Category::Sports => "sports",
            Category::Politics => "politics",
            Category::Entertainment => "entertainment",
            Category::Tech => "tech",
            Category::Business => "business",
            Category::Science => "science",
            Category::Health => "health",
            Category::Weather => "weather",
            Category::Disaster => "disaster",
            Category::Crime => "crime",
            Category::Gaming => "gaming",
        }
    }

    /// Parses a lowercase name.
    pub fn from_name(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How far an event reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// A town or a team's fans.
    Local,
    /// The whole country.
    National,
    /// The world.
    Global,
}

/// Emotional direction of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Valence {
    /// Good news.
    Positive,
    /// Bad news.
    Negative,
    /// Neither.
    Neutral,
}

impl Valence {
    /// +1, -1 or 0.
    pub fn sign(self) -> f32 {
        match self {
            Valence::Positive => 1.0,
            Valence::Negative => -1.0,
            Valence::Neutral => 0.0,
        }
    }
}

/// How urgently the game wants reactions (replies to the player are high).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// E.g. a post by the player's own account, a direct mention.
    High,
    /// Notable.
    Medium,
    /// Background.
    Low,
}

/// One event from the game. Optional fields are hints that override classification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameEvent {
    /// The game's id for the event ("e17").
    pub id: String,
    /// When it happened, in game time.
    pub time: GameTime,
    /// What happened, in words. Data only: never executed as a template.
    pub text: String,
    /// Category hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// Impact hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    /// Valence hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valence: Option<Valence>,
    /// Intensity hint in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<f32>,
    /// Stakeholder hints: world entity ids or names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stakeholders: Option<Vec<String>>,
    /// Location hint: a town id or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Priority hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Experiment tags: only users carrying one of them react (default: everyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
    /// The event's facts as the game knows them; overrides frame extraction (see
    /// [`FrameHint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<Box<FrameHint>>,
}

/// A typed frame from the game: what happened and who played which role. Roles name a world
/// entity (id, name or alias) or plain words of the event text. Validated by the classifier;
/// a bad field is an error record for the event (`frame.kind`, `frame.winner`, `frame.score`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameHint {
    /// The frame kind (`win`, `resignation`, `flood`...; see `templates/lexicon/README.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The side that won.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// The side that lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loser: Option<String>,
    /// Who did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// To whom or what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A named person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// The result, "3-1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    /// Other numbers with their meaning; read from the text when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Vec<NumberHint>>,
}

/// A number of a typed frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberHint {
    /// As users should write it ("400 jobs").
    pub text: String,
    /// `money`, `percent`, `count`, `measure`, `year` or `amount`.
    pub meaning: String,
}

impl FrameHint {
    /// The value given for role `r` (in [`crate::frame::RoleName`] order: winner, loser, actor,
    /// target, person, place).
    pub fn role_at(&self, r: usize) -> Option<&str> {
        [&self.winner, &self.loser, &self.actor, &self.target, &self.person, &self.place]
            .get(r)
            .and_then(|x| x.as_deref())
    }
}

/// A bad event line: where, which event (if its id could be read), and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventError {
    /// 1-based line in the input.
    pub line: usize,
    /// The event id, when the line had a readable one.
    pub id: Option<String>,
    /// The field at fault, or `-`.
    pub field: String,
    /// What is wrong.
    pub error: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => {
                write!(f, "line {}: event {:?}: {}: {}", self.line, crate::error::cut(id, 60), self.field, self.error)
            }
            None => write!(f, "line {}: {}: {}", self.line, self.field, self.error),
        }
    }
}

impl GameEvent {
    /// Checks the invariants of a parsed event.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, msg: String| Err((field.to_string(), msg));
        if self.id.trim().is_empty() || self.id.len() > 64 || self.id.chars().any(char::is_control) {
            return bad("id", "must be 1-64 bytes without control characters".into());
        }
        if self.text.trim().is_empty() {
            return bad("text", "is empty".into());
        }
        if self.text.len() > MAX_TEXT {
            return bad("text", format!("is {} bytes, more than {MAX_TEXT}", self.text.len()));
        }
        if let Some(i) = self.intensity {
            if !(0.0..=1.0).contains(&i) {
                return bad("intensity", format!("{i} is outside [0, 1]"));
            }
        }
        if let Some(s) = &self.stakeholders {
            if s.len() > 32 || s.iter().any(|x| x.trim().is_empty() || x.len() > 120) {
                return bad("stakeholders", "at most 32 names of 1-120 bytes".into());
            }
        }
        if let Some(n) = self.frame.as_ref().and_then(|f| f.numbers.as_ref()) {
            if n.len() > MAX_FRAME_NUMBERS {
                return bad("frame.numbers", format!("{} numbers, at most {MAX_FRAME_NUMBERS}", n.len()));
            }
        }
        if let Some(a) = &self.audience {
            if a.is_empty() || a.len() > 8 || a.iter().any(|x| x.trim().is_empty() || x.len() > 64) {
                return bad("audience", "1 to 8 tags of 1-64 bytes".into());
            }
        }
        Ok(())
    }
}

/// Parses one line of event JSON (already known to be UTF-8) into a valid event.
pub fn parse_event(line: usize, text: &str) -> Result<GameEvent, EventError> {
    if text.len() > MAX_LINE {
        return Err(EventError {
            line,
            id: id_near_start(text),
            field: "-".into(),
            error: format!("the line is {} bytes, more than {MAX_LINE}", text.len()),
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| EventError {
        line,
        id: None,
        field: "-".into(),
        error: format!("malformed JSON: {e}"),
    })?;
    let id = value.get("id").and_then(|v| v.as_str()).map(|s| s.chars().take(64).collect::<String>());
    let event: GameEvent = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        EventError {
            line,
            id: id.clone(),
            field: if path == "." || path == "?" { "-".into() } else { path },
            error: e.inner().to_string(),
        }
    })?;
    event.validate().map_err(|(field, error)| EventError { line, id, field, error })?;
    Ok(event)
}

/// The event id of a line too long to parse, when its first kilobyte holds `"id": "..."`
/// (a plain string of at most 64 characters): for the error message only.
fn id_near_start(text: &str) -> Option<String> {
    let head = &text.as_bytes()[..text.len().min(1024)];
    let at = head.windows(4).position(|w| w == b"\"id\"")? + 4;
    let rest = &head[at..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b":")?;
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().take(65).position(|&b| b == b'"' || b == b'\\')?;
    (rest.get(end) == Some(&b'"')).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Reads event lines from raw bytes (invalid UTF-8 is an error record for that line only).
/// Blank lines and lines starting with `#` are skipped.
pub fn parse_events(bytes: &[u8]) -> Vec<Result<GameEvent, EventError>> {
    parse_events_numbered(bytes).into_iter().map(|(_, r)| r).collect()
}

/// [`parse_events`], with each result's 1-based line in the input.
pub fn parse_events_numbered(bytes: &[u8]) -> Vec<(usize, Result<GameEvent, EventError>)> {
    // A binary file chorus wrote, given as events: one error for the file, not one per line.
    if let Some(error) = crate::filekind::wrong_kind(bytes, "event lines") {
        return vec![(1, Err(EventError { line: 1, id: None, field: "-".into(), error }))];
    }
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        if line > MAX_LINES {
            out.push((
                line,
                Err(EventError {
                    line,
                    id: None,
                    field: "-".into(),
                    error: format!(
                        "more than {MAX_LINES} lines in one file: this line and the rest are not read (split the file)"
                    ),
                }),
            ));
            break;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match std::str::from_utf8(raw) {
            Err(e) => out.push((
                line,
                Err(EventError {
                    line,
                    id: None,
                    field: "-".into(),
                    error: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                }),
            )),
            Ok(text) => {
                let t = text.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                out.push((line, parse_event(line, t)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot or state file given as events is one error naming what it is.
    #[test]
    fn a_binary_chorus_file_is_not_read_as_event_lines() {
        let mut bytes = crate::filekind::SNAPSHOT_MAGIC.to_vec();
        bytes.extend_from_slice(b"\x01\0\0\0\n\xff\xfe\n{}\n");
        let out = parse_events_numbered(&bytes);
        assert_eq!(out.len(), 1);
        let msg = out[0].1.as_ref().expect_err("refused").to_string();
        assert!(msg.contains("population snapshot") && msg.contains("--load"), "{msg}");
    }

    /// An absurd time is refused with its value cut short (it used to print 300 digits).
    #[test]
    fn out_of_range_times_are_quoted_short() {
        let huge = format!(r#"{{"id": "x", "time": 1{}, "text": "hello there"}}"#, "0".repeat(300));
        let e = parse_event(7, &huge).expect_err("out of range");
        let msg = e.to_string();
        assert!(msg.contains("out of range") && msg.contains("1e300"), "{msg}");
        assert!(msg.len() < 160, "{} characters: {msg}", msg.len());
        let text = format!(r#"{{"id": "x", "time": "{}", "text": "hello there"}}"#, "y".repeat(5000));
        let msg = parse_event(7, &text).expect_err("not a time").to_string();
        assert!(msg.len() < 160 && msg.contains('…'), "{} characters", msg.len());
        // A long id is quoted short too (ids are validated for length elsewhere; the message
        // never carries the whole of one).
        let e = EventError { line: 1, id: Some("i".repeat(5000)), field: "text".into(), error: "empty".into() };
        assert!(e.to_string().len() < 100);
    }

    #[test]
    fn times_parse_as_seconds_or_rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-23T20:32:00Z"), Some(1_795_465_920));
        assert_eq!(parse_rfc3339("2026-11-23T21:32:00+01:00"), Some(1_795_465_920));
        assert_eq!(parse_rfc3339("2000-02-29T12:00:00.250Z"), Some(951_825_600));
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        let e = parse_event(1, r#"{"id": "a", "time": 3600, "text": "x"}"#).unwrap();
        assert_eq!(e.time, GameTime(3600));
        let e = parse_event(1, r#"{"id": "a", "time": "1970-01-01T01:00:00Z", "text": "x"}"#).unwrap();
        assert_eq!(e.time, GameTime(3600));
    }

    #[test]
    fn bad_lines_become_records_and_the_rest_survive() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"id\": \"e1\", \"time\": 0, \"text\": \"The Redhawks win\"}\n");
        input.extend_from_slice(b"{\"id\": \"e2\", \"time\": 1, \"text\": \"\"}\n");
        input.extend_from_slice(b"{\"id\": \"e3\", \"time\": 2, \"text\": \"x\", \"mood\": 1}\n");
        input.extend_from_slice(b"{\"id\": \"e4\", \"time\": 3, \"text\": \"\xff\xfe\"}\n");
        input.extend_from_slice(b"not json\n");
        input.extend_from_slice(b"{\"id\": \"e5\", \"time\": 4, \"text\": \"{{#each x}}{{/each}}\"}\n");
        let out = parse_events(&input);
        assert_eq!(out.len(), 6);
        assert!(out[0].is_ok() && out[5].is_ok());
        let e = out[1].as_ref().unwrap_err();
        assert_eq!((e.line, e.id.as_deref(), e.field.as_str()), (2, Some("e2"), "text"));
        let e = out[2].as_ref().unwrap_err();
        assert!(e.error.contains("unknown field `mood`"), "{e}");
        assert_eq!(out[3].as_ref().unwrap_err().line, 4);
        assert!(out[4].as_ref().unwrap_err().error.starts_with("malformed JSON"));
        let long = format!(r#"{{"id": "big", "time": 0, "text": "{}"}}"#, "a".repeat(MAX_TEXT + 1));
        let e = parse_event(9, &long).unwrap_err();
        assert_eq!((e.id.as_deref(), e.field.as_str()), (Some("big"), "text"));
        // A line past MAX_LINE is refused before it is parsed.
        let huge = format!(r#"{{"id": "huge", "time": 0, "text": "{}"}}"#, "a".repeat(MAX_LINE));
        let e = parse_event(9, &huge).unwrap_err();
        assert!(e.error.contains("more than 65536") && e.field == "-", "{e}");
        assert_eq!(e.id.as_deref(), Some("huge"), "the id is still named");
        // Too many numbers in a typed frame.
        let numbers = (0..9).map(|k| format!(r#"{{"text": "{k} jobs", "meaning": "count"}}"#)).collect::<Vec<_>>();
        let line =
            format!(r#"{{"id": "n", "time": 0, "text": "Cuts", "frame": {{"numbers": [{}]}}}}"#, numbers.join(","));
        let e = parse_event(3, &line).unwrap_err();
        assert_eq!((e.id.as_deref(), e.field.as_str()), (Some("n"), "frame.numbers"), "{e}");
    }
}
