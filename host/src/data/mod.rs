//! Labelled image sets in memory: loading (IDX, CIFAR-10), splitting, normalization and augmentation.
//!
//! Everything here is plain Rust over `u8` pixels in NHWC order; the training code turns
//! batches into burn tensors. Loaders never panic on bad files: every fault is an error
//! that names the file and what is wrong with it.

pub mod augment;
pub mod cifar;
pub mod folder;
pub mod idx;
mod normalize;
pub mod spec;
mod splits;

pub use spec::DataSpec;
pub use splits::Splits;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use augment::{Augment, Placement};
pub use normalize::Normalization;

/// Where Debian's `dataset-fashion-mnist` package installs the four gzip-compressed IDX files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The Fashion-MNIST class names, indexed by label.
pub const FASHION_MNIST_LABELS: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// A labelled image set in memory, NHWC `u8`.
///
/// Image `i` is `images[i * image_len() .. (i + 1) * image_len()]`, rows top to bottom,
/// pixels left to right, channels innermost; its label is `labels[i]`, below `classes`.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// All pixels, `len() * height * width * channels` bytes.
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// Where the set came from, for logs and run records.
    pub name: String,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image: `height * width * channels`.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The pixels of image `i`, NHWC. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The label of image `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The images at `indices`, in that order, with the same shape, classes and name.
    /// Panics if an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            classes: self.classes,
            name: self.name.clone(),
        }
    }

    /// Shuffles with `seed`, then the last `valid` images become the validation set:
    /// `(train, valid)`, each kept in the original order and named `<name>-train` and
    /// `<name>-valid`. The same seed always gives the same split, on every platform.
    pub fn split(&self, valid: usize, seed: u64) -> anyhow::Result<(Dataset, Dataset)> {
        ensure!(
            valid < self.len(),
            "{}: cannot hold out {valid} images for validation from a set of {}",
            self.name,
            self.len()
        );
        let order = self.shuffled(seed);
        let (train, held) = order.split_at(self.len() - valid);
        let part = |indices: &[usize], suffix: &str| {
            let mut sorted = indices.to_vec();
            sorted.sort_unstable();
            let mut part = self.subset(&sorted);
            part.name = format!("{}-{suffix}", self.name);
            part
        };
        Ok((part(train, "train"), part(held, "valid")))
    }

    /// The first `n` images (all of them if `n >= len()`) after shuffling with `seed`, in
    /// shuffled order. Not stratified: on a balanced set of a few thousand images the
    /// class counts stay close to even.
    pub fn sample(&self, n: usize, seed: u64) -> Dataset {
        let order = self.shuffled(seed);
        self.subset(&order[..n.min(self.len())])
    }

    /// `0..len()` shuffled by a ChaCha8 stream seeded with `seed`.
    fn shuffled(&self, seed: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order
    }
}

/// Shape and counts only: the pixels would drown a log.
impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("height", &self.height)
            .field("width", &self.width)
            .field("channels", &self.channels)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

/// An IDX set (Fashion-MNIST, MNIST or any other) from the four files in `dir` (see
/// [`idx_files`]): `(train, test)`, named after the folder (`<folder>-train`,
/// `<folder>-test`); Fashion-MNIST's official release has 60000 and 10000 images of
/// 28x28x1. Both sets get the larger class count.
pub fn fashion_mnist(dir: &Path) -> anyhow::Result<(Dataset, Dataset)> {
    let [train_images, train_labels, test_images, test_labels] = idx_files(dir)?;
    let name = folder_name(dir);
    let mut train = idx::load_idx(&train_images, &train_labels, &format!("{name}-train"))?;
    let mut test = idx::load_idx(&test_images, &test_labels, &format!("{name}-test"))?;
    let (a, b) = ((train.height, train.width, train.channels), (test.height, test.width, test.channels));
    ensure!(a == b, "{}: training images are {a:?} (h, w, c) but test images are {b:?}", dir.display());
    let classes = train.classes.max(test.classes);
    train.classes = classes;
    test.classes = classes;
    Ok((train, test))
}

/// The four files of an IDX set in `dir`, in the order training images, training
/// labels, test images, test labels, named like MNIST's. Each may be gzip-compressed
/// (`<name>.gz`, preferred when both exist) or raw (`<name>`).
pub fn idx_files(dir: &Path) -> anyhow::Result<[PathBuf; 4]> {
    Ok([
        find(dir, "train-images-idx3-ubyte")?,
        find(dir, "train-labels-idx1-ubyte")?,
        find(dir, "t10k-images-idx3-ubyte")?,
        find(dir, "t10k-labels-idx1-ubyte")?,
    ])
}

/// The test images and labels of an IDX set in `dir` (see [`idx_files`]): all that
/// evaluating a model needs.
pub fn idx_test_files(dir: &Path) -> anyhow::Result<[PathBuf; 2]> {
    Ok([find(dir, "t10k-images-idx3-ubyte")?, find(dir, "t10k-labels-idx1-ubyte")?])
}

/// A data set's name from its folder: the last component of its absolute path
/// (`fashion-mnist` for Debian's package), `data` when there is none.
pub fn folder_name(dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.components()
        .rev()
        .find_map(|c| match c {
            std::path::Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "data".into())
}

/// The SHA-256 of `files` (each file's name, length and bytes, in order) as 64 hex digits:
/// what identifies a data set whatever its folder is called.
pub fn content_hash(files: &[PathBuf]) -> anyhow::Result<String> {
    use sha2::{Digest as _, Sha256};
    use std::io::Read as _;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let mut file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        hasher.update((base.len() as u64).to_le_bytes());
        hasher.update(base.as_bytes());
        hasher.update(len.to_le_bytes());
        loop {
            let n = file.read(&mut buf).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// SHA-256 of a set as a network sees it, as 64 hex digits: its shape, then every
/// label, then every pixel. Equal for the same images in the same order from any file
/// format.
pub fn pixels_hash(set: &Dataset) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for v in [set.height, set.width, set.channels, set.len()] {
        hasher.update((v as u64).to_le_bytes());
    }
    hasher.update(&set.labels);
    hasher.update(&set.images);
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A data set's name without the `-train`/`-valid`/`-test` suffixes that loading and
/// splitting add.
pub fn base_name(name: &str) -> String {
    let mut name = name;
    while let Some(stripped) =
        name.strip_suffix("-train").or_else(|| name.strip_suffix("-valid")).or_else(|| name.strip_suffix("-test"))
    {
        name = stripped;
    }
    name.to_string()
}

/// `dir/<base>.gz` if it exists, else `dir/<base>`.
fn find(dir: &Path, base: &str) -> anyhow::Result<PathBuf> {
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(base);
    if raw.is_file() {
        return Ok(raw);
    }
    bail!(
        "{}: neither {base}.gz nor {base} found (an IDX data set is four files named like MNIST's: \
         train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
        dir.display()
    )
}
