//! Mastodon JSON entities (Status, Account, Tag, MediaAttachment) built from chorus posts and
//! users, as <https://docs.joinmastodon.org/entities/> documents them: ids as strings, dates
//! in ISO 8601 UTC, content as HTML.
//!
//! Game time `t` seconds is the instant `EPOCH + t` (2026-01-01T00:00:00Z). The player's
//! account is the id one past the population's last user.

use crate::ids::UserId;
use crate::sim::Simulation;
use crate::timeline::json_str;
use crate::timeline::{Post, PostKind};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

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
    /// Whom it follows (see [`player_following`]).
    pub follows: Vec<u32>,
}

impl Player {
    /// Whose statuses its home shows: whom it follows and itself.
    pub fn home(&self) -> Vec<u32> {
        let mut v = self.follows.clone();
        v.push(self.id);
        v
    }
}

/// Account JSON already built, valid while the feed holds the same number of entries (the
/// counts in it change only when entries arrive) and the links have the same base; at most
/// `ACCOUNT_CACHE` accounts.
#[derive(Default)]
pub struct AccountCache {
    inner: parking_lot::Mutex<CacheInner>,
}

/// The feed length and base the cached accounts were built for, and the accounts.
type CacheInner = (usize, String, std::collections::HashMap<u32, Arc<[u8]>>);

/// Most accounts an [`AccountCache`] holds before it starts over.
pub const ACCOUNT_CACHE: usize = 100_000;

impl AccountCache {
    fn get_or(&self, base: &str, version: usize, u: u32, make: impl FnOnce() -> Vec<u8>) -> Arc<[u8]> {
        {
            let mut g = self.inner.lock();
            if g.0 != version || g.1 != base || g.2.len() >= ACCOUNT_CACHE {
                *g = (version, base.to_string(), Default::default());
            } else if let Some(v) = g.2.get(&u) {
                return v.clone();
            }
        }
        let v: Arc<[u8]> = make().into();
        self.inner.lock().2.insert(u, v.clone());
        v
    }
}

/// A JSON object written field by field (no value tree in between).
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json_str(k, self.out);
        self.out.push(b':');
        self.out
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let out = self.key(k);
        json_str(v, out);
        self
    }
    fn opt(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.raw(k, b"null"),
        }
    }
    fn num(&mut self, k: &str, n: u64) -> &mut Self {
        let out = self.key(k);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self
    }
    fn bool(&mut self, k: &str, b: bool) -> &mut Self {
        self.raw(k, if b { b"true" } else { b"false" })
    }
    fn raw(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k).extend_from_slice(v);
        self
    }
    fn end(&mut self) {
        self.out.push(b'}');
    }
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
    /// Accounts already built for this session.
    pub cache: &'a AccountCache,
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

/// An Account, as JSON bytes appended to `out`.
pub fn write_account(c: &Ctx, u: u32, out: &mut Vec<u8>) {
    let bytes = c.cache.get_or(c.base, c.sim.feed().len(), u, || build_account(c, u));
    out.extend_from_slice(&bytes);
}

/// An Account as a value.
pub fn account(c: &Ctx, u: u32) -> Value {
    let mut out = Vec::new();
    write_account(c, u, &mut out);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

fn build_account(c: &Ctx, u: u32) -> Vec<u8> {
    let sim = c.sim;
    let feed = sim.feed();
    let (handle, name, note, followers, following) = if u == c.player.id {
        (c.player.handle.clone(), c.player.name.clone(), "<p>The player.</p>".to_string(), 0, c.player.follows.len())
    } else {
        let pop = sim.population();
        let user = pop.user(UserId(u));
        let town = pop.world().entity(user.town).name.clone();
        let interests: Vec<&str> = user.interests.iter().take(3).map(|(t, _)| t.name()).collect();
        let note = format!("{} in {}. Into {}.", user.occupation, town, interests.join(", "));
        (
            user.handle,
            user.name,
            html(&note, c.base),
            pop.graph().in_degree(UserId(u)) as usize,
            sim.following(UserId(u)).len(),
        )
    };
    let avatar = format!("{}/api/chorus/avatars/{u}.svg", c.base);
    let mut out = Vec::with_capacity(640);
    Obj::new(&mut out)
        .str("id", &u.to_string())
        .str("username", &handle)
        .str("acct", &handle)
        .str("display_name", &name)
        .bool("locked", false)
        .bool("bot", false)
        .bool("group", false)
        .bool("discoverable", true)
        .str("created_at", &iso(0))
        .str("note", &note)
        .str("url", &format!("{}/@{handle}", c.base))
        .str("avatar", &avatar)
        .str("avatar_static", &avatar)
        .str("header", "")
        .str("header_static", "")
        .num("followers_count", followers as u64)
        .num("following_count", following as u64)
        .num("statuses_count", feed.author_len(UserId(u)) as u64)
        .raw("last_status_at", b"null")
        .raw("emojis", b"[]")
        .raw("fields", b"[]")
        .end();
    out
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

/// What a post showed besides its text (a GIF pick, an image, an image request), in the
/// order its MediaAttachments are numbered.
pub fn media_of(p: &Post) -> impl Iterator<Item = (&'static str, &String)> + '_ {
    [("gifv", &p.gif), ("image", &p.image), ("image", &p.image_request)]
        .into_iter()
        .filter_map(|(k, w)| w.as_ref().map(|w| (k, w)))
}

/// Whether a post is a Mastodon status (likes are favourites, not statuses).
pub fn is_status(p: &Post) -> bool {
    p.kind != PostKind::Like
}

/// A Status for `p` as JSON bytes appended to `out` (a repost becomes a boost wrapping the
/// original).
pub fn write_status(c: &Ctx, p: &Post, out: &mut Vec<u8>) {
    write_status_depth(c, p, out, 0)
}

fn write_status_depth(c: &Ctx, p: &Post, out: &mut Vec<u8>, depth: u8) {
    let feed = c.sim.feed();
    let mut reblog = Vec::new();
    if let (PostKind::Repost, Some(target), true) = (p.kind, p.parent.or(p.quoted), depth < 2) {
        if let Some(t) = feed.post(target) {
            write_status_depth(c, t, &mut reblog, depth + 1);
        }
    }
    let mut quote = Vec::new();
    if let (PostKind::Quote, Some(q), true) = (p.kind, p.quoted, depth < 2) {
        if let Some(q) = feed.post(q) {
            quote.extend_from_slice(b"{\"state\":\"accepted\",\"quoted_status\":");
            write_status_depth(c, q, &mut quote, depth + 1);
            quote.push(b'}');
        }
    }
    let (replies, reblogs, favourites) = feed.counts(p.id);
    let in_reply_to = match (p.kind, p.parent) {
        (PostKind::Reply | PostKind::Gif | PostKind::Post, Some(parent)) => Some(parent),
        _ => None,
    };
    let text = p.text.as_deref().unwrap_or("");
    let mut tags = vec![b'['];
    for (k, t) in crate::sim::feed::hashtags(text).enumerate() {
        if k > 0 {
            tags.push(b',');
        }
        Obj::new(&mut tags).str("name", &t).str("url", &format!("{}/tags/{t}", c.base)).end();
    }
    tags.push(b']');
    let mut media = vec![b'['];
    for (k, (kind, w)) in media_of(p).enumerate() {
        if k > 0 {
            media.push(b',');
        }
        let url = format!("{}/api/chorus/media/{}-{k}.svg", c.base, p.id.0);
        Obj::new(&mut media)
            .str("id", &format!("{}{k}", p.id.0))
            .str("type", kind)
            .str("url", &url)
            .str("preview_url", &url)
            .raw("remote_url", b"null")
            .str("description", w)
            .raw("blurhash", b"null")
            .raw("meta", b"{}")
            .end();
    }
    media.push(b']');
    let handle = if p.handle.is_empty() { c.sim.population().handle(p.author) } else { p.handle.clone() };
    let id = p.id.0.to_string();
    let mut account = Vec::new();
    write_account(c, p.author.0, &mut account);
    let (fav, reb) = (c.marks.favourites.contains(&p.id.0), c.marks.reblogs.contains(&p.id.0));
    let reply_id = in_reply_to.map(|x| x.0.to_string());
    let reply_account = in_reply_to.and_then(|x| feed.post(x)).map(|x| x.author.0.to_string());
    let mut chorus = Vec::new();
    Obj::new(&mut chorus)
        .str("event", &p.event)
        .str("kind", p.kind.name())
        .str("sentiment", p.sentiment.name())
        .str("source", p.source.name())
        .end();
    Obj::new(out)
        .str("id", &id)
        .str("uri", &format!("{}/users/{handle}/statuses/{id}", c.base))
        .str("url", &format!("{}/@{handle}/{id}", c.base))
        .str("created_at", &iso(p.time.0))
        .raw("account", &account)
        .str("content", &if reblog.is_empty() { html(text, c.base) } else { String::new() })
        .str("visibility", "public")
        .bool("sensitive", false)
        .str("spoiler_text", "")
        .raw("media_attachments", &media)
        .raw("application", b"null")
        .raw("mentions", b"[]")
        .raw("tags", &tags)
        .raw("emojis", b"[]")
        .num("reblogs_count", (reblogs + reb as u32) as u64)
        .num("favourites_count", (favourites + fav as u32) as u64)
        .num("replies_count", replies as u64)
        .opt("in_reply_to_id", reply_id.as_deref())
        .opt("in_reply_to_account_id", reply_account.as_deref())
        .raw("reblog", if reblog.is_empty() { b"null" } else { &reblog })
        .raw("quote", if quote.is_empty() { b"null" } else { &quote })
        .raw("poll", b"null")
        .raw("card", b"null")
        .str("language", "en")
        .raw("text", b"null")
        .raw("edited_at", b"null")
        .bool("favourited", fav)
        .bool("reblogged", reb)
        .bool("muted", false)
        .bool("bookmarked", false)
        .bool("pinned", false)
        .raw("chorus", &chorus)
        .end();
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
