//! IDX parsing, raw or gzip-compressed, with SHA-256 of the raw content.
//!
//! The format (LeCun's MNIST page): a big-endian u32 magic number (0x803 for
//! images, 0x801 for labels), a big-endian u32 count, for images two more u32s
//! (rows, cols), then one unsigned byte per pixel or label. Gzip is recognised
//! by its first two bytes (1f 8b), never by the file name.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::dataset::{CLASSES, COLS, FileKind, ROWS};
use crate::error::Error;

/// Parsed content of one IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Images or labels.
    pub kind: FileKind,
    /// Number of items in the header (and in the data).
    pub count: usize,
    /// Rows per image (1 for labels).
    pub rows: usize,
    /// Columns per image (1 for labels).
    pub cols: usize,
    /// `count × rows × cols` bytes, the header removed.
    pub data: Vec<u8>,
}

/// Parses an image file (raw or gzip) held in memory.
///
/// `path` is used in error messages only. The images must be 28×28. The
/// header's item count is checked against the length of `bytes` before any
/// buffer for the data is allocated.
///
/// ```
/// # use std::path::Path;
/// let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28];
/// bytes.extend([7u8; 784]);
/// let idx = mnist_data::parse_idx_images(Path::new("x"), &bytes)?;
/// assert_eq!((idx.count, idx.rows, idx.cols), (1, 28, 28));
/// # Ok::<(), mnist_data::Error>(())
/// ```
pub fn parse_idx_images(path: &Path, bytes: &[u8]) -> Result<Idx, Error> {
    parse_bytes(path, bytes, FileKind::Images).map(|(idx, _)| idx)
}

/// Parses a label file (raw or gzip) held in memory; every label must be 0..=9.
///
/// `path` is used in error messages only.
pub fn parse_idx_labels(path: &Path, bytes: &[u8]) -> Result<Idx, Error> {
    parse_bytes(path, bytes, FileKind::Labels).map(|(idx, _)| idx)
}

/// Reads and parses an IDX file (raw or gzip), returning it and the SHA-256
/// (lowercase hex) of its raw content, both from a single streaming pass.
///
/// Only a regular file (symlinks followed) is opened: a named pipe or a
/// directory is an [`Error::NotAFile`], and opening a pipe would block.
pub fn read_idx_file(path: &Path, kind: FileKind) -> Result<(Idx, String), Error> {
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(Error::NotAFile {
            path: path.to_owned(),
            what: describe_file_type(&meta.file_type()),
        });
    }
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read", e))?
        .len();
    let (reader, gz) = sniff(path, BufReader::with_capacity(1 << 16, file))?;
    parse_stream(path, reader, kind, (!gz).then_some(len))
}

pub(crate) fn parse_bytes(
    path: &Path,
    bytes: &[u8],
    kind: FileKind,
) -> Result<(Idx, String), Error> {
    let (reader, gz) = sniff(path, bytes)?;
    parse_stream(path, reader, kind, (!gz).then_some(bytes.len() as u64))
}

/// A reader of raw IDX bytes: the input itself, or its gzip decoding. Errors
/// from the decoder are told apart from those of the underlying input so they
/// can be reported as corrupt gzip rather than as an I/O failure.
pub(crate) struct RawReader<'a> {
    inner: Box<dyn Read + 'a>,
    path: PathBuf,
    gz: bool,
    source_failed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl RawReader<'_> {
    /// Turns an error from `read` into the crate's error for this file.
    pub(crate) fn error(&self, e: io::Error) -> Error {
        if self.gz && !self.source_failed.get() {
            Error::Gzip {
                path: self.path.clone(),
                error: e,
            }
        } else {
            Error::io(&self.path, "cannot read", e)
        }
    }
}

impl Read for RawReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Remembers whether the wrapped reader itself failed.
struct FlagErrors<R> {
    inner: R,
    failed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for FlagErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed.set(true))
    }
}

/// Looks at the first two bytes and wraps `input` in a gzip decoder if they
/// are the gzip magic 1f 8b. Returns the raw reader and whether it is gzip.
pub(crate) fn sniff<'a, R: Read + 'a>(
    path: &Path,
    mut input: R,
) -> Result<(RawReader<'a>, bool), Error> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, "cannot read", e)),
        }
    }
    let gz = head[..got] == [0x1f, 0x8b];
    let failed = std::rc::Rc::new(std::cell::Cell::new(false));
    let rejoined = FlagErrors {
        inner: Cursor::new(head).take(got as u64).chain(input),
        failed: failed.clone(),
    };
    let inner: Box<dyn Read + 'a> = if gz {
        Box::new(GzDecoder::new(rejoined))
    } else {
        Box::new(rejoined)
    };
    Ok((
        RawReader {
            inner,
            path: path.to_owned(),
            gz,
            source_failed: failed,
        },
        gz,
    ))
}

/// What an entry that is not a regular file is, for [`Error::NotAFile`].
pub(crate) fn describe_file_type(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        return "is a directory, not a file";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "not a regular file (a named pipe)";
        }
        if t.is_socket() {
            return "not a regular file (a socket)";
        }
        if t.is_block_device() || t.is_char_device() {
            return "not a regular file (a device)";
        }
    }
    "not a regular file"
}

/// Hashes everything read through it.
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Sha256,
    pub(crate) bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub(crate) fn hex_digest(self) -> String {
        hex(&self.hasher.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Lowercase hex of a digest. (sha2 0.11's output no longer implements
/// `LowerHex`, see shared/ECOSYSTEM.md.)
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Reads as many bytes as possible into `buf`; returns how many (less than
/// `buf.len()` only at end of input).
fn read_full(r: &mut HashingReader<RawReader<'_>>, buf: &mut [u8]) -> Result<usize, Error> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(r.inner.error(e)),
        }
    }
    Ok(got)
}

/// Reads at most `limit` bytes, growing the buffer only as data arrives, so
/// that a header claiming billions of items costs nothing until they exist.
fn read_up_to(
    r: &mut HashingReader<RawReader<'_>>,
    limit: u64,
    size_hint: Option<u64>,
) -> Result<Vec<u8>, Error> {
    // Cap the first allocation: 64 MiB covers the largest real file (47 MB).
    let cap = limit.min(size_hint.unwrap_or(limit)).min(64 << 20) as usize;
    let mut data = Vec::with_capacity(cap);
    let res = r.by_ref().take(limit).read_to_end(&mut data);
    res.map_err(|e| r.inner.error(e))?;
    Ok(data)
}

/// How many bytes after the data are read to count them.
const TRAILING_PROBE: u64 = 1 << 16;

/// The core parser. `raw_len` is the length of the raw content when known
/// (an uncompressed file or slice): then the header is checked against it
/// before anything is allocated.
fn parse_stream(
    path: &Path,
    reader: RawReader<'_>,
    kind: FileKind,
    raw_len: Option<u64>,
) -> Result<(Idx, String), Error> {
    let mut r = HashingReader::new(reader);
    let header_len = kind.header_len();
    let mut header = [0u8; 16];
    let header = &mut header[..header_len as usize];
    let got = read_full(&mut r, header)?;
    let be =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if got >= 4 && be(0) != kind.magic() {
        return Err(Error::BadMagic {
            path: path.to_owned(),
            what: kind.noun(),
            expected: kind.magic(),
            got: be(0),
        });
    }
    if (got as u64) < header_len {
        return Err(Error::Truncated {
            path: path.to_owned(),
            part: "header".into(),
            expected_bytes: header_len,
            got_bytes: got as u64,
        });
    }
    let count = be(4);
    let (rows, cols) = match kind {
        FileKind::Images => (be(8), be(12)),
        FileKind::Labels => (1, 1),
    };
    if kind == FileKind::Images && (rows as usize, cols as usize) != (ROWS, COLS) {
        return Err(Error::WrongImageSize {
            path: path.to_owned(),
            rows,
            cols,
            expected_rows: ROWS as u32,
            expected_cols: COLS as u32,
        });
    }
    // At most 2^32 × 784 bytes: no overflow in u64.
    let data_len = u64::from(count) * u64::from(rows) * u64::from(cols);
    let expected_bytes = header_len + data_len;
    let truncated = |got_bytes: u64| Error::Truncated {
        path: path.to_owned(),
        part: format!("data ({count} {})", kind.noun()),
        expected_bytes,
        got_bytes,
    };
    match raw_len {
        Some(len) if len < expected_bytes => return Err(truncated(len)),
        Some(len) if len > expected_bytes => {
            return Err(Error::TrailingData {
                path: path.to_owned(),
                expected_bytes,
                extra: Some(len - expected_bytes),
            });
        }
        _ => {}
    }
    if data_len > usize::MAX as u64 {
        return Err(truncated(raw_len.unwrap_or(0)));
    }
    let data = read_up_to(&mut r, data_len, raw_len.map(|l| l - header_len))?;
    if (data.len() as u64) < data_len {
        return Err(truncated(header_len + data.len() as u64));
    }
    // Anything after the data? (Only a stream of unknown length gets here
    // with some: a raw file's excess was caught from its length above.) A
    // short excess is counted; a gzip stream may inflate to gigabytes, so past
    // a bound the error only says that there is more.
    let extra = io::copy(&mut r.by_ref().take(TRAILING_PROBE + 1), &mut io::sink())
        .map_err(|e| r.inner.error(e))?;
    if extra > 0 {
        return Err(Error::TrailingData {
            path: path.to_owned(),
            expected_bytes,
            extra: (extra <= TRAILING_PROBE).then_some(extra),
        });
    }
    let bad_label = match kind {
        FileKind::Labels => data
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= CLASSES),
        FileKind::Images => None,
    };
    if let Some((index, &label)) = bad_label {
        return Err(Error::BadLabel {
            path: path.to_owned(),
            index,
            label,
        });
    }
    let idx = Idx {
        kind,
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        data,
    };
    Ok((idx, r.hex_digest()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: u32, fill: u8) -> Vec<u8> {
        let mut v = [0x801u32.to_be_bytes(), n.to_be_bytes()].concat();
        v.extend(std::iter::repeat_n(fill, n as usize));
        v
    }

    #[test]
    fn labels_parse_and_hash_the_raw_bytes() {
        let bytes = labels(3, 4);
        let (idx, sha) = parse_bytes(Path::new("l"), &bytes, FileKind::Labels).unwrap();
        assert_eq!(idx.data, [4, 4, 4]);
        assert_eq!(sha, hex(&Sha256::digest(&bytes)));
    }

    #[test]
    fn gzip_is_recognised_by_content_and_hashed_after_decompression() {
        use std::io::Write;
        let bytes = labels(2, 9);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let gz = gz.finish().unwrap();
        let (idx, sha) = parse_bytes(Path::new("l.idx"), &gz, FileKind::Labels).unwrap();
        assert_eq!(idx.data, [9, 9]);
        assert_eq!(sha, hex(&Sha256::digest(&bytes)));
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");
    }
}
