//! `cargo xtask flash --board B [--model F] [--mode selftest|serve]`: builds the firmware
//! with RTT logging and runs it on a real board through probe-rs (`probe-rs run`: flash,
//! reset, stream the defmt logs until the program stops).
//!
//! probe-rs is not installed automatically: its command line takes a long build
//! (`cargo install probe-rs-tools`). Without it, or without a probe, this stops with a
//! message that says what it looked for.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::boards::{self, Transport};
use crate::firmware::{self, Mode};
use crate::tools;

/// The subcommand.
/// Arguments of `cargo xtask flash`.
#[derive(clap::Args, Debug)]
pub struct FlashArgs {
    /// stm32f4, nrf52840dk or nucleo-g071rb.
    #[arg(long)]
    pub board: String,
    /// The model blob to embed (the default FitNet when not given).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// selftest, serve or kernels.
    #[arg(long, default_value = "selftest")]
    pub mode: String,
}

pub fn run(args: &FlashArgs) -> anyhow::Result<()> {
    let board = boards::find(&args.board)?;
    let model = args.model.clone();
    let mode = Mode::parse(&args.mode)?;
    let Some(chip) = board.chip else {
        bail!(
            "{} is emulated, not flashed: run `cargo xtask qemu --board {}`; the boards to flash are {}",
            board.name,
            board.name,
            boards::names(|b| b.chip.is_some())
        );
    };

    // Look before building: both checks are quick and the build is not.
    let version = Command::new("probe-rs").arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        bail!(
            "`probe-rs` was not found on the PATH; it flashes the board and shows its logs. \
             Install it with `cargo install probe-rs-tools --locked` and run this again"
        );
    }
    let list = Command::new("probe-rs").arg("list").output().context("running `probe-rs list`")?;
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    if !list.status.success() || !listed.lines().any(|l| l.trim_start().starts_with('[')) {
        bail!(
            "no debug probe found: `probe-rs list` saw no CMSIS-DAP, ST-Link, J-Link, FTDI or ESP USB-JTAG \
             probe on USB. Connect the {} through its debug USB port (for {chip}), and check that this user \
             may open the device (udev rules)",
            board.name
        );
    }

    let build = firmware::build(board, Transport::Rtt, model.as_deref(), &[mode])?;
    let mut cmd = Command::new("probe-rs");
    cmd.args(["run", "--chip", chip]).arg(build.elf(mode));
    tools::run(&mut cmd)
}
