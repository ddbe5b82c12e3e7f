//! Every layer on its own: `backward(r)` against the numerical gradient of `Σ forward(x) ⊙ r`.

use core_layers::functions::{affine, relu, sigmoid};
use core_layers::{Affine, Layer, Relu, Sigmoid, SoftmaxWithLoss, softmax_cross_entropy};
use ndarray::Array2;
use proptest::prelude::*;

use crate::common::*;

fn run_relu_gradcheck(x: Array2<f64>, r: Array2<f64>) -> Result<(), TestCaseError> {
    let mut layer = Relu::default();
    layer.forward(x.view());
    let dx = layer.backward(r.view());
    gradcheck(
        "x",
        |x| weighted_sum(relu(x).view(), r.view()),
        x.view(),
        dx.view(),
    )?;
    Ok(())
}

fn run_sigmoid_gradcheck(x: Array2<f64>, r: Array2<f64>) -> Result<(), TestCaseError> {
    let mut layer = Sigmoid::default();
    layer.forward(x.view());
    let dx = layer.backward(r.view());
    gradcheck(
        "x",
        |x| weighted_sum(sigmoid(x).view(), r.view()),
        x.view(),
        dx.view(),
    )?;
    Ok(())
}

fn run_affine_gradcheck(
    x: Array2<f64>,
    w: Array2<f64>,
    b: ndarray::Array1<f64>,
    r: Array2<f64>,
) -> Result<(), TestCaseError> {
    let mut layer = Affine::new(w.clone(), b.clone());
    let out = layer.forward(x.view());
    prop_assert_eq!(out, affine(x.view(), w.view(), b.view()));
    let dx = layer.backward(r.view());
    let grads = layer.grads().expect("backward stores the gradients");
    gradcheck(
        "x",
        |x| weighted_sum(affine(x, w.view(), b.view()).view(), r.view()),
        x.view(),
        dx.view(),
    )?;
    gradcheck(
        "W",
        |w| weighted_sum(affine(x.view(), w, b.view()).view(), r.view()),
        w.view(),
        grads.dw.view(),
    )?;
    gradcheck_1d(
        "b",
        |b| weighted_sum(affine(x.view(), w.view(), b).view(), r.view()),
        b.view(),
        grads.db.view(),
    )?;
    Ok(())
}

fn run_softmax_with_loss_gradcheck(x: Array2<f64>, t: Targets) -> Result<(), TestCaseError> {
    let mut layer = SoftmaxWithLoss::default();
    let loss = layer.forward(x.view(), t.labels());
    prop_assert_eq!(loss, softmax_cross_entropy(x.view(), t.labels()));
    let dx = layer.backward();
    gradcheck(
        "x",
        |x| softmax_cross_entropy(x, t.labels()),
        x.view(),
        dx.view(),
    )?;
    Ok(())
}

prop_compose! {
    fn relu_case()(n in batch(), d in features())
        (x in arb_matrix_off_zero(n, d), r in arb_matrix(n, d)) -> (Array2<f64>, Array2<f64>) { (x, r) }
}

prop_compose! {
    fn sigmoid_case()(n in batch(), d in features())
        (x in arb_matrix(n, d), r in arb_matrix(n, d)) -> (Array2<f64>, Array2<f64>) { (x, r) }
}

prop_compose! {
    fn affine_case()(n in batch(), i in features(), o in features())
        (x in arb_matrix(n, i), w in arb_matrix(i, o), b in arb_vector(o), r in arb_matrix(n, o))
        -> (Array2<f64>, Array2<f64>, ndarray::Array1<f64>, Array2<f64>) { (x, w, b, r) }
}

prop_compose! {
    fn softmax_case()(n in batch(), c in 2..=12usize)
        (x in arb_matrix(n, c), t in arb_targets(n, c)) -> (Array2<f64>, Targets) { (x, t) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn relu_backward_matches_numerical((x, r) in relu_case()) {
        run_relu_gradcheck(x, r)?;
    }

    #[test]
    fn sigmoid_backward_matches_numerical((x, r) in sigmoid_case()) {
        run_sigmoid_gradcheck(x, r)?;
    }

    #[test]
    fn affine_backward_matches_numerical((x, w, b, r) in affine_case()) {
        run_affine_gradcheck(x, w, b, r)?;
    }

    #[test]
    fn softmax_with_loss_backward_matches_numerical((x, t) in softmax_case()) {
        run_softmax_with_loss_gradcheck(x, t)?;
    }
}

/// Every dimension above 7, so the products go through BLAS (ndarray skips
/// BLAS when all of m, n, k are at most 7), with transposed inputs.
#[test]
fn affine_gradcheck_on_blas_sized_transposed_inputs() {
    let x = Array2::from_shape_fn((13, 9), |(i, j)| ((i * 7 + j * 3) % 11) as f64 * 0.3 - 1.5);
    let w = Array2::from_shape_fn((10, 13), |(i, j)| ((i * 5 + j * 2) % 7) as f64 * 0.25 - 0.8);
    let b = ndarray::Array1::from_shape_fn(10, |j| j as f64 * 0.1);
    let r = Array2::from_shape_fn((9, 10), |(i, j)| ((i + 3 * j) % 5) as f64 - 2.0);
    // x is 9×13 and W is 13×10, both column-major views of row-major arrays.
    run_affine_gradcheck(x.t().to_owned(), w.t().to_owned(), b, r).unwrap();
    let mut layer = Affine::new(w.t().to_owned(), ndarray::Array1::zeros(10));
    let out = layer.forward(x.t());
    let expected = Array2::from_shape_fn((9, 10), |(n, o)| {
        (0..13).map(|i| x[[i, n]] * w[[o, i]]).sum::<f64>()
    });
    approx::assert_abs_diff_eq!(out, expected, epsilon = 1e-12);
}
