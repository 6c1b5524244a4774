//! Line-oriented JSON data files: one object per line, `#` comments and blank lines skipped.
//! Errors name the file, the 1-based line and the field path.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;

/// Parses every data line of `text` as a `T`, returning each with its line number.
pub fn parse_lines<T: DeserializeOwned>(file: &str, text: &str) -> Result<Vec<(usize, T)>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(trimmed);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path == "?" { "-".to_string() } else { path };
            Error::data(file, line, field, strip_position(&e.inner().to_string()))
        })?;
        de.end().map_err(|e| Error::data(file, line, "-", strip_position(&e.to_string())))?;
        out.push((line, value));
    }
    Ok(out)
}

/// serde_json appends "at line 1 column N" (of the single line); keep the column, drop the line.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line 1 column ") {
        Some(pos) => format!("{} (column {})", &msg[..pos], &msg[pos + 18..]),
        None => msg.to_string(),
    }
}

/// Deserialises one already-parsed line, naming file, line and field path on error.
pub fn from_value<T: DeserializeOwned>(file: &str, line: usize, value: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" { "-".to_string() } else { path };
        Error::data(file, line, field, e.inner().to_string())
    })
}

/// The line to blame for a whole-file problem: the last line (1 for an empty file).
pub fn last_line(text: &str) -> usize {
    text.lines().count().max(1)
}

/// Splits a tab-separated data line into exactly `n` non-empty columns, naming file and line
/// otherwise.
pub fn tsv_fields<'a>(file: &str, line: usize, raw: &'a str, n: usize) -> Result<Vec<&'a str>> {
    let f: Vec<&str> = raw.split('\t').map(str::trim).collect();
    if f.len() != n || f.iter().any(|x| x.is_empty()) {
        return Err(Error::data(
            file,
            line,
            "-",
            format!("expected {n} tab-separated non-empty columns, found {}", f.len()),
        ));
    }
    Ok(f)
}

/// Checks that `value` lies in `[lo, hi]`, naming file, line and field otherwise.
pub fn check_range<T: Into<f64> + std::fmt::Display + Copy>(
    file: &str,
    line: usize,
    field: &str,
    value: T,
    lo: f64,
    hi: f64,
) -> Result<()> {
    let v: f64 = value.into();
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(Error::data(file, line, field, format!("{value} is outside [{lo}, {hi}]")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Row {
        a: u8,
        b: Inner,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        c: f32,
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = "# header\n{\"a\": 1, \"b\": {\"c\": 0.5}}\n\n{\"a\": 2, \"b\": {\"c\": \"x\"}}\n";
        let err = parse_lines::<Row>("f.jsonl", text).unwrap_err().to_string();
        assert!(err.starts_with("f.jsonl:4: b.c: invalid type"), "{err}");
        let err = parse_lines::<Row>("f.jsonl", "{\"a\": 1, \"b\": {\"c\": 1}, \"z\": 0}").unwrap_err().to_string();
        assert!(err.contains("f.jsonl:1:") && err.contains("unknown field `z`"), "{err}");
        let err = parse_lines::<Row>("f.jsonl", "{\"a\": 1").unwrap_err().to_string();
        assert!(err.contains("f.jsonl:1:"), "{err}");
    }
}
