//! Labelled image sets in memory: loading (IDX, CIFAR-10), splitting, normalization and augmentation.
//!
//! Everything here is plain Rust over `u8` pixels in NHWC order; the training code turns
//! batches into burn tensors. Loaders never panic on bad files: every fault is an error
//! that names the file and what is wrong with it.

pub mod augment;
pub mod cifar;
pub mod idx;
mod normalize;

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

/// Fashion-MNIST from the four IDX files in `dir`: `(train, test)`, 60000 and 10000 images
/// of 28x28x1 in the official release. Each file may be gzip-compressed (`<name>.gz`,
/// preferred when both exist) or raw (`<name>`). Both sets get the larger class count.
pub fn fashion_mnist(dir: &Path) -> anyhow::Result<(Dataset, Dataset)> {
    let mut train = idx::load_idx(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
        "fashion-mnist-train",
    )?;
    let mut test = idx::load_idx(
        &find(dir, "t10k-images-idx3-ubyte")?,
        &find(dir, "t10k-labels-idx1-ubyte")?,
        "fashion-mnist-test",
    )?;
    let (a, b) = ((train.height, train.width, train.channels), (test.height, test.width, test.channels));
    ensure!(a == b, "{}: training images are {a:?} (h, w, c) but test images are {b:?}", dir.display());
    let classes = train.classes.max(test.classes);
    train.classes = classes;
    test.classes = classes;
    Ok((train, test))
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
    bail!("{}: neither {base}.gz nor {base} found", dir.display())
}
