//! A load generator for `chorus serve` (real sockets, keep-alive connections):
//!
//! ```text
//! cargo run --release --example load -- BASE SESSION events N [TEXTS]  # event -> first wave latency
//!     (TEXTS: comma-separated indexes into the six headlines below, e.g. `1,2` for the two
//!     medium events; default all six in turn)
//! cargo run --release --example load -- BASE SESSION home SECONDS CONC  # home timelines/s (+1 event/s)
//! cargo run --release --example load -- BASE SESSION streams CLIENTS  # SSE clients while events flow
//! cargo run --release --example load -- BASE SESSION mastodon-home SECONDS CONC  # the same
//!     home reads through the Mastodon API (`/api/v1/timelines/home`, 1,000 users' tokens)
//! ```
//! Prints one JSON line of figures (latencies in ms from hdrhistogram).

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TEXTS: [&str; 6] = [
    "The Redhawks win the cup final 3-1 in overtime",
    "The mayor resigns after the budget scandal",
    "Floods close the coast road after a night of storms",
    "A new phone launches with a folding screen",
    "The Ironclads sack their coach after five straight losses",
    "Scientists find water ice on a nearby moon",
];

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn post_event(c: &reqwest::Client, base: &str, session: &str, i: u64) -> (u16, Duration) {
    post_text(c, base, session, i, TEXTS[i as usize % TEXTS.len()]).await
}

async fn post_text(c: &reqwest::Client, base: &str, session: &str, i: u64, text: &str) -> (u16, Duration) {
    let body = serde_json::json!({"id": format!("load-{i}-{}", std::process::id()), "time": 100_000 + i as i64 * 600, "text": text});
    let t = Instant::now();
    let r = c.post(format!("{base}/v1/sessions/{session}/events")).json(&body).send().await;
    let status = match r {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s
        }
        Err(_) => 0,
    };
    (status, t.elapsed())
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: load BASE SESSION events N | home SECONDS CONCURRENCY | streams CLIENTS");
        std::process::exit(2);
    }
    let (base, session, mode) = (a[1].clone(), a[2].clone(), a[3].as_str());
    let c = reqwest::Client::builder().pool_max_idle_per_host(1024).build().expect("client");
    let users: u64 = c
        .get(format!("{base}/v1/sessions/{session}"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("session")
        .json::<serde_json::Value>()
        .await
        .expect("json")["users"]
        .as_u64()
        .unwrap_or(1);
    match mode {
        "events" => {
            let n: u64 = a[4].parse().expect("N");
            let texts: Vec<&str> = match a.get(5) {
                Some(list) => list.split(',').map(|k| TEXTS[k.parse::<usize>().expect("TEXTS index")]).collect(),
                None => TEXTS.to_vec(),
            };
            let mut h = Histogram::<u64>::new(3).expect("hist");
            let mut bad = 0;
            for i in 0..n {
                let (s, d) = post_text(&c, &base, &session, i, texts[i as usize % texts.len()]).await;
                bad += (s != 201) as u32;
                h.record(d.as_micros() as u64).expect("record");
            }
            println!(
                "{}",
                serde_json::json!({"mode": "events", "users": users, "events": n, "non_201": bad,
                    "p50_ms": ms(&h, 0.5), "p90_ms": ms(&h, 0.9), "p99_ms": ms(&h, 0.99), "max_ms": h.max() as f64 / 1000.0})
            );
        }
        "home" | "mastodon-home" => {
            let mastodon = mode == "mastodon-home";
            let secs: u64 = a[4].parse().expect("SECONDS");
            // Mastodon: one token per user for 1,000 users spread over the population.
            let mut tokens = Vec::new();
            if mastodon {
                for k in 0..1000u64 {
                    let u = k * (users / 1000).max(1);
                    let v: serde_json::Value = c
                        .post(format!("{base}/v1/sessions/{session}/tokens"))
                        .json(&serde_json::json!({"account": u}))
                        .send()
                        .await
                        .expect("token")
                        .json()
                        .await
                        .expect("token json");
                    tokens.push(v["access_token"].as_str().expect("access_token").to_string());
                }
            }
            let tokens = Arc::new(tokens);
            let conc: usize = a.get(5).map(|s| s.parse().expect("CONCURRENCY")).unwrap_or(64);
            let stop = Arc::new(AtomicBool::new(false));
            let events = Arc::new(AtomicU64::new(0));
            let flow = {
                let (c, base, session, stop, events) =
                    (c.clone(), base.clone(), session.clone(), stop.clone(), events.clone());
                tokio::spawn(async move {
                    let mut i = 10_000;
                    while !stop.load(Ordering::Relaxed) {
                        post_event(&c, &base, &session, i).await;
                        events.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                })
            };
            let start = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..conc {
                let (c, base, session, stop) = (c.clone(), base.clone(), session.clone(), stop.clone());
                let tokens = tokens.clone();
                tasks.push(tokio::spawn(async move {
                    let mut h = Histogram::<u64>::new(3).expect("hist");
                    let (mut ok, mut bad) = (0u64, 0u64);
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ w as u64;
                    while !stop.load(Ordering::Relaxed) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let u = x % users;
                        let t = Instant::now();
                        let req = if mastodon {
                            let token = &tokens[(x % tokens.len() as u64) as usize];
                            c.get(format!("{base}/api/v1/timelines/home?limit=20")).bearer_auth(token)
                        } else {
                            c.get(format!("{base}/v1/sessions/{session}/users/{u}/home?limit=20"))
                        };
                        match req.send().await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                ok += 1;
                            }
                            _ => bad += 1,
                        }
                        h.record(t.elapsed().as_micros() as u64).expect("record");
                    }
                    (h, ok, bad)
                }));
            }
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
            let mut h = Histogram::<u64>::new(3).expect("hist");
            let (mut ok, mut bad) = (0, 0);
            for t in tasks {
                let (th, o, b) = t.await.expect("task");
                h.add(th).expect("add");
                ok += o;
                bad += b;
            }
            let _ = flow.await;
            let wall = start.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({"mode": mode, "users": users, "concurrency": conc, "seconds": wall,
                    "requests": ok, "errors": bad, "per_second": (ok as f64 / wall).round(),
                    "events_during": events.load(Ordering::Relaxed),
                    "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99), "max_ms": h.max() as f64 / 1000.0})
            );
        }
        "streams" => {
            let clients: usize = a[4].parse().expect("CLIENTS");
            let received = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (c, url, received) = (c.clone(), format!("{base}/v1/sessions/{session}/stream"), received.clone());
                tasks.push(tokio::spawn(async move {
                    use futures_util::StreamExt;
                    let Ok(r) = c.get(url).send().await else { return };
                    let mut body = r.bytes_stream();
                    while let Some(Ok(chunk)) = body.next().await {
                        let n = chunk.windows(6).filter(|w| w == b"data: ").count();
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut posted = 0;
            for i in 0..10 {
                post_event(&c, &base, &session, 20_000 + i).await;
                posted += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            println!(
                "{}",
                serde_json::json!({"mode": "streams", "users": users, "clients": clients, "events": posted,
                    "entries_received": received.load(Ordering::Relaxed)})
            );
            for t in tasks {
                t.abort();
            }
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
}
