//! Training a run: a teacher, or a student by one of the paper's methods, into a run
//! directory, fresh or resumed. Every input is checked before anything is written; a
//! start that fails leaves nothing behind ([`super::undo_failed_start`]).
//!
//! `fitnets train` fills a [`TeacherJob`] or [`StudentJob`] from its options;
//! `compare`, `sweep` and `fit` fill them from their plans. Errors name the options a
//! job's fields come from (`--teacher`, `--resume`, …), which every caller passes on.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use burn::tensor::backend::AutodiffBackend;

use super::dir::RunDir;
use super::{RunInfo, RunResult, load_run, open_run, save_net, undo_failed_start};
use crate::backend::Compute;
use crate::data::{Augment, DataSpec, Splits};
use crate::method::{self, KdSettings, Method, Teacher, check_pair, evaluate};
use crate::model::{NetConfig, Views, count};
use crate::train::nodes::Nodes;
use crate::train::schedule::Schedule;
use crate::train::workers::Workers;

/// A teacher to train (`fitnets train teacher`).
#[derive(Clone, Debug)]
pub struct TeacherJob {
    /// The network config.
    pub config: PathBuf,
    /// The run directory.
    pub run: PathBuf,
    /// Continue the run in `run` with its saved settings (`schedule` is then ignored).
    pub resume: bool,
    pub data: DataSpec,
    pub schedule: Schedule,
    /// Classify by the mean logits of each image and its mirror image.
    pub flip_average: bool,
    /// Classify by the mean logits of each image and its one-pixel shifts.
    pub shift_average: bool,
    /// On resume: stop averaging over mirror images.
    pub no_flip_average: bool,
    /// On resume: stop averaging over shifted images.
    pub no_shift_average: bool,
    pub compute: Compute,
    pub nodes: Nodes,
}

/// A student to train (`fitnets train student`).
#[derive(Clone, Debug)]
pub struct StudentJob {
    /// The network config; `hints` needs its `guided` layer.
    pub config: PathBuf,
    pub method: Method,
    /// The finished teacher run (not needed for `scratch`).
    pub teacher: Option<PathBuf>,
    /// The run directory.
    pub run: PathBuf,
    /// Continue the run in `run` with its saved settings (`schedule`, `hint_epochs` and
    /// `kd` are then ignored).
    pub resume: bool,
    /// Epochs of hint training (`hints` only; 0 makes `hints` the same as `kd`).
    pub hint_epochs: usize,
    pub kd: KdSettings,
    pub data: DataSpec,
    /// The schedule of the whole student (of its KD stage with `hints`).
    pub schedule: Schedule,
    pub compute: Compute,
    pub nodes: Nodes,
}

impl StudentJob {
    /// The training settings this job gives a new run: the schedule, the hint schedule
    /// (`hints` only) and KD's (with a teacher).
    pub fn settings(&self) -> (Schedule, Option<Schedule>, Option<KdSettings>) {
        let schedule = self.schedule.clone();
        let hint_schedule = Schedule { epochs: self.hint_epochs, ..schedule.clone() };
        (
            schedule,
            (self.method == Method::Hints).then_some(hint_schedule),
            (self.method != Method::Scratch).then_some(self.kd),
        )
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
fn resumed_data(data: &DataSpec, run: &Path, resume: bool) -> DataSpec {
    let recorded = || RunDir::open(run).ok()?.read_json::<RunInfo>("run.json").ok()?.data.images;
    match (resume, data.resize) {
        (true, None) => DataSpec { resize: recorded().map(|images| images.resize), ..data.clone() },
        _ => data.clone(),
    }
}

/// Trains (or resumes) the teacher `job` asks for.
pub fn train_teacher(job: &TeacherJob) -> anyhow::Result<()> {
    job.nodes.check()?;
    let config = NetConfig::load(&job.config)?;
    let splits = resumed_data(&job.data, &job.run, job.resume).for_input(config.input).load()?;
    let fresh = RunInfo {
        format: super::RUN_FORMAT,
        role: "teacher".into(),
        method: None,
        config,
        schedule: job.schedule.clone(),
        hint_schedule: None,
        kd: None,
        teacher: None,
        teacher_views: None,
        data: splits.info.clone(),
        backend: job.compute.describe() + &job.nodes.describe(),
        flip_average: job.flip_average,
        shift_average: job.shift_average,
    };
    if !job.resume {
        ensure!(
            !job.no_flip_average && !job.no_shift_average,
            "--no-flip-average and --no-shift-average change the views of an existing run: pass --resume"
        );
        check_views(&fresh)?;
        check_training(&fresh.config, &job.config, &splits, &fresh.schedule)?;
    }
    let (run, mut info) = open_run(&job.run, job.resume, fresh)?;
    eprintln!("training on {}", job.compute.describe());
    undo_failed_start(&run, job.resume, || {
        if job.resume {
            check_training(&info.config, &job.config, &splits, &info.schedule)?;
        }
        let views = Views {
            mirror: (info.flip_average || job.flip_average) && !job.no_flip_average,
            shift: (info.shift_average || job.shift_average) && !job.no_shift_average,
        };
        if views != info.views() {
            info.flip_average = views.mirror;
            info.shift_average = views.shift;
            check_views(&info)?;
            run.write_json("run.json", &info)?;
        }
        let link = job.nodes.connect()?;
        crate::with_backend!(job.compute.device, job.compute.backend, |B, _device, devices| {
            teacher_in::<B>(&run, &info, &splits, Workers::new(devices, link, job.nodes.timeout)?)
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

/// Trains (or resumes) the student `job` asks for.
pub fn train_student(job: &StudentJob) -> anyhow::Result<()> {
    job.nodes.check()?;
    let config = NetConfig::load(&job.config)?;
    if job.method != Method::Scratch && job.teacher.is_none() {
        bail!("--method {} needs --teacher RUN (a finished `fitnets train teacher` run)", job.method.name());
    }
    let teacher = job.teacher.as_deref().map(read_teacher).transpose()?;
    // A student holds out its teacher's validation images unless told otherwise.
    let mut data = resumed_data(&job.data, &job.run, job.resume).for_input(config.input);
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
    let teacher_views = match (&job.teacher, &teacher) {
        (Some(dir), Some(info)) => Some(take_teacher_normalization(&mut splits, dir, info)?),
        _ => None,
    };
    let (schedule, hint_schedule, kd) = job.settings();
    let fresh = RunInfo {
        format: super::RUN_FORMAT,
        role: "student".into(),
        method: Some(job.method),
        config,
        schedule,
        hint_schedule,
        kd,
        teacher: job.teacher.clone(),
        teacher_views: teacher_views.filter(|_| job.method != Method::Scratch),
        data: splits.info.clone(),
        backend: job.compute.describe() + &job.nodes.describe(),
        flip_average: false,
        shift_average: false,
    };
    let check = |info: &RunInfo| -> anyhow::Result<()> {
        check_training(&info.config, &job.config, &splits, &info.schedule)?;
        if let (Some(dir), Some(teacher)) = (&job.teacher, &teacher)
            && info.method != Some(Method::Scratch)
        {
            check_pair(&info.config, &teacher.config).with_context(|| {
                format!("the student {} cannot learn from the teacher in {}", job.config.display(), dir.display())
            })?;
            if info.method == Some(Method::Hints) {
                crate::model::regressor::regressor_shape(&info.config, &teacher.config).with_context(|| {
                    format!("hint training of {} from the teacher in {}", job.config.display(), dir.display())
                })?;
                if info.hint_schedule.as_ref().is_some_and(|s| s.epochs == 0) {
                    eprintln!("note: --hint-epochs 0 skips hint training: `hints` is then the same as `kd`");
                }
            }
        }
        Ok(())
    };
    if !job.resume {
        check(&fresh)?;
    }
    let (run, info) = open_run(&job.run, job.resume, fresh)?;
    eprintln!("training on {}", job.compute.describe());
    undo_failed_start(&run, job.resume, || {
        if job.resume {
            check(&info)?;
        }
        let link = job.nodes.connect()?;
        crate::with_backend!(job.compute.device, job.compute.backend, |B, _device, devices| {
            student_in::<B>(&run, &info, &splits, Workers::new(devices, link, job.nodes.timeout)?)
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
