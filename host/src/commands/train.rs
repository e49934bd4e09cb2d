//! `fitnets train teacher` and `fitnets train student`.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{DataArgs, DeviceArgs, NodeArgs, ScheduleArgs, epoch_count, non_negative_number, positive_number};
use crate::method::{KdSettings, Method};
use crate::run::train::{StudentJob, TeacherJob};

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

/// The options of [`ScheduleArgs`], which `--resume` refuses: a resumed run keeps the
/// settings it was started with.
const SCHEDULE_OPTIONS: [&str; 10] =
    ["epochs", "batch", "optimizer", "lr", "final_lr", "seed", "shift", "hflip", "crop_pad", "erase"];

impl TeacherArgs {
    /// The teacher these options ask for.
    pub fn job(&self) -> TeacherJob {
        TeacherJob {
            config: self.config.clone(),
            run: self.run.clone(),
            resume: self.resume,
            data: self.data.spec(),
            schedule: self.schedule.schedule(),
            flip_average: self.flip_average,
            shift_average: self.shift_average,
            no_flip_average: self.no_flip_average,
            no_shift_average: self.no_shift_average,
            compute: self.device.compute(),
            nodes: self.nodes.nodes(),
        }
    }
}

impl StudentArgs {
    /// The student these options ask for.
    pub fn job(&self) -> StudentJob {
        StudentJob {
            config: self.config.clone(),
            method: self.method,
            teacher: self.teacher.clone(),
            run: self.run.clone(),
            resume: self.resume,
            hint_epochs: self.hint_epochs,
            kd: KdSettings { tau: self.tau, lambda_start: self.lambda_start, lambda_end: self.lambda_end },
            data: self.data.spec(),
            schedule: self.schedule.schedule(),
            compute: self.device.compute(),
            nodes: self.nodes.nodes(),
        }
    }
}

/// `fitnets train teacher`.
pub fn train_teacher(args: &TeacherArgs) -> anyhow::Result<()> {
    crate::run::train::train_teacher(&args.job())
}

/// `fitnets train student`.
pub fn train_student(args: &StudentArgs) -> anyhow::Result<()> {
    crate::run::train::train_student(&args.job())
}
