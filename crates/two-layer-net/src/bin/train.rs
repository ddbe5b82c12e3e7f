//! `train`: DLFS §5.7.4 (`train_neuralnet.py`) on real MNIST or Fashion-MNIST.
//!
//! Run it through `cargo xtask train [FLAGS]`, which builds it in release mode
//! and picks the BLAS or pure-Rust backend. Writes `loss.csv`, `accuracy.csv`,
//! `model.safetensors`, `summary.json`, `loss.png` and `accuracy.png` to
//! `--out`, as one atomic set.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use core_layers::sparse::InputPath;
use mnist_data::{Dataset, FetchOptions};
use rand::{SeedableRng, rngs::StdRng};
use report::{Progress, Unit};
use two_layer_net::checkpoint::{self, Element};
use two_layer_net::{
    Diverged, Event, Examples, History, ImageSet, TrainConfig, TwoLayerNet, WEIGHT_INIT_STD, train,
};

/// Train TwoLayerNet (Affine → ReLU → Affine → softmax) with mini-batch SGD,
/// as in "Deep Learning from Scratch" §5.7.4, with the book's defaults
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of SGD iterations.
    #[arg(long, default_value_t = 10_000)]
    iters: usize,
    /// Examples per iteration, drawn uniformly with replacement.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    lr: f64,
    /// Hidden units.
    #[arg(long, default_value_t = 50)]
    hidden: usize,
    /// Standard deviation of the initial weights (W = std · N(0, 1)).
    #[arg(long, default_value_t = WEIGHT_INIT_STD, allow_negative_numbers = true)]
    weight_init_std: f64,
    /// Seed of the weight initialisation and batch sampling; the same seed and
    /// thread count give the same numbers.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: Dataset,
    /// Use the four IDX files (raw or .gz) in this directory and nothing else
    /// [default: $DLFS_DATA_DIR, else the cache, the mirrors and the package sources].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Directory for loss.csv, accuracy.csv, model.safetensors, summary.json,
    /// loss.png and accuracy.png [default: `runs/<dataset>` in the current
    /// directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Floating-point precision of the network.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Product of the first layer: `sparse` uses only the nonzero pixels,
    /// `dense` the BLAS (or matrixmultiply) gemm; `auto` picks sparse when at
    /// most 30 % of the pixels are nonzero (MNIST: 19 %). Same results up to
    /// the order of additions. [possible values: auto, dense, sparse]
    #[arg(long, default_value = "auto")]
    input_path: InputPath,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Precision {
    F32,
    F64,
}

impl Precision {
    fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// When the process started, for the summary's whole-process time.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    STARTED.get_or_init(Instant::now);
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The largest `--iters`: the per-iteration losses of a run are kept in
/// memory (8 bytes each) and written to loss.csv.
const MAX_ITERS: usize = 100_000_000;
/// The largest `--hidden`: W1 alone is 784 × hidden floats (313 MB in f32 at this size).
const MAX_HIDDEN: usize = 100_000;

/// Refuses bad flags before any work starts.
fn validate(args: &Args) -> anyhow::Result<()> {
    let train_size = args
        .dataset
        .files()
        .iter()
        .find(|f| f.name.starts_with("train-labels"))
        .map_or(60_000, |f| f.count);
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    if args.iters > MAX_ITERS {
        bail!(
            "--iters {} is more than {MAX_ITERS}, the most a run records",
            args.iters
        );
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.batch_size > train_size {
        bail!(
            "--batch-size {} is larger than the {} training set ({train_size} images)",
            args.batch_size,
            args.dataset.title()
        );
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a positive finite number, got {}", args.lr);
    }
    // A value that is fine in f64 can round to 0 or overflow in f32.
    if args.precision == Precision::F32 && !((args.lr as f32).is_finite() && (args.lr as f32) > 0.0)
    {
        bail!(
            "--lr {:e} is not a positive finite f32 (use --precision f64 for it)",
            args.lr
        );
    }
    if args.hidden == 0 {
        bail!("--hidden must be at least 1");
    }
    if args.hidden > MAX_HIDDEN {
        bail!("--hidden {} is more than {MAX_HIDDEN}", args.hidden);
    }
    if !(args.weight_init_std.is_finite() && args.weight_init_std >= 0.0) {
        bail!(
            "--weight-init-std must be a finite number >= 0, got {}",
            args.weight_init_std
        );
    }
    if args.precision == Precision::F32 && !(args.weight_init_std as f32).is_finite() {
        bail!(
            "--weight-init-std {:e} overflows f32 (use --precision f64 for it)",
            args.weight_init_std
        );
    }
    Ok(())
}

/// The files a run writes, in the order they are renamed into place.
const OUTPUTS: [&str; 6] = [
    "loss.csv",
    "accuracy.csv",
    "model.safetensors",
    "summary.json",
    "loss.png",
    "accuracy.png",
];

/// The loss plot's moving mean: 100 iterations, a sixth of an epoch at the
/// book's batch size.
const LOSS_WINDOW: usize = 100;

/// Creates `dir` and proves it writable with a temporary file, and checks
/// that none of the output names is taken by something other than a file, so
/// that a bad `--out` is reported before training instead of after. Returns
/// whether the directory was created (and may be removed again on failure).
fn prepare_out_dir(dir: &Path) -> anyhow::Result<bool> {
    let flag = || format!("--out {}", dir.display());
    if dir.exists() && !dir.is_dir() {
        bail!("{}: exists and is not a directory", flag());
    }
    let created = !dir.exists();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the directory", flag()))?;
    tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot write to the directory", flag()))?;
    for name in OUTPUTS
        .iter()
        .chain(&["diverged-loss.csv", "diverged-accuracy.csv"])
    {
        let path = dir.join(name);
        if path.exists() && !path.is_file() {
            bail!(
                "{}: {} exists and is not a regular file",
                flag(),
                path.display()
            );
        }
    }
    Ok(created)
}

fn run(args: &Args) -> anyhow::Result<()> {
    validate(args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(args.dataset.name()));
    let created = prepare_out_dir(&out)?;

    let mut opts = FetchOptions::from_env();
    if let Some(dir) = &args.data_dir {
        opts.set_data_dir(dir);
    }
    opts.progress = Some(Arc::new(mnist_data::cli::Bar::default()));
    let data = match mnist_data::load(args.dataset, &opts) {
        Ok(data) => data,
        Err(e) => {
            if created {
                // Leave no empty directory behind for a run that never started.
                let _ = std::fs::remove_dir(&out);
            }
            return Err(e).with_context(|| format!("loading {}", args.dataset.title()));
        }
    };
    let source = data
        .files
        .first()
        .map(|f| f.source.to_string())
        .unwrap_or_default();

    match args.precision {
        Precision::F32 => run_with::<f32>(args, &data, &source, &out),
        Precision::F64 => run_with::<f64>(args, &data, &source, &out),
    }
}

fn run_with<A: Element + Send + Sync>(
    args: &Args,
    data: &mnist_data::DataSet,
    source: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let train_set = ImageSet::new(
        data.train.images(),
        data.train.labels(),
        data.train.pixels(),
    );
    let test_set = ImageSet::new(data.test.images(), data.test.labels(), data.test.pixels());
    let input = train_set.features();
    let config = TrainConfig {
        iters: args.iters,
        batch_size: args.batch_size,
        lr: args.lr,
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut net = TwoLayerNet::<A>::new(
        input,
        args.hidden,
        mnist_data::CLASSES,
        args.weight_init_std,
        &mut rng,
    );
    net.set_input_path(args.input_path);
    // MNIST's images are kept by their nonzero pixels (27 MB for all 70,000),
    // for the first layer's sparse path.
    let (train_set, test_set) = (
        Examples::new(train_set, net.input_path()),
        Examples::new(test_set, net.input_path()),
    );

    println!(
        "TwoLayerNet({input}, {}, {}) on {} ({} train / {} test images, from {source})",
        args.hidden,
        mnist_data::CLASSES,
        args.dataset.title(),
        train_set.len(),
        test_set.len(),
    );
    let backend = if cfg!(feature = "blas") {
        format!(
            "{} backend, {} BLAS thread(s)",
            core_layers::blas::BACKEND,
            core_layers::blas::num_threads()
        )
    } else {
        format!("{} backend", core_layers::blas::BACKEND)
    };
    println!(
        "{} iterations, batch {}, lr {}, weight_init_std {}, seed {}, {}, {backend}, {} first layer",
        args.iters,
        args.batch_size,
        short(args.lr),
        short(args.weight_init_std),
        args.seed,
        args.precision.name(),
        if train_set.is_sparse() {
            "sparse"
        } else {
            "dense"
        },
    );

    let progress = Progress::new(
        "training",
        "iterations",
        Unit::Count,
        Some(args.iters as u64),
        "{bar:30} {pos:>6}/{len} it  {msg}  {per_sec}  eta {eta}",
    );
    let start = Instant::now();
    let result = train(
        &mut net,
        &train_set,
        &test_set,
        &config,
        &mut rng,
        |event| {
            match event {
                Event::Iteration { iter, loss } => {
                    progress.tick(iter as u64 + 1, || format!("loss {loss:.4}"));
                }
                Event::Epoch(e) => progress.println_stdout(&format!(
                    "epoch {:>3} (iter {:>6}) | train acc, test acc | {:.4}, {:.4}",
                    e.epoch, e.iter, e.train_acc, e.test_acc
                )),
            }
            ControlFlow::Continue(())
        },
    );
    progress.finish();
    let wall = start.elapsed();

    let history = match result {
        Ok(history) => history,
        Err(diverged) => {
            // Under their own names: the loss.csv, accuracy.csv and model of an
            // earlier run in the same directory stay as they were, and stay a set.
            let [loss, acc] = history_csv(&diverged.history, args.precision);
            checkpoint::write_set_atomically(
                out,
                &[
                    ("diverged-loss.csv", loss.as_bytes()),
                    ("diverged-accuracy.csv", acc.as_bytes()),
                ],
            )?;
            bail!("{diverged}\n{}", diverged_note(out, &diverged));
        }
    };
    let final_train = two_layer_net::accuracy(&net, &train_set);
    let final_test = two_layer_net::accuracy(&net, &test_set);

    let mut meta = HashMap::new();
    let files = data
        .files
        .iter()
        .map(|f| format!("{}={}", f.name, f.sha256))
        .collect::<Vec<_>>()
        .join(",");
    for (k, v) in [
        ("format", "dlfs-rs TwoLayerNet; W1 [input, hidden], b1 [hidden], W2 [hidden, output], b2 [output]; y = relu(x W1 + b1) W2 + b2".to_owned()),
        ("dataset", args.dataset.name().to_owned()),
        ("input_size", input.to_string()),
        ("hidden_size", args.hidden.to_string()),
        ("output_size", mnist_data::CLASSES.to_string()),
        ("seed", args.seed.to_string()),
        ("iters", args.iters.to_string()),
        ("batch_size", args.batch_size.to_string()),
        ("lr", args.lr.to_string()),
        ("weight_init_std", args.weight_init_std.to_string()),
        ("precision", args.precision.name().to_owned()),
        (
            "input_path",
            if train_set.is_sparse() { "sparse" } else { "dense" }.to_owned(),
        ),
        ("train_acc", format!("{final_train}")),
        ("test_acc", format!("{final_test}")),
        ("data_sha256", files),
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
    ] {
        meta.insert(k.to_owned(), v);
    }
    let model = out.join("model.safetensors");
    let summary = summary_json(
        args,
        data,
        Run {
            input,
            input_path: if train_set.is_sparse() {
                "sparse"
            } else {
                "dense"
            },
            per_epoch: config.iters_per_epoch(train_set.len()),
            history: &history,
            final_train,
            final_test,
            loop_s: wall.as_secs_f64(),
        },
    );
    // All the files are written to temporary names first and renamed only
    // when every one is complete, so a failure leaves the set of an earlier
    // run as it was.
    let [loss, acc] = history_csv(&history, args.precision);
    let model_bytes = checkpoint::to_bytes(&net.into_params(), &meta);
    let [loss_png, acc_png] = plots(&history)?;
    checkpoint::write_set_atomically(
        out,
        &[
            (OUTPUTS[0], loss.as_bytes()),
            (OUTPUTS[1], acc.as_bytes()),
            (OUTPUTS[2], &model_bytes),
            (OUTPUTS[3], summary.as_bytes()),
            (OUTPUTS[4], &loss_png),
            (OUTPUTS[5], &acc_png),
        ],
    )?;

    println!(
        "final: train acc {final_train:.4}, test acc {final_test:.4} | {} iterations in {:.2} s ({:.0} it/s)",
        args.iters,
        wall.as_secs_f64(),
        args.iters as f64 / wall.as_secs_f64()
    );
    println!(
        "wrote {}, {}, {}, {}",
        out.join("loss.csv").display(),
        out.join("accuracy.csv").display(),
        model.display(),
        out.join("summary.json").display()
    );
    println!(
        "plots: {} (batch loss, and its mean over {LOSS_WINDOW} iterations), {} (train and test accuracy per epoch)",
        out.join("loss.png").display(),
        out.join("accuracy.png").display(),
    );
    Ok(())
}

/// loss.png and accuracy.png of a finished run.
fn plots(history: &History) -> anyhow::Result<[Vec<u8>; 2]> {
    let loss = report::plot::loss_curve(&history.losses, LOSS_WINDOW)?;
    let epochs: Vec<(f64, f64, f64)> = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_acc, e.test_acc))
        .collect();
    let acc = report::plot::accuracy_curve(&epochs)?;
    Ok([loss, acc])
}

/// What a finished run measured, for [`summary_json`].
struct Run<'h> {
    input: usize,
    input_path: &'static str,
    per_epoch: usize,
    history: &'h History,
    final_train: f64,
    final_test: f64,
    loop_s: f64,
}

/// summary.json: every hyperparameter, the data and its SHA-256, the
/// results, the times and the threads, for scripts to read.
fn summary_json(args: &Args, data: &mnist_data::DataSet, run: Run<'_>) -> String {
    let files: Vec<_> = data
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "sha256": f.sha256,
                "source": f.source.to_string(),
                // Absolute, so that scripts run from elsewhere find the files.
                "path": std::path::absolute(&f.path).unwrap_or_else(|_| f.path.clone()).display().to_string(),
            })
        })
        .collect();
    let epochs: Vec<_> = run
        .history
        .epochs
        .iter()
        .map(|e| {
            serde_json::json!({
                "epoch": e.epoch,
                "iteration": e.iter,
                "train_acc": e.train_acc,
                "test_acc": e.test_acc,
            })
        })
        .collect();
    let whole_s = STARTED.get().map(|t| t.elapsed().as_secs_f64());
    let summary = serde_json::json!({
        "format": "dlfs-rs train summary 1",
        "version": env!("CARGO_PKG_VERSION"),
        "dataset": args.dataset.name(),
        "data": {
            "train_images": data.train.len(),
            "test_images": data.test.len(),
            "files": files,
        },
        "network": {
            "input_size": run.input,
            "hidden_size": args.hidden,
            "output_size": mnist_data::CLASSES,
            "weight_init_std": args.weight_init_std,
            "precision": args.precision.name(),
            "first_layer_input_path": run.input_path,
        },
        "training": {
            "iters": args.iters,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "iters_per_epoch": run.per_epoch,
            "logged_loss": "the batch loss of each iteration's own forward pass, before its update",
        },
        "results": {
            "final_train_acc": run.final_train,
            "final_test_acc": run.final_test,
            "last_loss": run.history.losses.last(),
            "epochs": epochs,
        },
        "time": {
            "training_loop_s": run.loop_s,
            "whole_process_s_before_saving": whole_s,
        },
        "backend": {
            "name": core_layers::blas::BACKEND,
            "blas_threads": cfg!(feature = "blas").then(core_layers::blas::num_threads),
            "rayon_threads": rayon::current_num_threads(),
            "evaluation": "on a second thread, concurrently with training",
        },
        "outputs": OUTPUTS,
    });
    let mut text = serde_json::to_string_pretty(&summary).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// A number as the user would write it: `0.1`, not a 300-digit expansion of `1e300`.
fn short(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

fn diverged_note(out: &Path, d: &Diverged) -> String {
    format!(
        "stopped at iteration {}; wrote the losses ({}) and epoch accuracies ({}) so far to {} and {}; \
         no model saved, and an earlier run's loss.csv, accuracy.csv, model.safetensors, summary.json, \
         loss.png and accuracy.png there are untouched",
        d.iter,
        d.history.losses.len(),
        d.history.epochs.len(),
        out.join("diverged-loss.csv").display(),
        out.join("diverged-accuracy.csv").display(),
    )
}

/// The contents of `loss.csv` (iteration, loss) and `accuracy.csv` (epoch,
/// iteration, train_acc, test_acc). Losses are printed with the precision
/// they were computed in.
fn history_csv(history: &History, precision: Precision) -> [String; 2] {
    let mut loss = String::from("iteration,loss\n");
    for (i, &l) in history.losses.iter().enumerate() {
        match precision {
            Precision::F32 => writeln!(loss, "{i},{}", l as f32),
            Precision::F64 => writeln!(loss, "{i},{l}"),
        }
        .expect("writing to a String");
    }
    let mut acc = String::from("epoch,iteration,train_acc,test_acc\n");
    for e in &history.epochs {
        writeln!(acc, "{},{},{},{}", e.epoch, e.iter, e.train_acc, e.test_acc)
            .expect("writing to a String");
    }
    [loss, acc]
}
