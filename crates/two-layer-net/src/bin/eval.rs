//! `eval`: a model saved by `train`, measured on real MNIST or Fashion-MNIST.
//!
//! Prints the accuracy on the test set (or the training set), the accuracy
//! of each class, and the 10×10 confusion matrix, which it also writes next
//! to the model as `confusion-<set>.csv` and as a heat map,
//! `confusion-<set>.png`, with each image's predicted class in
//! `predictions-<set>.csv`. Run it through
//! `cargo xtask eval --model DIR`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;
use core_layers::functions::argmax_rows;
use mnist_data::CLASSES;
use ndarray::{Array1, Array2};
use report::{Progress, Unit};
use safetensors::Dtype;
use two_layer_net::checkpoint::{self, AnyParams, Element};
use two_layer_net::saved::{ModelArgs, Saved};
use two_layer_net::{ImageSet, TwoLayerNet};

/// Measure a model saved by `train` on real data: accuracy, per-class
/// accuracy and the confusion matrix (also written next to the model as CSV
/// and as a PNG heat map).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    saved: ModelArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args.saved) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &ModelArgs) -> anyhow::Result<()> {
    match args.load_model()? {
        (AnyParams::F32(p), saved) => evaluate(args, &saved, TwoLayerNet::from_params(p)),
        (AnyParams::F64(p), saved) => evaluate(args, &saved, TwoLayerNet::from_params(p)),
    }
}

fn evaluate<A: Element>(
    args: &ModelArgs,
    saved: &Saved,
    net: TwoLayerNet<A>,
) -> anyhow::Result<()> {
    let (path, meta) = (&saved.path, &saved.meta);
    let dataset = args.dataset(saved);
    // The outputs go next to the model; results on another data set than
    // the model's own get its name, so they never replace those.
    let dir = checkpoint::parent_dir(path);
    let trained_on = saved.trained_on();
    let tag = match trained_on {
        Some(d) if d != dataset => format!("{}-{}", dataset.name(), args.set.name()),
        _ => args.set.name().to_owned(),
    };
    let outputs = [
        format!("confusion-{tag}.csv"),
        format!("confusion-{tag}.png"),
        format!("predictions-{tag}.csv"),
    ];
    // Checked before the work: a bad place to write is reported at once.
    for name in &outputs {
        checkpoint::check_writable(&dir.join(name))?;
    }
    let (input, hidden, output) = net.sizes();
    if output != CLASSES {
        bail!(
            "--model {}: the model has {output} outputs; {} has {CLASSES} classes",
            path.display(),
            dataset.title()
        );
    }
    let data = args.load_data(dataset)?;
    let split = args.set.of(&data);
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

    let (confusion, predicted) = confusion_matrix(&net, images);
    let total: usize = confusion.iter().map(|r| r.iter().sum::<usize>()).sum();
    let correct: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / total.max(1) as f64;
    println!(
        "{} {} accuracy {accuracy:.4} ({correct} of {total} images)",
        dataset.title(),
        args.set.name()
    );
    let key = format!("{}_acc", args.set.name());
    match trained_on {
        Some(d) if d == dataset => {
            if let Some(reported) = meta.get(&key) {
                let reported = reported
                    .parse::<f64>()
                    .map_or(reported.clone(), |r| format!("{r:.4}"));
                println!("(train reported {key} {reported})");
            }
        }
        Some(d) => println!(
            "(the model was trained on {}, not {}: its results are written under their own names)",
            d.title(),
            dataset.title()
        ),
        None => {}
    }
    println!("per class:");
    for (c, row) in confusion.iter().enumerate() {
        let n: usize = row.iter().sum();
        let name = dataset
            .class_name(c)
            .map_or(String::new(), |name| format!(" {name}"));
        println!(
            "  {c}{name}: {:.4} ({} of {n})",
            row[c] as f64 / n.max(1) as f64,
            row[c]
        );
    }
    print!("{}", table(&confusion));

    let [csv_name, png_name, predictions_name] = &outputs;
    let mut predictions = String::from("index,label,predicted\n");
    for (i, (label, p)) in predicted.iter().enumerate() {
        let _ = writeln!(predictions, "{i},{label},{p}");
    }
    let counts: Vec<Vec<u64>> = confusion
        .iter()
        .map(|r| r.iter().map(|&v| v as u64).collect())
        .collect();
    let png = report::plot::confusion_heatmap(
        &format!(
            "{} {} set: {correct} of {total} right ({:.2} %)",
            dataset.title(),
            args.set.name(),
            100.0 * accuracy
        ),
        &counts,
        &dataset.class_names(),
    )?;
    checkpoint::write_set_atomically(
        dir,
        &[
            (csv_name, csv(&confusion).as_bytes()),
            (png_name, &png),
            (predictions_name, predictions.as_bytes()),
        ],
    )?;
    println!(
        "wrote {}, {} (heat map) and {} (each image's label and predicted class)",
        dir.join(csv_name).display(),
        dir.join(png_name).display(),
        dir.join(predictions_name).display()
    );
    Ok(())
}

/// `m[true][predicted]` over every image of `images`, in blocks of 1000,
/// and each image's (label, predicted class).
fn confusion_matrix<A: Element>(
    net: &TwoLayerNet<A>,
    images: ImageSet<'_>,
) -> (Vec<Vec<usize>>, Vec<(usize, usize)>) {
    const BLOCK: usize = 1000;
    let mut m = vec![vec![0usize; CLASSES]; CLASSES];
    let mut each = Vec::with_capacity(images.len());
    // MNIST's 60,000 images take a tenth of a second; a bigger model or a
    // slower machine may take long enough to want a bar.
    let progress = Progress::new(
        "evaluating",
        "images",
        Unit::Count,
        Some(images.len() as u64),
        "evaluating {bar:30} {pos}/{len} images  eta {eta}",
    );
    for start in (0..images.len()).step_by(BLOCK) {
        let idx: Vec<usize> = (start..(start + BLOCK).min(images.len())).collect();
        let mut x = Array2::<A>::zeros((idx.len(), images.features()));
        let mut t = Array1::<usize>::zeros(idx.len());
        images.batch_into(&idx, x.view_mut(), &mut t);
        let predicted = argmax_rows(net.predict(x.view()).view());
        for (&truth, &p) in t.iter().zip(&predicted) {
            m[truth][p] += 1;
            each.push((truth, p));
        }
        progress.advance(each.len() as u64);
    }
    progress.finish();
    (m, each)
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
