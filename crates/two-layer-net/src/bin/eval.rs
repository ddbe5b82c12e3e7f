//! `eval`: a model saved by `train`, measured on real MNIST or Fashion-MNIST.
//!
//! Prints the accuracy on the test set (or the training set), the accuracy
//! of each class, and the 10×10 confusion matrix, which it also writes as
//! `confusion-<set>.csv` next to the model. Run it through
//! `cargo xtask eval --model DIR`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use core_layers::functions::argmax_rows;
use mnist_data::{CLASSES, Dataset, FetchOptions};
use ndarray::{Array1, Array2};
use safetensors::Dtype;
use two_layer_net::checkpoint::{self, CheckpointError, Element};
use two_layer_net::{ImageSet, TwoLayerNet};

/// Measure a model saved by `train` on real data: accuracy, per-class
/// accuracy and the confusion matrix (also written as CSV next to the model).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A run directory (what `train --out` wrote: it holds model.safetensors),
    /// or the model file itself.
    #[arg(long)]
    model: PathBuf,
    /// Which images: the test set or the training set.
    #[arg(long, value_enum, default_value_t = Set::Test)]
    set: Set,
    /// Data set: mnist or fashion-mnist [default: the one the model was
    /// trained on, from its metadata].
    #[arg(long)]
    dataset: Option<Dataset>,
    /// Use the four IDX files (raw or .gz) in this directory and nothing else
    /// [default: $DLFS_DATA_DIR, else the cache, the mirrors and the package sources].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Set {
    Test,
    Train,
}

impl Set {
    fn name(self) -> &'static str {
        match self {
            Set::Test => "test",
            Set::Train => "train",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let path = if args.model.is_dir() {
        args.model.join("model.safetensors")
    } else {
        args.model.clone()
    };
    if !path.is_file() {
        bail!(
            "--model {}: {} is not a file (give a run directory holding model.safetensors, or the file)",
            args.model.display(),
            path.display()
        );
    }
    // f32 or f64, as the model was trained.
    match checkpoint::load::<f32>(&path) {
        Ok((params, meta)) => evaluate(args, &path, TwoLayerNet::from_params(params), &meta),
        Err(CheckpointError::Dtype {
            got: Dtype::F64, ..
        }) => {
            let (params, meta) = checkpoint::load::<f64>(&path)?;
            evaluate(args, &path, TwoLayerNet::from_params(params), &meta)
        }
        Err(e) => Err(e.into()),
    }
}

fn evaluate<A: Element>(
    args: &Args,
    path: &Path,
    net: TwoLayerNet<A>,
    meta: &std::collections::HashMap<String, String>,
) -> anyhow::Result<()> {
    let trained_on = meta.get("dataset").and_then(|d| d.parse::<Dataset>().ok());
    let dataset = args.dataset.or(trained_on).unwrap_or(Dataset::Mnist);
    let (input, hidden, output) = net.sizes();
    if output != CLASSES {
        bail!(
            "--model {}: the model has {output} outputs; {} has {CLASSES} classes",
            path.display(),
            dataset.title()
        );
    }
    let mut opts = FetchOptions::from_env();
    if let Some(dir) = &args.data_dir {
        opts.set_data_dir(dir);
    }
    opts.progress = Some(Arc::new(mnist_data::cli::Bar::default()));
    let data =
        mnist_data::load(dataset, &opts).with_context(|| format!("loading {}", dataset.title()))?;
    let split = match args.set {
        Set::Test => &data.test,
        Set::Train => &data.train,
    };
    if split.pixels() != input {
        bail!(
            "--model {}: the model takes {input} inputs; {} images have {} pixels",
            path.display(),
            dataset.title(),
            split.pixels()
        );
    }
    let images = ImageSet::new(split.images(), split.labels(), split.pixels());

    let precision = if A::DTYPE == Dtype::F64 { "f64" } else { "f32" };
    let about = ["seed", "iters", "dataset"]
        .iter()
        .filter_map(|k| meta.get(*k).map(|v| format!("{k} {v}")))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{}: TwoLayerNet({input}, {hidden}, {output}), {precision}{}",
        path.display(),
        if about.is_empty() {
            String::new()
        } else {
            format!(" ({about})")
        }
    );

    let confusion = confusion_matrix(&net, images);
    let total: usize = confusion.iter().map(|r| r.iter().sum::<usize>()).sum();
    let correct: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / total.max(1) as f64;
    println!(
        "{} {} accuracy {accuracy:.4} ({correct} of {total} images)",
        dataset.title(),
        args.set.name()
    );
    let key = format!("{}_acc", args.set.name());
    if let Some(reported) = meta.get(&key)
        && trained_on == Some(dataset)
    {
        println!("(train reported {key} {reported})");
    }
    println!("per class:");
    for (c, row) in confusion.iter().enumerate() {
        let n: usize = row.iter().sum();
        println!(
            "  {c}: {:.4} ({} of {n})",
            row[c] as f64 / n.max(1) as f64,
            row[c]
        );
    }
    print!("{}", table(&confusion));

    let csv_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("confusion-{}.csv", args.set.name()));
    checkpoint::write_atomically(&csv_path, csv(&confusion).as_bytes())?;
    println!("wrote {}", csv_path.display());
    Ok(())
}

/// `m[true][predicted]` over every image of `images`, in blocks of 1000.
fn confusion_matrix<A: Element>(net: &TwoLayerNet<A>, images: ImageSet<'_>) -> Vec<Vec<usize>> {
    const BLOCK: usize = 1000;
    let mut m = vec![vec![0usize; CLASSES]; CLASSES];
    for start in (0..images.len()).step_by(BLOCK) {
        let idx: Vec<usize> = (start..(start + BLOCK).min(images.len())).collect();
        let mut x = Array2::<A>::zeros((idx.len(), images.features()));
        let mut t = Array1::<usize>::zeros(idx.len());
        images.batch_into(&idx, x.view_mut(), &mut t);
        let predicted = argmax_rows(net.predict(x.view()).view());
        for (&truth, &p) in t.iter().zip(&predicted) {
            m[truth][p] += 1;
        }
    }
    m
}

/// The matrix as a text table: rows are true classes, columns predictions.
fn table(m: &[Vec<usize>]) -> String {
    let mut s = String::from("confusion matrix (rows: true class, columns: predicted)\n     ");
    for c in 0..m.len() {
        let _ = write!(s, "{c:>6}");
    }
    s.push('\n');
    for (c, row) in m.iter().enumerate() {
        let _ = write!(s, "  {c:>2} ");
        for v in row {
            let _ = write!(s, "{v:>6}");
        }
        s.push('\n');
    }
    s
}

/// The matrix as CSV: `true,0,1,…,9`, then one row per true class.
fn csv(m: &[Vec<usize>]) -> String {
    let mut s = String::from("true");
    for c in 0..m.len() {
        let _ = write!(s, ",{c}");
    }
    s.push('\n');
    for (c, row) in m.iter().enumerate() {
        let _ = write!(s, "{c}");
        for v in row {
            let _ = write!(s, ",{v}");
        }
        s.push('\n');
    }
    s
}
