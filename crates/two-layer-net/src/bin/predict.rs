//! `predict`: one image through a model saved by `train`.
//!
//! Draws the image in the terminal (28 columns of half-block characters, 14
//! lines), prints its true label and the model's three most probable
//! classes. Run it through `cargo xtask predict --model DIR --index N`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;
use core_layers::functions::softmax;
use mnist_data::{CLASSES, COLS, ROWS};
use ndarray::{Array1, Array2};
use two_layer_net::checkpoint::{AnyParams, Element};
use two_layer_net::saved::{ModelArgs, Saved};
use two_layer_net::{ImageSet, TwoLayerNet};

/// Classify one real image with a model saved by `train`, and show it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    saved: ModelArgs,
    /// Which image of the set, from 0.
    #[arg(long)]
    index: usize,
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
    let data = args.saved.load_data(dataset)?;
    let name = args.saved.set.name();
    let split = args.saved.set.of(&data);
    if args.index >= split.len() {
        bail!(
            "--index {}: the {} {name} set has images 0 to {}",
            args.index,
            dataset.title(),
            split.len() - 1
        );
    }
    let images = ImageSet::new(split.images(), split.labels(), split.pixels());
    let mut x = Array2::<A>::zeros((1, input));
    let mut t = Array1::<usize>::zeros(1);
    images.batch_into(&[args.index], x.view_mut(), &mut t);
    let pixels = &split.images()[args.index * input..][..input];

    println!("{} {name} image {}:", dataset.title(), args.index);
    print!("{}", draw(pixels));
    let probs = softmax(net.predict(x.view()).view());
    let mut ranked: Vec<(usize, f64)> = probs
        .row(0)
        .iter()
        .map(|p| p.to_f64().unwrap_or(f64::NAN))
        .enumerate()
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("true label: {}", t[0]);
    for (rank, (class, p)) in ranked.iter().take(3).enumerate() {
        println!("  {}. class {class}  {:.4}", rank + 1, p);
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
