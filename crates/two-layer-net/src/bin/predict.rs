//! `predict`: one image through a model saved by `train`.
//!
//! Draws the image in the terminal (28 columns of half-block characters, 14
//! lines), prints its true label and the model's three most probable
//! classes. The image is one of the data set's (`--index N`) or a 28×28 PNG
//! a person drew (`--image FILE`). Run it through
//! `cargo xtask predict --model DIR --index N`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;
use core_layers::functions::softmax;
use mnist_data::{CLASSES, COLS, ROWS};
use ndarray::{Array1, Array2};
use two_layer_net::checkpoint::{AnyParams, Element};
use two_layer_net::saved::{ModelArgs, Saved};
use two_layer_net::{ImageSet, TwoLayerNet};

/// Classify one image with a model saved by `train`, and show it: a real
/// image of the data set, or a 28×28 PNG you drew.
#[derive(Debug, Parser)]
#[command(version)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["index", "image"])))]
struct Args {
    #[command(flatten)]
    saved: ModelArgs,
    /// Which image of the set, from 0.
    #[arg(long)]
    index: Option<usize>,
    /// A 28×28 PNG instead (any colour type; dark-on-light drawings are
    /// inverted to MNIST's light-on-dark). It reads no data set, so
    /// `--set` and `--data-dir` do not go with it.
    #[arg(long, value_name = "FILE.png", conflicts_with_all = ["set", "data_dir"])]
    image: Option<PathBuf>,
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
    match args.saved.load_model()? {
        (AnyParams::F32(p), saved) => predict(args, &saved, TwoLayerNet::from_params(p)),
        (AnyParams::F64(p), saved) => predict(args, &saved, TwoLayerNet::from_params(p)),
    }
}

fn predict<A: Element>(args: &Args, saved: &Saved, net: TwoLayerNet<A>) -> anyhow::Result<()> {
    let dataset = args.saved.dataset(saved);
    let (input, _, output) = net.sizes();
    if input != ROWS * COLS || output != CLASSES {
        bail!(
            "--model {}: the model is {input} → {output}; {} needs {} → {CLASSES}",
            saved.path.display(),
            dataset.title(),
            ROWS * COLS
        );
    }
    let (pixels, truth) = match (&args.image, args.index) {
        (Some(path), _) => {
            let drawn = two_layer_net::user_image::read_png(path)?;
            println!("{} ({}, 28×28):", path.display(), drawn.format);
            if drawn.inverted {
                println!(
                    "(dark on a light background: inverted to MNIST's light strokes on black)"
                );
            }
            if drawn.is_blank() {
                println!(
                    "(warning: the image is nearly uniform, grey levels {} to {}: \
                     there is hardly anything to classify)",
                    drawn.range.0, drawn.range.1
                );
            }
            (drawn.pixels, None)
        }
        (None, Some(index)) => {
            let data = args.saved.load_data(dataset)?;
            let name = args.saved.set.name();
            let split = args.saved.set.of(&data);
            if index >= split.len() {
                bail!(
                    "--index {index}: the {} {name} set has images 0 to {}",
                    dataset.title(),
                    split.len() - 1
                );
            }
            println!("{} {name} image {index}:", dataset.title());
            (split.image(index).to_vec(), Some(split.labels()[index]))
        }
        (None, None) => unreachable!("clap requires --index or --image"),
    };
    let images = ImageSet::new(&pixels, &[0], input);
    let mut x = Array2::<A>::zeros((1, input));
    let mut t = Array1::<usize>::zeros(1);
    images.batch_into(&[0], x.view_mut(), &mut t);

    print!("{}", draw(&pixels));
    let probs = softmax(net.predict(x.view()).view());
    let mut ranked: Vec<(usize, f64)> = probs
        .row(0)
        .iter()
        .map(|p| p.to_f64().unwrap_or(f64::NAN))
        .enumerate()
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let named = |c: usize| match dataset.class_name(c) {
        Some(name) => format!("{c} ({name})"),
        None => format!("{c}"),
    };
    if let Some(truth) = truth {
        println!("true label: {}", named(usize::from(truth)));
    }
    for (rank, (class, p)) in ranked.iter().take(3).enumerate() {
        println!("  {}. class {}  {:.4}", rank + 1, named(*class), p);
    }
    Ok(())
}

/// The 28×28 image as 14 lines of 28 characters: each character is two
/// pixels, the upper and the lower, lit when at least 96 of 255.
fn draw(pixels: &[u8]) -> String {
    let lit = |r: usize, c: usize| pixels[r * COLS + c] >= 96;
    let mut s = String::new();
    for r in (0..ROWS).step_by(2) {
        s.push('|');
        for c in 0..COLS {
            s.push(match (lit(r, c), r + 1 < ROWS && lit(r + 1, c)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        s.push_str("|\n");
    }
    s
}
