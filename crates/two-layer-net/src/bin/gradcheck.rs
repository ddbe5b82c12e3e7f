//! `gradcheck`: the gradient check of DLFS §5.7.3 on real MNIST.
//!
//! Takes the first 3 training images, builds a fresh `TwoLayerNet(784, 50, 10)`
//! in `f64`, computes its gradients by backprop and numerically (39,760
//! parameters, two forward passes each, on all cores), and prints one line per
//! parameter. Parameters whose `±h` step moves a hidden pre-activation across
//! ReLU's kink are counted and left out of the judgement (there the
//! numerical gradient, not backprop, is wrong); every other element must be
//! within `|a − n| ≤ 1e-8 + 1e-6 · max(|a|, |n|)`. Exits 1 when one is not,
//! and 2 when the check could not run.
//!
//! With `--plot [FILE]` it also draws the differences per parameter as bars
//! on a log scale (PNG, `gradcheck.png` by default).
//!
//! Run it through `cargo xtask gradcheck [FLAGS]`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use core_layers::Labels;
use core_layers::sparse::InputPath;
use mnist_data::{Dataset, FetchOptions};
use numerical_grad::H;
use rand::{SeedableRng, rngs::StdRng};
use report::{Progress, Unit};
use two_layer_net::gradcheck;
use two_layer_net::{TwoLayerNet, WEIGHT_INIT_STD};

/// Check backprop against the numerical gradient (DLFS §5.7.3) on real data.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seed of the network's initial weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of training images to check on (the book uses 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    images: u64,
    /// Hidden units.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    hidden: u64,
    /// Data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: Dataset,
    /// Use the four IDX files (raw or .gz) in this directory and nothing else
    /// [default: $DLFS_DATA_DIR, else the cache, the mirrors and the package sources].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Product of the first layer, for backprop and the numerical gradient
    /// alike: `auto` (sparse for MNIST's mostly-zero images), `dense` (the
    /// BLAS gemm) or `sparse`. [possible values: auto, dense, sparse]
    #[arg(long, default_value = "auto")]
    input_path: InputPath,
    /// Also draw mean |diff|, max |diff| and max relative error per
    /// parameter as a bar chart on a log scale, to this PNG file
    /// [default when given without a value: gradcheck.png].
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "gradcheck.png")]
    plot: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        // 1: the check ran and failed; 2: it could not run (e.g. no data).
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<bool> {
    if let Some(plot) = &args.plot {
        two_layer_net::checkpoint::check_writable(plot).context("--plot")?;
    }
    let mut opts = FetchOptions::from_env();
    if let Some(dir) = &args.data_dir {
        opts.set_data_dir(dir);
    }
    opts.progress = Some(Arc::new(mnist_data::cli::Bar::default()));
    let data = mnist_data::load(args.dataset, &opts)
        .with_context(|| format!("loading {}", args.dataset.title()))?;

    let idx: Vec<usize> = (0..args.images as usize).collect();
    let x = data.train.images_f::<f64>(&idx, true);
    let t = data.train.one_hot::<f64>(&idx);
    let t = Labels::OneHot(t.view());
    let hidden = args.hidden as usize;
    let mut net = TwoLayerNet::<f64>::new(
        x.ncols(),
        hidden,
        mnist_data::CLASSES,
        WEIGHT_INIT_STD,
        &mut StdRng::seed_from_u64(args.seed),
    );
    net.set_input_path(args.input_path);
    let n_params = net.params().len();

    // One BLAS thread per rayon worker: the workers already use every core,
    // and a single-threaded product is computed the same way in every one.
    core_layers::blas::set_num_threads(1);
    println!(
        "gradient check of TwoLayerNet({}, {hidden}, {}) on the first {} {} training images, seed {}, f64, h = {H:e}, {} first layer",
        x.ncols(),
        mnist_data::CLASSES,
        args.images,
        args.dataset.title(),
        args.seed,
        if args.input_path.sparse_for(x.view()) {
            "sparse"
        } else {
            "dense"
        },
    );

    let evals = AtomicUsize::new(0);
    let progress = Progress::new(
        "numerical gradient",
        "loss evaluations",
        Unit::Count,
        Some(2 * n_params as u64),
        "numerical gradient {bar:30} {pos}/{len} loss evaluations  eta {eta}",
    );
    let done = AtomicBool::new(false);
    let run = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                progress.advance(evals.load(Ordering::Relaxed) as u64);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let run = gradcheck::run(&mut net, x.view(), t, H, &evals);
        done.store(true, Ordering::Relaxed);
        run
    });
    progress.finish();

    let outcome = &run.outcome;
    for p in &outcome.params {
        let kink_note = if p.kinks > 0 {
            format!(
                "  ({} at a ReLU kink, left out; with them mean |diff| {:.3e})",
                p.kinks, p.all.mean_abs
            )
        } else {
            String::new()
        };
        println!(
            "{:<3} mean |diff| {:.3e}  max |diff| {:.3e}  max rel {:.3e}  {:.1e} of the bound  {}{kink_note}",
            p.judged.name,
            p.judged.mean_abs,
            p.judged.max_abs,
            p.judged.max_rel,
            p.judged.worst.ratio,
            if p.passed() { "ok" } else { "FAILED" },
        );
        if !p.passed() {
            let w = &p.judged.worst;
            println!(
                "    worst {:?}: backprop {:e}, numerical {:e}",
                w.index, w.analytic, w.numeric
            );
        }
    }
    println!(
        "{} parameters: backprop {:.1} µs, numerical {:.2} s ({} loss evaluations on {} threads); {} at a ReLU kink",
        n_params,
        run.backprop_time.as_secs_f64() * 1e6,
        run.numerical_time.as_secs_f64(),
        evals.load(Ordering::Relaxed),
        rayon::current_num_threads(),
        run.kinks,
    );
    println!(
        "(max rel is |a - n| / max(|a|, |n|, {:e}): gradients smaller than {:e} are judged by their absolute difference)",
        outcome.tol.floor(),
        outcome.tol.floor()
    );
    if let Some(path) = &args.plot {
        let bars: Vec<report::plot::GradBar> = outcome
            .params
            .iter()
            .map(|p| report::plot::GradBar {
                name: p.judged.name.clone(),
                mean_abs: p.judged.mean_abs,
                max_abs: p.judged.max_abs,
                max_rel: p.judged.max_rel,
            })
            .collect();
        let kinks = match run.kinks {
            0 => String::new(),
            n => format!(", {n} at a ReLU kink left out"),
        };
        let title = format!(
            "Backprop vs numerical: TwoLayerNet({}, {hidden}, {}), {} {} image{}, seed {}{kinks}",
            x.ncols(),
            mnist_data::CLASSES,
            args.images,
            args.dataset.title(),
            if args.images == 1 { "" } else { "s" },
            args.seed,
        );
        let png = report::plot::gradcheck_bars(&title, &bars)?;
        two_layer_net::checkpoint::write_atomically(path, &png).context("--plot")?;
        println!("plot: {}", path.display());
    }
    let tol = outcome.tol;
    if outcome.passed() {
        println!(
            "gradient check passed: every element within {:e} + {:e}·max(|a|, |n|)",
            tol.atol, tol.rtol
        );
    } else {
        println!(
            "gradient check FAILED: an element is outside {:e} + {:e}·max(|a|, |n|)",
            tol.atol, tol.rtol
        );
    }
    Ok(outcome.passed())
}
