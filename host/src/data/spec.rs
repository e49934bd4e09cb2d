//! Which images to train and test on (the `--data` options, as a value): the data set
//! recognised from its files, read, checked, split and sampled. The command line's
//! `cli::DataArgs` gives one; library functions take this.
//!
//! Errors name the options a user gave (`--data`, `--valid`, …): every path to these
//! functions starts at one of them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};

use super::Splits;
use crate::data;

/// Which images to train and test on.
#[derive(Clone, Debug)]
pub struct DataSpec {
    /// The data, recognised from its files: a folder of IDX files named like MNIST's
    /// (`train-images-idx3-ubyte[.gz]`, …: Fashion-MNIST, MNIST or any IDX set), of
    /// CIFAR-10's binary batches, or of images in one folder per class (`DIR/<class>/…`,
    /// a tenth held out for testing by a hash of each path; or `DIR/train/<class>/…` and
    /// `DIR/test/<class>/…`), PNG, JPEG, BMP, GIF, PGM/PPM or TIFF, converted to the
    /// config's input and cached in `DIR/.fitnets-cache/`. Default: Debian's
    /// dataset-fashion-mnist.
    pub data: Option<PathBuf>,
    /// A folder with CIFAR-10's binary batches (the same as --data on it).
    pub cifar: Option<PathBuf>,
    /// The data set's name in run records and reports. Default: its folder's name
    /// (`cifar10` with --cifar). Runs are matched by the files' content hash, not by name.
    pub name: Option<String>,
    /// Training images held out for validation (seeded). Default: 5000, or a tenth of
    /// the training images when that is fewer.
    pub valid: Option<usize>,
    /// Train on a seeded sample of this many of the training split's images (short
    /// schedules). The validation split is the one the whole set gives, so a student on
    /// a sample is validated on the images its full-data teacher never trained on.
    pub subset: Option<usize>,
    /// Evaluate on a seeded sample of this many test images.
    pub test_subset: Option<usize>,
    /// Seed of the split into training and validation images, and of the samples
    /// (`--split-seed`, 1 unless given: a run records its own).
    pub split_seed: u64,
    /// How an image folder's pictures whose aspect ratio differs from the config's input
    /// are made to fit: `stretch` (the default) scales each axis on its own, `fill`
    /// scales to cover and crops the centre, `fit` scales to fit and pads with black. A
    /// run keeps its own.
    pub resize: Option<fitnets_images::Resize>,
    /// Skip image files that cannot be read or decoded (they are counted, the first few
    /// named) instead of stopping at the first.
    pub skip_bad: bool,
    /// The network input an image folder is converted to: the command's config sets it
    /// ([`DataSpec::for_input`]).
    pub input: Option<[usize; 3]>,
}

/// The validation images held out when `--valid` is not given: 5000, or a tenth of a
/// smaller training set.
pub fn default_valid(train_images: usize) -> usize {
    5000.min(train_images / 10).max(1)
}

/// Where `--data` points, as recognised from its files.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// IDX files named like MNIST's.
    Idx(PathBuf),
    /// CIFAR-10's binary batches.
    Cifar(PathBuf),
    /// Class folders of images.
    Folder(PathBuf),
}

/// A data set read, with what identifies it.
struct Read {
    train: data::Dataset,
    test: data::Dataset,
    /// The data set's name and content hash.
    identity: (String, String),
    classes: Vec<String>,
    images: Option<crate::run::ImageInfo>,
}

impl DataSpec {
    /// Loads the splits of this experiment, with the data set's name and content hash.
    pub fn load(&self) -> anyhow::Result<Splits> {
        let read = self.read()?;
        let valid = self.valid.unwrap_or_else(|| default_valid(read.train.len()));
        self.split(read, valid, self.split_seed, self.subset)
    }

    /// These options for a network that takes `input` (`[height, width, channels]`):
    /// what an image folder's images are converted to.
    pub fn for_input(&self, input: [usize; 3]) -> DataSpec {
        DataSpec { input: Some(input), ..self.clone() }
    }

    /// Holds out `valid` training images and samples `subset` of the rest (see
    /// [`Splits::new`]), the splits named as `read` says.
    fn split(&self, read: Read, valid: usize, seed: u64, subset: Option<usize>) -> anyhow::Result<Splits> {
        let train = &read.train;
        ensure!(
            valid < train.len(),
            "--valid {valid}: {} has only {} training images; hold out fewer (--valid {} holds out a tenth)",
            self.describe(),
            train.len(),
            default_valid(train.len())
        );
        let mut splits = Splits::new(train, read.test, valid, seed, subset)?;
        let (name, hash) = read.identity;
        splits.info.name = name;
        splits.info.content_hash = Some(hash);
        splits.info.classes = read.classes;
        splits.info.images = read.images;
        Ok(splits)
    }

    /// The splits a finished run was trained on, from its record: the data options name
    /// only the folder (`--valid`, `--subset` and `--resize` must agree with the run if
    /// given; the split seed is the run's). Refuses data that differs from the run's.
    pub fn load_like(&self, run: &Path, info: &crate::run::DataInfo) -> anyhow::Result<Splits> {
        if let Some(valid) = self.valid {
            ensure!(
                valid == info.valid_images,
                "--valid {valid}: {} was trained with --valid {}; leave the option out to use the run's",
                run.display(),
                info.valid_images
            );
        }
        if let Some(subset) = self.subset {
            ensure!(
                subset == info.train_images,
                "--subset {subset}: {} was trained on {} training images; leave the option out to use the run's",
                run.display(),
                info.train_images
            );
        }
        let data = self.like_run(run, info)?;
        let read = data.read()?;
        let (name, hash) = read.identity.clone();
        let mut ours = crate::run::DataInfo { name, content_hash: Some(hash), ..info.clone() };
        ours.pixels_hash = info.pixels_hash.as_ref().map(|_| data::pixels_hash(&read.train));
        ensure!(
            ours.same_set(info),
            "{} was trained on {}, but {} is {}: pass the data it was trained on",
            run.display(),
            info.describe(),
            self.describe(),
            ours.describe()
        );
        // A run on a sample: the same sample (drawn from the same split with the same seed).
        let kept = read.train.len().saturating_sub(info.valid_images);
        let subset = (info.train_images < kept).then_some(info.train_images);
        data.split(read, info.valid_images, info.split_seed, subset)
    }

    /// These options as a run recorded them: its split seed (which draws the test
    /// sample too) and its image conversion ([`DataSpec::with_images_of`]).
    pub fn like_run(&self, run: &Path, info: &crate::run::DataInfo) -> anyhow::Result<DataSpec> {
        Ok(DataSpec { split_seed: info.split_seed, ..self.with_images_of(run, info)? })
    }

    /// These options with the image conversion a run recorded (its resize mode); a
    /// `--resize` other than the run's is refused.
    pub fn with_images_of(&self, run: &Path, info: &crate::run::DataInfo) -> anyhow::Result<DataSpec> {
        let resize = match (&info.images, self.resize) {
            (Some(images), Some(ours)) if images.resize != ours => bail!(
                "--resize {ours}: {} was trained with --resize {}; leave the option out to use the run's",
                run.display(),
                images.resize
            ),
            (Some(images), _) => Some(images.resize),
            (None, ours) => ours,
        };
        Ok(DataSpec { resize, ..self.clone() })
    }

    /// What `--data` (or `--cifar`, or the default) points at.
    fn source(&self) -> anyhow::Result<Source> {
        if let Some(dir) = &self.cifar {
            return Ok(Source::Cifar(dir.clone()));
        }
        let Some(dir) = &self.data else { return Ok(Source::Idx(PathBuf::from(data::FASHION_MNIST_DIR))) };
        ensure!(
            dir.is_dir(),
            "--data {}: not a folder; --data takes a folder of IDX files, of CIFAR-10 batches or of class folders \
             of images",
            dir.display()
        );
        let idx_names = ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"];
        if idx_names.iter().any(|n| dir.join(n).is_file() || dir.join(format!("{n}.gz")).is_file()) {
            Ok(Source::Idx(dir.clone()))
        } else if ["data_batch_1.bin", "test_batch.bin"].iter().any(|n| dir.join(n).is_file()) {
            Ok(Source::Cifar(dir.clone()))
        } else if fitnets_images::looks_like_folder(dir) {
            Ok(Source::Folder(dir.clone()))
        } else {
            bail!(
                "--data {}: found neither IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], …), \
                 CIFAR-10 batches (data_batch_1.bin, …, test_batch.bin) nor class folders of images \
                 (DIR/<class>/*.png, or DIR/train/<class>/ and DIR/test/<class>/)",
                dir.display()
            )
        }
    }

    /// How errors name the data: `--data DIR`, `--cifar DIR` or the default.
    fn describe(&self) -> String {
        match (&self.cifar, &self.data) {
            (Some(dir), _) => format!("--cifar {}", dir.display()),
            (None, Some(dir)) => format!("--data {}", dir.display()),
            (None, None) => format!("the default data ({})", data::FASHION_MNIST_DIR),
        }
    }

    /// The data set's name (`--name`, else its folder's, `cifar10` for CIFAR-10) and the
    /// SHA-256 of the files it is read from.
    pub fn identity(&self) -> anyhow::Result<(String, String)> {
        let source = self.source()?;
        let hash = match &source {
            Source::Cifar(dir) => data::content_hash(&data::cifar::files(dir))?,
            Source::Idx(dir) => data::content_hash(&data::idx_files(dir)?)?,
            Source::Folder(dir) => data::folder::files_hash(dir, self.skip_bad)?,
        };
        Ok((self.set_name(&source), hash))
    }

    fn set_name(&self, source: &Source) -> String {
        match (&self.name, source) {
            (Some(name), _) => name.clone(),
            (None, Source::Cifar(_)) => "cifar10".into(),
            (None, Source::Idx(dir) | Source::Folder(dir)) => data::folder_name(dir),
        }
    }

    /// The network input an image folder is converted to.
    fn folder_input(&self, dir: &Path) -> anyhow::Result<[usize; 3]> {
        self.input.with_context(|| {
            format!(
                "--data {}: an image folder is converted to a network's input, and this command has none",
                dir.display()
            )
        })
    }

    /// The test set alone, sampled as `--test-subset` asks: an int8 blob needs nothing
    /// else, so the training files of an IDX or CIFAR-10 set need not be present.
    pub fn test_set(&self) -> anyhow::Result<data::Dataset> {
        let mut test = match self.source()? {
            Source::Cifar(dir) => data::cifar::load_cifar10_test(&dir)?,
            Source::Folder(_) => return Ok(self.read()?.test),
            Source::Idx(dir) => {
                let files = data::idx_test_files(&dir);
                let [images, labels] = match self.data {
                    Some(_) => files?,
                    None => files.context("install the Debian package dataset-fashion-mnist, or pass --data")?,
                };
                data::idx::load_idx(&images, &labels, &format!("{}-test", data::folder_name(&dir)))?
            }
        };
        if let Some(name) = &self.name {
            test.name = format!("{name}-test");
        }
        Ok(match self.test_subset {
            Some(n) => test.sample(n.min(test.len()), self.split_seed),
            None => test,
        })
    }

    /// The whole training set and the test set sampled as `--test-subset` asks (an int8
    /// blob needs only the test set; [`DataSpec::load`] splits and samples the training
    /// set).
    pub fn sets(&self) -> anyhow::Result<(data::Dataset, data::Dataset)> {
        let read = self.read()?;
        Ok((read.train, read.test))
    }

    /// Reads the data set: both sets, the test set sampled as `--test-subset` asks.
    fn read(&self) -> anyhow::Result<Read> {
        let source = self.source()?;
        let name = self.set_name(&source);
        let mut read = match &source {
            Source::Folder(dir) => {
                let resize = self.resize.unwrap_or_default();
                let set = data::folder::load(dir, &name, self.folder_input(dir)?, resize, self.skip_bad)?;
                Read {
                    train: set.train,
                    test: set.test,
                    identity: (name, set.files_hash),
                    classes: set.classes,
                    images: Some(crate::run::ImageInfo { resize, skipped: set.skipped }),
                }
            }
            Source::Cifar(dir) => {
                let (train, test) = data::cifar::load_cifar10(dir)?;
                let classes = data::cifar::class_names(dir)?;
                Read { train, test, identity: self.identity()?, classes, images: None }
            }
            Source::Idx(dir) => {
                let (train, test) = match self.data {
                    Some(_) => data::fashion_mnist(dir)?,
                    None => data::fashion_mnist(dir).with_context(|| {
                        format!(
                            "Fashion-MNIST is not in {} (install the Debian package dataset-fashion-mnist, or pass \
                             --data)",
                            dir.display()
                        )
                    })?,
                };
                let known = self.data.is_none() && train.classes == data::FASHION_MNIST_LABELS.len();
                let classes =
                    if known { data::FASHION_MNIST_LABELS.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
                Read { train, test, identity: self.identity()?, classes, images: None }
            }
        };
        if let Some(name) = &self.name {
            read.train.name = format!("{name}-train");
            read.test.name = format!("{name}-test");
        }
        if let Some(n) = self.test_subset {
            read.test = read.test.sample(n.min(read.test.len()), self.split_seed);
        }
        Ok(read)
    }
}
