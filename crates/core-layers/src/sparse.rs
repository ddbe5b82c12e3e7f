//! Sparse input rows and the exact sparse products of [`Affine`](crate::Affine).
//!
//! MNIST images are mostly background: about 19 % of the pixels of a digit
//! are nonzero. For such an input, `x·W` is the sum, over each row's nonzero
//! entries `x[n, j]`, of `x[n, j] · W[j, ..]`, and `∂L/∂W = xᵀ·dout` touches
//! only the rows `j` that occur. [`SparseRows`] stores the nonzero entries of
//! a batch row by row (CSR), and [`sparse_affine`] and [`sparse_t_dot_into`]
//! compute the two products from it.
//!
//! The products are exact, not approximations: the entries left out are
//! zeros, whose terms are exactly zero as long as `W` (or `dout`) is
//! finite. Only the order of the additions differs from a dense gemm, so
//! results agree to rounding (both are tested against each other and against
//! numerical gradients). Once a weight is infinite or NaN (a diverged run),
//! the dense product spreads `0 · inf = NaN` to every row and the sparse one
//! only to the rows that use that input.
//!
//! The inner loops are plain Rust (`y[k] += a · w[k]` over a row). On x86-64
//! they are compiled twice more, with AVX-512F and with AVX2 enabled, and the
//! widest version the CPU has is picked at run time. Every version does the
//! same multiplications and additions in the same order (no fused
//! multiply-add, which would round once instead of twice), so they all give
//! the same bits.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, NdFloat};

use crate::Input;
use crate::functions::affine;

/// The input density (fraction of nonzero entries) at or below which
/// [`Affine`](crate::Affine) takes its sparse path for a dense input.
///
/// Measured with `cargo bench -p benches --bench training -- affine_density`
/// on 100×784 inputs times a 784×50 `W` (f32): see BENCHMARKS.md.
pub const SPARSE_MAX_DENSITY: f64 = 0.3;

/// Which product an affine layer uses for a dense input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputPath {
    /// The sparse path when at most [`SPARSE_MAX_DENSITY`] of the input's
    /// entries are nonzero, the dense one otherwise.
    #[default]
    Auto,
    /// Always the dense product (BLAS, or matrixmultiply without the `blas` feature).
    Dense,
    /// Always the sparse path (the input is converted first).
    Sparse,
}

impl InputPath {
    /// Whether a dense `x` goes through the sparse path.
    pub fn sparse_for<A: NdFloat>(self, x: ArrayView2<'_, A>) -> bool {
        match self {
            InputPath::Auto => density(x) <= SPARSE_MAX_DENSITY,
            InputPath::Dense => false,
            InputPath::Sparse => true,
        }
    }
}

impl std::str::FromStr for InputPath {
    type Err = String;

    /// `auto`, `dense` or `sparse`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(InputPath::Auto),
            "dense" => Ok(InputPath::Dense),
            "sparse" => Ok(InputPath::Sparse),
            _ => Err(format!("{s:?} is not auto, dense or sparse")),
        }
    }
}

/// Rows of a matrix stored by their nonzero entries (compressed sparse rows).
///
/// Row `n` holds the columns `indices[indptr[n]..indptr[n + 1]]`, in
/// increasing order, with the values at the same positions of `values`.
///
/// ```
/// # use ndarray::array;
/// # use core_layers::SparseRows;
/// let x = array![[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]];
/// let s = SparseRows::from_dense(x.view());
/// assert_eq!((s.nrows(), s.ncols(), s.nnz()), (2, 3, 2));
/// assert_eq!(s.row(0), (&[1u32][..], &[2.0][..]));
/// assert_eq!(s.to_dense(), x);
/// ```
#[derive(Debug, PartialEq)]
pub struct SparseRows<A> {
    ncols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<A>,
}

impl<A: Clone> Clone for SparseRows<A> {
    fn clone(&self) -> Self {
        SparseRows {
            ncols: self.ncols,
            indptr: self.indptr.clone(),
            indices: self.indices.clone(),
            values: self.values.clone(),
        }
    }

    /// Reuses `self`'s allocations (a layer caches every batch this way).
    fn clone_from(&mut self, source: &Self) {
        self.ncols = source.ncols;
        self.indptr.clone_from(&source.indptr);
        self.indices.clone_from(&source.indices);
        self.values.clone_from(&source.values);
    }
}

impl<A: NdFloat> SparseRows<A> {
    /// No rows yet, `ncols` columns. Add rows with [`push`](SparseRows::push)
    /// and [`end_row`](SparseRows::end_row).
    ///
    /// # Panics
    ///
    /// If `ncols` does not fit in `u32`.
    #[track_caller]
    pub fn new(ncols: usize) -> Self {
        assert!(
            u32::try_from(ncols).is_ok(),
            "SparseRows::new: {ncols} columns do not fit in u32 indices"
        );
        SparseRows {
            ncols,
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The nonzero entries of `x`, row by row.
    pub fn from_dense(x: ArrayView2<'_, A>) -> Self {
        let mut s = SparseRows::new(x.ncols());
        for row in x.rows() {
            // Every entry is written and the end moves past the nonzero
            // ones only: no branch to mispredict on MNIST's scattered zeros.
            // Columns increase and are below ncols by construction.
            let start = s.indices.len();
            s.indices.resize(start + x.ncols(), 0);
            s.values.resize(start + x.ncols(), A::zero());
            let (cols, vals) = (&mut s.indices[start..], &mut s.values[start..]);
            let k = match row.as_slice() {
                Some(row) => compact(row, cols, vals),
                None => compact(&row.to_vec(), cols, vals),
            };
            s.indices.truncate(start + k);
            s.values.truncate(start + k);
            s.end_row();
        }
        s
    }

    /// Removes all rows, keeping the allocations (and the number of columns).
    pub fn clear(&mut self) {
        self.indptr.truncate(1);
        self.indices.clear();
        self.values.clear();
    }

    /// Adds entry `(column, value)` to the row being built. Columns must come
    /// in increasing order within a row.
    ///
    /// # Panics
    ///
    /// If `column` is not below [`ncols`](SparseRows::ncols), or not above the
    /// row's previous column.
    #[track_caller]
    pub fn push(&mut self, column: usize, value: A) {
        assert!(
            column < self.ncols,
            "SparseRows::push: column {column} of a matrix with {} columns",
            self.ncols
        );
        let start = *self.indptr.last().expect("indptr starts with 0");
        if let Some(&prev) = self.indices[start..].last() {
            assert!(
                column > prev as usize,
                "SparseRows::push: column {column} after column {prev}; columns must increase within a row"
            );
        }
        // In range of u32: checked against ncols, which `new` checked.
        self.indices.push(column as u32);
        self.values.push(value);
    }

    /// Adds a whole row: the entries `(columns[k], values[k])`, columns
    /// strictly increasing. Faster than [`push`](SparseRows::push) one by one.
    ///
    /// # Panics
    ///
    /// If a row is being built with `push`, the lengths differ, or a column
    /// is out of range or out of order.
    #[track_caller]
    pub fn push_row<C>(&mut self, columns: &[C], values: impl IntoIterator<Item = A>)
    where
        C: Copy + Into<u32>,
    {
        let start = self.indices.len();
        assert!(
            start == *self.indptr.last().expect("indptr starts with 0"),
            "SparseRows::push_row: a row is already being built with push"
        );
        // Strictly increasing, and the last below ncols: then all are in
        // range. Checked before copying, in loops that vectorise.
        let ncols = self.ncols as u64;
        // A fold without early exit over adjacent pairs, so that it vectorises.
        let increasing = columns
            .iter()
            .zip(columns.iter().skip(1))
            .fold(true, |ok, (&a, &b)| ok & (a.into() < b.into()));
        let ok = increasing && columns.last().is_none_or(|&c| u64::from(c.into()) < ncols);
        self.indices.extend(columns.iter().map(|&c| c.into()));
        self.values.extend(values);
        let n_values = self.values.len() - start;
        if !ok || n_values != columns.len() {
            let cols: Vec<u32> = self.indices[start..].to_vec();
            self.indices.truncate(start);
            self.values.truncate(start);
            let why = if n_values != columns.len() {
                format!("{} columns but {n_values} values", columns.len())
            } else if let Some(&c) = cols.iter().find(|&&c| u64::from(c) >= ncols) {
                format!("column {c} of a matrix with {} columns", self.ncols)
            } else {
                let k = cols.windows(2).position(|w| w[1] <= w[0]).unwrap_or(0);
                format!(
                    "column {} after column {}; columns must increase within a row",
                    cols[k + 1],
                    cols[k]
                )
            };
            panic!("SparseRows::push_row: {why}");
        }
        self.end_row();
    }

    /// Closes the row being built (an empty row if nothing was pushed).
    pub fn end_row(&mut self) {
        self.indptr.push(self.indices.len());
    }

    /// Number of (closed) rows.
    pub fn nrows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indptr[self.nrows()]
    }

    /// Stored entries over all entries, `nnz / (nrows · ncols)` (0 when empty).
    pub fn density(&self) -> f64 {
        let all = self.nrows() * self.ncols;
        if all == 0 {
            0.0
        } else {
            self.nnz() as f64 / all as f64
        }
    }

    /// Row `n` as `(columns, values)`.
    ///
    /// # Panics
    ///
    /// If `n` is not below [`nrows`](SparseRows::nrows).
    #[track_caller]
    pub fn row(&self, n: usize) -> (&[u32], &[A]) {
        let (start, end) = (self.indptr[n], self.indptr[n + 1]);
        (&self.indices[start..end], &self.values[start..end])
    }

    /// The transpose, `[ncols, nrows]`, again by rows (a counting sort: the
    /// entries of each new row keep their order).
    pub fn transpose(&self) -> SparseRows<A> {
        let mut indptr = vec![0usize; self.ncols + 1];
        // The closed rows' entries only (not those of a row still being
        // built with `push`).
        for &j in &self.indices[..self.nnz()] {
            indptr[j as usize + 1] += 1;
        }
        for j in 0..self.ncols {
            indptr[j + 1] += indptr[j];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![A::zero(); self.nnz()];
        for n in 0..self.nrows() {
            let (cols, vals) = self.row(n);
            for (&j, &v) in cols.iter().zip(vals) {
                let slot = &mut next[j as usize];
                // `n` < nrows, which came from rows pushed as `usize`; an
                // index of the transpose is a row number and fits u32 when
                // nrows does.
                indices[*slot] = u32::try_from(n).expect("fewer than 2³² rows");
                values[*slot] = v;
                *slot += 1;
            }
        }
        SparseRows {
            ncols: self.nrows(),
            indptr,
            indices,
            values,
        }
    }

    /// The dense matrix, `[nrows, ncols]`.
    pub fn to_dense(&self) -> Array2<A> {
        let mut x = Array2::zeros((self.nrows(), self.ncols));
        for (n, mut out) in x.rows_mut().into_iter().enumerate() {
            let (cols, vals) = self.row(n);
            for (&j, &v) in cols.iter().zip(vals) {
                out[j as usize] = v;
            }
        }
        x
    }
}

/// Writes the nonzero entries of `row` to the front of `cols` and `vals`
/// (as long as `row`) and returns their count.
fn compact<A: NdFloat>(row: &[A], cols: &mut [u32], vals: &mut [A]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<A>() == std::any::TypeId::of::<f32>()
        && row.len() <= i32::MAX as usize
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        // SAFETY: `A` is f32 (checked just above), so the slices are f32
        // slices of the same lengths.
        let (row, vals) = unsafe {
            (
                std::slice::from_raw_parts(row.as_ptr().cast::<f32>(), row.len()),
                std::slice::from_raw_parts_mut(vals.as_mut_ptr().cast::<f32>(), vals.len()),
            )
        };
        // SAFETY: the CPU has AVX-512F, checked above.
        return unsafe { compact_f32_avx512(row, cols, vals) };
    }
    compact_generic(row, cols, vals)
}

/// [`compact`] sixteen entries at a time: the nonzero ones of each group of
/// sixteen are packed to the front of a register (`vcompressps`) and the
/// whole register is stored at the write position, which never passes the
/// read position, so every store stays inside the buffers. The same result
/// as [`compact_generic`], entry for entry (`v != 0` is the same test: NaN
/// counts as nonzero, -0.0 as zero).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn compact_f32_avx512(row: &[f32], cols: &mut [u32], vals: &mut [f32]) -> usize {
    use std::arch::x86_64::{
        _CMP_NEQ_UQ, _mm512_add_epi32, _mm512_cmp_ps_mask, _mm512_loadu_ps,
        _mm512_maskz_compress_epi32, _mm512_maskz_compress_ps, _mm512_set1_epi32,
        _mm512_setr_epi32, _mm512_setzero_ps, _mm512_storeu_epi32, _mm512_storeu_ps,
    };
    let n = row.len();
    assert!(
        cols.len() >= n && vals.len() >= n,
        "compact: buffers too short"
    );
    let mut columns = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let sixteen = _mm512_set1_epi32(16);
    let (mut j, mut k) = (0, 0);
    while j + 16 <= n {
        // SAFETY: j + 16 ≤ n ≤ the length of every slice, and k ≤ j, so
        // the sixteen lanes read at j and written at k are in bounds.
        unsafe {
            let v = _mm512_loadu_ps(row.as_ptr().add(j));
            let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps());
            _mm512_storeu_ps(
                vals.as_mut_ptr().add(k),
                _mm512_maskz_compress_ps(nonzero, v),
            );
            _mm512_storeu_epi32(
                cols.as_mut_ptr().add(k).cast::<i32>(),
                _mm512_maskz_compress_epi32(nonzero, columns),
            );
            k += nonzero.count_ones() as usize;
        }
        columns = _mm512_add_epi32(columns, sixteen);
        j += 16;
    }
    // The last n mod 16 entries, one at a time (k ≤ j stays true).
    for (j, &v) in row.iter().enumerate().skip(j) {
        cols[k] = j as u32;
        vals[k] = v;
        k += usize::from(v != 0.0);
    }
    k
}

/// [`compact`], one entry at a time.
fn compact_generic<A: NdFloat>(row: &[A], cols: &mut [u32], vals: &mut [A]) -> usize {
    let (cols, vals) = (&mut cols[..row.len()], &mut vals[..row.len()]);
    let mut k = 0;
    for (j, &v) in row.iter().enumerate() {
        // k ≤ j < row.len(): in bounds.
        cols[k] = j as u32;
        vals[k] = v;
        k += usize::from(v != A::zero());
    }
    k
}

/// The fraction of nonzero entries of `x` (0 for an empty array).
pub fn density<A: NdFloat>(x: ArrayView2<'_, A>) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let nonzero = x.iter().filter(|&&v| v != A::zero()).count();
    nonzero as f64 / x.len() as f64
}

/// `x·W + b` for any [`Input`], the way [`Affine`](crate::Affine) computes it:
/// by the sparse path for a sparse input, and for a dense one as `path`
/// says; by [`affine`] (BLAS) otherwise.
///
/// # Panics
///
/// If the shapes do not chain (the message names them).
#[track_caller]
pub fn affine_input<A: NdFloat>(
    x: Input<'_, A>,
    w: ArrayView2<'_, A>,
    b: ArrayView1<'_, A>,
    path: InputPath,
) -> Array2<A> {
    match x {
        Input::Sparse(x) => sparse_affine(x, w, b),
        Input::Dense(x) if path.sparse_for(x) => sparse_affine(&SparseRows::from_dense(x), w, b),
        Input::Dense(x) => affine(x, w, b),
    }
}

/// `x·W + b` for sparse rows `x` (the sparse path of [`affine`](crate::functions::affine)).
///
/// Row `n` of the result is `b + Σ x[n, j] · W[j, ..]` over the stored
/// entries of row `n`, added in increasing `j`.
///
/// # Shapes
///
/// - `x`: `[N, I]`, `w`: `[I, O]`, `b`: `[O]`; result `[N, O]`.
///
/// # Panics
///
/// If the shapes do not chain (the message names them).
#[track_caller]
pub fn sparse_affine<A: NdFloat>(
    x: &SparseRows<A>,
    w: ArrayView2<'_, A>,
    b: ArrayView1<'_, A>,
) -> Array2<A> {
    let mut out = Array2::zeros((x.nrows(), w.ncols()));
    sparse_affine_into(x, w, b, out.view_mut());
    out
}

/// [`sparse_affine`] into `out`, which is overwritten.
///
/// # Panics
///
/// If the shapes do not chain, or `out` is not `[N, O]`.
#[track_caller]
pub fn sparse_affine_into<A: NdFloat>(
    x: &SparseRows<A>,
    w: ArrayView2<'_, A>,
    b: ArrayView1<'_, A>,
    mut out: ArrayViewMut2<'_, A>,
) {
    assert!(
        x.ncols() == w.nrows() && b.len() == w.ncols(),
        "sparse_affine: x has shape [{}, {}], W {:?} and b {:?}; they do not chain",
        x.nrows(),
        x.ncols(),
        w.shape(),
        b.shape()
    );
    assert!(
        out.dim() == (x.nrows(), w.ncols()),
        "sparse_affine: out has shape {:?}, expected [{}, {}]",
        out.shape(),
        x.nrows(),
        w.ncols()
    );
    let w = w.as_standard_layout();
    let w = w.as_slice().expect("standard layout");
    let b = b.to_vec();
    let o = b.len();
    let row = |n: usize| {
        let (cols, vals) = x.row(n);
        entries(cols, vals)
    };
    match out.as_slice_mut() {
        Some(y) => rows_axpys(y, &b, row, w, o, false, Store::Set),
        None => {
            let mut y = Array2::zeros(out.dim());
            rows_axpys(
                y.as_slice_mut().expect("new array"),
                &b,
                row,
                w,
                o,
                false,
                Store::Set,
            );
            out.assign(&y);
        }
    }
}

/// What the kernels do with a row's sums.
#[derive(Clone, Copy)]
enum Store<A> {
    /// `y = sums` (the sums start from `init`).
    Set,
    /// `y = y + alpha · sums`, as ndarray's `scaled_add` computes it (the
    /// sums start from zeros): a fused SGD step.
    AddScaled(A),
}

/// For each row `n` of `y` (rows of `o`): the sums `init + Σₖ vₖ · w[jₖ·o .. (jₖ + 1)·o]`
/// over the entries `(jₖ, vₖ)` of `entries_of(n)`, stored as `store` says.
/// With `skip_empty`, rows without entries are left alone (for a `y` that
/// holds `init` already, or for [`Store::AddScaled`], which adds nothing there).
fn rows_axpys<A, E, F>(
    y: &mut [A],
    init: &[A],
    entries_of: F,
    w: &[A],
    o: usize,
    skip_empty: bool,
    store: Store<A>,
) where
    A: NdFloat,
    E: Entries<A>,
    F: Fn(usize) -> E,
{
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { rows_axpys_avx512(y, init, entries_of, w, o, skip_empty, store) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { rows_axpys_avx2(y, init, entries_of, w, o, skip_empty, store) };
    }
    rows_axpys_generic(y, init, entries_of, w, o, skip_empty, store);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn rows_axpys_avx512<A, E, F>(
    y: &mut [A],
    init: &[A],
    entries_of: F,
    w: &[A],
    o: usize,
    skip_empty: bool,
    store: Store<A>,
) where
    A: NdFloat,
    E: Entries<A>,
    F: Fn(usize) -> E,
{
    rows_axpys_generic(y, init, entries_of, w, o, skip_empty, store);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn rows_axpys_avx2<A, E, F>(
    y: &mut [A],
    init: &[A],
    entries_of: F,
    w: &[A],
    o: usize,
    skip_empty: bool,
    store: Store<A>,
) where
    A: NdFloat,
    E: Entries<A>,
    F: Fn(usize) -> E,
{
    rows_axpys_generic(y, init, entries_of, w, o, skip_empty, store);
}

#[inline(always)]
fn rows_axpys_generic<A, E, F>(
    y: &mut [A],
    init: &[A],
    entries_of: F,
    w: &[A],
    o: usize,
    skip_empty: bool,
    store: Store<A>,
) where
    A: NdFloat,
    E: Entries<A>,
    F: Fn(usize) -> E,
{
    if o == 0 {
        return;
    }
    for (n, y) in y.chunks_exact_mut(o).enumerate() {
        let e = entries_of(n);
        if skip_empty && e.clone().next().is_none() {
            continue;
        }
        row_axpys_generic(y, init, e, w, o, store);
    }
}

/// The entries `(column, value)` of one sparse row, in order; cloned for
/// each pass over them.
trait Entries<A>: Iterator<Item = (u32, A)> + Clone {}

impl<A, I: Iterator<Item = (u32, A)> + Clone> Entries<A> for I {}

/// The entries of a row stored as two slices.
#[inline(always)]
fn entries<'s, A: Copy>(cols: &'s [u32], vals: &'s [A]) -> impl Entries<A> + 's {
    cols.iter().copied().zip(vals.iter().copied())
}

#[inline(always)]
fn row_axpys_generic<A: NdFloat, E: Entries<A>>(
    y: &mut [A],
    init: &[A],
    entries: E,
    w: &[A],
    o: usize,
    store: Store<A>,
) {
    // Blocks of four 256-bit vectors' worth of columns (32 f32 or 16 f64),
    // two blocks per pass over the row's entries: their sums stay in
    // registers, and each row of W is read once per pass. When the block
    // width does not divide `o`, the last block is shifted left to end at
    // `o`, overlapping the one before: the overlapped columns are computed
    // twice, the same way, instead of one by one (and stored once). Every
    // sum is `init + v₀w₀ + v₁w₁ + …` in the order of the entries, whatever
    // the blocks.
    if size_of::<A>() == 4 && o >= 32 {
        blocks::<A, E, 32>(y, init, entries, w, o, store);
    } else if size_of::<A>() != 4 && o >= 16 {
        blocks::<A, E, 16>(y, init, entries, w, o, store);
    } else if o >= 8 {
        blocks::<A, E, 8>(y, init, entries, w, o, store);
    } else {
        blocks::<A, E, 1>(y, init, entries, w, o, store);
    }
}

/// [`row_axpys_generic`] by blocks of `B` columns, two per pass (`o ≥ B`).
#[inline(always)]
fn blocks<A: NdFloat, E: Entries<A>, const B: usize>(
    y: &mut [A],
    init: &[A],
    entries: E,
    w: &[A],
    o: usize,
    store: Store<A>,
) {
    let n = o.div_ceil(B);
    // Block k covers columns start(k)..start(k) + B, of which the first
    // k·B − start(k) belong to block k − 1 already.
    let start = |k: usize| (k * B).min(o - B);
    let part = |k: usize| (start(k), k * B - start(k));
    let mut k = 0;
    while k + 2 <= n {
        column_blocks::<A, E, B, 2>(
            y,
            init,
            entries.clone(),
            w,
            o,
            [part(k), part(k + 1)],
            store,
        );
        k += 2;
    }
    if k < n {
        column_blocks::<A, E, B, 1>(y, init, entries, w, o, [part(k)], store);
    }
}

/// For each `(s, done)` in `parts`: the sums of columns `s..s + B`, in one
/// pass over the entries, stored from column `s + done` on.
#[inline(always)]
fn column_blocks<A: NdFloat, E: Entries<A>, const B: usize, const K: usize>(
    y: &mut [A],
    init: &[A],
    entries: E,
    w: &[A],
    o: usize,
    parts: [(usize, usize); K],
    store: Store<A>,
) {
    let mut acc: [[A; B]; K] =
        std::array::from_fn(|i| init[parts[i].0..][..B].try_into().expect("B columns"));
    for (j, v) in entries {
        let row = &w[j as usize * o..][..o];
        for (acc, &(s, _)) in acc.iter_mut().zip(&parts) {
            let part: &[A; B] = row[s..][..B].try_into().expect("B columns");
            for k in 0..B {
                acc[k] += v * part[k];
            }
        }
    }
    for (acc, &(s, done)) in acc.iter().zip(&parts) {
        // Whole blocks of B, a length the compiler knows.
        let out: &mut [A; B] = (&mut y[s..s + B]).try_into().expect("B columns");
        match store {
            // The overlapped columns get the same value again.
            Store::Set => *out = *acc,
            // The overlapped columns were updated by the block before.
            Store::AddScaled(alpha) => {
                for k in 0..B {
                    let updated = out[k] + alpha * acc[k];
                    out[k] = if k >= done { updated } else { out[k] };
                }
            }
        }
    }
}

/// `dw = xᵀ·dout` for sparse rows `x` (the sparse path of `∂L/∂W`).
///
/// `dw` is overwritten: `dw[j, ..] = Σ x[n, j] · dout[n, ..]` over the
/// stored entries of column `j`, added in increasing `n` (0 for a column
/// with none).
///
/// # Shapes
///
/// - `x`: `[N, I]`, `dout`: `[N, O]`, `dw`: `[I, O]`.
///
/// # Panics
///
/// If the shapes do not chain (the message names them).
#[track_caller]
pub fn sparse_t_dot_into<A: NdFloat>(
    x: &SparseRows<A>,
    dout: ArrayView2<'_, A>,
    dw: ArrayViewMut2<'_, A>,
) {
    assert!(
        dout.nrows() == x.nrows() && dw.dim() == (x.ncols(), dout.ncols()),
        "sparse_t_dot: x has shape [{}, {}], dout {:?} and dW {:?}; they do not chain",
        x.nrows(),
        x.ncols(),
        dout.shape(),
        dw.shape()
    );
    sparse_t_dot_with(x, dout, dw, &mut TransposeScratch::default());
}

/// Buffers for [`sparse_t_dot_with`], kept between calls so that a layer's
/// backward pass allocates nothing.
#[derive(Clone, Debug)]
pub struct TransposeScratch<A> {
    starts: Vec<usize>,
    next: Vec<usize>,
    entries: Vec<(u32, A)>,
}

impl<A> Default for TransposeScratch<A> {
    fn default() -> Self {
        TransposeScratch {
            starts: Vec::new(),
            next: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// [`sparse_t_dot_into`] with buffers that outlive the call.
///
/// # Panics
///
/// If the shapes do not chain (the message names them).
#[track_caller]
pub fn sparse_t_dot_with<A: NdFloat>(
    x: &SparseRows<A>,
    dout: ArrayView2<'_, A>,
    dw: ArrayViewMut2<'_, A>,
    scratch: &mut TransposeScratch<A>,
) {
    // Every row is written: rows of unused columns get zeros.
    t_dot(x, dout, dw, scratch, false, Store::Set);
}

/// The sparse backward pass and SGD step of `W` in one: `w ← w − lr · xᵀ·dout`,
/// the same numbers, bit for bit, as [`sparse_t_dot_into`] followed by
/// `w.scaled_add(-lr, &dw)`, without the `dW` array. Rows of `w` for columns
/// that no example uses are not touched (their gradient is exactly 0).
/// (For a finite `lr ≥ 0`: with a negative `lr` the reference turns a
/// `-0.0` weight of an unused row into `+0.0`, and with an infinite or NaN
/// one into NaN, where this leaves the row as it is.)
///
/// # Panics
///
/// If the shapes do not chain (the message names them).
#[track_caller]
pub fn sparse_sgd_with<A: NdFloat>(
    x: &SparseRows<A>,
    dout: ArrayView2<'_, A>,
    w: ArrayViewMut2<'_, A>,
    lr: A,
    scratch: &mut TransposeScratch<A>,
) {
    t_dot(x, dout, w, scratch, true, Store::AddScaled(-lr));
}

/// [`sparse_t_dot_with`] for a `dw` that holds zeros already (a new
/// array): the rows of unused columns are not written again.
///
/// # Panics
///
/// If the shapes do not chain (the message names them).
#[track_caller]
pub fn sparse_t_dot_zeroed_with<A: NdFloat>(
    x: &SparseRows<A>,
    dout: ArrayView2<'_, A>,
    dw: ArrayViewMut2<'_, A>,
    scratch: &mut TransposeScratch<A>,
) {
    t_dot(x, dout, dw, scratch, true, Store::Set);
}

/// `dw = xᵀ·dout`; with `zeroed`, the rows of unused columns are left as
/// they are (zeros).
#[track_caller]
fn t_dot<A: NdFloat>(
    x: &SparseRows<A>,
    dout: ArrayView2<'_, A>,
    mut dw: ArrayViewMut2<'_, A>,
    scratch: &mut TransposeScratch<A>,
    zeroed: bool,
    store: Store<A>,
) {
    assert!(
        dout.nrows() == x.nrows() && dw.dim() == (x.ncols(), dout.ncols()),
        "sparse_t_dot: x has shape [{}, {}], dout {:?} and dW {:?}; they do not chain",
        x.nrows(),
        x.ncols(),
        dout.shape(),
        dw.shape()
    );
    // Row j of xᵀ·dout is Σₙ x[n, j] · dout[n, ..], the same product as
    // the forward pass's, with xᵀ for x, dout for W and a zero bias. xᵀ is
    // made by a counting sort of the entries by column, into (n, value)
    // pairs: one scattered write per entry. Rows j that no example uses
    // come out zero.
    let TransposeScratch {
        starts,
        next,
        entries,
    } = scratch;
    starts.clear();
    starts.resize(x.ncols() + 1, 0);
    // The closed rows' entries only (not those of a row still being built).
    for &j in &x.indices[..x.nnz()] {
        starts[j as usize + 1] += 1;
    }
    for j in 0..x.ncols() {
        starts[j + 1] += starts[j];
    }
    next.clear();
    next.extend_from_slice(&starts[..x.ncols()]);
    // Every slot is written below: old contents may stay (no clearing).
    entries.resize(x.nnz(), (0, A::zero()));
    for n in 0..x.nrows() {
        let (cols, vals) = x.row(n);
        let n32 = u32::try_from(n).expect("fewer than 2³² rows");
        for (&j, &v) in cols.iter().zip(vals) {
            let slot = &mut next[j as usize];
            entries[*slot] = (n32, v);
            *slot += 1;
        }
    }
    let o = dout.ncols();
    let dout = dout.as_standard_layout();
    let dout = dout.as_slice().expect("standard layout");
    let zeros = vec![A::zero(); o];
    let row = |j: usize| entries[starts[j]..starts[j + 1]].iter().copied();
    match dw.as_slice_mut() {
        Some(y) => rows_axpys(y, &zeros, row, dout, o, zeroed, store),
        None => {
            // A copy in standard layout: zeros for the sums, or `w` to add to.
            let mut y = match store {
                Store::Set => Array2::zeros(dw.dim()),
                Store::AddScaled(_) => dw.as_standard_layout().into_owned(),
            };
            let y_slice = y.as_slice_mut().expect("standard layout");
            rows_axpys(y_slice, &zeros, row, dout, o, true, store);
            dw.assign(&y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};

    #[test]
    fn from_dense_keeps_the_nonzeros_in_order() {
        let x = array![
            [0.0_f32, 1.5, 0.0, -2.0],
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 0.0, 0.0, 0.0]
        ];
        let s = SparseRows::from_dense(x.view());
        assert_eq!(s.nrows(), 3);
        assert_eq!(s.nnz(), 3);
        assert_eq!(s.row(0), (&[1u32, 3][..], &[1.5, -2.0][..]));
        assert_eq!(s.row(1), (&[][..], &[][..]));
        assert_eq!(s.row(2), (&[0u32][..], &[3.0][..]));
        assert_eq!(s.density(), 0.25);
        assert_eq!(s.to_dense(), x);
        assert_eq!(density(x.view()), 0.25);
    }

    /// The AVX-512 compaction gives what the scalar one gives, for every row
    /// length around its blocks of 16, with -0.0 (a zero) and NaN (not one).
    #[test]
    fn every_compact_build_gives_the_same_entries() {
        for n in 0..=70 {
            let row: Vec<f32> = (0..n)
                .map(|j| match j % 7 {
                    0 | 3 => 0.0,
                    5 => -0.0,
                    6 if j % 2 == 0 => f32::NAN,
                    _ => j as f32 * 0.25 - 4.0,
                })
                .collect();
            type Compact<'f> = &'f dyn Fn(&[f32], &mut [u32], &mut [f32]) -> usize;
            let run = |f: Compact<'_>| {
                let (mut cols, mut vals) = (vec![u32::MAX; n], vec![7.0f32; n]);
                let k = f(&row, &mut cols, &mut vals);
                let bits: Vec<u32> = vals[..k].iter().map(|v| v.to_bits()).collect();
                (cols[..k].to_vec(), bits)
            };
            let want = run(&|r, c, v| compact_generic(r, c, v));
            let expected: Vec<u32> = (0..n as u32).filter(|&j| row[j as usize] != 0.0).collect();
            assert_eq!(want.0, expected, "row length {n}");
            assert_eq!(run(&|r, c, v| compact(r, c, v)), want, "row length {n}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                let got = run(&|r, c, v| unsafe { compact_f32_avx512(r, c, v) });
                assert_eq!(got, want, "row length {n}");
            }
        }
    }

    /// Every build of the kernel this CPU can run (generic, AVX2, AVX-512F)
    /// gives the same bits, for each block width and both ways of storing.
    #[test]
    fn every_kernel_build_gives_the_same_bits() {
        fn check<A: NdFloat>() {
            // A pseudo-random walk over values of all magnitudes, so that the
            // order of the additions shows in the rounding.
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                A::from((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5).unwrap()
                    * A::from(1u64 << (state % 20)).unwrap()
            };
            let rows = 7;
            for o in [1, 3, 8, 15, 16, 17, 31, 32, 33, 50, 64, 70] {
                let inputs = 40;
                let w: Vec<A> = (0..inputs * o).map(|_| next()).collect();
                let init: Vec<A> = (0..o).map(|_| next()).collect();
                // Row n uses the columns j with (j + n) % 3 != 0, and row 2 none.
                let cols: Vec<Vec<u32>> = (0..rows)
                    .map(|n| {
                        (0..inputs as u32)
                            .filter(|j| n != 2 && !(j + n as u32).is_multiple_of(3))
                            .collect()
                    })
                    .collect();
                let vals: Vec<Vec<A>> = cols
                    .iter()
                    .map(|c| c.iter().map(|_| next()).collect())
                    .collect();
                let start: Vec<A> = (0..rows * o).map(|_| next()).collect();
                for store in [Store::Set, Store::AddScaled(A::from(-0.1).unwrap())] {
                    for skip_empty in [false, true] {
                        let run = |kernel: &dyn Fn(&mut [A])| {
                            let mut y = start.clone();
                            kernel(&mut y);
                            y.iter()
                                .map(|v| v.to_f64().unwrap().to_bits())
                                .collect::<Vec<_>>()
                        };
                        let row = |n: usize| entries(&cols[n], &vals[n]);
                        let generic =
                            run(&|y| rows_axpys_generic(y, &init, row, &w, o, skip_empty, store));
                        #[cfg(target_arch = "x86_64")]
                        {
                            if std::arch::is_x86_feature_detected!("avx2") {
                                // SAFETY: the CPU has AVX2, checked just above.
                                let avx2 = run(&|y| unsafe {
                                    rows_axpys_avx2(y, &init, row, &w, o, skip_empty, store)
                                });
                                assert!(avx2 == generic, "AVX2 differs at width {o}");
                            }
                            if std::arch::is_x86_feature_detected!("avx512f") {
                                // SAFETY: the CPU has AVX-512F, checked just above.
                                let avx512 = run(&|y| unsafe {
                                    rows_axpys_avx512(y, &init, row, &w, o, skip_empty, store)
                                });
                                assert!(avx512 == generic, "AVX-512F differs at width {o}");
                            }
                        }
                        assert!(
                            run(&|y| rows_axpys(y, &init, row, &w, o, skip_empty, store))
                                == generic
                        );
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn sparse_products_equal_the_dense_ones_on_integers() {
        // Small integers: every sum is exact, so the orders of addition agree.
        let x = array![[0.0_f64, 2.0, 0.0], [1.0, 0.0, 3.0]];
        let w = array![[1.0, -1.0], [2.0, 0.0], [-3.0, 4.0]];
        let b = array![10.0, 20.0];
        let s = SparseRows::from_dense(x.view());
        assert_eq!(sparse_affine(&s, w.view(), b.view()), x.dot(&w) + &b);
        let dout = array![[1.0, 2.0], [-1.0, 5.0]];
        let mut dw = Array2::from_elem((3, 2), 99.0);
        sparse_t_dot_into(&s, dout.view(), dw.view_mut());
        assert_eq!(dw, x.t().dot(&dout));
    }

    #[test]
    fn outputs_in_other_layouts_are_filled_too() {
        let x = array![[0.0_f64, 2.0], [1.0, 0.0]];
        let w = array![[1.0, 2.0], [3.0, 4.0]];
        let s = SparseRows::from_dense(x.view());
        let mut out = Array2::zeros((2, 2));
        sparse_affine_into(
            &s,
            w.view(),
            array![0.0, 0.0].view(),
            out.view_mut().reversed_axes(),
        );
        assert_eq!(out.t(), x.dot(&w));
        let mut dw = Array2::zeros((2, 2));
        sparse_t_dot_into(&s, w.view(), dw.view_mut().reversed_axes());
        assert_eq!(dw.t(), x.t().dot(&w));
    }

    #[test]
    #[should_panic(expected = "column 1 after column 2; columns must increase within a row")]
    fn columns_must_increase_within_a_row() {
        let mut s = SparseRows::<f32>::new(4);
        s.push(2, 1.0);
        s.push(1, 1.0);
    }

    #[test]
    fn a_new_row_may_start_at_any_column() {
        let mut s = SparseRows::<f32>::new(4);
        s.push(3, 1.0);
        s.end_row();
        s.push(0, 2.0);
        s.end_row();
        assert_eq!(
            s.to_dense(),
            array![[0.0, 0.0, 0.0, 1.0], [2.0, 0.0, 0.0, 0.0]]
        );
    }

    #[test]
    #[should_panic(expected = "x has shape [1, 3], W [2, 2] and b [2]; they do not chain")]
    fn shapes_that_do_not_chain_are_named() {
        let s = SparseRows::from_dense(array![[1.0_f32, 0.0, 0.0]].view());
        sparse_affine(&s, Array2::zeros((2, 2)).view(), Array1::zeros(2).view());
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let x = array![
            [0.0_f32, 1.5, 0.0, -2.0],
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 4.0, 0.0, 0.0]
        ];
        let t = SparseRows::from_dense(x.view()).transpose();
        assert_eq!(t.to_dense(), x.t());
        assert_eq!(t.row(1), (&[0u32, 2][..], &[1.5, 4.0][..]));
    }
}
