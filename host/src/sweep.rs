//! `fitnets sweep`: the paper's Figure 2 for our data. For each depth, a student generated
//! at a fixed multiplication budget ([`generate`]) is trained with each method from the
//! same teacher; the table and the chart show where scratch and KD stop training and
//! whether hints still train there.
//!
//! ```text
//! RUNS/sweep.json            the setting (budget, schedule, data), checked on every call
//! RUNS/depth-D/config.toml   the generated student of depth D
//! RUNS/depth-D/METHOD/       its run, as `fitnets train student` writes it
//! RUNS/table.md, depth.svg   rewritten after every run that finishes
//! ```
//!
//! Finished runs are reused and interrupted ones resumed, so a sweep can be trained in
//! pieces, and the table holds every depth in the directory, so several processes
//! with one `--depths` each (one per GPU) fill one table. Invariant: every run under `RUNS` was trained with `sweep.json`'s setting; a
//! call with another setting is an error, never a table that mixes two.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::compare::{StudentPlan, finished};
use crate::method::{Method, RunInfo};
use crate::model::generate::{self, StudentSpec};
use crate::model::{NetConfig, count};
use crate::report::charts::depth;
use crate::train::run_dir::{RunDir, write_atomic};
use crate::train::schedule::{OptimizerKind, Schedule};

/// The sweep's files in its runs directory.
pub const SETTING_FILE: &str = "sweep.json";
pub const TABLE_FILE: &str = "table.md";
pub const CHART_FILE: &str = "depth.svg";

/// Arguments of `fitnets sweep`.
#[derive(Args, Clone, Debug)]
pub struct SweepArgs {
    /// The trained teacher's run directory (its hint layer guides the students).
    #[arg(long, value_name = "DIR")]
    pub teacher: PathBuf,
    /// Multiply-accumulates per image of every student [default: those of
    /// `--reference-config`].
    #[arg(long, value_name = "M")]
    pub budget_macs: Option<u64>,
    /// The student whose cost sets the default budget.
    #[arg(long, value_name = "TOML", default_value = "configs/mnist-fitnet.toml")]
    pub reference_config: PathBuf,
    /// Conv layers of the students.
    #[arg(long, value_delimiter = ',', default_value = "3,5,7,9,11,13")]
    pub depths: Vec<usize>,
    /// The methods each student is trained with.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "scratch,kd,hints")]
    pub methods: Vec<Method>,
    /// Where the runs go (`depth-D/METHOD/`), with `sweep.json`, `table.md`, `depth.svg`.
    #[arg(long, value_name = "DIR", default_value = "runs/sweep")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub plan: StudentPlan,
}

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
    /// [`RunInfo::network_name`] of the teacher.
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

/// Generates, trains what is missing, prints and saves the table and the chart.
pub fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    let teacher_info: RunInfo =
        RunDir::open(&args.teacher)?.read_json("run.json").context("reading the teacher run")?;
    let teacher_result = finished(&args.teacher)
        .with_context(|| format!("the teacher run in {} has not finished", args.teacher.display()))?;
    let teacher_name = teacher_info.network_name();
    let teacher_config = teacher_info.config;
    let budget_macs = match args.budget_macs {
        Some(m) => m,
        None => count::totals(&NetConfig::load(&args.reference_config)?)?.1,
    };
    // Students hold out the teacher's validation images unless told otherwise.
    let mut plan = args.plan.clone();
    plan.data.valid = plan.data.valid.or(Some(teacher_info.data.valid_images));
    let plan = &plan;
    let mut schedule = plan.schedule.schedule();
    schedule.epochs = plan.student_epochs;
    let setting = SweepSetting {
        budget_macs,
        student_epochs: plan.student_epochs,
        hint_epochs: plan.hint_epochs,
        subset: plan.data.subset,
        valid: plan.data.valid.unwrap_or(teacher_info.data.valid_images),
        test_subset: plan.data.test_subset,
        split_seed: plan.data.split_seed,
        schedule,
        teacher: args.teacher.clone(),
        teacher_name,
        teacher_test_accuracy: teacher_result.test_accuracy,
    };
    let runs = RunDir::create(&args.runs)?;
    check_setting(&runs, &setting)?;

    // Generate every student first: a budget no depth can meet fails before any training.
    let mut students = Vec::new();
    for &depth in &args.depths {
        let spec = StudentSpec::sweep(depth, budget_macs, teacher_config.input, teacher_config.classes);
        let (config, text) =
            generate::student(&spec).with_context(|| format!("generating the {depth}-layer student"))?;
        crate::method::regressor_shape(&config, &teacher_config)?;
        let depth_dir = RunDir::create(&args.runs.join(depth_dir_name(depth)))?;
        depth_dir.write("config.toml", text.as_bytes())?;
        students.push((depth, depth_dir));
    }
    for (depth, depth_dir) in &students {
        for &method in &args.methods {
            let dir = depth_dir.join(method.name());
            if finished(&dir).is_some() {
                let info: RunInfo = RunDir::open(&dir)?.read_json("run.json")?;
                crate::cli::check_reuse_data(&dir, &info, &plan.data)?;
            } else {
                eprintln!("sweep: depth {depth}, {}", method.name());
                let started = std::time::Instant::now();
                plan.train(&depth_dir.join("config.toml"), method, &args.teacher, &dir, 0)?;
                eprintln!(
                    "sweep: depth {depth}, {} took {:.0} s (wall, loading and evaluation included)",
                    method.name(),
                    started.elapsed().as_secs_f64()
                );
                // Partial results are worth seeing while the rest trains.
                write(&collect(&args.runs, setting.clone(), &args.methods)?, &args.runs)?;
            }
        }
    }
    let sweep = collect(&args.runs, setting, &args.methods)?;
    write(&sweep, &args.runs)?;
    print!("{}", table(&sweep));
    Ok(())
}

fn depth_dir_name(depth: usize) -> String {
    format!("depth-{depth}")
}

/// Writes `sweep.json` for a new sweep, or checks that an existing one has `setting`.
fn check_setting(runs: &RunDir, setting: &SweepSetting) -> anyhow::Result<()> {
    if !runs.join(SETTING_FILE).exists() {
        return runs.write_json(SETTING_FILE, setting);
    }
    let saved: SweepSetting = runs.read_json(SETTING_FILE)?;
    ensure!(
        saved == *setting,
        "{} holds a sweep with another setting; pass its options again or choose another --runs.\n\
         It has: {}\nThis call asks: {}",
        runs.path().display(),
        saved.describe(),
        setting.describe()
    );
    Ok(())
}

/// Writes the table and the chart into `dir`.
fn write(sweep: &Sweep, dir: &Path) -> anyhow::Result<()> {
    write_atomic(&dir.join(TABLE_FILE), table(sweep).as_bytes())?;
    write_atomic(&dir.join(CHART_FILE), depth::draw(sweep)?.as_bytes())
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
fn collect(dir: &Path, setting: SweepSetting, methods: &[Method]) -> anyhow::Result<Sweep> {
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
