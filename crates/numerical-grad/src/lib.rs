//! Central-difference numerical gradients and gradient-check reports.
//!
//! This crate knows nothing about layers: it differentiates any scalar
//! function of an array, given as a closure. It is the independent reference
//! that the backprop gradients of [`core-layers`] and [`two-layer-net`] are
//! checked against (DLFS §4.4 and §5.7.3).
//!
//! - [`numerical_gradient`] is the book's `numerical_gradient` (DLFS
//!   `common/gradient.py`): for every element `x[i]` it evaluates
//!   `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h`, perturbing one working copy in place
//!   and restoring it.
//! - [`numerical_gradient_par`] does the same on rayon's thread pool. Each
//!   rayon job perturbs its own copy of `x`, and every element goes through the
//!   same arithmetic as in the serial version, so for a deterministic `f` the
//!   two return the same values bit for bit.
//! - [`compare`] measures two gradients against each other: the book's mean
//!   absolute difference, the maximum absolute difference and the maximum
//!   relative error. [`check_gradient`] turns that into a pass/fail with the
//!   worst element named, and [`GradCheckReport`] gathers one [`GradDiff`] per
//!   named parameter.
//!
//! Numerical gradients are only trustworthy in `f64`: with `h = 1e-4` the
//! rounding error of `f32` (about `1e-7 / 1e-4`) swamps small gradients.
//! [`Tolerance::for_dtype`] holds the one tolerance per element type used by
//! every gradient check of the workspace.
//!
//! [`core-layers`]: ../core_layers/index.html
//! [`two-layer-net`]: ../two_layer_net/index.html

use std::fmt;

use ndarray::{Array, ArrayView, Dimension, IntoDimension};
use num_traits::Float;
use rayon::prelude::*;

/// The book's step for central differences, `h = 1e-4` (DLFS §4.3.1).
pub const H: f64 = 1e-4;

/// The central-difference gradient of `f` at `x`, evaluated serially.
///
/// For each element, in logical (row-major) order, this sets `x[i] = v + h`,
/// evaluates `f`, sets `x[i] = v − h`, evaluates `f` again, stores
/// `(f₊ − f₋) / (2h)` and restores `x[i] = v` (DLFS `common/gradient.py`).
/// The caller's array is never modified: the perturbations are made on one
/// working copy. The result has the shape of `x`, in standard layout.
///
/// `f` is called `2 · x.len()` times.
///
/// ```
/// # use ndarray::array;
/// # use numerical_grad::numerical_gradient;
/// // f(x) = Σ x², whose gradient is 2x.
/// let x = array![[1.0_f64, -2.0], [0.5, 3.0]];
/// let g = numerical_gradient(|x| x.mapv(|v| v * v).sum(), x.view(), 1e-4);
/// approx::assert_abs_diff_eq!(g, &x * 2.0, epsilon = 1e-9);
/// ```
pub fn numerical_gradient<A, D, F>(mut f: F, x: ArrayView<'_, A, D>, h: A) -> Array<A, D>
where
    A: Float,
    D: Dimension,
    F: FnMut(ArrayView<'_, A, D>) -> A,
{
    let mut work = x.as_standard_layout().into_owned();
    let grad: Vec<A> = (0..work.len())
        .map(|i| central_difference(&mut f, &mut work, i, h))
        .collect();
    from_flat(x.raw_dim(), grad)
}

/// The central-difference gradient of `f` at `x`, evaluated on rayon's pool.
///
/// Returns the same values as [`numerical_gradient`], bit for bit, as long as
/// `f` itself is deterministic: every element goes through the same
/// arithmetic, on a copy of `x` that belongs to the rayon job evaluating it
/// (one copy per job, not per element). Nothing shared is mutated.
///
/// If `f` calls a multi-threaded BLAS, limit the BLAS to one thread while this
/// runs (`core_layers::blas::set_num_threads(1)`), or the two thread pools
/// oversubscribe the cores.
pub fn numerical_gradient_par<A, D, F>(f: F, x: ArrayView<'_, A, D>, h: A) -> Array<A, D>
where
    A: Float + Send + Sync,
    D: Dimension,
    F: Fn(ArrayView<'_, A, D>) -> A + Sync,
{
    let base = x.as_standard_layout().into_owned();
    let grad: Vec<A> = (0..base.len())
        .into_par_iter()
        .map_init(
            || base.clone(),
            |work, i| central_difference(&f, work, i, h),
        )
        .collect();
    from_flat(x.raw_dim(), grad)
}

/// One element of the central difference. `work` is in standard layout and
/// holds its original values again when this returns.
fn central_difference<A, D, F>(mut f: F, work: &mut Array<A, D>, i: usize, h: A) -> A
where
    A: Float,
    D: Dimension,
    F: FnMut(ArrayView<'_, A, D>) -> A,
{
    let original = slot(work, i);
    set_slot(work, i, original + h);
    let f_plus = f(work.view());
    set_slot(work, i, original - h);
    let f_minus = f(work.view());
    set_slot(work, i, original);
    (f_plus - f_minus) / (h + h)
}

fn slot<A: Copy, D: Dimension>(work: &Array<A, D>, i: usize) -> A {
    work.as_slice().expect("working copy is in standard layout")[i]
}

fn set_slot<A: Copy, D: Dimension>(work: &mut Array<A, D>, i: usize, value: A) {
    work.as_slice_mut()
        .expect("working copy is in standard layout")[i] = value;
}

fn from_flat<A, D: Dimension>(dim: D, values: Vec<A>) -> Array<A, D> {
    Array::from_shape_vec(dim, values).expect("one gradient value per element")
}

/// How close an analytic gradient must be to a numerical one.
///
/// An element passes when `|a − n| ≤ atol + rtol · max(|a|, |n|)`: relative
/// for gradients of ordinary size, absolute for gradients near zero, where a
/// relative error would only measure the central difference's own noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part of the bound.
    pub atol: f64,
    /// Relative part of the bound.
    pub rtol: f64,
}

impl Tolerance {
    /// The tolerance every gradient check of the workspace uses for `A`.
    ///
    /// - `f64`: `rtol = 1e-6`, `atol = 1e-8`. The central difference with
    ///   `h = 1e-4` has a truncation error of `h²/6 · f‴ ≈ 2e-9 · f‴` and a
    ///   rounding error of about `ε · |f| / h ≈ 2e-12 · |f|`. A wrong
    ///   transpose, a missing `1/batch` or a dropped term is off by a factor
    ///   of order one, six orders of magnitude above the bound.
    /// - `f32`: `rtol = 1e-2`, `atol = 1e-3`. The rounding error alone is
    ///   `ε · |f| / h ≈ 1e-3 · |f|`, so an `f32` check can only be a smoke
    ///   test.
    pub fn for_dtype<A: 'static>() -> Self {
        if std::any::TypeId::of::<A>() == std::any::TypeId::of::<f32>() {
            Tolerance {
                atol: 1e-3,
                rtol: 1e-2,
            }
        } else {
            Tolerance {
                atol: 1e-8,
                rtol: 1e-6,
            }
        }
    }

    /// Magnitude below which an element's error counts as absolute: `atol / rtol`.
    pub fn floor(&self) -> f64 {
        self.atol / self.rtol
    }
}

/// How one gradient differs from another, element by element.
#[derive(Clone, Debug, PartialEq)]
pub struct GradDiff {
    /// Name of the parameter, e.g. `W1`.
    pub name: String,
    /// Number of elements compared.
    pub len: usize,
    /// Mean of `|a − n|`: the figure the book prints (DLFS §5.7.3).
    pub mean_abs: f64,
    /// Maximum of `|a − n|`.
    pub max_abs: f64,
    /// Maximum of `|a − n| / max(|a|, |n|, tol.floor())`: the relative error,
    /// with magnitudes below the tolerance's floor counted as the floor.
    pub max_rel: f64,
    /// The element farthest outside the tolerance (or closest to its edge).
    pub worst: Worst,
    /// Whether every element is within the tolerance.
    pub passed: bool,
    /// The tolerance used.
    pub tol: Tolerance,
}

/// The element of a [`GradDiff`] with the largest error relative to its bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// Its index, one entry per axis.
    pub index: Vec<usize>,
    /// The analytic (backprop) value.
    pub analytic: f64,
    /// The numerical value.
    pub numeric: f64,
    /// `|a − n| / (atol + rtol · max(|a|, |n|))`: above 1 means outside the tolerance.
    pub ratio: f64,
}

/// Compares an analytic gradient with a numerical one.
///
/// # Panics
///
/// If the two arrays have different shapes; the message names both.
#[track_caller]
pub fn compare<A, D>(
    name: &str,
    analytic: ArrayView<'_, A, D>,
    numeric: ArrayView<'_, A, D>,
    tol: Tolerance,
) -> GradDiff
where
    A: Float,
    D: Dimension,
{
    check_shapes(
        name,
        analytic.shape(),
        numeric.shape(),
        "numerical gradient",
    );
    let mask = std::iter::repeat(false);
    compare_iter(name, analytic, numeric, mask, tol)
}

/// As [`compare`], leaving out the elements where `excluded` is true (e.g.
/// parameters whose perturbation crosses a ReLU kink, where the numerical
/// gradient itself is wrong). `len` and every figure count only the others.
///
/// # Panics
///
/// If the three arrays have different shapes.
#[track_caller]
pub fn compare_excluding<A, D>(
    name: &str,
    analytic: ArrayView<'_, A, D>,
    numeric: ArrayView<'_, A, D>,
    excluded: ArrayView<'_, bool, D>,
    tol: Tolerance,
) -> GradDiff
where
    A: Float,
    D: Dimension,
{
    check_shapes(
        name,
        analytic.shape(),
        numeric.shape(),
        "numerical gradient",
    );
    check_shapes(name, analytic.shape(), excluded.shape(), "exclusion mask");
    compare_iter(name, analytic, numeric, excluded.iter().copied(), tol)
}

#[track_caller]
fn check_shapes(name: &str, analytic: &[usize], other: &[usize], what: &str) {
    assert_eq!(
        analytic, other,
        "gradient check of {name}: analytic gradient has shape {analytic:?} but {what} has shape {other:?}"
    );
}

fn compare_iter<A, D>(
    name: &str,
    analytic: ArrayView<'_, A, D>,
    numeric: ArrayView<'_, A, D>,
    excluded: impl Iterator<Item = bool>,
    tol: Tolerance,
) -> GradDiff
where
    A: Float,
    D: Dimension,
{
    let mut len = 0;
    let mut sum_abs = 0.0;
    let mut max_abs: f64 = 0.0;
    let mut max_rel: f64 = 0.0;
    let mut worst = Worst {
        index: vec![0; analytic.ndim()],
        analytic: f64::NAN,
        numeric: f64::NAN,
        ratio: f64::NEG_INFINITY,
    };
    let mut all_finite = true;
    for (((index, &a), &n), skip) in analytic.indexed_iter().zip(numeric.iter()).zip(excluded) {
        if skip {
            continue;
        }
        len += 1;
        let (a, n) = (to_f64(a), to_f64(n));
        let diff = (a - n).abs();
        let scale = a.abs().max(n.abs());
        let rel = diff / scale.max(tol.floor());
        let ratio = diff / (tol.atol + tol.rtol * scale);
        all_finite &= diff.is_finite();
        sum_abs += diff;
        max_abs = max_abs.max(diff);
        max_rel = max_rel.max(rel);
        // A NaN ratio is always the worst element.
        if ratio.is_nan() || ratio > worst.ratio {
            worst = Worst {
                index: index.into_dimension().as_array_view().to_vec(),
                analytic: a,
                numeric: n,
                ratio: if ratio.is_nan() { f64::INFINITY } else { ratio },
            };
        }
    }
    GradDiff {
        name: name.to_owned(),
        len,
        mean_abs: if len == 0 { 0.0 } else { sum_abs / len as f64 },
        max_abs,
        max_rel,
        passed: all_finite && (len == 0 || worst.ratio <= 1.0),
        worst,
        tol,
    }
}

fn to_f64<A: Float>(a: A) -> f64 {
    a.to_f64().unwrap_or(f64::NAN)
}

impl fmt::Display for GradDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<4} mean |diff| {:.3e}  max |diff| {:.3e}  max rel {:.3e}  {}",
            self.name,
            self.mean_abs,
            self.max_abs,
            self.max_rel,
            if self.passed { "ok" } else { "FAILED" }
        )
    }
}

/// An analytic gradient outside the tolerance of its numerical reference.
#[derive(Clone, Debug, PartialEq)]
pub struct GradMismatch(pub Box<GradDiff>);

impl fmt::Display for GradMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(
            f,
            "gradient of {} differs at {:?}: analytic {:e}, numerical {:e} \
             (|diff| {:.3e}, {:.1}x the bound atol {:e} + rtol {:e} * max(|a|, |n|))",
            d.name,
            d.worst.index,
            d.worst.analytic,
            d.worst.numeric,
            (d.worst.analytic - d.worst.numeric).abs(),
            d.worst.ratio,
            d.tol.atol,
            d.tol.rtol,
        )
    }
}

impl std::error::Error for GradMismatch {}

/// Checks an analytic gradient against a numerical one.
///
/// Returns the [`GradDiff`] when every element is within `tol`, and a
/// [`GradMismatch`] naming the worst element otherwise.
///
/// # Panics
///
/// If the two arrays have different shapes.
#[track_caller]
pub fn check_gradient<A, D>(
    name: &str,
    analytic: ArrayView<'_, A, D>,
    numeric: ArrayView<'_, A, D>,
    tol: Tolerance,
) -> Result<GradDiff, GradMismatch>
where
    A: Float,
    D: Dimension,
{
    let diff = compare(name, analytic, numeric, tol);
    if diff.passed {
        Ok(diff)
    } else {
        Err(GradMismatch(Box::new(diff)))
    }
}

/// One [`GradDiff`] per named parameter, e.g. `W1`, `b1`, `W2`, `b2`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GradCheckReport {
    /// The comparisons, in the order they were added.
    pub params: Vec<GradDiff>,
}

impl GradCheckReport {
    /// Adds the comparison of one parameter's gradients.
    ///
    /// # Panics
    ///
    /// If the two arrays have different shapes.
    #[track_caller]
    pub fn add<A: Float, D: Dimension>(
        &mut self,
        name: &str,
        analytic: ArrayView<'_, A, D>,
        numeric: ArrayView<'_, A, D>,
        tol: Tolerance,
    ) -> &GradDiff {
        self.params.push(compare(name, analytic, numeric, tol));
        self.params.last().expect("just pushed")
    }

    /// Whether every parameter passed.
    pub fn passed(&self) -> bool {
        self.params.iter().all(|p| p.passed)
    }

    /// The first parameter that failed, as an error.
    pub fn into_result(self) -> Result<Self, GradMismatch> {
        match self.params.iter().find(|p| !p.passed) {
            Some(failed) => Err(GradMismatch(Box::new(failed.clone()))),
            None => Ok(self),
        }
    }
}

impl fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.params {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{Array2, ArrayD, IxDyn, array};

    // f(x) = Σ sin(x) · x, so ∂f/∂x = cos(x) · x + sin(x).
    fn f(x: ArrayView<'_, f64, impl Dimension>) -> f64 {
        x.iter().map(|&v| v.sin() * v).sum()
    }

    fn df(x: f64) -> f64 {
        x.cos() * x + x.sin()
    }

    #[test]
    fn book_example_function_2_gradient() {
        // DLFS §4.4: numerical_gradient(function_2, np.array([3.0, 4.0])) → [6., 8.]
        // for function_2(x) = x[0]**2 + x[1]**2.
        let g = numerical_gradient(
            |x| x.mapv(|v| v * v).sum(),
            array![3.0_f64, 4.0].view(),
            1e-4,
        );
        assert_abs_diff_eq!(g, array![6.0, 8.0], epsilon = 1e-9);
        let g = numerical_gradient(
            |x| x.mapv(|v| v * v).sum(),
            array![3.0_f64, 0.0].view(),
            1e-4,
        );
        assert_abs_diff_eq!(g, array![6.0, 0.0], epsilon = 1e-9);
    }

    #[test]
    fn matches_analytic_gradient_of_a_smooth_function() {
        let x = Array2::from_shape_fn((3, 4), |(i, j)| (i as f64) - 0.7 * (j as f64) + 0.3);
        let g = numerical_gradient(f, x.view(), H);
        let expected = x.mapv(df);
        let diff = check_gradient(
            "x",
            g.view(),
            expected.view(),
            Tolerance::for_dtype::<f64>(),
        )
        .expect("central difference of a smooth function is within tolerance");
        assert!(diff.max_abs < 1e-8, "max abs diff {}", diff.max_abs);
    }

    #[test]
    fn caller_array_is_unchanged_and_layout_is_respected() {
        // A transposed (column-major) view: the gradient must still line up
        // with the logical indices of x.
        let base = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64 * 0.1 - 0.4);
        let x = base.t();
        let g = numerical_gradient(f, x, H);
        assert_eq!(g.shape(), &[5, 3]);
        assert_abs_diff_eq!(g, x.mapv(df), epsilon = 1e-8);
        assert_eq!(
            base,
            Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64 * 0.1 - 0.4)
        );
    }

    #[test]
    fn parallel_equals_serial_bit_for_bit() {
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 7]), |i| {
            (i[0] as f64 * 1.3 - i[1] as f64 * 0.61 + i[2] as f64 * 0.173).sin() * 3.0
        });
        let serial = numerical_gradient(f, x.view(), H);
        let parallel = numerical_gradient_par(f, x.view(), H);
        assert_eq!(serial.shape(), parallel.shape());
        for (s, p) in serial.iter().zip(parallel.iter()) {
            assert_eq!(s.to_bits(), p.to_bits());
        }
        // And in f32, on a transposed input.
        let x32 = Array2::from_shape_fn((9, 4), |(i, j)| (i as f32 * 0.37 - j as f32 * 0.9).cos());
        let loss = |x: ArrayView<'_, f32, ndarray::Ix2>| x.iter().map(|v| v.exp() * v).sum::<f32>();
        let serial = numerical_gradient(loss, x32.t(), 1e-2);
        let parallel = numerical_gradient_par(loss, x32.t(), 1e-2);
        assert_eq!(serial, parallel);
    }

    #[test]
    fn report_figures_are_the_book_definitions() {
        let a = array![1.0_f64, -2.0, 0.0, 4.0];
        let n = array![1.0_f64, -2.5, 1e-9, 4.4];
        let tol = Tolerance {
            atol: 1e-8,
            rtol: 1e-6,
        };
        let d = compare("W", a.view(), n.view(), tol);
        assert_eq!(d.len, 4);
        // mean |diff| = (0 + 0.5 + 1e-9 + 0.4) / 4
        assert_abs_diff_eq!(d.mean_abs, (0.5 + 1e-9 + 0.4) / 4.0, epsilon = 1e-15);
        assert_abs_diff_eq!(d.max_abs, 0.5, epsilon = 1e-15);
        // 0.5 / 2.5 = 0.2 beats 0.4 / 4.4 and 1e-9 / floor (1e-2).
        assert_abs_diff_eq!(d.max_rel, 0.2, epsilon = 1e-15);
        assert!(!d.passed);
        assert_eq!(d.worst.index, vec![1]);
        let err = check_gradient("W", a.view(), n.view(), tol).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("W") && msg.contains("[1]"), "{msg}");
    }

    #[test]
    fn tolerance_is_mixed_absolute_and_relative() {
        let tol = Tolerance {
            atol: 1e-8,
            rtol: 1e-6,
        };
        // Relative: 1e-7 off on a gradient of 1 is within 1e-6.
        assert!(compare("a", array![1.0].view(), array![1.0 + 1e-7].view(), tol).passed);
        assert!(!compare("a", array![1.0].view(), array![1.0 + 1e-5].view(), tol).passed);
        // Absolute: near zero only atol counts.
        assert!(compare("b", array![0.0].view(), array![5e-9].view(), tol).passed);
        assert!(!compare("b", array![0.0].view(), array![5e-8].view(), tol).passed);
        // NaN never passes.
        assert!(!compare("c", array![f64::NAN].view(), array![0.0].view(), tol).passed);
    }

    #[test]
    fn report_collects_parameters() {
        let tol = Tolerance::for_dtype::<f64>();
        let mut report = GradCheckReport::default();
        report.add(
            "W1",
            array![[1.0, 2.0]].view(),
            array![[1.0, 2.0]].view(),
            tol,
        );
        report.add("b1", array![1.0].view(), array![1.1].view(), tol);
        assert!(!report.passed());
        assert_eq!(report.params[0].name, "W1");
        assert!(report.params[0].passed);
        let text = report.to_string();
        assert!(text.lines().next().unwrap().starts_with("W1"));
        assert!(text.lines().nth(1).unwrap().contains("FAILED"));
        assert_eq!(report.into_result().unwrap_err().0.name, "b1");
    }

    #[test]
    fn excluded_elements_are_left_out_of_every_figure() {
        let tol = Tolerance::for_dtype::<f64>();
        let a = array![1.0_f64, 5.0, 2.0];
        let n = array![1.0_f64, -5.0, 2.5];
        let d = compare_excluding(
            "b1",
            a.view(),
            n.view(),
            array![false, true, false].view(),
            tol,
        );
        assert_eq!(d.len, 2);
        assert_abs_diff_eq!(d.mean_abs, 0.25, epsilon = 1e-15);
        assert_eq!(d.worst.index, vec![2]);
        let d = compare_excluding(
            "b1",
            a.view(),
            n.view(),
            array![false, true, true].view(),
            tol,
        );
        assert!(d.passed);
        assert_eq!(d.mean_abs, 0.0);
    }

    #[test]
    #[should_panic(expected = "shape [2] but numerical gradient has shape [3]")]
    fn shape_mismatch_names_both_shapes() {
        compare(
            "W",
            array![1.0, 2.0].view(),
            array![1.0, 2.0, 3.0].view(),
            Tolerance::for_dtype::<f64>(),
        );
    }
}
