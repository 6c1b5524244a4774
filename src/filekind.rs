//! The kinds of file chorus writes, told apart by their first bytes, so a file given in the
//! wrong place (a snapshot as a state, a state as event lines) is refused with what it is and
//! where it goes, instead of a parse error deep inside it.
//!
//! Invariant: a leaf module (imports nothing from the crate), so every reader can use it.

/// First 8 bytes of a population snapshot (`chorus population --out`).
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"CHORUSNP";
/// First 8 bytes of a user-state file (`--save-state`).
pub const STATE_MAGIC: &[u8; 8] = b"CHORUSST";

/// What a file starting with `prefix` is and the option that reads it, when it is a binary
/// file chorus writes.
pub fn describe(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(SNAPSHOT_MAGIC) {
        Some("a chorus population snapshot (it is read by --load)")
    } else if prefix.starts_with(STATE_MAGIC) {
        Some("a chorus user-state file (it is read by --resume)")
    } else {
        None
    }
}

/// The refusal for a file starting with `prefix` given where `wanted` goes ("a snapshot"),
/// when it is another binary file chorus writes.
pub fn wrong_kind(prefix: &[u8], wanted: &str) -> Option<String> {
    describe(prefix).map(|kind| format!("not {wanted}: this is {kind}"))
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
        assert_eq!(
            wrong_kind(b"CHORUSST", "a snapshot").as_deref(),
            Some("not a snapshot: this is a chorus user-state file (it is read by --resume)")
        );
    }
}
