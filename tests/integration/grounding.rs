//! Posts that know their event: frames (extraction on the held-out labelled headlines, typed
//! frames from the game), the fact checker over every post of the labelled events, emoji that
//! fit, and templates that always name the event.
//!
//! Held-out discipline: `tests/data/events/headlines_tune.jsonl` (with `headlines_tune_b` and
//! `headlines_tune_c`, written later by sessions that never read the test part) is what the lexicons and
//! templates were tuned on; the figures asserted here are on `headlines_test.jsonl`, which was
//! written alongside it and not tuned on.

use crate::common::{data_dir, generate, world};
use chorus::check::{FactChecker, Violation};
use chorus::classify::{split_label, Accuracy, Classification, Classifier, Label};
use chorus::engine::Pipeline;
use chorus::events::{parse_event, GameEvent};
use chorus::templates::{Sentiment, Templates, Tone};
use chorus::timeline::PostKind;

/// The events of a labelled file with their labels.
fn labelled(file: &str) -> Vec<(usize, GameEvent, Label)> {
    let text = std::fs::read_to_string(data_dir(&format!("events/{file}"))).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (json, label) = split_label(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
        let event = parse_event(i + 1, &json).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
        out.push((i + 1, event, label.unwrap()));
    }
    out
}

fn scored(file: &str) -> Accuracy {
    let c = Classifier::embedded(world()).unwrap();
    let pairs: Vec<(Classification, Label)> =
        labelled(file).into_iter().map(|(line, e, l)| (c.classify(&e, line).unwrap(), l)).collect();
    Accuracy::score(world(), &pairs)
}

/// On the held-out headlines, a floor under what the classifier measures there (BENCHMARKS.md):
/// category 92.7%, valence 83.6%, frame kind 80.0%, main roles (winner, loser, actor) 82.0%
/// exact. The issue's valence target (85%) is not met yet; this guards against falling back.
#[test]
fn held_out_headlines_are_classified_and_framed() {
    for file in ["headlines_tune.jsonl", "headlines_tune_b.jsonl", "headlines_tune_c.jsonl"] {
        eprintln!("{file} (tuned on):\n{}", scored(file));
    }
    let acc = scored("headlines_test.jsonl");
    eprintln!("held-out part:\n{acc}");
    assert!(acc.events >= 100 && acc.framed == acc.events, "{acc}");
    assert!(acc.category >= 0.90, "category {:.3}\n{acc}", acc.category);
    assert!(acc.valence >= 0.82, "valence {:.3}\n{acc}", acc.valence);
    assert!(acc.frame_kind >= 0.80, "frame kind {:.3}\n{acc}", acc.frame_kind);
    assert!(acc.main_role_exact >= 0.80, "main roles {:.3}\n{acc}", acc.main_role_exact);
}

/// A typed frame from the game overrides extraction; a bad one (unknown kind, a role naming
/// nothing, a score that does not parse) is an error record naming the field, and the other
/// events go on.
#[test]
fn typed_frames_override_and_bad_ones_are_error_records() {
    let c = Classifier::embedded(world()).unwrap();
    let event = |json: &str| parse_event(1, json).unwrap();
    let good = event(
        r#"{"id": "g1", "time": 0, "text": "What a night at the arena",
            "frame": {"kind": "win", "winner": "redhawks", "loser": "Ironclads", "score": "102 - 99"}}"#,
    );
    let k = c.classify(&good, 1).unwrap();
    assert_eq!(k.category, chorus::events::Category::Sports, "the kind implies the category");
    assert_eq!(k.frame.kind.name(), "win");
    assert!(k.frame.given);
    assert_eq!(k.frame.role(chorus::frame::RoleName::Winner).and_then(|r| r.id.as_deref()), Some("redhawks"));
    assert_eq!(k.frame.score.as_deref(), Some("102-99"));
    assert!(k.stakeholders.contains(&"ironclads".to_string()), "frame entities are stakeholders");
    // The loser's fans see the win as a loss.
    let at = |id: &str| k.stakeholders.iter().position(|s| s == id).unwrap();
    assert_eq!((k.sides[at("redhawks")], k.sides[at("ironclads")]), (1, -1));
    let cases = [
        (r#""frame": {"kind": "fly"}"#, "frame.kind", "\"fly\" is not a sports kind"),
        (r#""frame": {"kind": "win", "winner": "Narnia"}"#, "frame.winner", "names no world entity"),
        (r#""frame": {"kind": "win", "score": "three-nil"}"#, "frame.score", "is not a score"),
        (r#""frame": {"numbers": [{"text": "5", "meaning": "lots"}]}"#, "frame.numbers[0].meaning", "is not money"),
    ];
    for (frame, field, msg) in cases {
        let e = event(&format!(r#"{{"id": "b1", "time": 0, "text": "Redhawks win the final", {frame}}}"#));
        let err = c.classify(&e, 7).unwrap_err();
        assert_eq!((err.line, err.id.as_deref(), err.field.as_str()), (7, Some("b1"), field), "{err}");
        assert!(err.error.contains(msg), "{err}");
    }
    let unknown = parse_event(1, r#"{"id": "b2", "time": 0, "text": "x y", "frame": {"kind": "win", "mvp": "Gus"}}"#);
    let err = unknown.unwrap_err();
    assert!(err.field.starts_with("frame") && err.error.contains("unknown field"), "{err}");
    // In a run, the bad event is rejected and the others still post.
    let mut pipeline = Pipeline::new(generate(5_000, 3)).unwrap();
    let bad = event(r#"{"id": "b3", "time": 100, "text": "Redhawks win the final", "frame": {"kind": "fly"}}"#);
    assert_eq!(pipeline.process(&bad, 0, 1).unwrap_err().field, "frame.kind");
    let (posts, _) = pipeline.process(&good, 1, 2).unwrap();
    assert!(posts.iter().any(|p| p.text.as_deref().is_some_and(|t| t.contains("99"))), "the score is used");
}

/// Over every labelled event (the team's set and both headline parts) at 200k users, no post
/// states a fact its event lacks (a foreign name, a number, a claim word without evidence),
/// at most 0.5% of negative posts carry a positive-only emoji, and at most 1% are filler that
/// names nothing of the event (no subject, frame fact or word of the headline).
#[test]
fn no_post_fails_the_fact_checker_over_the_labelled_events() {
    let classifier = Classifier::embedded(world()).unwrap();
    let checker = FactChecker::embedded().unwrap();
    let templates = Templates::embedded().unwrap();
    let happy_emoji = templates.emoji_with(Tone::Positive);
    assert!(happy_emoji.len() >= 12, "the emoji table has positive emoji");
    let population = generate(200_000, 11);
    let mut pipeline = Pipeline::new(population.clone()).unwrap();
    let (mut checked, mut failed, mut negative, mut happy_on_negative) = (0usize, Vec::new(), 0usize, 0usize);
    let (mut unnamed, mut unnamed_examples) = (0usize, Vec::new());
    let mut index = 0;
    for file in ["labelled.jsonl", "headlines_tune.jsonl", "headlines_test.jsonl"] {
        for (line, event, _) in labelled(file) {
            let class = classifier.classify(&event, line).unwrap();
            // What names the event: its subject, the frame's facts, the headline's content words.
            let names = chorus::actions::names(&population, &event, &class);
            let mut marks: Vec<String> =
                names.facts.values.iter().filter(|v| !v.is_empty()).map(|v| v.to_lowercase()).collect();
            marks.push(names.subject.to_lowercase());
            marks.extend(chorus::classify::tokenize(&event.text).into_iter().filter(|w| w.len() >= 5));
            let (posts, _) = pipeline.process(&event, index, line).unwrap();
            index += 1;
            for p in posts.iter().filter(|p| matches!(p.kind, PostKind::Post | PostKind::Reply | PostKind::Quote)) {
                let Some(text) = &p.text else { continue };
                checked += 1;
                let lower = text.to_lowercase();
                if !marks.iter().any(|m| m != "this" && lower.contains(m.as_str())) {
                    unnamed += 1;
                    if unnamed_examples.len() < 20 {
                        unnamed_examples.push(format!("{}: {text:?}", event.id));
                    }
                }
                let v = checker.check(&classifier, &population, p.author, &class, &event.text, text);
                if !v.is_empty() && failed.len() < 2_000 {
                    failed.push(format!("{file}:{line} {}: {text:?}: {}", event.id, list(&v)));
                }
                if p.sentiment == Sentiment::Negative {
                    negative += 1;
                    let happy = happy_emoji.iter().any(|e| text.contains(e));
                    happy_on_negative += happy as usize;
                }
            }
        }
    }
    assert!(checked > 20_000, "only {checked} posts checked");
    let share = happy_on_negative as f64 / negative.max(1) as f64;
    eprintln!("{checked} posts checked, {} failed; {happy_on_negative} of {negative} negative posts with a positive-only emoji ({:.2}%)", failed.len(), share * 100.0);
    assert!(
        failed.is_empty(),
        "{} posts fail the fact checker:\n{}",
        failed.len(),
        failed[..failed.len().min(150)].join("\n")
    );
    assert!(share <= 0.005, "{:.2}% of negative posts carry a positive-only emoji", share * 100.0);
    // Filler: a post that names nothing of its event (no subject, fact or headline word).
    let filler = unnamed as f64 / checked as f64;
    eprintln!(
        "{unnamed} posts ({:.2}%) name nothing of their event, e.g.\n{}",
        filler * 100.0,
        unnamed_examples.join("\n")
    );
    assert!(filler <= 0.01, "{:.2}% of posts name nothing of their event", filler * 100.0);
}

fn list(v: &[Violation]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; ")
}
