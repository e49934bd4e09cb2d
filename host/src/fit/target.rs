//! The chip a student must fit: a named board, or its budgets given one by one.

use anyhow::ensure;
use clap::ValueEnum;
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

impl Target {
    /// A named board's budgets.
    pub fn board(key: BoardKey) -> Target {
        board_target(key)
    }

    /// Budgets given one by one (`--flash-kb`, `--ram-kb`, `--mhz`, `--core`), each
    /// checked.
    pub fn custom(core: Core, flash_kb: u64, ram_kb: u64, mhz: u32) -> anyhow::Result<Target> {
        ensure!((1..=MAX_KB).contains(&flash_kb), "--flash-kb {flash_kb}: 1 to {MAX_KB}");
        ensure!((1..=MAX_KB).contains(&ram_kb), "--ram-kb {ram_kb}: 1 to {MAX_KB}");
        ensure!((1..=2000).contains(&mhz), "--mhz {mhz}: 1 to 2000");
        Ok(Target {
            name: "custom".into(),
            board: None,
            core,
            mhz,
            flash_bytes: flash_kb * 1024,
            ram_bytes: ram_kb * 1024,
            latency_ms: None,
            firmware_board: Some(core.emulated().into()),
            note: format!(
                "a {} with {flash_kb} KiB flash, {ram_kb} KiB RAM at {mhz} MHz; the proof builds the emulated {} \
                 board's firmware",
                core.key(),
                core.emulated()
            ),
        })
    }

    /// These budgets with a longest time of one inference (`--latency-ms`), checked.
    pub fn with_latency(mut self, ms: f64) -> anyhow::Result<Target> {
        ensure!(ms.is_finite() && ms > 0.0 && ms <= 3.6e6, "--latency-ms {ms}: a positive number of milliseconds");
        ensure!(
            self.core != Core::M7,
            "--latency-ms: there is no cost model for the Cortex-M7 (dual issue, caches); leave it out, or fit a \
             Cortex-M4 budget"
        );
        self.latency_ms = Some(ms);
        Ok(self)
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
