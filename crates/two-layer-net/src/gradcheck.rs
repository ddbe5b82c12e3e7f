//! The gradient check of DLFS §5.7.3, made strict and never flaky.
//!
//! The book compares backprop with the numerical gradient on three training
//! images and prints the mean absolute difference per parameter. The
//! numerical gradient is itself wrong wherever a `±h` step of a parameter
//! moves a hidden unit's pre-activation across ReLU's kink at 0: the central
//! difference then averages two slopes. Only `W1` and `b1` feed the
//! pre-activations, and the change is known exactly: a step `δ` of `W1[i, j]`
//! moves `a[n, j]` by `δ · x[n, i]`, and a step of `b1[j]` moves every
//! `a[n, j]` by `δ`. [`kinks`] marks those parameters; [`run`] reports them
//! with their count and judges all the others against the `f64` tolerance.

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use core_layers::Labels;
use core_layers::functions::affine;
use ndarray::{Array1, Array2, ArrayView2, NdFloat};
use numerical_grad::{GradDiff, Tolerance, compare, compare_excluding};

use crate::{PARAM_NAMES, Params, TwoLayerNet};

/// The parameters whose `±h` perturbation crosses a ReLU kink.
#[derive(Clone, Debug, PartialEq)]
pub struct Kinks {
    /// `W1[i, j]` is marked when some `|a[n, j]| ≤ h · |x[n, i]|` with `x[n, i] ≠ 0`.
    pub w1: Array2<bool>,
    /// `b1[j]` is marked when some `|a[n, j]| ≤ h`.
    pub b1: Array1<bool>,
}

impl Kinks {
    /// Total number of marked parameters.
    pub fn count(&self) -> usize {
        self.w1.iter().chain(self.b1.iter()).filter(|&&k| k).count()
    }
}

/// Finds the parameters of `net` whose `±h` perturbation, on input `x`,
/// moves a hidden pre-activation across (or onto) 0.
///
/// A small margin (`1e-6` relative) marks the cases that rounding could put
/// on either side.
pub fn kinks<A: NdFloat>(net: &TwoLayerNet<A>, x: ArrayView2<'_, A>, h: A) -> Kinks {
    let p = net.params();
    let a = affine(x, p.w1.view(), p.b1.view());
    let h = h.to_f64().expect("h is a number") * (1.0 + 1e-6);
    let crosses =
        |a: A, step: f64| a.to_f64().expect("a float converts to f64").abs() <= h * step.abs();
    let w1 = Array2::from_shape_fn(p.w1.dim(), |(i, j)| {
        (0..x.nrows()).any(|n| {
            let xi = x[[n, i]].to_f64().expect("a float converts to f64");
            xi != 0.0 && crosses(a[[n, j]], xi)
        })
    });
    let b1 = Array1::from_shape_fn(p.b1.len(), |j| {
        (0..x.nrows()).any(|n| crosses(a[[n, j]], 1.0))
    });
    Kinks { w1, b1 }
}

/// One parameter's result.
#[derive(Clone, Debug)]
pub struct ParamCheck {
    /// Every element, as the book measures (`mean_abs` is the book's figure).
    pub all: GradDiff,
    /// The elements not at a kink: what is judged.
    pub judged: GradDiff,
    /// How many elements cross a kink and are left out of `judged`.
    pub kinks: usize,
}

impl ParamCheck {
    /// Whether the judged elements are within the tolerance.
    pub fn passed(&self) -> bool {
        self.judged.passed
    }
}

/// The result of [`run`]: one [`ParamCheck`] per parameter, `W1`, `b1`, `W2`, `b2`.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The checks, in the order of [`PARAM_NAMES`].
    pub params: Vec<ParamCheck>,
    /// The tolerance every judged element was held to.
    pub tol: Tolerance,
}

impl Outcome {
    /// Whether every parameter passed.
    pub fn passed(&self) -> bool {
        self.params.iter().all(ParamCheck::passed)
    }
}

/// Compares backprop `grads` with numerical `numeric`, leaving out the kinks.
pub fn judge(grads: &Params<f64>, numeric: &Params<f64>, kinks: &Kinks, tol: Tolerance) -> Outcome {
    let none2 = Array2::from_elem(grads.w2.dim(), false);
    let none1 = Array1::from_elem(grads.b2.len(), false);
    let check = |name: &str,
                 a: ndarray::ArrayViewD<'_, f64>,
                 n: ndarray::ArrayViewD<'_, f64>,
                 k: ndarray::ArrayViewD<'_, bool>| ParamCheck {
        all: compare(name, a.view(), n.view(), tol),
        judged: compare_excluding(name, a.view(), n.view(), k.view(), tol),
        kinks: k.iter().filter(|&&b| b).count(),
    };
    let params = vec![
        check(
            PARAM_NAMES[0],
            grads.w1.view().into_dyn(),
            numeric.w1.view().into_dyn(),
            kinks.w1.view().into_dyn(),
        ),
        check(
            PARAM_NAMES[1],
            grads.b1.view().into_dyn(),
            numeric.b1.view().into_dyn(),
            kinks.b1.view().into_dyn(),
        ),
        check(
            PARAM_NAMES[2],
            grads.w2.view().into_dyn(),
            numeric.w2.view().into_dyn(),
            none2.view().into_dyn(),
        ),
        check(
            PARAM_NAMES[3],
            grads.b2.view().into_dyn(),
            numeric.b2.view().into_dyn(),
            none1.view().into_dyn(),
        ),
    ];
    Outcome { params, tol }
}

/// Runs the whole check in `f64`: backprop, the parallel numerical gradient
/// with step `h`, kink detection and judgement with [`Tolerance::for_dtype`].
///
/// `evals` counts the loss evaluations of the numerical gradient as they
/// happen (`2 · params().len()` in all), for a progress display.
pub fn run(
    net: &mut TwoLayerNet<f64>,
    x: ArrayView2<'_, f64>,
    t: Labels<'_, f64>,
    h: f64,
    evals: &AtomicUsize,
) -> Run {
    let start = Instant::now();
    let (_, grads) = net.gradient(x, t);
    let backprop_time = start.elapsed();
    let start = Instant::now();
    let numeric = net.numerical_gradient_counted(x, t, h, evals);
    let numerical_time = start.elapsed();
    let kinks = kinks(net, x, h);
    Run {
        outcome: judge(&grads, &numeric, &kinks, Tolerance::for_dtype::<f64>()),
        kinks: kinks.count(),
        backprop_time,
        numerical_time,
    }
}

/// What [`run`] measured.
#[derive(Clone, Debug)]
pub struct Run {
    /// The judgement.
    pub outcome: Outcome,
    /// Parameters at a ReLU kink, in all.
    pub kinks: usize,
    /// Time of the backprop gradient.
    pub backprop_time: Duration,
    /// Time of the numerical gradient.
    pub numerical_time: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn kinks_mark_exactly_the_parameters_whose_step_crosses_zero() {
        // One example x = [1, 0, 2]; W1 columns give pre-activations
        // a = [5e-5, 1.0, -3e-4].
        let w1 = array![[5e-5, 1.0, -3e-4], [7.0, 7.0, 7.0], [0.0, 0.0, 0.0]];
        let net = TwoLayerNet::from_params(Params {
            w1,
            b1: array![0.0, 0.0, 0.0],
            w2: Array2::zeros((3, 2)),
            b2: Array1::zeros(2),
        });
        let k = kinks(&net, array![[1.0, 0.0, 2.0]].view(), 1e-4);
        // Column 0 (a = 5e-5): W1[0,0] moves it by 1e-4 (crosses), W1[1,0]
        // by 0 (x = 0), W1[2,0] by 2e-4 (crosses); b1[0] by 1e-4 (crosses).
        // Column 2 (a = -3e-4): only W1[2,2] (2e-4) falls short; nothing crosses.
        assert_eq!(
            k.w1,
            array![
                [true, false, false],
                [false, false, false],
                [true, false, false]
            ]
        );
        assert_eq!(k.b1, array![true, false, false]);
        assert_eq!(k.count(), 3);
    }
}
