//! `TwoLayerNet` (DLFS §5.7.2): Affine → Relu → Affine → SoftmaxWithLoss.

use core_layers::functions::{affine, argmax_rows, check_targets, relu};
use core_layers::sparse::{InputPath, affine_input};
use core_layers::{
    Affine, Input, Labels, Layer, Relu, SoftmaxWithLoss, SparseRows, softmax_cross_entropy,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, NdFloat};
use numerical_grad::{numerical_gradient, numerical_gradient_par};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;
use rand_distr::StandardNormal;

/// The book's default standard deviation of the initial weights, `0.01`.
pub const WEIGHT_INIT_STD: f64 = 0.01;

/// The four parameters of a [`TwoLayerNet`], or four arrays shaped like them
/// (its gradients). Weights have the book's `[in, out]` layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<A> {
    /// First-layer weights, `[input, hidden]`.
    pub w1: Array2<A>,
    /// First-layer bias, `[hidden]`.
    pub b1: Array1<A>,
    /// Second-layer weights, `[hidden, output]`.
    pub w2: Array2<A>,
    /// Second-layer bias, `[output]`.
    pub b2: Array1<A>,
}

/// The names the book gives the parameters, in order: `W1`, `b1`, `W2`, `b2`.
pub const PARAM_NAMES: [&str; 4] = ["W1", "b1", "W2", "b2"];

impl<A: NdFloat> Params<A> {
    /// The parameters as `(name, shape, values in row-major order)`, in the
    /// order of [`PARAM_NAMES`].
    pub fn named(&self) -> [(&'static str, Vec<usize>, Vec<A>); 4] {
        [
            (
                "W1",
                self.w1.shape().to_vec(),
                self.w1.iter().copied().collect(),
            ),
            ("b1", self.b1.shape().to_vec(), self.b1.to_vec()),
            (
                "W2",
                self.w2.shape().to_vec(),
                self.w2.iter().copied().collect(),
            ),
            ("b2", self.b2.shape().to_vec(), self.b2.to_vec()),
        ]
    }

    /// Number of scalar parameters: `I·H + H + H·O + O` (39,760 for 784-50-10).
    pub fn len(&self) -> usize {
        self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    /// Whether there are no parameters at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The two-layer network of DLFS §5.7.2.
///
/// `predict(x) = relu(x·W1 + b1)·W2 + b2`; the loss is the mean cross-entropy
/// of the softmax of that (see [`SoftmaxWithLoss`] for why it is computed
/// from a log-softmax). [`gradient`](TwoLayerNet::gradient) is backprop
/// through the layers; [`numerical_gradient`](TwoLayerNet::numerical_gradient)
/// is the central-difference reference.
///
/// # Shapes
///
/// - `x`: `[N, input]`; targets: one-hot `[N, output]` or class indices `[N]`.
/// - `predict(x)`: `[N, output]` scores (before softmax).
///
/// ```
/// # use rand::{SeedableRng, rngs::StdRng};
/// # use core_layers::Labels;
/// # use two_layer_net::TwoLayerNet;
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut net = TwoLayerNet::<f64>::new(4, 3, 2, 0.01, &mut rng);
/// let x = ndarray::array![[1.0, 0.0, 0.5, 0.25]];
/// let t = ndarray::array![1];
/// // Tiny initial weights make the scores nearly equal: the loss is close to ln 2.
/// assert!((net.loss(x.view(), Labels::Classes(t.view())) - 2f64.ln()).abs() < 1e-3);
/// let (_loss, grads) = net.gradient(x.view(), Labels::Classes(t.view()));
/// assert_eq!(grads.w1.shape(), &[4, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct TwoLayerNet<A> {
    affine1: Affine<A>,
    relu1: Relu,
    affine2: Affine<A>,
    last_layer: SoftmaxWithLoss<A>,
}

impl<A: NdFloat> TwoLayerNet<A> {
    /// A fresh network: `W = weight_init_std · N(0, 1)`, `b = 0` (DLFS §5.7.2).
    ///
    /// The normal draws are made in `f64` and rounded to `A`, so the same `rng`
    /// state gives the same network in `f32` and `f64` up to rounding.
    ///
    /// # Panics
    ///
    /// If a size is zero.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(
        input_size: usize,
        hidden_size: usize,
        output_size: usize,
        weight_init_std: f64,
        rng: &mut R,
    ) -> Self {
        assert!(
            input_size > 0 && hidden_size > 0 && output_size > 0,
            "TwoLayerNet::new: sizes must be positive, got {input_size}, {hidden_size}, {output_size}"
        );
        let mut normal = |shape: (usize, usize)| {
            Array2::from_shape_simple_fn(shape, || {
                let z: f64 = rng.sample(StandardNormal);
                A::from(weight_init_std * z).expect("a weight is representable")
            })
        };
        let w1 = normal((input_size, hidden_size));
        let w2 = normal((hidden_size, output_size));
        Self::from_params(Params {
            w1,
            b1: Array1::zeros(hidden_size),
            w2,
            b2: Array1::zeros(output_size),
        })
    }

    /// A network with the given parameters.
    ///
    /// # Panics
    ///
    /// If the shapes do not chain: `b1` must have one entry per column of
    /// `W1`, `W2` one row per column of `W1`, `b2` one entry per column of `W2`.
    #[track_caller]
    pub fn from_params(p: Params<A>) -> Self {
        assert!(
            p.w2.nrows() == p.w1.ncols(),
            "TwoLayerNet::from_params: W1 has shape {:?} but W2 has shape {:?}: W2 needs {} rows",
            p.w1.shape(),
            p.w2.shape(),
            p.w1.ncols()
        );
        let mut affine2 = Affine::new(p.w2, p.b2);
        // The ReLU output is about half zeros, but for a product this small
        // (N×50 by 50×10) converting it costs more than the sparse path
        // saves: dense, 3.1 µs forward and 2.5 µs for dW2 at batch 100;
        // sparse, 8.5 and 20 µs (BENCHMARKS.md).
        affine2.set_input_path(InputPath::Dense);
        TwoLayerNet {
            affine1: Affine::new(p.w1, p.b1),
            relu1: Relu::default(),
            affine2,
            last_layer: SoftmaxWithLoss::default(),
        }
    }

    /// `(input, hidden, output)` sizes.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let (i, h) = self.affine1.w().dim();
        (i, h, self.affine2.w().ncols())
    }

    /// Which product the first layer uses for a dense input (see
    /// [`Affine`]): by default the sparse path for mostly-zero inputs such as
    /// MNIST images. It applies to training, prediction and the numerical
    /// gradient alike.
    pub fn input_path(&self) -> InputPath {
        self.affine1.input_path()
    }

    /// Sets [`input_path`](TwoLayerNet::input_path).
    pub fn set_input_path(&mut self, path: InputPath) {
        self.affine1.set_input_path(path);
    }

    /// A network with a copy of the parameters and the same input path, and
    /// none of the layers' caches: what an evaluation needs.
    pub fn snapshot(&self) -> Self {
        let mut net = Self::from_params(self.params());
        net.set_input_path(self.input_path());
        net
    }

    /// A copy of the parameters.
    pub fn params(&self) -> Params<A> {
        Params {
            w1: self.affine1.w().to_owned(),
            b1: self.affine1.b().to_owned(),
            w2: self.affine2.w().to_owned(),
            b2: self.affine2.b().to_owned(),
        }
    }

    /// Gives back the parameters.
    pub fn into_params(self) -> Params<A> {
        let (w1, b1) = self.affine1.into_params();
        let (w2, b2) = self.affine2.into_params();
        Params { w1, b1, w2, b2 }
    }

    /// The scores `relu(x·W1 + b1)·W2 + b2`, `[N, output]` (DLFS `predict`).
    ///
    /// # Panics
    ///
    /// If `x` does not have `input` columns.
    #[track_caller]
    pub fn predict<'x>(&self, x: impl Into<Input<'x, A>>) -> Array2<A>
    where
        A: 'x,
    {
        let path = self.input_path();
        let h = relu(affine_input(x.into(), self.affine1.w(), self.affine1.b(), path).view());
        affine(h.view(), self.affine2.w(), self.affine2.b())
    }

    /// The mean cross-entropy loss of `softmax(predict(x))` against `t`.
    ///
    /// # Panics
    ///
    /// If `x` or `t` do not fit the network.
    #[track_caller]
    pub fn loss<'x>(&self, x: impl Into<Input<'x, A>>, t: Labels<'_, A>) -> A
    where
        A: 'x,
    {
        softmax_cross_entropy(self.predict(x).view(), t)
    }

    /// The fraction of rows whose highest score is the target class (DLFS `accuracy`).
    ///
    /// # Panics
    ///
    /// If `x` or `t` do not fit the network.
    #[track_caller]
    pub fn accuracy<'x>(&self, x: impl Into<Input<'x, A>>, t: Labels<'_, A>) -> f64
    where
        A: 'x,
    {
        let x = x.into();
        let n = x.nrows();
        if n == 0 {
            return 0.0;
        }
        self.correct(x, t) as f64 / n as f64
    }

    /// The number of rows whose highest score is the target class.
    ///
    /// # Panics
    ///
    /// If `x` or `t` do not fit the network.
    #[track_caller]
    pub fn correct<'x>(&self, x: impl Into<Input<'x, A>>, t: Labels<'_, A>) -> usize
    where
        A: 'x,
    {
        let scores = self.predict(x);
        check_targets("TwoLayerNet::accuracy", scores.dim(), &t);
        let y = argmax_rows(scores.view());
        match t {
            Labels::Classes(t) => y.iter().zip(t.iter()).filter(|(a, b)| a == b).count(),
            Labels::OneHot(t) => y
                .iter()
                .zip(argmax_rows(t).iter())
                .filter(|(a, b)| a == b)
                .count(),
        }
    }

    /// Backprop (DLFS §5.7.2 `gradient`): the loss and `∂L/∂(W1, b1, W2, b2)`.
    ///
    /// # Panics
    ///
    /// If `x` or `t` do not fit the network.
    #[track_caller]
    pub fn gradient<'x>(&mut self, x: impl Into<Input<'x, A>>, t: Labels<'_, A>) -> (A, Params<A>)
    where
        A: 'x,
    {
        let a1 = self.affine1.forward_input(x.into());
        let loss = self.backprop_from(a1, t, None);
        // Moved out, not copied: nothing else reads them.
        let g1 = self.affine1.take_grads().expect("backward just ran");
        let g2 = self.affine2.take_grads().expect("backward just ran");
        let grads = Params {
            w1: g1.dw,
            b1: g1.db,
            w2: g2.dw,
            b2: g2.db,
        };
        (loss, grads)
    }

    /// One training step: backprop on `(x, t)`, then `p ← p − lr · ∂L/∂p`.
    /// Returns the loss of the forward pass (before the update).
    ///
    /// The same numbers as [`gradient`](TwoLayerNet::gradient) followed by
    /// [`sgd_step`](TwoLayerNet::sgd_step), but the gradients stay in the
    /// layers, whose buffers the next step reuses.
    ///
    /// # Panics
    ///
    /// If `x` or `t` do not fit the network.
    #[track_caller]
    pub fn train_step<'x>(&mut self, x: impl Into<Input<'x, A>>, t: Labels<'_, A>, lr: A) -> A
    where
        A: 'x,
    {
        let a1 = self.affine1.forward_input(x.into());
        let loss = self.backprop_from(a1, t, Some(lr));
        self.affine2.sgd_step(lr);
        loss
    }

    /// [`train_step`](TwoLayerNet::train_step) on a sparse batch that is
    /// handed to the first layer, not copied, and handed back after the
    /// step (for the next batch to be written into).
    ///
    /// # Panics
    ///
    /// If `x` or `t` do not fit the network.
    #[track_caller]
    pub fn train_step_sparse(
        &mut self,
        x: SparseRows<A>,
        t: Labels<'_, A>,
        lr: A,
    ) -> (A, SparseRows<A>) {
        let a1 = self.affine1.forward_sparse(x);
        let loss = self.backprop_from(a1, t, Some(lr));
        self.affine2.sgd_step(lr);
        let x = self
            .affine1
            .take_sparse_input()
            .expect("the first layer holds the sparse input it was given");
        (loss, x)
    }

    /// Forward and backward passes after the first layer's forward pass;
    /// the gradients are left in the layers. With `sgd = Some(lr)` the first
    /// layer also takes its SGD step (fused into its backward pass); the
    /// second layer's is left to the caller.
    #[track_caller]
    fn backprop_from(&mut self, a1: Array2<A>, t: Labels<'_, A>, sgd: Option<A>) -> A {
        let z1 = self.relu1.forward(a1.view());
        let a2 = self.affine2.forward(z1.view());
        let loss = self.last_layer.forward(a2.view(), t);

        let da2 = self.last_layer.backward();
        let dz1 = self.affine2.backward(da2.view());
        let da1 = self.relu1.backward(dz1.view());
        // The input is data: its gradient dx = da1·W1ᵀ would be thrown away.
        match sgd {
            Some(lr) => self.affine1.backward_sgd(da1.view(), lr),
            None => self.affine1.backward_params(da1.view()),
        }
        loss
    }

    /// One SGD step: `p ← p − lr · ∂L/∂p` for each parameter (DLFS §5.7.4).
    ///
    /// # Panics
    ///
    /// If `grads` does not have the parameters' shapes.
    #[track_caller]
    pub fn sgd_step(&mut self, grads: &Params<A>, lr: A) {
        // `scaled_add` would broadcast a wrongly shaped gradient silently.
        let (w1, b1) = self.affine1.params_mut();
        check_grad_shape("W1", w1.shape(), grads.w1.shape());
        check_grad_shape("b1", b1.shape(), grads.b1.shape());
        w1.scaled_add(-lr, &grads.w1);
        b1.scaled_add(-lr, &grads.b1);
        let (w2, b2) = self.affine2.params_mut();
        check_grad_shape("W2", w2.shape(), grads.w2.shape());
        check_grad_shape("b2", b2.shape(), grads.b2.shape());
        w2.scaled_add(-lr, &grads.w2);
        b2.scaled_add(-lr, &grads.b2);
    }

    /// The central-difference gradient of the loss (DLFS §4.5 `numerical_gradient`),
    /// evaluated on rayon's thread pool; the same values, bit for bit, as
    /// [`numerical_gradient_serial`](TwoLayerNet::numerical_gradient_serial).
    ///
    /// Costs two forward passes per parameter. With the `blas` feature, call
    /// `core_layers::blas::set_num_threads(1)` first so that OpenBLAS and
    /// rayon do not fight over the cores (and so that every product is
    /// computed by one thread, the same way in every worker).
    #[track_caller]
    pub fn numerical_gradient<'x>(
        &self,
        x: impl Into<Input<'x, A>>,
        t: Labels<'_, A>,
        h: A,
    ) -> Params<A>
    where
        A: Send + Sync + 'x,
    {
        self.numerical_gradient_counted(x, t, h, &AtomicUsize::new(0))
    }

    /// As [`numerical_gradient`](TwoLayerNet::numerical_gradient), adding 1
    /// to `evals` after every loss evaluation (`2 · params().len()` in all),
    /// so that another thread can show progress.
    #[track_caller]
    pub fn numerical_gradient_counted<'x>(
        &self,
        x: impl Into<Input<'x, A>>,
        t: Labels<'_, A>,
        h: A,
        evals: &AtomicUsize,
    ) -> Params<A>
    where
        A: Send + Sync + 'x,
    {
        let path = self.input_path();
        let sparse = sparse_once(x.into(), path);
        let x = sparse.input();
        let t = &t;
        let p = self.params();
        let (w1, b1, w2, b2) = (p.w1.view(), p.b1.view(), p.w2.view(), p.b2.view());
        let counted = |loss: A| {
            evals.fetch_add(1, Ordering::Relaxed);
            loss
        };
        Params {
            w1: numerical_gradient_par(|w1| counted(loss_of(x, t, w1, b1, w2, b2)), w1, h),
            b1: numerical_gradient_par(|b1| counted(loss_of(x, t, w1, b1, w2, b2)), b1, h),
            w2: numerical_gradient_par(|w2| counted(loss_of(x, t, w1, b1, w2, b2)), w2, h),
            b2: numerical_gradient_par(|b2| counted(loss_of(x, t, w1, b1, w2, b2)), b2, h),
        }
    }

    /// As [`numerical_gradient`](TwoLayerNet::numerical_gradient), on one thread.
    #[track_caller]
    pub fn numerical_gradient_serial<'x>(
        &self,
        x: impl Into<Input<'x, A>>,
        t: Labels<'_, A>,
        h: A,
    ) -> Params<A>
    where
        A: 'x,
    {
        let path = self.input_path();
        let sparse = sparse_once(x.into(), path);
        let x = sparse.input();
        let t = &t;
        let p = self.params();
        let (w1, b1, w2, b2) = (p.w1.view(), p.b1.view(), p.w2.view(), p.b2.view());
        Params {
            w1: numerical_gradient(|w1| loss_of(x, t, w1, b1, w2, b2), w1, h),
            b1: numerical_gradient(|b1| loss_of(x, t, w1, b1, w2, b2), b1, h),
            w2: numerical_gradient(|w2| loss_of(x, t, w1, b1, w2, b2), w2, h),
            b2: numerical_gradient(|b2| loss_of(x, t, w1, b1, w2, b2), b2, h),
        }
    }
}

#[track_caller]
fn check_grad_shape(name: &str, param: &[usize], grad: &[usize]) {
    assert!(
        param == grad,
        "TwoLayerNet::sgd_step: the gradient of {name} has shape {grad:?} but {name} has shape {param:?}"
    );
}

/// The input of a numerical gradient, converted to sparse form once (not
/// once per loss evaluation) when the first layer would take its sparse path.
enum OnceInput<'x, A> {
    Given(Input<'x, A>),
    Converted(SparseRows<A>),
}

impl<A: NdFloat> OnceInput<'_, A> {
    fn input(&self) -> Input<'_, A> {
        match self {
            // Re-borrowed: `Input` is not covariant in its lifetime.
            OnceInput::Given(Input::Dense(x)) => Input::Dense(x.view()),
            OnceInput::Given(Input::Sparse(x)) => Input::Sparse(x),
            OnceInput::Converted(x) => Input::Sparse(x),
        }
    }
}

fn sparse_once<A: NdFloat>(x: Input<'_, A>, path: InputPath) -> OnceInput<'_, A> {
    match x {
        Input::Dense(d) if path.sparse_for(d) => OnceInput::Converted(SparseRows::from_dense(d)),
        x => OnceInput::Given(x),
    }
}

/// The loss as a pure function of the parameters, for the numerical gradient:
/// a whole forward pass for every evaluation.
fn loss_of<A: NdFloat>(
    x: Input<'_, A>,
    t: &Labels<'_, A>,
    w1: ArrayView2<'_, A>,
    b1: ArrayView1<'_, A>,
    w2: ArrayView2<'_, A>,
    b2: ArrayView1<'_, A>,
) -> A {
    // A sparse input was converted once by the caller: `Dense` here only
    // means that the dense path was chosen.
    let h = relu(affine_input(x, w1, b1, InputPath::Dense).view());
    softmax_cross_entropy(affine(h.view(), w2, b2).view(), *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn init_follows_the_book() {
        let mut rng = StdRng::seed_from_u64(7);
        let net = TwoLayerNet::<f64>::new(784, 50, 10, 0.01, &mut rng);
        let p = net.params();
        assert_eq!(p.w1.shape(), &[784, 50]);
        assert_eq!(p.b1.shape(), &[50]);
        assert_eq!(p.w2.shape(), &[50, 10]);
        assert_eq!(p.b2.shape(), &[10]);
        assert_eq!(p.len(), 39_760);
        assert!(p.b1.iter().chain(p.b2.iter()).all(|&b| b == 0.0));
        // 39,200 draws of 0.01·N(0,1): the sample std is within 2% of 0.01
        // and the mean within 5 standard errors of 0.
        let n = p.w1.len() as f64;
        let mean = p.w1.sum() / n;
        let std = (p.w1.mapv(|w| (w - mean).powi(2)).sum() / n).sqrt();
        assert!((std - 0.01).abs() < 2e-4, "std {std}");
        assert!(mean.abs() < 5.0 * 0.01 / n.sqrt(), "mean {mean}");
    }

    #[test]
    fn same_seed_gives_the_same_net_in_f32_and_f64() {
        let a = TwoLayerNet::<f32>::new(5, 4, 3, 0.01, &mut StdRng::seed_from_u64(3)).params();
        let b = TwoLayerNet::<f64>::new(5, 4, 3, 0.01, &mut StdRng::seed_from_u64(3)).params();
        for (x, y) in a.w1.iter().zip(b.w1.iter()) {
            assert_eq!(*x, *y as f32);
        }
    }

    #[test]
    fn sgd_step_subtracts_lr_times_gradient() {
        let p = Params {
            w1: array![[1.0_f64, 2.0]],
            b1: array![0.5, -0.5],
            w2: array![[1.0], [1.0]],
            b2: array![0.0],
        };
        let mut net = TwoLayerNet::from_params(p.clone());
        let g = Params {
            w1: array![[10.0, -10.0]],
            b1: array![1.0, 1.0],
            w2: array![[2.0], [4.0]],
            b2: array![8.0],
        };
        net.sgd_step(&g, 0.5);
        let q = net.params();
        assert_eq!(q.w1, array![[-4.0, 7.0]]);
        assert_eq!(q.b1, array![0.0, -1.0]);
        assert_eq!(q.w2, array![[0.0], [-1.0]]);
        assert_eq!(q.b2, array![-4.0]);
    }

    /// W1 = I, W2 = I, b = 0: predict(x) = relu(x).
    fn identity_net() -> TwoLayerNet<f64> {
        TwoLayerNet::from_params(Params {
            w1: Array2::eye(3),
            b1: Array1::zeros(3),
            w2: Array2::eye(3),
            b2: Array1::zeros(3),
        })
    }

    #[test]
    fn accuracy_counts_argmax_hits_for_both_target_kinds() {
        let net = identity_net();
        let x = array![
            [1.0, 0.0, 0.0],
            [0.0, 2.0, 1.0],
            [0.0, 0.0, 3.0],
            [5.0, 0.0, 0.0]
        ];
        let t = array![0, 1, 0, 0];
        assert_eq!(net.accuracy(x.view(), Labels::Classes(t.view())), 0.75);
        let hot = Array2::from_shape_fn((4, 3), |(i, k)| if t[i] == k { 1.0 } else { 0.0 });
        assert_eq!(net.accuracy(x.view(), Labels::OneHot(hot.view())), 0.75);
    }

    #[test]
    #[should_panic(expected = "the gradient of b1 has shape [1] but b1 has shape [2]")]
    fn sgd_step_refuses_a_gradient_it_would_broadcast() {
        let p = Params {
            w1: array![[1.0_f64, 2.0]],
            b1: array![0.5, -0.5],
            w2: array![[1.0], [1.0]],
            b2: array![0.0],
        };
        let mut g = p.clone();
        g.b1 = array![1.0];
        TwoLayerNet::from_params(p).sgd_step(&g, 0.1);
    }

    #[test]
    #[should_panic(expected = "predictions have shape [2, 3] but targets are class indices [1]")]
    fn accuracy_refuses_targets_that_do_not_match() {
        let net = identity_net();
        net.accuracy(
            Array2::zeros((2, 3)).view(),
            Labels::Classes(array![0].view()),
        );
    }

    #[test]
    #[should_panic(expected = "W1 has shape [3, 4] but W2 has shape [5, 2]")]
    fn from_params_names_the_shapes_that_do_not_chain() {
        TwoLayerNet::from_params(Params {
            w1: Array2::<f32>::zeros((3, 4)),
            b1: Array1::zeros(4),
            w2: Array2::zeros((5, 2)),
            b2: Array1::zeros(2),
        });
    }
}
