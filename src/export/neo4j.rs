//! The graph in a database over Bolt (the Neo4j protocol), through `neo4rs`: users with their
//! traits, typed weighted relationships (FOLLOWS, FRIEND, COLLEAGUE, RIVAL), posts with
//! POSTED (user to post), REPLY_TO, QUOTES, REPOSTS, LIKES (post to post) and ABOUT (post to
//! event).
//!
//! ```text
//! (:User {id, handle, ...traits})-[:FOLLOWS|FRIEND|COLLEAGUE|RIVAL {weight}]->(:User)
//! (:User)-[:POSTED]->(:Post {id, kind, text, time, ...})-[:ABOUT]->(:Event {id})
//! (:Post)-[:REPLY_TO|QUOTES|REPOSTS|LIKES]->(:Post)
//! (:ChorusExport {id: 1, complete, users, edges, posts, seed})
//! ```
//!
//! Invariants: one writer (one connection; the server deadlocks with two concurrent writers);
//! rows go in batched `UNWIND` transactions of [`BoltConfig::batch`] rows; unique constraints
//! on `User.id`, `Post.id` and `Event.id` are created first. Resumable without duplicates:
//! nodes and post links are written with `MERGE` on ids; user-to-user relationships (the bulk)
//! with `CREATE`, in batches of whole users, each batch committing a checkpoint (`edges_done`:
//! the users whose relationships are all in) on the `ChorusExport` node in the same
//! transaction, so a re-run of the same export skips exactly what is in. That node also holds
//! the run's key and `complete: false` from the start until the last batch is in; an export of
//! a different run into a database holding one is refused.

use super::table::{visit_post, visit_user, CellVisitor, Column, POST_COLUMNS, USER_COLUMNS};
use crate::error::{Error, Result};
use crate::graph::EdgeKind;
use crate::ids::UserId;
use crate::population::Population;
use crate::timeline::{Post, PostKind};
use neo4rs::{query, BoltList, BoltMap, BoltString, BoltType, Graph};
use std::time::Duration;

/// Where and how to write.
#[derive(Clone, Debug)]
pub struct BoltConfig {
    /// `bolt://host:port` (or `neo4j://`, `bolt+s://`...).
    pub uri: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database name. Default: `neo4j`.
    pub database: String,
    /// Rows per `UNWIND` transaction. Default: 5,000 (5,000 to 10,000 is the measured sweet
    /// spot; bigger batches hold more in memory on both sides).
    pub batch: usize,
    /// Time allowed to connect and authenticate. Default: 15 s.
    pub connect_timeout: Duration,
}

impl BoltConfig {
    /// A configuration with the defaults above.
    pub fn new(uri: &str, user: &str, password: &str) -> BoltConfig {
        BoltConfig {
            uri: uri.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            database: "neo4j".to_string(),
            batch: 5_000,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// Counts written (rows sent; MERGE makes re-sent rows no-ops).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BoltCounts {
    /// Users.
    pub users: u64,
    /// Relationships between users.
    pub edges: u64,
    /// Posts (every timeline entry, likes and reposts included).
    pub posts: u64,
}

/// A connection to the database and the posts waiting for the next batch. Synchronous: it
/// owns a single-threaded tokio runtime for `neo4rs`.
pub struct BoltExporter {
    rt: tokio::runtime::Runtime,
    graph: Graph,
    config: BoltConfig,
    pending: Vec<BoltType>,
    counts: BoltCounts,
    resume: Progress,
    posts_seen: u64,
}

/// The checkpoint of an export in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Progress {
    users_done: u64,
    edges_done: u64,
    posts_done: u64,
}

const MARK: &str = "MATCH (x:ChorusExport {id: 1})";

fn user_query() -> String {
    set_query("User", USER_COLUMNS)
}

fn post_query() -> String {
    set_query("Post", POST_COLUMNS)
}

/// `UNWIND $rows AS r MERGE (n:Label {id: r.id}) SET n.a = r.a, ...` (nulls are not stored).
fn set_query(label: &str, cols: &[Column]) -> String {
    let sets: Vec<String> = cols.iter().filter(|c| c.name != "id").map(|c| format!("n.{0} = r.{0}", c.name)).collect();
    format!("UNWIND $rows AS r MERGE (n:{label} {{id: r.id}}) SET {}", sets.join(", "))
}

/// Post-to-post link types by the linking post's kind (parent link) and for quotes.
fn parent_link(kind: PostKind) -> &'static str {
    match kind {
        PostKind::Reply | PostKind::Gif => "REPLY_TO",
        PostKind::Repost => "REPOSTS",
        PostKind::Like => "LIKES",
        PostKind::Post | PostKind::Quote => "REPLY_TO",
    }
}

/// Builds a Bolt map from a row's cells, named by the table's columns.
struct MapVisitor<'a> {
    cols: &'a [Column],
    i: usize,
    map: BoltMap,
}

impl MapVisitor<'_> {
    fn put(&mut self, v: impl Into<BoltType>) {
        let name = self.cols[self.i].name;
        self.i += 1;
        self.map.put(BoltString::from(name), v.into());
    }
}

impl CellVisitor for MapVisitor<'_> {
    fn u8(&mut self, v: u8) {
        self.put(v as i64)
    }
    fn u32(&mut self, v: u32) {
        self.put(v as i64)
    }
    fn u64(&mut self, v: u64) {
        self.put(v as i64)
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.put(v.map(|x| x as i64))
    }
    fn i64(&mut self, v: i64) {
        self.put(v)
    }
    fn f32(&mut self, v: f32) {
        self.put(v as f64)
    }
    fn str(&mut self, v: &str) {
        self.put(v)
    }
    fn opt_str(&mut self, v: Option<&str>) {
        self.put(v)
    }
}

fn list(rows: Vec<BoltType>) -> BoltType {
    BoltType::List(BoltList { value: rows })
}

impl BoltExporter {
    /// Connects, authenticates (a trivial query proves it), creates the unique constraints and
    /// marks the export incomplete. Fails with [`Error::Database`] naming the server when it
    /// is down, unreachable, or refuses the credentials.
    pub fn connect(config: &BoltConfig) -> Result<BoltExporter> {
        if config.batch == 0 {
            return Err(Error::Config("the Bolt batch size must be at least 1".into()));
        }
        let target = format!("{} (database {})", config.uri, config.database);
        let err = |m: String| Error::Database { target: target.clone(), message: m };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err(format!("starting the async runtime: {e}")))?;
        let neo_config = neo4rs::ConfigBuilder::default()
            .uri(config.uri.as_str())
            .user(config.user.as_str())
            .password(config.password.as_str())
            .db(config.database.as_str())
            .max_connections(1)
            .build()
            .map_err(|e| err(format!("invalid connection settings: {e}")))?;
        // A plain TCP connection first: neo4rs retries a refused connection until the timeout.
        let address = tcp_address(&config.uri);
        rt.block_on(async {
            match tokio::time::timeout(config.connect_timeout, tokio::net::TcpStream::connect(address.as_str())).await {
                Err(_) => Err(err(format!("no answer from {address} within {:?}", config.connect_timeout))),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Err(err(format!("connection refused by {address} (is the server up?)")))
                }
                Ok(Err(e)) => Err(err(format!("cannot connect to {address}: {e}"))),
                Ok(Ok(_)) => Ok(()),
            }
        })?;
        let graph = rt.block_on(async {
            let connect = async {
                let g = Graph::connect(neo_config).await?;
                // The pool connects lazily: a query proves the server and the credentials. In
                // a transaction, since `Graph::run` retries failures for up to a minute.
                let mut txn = g.start_txn().await?;
                txn.run(query("RETURN 1")).await?;
                txn.commit().await?;
                Ok::<Graph, neo4rs::Error>(g)
            };
            match tokio::time::timeout(config.connect_timeout, connect).await {
                Err(_) => Err(err(format!("no answer within {:?} (is the server up?)", config.connect_timeout))),
                Ok(Err(e)) => Err(err(describe(&e))),
                Ok(Ok(g)) => Ok(g),
            }
        })?;
        let mut me = BoltExporter {
            rt,
            graph,
            config: config.clone(),
            pending: Vec::new(),
            counts: BoltCounts::default(),
            resume: Progress::default(),
            posts_seen: 0,
        };
        for label in ["User", "Post", "Event"] {
            me.run(
                &format!(
                    "CREATE CONSTRAINT chorus_{0}_id IF NOT EXISTS FOR (n:{1}) REQUIRE n.id IS UNIQUE",
                    label.to_lowercase(),
                    label
                ),
                None,
                "creating the unique constraint",
            )?;
        }
        Ok(me)
    }

    /// Starts (or resumes) the export of the run identified by `run_key` (any string that
    /// changes when the population, seed or events change). A database holding an export of
    /// the same run resumes from its checkpoint; one holding another run's export is refused
    /// (clear it or use another database); otherwise the export starts from nothing.
    pub fn begin(&mut self, run_key: &str) -> Result<()> {
        let rows = self.query_json(
            "MATCH (x:ChorusExport {id: 1}) RETURN x.run AS run, x.users_done AS u, x.edges_done AS e, x.posts_done AS p",
            &["run", "u", "e", "p"],
        )?;
        match rows.first() {
            Some(row) if row[0].as_str() == Some(run_key) => {
                let n = |i: usize| row[i].as_u64().unwrap_or(0);
                self.resume = Progress { users_done: n(1), edges_done: n(2), posts_done: n(3) };
                self.run(&format!("{MARK} SET x.complete = false"), None, "marking the export incomplete")
            }
            Some(row) => Err(Error::Database {
                target: self.target(),
                message: format!(
                    "the database holds the export of another run ({}); this run is {run_key:?}: clear the database or use another one",
                    row[0]
                ),
            }),
            None => {
                let key = serde_json::to_string(run_key).unwrap_or_default();
                self.run(
                    &format!("MERGE (x:ChorusExport {{id: 1}}) SET x.run = {key}, x.complete = false, x.users_done = 0, x.edges_done = 0, x.posts_done = 0"),
                    None,
                    "marking the export incomplete",
                )
            }
        }
    }

    /// Counts sent so far.
    pub fn counts(&self) -> &BoltCounts {
        &self.counts
    }

    fn target(&self) -> String {
        format!("{} (database {})", self.config.uri, self.config.database)
    }

    /// Runs one statement in its own transaction, `rows` bound to `$rows`.
    fn run(&mut self, cypher: &str, rows: Option<BoltType>, what: &str) -> Result<()> {
        self.run_all(vec![(cypher.to_string(), rows)], what)
    }

    /// Runs statements in one transaction (all or nothing).
    fn run_all(&mut self, statements: Vec<(String, Option<BoltType>)>, what: &str) -> Result<()> {
        let graph = &self.graph;
        let result = self.rt.block_on(async {
            let mut txn = graph.start_txn().await?;
            for (cypher, rows) in statements {
                let mut q = query(&cypher);
                if let Some(rows) = rows {
                    q = q.param("rows", rows);
                }
                txn.run(q).await?;
            }
            txn.commit().await
        });
        result.map_err(|e| Error::Database { target: self.target(), message: format!("{what}: {}", describe(&e)) })
    }

    /// Writes every user with their traits, in batches (after [`BoltExporter::begin`]).
    pub fn write_users(&mut self, pop: &Population) -> Result<()> {
        let q = user_query();
        let mut scratch = String::new();
        let mut rows = Vec::with_capacity(self.config.batch);
        let start = self.resume.users_done.min(pop.len() as u64);
        self.counts.users = start;
        for u in start as u32..pop.len() as u32 {
            let mut v = MapVisitor { cols: USER_COLUMNS, i: 0, map: BoltMap::with_capacity(USER_COLUMNS.len()) };
            visit_user(pop, &pop.user(UserId(u)), &mut scratch, &mut v);
            rows.push(BoltType::Map(v.map));
            if rows.len() >= self.config.batch || u as usize + 1 == pop.len() {
                let done = u as u64 + 1;
                let statements = vec![
                    (q.clone(), Some(list(std::mem::take(&mut rows)))),
                    (format!("{MARK} SET x.users_done = {done}"), None),
                ];
                self.run_all(statements, "writing users")?;
                self.counts.users = done;
            }
        }
        Ok(())
    }

    /// Writes every edge as a typed relationship with its weight (users first), in batches of
    /// whole users' out-edges, each with its checkpoint.
    pub fn write_edges(&mut self, pop: &Population) -> Result<()> {
        let graph = pop.graph();
        let mut by_kind: [Vec<BoltType>; 4] = Default::default();
        let start = self.resume.edges_done.min(pop.len() as u64) as u32;
        self.counts.edges = (0..start).map(|u| graph.out_degree(UserId(u)) as u64).sum();
        let mut n = 0usize;
        for u in start..pop.len() as u32 {
            for e in graph.out_edges(UserId(u)) {
                let mut m = BoltMap::with_capacity(3);
                m.put("s".into(), (u as i64).into());
                m.put("t".into(), (e.target.0 as i64).into());
                m.put("w".into(), (e.weight as f64).into());
                by_kind[e.kind as usize].push(BoltType::Map(m));
                n += 1;
            }
            if n >= self.config.batch || u as usize + 1 == pop.len() {
                self.flush_edges(&mut by_kind, u as u64 + 1)?;
                n = 0;
            }
        }
        Ok(())
    }

    /// Writes the queued relationships and the checkpoint `edges_done = done_users` in one
    /// transaction.
    fn flush_edges(&mut self, by_kind: &mut [Vec<BoltType>; 4], done_users: u64) -> Result<()> {
        let mut statements = Vec::new();
        let mut n = 0u64;
        for kind in EdgeKind::ALL {
            let rows = std::mem::take(&mut by_kind[kind as usize]);
            if rows.is_empty() {
                continue;
            }
            n += rows.len() as u64;
            statements.push((
                format!(
                    "UNWIND $rows AS r MATCH (a:User {{id: r.s}}) MATCH (b:User {{id: r.t}}) CREATE (a)-[:{} {{weight: r.w}}]->(b)",
                    kind.name().to_uppercase()
                ),
                Some(list(rows)),
            ));
        }
        statements.push((format!("{MARK} SET x.edges_done = {done_users}, x.edges = {}", self.counts.edges + n), None));
        self.run_all(statements, "writing relationships")?;
        self.counts.edges += n;
        Ok(())
    }

    /// Queues posts; a batch is written whenever [`BoltConfig::batch`] are waiting. Parents
    /// must come before their replies (the timeline order guarantees it).
    pub fn write_posts(&mut self, posts: &[Post]) -> Result<()> {
        for p in posts {
            self.posts_seen += 1;
            if self.posts_seen <= self.resume.posts_done {
                self.counts.posts += 1;
                continue;
            }
            let mut v = MapVisitor { cols: POST_COLUMNS, i: 0, map: BoltMap::with_capacity(POST_COLUMNS.len() + 1) };
            visit_post(p, &mut v);
            v.map.put("link".into(), p.parent.map(|_| parent_link(p.kind)).into());
            self.pending.push(BoltType::Map(v.map));
            if self.pending.len() >= self.config.batch {
                self.flush_posts()?;
            }
        }
        Ok(())
    }

    fn flush_posts(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = list(std::mem::take(&mut self.pending));
        let n = match &rows {
            BoltType::List(l) => l.value.len() as u64,
            _ => 0,
        };
        let mut statements = vec![
            (post_query(), Some(rows.clone())),
            (
                "UNWIND $rows AS r MATCH (u:User {id: r.author}) MATCH (p:Post {id: r.id}) MERGE (u)-[:POSTED]->(p)"
                    .to_string(),
                Some(rows.clone()),
            ),
            (
                "UNWIND $rows AS r MERGE (e:Event {id: r.event}) WITH r, e MATCH (p:Post {id: r.id}) MERGE (p)-[:ABOUT]->(e)"
                    .to_string(),
                Some(rows.clone()),
            ),
            (
                "UNWIND $rows AS r WITH r WHERE r.quoted IS NOT NULL MATCH (p:Post {id: r.id}) MATCH (q:Post {id: r.quoted}) MERGE (p)-[:QUOTES]->(q)"
                    .to_string(),
                Some(rows.clone()),
            ),
        ];
        for link in ["REPLY_TO", "REPOSTS", "LIKES"] {
            statements.push((
                format!(
                    "UNWIND $rows AS r WITH r WHERE r.link = '{link}' MATCH (p:Post {{id: r.id}}) MATCH (q:Post {{id: r.parent}}) MERGE (p)-[:{link}]->(q)"
                ),
                Some(rows.clone()),
            ));
        }
        statements.push((format!("{MARK} SET x.posts_done = {}", self.counts.posts + n), None));
        self.run_all(statements, "writing posts")?;
        self.counts.posts += n;
        Ok(())
    }

    /// Writes the last batch and marks the export complete, with its counts.
    pub fn finish(mut self) -> Result<BoltCounts> {
        self.flush_posts()?;
        let c = self.counts.clone();
        let cypher = format!(
            "{MARK} SET x.complete = true, x.users = {}, x.edges = {}, x.posts = {}, x.posts_done = {}",
            c.users, c.edges, c.posts, c.posts
        );
        self.run(&cypher, None, "marking the export complete")?;
        Ok(c)
    }

    /// Runs a read query and returns each row's columns `names` as JSON (for tests and tools).
    pub fn query_json(&mut self, cypher: &str, names: &[&str]) -> Result<Vec<Vec<serde_json::Value>>> {
        let graph = &self.graph;
        let result = self.rt.block_on(async {
            let mut stream = graph.execute(query(cypher)).await?;
            let mut out = Vec::new();
            while let Some(row) = stream.next().await? {
                let mut cols = Vec::with_capacity(names.len());
                for n in names {
                    cols.push(row.get::<serde_json::Value>(n).unwrap_or(serde_json::Value::Null));
                }
                out.push(cols);
            }
            Ok::<_, neo4rs::Error>(out)
        });
        result.map_err(|e| Error::Database { target: self.target(), message: format!("query: {}", describe(&e)) })
    }
}

/// `host:port` of a `scheme://host[:port][/...]` URI (port 7687 when absent).
fn tcp_address(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    let has_port = match host_port.rsplit_once(':') {
        Some((_, p)) => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !host_port.ends_with(']'),
        None => false,
    };
    if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:7687")
    }
}

/// A neo4rs error in words a user can act on.
fn describe(e: &neo4rs::Error) -> String {
    match e {
        neo4rs::Error::IOError { detail } if detail.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused (is the server up?): {detail}")
        }
        neo4rs::Error::AuthenticationError(m) => format!("authentication failed (user or password wrong?): {m}"),
        neo4rs::Error::Neo4j(n) if n.code().contains("Unauthorized") || n.code().contains("Security") => {
            format!("authentication failed (user or password wrong?): {}", n.message())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_addresses_come_from_bolt_uris() {
        assert_eq!(tcp_address("bolt://127.0.0.1:7688"), "127.0.0.1:7688");
        assert_eq!(tcp_address("neo4j://db.example"), "db.example:7687");
        assert_eq!(tcp_address("bolt://h:1/x"), "h:1");
    }

    #[test]
    fn node_writes_set_every_column_but_the_id() {
        let q = user_query();
        assert!(q.starts_with("UNWIND $rows AS r MERGE (n:User {id: r.id}) SET n.handle = r.handle"));
        assert_eq!(q.matches(" = r.").count(), USER_COLUMNS.len() - 1);
    }
}
