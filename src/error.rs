//! The library's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in chorus, with the place it went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A data file (seeds, world) has a bad line: names the file, line and field.
    #[error("{file}:{line}: {field}: {message}")]
    Data {
        /// File name as given to the loader.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The field at fault (dotted path), or `-` for the whole line.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A snapshot file is truncated, corrupted or of an unknown version.
    #[error("snapshot {path}: {message}")]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A database export failed (connection refused, authentication, a query the server
    /// rejected): names the server and what was being done.
    #[error("{target}: {message}")]
    Database {
        /// The server (URI) and database.
        target: String,
        /// What failed, with the server's message.
        message: String,
    },
    /// An I/O error, with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Builds a [`Error::Data`].
    pub fn data(file: &str, line: usize, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Data { file: file.to_string(), line, field: field.into(), message: message.into() }
    }

    /// Builds an [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `s` cut to at most `n` characters, with `…` when cut (values quoted back in errors stay
/// short).
pub fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
