//! `chorus export`: streamed JSONL / CSV / Parquet files, the manifest, killed runs, and a
//! Parquet round trip through readers nobody here wrote (pyarrow and DuckDB, installed by
//! `scripts/py-env.sh`).

use chorus::export::Manifest;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first `n` labelled events without their labels.
pub fn events_file(dir: &Path, n: usize) -> PathBuf {
    crate::common::labelled_events(dir, n, "")
}

fn chorus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chorus"))
}

fn export(events: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    chorus()
        .args(["export", "--users", "20000", "--seed", "5", "-q", "--events"])
        .arg(events)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// The Python interpreter of `scripts/py-env.sh`, or `None` when it cannot be set up and
/// `CHORUS_REQUIRE_READERS` is not set (CI sets it: there a missing reader fails the test).
fn python() -> Option<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/py-env.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    if out.status.success() {
        return Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()));
    }
    let msg = format!("scripts/py-env.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    if std::env::var_os("CHORUS_REQUIRE_READERS").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping the pyarrow/DuckDB round trip: {msg}");
    None
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn posts_round_trip_through_pyarrow_and_duckdb_with_the_same_rows_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 60);
    let out = dir.path().join("x");
    // Small row groups, so the file has several and they are written as the run goes.
    let r = export(&events, &out, &["--format", "jsonl,parquet,csv", "--row-group", "500"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest = Manifest::verify(&out).unwrap();
    let rows = jsonl(&out.join("posts.jsonl"));
    assert!(rows.len() > 500, "a real timeline: {} posts", rows.len());
    for f in &manifest.files {
        assert_eq!(f.rows, rows.len() as u64, "{} rows", f.name);
    }
    // The posts are the lines `chorus run` writes, only in (event, time, id) order.
    let run_out = dir.path().join("run.jsonl");
    let r = chorus()
        .args(["run", "--users", "20000", "--seed", "5", "-q", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&run_out)
        .output()
        .unwrap();
    assert!(r.status.success());
    let sorted = |text: String| {
        let mut v: Vec<String> = text.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(std::fs::read_to_string(&run_out).unwrap()),
        sorted(std::fs::read_to_string(out.join("posts.jsonl")).unwrap())
    );
    // CSV: header plus one record per post, ids in the same order.
    let mut csv = csv::Reader::from_path(out.join("posts.csv")).unwrap();
    let ids: Vec<u64> = csv.records().map(|r| r.unwrap()[0].parse().unwrap()).collect();
    assert_eq!(ids, rows.iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>());

    let Some(python) = python() else { return };
    let reader = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/readers/parquet_rows.py");
    let r = Command::new(&python).arg(&reader).arg(out.join("posts.parquet")).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let read: Vec<serde_json::Value> =
        String::from_utf8(r.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let head = &read[0];
    let expect_types = serde_json::json!({
        "id": "uint64", "author": "uint32", "handle": "string", "kind": "string", "parent": "uint64",
        "quoted": "uint64", "root": "uint64", "depth": "uint8", "text": "string", "gif": "string",
        "image": "string", "image_request": "string", "event": "string", "time": "int64", "sentiment": "string", "source": "string"
    });
    assert_eq!(head["schema"], expect_types);
    for (col, nullable) in head["nullable"].as_object().unwrap() {
        let optional = ["parent", "quoted", "root", "text", "gif", "image", "image_request"].contains(&col.as_str());
        assert_eq!(nullable.as_bool().unwrap(), optional, "{col} nullability");
    }
    assert_eq!(head["duckdb_rows"].as_u64().unwrap(), rows.len() as u64);
    assert!(head["row_groups"].as_u64().unwrap() >= 2, "row groups flushed as the run goes");
    assert_eq!(read.len() - 1, rows.len());
    for (a, b) in read[1..].iter().zip(&rows) {
        assert_eq!(a, b, "a Parquet row read by pyarrow differs from the JSONL line");
    }
}

#[test]
fn exports_are_byte_identical_on_1_and_2_threads() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 30);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (out, threads) in [(&a, "1"), (&b, "2")] {
        let r =
            export(&events, out, &["--format", "jsonl,csv,parquet", "--population", "--graph", "--threads", threads]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let (ma, mb) = (Manifest::verify(&a).unwrap(), Manifest::verify(&b).unwrap());
    assert_eq!(ma, mb, "same files, rows and checksums");
    let names: Vec<&str> = ma.files.iter().map(|f| f.name.as_str()).collect();
    for n in ["users.parquet", "edges.csv", "posts.parquet", "users.jsonl", "edges.jsonl"] {
        assert!(names.contains(&n), "{n} exported: {names:?}");
    }
    let users = ma.files.iter().find(|f| f.name == "users.csv").unwrap();
    assert_eq!(users.rows, 20_000);
    let edges = ma.files.iter().find(|f| f.name == "edges.parquet").unwrap();
    assert_eq!(edges.rows, ma.run.edges);
}

#[test]
fn a_killed_export_never_looks_complete_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 60);
    let out = dir.path().join("x");
    // A first complete export, so stale complete files and a stale manifest exist.
    let r = export(&events, &out, &["--format", "jsonl,parquet"]);
    assert!(r.status.success());
    Manifest::verify(&out).unwrap();
    // A longer run, killed while it writes the graph.
    let mut child = chorus()
        .args(["export", "--users", "200000", "--seed", "5", "-q", "--format", "jsonl,parquet", "--graph", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&out)
        .spawn()
        .unwrap();
    let tmp_seen = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        out.join("edges.jsonl.tmp").exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(tmp_seen, "the export wrote under a temporary name");
    assert!(!out.join("manifest.json").exists(), "the old manifest was removed before writing");
    assert!(Manifest::verify(&out).is_err());
    // Re-run to completion: a full, verified export and no temporary files left.
    let r = export(&events, &out, &["--format", "jsonl,parquet", "--graph"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let m = Manifest::verify(&out).unwrap();
    assert_eq!(m.files.len(), 4);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A file altered after the fact fails verification.
    let posts = out.join("posts.jsonl");
    let len = std::fs::metadata(&posts).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&posts).unwrap().set_len(len - 10).unwrap();
    let err = Manifest::verify(&out).unwrap_err().to_string();
    assert!(err.contains("posts.jsonl") && err.contains("manifest says"), "{err}");
}

#[test]
fn bad_export_arguments_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 3);
    let r = export(&events, &dir.path().join("x"), &["--format", "jsonl,xml"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && stderr.contains("\"xml\"") && !stderr.contains("panicked"), "{stderr}");
    // The output directory is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let r = export(&events, &file, &[]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && stderr.contains("file") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_timeline_command_gives_the_firehose_threads_and_a_users_timelines() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 40);
    let out = dir.path().join("x");
    assert!(export(&events, &out, &[]).status.success());
    let run_out = dir.path().join("run.jsonl");
    let r = chorus()
        .args(["run", "--users", "20000", "--seed", "5", "-q", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&run_out)
        .output()
        .unwrap();
    assert!(r.status.success());
    let posts_file = out.join("posts.jsonl");
    let timeline = |args: &[&str]| {
        let r = chorus()
            .args(["timeline", "--users", "20000", "--seed", "5", "--timeline"])
            .arg(&posts_file)
            .args(args)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8(r.stdout).unwrap()
    };
    // The firehose of the exported file is exactly what `chorus run` writes.
    crate::common::assert_same_bytes(
        timeline(&["--firehose"]).as_bytes(),
        &std::fs::read(&run_out).unwrap(),
        "firehose vs chorus run",
    );
    // An event's thread trees hold its posts and quotes with every reply below them.
    let posts = jsonl(&posts_file);
    let event = posts[0]["event"].as_str().unwrap().to_string();
    fn size(v: &serde_json::Value) -> usize {
        1 + v["replies"].as_array().unwrap().iter().map(size).sum::<usize>()
    }
    let trees: Vec<serde_json::Value> =
        timeline(&["--event", &event]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = posts
        .iter()
        .filter(|p| {
            p["event"] == event.as_str() && ["post", "quote", "reply", "gif"].contains(&p["kind"].as_str().unwrap())
        })
        .count();
    assert_eq!(trees.iter().map(size).sum::<usize>(), expected);
    // A user's profile holds their entries (likes excluded), newest first.
    let author = posts.iter().find(|p| p["kind"] == "post").unwrap()["author"].as_u64().unwrap();
    let v: serde_json::Value = serde_json::from_str(timeline(&["--user", &author.to_string()]).trim()).unwrap();
    let profile = v["profile"].as_array().unwrap();
    let own = posts.iter().filter(|p| p["author"] == author && p["kind"] != "like").count();
    assert_eq!(profile.len(), own);
    assert!(profile.windows(2).all(|w| w[0]["time"].as_i64() >= w[1]["time"].as_i64()));
    // A user outside the population is refused clearly.
    let r = chorus()
        .args(["timeline", "--users", "20000", "--user", "20000", "--timeline"])
        .arg(&posts_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && stderr.contains("20000 users") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn training_data_samples_decisions_by_the_rates_with_state_action_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 30);
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let rates = "none=0.5,like=0.2,repost=0.1,reply=0.1,quote=0.05,post=0.05";
    for (file, threads) in [(&a, "1"), (&b, "2")] {
        let r = chorus()
            .args(["export", "--users", "20000", "--seed", "5", "-q", "--threads", threads, "--events"])
            .arg(&events)
            .arg("--training")
            .arg(file)
            .args(["--training-rates", rates, "--training-per-event", "40"])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    crate::common::assert_same_bytes(&std::fs::read(&a).unwrap(), &std::fs::read(&b).unwrap(), "training data");
    let records = jsonl(&a);
    let mut per_event: std::collections::HashMap<(String, String), usize> = Default::default();
    let (mut interactions, mut unchanged) = (0usize, 0usize);
    for r in &records {
        let action = r["action"].as_str().unwrap().to_string();
        *per_event.entry((r["event"].as_str().unwrap().to_string(), action.clone())).or_default() += 1;
        let state = &r["state"];
        assert!(state["profile"]["big5"].as_array().unwrap().len() == 5 && state["event"]["category"].is_string());
        let mood = &state["mood"];
        assert!((-1.0..=1.0).contains(&mood["valence"].as_f64().unwrap()), "{r}");
        assert!((0.0..=1.0).contains(&mood["energy"].as_f64().unwrap()), "{r}");
        if ["like", "repost", "reply", "quote"].contains(&action.as_str()) {
            let change = r["outcome"]["relationship_change"].as_f64().unwrap();
            // One interaction moves a weight by -0.35..0.25; a prolific user's follow-ups may
            // meet the same author again in the event (and cancel out), and weights stay
            // within -1..1.
            assert!((-1.0..=1.0).contains(&change), "{r}");
            interactions += 1;
            unchanged += (change == 0.0) as usize;
        } else if action == "none" {
            assert!(r["outcome"]["relationship_change"].is_null());
        }
        if action == "none" {
            assert!(state["filter"].is_null() && r["outcome"]["post"].is_null());
        } else {
            assert!(state["filter"]["engagement"].is_u64() && r["outcome"]["post"].is_u64());
            assert!(r["outcome"]["delay"].as_i64().unwrap() >= 0);
        }
        if ["like", "repost", "reply"].contains(&action.as_str()) {
            assert!(state["target"]["author"].is_u64(), "{r}");
        }
    }
    assert!(unchanged * 10 < interactions.max(1), "{unchanged} of {interactions} interactions changed nothing");
    let quota = |a: &str| match a {
        "none" => 20,
        "like" => 8,
        "repost" | "reply" => 4,
        _ => 2,
    };
    for ((event, action), n) in &per_event {
        assert!(*n <= quota(action), "{event} {action}: {n}");
    }
    let nones = per_event.iter().filter(|((_, a), _)| a == "none").map(|(_, n)| *n).collect::<Vec<_>>();
    assert!(nones.len() == 30 && nones.iter().all(|&n| n == 20), "20 non-reacting users per event");
    // Posts that got replies show them as outcomes.
    assert!(records
        .iter()
        .any(|r| r["outcome"]["replies"].as_u64().unwrap() > 0 || r["outcome"]["likes"].as_u64().unwrap() > 0));
    let r = chorus()
        .args(["export", "--users", "2000", "-q", "--events"])
        .arg(&events)
        .arg("--training")
        .arg(dir.path().join("c.jsonl"))
        .args(["--training-rates", "none=0.7,like=0.2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && stderr.contains("sum to") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn neo4j_admin_import_files_hold_every_node_and_relationship_with_typed_headers() {
    let dir = tempfile::tempdir().unwrap();
    let events = events_file(dir.path(), 20);
    let (out, admin) = (dir.path().join("x"), dir.path().join("admin"));
    let r = export(&events, &out, &["--graph"]).status;
    assert!(r.success());
    let r = chorus()
        .args(["export", "--users", "20000", "--seed", "5", "-q", "--events"])
        .arg(&events)
        .arg("--neo4j-admin")
        .arg(&admin)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let m = Manifest::verify(&out).unwrap();
    let read = |name: &str| {
        let mut rd = csv::Reader::from_path(admin.join(name)).unwrap();
        let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        (header, rows)
    };
    let (h, users) = read("users.csv");
    assert_eq!(&h[..3], [":ID(User)", ":LABEL", "id:int"]);
    assert_eq!(users.len(), 20_000);
    let (h, rels) = read("relationships.csv");
    assert_eq!(h, [":START_ID(User)", ":END_ID(User)", ":TYPE", "weight:float"]);
    assert_eq!(rels.len() as u64, m.run.edges);
    assert!(rels.iter().all(|r| ["FOLLOWS", "FRIEND", "COLLEAGUE", "RIVAL"].contains(&&r[2])));
    let posts = jsonl(&out.join("posts.jsonl"));
    let (h, post_rows) = read("posts.csv");
    assert!(h.contains(&"time:long".to_string()) && h[0] == ":ID(Post)");
    assert_eq!(post_rows.len(), posts.len());
    assert_eq!(read("posted.csv").1.len(), posts.len());
    assert_eq!(read("about.csv").1.len(), posts.len());
    let links = posts.iter().filter(|p| p.get("parent").is_some()).count()
        + posts.iter().filter(|p| p.get("quoted").is_some()).count();
    assert_eq!(read("post_links.csv").1.len(), links);
    // Every relationship end names a node in the files.
    let ids: std::collections::HashSet<&str> = post_rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert!(read("post_links.csv").1.iter().all(|r| ids.contains(&r[0]) && ids.contains(&r[1])));
    let script = std::fs::read_to_string(admin.join("import.sh")).unwrap();
    assert!(script.contains("neo4j-admin database import full") && script.contains("--nodes=users.csv"));
}
