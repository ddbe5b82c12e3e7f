//! The project's task runner (the cargo-xtask convention): `cargo xtask <command>`.
//!
//! Each command builds the right binary in release mode and runs it, choosing
//! the backend: OpenBLAS when the system library is there (Debian:
//! `libopenblas-dev`), the pure-Rust build otherwise, said in one line.
//! Flags after the command go to the binary: `cargo xtask train --help`.
//!
//! `cargo xtask bench` times the standard job (what `cargo xtask train` runs
//! with no flags) as whole processes: wall and CPU time, peak memory, the
//! median of a few runs, and a check that every run gives the same numbers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

mod bench;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Tasks of the dlfs-rs workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train TwoLayerNet on real MNIST with the book's defaults (DLFS §5.7.4);
    /// `cargo xtask train --help` lists the flags.
    #[command(disable_help_flag = true)]
    Train {
        /// Flags for the trainer, e.g. --iters 1000 --dataset fashion-mnist.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Check backprop against the numerical gradient on 3 real MNIST images
    /// (DLFS §5.7.3), with --plot a bar chart of the differences;
    /// `cargo xtask gradcheck --help` lists the flags.
    #[command(disable_help_flag = true)]
    Gradcheck {
        /// Flags for the checker, e.g. --seed 7.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Measure a saved model on real data: accuracy, per-class accuracy and
    /// the confusion matrix (also as CSV and a PNG heat map);
    /// `cargo xtask eval --help` lists the flags.
    #[command(disable_help_flag = true)]
    Eval {
        /// Flags for the evaluator, e.g. --model runs/mnist --set train.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Classify one real image (or a 28×28 PNG you drew) with a saved model
    /// and draw it in the terminal; `cargo xtask predict --help` lists the flags.
    #[command(disable_help_flag = true)]
    Predict {
        /// Flags for the predictor, e.g. --model runs/mnist --index 0.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Fetch and verify MNIST or Fashion-MNIST, and say where the files are.
    #[command(name = "fetch-data", disable_help_flag = true)]
    FetchData {
        /// Flags for the fetcher, e.g. --dataset fashion-mnist.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Time the standard job (`cargo xtask train` with no flags) as whole
    /// processes: wall, user and system time, peak memory; median of N runs.
    Bench {
        /// Timed runs, after one warm-up run that is not counted.
        #[arg(long, value_name = "N", default_value = "5", value_parser = parse_runs)]
        runs: usize,
        /// Flags for the trainer after `--`, to time another job, e.g. -- --precision f64.
        #[arg(last = true, value_name = "TRAIN FLAGS")]
        args: Vec<OsString>,
    },
    /// Run every test, including those on real MNIST (which the tests fetch
    /// when it is not cached).
    #[command(disable_help_flag = true)]
    Test {
        /// Extra arguments for `cargo test`, e.g. -p core-layers.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // One BLAS thread for training unless the user says otherwise. On the
        // 2-core VM we measured, the book's run took 6.0-6.1 s with one
        // thread every time, and 4.5-8.0 s with two (median 6.5 s over 12
        // runs): a 100-row batch's products gain little from a second thread,
        // and lose a lot whenever the other core is busy.
        Command::Train { args } => {
            run_binary("two-layer-net", "train", &args, Some(TRAIN_BLAS_THREADS))
        }
        // The checker sets one BLAS thread itself (rayon uses the cores); the
        // variable makes that hold from the start.
        Command::Gradcheck { args } => run_binary("two-layer-net", "gradcheck", &args, Some("1")),
        Command::Eval { args } => run_binary("two-layer-net", "eval", &args, Some("1")),
        Command::Predict { args } => run_binary("two-layer-net", "predict", &args, Some("1")),
        Command::FetchData { args } => run_binary("mnist-data", "fetch-data", &args, None),
        // The same build, environment and one BLAS thread as `train`.
        Command::Bench { runs, args } => bench::run(runs, &args, TRAIN_BLAS_THREADS),
        Command::Test { args } => run_tests(&args),
    }
}

/// The BLAS threads of `train` (and `bench`) unless `OPENBLAS_NUM_THREADS` is set.
const TRAIN_BLAS_THREADS: &str = "1";

/// `--runs`: a whole number, at least 1.
fn parse_runs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("at least 1 run is needed".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "expected a whole number of runs from 1 to {}",
            usize::MAX
        )),
    }
}

/// `cargo run --release -p <package> --bin <bin> -- <args>`, pure Rust when
/// OpenBLAS is missing.
///
/// `blas_threads` sets `OPENBLAS_NUM_THREADS` for the child unless the user
/// has set it: OpenBLAS reads it once, when the library loads.
fn run_binary(
    package: &str,
    bin: &str,
    args: &[OsString],
    blas_threads: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let (mut cmd, _) = cargo_release("run", package, bin);
    cmd.arg("--").args(args);
    if let Some(n) = blas_threads {
        default_blas_threads(&mut cmd, n);
    }
    status(cmd)
}

/// `cargo <verb> --release -p <package> --bin <bin>` in the workspace, with
/// two-layer-net's backend chosen by [`backend_flags`]; returns whether the
/// binary uses OpenBLAS.
fn cargo_release(verb: &str, package: &str, bin: &str) -> (Process, bool) {
    let mut cmd = cargo();
    // Not --quiet: a first build takes minutes, and cargo's progress says so.
    cmd.args([verb, "--release", "--package", package, "--bin", bin]);
    cmd.arg("--manifest-path")
        .arg(project_root().join("Cargo.toml"));
    let blas = package == "two-layer-net" && backend_flags(&mut cmd);
    (cmd, blas)
}

/// Sets `OPENBLAS_NUM_THREADS=n` for the child unless the user has set it.
fn default_blas_threads(cmd: &mut Process, n: &str) {
    if std::env::var_os("OPENBLAS_NUM_THREADS").is_none() {
        cmd.env("OPENBLAS_NUM_THREADS", n);
    }
}

/// `cargo test --workspace` with the real-data tests selected.
fn run_tests(args: &[OsString]) -> anyhow::Result<ExitCode> {
    let mut cmd = cargo();
    cmd.arg("test");
    // `-p NAME` narrows the run; otherwise every crate is tested.
    let narrowed = args.iter().any(|a| {
        let a = a.to_string_lossy();
        a == "-p" || a == "--package" || a.starts_with("--package=")
    });
    if !narrowed {
        cmd.arg("--workspace");
    }
    cmd.arg("--manifest-path")
        .arg(project_root().join("Cargo.toml"));
    backend_flags(&mut cmd);
    cmd.args(args);
    cmd.env("DLFS_REAL_DATA", "1");
    status(cmd)
}

/// Adds `--no-default-features` (the pure-Rust backend) when OpenBLAS is not
/// installed or `DLFS_BACKEND=pure-rust`; returns whether BLAS is used.
fn backend_flags(cmd: &mut Process) -> bool {
    match std::env::var("DLFS_BACKEND").as_deref() {
        Ok("pure-rust") => {
            eprintln!("xtask: DLFS_BACKEND=pure-rust: building the pure-Rust backend");
            cmd.arg("--no-default-features");
            return false;
        }
        Ok("openblas") => return true,
        Ok(other) if !other.is_empty() => {
            eprintln!(
                "xtask: DLFS_BACKEND={other} is not a backend (pure-rust or openblas); choosing by what is installed"
            );
        }
        _ => {}
    }
    if openblas_installed() {
        true
    } else {
        eprintln!(
            "xtask: OpenBLAS not found (apt-get install libopenblas-dev for BLAS): building the pure-Rust backend"
        );
        cmd.arg("--no-default-features");
        false
    }
}

/// Whether the system OpenBLAS can be linked: what openblas-src's `system`
/// feature does (ask pkg-config, else link `-lopenblas` from the usual places).
fn openblas_installed() -> bool {
    let pkg_config = Process::new("pkg-config")
        .args(["--exists", "openblas"])
        .status()
        .is_ok_and(|s| s.success());
    if pkg_config {
        return true;
    }
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        "/opt/homebrew/opt/openblas/lib",
    ];
    dirs.iter().any(|d| {
        ["libopenblas.so", "libopenblas.a", "libopenblas.dylib"]
            .iter()
            .any(|f| Path::new(d).join(f).exists())
    })
}

fn cargo() -> Process {
    let mut cmd = Process::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env("CARGO_TARGET_DIR", target_dir());
    // `cargo run` gave this process the variables of the xtask package. Passed
    // on, they reach build scripts that watch them (ring's does) and force a
    // rebuild every time one switches between plain cargo and cargo xtask.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let package_var = key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_RUSTC_CURRENT_DIR"
            );
        if package_var {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// The workspace root, one level above this crate.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// The workspace's target directory, wherever the command is run from.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

fn status(mut cmd: Process) -> anyhow::Result<ExitCode> {
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(args: &[&str]) -> Result<(usize, Vec<OsString>), clap::Error> {
        let cli = Cli::try_parse_from(["cargo xtask", "bench"].iter().chain(args))?;
        match cli.command {
            Command::Bench { runs, args } => Ok((runs, args)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_runs_and_trainer_flags() {
        assert_eq!(bench(&[]).unwrap(), (5, vec![]));
        assert_eq!(bench(&["--runs", "3"]).unwrap().0, 3);
        assert_eq!(bench(&["--runs=2"]).unwrap().0, 2);
        let (runs, args) =
            bench(&["--runs", "2", "--", "--iters", "500", "--precision=f64"]).unwrap();
        assert_eq!(runs, 2);
        assert_eq!(args, ["--iters", "500", "--precision=f64"]);
        // `--runs` after `--` belongs to the trainer.
        let (runs, args) = bench(&["--", "--runs", "1"]).unwrap();
        assert_eq!((runs, args.len()), (5, 2));
    }

    #[test]
    fn bench_refuses_bad_flags() {
        for bad in [
            &["--runs", "0"][..],
            &["--runs", "abc"],
            &["--runs", "-1"],
            &["--runs"],
            &["--iters", "500"],
        ] {
            let e = bench(bad).unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    clap::error::ErrorKind::ValueValidation
                        | clap::error::ErrorKind::InvalidValue
                        | clap::error::ErrorKind::UnknownArgument
                ),
                "{bad:?}: {e}"
            );
        }
        let e = bench(&["--runs", "0"]).unwrap_err().to_string();
        assert!(e.contains("at least 1 run"), "{e}");
    }
}
