//! The chip a student must fit: a named board, or its budgets given one by one.

use anyhow::{Context as _, bail, ensure};
use clap::{Args, ValueEnum};
use fitnets_shared::cost::Coefficients;
use serde::{Deserialize, Serialize};

use crate::report::boards::{BOARDS, Board};

/// The boards `--board` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoardKey {
    /// nRF52840: Cortex-M4F at 64 MHz, 1 MB flash, 256 KB RAM.
    Nrf52840,
    /// STM32F405: Cortex-M4F at 168 MHz, 1 MB flash, 128 KB RAM (CCM left out).
    Stm32f405,
    /// STM32G071RB: Cortex-M0+ at 64 MHz, 128 KB flash, 36 KB RAM.
    Stm32g071,
    /// RP2040 (Pico): Cortex-M0+ at 133 MHz, 2 MB flash, 264 KB RAM.
    Rp2040,
}

/// The cores `--core` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Core {
    M4,
    M7,
    M0plus,
}

impl Core {
    /// Its name in `firmware/memory/cost.txt` and `cycles.txt`.
    pub fn key(self) -> &'static str {
        match self {
            Core::M4 => "cortex-m4",
            Core::M7 => "cortex-m7",
            Core::M0plus => "cortex-m0plus",
        }
    }

    /// The emulated board (`cargo xtask bench --board`) that counts its instructions.
    pub fn emulated(self) -> &'static str {
        match self {
            Core::M4 => "qemu-m4",
            Core::M7 => "qemu-m7",
            Core::M0plus => "qemu-m0plus",
        }
    }
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

/// The budgets a student must meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The board's name, or `custom` for budgets given one by one.
    pub name: String,
    pub board: Option<BoardKey>,
    pub core: Core,
    pub mhz: u32,
    pub flash_bytes: u64,
    pub ram_bytes: u64,
    pub latency_ms: Option<f64>,
    /// The firmware's board (`cargo xtask` names) built to prove the fit, when it has one.
    pub firmware_board: Option<String>,
    /// What the proof stands on for this target, in a sentence.
    pub note: String,
}

/// The most memory a target may state: 64 MiB of either.
const MAX_KB: u64 = 64 * 1024;

impl TargetArgs {
    /// The target, every value checked.
    pub fn target(&self) -> anyhow::Result<Target> {
        let mut target = match (self.board, self.core) {
            (Some(key), _) => board_target(key),
            (None, Some(core)) => {
                let (flash, ram, mhz) = (
                    self.flash_kb.context("--flash-kb")?,
                    self.ram_kb.context("--ram-kb")?,
                    self.mhz.context("--mhz")?,
                );
                ensure!((1..=MAX_KB).contains(&flash), "--flash-kb {flash}: 1 to {MAX_KB}");
                ensure!((1..=MAX_KB).contains(&ram), "--ram-kb {ram}: 1 to {MAX_KB}");
                ensure!((1..=2000).contains(&mhz), "--mhz {mhz}: 1 to 2000");
                Target {
                    name: "custom".into(),
                    board: None,
                    core,
                    mhz,
                    flash_bytes: flash * 1024,
                    ram_bytes: ram * 1024,
                    latency_ms: None,
                    firmware_board: Some(core.emulated().into()),
                    note: format!(
                        "a {} with {flash} KiB flash, {ram} KiB RAM at {mhz} MHz; the proof builds the emulated {} \
                         board's firmware",
                        core.key(),
                        core.emulated()
                    ),
                }
            }
            (None, None) => bail!("name the chip: --board, or --flash-kb, --ram-kb, --mhz and --core"),
        };
        if let Some(ms) = self.latency_ms {
            ensure!(ms.is_finite() && ms > 0.0 && ms <= 3.6e6, "--latency-ms {ms}: a positive number of milliseconds");
            ensure!(
                target.core != Core::M7,
                "--latency-ms: there is no cost model for the Cortex-M7 (dual issue, caches); leave it out, or fit a \
                 Cortex-M4 budget"
            );
            target.latency_ms = Some(ms);
        }
        Ok(target)
    }
}

fn board_target(key: BoardKey) -> Target {
    let (index, core, firmware, note) = match key {
        BoardKey::Nrf52840 => (0, Core::M4, Some("nrf52840dk"), "built for the nRF52840 DK's firmware"),
        BoardKey::Stm32f405 => (1, Core::M4, Some("stm32f4"), "built for the STM32F405 firmware"),
        BoardKey::Stm32g071 => (2, Core::M0plus, Some("nucleo-g071rb"), "built for the NUCLEO-G071RB's firmware"),
        BoardKey::Rp2040 => (
            3,
            Core::M0plus,
            None,
            "no RP2040 firmware yet: sized by the rules the other boards' builds use, instructions counted on \
             the emulated Cortex-M0+",
        ),
    };
    let board: Board = BOARDS[index];
    Target {
        name: board.name.into(),
        board: Some(key),
        core,
        mhz: board.mhz,
        flash_bytes: board.flash_bytes,
        ram_bytes: board.ram_bytes,
        latency_ms: None,
        firmware_board: firmware.map(String::from),
        note: note.into(),
    }
}

/// The cost table the firmware's calibration wrote.
pub const COST_TABLE: &str = include_str!("../../../firmware/memory/cost.txt");

impl Target {
    /// The fitted cost model of the target's core, `None` where there is none.
    pub fn cost(&self) -> anyhow::Result<Option<Coefficients<'static>>> {
        Coefficients::find(COST_TABLE, self.core.key()).map_err(|e| anyhow::anyhow!("firmware/memory/cost.txt: {e}"))
    }

    /// One line: the name, the core and clock, the budgets.
    pub fn describe(&self) -> String {
        let latency = self.latency_ms.map(|ms| format!(", at most {ms} ms per inference")).unwrap_or_default();
        format!(
            "{} ({} at {} MHz): {} KiB flash, {} KiB RAM{latency}",
            self.name,
            self.core.key(),
            self.mhz,
            self.flash_bytes / 1024,
            self.ram_bytes / 1024
        )
    }
}
