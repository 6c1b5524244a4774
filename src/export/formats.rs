//! One exported file of one table in one format (JSONL, CSV or Parquet), written row by row.
//!
//! Invariant: memory is bounded by one Parquet batch and one row group's encoded pages,
//! whatever the number of rows.

use super::files::{AtomicFile, HashingWriter, PendingFile, Written};
use super::table::{visit_edge, visit_post, visit_user, CellVisitor, ColType, Table};
use crate::error::{Error, Result};
use crate::graph::Edge;
use crate::ids::UserId;
use crate::population::{Population, User};
use crate::timeline::Post;
use arrow_array::builder::{Float32Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder, UInt8Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// An export file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON lines: posts exactly as `chorus run` writes them, users as full profiles.
    Jsonl,
    /// CSV with a header row; null is an empty field.
    Csv,
    /// Apache Parquet with a typed Arrow schema (Snappy-compressed).
    Parquet,
}

impl Format {
    /// File extension (`jsonl`, `csv`, `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }

    /// Parses a comma-separated list like `jsonl,parquet` (duplicates count once).
    pub fn parse_list(s: &str) -> Result<Vec<Format>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let f = match part {
                "jsonl" => Format::Jsonl,
                "csv" => Format::Csv,
                "parquet" => Format::Parquet,
                other => {
                    return Err(Error::Config(format!(
                        "unknown export format {other:?} (expected jsonl, csv or parquet)"
                    )))
                }
            };
            if !out.contains(&f) {
                out.push(f);
            }
        }
        if out.is_empty() {
            return Err(Error::Config("no export format given (expected jsonl, csv or parquet)".into()));
        }
        Ok(out)
    }
}

/// Rows per Parquet record batch handed to the writer.
const BATCH_ROWS: usize = 8192;

/// A table file being written.
pub struct TableFile {
    table: Table,
    format: Format,
    rows: u64,
    inner: Inner,
    scratch: String,
    line: Vec<u8>,
}

enum Inner {
    Jsonl(AtomicFile),
    Csv(Box<CsvOut>),
    Parquet(Box<ParquetOut>),
}

/// A finished file: which table, which format, how many rows, and its bytes.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The table.
    pub table: Table,
    /// The format.
    pub format: Format,
    /// Data rows written (the CSV header not counted).
    pub rows: u64,
    /// Path, size and checksum.
    pub file: Written,
}

impl TableFile {
    /// Starts `<dir>/<table>.<ext>` (written as `.tmp` until [`TableFile::finish`]).
    /// `row_group` is the Parquet row-group size in rows (ignored by the other formats).
    pub fn create(dir: &Path, table: Table, format: Format, row_group: usize) -> Result<TableFile> {
        let path = dir.join(format!("{}.{}", table.name(), format.extension()));
        let file = AtomicFile::create(&path)?;
        let inner = match format {
            Format::Jsonl => Inner::Jsonl(file),
            Format::Csv => Inner::Csv(Box::new(CsvOut::new(file, table)?)),
            Format::Parquet => Inner::Parquet(Box::new(ParquetOut::new(file, table, row_group)?)),
        };
        Ok(TableFile { table, format, rows: 0, inner, scratch: String::new(), line: Vec::with_capacity(1024) })
    }

    /// The table.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Appends a post (posts table only).
    pub fn post(&mut self, p: &Post) -> Result<()> {
        debug_assert_eq!(self.table, Table::Posts);
        self.rows += 1;
        match &mut self.inner {
            Inner::Jsonl(f) => json_line(f, &mut self.line, p),
            Inner::Csv(c) => c.row(|v| visit_post(p, v)),
            Inner::Parquet(pq) => pq.row(|v| visit_post(p, v)),
        }
    }

    /// Appends a user (users table only).
    pub fn user(&mut self, pop: &Population, u: &User) -> Result<()> {
        debug_assert_eq!(self.table, Table::Users);
        self.rows += 1;
        let scratch = &mut self.scratch;
        match &mut self.inner {
            Inner::Jsonl(f) => json_line(f, &mut self.line, u),
            Inner::Csv(c) => c.row(|v| visit_user(pop, u, scratch, v)),
            Inner::Parquet(pq) => pq.row(|v| visit_user(pop, u, scratch, v)),
        }
    }

    /// Appends an edge `source -> e.target` (edges table only).
    pub fn edge(&mut self, source: UserId, e: &Edge) -> Result<()> {
        debug_assert_eq!(self.table, Table::Edges);
        self.rows += 1;
        match &mut self.inner {
            Inner::Jsonl(f) => {
                #[derive(serde::Serialize)]
                struct Row<'a> {
                    source: u32,
                    target: u32,
                    kind: &'a str,
                    weight: f32,
                }
                let row = Row { source: source.0, target: e.target.0, kind: e.kind.name(), weight: e.weight };
                json_line(f, &mut self.line, &row)
            }
            Inner::Csv(c) => c.row(|v| visit_edge(source, e, v)),
            Inner::Parquet(pq) => pq.row(|v| visit_edge(source, e, v)),
        }
    }

    /// Flushes, closes (Parquet footer), syncs and renames the file to its final name.
    pub fn finish(self) -> Result<Finished> {
        let file = match self.inner {
            Inner::Jsonl(f) => f.commit()?,
            Inner::Csv(c) => c.finish()?,
            Inner::Parquet(pq) => pq.finish()?,
        };
        Ok(Finished { table: self.table, format: self.format, rows: self.rows, file })
    }
}

/// Writes `value` as one JSON line: serialized into `line` first, so the file (and its
/// checksum) sees one write per row.
fn json_line<T: serde::Serialize>(f: &mut AtomicFile, line: &mut Vec<u8>, value: &T) -> Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, value).map_err(|e| f.err(e.into()))?;
    line.push(b'\n');
    f.writer().write_all(line).map_err(|e| f.err(e))
}

/// CSV output: the csv crate's writer over the checksumming file.
pub(crate) struct CsvOut {
    w: csv::Writer<HashingWriter>,
    pending: PendingFile,
    num: Vec<u8>,
    error: Option<csv::Error>,
}

impl CsvOut {
    fn new(file: AtomicFile, table: Table) -> Result<CsvOut> {
        Self::with_header(file, table.columns().iter().map(|c| c.name.to_string()))
    }

    /// A CSV file with the given header row.
    pub(crate) fn with_header(file: AtomicFile, header: impl IntoIterator<Item = String>) -> Result<CsvOut> {
        let (writer, pending) = file.into_parts();
        let mut w = csv::WriterBuilder::new().buffer_capacity(1 << 16).from_writer(writer);
        w.write_record(header).map_err(|e| csv_err(&pending, e))?;
        Ok(CsvOut { w, pending, num: Vec::with_capacity(32), error: None })
    }

    /// Writes one record: `f` feeds its cells.
    pub(crate) fn row(&mut self, f: impl FnOnce(&mut dyn CellVisitor)) -> Result<()> {
        f(self);
        if let Err(e) = self.w.write_record(None::<&[u8]>) {
            self.error.get_or_insert(e);
        }
        match self.error.take() {
            Some(e) => Err(csv_err(&self.pending, e)),
            None => Ok(()),
        }
    }

    fn field(&mut self, bytes: &[u8]) {
        if let Err(e) = self.w.write_field(bytes) {
            self.error.get_or_insert(e);
        }
    }

    fn number(&mut self, v: impl std::fmt::Display) {
        self.num.clear();
        let _ = write!(self.num, "{v}");
        let num = std::mem::take(&mut self.num);
        self.field(&num);
        self.num = num;
    }

    /// Flushes and commits the file.
    pub(crate) fn finish(self) -> Result<Written> {
        let CsvOut { w, pending, .. } = self;
        let writer = w.into_inner().map_err(|e| Error::io(pending.tmp_path(), e.into_error()))?;
        pending.commit(writer)
    }
}

fn csv_err(pending: &PendingFile, e: csv::Error) -> Error {
    Error::io(pending.tmp_path(), std::io::Error::other(e))
}

impl CellVisitor for CsvOut {
    fn u8(&mut self, v: u8) {
        self.number(v)
    }
    fn u32(&mut self, v: u32) {
        self.number(v)
    }
    fn u64(&mut self, v: u64) {
        self.number(v)
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.number(v),
            None => self.field(b""),
        }
    }
    fn i64(&mut self, v: i64) {
        self.number(v)
    }
    fn f32(&mut self, v: f32) {
        self.number(v)
    }
    fn str(&mut self, v: &str) {
        self.field(v.as_bytes())
    }
    fn opt_str(&mut self, v: Option<&str>) {
        self.field(v.unwrap_or("").as_bytes())
    }
}

/// The Arrow schema of a table.
pub fn arrow_schema(table: Table) -> SchemaRef {
    let fields: Vec<Field> = table
        .columns()
        .iter()
        .map(|c| {
            let (ty, nullable) = match c.ty {
                ColType::U8 => (DataType::UInt8, false),
                ColType::U32 => (DataType::UInt32, false),
                ColType::U64 => (DataType::UInt64, false),
                ColType::OptU64 => (DataType::UInt64, true),
                ColType::I64 => (DataType::Int64, false),
                ColType::F32 => (DataType::Float32, false),
                ColType::Str => (DataType::Utf8, false),
                ColType::OptStr => (DataType::Utf8, true),
            };
            Field::new(c.name, ty, nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

enum Builder {
    U8(UInt8Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    Str(StringBuilder),
}

impl Builder {
    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::U8(b) => Arc::new(b.finish()),
            Builder::U32(b) => Arc::new(b.finish()),
            Builder::U64(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// Parquet output: column builders filled row by row, a record batch every [`BATCH_ROWS`]
/// rows, a row group every `row_group` rows.
struct ParquetOut {
    writer: parquet::arrow::ArrowWriter<HashingWriter>,
    pending: PendingFile,
    schema: SchemaRef,
    builders: Vec<Builder>,
    col: usize,
    buffered: usize,
}

impl ParquetOut {
    fn new(file: AtomicFile, table: Table, row_group: usize) -> Result<ParquetOut> {
        let schema = arrow_schema(table);
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_group.max(1)))
            .set_created_by(format!("chorus {}", env!("CARGO_PKG_VERSION")))
            .build();
        let (w, pending) = file.into_parts();
        let writer =
            parquet::arrow::ArrowWriter::try_new(w, schema.clone(), Some(props)).map_err(|e| pq_err(&pending, e))?;
        let builders = table
            .columns()
            .iter()
            .map(|c| match c.ty {
                ColType::U8 => Builder::U8(UInt8Builder::with_capacity(BATCH_ROWS)),
                ColType::U32 => Builder::U32(UInt32Builder::with_capacity(BATCH_ROWS)),
                ColType::U64 | ColType::OptU64 => Builder::U64(UInt64Builder::with_capacity(BATCH_ROWS)),
                ColType::I64 => Builder::I64(Int64Builder::with_capacity(BATCH_ROWS)),
                ColType::F32 => Builder::F32(Float32Builder::with_capacity(BATCH_ROWS)),
                ColType::Str | ColType::OptStr => {
                    Builder::Str(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 32))
                }
            })
            .collect();
        Ok(ParquetOut { writer, pending, schema, builders, col: 0, buffered: 0 })
    }

    fn row(&mut self, f: impl FnOnce(&mut dyn CellVisitor)) -> Result<()> {
        self.col = 0;
        f(self);
        debug_assert_eq!(self.col, self.builders.len());
        self.buffered += 1;
        if self.buffered >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
            Error::io(self.pending.tmp_path(), std::io::Error::other(format!("building a record batch: {e}")))
        })?;
        self.buffered = 0;
        self.writer.write(&batch).map_err(|e| pq_err(&self.pending, e))
    }

    fn finish(mut self) -> Result<Written> {
        self.flush_batch()?;
        let ParquetOut { writer, pending, .. } = self;
        let inner = writer.into_inner().map_err(|e| pq_err(&pending, e))?;
        pending.commit(inner)
    }

    #[inline]
    fn next(&mut self) -> &mut Builder {
        let i = self.col;
        self.col += 1;
        &mut self.builders[i]
    }
}

fn pq_err(pending: &PendingFile, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => Error::io(pending.tmp_path(), *io),
            Err(other) => Error::io(pending.tmp_path(), std::io::Error::other(other.to_string())),
        },
        other => Error::io(pending.tmp_path(), std::io::Error::other(other.to_string())),
    }
}

impl CellVisitor for ParquetOut {
    fn u8(&mut self, v: u8) {
        if let Builder::U8(b) = self.next() {
            b.append_value(v)
        }
    }
    fn u32(&mut self, v: u32) {
        if let Builder::U32(b) = self.next() {
            b.append_value(v)
        }
    }
    fn u64(&mut self, v: u64) {
        if let Builder::U64(b) = self.next() {
            b.append_value(v)
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        if let Builder::U64(b) = self.next() {
            b.append_option(v)
        }
    }
    fn i64(&mut self, v: i64) {
        if let Builder::I64(b) = self.next() {
            b.append_value(v)
        }
    }
    fn f32(&mut self, v: f32) {
        if let Builder::F32(b) = self.next() {
            b.append_value(v)
        }
    }
    fn str(&mut self, v: &str) {
        if let Builder::Str(b) = self.next() {
            b.append_value(v)
        }
    }
    fn opt_str(&mut self, v: Option<&str>) {
        if let Builder::Str(b) = self.next() {
            b.append_option(v)
        }
    }
}
