//! Independent judges: tools nobody on the team wrote check what the engine writes.
//! `scripts/judge-env.sh` installs them from PyPI into `target/judge-env` on first use.

use std::process::Command;

/// The judge environment's python.
fn judge_python() -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/judge-env.sh"))
        .output()
        .expect("scripts/judge-env.sh runs");
    assert!(
        out.status.success(),
        "scripts/judge-env.sh failed (it needs python3 -m venv and PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Sentiment follows stance: on clearly polar events (a team wins, a team loses, a flood, a
/// rescue) VADER agrees with the sentiment each post was written with, for at least 90% of
/// the polar posts (winners' fans positive, rivals negative).
#[test]
fn vader_agrees_with_the_stance_of_polar_posts() {
    let python = judge_python();
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/judges/vader_agreement.py"))
        .arg(env!("CARGO_BIN_EXE_chorus"))
        .args(["--users", "200000"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs the grounding judge (all-MiniLM-L6-v2, from PyPI, run in numpy) on an events file at
/// 200k users with the given thresholds; its report goes to standard error.
fn grounding(events: &str, thresholds: &[(&str, &str)]) {
    let python = judge_python();
    let mut cmd = Command::new(python);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/judges/grounding.py"))
        .arg(env!("CARGO_BIN_EXE_chorus"))
        .arg(format!("{}/{events}", env!("CARGO_MANIFEST_DIR")))
        .args(["--users", "200000"]);
    for (flag, value) in thresholds {
        cmd.args([flag, value]);
    }
    let out = cmd.output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Posts know their event: on the held-out labelled headlines (not tuned on), an off-the-shelf
/// sentence-embedding model finds the event of a root post or quote from its text alone (top-1
/// >= 0.60, top-5 >= 0.80) and of a reply within the top 5 (>= 0.40), among all the run's events.
#[test]
fn the_grounding_judge_finds_the_event_of_held_out_posts() {
    grounding(
        "tests/data/events/headlines_test.jsonl",
        &[("--min-root-top1", "0.60"), ("--min-root-top5", "0.80"), ("--min-reply-top5", "0.40")],
    );
}

/// The same bar on the shipped demo events.
#[test]
fn the_grounding_judge_finds_the_event_of_demo_posts() {
    grounding(
        "examples/events/demo.jsonl",
        &[("--min-root-top1", "0.60"), ("--min-root-top5", "0.80"), ("--min-reply-top5", "0.40")],
    );
}
