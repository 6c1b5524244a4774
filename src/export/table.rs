//! The three exported tables (posts, users, edges) as typed columns, and a visitor that feeds a
//! row's cells to a format writer without building intermediate rows.
//!
//! Invariant: a table's `visit` calls the visitor once per column, in [`Column`] order, with the
//! column's type; the unit tests check it for every table.

use crate::graph::Edge;
use crate::ids::UserId;
use crate::population::{Population, User};
use crate::timeline::Post;

/// A column's type. `Opt*` columns are nullable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// Unsigned 8-bit.
    U8,
    /// Unsigned 32-bit.
    U32,
    /// Unsigned 64-bit.
    U64,
    /// Nullable unsigned 64-bit.
    OptU64,
    /// Signed 64-bit.
    I64,
    /// 32-bit float.
    F32,
    /// UTF-8 string.
    Str,
    /// Nullable UTF-8 string.
    OptStr,
}

/// One column of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Name (CSV header, Parquet field, graph property).
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
}

const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty }
}

/// Receives one row's cells, in column order.
pub trait CellVisitor {
    /// A `U8` cell.
    fn u8(&mut self, v: u8);
    /// A `U32` cell.
    fn u32(&mut self, v: u32);
    /// A `U64` cell.
    fn u64(&mut self, v: u64);
    /// An `OptU64` cell.
    fn opt_u64(&mut self, v: Option<u64>);
    /// An `I64` cell.
    fn i64(&mut self, v: i64);
    /// An `F32` cell.
    fn f32(&mut self, v: f32);
    /// A `Str` cell.
    fn str(&mut self, v: &str);
    /// An `OptStr` cell.
    fn opt_str(&mut self, v: Option<&str>);
}

/// Which table a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// The timeline: one row per post, reply, quote, GIF, repost or like.
    Posts,
    /// The population: one row per user with their traits.
    Users,
    /// The relationship graph: one row per directed edge.
    Edges,
}

impl Table {
    /// File stem (`posts`, `users`, `edges`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Posts => "posts",
            Table::Users => "users",
            Table::Edges => "edges",
        }
    }

    /// The table's columns.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Posts => POST_COLUMNS,
            Table::Users => USER_COLUMNS,
            Table::Edges => EDGE_COLUMNS,
        }
    }
}

/// Columns of the posts table (the JSONL post fields, flat; absent fields are null).
pub const POST_COLUMNS: &[Column] = &[
    col("id", ColType::U64),
    col("author", ColType::U32),
    col("handle", ColType::Str),
    col("kind", ColType::Str),
    col("parent", ColType::OptU64),
    col("quoted", ColType::OptU64),
    col("root", ColType::OptU64),
    col("depth", ColType::U8),
    col("text", ColType::OptStr),
    col("gif", ColType::OptStr),
    col("image", ColType::OptStr),
    col("image_request", ColType::OptStr),
    col("event", ColType::Str),
    col("time", ColType::I64),
    col("sentiment", ColType::Str),
    col("source", ColType::Str),
];

/// Feeds a post's cells.
pub fn visit_post(p: &Post, v: &mut dyn CellVisitor) {
    v.u64(p.id.0);
    v.u32(p.author.0);
    v.str(&p.handle);
    v.str(p.kind.name());
    v.opt_u64(p.parent.map(|x| x.0));
    v.opt_u64(p.quoted.map(|x| x.0));
    v.opt_u64(p.root.map(|x| x.0));
    v.u8(p.depth);
    v.opt_str(p.text.as_deref());
    v.opt_str(p.gif.as_deref());
    v.opt_str(p.image.as_deref());
    v.opt_str(p.image_request.as_deref());
    v.str(&p.event);
    v.i64(p.time.0);
    v.str(p.sentiment.name());
    v.str(p.source.name());
}

/// Columns of the users table. Lists are flattened: `interests` as `topic:weight` pairs joined
/// by `;`, `emojis` joined by spaces, `hours` as 24 weights joined by `;`, `affiliations` as
/// world entity ids joined by `;`; `town` is a world entity id.
pub const USER_COLUMNS: &[Column] = &[
    col("id", ColType::U32),
    col("handle", ColType::Str),
    col("name", ColType::Str),
    col("seed", ColType::U32),
    col("age", ColType::U8),
    col("gender", ColType::Str),
    col("town", ColType::Str),
    col("utc_offset", ColType::F32),
    col("occupation", ColType::Str),
    col("locale", ColType::Str),
    col("openness", ColType::F32),
    col("conscientiousness", ColType::F32),
    col("extraversion", ColType::F32),
    col("agreeableness", ColType::F32),
    col("neuroticism", ColType::F32),
    col("politics", ColType::F32),
    col("interests", ColType::Str),
    col("formality", ColType::F32),
    col("emoji_rate", ColType::F32),
    col("emojis", ColType::Str),
    col("slang", ColType::F32),
    col("caps", ColType::Str),
    col("length", ColType::Str),
    col("hashtag_rate", ColType::F32),
    col("typo_rate", ColType::F32),
    col("posts_per_day", ColType::F32),
    col("reply", ColType::F32),
    col("quote", ColType::F32),
    col("like", ColType::F32),
    col("repost", ColType::F32),
    col("gif", ColType::F32),
    col("hours", ColType::Str),
    col("affiliations", ColType::Str),
    col("circle", ColType::U32),
    col("workplace", ColType::U32),
    col("following", ColType::U32),
    col("followers", ColType::U32),
];

/// Feeds a user's cells (`scratch` is a reusable buffer for the flattened lists).
pub fn visit_user(pop: &Population, u: &User, scratch: &mut String, v: &mut dyn CellVisitor) {
    use std::fmt::Write;
    let world = pop.world();
    v.u32(u.id.0);
    v.str(&u.handle);
    v.str(&u.name);
    v.u32(u.seed as u32);
    v.u8(u.age);
    v.str(u.gender.name());
    v.str(&world.entity(u.town).id);
    v.f32(u.utc_offset);
    v.str(&u.occupation);
    v.str(&u.locale);
    for b in u.big5 {
        v.f32(b);
    }
    v.f32(u.politics);
    scratch.clear();
    for (i, (t, w)) in u.interests.iter().enumerate() {
        let _ = write!(scratch, "{}{}:{}", if i > 0 { ";" } else { "" }, t.name(), w);
    }
    v.str(scratch);
    v.f32(u.formality);
    v.f32(u.emoji_rate);
    v.str(&u.emojis.join(" "));
    v.f32(u.slang);
    v.str(u.caps.name());
    v.str(u.length.name());
    v.f32(u.hashtag_rate);
    v.f32(u.typo_rate);
    v.f32(u.posts_per_day);
    v.f32(u.reply);
    v.f32(u.quote);
    v.f32(u.like);
    v.f32(u.repost);
    v.f32(u.gif);
    scratch.clear();
    for (i, h) in u.hours.iter().enumerate() {
        let _ = write!(scratch, "{}{}", if i > 0 { ";" } else { "" }, h);
    }
    v.str(scratch);
    scratch.clear();
    for (i, &e) in u.affiliations.iter().enumerate() {
        let _ = write!(scratch, "{}{}", if i > 0 { ";" } else { "" }, world.entity(e).id);
    }
    v.str(scratch);
    v.u32(u.circle);
    v.u32(u.workplace);
    v.u32(u.following);
    v.u32(u.followers);
}

/// Columns of the edges table: `source` follows `target`; `kind` is follows, friend,
/// colleague or rival; `weight` the tie strength in `[0, 1]`.
pub const EDGE_COLUMNS: &[Column] =
    &[col("source", ColType::U32), col("target", ColType::U32), col("kind", ColType::Str), col("weight", ColType::F32)];

/// Feeds an edge's cells.
pub fn visit_edge(source: UserId, e: &Edge, v: &mut dyn CellVisitor) {
    v.u32(source.0);
    v.u32(e.target.0);
    v.str(e.kind.name());
    v.f32(e.weight);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the types visited.
    struct Types(Vec<ColType>);
    impl CellVisitor for Types {
        fn u8(&mut self, _: u8) {
            self.0.push(ColType::U8)
        }
        fn u32(&mut self, _: u32) {
            self.0.push(ColType::U32)
        }
        fn u64(&mut self, _: u64) {
            self.0.push(ColType::U64)
        }
        fn opt_u64(&mut self, _: Option<u64>) {
            self.0.push(ColType::OptU64)
        }
        fn i64(&mut self, _: i64) {
            self.0.push(ColType::I64)
        }
        fn f32(&mut self, _: f32) {
            self.0.push(ColType::F32)
        }
        fn str(&mut self, _: &str) {
            self.0.push(ColType::Str)
        }
        fn opt_str(&mut self, _: Option<&str>) {
            self.0.push(ColType::OptStr)
        }
    }

    fn types(cols: &[Column]) -> Vec<ColType> {
        cols.iter().map(|c| c.ty).collect()
    }

    #[test]
    fn every_visitor_matches_its_columns() {
        let world = crate::World::embedded().unwrap();
        let seeds = crate::SeedSet::embedded(&world).unwrap();
        let pop = Population::generate(&seeds, &world, 500, 1).unwrap();
        let mut t = Types(Vec::new());
        visit_user(&pop, &pop.user(UserId(3)), &mut String::new(), &mut t);
        assert_eq!(t.0, types(USER_COLUMNS));
        let mut t = Types(Vec::new());
        let e = pop.graph().out_edges(UserId(3)).next().unwrap();
        visit_edge(UserId(3), &e, &mut t);
        assert_eq!(t.0, types(EDGE_COLUMNS));
        let post = Post {
            id: crate::timeline::PostId(1),
            author: UserId(2),
            handle: "h".into(),
            kind: crate::timeline::PostKind::Reply,
            parent: None,
            quoted: None,
            root: None,
            depth: 0,
            text: None,
            gif: None,
            image: None,
            image_request: None,
            event: "e".into(),
            time: crate::events::GameTime(5),
            sentiment: crate::templates::Sentiment::Neutral,
            source: crate::timeline::Source::Template,
        };
        let mut t = Types(Vec::new());
        visit_post(&post, &mut t);
        assert_eq!(t.0, types(POST_COLUMNS));
    }
}
