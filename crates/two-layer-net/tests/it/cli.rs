//! The `train` and `gradcheck` binaries refuse bad input with a clear message.

use std::process::Command;

use crate::real_data_selected;

/// Runs one of the binaries: (success, stdout, stderr).
fn run_bin(exe: &str, args: &[&str]) -> (bool, String, String) {
    run_bin_env(exe, args, &[])
}

/// [`run_bin`] with extra environment variables.
fn run_bin_env(exe: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(exe)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{exe} runs: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn train(args: &[&str]) -> (bool, String, String) {
    run_bin(env!("CARGO_BIN_EXE_train"), args)
}

fn gradcheck(args: &[&str]) -> (bool, String, String) {
    run_bin(env!("CARGO_BIN_EXE_gradcheck"), args)
}

/// Decodes the PNG at `path` and checks that something is drawn on it (at
/// least `min_ink` pixels that are not white). Returns its size.
#[track_caller]
fn drawn_png(path: &std::path::Path, min_ink: usize) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let ink = buf[..info.buffer_size()]
        .chunks(3)
        .filter(|p| p != &[255, 255, 255])
        .count();
    assert!(
        ink >= min_ink,
        "{}: only {ink} pixels drawn",
        path.display()
    );
    (info.width, info.height)
}

fn eval(args: &[&str]) -> (bool, String, String) {
    run_bin(env!("CARGO_BIN_EXE_eval"), args)
}

fn predict(args: &[&str]) -> (bool, String, String) {
    run_bin(env!("CARGO_BIN_EXE_predict"), args)
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
    let plots_before = ["loss.png", "accuracy.png"].map(|n| std::fs::read(out.join(n)).unwrap());
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
    assert_eq!(
        ["loss.png", "accuracy.png"].map(read),
        plots_before,
        "the plots of the earlier run are untouched"
    );
    assert!(
        stderr.contains("loss.png and accuracy.png there are untouched"),
        "{stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            ![
                "loss.csv",
                "accuracy.csv",
                "model.safetensors",
                "summary.json",
                "loss.png",
                "accuracy.png",
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
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("gc.png");
    let (ok, stdout, stderr) = gradcheck(&["--seed", "5", "--plot", plot.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    let firsts: Vec<_> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| ["W1", "b1", "W2", "b2"].contains(w))
        .collect();
    assert_eq!(firsts, ["W1", "b1", "W2", "b2"], "{stdout}");
    assert!(stdout.contains("142 at a ReLU kink"), "{stdout}");
    assert!(stdout.contains("gradient check passed"), "{stdout}");
    assert!(
        stdout.contains(&format!("plot: {}", plot.display())),
        "{stdout}"
    );
    assert_eq!(drawn_png(&plot, 20_000), (1000, 560));
}

/// A bad `--plot` is refused before the data is loaded or anything is
/// computed, with the flag and the reason.
#[test]
fn gradcheck_refuses_an_unwritable_plot_path_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("gc.png");
    let d = dir.path().to_str().unwrap();
    for (path, why) in [
        (missing.to_str().unwrap(), "does not exist"),
        (d, "is a directory"),
    ] {
        let (ok, stdout, stderr) = gradcheck(&["--plot", path, "--data-dir", "/nonexistent"]);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("--plot: {path}")) && stderr.contains(why),
            "{path}: {stderr}"
        );
        assert!(!stdout.contains("gradient check of"), "{stdout}");
    }
    assert!(!missing.exists());
}

/// summary.json holds what the run was given and what it measured, in
/// agreement with the printed lines, accuracy.csv and the data set's
/// published digests.
#[test]
fn summary_json_records_the_run() {
    if !real_data_selected("summary_json_records_the_run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    // Plain progress lines (stderr is a pipe here), one per iteration with
    // a zero interval.
    let (ok, stdout, stderr) = run_bin_env(
        env!("CARGO_BIN_EXE_train"),
        &[
            "--iters",
            "1300",
            "--batch-size",
            "50",
            "--lr",
            "0.2",
            "--hidden",
            "30",
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("DLFS_PROGRESS_SECS", "0")],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("summary.json"), "{stdout}");
    let progress: Vec<u64> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("training: "))
        .map(|l| {
            assert!(l.contains(" iterations (") && l.contains("| loss "), "{l}");
            l.split('/').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(progress.len() > 100, "{stderr}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert!(*progress.last().unwrap() <= 1300);
    assert!(!stderr.contains('\x1b'), "no terminal escapes in a log");
    // The plots, in the same set.
    assert!(
        stdout.contains(&format!("plots: {}", out.join("loss.png").display())),
        "{stdout}"
    );
    assert_eq!(drawn_png(&out.join("loss.png"), 20_000), (900, 540));
    assert_eq!(drawn_png(&out.join("accuracy.png"), 20_000), (900, 540));
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["dataset"], "mnist");
    assert_eq!(s["training"]["iters"], 1300);
    assert_eq!(s["training"]["batch_size"], 50);
    assert_eq!(s["training"]["lr"], 0.2);
    assert_eq!(s["training"]["seed"], 7);
    assert_eq!(s["training"]["iters_per_epoch"], 1200);
    assert_eq!(s["network"]["input_size"], 784);
    assert_eq!(s["network"]["hidden_size"], 30);
    assert_eq!(s["network"]["output_size"], 10);
    assert_eq!(s["network"]["weight_init_std"], 0.01);
    assert_eq!(s["network"]["precision"], "f32");
    assert_eq!(s["network"]["first_layer_input_path"], "sparse");
    assert_eq!(s["data"]["train_images"], 60000);
    assert_eq!(s["data"]["test_images"], 10000);
    let files = s["data"]["files"].as_array().unwrap();
    for spec in mnist_data::Dataset::Mnist.files() {
        let f = files
            .iter()
            .find(|f| f["name"] == spec.name)
            .unwrap_or_else(|| panic!("{} is listed", spec.name));
        assert_eq!(f["sha256"], spec.sha256, "{}", spec.name);
    }
    // The final accuracies, as printed to 4 decimals.
    let final_line = stdout.lines().find(|l| l.starts_with("final:")).unwrap();
    let acc = |v: &serde_json::Value| format!("{:.4}", v.as_f64().unwrap());
    assert!(
        final_line.contains(&format!(
            "train acc {}, test acc {}",
            acc(&s["results"]["final_train_acc"]),
            acc(&s["results"]["final_test_acc"])
        )),
        "{final_line}"
    );
    assert!(s["results"]["final_test_acc"].as_f64().unwrap() > 0.85);
    // The epochs, as in accuracy.csv (iterations 0 and 1200).
    let epochs = s["results"]["epochs"].as_array().unwrap();
    let csv = std::fs::read_to_string(out.join("accuracy.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(epochs.len(), 2);
    assert_eq!(rows.len(), 2);
    for (e, row) in epochs.iter().zip(&rows) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(e["epoch"].to_string(), fields[0]);
        assert_eq!(e["iteration"].to_string(), fields[1]);
        let csv_acc: f64 = fields[3].parse().unwrap();
        assert!(
            (e["test_acc"].as_f64().unwrap() - csv_acc).abs() < 1e-6,
            "{row}"
        );
    }
    let last_loss = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    let last_loss: f64 = last_loss
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((s["results"]["last_loss"].as_f64().unwrap() - last_loss).abs() <= 1e-6 * last_loss);
    let backend = if cfg!(feature = "blas") {
        "openblas"
    } else {
        "pure-rust"
    };
    assert_eq!(s["backend"]["name"], backend);
    assert_eq!(
        s["backend"]["blas_threads"].is_u64(),
        cfg!(feature = "blas")
    );
    assert!(s["backend"]["rayon_threads"].as_u64().unwrap() >= 1);
    let loop_s = s["time"]["training_loop_s"].as_f64().unwrap();
    let whole_s = s["time"]["whole_process_s_before_saving"].as_f64().unwrap();
    assert!(0.0 < loop_s && loop_s < whole_s, "{loop_s} {whole_s}");
    assert_eq!(
        s["outputs"],
        serde_json::json!([
            "loss.csv",
            "accuracy.csv",
            "model.safetensors",
            "summary.json",
            "loss.png",
            "accuracy.png"
        ])
    );
}

/// eval on a model train saved: the same test accuracy train reported, and
/// a confusion matrix whose rows hold MNIST's published test counts per
/// class and whose diagonal is the correct count.
#[test]
fn eval_reproduces_the_reported_accuracy_and_counts_every_test_image() {
    if !real_data_selected("eval_reproduces_the_reported_accuracy_and_counts_every_test_image") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let (ok, train_out, stderr) = train(&["--iters", "600", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let final_line = train_out.lines().find(|l| l.starts_with("final:")).unwrap();
    let test_acc = final_line
        .split("test acc ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap();

    let (ok, stdout, stderr) = eval(&["--model", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("MNIST test accuracy {test_acc} (")),
        "train said {test_acc}:\n{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("confusion-test.csv")).unwrap();
    let rows: Vec<Vec<usize>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(csv.lines().next().unwrap(), "true,0,1,2,3,4,5,6,7,8,9");
    let per_class: Vec<usize> = rows.iter().map(|r| r.iter().sum()).collect();
    assert_eq!(
        per_class,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let correct: usize = (0..10).map(|c| rows[c][c]).sum();
    assert!(
        stdout.contains(&format!("({correct} of 10000 images)")),
        "{stdout}"
    );
    assert_eq!(format!("{:.4}", correct as f64 / 10000.0), test_acc);
    assert!(stdout.contains("confusion-test.png (heat map)"), "{stdout}");
    // Each image's label and prediction, in agreement with the matrix.
    let each = std::fs::read_to_string(out.join("predictions-test.csv")).unwrap();
    let mut lines = each.lines();
    assert_eq!(lines.next(), Some("index,label,predicted"));
    let mut from_rows = vec![vec![0usize; 10]; 10];
    for (i, line) in lines.enumerate() {
        let v: Vec<usize> = line.split(',').map(|f| f.parse().unwrap()).collect();
        assert_eq!(v[0], i, "{line}");
        from_rows[v[1]][v[2]] += 1;
    }
    assert_eq!(from_rows, rows);
    drawn_png(&out.join("confusion-test.png"), 50_000);

    // The training set: 60,000 images, and the train accuracy train reported.
    let train_acc = final_line
        .split("train acc ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap();
    let (ok, stdout, stderr) = eval(&["--model", out.to_str().unwrap(), "--set", "train"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("MNIST train accuracy {train_acc} (")),
        "{stdout}"
    );
    assert!(stdout.contains("of 60000 images)"), "{stdout}");

    // A model of another hidden size than the flag says is refused.
    let (ok, _, stderr) = eval(&["--model", out.to_str().unwrap(), "--hidden", "100"]);
    assert!(!ok);
    let file = out.join("model.safetensors");
    assert!(
        stderr.contains(&format!(
            "--hidden 100: {} has 50 hidden units (W1 is [784, 50])",
            file.display()
        )),
        "{stderr}"
    );
    let (ok, _, stderr) = eval(&["--model", out.to_str().unwrap(), "--hidden", "50"]);
    assert!(ok, "{stderr}");
}

#[test]
fn eval_refuses_a_missing_a_truncated_and_a_foreign_model() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-run");
    let (ok, _, stderr) = eval(&["--model", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("--model {}: ", missing.display()))
            && stderr.contains("does not exist (give a run directory"),
        "{stderr}"
    );
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, b"\x40\x00\x00\x00\x00\x00\x00\x00{\"W1\":").unwrap();
    let (ok, _, stderr) = eval(&["--model", truncated.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("not a valid safetensors model file"),
        "{stderr}"
    );
    // A valid safetensors file without the net's tensors.
    let foreign = dir.path().join("foreign.safetensors");
    let header = br#"{"weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(&foreign, bytes).unwrap();
    let (ok, _, stderr) = eval(&["--model", foreign.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("no tensor named W1"), "{stderr}");
}

/// predict on MNIST's first test image (a 7): the drawing (14 lines of 28
/// characters between bars), the true label, and three classes in
/// decreasing probability, the first of them what eval counts.
#[test]
fn predict_draws_the_image_and_ranks_three_classes() {
    if !real_data_selected("predict_draws_the_image_and_ranks_three_classes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (ok, _, stderr) = train(&["--iters", "600", "--out", out]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = predict(&["--model", out, "--index", "0"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "MNIST test image 0:");
    let drawing = &lines[1..15];
    assert!(
        drawing
            .iter()
            .all(|l| l.starts_with('|') && l.ends_with('|') && l.chars().count() == 30),
        "{stdout}"
    );
    assert!(drawing.iter().any(|l| l.contains('█')), "{stdout}");
    assert_eq!(lines[15], "true label: 7");
    let ranked: Vec<(usize, f64)> = lines[16..19]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    assert!(
        ranked[0].1 >= ranked[1].1 && ranked[1].1 >= ranked[2].1,
        "{stdout}"
    );
    assert!(ranked.iter().map(|r| r.1).sum::<f64>() <= 1.0 + 1e-3);
    // A net trained for an epoch gets this easy 7 right.
    assert_eq!(ranked[0].0, 7, "{stdout}");

    let (ok, _, stderr) = predict(&["--model", out, "--index", "10000"]);
    assert!(!ok);
    assert!(
        stderr.contains("--index 10000: the MNIST test set has images 0 to 9999"),
        "{stderr}"
    );
}

/// Writes a `width`×`height` PNG of `colour` and `depth` holding `data`.
fn write_png(
    path: &std::path::Path,
    (width, height): (u32, u32),
    colour: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(colour);
    encoder.set_depth(depth);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
}

/// `predict --image` on MNIST test image 0 saved as a PNG five ways (grey,
/// 16-bit grey, inverted RGB, black or white strokes on a transparent
/// background) gives the drawing and the probabilities `--index 0` gives; a PNG of
/// another size, a file that is not a PNG and a missing file are refused
/// with their path.
#[test]
fn predict_reads_a_drawn_png_as_the_data_sets_own_image() {
    if !real_data_selected("predict_reads_a_drawn_png_as_the_data_sets_own_image") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (ok, _, stderr) = train(&["--iters", "600", "--out", out]);
    assert!(ok, "{stderr}");
    let (ok, by_index, stderr) = predict(&["--model", out, "--index", "0"]);
    assert!(ok, "{stderr}");
    let drawing = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with('|'))
            .map(str::to_owned)
            .collect()
    };
    let ranking = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains(". class "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(drawing(&by_index).len(), 14, "{by_index}");
    assert_eq!(ranking(&by_index).len(), 3, "{by_index}");

    let data = crate::real_data::mnist();
    let seven = data.test.image(0);
    let dims = (28, 28);
    let inverted: Vec<u8> = seven.iter().flat_map(|&v| [255 - v; 3]).collect();
    let sixteen: Vec<u8> = seven
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_be_bytes())
        .collect();
    let on_glass: Vec<u8> = seven.iter().flat_map(|&v| [0, 0, 0, v]).collect();
    let white_pen: Vec<u8> = seven.iter().flat_map(|&v| [255, 255, 255, v]).collect();
    use png::{BitDepth::*, ColorType::*};
    for (name, colour, depth, bytes, flipped) in [
        ("grey.png", Grayscale, Eight, seven.to_vec(), false),
        ("grey16.png", Grayscale, Sixteen, sixteen, false),
        ("inverted.png", Rgb, Eight, inverted, true),
        ("transparent.png", Rgba, Eight, on_glass, true),
        ("white-pen.png", Rgba, Eight, white_pen, false),
    ] {
        let path = dir.path().join(name);
        write_png(&path, dims, colour, depth, &bytes);
        let (ok, stdout, stderr) = predict(&["--model", out, "--image", path.to_str().unwrap()]);
        assert!(ok, "{name}: {stderr}");
        assert!(
            stdout.starts_with(&format!("{} (", path.display())),
            "{stdout}"
        );
        assert_eq!(stdout.contains("inverted"), flipped, "{name}: {stdout}");
        assert!(!stdout.contains("true label"), "{stdout}");
        assert_eq!(drawing(&stdout), drawing(&by_index), "{name}: {stdout}");
        assert_eq!(ranking(&stdout), ranking(&by_index), "{name}: {stdout}");
    }

    // A blank page is classified, with a warning.
    let blank = dir.path().join("blank.png");
    write_png(&blank, dims, Grayscale, Eight, &[255; 28 * 28]);
    let (ok, stdout, stderr) = predict(&["--model", out, "--image", blank.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("nearly uniform, grey levels 255 to 255"),
        "{stdout}"
    );

    let wide = dir.path().join("wide.png");
    write_png(&wide, (30, 28), Grayscale, Eight, &[0; 30 * 28]);
    let text = dir.path().join("not.png");
    std::fs::write(&text, "not an image").unwrap();
    let missing = dir.path().join("missing.png");
    for (path, why) in [
        (&wide, "the image is 30×28 pixels; predict needs 28×28"),
        (&text, "not a PNG file"),
        (&missing, "No such file"),
    ] {
        let (ok, _, stderr) = predict(&["--model", out, "--image", path.to_str().unwrap()]);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("--image {}", path.display())) && stderr.contains(why),
            "{stderr}"
        );
    }
    let (ok, _, stderr) = predict(&["--model", out]);
    assert!(
        !ok && stderr.contains("--index <INDEX>|--image <FILE.png>"),
        "{stderr}"
    );
    let (ok, _, stderr) = predict(&["--model", out, "--index", "0", "--image", "x.png"]);
    assert!(!ok && stderr.contains("cannot be used with"), "{stderr}");
    // A drawing reads no data set: flags that pick data are refused, not ignored.
    let drawn = dir.path().join("grey.png");
    for flag in [&["--set", "train"][..], &["--data-dir", "/nonexistent"]] {
        let mut argv = vec!["--model", out, "--image", drawn.to_str().unwrap()];
        argv.extend_from_slice(flag);
        let (ok, _, stderr) = predict(&argv);
        assert!(
            !ok && stderr.contains("cannot be used with") && stderr.contains(flag[0]),
            "{stderr}"
        );
    }
}
