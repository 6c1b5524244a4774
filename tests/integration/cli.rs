//! The `chorus` binary: JSON output, snapshot save/load, and clean failures on bad input.

use crate::common::data_dir;
use std::path::Path;
use std::process::{Command, Output};

fn chorus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chorus")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the binary expecting success and one JSON line on stdout.
fn json_run(args: &[&str]) -> serde_json::Value {
    let o = chorus(args);
    assert!(o.status.success(), "chorus {args:?} failed: {}", stderr(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

/// Runs the binary expecting failure without a panic; returns stderr.
fn failing_run(args: &[&str]) -> String {
    let o = chorus(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "chorus {args:?} succeeded");
    assert!(!err.contains("panicked"), "chorus {args:?} panicked: {err}");
    err
}

#[test]
fn population_json_reports_stats_and_stages() {
    let v = json_run(&["population", "--users", "3000", "--seed", "1", "--json", "-q"]);
    assert_eq!(v["stats"]["users"], 3000);
    assert!(v["stats"]["edges"].as_u64().unwrap() > 3000);
    let stages = v["stages"].as_array().unwrap();
    assert!(!stages.is_empty());
    for s in stages {
        assert!(s["stage"].is_string() && s["seconds"].as_f64().unwrap() >= 0.0, "{s}");
    }
}

#[test]
fn a_saved_snapshot_loads_with_the_same_stats() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("p.snap");
    let snap_arg = snap.to_str().unwrap();
    let made = json_run(&["population", "--users", "3000", "--seed", "9", "--json", "-q", "--out", snap_arg]);
    assert_eq!(made["snapshot"], snap_arg);
    let loaded = json_run(&["population", "--load", snap_arg, "--json"]);
    assert_eq!(loaded["stats"]["edges"], made["stats"]["edges"]);
    // Statistics are a pure function of the population, so all of them survive the round trip.
    assert_eq!(loaded["stats"], made["stats"]);
}

/// Every bad seed (and world) fixture makes the binary fail with its file:line message.
fn bad_files_fail_cleanly(rel: &str, flag: &str) {
    let dir = data_dir(rel);
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        // The library names the file as given; the CLI passes the path through.
        let expected = expected.trim_end().replacen(name, path.to_str().unwrap(), 1);
        let err = failing_run(&["population", "--users", "100", flag, path.to_str().unwrap(), "--json"]);
        assert!(err.contains(&expected), "{name}: stderr lacks {expected:?}:\n{err}");
        ran += 1;
    }
    assert!(ran > 0, "no cases in {}", dir.display());
}

#[test]
fn bad_seed_files_fail_with_file_and_line() {
    bad_files_fail_cleanly("bad_seeds", "--seeds");
}

#[test]
fn bad_world_files_fail_with_file_and_line() {
    bad_files_fail_cleanly("bad_world", "--world");
}

#[test]
fn a_missing_seed_file_is_named() {
    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/no-such-file.jsonl");
    let err = failing_run(&["population", "--seeds", missing.to_str().unwrap()]);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
}

#[test]
fn bad_graph_configurations_fail_clearly() {
    let err = failing_run(&["population", "--users", "100", "--graph", r#"{"bogus": 1}"#]);
    assert!(err.contains("--graph") && err.contains("bogus"), "{err}");
    let err = failing_run(&["population", "--users", "100", "--graph", "not json"]);
    assert!(err.contains("--graph"), "{err}");
    let err = failing_run(&["population", "--users", "100", "--graph", r#"{"circle_min": 1}"#]);
    assert!(err.contains("invalid configuration") && err.contains("circle_min"), "{err}");
    let err = failing_run(&["population", "--users", "1"]);
    assert!(err.contains("invalid configuration"), "{err}");
    let err = failing_run(&["population", "--users", "100", "--graph", r#"{"follows_max": 0}"#]);
    assert!(err.contains("invalid configuration") && err.contains("follows_max"), "{err}");
    let err = failing_run(&["population", "--users", "100", "--graph", r#"{"popularity_skew": 4.2}"#]);
    assert!(err.contains("popularity_skew"), "{err}");
}
