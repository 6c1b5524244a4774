//! The fuzz targets: one function per reader of outside input, each taking arbitrary bytes
//! and required never to panic, hang or allocate without bound. `tests/fuzz/main.rs` runs
//! them on mutated and random inputs under `cargo test` (a short fixed-seed run) and for as
//! long as asked (`CHORUS_FUZZ_CASES`); `fuzz/` runs the same functions under libFuzzer
//! (`cargo +nightly fuzz run NAME`). Kept in one file both include.
//!
//! The binary formats (state, snapshot) are fuzzed two ways: the bytes as they come, and as
//! edits to a valid file (`edits`), with the state file's checksum sealed again afterwards so
//! the reader gets past it to the sections and the cross-checks behind it.

use std::path::Path;
use std::sync::OnceLock;

/// A fuzz target: takes any bytes, must not panic.
pub type Target = fn(&[u8]);

/// Every target: (name, function).
pub const TARGETS: &[(&str, Target)] = &[
    ("event_line", event_line),
    ("event_file", event_file),
    ("world", world),
    ("seeds", seeds),
    ("templates", templates),
    ("lexicon", lexicon),
    ("state", state),
    ("state_edits", state_edits),
    ("snapshot", snapshot),
    ("snapshot_edits", snapshot_edits),
    ("recording", recording),
    ("llm_answer", llm_answer),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// One event line (the CLI's and the server's format, with its optional structured frame),
/// and the same line classified, as `chorus run` would.
pub fn event_line(data: &[u8]) {
    let line = text(data);
    if let Ok(event) = chorus::events::parse_event(1, &line) {
        let _ = event.validate();
        let _ = fixture().classifier.classify(&event, 1);
    }
}

/// An event file: split into lines, each parsed, a binary file refused once.
pub fn event_file(data: &[u8]) {
    let _ = chorus::events::parse_events_numbered(data);
}

/// A world file (`seeds/world.jsonl`).
pub fn world(data: &[u8]) {
    let _ = chorus::world::World::parse("fuzz/world.jsonl", &text(data));
}

/// A seed profile file, against the shipped world.
pub fn seeds(data: &[u8]) {
    let _ = chorus::seeds::SeedSet::parse("fuzz/profiles.jsonl", &text(data), &fixture().world);
}

/// A template folder whose first post file, phrase bank or kinds file is the input (the rest
/// shipped), parsed as `Templates::load` parses a folder.
pub fn templates(data: &[u8]) {
    let t = text(data);
    let categories: Vec<&str> = chorus::events::Category::ALL.iter().map(|c| c.name()).collect();
    let posts = shipped("templates/posts", &categories);
    let phrases = shipped("templates/phrases", &["reaction", "comment", "agree", "aspect"]);
    let slang = read("templates/phrases/slang.tsv");
    let emoji = read("templates/phrases/emoji.tsv");
    let kinds = shipped("templates/kinds", &categories);
    // The input takes the place of one file, chosen by its first byte.
    let slot = data.first().copied().unwrap_or(0) as usize % 3;
    let mut p: Vec<(&str, &str)> = posts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut q: Vec<(&str, &str)> = phrases.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut k: Vec<(&str, &str)> = kinds.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    match slot {
        0 => p[0] = ("fuzz/posts.tsv", &t),
        1 => q[0] = ("fuzz/phrases.tsv", &t),
        _ => k[0] = ("fuzz/kinds.tsv", &t),
    }
    let Ok(templates) = chorus::templates::Templates::parse(&p, &q, (slang.0.as_str(), slang.1.as_str())) else {
        return;
    };
    let _ = templates.with_kinds(&k, (emoji.0.as_str(), emoji.1.as_str()));
}

/// The lexicon files: categories, frames, claims, reflections, media catalogues and tags.
pub fn lexicon(data: &[u8]) {
    let t = text(data);
    let _ = chorus::classify::Lexicon::parse(&[("fuzz/categories.tsv", &t)]);
    let _ = chorus::frame::FrameLexicon::parse("fuzz/frames.tsv", &t);
    let _ = chorus::check::FactChecker::parse("fuzz/claims.tsv", &t);
    let _ = chorus::state::reflect::Bank::parse("fuzz/reflections.tsv", &t);
    let images = read("templates/media/images.tsv");
    let gifs = read("templates/media/gifs.tsv");
    let _ = chorus::media::Media::parse(("fuzz/gifs.tsv", &t), (images.0.as_str(), images.1.as_str()));
    let _ = chorus::media::Media::parse((gifs.0.as_str(), gifs.1.as_str()), ("fuzz/images.tsv", &t));
}

/// A state file as it comes (against the fixture's population).
pub fn state(data: &[u8]) {
    let f = fixture();
    let _ = chorus::state::io::load_bytes(Path::new("fuzz.state"), data, &f.fingerprint, f.users);
}

/// A valid state file with the input's edits, its checksum sealed again.
pub fn state_edits(data: &[u8]) {
    let f = fixture();
    let mut bytes = edits(&f.state, data);
    seal_state(&mut bytes);
    let _ = chorus::state::io::load_bytes(Path::new("fuzz.state"), &bytes, &f.fingerprint, f.users);
}

/// A snapshot as it comes.
pub fn snapshot(data: &[u8]) {
    let _ = chorus::snapshot::load_bytes(Path::new("fuzz.snapshot"), data.to_vec());
}

/// A valid snapshot with the input's edits.
pub fn snapshot_edits(data: &[u8]) {
    let _ = chorus::snapshot::load_bytes(Path::new("fuzz.snapshot"), edits(&fixture().snapshot, data));
}

/// An LLM recording (`--record` / `--replay`).
pub fn recording(data: &[u8]) {
    let _ = chorus::llm::client::Replay::parse("fuzz.record", &text(data));
}

/// An LLM server's answer: the response body, then its content as a batch of 1–8 posts.
pub fn llm_answer(data: &[u8]) {
    let t = text(data);
    let n = 1 + data.first().copied().unwrap_or(0) as usize % 8;
    if let Some(c) = chorus::llm::client::completion(&t) {
        let _ = chorus::llm::prompt::parse_batch(&c.content, n);
    }
    for post in chorus::llm::prompt::parse_batch(&t, n).into_iter().flatten() {
        let _ = chorus::llm::prompt::check_text(&post);
    }
}

/// Applies edits read from `data` to a copy of `base`: each 5 bytes are a position (u32, taken
/// modulo the length) and a byte to put there; a leading byte over 200 also cuts the file
/// at a position from the next 4 bytes.
pub fn edits(base: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    let mut rest = data;
    if let [cut, a, b, c, d, tail @ ..] = rest {
        if *cut > 200 && !out.is_empty() {
            let at = u32::from_le_bytes([*a, *b, *c, *d]) as usize % out.len();
            out.truncate(at);
        }
        rest = tail;
    }
    for e in rest.chunks_exact(5) {
        if out.is_empty() {
            break;
        }
        let at = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as usize % out.len();
        out[at] = e[4];
    }
    out
}

/// Writes the state file's checksum for its contents (as `state::io::save` does), so edits
/// reach the reader's checks behind it.
pub fn seal_state(bytes: &mut [u8]) {
    if bytes.len() < 40 {
        return;
    }
    let end = bytes.len() - 20;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end + 12..end + 16].copy_from_slice(&crc.to_le_bytes());
}

/// A small population with a valid state and snapshot, made once.
pub struct Fixture {
    pub world: chorus::world::World,
    pub classifier: chorus::classify::Classifier,
    pub fingerprint: String,
    pub users: usize,
    pub state: Vec<u8>,
    pub snapshot: Vec<u8>,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let world = chorus::world::World::embedded().expect("shipped world");
        let classifier = chorus::classify::Classifier::embedded(&world).expect("shipped lexicon");
        let mut sim = chorus::sim::Simulation::generate(400, 7, Default::default()).expect("population");
        let demo = std::fs::read_to_string(root().join("examples/events/demo.jsonl")).expect("demo events");
        for line in demo.lines().filter(|l| l.starts_with('{')).take(12) {
            sim.apply_line(line).expect("demo event");
        }
        let dir = std::env::temp_dir().join(format!("chorus-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        sim.pipeline().save(&dir.join("s.state")).expect("save state");
        chorus::snapshot::save(sim.population(), &dir.join("p.snapshot")).expect("save snapshot");
        let state = std::fs::read(dir.join("s.state")).expect("read state");
        let snapshot = std::fs::read(dir.join("p.snapshot")).expect("read snapshot");
        let _ = std::fs::remove_dir_all(&dir);
        Fixture {
            world,
            classifier,
            fingerprint: sim.pipeline().fingerprint(),
            users: sim.population().len(),
            state,
            snapshot,
        }
    })
}

/// The repository root (the fuzz crate sits in its `fuzz/` folder).
pub fn root() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    match here.file_name() {
        Some(n) if n == "fuzz" => here.parent().unwrap_or(here),
        _ => here,
    }
}

fn read(rel: &str) -> (String, String) {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    let text = c
        .entry(rel.to_string())
        .or_insert_with(|| std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .clone();
    (rel.to_string(), text)
}

fn shipped(dir: &str, names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| read(&format!("{dir}/{n}.tsv"))).collect()
}

/// Valid inputs to start mutating from, per target.
pub fn seeds_for(name: &str) -> Vec<Vec<u8>> {
    let file = |rel: &str| std::fs::read(root().join(rel)).unwrap_or_default();
    let demo = file("examples/events/demo.jsonl");
    let lines = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(40).map(<[u8]>::to_vec).collect()
    };
    match name {
        "event_line" => {
            let mut v = lines(&demo);
            v.push(br#"{"id":"f1","time":"2026-03-01T18:00:00Z","text":"Redhawks beat Sealions 3-1 in the final","frame":{"kind":"win","roles":{"winner":"Redhawks","loser":"Sealions"},"score":"3-1","place":"Cedar Bay"}}"#.to_vec());
            v.push(br#"{"id":"a","time":5,"text":"x","audience":["t"],"impact":"global","weight":2.5}"#.to_vec());
            v
        }
        "event_file" => vec![demo.clone(), fixture().state.clone()],
        "world" => vec![file("seeds/world.jsonl")],
        "seeds" => lines(&file("seeds/profiles.jsonl")),
        "templates" => vec![file("templates/posts/sports.tsv"), file("templates/phrases/reaction.tsv"), file("templates/kinds/sports.tsv")],
        "lexicon" => vec![
            file("templates/lexicon/categories.tsv"),
            file("templates/lexicon/frames.tsv"),
            file("templates/lexicon/claims.tsv"),
            file("templates/memory/reflections.tsv"),
            file("templates/media/gifs.tsv"),
        ],
        "state" => vec![fixture().state.clone()],
        "snapshot" => vec![fixture().snapshot.clone()],
        "state_edits" | "snapshot_edits" => vec![vec![0; 40], vec![255, 9, 0, 0, 0]],
        "recording" => vec![
            br#"{"key":"k1","status":200,"body":"{\"choices\":[{\"message\":{\"content\":\"[\\\"a\\\"]\"}}]}"}"#.to_vec(),
            br#"{"key":"k2","status":429,"retry_after_ms":1500,"body":""}"#.to_vec(),
        ],
        "llm_answer" => vec![
            br#"{"choices":[{"message":{"content":"[\"What a night\",\"Robbed again\"]"}}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#.to_vec(),
            br#"["one","two","three"]"#.to_vec(),
            b"1. first post\n2. second post\n".to_vec(),
        ],
        _ => Vec::new(),
    }
}
