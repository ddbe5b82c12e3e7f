//! `cargo xtask bench`: the standard job, timed as whole processes.
//!
//! The standard job is what `cargo xtask train` runs with no flags: the
//! book's training (TwoLayerNet 784-50-10, 10,000 iterations, batch 100,
//! lr 0.1, f32) on real MNIST. The release `train` binary is built once, the
//! way `train` builds it, run once to warm up (not counted), then run N times
//! one after the other; each run's wall time, user and system CPU time and
//! peak resident memory come from `wait4`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode, ExitStatus, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::{cargo_release, default_blas_threads};

/// Builds `train`, warms up, times `runs` runs and prints them with their
/// medians; fails when a run fails or the runs disagree.
pub(crate) fn run(runs: usize, args: &[OsString], blas_threads: &str) -> anyhow::Result<ExitCode> {
    if !cfg!(unix) {
        bail!(
            "cargo xtask bench runs on Unix only: it takes each run's CPU time and peak memory from wait4"
        );
    }
    if args.iter().any(|a| {
        let a = a.to_string_lossy();
        a == "--out" || a.starts_with("--out=")
    }) {
        bail!("bench gives each run its own temporary --out; leave --out out of the flags");
    }
    let (exe, blas) = build_release("two-layer-net", "train")?;

    // What the runs get, said before they start.
    let job = if args.is_empty() {
        "standard job: train with the book's defaults (784-50-10, 10000 iterations, batch 100, \
         lr 0.1, f32) on real MNIST"
            .to_owned()
    } else {
        let flags: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        format!(
            "job: train {} (the standard job with these flags)",
            flags.join(" ")
        )
    };
    let plural = if runs == 1 { "" } else { "s" };
    println!("{job}, {runs} run{plural} after 1 warm-up");
    let blas_threads_note = match std::env::var_os("OPENBLAS_NUM_THREADS") {
        None => format!("OPENBLAS_NUM_THREADS={blas_threads} (xtask's default)"),
        Some(n) => format!("OPENBLAS_NUM_THREADS={} (yours)", n.to_string_lossy()),
    };
    println!(
        "backend {} | {blas_threads_note} | RAYON_NUM_THREADS{} | OPENBLAS_CORETYPE{} | OPENBLAS_L2_SIZE{}",
        if blas { "openblas" } else { "pure-rust" },
        var_note("RAYON_NUM_THREADS"),
        var_note("OPENBLAS_CORETYPE"),
        var_note("OPENBLAS_L2_SIZE"),
    );
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = cpu_model().map(|m| format!(" ({m})")).unwrap_or_default();
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| {
            let l: Vec<_> = l.split_whitespace().take(3).collect();
            format!(", load average {} before the warm-up", l.join(" "))
        })
        .unwrap_or_default();
    println!("machine: {cpus} CPUs{model}{load}");
    println!("binary: {}", exe.display());
    let command = || {
        let mut cmd = Process::new(&exe);
        cmd.args(args);
        default_blas_threads(&mut cmd, blas_threads);
        cmd
    };

    println!(
        "warm-up run (not counted: fetches the data if it is missing, warms the page cache) ..."
    );
    flush();
    let warm_up = run_once(command(), 0)?;
    println!("warm-up: {:.2} s wall; train says:", warm_up.wall);
    for line in warm_up
        .stdout
        .lines()
        .take_while(|l| !l.starts_with("epoch"))
    {
        println!("  {line}");
    }

    let header = format!(
        "{:<6} {:>7} {:>7} {:>6} {:>7} {:>8} {:>7}  final",
        "run", "wall s", "user s", "sys s", "CPU s", "peak MiB", "loop s"
    );
    println!("{header}");
    let mut done = Vec::with_capacity(runs);
    for i in 1..=runs {
        flush();
        let r = run_once(command(), i)?;
        println!(
            "{:<6} {:>7.2} {:>7.2} {:>6.2} {:>7.2} {:>8.1} {:>7}  train {}, test {}",
            i,
            r.wall,
            r.user,
            r.sys,
            r.user + r.sys,
            r.peak_mib,
            r.result
                .loop_s
                .map_or("-".to_owned(), |s| format!("{s:.2}")),
            r.result.train_acc,
            r.result.test_acc,
        );
        done.push(r);
    }

    let column = |f: fn(&Run) -> Option<f64>| -> Vec<f64> { done.iter().filter_map(f).collect() };
    let wall = column(|r| Some(r.wall));
    let loop_s = median(column(|r| r.result.loop_s));
    println!(
        "{:<6} {:>7.2} {:>7.2} {:>6.2} {:>7.2} {:>8.1} {:>7}",
        "median",
        median(wall.clone()).unwrap_or(f64::NAN),
        median(column(|r| Some(r.user))).unwrap_or(f64::NAN),
        median(column(|r| Some(r.sys))).unwrap_or(f64::NAN),
        median(column(|r| Some(r.user + r.sys))).unwrap_or(f64::NAN),
        median(column(|r| Some(r.peak_mib))).unwrap_or(f64::NAN),
        loop_s.map_or("-".to_owned(), |s| format!("{s:.2}")),
    );
    let (min, max) = wall
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &w| {
            (lo.min(w), hi.max(w))
        });
    println!(
        "wall min {min:.2} s, max {max:.2} s (max/min {:.2})",
        max / min
    );
    println!(
        "wall s: the whole process (load, train, final accuracies, save); loop s: the training \
         loop as train times it; CPU s = user s + sys s"
    );

    // The same seed and thread settings must give the same numbers.
    let differ: Vec<_> = done
        .iter()
        .enumerate()
        .filter(|(_, r)| r.result != warm_up.result)
        .map(|(i, r)| {
            let what = if r.result.train_acc != warm_up.result.train_acc
                || r.result.test_acc != warm_up.result.test_acc
            {
                format!(
                    "train {}, test {} where the warm-up gave train {}, test {}",
                    r.result.train_acc,
                    r.result.test_acc,
                    warm_up.result.train_acc,
                    warm_up.result.test_acc
                )
            } else {
                "the same accuracies as the warm-up but another loss.csv or accuracy.csv".to_owned()
            };
            format!("run {}: {what}", i + 1)
        })
        .collect();
    if differ.is_empty() {
        println!(
            "all {} runs (warm-up included) gave the same accuracies, loss.csv and accuracy.csv",
            runs + 1
        );
        Ok(ExitCode::SUCCESS)
    } else {
        flush();
        eprintln!();
        eprintln!(
            "!!! WARNING: THE RUNS DISAGREE: same binary, flags, seed and thread settings, different numbers"
        );
        for d in differ {
            eprintln!("!!!   {d}");
        }
        eprintln!(
            "!!! The timings above may not be comparable; look for a source of nondeterminism."
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Builds `bin` as `cargo xtask <bin>` would (same backend choice and
/// environment) and returns its path and whether it uses OpenBLAS.
fn build_release(package: &str, bin: &str) -> anyhow::Result<(PathBuf, bool)> {
    let (mut cmd, blas) = cargo_release("build", package, bin);
    // JSON on stdout names the executable; progress and warnings stay on stderr.
    cmd.arg("--message-format=json-render-diagnostics");
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("building {bin} failed ({})", out.status);
    }
    let name = format!(r#""name":"{bin}""#);
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#) && l.contains(&name))
        .find_map(|l| json_string_after(l, r#""executable":"#))
        .with_context(|| format!("cargo build did not say where the {bin} executable is"))?;
    Ok((PathBuf::from(exe), blas))
}

/// The JSON string right after `key` in `line` (`None` for `null`); enough
/// JSON for a path in cargo's messages.
fn json_string_after(line: &str, key: &str) -> Option<String> {
    let rest = line.split_once(key)?.1.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c), // \" \\ \/
            },
            c => out.push(c),
        }
    }
}

/// One finished run of `train`.
struct Run {
    /// Seconds from spawn to exit.
    wall: f64,
    /// CPU seconds in user and kernel mode.
    user: f64,
    sys: f64,
    /// Peak resident set size, MiB.
    peak_mib: f64,
    stdout: String,
    result: Outcome,
}

/// What a run computed: its final accuracies as printed, and fingerprints of
/// the loss and accuracy curves it wrote.
struct Outcome {
    train_acc: String,
    test_acc: String,
    /// The training loop's seconds as `train` reports them (not compared).
    loop_s: Option<f64>,
    curves: u64,
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Outcome) -> bool {
        (&self.train_acc, &self.test_acc, self.curves)
            == (&other.train_acc, &other.test_acc, other.curves)
    }
}

/// Runs `cmd` once with a fresh temporary `--out`, its output in files there
/// (the warm-up, number 0, shows its stderr: download progress, if any).
fn run_once(mut cmd: Process, number: usize) -> anyhow::Result<Run> {
    let what = if number == 0 {
        "the warm-up run".to_owned()
    } else {
        format!("run {number}")
    };
    let dir = TempDir::new(number)?;
    let out = dir.0.join("out");
    let stdout_path = dir.0.join("stdout.txt");
    let stderr_path = dir.0.join("stderr.txt");
    cmd.arg("--out").arg(&out).stdin(Stdio::null());
    cmd.stdout(File::create(&stdout_path).context("creating a file for the child's stdout")?);
    if number > 0 {
        cmd.stderr(File::create(&stderr_path).context("creating a file for the child's stderr")?);
    }
    let m = wait_measured(cmd).with_context(|| format!("{what} of train"))?;
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    // Train's stdout goes to a file that is removed with the run's
    // directory: show its end when something went wrong (e.g. `-- --help`).
    let stdout_tail = || {
        let lines: Vec<&str> = stdout.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("{what}'s stdout ended with:\n{tail}\n")
        }
    };
    if !m.status.success() {
        eprint!("{}", stdout_tail());
        eprintln!(
            "(the run's --out was a temporary directory, {}, removed now)",
            out.display()
        );
        if number > 0 {
            flush();
            let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
            eprintln!("{what} failed; its stderr:\n{}", stderr.trim_end());
            bail!("{what} of train failed ({})", m.status);
        }
        bail!("{what} of train failed ({}); its error is above", m.status);
    }
    let result = match outcome(&stdout, &out) {
        Ok(result) => result,
        Err(e) => {
            flush();
            eprint!("{}", stdout_tail());
            return Err(e.context(format!("{what} of train")));
        }
    };
    Ok(Run {
        wall: m.wall,
        user: m.user,
        sys: m.sys,
        peak_mib: m.peak_kib as f64 / 1024.0,
        stdout,
        result,
    })
}

/// Reads the `final:` line (`final: train acc 0.9801, test acc 0.9707 |
/// 10000 iterations in 5.93 s (1686 it/s)`) and fingerprints the curves.
fn outcome(stdout: &str, out: &Path) -> anyhow::Result<Outcome> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("final: train acc "))
        .context("it printed no `final: train acc ...` line")?;
    let (train_acc, rest) = line
        .split_once(", test acc ")
        .context("unexpected `final:` line")?;
    let (test_acc, rest) = rest.split_once(" |").unwrap_or((rest, ""));
    let loop_s = rest
        .split_once(" in ")
        .and_then(|(_, t)| t.split_once(" s"))
        .and_then(|(t, _)| t.trim().parse().ok());
    let mut hasher = DefaultHasher::new();
    for name in ["loss.csv", "accuracy.csv"] {
        let bytes =
            fs::read(out.join(name)).with_context(|| format!("reading the {name} it wrote"))?;
        hasher.write(&bytes);
    }
    Ok(Outcome {
        train_acc: train_acc.trim().to_owned(),
        test_acc: test_acc.trim().to_owned(),
        loop_s,
        curves: hasher.finish(),
    })
}

/// A directory of its own for one run, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(number: usize) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "dlfs-bench-{}-{number}-{nanos}",
            std::process::id()
        ));
        // create_dir, not create_dir_all: the directory must be new.
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What `wait4` says about a finished child.
struct Measured {
    status: ExitStatus,
    wall: f64,
    user: f64,
    sys: f64,
    peak_kib: u64,
}

/// Spawns `cmd` and reaps it with `wait4`, which also returns its resource
/// usage; wall time runs from before the spawn to after the exit.
#[cfg(unix)]
fn wait_measured(mut cmd: Process) -> anyhow::Result<Measured> {
    use std::os::unix::process::ExitStatusExt;

    let start = std::time::Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", Path::new(cmd.get_program()).display()))?;
    let pid = libc::pid_t::try_from(child.id()).context("a process id out of range")?;
    let mut status = 0;
    // SAFETY: rusage is plain data, for which all zeros is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types. The
        // child is ours and not yet reaped; `child` is never waited on after.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waiting for the child (wait4)");
        }
    }
    let wall = start.elapsed().as_secs_f64();
    drop(child);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    // ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    let maxrss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    let peak_kib = if cfg!(target_vendor = "apple") {
        maxrss / 1024
    } else {
        maxrss
    };
    Ok(Measured {
        status: ExitStatus::from_raw(status),
        wall,
        user: secs(usage.ru_utime),
        sys: secs(usage.ru_stime),
        peak_kib,
    })
}

#[cfg(not(unix))]
fn wait_measured(_cmd: Process) -> anyhow::Result<Measured> {
    bail!("timing a child's CPU time and memory needs wait4 (Unix)")
}

/// The median; the mean of the middle two for an even count.
fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// The first "model name" of /proc/cpuinfo (Linux on x86 has it).
fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_owned())
}

/// `=value`, or ` unset`, to follow the variable's name.
fn var_note(key: &str) -> String {
    match std::env::var_os(key) {
        Some(v) => format!("={}", v.to_string_lossy()),
        None => " unset".to_owned(),
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_from_cargo_json() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"train"},"filenames":["/t/release/train"],"executable":"/t/a \"b\"\\c\u00e9/release/train","fresh":true}"#;
        assert_eq!(
            json_string_after(line, r#""executable":"#).as_deref(),
            Some(r#"/t/a "b"\cé/release/train"#)
        );
        assert_eq!(
            json_string_after(r#"{"executable":null}"#, r#""executable":"#),
            None
        );
    }

    #[test]
    fn final_line() {
        let dir = TempDir::new(999).unwrap();
        fs::write(dir.0.join("loss.csv"), "iteration,loss\n0,2.3\n").unwrap();
        fs::write(
            dir.0.join("accuracy.csv"),
            "epoch,iteration,train_acc,test_acc\n",
        )
        .unwrap();
        let stdout = "TwoLayerNet(784, 50, 10) on MNIST\nepoch   0 (iter      0) | train acc, test acc | 0.1, 0.1\n\
                      final: train acc 0.9801, test acc 0.9707 | 10000 iterations in 5.93 s (1686 it/s)\nwrote a, b, c\n";
        let o = outcome(stdout, &dir.0).unwrap();
        assert_eq!(
            (o.train_acc.as_str(), o.test_acc.as_str()),
            ("0.9801", "0.9707")
        );
        assert_eq!(o.loop_s, Some(5.93));
        assert!(o == outcome(stdout, &dir.0).unwrap());
        fs::write(dir.0.join("loss.csv"), "iteration,loss\n0,2.4\n").unwrap();
        assert!(o != outcome(stdout, &dir.0).unwrap());
        assert!(outcome("no final line\n", &dir.0).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_run_fails_with_its_stderr() {
        let mut cmd = Process::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let e = format!("{:#}", run_once(cmd, 1).err().unwrap());
        assert_eq!(e, "run 1 of train failed (exit status: 3)");
    }

    #[cfg(unix)]
    #[test]
    fn wait4_measures_the_child() {
        let mut cmd = Process::new("sh");
        // About 0.3 s of CPU in a loop, then 0.2 s asleep.
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 0.2",
        ]);
        let m = wait_measured(cmd).unwrap();
        assert!(m.status.success());
        assert!(m.wall >= 0.2 && m.wall >= m.user, "{} {}", m.wall, m.user);
        assert!(m.user > 0.0 && m.peak_kib > 0, "{} {}", m.user, m.peak_kib);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
