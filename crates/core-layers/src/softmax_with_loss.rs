//! The output layer: softmax followed by the cross-entropy loss (DLFS §5.6.3).

use ndarray::{Array2, ArrayView2, NdFloat, Zip};

use crate::functions::{check_targets, log_softmax};
use crate::{Labels, OwnedLabels};

/// Softmax and mean cross-entropy in one layer (DLFS §5.6.3).
///
/// Forward: `L = −(1/N) Σₙ Σₖ tₙₖ log softmax(x)ₙₖ`, computed from
/// [`log_softmax`] so that large logits never produce `ln 0`.
/// Backward (with `dout = 1`): `∂L/∂x = (y − t) / N`, `y = softmax(x)`.
///
/// The book's `SoftmaxWithLoss` computes `ln(y + 1e-7)` in its forward pass
/// but `(y − t) / N` in its backward, which is the derivative without the
/// `1e-7`; the two disagree by about `1e-7`, which is why the book's own
/// gradient check shows `b2` off by about `1.4e-7`. Here both come from the
/// same exact formula, so the loss and its gradient agree to rounding. The
/// standalone [`cross_entropy_error`](crate::functions::cross_entropy_error)
/// keeps the book's `1e-7`.
///
/// Targets are one-hot rows (rows of probabilities summing to 1 work too) or
/// class indices; both give the same loss and gradient for the same labels.
///
/// This is not a [`Layer`](crate::Layer): its forward pass takes the targets and
/// returns a scalar, and its backward pass takes no `dout`.
///
/// # Shapes
///
/// - `x`: `[N, C]` scores; `t`: one-hot `[N, C]` or class indices `[N]`.
/// - `backward()`: `[N, C]`.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::{Labels, SoftmaxWithLoss};
/// let mut last = SoftmaxWithLoss::default();
/// let loss = last.forward(array![[0.0_f64, 0.0]].view(), Labels::Classes(array![1].view()));
/// approx::assert_abs_diff_eq!(loss, std::f64::consts::LN_2, epsilon = 1e-15);
/// assert_eq!(last.backward(), array![[0.5, -0.5]]);
/// ```
#[derive(Clone, Debug)]
pub struct SoftmaxWithLoss<A> {
    y: Option<Array2<A>>,
    t: Option<OwnedLabels<A>>,
}

impl<A> Default for SoftmaxWithLoss<A> {
    fn default() -> Self {
        SoftmaxWithLoss { y: None, t: None }
    }
}

impl<A: NdFloat> SoftmaxWithLoss<A> {
    /// Computes the mean cross-entropy of `softmax(x)` against `t`, caching
    /// `softmax(x)` and `t` for [`backward`](SoftmaxWithLoss::backward).
    ///
    /// # Panics
    ///
    /// If `t` does not match `x` (the message names both shapes) or a class
    /// index is not below `C`.
    #[track_caller]
    pub fn forward(&mut self, x: ArrayView2<'_, A>, t: Labels<'_, A>) -> A {
        check_targets("SoftmaxWithLoss::forward", x.dim(), &t);
        let log_y = log_softmax(x);
        let loss = loss_from_log_probs(log_y.view(), &t);
        self.y = Some(log_y.mapv_into(A::exp));
        self.t = Some(t.into());
        loss
    }

    /// `∂L/∂x = (y − t) / N` for the last forward pass.
    ///
    /// # Panics
    ///
    /// If called before [`forward`](SoftmaxWithLoss::forward).
    #[track_caller]
    pub fn backward(&mut self) -> Array2<A> {
        let y = self
            .y
            .as_ref()
            .expect("SoftmaxWithLoss::backward called before forward");
        let t = self
            .t
            .as_ref()
            .expect("SoftmaxWithLoss::backward called before forward");
        let n = A::from(y.nrows()).expect("batch size is representable");
        let mut dx = y.clone();
        match t {
            OwnedLabels::OneHot(t) => Zip::from(&mut dx)
                .and(t)
                .for_each(|d, &t| *d = (*d - t) / n),
            OwnedLabels::Classes(t) => {
                for (mut row, &k) in dx.outer_iter_mut().zip(t) {
                    row[k] -= A::one();
                }
                dx.mapv_inplace(|d| d / n);
            }
        }
        dx
    }

    /// The softmax output of the last forward pass, `[N, C]`.
    pub fn y(&self) -> Option<ArrayView2<'_, A>> {
        self.y.as_ref().map(|y| y.view())
    }
}

/// The mean cross-entropy `−(1/N) Σₙ Σₖ tₙₖ log_yₙₖ`, from log-probabilities.
///
/// The loss of [`SoftmaxWithLoss`] as a pure function, for callers that
/// need no backward pass (e.g. a numerical gradient).
///
/// # Panics
///
/// As [`SoftmaxWithLoss::forward`].
#[track_caller]
pub fn softmax_cross_entropy<A: NdFloat>(x: ArrayView2<'_, A>, t: Labels<'_, A>) -> A {
    check_targets("softmax_cross_entropy", x.dim(), &t);
    loss_from_log_probs(log_softmax(x).view(), &t)
}

fn loss_from_log_probs<A: NdFloat>(log_y: ArrayView2<'_, A>, t: &Labels<'_, A>) -> A {
    let n = A::from(log_y.nrows()).expect("batch size is representable");
    let total = match t {
        Labels::OneHot(t) => log_y
            .iter()
            .zip(t.iter())
            // Skip t = 0 so that a log-probability of -inf (impossible in
            // exact log-softmax, but cheap to guard) cannot turn 0·(-inf) into NaN.
            .fold(
                A::zero(),
                |s, (&l, &t)| if t == A::zero() { s } else { s + t * l },
            ),
        Labels::Classes(t) => log_y
            .outer_iter()
            .zip(t.iter())
            .fold(A::zero(), |s, (row, &k)| s + row[k]),
    };
    -total / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::{cross_entropy_error, softmax};
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn loss_is_cross_entropy_of_softmax_without_the_delta() {
        // Python: x = np.array([[0.3, 2.9, 4.0], [1.0, -1.0, 0.5]]); t = [2, 0]
        //   y = softmax(x); -np.log(y[[0, 1], t]).mean() -> 0.41833...
        let x = array![[0.3_f64, 2.9, 4.0], [1.0, -1.0, 0.5]];
        let y = softmax(x.view());
        let expected = -(y[[0, 2]].ln() + y[[1, 0]].ln()) / 2.0;
        let mut last = SoftmaxWithLoss::default();
        let loss = last.forward(x.view(), Labels::Classes(array![2, 0].view()));
        assert_abs_diff_eq!(loss, expected, epsilon = 1e-15);
        // The book's loss with 1e-7 inside the log differs by about 1e-7 / y.
        let book = cross_entropy_error(y.view(), Labels::Classes(array![2, 0].view()));
        assert!((book - loss).abs() > 1e-8 && (book - loss).abs() < 1e-6);
    }

    #[test]
    fn backward_is_y_minus_t_over_n() {
        let x = array![[0.3_f64, 2.9, 4.0], [1.0, -1.0, 0.5]];
        let t = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
        let mut last = SoftmaxWithLoss::default();
        last.forward(x.view(), Labels::OneHot(t.view()));
        let dx = last.backward();
        let expected = (softmax(x.view()) - &t) / 2.0;
        assert_abs_diff_eq!(dx, expected, epsilon = 1e-16);
    }

    #[test]
    fn one_hot_and_class_indices_agree() {
        let x = array![[0.3_f32, 2.9, 4.0], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0]];
        let t_hot = array![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        let t_idx = array![1, 0, 2];
        let mut a = SoftmaxWithLoss::default();
        let mut b = SoftmaxWithLoss::default();
        let la = a.forward(x.view(), Labels::OneHot(t_hot.view()));
        let lb = b.forward(x.view(), Labels::Classes(t_idx.view()));
        assert_eq!(la, lb);
        assert_eq!(a.backward(), b.backward());
    }

    #[test]
    fn huge_logits_give_a_finite_loss() {
        let x = array![[0.0_f32, 1000.0]];
        let mut last = SoftmaxWithLoss::default();
        let loss = last.forward(x.view(), Labels::Classes(array![0].view()));
        assert_eq!(loss, 1000.0);
        assert_eq!(last.backward(), array![[-1.0, 1.0]]);
    }

    #[test]
    #[should_panic(expected = "predictions have shape [2, 3] but targets are class indices [3]")]
    fn mismatched_targets_name_both_shapes() {
        let mut last = SoftmaxWithLoss::<f64>::default();
        last.forward(
            Array2::zeros((2, 3)).view(),
            Labels::Classes(array![0, 1, 2].view()),
        );
    }
}
