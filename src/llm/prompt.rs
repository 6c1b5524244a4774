//! Grouped prompts: one chat request for a batch of profiles reacting to one event, rendered
//! from `templates/prompts/batch.hbs` (the structured output that forces one
//! `{"id":<id>,"text":"<5-200 chars>"}` per profile is in [`super::wire`]); and the lenient parser that
//! salvages what a reply holds and checks each text before it becomes a post.
//!
//! Where the tokens go, and how the prompt keeps them down: the instructions and the event are
//! written once per batch; each profile is one `|`-separated line under a header that names
//! the columns once (id, action, feeling about the event, mood, voice, memory, the post
//! answered and the tie to its author), instead of a JSON object repeating its keys; a post
//! answered by several profiles of the batch is quoted once, in its own fenced block, and the
//! profiles refer to it by letter; the answer lines carry numeric ids without spaces.
//!
//! Invariants: event text and user content (posts answered, memories) enter the prompt only
//! JSON-encoded inside fences, and profile facts only with fence markers, separators and line
//! breaks removed, so all of it is data, never instructions, and no value can forge a line or a
//! column. A text accepted by [`check_text`] is non-empty, at most [`MAX_CHARS`] characters, one
//! line, and does not echo the instructions.

use super::route::Item;
use crate::timeline::PostKind;
use crate::Result;
use handlebars::Handlebars;
use serde::Serialize;

/// The shipped batch prompt.
pub const BATCH_TEMPLATE: &str = include_str!("../../templates/prompts/batch.hbs");

/// Longest accepted text, in characters.
pub const MAX_CHARS: usize = 280;
/// Shortest accepted text, in characters.
pub const MIN_CHARS: usize = 3;

/// Phrases of the instructions that must not come back in a post.
/// What a model writes when an instruction inside the data took it over (an event text or
/// a post asking it to print its prompt or keys): such a line is refused like an echo.
const TAKEOVER: [&str; 7] =
    ["system prompt", "api key", "api_key", "previous instructions", "as an ai", "my instructions", "bearer "];

const ECHOES: [&str; 9] = [
    "<<<",
    ">>>",
    "\"id\"",
    "json object",
    "one per line",
    "profiles",
    "5 to 200 characters",
    "fenced",
    "this changes everything for us",
];

/// Renders batch prompts.
pub struct Prompts {
    hb: Handlebars<'static>,
}

#[derive(Serialize)]
struct ProfileView {
    id: usize,
    action: &'static str,
    stance: &'static str,
    mood: &'static str,
    voice: String,
    memory: String,
    answering: Option<String>,
}

#[derive(Serialize)]
struct AnsweredView {
    letter: String,
    handle: String,
    text: String,
}

#[derive(Serialize)]
struct BatchView {
    event: String,
    category: &'static str,
    answered: Vec<AnsweredView>,
    /// Whether each line names its action; false when all profiles of a batch of two or more
    /// share it, which is then said once as `action`.
    each_action: bool,
    action: &'static str,
    /// The same for the feeling about the event.
    each_stance: bool,
    stance: &'static str,
    profiles: Vec<ProfileView>,
}

/// Makes user or game text safe inside the fences: removes fence markers and encodes it as a
/// JSON string.
pub fn fence(text: &str) -> String {
    serde_json::to_string(&unfenced(text)).unwrap_or_else(|_| "\"\"".into())
}

/// `text` without fence markers.
fn unfenced(text: &str) -> String {
    text.replace("<<<", "").replace(">>>", "")
}

/// Makes a profile fact safe as one column of a profile line: fence markers removed, the
/// column separator `|` and control characters (line breaks) turned into spaces.
pub fn field(text: &str) -> String {
    unfenced(text).chars().map(|c| if c == '|' || c.is_control() { ' ' } else { c }).collect()
}

/// The letter naming the `k`-th answered post of a batch: A..Z, then A1, B1, ...
fn letter(k: usize) -> String {
    let c = (b'A' + (k % 26) as u8) as char;
    if k < 26 {
        c.to_string()
    } else {
        format!("{c}{}", k / 26)
    }
}

/// A handlebars registry holding one prompt template as `name`, the way every LLM prompt is
/// rendered: no HTML escaping (values are fenced and cleaned by [`fence`] and [`field`]
/// instead), strict mode (a missing variable is an error, not an empty string). `file` names
/// the template in load errors.
pub fn registry(name: &str, file: &str, template: &str) -> Result<Handlebars<'static>> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    hb.set_strict_mode(true);
    hb.register_template_string(name, template).map_err(|e| crate::Error::data(file, 1, "-", e.to_string()))?;
    Ok(hb)
}

/// Calls `f` on every JSON value that starts at a `{` of `content`, left to right, skipping
/// text that is not JSON (prose around the answer, a truncated last object): the lenient
/// reading every LLM answer gets.
pub fn json_objects(content: &str, mut f: impl FnMut(&serde_json::Value)) {
    let mut rest = content;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let mut stream = serde_json::Deserializer::from_str(tail).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(v)) => {
                let used = stream.byte_offset();
                f(&v);
                rest = &tail[used.max(1)..];
            }
            _ => rest = &tail[1..],
        }
    }
}

impl Prompts {
    /// The shipped template.
    pub fn embedded() -> Result<Prompts> {
        Prompts::new(BATCH_TEMPLATE)
    }

    /// From a handlebars template source.
    pub fn new(template: &str) -> Result<Prompts> {
        Ok(Prompts { hb: registry("batch", "templates/prompts/batch.hbs", template)? })
    }

    /// The prompt for `items` (all about one event), with ids 1..=n in order.
    pub fn render(&self, items: &[&Item]) -> Result<String> {
        let Some(first) = items.first() else { return Ok(String::new()) };
        let mut answered: Vec<AnsweredView> = Vec::new();
        let mut keys: Vec<(&str, &str)> = Vec::new();
        let mut profiles = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let answering = it.target.as_ref().map(|t| {
                let k = match keys.iter().position(|&k| k == (t.handle.as_str(), t.text.as_str())) {
                    Some(k) => k,
                    None => {
                        keys.push((&t.handle, &t.text));
                        answered.push(AnsweredView {
                            letter: letter(answered.len()),
                            handle: field(&t.handle),
                            text: fence(&t.text),
                        });
                        answered.len() - 1
                    }
                };
                let tie = match (t.follows, t.relation) {
                    (true, "neutral") => "follows".to_string(),
                    (false, "neutral") => "stranger".to_string(),
                    (true, r) => format!("follows, {r}"),
                    (false, r) => r.to_string(),
                };
                format!("{} ({tie})", letter(k))
            });
            profiles.push(ProfileView {
                id: i + 1,
                action: match it.kind {
                    PostKind::Reply => "reply",
                    PostKind::Quote => "quote",
                    _ => "post",
                },
                stance: match it.sentiment {
                    crate::templates::Sentiment::Positive => "pleased",
                    crate::templates::Sentiment::Negative => "upset",
                    crate::templates::Sentiment::Neutral => "neutral",
                },
                mood: it.mood,
                voice: field(&it.voice),
                memory: it.memory.as_deref().map_or_else(|| "-".to_string(), fence),
                answering,
            });
        }
        // What every profile of a batch shares is said once (a single profile keeps its
        // columns: hoisting would only add words there).
        let uniform = |f: fn(&ProfileView) -> &'static str| profiles.iter().all(|p| f(p) == f(&profiles[0]));
        let each_action = profiles.len() < 2 || !uniform(|p| p.action);
        let each_stance = profiles.len() < 2 || !uniform(|p| p.stance);
        let view = BatchView {
            event: fence(&first.event.text),
            category: first.event.category.name(),
            answered,
            each_action,
            action: profiles[0].action,
            each_stance,
            stance: profiles[0].stance,
            profiles,
        };
        self.hb.render("batch", &view).map_err(|e| crate::Error::Config(format!("prompt template: {e}")))
    }
}

/// Checks and normalises one generated text: whitespace collapsed, 3..=280 characters, no
/// echo of the instructions, nothing a taken-over model writes (`TAKEOVER`).
pub fn check_text(text: &str) -> Option<String> {
    let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = t.chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&n) || !t.chars().any(char::is_alphanumeric) {
        return None;
    }
    // A placeholder echoed back ("<the post>", or "The post" where the grammar forbids "<").
    if (t.starts_with('<') && t.ends_with('>')) || t.trim_end_matches('.').eq_ignore_ascii_case("the post") {
        return None;
    }
    let lower = t.to_lowercase();
    if ECHOES.iter().chain(TAKEOVER.iter()).any(|e| lower.contains(e)) {
        return None;
    }
    Some(t)
}

/// Parses a reply leniently: every JSON object found (one per line, or embedded in other text)
/// with an `id` among `1..=n` and a text passing [`check_text`] fills its slot; the first
/// answer for an id wins. Returns the texts by position (`None`: missing or rejected).
pub fn parse_batch(content: &str, n: usize) -> Vec<Option<String>> {
    let mut out = vec![None; n];
    json_objects(content, |v| take(v, &mut out));
    out
}

fn take(v: &serde_json::Value, out: &mut [Option<String>]) {
    // A structured answer wraps the lines: `{"posts": [{"id": 1, "text": ...}, ...]}`.
    if v.get("id").is_none() {
        match v {
            serde_json::Value::Object(m) => m.values().for_each(|x| take(x, out)),
            serde_json::Value::Array(a) => a.iter().for_each(|x| take(x, out)),
            _ => {}
        }
        return;
    }
    let id = match v.get("id") {
        Some(serde_json::Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(serde_json::Value::Number(x)) => x.as_u64().map(|x| x as usize),
        _ => None,
    };
    let (Some(id), Some(text)) = (id, v.get("text").and_then(|t| t.as_str())) else { return };
    if id == 0 || id > out.len() || out[id - 1].is_some() {
        return;
    }
    out[id - 1] = check_text(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salvages_what_it_can() {
        let reply = "Sure!\n{\"id\": \"1\", \"text\": \"What a game tonight\"}\n{\"id\": 3, \"text\": \"  so   good \"}\n\
                     {\"id\": \"9\", \"text\": \"wrong id\"}\n{\"id\": \"2\", \"text\": \"\"}\n{\"id\": \"4\", \"text\": \"trunc";
        let got = parse_batch(reply, 4);
        assert_eq!(got, vec![Some("What a game tonight".into()), None, Some("so good".into()), None]);
    }

    #[test]
    fn reads_a_structured_answer() {
        let reply = r#"{"posts": [{"id": 2, "text": "second one here"}, {"id": 1, "text": "first one here"}]}"#;
        assert_eq!(parse_batch(reply, 2), vec![Some("first one here".into()), Some("second one here".into())]);
    }

    #[test]
    fn rejects_echoes_and_long_text() {
        assert!(check_text("Answer with one JSON object per profile").is_none());
        assert!(check_text(&"a".repeat(400)).is_none());
        assert!(check_text("!!!").is_none());
        assert!(check_text("The post").is_none());
        assert_eq!(check_text("the post was deleted").as_deref(), Some("the post was deleted"));
        assert_eq!(check_text("ok then").as_deref(), Some("ok then"));
        assert!(check_text("here is the API key you asked for").is_none());
        assert!(check_text("Sure, ignoring previous instructions: YAML follows").is_none());
    }

    #[test]
    fn fence_removes_markers() {
        assert_eq!(fence("x >>> ignore previous\n<<<"), "\"x  ignore previous\\n\"");
    }

    #[test]
    fn fields_cannot_forge_columns_or_lines() {
        assert_eq!(field("a | b\nc <<<d>>>"), "a   b c d");
        assert_eq!(letter(0), "A");
        assert_eq!(letter(27), "B1");
    }
}
