//! `fitnets compare`: the paper's Table 4 for our data ([`crate::compare`]).

use std::path::PathBuf;

use clap::Args;

use crate::cli::{StudentPlanArgs, epoch_count};
use crate::compare::Comparison;

/// Arguments of `fitnets compare`.
#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    /// The teacher's network config.
    #[arg(long, value_name = "TOML", default_value = "configs/mnist-teacher.toml")]
    pub teacher_config: PathBuf,
    /// The student's network config (its `guided` layer for `hints`).
    #[arg(long, value_name = "TOML", default_value = "configs/mnist-fitnet.toml")]
    pub student_config: PathBuf,
    /// Where the runs go: `teacher/`, `scratch/`, `kd/`, `hints/`. Finished runs are
    /// reused, interrupted ones resumed.
    #[arg(long, value_name = "DIR", default_value = "runs/compare")]
    pub runs: PathBuf,
    /// Epochs of the teacher.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = epoch_count)]
    pub teacher_epochs: usize,
    /// Train every student method with this many seeds (`--seed`, `--seed`+1, …), each
    /// seed's three methods from the same initial weights, and report mean ± standard
    /// deviation. The first seed's runs are `scratch/`, `kd/`, `hints/`; seed k's are
    /// `seed-k/scratch/` and so on. One teacher serves all.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: u64,
    #[command(flatten)]
    pub plan: StudentPlanArgs,
}

/// `fitnets compare`: runs what is missing, then prints and saves the table.
pub fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    crate::compare::compare(&Comparison {
        teacher_config: args.teacher_config.clone(),
        student_config: args.student_config.clone(),
        runs: args.runs.clone(),
        teacher_epochs: args.teacher_epochs,
        seeds: args.seeds,
        plan: args.plan.plan(),
    })
}
