//! `fitnets compare`: the paper's Table 4 for our data. Trains (or reuses) the teacher
//! and the three student methods with one schedule and tabulates parameters, MACs,
//! accuracy, compression and speed-up.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::cli::{self, DataArgs, DeviceArgs, ScheduleArgs};
use crate::method::{Method, RunInfo, RunResult};
use crate::train::run_dir::RunDir;

/// Arguments of `fitnets compare`.
#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    #[arg(long, value_name = "TOML", default_value = "configs/mnist-teacher.toml")]
    pub teacher_config: PathBuf,
    #[arg(long, value_name = "TOML", default_value = "configs/mnist-fitnet.toml")]
    pub student_config: PathBuf,
    /// Where the runs go: `teacher/`, `scratch/`, `kd/`, `hints/`. Finished runs are
    /// reused, interrupted ones resumed.
    #[arg(long, value_name = "DIR", default_value = "runs/compare")]
    pub runs: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub teacher_epochs: usize,
    /// Epochs of every student; `hints` spends `--hint-epochs` of them on hint training.
    #[arg(long, default_value_t = 14)]
    pub student_epochs: usize,
    #[arg(long, default_value_t = 3)]
    pub hint_epochs: usize,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub params: u64,
    pub macs: u64,
    pub test_accuracy: f64,
}

fn finished(dir: &Path) -> Option<RunResult> {
    RunDir::open(dir).ok()?.read_json("result.json").ok()
}

/// Runs what is missing, then prints and saves the table.
pub fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    let teacher_dir = args.runs.join("teacher");
    if finished(&teacher_dir).is_none() {
        let mut schedule = args.schedule.clone();
        schedule.epochs = args.teacher_epochs;
        let teacher = cli::TeacherArgs {
            config: args.teacher_config.clone(),
            run: teacher_dir.clone(),
            resume: teacher_dir.join("run.json").exists(),
            data: args.data.clone(),
            schedule,
            device: args.device.clone(),
        };
        cli::train_teacher(&teacher).context("training the teacher")?;
    }
    for method in [Method::Scratch, Method::Kd, Method::Hints] {
        let dir = args.runs.join(method.name());
        if finished(&dir).is_some() {
            continue;
        }
        let mut schedule = args.schedule.clone();
        let hint_epochs = if method == Method::Hints { args.hint_epochs } else { 0 };
        schedule.epochs = args.student_epochs - hint_epochs;
        let student = cli::StudentArgs {
            config: args.student_config.clone(),
            method,
            teacher: Some(teacher_dir.clone()),
            run: dir.clone(),
            resume: dir.join("run.json").exists(),
            hint_epochs,
            tau: 3.0,
            lambda_start: 4.0,
            lambda_end: 1.0,
            data: args.data.clone(),
            schedule,
            device: args.device.clone(),
        };
        cli::train_student(&student).with_context(|| format!("training the {} student", method.name()))?;
    }
    let mut rows = Vec::new();
    for name in ["teacher", "scratch", "kd", "hints"] {
        let dir = args.runs.join(name);
        let run = RunDir::open(&dir)?;
        let info: RunInfo = run.read_json("run.json")?;
        let result: RunResult = run.read_json("result.json")?;
        let label =
            if name == "teacher" { format!("teacher ({})", info.config.name) } else { format!("FitNet {name}") };
        rows.push(Row { name: label, params: result.params, macs: result.macs, test_accuracy: result.test_accuracy });
    }
    let table = table(&rows);
    print!("{table}");
    RunDir::open(&args.runs)?.write("table.md", table.as_bytes())?;
    Ok(())
}

/// The Markdown table; the first row is the teacher, the reference for compression
/// (parameters) and speed-up (MACs).
pub fn table(rows: &[Row]) -> String {
    let mut text = String::from("| network | parameters | MACs | test accuracy | compression | speed-up |\n");
    text += "|---|---:|---:|---:|---:|---:|\n";
    let Some(teacher) = rows.first() else { return text };
    for row in rows {
        let _ = writeln!(
            text,
            "| {} | {} | {:.2}M | {:.2}% | {:.1}x | {:.1}x |",
            row.name,
            row.params,
            row.macs as f64 / 1e6,
            100.0 * row.test_accuracy,
            teacher.params as f64 / row.params as f64,
            teacher.macs as f64 / row.macs as f64
        );
    }
    text
}
