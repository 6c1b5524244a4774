//! The kinds of file chorus writes, told apart by their first bytes, so a file given in the
//! wrong place (a snapshot as a state, a state as event lines) is refused with what it is and
//! where it goes, instead of a parse error deep inside it.
//!
//! Invariant: a leaf module (imports nothing from the crate), so every reader can use it.
//! It looks at a prefix only (the first line of a text file).

/// First 8 bytes of a population snapshot (`chorus population --out`).
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"CHORUSNP";
/// First 8 bytes of a user-state file (`--save-state`).
pub const STATE_MAGIC: &[u8; 8] = b"CHORUSST";

/// What a file starting with `prefix` is and the option that reads it, when it is a file
/// chorus writes: a snapshot or a state (by their magic), a Parquet export, an LLM
/// recording or a timeline (by the fields of their first JSON line).
pub fn describe(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(SNAPSHOT_MAGIC) {
        Some("a chorus population snapshot (it is read by --load)")
    } else if prefix.starts_with(STATE_MAGIC) {
        Some("a chorus user-state file (it is read by --resume)")
    } else if prefix.starts_with(b"PAR1") {
        Some("a Parquet file (a timeline export, not an input)")
    } else {
        describe_line(prefix)
    }
}

/// The text kinds, told by the keys of the first line that is not blank or a `#` comment,
/// when it is a JSON object.
fn describe_line(prefix: &[u8]) -> Option<&'static str> {
    let line = prefix
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()) && !l.starts_with(b"#"))?;
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line) else {
        return None;
    };
    let has = |keys: &[&str]| keys.iter().all(|k| map.contains_key(*k));
    if has(&["key", "status", "body"]) || has(&["chorus_recording"]) {
        Some("a chorus LLM recording (it is read by --replay)")
    } else if has(&["id", "author", "kind", "event", "time"]) {
        Some("a chorus timeline (what `chorus run --out` writes; events are lines with id, time and text)")
    } else if has(&["id", "time", "text"]) {
        Some("event lines (they are read by --events)")
    } else {
        None
    }
}

/// The refusal for a file starting with `prefix` given where `wanted` goes ("a snapshot"),
/// when it is another kind of file chorus knows (never the kind wanted itself: `wanted` is
/// compared with the start of the description, so "event lines" is not refused as events).
pub fn wrong_kind(prefix: &[u8], wanted: &str) -> Option<String> {
    let what = wanted.trim_start_matches("a ").trim_start_matches("an ");
    describe(prefix)
        .filter(|kind| !kind.trim_start_matches("a chorus ").starts_with(what))
        .map(|kind| format!("not {wanted}: this is {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_kinds_are_named_and_text_is_not() {
        assert!(describe(b"CHORUSNP\x01\x00").unwrap().contains("snapshot"));
        assert!(describe(b"CHORUSST\x01\x00").unwrap().contains("state"));
        assert_eq!(describe(b"{\"id\": \"e1\"}"), None);
        assert_eq!(describe(b"CHO"), None);
        let record = br#"{"key":"ab12","status":200,"body":"{}"}"#;
        assert!(wrong_kind(record, "event lines").unwrap().contains("LLM recording"));
        assert_eq!(wrong_kind(record, "an LLM recording"), None);
        let timeline = b"\n{\"id\":4294967296,\"author\":3,\"kind\":\"post\",\"event\":\"e1\",\"time\":60}\n";
        assert!(wrong_kind(timeline, "event lines").unwrap().contains("timeline"));
        let events = br#"{"id":"e1","time":0,"text":"Floods close the coast road"}"#;
        assert_eq!(wrong_kind(events, "event lines"), None);
        assert!(wrong_kind(events, "an LLM recording").unwrap().contains("--events"));
        assert!(describe(b"PAR1\x15\x04").unwrap().contains("Parquet"));
        // A line that is not a JSON object says nothing.
        assert_eq!(describe(b"{\"id\": \"e1\", \"time\": 0, \"text"), None);
        assert_eq!(
            wrong_kind(b"CHORUSST", "a snapshot").as_deref(),
            Some("not a snapshot: this is a chorus user-state file (it is read by --resume)")
        );
    }
}
