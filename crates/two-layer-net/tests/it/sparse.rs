//! The first layer's sparse input path through the network and its training:
//! `train_step` against `gradient` + `sgd_step`, the sparse path against the
//! dense one and the numerical gradient, sparse batches against dense ones,
//! and `train` against a replay of its own steps and evaluations.
//!
//! Except in the last test (real MNIST), the inputs are byte images made up
//! here, mostly zeros like MNIST's: test inputs for these checks, not a
//! stand-in for MNIST.

use std::ops::ControlFlow;

use core_layers::functions::argmax_rows;
use core_layers::sparse::{InputPath, SPARSE_MAX_DENSITY};
use core_layers::{Input, Labels, SparseRows};
use ndarray::{Array1, Array2, NdFloat};
use numerical_grad::{H, Tolerance};
use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use two_layer_net::gradcheck::{judge, kinks};
use two_layer_net::{
    EpochRecord, Event, Examples, History, ImageSet, Params, TrainConfig, TwoLayerNet, accuracy,
    count_correct, train,
};

use crate::real_data::mnist;
use crate::real_data_selected;

/// Pixels per made-up image and classes.
const FEATURES: usize = 20;
const CLASSES: usize = 3;

/// `n` byte images of `features` pixels in `classes` classes, mostly zeros:
/// class `c` lights each pixel of its own window (`features / classes`
/// pixels) with probability 0.6 and every other pixel with probability
/// `noise`, at a brightness drawn from 1..=255. About 25 % of the pixels of
/// 20-pixel images are nonzero for `noise = 0.05`: the Auto rule picks the
/// sparse path.
fn sparse_images(n: usize, features: usize, noise: f64, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let window = features / CLASSES;
    let mut pixels = Vec::with_capacity(n * features);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.random_range(0..CLASSES);
        labels.push(c as u8);
        for j in 0..features {
            let p = if j / window == c { 0.6 } else { noise };
            pixels.push(if rng.random_bool(p) {
                rng.random_range(1..=255u8)
            } else {
                0
            });
        }
    }
    (pixels, labels)
}

/// The bits of every parameter, in the order of `PARAM_NAMES`.
fn param_bits<A: NdFloat>(p: &Params<A>) -> Vec<Vec<u64>> {
    p.named()
        .iter()
        .map(|(_, _, v)| v.iter().map(|x| x.to_f64().unwrap().to_bits()).collect())
        .collect()
}

/// A dense batch (`ImageSet::batch_into`) and the same batch in sparse form
/// (`SparseImages::batch_into`), with the labels.
fn batches<A: NdFloat>(
    images: ImageSet<'_>,
    idx: &[usize],
) -> (Array2<A>, SparseRows<A>, Array1<usize>) {
    let mut x = Array2::zeros((idx.len(), images.features()));
    let mut t = Array1::zeros(idx.len());
    images.batch_into(idx, x.view_mut(), &mut t);
    let mut s = SparseRows::new(images.features());
    let mut t2 = Array1::zeros(idx.len());
    images
        .to_sparse(InputPath::Sparse)
        .expect("narrow images convert")
        .batch_into(idx, &mut s, &mut t2);
    assert_eq!(t, t2);
    (x, s, t)
}

/// How the batches of a `train_step` test are handed to the net.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// `SparseRows`.
    Sparse,
    /// A dense array, to a net on `InputPath::Auto` (which converts it: the images are sparse).
    DenseAuto,
    /// A dense array, to a net on `InputPath::Dense` (the gemm).
    DenseDense,
    /// Sparse and dense (gemm) in turn, so that each step reuses the
    /// gradient buffers the other product wrote.
    Alternating,
}

fn check_train_step<A: NdFloat>(form: Form) {
    let (pixels, labels) = sparse_images(64, FEATURES, 0.05, 1);
    let images = ImageSet::new(&pixels, &labels, FEATURES);
    let mut stepped =
        TwoLayerNet::<A>::new(FEATURES, 8, CLASSES, 0.3, &mut StdRng::seed_from_u64(2));
    let path = match form {
        Form::Sparse | Form::DenseAuto => InputPath::Auto,
        Form::DenseDense | Form::Alternating => InputPath::Dense,
    };
    stepped.set_input_path(path);
    let mut by_gradient = stepped.clone();
    let lr = A::from(0.3).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    for step in 0..6 {
        let idx: Vec<usize> = (0..10).map(|_| rng.random_range(0..images.len())).collect();
        let (x, s, t) = batches::<A>(images, &idx);
        let sparse = match form {
            Form::Sparse => true,
            Form::DenseAuto => {
                assert!(
                    InputPath::Auto.sparse_for(x.view()),
                    "the batch is sparse enough"
                );
                false
            }
            Form::DenseDense => false,
            Form::Alternating => step % 2 == 0,
        };
        let input = || {
            if sparse {
                Input::Sparse(&s)
            } else {
                Input::Dense(x.view())
            }
        };
        let t = Labels::Classes(t.view());
        let before = stepped.loss(input(), t);
        let loss = stepped.train_step(input(), t, lr);
        let (loss_g, grads) = by_gradient.gradient(input(), t);
        by_gradient.sgd_step(&grads, lr);
        let what = format!("{form:?}, {}, step {step}", std::any::type_name::<A>());
        assert_eq!(
            loss.to_f64().unwrap().to_bits(),
            loss_g.to_f64().unwrap().to_bits(),
            "{what}"
        );
        assert_eq!(
            param_bits(&stepped.params()),
            param_bits(&by_gradient.params()),
            "{what}"
        );
        // The loss of the forward pass, before the update.
        assert_eq!(
            loss.to_f64().unwrap().to_bits(),
            before.to_f64().unwrap().to_bits(),
            "{what}"
        );
    }
    // The steps moved the parameters.
    let start = TwoLayerNet::<A>::new(FEATURES, 8, CLASSES, 0.3, &mut StdRng::seed_from_u64(2));
    assert_ne!(stepped.params(), start.params());
}

#[test]
fn train_step_equals_gradient_then_sgd_step_bit_for_bit() {
    for form in [
        Form::Sparse,
        Form::DenseAuto,
        Form::DenseDense,
        Form::Alternating,
    ] {
        check_train_step::<f32>(form);
        check_train_step::<f64>(form);
    }
}

/// A 20-8-3 net with weights of std 0.5, a batch of 10 made-up images, and
/// the net with each path.
fn small_case() -> (
    TwoLayerNet<f64>,
    Array2<f64>,
    SparseRows<f64>,
    Array1<usize>,
) {
    let (pixels, labels) = sparse_images(10, FEATURES, 0.05, 4);
    let images = ImageSet::new(&pixels, &labels, FEATURES);
    let idx: Vec<usize> = (0..10).collect();
    let (x, s, t) = batches::<f64>(images, &idx);
    let net = TwoLayerNet::<f64>::new(FEATURES, 8, CLASSES, 0.5, &mut StdRng::seed_from_u64(5));
    (net, x, s, t)
}

#[test]
fn sparse_and_dense_paths_agree_on_predict_and_loss() {
    let (net, x, s, t) = small_case();
    let t = Labels::Classes(t.view());
    let mut sparse = net.clone();
    sparse.set_input_path(InputPath::Sparse);
    let mut dense = net.clone();
    dense.set_input_path(InputPath::Dense);
    assert!(InputPath::Auto.sparse_for(x.view()));
    let p_sparse = sparse.predict(x.view());
    let p_dense = dense.predict(x.view());
    // Scores of order 1 from sums of 20 terms of order 1: a few ulps.
    approx::assert_abs_diff_eq!(p_sparse, p_dense, epsilon = 1e-12);
    assert!(
        p_sparse.iter().any(|v| v.abs() > 0.1),
        "scores are not trivially 0"
    );
    approx::assert_abs_diff_eq!(
        sparse.loss(x.view(), t),
        dense.loss(x.view(), t),
        epsilon = 1e-12
    );
    // The same path from either input form, and Auto picks it: the same bits.
    assert_eq!(sparse.predict(&s), p_sparse);
    assert_eq!(net.predict(x.view()), p_sparse);
    assert_eq!(
        dense.predict(&s),
        p_sparse,
        "a sparse input takes the sparse path"
    );
    assert_eq!(sparse.loss(&s, t), sparse.loss(x.view(), t));
    assert_eq!(sparse.correct(&s, t), dense.correct(x.view(), t));
    // f32: the same to f32 precision.
    let net32 = TwoLayerNet::<f32>::from_params(Params {
        w1: net.params().w1.mapv(|v| v as f32),
        b1: net.params().b1.mapv(|v| v as f32),
        w2: net.params().w2.mapv(|v| v as f32),
        b2: net.params().b2.mapv(|v| v as f32),
    });
    let s32 = SparseRows::from_dense(x.mapv(|v| v as f32).view());
    let mut dense32 = net32.clone();
    dense32.set_input_path(InputPath::Dense);
    approx::assert_abs_diff_eq!(
        net32.predict(&s32),
        dense32.predict(x.mapv(|v| v as f32).view()),
        epsilon = 1e-5
    );
}

#[test]
fn backprop_on_the_sparse_path_matches_numerical_and_the_dense_path() {
    let (net, x, s, t) = small_case();
    let t = Labels::Classes(t.view());
    let mut sparse = net.clone();
    sparse.set_input_path(InputPath::Sparse);
    let (loss, grads) = sparse.gradient(&s, t);
    assert_eq!(loss, sparse.loss(&s, t));
    let numeric = sparse.numerical_gradient(&s, t, H);
    let outcome = judge(
        &grads,
        &numeric,
        &kinks(&sparse, x.view(), H),
        Tolerance::for_dtype::<f64>(),
    );
    for p in &outcome.params {
        assert!(p.passed(), "{}: {:?}", p.judged.name, p.judged.worst);
        assert!(p.judged.len > 0);
    }
    // A dense input on the Sparse path is converted once: the same numbers.
    let numeric_dense_input = sparse.numerical_gradient(x.view(), t, H);
    assert_eq!(param_bits(&numeric_dense_input), param_bits(&numeric));
    // The dense path: the same gradients up to the order of additions.
    let mut dense = net.clone();
    dense.set_input_path(InputPath::Dense);
    let (dense_loss, dense_grads) = dense.gradient(x.view(), t);
    approx::assert_abs_diff_eq!(loss, dense_loss, epsilon = 1e-12);
    for ((name, _, a), (_, _, b)) in grads.named().iter().zip(dense_grads.named().iter()) {
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() <= 1e-12, "{name}: sparse {a}, dense {b}");
        }
    }
    assert!(
        grads.w1.iter().any(|&g| g.abs() > 1e-3),
        "W1's gradient is not trivially 0"
    );
}

#[test]
fn parallel_numerical_gradient_equals_serial_bit_for_bit_on_the_sparse_path() {
    let (net, x, s, t) = small_case();
    let t = Labels::Classes(t.view());
    assert_eq!(net.input_path(), InputPath::Auto);
    assert!(net.input_path().sparse_for(x.view()));
    let par = net.numerical_gradient(x.view(), t, H);
    let ser = net.numerical_gradient_serial(x.view(), t, H);
    assert_eq!(param_bits(&par), param_bits(&ser));
    let par_s = net.numerical_gradient(&s, t, H);
    let ser_s = net.numerical_gradient_serial(&s, t, H);
    assert_eq!(param_bits(&par_s), param_bits(&ser_s));
    assert_eq!(param_bits(&par_s), param_bits(&par));
}

fn check_batch_into<A: NdFloat>(
    pixels: &[u8],
    labels: &[u8],
    idx_lists: &[Vec<usize>],
) -> Result<(), TestCaseError> {
    let images = ImageSet::new(pixels, labels, FEATURES);
    let sparse = images
        .to_sparse(InputPath::Sparse)
        .expect("Sparse always converts");
    prop_assert_eq!(sparse.len(), images.len());
    // One SparseRows for all the lists: each call starts it afresh.
    let mut s = SparseRows::<A>::new(FEATURES);
    for idx in idx_lists {
        let mut x = Array2::<A>::from_elem((idx.len(), FEATURES), A::nan());
        let mut t = Array1::from_elem(idx.len(), usize::MAX);
        images.batch_into(idx, x.view_mut(), &mut t);
        let mut t_s = Array1::from_elem(idx.len(), usize::MAX);
        sparse.batch_into(idx, &mut s, &mut t_s);
        prop_assert_eq!(&t_s, &t);
        prop_assert_eq!((s.nrows(), s.ncols()), (idx.len(), FEATURES));
        let nonzero = idx
            .iter()
            .flat_map(|&i| &pixels[i * FEATURES..][..FEATURES])
            .filter(|&&p| p != 0)
            .count();
        prop_assert_eq!(s.nnz(), nonzero);
        let d = s.to_dense();
        for ((at, a), b) in d.indexed_iter().zip(x.iter()) {
            prop_assert!(
                a.to_f64().unwrap().to_bits() == b.to_f64().unwrap().to_bits(),
                "{}: at {:?}, sparse {:?}, dense {:?}",
                std::any::type_name::<A>(),
                at,
                a,
                b
            );
        }
        // Every stored value is nonzero (a zero byte is not an entry).
        for n in 0..s.nrows() {
            prop_assert!(s.row(n).1.iter().all(|&v| v != A::zero()));
        }
    }
    Ok(())
}

prop_compose! {
    /// 1 to 40 made-up images and index lists over them, repeats included
    /// (the second list repeats the first's first index).
    fn batch_case()(n in 1..=40usize, seed in any::<u64>(), noise in 0.0..0.5f64)
        (lists in prop::collection::vec(prop::collection::vec(0..n, 0..=25), 1..=3),
         n in Just(n), seed in Just(seed), noise in Just(noise))
        -> (Vec<u8>, Vec<u8>, Vec<Vec<usize>>)
    {
        let (pixels, labels) = sparse_images(n, FEATURES, noise, seed);
        let mut lists = lists;
        if let Some(&first) = lists[0].first() {
            lists.push(vec![first, first, first]);
        }
        (pixels, labels, lists)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sparse_batches_equal_dense_batches((pixels, labels, lists) in batch_case()) {
        check_batch_into::<f32>(&pixels, &labels, &lists)?;
        check_batch_into::<f64>(&pixels, &labels, &lists)?;
    }
}

#[test]
fn to_sparse_follows_the_path_and_the_density() {
    let (sparse_pixels, labels) = sparse_images(30, FEATURES, 0.05, 6);
    let sparse_set = ImageSet::new(&sparse_pixels, &labels, FEATURES);
    let dense_pixels: Vec<u8> = (0..30 * FEATURES).map(|i| (i % 250 + 1) as u8).collect();
    let dense_set = ImageSet::new(&dense_pixels, &labels, FEATURES);
    assert!(sparse_set.to_sparse(InputPath::Auto).is_some());
    assert!(sparse_set.to_sparse(InputPath::Sparse).is_some());
    assert!(sparse_set.to_sparse(InputPath::Dense).is_none());
    assert!(dense_set.to_sparse(InputPath::Auto).is_none());
    assert!(dense_set.to_sparse(InputPath::Dense).is_none());
    assert!(dense_set.to_sparse(InputPath::Sparse).is_some());
    for (set, path, sparse) in [
        (sparse_set, InputPath::Auto, true),
        (sparse_set, InputPath::Dense, false),
        (dense_set, InputPath::Auto, false),
        (dense_set, InputPath::Sparse, true),
    ] {
        let ex = Examples::new(set, path);
        assert_eq!(ex.is_sparse(), sparse, "{path:?}");
        assert_eq!(ex.len(), 30);
    }
    // Dense images in sparse form still give the dense batches.
    let idx = [3, 1, 3, 29];
    let (x, s, _) = batches::<f32>(dense_set, &idx);
    assert_eq!(s.to_dense(), x);
    assert_eq!(s.nnz(), 4 * FEATURES);
}

/// `to_sparse` under Auto decides as the first layer would for the whole
/// set as one dense batch, either side of the threshold: `k` of 20 pixels
/// lit in every image, 0.3 being 6 of 20 (both compute the same quotient
/// `nnz / len`, so they agree at the threshold too, e.g. for 9, 17 or 33
/// images, where `0.3 · len` rounds below `nnz`).
#[test]
fn to_sparse_auto_agrees_with_the_layer_rule_either_side_of_the_threshold() {
    for n in [1, 3, 7, 9, 10, 17, 33, 100, 1000] {
        for k in [5, 6, 7] {
            let pixels: Vec<u8> = (0..n * 20)
                .map(|i| if i % 20 < k { 9 } else { 0 })
                .collect();
            let labels = vec![0u8; n];
            let set = ImageSet::new(&pixels, &labels, 20);
            let mut x = Array2::<f32>::zeros((n, 20));
            set.batch_into(
                &(0..n).collect::<Vec<_>>(),
                x.view_mut(),
                &mut Array1::zeros(n),
            );
            assert_eq!(
                set.to_sparse(InputPath::Auto).is_some(),
                InputPath::Auto.sparse_for(x.view()),
                "{n} images with {k} of 20 pixels lit"
            );
            assert_eq!(
                InputPath::Auto.sparse_for(x.view()),
                k as f64 / 20.0 <= SPARSE_MAX_DENSITY
            );
        }
    }
}

/// Everything `train` reported, in the order it reported it.
#[derive(Debug, PartialEq)]
enum Seen {
    Iteration(usize, f64),
    Epoch(EpochRecord),
}

/// Data for the training tests: 48 made-up training images (batch 4: 12
/// iterations per epoch) and 300 test images, noisy enough that the
/// accuracies move from epoch to epoch.
struct Toy {
    train: (Vec<u8>, Vec<u8>),
    test: (Vec<u8>, Vec<u8>),
}

impl Toy {
    fn new() -> Self {
        Toy {
            train: sparse_images(48, FEATURES, 0.12, 7),
            test: sparse_images(300, FEATURES, 0.12, 8),
        }
    }

    fn sets(&self) -> (ImageSet<'_>, ImageSet<'_>) {
        (
            ImageSet::new(&self.train.0, &self.train.1, FEATURES),
            ImageSet::new(&self.test.0, &self.test.1, FEATURES),
        )
    }
}

const PER_EPOCH: usize = 12;

fn toy_config(iters: usize) -> TrainConfig {
    TrainConfig {
        iters,
        batch_size: 4,
        lr: 0.5,
    }
}

fn fresh_net<A: NdFloat>() -> TwoLayerNet<A> {
    TwoLayerNet::new(FEATURES, 6, CLASSES, 0.5, &mut StdRng::seed_from_u64(11))
}

/// `train` on the toy data for `iters` iterations (sampling seed 12), with
/// the training set in the given form; the test set is dense bytes.
fn run_toy<A: NdFloat>(
    toy: &Toy,
    path: InputPath,
    iters: usize,
) -> (History, Vec<Seen>, TwoLayerNet<A>) {
    let (train_set, test_set) = toy.sets();
    let train_ex = Examples::new(train_set, path);
    let test_ex = Examples::new(test_set, InputPath::Dense);
    let mut net = fresh_net::<A>();
    let mut seen = Vec::new();
    let history = train(
        &mut net,
        &train_ex,
        &test_ex,
        &toy_config(iters),
        &mut StdRng::seed_from_u64(12),
        |e| {
            seen.push(match e {
                Event::Iteration { iter, loss } => Seen::Iteration(iter, loss),
                Event::Epoch(r) => Seen::Epoch(*r),
            });
            ControlFlow::Continue(())
        },
    )
    .expect("the toy problem does not diverge");
    (history, seen, net)
}

/// `train` is a loop of `train_step`s on batches drawn as documented: replay
/// it by hand and compare every loss (the pre-update loss of each batch,
/// which `net.loss` computes before the step) and the final parameters.
fn check_replay<A: NdFloat>(path: InputPath) {
    let toy = Toy::new();
    let iters = 30;
    let (history, _, trained) = run_toy::<A>(&toy, path, iters);
    let (train_set, _) = toy.sets();
    let train_ex = Examples::new(train_set, path);
    assert_eq!(train_ex.is_sparse(), path != InputPath::Dense);
    let mut net = fresh_net::<A>();
    let mut rng = StdRng::seed_from_u64(12);
    let lr = A::from(toy_config(iters).lr).unwrap();
    let mut losses = Vec::new();
    for iter in 0..iters {
        let idx: Vec<usize> = (0..4)
            .map(|_| rng.random_range(0..train_set.len()))
            .collect();
        let (x, s, t) = batches::<A>(train_set, &idx);
        let t = Labels::Classes(t.view());
        let input = if train_ex.is_sparse() {
            Input::Sparse(&s)
        } else {
            Input::Dense(x.view())
        };
        let before = net.loss(input, t);
        let loss = net.train_step(input, t, lr);
        assert_eq!(
            loss.to_f64().unwrap().to_bits(),
            before.to_f64().unwrap().to_bits(),
            "iteration {iter}"
        );
        assert_eq!(
            history.losses[iter].to_bits(),
            before.to_f64().unwrap().to_bits(),
            "{path:?}, iteration {iter}"
        );
        losses.push(before.to_f64().unwrap());
    }
    assert_eq!(history.losses, losses);
    assert_eq!(param_bits(&trained.params()), param_bits(&net.params()));
}

#[test]
fn train_records_the_pre_update_losses_of_its_own_steps() {
    for path in [InputPath::Auto, InputPath::Sparse, InputPath::Dense] {
        check_replay::<f32>(path);
        check_replay::<f64>(path);
    }
}

/// The events of a run: every iteration once and in order, with the
/// history's losses; the history's epoch records in order, each delivered
/// right after the event of the iteration where the next evaluation is due
/// (`PER_EPOCH` later), or after the last iteration's: a fixed place,
/// whatever the evaluation thread's timing.
fn check_events(seen: &[Seen], history: &History, iters: usize) {
    let iterations: Vec<(usize, f64)> = seen
        .iter()
        .filter_map(|e| match e {
            Seen::Iteration(i, loss) => Some((*i, *loss)),
            Seen::Epoch(_) => None,
        })
        .collect();
    assert_eq!(
        iterations.iter().map(|e| e.0).collect::<Vec<_>>(),
        (0..iters).collect::<Vec<_>>()
    );
    assert_eq!(
        iterations.iter().map(|e| e.1).collect::<Vec<_>>(),
        history.losses
    );
    let epochs: Vec<EpochRecord> = seen
        .iter()
        .filter_map(|e| match e {
            Seen::Epoch(r) => Some(*r),
            Seen::Iteration(..) => None,
        })
        .collect();
    assert_eq!(epochs, history.epochs);
    for r in &history.epochs {
        let at = seen.iter().position(|e| e == &Seen::Epoch(*r)).unwrap();
        let last_iteration_before = seen[..at]
            .iter()
            .rev()
            .find_map(|e| match e {
                Seen::Iteration(i, _) => Some(*i),
                Seen::Epoch(_) => None,
            })
            .unwrap();
        let expected = (r.iter + PER_EPOCH).min(iters - 1);
        assert_eq!(
            last_iteration_before, expected,
            "epoch {} (iteration {}) delivered after iteration {last_iteration_before}",
            r.epoch, r.iter
        );
    }
}

/// `(epoch, iteration)` of each evaluation in `history`.
fn epoch_iterations(history: &History) -> Vec<(usize, usize)> {
    history.epochs.iter().map(|e| (e.epoch, e.iter)).collect()
}

/// A `Break` on an epoch's event stops every run at the same iteration: the
/// one where that epoch was delivered (epoch 1, measured at iteration 12,
/// is delivered at iteration 24, where epoch 2 would have started).
#[test]
fn a_break_on_an_epoch_stops_at_the_same_iteration_every_time() {
    let toy = Toy::new();
    let (train_set, test_set) = toy.sets();
    let run = || {
        let train_ex = Examples::new(train_set, InputPath::Auto);
        let test_ex = Examples::new(test_set, InputPath::Dense);
        let mut net = fresh_net::<f32>();
        let history = train(
            &mut net,
            &train_ex,
            &test_ex,
            &toy_config(10 * PER_EPOCH),
            &mut StdRng::seed_from_u64(12),
            |e| match e {
                Event::Epoch(r) if r.epoch == 1 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            },
        )
        .expect("the toy problem does not diverge");
        (history, param_bits(&net.params()))
    };
    let (history, params) = run();
    assert_eq!(history.losses.len(), 2 * PER_EPOCH + 1);
    assert_eq!(epoch_iterations(&history), [(0, 0), (1, PER_EPOCH)]);
    for _ in 0..5 {
        assert_eq!(run(), (history.clone(), params.clone()));
    }
}

/// Epochs at iterations 0, 12, 24 and 36 of a 37-iteration run; each one's
/// accuracies must be those of the net after that iteration's update, i.e.
/// of a net trained for exactly that many iterations plus one, computed
/// after the fact; two runs give the same history and parameters.
fn check_epochs<A: NdFloat>(path: InputPath) {
    let toy = Toy::new();
    let (train_set, test_set) = toy.sets();
    let iters = 3 * PER_EPOCH + 1;
    assert_eq!(
        toy_config(iters).iters_per_epoch(train_set.len()),
        PER_EPOCH
    );
    let (history, seen, net) = run_toy::<A>(&toy, path, iters);
    let (again, seen_again, net_again) = run_toy::<A>(&toy, path, iters);
    assert_eq!(history, again);
    assert_eq!(param_bits(&net.params()), param_bits(&net_again.params()));
    check_events(&seen, &history, iters);
    check_events(&seen_again, &history, iters);
    assert_eq!(
        epoch_iterations(&history),
        [(0, 0), (1, 12), (2, 24), (3, 36)]
    );

    let train_ex = Examples::new(train_set, path);
    let test_ex = Examples::new(test_set, InputPath::Dense);
    // The last epoch was measured at the last iteration: the final net.
    let last = history.epochs.last().unwrap();
    assert_eq!(last.train_acc, accuracy(&net, &train_ex));
    assert_eq!(last.test_acc, accuracy(&net, &test_ex));
    // The others: nets trained for exactly iter + 1 iterations, whose runs
    // are prefixes of the long one.
    for r in &history.epochs[..3] {
        let (short, _, short_net) = run_toy::<A>(&toy, path, r.iter + 1);
        assert_eq!(short.losses[..], history.losses[..=r.iter]);
        assert_eq!(short.epochs[..], history.epochs[..=r.epoch]);
        assert_eq!(
            r.train_acc,
            accuracy(&short_net, &train_ex),
            "epoch {}",
            r.epoch
        );
        assert_eq!(
            r.test_acc,
            accuracy(&short_net, &test_ex),
            "epoch {}",
            r.epoch
        );
        assert_eq!(
            count_correct(&short_net, &test_ex),
            (r.test_acc * 300.0).round() as usize
        );
    }
    // The check can tell one iteration from the next: the net before some
    // epoch's update (trained `iter` iterations) scores differently.
    let before_update = history.epochs[1..].iter().any(|r| {
        let (_, _, net) = run_toy::<A>(&toy, path, r.iter);
        accuracy(&net, &test_ex) != r.test_acc
    });
    assert!(
        before_update,
        "every epoch scores the same before its update"
    );
    // And the test accuracy moved during training.
    let test_accs: Vec<f64> = history.epochs.iter().map(|e| e.test_acc).collect();
    assert!(
        test_accs.windows(2).any(|w| w[0] != w[1]),
        "test accuracies {test_accs:?}"
    );
}

#[test]
fn train_is_repeatable_and_its_epochs_are_the_accuracies_of_that_iteration() {
    for path in [InputPath::Sparse, InputPath::Dense] {
        check_epochs::<f32>(path);
        check_epochs::<f64>(path);
    }
}

#[test]
fn a_break_stops_training_and_the_pending_evaluation_is_still_reported() {
    let toy = Toy::new();
    let (train_set, test_set) = toy.sets();
    let train_ex = Examples::new(train_set, InputPath::Auto);
    let test_ex = Examples::new(test_set, InputPath::Auto);
    assert!(train_ex.is_sparse() && test_ex.is_sparse());
    let mut net = fresh_net::<f32>();
    let history = train(
        &mut net,
        &train_ex,
        &test_ex,
        &toy_config(100),
        &mut StdRng::seed_from_u64(12),
        |e| match e {
            Event::Iteration { iter: 14, .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        },
    )
    .unwrap();
    assert_eq!(history.losses.len(), 15);
    assert_eq!(
        history.epochs.iter().map(|e| e.iter).collect::<Vec<_>>(),
        [0, 12]
    );
    let (long, _, _) = run_toy::<f32>(&toy, InputPath::Auto, 100);
    assert_eq!(history.losses[..], long.losses[..15]);
    assert_eq!(history.epochs[..], long.epochs[..2]);
}

/// `count_correct` works in blocks of 1,000 rows on rayon's threads with
/// buffers reused per thread: over 2,345 rows (a partial last block) it
/// counts what one prediction on the whole set counts.
#[test]
fn count_correct_over_blocks_equals_one_whole_batch() {
    let (pixels, labels) = sparse_images(2345, FEATURES, 0.3, 13);
    let images = ImageSet::new(&pixels, &labels, FEATURES);
    let idx: Vec<usize> = (0..images.len()).collect();
    let (x, s, t) = batches::<f64>(images, &idx);
    let t = Labels::Classes(t.view());
    let mut net =
        TwoLayerNet::<f64>::new(FEATURES, 8, CLASSES, 0.5, &mut StdRng::seed_from_u64(14));
    let sparse_ex = Examples::new(images, InputPath::Sparse);
    let whole = net.correct(&s, t);
    assert!(
        (1..2345).contains(&whole),
        "{whole} correct: not trivially all or none"
    );
    assert_eq!(count_correct(&net, &sparse_ex), whole);
    assert_eq!(accuracy(&net, &sparse_ex), whole as f64 / 2345.0);
    net.set_input_path(InputPath::Dense);
    let dense_ex = Examples::new(images, InputPath::Dense);
    assert!(!dense_ex.is_sparse());
    assert_eq!(count_correct(&net, &dense_ex), net.correct(x.view(), t));
}

/// On real MNIST: the training pixels are 18-20 % nonzero (counted here
/// from the bytes), so Auto keeps both sets in sparse form; and a net
/// trained 300 steps classifies the same examples with the sparse path as
/// with the dense gemm.
#[test]
fn mnist_is_sparse_and_both_paths_count_the_same_correct_examples() {
    if !real_data_selected("mnist_is_sparse_and_both_paths_count_the_same_correct_examples") {
        return;
    }
    let data = mnist();
    let pixels = data.train.images();
    let nonzero = pixels.iter().filter(|&&p| p != 0).count();
    let density = nonzero as f64 / pixels.len() as f64;
    assert!(
        (0.18..0.20).contains(&density),
        "MNIST training density {density}"
    );
    let train_set = ImageSet::new(data.train.images(), data.train.labels(), 784);
    let test_set = ImageSet::new(data.test.images(), data.test.labels(), 784);
    let mut rng = StdRng::seed_from_u64(21);
    let mut net = TwoLayerNet::<f32>::new(784, 50, 10, 0.01, &mut rng);
    assert_eq!(net.input_path(), InputPath::Auto);
    let (train_ex, test_ex) = (
        Examples::new(train_set, InputPath::Auto),
        Examples::new(test_set, InputPath::Auto),
    );
    assert!(train_ex.is_sparse() && test_ex.is_sparse());
    let config = TrainConfig {
        iters: 300,
        ..TrainConfig::book()
    };
    train(&mut net, &train_ex, &test_ex, &config, &mut rng, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let mut dense_net = net.snapshot();
    dense_net.set_input_path(InputPath::Dense);
    for (name, ex, set) in [
        ("train", &train_ex, train_set),
        ("test", &test_ex, test_set),
    ] {
        let dense_ex = Examples::new(set, InputPath::Dense);
        let sparse = count_correct(&net, ex);
        // Auto on dense batches of MNIST takes the sparse path too: the same bits.
        assert_eq!(count_correct(&net, &dense_ex), sparse, "{name}");
        let dense = count_correct(&dense_net, &dense_ex);
        println!(
            "MNIST {name}: density {density:.4}, sparse path {sparse} correct, dense gemm {dense}"
        );
        // The two paths add the same products in different orders, so their
        // logits differ by rounding: a prediction may differ only where the
        // gemm's two best logits are that close (a near-tie).
        let mut disagree = 0;
        for start in (0..set.len()).step_by(1000) {
            let idx: Vec<usize> = (start..(start + 1000).min(set.len())).collect();
            let mut x = Array2::<f32>::zeros((idx.len(), 784));
            set.batch_into(&idx, x.view_mut(), &mut Array1::zeros(idx.len()));
            let by_sparse = argmax_rows(net.predict(x.view()).view());
            let logits = dense_net.predict(x.view());
            for ((&a, &b), row) in by_sparse
                .iter()
                .zip(&argmax_rows(logits.view()))
                .zip(logits.rows())
            {
                if a != b {
                    disagree += 1;
                    let margin = (row[a] - row[b]).abs();
                    assert!(
                        margin < 1e-4,
                        "{name}: classes {a} (sparse) and {b} (gemm) {margin} apart"
                    );
                }
            }
        }
        assert!(
            sparse.abs_diff(dense) <= disagree,
            "{name}: sparse path {sparse} correct, dense gemm {dense}, {disagree} predictions differ"
        );
        assert!(
            sparse as f64 > 0.8 * set.len() as f64,
            "{name}: {sparse} of {}",
            set.len()
        );
    }
}
