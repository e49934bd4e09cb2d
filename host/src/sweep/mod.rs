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

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

use crate::compare::{StudentPlan, finished};
use crate::method::Method;
use crate::model::generate::{self, StudentSpec};
use crate::model::{NetConfig, count};
use crate::report::charts::depth;
use crate::run::RunInfo;
use crate::run::dir::{RunDir, write_atomic};

pub mod record;

use record::{CHART_FILE, SETTING_FILE, Sweep, SweepSetting, TABLE_FILE, collect, depth_dir_name, table};
/// A sweep (`fitnets sweep`): students of each depth at one budget, each trained with
/// each method from one teacher.
#[derive(Clone, Debug)]
pub struct DepthSweep {
    /// The finished teacher run (its hint layer guides the students).
    pub teacher: PathBuf,
    /// Multiply-accumulates per image of every student; `None`: those of
    /// `reference_config`.
    pub budget_macs: Option<u64>,
    /// The student whose cost sets the budget when none is given.
    pub reference_config: PathBuf,
    /// Conv layers of the students.
    pub depths: Vec<usize>,
    /// The methods each student is trained with.
    pub methods: Vec<Method>,
    /// Where the runs go (`depth-D/METHOD/`), with `sweep.json`, `table.md`, `depth.svg`.
    pub runs: PathBuf,
    pub plan: StudentPlan,
}

/// Generates, trains what is missing, prints and saves the table and the chart.
pub fn sweep(job: &DepthSweep) -> anyhow::Result<()> {
    job.plan.check()?;
    let teacher_info: RunInfo = RunDir::open(&job.teacher)?.read_json("run.json").context("reading the teacher run")?;
    let teacher_result = finished(&job.teacher)
        .with_context(|| format!("the teacher run in {} has not finished", job.teacher.display()))?;
    let teacher_name = teacher_info.network_name();
    let teacher_config = teacher_info.config;
    let budget_macs = match job.budget_macs {
        Some(m) => m,
        None => count::totals(&NetConfig::load(&job.reference_config)?)?.1,
    };
    // Students hold out the teacher's validation images unless told otherwise.
    let mut plan = job.plan.clone();
    plan.data.valid = plan.data.valid.or(Some(teacher_info.data.valid_images));
    let plan = &plan;
    let mut schedule = plan.schedule.clone();
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
        teacher: job.teacher.clone(),
        teacher_name,
        teacher_test_accuracy: teacher_result.test_accuracy,
    };
    let runs = RunDir::create(&job.runs)?;
    check_setting(&runs, &setting)?;

    // Generate every student first: a budget no depth can meet fails before any training.
    let mut students = Vec::new();
    for &depth in &job.depths {
        let spec = StudentSpec::sweep(depth, budget_macs, teacher_config.input, teacher_config.classes);
        let (config, text) =
            generate::student(&spec).with_context(|| format!("generating the {depth}-layer student"))?;
        crate::model::regressor::regressor_shape(&config, &teacher_config)?;
        let depth_dir = RunDir::create(&job.runs.join(depth_dir_name(depth)))?;
        depth_dir.write("config.toml", text.as_bytes())?;
        students.push((depth, depth_dir));
    }
    for (depth, depth_dir) in &students {
        for &method in &job.methods {
            let dir = depth_dir.join(method.name());
            if finished(&dir).is_some() {
                let info: RunInfo = RunDir::open(&dir)?.read_json("run.json")?;
                crate::run::check_reuse_data(&dir, &info, &plan.data)?;
            } else {
                eprintln!("sweep: depth {depth}, {}", method.name());
                let started = std::time::Instant::now();
                plan.train(&depth_dir.join("config.toml"), method, &job.teacher, &dir, 0)?;
                eprintln!(
                    "sweep: depth {depth}, {} took {:.0} s (wall, loading and evaluation included)",
                    method.name(),
                    started.elapsed().as_secs_f64()
                );
                // Partial results are worth seeing while the rest trains.
                write(&collect(&job.runs, setting.clone(), &job.methods)?, &job.runs)?;
            }
        }
    }
    let sweep = collect(&job.runs, setting, &job.methods)?;
    write(&sweep, &job.runs)?;
    print!("{}", table(&sweep));
    Ok(())
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
