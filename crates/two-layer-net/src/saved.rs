//! What the `eval` and `predict` binaries share: the flags that name a saved
//! model and the data to run it on, and loading both.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use mnist_data::{DataSet, Dataset, FetchOptions, Split};

use crate::checkpoint::{self, AnyParams};

/// Which images of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Set {
    /// The 10,000 test images.
    Test,
    /// The 60,000 training images.
    Train,
}

impl Set {
    /// `test` or `train`.
    pub fn name(self) -> &'static str {
        match self {
            Set::Test => "test",
            Set::Train => "train",
        }
    }

    /// This set of `data`.
    pub fn of(self, data: &DataSet) -> &Split {
        match self {
            Set::Test => &data.test,
            Set::Train => &data.train,
        }
    }
}

/// The flags naming a saved model and the data to run it on.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// A run directory (what `train --out` wrote: it holds model.safetensors),
    /// or the model file itself.
    #[arg(long)]
    pub model: PathBuf,
    /// Refuse the model unless it has this many hidden units [default: any,
    /// the file says].
    #[arg(long, value_name = "N")]
    pub hidden: Option<usize>,
    /// Which images: the test set or the training set.
    #[arg(long, value_enum, default_value_t = Set::Test)]
    pub set: Set,
    /// Data set: mnist or fashion-mnist [default: the one the model was
    /// trained on, from its metadata].
    #[arg(long)]
    pub dataset: Option<Dataset>,
    /// Use the four IDX files (raw or .gz) in this directory and nothing else
    /// [default: $DLFS_DATA_DIR, else the cache, the mirrors and the package sources].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// A loaded model's file and metadata (its parameters come apart, see
/// [`ModelArgs::load_model`]).
pub struct Saved {
    /// The model file.
    pub path: PathBuf,
    /// The metadata `train` wrote (hyperparameters, accuracies, ...).
    pub meta: HashMap<String, String>,
}

impl Saved {
    /// The data set the model was trained on, from its metadata.
    pub fn trained_on(&self) -> Option<Dataset> {
        self.meta.get("dataset").and_then(|d| d.parse().ok())
    }
}

impl ModelArgs {
    /// Loads the model `--model` names: its parameters, in the file's
    /// precision, and its file and metadata.
    ///
    /// # Errors
    ///
    /// When the file is missing, unreadable, or not a two-layer net; the
    /// message starts with the flag.
    pub fn load_model(&self) -> anyhow::Result<(AnyParams, Saved)> {
        let flag = || format!("--model {}", self.model.display());
        let path = checkpoint::model_file(&self.model).with_context(flag)?;
        let (params, meta) = checkpoint::load_any(&path).with_context(flag)?;
        let [input, hidden] = params.w1_shape();
        if let Some(expected) = self.hidden
            && expected != hidden
        {
            anyhow::bail!(
                "--hidden {expected}: {} has {hidden} hidden units (W1 is [{input}, {hidden}]); \
                 it was trained with --hidden {hidden}",
                path.display()
            );
        }
        Ok((params, Saved { path, meta }))
    }

    /// The data set: `--dataset`, else the model's, else MNIST.
    pub fn dataset(&self, saved: &Saved) -> Dataset {
        self.dataset
            .or_else(|| saved.trained_on())
            .unwrap_or(Dataset::Mnist)
    }

    /// Loads `dataset` as `--data-dir` says (with download progress).
    ///
    /// # Errors
    ///
    /// When no source has the verified files (the message lists them).
    pub fn load_data(&self, dataset: Dataset) -> anyhow::Result<DataSet> {
        let mut opts = FetchOptions::from_env();
        if let Some(dir) = &self.data_dir {
            opts.set_data_dir(dir);
        }
        opts.progress = Some(Arc::new(mnist_data::cli::Bar::default()));
        mnist_data::load(dataset, &opts).with_context(|| format!("loading {}", dataset.title()))
    }
}
