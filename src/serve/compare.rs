//! What-if comparison of two sessions: over the events each applied since they parted (a
//! fork and its parent: events after the fork point; unrelated sessions: all events), posts
//! by side of each stakeholder, by sentiment, mean sentiment, the most engaged accounts, the
//! top tags and the follows gained and lost. As JSON and as an SVG bar chart.

use super::api::session;
use super::error::ApiError;
use super::session::Session;
use super::App;
use crate::ids::UserId;
use crate::templates::Sentiment;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Events both sessions share (the fork point), 0 when unrelated.
fn shared_events(a: &Session, b: &Session) -> usize {
    match (&a.origin, &b.origin) {
        (_, Some(o)) if o.parent == a.id => o.events,
        (Some(o), _) if o.parent == b.id => o.events,
        (Some(x), Some(y)) if x.parent == y.parent => x.events.min(y.events),
        _ => 0,
    }
}

/// One session's side of the comparison, over its events from number `from` on.
fn summary(s: &Session, from: usize) -> Value {
    let sim = s.sim.read();
    let population = sim.population();
    let world = population.world();
    let events = &sim.events()[from.min(sim.events().len())..];
    let (mut pos, mut neu, mut neg, mut text) = (0usize, 0usize, 0usize, 0usize);
    let mut sides: BTreeMap<String, usize> = BTreeMap::new();
    let mut accounts: HashMap<u32, u32> = HashMap::new();
    let mut tags: HashMap<String, u32> = HashMap::new();
    for e in events {
        let stakes: Vec<(u16, &str)> =
            e.sides.iter().filter_map(|s| world.find(&s.entity).map(|i| (i, s.name.as_str()))).collect();
        for p in sim.feed().by_event(&e.id, crate::sim::Page::first(usize::MAX)) {
            let Some(t) = &p.text else { continue };
            text += 1;
            match p.sentiment {
                Sentiment::Positive => pos += 1,
                Sentiment::Negative => neg += 1,
                Sentiment::Neutral => neu += 1,
            }
            for (i, name) in &stakes {
                if population.supports(p.author, *i) {
                    *sides.entry(format!("fans of {name}")).or_default() += 1;
                }
            }
            *accounts.entry(p.author.0).or_default() += sim.feed().engagement(p.id);
            for tag in crate::sim::feed::hashtags(t) {
                *tags.entry(tag).or_default() += 1;
            }
        }
    }
    let mut top: Vec<(u32, u32)> = accounts.into_iter().filter(|a| a.1 > 0).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<Value> = top
        .iter()
        .take(5)
        .map(|&(u, n)| json!({"user": u, "handle": population.handle(UserId(u)), "engagement": n}))
        .collect();
    let mut tags: Vec<(String, u32)> = tags.into_iter().collect();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let tags: Vec<Value> = tags.iter().take(5).map(|(t, n)| json!({"tag": t, "posts": n})).collect();
    let (follows, unfollows) = sim.pipeline().state().follows().counts();
    let mean = if text > 0 { (pos as f64 - neg as f64) / text as f64 } else { 0.0 };
    json!({
        "session": s.id,
        "events": events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        "posts": text,
        "positive": pos,
        "neutral": neu,
        "negative": neg,
        "mean_sentiment": (mean * 1000.0).round() / 1000.0,
        "by_side": sides,
        "top_accounts": top,
        "top_tags": tags,
        "follows_gained": follows,
        "follows_lost": unfollows,
    })
}

/// Both summaries and the numeric differences (b − a).
fn compare(app: &App, q: &HashMap<String, String>) -> Result<Value, ApiError> {
    let a = session(app, q.get("a").ok_or_else(|| ApiError::bad("a", "give ?a=SESSION&b=SESSION"))?)
        .map_err(|e| ApiError { field: Some("a".into()), ..e })?;
    let b = session(app, q.get("b").ok_or_else(|| ApiError::bad("b", "give ?a=SESSION&b=SESSION"))?)
        .map_err(|e| ApiError { field: Some("b".into()), ..e })?;
    let from = shared_events(&a, &b);
    let (sa, sb) = (summary(&a, from), summary(&b, from));
    let mut delta = serde_json::Map::new();
    for k in ["posts", "positive", "neutral", "negative", "mean_sentiment", "follows_gained", "follows_lost"] {
        if let (Some(x), Some(y)) = (sa[k].as_f64(), sb[k].as_f64()) {
            delta.insert(k.into(), json!(((y - x) * 1000.0).round() / 1000.0));
        }
    }
    Ok(json!({ "shared_events": from, "a": sa, "b": sb, "delta": delta }))
}

/// `GET /v1/compare?a=&b=`
pub async fn compare_json(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    match compare(&app, &q) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/compare.svg?a=&b=`
pub async fn compare_svg(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    match compare(&app, &q) {
        Ok(v) => ([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], svg(&v)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A grouped bar chart: for each measure, a bar for session a and one for b.
pub fn svg(v: &Value) -> String {
    let mut rows: Vec<(String, f64, f64)> = ["posts", "positive", "neutral", "negative"]
        .iter()
        .map(|k| (k.to_string(), v["a"][k].as_f64().unwrap_or(0.0), v["b"][k].as_f64().unwrap_or(0.0)))
        .collect();
    let mut sides: Vec<String> = Vec::new();
    for s in ["a", "b"] {
        if let Some(m) = v[s]["by_side"].as_object() {
            sides.extend(m.keys().filter(|k| !sides.contains(k)).cloned().collect::<Vec<_>>());
        }
    }
    for k in sides.iter().take(6) {
        rows.push((
            k.clone(),
            v["a"]["by_side"][k].as_f64().unwrap_or(0.0),
            v["b"]["by_side"][k].as_f64().unwrap_or(0.0),
        ));
    }
    let max = rows.iter().map(|r| r.1.max(r.2)).fold(1.0, f64::max);
    let (label_w, bar_w, row_h) = (170.0, 360.0, 34.0);
    let h = 50.0 + rows.len() as f64 * row_h;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <rect x=\"{label_w}\" y=\"8\" width=\"12\" height=\"12\" fill=\"#3b6fd8\"/><text x=\"{ax}\" y=\"18\">a: {a}</text>\
         <rect x=\"{bx}\" y=\"8\" width=\"12\" height=\"12\" fill=\"#e0823a\"/><text x=\"{bt}\" y=\"18\">b: {b}</text>",
        w = label_w + bar_w + 70.0,
        ax = label_w + 16.0,
        bx = label_w + 160.0,
        bt = label_w + 176.0,
        a = esc(v["a"]["session"].as_str().unwrap_or("")),
        b = esc(v["b"]["session"].as_str().unwrap_or("")),
    );
    for (i, (name, a, b)) in rows.iter().enumerate() {
        let y = 34.0 + i as f64 * row_h;
        let (wa, wb) = (a / max * bar_w, b / max * bar_w);
        s.push_str(&format!(
            "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{n}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{wa:.1}\" height=\"12\" fill=\"#3b6fd8\"/><text x=\"{la:.1}\" y=\"{ya}\">{a}</text>\
             <rect x=\"{label_w}\" y=\"{y2}\" width=\"{wb:.1}\" height=\"12\" fill=\"#e0823a\"/><text x=\"{lb:.1}\" y=\"{yb}\">{b}</text>",
            tx = label_w - 8.0,
            ty = y + 16.0,
            n = esc(name),
            la = label_w + wa + 4.0,
            ya = y + 10.0,
            y2 = y + 13.0,
            lb = label_w + wb + 4.0,
            yb = y + 23.0,
        ));
    }
    s.push_str("</svg>");
    s
}
