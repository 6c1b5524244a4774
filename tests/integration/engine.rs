//! The channel API: back-pressure, the game clock, and agreement with `chorus run`.

use crate::common::generate;
use chorus::engine::{Engine, Input, Output};
use chorus::events::{parse_event, GameTime};
use crossbeam_channel::TrySendError;
use std::process::Command;

const EVENTS: [&str; 3] = [
    r#"{"id": "k1", "time": 600, "text": "The Harbor City Redhawks win the championship final in overtime"}"#,
    r#"{"id": "k2", "time": 4000, "text": "The mayor resigns after the budget scandal"}"#,
    r#"{"id": "k3", "time": 9000, "text": "Heavy storms flood the coast road near Cedar Bay"}"#,
];

#[test]
fn a_full_channel_pushes_back_and_returns_the_input() {
    let engine = Engine::start(generate(3_000, 3), 2).unwrap();
    // Nobody reads the timeline: once it is full the engine stops taking input.
    let mut returned = None;
    for t in 0..10_000 {
        match engine.events().try_send(Input::Tick(GameTime(t))) {
            Ok(()) => {}
            Err(TrySendError::Full(input)) => {
                returned = Some((t, input));
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (t, input) = returned.expect("the channel never filled");
    assert!(t < 100, "accepted {t} inputs with capacity 2");
    assert!(matches!(input, Input::Tick(GameTime(x)) if x == t), "the rejected input comes back");
    engine.shutdown();
}

#[test]
fn posts_wait_for_the_clock_and_match_chorus_run() {
    let users = 20_000;
    let engine = Engine::start(generate(users, 9), 1024).unwrap();
    for e in EVENTS {
        engine.events().send(Input::Event(parse_event(1, e).unwrap())).unwrap();
    }
    // Before the first event's reactions are due, the clock releases nothing.
    engine.events().send(Input::Tick(GameTime(600))).unwrap();
    match engine.timeline().recv().unwrap() {
        Output::Clock(GameTime(600)) => {}
        other => panic!("expected only the clock, got {other:?}"),
    }
    engine.events().send(Input::Tick(GameTime(1_000_000))).unwrap();
    let mut lines = Vec::new();
    loop {
        match engine.timeline().recv().unwrap() {
            Output::Post(p) => lines.push(serde_json::to_string(&p).unwrap()),
            Output::Clock(_) => break,
            Output::Rejected(e) => panic!("{e}"),
        }
    }
    engine.shutdown();
    assert!(lines.len() > 20, "{} posts", lines.len());

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.jsonl");
    std::fs::write(&events, EVENTS.join("\n") + "\n").unwrap();
    let out = dir.path().join("t.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--users", &users.to_string(), "--seed", "9", "-q", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let expected: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
    assert_eq!(lines, expected, "the engine and chorus run give the same timeline");
}

#[test]
fn bad_events_come_back_as_records() {
    let engine = Engine::start(generate(2_000, 1), 16).unwrap();
    let mut bad = parse_event(1, EVENTS[0]).unwrap();
    bad.id = "empty".into();
    bad.text = "   ".into();
    engine.events().send(Input::Event(bad)).unwrap();
    match engine.timeline().recv().unwrap() {
        Output::Rejected(e) => assert_eq!((e.id.as_deref(), e.field.as_str()), (Some("empty"), "text")),
        other => panic!("{other:?}"),
    }
    engine.shutdown();
}

#[cfg(feature = "async")]
#[test]
fn the_async_engine_gives_the_same_timeline_and_pushes_back() {
    use chorus::engine::AsyncEngine;
    let collect_sync = {
        let engine = Engine::start(generate(5_000, 4), 1024).unwrap();
        for e in EVENTS {
            engine.events().send(Input::Event(parse_event(1, e).unwrap())).unwrap();
        }
        engine.events().send(Input::Tick(GameTime(1_000_000))).unwrap();
        let mut out = Vec::new();
        while let Output::Post(p) = engine.timeline().recv().unwrap() {
            out.push(serde_json::to_string(&p).unwrap());
        }
        engine.shutdown();
        out
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut engine = AsyncEngine::start(generate(5_000, 4), 1024).unwrap();
    let collect_async = rt.block_on(async {
        for e in EVENTS {
            engine.events().send(Input::Event(parse_event(1, e).unwrap())).await.unwrap();
        }
        engine.events().send(Input::Tick(GameTime(1_000_000))).await.unwrap();
        let mut out = Vec::new();
        while let Some(Output::Post(p)) = engine.timeline().recv().await {
            out.push(serde_json::to_string(&p).unwrap());
        }
        out
    });
    assert!(!collect_sync.is_empty());
    assert_eq!(collect_async, collect_sync);
    engine.shutdown();

    // Back-pressure: nobody reads, so try_send eventually hands the input back.
    let engine = AsyncEngine::start(generate(2_000, 4), 2).unwrap();
    let mut returned = None;
    for t in 0..100_000 {
        match engine.events().try_send(Input::Tick(GameTime(t))) {
            Ok(()) => std::thread::yield_now(),
            Err(tokio::sync::mpsc::error::TrySendError::Full(input)) => {
                returned = Some(input);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(returned, Some(Input::Tick(_))), "a full channel returns the input");
    engine.shutdown();
}
