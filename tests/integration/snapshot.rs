//! Snapshots round-trip exactly; truncated, corrupted, foreign and wrong-version files are
//! refused with `Error::Snapshot`, never a panic; saving is atomic.

use crate::common::{assert_same_bytes, generate, sample_ids};
use chorus::snapshot::{load, save};
use chorus::{Error, Population};
use std::sync::OnceLock;

/// A small population and its snapshot bytes, made once.
fn saved() -> &'static (Population, Vec<u8>) {
    static S: OnceLock<(Population, Vec<u8>)> = OnceLock::new();
    S.get_or_init(|| {
        let p = generate(4_000, 77);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.snap");
        save(&p, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (p, bytes)
    })
}

/// One section of the file: tag, offset of its 12-byte header, payload length.
struct Section {
    tag: String,
    at: usize,
    len: usize,
}

/// Walks the documented layout: 16-byte header, then `tag, u64 len, payload, pad to 8`.
fn sections(bytes: &[u8]) -> Vec<Section> {
    let mut out = Vec::new();
    let mut at = 16;
    while at + 12 <= bytes.len() - 8 {
        let tag = String::from_utf8_lossy(&bytes[at..at + 4]).into_owned();
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
        out.push(Section { tag, at, len });
        at += 12 + len.div_ceil(8) * 8;
    }
    assert_eq!(at, bytes.len() - 8, "section walk did not end at the closing magic");
    out
}

/// Writes `bytes` to a fresh file and loads it, expecting a snapshot error; returns its message.
fn refused(bytes: &[u8], what: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.snap");
    std::fs::write(&path, bytes).unwrap();
    match load(&path) {
        Ok(_) => panic!("{what}: loaded without error"),
        Err(Error::Snapshot { path: p, message }) => {
            assert_eq!(p, path, "{what}: error names another file");
            message
        }
        Err(e) => panic!("{what}: not a snapshot error: {e}"),
    }
}

fn assert_same_population(a: &Population, b: &Population) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.config(), b.config());
    assert_eq!(a.graph(), b.graph());
    for id in sample_ids(a.len(), 200) {
        assert_eq!(a.user(id), b.user(id), "user {id}");
        assert_eq!(a.graph().out_edges(id).collect::<Vec<_>>(), b.graph().out_edges(id).collect::<Vec<_>>());
        assert_eq!(a.graph().followers(id), b.graph().followers(id), "followers of {id}");
    }
}

#[test]
fn round_trip_is_exact() {
    let (p, bytes) = saved();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.snap");
    std::fs::write(&path, bytes).unwrap();
    let loaded = load(&path).unwrap();
    assert_same_population(p, &loaded);
    loaded.graph().check().unwrap();
    let again = dir.path().join("again.snap");
    save(&loaded, &again).unwrap();
    assert_same_bytes(bytes, &std::fs::read(&again).unwrap(), "re-saved snapshot");
}

#[test]
fn save_leaves_no_temporary_file() {
    let (p, _) = saved();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.snap");
    save(p, &path).unwrap();
    // Saving over an existing snapshot replaces it, too.
    save(p, &path).unwrap();
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["p.snap"]);
}

#[test]
fn truncated_snapshots_are_refused() {
    let (_, bytes) = saved();
    let n = bytes.len();
    let mut cuts = vec![0, 5, 16, n / 2, n - 1];
    // Also every section boundary, into its header, and into its payload.
    for s in sections(bytes) {
        cuts.extend([s.at, s.at + 4, s.at + 12, s.at + 12 + s.len / 2]);
    }
    cuts.retain(|&c| c < n);
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        let message = refused(&bytes[..cut], &format!("cut at {cut} of {n}"));
        assert!(message.contains("truncated") || message.contains("corrupted"), "cut at {cut}: {message}");
    }
}

#[test]
fn a_flipped_graph_byte_fails_the_checksum() {
    let (_, bytes) = saved();
    let all = sections(bytes);
    for tag in ["GOUT", "GMET", "GINS"] {
        let s = all.iter().find(|s| s.tag == tag).unwrap();
        assert!(s.len > 0, "{tag} is empty");
        let mut bad = bytes.clone();
        bad[s.at + 12 + s.len / 2] ^= 0x5a;
        let message = refused(&bad, &format!("byte flipped in {tag}"));
        assert!(message.contains("checksum") && message.contains("corrupted"), "{tag}: {message}");
    }
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let (_, bytes) = saved();
    for s in sections(bytes) {
        // Every byte is checked: payloads by the CRC, the trailer's 4 reserved bytes must be 0.
        let checked = s.len;
        let payload = s.at + 12;
        for at in [s.at, s.at + 5, payload, payload + checked / 2, payload + checked.saturating_sub(1)] {
            if at < bytes.len() {
                let mut bad = bytes.clone();
                bad[at] ^= 0x01;
                refused(&bad, &format!("bit flipped at {at} in section {}", s.tag));
            }
        }
    }
}

#[test]
fn foreign_and_empty_files_are_refused() {
    let random: Vec<u8> = (0u64..4096).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8).collect();
    let message = refused(&random, "random bytes");
    assert!(message.contains("not a chorus snapshot"), "{message}");
    let message = refused(&[], "empty file");
    assert!(message.contains("truncated"), "{message}");
    let missing = tempfile::tempdir().unwrap().path().join("missing.snap");
    assert!(matches!(load(&missing), Err(Error::Io { .. })));
}

#[test]
fn another_format_version_is_refused() {
    let (_, bytes) = saved();
    let current = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    assert_eq!(current, chorus::snapshot::VERSION);
    for version in [0, current + 1, u32::MAX] {
        let mut bad = bytes.clone();
        bad[8..12].copy_from_slice(&version.to_le_bytes());
        let message = refused(&bad, &format!("version {version}"));
        assert!(message.contains("version") && message.contains(&version.to_string()), "{message}");
    }
}
