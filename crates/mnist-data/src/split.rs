//! In-memory data: images kept as bytes, converted to floats one batch at a time.

use std::path::Path;

use ndarray::{Array2, Array4, ArrayRef2};
use num_traits::Float;

use crate::dataset::{CLASSES, Dataset, FileKind};
use crate::error::Error;
use crate::idx::{Idx, parse_bytes, read_idx_file};
use crate::source::FetchedFile;

/// The training and test splits of a data set, with where each file came from.
///
/// Made by [`crate::load`]. Holds the images as `u8` (60,000 × 784 bytes, about
/// 47 MB for the training split), so a whole MNIST run needs tens of MB.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// Which data set.
    pub dataset: Dataset,
    /// The 60,000 training images and labels.
    pub train: Split,
    /// The 10,000 test images and labels.
    pub test: Split,
    /// The four files, in the order of [`Dataset::files`], each with its path,
    /// source and verified SHA-256.
    pub files: Vec<FetchedFile>,
}

/// Images and labels of one split, as bytes.
///
/// The float conversions take a list of item indices (a mini-batch) and
/// match the book's `load_mnist` options (DLFS §3.6.1): `normalize` divides
/// by 255 (`x / 255.0`), [`Split::images_f`] is `flatten=True` (N×784),
/// [`Split::images_nchw`] is `flatten=False` (N×1×28×28), and
/// [`Split::one_hot`] is `one_hot_label=True` while [`Split::class_indices`]
/// gives the plain labels.
///
/// ```
/// # use mnist_data::Split;
/// // Two 2×2 images and their labels.
/// let split = Split::new(vec![0, 255, 51, 0, 255, 255, 0, 0], vec![3, 7], 2, 2);
/// let x = split.images_f::<f32>(&[1, 0], true);
/// assert_eq!(x.row(1).to_vec(), [0.0, 1.0, 0.2, 0.0]);
/// assert_eq!(split.one_hot::<f32>(&[1]).row(0)[7], 1.0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Split {
    /// Builds a split from `n × rows × cols` pixel bytes (row-major, one
    /// image after another) and `n` labels in 0..=9.
    ///
    /// For data from files use [`Split::from_idx_files`] or [`crate::load`],
    /// which return errors instead.
    ///
    /// # Panics
    ///
    /// If `images.len() != labels.len() * rows * cols`, or a label is over 9.
    #[track_caller]
    pub fn new(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Self {
        assert_eq!(
            images.len(),
            labels.len() * rows * cols,
            "Split::new: {} pixel bytes do not make {} images of {rows}x{cols}",
            images.len(),
            labels.len()
        );
        if let Some(l) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
            panic!("Split::new: label {l} is not a class 0..=9");
        }
        Split {
            images,
            labels,
            rows,
            cols,
        }
    }

    /// Parses an image file and a label file held in memory (raw or gzip);
    /// the paths are used in error messages only.
    pub fn from_idx_bytes(
        images_path: &Path,
        images: &[u8],
        labels_path: &Path,
        labels: &[u8],
    ) -> Result<Self, Error> {
        let (images, _) = parse_bytes(images_path, images, FileKind::Images)?;
        let (labels, _) = parse_bytes(labels_path, labels, FileKind::Labels)?;
        Self::from_idx(images_path, images, labels_path, labels)
    }

    /// Reads an image file and a label file (raw or gzip). No checksum is
    /// checked: use [`crate::load`] for the published data sets.
    pub fn from_idx_files(images_path: &Path, labels_path: &Path) -> Result<Self, Error> {
        let (images, _) = read_idx_file(images_path, FileKind::Images)?;
        let (labels, _) = read_idx_file(labels_path, FileKind::Labels)?;
        Self::from_idx(images_path, images, labels_path, labels)
    }

    pub(crate) fn from_idx(
        images_path: &Path,
        images: Idx,
        labels_path: &Path,
        labels: Idx,
    ) -> Result<Self, Error> {
        if images.count != labels.count {
            return Err(Error::CountMismatch {
                images_path: images_path.to_owned(),
                images: images.count,
                labels_path: labels_path.to_owned(),
                labels: labels.count,
            });
        }
        Ok(Split {
            images: images.data,
            labels: labels.data,
            rows: images.rows,
            cols: images.cols,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows per image (28).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per image (28).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image, `rows × cols` (784).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels as bytes, `len × rows × cols`, row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// The pixels of image `i`, row-major, 0 (background) to 255.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    #[track_caller]
    pub fn image(&self, i: usize) -> &[u8] {
        self.check_index(i);
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }

    /// The label (class 0..=9) of image `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    #[track_caller]
    pub fn label(&self, i: usize) -> u8 {
        self.check_index(i);
        self.labels[i]
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// How many images there are of each class.
    pub fn label_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The labels of a batch as class indices (the book's `one_hot_label=False`).
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    #[track_caller]
    pub fn class_indices(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().map(|&i| usize::from(self.label(i))).collect()
    }

    /// A batch of images as floats, one flattened image per row.
    ///
    /// With `normalize`, pixels are `x / 255` in 0.0..=1.0, else 0.0..=255.0.
    ///
    /// # Shapes
    ///
    /// - `idx`: `N` indices into this split
    /// - returns: `N × (rows·cols)`, i.e. `N × 784`
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    #[track_caller]
    pub fn images_f<A: Float>(&self, idx: &[usize], normalize: bool) -> Array2<A> {
        let mut out = Array2::zeros((idx.len(), self.pixels()));
        self.batch_into(idx, normalize, &mut out);
        out
    }

    /// Writes a batch into a preallocated buffer, so a training loop need not
    /// allocate. Takes `&mut Array2<A>` or `&mut ArrayViewMut2<A>` (both
    /// dereference to `ArrayRef2`), of any memory layout.
    ///
    /// # Shapes
    ///
    /// - `idx`: `N` indices into this split
    /// - `out`: `N × (rows·cols)`
    ///
    /// # Panics
    ///
    /// If `out` is not `idx.len() × pixels()`, or an index is `>= len()`.
    #[track_caller]
    pub fn batch_into<A: Float>(&self, idx: &[usize], normalize: bool, out: &mut ArrayRef2<A>) {
        assert_eq!(
            out.dim(),
            (idx.len(), self.pixels()),
            "Split::batch_into: output is {:?} but the batch is {}x{}",
            out.dim(),
            idx.len(),
            self.pixels()
        );
        let lut = lookup_table::<A>(normalize);
        for (mut row, &i) in out.rows_mut().into_iter().zip(idx) {
            let src = self.image(i);
            match row.as_slice_mut() {
                Some(dst) => dst
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = lut[usize::from(s)]),
                None => row
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = lut[usize::from(s)]),
            }
        }
    }

    /// A batch of images as `N × 1 × rows × cols` (the book's `flatten=False`).
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    #[track_caller]
    pub fn images_nchw<A: Float>(&self, idx: &[usize], normalize: bool) -> Array4<A> {
        let flat = self.images_f::<A>(idx, normalize);
        flat.into_shape_with_order((idx.len(), 1, self.rows, self.cols))
            .expect("a standard-layout N x (rows*cols) array reshapes to N x 1 x rows x cols")
    }

    /// One-hot labels of a batch (the book's `one_hot_label=True`).
    ///
    /// # Shapes
    ///
    /// - returns: `N × 10`
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    #[track_caller]
    pub fn one_hot<A: Float>(&self, idx: &[usize]) -> Array2<A> {
        let mut out = Array2::zeros((idx.len(), CLASSES));
        for (r, &i) in idx.iter().enumerate() {
            out[[r, usize::from(self.label(i))]] = A::one();
        }
        out
    }

    #[track_caller]
    fn check_index(&self, i: usize) {
        assert!(
            i < self.len(),
            "index {i} out of range for a split of {} images",
            self.len()
        );
    }
}

/// The float value of every byte, so the inner loop is one lookup per pixel.
fn lookup_table<A: Float>(normalize: bool) -> [A; 256] {
    let c = |v: u32| A::from(v).expect("every float type holds 0..=255");
    let scale = c(255);
    std::array::from_fn(|v| {
        if normalize {
            c(v as u32) / scale
        } else {
            c(v as u32)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    fn tiny() -> Split {
        // Three 2×2 images with labels 0, 9, 4.
        Split::new(
            vec![0, 51, 102, 255, 1, 2, 3, 4, 255, 255, 0, 0],
            vec![0, 9, 4],
            2,
            2,
        )
    }

    #[test]
    fn normalize_divides_by_255() {
        let x = tiny().images_f::<f64>(&[0], true);
        assert_eq!(x.row(0).to_vec(), [0.0, 0.2, 0.4, 1.0]);
        let x = tiny().images_f::<f32>(&[1], false);
        assert_eq!(x.row(0).to_vec(), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn batch_into_fills_a_strided_view_in_index_order() {
        let mut buf = Array2::<f32>::from_elem((3, 8), -1.0);
        // Every other column: a non-contiguous view.
        let mut view = buf.slice_mut(s![1.., ..;2]);
        tiny().batch_into(&[2, 0], false, &mut view);
        assert_eq!(
            buf.row(1).to_vec(),
            [255.0, -1.0, 255.0, -1.0, 0.0, -1.0, 0.0, -1.0]
        );
        assert_eq!(
            buf.row(2).to_vec(),
            [0.0, -1.0, 51.0, -1.0, 102.0, -1.0, 255.0, -1.0]
        );
        assert_eq!(buf.row(0).to_vec(), [-1.0; 8]);
    }

    #[test]
    #[should_panic(expected = "output is (2, 3) but the batch is 2x4")]
    fn batch_into_rejects_a_wrong_buffer() {
        let mut buf = Array2::<f32>::zeros((2, 3));
        tiny().batch_into(&[0, 1], false, &mut buf);
    }

    #[test]
    fn nchw_keeps_rows_and_columns() {
        let x = tiny().images_nchw::<f32>(&[0], false);
        assert_eq!(x.shape(), [1, 1, 2, 2]);
        assert_eq!(x[[0, 0, 1, 0]], 102.0);
    }

    #[test]
    fn one_hot_and_class_indices_agree() {
        let t = tiny();
        let oh = t.one_hot::<f32>(&[1, 2]);
        assert_eq!(oh.shape(), [2, 10]);
        assert_eq!(oh.sum(), 2.0);
        assert_eq!((oh[[0, 9]], oh[[1, 4]]), (1.0, 1.0));
        assert_eq!(t.class_indices(&[1, 2]), [9, 4]);
    }

    #[test]
    fn label_counts_count_each_class() {
        assert_eq!(tiny().label_counts(), [1, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    }

    #[test]
    #[should_panic(expected = "index 3 out of range for a split of 3 images")]
    fn image_index_out_of_range_panics_with_the_index() {
        tiny().image(3);
    }
}
