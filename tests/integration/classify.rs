//! Event classification: accuracy on the team's labelled events, hints, and bad input.

use crate::common::{data_dir, world};
use chorus::classify::{split_label, Accuracy, Classifier};
use chorus::events::{parse_event, parse_events, Category, Impact, Valence};
use std::process::Command;

fn classifier() -> Classifier {
    Classifier::embedded(world()).unwrap()
}

fn labelled() -> Vec<(chorus::classify::Classification, chorus::classify::Label)> {
    let text = std::fs::read_to_string(data_dir("events/labelled.jsonl")).unwrap();
    let c = classifier();
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (json, label) = split_label(line).unwrap();
        let event = parse_event(i + 1, &json).unwrap_or_else(|e| panic!("labelled line {}: {e}", i + 1));
        pairs.push((c.classify(&event, i + 1).unwrap(), label.unwrap()));
    }
    pairs
}

#[test]
fn labelled_events_are_classified_accurately() {
    let pairs = labelled();
    assert!(pairs.len() >= 200, "the labelled set needs at least 200 events, has {}", pairs.len());
    let acc = Accuracy::score(world(), &pairs);
    eprintln!("{acc}");
    for (name, n, _) in &acc.per_category {
        assert!(*n >= 10, "category {name} has only {n} labelled events");
    }
    assert!(acc.category >= 0.80, "category accuracy {:.3}\n{acc}", acc.category);
    assert!(acc.valence >= 0.70, "valence accuracy {:.3}\n{acc}", acc.valence);
    assert!(acc.stakeholder_recall >= 0.80, "stakeholder recall {:.3}\n{acc}", acc.stakeholder_recall);
}

#[test]
fn hints_override_and_resolve_names() {
    let c = classifier();
    let e = parse_event(
        1,
        r#"{"id": "h1", "time": 0, "text": "Something happened downtown", "category": "crime", "impact": "global",
            "valence": "negative", "intensity": 0.9, "stakeholders": ["Redhawks"], "priority": "high"}"#,
    )
    .unwrap();
    let k = c.classify(&e, 1).unwrap();
    assert_eq!(
        (k.category, k.impact, k.valence, k.intensity),
        (Category::Crime, Impact::Global, Valence::Negative, 0.9)
    );
    assert_eq!(k.stakeholders, vec!["redhawks".to_string()]);
}

#[test]
fn polar_events_get_the_expected_direction() {
    let c = classifier();
    let cases = [
        ("The Redhawks win the championship in a thrilling overtime victory", Valence::Positive, Category::Sports),
        ("Massive earthquake destroys hundreds of homes, dozens feared dead", Valence::Negative, Category::Disaster),
    ];
    for (k, (text, valence, category)) in cases.into_iter().enumerate() {
        let e = parse_event(k + 1, &serde_json::json!({"id": format!("p{k}"), "time": k, "text": text}).to_string())
            .unwrap();
        let got = c.classify(&e, k + 1).unwrap();
        assert_eq!((got.valence, got.category), (valence, category), "{text}: {got:?}");
    }
}

#[test]
fn bad_events_become_records_naming_the_event_and_the_rest_are_classified() {
    let c = classifier();
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"id": "ok1", "time": 0, "text": "The Redhawks win the final"}"#);
    input.extend_from_slice(b"\n{\"id\": \"bad-json\", \"time\": \n");
    input.extend_from_slice(br#"{"id": "unknown-field", "time": 0, "text": "x", "colour": "red"}"#);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(br#"{"id": "empty", "time": 0, "text": "   "}"#);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(format!(r#"{{"id": "huge", "time": 0, "text": "{}"}}"#, "x".repeat(100 * 1024)).as_bytes());
    input.extend_from_slice(b"\n{\"id\": \"utf8\", \"time\": 0, \"text\": \"caf\xe9\"}\n");
    input.extend_from_slice(
        br#"{"id": "template", "time": 0, "text": "{{#each users}}{{this}}{{/each}} {{> partial}} wins"}"#,
    );
    input.extend_from_slice(b"\n");
    input.extend_from_slice(br#"{"id": "who", "time": 0, "text": "A match", "stakeholders": ["Atlantis FC"]}"#);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(br#"{"id": "ok2", "time": 5, "text": "The mayor resigns after the scandal"}"#);
    let results: Vec<_> =
        parse_events(&input).into_iter().map(|r| r.and_then(|e| c.classify(&e, 0).map(|k| k.id))).collect();
    let ok: Vec<String> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    assert_eq!(ok, vec!["ok1", "template", "ok2"]);
    let errors: Vec<(Option<String>, String)> =
        results.iter().filter_map(|r| r.as_ref().err()).map(|e| (e.id.clone(), e.field.clone())).collect();
    assert_eq!(
        errors,
        vec![
            (None, "-".into()),
            (Some("unknown-field".into()), "colour".into()),
            (Some("empty".into()), "text".into()),
            (Some("huge".into()), "-".into()),
            (None, "-".into()),
            (Some("who".into()), "stakeholders[0]".into()),
        ]
    );
}

#[test]
fn cli_prints_one_line_per_event_and_fails_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"time\": 0, \"text\": \"The Redhawks win the final\"}\n{\"id\": \"b\", \"time\": 1}\n{\"id\": \"c\", \"time\": 2, \"text\": \"Heavy rain floods the coast\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chorus")).args(["classify", "--events"]).arg(&path).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["category"], "sports");
    assert_eq!(lines[1]["id"], "b");
    assert!(lines[1]["error"].as_str().unwrap().contains("text"), "{stdout}");
    assert_eq!(lines[2]["id"], "c");
    assert!(!out.status.success());
    assert!(stderr.contains("1 of 3 events") && !stderr.contains("panicked"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["classify", "--labels", "--events"])
        .arg(data_dir("events/labelled.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success() && stderr.contains("overall:"), "{stderr}");
}
