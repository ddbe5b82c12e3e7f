//! The `train` and `gradcheck` binaries refuse bad input with a clear message.

use std::process::Command;

use crate::real_data_selected;

/// Runs `train` with `args`; returns (success, stdout, stderr).
fn train(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(args)
        .output()
        .expect("the train binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn refused(args: &[&str], message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut all = args.to_vec();
    let out_s = out.to_str().unwrap().to_owned();
    if !args.contains(&"--out") {
        all.extend(["--out", &out_s]);
    }
    let (ok, stdout, stderr) = train(&all);
    assert!(!ok, "{args:?} was accepted:\n{stdout}{stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected {message:?} in:\n{stderr}"
    );
    // Refused before any work: nothing trained, nothing written.
    assert!(
        !stdout.contains("TwoLayerNet("),
        "{args:?} started work:\n{stdout}"
    );
    assert!(!out.join("loss.csv").exists());
}

#[test]
fn bad_flags_are_refused_before_any_work() {
    refused(&["--batch-size", "0"], "--batch-size must be at least 1");
    refused(
        &["--batch-size", "60001"],
        "--batch-size 60001 is larger than the MNIST training set (60000 images)",
    );
    refused(&["--lr", "0"], "--lr must be a positive finite number");
    refused(&["--lr", "-0.1"], "--lr must be a positive finite number");
    refused(&["--lr", "NaN"], "--lr must be a positive finite number");
    refused(&["--lr", "inf"], "--lr must be a positive finite number");
    refused(&["--hidden", "0"], "--hidden must be at least 1");
    refused(&["--iters", "0"], "--iters must be at least 1");
    refused(
        &["--lr", "1e-300"],
        "--lr 1e-300 is not a positive finite f32",
    );
    refused(
        &["--weight-init-std", "1e300"],
        "--weight-init-std 1e300 overflows f32",
    );
    refused(
        &["--iters", "18446744073709551615"],
        "--iters 18446744073709551615 is more than 100000000",
    );
    refused(
        &["--hidden", "100000000000"],
        "--hidden 100000000000 is more than 100000",
    );
    refused(
        &["--weight-init-std", "-1"],
        "--weight-init-std must be a finite number >= 0",
    );
    refused(
        &["--dataset", "cifar"],
        "unknown data set \"cifar\": expected one of mnist, fashion-mnist",
    );
    refused(
        &["--precision", "f16"],
        "invalid value 'f16' for '--precision <PRECISION>'",
    );
}

#[test]
fn output_names_taken_by_directories_are_reported_before_training() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("model.safetensors")).unwrap();
    let (ok, stdout, stderr) = train(&["--out", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("model.safetensors exists and is not a regular file"),
        "{stderr}"
    );
    assert!(!stdout.contains("TwoLayerNet("), "{stdout}");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (ok, _, stderr) = train(&["--out", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("exists and is not a directory"), "{stderr}");
}

#[test]
fn an_unwritable_out_directory_is_reported_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let bad = file.join("out");
    let (ok, stdout, stderr) = train(&["--out", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("--out {}", bad.display())),
        "{stderr}"
    );
    assert!(!stdout.contains("TwoLayerNet("), "{stdout}");
}

#[test]
fn a_diverging_run_names_the_iteration_and_keeps_valid_files() {
    if !real_data_selected("a_diverging_run_names_the_iteration_and_keeps_valid_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    // A model from an earlier good run in the same directory must survive.
    let (ok, _, stderr) = train(&["--iters", "20", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let model_before = std::fs::read(out.join("model.safetensors")).unwrap();
    let loss_before = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    let accuracy_before = std::fs::read_to_string(out.join("accuracy.csv")).unwrap();
    assert_eq!(loss_before.lines().count(), 21);

    let (ok, _, stderr) = train(&[
        "--iters",
        "500",
        "--lr",
        "1e30",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("training diverged: the loss at iteration"),
        "{stderr}"
    );
    assert!(stderr.contains("try a smaller learning rate"), "{stderr}");
    let iter: usize = stderr
        .split("iteration ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("the message names the iteration");
    let loss_csv = std::fs::read_to_string(out.join("diverged-loss.csv")).unwrap();
    let lines: Vec<_> = loss_csv.lines().collect();
    assert_eq!(lines[0], "iteration,loss");
    assert_eq!(
        lines.len(),
        iter + 2,
        "header plus one line per iteration up to the bad one"
    );
    assert!(lines.last().unwrap().starts_with(&format!("{iter},")));
    // The earlier run's files are untouched and still a set.
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    assert_eq!(read("model.safetensors"), model_before);
    assert_eq!(read("loss.csv"), loss_before.as_bytes());
    assert_eq!(read("accuracy.csv"), accuracy_before.as_bytes());
    let leftovers: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            ![
                "loss.csv",
                "accuracy.csv",
                "model.safetensors",
                "diverged-loss.csv",
                "diverged-accuracy.csv",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn gradcheck_binary_passes_on_real_mnist_and_prints_one_line_per_parameter() {
    if !real_data_selected(
        "gradcheck_binary_passes_on_real_mnist_and_prints_one_line_per_parameter",
    ) {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gradcheck"))
        .args(["--seed", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let firsts: Vec<_> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| ["W1", "b1", "W2", "b2"].contains(w))
        .collect();
    assert_eq!(firsts, ["W1", "b1", "W2", "b2"], "{stdout}");
    assert!(stdout.contains("142 at a ReLU kink"), "{stdout}");
    assert!(stdout.contains("gradient check passed"), "{stdout}");
}
