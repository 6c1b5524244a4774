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
/// rescue) VADER agrees with the sentiment each post was written with, for at least 80% of
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
