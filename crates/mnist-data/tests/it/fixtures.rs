//! Small IDX fixtures and helpers shared by the tests.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// An IDX image file: `n` images of `rows × cols`, pixel value `(i + p) % 256`.
pub fn images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = [0x803u32, n, rows, cols]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect::<Vec<u8>>();
    let per = (rows * cols) as usize;
    v.extend((0..n as usize * per).map(|k| ((k / per + k % per) % 256) as u8));
    v
}

/// An IDX label file: `n` labels `i % 10`.
pub fn labels(n: u32) -> Vec<u8> {
    let mut v = [0x801u32, n]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect::<Vec<u8>>();
    v.extend((0..n).map(|i| (i % 10) as u8));
    v
}

/// Gzip-compresses `bytes`.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Lowercase hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names of the entries of `dir`, sorted (hidden temporary files included).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Makes a named pipe at `path` (with the `mkfifo` command: no libc needed).
#[cfg(unix)]
pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}
