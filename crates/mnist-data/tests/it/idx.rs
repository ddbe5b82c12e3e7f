//! The IDX parser on good and malformed files. Every error must name the file
//! and say what is wrong.

use std::path::Path;

use mnist_data::{Error, FileKind, Split, parse_idx_images, parse_idx_labels, read_idx_file};
use tempfile::TempDir;

use crate::fixtures::{gz, images, labels, sha256};

/// Checks that `result` failed with an error matching `is_variant` whose
/// message contains every one of `needles`.
#[track_caller]
fn check<T: std::fmt::Debug>(
    result: Result<T, Error>,
    is_variant: fn(&Error) -> bool,
    needles: &[&str],
) {
    let err = result.expect_err("expected an error");
    assert!(is_variant(&err), "wrong error variant: {err:?}");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} does not contain {n:?}");
    }
}

#[test]
fn raw_and_gzip_images_parse_alike() {
    let raw = images(3, 28, 28);
    let a = parse_idx_images(Path::new("a"), &raw).unwrap();
    let b = parse_idx_images(Path::new("b.not-gz-by-name"), &gz(&raw)).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        (a.count, a.rows, a.cols, a.data.len()),
        (3, 28, 28, 3 * 784)
    );
    assert_eq!(a.data[784 + 5], 6, "image 1, pixel 5");
}

#[test]
fn files_are_read_with_their_raw_sha256() {
    let dir = TempDir::new().unwrap();
    let raw = labels(25);
    // Gzip content under a name without .gz: recognised by content.
    let path = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&path, gz(&raw)).unwrap();
    let (idx, sha) = read_idx_file(&path, FileKind::Labels).unwrap();
    assert_eq!(idx.data, raw[8..]);
    assert_eq!(sha, sha256(&raw));
}

#[test]
fn wrong_magic_is_rejected() {
    let mut raw = images(1, 28, 28);
    raw[3] = 0x02;
    check(
        parse_idx_images(Path::new("x/imgs"), &raw),
        |e| matches!(e, Error::BadMagic { got: 0x802, .. }),
        &["x/imgs", "magic number is 0x00000802, expected 0x00000803"],
    );
}

#[test]
fn a_label_file_given_as_images_says_so() {
    check(
        parse_idx_images(Path::new("lbl"), &labels(4)),
        |e| matches!(e, Error::BadMagic { .. }),
        &["lbl", "this is a label file"],
    );
}

#[test]
fn truncated_data_is_rejected() {
    let mut raw = images(2, 28, 28);
    raw.truncate(raw.len() - 1);
    check(
        parse_idx_images(Path::new("short"), &raw),
        |e| {
            matches!(
                e,
                Error::Truncated {
                    expected_bytes: 1584,
                    got_bytes: 1583,
                    ..
                }
            )
        },
        &[
            "short",
            "truncated",
            "data (2 images) needs 1584 bytes but the file holds 1583",
        ],
    );
}

#[test]
fn truncated_gzip_content_is_rejected() {
    let mut raw = labels(100);
    raw.truncate(50);
    check(
        parse_idx_labels(Path::new("short.gz"), &gz(&raw)),
        |e| matches!(e, Error::Truncated { got_bytes: 50, .. }),
        &["short.gz", "truncated"],
    );
}

#[test]
fn truncated_header_is_rejected() {
    check(
        parse_idx_images(Path::new("hdr"), &images(1, 28, 28)[..10]),
        |e| {
            matches!(
                e,
                Error::Truncated {
                    expected_bytes: 16,
                    got_bytes: 10,
                    ..
                }
            )
        },
        &["hdr", "header needs 16 bytes"],
    );
    check(
        parse_idx_labels(Path::new("empty"), &[]),
        |e| matches!(e, Error::Truncated { .. }),
        &["empty"],
    );
}

#[test]
fn a_huge_count_is_caught_before_allocating() {
    // The header claims u32::MAX images (3.4 TB of pixels); the file holds 10
    // bytes of them. A parser that allocated first would abort here.
    let mut raw = images(0, 28, 28);
    raw[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    raw.extend([0u8; 10]);
    let expected = 16 + u64::from(u32::MAX) * 784;
    check(
        parse_idx_images(Path::new("liar"), &raw),
        move |e| matches!(e, Error::Truncated { got_bytes: 26, expected_bytes, .. } if *expected_bytes == 16 + u64::from(u32::MAX) * 784),
        &["liar", &expected.to_string()],
    );
    // Compressed, the length is unknown up front: reading grows with the data.
    check(
        parse_idx_images(Path::new("liar.gz"), &gz(&raw)),
        |e| matches!(e, Error::Truncated { .. }),
        &["liar.gz"],
    );
}

#[test]
fn images_and_labels_of_different_counts_are_rejected() {
    check(
        Split::from_idx_bytes(
            Path::new("imgs"),
            &images(3, 28, 28),
            Path::new("lbls"),
            &labels(4),
        ),
        |e| {
            matches!(
                e,
                Error::CountMismatch {
                    images: 3,
                    labels: 4,
                    ..
                }
            )
        },
        &["imgs holds 3 images but lbls holds 4 labels"],
    );
}

#[test]
fn corrupt_gzip_is_rejected() {
    let mut bytes = gz(&images(2, 28, 28));
    let mid = bytes.len() / 2;
    bytes[mid..].iter_mut().for_each(|b| *b ^= 0x5a);
    check(
        parse_idx_images(Path::new("bad.gz"), &bytes),
        |e| matches!(e, Error::Gzip { .. }),
        &["bad.gz", "corrupt gzip data"],
    );
    // The magic alone, then garbage.
    check(
        parse_idx_labels(Path::new("junk"), &[0x1f, 0x8b, 1, 2, 3]),
        |e| matches!(e, Error::Gzip { .. }),
        &["junk"],
    );
}

#[test]
fn a_gzip_stream_cut_short_is_rejected() {
    let bytes = gz(&images(2, 28, 28));
    check(
        parse_idx_images(Path::new("cut.gz"), &bytes[..bytes.len() - 20]),
        |e| matches!(e, Error::Gzip { .. } | Error::Truncated { .. }),
        &["cut.gz"],
    );
}

#[test]
fn wrong_image_size_is_rejected() {
    check(
        parse_idx_images(Path::new("cifar"), &images(2, 32, 32)),
        |e| {
            matches!(
                e,
                Error::WrongImageSize {
                    rows: 32,
                    cols: 32,
                    ..
                }
            )
        },
        &["cifar", "wrong image size 32x32, expected 28x28"],
    );
}

#[test]
fn labels_above_nine_are_rejected() {
    let mut raw = labels(20);
    raw[8 + 13] = 10;
    check(
        parse_idx_labels(Path::new("lbl"), &raw),
        |e| {
            matches!(
                e,
                Error::BadLabel {
                    index: 13,
                    label: 10,
                    ..
                }
            )
        },
        &["lbl", "label 10 at index 13"],
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut raw = labels(5);
    raw.extend([1, 2, 3]);
    check(
        parse_idx_labels(Path::new("long"), &raw),
        |e| matches!(e, Error::TrailingData { extra: Some(3), .. }),
        &["long", "3 unexpected bytes"],
    );
    // A short excess in a gzip stream is counted too.
    check(
        parse_idx_labels(Path::new("long.gz"), &gz(&raw)),
        |e| matches!(e, Error::TrailingData { extra: Some(3), .. }),
        &["long.gz: 3 unexpected bytes after the 13 bytes"],
    );
}

#[test]
fn a_long_excess_in_a_gzip_stream_is_not_miscounted() {
    // 1 MB of zeros after the data compresses to 1 kB; the parser must not
    // decompress it all to count it, and must not report its probe size as
    // the count either.
    let mut raw = labels(5);
    raw.resize(raw.len() + (1 << 20), 0);
    check(
        parse_idx_labels(Path::new("long.gz"), &gz(&raw)),
        |e| {
            matches!(
                e,
                Error::TrailingData {
                    extra: None,
                    expected_bytes: 13,
                    ..
                }
            )
        },
        &["long.gz: unexpected data after the 13 bytes that the header announces"],
    );
    let msg = parse_idx_labels(Path::new("long.gz"), &gz(&raw))
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("unexpected bytes"), "{msg}");
}

/// The message and its causes, as `{:#}` (anyhow) prints them.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s += &format!(": {c}");
        cause = c.source();
    }
    s
}

#[test]
fn a_truncated_gzip_file_names_the_cause_once() {
    let bytes = gz(&images(200, 28, 28));
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("cut.gz");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_idx_file(&path, FileKind::Images).unwrap_err();
    assert!(matches!(err, Error::Gzip { .. }), "{err:?}");
    assert_eq!(
        chain(&err),
        format!(
            "{}: corrupt gzip data: incomplete deflate stream",
            path.display()
        )
    );
}

#[cfg(unix)]
#[test]
fn a_named_pipe_is_refused_without_opening_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("fifo");
    crate::fixtures::mkfifo(&path);
    // Opening a pipe with no writer blocks: run in a thread, fail on a timeout.
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || tx.send(read_idx_file(&p, FileKind::Labels)).unwrap());
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("read_idx_file blocked on a named pipe");
    check(
        result,
        |e| matches!(e, Error::NotAFile { .. }),
        &[&format!(
            "{}: not a regular file (a named pipe)",
            path.display()
        )],
    );
    check(
        read_idx_file(dir.path(), FileKind::Labels),
        |e| matches!(e, Error::NotAFile { .. }),
        &[&format!(
            "{}: is a directory, not a file",
            dir.path().display()
        )],
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nope");
    check(
        read_idx_file(&path, FileKind::Images),
        |e| matches!(e, Error::Io { .. }),
        &[&path.display().to_string(), "cannot open"],
    );
}

#[test]
fn split_from_files_converts_batches() {
    let dir = TempDir::new().unwrap();
    let (ip, lp) = (dir.path().join("i"), dir.path().join("l.gz"));
    std::fs::write(&ip, images(12, 28, 28)).unwrap();
    std::fs::write(&lp, gz(&labels(12))).unwrap();
    let split = Split::from_idx_files(&ip, &lp).unwrap();
    assert_eq!((split.len(), split.rows(), split.cols()), (12, 28, 28));
    assert_eq!(split.label_counts(), [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    let x = split.images_f::<f32>(&[11, 3], true);
    assert_eq!(x.shape(), [2, 784]);
    assert_eq!(x[[0, 1]], 12.0 / 255.0);
    assert_eq!(split.images_nchw::<f64>(&[3], false)[[0, 0, 1, 0]], 31.0);
    assert_eq!(split.class_indices(&[11, 3]), [1, 3]);
}
