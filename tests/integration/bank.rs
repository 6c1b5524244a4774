//! Phrase banks, the cache key, structured-output dialects and replays that refuse to lie,
//! against the fake OpenAI-shaped server of `llm.rs` (real sockets) and scripted transports.

use crate::common;
use crate::llm::{fake_server, Fault, SECRET};
use chorus::budget::BudgetConfig;
use chorus::engine::Pipeline;
use chorus::events::{parse_event, GameEvent};
use chorus::llm::bank::{BankConfig, BankRequest};
use chorus::llm::client::{ClientConfig, Exchange, Http, Recorder, Replay, RunMeta, Transport};
use chorus::llm::gate::Gate;
use chorus::llm::route::{Item, Router, RoutingConfig};
use chorus::llm::wire::Dialect;
use chorus::llm::{Llm, LlmConfig, Outcome};
use chorus::timeline::{Post, Source};
use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

const FINAL: &str =
    r#"{"id": "final", "time": 600, "text": "The Harbor City Redhawks beat the Ironclads 3-1 in the cup final"}"#;
const QUAKE: &str =
    r#"{"id": "quake", "time": 4200, "text": "A strong earthquake shakes Northgate overnight, damaging bridges"}"#;
const MINOR: &str =
    r#"{"id": "minor", "time": 7800, "text": "Northgate library extends its opening hours on weekends"}"#;

struct Run {
    pipeline: Pipeline,
    events: Vec<(GameEvent, Vec<Post>)>,
}

/// One pipeline of 20k users that played the three events.
fn played() -> &'static Run {
    static R: OnceLock<Run> = OnceLock::new();
    R.get_or_init(|| {
        let mut pipeline = Pipeline::new(common::generate(20_000, 77)).unwrap();
        let mut events = Vec::new();
        for (i, line) in [FINAL, QUAKE, MINOR].iter().enumerate() {
            let ev = parse_event(i + 1, line).unwrap();
            let (posts, _) = pipeline.process(&ev, i as u32, i + 1).unwrap();
            events.push((ev, posts));
        }
        Run { pipeline, events }
    })
}

fn banks(run: &Run, config: &BankConfig) -> Vec<BankRequest> {
    let router = Router::new(run.pipeline.population(), RoutingConfig::default());
    run.events
        .iter()
        .enumerate()
        .filter_map(|(i, (ev, posts))| {
            let class = run.pipeline.classifier().classify(ev, i + 1).unwrap();
            router.bank(run.pipeline.population(), config, ev, &class, i as u32, posts)
        })
        .collect()
}

fn fake_llm(url: &str, per_day: u64, dialect: Dialect) -> Llm {
    let client = ClientConfig {
        url: url.into(),
        key: Some(SECRET.into()),
        timeout_ms: 2_000,
        backoff_ms: 10,
        max_retries: 2,
        ..ClientConfig::default()
    };
    let budget = BudgetConfig { per_day, ..BudgetConfig::default() };
    let config = LlmConfig { client: client.clone(), budget, dialect, ..LlmConfig::default() };
    let gate = Gate::embedded(played().pipeline.classifier().clone()).unwrap();
    Llm::new(config, Box::new(Http::new(&client).unwrap())).unwrap().with_gate(gate)
}

fn posts_of(run: &Run) -> std::collections::HashMap<chorus::timeline::PostId, &Post> {
    run.events.iter().flat_map(|(_, p)| p.iter()).map(|p| (p.id, p)).collect()
}

#[test]
fn banks_are_asked_once_per_event_and_fill_many_posts_in_the_openai_shape() {
    let run = played();
    let requests = banks(run, &BankConfig::default());
    assert!(requests.len() >= 2, "the final and the quake call for banks: {}", requests.len());
    let server = fake_server(vec![Fault::Ok]);
    let llm = fake_llm(&server.url, 50_000, Dialect::Openai);
    let outcomes = llm.write_banks(requests.clone(), run.pipeline.population(), run.pipeline.templates());
    let report = llm.report();
    // One request per bank, each asking for a phrase bank by JSON schema, never a grammar.
    assert_eq!(server.requests.load(Ordering::SeqCst), requests.len());
    for (body, auth) in server.seen.lock().unwrap().iter() {
        let req: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(req["response_format"]["json_schema"]["name"], "phrase_bank", "{body}");
        assert!(req.get("grammar").is_none());
        assert!(!body.contains(SECRET));
        assert!(auth.to_ascii_lowercase().contains(&SECRET.to_ascii_lowercase()));
        // The frame's facts are in the prompt.
        let prompt = req["messages"][0]["content"].as_str().unwrap();
        assert!(prompt.contains("Facts you may name"), "{prompt}");
    }
    assert!(!outcomes.is_empty());
    let by_id = posts_of(run);
    let mut ids = HashSet::new();
    for o in &outcomes {
        assert_eq!(o.source, Source::Bank);
        assert!(ids.insert(o.post), "one outcome per post");
        let p = by_id[&o.post];
        assert!(matches!(p.kind, chorus::timeline::PostKind::Post | chorus::timeline::PostKind::Quote));
        // The line is about its own event (the fake writes the event's last word into it).
        let (ev, _) = run.events.iter().find(|(_, ps)| ps.iter().any(|q| q.id == o.post)).unwrap();
        let marker = ev.text.split_whitespace().last().unwrap().to_lowercase();
        assert!(o.text.to_lowercase().contains(&marker), "{} for {}", o.text, ev.id);
        assert!(o.text.chars().count() <= chorus::llm::prompt::MAX_CHARS);
    }
    assert_eq!(report.banks.posts as usize, outcomes.len());
    assert_eq!(report.banks.written as usize, requests.len());
    assert!(report.budget.spent_total <= 50_000 && report.budget.overruns == 0 && report.budget.reserved == 0);
    // Dozens of posts per request: far more than one post per call.
    assert!(outcomes.len() >= 10 * requests.len(), "{} posts from {} requests", outcomes.len(), requests.len());
    // The ledger has a planned and a spent figure for each bank.
    let banked: Vec<_> = report.ledger.iter().filter(|r| r.kind == "bank").collect();
    assert_eq!(banked.len(), requests.len());
    assert!(banked.iter().all(|r| r.ledger.planned >= r.ledger.spent && r.ledger.spent > 0));
}

#[test]
fn the_llamacpp_dialect_asks_for_a_grammar_instead() {
    let run = played();
    let requests = banks(run, &BankConfig::default());
    let server = fake_server(vec![Fault::Ok]);
    let llm = fake_llm(&server.url, 50_000, Dialect::Llamacpp);
    let outcomes = llm.write_banks(requests, run.pipeline.population(), run.pipeline.templates());
    assert!(!outcomes.is_empty());
    for (body, _) in server.seen.lock().unwrap().iter() {
        let req: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(req["grammar"].as_str().unwrap().contains("lines"));
        assert!(req.get("response_format").is_none());
    }
}

/// A transport that answers banks with the fake's lines and charges every request about its
/// whole reservation (half a token per prompt byte, the completion cap used up): the budget
/// binds as it would.
struct Costly {
    prompts: std::sync::Mutex<Vec<String>>,
}

impl Transport for Costly {
    fn send(&self, body: &str, _attempt: u32) -> Exchange {
        let req: serde_json::Value = serde_json::from_str(body).unwrap();
        let prompt = req["messages"][0]["content"].as_str().unwrap().to_string();
        let (groups, bank) = crate::llm::request_shape(&req);
        assert!(bank);
        let content = crate::llm::bank_answer(groups, &crate::llm::event_marker(&req));
        // Half a token per byte: what the stage reserves before it has seen any usage.
        let (p, c) = (prompt.len() as u64 / 2, req["max_tokens"].as_u64().unwrap());
        self.prompts.lock().unwrap().push(prompt);
        let b = serde_json::json!({"choices": [{"message": {"content": content}}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}});
        Exchange { status: 200, retry_after_ms: None, body: b.to_string() }
    }
    fn live(&self) -> bool {
        false
    }
}

#[test]
fn the_most_important_event_gets_its_bank_first_when_the_budget_is_short() {
    let run = played();
    let mut requests = banks(run, &BankConfig::default());
    assert!(requests.len() >= 2);
    // Reverse the input order: the stage must still order by impact x audience.
    requests.reverse();
    let mut by_importance = requests.clone();
    by_importance.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    let order: Vec<String> = by_importance.iter().map(|r| r.event.text.clone()).collect();
    // A large budget: every bank, most important first.
    let costly = std::sync::Arc::new(Costly { prompts: Default::default() });
    struct Shared(std::sync::Arc<Costly>);
    impl Transport for Shared {
        fn send(&self, body: &str, attempt: u32) -> Exchange {
            self.0.send(body, attempt)
        }
        fn live(&self) -> bool {
            false
        }
    }
    let gate = || Gate::embedded(run.pipeline.classifier().clone()).unwrap();
    let config =
        |per_day| LlmConfig { budget: BudgetConfig { per_day, ..BudgetConfig::default() }, ..LlmConfig::default() };
    let llm = Llm::new(config(100_000), Box::new(Shared(costly.clone()))).unwrap().with_gate(gate());
    llm.write_banks(requests.clone(), run.pipeline.population(), run.pipeline.templates());
    let asked: Vec<String> = costly.prompts.lock().unwrap().clone();
    assert_eq!(asked.len(), order.len());
    for (prompt, text) in asked.iter().zip(&order) {
        assert!(prompt.contains(text.as_str()), "banks are asked in order of impact x audience");
    }
    // A budget for one bank: the most important event gets it, the other is skipped.
    let costly = std::sync::Arc::new(Costly { prompts: Default::default() });
    let llm = Llm::new(config(2_400), Box::new(Shared(costly.clone()))).unwrap().with_gate(gate());
    let outcomes = llm.write_banks(requests.clone(), run.pipeline.population(), run.pipeline.templates());
    let report = llm.report();
    assert_eq!(report.banks.written, 1, "{:?}", report.banks);
    assert!(report.banks.skipped_for_budget >= 1, "{:?}", report.banks);
    assert!(costly.prompts.lock().unwrap()[0].contains(order[0].as_str()));
    assert!(!outcomes.is_empty());
    // The bank shrank to fit: most of the day's bank share is spent (a bank grows a line per
    // group at a time, 40 tokens each), never more.
    let cap = (2_400.0 * BankConfig::default().day_share) as u64;
    assert!(report.budget.spent_total <= cap && report.budget.spent_total * 10 >= cap * 8, "{:?}", report.budget);
    assert_eq!(report.budget.overruns, 0);
}

#[test]
fn gated_lines_are_refused_and_counted() {
    let run = played();
    let requests = banks(run, &BankConfig::default());
    let final_bank = requests.iter().find(|r| r.event.id == "final").unwrap().clone();
    // A transport answering with lines the gate must refuse, and one good line.
    struct Bad;
    impl Transport for Bad {
        fn send(&self, body: &str, _attempt: u32) -> Exchange {
            let req: serde_json::Value = serde_json::from_str(body).unwrap();
            let (groups, _) = crate::llm::request_shape(&req);
            let lines = [
                "Check out http://spam.example for tickets", // banned: link
                "Los Redhawks ganaron la final esta noche",  // language
                "Redhawks won 5-0 after a late comeback",    // facts: score and claim
                "Even France would have loved this night",   // a name the event lacks
                "The Harbor City Redhawks beat the Ironclads 3-1 in the cup final", // copy of the event
                "what a night for the Redhawks, so proud of them", // good
            ];
            let content: String = (1..=groups)
                .map(|g| format!("{{\"id\": {g}, \"lines\": {}}}\n", serde_json::to_string(&lines).unwrap()))
                .collect();
            let b = serde_json::json!({"choices": [{"message": {"content": content}}],
                "usage": {"prompt_tokens": 300, "completion_tokens": 200, "total_tokens": 500}});
            Exchange { status: 200, retry_after_ms: None, body: b.to_string() }
        }
        fn live(&self) -> bool {
            false
        }
    }
    // No second round: each line is counted once.
    let config = LlmConfig {
        budget: BudgetConfig { per_day: 50_000, ..BudgetConfig::default() },
        banks: BankConfig { retries: 0, ..BankConfig::default() },
        ..LlmConfig::default()
    };
    let gate = Gate::embedded(run.pipeline.classifier().clone()).unwrap();
    let llm = Llm::new(config, Box::new(Bad)).unwrap().with_gate(gate);
    let outcomes = llm.write_banks(vec![final_bank.clone()], run.pipeline.population(), run.pipeline.templates());
    let r = llm.report();
    let groups = final_bank.groups.len().min(BankConfig::default().max_groups) as u64;
    assert_eq!(r.gate.banned, groups, "{:?}", r.gate);
    assert_eq!(r.gate.language, groups, "{:?}", r.gate);
    assert_eq!(r.gate.facts, 2 * groups, "{:?}", r.gate);
    assert_eq!(r.gate.format, groups, "{:?}", r.gate);
    assert_eq!(r.gate.passed, groups, "{:?}", r.gate);
    // The same good line in every group (all of one feeling, the winner's fans): once per group.
    assert!(
        final_bank.groups.iter().take(groups as usize).all(|g| g.sentiment == final_bank.groups[0].sentiment)
            || r.banks.lines < groups
    );
    assert!(r.banks.lines >= 1 && r.banks.lines <= groups, "{:?}", r.banks);
    assert!(!outcomes.is_empty());
    assert!(outcomes
        .iter()
        .all(|o| o.text.to_lowercase().contains("redhawks") && o.text.to_lowercase().contains("proud")));
    assert!(outcomes.len() as u64 <= r.banks.lines * BankConfig::default().max_uses as u64);
}

/// Items of two events with the same persona mix (the same users answer both).
fn two_event_items() -> (Pipeline, Vec<Item>, Vec<(String, String)>) {
    let mut pipeline = Pipeline::new(common::generate(20_000, 77)).unwrap();
    let router = Router::new(pipeline.population(), RoutingConfig::default());
    let mut items = Vec::new();
    let mut markers = Vec::new();
    for (i, line) in [
        r#"{"id": "a", "time": 600, "text": "The Redhawks sign a new striker from Dustwater", "priority": "medium", "category": "sports"}"#,
        r#"{"id": "b", "time": 4200, "text": "The Redhawks sign a new goalkeeper from Cedarbay", "priority": "medium", "category": "sports"}"#,
    ]
    .iter()
    .enumerate()
    {
        let ev = parse_event(i + 1, line).unwrap();
        let (posts, _) = pipeline.process(&ev, i as u32, i + 1).unwrap();
        let class = pipeline.classifier().classify(&ev, i + 1).unwrap();
        let mut its = router.items(pipeline.population(), Some(pipeline.state()), &ev, &class, &posts);
        its.truncate(40);
        markers.push((ev.id.clone(), ev.text.split_whitespace().last().unwrap().to_lowercase()));
        items.extend(its);
    }
    (pipeline, items, markers)
}

#[test]
fn no_llm_text_crosses_events_through_the_cache() {
    let (pipeline, items, markers) = two_event_items();
    assert!(items.iter().any(|i| i.event.id == "a") && items.iter().any(|i| i.event.id == "b"));
    let server = fake_server(vec![Fault::Ok]);
    let client = ClientConfig { url: server.url.clone(), ..ClientConfig::default() };
    let config = LlmConfig {
        client: client.clone(),
        budget: BudgetConfig { per_day: 1_000_000, ..BudgetConfig::default() },
        ..LlmConfig::default()
    };
    let llm = Llm::new(config, Box::new(Http::new(&client).unwrap())).unwrap();
    let outcomes: Vec<Outcome> = llm.resolve(items.clone(), pipeline.population(), pipeline.templates());
    let report = llm.report();
    let event_of: std::collections::HashMap<_, _> = items.iter().map(|i| (i.post, i.event.id.clone())).collect();
    let mut from_llm_or_cache = 0;
    for o in &outcomes {
        if matches!(o.source, Source::Llm | Source::Cache) {
            from_llm_or_cache += 1;
            let ev = &event_of[&o.post];
            let (_, own) = markers.iter().find(|(id, _)| id == ev).unwrap();
            let (_, other) = markers.iter().find(|(id, _)| id != ev).unwrap();
            assert!(o.text.to_lowercase().contains(own.as_str()), "{} on event {ev}", o.text);
            assert!(!o.text.to_lowercase().contains(other.as_str()), "{} crossed onto event {ev}", o.text);
        }
    }
    assert!(from_llm_or_cache > 0);
    // The second event's items could not be served from the first one's answers.
    let second = items.iter().filter(|i| i.event.id == "b").count() as u64;
    assert!(report.llm.iter().sum::<u64>() >= second, "{:?}", report.llm);
}

#[test]
fn a_replay_made_for_another_run_is_refused_with_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("run.rec");
    let server = fake_server(vec![Fault::Ok]);
    let meta = RunMeta {
        seed: 7,
        users: 1000,
        budget: "6000".into(),
        events: RunMeta::digest(b"events"),
        model: "m".into(),
        dialect: "openai".into(),
    };
    let client = ClientConfig { url: server.url.clone(), ..ClientConfig::default() };
    let rec = Recorder::with_meta(Http::new(&client).unwrap(), Some(&record), Some(&meta)).unwrap();
    rec.send("{\"x\": 1}", 0);
    rec.flush().unwrap();
    let replay = Replay::load(&record).unwrap();
    assert_eq!(replay.meta(), Some(&meta));
    assert!(replay.check("run.rec", &meta).is_ok());
    let other = RunMeta { budget: "5000".into(), seed: 8, ..meta.clone() };
    let err = replay.check("run.rec", &other).unwrap_err().to_string();
    assert!(err.contains("budget: recorded 6000, this run 5000"), "{err}");
    assert!(err.contains("seed: recorded 7, this run 8"), "{err}");
    // A request the recording lacks is counted, so the run can refuse to pass as a replay.
    assert_eq!(replay.unanswered(), 0);
    assert_eq!(replay.send("{\"y\": 2}", 0).status, 0);
    assert_eq!(replay.unanswered(), 1);
}

#[test]
fn chorus_run_replays_byte_for_byte_and_refuses_a_mismatched_replay() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, format!("{FINAL}\n{QUAKE}\n")).unwrap();
    let server = fake_server(vec![Fault::Ok]);
    let bin = env!("CARGO_BIN_EXE_chorus");
    let run = |extra: &[&str], out: &str| {
        let mut c = Command::new(bin);
        c.args(["run", "--users", "20000", "--seed", "5", "--quiet", "--events"]).arg(&events);
        c.arg("--out").arg(dir.path().join(out)).args(extra);
        c.env_remove("CHORUS_LLM_URL").env_remove("CHORUS_LLM_MODEL").env("CHORUS_TEST_KEY", SECRET);
        c.output().unwrap()
    };
    let rec = dir.path().join("run.rec");
    let rec_s = rec.to_str().unwrap();
    let live = run(
        &[
            "--llm",
            &server.url,
            "--llm-model",
            "fake-model",
            "--llm-key-env",
            "CHORUS_TEST_KEY",
            "--budget",
            "6000",
            "--record",
            rec_s,
        ],
        "live.jsonl",
    );
    let stderr = String::from_utf8_lossy(&live.stderr);
    assert!(live.status.success(), "{stderr}");
    assert!(stderr.contains("phrase banks"), "{stderr}");
    assert!(!stderr.contains(SECRET));
    let recorded = std::fs::read_to_string(&rec).unwrap();
    assert!(recorded.starts_with("{\"chorus_recording\":1"), "{}", &recorded[..80.min(recorded.len())]);
    assert!(!recorded.contains(SECRET), "the key in the recording");
    let timeline = std::fs::read_to_string(dir.path().join("live.jsonl")).unwrap();
    assert!(timeline.contains("\"source\":\"bank\""), "bank posts in the timeline");
    assert!(!timeline.contains(SECRET));
    // Same settings: byte-identical.
    let again = run(&["--replay", rec_s, "--llm-model", "fake-model", "--budget", "6000"], "replay.jsonl");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(timeline, std::fs::read_to_string(dir.path().join("replay.jsonl")).unwrap());
    // Another budget: refused, naming it, non-zero exit.
    let other = run(&["--replay", rec_s, "--llm-model", "fake-model", "--budget", "5000"], "other.jsonl");
    assert!(!other.status.success());
    let e = String::from_utf8_lossy(&other.stderr);
    assert!(e.contains("budget: recorded 6000, this run 5000"), "{e}");
    // Another model: refused too.
    let other = run(&["--replay", rec_s, "--llm-model", "another", "--budget", "6000"], "other.jsonl");
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("model: recorded fake-model, this run another"));
}

#[test]
fn an_unreachable_server_is_one_error_before_any_work() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, format!("{FINAL}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--users", "2000", "--quiet", "--events"])
        .arg(&events)
        .args(["--llm", &format!("http://127.0.0.1:{port}/v1")])
        .arg("--out")
        .arg(dir.path().join("t.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("cannot reach the LLM server"), "{e}");
    assert!(!e.contains("events processed"), "no work before the error: {e}");
}

#[test]
fn real_model_writes_a_bank_in_the_llamacpp_shape_within_its_usage() {
    let url = crate::llm::llm_url();
    let _turn = crate::llm::model_turn();
    let run = played();
    let req = banks(run, &BankConfig::default()).into_iter().next().unwrap();
    let client = ClientConfig { url, timeout_ms: 600_000, ..ClientConfig::default() }.with_env();
    let config = LlmConfig {
        client: client.clone(),
        budget: BudgetConfig { per_day: 1_000_000, ..BudgetConfig::default() },
        dialect: Dialect::Llamacpp,
        ..LlmConfig::default()
    };
    let gate = Gate::embedded(run.pipeline.classifier().clone()).unwrap();
    let llm = Llm::new(config, Box::new(Http::new(&client).unwrap())).unwrap().with_gate(gate);
    let groups = req.groups.len() as u64;
    let outcomes = llm.write_banks(vec![req], run.pipeline.population(), run.pipeline.templates());
    let r = llm.report();
    eprintln!(
        "bank: {:?}\ngate: {:?}\nfirst posts: {:?}",
        r.banks,
        r.gate,
        outcomes.iter().take(3).map(|o| &o.text).collect::<Vec<_>>()
    );
    assert_eq!(r.banks.requested, 1);
    // The grammar gave lines for every group (whether the gate kept them is the model's doing).
    assert!(r.gate.passed + r.gate.refused() >= groups, "{:?}", r.gate);
    // Every token charged is the server's reported usage; nothing over the reservations.
    let ledger: u64 = r.ledger.iter().map(|l| l.ledger.spent).sum();
    assert_eq!(ledger, r.budget.spent_total);
    assert_eq!(r.budget.overruns, 0);
    assert_eq!(r.budget.reserved, 0);
    assert!(outcomes.iter().all(|o| o.source == Source::Bank));
}
