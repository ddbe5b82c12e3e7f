//! Saving and loading the parameters as safetensors, and atomic file writes.
//!
//! A model file holds `W1`, `b1`, `W2`, `b2` under those names, in the book's
//! `[in, out]` layout (`W1` is `[784, 50]`), as `F32` or `F64` little-endian
//! row-major data, plus a string-to-string metadata map. PyTorch's
//! `nn.Linear.weight` is the transpose, `[out, in]`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, NdFloat};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::Params;

/// Why a model file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    // Causes are part of the messages and deliberately not `source()`s, so
    // that `{:#}` chains (anyhow) do not print them twice.
    /// The file system refused.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file is not a valid safetensors file (e.g. truncated or foreign).
    #[error("{}: not a valid safetensors model file: {error}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the safetensors parser said.
        error: safetensors::SafeTensorError,
    },
    /// A parameter is missing.
    #[error("{}: no tensor named {name} (a model holds W1, b1, W2, b2)", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The missing name.
        name: &'static str,
    },
    /// A parameter has the wrong element type.
    #[error("{}: tensor {name} is {got:?}, expected {expected:?}", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: &'static str,
        /// What this program reads.
        expected: Dtype,
        /// What the file holds.
        got: Dtype,
    },
    /// The parameters' shapes do not form a two-layer net.
    #[error("{}: tensor {name} has shape {got:?}, expected {expected}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: &'static str,
        /// What was expected, in words.
        expected: String,
        /// What the file holds.
        got: Vec<usize>,
    },
    /// A parameter holds NaN or an infinity (a damaged file: `train` saves
    /// no model from a run that diverged).
    #[error("{}: tensor {name} holds {value} at flat index {index}; a trained model holds finite numbers only", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: &'static str,
        /// Where, in row-major order.
        index: usize,
        /// The value, e.g. `NaN`.
        value: String,
    },
}

/// An element type that can be stored in a model file.
pub trait Element: NdFloat {
    /// Its safetensors dtype.
    const DTYPE: Dtype;
    /// Appends its little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
    /// Reads one from little-endian bytes.
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }
}

/// The directory `path` is in: its parent, or `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same
/// directory, then renamed over `path`. A reader never sees a half-written
/// file, and an interrupted write leaves the old file as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let dir = parent_dir(path);
    let Some(name) = path.file_name() else {
        return Err(CheckpointError::Io {
            path: path.to_owned(),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "does not end in a file name",
            ),
        });
    };
    write_set_atomically(dir, &[(name, bytes)])
}

/// Checks, before any work, that [`write_atomically`] can write `path`: its
/// directory exists and takes a new file, and `path` is not a directory.
///
/// # Errors
///
/// [`CheckpointError::Io`] naming `path` and what is wrong.
pub fn check_writable(path: &Path) -> Result<(), CheckpointError> {
    let err = |kind, msg: &str| CheckpointError::Io {
        path: path.to_owned(),
        error: std::io::Error::new(kind, msg.to_owned()),
    };
    if path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/') {
        return Err(err(
            std::io::ErrorKind::IsADirectory,
            "is a directory, not a file",
        ));
    }
    if path.exists() && !path.is_file() {
        return Err(err(
            std::io::ErrorKind::InvalidInput,
            "exists and is not a regular file",
        ));
    }
    let dir = parent_dir(path);
    if dir.exists() && !dir.is_dir() {
        return Err(err(
            std::io::ErrorKind::NotADirectory,
            &format!("{} is not a directory", dir.display()),
        ));
    }
    if !dir.is_dir() {
        return Err(err(
            std::io::ErrorKind::NotFound,
            &format!("the directory {} does not exist", dir.display()),
        ));
    }
    tempfile::Builder::new()
        .prefix(".dlfs-tmp-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            err(
                e.kind(),
                &format!("cannot write to the directory {}: {e}", dir.display()),
            )
        })
}

/// Writes several files into `dir` as a set: each goes to a temporary file
/// first; only when all are complete and synced are they renamed into place,
/// in order. The files they replace are kept (hard links, or copies where
/// the file system has none) until every rename has succeeded, so when one
/// fails (a target made immutable or replaced by a directory meanwhile) the
/// ones already renamed are put back: the directory holds the old set or the
/// new one, never a mix.
pub fn write_set_atomically<N: AsRef<Path>>(
    dir: &Path,
    files: &[(N, &[u8])],
) -> Result<(), CheckpointError> {
    let mut staged = Vec::with_capacity(files.len());
    let several = files.len() > 1;
    for (name, bytes) in files {
        let path = dir.join(name);
        let io = |error: std::io::Error| CheckpointError::Io {
            path: path.clone(),
            error: if several {
                std::io::Error::new(
                    error.kind(),
                    format!("{error}; no file of the set was replaced"),
                )
            } else {
                error
            },
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".dlfs-tmp-")
            .tempfile_in(dir)
            .map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        // tempfile creates files readable by their owner only; outputs are
        // ordinary files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(io)?;
        }
        let backup = keep_old(dir, &path).map_err(io)?;
        staged.push((tmp, path, backup));
    }
    let mut done: Vec<(PathBuf, Option<tempfile::NamedTempFile<()>>)> = Vec::new();
    for (tmp, path, backup) in staged {
        if let Err(e) = tmp.persist(&path) {
            let undone = undo(done);
            let note = match undone {
                Ok(0) => String::new(),
                Ok(n) => format!("; the {n} file(s) already replaced were put back"),
                Err(e) => format!(
                    "; putting back the files already replaced failed too, so {} holds a mix of old and new files: {e}",
                    dir.display()
                ),
            };
            return Err(CheckpointError::Io {
                path,
                error: std::io::Error::new(e.error.kind(), format!("{}{note}", e.error)),
            });
        }
        done.push((path, backup));
    }
    // The backups are removed as they drop.
    Ok(())
}

/// A hard link to (or a copy of) the file at `path`, under a temporary name
/// in `dir` that is removed when dropped; `None` when there is no file.
fn keep_old(dir: &Path, path: &Path) -> std::io::Result<Option<tempfile::NamedTempFile<()>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(m) if m.is_dir() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        Ok(_) => {}
    }
    let link = tempfile::Builder::new()
        .prefix(".dlfs-old-")
        .make_in(dir, |p| std::fs::hard_link(path, p));
    match link {
        Ok(kept) => Ok(Some(kept)),
        // No hard link (FAT and some network file systems, or
        // protected_hardlinks): a copy, whose own error is the one to report.
        Err(_) => tempfile::Builder::new()
            .prefix(".dlfs-old-")
            .make_in(dir, |p| std::fs::copy(path, p).map(drop))
            .map(Some),
    }
}

/// Puts back what `done` replaced, last first: the kept old file where there
/// was one, nothing where there was none. Returns how many were put back.
/// When putting one back fails, the old files not yet put back are kept
/// under their temporary names, which the error lists.
fn undo(done: Vec<(PathBuf, Option<tempfile::NamedTempFile<()>>)>) -> std::io::Result<usize> {
    let n = done.len();
    let mut rest = done.into_iter().rev();
    while let Some((path, backup)) = rest.next() {
        let failed = match backup {
            Some(old) => old.persist(&path).err().map(|e| {
                let kept = e.file.into_temp_path().keep().ok();
                (e.error, kept)
            }),
            None => std::fs::remove_file(&path).err().map(|e| (e, None)),
        };
        if let Some((error, kept)) = failed {
            let kept: Vec<String> = kept
                .into_iter()
                .chain(rest.filter_map(|(_, b)| b?.into_temp_path().keep().ok()))
                .map(|p| p.display().to_string())
                .collect();
            let left = if kept.is_empty() {
                "no old file is left to put back".to_owned()
            } else {
                format!("the old files are kept as {}", kept.join(", "))
            };
            return Err(std::io::Error::new(
                error.kind(),
                format!("{}: {error}; {left}", path.display()),
            ));
        }
    }
    Ok(n)
}

/// Serialises the parameters and `metadata` as safetensors bytes.
pub fn to_bytes<A: Element>(params: &Params<A>, metadata: &HashMap<String, String>) -> Vec<u8> {
    let named = params.named();
    let buffers: Vec<(&str, Vec<usize>, Vec<u8>)> = named
        .iter()
        .map(|(name, shape, values)| {
            let mut bytes = Vec::with_capacity(values.len() * std::mem::size_of::<A>());
            for &v in values {
                v.put(&mut bytes);
            }
            (*name, shape.clone(), bytes)
        })
        .collect();
    let views = buffers.iter().map(|(name, shape, bytes)| {
        let view = TensorView::new(A::DTYPE, shape.clone(), bytes).expect("bytes match the shape");
        (*name, view)
    });
    let metadata = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    safetensors::serialize(views, metadata).expect("four well-formed tensors serialise")
}

/// Saves the parameters to `path` (atomically), with `metadata`.
pub fn save<A: Element>(
    path: &Path,
    params: &Params<A>,
    metadata: &HashMap<String, String>,
) -> Result<(), CheckpointError> {
    write_atomically(path, &to_bytes(params, metadata))
}

/// Loads parameters saved by [`save`], checking names, dtypes and shapes.
///
/// Returns the parameters and the metadata map (empty if the file has none).
pub fn load<A: Element>(
    path: &Path,
) -> Result<(Params<A>, HashMap<String, String>), CheckpointError> {
    let bytes = std::fs::read(path).map_err(|error| CheckpointError::Io {
        path: path.to_owned(),
        error,
    })?;
    from_bytes(path, &bytes)
}

/// Parameters in the precision the model file holds them in.
#[derive(Clone, Debug)]
pub enum AnyParams {
    /// A model trained in f32.
    F32(Params<f32>),
    /// A model trained in f64.
    F64(Params<f64>),
}

impl AnyParams {
    /// `W1`'s shape, `[input, hidden]`.
    pub fn w1_shape(&self) -> [usize; 2] {
        let dim = match self {
            AnyParams::F32(p) => p.w1.dim(),
            AnyParams::F64(p) => p.w1.dim(),
        };
        [dim.0, dim.1]
    }
}

/// [`load`] in whichever precision the file holds (f32 or f64).
pub fn load_any(path: &Path) -> Result<(AnyParams, HashMap<String, String>), CheckpointError> {
    match load::<f32>(path) {
        Ok((p, meta)) => Ok((AnyParams::F32(p), meta)),
        Err(CheckpointError::Dtype {
            got: Dtype::F64, ..
        }) => load::<f64>(path).map(|(p, meta)| (AnyParams::F64(p), meta)),
        Err(e) => Err(e),
    }
}

/// The model file a user means by `model`: `model/model.safetensors` for a
/// run directory (what `train --out` wrote), `model` itself otherwise.
///
/// # Errors
///
/// [`CheckpointError::Io`] (not found) when that file does not exist.
pub fn model_file(model: &Path) -> Result<PathBuf, CheckpointError> {
    let path = if model.is_dir() {
        model.join("model.safetensors")
    } else {
        model.to_owned()
    };
    if path.is_file() {
        return Ok(path);
    }
    let what = if path.exists() {
        "not a file"
    } else {
        "does not exist"
    };
    Err(CheckpointError::Io {
        error: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{what} (give a run directory holding model.safetensors, or the file)"),
        ),
        path,
    })
}

/// Parses the bytes of a model file; `path` is only used in error messages.
pub fn from_bytes<A: Element>(
    path: &Path,
    bytes: &[u8],
) -> Result<(Params<A>, HashMap<String, String>), CheckpointError> {
    let format = |error| CheckpointError::Format {
        path: path.to_owned(),
        error,
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(format)?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(format)?;
    let metadata = meta.metadata().clone().unwrap_or_default();

    let get = |name: &'static str, rank: usize| -> Result<(Vec<usize>, Vec<A>), CheckpointError> {
        let view = tensors.tensor(name).map_err(|_| CheckpointError::Missing {
            path: path.to_owned(),
            name,
        })?;
        if view.dtype() != A::DTYPE {
            return Err(CheckpointError::Dtype {
                path: path.to_owned(),
                name,
                expected: A::DTYPE,
                got: view.dtype(),
            });
        }
        if view.shape().len() != rank || view.shape().contains(&0) {
            return Err(CheckpointError::Shape {
                path: path.to_owned(),
                name,
                expected: format!("{rank} non-empty axes"),
                got: view.shape().to_vec(),
            });
        }
        let values: Vec<A> = view
            .data()
            .chunks_exact(std::mem::size_of::<A>())
            .map(A::get)
            .collect();
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(CheckpointError::NonFinite {
                path: path.to_owned(),
                name,
                index,
                value: format!("{:?}", values[index]),
            });
        }
        Ok((view.shape().to_vec(), values))
    };
    let (s_w1, w1) = get("W1", 2)?;
    let (s_b1, b1) = get("b1", 1)?;
    let (s_w2, w2) = get("W2", 2)?;
    let (s_b2, b2) = get("b2", 1)?;
    let shape_err = |name, expected: String, got: &[usize]| CheckpointError::Shape {
        path: path.to_owned(),
        name,
        expected,
        got: got.to_vec(),
    };
    let hidden = s_w1[1];
    if s_b1 != [hidden] {
        return Err(shape_err(
            "b1",
            format!("[{hidden}] (one entry per column of W1 {s_w1:?})"),
            &s_b1,
        ));
    }
    if s_w2[0] != hidden {
        return Err(shape_err(
            "W2",
            format!("[{hidden}, _] (one row per column of W1 {s_w1:?})"),
            &s_w2,
        ));
    }
    if s_b2 != [s_w2[1]] {
        return Err(shape_err(
            "b2",
            format!("[{}] (one entry per column of W2 {s_w2:?})", s_w2[1]),
            &s_b2,
        ));
    }
    let params = Params {
        w1: Array2::from_shape_vec((s_w1[0], s_w1[1]), w1).expect("length checked by safetensors"),
        b1: Array1::from(b1),
        w2: Array2::from_shape_vec((s_w2[0], s_w2[1]), w2).expect("length checked by safetensors"),
        b2: Array1::from(b2),
    };
    Ok((params, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TwoLayerNet;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("model.safetensors")), Path::new("."));
        assert_eq!(
            parent_dir(Path::new("runs/mnist/model.safetensors")),
            Path::new("runs/mnist")
        );
        assert_eq!(parent_dir(Path::new("/model.safetensors")), Path::new("/"));
        assert_eq!(parent_dir(Path::new("/")), Path::new("."));
    }

    #[test]
    fn round_trip_keeps_every_bit_and_the_metadata() {
        let net = TwoLayerNet::<f32>::new(6, 4, 3, 0.01, &mut StdRng::seed_from_u64(5));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let meta = HashMap::from([("dataset".to_owned(), "mnist".to_owned())]);
        save(&path, &net.params(), &meta).unwrap();
        let (p, m) = load::<f32>(&path).unwrap();
        assert_eq!(p, net.params());
        assert_eq!(m, meta);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
    }

    #[test]
    fn wrong_dtype_truncation_and_shapes_are_named() {
        let net = TwoLayerNet::<f64>::new(6, 4, 3, 0.01, &mut StdRng::seed_from_u64(5));
        let bytes = to_bytes(&net.params(), &HashMap::new());
        let p = Path::new("m.safetensors");
        let err = from_bytes::<f32>(p, &bytes).unwrap_err().to_string();
        assert!(
            err.contains("m.safetensors") && err.contains("W1") && err.contains("F64"),
            "{err}"
        );
        let err = from_bytes::<f64>(p, &bytes[..bytes.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid safetensors"), "{err}");
        let mut bad = net.params();
        bad.b1 = Array1::zeros(5);
        // Serialise the inconsistent set directly.
        let bytes = to_bytes(&bad, &HashMap::new());
        let err = from_bytes::<f64>(p, &bytes).unwrap_err().to_string();
        assert!(err.contains("b1") && err.contains("[5]"), "{err}");
        let mut bad = net.params();
        bad.w2[[1, 2]] = f64::NAN;
        let bytes = to_bytes(&bad, &HashMap::new());
        let err = from_bytes::<f64>(p, &bytes).unwrap_err().to_string();
        assert!(err.contains("tensor W2 holds NaN at flat index 5"), "{err}");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_set_replaces_old_files_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), "old a").unwrap();
        write_set_atomically(d, &[("a", &b"new a"[..]), ("b", b"new b")]).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(d.join("b")).unwrap(), "new b");
        assert_eq!(names(d), ["a", "b"], "no temporary or kept file is left");
        // A file name that is not UTF-8.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = d.join(std::ffi::OsStr::from_bytes(b"\xff.png"));
            write_atomically(&odd, b"png").unwrap();
            assert_eq!(std::fs::read(&odd).unwrap(), b"png");
        }
    }

    #[test]
    fn a_target_that_is_a_directory_stops_the_set_before_any_rename() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), "old a").unwrap();
        std::fs::create_dir(d.join("c")).unwrap();
        let err = write_set_atomically(d, &[("a", &b"new a"[..]), ("b", b"new b"), ("c", b"c")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "old a");
        assert_eq!(names(d), ["a", "c"]);
    }

    /// What a failed rename in the middle of a set triggers: the files
    /// already renamed get their old contents back, or go when they are new.
    #[test]
    fn undo_puts_back_the_old_files_and_removes_the_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), "old a").unwrap();
        let kept_a = keep_old(d, &d.join("a")).unwrap();
        assert!(kept_a.is_some());
        assert!(keep_old(d, &d.join("b")).unwrap().is_none());
        std::fs::write(d.join("a.new"), "new a").unwrap();
        std::fs::rename(d.join("a.new"), d.join("a")).unwrap();
        std::fs::write(d.join("b"), "new b").unwrap();
        let n = undo(vec![(d.join("a"), kept_a), (d.join("b"), None)]).unwrap();
        assert_eq!(n, 2);
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "old a");
        assert_eq!(names(d), ["a"]);
    }
}
