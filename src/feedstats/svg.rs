//! The distributions of a [`FeedStats`] as one SVG page: complementary cumulative
//! distributions on log-log axes (text posts per author, cascade size, followers) and the
//! reply delays by hour. Plain SVG 1.1, no scripts, no external fonts.

use super::FeedStats;
use std::fmt::Write;

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
const MARGIN: f64 = 50.0;

/// `P(X >= x)` at every distinct value of a `(value, count)` histogram, positive values only.
fn ccdf(hist: &[(u64, u64)]) -> Vec<(f64, f64)> {
    let total: u64 = hist.iter().map(|h| h.1).sum();
    let mut above = total;
    let mut out = Vec::new();
    for &(v, c) in hist {
        if v > 0 && total > 0 {
            out.push((v as f64, above as f64 / total as f64));
        }
        above -= c;
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Opens a panel at (`x0`, `y0`): its group, title and frame. Returns the plot area's width
/// and height.
fn panel(out: &mut String, x0: f64, y0: f64, title: &str) -> (f64, f64) {
    let _ = writeln!(out, r#"<g transform="translate({x0},{y0})">"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">{}</text>"#,
        PANEL_W / 2.0,
        esc(title)
    );
    let (w, h) = (PANEL_W - 2.0 * MARGIN, PANEL_H - 2.0 * MARGIN);
    let _ = writeln!(out, r##"<rect x="{MARGIN}" y="{MARGIN}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##);
    (w, h)
}

/// One log-log panel at (`x0`, `y0`).
fn loglog(out: &mut String, x0: f64, y0: f64, title: &str, xlabel: &str, points: &[(f64, f64)]) {
    let (w, h) = panel(out, x0, y0, title);
    if points.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">no data</text></g>"#,
            PANEL_W / 2.0,
            PANEL_H / 2.0
        );
        return;
    }
    let xmax = points.iter().fold(1.0f64, |m, p| m.max(p.0)).log10().ceil().max(1.0);
    let ymin = points.iter().fold(1.0f64, |m, p| m.min(p.1)).log10().floor().min(-1.0);
    let px = |x: f64| MARGIN + x.log10() / xmax * w;
    let py = |y: f64| MARGIN + (y.log10() / ymin) * h;
    for d in 0..=xmax as i32 {
        let x = px(10f64.powi(d));
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle" font-size="11">1e{d}</text>"##,
            MARGIN,
            MARGIN + h,
            MARGIN + h + 14.0
        );
    }
    for d in (ymin as i32)..=0 {
        let y = py(10f64.powi(d));
        let _ = writeln!(
            out,
            r##"<line x1="{MARGIN}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">1e{d}</text>"##,
            MARGIN + w,
            MARGIN - 4.0,
            y + 4.0
        );
    }
    let path: Vec<String> = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
    let _ = writeln!(out, r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##, path.join(" "));
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text><text x="14" y="{}" font-size="12" transform="rotate(-90 14 {})" text-anchor="middle">P(X ≥ x)</text></g>"#,
        PANEL_W / 2.0,
        PANEL_H - 8.0,
        esc(xlabel),
        PANEL_H / 2.0,
        PANEL_H / 2.0
    );
}

/// Bars of reply counts by hour.
fn bars(out: &mut String, x0: f64, y0: f64, title: &str, counts: &[u64]) {
    let (w, h) = panel(out, x0, y0, title);
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = w / counts.len().max(1) as f64;
    for (i, &c) in counts.iter().enumerate() {
        let bh = c as f64 / most * h;
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#ff7f0e"/>"##,
            MARGIN + i as f64 * bw,
            MARGIN + h - bh,
            (bw - 1.0).max(0.5)
        );
    }
    for hour in (0..counts.len()).step_by(6) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11">{hour}</text>"#,
            MARGIN + (hour as f64 + 0.5) * bw,
            MARGIN + h + 14.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">hours after the root post (last bar: 48 and later)</text></g>"#,
        PANEL_W / 2.0,
        PANEL_H - 8.0
    );
}

/// The SVG page of `stats`.
pub fn render(stats: &FeedStats) -> String {
    let mut out = String::new();
    let (w, h) = (2.0 * PANEL_W, 2.0 * PANEL_H + 30.0);
    let _ = writeln!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="15">chorus stats: {} entries, {} users, {:.2} game days</text>"#,
        w / 2.0,
        stats.entries,
        stats.users,
        stats.days
    );
    loglog(&mut out, 0.0, 30.0, "text posts per author", "text posts", &ccdf(&stats.activity.per_author));
    loglog(
        &mut out,
        PANEL_W,
        30.0,
        "cascade size per root post",
        "entries in the cascade",
        &ccdf(&stats.cascades.sizes),
    );
    let followers = stats.followers.as_ref().map(|f| ccdf(&f.histogram)).unwrap_or_default();
    loglog(&mut out, 0.0, 30.0 + PANEL_H, "followers per account", "followers", &followers);
    bars(&mut out, PANEL_W, 30.0 + PANEL_H, "replies by delay", &stats.delays.by_hour);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccdf_starts_at_one_and_falls() {
        let c = ccdf(&[(0, 5), (1, 3), (4, 2)]);
        assert_eq!(c, vec![(1.0, 0.5), (4.0, 0.2)]);
    }
}
