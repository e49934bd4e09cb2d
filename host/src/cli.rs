//! The `fitnets` subcommands behind the thin binary: argument types and what each does.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;

use crate::backend::{CpuBackend, DeviceSpec};
use crate::data::{self, Augment};
use crate::method::{
    self, KdSettings, Method, RunInfo, RunResult, Splits, Teacher, check_pair, evaluate, load_run, save_net,
};
use crate::model::{NetConfig, Views, count};
use crate::train::batch::Batcher;
use crate::train::collective::Link;
use crate::train::run_dir::RunDir;
use crate::train::schedule::{OptimizerKind, Schedule};
use crate::train::workers::{DEFAULT_PEER_TIMEOUT, Workers};

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
    /// The network input an image folder is converted to: the command's config sets it
    /// ([`DataArgs::for_input`]).
    #[arg(skip)]
    pub input: Option<[usize; 3]>,
}

/// A resize mode (`--resize`).
pub fn resize_mode(text: &str) -> Result<fitnets_images::Resize, String> {
    text.parse()
}

/// The validation images held out when `--valid` is not given: 5000, or a tenth of a
/// smaller training set.
pub fn default_valid(train_images: usize) -> usize {
    5000.min(train_images / 10).max(1)
}

/// A count of at least one (`--valid`, `--subset`, `--test-subset`, `--batch`).
pub fn positive_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
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

/// The most epochs a phase may ask for: more is a typo, not a schedule.
pub const MAX_EPOCHS: usize = 10_000;

/// A number of epochs, 0 to [`MAX_EPOCHS`].
pub fn epoch_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_EPOCHS => Ok(n),
        Ok(n) => Err(format!("{n} epochs: at most {MAX_EPOCHS}")),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// A finite number above zero (learning rates, τ).
pub fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number above zero")),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

/// A finite number, zero or more (the final learning rate, λ).
pub fn non_negative_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number of zero or more")),
        Err(e) => Err(format!("not a number: {e}")),
    }
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
    images: Option<method::ImageInfo>,
}

impl DataArgs {
    /// Loads the splits of this experiment, with the data set's name and content hash.
    pub fn load(&self) -> anyhow::Result<Splits> {
        let read = self.read()?;
        let valid = self.valid.unwrap_or_else(|| default_valid(read.train.len()));
        self.split(read, valid, self.split_seed, self.subset)
    }

    /// These options for a network that takes `input` (`[height, width, channels]`):
    /// what an image folder's images are converted to.
    pub fn for_input(&self, input: [usize; 3]) -> DataArgs {
        DataArgs { input: Some(input), ..self.clone() }
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
    pub fn load_like(&self, run: &Path, info: &crate::method::DataInfo) -> anyhow::Result<Splits> {
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
        let mut ours = crate::method::DataInfo { name, content_hash: Some(hash), ..info.clone() };
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
    /// sample too) and its image conversion ([`DataArgs::with_images_of`]).
    pub fn like_run(&self, run: &Path, info: &crate::method::DataInfo) -> anyhow::Result<DataArgs> {
        Ok(DataArgs { split_seed: info.split_seed, ..self.with_images_of(run, info)? })
    }

    /// These options with the image conversion a run recorded (its resize mode); a
    /// `--resize` other than the run's is refused.
    pub fn with_images_of(&self, run: &Path, info: &crate::method::DataInfo) -> anyhow::Result<DataArgs> {
        let resize = match (&info.images, self.resize) {
            (Some(images), Some(ours)) if images.resize != ours => bail!(
                "--resize {ours}: {} was trained with --resize {}; leave the option out to use the run's",
                run.display(),
                images.resize
            ),
            (Some(images), _) => Some(images.resize),
            (None, ours) => ours,
        };
        Ok(DataArgs { resize, ..self.clone() })
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
    /// blob needs only the test set; [`DataArgs::load`] splits and samples the training
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
                    images: Some(method::ImageInfo { resize, skipped: set.skipped }),
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

/// How a phase trains.
#[derive(Args, Clone, Debug)]
pub struct ScheduleArgs {
    /// Passes over the training images (0 trains nothing: the network keeps its initial
    /// weights and is evaluated as it is).
    #[arg(long, default_value_t = DEFAULT_EPOCHS, value_name = "N", value_parser = epoch_count)]
    pub epochs: usize,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 128, value_name = "N", value_parser = positive_count)]
    pub batch: usize,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Rmsprop)]
    pub optimizer: OptimizerKind,
    /// Initial learning rate (paper, MNIST: 0.0005).
    #[arg(long, default_value_t = 5e-4, value_name = "LR", value_parser = positive_number)]
    pub lr: f64,
    /// Learning rate at the last step (linear decay).
    #[arg(long, default_value_t = 0.0, value_name = "LR", value_parser = non_negative_number)]
    pub final_lr: f64,
    /// Seed of the initial weights, the order of the images and the augmentation.
    #[arg(long, default_value_t = 0, value_name = "SEED")]
    pub seed: u64,
    /// Random shifts of up to this many pixels.
    #[arg(long, default_value_t = 0, value_name = "PIXELS")]
    pub shift: u8,
    /// Random horizontal flips.
    #[arg(long)]
    pub hflip: bool,
    /// Zero-pad by this many pixels and crop back at random (CIFAR style).
    #[arg(long, default_value_t = 0, value_name = "PIXELS")]
    pub crop_pad: u8,
    /// Random erasing: with probability one half, a random rectangle of 2-40 % of the
    /// image becomes noise.
    #[arg(long)]
    pub erase: bool,
}

/// `--epochs` when not given.
pub const DEFAULT_EPOCHS: usize = 10;

impl ScheduleArgs {
    pub fn schedule(&self) -> Schedule {
        Schedule {
            epochs: self.epochs,
            batch_size: self.batch,
            optimizer: self.optimizer,
            learning_rate: self.lr,
            final_learning_rate: self.final_lr,
            seed: self.seed,
            augment: Augment { shift: self.shift, hflip: self.hflip, crop_pad: self.crop_pad, erase: self.erase },
        }
    }
}

/// Where to run.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    /// `cpu`, `cuda`, `cuda:N`, or `cuda:N,M,…` to split each batch over several GPUs
    /// (CUDA needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// The CPU backend: flex trains these nets 16-34x faster than ndarray (docs/benchmarks.md).
    #[arg(long, value_enum, default_value_t = CpuBackend::Flex)]
    pub backend: CpuBackend,
}

impl DeviceArgs {
    pub fn describe(&self) -> String {
        match &self.device {
            // The flex kernels' matrix products run on the vector unit chosen at start
            // (`kernels::vector`); ndarray's do not.
            DeviceSpec::Cpu(peers) if self.backend == CpuBackend::Flex => format!(
                "cpu (flex, {}, {} threads){}",
                crate::kernels::vector::chosen().name(),
                rayon::current_num_threads(),
                if *peers > 1 { format!(", {peers} peers") } else { String::new() }
            ),
            DeviceSpec::Cpu(peers) => format!(
                "cpu ({}){}",
                format!("{:?}", self.backend).to_lowercase(),
                if *peers > 1 { format!(", {peers} peers") } else { String::new() }
            ),
            cuda => cuda.to_string(),
        }
    }
}

/// Training on several machines: every node runs the same `fitnets train` command with
/// its own `--node` and run directory, and one `fitnets orchestrator` sums their
/// gradients (docs/scale-out.md).
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
    /// Machines that train together (each with the devices of --device; every node must
    /// have the same number). Each global batch is cut into one contiguous shard per
    /// device, in node order.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = node_count)]
    pub nodes: usize,
    /// This machine's number, 0 to --nodes minus 1.
    #[arg(long, value_name = "R")]
    pub node: Option<usize>,
    /// Where `fitnets orchestrator` listens (HOST:PORT), with --nodes 2 or more.
    #[arg(long, value_name = "HOST:PORT")]
    pub orchestrator: Option<String>,
    /// Seconds a peer waits for the others (to join, or at a step) before it stops the
    /// run with an error naming the one that did not come.
    #[arg(long, default_value_t = DEFAULT_PEER_TIMEOUT.as_secs(), value_name = "SECONDS", value_parser = peer_timeout)]
    pub peer_timeout: u64,
}

impl Default for NodeArgs {
    fn default() -> NodeArgs {
        NodeArgs { nodes: 1, node: None, orchestrator: None, peer_timeout: DEFAULT_PEER_TIMEOUT.as_secs() }
    }
}

impl NodeArgs {
    /// Refuses a half-given or inconsistent setting, before any work.
    pub fn check(&self) -> anyhow::Result<()> {
        match (self.nodes, self.node, &self.orchestrator) {
            (1, None, None) => Ok(()),
            (1, _, _) => bail!("--node and --orchestrator are for training on several machines: add --nodes N"),
            (nodes, Some(node), Some(_)) if node < nodes => Ok(()),
            (nodes, Some(node), Some(_)) => {
                bail!("--node {node}: with --nodes {nodes} the nodes are 0 to {}", nodes - 1)
            }
            (nodes, _, _) => bail!(
                "--nodes {nodes} needs this machine's --node (0 to {}) and the --orchestrator HOST:PORT that \
                 `fitnets orchestrator --nodes {nodes}` listens on",
                nodes - 1
            ),
        }
    }

    /// How long a peer waits for the others.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.peer_timeout)
    }

    /// Connects to the orchestrator when training on several machines.
    pub fn connect(&self) -> anyhow::Result<Option<Link>> {
        self.check()?;
        let (Some(node), Some(address)) = (self.node, &self.orchestrator) else { return Ok(None) };
        eprintln!("node {node} of {}: joining the orchestrator at {address}", self.nodes);
        Ok(Some(Link::connect(address, node, self.nodes, self.timeout()).map_err(|e| anyhow::anyhow!("{e}"))?))
    }

    /// This node in a run's record: ", node R of N", or nothing alone.
    pub fn describe(&self) -> String {
        match self.node {
            Some(node) if self.nodes > 1 => format!(", node {node} of {}", self.nodes),
            _ => String::new(),
        }
    }
}

/// The largest --nodes (a bound on what one orchestrator serves).
pub const MAX_NODES: usize = 1024;

pub fn node_count(text: &str) -> anyhow::Result<usize> {
    match text.parse::<usize>() {
        Ok(n @ 1..=MAX_NODES) => Ok(n),
        _ => bail!("expected a number of machines from 1 to {MAX_NODES}"),
    }
}

/// A peer timeout in seconds: at least 1, at most a day.
pub fn peer_timeout(text: &str) -> anyhow::Result<u64> {
    match text.parse::<u64>() {
        Ok(n @ 1..=86_400) => Ok(n),
        _ => bail!("expected whole seconds from 1 to 86400"),
    }
}

/// Arguments of `fitnets train teacher`.
#[derive(Args, Clone, Debug)]
pub struct TeacherArgs {
    /// The teacher's network config (a preset in configs/ or your own).
    #[arg(long, value_name = "TOML")]
    pub config: PathBuf,
    /// The run directory (config, metrics.csv, checkpoints, model).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Continue an interrupted run in `--run` with its saved settings: give the config and
    /// data options it was started with, and no schedule options. --flip-average and
    /// --shift-average may be added, or removed with --no-flip-average and
    /// --no-shift-average (they change how the network classifies, not how it trains); a
    /// finished run is then evaluated again.
    #[arg(long, conflicts_with_all = SCHEDULE_OPTIONS)]
    pub resume: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Classify by the mean logits of each image and its mirror image, in evaluation and
    /// for the students that distil from this teacher (needs --hflip).
    #[arg(long)]
    pub flip_average: bool,
    /// Classify by the mean logits of each image and its four one-pixel shifts (with
    /// --flip-average, their mirror images too: 10 forward passes), in evaluation and for
    /// the students that distil from this teacher (needs --shift).
    #[arg(long)]
    pub shift_average: bool,
    /// With --resume: classify without averaging over mirror images from now on.
    #[arg(long, conflicts_with = "flip_average")]
    pub no_flip_average: bool,
    /// With --resume: classify without averaging over shifted images from now on.
    #[arg(long, conflicts_with = "shift_average")]
    pub no_shift_average: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub nodes: NodeArgs,
}

/// Arguments of `fitnets train student`.
#[derive(Args, Clone, Debug)]
pub struct StudentArgs {
    /// The student's network config; `hints` needs its `guided` layer.
    #[arg(long, value_name = "TOML")]
    pub config: PathBuf,
    /// How the student learns.
    #[arg(long, value_enum)]
    pub method: Method,
    /// The teacher's run directory (not needed for `scratch`).
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    /// The run directory (config, metrics.csv, checkpoints, model).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Continue an interrupted run in `--run` with its saved settings: give the config,
    /// method, teacher and data options it was started with, and no schedule, hint or KD
    /// options.
    #[arg(long, conflicts_with_all = SCHEDULE_OPTIONS.into_iter().chain(["hint_epochs", "tau", "lambda_start", "lambda_end"]))]
    pub resume: bool,
    /// Epochs of hint training (stage 1 of `hints`; 0 skips it, which makes `hints` the
    /// same as `kd`).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = epoch_count)]
    pub hint_epochs: usize,
    /// KD temperature τ.
    #[arg(long, default_value_t = 3.0, value_parser = positive_number)]
    pub tau: f64,
    /// KD weight λ at the first step, annealed linearly to `--lambda-end`.
    #[arg(long, default_value_t = 4.0, value_parser = non_negative_number)]
    pub lambda_start: f64,
    /// KD weight λ at the last step.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative_number)]
    pub lambda_end: f64,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub nodes: NodeArgs,
}

impl StudentArgs {
    /// The training settings these arguments give a new run: the schedule, the hint
    /// schedule (`hints` only) and KD's (with a teacher).
    pub fn settings(&self) -> (Schedule, Option<Schedule>, Option<KdSettings>) {
        let schedule = self.schedule.schedule();
        let hint_schedule = Schedule { epochs: self.hint_epochs, ..schedule.clone() };
        let kd = KdSettings { tau: self.tau, lambda_start: self.lambda_start, lambda_end: self.lambda_end };
        (
            schedule,
            (self.method == Method::Hints).then_some(hint_schedule),
            (self.method != Method::Scratch).then_some(kd),
        )
    }
}

/// The options of [`ScheduleArgs`], which `--resume` refuses: a resumed run keeps the
/// settings it was started with.
const SCHEDULE_OPTIONS: [&str; 10] =
    ["epochs", "batch", "optimizer", "lr", "final_lr", "seed", "shift", "hflip", "crop_pad", "erase"];

/// Whether the run directory `dir` holds a run that got anywhere: a `run.json` with a
/// checkpoint or a final model. A `run.json` alone is a start that failed or was stopped
/// before its first epoch ended, which starting again loses nothing of.
fn started(dir: &Path) -> bool {
    let has_checkpoint = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("checkpoint-") && name.ends_with(".json")
        })
    });
    dir.join("run.json").exists() && (has_checkpoint || dir.join("model.bin").exists())
}

/// Starts a run, or reopens it with `--resume`, holding the directory's lock. A resumed
/// run keeps its saved settings (clap refuses the options that would set them); what a
/// resume must still be told (the config, data, method and teacher) must be what the run
/// was started with, or the resume is refused before anything is written. Call it only
/// once every input has been checked: it writes `run.json`.
fn open_run(dir: &Path, resume: bool, fresh: RunInfo) -> anyhow::Result<(RunDir, RunInfo)> {
    let exists = dir.join("run.json").exists();
    if resume {
        ensure!(exists, "{} holds no run to resume: leave out --resume to start one", dir.display());
        let run = RunDir::lock(dir)?;
        let info: RunInfo = run.read_json("run.json")?;
        ensure!(
            info.role == fresh.role,
            "{} is a {} run: resume it with `fitnets train {}`",
            dir.display(),
            info.role,
            info.role
        );
        ensure!(
            info.data.same_data(&fresh.data),
            "{} was started on other data: resume it with the data options it was started with.\n  \
             it has:   {}\n  you gave: {}",
            dir.display(),
            describe_split(&info.data),
            describe_split(&fresh.data)
        );
        ensure!(
            info.config == fresh.config,
            "{} was started with another network config ({}; you gave {}): resume it with the config it was \
             started with (its copy is {})",
            dir.display(),
            info.config.name,
            fresh.config.name,
            dir.join("config.toml").display()
        );
        ensure!(
            info.method == fresh.method,
            "{} was started with --method {} (you gave --method {}): resume it with that method",
            dir.display(),
            info.method.map_or("none", Method::name),
            fresh.method.map_or("none", Method::name)
        );
        ensure!(
            fresh.teacher.is_none() || same_path(info.teacher.as_deref(), fresh.teacher.as_deref()),
            "{} was started with the teacher {} (you gave {}): resume it with that teacher",
            dir.display(),
            info.teacher.as_deref().map_or("none".into(), |t| t.display().to_string()),
            fresh.teacher.as_deref().map_or("none".into(), |t| t.display().to_string())
        );
        if let (Some(teacher), Some(now)) = (&info.teacher, fresh.teacher_views) {
            check_teacher_views(dir, &info, teacher, now)?;
        }
        return Ok((run, info));
    }
    let run = RunDir::lock(dir)?;
    if exists {
        ensure!(
            !started(dir),
            "{} already holds a run: pass --resume to continue it, or choose another --run",
            dir.display()
        );
        eprintln!("note: {} held a run that never finished an epoch; starting it again", dir.display());
        remove_start_files(&run);
    }
    run.write("config.toml", toml::to_string(&fresh.config)?.as_bytes())?;
    run.write_json("run.json", &fresh)?;
    Ok((run, fresh))
}

/// Whether `name` is a file a run writes before or with its checkpoints (what
/// [`remove_start_files`] removes from a run that never finished an epoch).
fn is_start_file(name: &str) -> bool {
    ["run.json", "config.toml", "metrics.csv"].contains(&name)
        || name.starts_with("history-")
        || name.starts_with("checkpoint-")
        || name.ends_with(".tmp")
}

/// Removes what a run wrote before its first epoch ended, so that the same command can
/// start it again (and a folder this command made is removed when nothing else is in it).
fn discard_unstarted(run: &RunDir) {
    remove_start_files(run);
    let only_lock = std::fs::read_dir(run.path())
        .is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == crate::train::run_dir::LOCK_FILE));
    if only_lock {
        let _ = std::fs::remove_file(run.join(crate::train::run_dir::LOCK_FILE));
        let _ = std::fs::remove_dir(run.path());
    }
}

/// Removes from `run` what a start wrote before its first checkpoint (run.json, config,
/// metrics, and the files of a checkpoint whose state file was never written).
fn remove_start_files(run: &RunDir) {
    let Ok(entries) = std::fs::read_dir(run.path()) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_start_file) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Runs `body` on a run just opened; when it fails before the run's first checkpoint,
/// the run's start is undone (see [`discard_unstarted`]) so that the same command, once
/// its cause is fixed, just works. A resumed run is left as it is.
fn undo_failed_start(run: &RunDir, resumed: bool, body: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let result = body();
    if result.is_err() && !resumed && !started(run.path()) {
        discard_unstarted(run);
    }
    result
}

/// Refuses to reuse the run at `dir` (recorded as `info`) for data other than what
/// `data` names: runs are matched by the content hash of their files.
pub fn check_reuse_data(dir: &Path, info: &RunInfo, data: &DataArgs) -> anyhow::Result<()> {
    let (name, hash) = data.identity()?;
    // Compared by the files' hash: the pixels are not read here.
    let ours = crate::method::DataInfo { name, content_hash: Some(hash), pixels_hash: None, ..info.data.clone() };
    ensure!(
        info.data.same_set(&ours),
        "{} holds a run on {}, but this command's data is {}: choose another --runs for other data",
        dir.display(),
        info.data.describe(),
        ours.describe()
    );
    Ok(())
}

/// One line on a run's data: `fashion-mnist (sha256 3f2a…), 55000 training and 5000
/// validation images, split seed 1`.
fn describe_split(data: &crate::method::DataInfo) -> String {
    format!(
        "{}, {} training and {} validation images, split seed {}",
        data.describe(),
        data.train_images,
        data.valid_images,
        data.split_seed
    )
}

/// A student that recorded the views its teacher averaged is continued (or reused) only
/// while the teacher still averages those: views added to the teacher since change the
/// logits the student distils.
pub(crate) fn check_teacher_views(dir: &Path, student: &RunInfo, teacher: &Path, now: Views) -> anyhow::Result<()> {
    match student.teacher_views {
        Some(then) if then != now => bail!(
            "{} distilled the teacher {} when it classified {}; it now classifies {}, so the run cannot be \
             continued or reused: train the student again in a new run",
            dir.display(),
            teacher.display(),
            then.name(),
            now.name()
        ),
        _ => Ok(()),
    }
}

/// Whether two optional paths name the same file (both absent, equal, or the same once
/// resolved).
fn same_path(a: Option<&Path>, b: Option<&Path>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b),
        (a, b) => a == b,
    }
}

/// Checks what every training run must hold before anything is written: the config
/// against the data, the augmentation against the image size, memory for the network
/// at this batch size. Says what an odd but legal schedule does.
fn check_training(config: &NetConfig, config_path: &Path, splits: &Splits, schedule: &Schedule) -> anyhow::Result<()> {
    config
        .check_data(&[&splits.train, &splits.valid, &splits.test])
        .with_context(|| format!("{} does not fit the data", config_path.display()))?;
    schedule.augment.check(splits.train.height, splits.train.width)?;
    count::check_memory(config, schedule.batch_size.min(splits.train.len()))?;
    if schedule.epochs == 0 {
        eprintln!("note: --epochs 0 trains nothing: the network keeps its initial weights and is evaluated as it is");
    }
    Ok(())
}

/// The data options of a run being resumed: an image folder's pictures converted as the
/// run converted them unless `--resize` is given (a different one is refused with the
/// rest of the data's differences).
fn resumed_data(data: &DataArgs, run: &Path, resume: bool) -> DataArgs {
    let recorded = || RunDir::open(run).ok()?.read_json::<RunInfo>("run.json").ok()?.data.images;
    match (resume, data.resize) {
        (true, None) => DataArgs { resize: recorded().map(|images| images.resize), ..data.clone() },
        _ => data.clone(),
    }
}

/// `fitnets train teacher`.
pub fn train_teacher(args: &TeacherArgs) -> anyhow::Result<()> {
    args.nodes.check()?;
    let config = NetConfig::load(&args.config)?;
    let splits = resumed_data(&args.data, &args.run, args.resume).for_input(config.input).load()?;
    let fresh = RunInfo {
        format: crate::method::RUN_FORMAT,
        role: "teacher".into(),
        method: None,
        config,
        schedule: args.schedule.schedule(),
        hint_schedule: None,
        kd: None,
        teacher: None,
        teacher_views: None,
        data: splits.info.clone(),
        backend: args.device.describe() + &args.nodes.describe(),
        flip_average: args.flip_average,
        shift_average: args.shift_average,
    };
    if !args.resume {
        ensure!(
            !args.no_flip_average && !args.no_shift_average,
            "--no-flip-average and --no-shift-average change the views of an existing run: pass --resume"
        );
        check_views(&fresh)?;
        check_training(&fresh.config, &args.config, &splits, &fresh.schedule)?;
    }
    let (run, mut info) = open_run(&args.run, args.resume, fresh)?;
    eprintln!("training on {}", args.device.describe());
    undo_failed_start(&run, args.resume, || {
        if args.resume {
            check_training(&info.config, &args.config, &splits, &info.schedule)?;
        }
        let views = Views {
            mirror: (info.flip_average || args.flip_average) && !args.no_flip_average,
            shift: (info.shift_average || args.shift_average) && !args.no_shift_average,
        };
        if views != info.views() {
            info.flip_average = views.mirror;
            info.shift_average = views.shift;
            check_views(&info)?;
            run.write_json("run.json", &info)?;
        }
        let link = args.nodes.connect()?;
        crate::with_backend!(args.device.device, args.device.backend, |B, _device, devices| {
            teacher_in::<B>(&run, &info, &splits, Workers::new(devices, link, args.nodes.timeout())?)
        })
    })
}

/// A network averages only over views like those it was trained on.
fn check_views(info: &RunInfo) -> anyhow::Result<()> {
    let augment = info.schedule.augment;
    ensure!(
        !info.flip_average || augment.hflip,
        "--flip-average averages each image with its mirror image: it needs a teacher trained with --hflip"
    );
    ensure!(
        !info.shift_average || augment.shift > 0,
        "--shift-average averages each image with its one-pixel shifts: it needs a teacher trained with --shift"
    );
    Ok(())
}

fn teacher_in<B: AutodiffBackend>(
    run: &RunDir,
    info: &RunInfo,
    splits: &Splits,
    workers: Workers<B::Device>,
) -> anyhow::Result<()> {
    let (net, history) = method::train_on_labels::<B>(&info.config, splits, &info.schedule, run, "teacher", &workers)?;
    let device = workers.device().clone();
    workers.finish()?;
    finish::<B>(run, info, splits, net, Vec::new(), history, &device)
}

/// `fitnets train student`.
pub fn train_student(args: &StudentArgs) -> anyhow::Result<()> {
    args.nodes.check()?;
    let config = NetConfig::load(&args.config)?;
    if args.method != Method::Scratch && args.teacher.is_none() {
        bail!("--method {} needs --teacher RUN (a finished `fitnets train teacher` run)", args.method.name());
    }
    let teacher = args.teacher.as_deref().map(read_teacher).transpose()?;
    // A student holds out its teacher's validation images unless told otherwise.
    let mut data = resumed_data(&args.data, &args.run, args.resume).for_input(config.input);
    if let Some(teacher) = &teacher {
        if data.valid.is_none() {
            data.valid = Some(teacher.data.valid_images);
        }
        // ... and converts an image folder's pictures as its teacher did.
        if let (None, Some(images)) = (data.resize, &teacher.data.images) {
            data.resize = Some(images.resize);
        }
    }
    let mut splits = data.load()?;
    let teacher_views = match (&args.teacher, &teacher) {
        (Some(dir), Some(info)) => Some(take_teacher_normalization(&mut splits, dir, info)?),
        _ => None,
    };
    let (schedule, hint_schedule, kd) = args.settings();
    let fresh = RunInfo {
        format: crate::method::RUN_FORMAT,
        role: "student".into(),
        method: Some(args.method),
        config,
        schedule,
        hint_schedule,
        kd,
        teacher: args.teacher.clone(),
        teacher_views: teacher_views.filter(|_| args.method != Method::Scratch),
        data: splits.info.clone(),
        backend: args.device.describe() + &args.nodes.describe(),
        flip_average: false,
        shift_average: false,
    };
    let check = |info: &RunInfo| -> anyhow::Result<()> {
        check_training(&info.config, &args.config, &splits, &info.schedule)?;
        if let (Some(dir), Some(teacher)) = (&args.teacher, &teacher)
            && info.method != Some(Method::Scratch)
        {
            check_pair(&info.config, &teacher.config).with_context(|| {
                format!("the student {} cannot learn from the teacher in {}", args.config.display(), dir.display())
            })?;
            if info.method == Some(Method::Hints) {
                crate::method::regressor_shape(&info.config, &teacher.config).with_context(|| {
                    format!("hint training of {} from the teacher in {}", args.config.display(), dir.display())
                })?;
                if info.hint_schedule.as_ref().is_some_and(|s| s.epochs == 0) {
                    eprintln!("note: --hint-epochs 0 skips hint training: `hints` is then the same as `kd`");
                }
            }
        }
        Ok(())
    };
    if !args.resume {
        check(&fresh)?;
    }
    let (run, info) = open_run(&args.run, args.resume, fresh)?;
    eprintln!("training on {}", args.device.describe());
    undo_failed_start(&run, args.resume, || {
        if args.resume {
            check(&info)?;
        }
        let link = args.nodes.connect()?;
        crate::with_backend!(args.device.device, args.device.backend, |B, _device, devices| {
            student_in::<B>(&run, &info, &splits, Workers::new(devices, link, args.nodes.timeout())?)
        })
    })
}

/// The record of the teacher run in `dir`, refused unless it is a finished teacher.
fn read_teacher(dir: &Path) -> anyhow::Result<RunInfo> {
    let info: RunInfo = RunDir::open(dir)
        .and_then(|run| run.read_json("run.json"))
        .with_context(|| format!("--teacher {} is not a run made by `fitnets train teacher`", dir.display()))?;
    ensure!(
        info.role == "teacher",
        "--teacher {} is a student run ({}): pass the run of a teacher (`fitnets train teacher`)",
        dir.display(),
        info.label()
    );
    ensure!(
        dir.join("model.bin").exists(),
        "--teacher {} has not finished training (no model.bin): finish it with `fitnets train teacher --resume`",
        dir.display()
    );
    Ok(info)
}

/// A student with a teacher sees its images normalized as the teacher did: both take
/// the same input tensors, and the methods of a comparison see the same inputs. The
/// student must hold out the teacher's validation images (same data set, split seed and
/// count), which its teacher never trained on; it may train on a sample of the rest.
/// Returns the views the teacher averages.
fn take_teacher_normalization(splits: &mut Splits, teacher: &Path, info: &RunInfo) -> anyhow::Result<Views> {
    let (ours, theirs) = (&splits.info, &info.data);
    ensure!(
        ours.same_set(theirs),
        "the teacher in {} was trained on {}, this student's data is {}: a student must learn on its teacher's \
         data set",
        teacher.display(),
        theirs.describe(),
        ours.describe()
    );
    ensure!(
        ours.split_seed == theirs.split_seed && ours.valid_images == theirs.valid_images,
        "the teacher in {} held out {} validation images with split seed {}, this student {} with seed {}: \
         pass the teacher's data options (--valid {} --split-seed {})",
        teacher.display(),
        theirs.valid_images,
        theirs.split_seed,
        ours.valid_images,
        ours.split_seed,
        theirs.valid_images,
        theirs.split_seed
    );
    splits.info.normalization = theirs.normalization.clone();
    Ok(info.views())
}

fn student_in<B: AutodiffBackend>(
    run: &RunDir,
    info: &RunInfo,
    splits: &Splits,
    workers: Workers<B::Device>,
) -> anyhow::Result<()> {
    let device = &workers.device().clone();
    let method = info.method.context("a student run names its method")?;
    let (net, hint_history, history) = match &info.teacher {
        Some(teacher_dir) if method != Method::Scratch => {
            let (teacher, teacher_info) = load_run::<B::InnerBackend>(teacher_dir, device)?;
            ensure!(
                teacher_info.data.normalization == info.data.normalization,
                "the teacher in {} was trained with another split or normalization of the data",
                teacher_dir.display()
            );
            let teacher = Teacher { net: &teacher, config: &teacher_info.config, views: teacher_info.views() };
            method::train_student::<B>(
                &info.config,
                method,
                teacher,
                splits,
                &info.schedule,
                info.hint_schedule.as_ref(),
                info.kd.unwrap_or_default(),
                run,
                &workers,
            )?
        }
        _ => {
            let (net, history) =
                method::train_on_labels::<B>(&info.config, splits, &info.schedule, run, "student", &workers)?;
            (net, Vec::new(), history)
        }
    };
    workers.finish()?;
    finish::<B>(run, info, splits, net, hint_history, history, device)
}

/// Evaluates the final model, saves it and `result.json`, prints the outcome.
#[allow(clippy::too_many_arguments)]
fn finish<B: AutodiffBackend>(
    run: &RunDir,
    info: &RunInfo,
    splits: &Splits,
    net: crate::model::Net<B>,
    hint_history: Vec<crate::train::phase::EpochMetrics>,
    history: Vec<crate::train::phase::EpochMetrics>,
    device: &B::Device,
) -> anyhow::Result<()> {
    use burn::module::AutodiffModule as _;
    let net = net.valid();
    let batcher = splits.batcher(Augment::default());
    let (valid_accuracy, _) = evaluate(&net, &splits.valid, &batcher, info.views(), device);
    let (test_accuracy, confusion) = evaluate(&net, &splits.test, &batcher, info.views(), device);
    save_net(net, run)?;
    let (params, macs) = info.cost()?;
    let train_seconds = hint_history.iter().chain(&history).map(|e| e.seconds).sum();
    let result =
        RunResult { params, macs, valid_accuracy, test_accuracy, confusion, hint_history, history, train_seconds };
    run.write_json("result.json", &result)?;
    println!(
        "{}: test accuracy {:.2}%, validation {:.2}% ({} parameters, {} MACs) in {}",
        info.config.name,
        100.0 * test_accuracy,
        100.0 * valid_accuracy,
        params,
        macs,
        run.path().display()
    );
    Ok(())
}

/// `fitnets eval RUN`: test accuracy and confusion matrix of a finished run, its inputs
/// normalized as it was trained (the data options only choose the test set). Each image
/// is classified by its mean logits over `views`, or, when that is `None`, over the views
/// the run classifies by ([`RunInfo::views`]).
pub fn eval(dir: &Path, views: Option<Views>, data: &DataArgs, device: &DeviceArgs) -> anyhow::Result<()> {
    let info: RunInfo = RunDir::open(dir)?.read_json("run.json")?;
    let test = data.with_images_of(dir, &info.data)?.for_input(info.config.input).test_set()?;
    crate::with_backend!(device.device, device.backend, |B, dev| eval_in::<<B as AutodiffBackend>::InnerBackend>(
        dir, views, &test, &dev
    ))
}

fn eval_in<B: Backend>(
    dir: &Path,
    views: Option<Views>,
    test: &data::Dataset,
    device: &B::Device,
) -> anyhow::Result<()> {
    let info: RunInfo = RunDir::open(dir)?.read_json("run.json")?;
    info.config
        .check_images(test)
        .with_context(|| format!("the network of {} cannot classify these test images", dir.display()))?;
    let (net, info) = load_run::<B>(dir, device)?;
    let batcher = Batcher { normalization: info.data.normalization.clone(), augment: Augment::default() };
    let views = views.unwrap_or(info.views());
    if views.mirror && !info.schedule.augment.hflip {
        eprintln!(
            "note: {} was trained without --hflip: mirror images are unlike the images it learnt from",
            dir.display()
        );
    }
    if views.shift && info.schedule.augment.shift == 0 {
        eprintln!(
            "note: {} was trained without --shift: shifted images are unlike the images it learnt from",
            dir.display()
        );
    }
    let (accuracy, confusion) = evaluate(&net, test, &batcher, views, device);
    let how = match (views.description(), info.views().label()) {
        (Some(description), _) => format!(", {description}"),
        (None, Some(own)) => format!(", each once (the run itself is {own})"),
        (None, None) => String::new(),
    };
    println!("{}: test accuracy {:.2}% on {} images{how}", info.config.name, 100.0 * accuracy, test.len());
    print!("{}", confusion_table(&confusion));
    Ok(())
}

/// A confusion matrix as text, rows = true class, columns = predicted.
pub fn confusion_table(confusion: &[Vec<u64>]) -> String {
    let mut text = String::from("true\\pred");
    for c in 0..confusion.len() {
        text += &format!("{c:>6}");
    }
    text.push('\n');
    for (t, row) in confusion.iter().enumerate() {
        text += &format!("{t:>9}");
        for v in row {
            text += &format!("{v:>6}");
        }
        text.push('\n');
    }
    text
}

/// `fitnets info RUN|CONFIG`: parameters and MACs per layer.
pub fn info(target: &Path) -> anyhow::Result<String> {
    let (config, data) = if target.is_dir() {
        let info = RunDir::open(target)?.read_json::<RunInfo>("run.json")?;
        (info.config, Some(info.data))
    } else {
        (NetConfig::load(target)?, None)
    };
    let costs = count::layers(&config)?;
    let mut text = format!(
        "{} on {}x{}x{} inputs (HxWxC), {} classes\n",
        config.name, config.input[0], config.input[1], config.input[2], config.classes
    );
    text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", "layer", "kind", "out (HxWxC)", "params", "MACs");
    for c in &costs {
        let shape = format!("{}x{}x{}", c.output[1], c.output[2], c.output[0]);
        text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", c.name, c.kind, shape, c.params, c.macs);
    }
    let (params, macs) = count::totals(&config)?;
    text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", "total", "", "", params, macs);
    if let Some(data) = data {
        text += &format!("data: {}\n", describe_split(&data));
        if !data.classes.is_empty() {
            text += &format!("classes: {}\n", data.classes.join(", "));
        }
        if let Some(images) = &data.images {
            text += &format!(
                "pictures from an image folder, converted with --resize {} ({} bad files skipped)\n",
                images.resize, images.skipped
            );
        }
    }
    Ok(text)
}
