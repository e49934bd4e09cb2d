//! The runs a report reads: `run.json`, `result.json` when the run finished, and
//! `metrics.csv`, for the teacher and each student method under one directory (the
//! layout `fitnets compare` writes).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};

use crate::run::dir::RunDir;
use crate::run::{RunInfo, RunResult};

/// The runs of a comparison, by sub-directory, teacher first.
pub const RUN_NAMES: [&str; 4] = ["teacher", "scratch", "kd", "hints"];

/// One run as found on disk.
#[derive(Clone, Debug)]
pub struct Run {
    /// `teacher`, `scratch`, `kd` or `hints`: the sub-directory.
    pub name: String,
    pub dir: PathBuf,
    pub info: RunInfo,
    /// `None` while the run has not finished.
    pub result: Option<RunResult>,
    /// Every row of `metrics.csv`, in file order (empty when there is none yet).
    pub metrics: Vec<MetricRow>,
}

impl Run {
    /// Reads the run in `dir`, named `name`.
    pub fn load(name: &str, dir: &Path) -> anyhow::Result<Run> {
        let run = RunDir::open(dir)?;
        let info: RunInfo = run.read_json("run.json")?;
        let result = if run.join("result.json").exists() { Some(run.read_json("result.json")?) } else { None };
        let metrics_path = run.join("metrics.csv");
        let metrics = match std::fs::read_to_string(&metrics_path) {
            Ok(text) => parse_metrics(&text).with_context(|| format!("parsing {}", metrics_path.display()))?,
            Err(_) => Vec::new(),
        };
        Ok(Run { name: name.to_string(), dir: dir.to_path_buf(), info, result, metrics })
    }

    /// True for the teacher's run (`role` in `run.json`).
    pub fn is_teacher(&self) -> bool {
        self.info.role == "teacher"
    }

    /// How the report names the run ([`RunInfo::label`]).
    pub fn label(&self) -> String {
        self.info.label()
    }
}

/// The runs present under `dir` among [`RUN_NAMES`], teacher first. A sub-directory
/// without `run.json` is skipped (not started); an unreadable one is an error.
pub fn load_runs(dir: &Path) -> anyhow::Result<Vec<Run>> {
    ensure!(dir.is_dir(), "{} is not a directory of runs", dir.display());
    let mut runs = Vec::new();
    for name in RUN_NAMES {
        let sub = dir.join(name);
        if sub.join("run.json").exists() {
            runs.push(Run::load(name, &sub).with_context(|| format!("reading the run in {}", sub.display()))?);
        }
    }
    ensure!(
        !runs.is_empty(),
        "{} holds none of the runs {} (each a directory with run.json, as `fitnets compare` writes)",
        dir.display(),
        RUN_NAMES.join(", ")
    );
    Ok(runs)
}

/// The finished student run with the best validation accuracy (the test set chooses
/// nothing); the first in [`RUN_NAMES`] order on a tie.
pub fn best_student(runs: &[Run]) -> Option<&Run> {
    let valid = |r: &Run| r.result.as_ref().map_or(f64::NEG_INFINITY, |r| r.valid_accuracy);
    runs.iter().filter(|r| !r.is_teacher() && r.result.is_some()).fold(None, |best: Option<&Run>, r| match best {
        Some(b) if valid(b) >= valid(r) => Some(b),
        _ => Some(r),
    })
}

/// One row of `metrics.csv`: one epoch of one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    /// `teacher`, `student` or `hints` (hint training, which has no accuracy).
    pub phase: String,
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: Option<f64>,
    /// Cross-entropy on the validation split for every classifying phase (whatever the
    /// training objective), the hint loss for hint training.
    pub valid_loss: f64,
    pub valid_accuracy: Option<f64>,
    /// Seconds of the epoch's training pass (evaluation left out).
    pub seconds: f64,
}

/// Parses `metrics.csv` by its header's column names; empty cells are `None`.
pub fn parse_metrics(text: &str) -> anyhow::Result<Vec<MetricRow>> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { return Ok(Vec::new()) };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        columns.iter().position(|c| *c == name).with_context(|| format!("the header has no `{name}` column"))
    };
    let phase = column("phase")?;
    let epoch = column("epoch")?;
    let train_loss = column("train_loss")?;
    let train_accuracy = column("train_accuracy")?;
    let valid_loss = column("valid_loss")?;
    let valid_accuracy = column("valid_accuracy")?;
    let seconds = column("seconds")?;
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            bail!("line {}: {} fields, the header has {}", i + 1, fields.len(), columns.len());
        }
        let number = |c: usize| -> anyhow::Result<f64> {
            fields[c]
                .parse()
                .with_context(|| format!("line {}: `{}` is not a number ({})", i + 1, fields[c], columns[c]))
        };
        let optional = |c: usize| -> anyhow::Result<Option<f64>> {
            if fields[c].is_empty() { Ok(None) } else { number(c).map(Some) }
        };
        rows.push(MetricRow {
            phase: fields[phase].to_string(),
            epoch: fields[epoch]
                .parse()
                .with_context(|| format!("line {}: `{}` is not an epoch", i + 1, fields[epoch]))?,
            train_loss: number(train_loss)?,
            train_accuracy: optional(train_accuracy)?,
            valid_loss: number(valid_loss)?,
            valid_accuracy: optional(valid_accuracy)?,
            seconds: number(seconds)?,
        });
    }
    Ok(rows)
}
