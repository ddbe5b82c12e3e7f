//! The functions under the layers, with the book's names (DLFS `common/functions.py`).
//!
//! Element-wise functions and [`softmax`] take arrays of any dimension;
//! [`softmax`] and [`log_softmax`] work along the last axis, so a 1-D vector is
//! one example and a 2-D array is a batch of rows.

use ndarray::{
    Array, Array1, Array2, ArrayView, ArrayView1, ArrayView2, Axis, Dimension, NdFloat, RemoveAxis,
    linalg::general_mat_mul,
};

use crate::Labels;

/// The constant the book adds inside the log of [`cross_entropy_error`]: `1e-7`.
pub const CROSS_ENTROPY_DELTA: f64 = 1e-7;

/// `σ(x) = 1 / (1 + e⁻ˣ)`, element-wise (DLFS §3.2.4).
///
/// Computed as `1 / (1 + e⁻ˣ)` for `x ≥ 0` and `eˣ / (1 + eˣ)` for `x < 0`,
/// so no exponential overflows: `σ(−1000) = 0`, `σ(1000) = 1`, never NaN.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::functions::sigmoid;
/// let y = sigmoid(array![-1000.0_f32, 0.0, 1000.0].view());
/// assert_eq!(y, array![0.0, 0.5, 1.0]);
/// ```
pub fn sigmoid<A: NdFloat, D: Dimension>(x: ArrayView<'_, A, D>) -> Array<A, D> {
    x.mapv(sigmoid_scalar)
}

/// [`sigmoid`] of one number.
pub fn sigmoid_scalar<A: NdFloat>(x: A) -> A {
    if x >= A::zero() {
        A::one() / (A::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (A::one() + e)
    }
}

/// `max(0, x)`, element-wise (DLFS §3.2.7).
///
/// ```
/// # use ndarray::array;
/// # use core_layers::functions::relu;
/// assert_eq!(relu(array![[1.0, -0.5], [-2.0, 3.0]].view()), array![[1.0, 0.0], [0.0, 3.0]]);
/// ```
pub fn relu<A: NdFloat, D: Dimension>(x: ArrayView<'_, A, D>) -> Array<A, D> {
    x.mapv(|v| if v > A::zero() { v } else { A::zero() })
}

/// `softmax(x)ₖ = e^{xₖ} / Σⱼ e^{xⱼ}` along the last axis (DLFS §3.5).
///
/// The row maximum is subtracted first (DLFS §3.5.2), so large inputs do not
/// overflow: `softmax([1000, 1001, 1002]) = softmax([0, 1, 2])`.
///
/// # Shapes
///
/// - `x`: `[C]` for one example or `[N, C]` for a batch (any rank works; the
///   last axis holds the classes).
/// - output: the shape of `x`, each lane along the last axis summing to 1.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::functions::softmax;
/// let y = softmax(array![0.3_f64, 2.9, 4.0].view());
/// approx::assert_abs_diff_eq!(y, array![0.01821127, 0.24519181, 0.73659691], epsilon = 1e-8);
/// ```
pub fn softmax<A: NdFloat, D: Dimension + RemoveAxis>(x: ArrayView<'_, A, D>) -> Array<A, D> {
    let mut y = x.to_owned();
    if y.ndim() == 0 {
        return y.mapv_into(|_| A::one());
    }
    let last = Axis(y.ndim() - 1);
    for mut lane in y.lanes_mut(last) {
        let max = lane.fold(A::neg_infinity(), |m, &v| m.max(v));
        lane.mapv_inplace(|v| (v - max).exp());
        let sum = lane.sum();
        lane.mapv_inplace(|v| v / sum);
    }
    y
}

/// `log softmax(x)ₖ = xₖ − max − ln Σⱼ e^{xⱼ − max}` along the last axis.
///
/// The exact logarithm of [`softmax`], without ever taking the log of a
/// rounded probability: `log_softmax([0, 1000])[0] = −1000`, where
/// `ln(softmax(..))` would give `−∞`. [`SoftmaxWithLoss`](crate::SoftmaxWithLoss)
/// computes its loss from it.
pub fn log_softmax<A: NdFloat, D: Dimension + RemoveAxis>(x: ArrayView<'_, A, D>) -> Array<A, D> {
    let mut y = x.to_owned();
    if y.ndim() == 0 {
        return y.mapv_into(|_| A::zero());
    }
    let last = Axis(y.ndim() - 1);
    for mut lane in y.lanes_mut(last) {
        let max = lane.fold(A::neg_infinity(), |m, &v| m.max(v));
        let log_sum = lane.fold(A::zero(), |s, &v| s + (v - max).exp()).ln();
        lane.mapv_inplace(|v| v - max - log_sum);
    }
    y
}

/// The mean cross-entropy `−(1/N) Σₙ Σₖ tₙₖ ln(yₙₖ + 1e-7)` (DLFS §4.2.4).
///
/// `y` holds probabilities (a softmax output), one row per example. The
/// `1e-7` inside the log is the book's, so a probability of exactly 0 gives a
/// finite loss of `−ln(1e-7) ≈ 16.118`. With class indices `tₙ` the sum keeps
/// only `ln(yₙ,ₜₙ + 1e-7)`.
///
/// # Shapes
///
/// - `y`: `[N, C]`.
/// - `t`: one-hot `[N, C]` or class indices `[N]` with values below `C`.
///
/// # Panics
///
/// If `t` does not match `y` (the message names both shapes), or a class
/// index is not below `C`.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::{Labels, functions::cross_entropy_error};
/// // DLFS §4.2.2: the "2" is right with probability 0.6.
/// let y = array![[0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]];
/// let loss = cross_entropy_error(y.view(), Labels::Classes(array![2].view()));
/// approx::assert_abs_diff_eq!(loss, 0.510825457099338, epsilon = 1e-12);
/// ```
#[track_caller]
pub fn cross_entropy_error<A: NdFloat>(y: ArrayView2<'_, A>, t: Labels<'_, A>) -> A {
    check_targets("cross_entropy_error", y.dim(), &t);
    let delta = A::from(CROSS_ENTROPY_DELTA).expect("1e-7 is representable");
    let n = A::from(y.nrows()).expect("batch size is representable");
    let total = match t {
        Labels::OneHot(t) => y
            .iter()
            .zip(t.iter())
            .fold(A::zero(), |s, (&y, &t)| s + t * (y + delta).ln()),
        Labels::Classes(t) => y
            .outer_iter()
            .zip(t.iter())
            .fold(A::zero(), |s, (row, &k)| s + (row[k] + delta).ln()),
    };
    -total / n
}

/// `x·W + b`: the affine transform of DLFS §5.6.1, with the product through BLAS.
///
/// # Shapes
///
/// - `x`: `[N, I]`, `w`: `[I, O]` (the book's `[in, out]` layout; PyTorch and
///   candle store `[out, in]`), `b`: `[O]`.
/// - output: `[N, O]`.
///
/// # Panics
///
/// If `x` has a different number of columns than `w` has rows, or `b` does
/// not have one entry per column of `w`; the message names the shapes.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::functions::affine;
/// let x = array![[1.0, 2.0]];
/// let w = array![[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]];
/// let b = array![0.0, 1.0, 2.0];
/// assert_eq!(affine(x.view(), w.view(), b.view()), array![[2.0, 5.0, 1.0]]);
/// ```
#[track_caller]
pub fn affine<A: NdFloat>(
    x: ArrayView2<'_, A>,
    w: ArrayView2<'_, A>,
    b: ArrayView1<'_, A>,
) -> Array2<A> {
    assert!(
        x.ncols() == w.nrows(),
        "affine: x has shape {:?} but W has shape {:?}: x needs {} columns, one per row of W",
        x.shape(),
        w.shape(),
        w.nrows()
    );
    assert!(
        b.len() == w.ncols(),
        "affine: b has shape {:?} but W has shape {:?}: b needs {} entries, one per column of W",
        b.shape(),
        w.shape(),
        w.ncols()
    );
    // Start from b broadcast over the rows, then add x·W in place: one gemm
    // with beta = 1, no temporary for the product.
    let mut out = Array2::from_shape_fn((x.nrows(), w.ncols()), |(_, j)| b[j]);
    general_mat_mul(A::one(), &x, &w, A::one(), &mut out);
    out
}

/// `a·b`, through BLAS when the shapes and layouts allow it.
///
/// The one matrix product of the workspace that other crates may call, so
/// that they need no BLAS link of their own.
///
/// # Panics
///
/// If `a` has a different number of columns than `b` has rows.
#[track_caller]
pub fn matmul<A: NdFloat>(a: ArrayView2<'_, A>, b: ArrayView2<'_, A>) -> Array2<A> {
    assert!(
        a.ncols() == b.nrows(),
        "matmul: shapes {:?} and {:?} cannot be multiplied",
        a.shape(),
        b.shape()
    );
    a.dot(&b)
}

/// The index of the largest entry of each row (NumPy's `argmax(axis=1)`; the
/// first one on ties).
pub fn argmax_rows<A: NdFloat>(y: ArrayView2<'_, A>) -> Array1<usize> {
    y.outer_iter()
        .map(|row| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best
        })
        .collect()
}

/// Checks that `t` has one target per row of a `(n, classes)` prediction,
/// each a class below `classes`.
///
/// # Panics
///
/// If not; the message starts with `what` and names both shapes.
#[track_caller]
pub fn check_targets<A>(what: &str, (n, classes): (usize, usize), t: &Labels<'_, A>) {
    match t {
        Labels::OneHot(t) => assert!(
            t.dim() == (n, classes),
            "{what}: predictions have shape [{n}, {classes}] but targets are {}",
            Labels::OneHot(t.view()).describe()
        ),
        Labels::Classes(k) => {
            assert!(
                k.len() == n,
                "{what}: predictions have shape [{n}, {classes}] but targets are class indices [{}]",
                k.len()
            );
            if let Some((i, &bad)) = k.iter().enumerate().find(|&(_, &k)| k >= classes) {
                panic!(
                    "{what}: target {i} is class {bad}, but predictions have shape [{n}, {classes}] (classes 0..{classes})"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn sigmoid_is_finite_and_exact_at_the_extremes() {
        let x = array![-1000.0_f64, -745.2, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0];
        let y = sigmoid(x.view());
        assert!(y.iter().all(|v| v.is_finite()));
        assert_eq!(y[0], 0.0);
        assert_eq!(y[7], 1.0);
        assert_eq!(y[4], 0.5);
        // σ(-40) = e^-40 / (1 + e^-40) keeps full relative precision.
        assert_abs_diff_eq!(y[2] / 4.248354255291589e-18, 1.0, epsilon = 1e-12);
        // σ(1) = 0.7310585786300049 and σ(-1) = 1 - σ(1).
        assert_abs_diff_eq!(y[5], 0.7310585786300049, epsilon = 1e-15);
        assert_abs_diff_eq!(y[3], 1.0 - 0.7310585786300049, epsilon = 1e-15);
        let y32 = sigmoid(array![-1000.0_f32, 1000.0].view());
        assert_eq!(y32, array![0.0, 1.0]);
    }

    #[test]
    fn relu_zeroes_negatives_and_keeps_positives() {
        let y = relu(array![[1.0_f32, -0.5], [-2.0, 3.0]].view());
        assert_eq!(y, array![[1.0, 0.0], [0.0, 3.0]]);
    }

    #[test]
    fn softmax_is_shift_invariant_and_finite() {
        let big = softmax(array![1000.0_f64, 1001.0, 1002.0].view());
        let small = softmax(array![0.0_f64, 1.0, 2.0].view());
        assert!(big.iter().all(|v| v.is_finite()));
        assert_abs_diff_eq!(big, small, epsilon = 1e-15);
        // e^k / (1 + e + e^2) for k = 0, 1, 2.
        let z = 1.0 + 1f64.exp() + 2f64.exp();
        assert_abs_diff_eq!(
            small,
            array![1.0 / z, 1f64.exp() / z, 2f64.exp() / z],
            epsilon = 1e-15
        );
    }

    #[test]
    fn softmax_works_per_row_of_a_batch() {
        let x = array![
            [0.0_f64, 1.0, 2.0],
            [1000.0, 1001.0, 1002.0],
            [5.0, 5.0, 5.0]
        ];
        let y = softmax(x.view());
        let row = softmax(array![0.0_f64, 1.0, 2.0].view());
        assert_abs_diff_eq!(y.row(0), row, epsilon = 1e-15);
        assert_abs_diff_eq!(y.row(1), row, epsilon = 1e-15);
        assert_abs_diff_eq!(
            y.row(2),
            array![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
            epsilon = 1e-15
        );
    }

    #[test]
    fn log_softmax_is_the_log_of_softmax_and_never_minus_infinity() {
        let x = array![[0.3_f64, 2.9, 4.0], [0.0, 1000.0, -5.0]];
        let lp = log_softmax(x.view());
        assert_abs_diff_eq!(lp.row(0), softmax(x.row(0)).mapv(f64::ln), epsilon = 1e-14);
        assert_eq!(lp[[1, 0]], -1000.0);
        assert_eq!(lp[[1, 2]], -1005.0);
    }

    #[test]
    fn cross_entropy_matches_the_book() {
        // DLFS §4.2.2: t is "2"; y puts 0.6 on "2" (loss 0.5108) and then 0.6
        // on "7" with 0.1 on "2" (loss 2.3026).
        let t = array![[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]];
        let y1 = array![[0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]];
        let y2 = array![[0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]];
        assert_abs_diff_eq!(
            cross_entropy_error(y1.view(), Labels::OneHot(t.view())),
            0.510825457099338,
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(
            cross_entropy_error(y2.view(), Labels::OneHot(t.view())),
            2.302584092994546,
            epsilon = 1e-12
        );
        // Class indices give the same loss.
        assert_abs_diff_eq!(
            cross_entropy_error(y2.view(), Labels::Classes(array![2].view())),
            2.302584092994546,
            epsilon = 1e-12
        );
    }

    #[test]
    fn cross_entropy_of_a_zero_probability_is_finite() {
        // -ln(1e-7) = 16.11809565095832
        let y = array![[1.0_f64, 0.0]];
        let loss = cross_entropy_error(y.view(), Labels::Classes(array![1].view()));
        assert_abs_diff_eq!(loss, 16.11809565095832, epsilon = 1e-9);
        let y32 = array![[1.0_f32, 0.0]];
        let loss32 = cross_entropy_error(y32.view(), Labels::OneHot(array![[0.0_f32, 1.0]].view()));
        assert_abs_diff_eq!(loss32, 16.118095, epsilon = 1e-5);
    }

    #[test]
    fn cross_entropy_is_a_mean_over_the_batch() {
        let y = array![[0.5_f64, 0.5], [0.25, 0.75]];
        let loss = cross_entropy_error(y.view(), Labels::Classes(array![0, 1].view()));
        let expected = -((0.5_f64 + 1e-7).ln() + (0.75_f64 + 1e-7).ln()) / 2.0;
        assert_abs_diff_eq!(loss, expected, epsilon = 1e-15);
    }

    #[test]
    #[should_panic(expected = "predictions have shape [2, 3] but targets are one-hot [2, 4]")]
    fn cross_entropy_names_both_shapes() {
        let y = Array2::<f64>::zeros((2, 3));
        let t = Array2::<f64>::zeros((2, 4));
        cross_entropy_error(y.view(), Labels::OneHot(t.view()));
    }

    #[test]
    #[should_panic(expected = "target 1 is class 3, but predictions have shape [2, 3]")]
    fn cross_entropy_rejects_a_class_out_of_range() {
        let y = Array2::<f64>::zeros((2, 3));
        cross_entropy_error(y.view(), Labels::Classes(array![0, 3].view()));
    }

    #[test]
    fn affine_batch_example_from_the_book() {
        // DLFS §5.6.2: X·W = [[0,0,0],[10,10,10]] plus B = [1,2,3].
        let x = array![[0.0_f64, 0.0], [10.0, 10.0]];
        let w = array![[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]];
        let b = array![1.0, 2.0, 3.0];
        assert_eq!(
            matmul(x.view(), w.view()),
            array![[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]]
        );
        assert_eq!(
            affine(x.view(), w.view(), b.view()),
            array![[1.0, 2.0, 3.0], [11.0, 12.0, 13.0]]
        );
    }

    #[test]
    fn affine_uses_the_same_product_on_blas_sized_and_transposed_inputs() {
        // Large enough for BLAS (every dimension above 7) and with a
        // transposed x, so both gemm paths are exercised; compared against a
        // plain triple loop.
        let xt = Array2::from_shape_fn((13, 9), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let x = xt.t();
        let w = Array2::from_shape_fn((13, 10), |(i, j)| ((i + 2 * j) % 5) as f64 * 0.5 - 1.0);
        let b = Array1::from_shape_fn(10, |j| j as f64);
        let out = affine(x, w.view(), b.view());
        let expected = Array2::from_shape_fn((9, 10), |(n, o)| {
            b[o] + (0..13).map(|i| x[[n, i]] * w[[i, o]]).sum::<f64>()
        });
        assert_eq!(out, expected);
    }

    #[test]
    #[should_panic(expected = "x has shape [2, 3] but W has shape [4, 5]")]
    fn affine_names_both_shapes_on_mismatch() {
        affine(
            Array2::<f32>::zeros((2, 3)).view(),
            Array2::<f32>::zeros((4, 5)).view(),
            Array1::<f32>::zeros(5).view(),
        );
    }

    #[test]
    #[should_panic(expected = "b has shape [4] but W has shape [3, 5]")]
    fn affine_names_bias_shape_on_mismatch() {
        affine(
            Array2::<f32>::zeros((2, 3)).view(),
            Array2::<f32>::zeros((3, 5)).view(),
            Array1::<f32>::zeros(4).view(),
        );
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        let y = array![[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]];
        assert_eq!(argmax_rows(y.view()), array![1, 0, 2]);
    }
}
