//! IDX files (MNIST's format, [`fitnets_images::idx`]) as a [`Dataset`].

use std::path::Path;

use anyhow::{bail, ensure};
pub use fitnets_images::idx::{Idx, read as read_idx};

use super::Dataset;

/// Loads images and labels from two IDX files into a [`Dataset`] named `name`.
///
/// Images are `[n, h, w]` (one channel) or `[n, h, w, c]`; labels are `[n]` with the same
/// `n`. The number of classes is the largest label plus one.
pub fn load_idx(images: &Path, labels: &Path, name: &str) -> anyhow::Result<Dataset> {
    let pixels = read_idx(images)?;
    let tags = read_idx(labels)?;
    let (n, height, width, channels) = match pixels.dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] => (n, h, w, c),
        _ => bail!("{}: images must have dims [n, h, w] or [n, h, w, c], found {:?}", images.display(), pixels.dims),
    };
    ensure!(tags.dims.len() == 1, "{}: labels must have dims [n], found {:?}", labels.display(), tags.dims);
    ensure!(
        tags.dims[0] == n,
        "{} has {n} images but {} has {} labels",
        images.display(),
        labels.display(),
        tags.dims[0]
    );
    // Unreachable through `read_idx`, which rejects zero dimensions, but a set without
    // images has no class count and must not reach training.
    let Some(&max) = tags.data.iter().max() else { bail!("{}: no images", images.display()) };
    Ok(Dataset {
        images: pixels.data,
        labels: tags.data,
        height,
        width,
        channels,
        classes: usize::from(max) + 1,
        name: name.to_owned(),
    })
}
