//! The layers with a [`Layer`] implementation: [`Relu`], [`Sigmoid`], [`Affine`].

use ndarray::{
    Array1, Array2, ArrayD, ArrayView, ArrayView1, ArrayView2, Axis, Dimension, IxDyn, NdFloat,
    Zip, linalg::general_mat_mul,
};

use crate::functions::{affine, relu, sigmoid};
use crate::sparse::{
    InputPath, SparseRows, TransposeScratch, sparse_affine, sparse_sgd_with, sparse_t_dot_with,
    sparse_t_dot_zeroed_with,
};
use crate::{Input, Layer};

/// Panics unless `dout` has the shape of the layer's last output.
#[track_caller]
fn check_dout(layer: &str, dout: (usize, usize), out: (usize, usize)) {
    assert!(
        dout == out,
        "{layer}::backward: dout has shape [{}, {}] but the forward output had shape [{}, {}]",
        dout.0,
        dout.1,
        out.0,
        out.1
    );
}

/// The ReLU layer (DLFS §5.5.1): `y = max(0, x)`.
///
/// Derivative: 1 where `x > 0`, 0 elsewhere (the Heaviside function; at
/// exactly 0 the book, and this layer, take 0). `forward` caches the mask
/// `x > 0`; `backward` passes `dout` through the mask.
///
/// # Shapes
///
/// - `x`, output, `dout`, `dx`: `[N, D]`.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::{Layer, Relu};
/// let mut relu = Relu::default();
/// let y = relu.forward(array![[1.0, -0.5], [-2.0, 3.0]].view());
/// assert_eq!(y, array![[1.0, 0.0], [0.0, 3.0]]);
/// let dx = relu.backward(array![[10.0, 10.0], [10.0, 10.0]].view());
/// assert_eq!(dx, array![[10.0, 0.0], [0.0, 10.0]]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Relu {
    mask: Option<Array2<bool>>,
}

impl<A: NdFloat> Layer<A> for Relu {
    fn forward(&mut self, x: ArrayView2<'_, A>) -> Array2<A> {
        self.mask = Some(x.mapv(|v| v > A::zero()));
        relu(x)
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayView2<'_, A>) -> Array2<A> {
        let mask = self
            .mask
            .as_ref()
            .expect("Relu::backward called before forward");
        check_dout("Relu", dout.dim(), mask.dim());
        Zip::from(&dout)
            .and(mask)
            .map_collect(|&d, &keep| if keep { d } else { A::zero() })
    }
}

/// The sigmoid layer (DLFS §5.5.2): `y = 1 / (1 + e⁻ˣ)`.
///
/// Derivative: `∂y/∂x = y (1 − y)`, so `forward` caches only the output `y`
/// and `backward` returns `dout · (1 − y) · y`.
///
/// # Shapes
///
/// - `x`, output, `dout`, `dx`: `[N, D]`.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::{Layer, Sigmoid};
/// let mut sigmoid = Sigmoid::default();
/// let y = sigmoid.forward(array![[0.0_f64]].view());
/// assert_eq!(y, array![[0.5]]);
/// assert_eq!(sigmoid.backward(array![[1.0]].view()), array![[0.25]]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Sigmoid<A> {
    out: Option<Array2<A>>,
}

impl<A: NdFloat> Layer<A> for Sigmoid<A> {
    fn forward(&mut self, x: ArrayView2<'_, A>) -> Array2<A> {
        let y = sigmoid(x);
        self.out = Some(y.clone());
        y
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayView2<'_, A>) -> Array2<A> {
        let y = self
            .out
            .as_ref()
            .expect("Sigmoid::backward called before forward");
        check_dout("Sigmoid", dout.dim(), y.dim());
        Zip::from(&dout)
            .and(y)
            .map_collect(|&d, &y| d * (A::one() - y) * y)
    }
}

/// Gradients of an [`Affine`] layer's parameters, from its last `backward`.
#[derive(Clone, Debug, PartialEq)]
pub struct AffineGrads<A> {
    /// `∂L/∂W = xᵀ·dout`, shape `[I, O]`.
    pub dw: Array2<A>,
    /// `∂L/∂b = Σₙ dout[n, ..]`, shape `[O]`.
    pub db: Array1<A>,
}

/// What [`Affine`] keeps of its input for the backward pass.
#[derive(Clone, Debug)]
enum CachedInput<A> {
    Dense(Array2<A>),
    Sparse(SparseRows<A>),
}

impl<A: NdFloat> CachedInput<A> {
    fn nrows(&self) -> usize {
        match self {
            CachedInput::Dense(x) => x.nrows(),
            CachedInput::Sparse(x) => x.nrows(),
        }
    }
}

/// The affine layer (DLFS §5.6): `y = x·W + b`.
///
/// Derivatives: `∂L/∂x = dout·Wᵀ`, `∂L/∂W = xᵀ·dout`, and `∂L/∂b` is the sum
/// of `dout` over the batch. The products go through BLAS when the `blas`
/// feature is on (`Wᵀ` and `xᵀ` are transposed views, passed to gemm as
/// `CblasTrans`, never copied).
///
/// An input with few nonzeros (at most
/// [`SPARSE_MAX_DENSITY`](crate::sparse::SPARSE_MAX_DENSITY) of its entries,
/// like an MNIST batch) takes the exact sparse path instead: `x·W` and
/// `xᵀ·dout` are computed from the nonzero entries only (see
/// [`crate::sparse`]). [`set_input_path`](Affine::set_input_path) changes
/// the rule; [`forward_sparse`](Affine::forward_sparse) takes an input that
/// is already sparse.
///
/// `W` has the book's `[in, out]` layout; PyTorch's `nn.Linear` and candle's
/// `Linear` store the transpose, `[out, in]`.
///
/// # Shapes
///
/// - `x`: `[N, I]`, or any `[N, ...]` through [`Affine::forward_nd`], which
///   flattens it to `[N, I]` (DLFS §5.7's tensor-input Affine).
/// - `W`: `[I, O]`, `b`: `[O]`, output and `dout`: `[N, O]`.
/// - `dx`: the shape of `x`.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::{Affine, Layer};
/// let mut affine = Affine::new(array![[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]], array![1.0, 2.0, 3.0]);
/// let y = affine.forward(array![[1.0, 1.0], [2.0, 0.0]].view());
/// assert_eq!(y, array![[2.0, 3.0, 8.0], [3.0, 2.0, 7.0]]);
/// let dx = affine.backward(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].view());
/// assert_eq!(dx, array![[7.0, 11.0], [16.0, 23.0]]);
/// assert_eq!(affine.grads().unwrap().db, array![5.0, 7.0, 9.0]);
/// ```
#[derive(Clone, Debug)]
pub struct Affine<A> {
    w: Array2<A>,
    b: Array1<A>,
    x: Option<CachedInput<A>>,
    x_shape: Option<Vec<usize>>,
    grads: Option<AffineGrads<A>>,
    path: InputPath,
    /// Buffers of the sparse backward pass, reused from step to step.
    scratch: TransposeScratch<A>,
}

impl<A: NdFloat> Affine<A> {
    /// An affine layer with weights `w` (`[I, O]`) and bias `b` (`[O]`).
    ///
    /// # Panics
    ///
    /// If `b` does not have one entry per column of `w`.
    #[track_caller]
    pub fn new(w: Array2<A>, b: Array1<A>) -> Self {
        assert!(
            b.len() == w.ncols(),
            "Affine::new: b has shape {:?} but W has shape {:?}: b needs {} entries, one per column of W",
            b.shape(),
            w.shape(),
            w.ncols()
        );
        Affine {
            w,
            b,
            x: None,
            x_shape: None,
            grads: None,
            path: InputPath::Auto,
            scratch: TransposeScratch::default(),
        }
    }

    /// The weights, `[I, O]`.
    pub fn w(&self) -> ArrayView2<'_, A> {
        self.w.view()
    }

    /// The bias, `[O]`.
    pub fn b(&self) -> ArrayView1<'_, A> {
        self.b.view()
    }

    /// The parameter gradients of the last `backward`, or `None` before the first.
    pub fn grads(&self) -> Option<&AffineGrads<A>> {
        self.grads.as_ref()
    }

    /// Moves the parameter gradients of the last `backward` out of the layer
    /// (`None` before the first, and after a take).
    pub fn take_grads(&mut self) -> Option<AffineGrads<A>> {
        self.grads.take()
    }

    /// Mutable access to `(W, b)`, e.g. for an SGD update.
    pub fn params_mut(&mut self) -> (&mut Array2<A>, &mut Array1<A>) {
        (&mut self.w, &mut self.b)
    }

    /// Gives back `(W, b)`.
    pub fn into_params(self) -> (Array2<A>, Array1<A>) {
        (self.w, self.b)
    }

    /// The backward pass without `dx`: only `dW` and `db`, kept in
    /// [`grads`](Affine::grads).
    ///
    /// For a first layer, whose input is data, `dx = dout·Wᵀ` is a product
    /// as large as `dW` that nobody reads.
    ///
    /// # Panics
    ///
    /// As [`Layer::backward`].
    #[track_caller]
    pub fn backward_params(&mut self, dout: ArrayView2<'_, A>) {
        let x = self
            .x
            .as_ref()
            .expect("Affine::backward called before forward");
        check_dout("Affine", dout.dim(), (x.nrows(), self.w.ncols()));
        // The last gradients' buffers are overwritten, unless they were taken.
        let (mut g, zeroed) = match self.grads.take() {
            Some(g) if g.dw.dim() == self.w.dim() => (g, false),
            _ => (
                AffineGrads {
                    dw: Array2::zeros(self.w.dim()),
                    db: Array1::zeros(self.w.ncols()),
                },
                true,
            ),
        };
        let scratch = &mut self.scratch;
        match x {
            // `x.t().dot(&dout)`, into the buffer (beta = 0 overwrites it).
            CachedInput::Dense(x) => general_mat_mul(A::one(), &x.t(), &dout, A::zero(), &mut g.dw),
            // A new buffer is zeros already: only the used rows are written.
            CachedInput::Sparse(x) if zeroed => {
                sparse_t_dot_zeroed_with(x, dout, g.dw.view_mut(), scratch)
            }
            CachedInput::Sparse(x) => sparse_t_dot_with(x, dout, g.dw.view_mut(), scratch),
        }
        g.db.assign(&dout.sum_axis(Axis(0)));
        self.grads = Some(g);
    }

    /// The backward pass without `dx`, and an SGD step, in one:
    /// `W ← W − lr · xᵀ·dout`, `b ← b − lr · Σₙ dout`. The same numbers as
    /// [`backward_params`](Affine::backward_params) then
    /// [`sgd_step`](Affine::sgd_step); for a sparse input the update is fused
    /// into the product and `dW` is never stored, so afterwards
    /// [`grads`](Affine::grads) is `None`.
    ///
    /// # Panics
    ///
    /// As [`Layer::backward`].
    #[track_caller]
    pub fn backward_sgd(&mut self, dout: ArrayView2<'_, A>, lr: A) {
        match &self.x {
            Some(CachedInput::Sparse(x)) => {
                check_dout("Affine", dout.dim(), (x.nrows(), self.w.ncols()));
                sparse_sgd_with(x, dout, self.w.view_mut(), lr, &mut self.scratch);
                self.b.scaled_add(-lr, &dout.sum_axis(Axis(0)));
                self.grads = None;
            }
            _ => {
                self.backward_params(dout);
                self.sgd_step(lr);
            }
        }
    }

    /// One SGD step with the gradients of the last backward pass:
    /// `W ← W − lr · dW`, `b ← b − lr · db`.
    ///
    /// # Panics
    ///
    /// If there are no gradients (no backward pass since the last
    /// [`take_grads`](Affine::take_grads)).
    #[track_caller]
    pub fn sgd_step(&mut self, lr: A) {
        let g = self
            .grads
            .as_ref()
            .expect("Affine::sgd_step called without gradients");
        self.w.scaled_add(-lr, &g.dw);
        self.b.scaled_add(-lr, &g.db);
    }

    /// Forward pass for an input already in sparse form (the sparse path,
    /// whatever its density). The input is kept for the backward pass.
    ///
    /// # Panics
    ///
    /// If `x` does not have one column per row of `W`.
    #[track_caller]
    pub fn forward_sparse(&mut self, x: SparseRows<A>) -> Array2<A> {
        let out = sparse_affine(&x, self.w.view(), self.b.view());
        self.x_shape = Some(vec![x.nrows(), x.ncols()]);
        self.x = Some(CachedInput::Sparse(x));
        out
    }

    /// Forward pass for a dense or sparse [`Input`]. The input is copied for
    /// the backward pass, into the buffers of the last one where they fit.
    ///
    /// # Panics
    ///
    /// If `x` does not have one column per row of `W`.
    #[track_caller]
    pub fn forward_input(&mut self, x: Input<'_, A>) -> Array2<A> {
        match x {
            Input::Dense(x) => self.forward(x),
            Input::Sparse(x) => {
                let out = sparse_affine(x, self.w.view(), self.b.view());
                match &mut self.x {
                    Some(CachedInput::Sparse(cached)) => cached.clone_from(x),
                    cached => *cached = Some(CachedInput::Sparse(x.clone())),
                }
                self.x_shape = Some(vec![x.nrows(), x.ncols()]);
                out
            }
        }
    }

    /// Sets which product a dense input goes through (default [`InputPath::Auto`]).
    pub fn set_input_path(&mut self, path: InputPath) {
        self.path = path;
    }

    /// Which product a dense input goes through.
    pub fn input_path(&self) -> InputPath {
        self.path
    }

    /// Takes back the sparse input of the last forward pass (e.g. to reuse
    /// its buffers for the next batch); `None` if it was dense or is gone.
    /// Call it after the backward pass, which needs the input.
    pub fn take_sparse_input(&mut self) -> Option<SparseRows<A>> {
        match self.x.take() {
            Some(CachedInput::Sparse(x)) => Some(x),
            other => {
                self.x = other;
                None
            }
        }
    }

    /// Whether the last forward pass took the sparse path (`None` before the first).
    pub fn took_sparse_path(&self) -> Option<bool> {
        self.x.as_ref().map(|x| matches!(x, CachedInput::Sparse(_)))
    }

    /// The dense forward pass, or the sparse one when `x` has few nonzeros.
    #[track_caller]
    fn forward_dense(&mut self, x: ArrayView2<'_, A>, shape: Vec<usize>) -> Array2<A> {
        if self.path.sparse_for(x) {
            let out = self.forward_sparse(SparseRows::from_dense(x));
            self.x_shape = Some(shape);
            return out;
        }
        let out = affine(x, self.w.view(), self.b.view());
        match &mut self.x {
            Some(CachedInput::Dense(cached)) if cached.dim() == x.dim() => cached.assign(&x),
            cached => *cached = Some(CachedInput::Dense(x.to_owned())),
        }
        self.x_shape = Some(shape);
        out
    }

    /// Forward pass for an input with any number of axes, `[N, ...]`.
    ///
    /// The input is flattened to `[N, I]` with `I` the product of the other
    /// axes (e.g. `N×1×28×28` becomes `N×784`), and
    /// [`backward_nd`](Affine::backward_nd) gives `dx` back in the original shape.
    ///
    /// # Panics
    ///
    /// If `x` has no axes, or its flattened width differs from the rows of `W`.
    #[track_caller]
    pub fn forward_nd<D: Dimension>(&mut self, x: ArrayView<'_, A, D>) -> Array2<A> {
        assert!(
            x.ndim() >= 1,
            "Affine::forward_nd: x is a scalar; it needs a batch axis"
        );
        let shape = x.shape().to_vec();
        let n = shape[0];
        let rest: usize = shape[1..].iter().product();
        assert!(
            rest == self.w.nrows(),
            "Affine::forward_nd: x has shape {:?} ({} features per example) but W has shape {:?}",
            shape,
            rest,
            self.w.shape()
        );
        let flat = x
            .to_shape((n, rest))
            .expect("a contiguous copy can always be reshaped");
        self.forward_dense(flat.view(), shape)
    }

    /// Backward pass after [`forward_nd`](Affine::forward_nd): `dx` in the input's shape.
    ///
    /// # Panics
    ///
    /// As [`Layer::backward`].
    #[track_caller]
    pub fn backward_nd(&mut self, dout: ArrayView2<'_, A>) -> ArrayD<A> {
        let dx = self.backward(dout);
        let shape = self
            .x_shape
            .clone()
            .expect("Affine::backward called before forward");
        dx.into_shape_with_order(IxDyn(&shape))
            .expect("dx has as many elements as the input had")
    }
}

impl<A: NdFloat> Layer<A> for Affine<A> {
    #[track_caller]
    fn forward(&mut self, x: ArrayView2<'_, A>) -> Array2<A> {
        self.forward_dense(x, x.shape().to_vec())
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayView2<'_, A>) -> Array2<A> {
        self.backward_params(dout);
        dout.dot(&self.w.t())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array4, array};

    #[test]
    fn relu_backward_zeroes_negative_and_zero_inputs() {
        let mut relu = Relu::default();
        let x = array![[1.0_f64, -0.5, 0.0], [-2.0, 3.0, 1e-300]];
        let before = x.clone();
        relu.forward(x.view());
        assert_eq!(x, before);
        let dx = relu.backward(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].view());
        assert_eq!(dx, array![[1.0, 0.0, 0.0], [0.0, 5.0, 6.0]]);
    }

    #[test]
    fn sigmoid_backward_uses_the_cached_output() {
        let mut s = Sigmoid::default();
        let y = s.forward(array![[0.0_f64, 2.0], [-1.0, 1000.0]].view());
        let dx = s.backward(array![[1.0, 2.0], [3.0, 4.0]].view());
        for ((&d, &y), &dout) in dx.iter().zip(y.iter()).zip([1.0, 2.0, 3.0, 4.0].iter()) {
            assert_eq!(d, dout * (1.0 - y) * y);
        }
        assert_eq!(dx[[0, 0]], 0.25);
        assert_eq!(dx[[1, 1]], 0.0);
    }

    #[test]
    fn affine_backward_gives_dx_dw_db() {
        // Python (NumPy) that produced the literals:
        //   x = np.array([[1., 2.], [3., 4.]]); W = np.array([[1., 0., -1.], [2., 1., 0.]])
        //   dout = np.array([[1., 2., 3.], [4., 5., 6.]])
        //   dout @ W.T  -> [[-2., 4.], [-2., 13.]]
        //   x.T @ dout  -> [[13., 17., 21.], [18., 24., 30.]]
        //   dout.sum(0) -> [5., 7., 9.]
        let mut affine = Affine::new(
            array![[1.0_f64, 0.0, -1.0], [2.0, 1.0, 0.0]],
            array![0.1, 0.2, 0.3],
        );
        affine.forward(array![[1.0, 2.0], [3.0, 4.0]].view());
        let dx = affine.backward(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].view());
        assert_eq!(dx, array![[-2.0, 4.0], [-2.0, 13.0]]);
        let grads = affine.grads().unwrap();
        assert_eq!(grads.dw, array![[13.0, 17.0, 21.0], [18.0, 24.0, 30.0]]);
        assert_eq!(grads.db, array![5.0, 7.0, 9.0]);
    }

    #[test]
    fn backward_params_gives_the_same_gradients_as_backward() {
        let mut a = Affine::new(
            array![[1.0_f64, 0.0, -1.0], [2.0, 1.0, 0.0]],
            array![0.1, 0.2, 0.3],
        );
        let mut b = a.clone();
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        let dout = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        a.forward(x.view());
        b.forward(x.view());
        a.backward(dout.view());
        b.backward_params(dout.view());
        assert_eq!(a.grads(), b.grads());
    }

    #[test]
    fn affine_flattens_image_batches_and_restores_dx_shape() {
        let x = Array4::from_shape_fn((2, 1, 2, 3), |(n, _, i, j)| (n * 6 + i * 3 + j) as f32);
        let w = Array2::from_shape_fn((6, 2), |(i, o)| if o == 0 { 1.0 } else { i as f32 });
        let mut affine = Affine::new(w, array![0.0, 1.0]);
        let y = affine.forward_nd(x.view());
        // Row n of x flattened is 6n..6n+6: sum = 36n + 15, Σ i·x_i = 36n·... computed directly.
        let flat = x.to_shape((2, 6)).unwrap();
        for n in 0..2 {
            let sum: f32 = flat.row(n).sum();
            let weighted: f32 = flat
                .row(n)
                .iter()
                .enumerate()
                .map(|(i, v)| i as f32 * v)
                .sum();
            assert_eq!(y.row(n), array![sum, weighted + 1.0]);
        }
        let dx = affine.backward_nd(array![[1.0, 0.0], [0.0, 1.0]].view());
        assert_eq!(dx.shape(), &[2, 1, 2, 3]);
        assert_eq!(
            dx.iter().copied().collect::<Vec<_>>(),
            vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
    }

    #[test]
    #[should_panic(
        expected = "x has shape [2, 1, 2, 2] (4 features per example) but W has shape [6, 2]"
    )]
    fn affine_nd_names_both_shapes() {
        let mut affine = Affine::new(Array2::<f32>::zeros((6, 2)), Array1::zeros(2));
        affine.forward_nd(Array4::<f32>::zeros((2, 1, 2, 2)).view());
    }

    #[test]
    #[should_panic(expected = "Affine::backward called before forward")]
    fn affine_backward_before_forward_is_a_bug() {
        let mut affine = Affine::new(Array2::<f32>::zeros((3, 2)), Array1::zeros(2));
        affine.backward(Array2::zeros((1, 2)).view());
    }

    #[test]
    #[should_panic(
        expected = "Relu::backward: dout has shape [2, 2] but the forward output had shape [1, 2]"
    )]
    fn relu_backward_names_both_shapes() {
        let mut relu = Relu::default();
        Layer::<f64>::forward(&mut relu, Array2::zeros((1, 2)).view());
        Layer::<f64>::backward(&mut relu, Array2::zeros((2, 2)).view());
    }
}
