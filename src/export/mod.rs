//! Streaming exports of a run: the timeline (posts), the population (users with their traits)
//! and the graph (edge list), as JSONL, CSV and Parquet, plus a manifest.
//!
//! ```no_run
//! use chorus::export::{ExportOptions, Exporter, Format, RunInfo};
//! # fn main() -> chorus::Result<()> {
//! # let population: chorus::Population = unimplemented!();
//! # let posts: Vec<chorus::timeline::Post> = Vec::new();
//! let options = ExportOptions { formats: vec![Format::Jsonl, Format::Parquet], population: true, graph: true, ..Default::default() };
//! let mut export = Exporter::create("out".as_ref(), &options)?;
//! export.write_population(&population)?;
//! export.write_posts(&posts)?; // as often as the run produces posts
//! let manifest = export.finish(RunInfo::default())?;
//! # Ok(()) }
//! ```
//!
//! Invariants: memory is flat in the number of posts (each writer holds at most one Parquet
//! batch and one row group); every file is written as `<name>.tmp` and renamed when complete;
//! `manifest.json` (counts, sizes, CRC-32s, schema version) is written last and removed first,
//! so a killed run leaves either `.tmp` files or no manifest, never a complete-looking export.

pub mod files;
pub mod formats;
pub mod manifest;
#[cfg(feature = "neo4j")]
pub mod neo4j;
pub mod neo4j_admin;
pub mod table;
pub mod training;

pub use formats::{arrow_schema, Format};
pub use manifest::{FileEntry, Manifest, RunInfo, SCHEMA_VERSION};
pub use table::Table;

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::population::Population;
use crate::timeline::Post;
use formats::{Finished, TableFile};
use std::path::{Path, PathBuf};

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Formats, each giving one file per table. Default: JSONL only.
    pub formats: Vec<Format>,
    /// Also export the users table. Default: no.
    pub population: bool,
    /// Also export the edges table. Default: no.
    pub graph: bool,
    /// Parquet row-group size in rows. Default: 65,536 (about 10 MB of posts in memory).
    pub row_group: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { formats: vec![Format::Jsonl], population: false, graph: false, row_group: 65_536 }
    }
}

/// An export in progress: one open posts file per format, fed as the run goes.
pub struct Exporter {
    dir: PathBuf,
    options: ExportOptions,
    posts: Vec<TableFile>,
    finished: Vec<Finished>,
    by_kind: std::collections::BTreeMap<String, u64>,
}

impl Exporter {
    /// Creates `dir` if needed, removes a previous `manifest.json` (the directory is not a
    /// complete export until [`Exporter::finish`]) and opens the posts files.
    pub fn create(dir: &Path, options: &ExportOptions) -> Result<Exporter> {
        if options.formats.is_empty() {
            return Err(Error::Config("no export format given".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let manifest = dir.join(manifest::MANIFEST);
        match std::fs::remove_file(&manifest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&manifest, e)),
        }
        let posts = options
            .formats
            .iter()
            .map(|&f| TableFile::create(dir, Table::Posts, f, options.row_group))
            .collect::<Result<Vec<_>>>()?;
        Ok(Exporter {
            dir: dir.to_path_buf(),
            options: options.clone(),
            posts,
            finished: Vec::new(),
            by_kind: Default::default(),
        })
    }

    /// The export directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the users and/or edges tables, as the options ask, user by user (memory flat).
    pub fn write_population(&mut self, pop: &Population) -> Result<()> {
        for &format in &self.options.formats {
            if self.options.population {
                let mut f = TableFile::create(&self.dir, Table::Users, format, self.options.row_group)?;
                for u in pop.ids() {
                    f.user(pop, &pop.user(u))?;
                }
                self.finished.push(f.finish()?);
            }
            if self.options.graph {
                let mut f = TableFile::create(&self.dir, Table::Edges, format, self.options.row_group)?;
                for u in 0..pop.len() as u32 {
                    for e in pop.graph().out_edges(UserId(u)) {
                        f.edge(UserId(u), &e)?;
                    }
                }
                self.finished.push(f.finish()?);
            }
        }
        Ok(())
    }

    /// Appends posts to every posts file, in the order given (the CLI gives each event's posts
    /// in (time, id) order, events in input order).
    pub fn write_posts(&mut self, posts: &[Post]) -> Result<()> {
        for p in posts {
            *self.by_kind.entry(p.kind.name().to_string()).or_default() += 1;
        }
        for f in &mut self.posts {
            for p in posts {
                f.post(p)?;
            }
        }
        Ok(())
    }

    /// Finishes every file and writes the manifest last.
    pub fn finish(mut self, run: RunInfo) -> Result<Manifest> {
        for f in std::mem::take(&mut self.posts) {
            self.finished.push(f.finish()?);
        }
        let files = self
            .finished
            .iter()
            .map(|f| FileEntry {
                name: f.file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                table: f.table,
                format: f.format,
                rows: f.rows,
                bytes: f.file.bytes,
                crc32: format!("{:08x}", f.file.crc32),
            })
            .collect();
        let m = Manifest {
            schema_version: SCHEMA_VERSION,
            chorus_version: env!("CARGO_PKG_VERSION").to_string(),
            run,
            posts_by_kind: self.by_kind,
            files,
        };
        m.write(&self.dir)?;
        Ok(m)
    }
}
