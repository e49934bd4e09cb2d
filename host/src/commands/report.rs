//! `fitnets report`: reads the runs, takes the int8 student (a given blob, or one
//! exported here from a student run), runs it over the test set with `shared`'s kernels,
//! and writes `report.md`, the charts and, when exported here, `student.fnet`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use clap::Args;
use fitnets_shared::Model;
use fitnets_shared::format::encode::pixel_table;

use crate::cli::DataArgs;
use crate::data::Dataset;
use crate::method::Method;
use crate::quant::calibrate::Calibration;
use crate::quant::eval::evaluate_int8;
use crate::quant::export::ExportOptions;
use crate::report::boards::{BOARDS, Firmware, STACK_BYTES, code_bytes};
use crate::report::runs::{Run, best_student, load_runs};
use crate::report::stages::Int8Student;
use crate::report::{Report, charts, markdown};
use crate::run::dir::write_atomic;

/// The report's Markdown file and the blob exported here, in the output directory.
pub const REPORT_FILE: &str = "report.md";
pub const BLOB_FILE: &str = "student.fnet";

/// Arguments of `fitnets report`.
#[derive(Args, Clone, Debug)]
pub struct ReportArgs {
    /// The runs of `fitnets compare`: `teacher/`, `scratch/`, `kd/`, `hints/` (those
    /// present; unfinished ones are shown as such).
    #[arg(long, value_name = "DIR", default_value = "runs/compare")]
    pub runs: PathBuf,
    /// The int8 student. Default: exported here from the student run (`--student`) and
    /// written to `DIR/student.fnet`.
    #[arg(long, value_name = "FILE")]
    pub blob: Option<PathBuf>,
    /// The student run to export, or the one `--blob` was exported from (checked against
    /// its name and input normalization). Default: the finished student with the best
    /// validation accuracy, or, with `--blob`, none.
    #[arg(long, value_enum)]
    pub student: Option<Method>,
    /// A `fitnets sweep` runs directory to show its table and chart as well.
    #[arg(long, value_name = "DIR")]
    pub sweep: Option<PathBuf>,
    /// Where to write the report and its charts.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Flash the firmware's own code takes besides the blob, in KB (default: the serve
    /// program's largest measured, `firmware/memory/programs.txt`).
    #[arg(long, value_name = "KB", default_value_t = code_bytes().div_ceil(1024))]
    pub code_kb: u64,
    /// RAM kept for the stack, in KB.
    #[arg(long, value_name = "KB", default_value_t = STACK_BYTES / 1024)]
    pub stack_kb: u64,
    /// Calibration of the export done here: `minmax`, `percentile[:P]` or `mse`.
    #[arg(long, default_value = "minmax")]
    pub calibration: Calibration,
    /// The runs' data (the same options they were trained with): the test set for the
    /// int8 accuracy, the training split to calibrate an export on.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `fitnets report`.
pub fn report_command(args: &ReportArgs) -> anyhow::Result<()> {
    let runs = load_runs(&args.runs)?;
    let sweep = args.sweep.as_deref().map(crate::sweep::record::load).transpose()?;
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let chosen =
        match args.student {
            Some(method) => Some(finished(&runs, method.name(), &args.runs)?),
            None if args.blob.is_some() => None,
            None => Some(best_student(&runs).with_context(|| {
                format!("{} has no finished student run to export: pass --blob", args.runs.display())
            })?),
        };
    let (blob, source, test) = match &args.blob {
        Some(path) => {
            let blob = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            if let Some(run) = chosen {
                check_origin(&blob, path, run)?;
            }
            let model = fitnets_shared::Model::from_bytes(&blob)
                .map_err(|e| anyhow::anyhow!("{} is not a valid model: {e}", path.display()))?;
            let data = match chosen {
                Some(run) => args.data.spec().with_images_of(&run.dir, &run.info.data)?,
                None => args.data.spec(),
            };
            let (_, test) = data.for_input(crate::quant::eval::model_input(&model)).sets()?;
            (blob, format!("`{}`", path.display()), test)
        }
        None => {
            let run = chosen.context("a run to export")?;
            let (blob, test) = export_run(run, args)?;
            let path = args.output.join(BLOB_FILE);
            write_atomic(&path, &blob)?;
            let why = if args.student.is_some() { "chosen with --student" } else { "best validation accuracy" };
            (blob, format!("exported here from `{}` ({why}) to `{}`", run.dir.display(), path.display()), test)
        }
    };
    let model = Model::from_bytes(&blob).context("the int8 student is not a valid model")?;
    let int8 = evaluate_int8(&model, &test).context("evaluating the int8 student")?;
    let student =
        Int8Student { source, run: chosen.map(|r| r.name.clone()), accuracy: Some((int8.accuracy, test.len())), blob };
    let firmware =
        Firmware { code_bytes: args.code_kb * 1024, stack_bytes: args.stack_kb * 1024, ..Firmware::default() };
    let mut report = Report::build(runs, student, firmware, &BOARDS)?;
    report.seeds = crate::compare::seeds_table(&args.runs)?;
    report.sweep = sweep;
    let paths = write(&report, &args.runs, &args.output)?;
    println!(
        "int8 {}: test accuracy {:.2}% on {} images; blob {} bytes, arena {} bytes",
        report.student_name,
        100.0 * int8.accuracy,
        test.len(),
        report.needs.blob_bytes,
        report.needs.arena_bytes
    );
    for path in paths {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes `report.md` and the charts into `dir`; returns their paths, the report first.
pub fn write(report: &Report, runs_dir: &Path, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(REPORT_FILE);
    write_atomic(&path, markdown::render(report, &runs_dir.display().to_string()).as_bytes())?;
    let mut paths = vec![path];
    paths.extend(charts::draw_all(report, dir)?);
    Ok(paths)
}

fn finished<'r>(runs: &'r [Run], name: &str, dir: &Path) -> anyhow::Result<&'r Run> {
    let run = runs.iter().find(|r| r.name == name).with_context(|| format!("{} has no {name} run", dir.display()))?;
    ensure!(run.result.is_some(), "the {name} run in {} has not finished", run.dir.display());
    Ok(run)
}

/// Exports `run` as `fitnets export` would; returns the blob and the test set.
fn export_run(run: &Run, args: &ReportArgs) -> anyhow::Result<(Vec<u8>, Dataset)> {
    let options = ExportOptions { calibration: args.calibration, ..Default::default() };
    let (exported, _, splits) = crate::quant::export::export_run(&run.dir, &args.data.spec(), None, &options)?;
    Ok((exported.blob, splits.test))
}

/// Checks that `blob` can have come from `run`: the same network name and the same input
/// normalization (the pixel table).
fn check_origin(blob: &[u8], path: &Path, run: &Run) -> anyhow::Result<()> {
    let model = Model::from_bytes(blob).with_context(|| format!("{} is not a valid model", path.display()))?;
    ensure!(
        model.name() == run.info.config.name,
        "{} holds {}, the {} run trained {}",
        path.display(),
        model.name(),
        run.name,
        run.info.config.name
    );
    let norm = &run.info.data.normalization;
    let table = pixel_table(&norm.mean, &norm.std, model.input_quant());
    let same = table.len() == model.pixel_table().0.len()
        && table.iter().zip(model.pixel_table().0).all(|(&t, &b)| t as u8 == b);
    ensure!(same, "{} was not exported from {}: its input normalization differs", path.display(), run.dir.display());
    Ok(())
}
