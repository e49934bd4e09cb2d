//! `fitnets sweep`: the paper's Figure 2 for our data ([`crate::sweep`]).

use std::path::PathBuf;

use clap::Args;

use crate::cli::StudentPlanArgs;
use crate::method::Method;
use crate::sweep::DepthSweep;

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
    pub plan: StudentPlanArgs,
}

/// `fitnets sweep`: generates, trains what is missing, prints and saves the table and
/// the chart.
pub fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    crate::sweep::sweep(&DepthSweep {
        teacher: args.teacher.clone(),
        budget_macs: args.budget_macs,
        reference_config: args.reference_config.clone(),
        depths: args.depths.clone(),
        methods: args.methods.clone(),
        runs: args.runs.clone(),
        plan: args.plan.plan(),
    })
}
