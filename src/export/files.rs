//! Files that are either complete or visibly not: written under `name.tmp`, checksummed as
//! they are written, renamed to `name` only when finished. An existing file that is not a
//! regular one (`/dev/null`, a named pipe) is written in place: a rename would replace it.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A buffered file writer that counts bytes and keeps a CRC-32 of everything written.
pub struct HashingWriter {
    inner: std::io::BufWriter<std::fs::File>,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Whether `path` exists and is neither a regular file nor a directory (a device such as
/// `/dev/null`, a named pipe): such a path is written in place, never renamed over.
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Where `path` is written until it is complete: `<path>.tmp`, or `path` itself when it is
/// [special](is_special).
pub fn staging_path(path: &Path) -> PathBuf {
    if is_special(path) {
        path.to_path_buf()
    } else {
        PathBuf::from(format!("{}.tmp", path.display()))
    }
}

/// Makes `file`, written at `tmp` (from [`staging_path`]), the finished `path`: synced to
/// disk and renamed. Nothing is left to do for a path written in place.
pub fn publish(file: std::fs::File, tmp: &Path, path: &Path) -> Result<()> {
    if tmp == path {
        return Ok(());
    }
    file.sync_all().map_err(|e| Error::io(tmp, e))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))
}

/// A file being written under a temporary name (`<name>.tmp` in the same directory).
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: HashingWriter,
}

/// What a finished file holds: its name, size and CRC-32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The final path.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the bytes.
    pub crc32: u32,
}

impl AtomicFile {
    /// Creates `<path>.tmp` (replacing a stale one; see [`staging_path`]). `path` itself is
    /// untouched until [`AtomicFile::commit`].
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let tmp = staging_path(path);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let writer = HashingWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: Default::default(),
            bytes: 0,
        };
        Ok(AtomicFile { path: path.to_path_buf(), tmp, writer })
    }

    /// The temporary path being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut HashingWriter {
        &mut self.writer
    }

    /// Wraps an I/O error with the temporary file's path.
    pub fn err(&self, e: std::io::Error) -> Error {
        Error::io(&self.tmp, e)
    }

    /// Flushes, then [`publish`]es the file under its final name.
    pub fn commit(self) -> Result<Written> {
        Self::commit_writer(self.writer, &self.tmp, &self.path)
    }

    /// Splits into the writer and a handle that commits it later (for writers that take
    /// ownership of their output, like the Parquet writer).
    pub fn into_parts(self) -> (HashingWriter, PendingFile) {
        (self.writer, PendingFile { path: self.path, tmp: self.tmp })
    }

    fn commit_writer(mut writer: HashingWriter, tmp: &Path, path: &Path) -> Result<Written> {
        writer.flush().map_err(|e| Error::io(tmp, e))?;
        let crc32 = writer.hasher.clone().finalize();
        let bytes = writer.bytes;
        let file = writer.inner.into_inner().map_err(|e| Error::io(tmp, e.into_error()))?;
        publish(file, tmp, path)?;
        Ok(Written { path: path.to_path_buf(), bytes, crc32 })
    }
}

/// The naming half of an [`AtomicFile`] whose writer was handed to someone else.
pub struct PendingFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl PendingFile {
    /// The temporary path.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Commits `writer` (which must be the one split off this file) under the final name.
    pub fn commit(self, writer: HashingWriter) -> Result<Written> {
        AtomicFile::commit_writer(writer, &self.tmp, &self.path)
    }
}

/// CRC-32 and size of a file on disk (for checking a manifest).
pub fn checksum(path: &Path) -> Result<(u64, u32)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    /// Writing to a named pipe (as to /dev/null) goes through the pipe and leaves it a pipe: a
    /// rename from `<name>.tmp` would have replaced it with a regular file.
    #[test]
    fn a_named_pipe_is_written_in_place_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("out.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("no mkfifo here: skipped");
            return;
        }
        assert!(is_special(&fifo) && !is_special(dir.path()) && !is_special(&dir.path().join("none")));
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).expect("read the pipe"))
        };
        let mut f = AtomicFile::create(&fifo).expect("create");
        f.writer().write_all(b"{\"id\":1}\n").expect("write");
        let written = f.commit().expect("commit");
        assert_eq!(written.bytes, 9);
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).expect("still there").file_type().is_fifo(), "the pipe was replaced");
        assert!(!dir.path().join("out.jsonl.tmp").exists());
        assert_eq!(reader.join().expect("reader"), b"{\"id\":1}\n");
    }
}
