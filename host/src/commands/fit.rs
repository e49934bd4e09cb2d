//! `fitnets fit`: the student that fits a named chip, found by search, then exported
//! ([`crate::fit`]).

use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};
use clap::Args;

use crate::cli::{DEFAULT_EPOCHS, DataArgs, DeviceArgs, ScheduleArgs};
use crate::fit::Search;
use crate::fit::target::{BoardKey, Core, Target};

/// Arguments of `fitnets fit`.
#[derive(Args, Clone, Debug)]
pub struct FitArgs {
    /// The trained teacher's run directory (its hint layer guides the students).
    #[arg(long, value_name = "DIR")]
    pub teacher: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
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

/// The target's options of `fitnets fit`.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// The board to fit; or give --flash-kb, --ram-kb, --mhz and --core.
    #[arg(long, value_enum, conflicts_with_all = ["flash_kb", "ram_kb", "mhz", "core"])]
    pub board: Option<BoardKey>,
    /// Flash the firmware may use, in KiB.
    #[arg(long, value_name = "KB", requires_all = ["ram_kb", "mhz", "core"])]
    pub flash_kb: Option<u64>,
    /// RAM the firmware may use, in KiB.
    #[arg(long, value_name = "KB", requires_all = ["flash_kb", "mhz", "core"])]
    pub ram_kb: Option<u64>,
    /// The core's clock, in MHz.
    #[arg(long, value_name = "MHZ", requires_all = ["flash_kb", "ram_kb", "core"])]
    pub mhz: Option<u32>,
    /// The core.
    #[arg(long, value_enum, requires_all = ["flash_kb", "ram_kb", "mhz"])]
    pub core: Option<Core>,
    /// Longest estimated time of one inference, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<f64>,
}

impl TargetArgs {
    /// The target, every value checked.
    pub fn target(&self) -> anyhow::Result<Target> {
        let target = match (self.board, self.core) {
            (Some(key), _) => Target::board(key),
            (None, Some(core)) => Target::custom(
                core,
                self.flash_kb.context("--flash-kb")?,
                self.ram_kb.context("--ram-kb")?,
                self.mhz.context("--mhz")?,
            )?,
            (None, None) => bail!("name the chip: --board, or --flash-kb, --ram-kb, --mhz and --core"),
        };
        match self.latency_ms {
            Some(ms) => target.with_latency(ms),
            None => Ok(target),
        }
    }
}

/// `fitnets fit`.
pub fn fit(args: &FitArgs) -> anyhow::Result<()> {
    let target = args.target.target()?;
    // Each rung sets its own epochs: an --epochs would be silently ignored.
    ensure!(
        args.schedule.epochs == DEFAULT_EPOCHS,
        "--epochs {}: fit trains each rung for its own epochs; set them with --first-epochs and --max-epochs",
        args.schedule.epochs
    );
    crate::fit::search::fit(&Search {
        teacher: args.teacher.clone(),
        target,
        candidates: args.candidates,
        eta: args.eta,
        first_epochs: args.first_epochs,
        max_epochs: args.max_epochs,
        macs: args.macs.clone(),
        reference_config: (!args.no_reference).then(|| args.reference_config.clone()),
        dry_run: args.dry_run,
        runs: args.runs.clone(),
        data: args.data.spec(),
        schedule: args.schedule.schedule(),
        compute: args.device.compute(),
    })
}
