//! Interoperability, for real: Python's safetensors and NumPy read the model
//! `train` saved and, on the real MNIST test set, predict every image as
//! `eval` does.
//!
//! The Python side is `python/forward.py`, the script the README shows. It
//! needs numpy and safetensors: when `python3` lacks them, a virtualenv is
//! made once in the cache (`<cache root>/python-venv`, about 100 MB) and
//! they are installed there with pip from PyPI. Only a missing `python3`
//! skips the test, loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::real_data_selected;

const PACKAGES: [&str; 2] = ["numpy>=1.24,<3", "safetensors>=0.4,<1"];

/// Whether `python` runs and imports numpy and safetensors.
fn has_packages(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import numpy, safetensors.numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `cmd`, panicking with its output when it fails.
#[track_caller]
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A Python with numpy and safetensors: `python3` itself if it has them,
/// else the cache's virtualenv, made on first use. `None` (with a loud
/// line) only when there is no `python3`.
fn python() -> Option<PathBuf> {
    let system = PathBuf::from("python3");
    if Command::new(&system).arg("--version").output().is_err() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED python_reads_the_model_and_predicts_every_test_image_as_eval_does: \
             no python3 on PATH, so the model could not be checked from Python"
        );
        return None;
    }
    if has_packages(&system) {
        return Some(system);
    }
    let venv = mnist_data::FetchOptions::from_env()
        .cache_root()
        .expect("a cache directory (set DLFS_CACHE_DIR)")
        .join("python-venv");
    let python = venv.join("bin").join("python");
    if has_packages(&python) {
        return Some(python);
    }
    // Missing or half made (an interrupted install): start again.
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    run(
        Command::new(&system).arg("-m").arg("venv").arg(&venv),
        "python3 -m venv (on Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES),
        "pip install numpy safetensors (needs PyPI)",
    );
    assert!(
        has_packages(&python),
        "{} still lacks numpy or safetensors",
        python.display()
    );
    Some(python)
}

/// For an f32 and an f64 model: forward.py prints the accuracy line `eval`
/// prints, and its prediction for each of the 10,000 test images is the one
/// in `eval`'s predictions-test.csv.
#[test]
fn python_reads_the_model_and_predicts_every_test_image_as_eval_does() {
    if !real_data_selected("python_reads_the_model_and_predicts_every_test_image_as_eval_does") {
        return;
    }
    let Some(python) = python() else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/forward.py");
    let dir = tempfile::tempdir().unwrap();
    for precision in ["f32", "f64"] {
        let out = dir.path().join(precision);
        let out_s = out.to_str().unwrap();
        run(
            Command::new(env!("CARGO_BIN_EXE_train")).args([
                "--iters",
                "600",
                "--precision",
                precision,
                "--out",
                out_s,
            ]),
            "train",
        );
        let eval = run(
            Command::new(env!("CARGO_BIN_EXE_eval")).args(["--model", out_s]),
            "eval",
        );
        let accuracy = eval
            .lines()
            .find(|l| l.starts_with("MNIST test accuracy "))
            .unwrap_or_else(|| panic!("{eval}"));
        let predictions = out.join("python-predictions.txt");
        let py = run(
            Command::new(&python)
                .arg(&script)
                .arg(&out)
                .arg("--predictions")
                .arg(&predictions),
            "forward.py",
        );
        assert!(
            py.starts_with(&format!("{accuracy}, numpy ")),
            "{precision}: eval said {accuracy:?}, Python said {py:?}"
        );
        assert!(py.contains(&format!("float{}", &precision[1..])), "{py}");

        let from_eval: Vec<String> = std::fs::read_to_string(out.join("predictions-test.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().to_owned())
            .collect();
        let from_python: Vec<String> = std::fs::read_to_string(&predictions)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(from_python.len(), 10_000);
        let differ: Vec<usize> = (0..10_000)
            .filter(|&i| from_eval[i] != from_python[i])
            .collect();
        assert!(
            differ.is_empty(),
            "{precision}: Python and eval disagree on test images {differ:?}"
        );
    }
}
