//! `fitnets report`: what distillation bought, side by side with the paper. Reads the
//! runs of a comparison and the int8 student's blob, and writes a Markdown report with
//! SVG charts.
//!
//! ```text
//! runs/compare/{teacher,scratch,kd,hints}/ ─runs─▶ Run (run.json, result.json, metrics.csv)
//! student.fnet (given, or exported here) ──▶ Int8Student (blob, int8 test accuracy)
//!                       ─build─▶ Report ─▶ report.md + accuracy.svg, layers.svg, training.svg
//! runs/sweep/ (optional) ──▶ Sweep ──────────▶ its table in report.md + depth.svg
//! ```
//!
//! - [`runs`]: the run files, and which student is best (by validation accuracy).
//! - [`stages`]: parameters, MACs, bytes, accuracy and savings per stage.
//! - [`layers`]: the int8 student step by step, as `shared`'s plan runs it.
//! - [`boards`]: flash and RAM against named boards, with the firmware's allowance.
//! - [`paper`]: the paper's Tables 4 and 5, the only figures typed in.
//! - [`markdown`], [`charts`]: the report and its pictures.
//! - the subcommand (export on the fly, int8 evaluation, files) is [`crate::commands::report`].
//!
//! Invariant: every figure of ours is computed from the run files and the blob; the
//! paper's figures are labelled as the paper's.

pub mod boards;
pub mod charts;
pub mod layers;
pub mod markdown;
pub mod paper;
pub mod runs;
pub mod stages;

use anyhow::Context as _;
use fitnets_shared::Model;

use boards::{Board, Firmware, Fit, Needs};
use layers::StepRow;
use paper::PaperTable;
use runs::Run;
use stages::{Int8Student, Stage};

use crate::sweep::record::Sweep;

/// Everything the report shows, computed.
#[derive(Clone, Debug)]
pub struct Report {
    /// The runs, teacher first.
    pub runs: Vec<Run>,
    /// The data set, as the runs name it without split suffixes (`fashion-mnist`).
    pub data_name: String,
    /// The classes (the blob's labels, in class order) and, for an image folder, how its
    /// pictures were converted: one sentence.
    pub data_note: String,
    pub int8: Int8Student,
    /// The int8 student's name (its config's).
    pub student_name: String,
    pub stages: Vec<Stage>,
    pub steps: Vec<StepRow>,
    pub firmware: Firmware,
    pub needs: Needs,
    pub fits: Vec<Fit>,
    /// The paper's table for data like ours, if it measured any ([`paper::for_data`]).
    pub paper: Option<&'static PaperTable>,
    /// The comparison over several seeds (mean ± standard deviation and the differences
    /// between methods, as `fitnets compare --seeds` prints it), when the runs hold two
    /// or more complete seeds.
    pub seeds: Option<String>,
    /// A depth sweep to show with the comparison (`fitnets report --sweep`).
    pub sweep: Option<Sweep>,
}

/// The classes of `model` and how the first run's pictures were converted.
fn data_note(model: &Model<'_>, info: Option<&crate::run::RunInfo>) -> String {
    let classes: Vec<String> = model.labels().enumerate().map(|(i, label)| format!("{i} {label}")).collect();
    let mut note = format!("Classes (the blob's labels): {}.", classes.join(", "));
    if let Some((info, images)) = info.and_then(|info| info.data.images.as_ref().map(|images| (info, images))) {
        let [h, w, c] = info.config.input;
        let kind = if c == 1 { "grayscale" } else { "RGB" };
        note +=
            &format!(" Pictures from an image folder, converted to {h}x{w} {kind} with `--resize {}`", images.resize);
        note += &match images.skipped {
            0 => ".".to_string(),
            n => format!("; {n} bad files skipped (`--skip-bad`)."),
        };
    }
    note
}

impl Report {
    /// Computes the report from `runs` (teacher first, as [`runs::load_runs`] returns
    /// them) and the int8 student, against `boards`.
    pub fn build(runs: Vec<Run>, int8: Int8Student, firmware: Firmware, boards: &[Board]) -> anyhow::Result<Report> {
        let model = Model::from_bytes(&int8.blob).context("the int8 blob is not a valid model")?;
        let stages = stages::stages(&runs, &int8)?;
        let steps = layers::steps(&model)?;
        let needs = Needs::of(&model, int8.blob.len() as u64, firmware)?;
        let fits = boards::fits(&needs, boards);
        let data_name = runs.first().map_or_else(String::new, |r| data_set_name(&r.info.data.name));
        let paper = runs.first().and_then(|r| paper::for_data(r.info.config.input, r.info.config.classes));
        let student_name = model.name().to_string();
        let data_note = data_note(&model, runs.first().map(|r| &r.info));
        Ok(Report {
            runs,
            data_name,
            data_note,
            int8,
            student_name,
            stages,
            steps,
            firmware,
            needs,
            fits,
            paper,
            seeds: None,
            sweep: None,
        })
    }
}

/// A data set's name without the `-train`/`-valid` suffixes that splits add.
pub fn data_set_name(name: &str) -> String {
    crate::data::base_name(name)
}
