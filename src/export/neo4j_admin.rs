//! The CSV files `neo4j-admin database import` takes, for graphs too big to load through
//! transactions: node files with `:ID(group)` and `:LABEL` columns, relationship files with
//! `:START_ID(group)`, `:END_ID(group)` and `:TYPE`, typed property headers (`age:int`,
//! `weight:float`, `hours:float[]`...), plus `import.sh` with the command.
//!
//! Nodes and relationships match [`super::neo4j`]: `User`, `Post`, `Event` nodes (with an `id`
//! property of the same type as over Bolt); FOLLOWS / FRIEND / COLLEAGUE / RIVAL, POSTED,
//! ABOUT, REPLY_TO, QUOTES, REPOSTS, LIKES relationships. Lists use `;`, the tool's default
//! array delimiter. Files are written under `.tmp` names and renamed when complete; `import.sh`
//! is written last.

use super::files::{AtomicFile, Written};
use super::formats::CsvOut;
use super::table::{visit_post, visit_user, ColType, Column, POST_COLUMNS, USER_COLUMNS};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::population::Population;
use crate::timeline::{Post, PostKind};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Columns whose `;`-joined strings are arrays for the import tool.
fn admin_type(c: &Column) -> &'static str {
    match (c.name, c.ty) {
        ("hours", _) => "float[]",
        ("interests" | "affiliations", _) => "string[]",
        (_, ColType::U8 | ColType::U32) => "int",
        (_, ColType::U64 | ColType::OptU64 | ColType::I64) => "long",
        (_, ColType::F32) => "float",
        (_, ColType::Str | ColType::OptStr) => "string",
    }
}

fn header(id_group: &str, cols: &[Column]) -> Vec<String> {
    let mut h = vec![format!(":ID({id_group})"), ":LABEL".to_string()];
    h.extend(cols.iter().map(|c| format!("{}:{}", c.name, admin_type(c))));
    h
}

/// The import files being written.
pub struct AdminImport {
    dir: PathBuf,
    done: Vec<Written>,
    posts: CsvOut,
    posted: CsvOut,
    about: CsvOut,
    links: CsvOut,
    events: CsvOut,
    seen_events: HashSet<String>,
    id: String,
}

fn csv(dir: &Path, name: &str, header: Vec<String>) -> Result<CsvOut> {
    CsvOut::with_header(AtomicFile::create(&dir.join(name))?, header)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl AdminImport {
    /// Creates `dir` and writes the users and their relationships (user by user, memory
    /// flat); posts follow with [`AdminImport::write_posts`].
    pub fn create(dir: &Path, pop: &Population) -> Result<AdminImport> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let script = dir.join("import.sh");
        if script.exists() {
            std::fs::remove_file(&script).map_err(|e| Error::io(&script, e))?;
        }
        let mut done = Vec::new();
        let mut users = csv(dir, "users.csv", header("User", USER_COLUMNS))?;
        let mut scratch = String::new();
        for u in pop.ids() {
            let user = pop.user(u);
            users.row(|v| {
                v.str(&u.0.to_string());
                v.str("User");
                visit_user(pop, &user, &mut scratch, v);
            })?;
        }
        done.push(users.finish()?);
        let mut rels =
            csv(dir, "relationships.csv", strings(&[":START_ID(User)", ":END_ID(User)", ":TYPE", "weight:float"]))?;
        let (mut a, mut b) = (String::new(), String::new());
        for u in 0..pop.len() as u32 {
            a.clear();
            a.push_str(&u.to_string());
            for e in pop.graph().out_edges(UserId(u)) {
                b.clear();
                b.push_str(&e.target.0.to_string());
                rels.row(|v| {
                    v.str(&a);
                    v.str(&b);
                    v.str(&e.kind.name().to_uppercase());
                    v.f32(e.weight);
                })?;
            }
        }
        done.push(rels.finish()?);
        Ok(AdminImport {
            dir: dir.to_path_buf(),
            done,
            posts: csv(dir, "posts.csv", header("Post", POST_COLUMNS))?,
            posted: csv(dir, "posted.csv", strings(&[":START_ID(User)", ":END_ID(Post)", ":TYPE"]))?,
            about: csv(dir, "about.csv", strings(&[":START_ID(Post)", ":END_ID(Event)", ":TYPE"]))?,
            links: csv(dir, "post_links.csv", strings(&[":START_ID(Post)", ":END_ID(Post)", ":TYPE"]))?,
            events: csv(dir, "events.csv", strings(&[":ID(Event)", ":LABEL", "id:string"]))?,
            seen_events: HashSet::new(),
            id: String::new(),
        })
    }

    /// Appends posts with their POSTED, ABOUT and post-to-post relationships (and each event
    /// node once).
    pub fn write_posts(&mut self, posts: &[Post]) -> Result<()> {
        for p in posts {
            self.id.clear();
            self.id.push_str(&p.id.0.to_string());
            let id = &self.id;
            self.posts.row(|v| {
                v.str(id);
                v.str("Post");
                visit_post(p, v);
            })?;
            let author = p.author.0.to_string();
            self.posted.row(|v| {
                v.str(&author);
                v.str(id);
                v.str("POSTED");
            })?;
            if self.seen_events.insert(p.event.clone()) {
                self.events.row(|v| {
                    v.str(&p.event);
                    v.str("Event");
                    v.str(&p.event);
                })?;
            }
            self.about.row(|v| {
                v.str(id);
                v.str(&p.event);
                v.str("ABOUT");
            })?;
            let mut links: [(Option<u64>, &str); 2] = [(None, ""), (p.quoted.map(|q| q.0), "QUOTES")];
            if let Some(parent) = p.parent {
                links[0] = (
                    Some(parent.0),
                    match p.kind {
                        PostKind::Repost => "REPOSTS",
                        PostKind::Like => "LIKES",
                        _ => "REPLY_TO",
                    },
                );
            }
            for (target, ty) in links {
                if let Some(t) = target {
                    let t = t.to_string();
                    self.links.row(|v| {
                        v.str(id);
                        v.str(&t);
                        v.str(ty);
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Finishes every file, then writes `import.sh` (the `neo4j-admin` command) last.
    pub fn finish(mut self) -> Result<Vec<Written>> {
        for f in [self.posts, self.posted, self.about, self.links, self.events] {
            self.done.push(f.finish()?);
        }
        let script = "#!/usr/bin/env sh\n\
# Load this export into an empty Neo4j 5 database (server stopped), then start it.\n\
# Usage: sh import.sh [DATABASE]   (default: neo4j)\n\
cd \"$(dirname \"$0\")\"\n\
neo4j-admin database import full \"${1:-neo4j}\" --overwrite-destination \\\n\
  --nodes=users.csv --nodes=posts.csv --nodes=events.csv \\\n\
  --relationships=relationships.csv --relationships=posted.csv \\\n\
  --relationships=about.csv --relationships=post_links.csv\n";
        let mut f = AtomicFile::create(&self.dir.join("import.sh"))?;
        std::io::Write::write_all(f.writer(), script.as_bytes()).map_err(|e| f.err(e))?;
        self.done.push(f.commit()?);
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_import_tool_conventions() {
        let h = header("User", USER_COLUMNS);
        assert_eq!(&h[..4], &[":ID(User)", ":LABEL", "id:int", "handle:string"]);
        assert!(h.contains(&"hours:float[]".to_string()) && h.contains(&"politics:float".to_string()));
        let p = header("Post", POST_COLUMNS);
        assert!(p.contains(&"id:long".to_string()) && p.contains(&"time:long".to_string()));
    }
}
