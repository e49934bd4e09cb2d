//! Image folders as labelled data sets, for `fitnets` and `cargo xtask`.
//!
//! [`load`] turns a folder with one subfolder per class (or `train/` and `test/` each
//! with those, see [`folder`]) into training and test images converted to a model's
//! input ([`Conversion`]: size, grayscale or RGB, [`Resize`] mode). Files are read and
//! decoded in parallel; the decoded set is cached beside the data ([`cache`]) under a
//! key made of the files' content hash and the conversion, so later loads only hash the
//! files. [`convert`] alone converts one file, as `fitnets predict` does.
//!
//! Nothing here panics on a file's content: every fault is an error naming the file
//! (its path below the data set's folder) and the reason, or, with `skip_bad`, a
//! [`Skipped`] entry.

pub mod cache;
mod convert;
pub mod folder;
pub mod idx;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

pub use convert::{
    Conversion, EXTENSIONS, FORMAT_NAMES, MAX_FILE_BYTES, MAX_PIXELS, Resize, convert, has_image_extension,
};
pub use folder::{Folder, looks_like_folder, scan};

/// Images and their labels, NHWC `u8` in the conversion's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

/// A bad file passed over with `skip_bad`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its path below the data set's folder.
    pub rel: String,
    pub reason: String,
}

/// How to load.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub conversion: Conversion,
    /// Skip files that cannot be read or decoded (and files without an image extension
    /// in class folders) instead of stopping at the first.
    pub skip_bad: bool,
    /// Read and write the cache beside the data.
    pub cache: bool,
}

/// A loaded image folder.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Class names; label `i` is `classes[i]`.
    pub classes: Vec<String>,
    pub train: ImageSet,
    pub test: ImageSet,
    /// Whether the set came as `train/` and `test/`.
    pub split: bool,
    /// SHA-256 of the layout, the class names and every file's path and bytes: what
    /// identifies the files, whatever the folder is called.
    pub files_hash: String,
    pub skipped: Vec<Skipped>,
    /// Files outside class folders, ignored.
    pub ignored: Vec<PathBuf>,
    /// How the images were obtained, for the log.
    pub source: Source,
}

/// Where a load's pixels came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// From the cache file.
    Cache(PathBuf),
    /// Decoded; `cached` says whether they were written to the cache, or why not.
    Decoded { cached: Result<PathBuf, String> },
}

/// Loads the image folder `dir` (see the crate documentation).
pub fn load(dir: &Path, options: &Options) -> anyhow::Result<Loaded> {
    let folder = folder::scan(dir)?;
    let digests = file_digests(&folder, options.skip_bad)?;
    let files_hash = files_hash_of(&folder, &digests);
    let key = cache::key(&files_hash, &options.conversion, options.skip_bad);
    let cache_path = cache::path(dir, &key);
    let mut cache_note = None;
    let mut from_cache = None;
    if options.cache {
        match cache::read(&cache_path, &key, &options.conversion) {
            Ok(found) => from_cache = found.filter(|cached| cached.classes == folder.classes),
            Err(why) => cache_note = Some(why),
        }
    }
    let (cached, source) = match from_cache {
        Some(cached) => (cached, Source::Cache(cache_path)),
        None => {
            let (train, test, skipped) = decode_all(&folder, &digests, options)?;
            let cached = Cached { classes: folder.classes.clone(), train, test, skipped };
            let written = match options.cache {
                false => Err("caching is off".to_string()),
                true => {
                    cache::write(&cache_path, &key, &options.conversion, &cached).map(|()| cache_path).map_err(|e| {
                        let note = cache_note.map(|n| format!("; {n}")).unwrap_or_default();
                        format!("cannot write {}: {e}{note}", cache::path(dir, &key).display())
                    })
                }
            };
            (cached, Source::Decoded { cached: written })
        }
    };
    Ok(Loaded {
        classes: cached.classes,
        train: cached.train,
        test: cached.test,
        split: folder.split,
        files_hash,
        skipped: cached.skipped,
        ignored: folder.ignored,
        source,
    })
}

use cache::Cached;

/// The content hash of the image folder `dir` (see [`Loaded::files_hash`]) without
/// decoding: what identifies a data set before loading it.
pub fn files_hash(dir: &Path, skip_bad: bool) -> anyhow::Result<String> {
    let folder = folder::scan(dir)?;
    let digests = file_digests(&folder, skip_bad)?;
    Ok(files_hash_of(&folder, &digests))
}

/// The image files `paths` name, for classifying: files as given, folders walked
/// (following links, at most 32 levels; hidden entries and files without an image
/// extension skipped) in name order. Refuses paths that do not exist, folders without
/// images and more than `limit` files.
pub fn image_files(paths: &[PathBuf], limit: usize) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>, depth: usize) -> anyhow::Result<()> {
        ensure!(depth < 32, "{}: folders nested deeper than 32 levels (a link loop?)", dir.display());
        for (name, path) in folder::visible_entries(dir)? {
            if folder::is_dir(&path) {
                walk(&path, files, depth + 1)?;
            } else if has_image_extension(&name) {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{}: cannot open it", path.display()))?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, &mut files, 0)?;
            ensure!(
                files.len() > before,
                "{}: no image files in this folder ({})",
                path.display(),
                EXTENSIONS.join(", ")
            );
        } else {
            files.push(path.clone());
        }
        ensure!(files.len() <= limit, "more than {limit} images: classify them in parts");
    }
    Ok(files)
}

/// Reads `path` whole, refusing files above [`MAX_FILE_BYTES`] before reading.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{} bytes, above the limit of {} MiB for an image file", meta.len(), MAX_FILE_BYTES >> 20));
    }
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}

/// Reads and converts one image file; the error names the file.
pub fn convert_file(path: &Path, conversion: &Conversion) -> anyhow::Result<Vec<u8>> {
    let bytes = read_file(path).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
    convert(&bytes, conversion).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))
}

/// Each item's SHA-256, or why its file cannot be read (only with `skip_bad`; else the
/// first unreadable file is the error).
fn file_digests(folder: &Folder, skip_bad: bool) -> anyhow::Result<Vec<Result<[u8; 32], String>>> {
    let items: Vec<&folder::Item> = folder.items().collect();
    let digests: Vec<Result<[u8; 32], String>> =
        items.par_iter().map(|item| read_file(&item.path).map(|bytes| Sha256::digest(&bytes).into())).collect();
    if !skip_bad && let Some((item, Err(why))) = items.iter().zip(&digests).find(|(_, d)| d.is_err()) {
        bail!("{}: {why} (pass --skip-bad to skip unreadable and undecodable files)", item.path.display());
    }
    Ok(digests)
}

/// The content hash: layout, classes, then each item's set, path, label and digest.
fn files_hash_of(folder: &Folder, digests: &[Result<[u8; 32], String>]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"fitnets image folder 1\0");
    hasher.update([folder.split as u8]);
    for class in &folder.classes {
        hasher.update((class.len() as u64).to_le_bytes());
        hasher.update(class.as_bytes());
    }
    for (i, (item, digest)) in folder.items().zip(digests).enumerate() {
        hasher.update([u8::from(i < folder.train.len()), item.label]);
        hasher.update((item.rel.len() as u64).to_le_bytes());
        hasher.update(item.rel.as_bytes());
        match digest {
            Ok(d) => hasher.update(d),
            Err(_) => hasher.update([0u8; 32]),
        }
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes every item in parallel: training set, test set, skipped files.
fn decode_all(
    folder: &Folder,
    digests: &[Result<[u8; 32], String>],
    options: &Options,
) -> anyhow::Result<(ImageSet, ImageSet, Vec<Skipped>)> {
    let image_len = options.conversion.image_len();
    let total = folder.train.len() + folder.test.len();
    let bytes = (total as u128) * (image_len as u128);
    ensure!(
        bytes <= MAX_SET_BYTES as u128,
        "{}: {total} images of {} are {:.1} GiB decoded, above the limit of {} GiB: use fewer images or a smaller \
         input",
        folder.dir.display(),
        options.conversion,
        bytes as f64 / (1u64 << 30) as f64,
        MAX_SET_BYTES >> 30
    );
    let items: Vec<&folder::Item> = folder.items().collect();
    let results: Vec<Result<Vec<u8>, String>> = items
        .par_iter()
        .zip(digests)
        .map(|(item, digest)| {
            if let Err(why) = digest {
                return Err(why.clone());
            }
            if !item.image_name {
                return Err(format!("not an image file name (fitnets reads {})", EXTENSIONS.join(", ")));
            }
            read_file(&item.path).and_then(|bytes| convert(&bytes, &options.conversion))
        })
        .collect();
    let mut skipped = Vec::new();
    let mut sets = [ImageSet::default(), ImageSet::default()];
    let bad = results.iter().filter(|r| r.is_err()).count();
    for (i, (item, result)) in items.iter().zip(results).enumerate() {
        match result {
            Ok(pixels) => {
                let set = &mut sets[usize::from(i >= folder.train.len())];
                set.pixels.extend_from_slice(&pixels);
                set.labels.push(item.label);
            }
            Err(why) if options.skip_bad => skipped.push(Skipped { rel: item.rel.clone(), reason: why }),
            Err(why) => bail!(
                "{}: {why}{} (pass --skip-bad to skip bad files)",
                item.path.display(),
                match bad {
                    1 => String::new(),
                    2 => "; 1 more bad file".to_string(),
                    n => format!("; {} more bad files", n - 1),
                }
            ),
        }
    }
    let [train, test] = sets;
    for (label, class) in folder.classes.iter().enumerate() {
        ensure!(
            train.labels.iter().any(|&l| usize::from(l) == label),
            "{}: class {class} has no usable training image left after skipping {} bad files",
            folder.dir.display(),
            skipped.len()
        );
    }
    ensure!(
        !test.labels.is_empty(),
        "{}: no usable test image left after skipping {} bad files",
        folder.dir.display(),
        skipped.len()
    );
    Ok((train, test, skipped))
}

/// The most bytes a decoded set may take: 16 GiB.
pub const MAX_SET_BYTES: u64 = 16 << 30;
