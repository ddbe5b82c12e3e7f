//! Proptest strategies and the gradient-check helpers the property tests wrap.

use ndarray::{Array1, Array2, ArrayView2};
use numerical_grad::{GradDiff, H, Tolerance, check_gradient, numerical_gradient};
use proptest::prelude::*;

/// Memory layout of a generated matrix: ndarray hands both to BLAS (one as
/// `CblasTrans`), and a bug in either path must show up.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    C,
    F,
}

pub fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::C), Just(Layout::F)]
}

/// Builds a `rows × cols` matrix from row-major values in the given layout.
pub fn matrix(rows: usize, cols: usize, values: Vec<f64>, layout: Layout) -> Array2<f64> {
    let m = Array2::from_shape_vec((rows, cols), values).expect("rows * cols values");
    match layout {
        Layout::C => m,
        Layout::F => {
            let mut f = Array2::zeros((rows, cols).f());
            f.assign(&m);
            f
        }
    }
}

use ndarray::ShapeBuilder;

prop_compose! {
    /// A `rows × cols` matrix with entries in `[-2, 2]`, in C or F order.
    pub fn arb_matrix(rows: usize, cols: usize)
        (values in prop::collection::vec(-2.0..2.0f64, rows * cols), layout in layout())
        -> Array2<f64>
    {
        matrix(rows, cols, values, layout)
    }
}

prop_compose! {
    /// A matrix whose entries are at least `0.01` away from 0 (ReLU's kink):
    /// within `h` of 0 the central difference straddles the kink and is itself wrong.
    pub fn arb_matrix_off_zero(rows: usize, cols: usize)
        (magnitudes in prop::collection::vec(0.01..2.0f64, rows * cols),
         signs in prop::collection::vec(any::<bool>(), rows * cols),
         layout in layout())
        -> Array2<f64>
    {
        let values = magnitudes.iter().zip(&signs).map(|(&m, &s)| if s { m } else { -m }).collect();
        matrix(rows, cols, values, layout)
    }
}

prop_compose! {
    pub fn arb_vector(len: usize)(values in prop::collection::vec(-2.0..2.0f64, len)) -> Array1<f64> {
        Array1::from(values)
    }
}

/// Class indices and their one-hot rows, for `n` examples of `classes` classes.
#[derive(Clone, Debug)]
pub struct Targets {
    pub classes: Array1<usize>,
    pub one_hot: Array2<f64>,
    /// Whether the test should pass class indices (else one-hot rows).
    pub as_indices: bool,
}

prop_compose! {
    pub fn arb_targets(n: usize, classes: usize)
        (k in prop::collection::vec(0..classes, n), as_indices in any::<bool>())
        -> Targets
    {
        let one_hot = Array2::from_shape_fn((n, classes), |(i, c)| if k[i] == c { 1.0 } else { 0.0 });
        Targets { classes: Array1::from(k), one_hot, as_indices }
    }
}

impl Targets {
    pub fn labels(&self) -> core_layers::Labels<'_, f64> {
        if self.as_indices {
            core_layers::Labels::Classes(self.classes.view())
        } else {
            core_layers::Labels::OneHot(self.one_hot.view())
        }
    }
}

/// Shapes for the tests: batch `1..=8`, features `1..=12`.
pub fn batch() -> std::ops::RangeInclusive<usize> {
    1..=8
}

pub fn features() -> std::ops::RangeInclusive<usize> {
    1..=12
}

/// The f64 tolerance every gradient check uses (see [`Tolerance::for_dtype`]).
pub fn tol() -> Tolerance {
    Tolerance::for_dtype::<f64>()
}

/// Checks `analytic` against the numerical gradient of `f` at `x`, turning a
/// mismatch into a proptest failure that names the parameter and the worst element.
pub fn gradcheck<F>(
    name: &str,
    f: F,
    x: ArrayView2<'_, f64>,
    analytic: ArrayView2<'_, f64>,
) -> Result<GradDiff, TestCaseError>
where
    F: FnMut(ArrayView2<'_, f64>) -> f64,
{
    let numeric = numerical_gradient(f, x, H);
    check_gradient(name, analytic, numeric.view(), tol())
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

/// As [`gradcheck`] for a vector parameter.
pub fn gradcheck_1d<F>(
    name: &str,
    f: F,
    x: ndarray::ArrayView1<'_, f64>,
    analytic: ndarray::ArrayView1<'_, f64>,
) -> Result<GradDiff, TestCaseError>
where
    F: FnMut(ndarray::ArrayView1<'_, f64>) -> f64,
{
    let numeric = numerical_gradient(f, x, H);
    check_gradient(name, analytic, numeric.view(), tol())
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

/// `Σ out ⊙ r`: a scalar whose gradient with respect to `out` is `r`, so that a
/// layer's `backward(r)` is the gradient of this scalar through the layer.
pub fn weighted_sum(out: ArrayView2<'_, f64>, r: ArrayView2<'_, f64>) -> f64 {
    (&out * &r).sum()
}

/// Shapes for the sparse-path tests: the output width decides the kernels'
/// column blocks (1 below 8 columns, then 8, 16 for f64 and 32 for f32, the
/// last block shifted left to overlap when the width is not a multiple),
/// so it spans all of them; the input width is the number of candidate
/// entries per row.
pub fn sparse_batch() -> std::ops::RangeInclusive<usize> {
    1..=8
}

pub fn sparse_inputs() -> std::ops::RangeInclusive<usize> {
    1..=40
}

pub fn sparse_outputs() -> std::ops::RangeInclusive<usize> {
    1..=70
}

prop_compose! {
    /// A `rows × cols` matrix with entries in `[-2, 2]` of which a random
    /// fraction between 50 % and 90 % is set to exactly 0 (whole rows and
    /// columns of zeros included, for narrow shapes), in C or F order.
    pub fn arb_sparse_matrix(rows: usize, cols: usize)
        (values in prop::collection::vec(-2.0..2.0f64, rows * cols),
         draws in prop::collection::vec(0.0..1.0f64, rows * cols),
         zeros in 0.5..0.9f64,
         layout in layout())
        -> Array2<f64>
    {
        let values = values.iter().zip(&draws).map(|(&v, &d)| if d < zeros { 0.0 } else { v }).collect();
        matrix(rows, cols, values, layout)
    }
}

/// How a weight matrix is handed to a sparse kernel: the kernels copy any
/// non-standard view to standard layout first, and that copy must be right.
#[derive(Clone, Copy, Debug)]
pub enum WeightView {
    /// A row-major array.
    Standard,
    /// The transposed view of a row-major `[O, I]` array (column-major).
    Transposed,
    /// A view with its rows in reverse (negative row stride).
    RowsReversed,
}

pub fn weight_view() -> impl Strategy<Value = WeightView> {
    prop_oneof![
        Just(WeightView::Standard),
        Just(WeightView::Transposed),
        Just(WeightView::RowsReversed)
    ]
}

/// Storage for `w` such that [`WeightStore::view`] shows `w` with the given layout.
pub struct WeightStore {
    data: Array2<f64>,
    how: WeightView,
}

impl WeightStore {
    pub fn new(w: &Array2<f64>, how: WeightView) -> Self {
        let data = match how {
            WeightView::Standard => w.as_standard_layout().into_owned(),
            WeightView::Transposed => w.t().as_standard_layout().into_owned(),
            WeightView::RowsReversed => w
                .slice(ndarray::s![..;-1, ..])
                .as_standard_layout()
                .into_owned(),
        };
        WeightStore { data, how }
    }

    pub fn view(&self) -> ArrayView2<'_, f64> {
        match self.how {
            WeightView::Standard => self.data.view(),
            WeightView::Transposed => self.data.t(),
            WeightView::RowsReversed => self.data.slice(ndarray::s![..;-1, ..]),
        }
    }
}
