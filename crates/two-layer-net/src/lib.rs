//! The two-layer network of DLFS §5.7 and its mini-batch SGD training.
//!
//! - [`TwoLayerNet`]: Affine → Relu → Affine → SoftmaxWithLoss, built from the
//!   layers of `core-layers`, with backprop [`gradient`](TwoLayerNet::gradient)
//!   and a rayon-parallel [`numerical_gradient`](TwoLayerNet::numerical_gradient)
//!   through `numerical-grad`.
//! - [`train()`]: the loop of DLFS §5.7.4 over byte images ([`ImageSet`]).
//! - [`gradcheck`]: the gradient check of DLFS §5.7.3, with ReLU kinks
//!   detected and reported apart.
//! - [`checkpoint`]: parameters as safetensors (`W1`, `b1`, `W2`, `b2`).
//!
//! The binaries `train`, `gradcheck`, `eval` and `predict` (run through
//! `cargo xtask`) load real MNIST through `mnist-data`; [`saved`] and
//! [`user_image`] hold what they share.

pub mod checkpoint;
pub mod gradcheck;
mod net;
pub mod saved;
mod train;
pub mod user_image;

pub use net::{PARAM_NAMES, Params, TwoLayerNet, WEIGHT_INIT_STD};
pub use train::{
    Diverged, EpochRecord, Event, Examples, History, ImageSet, SparseImages, TrainConfig, accuracy,
    count_correct, train,
};
