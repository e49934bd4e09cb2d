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
use crate::train::run_dir::RunDir;
use crate::train::schedule::{OptimizerKind, Schedule};

/// Which images to train and test on.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// A folder of IDX files named like MNIST's (`train-images-idx3-ubyte[.gz]`, …):
    /// Fashion-MNIST, MNIST or any IDX set. Default: Debian's dataset-fashion-mnist.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A folder with CIFAR-10's binary batches instead.
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    pub cifar: Option<PathBuf>,
    /// Training images held out for validation (seeded).
    #[arg(long, default_value_t = 5000)]
    pub valid: usize,
    /// Train on a seeded sample of this many of the training split's images (short
    /// schedules). The validation split is the one the whole set gives, so a student on
    /// a sample is validated on the images its full-data teacher never trained on.
    #[arg(long)]
    pub subset: Option<usize>,
    /// Evaluate on a seeded sample of this many test images.
    #[arg(long)]
    pub test_subset: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub split_seed: u64,
}

impl DataArgs {
    /// Loads the splits of this experiment.
    pub fn load(&self) -> anyhow::Result<Splits> {
        let (train, test) = self.sets()?;
        Splits::new(&train, test, self.valid, self.split_seed, self.subset)
    }

    /// The whole training set and the test set sampled as `--test-subset` asks (an int8
    /// blob needs only the test set; [`DataArgs::load`] splits and samples the training
    /// set).
    pub fn sets(&self) -> anyhow::Result<(data::Dataset, data::Dataset)> {
        let (train, test) = match (&self.cifar, &self.data) {
            (Some(dir), _) => data::cifar::load_cifar10(dir)?,
            (None, Some(dir)) => data::fashion_mnist(dir)?,
            (None, None) => data::fashion_mnist(Path::new(data::FASHION_MNIST_DIR)).with_context(|| {
                format!(
                    "Fashion-MNIST is not in {} (install the Debian package dataset-fashion-mnist, or pass --data)",
                    data::FASHION_MNIST_DIR
                )
            })?,
        };
        let test = match self.test_subset {
            Some(n) => test.sample(n.min(test.len()), self.split_seed),
            None => test,
        };
        Ok((train, test))
    }
}

/// How a phase trains.
#[derive(Args, Clone, Debug)]
pub struct ScheduleArgs {
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Rmsprop)]
    pub optimizer: OptimizerKind,
    /// Initial learning rate (paper, MNIST: 0.0005).
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// Learning rate at the last step (linear decay).
    #[arg(long, default_value_t = 0.0)]
    pub final_lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random shifts of up to this many pixels.
    #[arg(long, default_value_t = 0)]
    pub shift: u8,
    /// Random horizontal flips.
    #[arg(long)]
    pub hflip: bool,
    /// Zero-pad by this many pixels and crop back at random (CIFAR style).
    #[arg(long, default_value_t = 0)]
    pub crop_pad: u8,
    /// Random erasing: with probability one half, a random rectangle of 2-40 % of the
    /// image becomes noise.
    #[arg(long)]
    pub erase: bool,
}

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
            DeviceSpec::Cpu => format!("cpu ({:?})", self.backend).to_lowercase(),
            cuda => cuda.to_string(),
        }
    }
}

/// Arguments of `fitnets train teacher`.
#[derive(Args, Clone, Debug)]
pub struct TeacherArgs {
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
}

/// Arguments of `fitnets train student`.
#[derive(Args, Clone, Debug)]
pub struct StudentArgs {
    #[arg(long, value_name = "TOML")]
    pub config: PathBuf,
    #[arg(long, value_enum)]
    pub method: Method,
    /// The teacher's run directory (not needed for `scratch`).
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Continue an interrupted run in `--run` with its saved settings: give the config,
    /// method, teacher and data options it was started with, and no schedule, hint or KD
    /// options.
    #[arg(long, conflicts_with_all = SCHEDULE_OPTIONS.into_iter().chain(["hint_epochs", "tau", "lambda_start", "lambda_end"]))]
    pub resume: bool,
    /// Epochs of hint training (stage 1 of `hints`).
    #[arg(long, default_value_t = 3)]
    pub hint_epochs: usize,
    /// KD temperature τ.
    #[arg(long, default_value_t = 3.0)]
    pub tau: f64,
    /// KD weight λ at the first step, annealed linearly to `--lambda-end`.
    #[arg(long, default_value_t = 4.0)]
    pub lambda_start: f64,
    #[arg(long, default_value_t = 1.0)]
    pub lambda_end: f64,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
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

/// Starts a run, or reopens it with `--resume`. A resumed run keeps its saved settings
/// (clap refuses the options that would set them); what a resume must still be told (the
/// config, data, method and teacher) must be what the run was started with, or the
/// resume is refused before anything is written.
fn open_run(dir: &Path, resume: bool, fresh: RunInfo) -> anyhow::Result<(RunDir, RunInfo)> {
    let exists = dir.join("run.json").exists();
    if resume {
        ensure!(exists, "{} holds no run to resume", dir.display());
        let run = RunDir::open(dir)?;
        let info: RunInfo = run.read_json("run.json")?;
        ensure!(
            info.data == fresh.data,
            "{} was started on other data ({} training and {} validation images of {}, split seed {}): \
             resume it with the data options it was started with",
            dir.display(),
            info.data.train_images,
            info.data.valid_images,
            info.data.name,
            info.data.split_seed
        );
        ensure!(
            info.config == fresh.config,
            "{} was started with another network config ({}): resume it with the config it was started with \
             (its copy is {})",
            dir.display(),
            info.config.name,
            dir.join("config.toml").display()
        );
        ensure!(
            info.method == fresh.method,
            "{} was started with --method {}: resume it with that method",
            dir.display(),
            info.method.map_or("none", Method::name)
        );
        ensure!(
            fresh.teacher.is_none() || same_path(info.teacher.as_deref(), fresh.teacher.as_deref()),
            "{} was started with the teacher {}: resume it with that teacher",
            dir.display(),
            info.teacher.as_deref().map_or("none".into(), |t| t.display().to_string())
        );
        if let (Some(teacher), Some(now)) = (&info.teacher, fresh.teacher_views) {
            check_teacher_views(dir, &info, teacher, now)?;
        }
        return Ok((run, info));
    }
    ensure!(!exists, "{} already holds a run: pass --resume to continue it, or choose another --run", dir.display());
    let run = RunDir::create(dir)?;
    run.write_json("run.json", &fresh)?;
    run.write("config.toml", toml::to_string(&fresh.config)?.as_bytes())?;
    Ok((run, fresh))
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

/// `fitnets train teacher`.
pub fn train_teacher(args: &TeacherArgs) -> anyhow::Result<()> {
    let config = NetConfig::load(&args.config)?;
    let splits = args.data.load()?;
    let fresh = RunInfo {
        role: "teacher".into(),
        method: None,
        config,
        schedule: args.schedule.schedule(),
        hint_schedule: None,
        kd: None,
        teacher: None,
        teacher_views: None,
        data: splits.info.clone(),
        backend: args.device.describe(),
        flip_average: args.flip_average,
        shift_average: args.shift_average,
    };
    if !args.resume {
        ensure!(
            !args.no_flip_average && !args.no_shift_average,
            "--no-flip-average and --no-shift-average change the views of an existing run: pass --resume"
        );
        check_views(&fresh)?;
    }
    let (run, mut info) = open_run(&args.run, args.resume, fresh)?;
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
    crate::with_backend!(args.device.device, args.device.backend, |B, _device, devices| {
        teacher_in::<B>(&run, &info, &splits, &devices)
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
    devices: &[B::Device],
) -> anyhow::Result<()> {
    let (net, history) = method::train_on_labels::<B>(&info.config, splits, &info.schedule, run, "teacher", devices)?;
    finish::<B>(run, info, splits, net, Vec::new(), history, &devices[0])
}

/// `fitnets train student`.
pub fn train_student(args: &StudentArgs) -> anyhow::Result<()> {
    let config = NetConfig::load(&args.config)?;
    let mut splits = args.data.load()?;
    let teacher_views = match &args.teacher {
        Some(teacher) => Some(take_teacher_normalization(&mut splits, teacher)?),
        None => None,
    };
    let (schedule, hint_schedule, kd) = args.settings();
    let fresh = RunInfo {
        role: "student".into(),
        method: Some(args.method),
        config,
        schedule,
        hint_schedule,
        kd,
        teacher: args.teacher.clone(),
        teacher_views: teacher_views.filter(|_| args.method != Method::Scratch),
        data: splits.info.clone(),
        backend: args.device.describe(),
        flip_average: false,
        shift_average: false,
    };
    if args.method != Method::Scratch && args.teacher.is_none() {
        bail!("--method {} needs --teacher RUN", args.method.name());
    }
    let (run, info) = open_run(&args.run, args.resume, fresh)?;
    crate::with_backend!(args.device.device, args.device.backend, |B, _device, devices| {
        student_in::<B>(&run, &info, &splits, &devices)
    })
}

/// A student with a teacher sees its images normalized as the teacher did: both take
/// the same input tensors, and the methods of a comparison see the same inputs. The
/// student must hold out the teacher's validation images (same data set, split seed and
/// count), which its teacher never trained on; it may train on a sample of the rest.
/// Returns the views the teacher averages.
fn take_teacher_normalization(splits: &mut Splits, teacher: &Path) -> anyhow::Result<Views> {
    let info: RunInfo = RunDir::open(teacher)?
        .read_json("run.json")
        .with_context(|| format!("reading the teacher run {}", teacher.display()))?;
    let (ours, theirs) = (&splits.info, &info.data);
    ensure!(
        ours.name == theirs.name && ours.split_seed == theirs.split_seed && ours.valid_images == theirs.valid_images,
        "the teacher in {} held out {} validation images of {} with split seed {}, this student {} of {} with \
         seed {}: pass the teacher's data options (--valid {} --split-seed {})",
        teacher.display(),
        theirs.valid_images,
        theirs.name,
        theirs.split_seed,
        ours.valid_images,
        ours.name,
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
    devices: &[B::Device],
) -> anyhow::Result<()> {
    let device = &devices[0];
    let method = info.method.context("a student run names its method")?;
    let (net, hint_history, history) = match &info.teacher {
        Some(teacher_dir) if method != Method::Scratch => {
            let (teacher, teacher_info) = load_run::<B::InnerBackend>(teacher_dir, device)?;
            check_pair(&info.config, &teacher_info.config)?;
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
                devices,
            )?
        }
        _ => {
            let (net, history) =
                method::train_on_labels::<B>(&info.config, splits, &info.schedule, run, "student", devices)?;
            (net, Vec::new(), history)
        }
    };
    finish::<B>(run, info, splits, net, hint_history, history, device)
}

/// Evaluates the final model, saves it and `result.json`, prints the outcome.
#[allow(clippy::too_many_arguments)]
fn finish<B: AutodiffBackend>(
    run: &RunDir,
    info: &RunInfo,
    splits: &Splits,
    net: crate::model::Net<B>,
    hint_history: Vec<crate::train::fit::EpochMetrics>,
    history: Vec<crate::train::fit::EpochMetrics>,
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
    let (_, test) = data.sets()?;
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
    let config = if target.is_dir() {
        RunDir::open(target)?.read_json::<RunInfo>("run.json")?.config
    } else {
        NetConfig::load(target)?
    };
    let costs = count::layers(&config)?;
    let mut text = format!(
        "{} on {}x{}x{} inputs, {} classes\n",
        config.name, config.input[0], config.input[1], config.input[2], config.classes
    );
    text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", "layer", "kind", "output", "params", "MACs");
    for c in &costs {
        let shape = format!("{}x{}x{}", c.output[0], c.output[1], c.output[2]);
        text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", c.name, c.kind, shape, c.params, c.macs);
    }
    let (params, macs) = count::totals(&config)?;
    text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", "total", "", "", params, macs);
    Ok(text)
}
