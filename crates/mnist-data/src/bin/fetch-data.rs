//! `fetch-data`: fetches and verifies MNIST or Fashion-MNIST, then says where
//! the files are and which source each came from. `cargo xtask fetch-data`
//! runs this binary.
//!
//! ```text
//! fetch-data [--dataset mnist|fashion-mnist] [--data-dir DIR] [--cache-dir DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mnist_data::{Dataset, FetchOptions, Progress};

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

/// Notes go to stderr; downloads get a byte progress bar (hidden when stderr
/// is not a terminal).
#[derive(Default)]
struct Bar(Mutex<Option<ProgressBar>>);

impl Progress for Bar {
    fn note(&self, msg: &str) {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(pb) => pb.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    fn download_start(&self, url: &str, total: Option<u64>) {
        let pb = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("a valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec} {msg}")
                    .expect("a valid template"),
            ),
        };
        pb.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(pb);
    }

    fn download_progress(&self, received: u64) {
        if let Some(pb) = &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            pb.set_position(received);
        }
    }

    fn download_end(&self) {
        if let Some(pb) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pb.finish_and_clear();
        }
    }
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
    if args.data_dir.is_some() {
        opts.data_dir = args.data_dir;
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
