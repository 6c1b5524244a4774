//! `manifest.json`: written last, it lists every file of an export with its row count, size
//! and CRC-32. A directory without it, or whose files disagree with it, is not a complete export.

use super::files::checksum;
use super::formats::Format;
use super::table::Table;
use crate::error::{Error, Result};
use std::path::Path;

/// The version of the exported schemas (tables, columns, manifest). Bumped on any change a
/// reader would notice.
pub const SCHEMA_VERSION: u32 = 1;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// One exported file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// File name inside the export directory.
    pub name: String,
    /// The table it holds.
    pub table: Table,
    /// Its format.
    pub format: Format,
    /// Data rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the bytes, as 8 lowercase hex digits.
    pub crc32: String,
}

/// The run an export came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    /// Master seed of the population.
    pub seed: u64,
    /// Number of users.
    pub users: u64,
    /// Number of directed edges.
    pub edges: u64,
    /// Events processed.
    pub events: u64,
    /// Events rejected (bad input).
    pub rejected: u64,
}

/// The manifest of a complete export.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// [`SCHEMA_VERSION`] at writing.
    pub schema_version: u32,
    /// The chorus version that wrote it.
    pub chorus_version: String,
    /// The run.
    pub run: RunInfo,
    /// Posts, by kind name.
    pub posts_by_kind: std::collections::BTreeMap<String, u64>,
    /// The files, in the order they were finished.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Reads `<dir>/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::data(&path.display().to_string(), e.line(), "-", e.to_string()))
    }

    /// Reads the manifest of `dir` and checks every file's size and checksum: `Ok` only for a
    /// complete, unaltered export.
    pub fn verify(dir: &Path) -> Result<Manifest> {
        let m = Manifest::read(dir)?;
        if m.schema_version != SCHEMA_VERSION {
            return Err(Error::Config(format!(
                "{}: schema version {} (this chorus reads {SCHEMA_VERSION})",
                dir.join(MANIFEST).display(),
                m.schema_version
            )));
        }
        for f in &m.files {
            let path = dir.join(&f.name);
            let (bytes, crc) = checksum(&path)?;
            if bytes != f.bytes || format!("{crc:08x}") != f.crc32 {
                return Err(Error::Config(format!(
                    "{}: {bytes} bytes with CRC-32 {crc:08x}, the manifest says {} bytes with {}",
                    path.display(),
                    f.bytes,
                    f.crc32
                )));
            }
        }
        Ok(m)
    }

    /// Writes the manifest as `manifest.json.tmp`, then renames it.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut f = super::files::AtomicFile::create(&dir.join(MANIFEST))?;
        serde_json::to_writer_pretty(&mut *f.writer(), self).map_err(|e| f.err(e.into()))?;
        std::io::Write::write_all(f.writer(), b"\n").map_err(|e| f.err(e))?;
        f.commit().map(|_| ())
    }
}
