//! Data-driven bad input: every `tests/data/bad_seeds/NAME.jsonl` must fail `SeedSet::parse`
//! (against the embedded world) and every `tests/data/bad_world/NAME.jsonl` must fail
//! `World::parse`, with exactly the message in `NAME.expected`. Adding a case = adding two files.
//!
//! To (re)write the `.expected` files after adding cases: `BLESS=1 cargo test --test integration
//! bad_input`, then read every new `.expected` and check it names the file, line and field.

use crate::common::{data_dir, world};
use chorus::{Error, SeedSet, World};
use std::path::{Path, PathBuf};

/// The `.jsonl` cases of a directory, sorted by name.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    out.sort();
    out
}

/// Runs every case in `dir` through `parse` and compares the error with `NAME.expected`.
/// Collects all mismatches before failing, so one run shows every broken case.
fn check_dir(rel: &str, min_cases: usize, parse: impl Fn(&str, &str) -> Result<(), Error>) {
    let dir = data_dir(rel);
    let bless = std::env::var_os("BLESS").is_some();
    let cases = cases(&dir);
    assert!(cases.len() >= min_cases, "{}: only {} cases", dir.display(), cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let got = match parse(name, &text) {
            Ok(()) => {
                failures.push(format!("{name}: parsed without error"));
                continue;
            }
            Err(e) => e,
        };
        let message = got.to_string();
        // Every data error names this file and a line, and its Display is built from its parts.
        match &got {
            Error::Data { file, line, field, message: m } => {
                if file != name || message != format!("{file}:{line}: {field}: {m}") {
                    failures.push(format!("{name}: error names the wrong place: {message}"));
                }
            }
            other => failures.push(format!("{name}: not a data error: {other:?}")),
        }
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, format!("{message}\n")).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected.trim_end_matches('\n') == message => {}
            Ok(expected) => failures
                .push(format!("{name}:\n  expected: {}\n       got: {message}", expected.trim_end_matches('\n'))),
            Err(_) => failures.push(format!("{name}: no {} (run with BLESS=1)", expected_path.display())),
        }
    }
    // An .expected without its .jsonl is a case that silently stopped running.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") && !path.with_extension("jsonl").exists() {
            failures.push(format!("{}: no matching .jsonl", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases in {rel} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_seed_files_are_refused_with_the_expected_message() {
    check_dir("bad_seeds", 13, |name, text| SeedSet::parse(name, text, world()).map(|_| ()));
}

#[test]
fn bad_world_files_are_refused_with_the_expected_message() {
    check_dir("bad_world", 6, |name, text| World::parse(name, text).map(|_| ()));
}

/// The valid bases the bad cases were mutated from parse, so each bad case has one fault.
#[test]
fn the_bases_of_the_bad_cases_are_valid() {
    let text = std::fs::read_to_string(data_dir("good/world_mini.jsonl")).unwrap();
    let w = World::parse("world_mini.jsonl", &text).unwrap();
    assert_eq!(w.towns.len(), 2);
    assert_eq!(w.teams.len(), 2);
    let text = std::fs::read_to_string(data_dir("good/profiles_two.jsonl")).unwrap();
    let s = SeedSet::parse("profiles_two.jsonl", &text, world()).unwrap();
    assert_eq!(s.seeds.len(), 2);
}

#[test]
fn comments_and_blank_lines_are_skipped_but_counted() {
    let text = std::fs::read_to_string(data_dir("good/profiles_two.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    let padded = format!("# one\n\n   \n  # two, indented\n{}\n\n{}\n# trailing\n", lines[0], lines[1]);
    let s = SeedSet::parse("padded.jsonl", &padded, world()).unwrap();
    let at: Vec<usize> = s.seeds.iter().map(|s| s.line).collect();
    assert_eq!(at, [5, 7], "seed lines");
    let w = World::embedded().unwrap();
    let first = w.entities.first().unwrap();
    let file_line = w.source.lines().position(|l| l.contains(&format!("\"id\": \"{}\"", first.id))).unwrap() + 1;
    assert_eq!(first.line, file_line, "world entity line counts the header comment");
}

/// A chorus file given where another kind goes (a snapshot as a state or as events, a state
/// as a snapshot) is refused with what it is and the option that reads it.
#[test]
fn files_of_the_wrong_kind_are_named_and_pointed_to_their_option() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("p.snap");
    let state = dir.path().join("s.state");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl");
    let chorus = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chorus")).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let (ok, err) = chorus(&[&os("population"), &os("--users"), &os("2000"), &os("--out"), snap.as_os_str()]);
    assert!(ok, "{err}");
    let out = dir.path().join("t.jsonl");
    let run = |extra: &[&std::ffi::OsStr], events: &std::ffi::OsStr| {
        let mut a: Vec<&std::ffi::OsStr> = vec![std::ffi::OsStr::new("run"), std::ffi::OsStr::new("--events"), events];
        a.extend_from_slice(&[
            std::ffi::OsStr::new("--users"),
            std::ffi::OsStr::new("2000"),
            std::ffi::OsStr::new("-q"),
        ]);
        a.extend_from_slice(&[std::ffi::OsStr::new("--out"), out.as_os_str()]);
        a.extend_from_slice(extra);
        chorus(&a)
    };
    let (ok, err) = run(&[std::ffi::OsStr::new("--save-state"), state.as_os_str()], std::ffi::OsStr::new(demo));
    assert!(ok, "{err}");
    let timeline = dir.path().join("timeline.jsonl");
    std::fs::copy(&out, &timeline).unwrap();
    let (ok, err) = run(&[std::ffi::OsStr::new("--resume"), snap.as_os_str()], std::ffi::OsStr::new(demo));
    assert!(!ok && err.contains("population snapshot") && err.contains("--load"), "{err}");
    let (ok, err) = run(&[std::ffi::OsStr::new("--load"), state.as_os_str()], std::ffi::OsStr::new(demo));
    assert!(!ok && err.contains("user-state file") && err.contains("--resume"), "{err}");
    let (_, err) = run(&[], snap.as_os_str());
    assert!(err.contains("not event lines") && err.contains("population snapshot"), "{err}");
    assert_eq!(err.matches(": line ").count(), 1, "one error for the file, not one per line: {err}");
    assert!(err.contains("1 rejected"), "{err}");
    // Text files chorus writes: a timeline and an LLM recording given as events, events and a
    // state given as a recording.
    let (_, err) = run(&[], timeline.as_os_str());
    assert!(err.contains("not event lines") && err.contains("a chorus timeline"), "{err}");
    assert_eq!(err.matches(": line ").count(), 1, "one error for the file: {err}");
    let record = dir.path().join("r.jsonl");
    std::fs::write(&record, "{\"key\":\"ab\",\"status\":200,\"body\":\"{}\"}\n").unwrap();
    let (_, err) = run(&[], record.as_os_str());
    assert!(err.contains("not event lines") && err.contains("LLM recording") && err.contains("--replay"), "{err}");
    let (ok, err) = run(&[std::ffi::OsStr::new("--replay"), std::ffi::OsStr::new(demo)], std::ffi::OsStr::new(demo));
    assert!(
        !ok && err.contains("not an LLM recording") && err.contains("--events") && err.contains("demo.jsonl:1:"),
        "{err}"
    );
    let (ok, err) = run(&[std::ffi::OsStr::new("--replay"), state.as_os_str()], std::ffi::OsStr::new(demo));
    assert!(!ok && err.contains("not an LLM recording") && err.contains("user-state file"), "{err}");
}
