//! The standard job's pieces on real MNIST: one training step at batch 100,
//! one evaluation of all 70,000 images, and the first layer's products by
//! each path (dense BLAS, dense pure Rust, sparse).
//!
//! Run with: cargo bench -p benches --bench training
//!
//! The data come from the cache or any other source `cargo xtask fetch-data`
//! uses (`DLFS_DATA_DIR` and `DLFS_CACHE_DIR` apply).

use std::hint::black_box;

use core_layers::functions::{affine, relu};
use core_layers::sparse::{InputPath, sparse_affine, sparse_t_dot_into};
use core_layers::{Labels, SparseRows};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mnist_data::{DataSet, Dataset, FetchOptions};
use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng, rngs::StdRng};
use two_layer_net::{Examples, ImageSet, TrainConfig, TwoLayerNet, accuracy};

const BATCH: usize = 100;
/// Distinct batches cycled through, so that a step does not always meet the
/// same cached rows.
const BATCHES: usize = 64;

fn mnist() -> DataSet {
    mnist_data::load(Dataset::Mnist, &FetchOptions::from_env())
        .unwrap_or_else(|e| panic!("the benches need real MNIST: {e:#}"))
}

fn sets(data: &DataSet) -> (ImageSet<'_>, ImageSet<'_>) {
    fn set(s: &mnist_data::Split) -> ImageSet<'_> {
        ImageSet::new(s.images(), s.labels(), s.pixels())
    }
    (set(&data.train), set(&data.test))
}

/// A net trained for 600 steps, so that its activations look like a real
/// run's (ReLU sparsity included), and sampled batch indices.
fn trained(train: ImageSet<'_>, test: ImageSet<'_>) -> (TwoLayerNet<f32>, Vec<Vec<usize>>) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut net = TwoLayerNet::<f32>::new(784, 50, 10, 0.01, &mut rng);
    let cfg = TrainConfig {
        iters: 600,
        ..TrainConfig::book()
    };
    let (train, test) = (
        Examples::new(train, net.input_path()),
        Examples::new(test, net.input_path()),
    );
    two_layer_net::train(&mut net, &train, &test, &cfg, &mut rng, |_| {
        std::ops::ControlFlow::Continue(())
    })
    .expect("600 steps do not diverge");
    let batches = (0..BATCHES)
        .map(|_| {
            (0..BATCH)
                .map(|_| rng.random_range(0..train.len()))
                .collect()
        })
        .collect();
    (net, batches)
}

fn train_step(c: &mut Criterion) {
    core_layers::blas::set_num_threads(1);
    let data = mnist();
    let (train, test) = sets(&data);
    let sparse = train.to_sparse(InputPath::Sparse).expect("784 pixels fit");
    let (net, batches) = trained(train, test);
    let mut group = c.benchmark_group("train_step");
    let lr = 0.1f32;

    let mut t = Array1::zeros(BATCH);
    let mut net_s = net.clone();
    let mut xs = SparseRows::new(784);
    let mut k = 0;
    group.bench_function(BenchmarkId::new("sparse", BATCH), |b| {
        b.iter(|| {
            k = (k + 1) % BATCHES;
            sparse.batch_into(&batches[k], &mut xs, &mut t);
            black_box(net_s.train_step(&xs, Labels::Classes(t.view()), lr))
        })
    });
    let mut net_d = net.clone();
    net_d.set_input_path(InputPath::Dense);
    let mut xd = Array2::zeros((BATCH, 784));
    group.bench_function(BenchmarkId::new("dense", BATCH), |b| {
        b.iter(|| {
            k = (k + 1) % BATCHES;
            train.batch_into(&batches[k], xd.view_mut(), &mut t);
            black_box(net_d.train_step(xd.view(), Labels::Classes(t.view()), lr))
        })
    });
    group.finish();
}

fn evaluate(c: &mut Criterion) {
    core_layers::blas::set_num_threads(1);
    let data = mnist();
    let (train, test) = sets(&data);
    let (mut net, _) = trained(train, test);
    let (sparse_train, sparse_test) = (
        Examples::new(train, InputPath::Sparse),
        Examples::new(test, InputPath::Sparse),
    );
    let (dense_train, dense_test) = (
        Examples::new(train, InputPath::Dense),
        Examples::new(test, InputPath::Dense),
    );
    let mut group = c.benchmark_group("evaluate");
    group.sample_size(20);
    let threads = rayon::current_num_threads();
    group.bench_function(
        BenchmarkId::new("sparse", format!("70000/{threads}-threads")),
        |b| b.iter(|| black_box(accuracy(&net, &sparse_train) + accuracy(&net, &sparse_test))),
    );
    net.set_input_path(InputPath::Dense);
    group.bench_function(
        BenchmarkId::new("dense", format!("70000/{threads}-threads")),
        |b| b.iter(|| black_box(accuracy(&net, &dense_train) + accuracy(&net, &dense_test))),
    );
    group.finish();
}

/// `x·W` for `x` `[m, k]` and `W` `[k, n]` by matrixmultiply, the pure-Rust
/// gemm that ndarray calls without the `blas` feature.
fn mm(x: ArrayView2<'_, f32>, w: ArrayView2<'_, f32>) -> Array2<f32> {
    let ((m, k), n) = (x.dim(), w.ncols());
    assert_eq!(k, w.nrows(), "mm: x is {m}×{k}, W {:?}", w.dim());
    let mut out = Array2::<f32>::zeros((m, n));
    let (sx, sw) = (x.strides(), w.strides());
    // SAFETY: the pointers and strides describe the three arrays, which
    // live through the call; `out` is not aliased.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            x.as_ptr(),
            sx[0],
            sx[1],
            w.as_ptr(),
            sw[0],
            sw[1],
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    out
}

fn affine_paths(c: &mut Criterion) {
    core_layers::blas::set_num_threads(1);
    let data = mnist();
    let (train, test) = sets(&data);
    let (net, batches) = trained(train, test);
    let p = net.params();
    let mut x = Array2::zeros((BATCH, 784));
    let mut t = Array1::zeros(BATCH);
    train.batch_into(&batches[0], x.view_mut(), &mut t);
    let xs = SparseRows::from_dense(x.view());
    let h = relu(affine(x.view(), p.w1.view(), p.b1.view()).view());
    let hs = SparseRows::from_dense(h.view());
    let mut rng = StdRng::seed_from_u64(1);
    let dout1 = Array2::from_shape_simple_fn((BATCH, 50), || rng.random::<f32>() - 0.5);
    let dout2 = Array2::from_shape_simple_fn((BATCH, 10), || rng.random::<f32>() - 0.5);
    let blas = core_layers::blas::BACKEND;

    // Layer 1: an MNIST batch (19 % nonzero) times W1 [784, 50].
    // Layer 2: the ReLU output times W2 [50, 10].
    let layers = [
        (
            "layer1",
            x.view(),
            &xs,
            p.w1.view(),
            p.b1.view(),
            dout1.view(),
        ),
        (
            "layer2",
            h.view(),
            &hs,
            p.w2.view(),
            p.b2.view(),
            dout2.view(),
        ),
    ];
    for (name, x, xs, w, b, dout) in layers {
        let mut group = c.benchmark_group(format!("affine_{name}"));
        let density = format!("density-{:.2}", xs.density());
        group.bench_function(
            BenchmarkId::new(format!("forward-{blas}"), &density),
            |bn| bn.iter(|| black_box(affine(black_box(x), w, b))),
        );
        group.bench_function(BenchmarkId::new("forward-matrixmultiply", &density), |bn| {
            bn.iter(|| black_box(mm(black_box(x), w) + b))
        });
        group.bench_function(BenchmarkId::new("forward-sparse", &density), |bn| {
            bn.iter(|| black_box(sparse_affine(black_box(xs), w, b)))
        });
        group.bench_function(
            BenchmarkId::new("forward-sparse-with-conversion", &density),
            |bn| bn.iter(|| black_box(sparse_affine(&SparseRows::from_dense(black_box(x)), w, b))),
        );
        group.bench_function(BenchmarkId::new(format!("dw-{blas}"), &density), |bn| {
            bn.iter(|| black_box(black_box(x).t().dot(&dout)))
        });
        group.bench_function(BenchmarkId::new("dw-matrixmultiply", &density), |bn| {
            bn.iter(|| black_box(mm(black_box(x).t(), dout)))
        });
        let mut dw = Array2::zeros(w.dim());
        group.bench_function(BenchmarkId::new("dw-sparse", &density), |bn| {
            bn.iter(|| sparse_t_dot_into(black_box(xs), dout, dw.view_mut()))
        });
        group.finish();
    }
}

/// Where the sparse path stops paying: the first layer's forward pass and
/// `dW` together, from a dense 100×784 input, by each path, over input
/// densities around [`SPARSE_MAX_DENSITY`](core_layers::sparse::SPARSE_MAX_DENSITY).
/// The inputs are random (each pixel nonzero with the given probability,
/// values in (0, 1]); only their density matters to the cost.
fn affine_density(c: &mut Criterion) {
    core_layers::blas::set_num_threads(1);
    let mut rng = StdRng::seed_from_u64(3);
    let w = Array2::from_shape_simple_fn((784, 50), || 0.01 * (rng.random::<f32>() - 0.5));
    let b = Array1::from_shape_simple_fn(50, || rng.random::<f32>() - 0.5);
    let dout = Array2::from_shape_simple_fn((BATCH, 50), || rng.random::<f32>() - 0.5);
    let blas = core_layers::blas::BACKEND;
    let mut group = c.benchmark_group("affine_density");
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(2));
    for density in [0.05, 0.10, 0.19, 0.30, 0.35, 0.40, 0.50, 0.70] {
        let x = Array2::from_shape_simple_fn((BATCH, 784), || {
            if rng.random::<f64>() < density {
                1.0 - rng.random::<f32>()
            } else {
                0.0
            }
        });
        let label = format!("{density:.2}");
        group.bench_function(BenchmarkId::new(format!("dense-{blas}"), &label), |bn| {
            bn.iter(|| {
                let y = affine(black_box(x.view()), w.view(), b.view());
                (y, x.t().dot(&dout))
            })
        });
        let mut dw = Array2::zeros(w.dim());
        group.bench_function(BenchmarkId::new("sparse", &label), |bn| {
            bn.iter(|| {
                let xs = SparseRows::from_dense(black_box(x.view()));
                let y = sparse_affine(&xs, w.view(), b.view());
                sparse_t_dot_into(&xs, dout.view(), dw.view_mut());
                y
            })
        });
    }
    group.finish();
}

/// What this machine does at best, for the floor in BENCHMARKS.md: reading
/// a W1-sized array (157 KB, in L2) and independent multiply-adds (f32, 8
/// lanes × 12 chains), both in plain Rust compiled for AVX2. The sparse
/// kernels use AVX-512 where the CPU has it; on AMD Zen 4 (where these
/// figures were taken) a 512-bit operation is executed as two 256-bit
/// halves, so AVX2 already reaches the same flops and bytes per cycle.
fn machine(c: &mut Criterion) {
    let mut group = c.benchmark_group("machine");
    let w1 = vec![1.0f32; 784 * 50];
    // 20 passes over W1: 3.1 MB, the W1 rows a 100-image batch reads.
    group.bench_function("read-W1-20-times", |b| {
        b.iter(|| black_box(read_passes(black_box(&w1), 20)))
    });
    group.bench_function("mul-add-1M", |b| {
        b.iter(|| black_box(mul_adds(black_box(1.000_001), 1 << 20)))
    });
    group.finish();
}

fn read_passes(data: &[f32], passes: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { read_passes_avx2(data, passes) };
    }
    read_passes_generic(data, passes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn read_passes_avx2(data: &[f32], passes: usize) -> f32 {
    read_passes_generic(data, passes)
}

#[inline(always)]
fn read_passes_generic(data: &[f32], passes: usize) -> f32 {
    let mut acc = [0.0f32; 64];
    for _ in 0..passes {
        for chunk in data.chunks_exact(64) {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a += x;
            }
        }
    }
    acc.iter().sum()
}

/// `n` rounds of 96 independent `a = a · m + 1` (two flops each): twelve
/// vectors of chains, enough to cover the multiply and add latencies.
fn mul_adds(m: f32, n: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { mul_adds_avx2(m, n) };
    }
    mul_adds_generic(m, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mul_adds_avx2(m: f32, n: usize) -> f32 {
    mul_adds_generic(m, n)
}

#[inline(always)]
fn mul_adds_generic(m: f32, n: usize) -> f32 {
    let mut acc = [0.0f32; 96];
    for _ in 0..n {
        for a in acc.iter_mut() {
            *a = *a * m + 1.0;
        }
    }
    acc.iter().sum()
}

criterion_group!(
    benches,
    train_step,
    evaluate,
    affine_paths,
    affine_density,
    machine
);
criterion_main!(benches);
