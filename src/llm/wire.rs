//! The chat-completion request body and how it asks for structured output, per server
//! dialect: OpenAI's `response_format` with a JSON schema (vLLM, Ollama, Groq, Gemini's
//! OpenAI endpoint, llama.cpp, OpenAI itself), or llama.cpp's GBNF `grammar` field.
//!
//! Invariant: the body is a pure function of its inputs (no clock, no randomness), so a
//! recording keyed by its hash replays; nothing secret is ever part of it (the key travels in
//! the `Authorization` header only).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// OpenAI's `frequency_penalty` sent with phrase-bank requests (llama.cpp honours it too).
pub const BANK_FREQUENCY_PENALTY: f32 = 0.3;

/// How a server is asked for structured output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// `response_format: {"type": "json_schema", ...}` (the default; llama.cpp accepts it too).
    #[default]
    Openai,
    /// llama.cpp's GBNF `grammar` field, which OpenAI-shaped servers reject or ignore.
    Llamacpp,
}

impl Dialect {
    /// By name (`openai`, `llamacpp`).
    pub fn from_name(s: &str) -> Option<Dialect> {
        match s {
            "openai" => Some(Dialect::Openai),
            "llamacpp" | "llama.cpp" => Some(Dialect::Llamacpp),
            _ => None,
        }
    }
}

/// The shape an answer must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `n` objects `{"id": k, "text": "..."}`, ids 1..=n (posts, reflections).
    Lines(usize),
    /// A phrase bank: `groups` arrays of `lines` short lines each.
    Bank {
        /// Groups (id 1..=groups).
        groups: usize,
        /// Lines per group.
        lines: usize,
    },
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: [Message<'a>; 1],
    max_tokens: u32,
    temperature: f32,
    seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grammar: Option<String>,
}

/// What every request of a run shares.
#[derive(Clone, Copy, Debug)]
pub struct Wire<'a> {
    /// Model name.
    pub model: &'a str,
    /// Sampling temperature.
    pub temperature: f32,
    /// Structured output dialect.
    pub dialect: Dialect,
    /// Ask for structured output at all (false: the prompt's format only, parsed leniently).
    pub structured: bool,
}

impl Wire<'_> {
    /// The JSON body of one request.
    pub fn body(&self, prompt: &str, max_tokens: u32, seed: u64, shape: Shape) -> crate::Result<String> {
        let (response_format, grammar) = match (self.structured, self.dialect) {
            (false, _) => (None, None),
            (true, Dialect::Openai) => (Some(response_format(shape)), None),
            (true, Dialect::Llamacpp) => (None, Some(grammar(shape))),
        };
        let req = Request {
            model: self.model,
            messages: [Message { role: "user", content: prompt }],
            max_tokens,
            temperature: self.temperature,
            seed,
            // A bank asks for many lines about one thing: small models repeat themselves.
            frequency_penalty: matches!(shape, Shape::Bank { .. }).then_some(BANK_FREQUENCY_PENALTY),
            response_format,
            grammar,
        };
        serde_json::to_string(&req).map_err(|e| crate::Error::Config(format!("request: {e}")))
    }
}

/// A text as the grammar allows it: 5..=200 characters, opening with a letter, digit, @, #, '
/// or ( or a non-ASCII character.
const TEXT_PATTERN: &str = "^[A-Za-z0-9@#'(\\u0080-\\uffff][^\\u0000-\\u001f]{4,199}$";

fn text_schema(max: usize) -> Value {
    json!({"type": "string", "minLength": 5, "maxLength": max, "pattern": TEXT_PATTERN})
}

/// `response_format` for a shape: a strict JSON schema.
pub fn response_format(shape: Shape) -> Value {
    let schema = match shape {
        Shape::Lines(n) => json!({
            "type": "object",
            "properties": {"posts": {
                "type": "array", "minItems": n, "maxItems": n,
                "items": {"type": "object",
                          "properties": {"id": {"type": "integer", "minimum": 1, "maximum": n}, "text": text_schema(200)},
                          "required": ["id", "text"], "additionalProperties": false}}},
            "required": ["posts"], "additionalProperties": false}),
        Shape::Bank { groups, lines } => json!({
            "type": "object",
            "properties": {"groups": {
                "type": "array", "minItems": groups, "maxItems": groups,
                "items": {"type": "object",
                          "properties": {"id": {"type": "integer", "minimum": 1, "maximum": groups},
                                         "lines": {"type": "array", "minItems": 1, "maxItems": lines, "items": text_schema(140)}},
                          "required": ["id", "lines"], "additionalProperties": false}}},
            "required": ["groups"], "additionalProperties": false}),
    };
    let name = match shape {
        Shape::Lines(_) => "posts",
        Shape::Bank { .. } => "phrase_bank",
    };
    json!({"type": "json_schema", "json_schema": {"name": name, "strict": true, "schema": schema}})
}

/// The GBNF grammar (llama.cpp) for a shape: for lines, one `{"id":k,"text":"..."}` line per
/// id; for a bank, one `{"id":k,"lines":["...", ...]}` line per group.
pub fn grammar(shape: Shape) -> String {
    let mut g = String::from("root ::=");
    let n = match shape {
        Shape::Lines(n) => n,
        Shape::Bank { groups, .. } => groups,
    };
    for i in 1..=n {
        g.push_str(&format!(" l{i}"));
    }
    g.push('\n');
    for i in 1..=n {
        match shape {
            Shape::Lines(_) => {
                g.push_str(&format!("l{i} ::= \"{{\\\"id\\\":{i},\\\"text\\\":\\\"\" t \"\\\"}}\\n\"\n"))
            }
            Shape::Bank { .. } => g.push_str(&format!("l{i} ::= \"{{\\\"id\\\":{i},\\\"lines\\\":[\" ls \"]}}\\n\"\n")),
        }
    }
    if let Shape::Bank { lines, .. } = shape {
        g.push_str(&format!("ls ::= q (\", \" q){{0,{}}}\nq ::= \"\\\"\" s \"\\\"\"\n", lines.saturating_sub(1)));
        g.push_str("s ::= f c{4,139}\n");
    }
    // A text opens with a letter, a digit, @, #, ' or ( or any non-ASCII character (emoji):
    // not with "<" (base models echo placeholders such as "<the post>") nor with the symbols
    // that start runaway symbol soup ("$a/s: $b/s: ..."), which costs a token per character.
    g.push_str("t ::= f c{4,199}\nf ::= [A-Za-z0-9@#'(] | [^\\x00-\\x7f]\nc ::= [^\"\\\\\\x00-\\x1f]\n");
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_ask_for_structure_their_own_way() {
        let w = Wire { model: "m", temperature: 0.5, dialect: Dialect::Openai, structured: true };
        let b: Value = serde_json::from_str(&w.body("hi", 10, 3, Shape::Lines(2)).unwrap()).unwrap();
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["schema"]["properties"]["posts"]["minItems"], 2);
        assert!(b.get("grammar").is_none());
        let w = Wire { dialect: Dialect::Llamacpp, ..w };
        let b: Value = serde_json::from_str(&w.body("hi", 10, 3, Shape::Lines(2)).unwrap()).unwrap();
        assert!(b.get("response_format").is_none());
        assert!(b["grammar"].as_str().unwrap().starts_with("root ::= l1 l2\n"));
        let w = Wire { structured: false, ..w };
        let b: Value = serde_json::from_str(&w.body("hi", 10, 3, Shape::Lines(2)).unwrap()).unwrap();
        assert!(b.get("response_format").is_none() && b.get("grammar").is_none());
    }

    #[test]
    fn grammar_has_one_rule_per_line() {
        let g = grammar(Shape::Lines(3));
        assert!(g.starts_with("root ::= l1 l2 l3\n"));
        assert!(g.contains("l2 ::= \"{\\\"id\\\":2,\\\"text\\\":\\\"\" t \"\\\"}\\n\"\n"), "{g}");
        let g = grammar(Shape::Bank { groups: 2, lines: 4 });
        assert!(g.starts_with("root ::= l1 l2\n"));
        assert!(g.contains("ls ::= q (\", \" q){0,3}"), "{g}");
    }
}
