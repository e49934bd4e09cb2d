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
use clap::Args;

use crate::compare::{StudentPlan, finished};
use crate::method::Method;
use crate::model::generate::{self, StudentSpec};
use crate::model::{NetConfig, count};
use crate::report::charts::depth;
use crate::run::RunInfo;
use crate::run::dir::{RunDir, write_atomic};

pub mod record;

use record::{CHART_FILE, SETTING_FILE, Sweep, SweepSetting, TABLE_FILE, collect, depth_dir_name, table};
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
        crate::model::regressor::regressor_shape(&config, &teacher_config)?;
        let depth_dir = RunDir::create(&args.runs.join(depth_dir_name(depth)))?;
        depth_dir.write("config.toml", text.as_bytes())?;
        students.push((depth, depth_dir));
    }
    for (depth, depth_dir) in &students {
        for &method in &args.methods {
            let dir = depth_dir.join(method.name());
            if finished(&dir).is_some() {
                let info: RunInfo = RunDir::open(&dir)?.read_json("run.json")?;
                crate::run::check_reuse_data(&dir, &info, &plan.data)?;
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
