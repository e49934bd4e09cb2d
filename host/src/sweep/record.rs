//! A sweep as its directory holds it (`sweep.json` and the runs under `depth-D/`), and
//! its table: what `fitnets sweep` writes and `fitnets report` reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::compare::finished;
use crate::method::Method;
use crate::model::{NetConfig, count};
use crate::run::dir::RunDir;
use crate::train::schedule::{OptimizerKind, Schedule};

/// The sweep's files in its runs directory.
pub const SETTING_FILE: &str = "sweep.json";
pub const TABLE_FILE: &str = "table.md";
pub const CHART_FILE: &str = "depth.svg";

/// What every run of a sweep is trained with (`sweep.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSetting {
    pub budget_macs: u64,
    pub student_epochs: usize,
    pub hint_epochs: usize,
    /// Training images sampled from the training split (`None`: all of them).
    pub subset: Option<usize>,
    pub valid: usize,
    pub test_subset: Option<usize>,
    pub split_seed: u64,
    /// The student phase's schedule; its `epochs` is `student_epochs`.
    pub schedule: Schedule,
    pub teacher: PathBuf,
    /// [`crate::run::RunInfo::network_name`] of the teacher.
    pub teacher_name: String,
    pub teacher_test_accuracy: f64,
}

impl SweepSetting {
    /// One sentence for the table: how each student was trained.
    pub fn describe(&self) -> String {
        let s = &self.schedule;
        let images = match self.subset {
            Some(n) => format!("a seeded sample of {n} training images"),
            None => "every training image".into(),
        };
        let test = match self.test_subset {
            Some(n) => format!("{n} test images"),
            None => "the whole test set".into(),
        };
        format!(
            "Each student trained {} epochs ({} of them hint training for `hints`) on {images}, \
             {} at learning rate {} to {}, batch {}, seed {}; {} validation images held out \
             (split seed {}); tested on {test}. Teacher: {} (`{}`), {:.2}% test accuracy.",
            self.student_epochs,
            self.hint_epochs,
            match s.optimizer {
                OptimizerKind::Rmsprop => "RMSProp",
                OptimizerKind::Adam => "Adam",
            },
            s.learning_rate,
            s.final_learning_rate,
            s.batch_size,
            s.seed,
            self.valid,
            self.split_seed,
            self.teacher_name,
            self.teacher.display(),
            100.0 * self.teacher_test_accuracy
        )
    }
}

/// A sweep as its directory holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub setting: SweepSetting,
    pub rows: Vec<DepthRow>,
}

/// One depth of the sweep: the student and each method's test accuracy (`None` while
/// not trained).
#[derive(Clone, Debug, PartialEq)]
pub struct DepthRow {
    pub depth: usize,
    pub widths: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    pub accuracies: Vec<(Method, Option<f64>)>,
}

pub(super) fn depth_dir_name(depth: usize) -> String {
    format!("depth-{depth}")
}

/// Reads the sweep in `dir`: every depth it holds, every method trained at some depth.
pub fn load(dir: &Path) -> anyhow::Result<Sweep> {
    let setting: SweepSetting =
        RunDir::open(dir)?.read_json(SETTING_FILE).with_context(|| format!("{} holds no sweep", dir.display()))?;
    collect(dir, setting, &[])
}

/// The sweep in `dir` with `setting`: every depth it holds (so that sweeps of single
/// depths, say one per GPU, fill one table), and the methods of `methods` or trained at
/// some depth.
pub(super) fn collect(dir: &Path, setting: SweepSetting, methods: &[Method]) -> anyhow::Result<Sweep> {
    let mut depths = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        if let Some(depth) = name.to_str().and_then(|n| n.strip_prefix("depth-")).and_then(|d| d.parse().ok()) {
            depths.push(depth);
        }
    }
    depths.sort_unstable();
    let methods: Vec<Method> = [Method::Scratch, Method::Kd, Method::Hints]
        .into_iter()
        .filter(|m| methods.contains(m) || depths.iter().any(|&d| dir.join(depth_dir_name(d)).join(m.name()).exists()))
        .collect();
    let mut rows = Vec::new();
    for depth in depths {
        let depth_dir = RunDir::open(&dir.join(depth_dir_name(depth)))?;
        let config = NetConfig::load(&depth_dir.join("config.toml"))?;
        rows.push(row(&config, depth, &depth_dir, &methods)?);
    }
    Ok(Sweep { setting, rows })
}

fn row(config: &NetConfig, depth: usize, dir: &RunDir, methods: &[Method]) -> anyhow::Result<DepthRow> {
    let (params, macs) = count::totals(config)?;
    let widths = config.conv_widths();
    let accuracies = methods.iter().map(|&m| (m, finished(&dir.join(m.name())).map(|r| r.test_accuracy))).collect();
    Ok(DepthRow { depth, widths, params, macs, accuracies })
}

/// The Markdown table: the setting, then one row per depth, one accuracy column per
/// method.
pub fn table(sweep: &Sweep) -> String {
    let budget = sweep.setting.budget_macs;
    let mut text = format!(
        "Students at a budget of {:.2}M multiply-accumulates per image. {}\n\n",
        budget as f64 / 1e6,
        sweep.setting.describe()
    );
    let Some(first) = sweep.rows.first() else { return text };
    text += "| conv layers | units per layer | parameters | MACs |";
    for (method, _) in &first.accuracies {
        let _ = write!(text, " {} |", method.name());
    }
    text += "\n|---:|---|---:|---:|";
    text += &"---:|".repeat(first.accuracies.len());
    text += "\n";
    for row in &sweep.rows {
        let widths: Vec<String> = row.widths.iter().map(usize::to_string).collect();
        let _ =
            write!(text, "| {} | {} | {} | {:.2}M |", row.depth, widths.join("-"), row.params, row.macs as f64 / 1e6);
        for (_, accuracy) in &row.accuracies {
            match accuracy {
                Some(a) => {
                    let _ = write!(text, " {:.2}% |", 100.0 * a);
                }
                None => text += " not trained |",
            }
        }
        text += "\n";
    }
    text
}
