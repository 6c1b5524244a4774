//! Snapshots: a whole population (seeds, world, config, columns, communities, graph) in one
//! versioned, checksummed file, so a game starts from it in well under a second.
//!
//! Layout (little-endian): the magic `CHORUSNP`, a `u32` format version and a reserved `u32`;
//! then sections, each a 4-byte tag, a `u64` length, the payload and zero padding to 8 bytes;
//! then the trailer section `END\0` holding the CRC-32 of every byte before it, and the magic
//! again. Saving writes `<path>.tmp` and renames it, so a killed save never leaves a file that
//! looks complete.
//!
//! Invariant: a snapshot that loads is structurally valid (lengths, offsets and ids in range);
//! a truncated or corrupted one is refused with [`Error::Snapshot`], never a panic.

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::population::columns::Columns;
use crate::population::model::Model;
use crate::population::{Population, PopulationConfig};
use crate::seeds::SeedSet;
use crate::world::{World, NO_ENTITY};
use bytemuck::{Pod, Zeroable};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = crate::filekind::SNAPSHOT_MAGIC;
/// Format version written by this build.
pub const VERSION: u32 = 1;

struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn section(&mut self, tag: &[u8; 4], payload: &[u8]) -> std::io::Result<()> {
        self.put(tag)?;
        self.put(&(payload.len() as u64).to_le_bytes())?;
        self.put(payload)?;
        let pad = (8 - payload.len() % 8) % 8;
        self.put(&[0u8; 8][..pad])
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TextFile {
    file: String,
    text: String,
}

/// Saves `population` to `path` (atomically: written to `<path>.tmp`, then renamed; a device
/// or named pipe is written in place).
pub fn save(population: &Population, path: &Path) -> Result<()> {
    let tmp = crate::export::files::staging_path(path);
    let io = |e| Error::io(&tmp, e);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = CrcWriter { inner: BufWriter::with_capacity(1 << 20, file), crc: crc32fast::Hasher::new(), written: 0 };
    write_all(population, &mut w).map_err(io)?;
    let crc = w.crc.clone().finalize();
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&crc.to_le_bytes());
    w.section(b"END\0", &trailer).map_err(io)?;
    w.inner.write_all(MAGIC).map_err(io)?;
    let file = w.inner.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
    crate::export::files::publish(file, &tmp, path)
}

fn write_all<W: Write>(p: &Population, w: &mut CrcWriter<W>) -> std::io::Result<()> {
    w.put(MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    w.put(&0u32.to_le_bytes())?;
    w.section(b"CONF", &json(&p.config)?)?;
    w.section(b"WRLD", &json(&TextFile { file: p.world.file.clone(), text: p.world.source.clone() })?)?;
    w.section(b"SEED", &json(&TextFile { file: p.seeds.file.clone(), text: p.seeds.source.clone() })?)?;
    let c = &p.cols;
    w.section(b"DEMO", bytemuck::cast_slice(&c.demographics))?;
    w.section(b"PERS", bytemuck::cast_slice(&c.persona))?;
    w.section(b"INTR", bytemuck::cast_slice(&c.interests))?;
    w.section(b"STYL", bytemuck::cast_slice(&c.style))?;
    w.section(b"ACTV", bytemuck::cast_slice(&c.activity))?;
    w.section(b"AFFL", bytemuck::cast_slice(&c.affiliations))?;
    w.section(b"HSUF", bytemuck::cast_slice(&c.handle_suffix))?;
    w.section(b"CIRC", bytemuck::cast_slice(&c.circle))?;
    w.section(b"WORK", bytemuck::cast_slice(&c.workplace))?;
    w.section(b"CSTA", bytemuck::cast_slice(&p.circle_start))?;
    w.section(b"TSTA", bytemuck::cast_slice(&p.town_start))?;
    w.section(b"WPLC", &p.workplaces.to_le_bytes())?;
    let g = &p.graph;
    w.section(b"GOOF", bytemuck::cast_slice(&g.out_offsets))?;
    w.section(b"GOUT", bytemuck::cast_slice(&g.out_targets))?;
    w.section(b"GMET", &g.out_meta)?;
    w.section(b"GIOF", bytemuck::cast_slice(&g.in_offsets))?;
    w.section(b"GINS", bytemuck::cast_slice(&g.in_sources))
}

fn json<T: serde::Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(std::io::Error::other)
}

struct Reader {
    file: Source,
    /// Offset of the next byte to read.
    pos: u64,
    /// Small pieces (headers, padding) hashed inline; large payloads are hashed in parallel
    /// afterwards and combined in file order.
    segments: Vec<Segment>,
    path: PathBuf,
    remaining: u64,
}

/// A piece of the file for the checksum: either small bytes kept here, or the payload of a
/// section kept in its decoded array (referenced by tag).
enum Segment {
    Small(Vec<u8>),
    Payload([u8; 4]),
}

/// Where a snapshot is read from: a file (read in parallel pieces) or bytes in memory.
enum Source {
    File(std::fs::File),
    Memory(Vec<u8>),
}

impl Source {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::File(f) => read_exact_at(f, buf, offset),
            Source::Memory(bytes) => {
                let at =
                    usize::try_from(offset).map_err(|_| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
                let piece = at
                    .checked_add(buf.len())
                    .and_then(|end| bytes.get(at..end))
                    .ok_or(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(piece);
                Ok(())
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset`, without moving a shared cursor.
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

impl Reader {
    fn fail(&self, message: impl Into<String>) -> Error {
        Error::Snapshot { path: self.path.clone(), message: message.into() }
    }

    fn take(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        if (buf.len() as u64) > self.remaining {
            return Err(self.fail(format!("truncated in {what}")));
        }
        // Large payloads are read in parallel 16 MiB pieces: a single reader thread is bound
        // by the kernel's copy, not the disk, when the file is in the page cache.
        use rayon::prelude::*;
        const PIECE: usize = 16 << 20;
        let (file, pos) = (&self.file, self.pos);
        buf.par_chunks_mut(PIECE)
            .enumerate()
            .try_for_each(|(i, chunk)| file.read_exact_at(chunk, pos + (i * PIECE) as u64))
            .map_err(|e| self.fail(format!("reading {what}: {e}")))?;
        self.pos += buf.len() as u64;
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    fn take_small(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.take(buf, what)?;
        match self.segments.last_mut() {
            Some(Segment::Small(v)) => v.extend_from_slice(buf),
            _ => self.segments.push(Segment::Small(buf.to_vec())),
        }
        Ok(())
    }

    fn header(&mut self, tag: &[u8; 4]) -> Result<u64> {
        let name = String::from_utf8_lossy(tag).trim_end_matches('\0').to_string();
        let mut head = [0u8; 12];
        self.take_small(&mut head, &format!("section {name} header"))?;
        if &head[..4] != tag {
            return Err(self
                .fail(format!("expected section {name}, found {:?}: corrupted", String::from_utf8_lossy(&head[..4]))));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[4..]);
        let len = u64::from_le_bytes(len);
        if len > self.remaining {
            return Err(
                self.fail(format!("section {name} claims {len} bytes but the file is shorter: truncated or corrupted"))
            );
        }
        Ok(len)
    }

    fn pad(&mut self, len: u64, name: &str) -> Result<()> {
        let pad = ((8 - len % 8) % 8) as usize;
        let mut zeros = [0u8; 8];
        self.take_small(&mut zeros[..pad], name)
    }

    fn bytes(&mut self, tag: &[u8; 4]) -> Result<Vec<u8>> {
        let len = self.header(tag)?;
        let mut v = vec![0u8; len as usize];
        self.take_small(&mut v, &String::from_utf8_lossy(tag))?;
        self.pad(len, "padding")?;
        Ok(v)
    }

    fn array<T: Pod + Zeroable>(&mut self, tag: &[u8; 4], count: Option<usize>) -> Result<Vec<T>> {
        let len = self.header(tag)?;
        let size = std::mem::size_of::<T>() as u64;
        let name = String::from_utf8_lossy(tag).to_string();
        if len % size != 0 || count.is_some_and(|c| c as u64 * size != len) {
            return Err(self.fail(format!("section {name} has the wrong length ({len} bytes)")));
        }
        let mut v = vec![T::zeroed(); (len / size) as usize];
        self.take(bytemuck::cast_slice_mut(&mut v), &name)?;
        self.segments.push(Segment::Payload(*tag));
        self.pad(len, "padding")?;
        Ok(v)
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self, tag: &[u8; 4]) -> Result<T> {
        let bytes = self.bytes(tag)?;
        serde_json::from_slice(&bytes).map_err(|e| self.fail(format!("section {}: {e}", String::from_utf8_lossy(tag))))
    }
}

/// Loads a snapshot written by [`save`].
pub fn load(path: &Path) -> Result<Population> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    read(Reader { file: Source::File(file), pos: 0, segments: Vec::new(), path: path.to_path_buf(), remaining: size })
}

/// [`load`] from bytes already in memory; `name` stands for the file in errors.
pub fn load_bytes(name: &Path, bytes: Vec<u8>) -> Result<Population> {
    let remaining = bytes.len() as u64;
    read(Reader { file: Source::Memory(bytes), pos: 0, segments: Vec::new(), path: name.to_path_buf(), remaining })
}

fn read(mut r: Reader) -> Result<Population> {
    let mut head = [0u8; 16];
    r.take_small(&mut head, "header")?;
    if &head[..8] != MAGIC {
        let why = crate::filekind::wrong_kind(&head, "a snapshot");
        return Err(r.fail(why.unwrap_or_else(|| "not a chorus snapshot (bad magic)".into())));
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != VERSION {
        return Err(r.fail(format!("format version {version}, this build reads version {VERSION}")));
    }
    let config: PopulationConfig = r.json(b"CONF")?;
    let world_file: TextFile = r.json(b"WRLD")?;
    let seed_file: TextFile = r.json(b"SEED")?;
    let n = config.users as usize;
    let cols = Columns {
        demographics: r.array(b"DEMO", Some(n))?,
        persona: r.array(b"PERS", Some(n))?,
        interests: r.array(b"INTR", Some(n))?,
        style: r.array(b"STYL", Some(n))?,
        activity: r.array(b"ACTV", Some(n))?,
        affiliations: r.array(b"AFFL", Some(n))?,
        handle_suffix: r.array(b"HSUF", Some(n))?,
        circle: r.array(b"CIRC", Some(n))?,
        workplace: r.array(b"WORK", Some(n))?,
    };
    let circle_start: Vec<u32> = r.array(b"CSTA", None)?;
    let town_start: Vec<u32> = r.array(b"TSTA", None)?;
    let workplaces: Vec<u32> = r.array(b"WPLC", Some(1))?;
    let out_offsets: Vec<u64> = r.array(b"GOOF", Some(n + 1))?;
    let out_targets: Vec<u32> = r.array(b"GOUT", None)?;
    let out_meta: Vec<u8> = r.array(b"GMET", Some(out_targets.len()))?;
    let in_offsets: Vec<u64> = r.array(b"GIOF", Some(n + 1))?;
    let in_sources: Vec<u32> = r.array(b"GINS", Some(out_targets.len()))?;
    let segments = std::mem::take(&mut r.segments);
    let trailer: Vec<u8> = r.bytes(b"END\0")?;
    let mut magic = [0u8; 8];
    r.take(&mut magic, "closing magic")?;
    let payload = |tag: &[u8; 4]| -> &[u8] {
        match tag {
            b"DEMO" => bytemuck::cast_slice(&cols.demographics),
            b"PERS" => bytemuck::cast_slice(&cols.persona),
            b"INTR" => bytemuck::cast_slice(&cols.interests),
            b"STYL" => bytemuck::cast_slice(&cols.style),
            b"ACTV" => bytemuck::cast_slice(&cols.activity),
            b"AFFL" => bytemuck::cast_slice(&cols.affiliations),
            b"HSUF" => bytemuck::cast_slice(&cols.handle_suffix),
            b"CIRC" => bytemuck::cast_slice(&cols.circle),
            b"WORK" => bytemuck::cast_slice(&cols.workplace),
            b"CSTA" => bytemuck::cast_slice(&circle_start),
            b"TSTA" => bytemuck::cast_slice(&town_start),
            b"WPLC" => bytemuck::cast_slice(&workplaces),
            b"GOOF" => bytemuck::cast_slice(&out_offsets),
            b"GOUT" => bytemuck::cast_slice(&out_targets),
            b"GMET" => &out_meta,
            b"GIOF" => bytemuck::cast_slice(&in_offsets),
            _ => bytemuck::cast_slice(&in_sources),
        }
    };
    let pieces: Vec<&[u8]> = segments
        .iter()
        .map(|s| match s {
            Segment::Small(v) => v.as_slice(),
            Segment::Payload(tag) => payload(tag),
        })
        .collect();
    let expected = parallel_crc(&pieces);
    if trailer.len() != 8 || trailer[4..] != [0, 0, 0, 0] || &magic != MAGIC {
        return Err(r.fail("bad trailer: truncated or corrupted"));
    }
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if stored != expected {
        return Err(r.fail(format!("checksum mismatch (stored {stored:08x}, computed {expected:08x}): corrupted")));
    }
    if r.remaining != 0 {
        return Err(r.fail("trailing bytes after the end: corrupted"));
    }
    let world = World::parse(&world_file.file, &world_file.text).map_err(|e| r.fail(format!("embedded world: {e}")))?;
    let seeds =
        SeedSet::parse(&seed_file.file, &seed_file.text, &world).map_err(|e| r.fail(format!("embedded seeds: {e}")))?;
    drop(pieces);
    let graph = Graph { out_offsets, out_targets, out_meta, in_offsets, in_sources };
    let parts = Parts {
        seeds: &seeds,
        world: &world,
        cols: &cols,
        circle_start: &circle_start,
        town_start: &town_start,
        workplaces: workplaces[0],
        graph: &graph,
    };
    let (model, valid) = rayon::join(|| Model::new(&seeds, &world), || validate(&parts));
    valid.map_err(|m| r.fail(format!("inconsistent content: {m}")))?;
    Ok(Population {
        model,
        seeds,
        world,
        config,
        cols,
        circle_start,
        town_start,
        workplaces: workplaces[0],
        graph,
        handles: Default::default(),
    })
}

struct Parts<'a> {
    seeds: &'a SeedSet,
    world: &'a World,
    cols: &'a Columns,
    circle_start: &'a [u32],
    town_start: &'a [u32],
    workplaces: u32,
    graph: &'a Graph,
}

/// CRC-32 of the concatenation of `pieces`, hashed in parallel 8 MiB chunks and combined in
/// order.
fn parallel_crc(pieces: &[&[u8]]) -> u32 {
    use rayon::prelude::*;
    let chunks: Vec<&[u8]> = pieces.iter().flat_map(|p| p.chunks(8 << 20)).collect();
    let hashers: Vec<crc32fast::Hasher> = chunks
        .par_iter()
        .map(|c| {
            let mut h = crc32fast::Hasher::new();
            h.update(c);
            h
        })
        .collect();
    let mut total = crc32fast::Hasher::new();
    for h in &hashers {
        total.combine(h);
    }
    total.finalize()
}

/// Cheap structural checks (linear, no sorting) so that a crafted file cannot make later
/// accesses panic.
fn validate(p: &Parts) -> std::result::Result<(), String> {
    let n = p.cols.demographics.len();
    let g = p.graph;
    for (name, offsets, len) in
        [("out", &g.out_offsets, g.out_targets.len()), ("in", &g.in_offsets, g.in_sources.len())]
    {
        if offsets.first() != Some(&0)
            || offsets.last().copied() != Some(len as u64)
            || offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(format!("{name}-offsets are not monotone from 0 to the edge count"));
        }
    }
    use rayon::prelude::*;
    let n32 = n as u32;
    if g.out_targets.par_iter().chain(g.in_sources.par_iter()).any(|&v| v >= n32) {
        return Err("edge endpoint out of range".into());
    }
    let circles = p.circle_start.len().checked_sub(1).ok_or("no circles")?;
    if p.circle_start.first() != Some(&0)
        || p.circle_start.last().copied() != Some(n as u32)
        || p.circle_start.windows(2).any(|w| w[0] >= w[1])
    {
        return Err("circle boundaries are not increasing from 0 to the user count".into());
    }
    if p.town_start.len() != p.world.towns.len() + 1
        || p.town_start.last().copied() != Some(n as u32)
        || p.town_start.windows(2).any(|w| w[0] > w[1])
    {
        return Err("town boundaries do not match the world".into());
    }
    let c = p.cols;
    let entities = p.world.entities.len();
    let ent_ok = |e: u16| e == NO_ENTITY || (e as usize) < entities;
    let bad = (0..n).into_par_iter().find_first(|&u| {
        let d = &c.demographics[u];
        let a = &c.affiliations[u];
        let ok = (d.seed as usize) < p.seeds.seeds.len()
            && (d.town as usize) < p.world.towns.len()
            && (d.occupation as usize) < p.seeds.occupations.len()
            && (d.locale as usize) < p.seeds.locales.len()
            && (c.circle[u] as usize) < circles
            && (c.workplace[u] < p.workplaces || c.workplace[u] == u32::MAX)
            && ent_ok(a.team)
            && ent_ok(a.party)
            && a.favourites.iter().all(|&f| ent_ok(f));
        !ok
    });
    match bad {
        Some(u) => Err(format!("user {u} refers to something that does not exist")),
        None => Ok(()),
    }
}
