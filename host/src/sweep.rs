//! `fitnets sweep`: the paper's Figure 2 for our data. For each depth, a student generated
//! at a fixed multiplication budget ([`generate`]) is trained with each method from the
//! same teacher; the table shows where scratch and KD stop training and whether hints
//! still train there.
//!
//! Runs go to `RUNS/depth-D/METHOD/`, each depth's config to `RUNS/depth-D/config.toml`;
//! finished runs are reused and interrupted ones resumed, so a sweep can be trained in
//! pieces.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::compare::{StudentPlan, finished};
use crate::method::{Method, RunInfo};
use crate::model::generate::{self, StudentSpec};
use crate::model::{NetConfig, count};
use crate::train::run_dir::RunDir;

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
    #[arg(long, value_enum, value_delimiter = ',', default_value = "scratch,kd,hints")]
    pub methods: Vec<Method>,
    #[arg(long, value_name = "DIR", default_value = "runs/sweep")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub plan: StudentPlan,
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

/// Generates, trains what is missing, prints and saves the table.
pub fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    let teacher_info: RunInfo =
        RunDir::open(&args.teacher)?.read_json("run.json").context("reading the teacher run")?;
    let teacher_config = teacher_info.config;
    let budget = match args.budget_macs {
        Some(m) => m,
        None => count::totals(&NetConfig::load(&args.reference_config)?)?.1,
    };
    let mut rows = Vec::new();
    for &depth in &args.depths {
        let spec =
            StudentSpec { depth, budget_macs: budget, input: teacher_config.input, classes: teacher_config.classes };
        let (config, text) =
            generate::student(&spec).with_context(|| format!("generating the {depth}-layer student"))?;
        crate::method::regressor_shape(&config, &teacher_config)?;
        let depth_dir = RunDir::create(&args.runs.join(format!("depth-{depth}")))?;
        depth_dir.write("config.toml", text.as_bytes())?;
        for &method in &args.methods {
            let dir = depth_dir.join(method.name());
            if finished(&dir).is_none() {
                eprintln!("sweep: depth {depth}, {}", method.name());
                args.plan.train(&depth_dir.join("config.toml"), method, &args.teacher, &dir, 0)?;
            }
        }
        rows.push(row(&config, depth, &depth_dir, &args.methods)?);
    }
    let table = table(&rows, budget);
    print!("{table}");
    RunDir::create(&args.runs)?.write("table.md", table.as_bytes())?;
    Ok(())
}

fn row(config: &NetConfig, depth: usize, dir: &RunDir, methods: &[Method]) -> anyhow::Result<DepthRow> {
    let (params, macs) = count::totals(config)?;
    let widths = config
        .layers
        .iter()
        .filter_map(|l| match l {
            crate::model::config::LayerConfig::Conv { units, .. } => Some(*units),
            _ => None,
        })
        .collect();
    let accuracies = methods.iter().map(|&m| (m, finished(&dir.join(m.name())).map(|r| r.test_accuracy))).collect();
    Ok(DepthRow { depth, widths, params, macs, accuracies })
}

/// The Markdown table: one row per depth, one accuracy column per method.
pub fn table(rows: &[DepthRow], budget: u64) -> String {
    let mut text = format!("Students at a budget of {:.2}M multiply-accumulates per image.\n\n", budget as f64 / 1e6);
    let Some(first) = rows.first() else { return text };
    text += "| conv layers | units per layer | parameters | MACs |";
    for (method, _) in &first.accuracies {
        let _ = write!(text, " {} |", method.name());
    }
    text += "\n|---:|---|---:|---:|";
    text += &"---:|".repeat(first.accuracies.len());
    text += "\n";
    for row in rows {
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
