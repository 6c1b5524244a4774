//! The graph export against a real Bolt server: ArcadeDB with its Bolt plugin, started by
//! `scripts/bolt-server.sh` (CI starts it and exports `CHORUS_NEO4J_URI`, `CHORUS_NEO4J_USER`,
//! `CHORUS_NEO4J_PASSWORD` and `CHORUS_REQUIRE_BOLT=1`; locally the tests start it through the
//! same script). The tests share the one database, so they take a lock and clear it first.

use crate::export::events_file;
use chorus::export::neo4j::{BoltConfig, BoltExporter};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

struct Server {
    uri: String,
    user: String,
    password: String,
}

/// The server, started once if the environment does not name one; `None` (skip) only when it
/// cannot be started and `CHORUS_REQUIRE_BOLT` is unset.
fn server() -> Option<&'static Server> {
    static S: OnceLock<Option<Server>> = OnceLock::new();
    S.get_or_init(|| {
        if let (Ok(uri), Ok(password)) = (std::env::var("CHORUS_NEO4J_URI"), std::env::var("CHORUS_NEO4J_PASSWORD")) {
            let user = std::env::var("CHORUS_NEO4J_USER").unwrap_or_else(|_| "root".into());
            return Some(Server { uri, user, password });
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bolt-server.sh");
        let out = Command::new("bash").arg(&script).arg("start").output().unwrap();
        if !out.status.success() {
            let msg = format!("scripts/bolt-server.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
            if std::env::var_os("CHORUS_REQUIRE_BOLT").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipping the Bolt tests: {msg}");
            return None;
        }
        let mut vars = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        Some(Server {
            uri: vars["CHORUS_NEO4J_URI"].clone(),
            user: vars["CHORUS_NEO4J_USER"].clone(),
            password: vars["CHORUS_NEO4J_PASSWORD"].clone(),
        })
    })
    .as_ref()
    .or_else(|| {
        assert!(std::env::var_os("CHORUS_REQUIRE_BOLT").is_none(), "CHORUS_REQUIRE_BOLT is set but no Bolt server");
        None
    })
}

/// The database to oneself, emptied.
fn exclusive(s: &Server) -> (MutexGuard<'static, ()>, BoltExporter) {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut db = BoltExporter::connect(&BoltConfig::new(&s.uri, &s.user, &s.password)).unwrap();
    db.query_json("MATCH (n) DETACH DELETE n", &[]).unwrap();
    (guard, db)
}

fn export_cmd(s: &Server, events: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chorus"));
    c.args(["export", "-q", "--neo4j", &s.uri, "--neo4j-user", &s.user, "--events"])
        .arg(events)
        .args(extra)
        .env("CHORUS_NEO4J_PASSWORD", &s.password);
    c
}

fn count(db: &mut BoltExporter, cypher: &str) -> u64 {
    db.query_json(cypher, &["n"]).unwrap()[0][0].as_u64().unwrap()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A sparse population snapshot (about 6 edges per user), so graph loads stay quick.
fn sparse_snapshot(dir: &Path, users: u32) -> std::path::PathBuf {
    let path = dir.join("pop.snap");
    let r = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["population", "--users", &users.to_string(), "--seed", "9", "--json", "--out"])
        .arg(&path)
        .args(["--graph", r#"{"follows_median": 3, "circle_min": 2, "circle_max": 3, "colleague_ties": 1}"#])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    path
}

#[test]
fn counts_and_a_reply_thread_match_the_run() {
    let Some(s) = server() else { return };
    let (_guard, mut db) = exclusive(s);
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 40);
    let snap = sparse_snapshot(dir.path(), 4000);
    let out = dir.path().join("x");
    let r = export_cmd(s, &events, &["--load"])
        .arg(&snap)
        .arg("--out")
        .arg(&out)
        .args(["--graph", "--population", "--neo4j-batch", "2000"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let posts = jsonl(&out.join("posts.jsonl"));
    let edges = jsonl(&out.join("edges.jsonl"));
    assert!(posts.len() > 50);
    assert_eq!(count(&mut db, "MATCH (u:User) RETURN count(u) AS n"), 4000);
    assert_eq!(count(&mut db, "MATCH (p:Post) RETURN count(p) AS n"), posts.len() as u64);
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for e in &edges {
        *by_kind.entry(e["kind"].as_str().unwrap().to_uppercase()).or_default() += 1;
    }
    for (kind, n) in &by_kind {
        assert_eq!(count(&mut db, &format!("MATCH ()-[r:{kind}]->() RETURN count(r) AS n")), *n, "{kind} edges");
    }
    let replies = posts.iter().filter(|p| p["kind"] == "reply" || p["kind"] == "gif").count() as u64;
    assert_eq!(count(&mut db, "MATCH ()-[r:REPLY_TO]->() RETURN count(r) AS n"), replies);
    assert_eq!(count(&mut db, "MATCH ()-[r:POSTED]->() RETURN count(r) AS n"), posts.len() as u64);
    assert_eq!(count(&mut db, "MATCH (:Post)-[r:ABOUT]->(:Event) RETURN count(r) AS n"), posts.len() as u64);
    let done = db.query_json("MATCH (x:ChorusExport) RETURN x.complete AS c, x.posts AS p", &["c", "p"]).unwrap();
    assert_eq!(done, vec![vec![Value::Bool(true), Value::from(posts.len() as u64)]]);
    // A user's traits arrive typed.
    let u = db
        .query_json("MATCH (u:User {id: 7}) RETURN u.age AS a, u.handle AS h, u.politics AS p", &["a", "h", "p"])
        .unwrap();
    assert!(u[0][0].is_u64() && u[0][1].is_string() && u[0][2].is_f64(), "{u:?}");

    // The biggest reply tree: the Cypher answer is the timeline's tree.
    let mut sizes: BTreeMap<u64, usize> = BTreeMap::new();
    for p in posts.iter().filter(|p| p["kind"] == "reply") {
        *sizes.entry(p["root"].as_u64().unwrap()).or_default() += 1;
    }
    let (&root, _) = sizes.iter().max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id))).expect("some replies");
    let expected: BTreeSet<(u64, u64)> = posts
        .iter()
        .filter(|p| p["kind"] == "reply" && p["root"] == root)
        .map(|p| (p["id"].as_u64().unwrap(), p["parent"].as_u64().unwrap()))
        .collect();
    let got: BTreeSet<(u64, u64)> = db
        .query_json(
            &format!(
                "MATCH (c:Post)-[:REPLY_TO*1..6]->(r:Post {{id: {root}}}) MATCH (c)-[:REPLY_TO]->(p:Post) WHERE c.kind = 'reply' RETURN DISTINCT c.id AS c, p.id AS p"
            ),
            &["c", "p"],
        )
        .unwrap()
        .into_iter()
        .map(|row| (row[0].as_u64().unwrap(), row[1].as_u64().unwrap()))
        .collect();
    assert_eq!(got, expected, "the reply tree under {root}");
}

#[test]
fn an_interrupted_export_rerun_gives_the_same_counts() {
    let Some(s) = server() else { return };
    let (_guard, mut db) = exclusive(s);
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 20);
    let snap = sparse_snapshot(dir.path(), 6000);
    let mut child = export_cmd(s, &events, &["--neo4j-batch", "1000", "--load"]).arg(&snap).spawn().unwrap();
    // Kill it once some relationships are in, before the end.
    let mut seen = 0;
    for _ in 0..600 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        seen = count(&mut db, "MATCH (:User)-[r]->(:User) RETURN count(r) AS n");
        if seen > 0 {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(seen > 0 && !status.success(), "killed mid-way ({seen} relationships)");
    let done = db.query_json("MATCH (x:ChorusExport) RETURN x.complete AS c", &["c"]).unwrap();
    assert_eq!(done, vec![vec![Value::Bool(false)]], "an interrupted export is marked incomplete");
    let partial = count(&mut db, "MATCH (:User)-[r]->(:User) RETURN count(r) AS n");
    // Re-run twice: complete, and the second run changes nothing.
    let mut totals = Vec::new();
    for _ in 0..2 {
        let r = export_cmd(s, &events, &["--neo4j-batch", "1000", "--load"]).arg(&snap).output().unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        totals.push((
            count(&mut db, "MATCH (u:User) RETURN count(u) AS n"),
            count(&mut db, "MATCH (:User)-[r]->(:User) RETURN count(r) AS n"),
            count(&mut db, "MATCH (p:Post) RETURN count(p) AS n"),
            count(&mut db, "MATCH ()-[r]->() RETURN count(r) AS n"),
        ));
    }
    assert_eq!(totals[0], totals[1], "a re-run adds nothing");
    let edges = db.query_json("MATCH (x:ChorusExport) RETURN x.edges AS e, x.complete AS c", &["e", "c"]).unwrap();
    assert_eq!(edges[0][1], Value::Bool(true));
    assert_eq!(totals[0].0, 6000);
    assert_eq!(Some(totals[0].1), edges[0][0].as_u64(), "every relationship once");
    assert!(totals[0].1 > partial, "the re-run completed the graph");
}

#[test]
fn server_down_wrong_password_and_a_non_bolt_port_fail_clearly() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 3);
    let http = std::env::var("CHORUS_BOLT_HTTP_PORT").unwrap_or_else(|_| "2480".into());
    let cases = [
        ("bolt://127.0.0.1:1".to_string(), s.password.clone(), "refused"),
        (s.uri.clone(), "not-the-password".to_string(), "authentication"),
        (format!("bolt://127.0.0.1:{http}"), s.password.clone(), "127.0.0.1"),
    ];
    for (uri, password, expect) in cases {
        let out = dir.path().join("out");
        let r = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args(["export", "-q", "--users", "2000", "--neo4j", &uri, "--neo4j-user", &s.user, "--events"])
            .arg(&events)
            .arg("--out")
            .arg(&out)
            .env("CHORUS_NEO4J_PASSWORD", &password)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{uri}: must fail");
        assert!(stderr.contains(&uri) && stderr.to_lowercase().contains(expect), "{uri}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("wrote"), "{uri}: {stderr}");
        assert!(!out.join("manifest.json").exists(), "{uri}: nothing reported as complete");
    }
}
