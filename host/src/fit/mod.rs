//! `fitnets fit`: the student that fits a named chip, found by search, then exported.
//!
//! 1. **Space** ([`space`]): students generated from the teacher's input, classes and
//!    hint layer at every depth, piece count, split and budget of the ladder, each
//!    priced before training: flash (blob + the serve program's measured code), RAM
//!    (exact arena + frame buffers + static data + stack) and time (the core's cost
//!    model, calibrated on exact QEMU counts). What does not fit is pruned, with why.
//! 2. **Search** ([`search`]): `--candidates` of the rest, spread over the estimated
//!    time, trained with hints by successive halving: all of them for `--first-epochs`
//!    epochs, the best third (`--eta`) for three times as many, and so on up to
//!    `--max-epochs`, down to one, which is the answer. Candidates are ranked by
//!    validation accuracy; the test set is only reported.
//! 3. **Answer**: the chosen student and the paper's FitNet (`--reference-config`,
//!    trained with the last rung's setting) exported to int8 and tested with shared's
//!    kernels; `fit.json`, `fit.md` and `pareto.svg` written ([`mod@write`]).
//! 4. **Proof** (`cargo xtask prove --runs DIR`, or `cargo xtask fit` for both): the
//!    firmware built for the board with the student (the build fails if it does not
//!    fit), its flash and RAM as linked, and its exact instructions under QEMU.
//!
//! ```text
//! RUNS/setting.json            the search's setting, checked on every call
//! RUNS/candidates/ID/          config.toml, and rung-K/ (the run of rung K)
//! RUNS/reference/              the paper's FitNet: config.toml, run/
//! RUNS/student.fnet            the chosen student, int8
//! RUNS/reference.fnet          the reference, int8
//! RUNS/fit.json, fit.md, pareto.svg
//! ```
//!
//! Every run is reused when finished and resumed when interrupted, so a search killed at
//! any point goes on where it stopped when the same command is given again; a command
//! with another setting is refused, never mixed in.

pub mod pareto;
pub mod record;
pub mod search;
pub mod space;
pub mod target;
pub mod write;

use std::path::PathBuf;

use clap::Args;

use crate::cli::{DataArgs, DeviceArgs, ScheduleArgs};

/// Arguments of `fitnets fit`.
#[derive(Args, Clone, Debug)]
pub struct FitArgs {
    /// The trained teacher's run directory (its hint layer guides the students).
    #[arg(long, value_name = "DIR")]
    pub teacher: PathBuf,
    #[command(flatten)]
    pub target: target::TargetArgs,
    /// Students trained in the first rung of the search.
    #[arg(long, default_value_t = 18, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=500))]
    pub candidates: u16,
    /// Each rung keeps the best 1/eta of the one before and trains it eta times longer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=10))]
    pub eta: u16,
    /// Epochs of each student in the first rung (a quarter of them, at least one, hint
    /// training).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(2..=1000))]
    pub first_epochs: u16,
    /// Most epochs of any rung.
    #[arg(long, default_value_t = 18, value_name = "N", value_parser = clap::value_parser!(u16).range(2..=1000))]
    pub max_epochs: u16,
    /// Multiply-accumulate budgets to generate students at [default: 1/16 to 2 times
    /// the paper's MNIST FitNet per input pixel, in steps of √2].
    #[arg(long, value_delimiter = ',', value_name = "M,…")]
    pub macs: Option<Vec<u64>>,
    /// The paper's FitNet, trained with the last rung's setting for comparison.
    #[arg(long, value_name = "TOML", default_value = "configs/mnist-fitnet.toml")]
    pub reference_config: PathBuf,
    /// Leave the reference out.
    #[arg(long)]
    pub no_reference: bool,
    /// Price and prune the space, write the tables, train nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the runs go, with `setting.json`, `fit.json`, `fit.md`, the blobs.
    #[arg(long, value_name = "DIR", default_value = "runs/fit")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub use search::fit;
