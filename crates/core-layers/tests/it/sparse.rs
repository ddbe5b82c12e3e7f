//! The sparse input path: [`SparseRows`], the sparse kernels against the
//! dense products and against the order of additions they document, and
//! [`Affine`] on its sparse path against numerical gradients and its dense path.
//!
//! The kernels work on blocks of output columns (1, 8, 16 for f64, 32 for
//! f32, the last block shifted left to overlap the one before when the width
//! is not a multiple), so the output widths here run from 1 to 70 and the
//! f32 test reaches the 32-wide blocks. Whether the AVX-512F, the AVX2 or
//! the generic build of a kernel runs is decided at run time and cannot be
//! forced from here; all must give the bits of the naive loops below.

use std::panic::{AssertUnwindSafe, catch_unwind};

use core_layers::functions::affine;
use core_layers::sparse::{
    InputPath, SPARSE_MAX_DENSITY, TransposeScratch, affine_input, density, sparse_affine,
    sparse_affine_into, sparse_sgd_with, sparse_t_dot_into, sparse_t_dot_with,
    sparse_t_dot_zeroed_with,
};
use core_layers::{Affine, Input, Layer, SparseRows};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, NdFloat};
use proptest::prelude::*;

use crate::common::*;

/// `b[k] + Σⱼ x[n, j] · W[j, k]` over the nonzero `x[n, j]`, added one by one
/// in increasing `j` starting from `b[k]`: the order [`sparse_affine`] documents.
fn naive_sparse_affine<A: NdFloat>(
    x: ArrayView2<'_, A>,
    w: ArrayView2<'_, A>,
    b: ArrayView1<'_, A>,
) -> Array2<A> {
    Array2::from_shape_fn((x.nrows(), w.ncols()), |(n, k)| {
        let mut acc = b[k];
        for j in 0..x.ncols() {
            if x[[n, j]] != A::zero() {
                acc += x[[n, j]] * w[[j, k]];
            }
        }
        acc
    })
}

/// `Σₙ x[n, j] · dout[n, k]` over the nonzero `x[n, j]`, added one by one in
/// increasing `n` starting from 0: the order [`sparse_t_dot_into`] documents.
fn naive_sparse_t_dot<A: NdFloat>(x: ArrayView2<'_, A>, dout: ArrayView2<'_, A>) -> Array2<A> {
    Array2::from_shape_fn((x.ncols(), dout.ncols()), |(j, k)| {
        let mut acc = A::zero();
        for n in 0..x.nrows() {
            if x[[n, j]] != A::zero() {
                acc += x[[n, j]] * dout[[n, k]];
            }
        }
        acc
    })
}

/// Bit-for-bit equality, naming the first element that differs.
fn same_bits<A: NdFloat>(
    what: &str,
    got: ArrayView2<'_, A>,
    want: ArrayView2<'_, A>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.dim(), want.dim(), "{}: shapes differ", what);
    for ((idx, g), w) in got.indexed_iter().zip(want.iter()) {
        let (gb, wb) = (g.to_f64().unwrap().to_bits(), w.to_f64().unwrap().to_bits());
        prop_assert!(gb == wb, "{}: at {:?} got {:?}, want {:?}", what, idx, g, w);
    }
    Ok(())
}

/// `|got − want| ≤ 1e-12 · scale` elementwise, `scale` being the sum of the
/// magnitudes of the terms (`|b| + |x|·|W|` or `|x|ᵀ·|dout|`): the two
/// results add the same terms in different orders, so they differ by a few
/// ulps of that sum at most.
fn close_scaled(
    what: &str,
    got: ArrayView2<'_, f64>,
    want: ArrayView2<'_, f64>,
    scale: ArrayView2<'_, f64>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.dim(), want.dim(), "{}: shapes differ", what);
    for (((idx, &g), &w), &sc) in got.indexed_iter().zip(want.iter()).zip(scale.iter()) {
        prop_assert!(
            (g - w).abs() <= 1e-12 * sc,
            "{}: at {:?} got {}, want {} (scale {})",
            what,
            idx,
            g,
            w,
            sc
        );
    }
    Ok(())
}

/// `|b| + |x|·|W|`, the scale of the rounding of `x·W + b`.
fn affine_scale(
    x: ArrayView2<'_, f64>,
    w: ArrayView2<'_, f64>,
    b: ArrayView1<'_, f64>,
) -> Array2<f64> {
    x.mapv(f64::abs).dot(&w.mapv(f64::abs)) + b.mapv(f64::abs)
}

/// `|x|ᵀ·|dout|`, the scale of the rounding of `xᵀ·dout`.
fn t_dot_scale(x: ArrayView2<'_, f64>, dout: ArrayView2<'_, f64>) -> Array2<f64> {
    x.t().mapv(f64::abs).dot(&dout.mapv(f64::abs))
}

/// An `[rows, cols]` buffer full of NaN, to show any entry a kernel forgets
/// to write.
fn nan_buffer(rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_elem((rows, cols), f64::NAN)
}

fn run_sparse_affine(
    x: Array2<f64>,
    w: Array2<f64>,
    how: WeightView,
    b: Array1<f64>,
) -> Result<(), TestCaseError> {
    let store = WeightStore::new(&w, how);
    let wv = store.view();
    prop_assert_eq!(wv, w.view());
    let s = SparseRows::from_dense(x.view());
    prop_assert_eq!(s.to_dense(), x.clone());
    prop_assert_eq!(s.nnz(), x.iter().filter(|&&v| v != 0.0).count());
    prop_assert_eq!(s.density(), density(x.view()));

    let y = sparse_affine(&s, wv, b.view());
    same_bits(
        "sparse_affine vs the naive loop",
        y.view(),
        naive_sparse_affine(x.view(), w.view(), b.view()).view(),
    )?;
    close_scaled(
        "sparse_affine vs affine",
        y.view(),
        affine(x.view(), wv, b.view()).view(),
        affine_scale(x.view(), w.view(), b.view()).view(),
    )?;

    // Into a row-major buffer and into a column-major view, both full of NaN.
    let mut out = nan_buffer(x.nrows(), w.ncols());
    sparse_affine_into(&s, wv, b.view(), out.view_mut());
    same_bits("sparse_affine_into, row-major", out.view(), y.view())?;
    let mut out_t = nan_buffer(w.ncols(), x.nrows());
    sparse_affine_into(&s, wv, b.view(), out_t.view_mut().reversed_axes());
    same_bits("sparse_affine_into, column-major", out_t.t(), y.view())?;

    // `affine_input`, the function `TwoLayerNet::predict` calls.
    let via = |input: Input<'_, f64>, path| affine_input(input, wv, b.view(), path);
    same_bits(
        "affine_input(sparse)",
        via(Input::Sparse(&s), InputPath::Dense).view(),
        y.view(),
    )?;
    same_bits(
        "affine_input(dense, Sparse)",
        via(Input::Dense(x.view()), InputPath::Sparse).view(),
        y.view(),
    )?;
    same_bits(
        "affine_input(dense, Dense)",
        via(Input::Dense(x.view()), InputPath::Dense).view(),
        affine(x.view(), wv, b.view()).view(),
    )?;
    Ok(())
}

/// The documented order again in f32, whose kernels use 32-wide blocks.
fn run_sparse_affine_f32(
    x: Array2<f64>,
    w: Array2<f64>,
    b: Array1<f64>,
) -> Result<(), TestCaseError> {
    let (x, w, b) = (
        x.mapv(|v| v as f32),
        w.mapv(|v| v as f32),
        b.mapv(|v| v as f32),
    );
    let s = SparseRows::from_dense(x.view());
    let y = sparse_affine(&s, w.view(), b.view());
    same_bits(
        "f32 sparse_affine vs the naive loop",
        y.view(),
        naive_sparse_affine(x.view(), w.view(), b.view()).view(),
    )?;
    let mut dw = Array2::from_elem((x.ncols(), w.ncols()), f32::NAN);
    let dout = y.mapv(|v| v - 0.5);
    sparse_t_dot_into(&s, dout.view(), dw.view_mut());
    same_bits(
        "f32 sparse_t_dot_into vs the naive loop",
        dw.view(),
        naive_sparse_t_dot(x.view(), dout.view()).view(),
    )?;
    Ok(())
}

fn run_sparse_t_dot(x: Array2<f64>, dout: Array2<f64>) -> Result<(), TestCaseError> {
    let s = SparseRows::from_dense(x.view());
    let (i, o) = (x.ncols(), dout.ncols());
    let naive = naive_sparse_t_dot(x.view(), dout.view());
    let mut dw = nan_buffer(i, o);
    sparse_t_dot_into(&s, dout.view(), dw.view_mut());
    same_bits(
        "sparse_t_dot_into vs the naive loop",
        dw.view(),
        naive.view(),
    )?;
    close_scaled(
        "sparse_t_dot_into vs xᵀ·dout",
        dw.view(),
        x.t().dot(&dout).view(),
        t_dot_scale(x.view(), dout.view()).view(),
    )?;
    // Column-major output, and a transposed (column-major) dout.
    let mut dw_t = nan_buffer(o, i);
    let dout_t = dout.t().as_standard_layout().into_owned();
    sparse_t_dot_into(&s, dout_t.t(), dw_t.view_mut().reversed_axes());
    same_bits("sparse_t_dot_into, column-major", dw_t.t(), naive.view())?;
    // On zeroed buffers, the variant that skips the unused rows.
    let mut scratch = TransposeScratch::default();
    let mut zeroed = Array2::zeros((i, o));
    sparse_t_dot_zeroed_with(&s, dout.view(), zeroed.view_mut(), &mut scratch);
    same_bits("sparse_t_dot_zeroed_with", zeroed.view(), dw.view())?;
    let mut zeroed_t = Array2::zeros((o, i));
    sparse_t_dot_zeroed_with(
        &s,
        dout.view(),
        zeroed_t.view_mut().reversed_axes(),
        &mut scratch,
    );
    same_bits(
        "sparse_t_dot_zeroed_with, column-major",
        zeroed_t.t(),
        dw.view(),
    )?;
    Ok(())
}

/// The fused backward pass and SGD step gives the bits of `xᵀ·dout` followed
/// by `scaled_add(-lr, ..)`, for row- and column-major weights, leaves the
/// rows of unused columns untouched, and so does [`Affine::backward_sgd`].
fn run_sparse_sgd(
    x: Array2<f64>,
    w: Array2<f64>,
    dout: Array2<f64>,
    lr: f64,
) -> Result<(), TestCaseError> {
    let s = SparseRows::from_dense(x.view());
    let mut dw = nan_buffer(w.nrows(), w.ncols());
    sparse_t_dot_into(&s, dout.view(), dw.view_mut());
    let mut want = w.clone();
    want.scaled_add(-lr, &dw);
    let mut scratch = TransposeScratch::default();
    let mut got = w.clone();
    sparse_sgd_with(&s, dout.view(), got.view_mut(), lr, &mut scratch);
    same_bits(
        "sparse_sgd_with vs t_dot then scaled_add",
        got.view(),
        want.view(),
    )?;
    for j in 0..x.ncols() {
        if x.column(j).iter().all(|&v| v == 0.0) {
            prop_assert!(
                got.row(j) == w.row(j),
                "sparse_sgd_with changed row {} of an unused column",
                j
            );
        }
    }
    let mut got_t = w.t().as_standard_layout().into_owned();
    sparse_sgd_with(
        &s,
        dout.view(),
        got_t.view_mut().reversed_axes(),
        lr,
        &mut scratch,
    );
    same_bits("sparse_sgd_with, column-major W", got_t.t(), want.view())?;

    // The layer: a forward pass on the sparse path, then the fused step.
    let b = Array1::from_shape_fn(w.ncols(), |k| 0.1 * k as f64);
    let mut want_b = b.clone();
    want_b.scaled_add(-lr, &dout.sum_axis(ndarray::Axis(0)));
    let mut layer = Affine::new(w.clone(), b);
    layer.set_input_path(InputPath::Sparse);
    layer.forward(x.view());
    layer.backward_sgd(dout.view(), lr);
    same_bits("Affine::backward_sgd, W", layer.w(), want.view())?;
    prop_assert!(
        layer
            .b()
            .iter()
            .zip(&want_b)
            .all(|(g, w)| g.to_bits() == w.to_bits()),
        "Affine::backward_sgd, b: got {}, want {}",
        layer.b(),
        want_b
    );
    prop_assert!(
        layer.grads().is_none(),
        "the fused step stores no gradients"
    );
    Ok(())
}

/// One scratch reused over products of different shapes gives what a fresh
/// one gives, into buffers holding the previous call's numbers or NaN.
fn run_scratch_reuse(cases: Vec<(Array2<f64>, Array2<f64>)>) -> Result<(), TestCaseError> {
    let mut scratch = TransposeScratch::default();
    let mut zeroed_scratch = TransposeScratch::default();
    for (x, dout) in &cases {
        let s = SparseRows::from_dense(x.view());
        let mut fresh = nan_buffer(x.ncols(), dout.ncols());
        sparse_t_dot_with(
            &s,
            dout.view(),
            fresh.view_mut(),
            &mut TransposeScratch::default(),
        );
        same_bits(
            "sparse_t_dot_with, fresh scratch",
            fresh.view(),
            naive_sparse_t_dot(x.view(), dout.view()).view(),
        )?;
        let mut reused = nan_buffer(x.ncols(), dout.ncols());
        sparse_t_dot_with(&s, dout.view(), reused.view_mut(), &mut scratch);
        same_bits(
            "sparse_t_dot_with, reused scratch",
            reused.view(),
            fresh.view(),
        )?;
        // The same buffer again, now holding this product: overwritten, not added to.
        sparse_t_dot_with(&s, dout.view(), reused.view_mut(), &mut scratch);
        same_bits(
            "sparse_t_dot_with, second call",
            reused.view(),
            fresh.view(),
        )?;
        let mut zeroed = Array2::zeros(fresh.dim());
        sparse_t_dot_zeroed_with(&s, dout.view(), zeroed.view_mut(), &mut zeroed_scratch);
        same_bits(
            "sparse_t_dot_zeroed_with, reused scratch",
            zeroed.view(),
            fresh.view(),
        )?;
    }
    Ok(())
}

fn run_sparse_affine_gradcheck(
    x: Array2<f64>,
    x2: Array2<f64>,
    w: Array2<f64>,
    b: Array1<f64>,
    r: Array2<f64>,
) -> Result<(), TestCaseError> {
    let f = |x: ArrayView2<'_, f64>, w: ArrayView2<'_, f64>, b: ArrayView1<'_, f64>| {
        weighted_sum(
            affine_input(Input::Dense(x), w, b, InputPath::Sparse).view(),
            r.view(),
        )
    };
    let mut layer = Affine::new(w.clone(), b.clone());
    layer.set_input_path(InputPath::Sparse);
    prop_assert_eq!(layer.took_sparse_path(), None);
    let out = layer.forward(x.view());
    prop_assert_eq!(layer.took_sparse_path(), Some(true));
    let s = SparseRows::from_dense(x.view());
    same_bits(
        "forward",
        out.view(),
        sparse_affine(&s, w.view(), b.view()).view(),
    )?;
    let dx = layer.backward(r.view());
    let grads = layer
        .grads()
        .expect("backward stores the gradients")
        .clone();
    gradcheck("x", |x| f(x, w.view(), b.view()), x.view(), dx.view())?;
    gradcheck("W", |w| f(x.view(), w, b.view()), w.view(), grads.dw.view())?;
    gradcheck_1d("b", |b| f(x.view(), w.view(), b), b.view(), grads.db.view())?;
    same_bits(
        "dW",
        grads.dw.view(),
        naive_sparse_t_dot(x.view(), r.view()).view(),
    )?;

    // The dense path: the same dx and db (the same products), dW to rounding.
    let mut dense = Affine::new(w.clone(), b.clone());
    dense.set_input_path(InputPath::Dense);
    let dense_out = dense.forward(x.view());
    prop_assert_eq!(dense.took_sparse_path(), Some(false));
    close_scaled(
        "forward, dense path",
        out.view(),
        dense_out.view(),
        affine_scale(x.view(), w.view(), b.view()).view(),
    )?;
    let dense_dx = dense.backward(r.view());
    let dense_grads = dense.grads().unwrap();
    same_bits("dx, dense path", dx.view(), dense_dx.view())?;
    prop_assert_eq!(&grads.db, &dense_grads.db);
    close_scaled(
        "dW, dense path",
        grads.dw.view(),
        dense_grads.dw.view(),
        t_dot_scale(x.view(), r.view()).view(),
    )?;

    // An input that is sparse already: the same numbers by both entry points.
    let mut by_rows = Affine::new(w.clone(), b.clone());
    same_bits(
        "forward_sparse",
        by_rows.forward_sparse(s.clone()).view(),
        out.view(),
    )?;
    prop_assert_eq!(by_rows.took_sparse_path(), Some(true));
    same_bits(
        "dx after forward_sparse",
        by_rows.backward(r.view()).view(),
        dx.view(),
    )?;
    prop_assert_eq!(by_rows.grads().unwrap(), &grads);
    let mut by_input = Affine::new(w.clone(), b.clone());
    by_input.set_input_path(InputPath::Dense);
    same_bits(
        "forward_input",
        by_input.forward_input(Input::Sparse(&s)).view(),
        out.view(),
    )?;
    prop_assert_eq!(by_input.took_sparse_path(), Some(true));
    by_input.backward_params(r.view());
    prop_assert_eq!(by_input.grads().unwrap(), &grads);

    // A second batch through the same layer, whose gradient buffers are now
    // reused: rows of dW that x used and x2 does not must be zero again.
    let out2 = layer.forward(x2.view());
    same_bits(
        "forward, second batch",
        out2.view(),
        naive_sparse_affine(x2.view(), w.view(), b.view()).view(),
    )?;
    layer.backward_params(r.view());
    same_bits(
        "dW, second batch",
        layer.grads().unwrap().dw.view(),
        naive_sparse_t_dot(x2.view(), r.view()).view(),
    )?;
    prop_assert_eq!(&layer.grads().unwrap().db, &grads.db);
    Ok(())
}

/// Under [`InputPath::Auto`], a dense input takes the sparse path exactly
/// when its density is at most [`SPARSE_MAX_DENSITY`], with the numbers of
/// the path it took.
fn run_auto_path(x: Array2<f64>, w: Array2<f64>, b: Array1<f64>) -> Result<(), TestCaseError> {
    let mut layer = Affine::new(w.clone(), b.clone());
    prop_assert_eq!(layer.input_path(), InputPath::Auto);
    let out = layer.forward(x.view());
    let sparse = density(x.view()) <= SPARSE_MAX_DENSITY;
    prop_assert_eq!(
        layer.took_sparse_path(),
        Some(sparse),
        "density {}",
        density(x.view())
    );
    prop_assert_eq!(InputPath::Auto.sparse_for(x.view()), sparse);
    let want = if sparse {
        sparse_affine(&SparseRows::from_dense(x.view()), w.view(), b.view())
    } else {
        affine(x.view(), w.view(), b.view())
    };
    same_bits("Auto forward", out.view(), want.view())?;
    Ok(())
}

fn run_transpose(x: Array2<f64>) -> Result<(), TestCaseError> {
    let s = SparseRows::from_dense(x.view());
    let t = s.transpose();
    prop_assert_eq!(
        (t.nrows(), t.ncols(), t.nnz()),
        (x.ncols(), x.nrows(), s.nnz())
    );
    prop_assert_eq!(t.to_dense(), x.t().to_owned());
    for j in 0..t.nrows() {
        let (cols, _) = t.row(j);
        prop_assert!(
            cols.windows(2).all(|c| c[0] < c[1]),
            "row {} of the transpose: {:?}",
            j,
            cols
        );
    }
    prop_assert_eq!(t.transpose(), s.clone());
    // The same rows built by hand, entry by entry and row by row, and again
    // after a clear.
    let mut by_push = SparseRows::new(x.ncols());
    let mut by_row = SparseRows::new(x.ncols());
    for _ in 0..2 {
        by_push.clear();
        by_row.clear();
        for row in x.rows() {
            let cols: Vec<u32> = (0..row.len() as u32)
                .filter(|&j| row[j as usize] != 0.0)
                .collect();
            for &j in &cols {
                by_push.push(j as usize, row[j as usize]);
            }
            by_push.end_row();
            by_row.push_row(&cols, cols.iter().map(|&j| row[j as usize]));
        }
        prop_assert_eq!(&by_push, &s);
        prop_assert_eq!(&by_row, &s);
    }
    Ok(())
}

prop_compose! {
    fn affine_case()(n in sparse_batch(), i in sparse_inputs(), o in sparse_outputs())
        (x in arb_sparse_matrix(n, i), w in arb_matrix(i, o), how in weight_view(), b in arb_vector(o))
        -> (Array2<f64>, Array2<f64>, WeightView, Array1<f64>) { (x, w, how, b) }
}

prop_compose! {
    fn t_dot_case()(n in sparse_batch(), i in sparse_inputs(), o in sparse_outputs())
        (x in arb_sparse_matrix(n, i), dout in arb_matrix(n, o)) -> (Array2<f64>, Array2<f64>) { (x, dout) }
}

prop_compose! {
    fn sgd_case()(n in sparse_batch(), i in sparse_inputs(), o in sparse_outputs())
        (x in arb_sparse_matrix(n, i), w in arb_matrix(i, o), dout in arb_matrix(n, o), lr in 1e-3..1.0f64)
        -> (Array2<f64>, Array2<f64>, Array2<f64>, f64) { (x, w, dout, lr) }
}

prop_compose! {
    fn gradcheck_case()(n in sparse_batch(), i in sparse_inputs(), o in sparse_outputs())
        (x in arb_sparse_matrix(n, i), x2 in arb_sparse_matrix(n, i), w in arb_matrix(i, o),
         b in arb_vector(o), r in arb_matrix(n, o))
        -> (Array2<f64>, Array2<f64>, Array2<f64>, Array1<f64>, Array2<f64>) { (x, x2, w, b, r) }
}

prop_compose! {
    /// Inputs either side of the Auto threshold: sparse ones (10 % to 50 %
    /// nonzero) and dense ones.
    fn auto_case()(n in sparse_batch(), i in sparse_inputs(), o in 1..=12usize, dense in any::<bool>())
        (x in if dense { arb_matrix_off_zero(n, i).boxed() } else { arb_sparse_matrix(n, i).boxed() },
         w in arb_matrix(i, o), b in arb_vector(o))
        -> (Array2<f64>, Array2<f64>, Array1<f64>) { (x, w, b) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sparse_affine_matches_dense_and_the_documented_order((x, w, how, b) in affine_case()) {
        run_sparse_affine(x, w, how, b)?;
    }

    #[test]
    fn f32_sparse_products_follow_the_documented_order((x, w, _how, b) in affine_case()) {
        run_sparse_affine_f32(x, w, b)?;
    }

    #[test]
    fn sparse_t_dot_matches_dense_and_the_documented_order((x, dout) in t_dot_case()) {
        run_sparse_t_dot(x, dout)?;
    }

    #[test]
    fn fused_sparse_sgd_equals_t_dot_then_scaled_add((x, w, dout, lr) in sgd_case()) {
        run_sparse_sgd(x, w, dout, lr)?;
    }

    #[test]
    fn a_reused_transpose_scratch_gives_what_a_fresh_one_gives(
        cases in prop::collection::vec(t_dot_case(), 2..=4)
    ) {
        run_scratch_reuse(cases)?;
    }

    #[test]
    fn affine_sparse_path_matches_numerical_and_dense((x, x2, w, b, r) in gradcheck_case()) {
        run_sparse_affine_gradcheck(x, x2, w, b, r)?;
    }

    #[test]
    fn auto_path_follows_the_density_threshold((x, w, b) in auto_case()) {
        run_auto_path(x, w, b)?;
    }

    #[test]
    fn transpose_twice_gives_the_rows_back(x in (sparse_batch(), sparse_inputs()).prop_flat_map(|(n, i)| arb_sparse_matrix(n, i))) {
        run_transpose(x)?;
    }
}

/// 20 columns of which the first `nonzero` are 1.
fn row_of(nonzero: usize) -> Array2<f64> {
    Array2::from_shape_fn((1, 20), |(_, j)| if j < nonzero { 1.0 } else { 0.0 })
}

#[test]
fn took_sparse_path_reports_the_path_of_the_last_forward() {
    let w = Array2::from_shape_fn((20, 3), |(i, o)| (i * 3 + o) as f64 * 0.1);
    let b = Array1::from(vec![0.5, -0.5, 1.0]);
    let mut layer = Affine::new(w.clone(), b.clone());
    assert_eq!(layer.took_sparse_path(), None);
    // 6 of 20 is exactly SPARSE_MAX_DENSITY (0.3): sparse, as "at most" says.
    assert_eq!(density(row_of(6).view()), SPARSE_MAX_DENSITY);
    layer.forward(row_of(6).view());
    assert_eq!(layer.took_sparse_path(), Some(true));
    layer.forward(row_of(7).view());
    assert_eq!(layer.took_sparse_path(), Some(false));
    layer.forward(row_of(0).view());
    assert_eq!(layer.took_sparse_path(), Some(true));
    // An input given in sparse form takes the sparse path, dense or not.
    let full = SparseRows::from_dense(row_of(20).view());
    layer.forward_sparse(full.clone());
    assert_eq!(layer.took_sparse_path(), Some(true));
    layer.set_input_path(InputPath::Dense);
    layer.forward_input(Input::Sparse(&full));
    assert_eq!(layer.took_sparse_path(), Some(true));
    layer.forward_input(Input::Dense(row_of(1).view()));
    assert_eq!(layer.took_sparse_path(), Some(false));
    layer.set_input_path(InputPath::Sparse);
    let y = layer.forward(row_of(20).view());
    assert_eq!(layer.took_sparse_path(), Some(true));
    // Σ_i W[i, o] + b[o], small sums of multiples of 0.1: exact to rounding.
    let want = w.sum_axis(ndarray::Axis(0)) + &b;
    approx::assert_abs_diff_eq!(y.row(0), want.view(), epsilon = 1e-12);
}

/// The message of a caught panic.
fn panic_message(err: &(dyn std::any::Any + Send)) -> String {
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// `push_row(cols, vals)` must panic with a message containing `expected`
/// and leave `s` as it was (it truncates back what it appended).
#[track_caller]
fn check_push_row_refused(s: &mut SparseRows<f64>, cols: &[u32], vals: &[f64], expected: &str) {
    let before = s.clone();
    let err = catch_unwind(AssertUnwindSafe(|| s.push_row(cols, vals.iter().copied())))
        .expect_err(&format!("push_row({cols:?}, {vals:?}) must panic"));
    let msg = panic_message(&*err);
    assert!(
        msg.contains(expected),
        "push_row({cols:?}, {vals:?}) panicked with {msg:?}, expected {expected:?}"
    );
    assert_eq!(
        *s, before,
        "push_row({cols:?}, {vals:?}) changed the rows before panicking"
    );
}

/// Two rows of 4 columns, `[[0, 1.5, 0, 2], [0; 4]]`.
fn two_rows() -> SparseRows<f64> {
    let mut s = SparseRows::new(4);
    s.push_row(&[1u32, 3], [1.5, 2.0]);
    s.push_row::<u32>(&[], []);
    s
}

#[test]
fn push_row_refuses_bad_rows_and_leaves_the_rows_unchanged() {
    let mut s = two_rows();
    for (cols, vals, expected) in [
        (&[0u32, 2][..], &[1.0][..], "2 columns but 1 values"),
        (&[0, 2], &[1.0, 2.0, 3.0], "2 columns but 3 values"),
        (
            &[2, 2],
            &[1.0, 2.0],
            "column 2 after column 2; columns must increase",
        ),
        (
            &[3, 1],
            &[1.0, 2.0],
            "column 1 after column 3; columns must increase",
        ),
        (&[0, 4], &[1.0, 2.0], "column 4 of a matrix with 4 columns"),
        (&[4], &[1.0], "column 4 of a matrix with 4 columns"),
        (&[1000], &[1.0], "column 1000 of a matrix with 4 columns"),
    ] {
        check_push_row_refused(&mut s, cols, vals, expected);
    }
    // A row half built with `push`: refused, and the half row is kept.
    s.push(0, 7.0);
    check_push_row_refused(
        &mut s,
        &[1],
        &[1.0],
        "a row is already being built with push",
    );
    s.end_row();
    // After all of that, rows are added as if nothing had happened.
    s.push_row(&[0u32, 3], [5.0, 6.0]);
    assert_eq!(
        s.to_dense(),
        ndarray::array![
            [0.0, 1.5, 0.0, 2.0],
            [0.0, 0.0, 0.0, 0.0],
            [7.0, 0.0, 0.0, 0.0],
            [5.0, 0.0, 0.0, 6.0]
        ]
    );
    assert_eq!(s.nnz(), 5);
}

#[test]
fn push_refuses_bad_columns_and_leaves_the_rows_unchanged() {
    let mut s = two_rows();
    let before = s.clone();
    let err = catch_unwind(AssertUnwindSafe(|| s.push(4, 1.0))).unwrap_err();
    assert!(panic_message(&*err).contains("column 4 of a matrix with 4 columns"));
    assert_eq!(s, before);
    s.push(2, 1.0);
    let half = s.clone();
    let err = catch_unwind(AssertUnwindSafe(|| s.push(2, 1.0))).unwrap_err();
    assert!(panic_message(&*err).contains("column 2 after column 2; columns must increase"));
    assert_eq!(s, half);
}

/// A column of `u32::MAX` (far beyond `ncols`) before a smaller one. An
/// earlier check computed `next = c + 1` with a wrapping add, so after
/// `u32::MAX` it restarted from 0, and it checked the range of the last
/// column only.
#[test]
fn push_row_refuses_u32_max_followed_by_a_smaller_column() {
    for cols in [&[u32::MAX, 0][..], &[1, u32::MAX, 2]] {
        let mut s = two_rows();
        let vals = vec![1.0; cols.len()];
        check_push_row_refused(
            &mut s,
            cols,
            &vals,
            "column 4294967295 of a matrix with 4 columns",
        );
    }
}

/// Empty shapes: no rows, no inputs, no outputs. Each product gives what the
/// dense one gives (zeros or an empty array), and nothing panics.
#[test]
fn sparse_products_of_empty_shapes_match_the_dense_ones() {
    for (n, i, o) in [(0, 4, 3), (2, 0, 3), (2, 4, 0), (0, 0, 0)] {
        let x = Array2::<f64>::zeros((n, i));
        let w = Array2::from_shape_fn((i, o), |(a, b)| (a * o + b) as f64 + 0.5);
        let b = Array1::from_shape_fn(o, |k| k as f64 - 1.0);
        let dout = Array2::from_shape_fn((n, o), |(a, k)| (a + k) as f64);
        let s = SparseRows::from_dense(x.view());
        assert_eq!(
            sparse_affine(&s, w.view(), b.view()),
            affine(x.view(), w.view(), b.view()),
            "{n}×{i} by {i}×{o}"
        );
        let mut dw = nan_buffer(i, o);
        sparse_t_dot_into(&s, dout.view(), dw.view_mut());
        assert_eq!(dw, Array2::zeros((i, o)), "{n}×{i} by {i}×{o}");
        assert_eq!(s.transpose().to_dense(), x.t());
    }
}

/// A row still being built with `push` is not part of the matrix: the
/// products and the transpose ignore it (they used to count its entries and
/// panic out of range).
#[test]
fn a_row_being_built_is_left_out_of_products_and_transpose() {
    let mut s = two_rows();
    let closed = s.to_dense();
    s.push(1, 7.0);
    assert_eq!(s.nrows(), closed.nrows());
    assert_eq!(s.transpose().to_dense(), closed.t());
    let dout = Array2::from_shape_fn((closed.nrows(), 3), |(a, k)| (a * 3 + k) as f64 - 2.0);
    let mut dw = nan_buffer(closed.ncols(), 3);
    sparse_t_dot_into(&s, dout.view(), dw.view_mut());
    let mut expected = nan_buffer(closed.ncols(), 3);
    sparse_t_dot_into(
        &SparseRows::from_dense(closed.view()),
        dout.view(),
        expected.view_mut(),
    );
    assert_eq!(dw, expected);
}
