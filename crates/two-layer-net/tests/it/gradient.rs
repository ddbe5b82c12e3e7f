//! Backprop against the numerical gradient on small random nets.

use core_layers::Labels;
use ndarray::{Array1, Array2, ArrayD};
use numerical_grad::{GradCheckReport, H, Tolerance};
use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use two_layer_net::TwoLayerNet;
use two_layer_net::gradcheck::{judge, kinks};

/// A net of the given sizes with weights of std 0.5 and a batch of inputs in [0, 1).
fn setup(
    seed: u64,
    n: usize,
    i: usize,
    h: usize,
    o: usize,
) -> (TwoLayerNet<f64>, Array2<f64>, Array1<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let net = TwoLayerNet::<f64>::new(i, h, o, 0.5, &mut rng);
    let x = Array2::from_shape_simple_fn((n, i), || rng.random::<f64>());
    let t = Array1::from_shape_simple_fn(n, || rng.random_range(0..o));
    (net, x, t)
}

fn check(seed: u64, n: usize, i: usize, h: usize, o: usize) -> Result<(), TestCaseError> {
    let (mut net, x, t) = setup(seed, n, i, h, o);
    let t = Labels::Classes(t.view());
    let (loss, grads) = net.gradient(x.view(), t);
    prop_assert!((loss - net.loss(x.view(), t)).abs() < 1e-12);
    let numeric = net.numerical_gradient(x.view(), t, H);
    let outcome = judge(
        &grads,
        &numeric,
        &kinks(&net, x.view(), H),
        Tolerance::for_dtype::<f64>(),
    );
    for p in &outcome.params {
        prop_assert!(p.passed(), "{}: {:?}", p.judged.name, p.judged.worst);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn backprop_matches_numerical_on_random_nets(
        seed in any::<u64>(), n in 1..=8usize, i in 1..=12usize, h in 1..=12usize, o in 2..=10usize
    ) {
        check(seed, n, i, h, o)?;
    }
}

#[test]
fn parallel_numerical_gradient_equals_serial_bit_for_bit() {
    let (net, x, t) = setup(3, 5, 20, 9, 4);
    let t = Labels::Classes(t.view());
    let par = net.numerical_gradient(x.view(), t, H);
    let ser = net.numerical_gradient_serial(x.view(), t, H);
    let bits = |p: &two_layer_net::Params<f64>| {
        p.named()
            .map(|(_, _, v)| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    assert_eq!(bits(&par), bits(&ser));
}

#[test]
fn f32_backprop_agrees_with_f64_numerical_as_a_smoke_check() {
    // f32 numerical gradients are too noisy to judge tightly (DLFS §4.3.1);
    // instead, f32 backprop is compared with the f64 numerical gradient of the
    // same net, to f32 precision.
    let (net64, x64, t) = setup(11, 4, 10, 6, 3);
    let mut net32 = TwoLayerNet::<f32>::from_params(two_layer_net::Params {
        w1: net64.params().w1.mapv(|v| v as f32),
        b1: net64.params().b1.mapv(|v| v as f32),
        w2: net64.params().w2.mapv(|v| v as f32),
        b2: net64.params().b2.mapv(|v| v as f32),
    });
    let (_, g32) = net32.gradient(x64.mapv(|v| v as f32).view(), Labels::Classes(t.view()));
    let numeric = net64.numerical_gradient(x64.view(), Labels::Classes(t.view()), H);
    let mut report = GradCheckReport::default();
    let tol = Tolerance::for_dtype::<f32>();
    for ((name, shape, a), (_, _, n)) in g32.named().into_iter().zip(numeric.named()) {
        let a =
            ArrayD::from_shape_vec(shape.clone(), a.into_iter().map(f64::from).collect()).unwrap();
        let n = ArrayD::from_shape_vec(shape, n).unwrap();
        report.add(name, a.view(), n.view(), tol);
    }
    assert!(report.passed(), "{report}");
    // And much closer than the f32 tolerance: f32 rounding is about 1e-7.
    assert!(report.params.iter().all(|p| p.max_abs < 1e-5), "{report}");
}
