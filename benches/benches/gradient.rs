//! Numerical vs backprop gradient of TwoLayerNet (DLFS §5.7.3's point: backprop
//! costs about one forward and one backward pass, the numerical gradient two
//! forward passes per parameter).
//!
//! Run with: cargo bench -p benches --bench gradient
//!
//! The small nets get random dense inputs; the book's 784-50-10 gets the
//! first three real MNIST images, as `cargo xtask gradcheck` does, so its
//! first layer takes the sparse path (19 % of the pixels are nonzero).
//! Numerical gradients run on rayon's pool (`RAYON_NUM_THREADS` sets its
//! size) with one BLAS thread.

use std::hint::black_box;

use core_layers::Labels;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mnist_data::{Dataset, FetchOptions};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng, rngs::StdRng};
use two_layer_net::TwoLayerNet;

/// `(input, hidden, output)` sizes: two small nets and the book's.
const NETS: [(usize, usize, usize); 3] = [(16, 8, 4), (64, 16, 10), (784, 50, 10)];
/// Examples per gradient, as in the book's gradient check.
const BATCH: usize = 3;

fn setup((i, h, o): (usize, usize, usize)) -> (TwoLayerNet<f64>, Array2<f64>, Array1<usize>) {
    let mut rng = StdRng::seed_from_u64(0);
    let net = TwoLayerNet::new(i, h, o, 0.01, &mut rng);
    if i == 784 {
        let data = mnist_data::load(Dataset::Mnist, &FetchOptions::from_env())
            .unwrap_or_else(|e| panic!("the 784-50-10 bench needs real MNIST: {e:#}"));
        let idx: Vec<usize> = (0..BATCH).collect();
        let x = data.train.images_f::<f64>(&idx, true);
        let t = Array1::from(data.train.class_indices(&idx));
        return (net, x, t);
    }
    let x = Array2::from_shape_simple_fn((BATCH, i), || rng.random::<f64>());
    let t = Array1::from_shape_simple_fn(BATCH, || rng.random_range(0..o));
    (net, x, t)
}

fn gradient(c: &mut Criterion) {
    // One BLAS thread: the parallel numerical gradient uses the cores itself.
    core_layers::blas::set_num_threads(1);
    let mut group = c.benchmark_group("gradient");
    group.sample_size(10);
    for dims in NETS {
        let label = format!("{}-{}-{}", dims.0, dims.1, dims.2);
        let (mut net, x, t) = setup(dims);
        let t = Labels::Classes(t.view());
        group.bench_with_input(BenchmarkId::new("backprop", &label), &(), |b, ()| {
            b.iter(|| black_box(net.gradient(black_box(x.view()), t)))
        });
        group.bench_with_input(
            BenchmarkId::new("numerical-parallel", &label),
            &(),
            |b, ()| b.iter(|| black_box(net.numerical_gradient(black_box(x.view()), t, 1e-4))),
        );
        group.bench_with_input(
            BenchmarkId::new("numerical-serial", &label),
            &(),
            |b, ()| {
                b.iter(|| black_box(net.numerical_gradient_serial(black_box(x.view()), t, 1e-4)))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, gradient);
criterion_main!(benches);
