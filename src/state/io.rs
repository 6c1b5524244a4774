//! Saving and restoring a run's evolving state (user state plus the pipeline's own memory), so
//! a game can save, quit, and resume with a byte-identical continuation.
//!
//! Layout (little-endian): magic `CHORUSST`, a `u32` version, a reserved `u32`; sections (4-byte
//! tag, `u64` length, payload, zero padding to 8 bytes): `META` (JSON: population fingerprint,
//! config, tags, external ids, counters), `CELL` (the dense per-user cells),
//! `HHED`, `HCNT`, `HPOL`, `HOLD`, `HFRE`, `HFLD` (history), `RELS`, `FOLW` (follow changes,
//! since version 2), `REFL`, `RTXT` (LLM-written reflection texts as JSON, since version 2),
//! `GIFM`; then
//! `END\0` with the CRC-32 of everything before it. Written to `<path>.tmp` and renamed.
//!
//! Invariant: a file that loads is consistent (lengths match the population, history links are
//! checked); anything else is refused with [`Error::Snapshot`], never a panic.

use super::follows::{Change, Follows};
use super::history::{Folded, History, Record, CHUNK};
use super::reflect::{Reflection, Reflections};
use super::relations::{Relation, Relations};
use super::{Cell, StateConfig, UserState};
use crate::error::{Error, Result};
use bytemuck::{Pod, Zeroable};
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = crate::filekind::STATE_MAGIC;
/// Format version written by this build.
pub const VERSION: u32 = 2;

/// What the pipeline keeps besides the user state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineMemory {
    /// Events numbered so far (the next event's index).
    pub events: u32,
    /// Each user's recent GIF picks.
    pub gifs: Vec<(u32, [u16; 4])>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    fingerprint: String,
    users: usize,
    config: StateConfig,
    tag_names: Vec<String>,
    external: BTreeMap<u32, String>,
    shifts_done: usize,
    reflections_formed: u64,
    events: u32,
    /// The last game day the retention sweep ran for.
    #[serde(default)]
    swept_day: u32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RelRow {
    user: u32,
    rel: Relation,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct FollowRow {
    user: u32,
    change: Change,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ReflRow {
    user: u32,
    r: Reflection,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct FoldRow {
    user: u32,
    reserved: u32,
    f: Folded,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct GifRow {
    user: u32,
    picks: [u16; 4],
}

struct Out<W: Write> {
    w: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Out<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.w.write_all(b)
    }

    fn section(&mut self, tag: &[u8; 4], payload: &[u8]) -> std::io::Result<()> {
        self.put(tag)?;
        self.put(&(payload.len() as u64).to_le_bytes())?;
        self.put(payload)?;
        self.put(&[0u8; 8][..(8 - payload.len() % 8) % 8])
    }
}

/// Saves `state` and the pipeline's memory, bound to a population by `fingerprint`.
pub fn save(path: &Path, state: &UserState, fingerprint: &str, memory: &PipelineMemory) -> Result<()> {
    let tmp = crate::export::files::staging_path(path);
    let io = |e| Error::io(&tmp, e);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut out = Out { w: BufWriter::new(file), crc: crc32fast::Hasher::new() };
    let (formed, refl) = state.reflections.flat();
    let meta = Meta {
        fingerprint: fingerprint.to_string(),
        users: state.len(),
        config: state.config.clone(),
        tag_names: state.tag_names.clone(),
        external: state.external.clone(),
        shifts_done: state.shifts_done,
        reflections_formed: formed,
        events: memory.events,
        swept_day: state.swept_day,
    };
    let meta = serde_json::to_vec(&meta).map_err(|e| Error::Config(format!("state metadata: {e}")))?;
    let (head, count, pool, older, free, folded) = state.history.parts();
    let rels: Vec<RelRow> = state.relations.flat().into_iter().map(|(user, rel)| RelRow { user, rel }).collect();
    let follows: Vec<FollowRow> =
        state.follows.flat().into_iter().map(|(user, change)| FollowRow { user, change }).collect();
    let refl: Vec<ReflRow> = refl.into_iter().map(|(user, r)| ReflRow { user, r }).collect();
    let texts = serde_json::to_vec(&state.reflections.flat_texts())
        .map_err(|e| Error::Config(format!("reflection texts: {e}")))?;
    let folded: Vec<FoldRow> = folded.into_iter().map(|(user, f)| FoldRow { user, reserved: 0, f }).collect();
    let gifs: Vec<GifRow> = memory.gifs.iter().map(|&(user, picks)| GifRow { user, picks }).collect();
    (|| -> std::io::Result<()> {
        out.put(MAGIC)?;
        out.put(&VERSION.to_le_bytes())?;
        out.put(&0u32.to_le_bytes())?;
        out.section(b"META", &meta)?;
        out.section(b"CELL", bytemuck::cast_slice(&state.cells))?;
        out.section(b"HHED", bytemuck::cast_slice(head))?;
        out.section(b"HCNT", bytemuck::cast_slice(count))?;
        out.section(b"HPOL", bytemuck::cast_slice(pool))?;
        out.section(b"HOLD", bytemuck::cast_slice(older))?;
        out.section(b"HFRE", bytemuck::cast_slice(free))?;
        out.section(b"HFLD", bytemuck::cast_slice(&folded))?;
        out.section(b"RELS", bytemuck::cast_slice(&rels))?;
        out.section(b"FOLW", bytemuck::cast_slice(&follows))?;
        out.section(b"REFL", bytemuck::cast_slice(&refl))?;
        out.section(b"RTXT", &texts)?;
        out.section(b"GIFM", bytemuck::cast_slice(&gifs))?;
        let crc = out.crc.clone().finalize();
        out.put(b"END\0")?;
        out.put(&4u64.to_le_bytes())?;
        out.put(&crc.to_le_bytes())?;
        out.put(&[0u8; 4])?;
        out.w.flush()
    })()
    .map_err(io)?;
    let file = out.w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
    crate::export::files::publish(file, &tmp, path)
}

struct In<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    at: usize,
}

impl In<'_> {
    fn fail(&self, message: impl Into<String>) -> Error {
        Error::Snapshot { path: self.path.to_path_buf(), message: message.into() }
    }

    fn section(&mut self, tag: &[u8; 4]) -> Result<&[u8]> {
        let name = String::from_utf8_lossy(tag).into_owned();
        let head =
            self.bytes.get(self.at..self.at + 12).ok_or_else(|| self.fail(format!("truncated before {name}")))?;
        if &head[..4] != tag {
            return Err(self.fail(format!("expected section {name}")));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[4..12]);
        let len = u64::from_le_bytes(len) as usize;
        let start = self.at + 12;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.fail(format!("section {name} truncated")))?;
        self.at = end + (8 - len % 8) % 8;
        Ok(&self.bytes[start..end])
    }

    fn array<T: Pod + Zeroable>(&mut self, tag: &[u8; 4], count: Option<usize>) -> Result<Vec<T>> {
        let size = std::mem::size_of::<T>();
        let raw = self.section(tag)?;
        if raw.len() % size != 0 || count.is_some_and(|n| n * size != raw.len()) {
            return Err(self.fail(format!("section {} has the wrong length", String::from_utf8_lossy(tag))));
        }
        let mut v = vec![T::zeroed(); raw.len() / size];
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(raw);
        Ok(v)
    }
}

/// Loads a saved state, checking it belongs to the population with `fingerprint` and
/// `users` users.
pub fn load(path: &Path, fingerprint: &str, users: usize) -> Result<(UserState, PipelineMemory)> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| Error::io(path, e))?;
    load_bytes(path, &bytes, fingerprint, users)
}

/// [`load`] from bytes already in memory; `path` names the file in errors.
pub fn load_bytes(path: &Path, bytes: &[u8], fingerprint: &str, users: usize) -> Result<(UserState, PipelineMemory)> {
    let mut r = In { path, bytes, at: 16 };
    if bytes.len() < 40 || &bytes[..8] != MAGIC {
        let why = crate::filekind::wrong_kind(bytes, "a state file");
        return Err(r.fail(why.unwrap_or_else(|| "not a chorus state file".into())));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(r.fail(format!("format version {version}, this build reads {VERSION}")));
    }
    // The trailer: "END\0", length 4, the CRC, 4 bytes of padding.
    let end = bytes.len() - 20;
    if &bytes[end..end + 4] != b"END\0" {
        return Err(r.fail("truncated (no end section)"));
    }
    let crc = u32::from_le_bytes([bytes[end + 12], bytes[end + 13], bytes[end + 14], bytes[end + 15]]);
    if crc32fast::hash(&bytes[..end]) != crc {
        return Err(r.fail("checksum mismatch (corrupted)"));
    }
    let meta: Meta = serde_json::from_slice(r.section(b"META")?).map_err(|e| r.fail(format!("metadata: {e}")))?;
    if meta.fingerprint != fingerprint || meta.users != users {
        return Err(r.fail(format!(
            "saved for another population ({} users, {}), not this one ({users} users, {fingerprint})",
            meta.users, meta.fingerprint
        )));
    }
    let cells: Vec<Cell> = r.array(b"CELL", Some(users))?;
    let head: Vec<u32> = r.array(b"HHED", Some(users))?;
    let count: Vec<u16> = r.array(b"HCNT", Some(users))?;
    let pool: Vec<[Record; CHUNK]> = r.array(b"HPOL", None)?;
    let older: Vec<u32> = r.array(b"HOLD", None)?;
    let free: Vec<u32> = r.array(b"HFRE", None)?;
    let folded: Vec<FoldRow> = r.array(b"HFLD", None)?;
    let rels: Vec<RelRow> = r.array(b"RELS", None)?;
    let follows: Vec<FollowRow> = r.array(b"FOLW", None)?;
    let refl: Vec<ReflRow> = r.array(b"REFL", None)?;
    let texts: Vec<((u32, u32, u32, u16), String)> =
        serde_json::from_slice(r.section(b"RTXT")?).map_err(|e| r.fail(format!("reflection texts: {e}")))?;
    let gifs: Vec<GifRow> = r.array(b"GIFM", None)?;
    if rels.iter().any(|x| x.user as usize >= users || x.rel.other as usize >= users)
        || follows.iter().any(|x| x.user as usize >= users || x.change.other as usize >= users)
        || refl.iter().any(|x| x.user as usize >= users)
        || gifs.iter().any(|x| x.user as usize >= users)
    {
        return Err(r.fail("a user id out of range"));
    }
    let history = History::from_parts(
        meta.config.history_window,
        head,
        count,
        pool,
        older,
        free,
        folded.into_iter().map(|x| (x.user, x.f)).collect(),
    )
    .map_err(|m| r.fail(m))?;
    let mut state = UserState::new(users, meta.config).map_err(|e| r.fail(e.to_string()))?;
    state.cells = cells;
    state.history = history;
    state.relations = Relations::from_flat(rels.into_iter().map(|x| (x.user, x.rel)).collect());
    state.follows = Follows::from_flat(follows.into_iter().map(|x| (x.user, x.change)).collect())
        .ok_or_else(|| r.fail("follow changes out of order"))?;
    state.reflections =
        Reflections::from_flat(meta.reflections_formed, refl.into_iter().map(|x| (x.user, x.r)).collect(), texts)
            .ok_or_else(|| r.fail("reflection texts do not match the reflections"))?;
    state.tag_names = meta.tag_names;
    state.external = meta.external;
    state.shifts_done = meta.shifts_done;
    state.swept_day = meta.swept_day;
    state.refresh_ceilings();
    Ok((state, PipelineMemory { events: meta.events, gifs: gifs.into_iter().map(|g| (g.user, g.picks)).collect() }))
}
