//! The layers of DLFS chapter 5 and the functions under them.
//!
//! Each piece of math is a free function with the book's name
//! ([`functions::sigmoid`], [`functions::relu`], [`functions::softmax`],
//! [`functions::cross_entropy_error`], [`functions::affine`]); each layer is a
//! struct that calls its function in `forward`, caches what its `backward`
//! needs, and implements the two-method [`Layer`] trait:
//!
//! | layer | forward | backward |
//! |---|---|---|
//! | [`Relu`] | `max(0, x)` | `dout` where `x > 0`, else 0 |
//! | [`Sigmoid`] | `y = 1 / (1 + e⁻ˣ)` | `dout · (1 − y) · y` |
//! | [`Affine`] | `x·W + b` | `dout·Wᵀ`, `dW = xᵀ·dout`, `db = Σₙ dout` |
//! | [`SoftmaxWithLoss`] | mean cross-entropy of `softmax(x)` | `(y − t) / N` |
//!
//! plus the scalar [`MulLayer`] and [`AddLayer`] of DLFS §5.4.
//!
//! Everything is generic over the element type `A` ([`ndarray::NdFloat`]:
//! `f32` and `f64`). Training runs in `f32`; gradient checks run in `f64`.
//! Matrix products go through BLAS (`cblas_sgemm`/`cblas_dgemm` of the
//! system OpenBLAS) with the default `blas` feature, and through ndarray's
//! pure-Rust `matrixmultiply` without it. This crate is the only one in the
//! workspace that multiplies matrices, so that the BLAS link lives in one place.
//!
//! Shape errors are programmer errors here: they panic with a message naming
//! both shapes (see each function's `# Panics` section). Input from the
//! outside world is validated before it reaches this crate.
//!
//! Sibling crates: `numerical-grad` (the central-difference reference these
//! layers are tested against), `two-layer-net` (the network and its training),
//! `mnist-data` (the data).

#[cfg(feature = "blas")]
extern crate blas_src;

pub mod blas;
pub mod functions;
mod layers;
mod simple;
mod softmax_with_loss;
pub mod sparse;

pub use layers::{Affine, AffineGrads, Relu, Sigmoid};
pub use simple::{AddLayer, MulLayer};
pub use softmax_with_loss::{SoftmaxWithLoss, softmax_cross_entropy};
pub use sparse::SparseRows;

use ndarray::{Array2, ArrayView1, ArrayView2, NdFloat};

/// A batch of inputs, `[N, I]`: a dense array or [`SparseRows`].
///
/// Functions that take `impl Into<Input>` accept an `ArrayView2` as well.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a, A> {
    /// A dense batch. Layers may still take their sparse path when it has
    /// few nonzeros (see [`Affine`]).
    Dense(ArrayView2<'a, A>),
    /// A batch in sparse form.
    Sparse(&'a SparseRows<A>),
}

impl<A: NdFloat> Input<'_, A> {
    /// `N`, the number of examples.
    pub fn nrows(&self) -> usize {
        match self {
            Input::Dense(x) => x.nrows(),
            Input::Sparse(x) => x.nrows(),
        }
    }

    /// `I`, the number of features per example.
    pub fn ncols(&self) -> usize {
        match self {
            Input::Dense(x) => x.ncols(),
            Input::Sparse(x) => x.ncols(),
        }
    }
}

impl<'a, A> From<ArrayView2<'a, A>> for Input<'a, A> {
    fn from(x: ArrayView2<'a, A>) -> Self {
        Input::Dense(x)
    }
}

impl<'a, A> From<&'a SparseRows<A>> for Input<'a, A> {
    fn from(x: &'a SparseRows<A>) -> Self {
        Input::Sparse(x)
    }
}

/// A layer with a forward pass that caches and a backward pass that uses the cache.
///
/// `backward` takes `∂L/∂out` and returns `∂L/∂x`; layers with parameters
/// also keep the parameter gradients (see [`Affine::grads`]).
pub trait Layer<A> {
    /// Computes the output for `x` and caches what `backward` needs.
    fn forward(&mut self, x: ArrayView2<'_, A>) -> Array2<A>;
    /// Propagates `dout = ∂L/∂out` back to `∂L/∂x`.
    ///
    /// # Panics
    ///
    /// If called before [`forward`](Layer::forward), or if `dout` does not
    /// have the shape of the last output.
    fn backward(&mut self, dout: ArrayView2<'_, A>) -> Array2<A>;
}

/// Targets of a batch: one-hot rows or class indices (DLFS `t`).
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a, A> {
    /// One row per example, one column per class, each row summing to 1.
    OneHot(ArrayView2<'a, A>),
    /// One class index per example.
    Classes(ArrayView1<'a, usize>),
}

impl<A> Labels<'_, A> {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Labels::OneHot(t) => t.nrows(),
            Labels::Classes(t) => t.len(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Describes the shape for error messages, e.g. `one-hot [2, 10]`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Labels::OneHot(t) => format!("one-hot {:?}", t.shape()),
            Labels::Classes(t) => format!("class indices [{}]", t.len()),
        }
    }
}

/// Owned targets, as cached by [`SoftmaxWithLoss`].
#[derive(Clone, Debug)]
enum OwnedLabels<A> {
    OneHot(Array2<A>),
    Classes(Vec<usize>),
}

impl<A: Clone> From<Labels<'_, A>> for OwnedLabels<A> {
    fn from(t: Labels<'_, A>) -> Self {
        match t {
            Labels::OneHot(t) => OwnedLabels::OneHot(t.to_owned()),
            Labels::Classes(t) => OwnedLabels::Classes(t.to_vec()),
        }
    }
}
