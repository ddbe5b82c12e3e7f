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

/// Writes `bytes` to `path` atomically: to a temporary file in the same
/// directory, then renamed over `path`. A reader never sees a half-written
/// file, and an interrupted write leaves the old file as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(Path::new).unwrap_or(path);
    write_set_atomically(dir, &[(name.to_str().unwrap_or_default(), bytes)]).map_err(|e| match e {
        CheckpointError::Io { error, .. } => CheckpointError::Io {
            path: path.to_owned(),
            error,
        },
        other => other,
    })
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
            "is a directory; give a file name",
        ));
    }
    if path.exists() && !path.is_file() {
        return Err(err(
            std::io::ErrorKind::InvalidInput,
            "exists and is not a regular file",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
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
/// first, and only when all are complete and synced are they renamed into
/// place, in order. A failure before that leaves every existing file as it was.
pub fn write_set_atomically(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), CheckpointError> {
    let mut staged = Vec::with_capacity(files.len());
    for &(name, bytes) in files {
        let path = dir.join(name);
        let io = |error| CheckpointError::Io {
            path: path.clone(),
            error,
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
        staged.push((tmp, path));
    }
    for (tmp, path) in staged {
        tmp.persist(&path).map_err(|e| CheckpointError::Io {
            path,
            error: e.error,
        })?;
    }
    Ok(())
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
        Ok(path)
    } else {
        Err(CheckpointError::Io {
            error: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a file (give a run directory holding model.safetensors, or the file)",
            ),
            path,
        })
    }
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
        let values = view
            .data()
            .chunks_exact(std::mem::size_of::<A>())
            .map(A::get)
            .collect();
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
    }
}
