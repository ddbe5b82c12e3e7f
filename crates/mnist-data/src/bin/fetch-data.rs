//! `fetch-data`: fetches and verifies MNIST or Fashion-MNIST, then says where
//! the files are and which source each came from. `cargo xtask fetch-data`
//! runs this binary.
//!
//! ```text
//! fetch-data [--dataset mnist|fashion-mnist] [--data-dir DIR] [--cache-dir DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use mnist_data::cli::Bar;
use mnist_data::{Dataset, FetchOptions};

/// Fetch and verify MNIST or Fashion-MNIST (SHA-256 of every file).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Which data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: Dataset,
    /// Use the four files in this directory (raw or .gz) and nothing else
    /// [default: $DLFS_DATA_DIR].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Cache root; each data set gets a subdirectory
    /// [default: $DLFS_CACHE_DIR, else the user's cache directory + dlfs-rs].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut opts = FetchOptions::from_env();
    if let Some(dir) = args.data_dir {
        opts.set_data_dir(dir);
    }
    if args.cache_dir.is_some() {
        opts.cache_dir = args.cache_dir;
    }
    opts.progress = Some(Arc::new(Bar::default()));
    let start = Instant::now();
    let fetched = mnist_data::fetch(args.dataset, &opts)?;
    println!("{fetched}");
    println!("done in {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}
