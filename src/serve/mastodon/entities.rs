//! Mastodon JSON entities (Status, Account, Tag, MediaAttachment) built from chorus posts and
//! users, as <https://docs.joinmastodon.org/entities/> documents them: ids as strings, dates
//! in ISO 8601 UTC, content as HTML.
//!
//! Game time `t` seconds is the instant `EPOCH + t` (2026-01-01T00:00:00Z). The player's
//! account is the id one past the population's last user.

use crate::ids::UserId;
use crate::sim::Simulation;
use crate::timeline::{Post, PostKind};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Unix seconds of game time 0 (2026-01-01T00:00:00Z).
pub const EPOCH: i64 = 1_767_225_600;

/// What the viewing account did to posts (its favourites and boosts).
#[derive(Default, Clone)]
pub struct Marks {
    /// Posts it favourited.
    pub favourites: HashSet<u64>,
    /// Posts it boosted.
    pub reblogs: HashSet<u64>,
}

/// The player's account in a session.
#[derive(Clone, Debug)]
pub struct Player {
    /// Its user id (the population's size: no synthetic user has it).
    pub id: u32,
    /// Its handle.
    pub handle: String,
    /// Its display name.
    pub name: String,
}

/// Where links point: `http://HOST` of the request.
pub struct Ctx<'a> {
    /// The simulation read.
    pub sim: &'a Simulation,
    /// Base URL of this server as the client reached it.
    pub base: &'a str,
    /// The player's account.
    pub player: &'a Player,
    /// The viewer's favourites and boosts.
    pub marks: &'a Marks,
}

/// `2026-01-01T00:10:00.000Z` for game time 600.
pub fn iso(t: i64) -> String {
    let secs = EPOCH + t;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Text as HTML: escaped, hashtags linked, in one paragraph.
fn html(text: &str, base: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str("<p>");
    let mut rest = text;
    while let Some(i) = rest.find('#') {
        escape_into(&rest[..i], &mut out);
        let after = &rest[i + 1..];
        let tag: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if tag.is_empty() {
            out.push('#');
        } else {
            let lower = tag.to_lowercase();
            out.push_str(&format!(
                "<a href=\"{base}/tags/{}\" class=\"mention hashtag\" rel=\"tag\">#<span>",
                escape(&lower)
            ));
            escape_into(&tag, &mut out);
            out.push_str("</span></a>");
        }
        rest = &after[tag.len()..];
    }
    escape_into(rest, &mut out);
    out.push_str("</p>");
    out
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    escape_into(s, &mut out);
    out
}

/// An Account.
pub fn account(c: &Ctx, u: u32) -> Value {
    let sim = c.sim;
    let feed = sim.feed();
    if u == c.player.id {
        return json!({
            "id": u.to_string(), "username": c.player.handle, "acct": c.player.handle,
            "display_name": c.player.name, "locked": false, "bot": false, "group": false,
            "discoverable": true, "created_at": iso(0), "note": "<p>The player.</p>",
            "url": format!("{}/@{}", c.base, c.player.handle),
            "avatar": format!("{}/api/chorus/avatars/{u}.svg", c.base),
            "avatar_static": format!("{}/api/chorus/avatars/{u}.svg", c.base),
            "header": "", "header_static": "",
            "followers_count": 0, "following_count": player_following(sim).len(),
            "statuses_count": feed.author_len(UserId(u)), "last_status_at": null,
            "emojis": [], "fields": [],
        });
    }
    let pop = sim.population();
    let user = pop.user(UserId(u));
    let world = pop.world();
    let town = world.entity(user.town).name.clone();
    let interests: Vec<&str> = user.interests.iter().take(3).map(|(t, _)| t.name()).collect();
    let note = format!("{} in {}. Into {}.", user.occupation, town, interests.join(", "));
    json!({
        "id": u.to_string(), "username": user.handle, "acct": user.handle,
        "display_name": user.name, "locked": false, "bot": false, "group": false,
        "discoverable": true, "created_at": iso(0), "note": html(&note, c.base),
        "url": format!("{}/@{}", c.base, user.handle),
        "avatar": format!("{}/api/chorus/avatars/{u}.svg", c.base),
        "avatar_static": format!("{}/api/chorus/avatars/{u}.svg", c.base),
        "header": "", "header_static": "",
        "followers_count": pop.graph().in_degree(UserId(u)),
        "following_count": sim.following(UserId(u)).len(),
        "statuses_count": feed.author_len(UserId(u)), "last_status_at": null,
        "emojis": [], "fields": [],
    })
}

/// Whom the player follows: the 200 most-followed accounts of the generated graph (ties by
/// lower id), so a new player's home timeline shows the loudest voices.
pub fn player_following(sim: &Simulation) -> Vec<u32> {
    let graph = sim.population().graph();
    let n = sim.population().len() as u32;
    let mut all: Vec<(u32, u32)> = (0..n).map(|u| (graph.in_degree(UserId(u)), u)).collect();
    let k = 200.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    all.select_nth_unstable_by(k - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut top: Vec<u32> = all[..k].iter().map(|x| x.1).collect();
    top.sort_unstable();
    top
}

/// Whether a post is a Mastodon status (likes are favourites, not statuses).
pub fn is_status(p: &Post) -> bool {
    p.kind != PostKind::Like
}

/// A Status for `p` (a repost becomes a boost wrapping the original).
pub fn status(c: &Ctx, p: &Post) -> Value {
    let feed = c.sim.feed();
    let reblog = match (p.kind, p.parent.or(p.quoted)) {
        (PostKind::Repost, Some(target)) => feed.post(target).map(|t| status(c, t)),
        _ => None,
    };
    let (replies, reblogs, favourites) = feed.counts(p.id);
    let (in_reply_to, in_reply_to_account) = match (p.kind, p.parent) {
        (PostKind::Reply | PostKind::Gif | PostKind::Post, Some(parent)) => {
            (Some(parent.0.to_string()), feed.post(parent).map(|x| x.author.0.to_string()))
        }
        _ => (None, None),
    };
    let text = p.text.as_deref().unwrap_or("");
    let tags: Vec<Value> =
        crate::sim::feed::hashtags(text).map(|t| json!({"name": t, "url": format!("{}/tags/{t}", c.base)})).collect();
    let mut media = Vec::new();
    for (kind, what) in [("gifv", &p.gif), ("image", &p.image), ("image", &p.image_request)] {
        if let Some(w) = what {
            let url = format!("{}/api/chorus/media/{}-{}.svg", c.base, p.id.0, media.len());
            media.push(json!({
                "id": format!("{}{}", p.id.0, media.len()), "type": kind, "url": url, "preview_url": url,
                "remote_url": null, "description": w, "blurhash": null, "meta": {},
            }));
        }
    }
    let handle = if p.handle.is_empty() { c.sim.population().handle(p.author) } else { p.handle.clone() };
    let quote = match (p.kind, p.quoted) {
        (PostKind::Quote, Some(q)) => feed.post(q).map(|q| json!({"state": "accepted", "quoted_status": status(c, q)})),
        _ => None,
    };
    json!({
        "id": p.id.0.to_string(),
        "uri": format!("{}/users/{handle}/statuses/{}", c.base, p.id.0),
        "url": format!("{}/@{handle}/{}", c.base, p.id.0),
        "created_at": iso(p.time.0),
        "account": account(c, p.author.0),
        "content": if reblog.is_some() { String::new() } else { html(text, c.base) },
        "visibility": "public", "sensitive": false, "spoiler_text": "",
        "media_attachments": media,
        "application": null,
        "mentions": [], "tags": tags, "emojis": [],
        "reblogs_count": reblogs + c.marks.reblogs.contains(&p.id.0) as u32,
        "favourites_count": favourites + c.marks.favourites.contains(&p.id.0) as u32,
        "replies_count": replies,
        "in_reply_to_id": in_reply_to, "in_reply_to_account_id": in_reply_to_account,
        "reblog": reblog, "quote": quote, "poll": null, "card": null,
        "language": "en", "text": null, "edited_at": null,
        "favourited": c.marks.favourites.contains(&p.id.0),
        "reblogged": c.marks.reblogs.contains(&p.id.0),
        "muted": false, "bookmarked": false, "pinned": false,
        "chorus": {"event": p.event, "kind": p.kind.name(), "sentiment": p.sentiment.name(), "source": p.source.name()},
    })
}

/// A deterministic avatar: the user's initials on a colour drawn from the id.
pub fn avatar_svg(u: u32, name: &str) -> String {
    let h = (u.wrapping_mul(2_654_435_761) >> 8) % 360;
    let initials: String = name.split_whitespace().filter_map(|w| w.chars().next()).take(2).collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"96\" height=\"96\" viewBox=\"0 0 96 96\">\
         <rect width=\"96\" height=\"96\" rx=\"16\" fill=\"hsl({h},55%,45%)\"/>\
         <text x=\"48\" y=\"60\" font-family=\"sans-serif\" font-size=\"38\" text-anchor=\"middle\" fill=\"#fff\">{}</text></svg>",
        escape(&initials.to_uppercase())
    )
}

/// A placeholder picture naming what the post showed (a GIF pick or an image request).
pub fn media_svg(what: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"480\" height=\"270\" viewBox=\"0 0 480 270\">\
         <rect width=\"480\" height=\"270\" fill=\"#223\"/>\
         <text x=\"240\" y=\"140\" font-family=\"sans-serif\" font-size=\"20\" text-anchor=\"middle\" fill=\"#eee\">{}</text></svg>",
        escape(&crate::serve::error::cut(what, 60))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_utc_from_the_game_epoch() {
        assert_eq!(iso(0), "2026-01-01T00:00:00.000Z");
        assert_eq!(iso(86_400 * 59 + 3_723), "2026-03-01T01:02:03.000Z");
        assert_eq!(iso(86_400 * 365), "2027-01-01T00:00:00.000Z");
    }

    #[test]
    fn html_escapes_and_links_hashtags() {
        let h = html("a <b> & #Redhawks!", "http://x");
        assert_eq!(
            h,
            "<p>a &lt;b&gt; &amp; <a href=\"http://x/tags/redhawks\" class=\"mention hashtag\" rel=\"tag\">#<span>Redhawks</span></a>!</p>"
        );
    }
}
