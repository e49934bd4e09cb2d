//! `--data` and its options: which images to train and test on, as given on the command
//! line; [`DataArgs::spec`] is the value the library reads, checks and splits.

use std::path::PathBuf;

use clap::Args;

use super::values::positive_count;
use crate::data::spec::DataSpec;
pub use crate::data::spec::default_valid;

/// Which images to train and test on.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// The data, recognised from its files: a folder of IDX files named like MNIST's
    /// (`train-images-idx3-ubyte[.gz]`, …: Fashion-MNIST, MNIST or any IDX set), of
    /// CIFAR-10's binary batches, or of images in one folder per class (`DIR/<class>/…`,
    /// a tenth held out for testing by a hash of each path; or `DIR/train/<class>/…` and
    /// `DIR/test/<class>/…`), PNG, JPEG, BMP, GIF, PGM/PPM or TIFF, converted to the
    /// config's input and cached in `DIR/.fitnets-cache/`. Default: Debian's
    /// dataset-fashion-mnist.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A folder with CIFAR-10's binary batches (the same as --data on it).
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    pub cifar: Option<PathBuf>,
    /// The data set's name in run records and reports. Default: its folder's name
    /// (`cifar10` with --cifar). Runs are matched by the files' content hash, not by name.
    #[arg(long, value_name = "NAME", value_parser = data_set_name)]
    pub name: Option<String>,
    /// Training images held out for validation (seeded). Default: 5000, or a tenth of
    /// the training images when that is fewer.
    #[arg(long, value_name = "N", value_parser = positive_count)]
    pub valid: Option<usize>,
    /// Train on a seeded sample of this many of the training split's images (short
    /// schedules). The validation split is the one the whole set gives, so a student on
    /// a sample is validated on the images its full-data teacher never trained on.
    #[arg(long, value_name = "N", value_parser = positive_count)]
    pub subset: Option<usize>,
    /// Evaluate on a seeded sample of this many test images.
    #[arg(long, value_name = "N", value_parser = positive_count)]
    pub test_subset: Option<usize>,
    /// Seed of the split into training and validation images, and of the samples.
    #[arg(long, default_value_t = 1, value_name = "SEED")]
    pub split_seed: u64,
    /// How an image folder's pictures whose aspect ratio differs from the config's input
    /// are made to fit: `stretch` (the default) scales each axis on its own, `fill`
    /// scales to cover and crops the centre, `fit` scales to fit and pads with black. A
    /// run keeps its own.
    #[arg(long, value_name = "MODE", value_parser = resize_mode)]
    pub resize: Option<fitnets_images::Resize>,
    /// Skip image files that cannot be read or decoded (they are counted, the first few
    /// named) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}

/// A resize mode (`--resize`).
pub fn resize_mode(text: &str) -> Result<fitnets_images::Resize, String> {
    text.parse()
}

/// A data set's name (`--name`): 1 to 64 letters, digits, `-`, `_` or `.`, as it goes
/// into run records, file names of reports and the blob's description.
pub fn data_set_name(text: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if (1..=64).contains(&text.len()) && text.chars().all(ok) {
        Ok(text.to_string())
    } else {
        Err(format!("`{text}`: a name is 1 to 64 letters, digits, `-`, `_` or `.`"))
    }
}

impl DataArgs {
    /// These options as the library takes them.
    pub fn spec(&self) -> DataSpec {
        DataSpec {
            data: self.data.clone(),
            cifar: self.cifar.clone(),
            name: self.name.clone(),
            valid: self.valid,
            subset: self.subset,
            test_subset: self.test_subset,
            split_seed: self.split_seed,
            resize: self.resize,
            skip_bad: self.skip_bad,
            input: None,
        }
    }
}
