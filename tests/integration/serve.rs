//! `chorus serve` over real sockets: the binary started as a child process, driven by
//! reqwest, an SSE reader, a WebSocket client (tokio-tungstenite), the Python client of the
//! README (httpx) and the live viewer in headless Chromium (Playwright).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `chorus serve`, killed on drop.
struct Server {
    child: Option<Child>,
    base: String,
}

impl Server {
    fn start(data: &std::path::Path, extra: &[&str]) -> Server {
        Server::start_with(data, extra, &[])
    }

    fn start_with(data: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").expect("the address line").to_string();
        let s = Server { child: Some(child), base };
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.get("/ready").0 != 200 {
            assert!(Instant::now() < deadline, "not ready in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let r = Self::client().get(format!("{}{path}", self.base)).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = Self::client().post(format!("{}{path}", self.base)).body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const FINAL: &str = r#"{"id": "final", "time": 72000, "text": "The Redhawks win the cup final 3-1 in overtime"}"#;

fn ids(v: &Value) -> Vec<u64> {
    v["posts"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect()
}

/// Every entry of an event, following `next_max_id` cursors.
fn all_event_posts(s: &Server, session: &str, event: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, v) = s.get(&format!("/v1/sessions/{session}/events/{event}/posts?limit=200{cursor}"));
        assert_eq!(st, 200, "{v}");
        let page = ids(&v);
        if page.is_empty() {
            return out;
        }
        out.extend(&page);
        cursor = format!("&max_id={}", page.last().unwrap());
    }
}

#[test]
fn a_session_takes_events_and_serves_reads_streams_forks_and_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore"]);
    let (st, v) = s.post("/v1/sessions", r#"{"users": 20000, "seed": 7}"#, &[]);
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    // Streams: an SSE reader and a WebSocket client, both connected before the event.
    let sse_url = format!("{}/v1/sessions/{id}/stream", s.base);
    let sse = std::thread::spawn(move || {
        let r = reqwest::blocking::Client::new().get(sse_url).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let mut n = 0usize;
        for line in BufReader::new(r).lines() {
            let line = line.unwrap();
            if let Some(data) = line.strip_prefix("data: ") {
                let p: Value = serde_json::from_str(data).unwrap();
                assert_eq!(p["event"], "final");
                n += 1;
            }
            if line.starts_with("data: ") && n >= 20 {
                return n;
            }
        }
        n
    });
    let ws_url = format!("{}/v1/sessions/{id}/ws?event=final", s.base.replace("http://", "ws://"));
    let (ws_tx, ws_rx) = std::sync::mpsc::channel();
    let ws = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            use futures_util::StreamExt;
            let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
            ws_tx.send(()).unwrap();
            let mut n = 0;
            while let Some(Ok(msg)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                    let p: Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(p["event"], "final");
                    n += 1;
                    if n >= 20 {
                        break;
                    }
                }
            }
            n
        })
    });
    ws_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the SSE request reaches the server

    // One event, sent twice with the same idempotency key: posted once, the same answer.
    let key = [("Idempotency-Key", "final-1")];
    let (st, first) = s.post(&format!("/v1/sessions/{id}/events"), FINAL, &key);
    assert_eq!(st, 201, "{first}");
    assert_eq!(first["category"], "sports");
    assert_eq!(first["kind"], "win");
    let total = first["total"].as_u64().unwrap();
    assert!(total >= 40 && !ids(&first).is_empty(), "{total} entries");
    assert!(first["posts"].as_array().unwrap().iter().all(|p| p["time"].as_i64().unwrap() <= 72_600));
    let (st, again) = s.post(&format!("/v1/sessions/{id}/events"), FINAL, &key);
    assert_eq!((st, &again), (201, &first), "a retried POST returns the first answer");
    let (st, _) = s.post(&format!("/v1/sessions/{id}/events"), FINAL, &[]);
    assert_eq!(st, 409, "the same event id without the key is a conflict");
    let (_, sess) = s.get(&format!("/v1/sessions/{id}"));
    assert_eq!((sess["events"].as_u64(), sess["posts"].as_u64()), (Some(1), Some(total)));

    assert!(sse.join().unwrap() >= 20, "SSE client saw the posts");
    assert!(ws.join().unwrap() >= 20, "WebSocket client saw the posts");

    // Reads: an event's posts paged by cursor cover every entry once.
    let all = all_event_posts(&s, &id, "final");
    assert_eq!(all.len() as u64, total);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    let (_, newer) = s.get(&format!("/v1/sessions/{id}/events/final/posts?since_id={}", all[5]));
    assert_eq!(ids(&newer), all[..5].to_vec());
    // A root post with replies: its thread.
    let (_, stats) = s.get(&format!("/v1/sessions/{id}/stats"));
    assert_eq!(stats["posts"].as_u64(), Some(total));
    let root = all.iter().rev().copied().find(|p| {
        let (_, t) = s.get(&format!("/v1/sessions/{id}/posts/{p}/thread"));
        t["replies"].as_array().is_some_and(|r| !r.is_empty())
    });
    assert!(root.is_some(), "some post has a reply thread");
    // A home timeline: some follower of an author sees the author's post.
    let (_, post) = s.get(&format!("/v1/sessions/{id}/posts/{}", all[all.len() - 1]));
    assert_eq!(post["event"], "final");
    let author = post["author"].as_u64().unwrap();
    let (st, user) = s.get(&format!("/v1/sessions/{id}/users/{author}"));
    assert_eq!(st, 200, "{user}");
    let (_, mine) = s.get(&format!("/v1/sessions/{id}/users/{author}/posts"));
    assert!(ids(&mine).contains(&all[all.len() - 1]));
    let homes = (0..300u32).filter(|u| !ids(&s.get(&format!("/v1/sessions/{id}/users/{u}/home")).1).is_empty()).count();
    assert!(homes > 0, "some of the first 300 users have a home timeline");
    let (st, _) = s.get(&format!("/v1/sessions/{id}/trends"));
    assert_eq!(st, 200);

    // What-if: fork, send each side a different result, compare.
    let (st, fork) = s.post(&format!("/v1/sessions/{id}/fork"), "", &[]);
    assert_eq!(st, 201, "{fork}");
    let fid = fork["id"].as_str().unwrap().to_string();
    let win = r#"{"id": "replay", "time": 80000, "text": "The Redhawks beat the Ironclads 2-0 in the replay"}"#;
    let loss =
        r#"{"id": "replay", "time": 80000, "text": "Floods wreck the Redhawks stadium and the replay is called off"}"#;
    assert_eq!(s.post(&format!("/v1/sessions/{id}/events"), win, &[]).0, 201);
    assert_eq!(s.post(&format!("/v1/sessions/{fid}/events"), loss, &[]).0, 201);
    let (st, cmp) = s.get(&format!("/v1/compare?a={id}&b={fid}"));
    assert_eq!(st, 200, "{cmp}");
    assert_eq!(cmp["shared_events"], 1);
    assert_eq!(cmp["a"]["events"], json!(["replay"]));
    assert!(cmp["a"]["mean_sentiment"].as_f64().unwrap() != cmp["b"]["mean_sentiment"].as_f64().unwrap(), "{cmp}");
    let svg = Server::client().get(format!("{}/v1/compare.svg?a={id}&b={fid}", s.base)).send().unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().unwrap().starts_with("<svg"));
    // The parent's feed did not see the fork's event.
    let (_, a_events) = s.get(&format!("/v1/sessions/{id}/events"));
    assert_eq!(a_events["events"][1]["text"], "The Redhawks beat the Ironclads 2-0 in the replay");

    // Operations.
    let metrics = Server::client().get(format!("{}/metrics", s.base)).send().unwrap().text().unwrap();
    assert!(metrics.contains("chorus_events_total 3"), "{metrics}");
    assert!(metrics.contains("chorus_event_latency_seconds{quantile=\"0.99\"}"));
    let (st, doc) = s.get("/openapi.json");
    assert_eq!(st, 200);
    assert!(doc["paths"]["/v1/sessions/{id}/events"]["post"].is_object(), "{}", doc["paths"]);
    let page = Server::client().get(&s.base).send().unwrap().text().unwrap();
    assert!(page.contains("send-form"));
}

/// A client that stops reading is dropped with a logged reason (an SSE reader on a raw socket
/// that reads nothing while events flow, a WebSocket client that never takes a message); the
/// simulation does not wait for it and a prompt reader still gets every event.
#[test]
fn a_slow_stream_client_is_dropped_and_never_slows_the_simulation() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore", "--rate", "0", "--stream-buffer", "8"]);
    // Big events (several hundred entries each), so the stream outruns the socket buffers.
    let (st, v) = s.post("/v1/sessions", r#"{"users": 10000, "seed": 5}"#, &[]);
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    const EVENTS: usize = 300;
    let last = format!("e{}", EVENTS - 1);

    // The prompt reader: counts the events it saw entries of, until the last one.
    let url = format!("{}/v1/sessions/{id}/stream", s.base);
    let prompt = std::thread::spawn(move || {
        let r = reqwest::blocking::Client::new().get(url).send().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for line in BufReader::new(r).lines() {
            let line = line.unwrap();
            if let Some(data) = line.strip_prefix("data: ") {
                let p: Value = serde_json::from_str(data).unwrap();
                let event = p["event"].as_str().unwrap().to_string();
                let done = event == last;
                seen.insert(event);
                if done {
                    break;
                }
            }
        }
        seen.len()
    });
    // The slow SSE reader: asks, then reads nothing.
    let addr = s.base.strip_prefix("http://").unwrap().to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(slow, "GET /v1/sessions/{id}/stream HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    // The WebSocket client that never takes a message.
    let ws_url = format!("{}/v1/sessions/{id}/ws", s.base.replace("http://", "ws://"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ws = rt.block_on(async { tokio_tungstenite::connect_async(ws_url).await.unwrap().0 });
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    for i in 0..EVENTS {
        let text = [
            "The Redhawks win the cup final 3-1 in overtime",
            "The Ironclads sack their coach after five straight losses",
        ][i % 2];
        let body = json!({"id": format!("e{i}"), "time": 1000 + i * 60, "text": text}).to_string();
        let (st, v) = s.post(&format!("/v1/sessions/{id}/events"), &body, &[]);
        assert_eq!(st, 201, "{v}");
    }
    let took = started.elapsed();
    assert_eq!(prompt.join().unwrap(), EVENTS, "the prompt reader saw every event");

    // The slow reader now reads: what was buffered, then the end of the body the server
    // closed (the last chunk; the connection itself stays open for keep-alive).
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !got.ends_with(b"\r\n0\r\n\r\n") {
        let n = slow.read(&mut buf).expect("the server ends the slow stream within 30 s");
        assert!(n > 0, "the connection closed before the body's end");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got[..got.len().min(200)]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let m = Server::client().get(format!("{}/metrics", s.base)).send().unwrap().text().unwrap();
        let dropped = m.lines().find_map(|l| l.strip_prefix("chorus_stream_dropped_total ")).unwrap_or("0");
        if dropped.trim().parse::<u64>().unwrap() >= 2 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(metrics.contains("chorus_stream_dropped_total 2"), "both slow clients dropped: {metrics}");
    drop(ws);
    eprintln!("{EVENTS} events in {took:?} with two stalled clients; {} bytes reached the slow reader", got.len());
}

#[test]
fn bad_requests_get_a_4xx_naming_the_field_and_the_server_lives() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore", "--body-limit", "4096"]);
    let (_, v) = s.post("/v1/sessions", r#"{"users": 2000}"#, &[]);
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = s.post("/v1/sessions", r#"{"users": 2000}"#, &[]);
    let other = v["id"].as_str().unwrap().to_string();
    let ev = format!("/v1/sessions/{id}/events");
    let cases: Vec<(String, String, u16, &str)> = vec![
        (ev.clone(), "{not json".into(), 400, "body"),
        (ev.clone(), r#"{"id": "a", "time": 1, "text": "x", "colour": 1}"#.into(), 400, "colour"),
        (ev.clone(), r#"{"id": "a", "time": 1}"#.into(), 400, "text"),
        (ev.clone(), r#"{"id": "a", "time": 1, "text": ""}"#.into(), 400, "text"),
        (ev.clone(), r#"{"id": "a", "time": "noon", "text": "x"}"#.into(), 400, "time"),
        (ev.clone(), format!(r#"{{"id": "a", "time": 1, "text": "{}"}}"#, "x".repeat(5000)), 413, "body"),
        ("/v1/sessions/nope/events".into(), r#"{"id": "a", "time": 1, "text": "x"}"#.into(), 404, "session"),
        ("/v1/sessions".into(), r#"{"users": 1}"#.into(), 400, "users"),
        ("/v1/sessions".into(), r#"{"users": 10, "colour": 2}"#.into(), 400, "colour"),
        ("/v1/sessions".into(), r#"{"state": "../etc"}"#.into(), 400, "state"),
        (format!("/v1/sessions/{id}/clock"), r#"{"to": -5}"#.into(), 400, "to"),
        (format!("/v1/sessions/{id}/clock"), r#"{}"#.into(), 400, "body"),
    ];
    for (path, body, status, field) in &cases {
        let (st, v) = s.post(path, body, &[("content-type", "application/json")]);
        assert_eq!(st, *status, "{path} {body:.80}: {v}");
        assert_eq!(v["field"], *field, "{path} {body:.80}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // A cursor from another session.
    assert_eq!(s.post(&ev, FINAL, &[]).0, 201);
    let (_, mine) = s.get(&format!("/v1/sessions/{id}/events/final/posts"));
    let cursor = ids(&mine)[0];
    let (st, v) = s.get(&format!("/v1/sessions/{other}/events/final/posts?max_id={cursor}"));
    assert_eq!(st, 404, "{v}");
    assert_eq!(s.post(&format!("/v1/sessions/{other}/events"), FINAL, &[]).0, 201);
    let (st, v) = s.get(&format!("/v1/sessions/{other}/users/0/home?max_id=99999999999"));
    assert_eq!((st, v["field"].as_str()), (400, Some("max_id")), "{v}");
    let (st, v) = s.get(&format!("/v1/sessions/{id}/users/abc/home"));
    assert_eq!((st, v["field"].as_str()), (400, Some("user")));
    let (st, v) = s.get(&format!("/v1/sessions/{id}/users/0/home?limit=0"));
    assert_eq!((st, v["field"].as_str()), (400, Some("limit")));
    let (st, v) = s.get("/v2/nothing");
    assert_eq!((st, v["field"].as_str()), (404, Some("path")));

    // 10,000 random bodies and paths: only 2xx/4xx, never a 5xx or a dropped connection.
    let paths = [
        format!("/v1/sessions/{id}/events"),
        format!("/v1/sessions/{id}/clock"),
        format!("/v1/sessions/{id}/save"),
        "/v1/sessions".to_string(),
        format!("/v1/sessions/{id}/users/1/home"),
    ];
    let client = Server::client();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pieces = [
        "{",
        "}",
        "\"id\"",
        ":",
        "\"text\"",
        "\"time\"",
        "1e999",
        "-1",
        "null",
        "[",
        "]",
        ",",
        "\"users\"",
        "3",
        "\"\\u0000\"",
        "\u{1F600}",
        "\"frame\"",
        "{\"kind\":\"win\"}",
        "\"to\"",
        "\"advance\"",
        "\"name\"",
        "\"x/../y\"",
    ];
    for i in 0..10_000 {
        let n = next() % 12;
        let mut body = String::new();
        for _ in 0..n {
            body.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        if i % 10 == 0 {
            body = format!(
                r#"{{"id": "r{i}", "time": {}, "text": "{}"}}"#,
                next() % 100_000,
                "rain".repeat((next() % 3) as usize)
            );
        }
        let path = &paths[(next() % paths.len() as u64) as usize];
        let r = if path.ends_with("/home") {
            client.get(format!("{}{path}?max_id={body}", s.base)).send()
        } else {
            client.post(format!("{}{path}", s.base)).body(body.clone()).send()
        };
        let st = r.unwrap().status().as_u16();
        assert!((200..500).contains(&st), "{path} {body:?} -> {st}");
    }
    assert_eq!(s.get("/health").0, 200, "alive after the random bodies");
}

#[test]
fn sigterm_saves_every_session_and_a_restart_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (_, v) = s.post("/v1/sessions", r#"{"users": 5000}"#, &[]);
    let id = v["id"].as_str().unwrap().to_string();
    let events =
        [FINAL, r#"{"id": "storm", "time": 90000, "text": "Floods close the coast road after a night of storms"}"#];
    for e in events {
        assert_eq!(s.post(&format!("/v1/sessions/{id}/events"), e, &[]).0, 201);
    }
    let before: Vec<Vec<u64>> = ["final", "storm"].iter().map(|e| all_event_posts(&s, &id, e)).collect();
    let (_, stats_before) = s.get(&format!("/v1/sessions/{id}/stats"));
    let status = s.terminate();
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");

    let s = Server::start(dir.path(), &[]);
    let (st, sess) = s.get(&format!("/v1/sessions/{id}"));
    assert_eq!(st, 200, "restored under its id: {sess}");
    let after: Vec<Vec<u64>> = ["final", "storm"].iter().map(|e| all_event_posts(&s, &id, e)).collect();
    assert_eq!(before, after, "the same entries, none lost or duplicated");
    let (_, mut stats_after) = s.get(&format!("/v1/sessions/{id}/stats"));
    let mut stats_before = stats_before;
    // The state's byte count is capacity, not content: a restored state is packed tighter.
    stats_before["state_bytes"] = Value::Null;
    stats_after["state_bytes"] = Value::Null;
    assert_eq!(stats_before, stats_after);
    // It goes on: a new event numbers after the restored ones, and an old id is refused.
    let (st, v) = s.post(
        &format!("/v1/sessions/{id}/events"),
        r#"{"id": "later", "time": 99000, "text": "The mayor resigns"}"#,
        &[],
    );
    assert_eq!((st, v["index"].as_u64()), (201, Some(2)), "{v}");
    assert_eq!(s.post(&format!("/v1/sessions/{id}/events"), FINAL, &[]).0, 409);
    let (_, v) = s.post("/v1/sessions", "{}", &[]);
    assert_ne!(v["id"].as_str(), Some(id.as_str()), "new ids do not reuse restored ones");
}

#[test]
fn a_configured_token_is_required_and_the_rate_limit_answers_429() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let config = dir.path().join("serve.json");
    std::fs::write(&config, r#"{"rate_per_second": 1000, "rate_burst": 1000}"#).unwrap();
    // Flags beat the config file: the rate given here wins; the token comes from the
    // environment.
    let s = Server::start_with(
        &data,
        &["--no-restore", "--config", config.to_str().unwrap(), "--rate", "20", "--rate-burst", "20"],
        &[("CHORUS_SERVE_TOKEN", "sekrit")],
    );
    let c = Server::client();
    let url = format!("{}/v1/sessions", s.base);
    assert_eq!(c.get(&url).send().unwrap().status().as_u16(), 401);
    assert_eq!(c.get(&url).bearer_auth("wrong").send().unwrap().status().as_u16(), 401);
    assert_eq!(c.get(&url).bearer_auth("sekrit").send().unwrap().status().as_u16(), 200);
    assert_eq!(c.get(format!("{url}?token=sekrit")).send().unwrap().status().as_u16(), 200);
    let codes: Vec<u16> =
        (0..60).map(|_| c.get(&url).bearer_auth("sekrit").send().unwrap().status().as_u16()).collect();
    assert!(codes.contains(&429), "{codes:?}");
    let logs = c.get(format!("{}/metrics", s.base)).send().unwrap().text().unwrap();
    assert!(!logs.contains("sekrit"));
}

/// The Python client of the README (examples/client.py, httpx) against a live server.
#[test]
fn the_readme_python_client_works() {
    let Some(python) = browser_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore"]);
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py"))
        .arg(&s.base)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("posts"), "{text}");
}

/// The live viewer in headless Chromium: the page loads, an event sent from its box shows
/// posts within a second, a fork and a comparison chart render, no console errors.
#[test]
fn the_live_viewer_shows_an_event_sent_from_its_box() {
    let Some(python) = browser_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore"]);
    let (_, v) = s.post("/v1/sessions", r#"{"users": 20000}"#, &[]);
    let id = v["id"].as_str().unwrap().to_string();
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/viewer.py"))
        .args([&s.base, &id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// The browser/client environment's python; `None` (skip) when it cannot be set up, unless
/// `CHORUS_REQUIRE_BROWSER` is set (CI), when that fails the test.
fn browser_python() -> Option<String> {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/browser-env.sh")).output().unwrap();
    if out.status.success() {
        return Some(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(std::env::var_os("CHORUS_REQUIRE_BROWSER").is_none(), "scripts/browser-env.sh failed: {why}");
    eprintln!("skipped: scripts/browser-env.sh failed: {why}");
    None
}

/// The Mastodon clients' environment (Mastodon.py in a venv, masto under `tests/mastodon`),
/// made by the project's own script; a failure is an error where CI requires it.
fn mastodon_python() -> Option<String> {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mastodon-env.sh")).output().unwrap();
    if out.status.success() {
        return Some(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(std::env::var_os("CHORUS_REQUIRE_MASTODON").is_none(), "scripts/mastodon-env.sh failed: {why}");
    eprintln!("skipped: scripts/mastodon-env.sh failed: {why}");
    None
}

/// A session with one game event applied and a player token.
fn mastodon_session(s: &Server) -> String {
    let (st, v) = s.post("/v1/sessions", r#"{"users": 20000, "seed": 7}"#, &[]);
    assert_eq!(st, 201, "{v}");
    let (st, v) = s.post("/v1/sessions/s1/events", FINAL, &[]);
    assert_eq!(st, 201, "{v}");
    let (st, v) = s.post("/v1/sessions/s1/tokens", r#"{"handle": "hero", "display_name": "The Hero"}"#, &[]);
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["acct"], "hero");
    v["access_token"].as_str().unwrap().to_string()
}

/// Mastodon.py, unchanged, against the Mastodon API: credentials, a posted status whose thread
/// fills with the population's replies, ≥ 10 streamed updates, home with `fetch_next`, a
/// status, an account with its statuses and followers, a tag timeline, trends, and a
/// favourite and a boost that show on the status.
#[test]
fn mastodon_py_reads_streams_and_posts() {
    let Some(python) = mastodon_python() else { return };
    let text = run_mastodon_client(std::path::Path::new(&python), "mastodon_py.py");
    assert!(text.contains("OK"), "{text}");
}

/// masto (npm), unchanged: credentials, a status and its thread, home, an account, and the
/// WebSocket streaming client (token as the WebSocket subprotocol, `subscribe` messages).
#[test]
fn masto_js_reads_streams_and_posts() {
    let Some(python) = mastodon_python() else { return };
    run_mastodon_client(&std::path::Path::new(&python).with_file_name("node"), "masto_client.mjs");
}

/// Runs `tests/mastodon/SCRIPT` with `program` against a fresh server's Mastodon API (the
/// session of [`mastodon_session`]); asserts it succeeds and returns its standard output.
fn run_mastodon_client(program: &std::path::Path, script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore", "--rate", "0"]);
    let token = mastodon_session(&s);
    let out = Command::new(program)
        .arg(format!("{}/tests/mastodon/{script}", env!("CARGO_MANIFEST_DIR")))
        .env("CHORUS_BASE", &s.base)
        .env("CHORUS_TOKEN", &token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    text
}

/// The Mastodon API's refusals are JSON naming the problem: no or a wrong token 401, an empty
/// or too long status 422, an unknown status or account 404; list answers carry absolute
/// `Link` URLs; a synthetic user's token posts as that user.
#[test]
fn the_mastodon_api_refuses_bad_requests_and_pages_with_links() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore", "--rate", "0", "--max-status-chars", "120"]);
    let token = mastodon_session(&s);
    let c = Server::client();
    let url = |p: &str| format!("{}{p}", s.base);
    let auth = format!("Bearer {token}");
    let check = |r: reqwest::blocking::Response, status: u16| {
        assert_eq!(r.status().as_u16(), status);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let v: Value = r.json().unwrap();
        assert!(v["error"].is_string(), "{v}");
        v
    };
    let kept = s.get("/v1/sessions/s1").1["posts"].as_u64().unwrap();
    check(c.get(url("/api/v1/timelines/home")).send().unwrap(), 401);
    check(c.get(url("/api/v1/timelines/home")).header("authorization", "Bearer nope").send().unwrap(), 401);
    let empty = c.post(url("/api/v1/statuses")).header("authorization", &auth).form(&[("status", " ")]).send().unwrap();
    assert_eq!(check(empty, 422)["field"], "status");
    let instance: Value = Server::client().get(format!("{}/api/v2/instance", s.base)).send().unwrap().json().unwrap();
    assert_eq!(instance["configuration"]["statuses"]["max_characters"], 120, "the configured length");
    let long = "x".repeat(121);
    check(
        c.post(url("/api/v1/statuses")).header("authorization", &auth).json(&json!({"status": long})).send().unwrap(),
        422,
    );
    check(c.get(url("/api/v1/statuses/123456789")).header("authorization", &auth).send().unwrap(), 404);
    check(c.get(url("/api/v1/accounts/99999999")).header("authorization", &auth).send().unwrap(), 404);
    check(
        c.post(url("/api/v1/statuses"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .unwrap(),
        400,
    );
    let (st, v) = s.post("/v1/sessions/s1/tokens", r#"{"account": 20000000}"#, &[]);
    assert_eq!(st, 404, "{v}");
    let (_, session) = s.get("/v1/sessions/s1");
    assert_eq!(
        (session["events"].as_u64(), session["posts"].as_u64()),
        (Some(1), Some(kept)),
        "the refusals changed nothing"
    );

    let r = c.get(url("/api/v1/timelines/public?limit=5")).header("authorization", &auth).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let link = r.headers()["link"].to_str().unwrap().to_string();
    let page: Vec<Value> = r.json().unwrap();
    assert_eq!(page.len(), 5);
    let oldest = page.last().unwrap()["id"].as_str().unwrap().to_string();
    assert!(
        link.contains(&format!("<{}/api/v1/timelines/public?limit=5&max_id={oldest}>; rel=\"next\"", s.base)),
        "{link}"
    );
    let next: Vec<Value> = c
        .get(url(&format!("/api/v1/timelines/public?limit=5&max_id={oldest}")))
        .header("authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let n = |v: &Value| v["id"].as_str().unwrap().parse::<u64>().unwrap();
    assert!(next.iter().all(|x| n(x) < oldest.parse::<u64>().unwrap()), "the next page is older");
    let newer: Vec<Value> = c
        .get(url(&format!("/api/v1/timelines/public?limit=2&min_id={oldest}")))
        .header("authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        newer.iter().map(n).collect::<Vec<_>>(),
        page[page.len() - 3..page.len() - 1].iter().map(n).collect::<Vec<_>>(),
        "min_id: the ones just after it"
    );

    // A synthetic user's token: its status is an event, authored by that user.
    let (_, v) = s.post("/v1/sessions/s1/tokens", r#"{"account": 42}"#, &[]);
    let user = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let r = c
        .post(url("/api/v1/statuses"))
        .header("authorization", &user)
        .form(&[("status", "The mayor resigns after the budget scandal")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let st: Value = r.json().unwrap();
    assert_eq!(st["account"]["id"], "42");
    let ctx: Value = c
        .get(url(&format!("/api/v1/statuses/{}/context", st["id"].as_str().unwrap())))
        .header("authorization", &user)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(!ctx["descendants"].as_array().unwrap().is_empty(), "the population replies: {ctx}");

    // A deleted session's tokens stop working.
    assert_eq!(c.delete(url("/v1/sessions/s1")).send().unwrap().status().as_u16(), 204);
    check(c.get(url("/api/v1/timelines/home")).header("authorization", &auth).send().unwrap(), 401);
}

/// `chorus publish` mirrors a run's timeline to a Mastodon-compatible server (this one): an
/// interrupted run (killed mid-way) resumes from its progress file and, with the idempotency
/// keys, nothing is posted twice; replies answer the mirrored parents.
#[test]
fn publish_mirrors_a_timeline_and_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore", "--rate", "0"]);
    let (st, v) = s.post("/v1/sessions", r#"{"users": 2000, "seed": 3}"#, &[]);
    assert_eq!(st, 201, "{v}");
    let accounts = [1u32, 2, 3];
    let tokens: Vec<String> = accounts
        .iter()
        .map(|a| {
            s.post("/v1/sessions/s1/tokens", &format!(r#"{{"account": {a}}}"#), &[]).1["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let tokens_file = dir.path().join("tokens.txt");
    std::fs::write(&tokens_file, format!("# the accounts to post as\n{}\n", tokens.join("\n"))).unwrap();
    // A run's timeline: 12 demo-style events at 10,000 users.
    let events = dir.path().join("events.jsonl");
    let lines: Vec<String> = (0..12)
        .map(|i| {
            let text = [
                "The Redhawks win the cup final 3-1 in overtime",
                "The mayor resigns after the budget scandal",
                "Floods close the coast road",
            ][i % 3];
            json!({"id": format!("e{i}"), "time": 1000 + i * 3600, "text": text}).to_string()
        })
        .collect();
    std::fs::write(&events, lines.join("\n")).unwrap();
    let timeline = dir.path().join("t.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--users", "10000", "--seed", "5", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&timeline)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let entries: Vec<Value> =
        std::fs::read_to_string(&timeline).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let texts =
        entries.iter().filter(|e| e["kind"] != "like" && e["kind"] != "repost" && e["text"].is_string()).count();
    assert!(texts >= 20, "the run wrote {texts} text entries");

    let progress = dir.path().join("progress.jsonl");
    let publish = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chorus"));
        cmd.args(["publish", "--server", &s.base, "--timeline"])
            .arg(&timeline)
            .arg("--tokens")
            .arg(&tokens_file)
            .arg("--progress")
            .arg(&progress)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    // First a bounded run, then one killed mid-way, then one to the end.
    let first = publish(&["--limit", "10", "--rate", "400"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let r1: Value = serde_json::from_slice(&first.stdout).unwrap();
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&r1, "statuses") + n(&r1, "favourites") + n(&r1, "boosts") + n(&r1, "skipped"), 10, "{r1}");
    let mut child = publish(&["--rate", "100"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    let _ = child.wait();
    let last = publish(&["--rate", "400"]).output().unwrap();
    assert!(last.status.success(), "{}", String::from_utf8_lossy(&last.stderr));
    let r3: Value = serde_json::from_slice(&last.stdout).unwrap();
    let resumed = n(&r3, "resumed") as usize;
    assert!(
        resumed > 10 && resumed < entries.len(),
        "the killed run did part of the work: {r3}, {} entries",
        entries.len()
    );
    eprintln!("{} entries: first run 10, killed run {}, last run {r3}", entries.len(), resumed - 10);
    for line in String::from_utf8_lossy(&last.stdout).lines().chain(String::from_utf8_lossy(&last.stderr).lines()) {
        assert!(tokens.iter().all(|t| !line.contains(t.as_str())), "a token in the output: {line}");
    }

    // On the server: exactly one mirrored status per text entry that was not skipped, each
    // once, and replies to mirrored parents answer them.
    let c = Server::client();
    let mut mirrored: Vec<Value> = Vec::new();
    for (a, t) in accounts.iter().zip(&tokens) {
        let mut max = String::new();
        loop {
            let page: Vec<Value> = c
                .get(format!("{}/api/v1/accounts/{a}/statuses?limit=40{max}", s.base))
                .bearer_auth(t)
                .send()
                .unwrap()
                .json()
                .unwrap();
            let Some(last) = page.last() else { break };
            max = format!("&max_id={}", last["id"].as_str().unwrap());
            mirrored.extend(page.into_iter().filter(|x| x["chorus"]["source"] == "player"));
        }
    }
    let done: Vec<Value> =
        std::fs::read_to_string(&progress).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let ids: std::collections::HashSet<u64> = done.iter().map(|d| d["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), entries.len(), "every entry handled once in the progress file");
    let with_remote = done.iter().filter(|d| d["remote"].is_string()).count();
    assert_eq!(mirrored.len(), with_remote, "one status per mirrored entry, none twice");
    let remote_ids: std::collections::HashSet<&str> = mirrored.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(remote_ids.len(), mirrored.len());
    assert!(
        mirrored.iter().any(|m| m["in_reply_to_id"].as_str().is_some_and(|p| remote_ids.contains(p))),
        "replies are threaded"
    );

    // Against a server that rate-limits (20 requests/s, burst 5), a run asking for 1,000/s
    // waits out the 429s and loses nothing.
    let dir2 = tempfile::tempdir().unwrap();
    let slow = Server::start(dir2.path(), &["--no-restore", "--rate", "20", "--rate-burst", "5"]);
    slow.post("/v1/sessions", r#"{"users": 2000, "seed": 3}"#, &[]);
    let token = slow.post("/v1/sessions/s1/tokens", "{}", &[]).1["access_token"].as_str().unwrap().to_string();
    std::fs::write(&tokens_file, token).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["publish", "--server", &slow.base, "--rate", "1000", "--limit", "40", "--timeline"])
        .arg(&timeline)
        .arg("--tokens")
        .arg(&tokens_file)
        .arg("--progress")
        .arg(dir2.path().join("p.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(n(&r, "rate_limited") > 0, "{r}");
    assert_eq!(n(&r, "statuses") + n(&r, "favourites") + n(&r, "boosts") + n(&r, "skipped"), 40, "{r}");
}

/// Retention of a long-running session (issue 23, item 4): with `--feed-entries`, a session
/// keeps about that many of the newest entries; reads of the dropped ones answer 404, the kept
/// ones read as before.
#[test]
fn a_session_keeps_its_newest_entries_and_drops_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--no-restore", "--feed-entries", "3000"]);
    let (st, v) = s.post("/v1/sessions", r#"{"users": 20000, "seed": 7}"#, &[]);
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let texts = [
        "The Redhawks win the cup final 3-1 in overtime",
        "The mayor resigns after the budget scandal",
        "Floods close the coast road after a night of storms",
        "A new phone launch breaks sales records",
    ];
    let mut firsts = Vec::new();
    let mut made = 0u64;
    for k in 0..16 {
        let line = json!({"id": format!("e{k}"), "time": 600 + k * 3_600, "text": texts[k % texts.len()]}).to_string();
        let (st, v) = s.post(&format!("/v1/sessions/{id}/events"), &line, &[]);
        assert_eq!(st, 201, "{v}");
        made += v["total"].as_u64().unwrap();
        let posts = all_event_posts(&s, &id, &format!("e{k}"));
        firsts.push(posts.iter().copied().min().expect("entries for the event"));
        let (_, stats) = s.get(&format!("/v1/sessions/{id}/stats"));
        let held = stats["posts"].as_u64().unwrap();
        assert!(held <= 4_500 + v["total"].as_u64().unwrap(), "held {held} after event {k}");
    }
    assert!(made > 6_000, "the events made more than the limit: {made}");
    let (_, stats) = s.get(&format!("/v1/sessions/{id}/stats"));
    assert!(stats["posts"].as_u64().unwrap() < made, "{stats}");
    let (st, _) = s.get(&format!("/v1/sessions/{id}/posts/{}", firsts[0]));
    assert_eq!(st, 404, "the first event's entries were dropped");
    let (st, v) = s.get(&format!("/v1/sessions/{id}/posts/{}", firsts[15]));
    assert_eq!(st, 200, "{v}");
    assert!(!all_event_posts(&s, &id, "e15").is_empty());
    assert!(all_event_posts(&s, &id, "e0").is_empty());
}
