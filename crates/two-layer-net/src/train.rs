//! Mini-batch SGD training, as in DLFS §5.7.4 (`train_neuralnet.py`).

use std::ops::ControlFlow;

use core_layers::sparse::{InputPath, SPARSE_MAX_DENSITY};
use core_layers::{Labels, SparseRows};
use ndarray::{Array1, Array2, ArrayViewMut2, NdFloat};
use rand::Rng;
use rayon::prelude::*;

use crate::TwoLayerNet;

/// Images as bytes (one row of `features` pixels per example) and their class labels.
///
/// Kept as `u8` and converted to floats (`x / 255`, the book's `normalize`)
/// one batch at a time, so 60,000 MNIST images take 47 MB, not 188 (f32).
#[derive(Clone, Copy, Debug)]
pub struct ImageSet<'a> {
    pixels: &'a [u8],
    labels: &'a [u8],
    features: usize,
}

impl<'a> ImageSet<'a> {
    /// Wraps `pixels` (`labels.len() × features` bytes, row-major) and `labels`.
    ///
    /// # Panics
    ///
    /// If `pixels` does not hold `features` bytes per label.
    #[track_caller]
    pub fn new(pixels: &'a [u8], labels: &'a [u8], features: usize) -> Self {
        assert!(
            features > 0 && pixels.len() == labels.len() * features,
            "ImageSet::new: {} pixel bytes do not make {} images of {} pixels",
            pixels.len(),
            labels.len(),
            features
        );
        ImageSet {
            pixels,
            labels,
            features,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per example.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The label of example `i`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Writes examples `idx` into the rows of `x` (scaled by 1/255) and their
    /// labels into `t`.
    ///
    /// # Panics
    ///
    /// If `x` is not `[idx.len(), features]` or `t` not `[idx.len()]`.
    #[track_caller]
    pub fn batch_into<A: NdFloat>(
        &self,
        idx: &[usize],
        mut x: ArrayViewMut2<'_, A>,
        t: &mut Array1<usize>,
    ) {
        assert_eq!(
            x.dim(),
            (idx.len(), self.features),
            "ImageSet::batch_into: wrong buffer shape"
        );
        assert_eq!(
            t.len(),
            idx.len(),
            "ImageSet::batch_into: wrong label buffer length"
        );
        // The book's normalisation, `x / 255.0`. The exact division (not a
        // multiplication by 1/255, which rounds differently) vectorises.
        let d255 = A::from(255.0).expect("255 is representable");
        let convert = |p: u8| A::from(p).expect("a byte is representable") / d255;
        for ((mut row, &i), t) in x.outer_iter_mut().zip(idx).zip(t.iter_mut()) {
            let src = &self.pixels[i * self.features..(i + 1) * self.features];
            match row.as_slice_mut() {
                Some(dst) => dst.iter_mut().zip(src).for_each(|(d, &p)| *d = convert(p)),
                None => row.iter_mut().zip(src).for_each(|(d, &p)| *d = convert(p)),
            }
            *t = usize::from(self.labels[i]);
        }
    }

    /// The images by their nonzero pixels, if `path` picks the sparse path
    /// for them: with [`InputPath::Auto`], when at most [`SPARSE_MAX_DENSITY`]
    /// of the pixels are nonzero (19 % for MNIST). `None` otherwise, and for
    /// rows of more than 65,536 pixels.
    pub fn to_sparse(&self, path: InputPath) -> Option<SparseImages<'a>> {
        if self.features > 1 << 16 || path == InputPath::Dense {
            return None;
        }
        // Blocks of rows, each on a rayon thread: first the nonzero pixels
        // of each block are counted (in byte-wide lanes, a vector loop), then
        // each block writes its entries at its own offset.
        const BLOCK: usize = 4096;
        let block_bytes = self.features * BLOCK;
        let counts: Vec<usize> = self
            .pixels
            .par_chunks(block_bytes)
            .map(|c| {
                c.chunks(255)
                    .map(|c| usize::from(c.iter().fold(0u8, |n, &p| n + u8::from(p != 0))))
                    .sum::<usize>()
            })
            .collect();
        let nonzero: usize = counts.iter().sum();
        // The same quotient as `core_layers::sparse::density`, so that the
        // data and the layer agree at the threshold.
        let density = nonzero as f64 / self.pixels.len().max(1) as f64;
        if path == InputPath::Auto && density > SPARSE_MAX_DENSITY {
            return None;
        }
        let mut indptr = vec![0usize; self.len() + 1];
        let mut indices = vec![0u16; nonzero];
        let mut values = vec![0u8; nonzero];
        // Each block's share of the three arrays.
        let mut shares = Vec::with_capacity(counts.len());
        let (mut ptr_rest, mut idx_rest, mut val_rest) =
            (&mut indptr[1..], &mut indices[..], &mut values[..]);
        let mut offset = 0;
        for (rows, &count) in self.pixels.chunks(block_bytes).zip(&counts) {
            let (p, pr) = ptr_rest.split_at_mut(rows.len() / self.features);
            let (i, ir) = idx_rest.split_at_mut(count);
            let (v, vr) = val_rest.split_at_mut(count);
            shares.push((rows, p, i, v, offset));
            (ptr_rest, idx_rest, val_rest) = (pr, ir, vr);
            offset += count;
        }
        shares
            .into_par_iter()
            .for_each(|(rows, ends, indices, values, offset)| {
                let mut k = 0;
                for (row, end) in rows.chunks_exact(self.features).zip(ends) {
                    // 32 pixels at a time: a bit mask of the nonzero ones (a
                    // vector compare), then one step per set bit.
                    for (c, chunk) in row.chunks(32).enumerate() {
                        let mut mask = chunk
                            .iter()
                            .enumerate()
                            .fold(0u32, |m, (i, &p)| m | (u32::from(p != 0) << i));
                        while mask != 0 {
                            let i = mask.trailing_zeros() as usize;
                            // Below 2¹⁶: checked above.
                            indices[k] = (c * 32 + i) as u16;
                            values[k] = chunk[i];
                            k += 1;
                            mask &= mask - 1;
                        }
                    }
                    *end = offset + k;
                }
            });
        Some(SparseImages {
            indptr,
            indices,
            values,
            dense: *self,
        })
    }
}

/// An [`ImageSet`] by its nonzero pixels: 3 bytes per nonzero pixel (a
/// `u16` column and the `u8` value), 27 MB for MNIST's 70,000 images.
#[derive(Clone, Debug)]
pub struct SparseImages<'a> {
    indptr: Vec<usize>,
    indices: Vec<u16>,
    values: Vec<u8>,
    dense: ImageSet<'a>,
}

impl SparseImages<'_> {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.dense.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.dense.is_empty()
    }

    /// Writes examples `idx` into `x` (cleared first; values scaled by 1/255,
    /// exactly as [`ImageSet::batch_into`] does) and their labels into `t`.
    ///
    /// # Panics
    ///
    /// If `x` does not have one column per pixel or `t` not `[idx.len()]`.
    #[track_caller]
    pub fn batch_into<A: NdFloat>(
        &self,
        idx: &[usize],
        x: &mut SparseRows<A>,
        t: &mut Array1<usize>,
    ) {
        assert_eq!(
            x.ncols(),
            self.dense.features(),
            "SparseImages::batch_into: wrong number of columns"
        );
        assert_eq!(
            t.len(),
            idx.len(),
            "SparseImages::batch_into: wrong label buffer length"
        );
        // The book's `x / 255.0` for every byte value, computed once.
        let d255 = A::from(255.0).expect("255 is representable");
        let scaled: [A; 256] =
            std::array::from_fn(|p| A::from(p).expect("a byte is representable") / d255);
        x.clear();
        self.prefetch(idx);
        for (&i, t) in idx.iter().zip(t.iter_mut()) {
            let (start, end) = (self.indptr[i], self.indptr[i + 1]);
            let values = self.values[start..end]
                .iter()
                .map(|&p| scaled[usize::from(p)]);
            x.push_row(&self.indices[start..end], values);
            *t = usize::from(self.dense.label(i));
        }
    }
}

impl SparseImages<'_> {
    /// Asks the CPU to bring examples `idx` into its caches. The rows are
    /// scattered over 27 MB: asking for all of them before copying any lets
    /// their cache misses overlap.
    fn prefetch(&self, idx: &[usize]) {
        for &i in idx {
            let (start, end) = (self.indptr[i], self.indptr[i + 1]);
            prefetch(&self.indices[start..end]);
            prefetch(&self.values[start..end]);
        }
    }
}

/// Hyperparameters of a training run. [`TrainConfig::book`] has the book's values.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Number of SGD steps (the book's `iters_num`, 10,000).
    pub iters: usize,
    /// Examples per step, drawn uniformly with replacement (100).
    pub batch_size: usize,
    /// Learning rate (0.1).
    pub lr: f64,
}

impl TrainConfig {
    /// The book's settings: 10,000 iterations, batch 100, learning rate 0.1.
    pub fn book() -> Self {
        TrainConfig {
            iters: 10_000,
            batch_size: 100,
            lr: 0.1,
        }
    }

    /// Iterations per epoch: `max(train_size / batch_size, 1)`, with integer
    /// division. The book divides floats, so for a batch size that does not
    /// divide the training set (e.g. 128: 468.75) `i % iter_per_epoch == 0`
    /// holds only at the multiples of 468.75 that are whole numbers, every 4
    /// epochs; here an epoch is always a whole number of iterations.
    pub fn iters_per_epoch(&self, train_size: usize) -> usize {
        (train_size / self.batch_size).max(1)
    }
}

/// Accuracies measured at the start of an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, from 0 (measured before any training step).
    pub epoch: usize,
    /// The iteration at which it was measured (`epoch · iters_per_epoch`).
    pub iter: usize,
    /// Accuracy on the whole training set.
    pub train_acc: f64,
    /// Accuracy on the whole test set.
    pub test_acc: f64,
}

/// What a training run recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The loss of each iteration's batch, from the forward pass of its
    /// gradient (before that iteration's update).
    pub losses: Vec<f64>,
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
}

/// Progress of a training run, passed to its observer.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// An iteration finished with this batch loss.
    Iteration {
        /// Its number, from 0.
        iter: usize,
        /// The batch loss, before the update.
        loss: f64,
    },
    /// An epoch's accuracies were measured.
    Epoch(&'a EpochRecord),
}

/// The loss stopped being a finite number.
#[derive(Clone, Debug, PartialEq)]
pub struct Diverged {
    /// The iteration whose loss was not finite.
    pub iter: usize,
    /// That loss (NaN or ±∞).
    pub loss: f64,
    /// Everything recorded before, and the bad loss.
    pub history: History,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training diverged: the loss at iteration {} is {}; try a smaller learning rate \
             (or smaller initial weights, if it diverged at once)",
            self.iter, self.loss
        )
    }
}

impl std::error::Error for Diverged {}

/// Rows per block when measuring accuracy on a whole data set: 1,000 rows
/// of 784 `f32` are 3 MB of scratch instead of 188 MB for all 60,000. The
/// blocks are spread over rayon's threads.
const EVAL_BLOCK: usize = 1_000;

/// A data set ready for training and evaluation: the images by their
/// nonzeros when the first layer takes its sparse path for them, as bytes
/// otherwise. Build it once and pass it to [`train`] and [`accuracy`].
#[derive(Clone, Debug)]
pub enum Examples<'a> {
    /// Converted to dense float batches as they are used.
    Dense(ImageSet<'a>),
    /// Converted to sparse float batches as they are used.
    Sparse(SparseImages<'a>),
}

impl<'a> Examples<'a> {
    /// `images` in the form that `path` (a net's [`TwoLayerNet::input_path`])
    /// calls for; see [`ImageSet::to_sparse`].
    pub fn new(images: ImageSet<'a>, path: InputPath) -> Self {
        match images.to_sparse(path) {
            Some(sparse) => Examples::Sparse(sparse),
            None => Examples::Dense(images),
        }
    }

    /// The images as bytes.
    pub fn images(&self) -> ImageSet<'a> {
        match self {
            Examples::Dense(d) => *d,
            Examples::Sparse(s) => s.dense,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.images().len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the images are kept by their nonzeros.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Examples::Sparse(_))
    }
}

/// The number of examples of `data` that `net` classifies correctly,
/// counted block by block on rayon's threads (a sum of integers: the same
/// for any number of threads).
pub fn count_correct<A: NdFloat>(net: &TwoLayerNet<A>, data: &Examples<'_>) -> usize {
    count_correct_on(net, data, true)
}

/// [`count_correct`], on rayon's threads or on the calling one.
fn count_correct_on<A: NdFloat>(
    net: &TwoLayerNet<A>,
    data: &Examples<'_>,
    parallel: bool,
) -> usize {
    let features = data.images().features();
    let blocks = data.len().div_ceil(EVAL_BLOCK);
    // One set of batch buffers per thread, reused from block to block: a
    // new one per block made the evaluations fault in 1.4 GB of fresh pages
    // over a standard run (0.5 s of system time).
    let buffers = || match data {
        Examples::Dense(_) => Batch::Dense(Array2::zeros((EVAL_BLOCK, features))),
        Examples::Sparse(_) => Batch::Sparse(SparseRows::new(features)),
    };
    let block = |(batch, idx, t): &mut (Batch<A>, Vec<usize>, Array1<usize>), b: usize| {
        let start = b * EVAL_BLOCK;
        idx.clear();
        idx.extend(start..data.len().min(start + EVAL_BLOCK));
        if t.len() != idx.len() {
            *t = Array1::zeros(idx.len());
        }
        match (batch, data) {
            (Batch::Dense(x), Examples::Dense(d)) => {
                let mut x = x.slice_mut(ndarray::s![..idx.len(), ..]);
                d.batch_into(idx, x.view_mut(), t);
                net.correct(x.view(), Labels::Classes(t.view()))
            }
            (Batch::Sparse(x), Examples::Sparse(d)) => {
                d.batch_into(idx, x, t);
                net.correct(&*x, Labels::Classes(t.view()))
            }
            _ => unreachable!("the buffers have the form of the data"),
        }
    };
    let init = || (buffers(), Vec::with_capacity(EVAL_BLOCK), Array1::zeros(0));
    if parallel {
        (0..blocks).into_par_iter().map_init(init, block).sum()
    } else {
        let mut buffers = init();
        (0..blocks).map(|b| block(&mut buffers, b)).sum()
    }
}

/// Accuracy of `net` on all of `data` (0 for an empty set).
pub fn accuracy<A: NdFloat>(net: &TwoLayerNet<A>, data: &Examples<'_>) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    count_correct(net, data) as f64 / data.len() as f64
}

/// Asks the CPU to bring `data` into its caches (no effect off x86-64).
fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = size_of_val(data);
        let base = data.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch is only a hint and never faults; the
            // address is inside `data` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// An evaluation in flight: its epoch, its iteration, and the thread
/// computing its (train, test) accuracies.
type Pending<'scope> = (
    usize,
    usize,
    std::thread::ScopedJoinHandle<'scope, (f64, f64)>,
);

/// The batch buffer of [`train`].
enum Batch<A> {
    Dense(Array2<A>),
    Sparse(SparseRows<A>),
}

/// Trains `net` with mini-batch SGD, as DLFS §5.7.4 does.
///
/// Each iteration draws `batch_size` indices uniformly with replacement from
/// `train` (with `rng`), computes the gradient by backprop, updates
/// `p ← p − lr · ∂L/∂p`, and records the batch loss. Every
/// [`TrainConfig::iters_per_epoch`] iterations, counting from iteration 0,
/// it measures the accuracy on all of `train` and `test` (after that
/// iteration's update, as the book does).
///
/// Each evaluation runs on a second thread, on a copy of the parameters,
/// while training goes on: the accuracies are those of the parameters at
/// that iteration, as in the book, but the [`Event::Epoch`] reaches
/// `observe` later: at the iteration where the next evaluation is due
/// (after that iteration's own event), or at the end of the run. Epochs
/// arrive in order, at most one evaluation is in flight, and the point of
/// delivery does not depend on the threads' timing. A `Break` returned for
/// an epoch stops the run at that iteration; after a `Break` on an
/// iteration, or after divergence, the evaluation in flight is still
/// finished and its epoch delivered.
///
/// One difference from the book: the recorded loss is the one the
/// gradient's own forward pass computed, *before* the update. The book calls
/// `network.loss(x_batch, t_batch)` after the update, a second forward pass
/// whose only output is that number; dropping it saves a third of each
/// step's work and leaves the trained parameters and accuracies unchanged.
/// The curve is the same one shifted by one update.
///
/// When the data are mostly zeros (MNIST: 19 % nonzero pixels; see
/// [`ImageSet::to_sparse`]), batches are built in sparse form, so the first
/// layer takes its exact sparse path, and the evaluations too.
///
/// `observe` sees every event and may stop the run early with
/// `ControlFlow::Break`. Indices are drawn one batch ahead (the same draws,
/// in the same order), so a run that stops early, by a `Break` or by
/// divergence, has drawn one batch more from `rng` than it used. The same
/// `rng` state, data and thread count give the same numbers, and the same
/// `observe` stops at the same iteration.
///
/// # Errors
///
/// [`Diverged`] as soon as a batch loss is NaN or infinite.
///
/// # Panics
///
/// If the batch size is 0, `train` is empty, or the data do not fit the net.
#[track_caller]
pub fn train<A, R, F>(
    net: &mut TwoLayerNet<A>,
    train: &Examples<'_>,
    test: &Examples<'_>,
    config: &TrainConfig,
    rng: &mut R,
    mut observe: F,
) -> Result<History, Diverged>
where
    A: NdFloat,
    R: Rng + ?Sized,
    F: FnMut(Event<'_>) -> ControlFlow<()>,
{
    assert!(config.batch_size > 0, "train: batch size must be positive");
    assert!(!train.is_empty(), "train: the training set is empty");
    let lr = A::from(config.lr).expect("the learning rate is representable");
    let per_epoch = config.iters_per_epoch(train.len());
    let mut history = History {
        // Capped so that an absurd iteration count cannot abort the allocation.
        losses: Vec::with_capacity(config.iters.min(1 << 20)),
        epochs: Vec::new(),
    };
    let mut idx = vec![0usize; config.batch_size];
    let mut t = Array1::<usize>::zeros(config.batch_size);
    let features = train.images().features();
    let mut batch = match train {
        Examples::Sparse(_) => Batch::Sparse(SparseRows::new(features)),
        Examples::Dense(_) => Batch::Dense(Array2::zeros((config.batch_size, features))),
    };

    std::thread::scope(|scope| {
        // The evaluation in flight: its epoch and iteration, and its thread.
        let mut pending: Option<Pending<'_>> = None;
        let finish =
            |(epoch, iter, handle): Pending<'_>, history: &mut History, observe: &mut F| {
                // A panic on the evaluation thread goes on here, message intact.
                let (train_acc, test_acc) = handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                let record = EpochRecord {
                    epoch,
                    iter,
                    train_acc,
                    test_acc,
                };
                history.epochs.push(record);
                observe(Event::Epoch(&record))
            };
        // Each batch's indices are drawn one iteration ahead (the same draws
        // in the same order), so that its rows can be fetched from memory
        // while the step before is computed.
        let mut next = vec![0usize; config.batch_size];
        let mut draw = |next: &mut [usize]| {
            for i in next.iter_mut() {
                *i = rng.random_range(0..train.len());
            }
            if let Examples::Sparse(data) = train {
                data.prefetch(next);
            }
        };
        draw(&mut next);
        for iter in 0..config.iters {
            std::mem::swap(&mut idx, &mut next);
            if iter + 1 < config.iters {
                draw(&mut next);
            }
            // The loss is the one the gradient's forward pass computed, before
            // the update (the book computes it again after the update: a second
            // forward pass that changes nothing else).
            let loss = match (&mut batch, train) {
                (Batch::Sparse(x), Examples::Sparse(data)) => {
                    data.batch_into(&idx, x, &mut t);
                    // Handed over and back: no copy of the batch per step.
                    let taken = std::mem::replace(x, SparseRows::new(0));
                    let (loss, back) = net.train_step_sparse(taken, Labels::Classes(t.view()), lr);
                    *x = back;
                    loss
                }
                (Batch::Dense(x), Examples::Dense(data)) => {
                    data.batch_into(&idx, x.view_mut(), &mut t);
                    net.train_step(x.view(), Labels::Classes(t.view()), lr)
                }
                _ => unreachable!("the batch has the form of the data"),
            };
            let loss = loss.to_f64().unwrap_or(f64::NAN);
            history.losses.push(loss);
            if !loss.is_finite() {
                if let Some(p) = pending.take() {
                    let _ = finish(p, &mut history, &mut observe);
                }
                return Err(Diverged {
                    iter,
                    loss,
                    history,
                });
            }
            if observe(Event::Iteration { iter, loss }).is_break() {
                break;
            }
            // An evaluation is collected when the next one is due (or at the
            // end): a fixed iteration, whatever the threads' timing, so that a
            // `Break` on its event stops every run at the same place.
            let due = iter % per_epoch == 0;
            if due
                && let Some(p) = pending.take()
                && finish(p, &mut history, &mut observe).is_break()
            {
                break;
            }
            if due {
                let snapshot = net.snapshot();
                let handle = scope.spawn(move || {
                    (
                        count_correct_on(&snapshot, train, false) as f64
                            / train.len().max(1) as f64,
                        count_correct_on(&snapshot, test, false) as f64 / test.len().max(1) as f64,
                    )
                });
                pending = Some((iter / per_epoch, iter, handle));
            }
        }
        if let Some(p) = pending.take() {
            let _ = finish(p, &mut history, &mut observe);
        }
        Ok(history)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    /// Two classes of 4-pixel images that a net separates at once: class 0
    /// lights the left half, class 1 the right.
    fn toy(n: usize) -> (Vec<u8>, Vec<u8>) {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = (i % 2) as u8;
            labels.push(c);
            pixels.extend(if c == 0 {
                [255, 200, 0, 10]
            } else {
                [0, 20, 255, 220]
            });
        }
        (pixels, labels)
    }

    #[test]
    fn batch_into_scales_by_255_and_copies_labels() {
        let (p, l) = toy(4);
        let data = ImageSet::new(&p, &l, 4);
        let mut x = Array2::<f32>::zeros((2, 4));
        let mut t = Array1::zeros(2);
        data.batch_into(&[1, 0], x.view_mut(), &mut t);
        assert_eq!(x.row(0).to_vec(), [0.0, 20.0 / 255.0, 1.0, 220.0 / 255.0]);
        assert_eq!(x.row(1).to_vec(), [1.0, 200.0 / 255.0, 0.0, 10.0 / 255.0]);
        assert_eq!(t.to_vec(), [1, 0]);
    }

    /// Trains a fresh net (init seed 1, sampling seed 9) on `toy(n)`.
    fn train_toy<A: NdFloat>(
        n: usize,
        hidden: usize,
        init_std: f64,
        cfg: TrainConfig,
    ) -> (Result<History, Diverged>, crate::Params<A>) {
        let (p, l) = toy(n);
        let mut net = TwoLayerNet::<A>::new(4, hidden, 2, init_std, &mut StdRng::seed_from_u64(1));
        let data = Examples::new(ImageSet::new(&p, &l, 4), net.input_path());
        let mut rng = StdRng::seed_from_u64(9);
        let h = train(&mut net, &data, &data, &cfg, &mut rng, |_| {
            ControlFlow::Continue(())
        });
        (h, net.params())
    }

    #[test]
    fn epochs_are_counted_from_iteration_zero() {
        let cfg = TrainConfig {
            iters: 25,
            batch_size: 4,
            lr: 0.1,
        };
        let h = train_toy::<f32>(40, 3, 0.01, cfg).0.unwrap();
        // 40 / 4 = 10 iterations per epoch: evaluations at 0, 10, 20.
        assert_eq!(
            h.epochs.iter().map(|e| e.iter).collect::<Vec<_>>(),
            [0, 10, 20]
        );
        assert_eq!(
            h.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(h.losses.len(), 25);
    }

    #[test]
    fn training_learns_a_separable_toy_problem_and_is_repeatable() {
        let cfg = TrainConfig {
            iters: 200,
            batch_size: 8,
            lr: 0.5,
        };
        let (h1, p1) = train_toy::<f64>(64, 8, 0.5, cfg.clone());
        let (h2, p2) = train_toy::<f64>(64, 8, 0.5, cfg);
        let (h1, h2) = (h1.unwrap(), h2.unwrap());
        assert_eq!(h1, h2);
        assert_eq!(p1, p2);
        assert_eq!(h1.epochs.last().unwrap().test_acc, 1.0);
        assert!(
            h1.losses.last().unwrap() < &0.05,
            "final loss {}",
            h1.losses.last().unwrap()
        );
    }

    #[test]
    fn a_huge_learning_rate_diverges_with_the_iteration_named() {
        let cfg = TrainConfig {
            iters: 1000,
            batch_size: 8,
            lr: 1e30,
        };
        let err = train_toy::<f32>(64, 8, 1.0, cfg).0.unwrap_err();
        assert!(!err.loss.is_finite());
        assert_eq!(err.history.losses.len(), err.iter + 1);
        assert!(err.to_string().contains(&format!("iteration {}", err.iter)));
        assert!(err.to_string().contains("smaller learning rate"));
    }
}
