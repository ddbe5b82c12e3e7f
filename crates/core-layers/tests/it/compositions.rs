//! The compositions of DLFS §5.7: Affine → Relu|Sigmoid → Affine → SoftmaxWithLoss.

use core_layers::functions::{affine, relu, sigmoid};
use core_layers::{Affine, Layer, Relu, Sigmoid, SoftmaxWithLoss, softmax_cross_entropy};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use proptest::prelude::*;

use crate::common::*;

#[derive(Clone, Copy, Debug)]
enum Activation {
    Relu,
    Sigmoid,
}

#[derive(Clone, Debug)]
struct Case {
    x: Array2<f64>,
    w1: Array2<f64>,
    b1: Array1<f64>,
    w2: Array2<f64>,
    b2: Array1<f64>,
    t: Targets,
}

impl Case {
    fn loss(
        &self,
        act: Activation,
        x: ArrayView2<'_, f64>,
        w1: ArrayView2<'_, f64>,
        b1: ArrayView1<'_, f64>,
        w2: ArrayView2<'_, f64>,
        b2: ArrayView1<'_, f64>,
    ) -> f64 {
        let a1 = affine(x, w1, b1);
        let z1 = match act {
            Activation::Relu => relu(a1.view()),
            Activation::Sigmoid => sigmoid(a1.view()),
        };
        let a2 = affine(z1.view(), w2, b2);
        softmax_cross_entropy(a2.view(), self.t.labels())
    }
}

prop_compose! {
    fn arb_case()(n in batch(), i in features(), h in features(), c in 2..=12usize)
        (x in arb_matrix(n, i), w1 in arb_matrix(i, h), b1 in arb_vector(h),
         w2 in arb_matrix(h, c), b2 in arb_vector(c), t in arb_targets(n, c)) -> Case
    {
        // Weights scaled by 1/√fan_in, as in a trained or Xavier-initialised
        // net, keep the logits of order 1. Unscaled [-2, 2] weights over 12
        // features give logits in the tens, where the central difference's
        // truncation error h²/6·f‴ reaches the 1e-6 relative bound.
        let (w1, w2) = (&w1 / (w1.nrows() as f64).sqrt(), &w2 / (w2.nrows() as f64).sqrt());
        Case { x, w1, b1, w2, b2, t }
    }
}

fn run_composition_gradcheck(case: Case, act: Activation) -> Result<(), TestCaseError> {
    if let Activation::Relu = act {
        // A ±h step of x, W1 or b1 moves a pre-activation by at most
        // h·max(|x|, |W1|, 1) = 2e-4. Closer than that to 0, the central
        // difference straddles ReLU's kink and is itself wrong: skip such cases.
        let a1 = affine(case.x.view(), case.w1.view(), case.b1.view());
        prop_assume!(a1.iter().all(|v| v.abs() > 1e-3));
    }
    let mut affine1 = Affine::new(case.w1.clone(), case.b1.clone());
    let mut affine2 = Affine::new(case.w2.clone(), case.b2.clone());
    let mut activation: Box<dyn Layer<f64>> = match act {
        Activation::Relu => Box::new(Relu::default()),
        Activation::Sigmoid => Box::new(Sigmoid::default()),
    };
    let mut last = SoftmaxWithLoss::default();

    let a1 = affine1.forward(case.x.view());
    let z1 = activation.forward(a1.view());
    let a2 = affine2.forward(z1.view());
    let loss = last.forward(a2.view(), case.t.labels());
    let c = &case;
    prop_assert!(
        (loss
            - c.loss(
                act,
                c.x.view(),
                c.w1.view(),
                c.b1.view(),
                c.w2.view(),
                c.b2.view()
            ))
        .abs()
            < 1e-12
    );

    let da2 = last.backward();
    let dz1 = affine2.backward(da2.view());
    let da1 = activation.backward(dz1.view());
    let dx = affine1.backward(da1.view());
    let g1 = affine1.grads().unwrap();
    let g2 = affine2.grads().unwrap();

    gradcheck(
        "x",
        |x| c.loss(act, x, c.w1.view(), c.b1.view(), c.w2.view(), c.b2.view()),
        c.x.view(),
        dx.view(),
    )?;
    gradcheck(
        "W1",
        |w1| c.loss(act, c.x.view(), w1, c.b1.view(), c.w2.view(), c.b2.view()),
        c.w1.view(),
        g1.dw.view(),
    )?;
    gradcheck_1d(
        "b1",
        |b1| c.loss(act, c.x.view(), c.w1.view(), b1, c.w2.view(), c.b2.view()),
        c.b1.view(),
        g1.db.view(),
    )?;
    gradcheck(
        "W2",
        |w2| c.loss(act, c.x.view(), c.w1.view(), c.b1.view(), w2, c.b2.view()),
        c.w2.view(),
        g2.dw.view(),
    )?;
    gradcheck_1d(
        "b2",
        |b2| c.loss(act, c.x.view(), c.w1.view(), c.b1.view(), c.w2.view(), b2),
        c.b2.view(),
        g2.db.view(),
    )?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn affine_relu_affine_softmax_matches_numerical(case in arb_case()) {
        run_composition_gradcheck(case, Activation::Relu)?;
    }

    #[test]
    fn affine_sigmoid_affine_softmax_matches_numerical(case in arb_case()) {
        run_composition_gradcheck(case, Activation::Sigmoid)?;
    }
}

/// A missing `1/N` or a wrong transpose must fail the check: the bound is
/// tight enough to see them.
#[test]
fn the_check_catches_a_missing_one_over_batch() {
    let x = Array2::from_shape_fn((3, 4), |(i, j)| (i as f64 - j as f64) * 0.3);
    let t = Array1::from(vec![0usize, 2, 1]);
    let labels = core_layers::Labels::Classes(t.view());
    let mut last = SoftmaxWithLoss::default();
    last.forward(x.view(), labels);
    let dx = last.backward();
    let wrong = &dx * 3.0; // (y - t) without the division by N = 3.
    let numeric = numerical_grad::numerical_gradient(
        |x| softmax_cross_entropy(x, labels),
        x.view(),
        numerical_grad::H,
    );
    assert!(numerical_grad::check_gradient("x", dx.view(), numeric.view(), tol()).is_ok());
    let err = numerical_grad::check_gradient("x", wrong.view(), numeric.view(), tol()).unwrap_err();
    assert!(err.0.worst.ratio > 1e4, "{err}");
    // A transposed dW on a square layer.
    let w = Array2::from_shape_fn((4, 4), |(i, j)| ((i * 3 + j) % 5) as f64 * 0.2 - 0.4);
    let b = Array1::zeros(4);
    let numeric_w = numerical_grad::numerical_gradient(
        |w| softmax_cross_entropy(affine(x.view(), w, b.view()).view(), labels),
        w.view(),
        numerical_grad::H,
    );
    let mut last2 = SoftmaxWithLoss::default();
    last2.forward(affine(x.view(), w.view(), b.view()).view(), labels);
    let mut layer2 = Affine::new(w.clone(), b.clone());
    layer2.forward(x.view());
    layer2.backward(last2.backward().view());
    let dw_right = layer2.grads().unwrap().dw.clone();
    assert!(numerical_grad::check_gradient("W", dw_right.view(), numeric_w.view(), tol()).is_ok());
    assert!(numerical_grad::check_gradient("W", dw_right.t(), numeric_w.view(), tol()).is_err());
}
