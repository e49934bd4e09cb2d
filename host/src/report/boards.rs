//! Does the int8 student fit real chips? Flash: the blob plus the firmware's own code;
//! RAM: the arena, the serve program's buffers and a stack, sized as `firmware/build.rs`
//! sizes them, against named boards' budgets.

use fitnets_shared::{Model, plan};

// The firmware's own sizing rules and its measured allowances: the report counts what
// the build counts.
#[path = "../../../firmware/sizing.rs"]
#[allow(dead_code)]
mod sizing;

/// What `cargo xtask size --update` measured per board and program.
const PROGRAMS: &str = include_str!("../../../firmware/memory/programs.txt");

/// What `cargo xtask bench --update` estimated per core for the default model.
const CYCLES: &str = include_str!("../../../firmware/memory/cycles.txt");

/// Estimated cycles per multiply-accumulate on the core called `key` (`cortex-m4`,
/// `cortex-m0plus`) in `firmware/memory/cycles.txt`: the default FitNet's whole
/// inference, instruction counts exact under QEMU, priced by ARM's published cycles.
pub fn cycles_per_mac(key: &str) -> Option<f64> {
    sizing::parse_cycles(CYCLES).ok()?.into_iter().find(|row| row.core == key).map(|row| row.per_mac())
}

/// Flash the `serve` program's own code takes besides the blob (program, `shared`'s
/// kernels, tables, vector table): the largest of the boards measured in
/// `firmware/memory/programs.txt`. `fitnets report --code-kb` changes it.
pub fn code_bytes() -> u64 {
    serve_allowances().map(|a| a.code).max().unwrap_or(0)
}

/// Static RAM the `serve` program takes besides the model's buffers, the largest of
/// the boards measured.
pub fn static_bytes() -> u64 {
    serve_allowances().map(|a| a.ram).max().unwrap_or(0)
}

fn serve_allowances() -> impl Iterator<Item = sizing::Allowance> {
    // The table is checked by `cargo xtask size --check` and parsed by the firmware's
    // build; a test below parses it here.
    sizing::parse_table(PROGRAMS)
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.program == sizing::Program::Serve)
        .map(|row| row.allowance)
}

/// RAM kept for the stack, as `firmware/build.rs` keeps it (the self-test measured a
/// 1.9 KB peak with the tiny model).
pub const STACK_BYTES: u64 = sizing::STACK_BYTES;

/// What the firmware takes besides the model: a parameter, not a fact of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Firmware {
    /// Flash for the firmware's code, besides the blob ([`code_bytes`] by default).
    pub code_bytes: u64,
    /// Static RAM of the firmware besides the model's buffers ([`static_bytes`] by
    /// default).
    pub static_bytes: u64,
    /// RAM for the stack ([`STACK_BYTES`] by default).
    pub stack_bytes: u64,
    /// Cycles per MAC on a Cortex-M4 and on a Cortex-M0+ ([`cycles_per_mac`] by
    /// default).
    pub m4_cycles_per_mac: Option<f64>,
    pub m0plus_cycles_per_mac: Option<f64>,
}

impl Default for Firmware {
    fn default() -> Firmware {
        Firmware {
            code_bytes: code_bytes(),
            static_bytes: static_bytes(),
            stack_bytes: STACK_BYTES,
            m4_cycles_per_mac: cycles_per_mac("cortex-m4"),
            m0plus_cycles_per_mac: cycles_per_mac("cortex-m0plus"),
        }
    }
}

impl Firmware {
    /// The defaults, with the `serve` program's code and static RAM measured on the
    /// firmware board called `board` (`cargo xtask` names) where the table has it.
    pub fn on(board: &str) -> Firmware {
        let measured = sizing::parse_table(PROGRAMS)
            .unwrap_or_default()
            .into_iter()
            .find(|row| row.program == sizing::Program::Serve && row.board == board);
        match measured {
            Some(row) => {
                Firmware { code_bytes: row.allowance.code, static_bytes: row.allowance.ram, ..Firmware::default() }
            }
            None => Firmware::default(),
        }
    }

    /// Cycles per MAC on the core called `key` in `firmware/memory/cycles.txt`.
    pub fn cycles_per_mac(&self, key: &str) -> Option<f64> {
        match key {
            "cortex-m4" => self.m4_cycles_per_mac,
            "cortex-m0plus" => self.m0plus_cycles_per_mac,
            _ => None,
        }
    }
}

/// A board's budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The chip (and board, where it decides the flash).
    pub name: &'static str,
    /// Core and clock.
    pub core: &'static str,
    /// Flash the firmware may use, in bytes.
    pub flash_bytes: u64,
    /// RAM the firmware may use, in bytes.
    pub ram_bytes: u64,
    /// What is counted and what is left out.
    pub note: &'static str,
    /// Its core in `firmware/memory/cycles.txt`, and its clock: for the latency.
    pub cycles_key: &'static str,
    pub mhz: u32,
}

const KB: u64 = 1024;

/// The boards the report measures against.
pub const BOARDS: [Board; 4] = [
    Board {
        name: "nRF52840",
        core: "Cortex-M4F, 64 MHz",
        flash_bytes: 1024 * KB,
        ram_bytes: 256 * KB,
        note: "the whole chip, as the firmware's memory.x: no SoftDevice (a BLE stack would take part of both)",
        cycles_key: "cortex-m4",
        mhz: 64,
    },
    Board {
        name: "STM32F405",
        core: "Cortex-M4F, 168 MHz",
        flash_bytes: 1024 * KB,
        ram_bytes: 128 * KB,
        note: "SRAM1 + SRAM2 only, as the firmware's memory.x: the 64 KB CCM is left out (no DMA reaches it)",
        cycles_key: "cortex-m4",
        mhz: 168,
    },
    Board {
        name: "STM32G071RB",
        core: "Cortex-M0+, 64 MHz",
        flash_bytes: 128 * KB,
        ram_bytes: 36 * KB,
        note: "the smallest budget here; Cortex-M0+ has no DSP instructions (thumbv6m)",
        cycles_key: "cortex-m0plus",
        mhz: 64,
    },
    Board {
        name: "RP2040 (Pico)",
        core: "2x Cortex-M0+, 133 MHz",
        flash_bytes: 2048 * KB,
        ram_bytes: 264 * KB,
        note: "flash is the Pico's 2 MB external QSPI chip, run in place (XIP)",
        cycles_key: "cortex-m0plus",
        mhz: 133,
    },
];

/// What the int8 student needs on a device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Needs {
    /// The blob, stored in flash as it is.
    pub blob_bytes: u64,
    /// The firmware's own code ([`Firmware::code_bytes`]).
    pub code_bytes: u64,
    /// `plan::arena_bytes`.
    pub arena_bytes: u64,
    /// Without fusing conv and maxout (for comparison).
    pub unfused_arena_bytes: u64,
    /// The serve program's receive and transmit frame buffers.
    pub io_bytes: u64,
    /// The serve program's other static data ([`Firmware::static_bytes`]).
    pub static_bytes: u64,
    /// [`Firmware::stack_bytes`].
    pub stack_bytes: u64,
    /// Multiply-accumulates of one inference.
    pub macs: u64,
    /// The firmware's parameters the needs were sized with.
    pub firmware: Firmware,
}

impl Needs {
    /// Sizes everything for `model`, whose blob is `blob_bytes` long.
    pub fn of(model: &Model<'_>, blob_bytes: u64, firmware: Firmware) -> anyhow::Result<Needs> {
        let sizes = sizing::Sizes::of(model);
        Ok(Needs {
            blob_bytes,
            code_bytes: firmware.code_bytes,
            arena_bytes: u64::from(plan::arena_bytes(model)),
            unfused_arena_bytes: u64::from(plan::unfused_arena_bytes(model)),
            io_bytes: sizes.rx_frame + sizes.tx_frame,
            static_bytes: firmware.static_bytes,
            stack_bytes: firmware.stack_bytes,
            macs: super::layers::steps(model)?.iter().map(|s| s.macs).sum(),
            firmware,
        })
    }

    /// Flash: blob and code.
    pub fn flash(&self) -> u64 {
        self.blob_bytes + self.code_bytes
    }

    /// RAM: arena, serve buffers, other static data and stack.
    pub fn ram(&self) -> u64 {
        self.arena_bytes + self.io_bytes + self.static_bytes + self.stack_bytes
    }
}

/// One board against the needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// The board measured against.
    pub board: Board,
    /// Shares of the board's flash and RAM the student takes (1.0 = all of it).
    pub flash_share: f64,
    pub ram_share: f64,
    /// Estimated milliseconds per inference: the student's MACs at the default FitNet's
    /// measured cycles per MAC on this core ([`Firmware::cycles_per_mac`]), at the
    /// board's clock.
    pub latency_ms: Option<f64>,
}

impl Fit {
    /// True when both flash and RAM suffice.
    pub fn fits(&self) -> bool {
        self.flash_share <= 1.0 && self.ram_share <= 1.0
    }
}

/// Every board of `boards` against `needs`.
pub fn fits(needs: &Needs, boards: &[Board]) -> Vec<Fit> {
    boards
        .iter()
        .map(|&board| Fit {
            board,
            flash_share: needs.flash() as f64 / board.flash_bytes as f64,
            ram_share: needs.ram() as f64 / board.ram_bytes as f64,
            latency_ms: needs
                .firmware
                .cycles_per_mac(board.cycles_key)
                .map(|per_mac| needs.macs as f64 * per_mac / (f64::from(board.mhz) * 1000.0)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_allowances_parse() {
        let rows = sizing::parse_table(PROGRAMS).expect("firmware/memory/programs.txt parses");
        assert!(rows.iter().any(|r| r.program == sizing::Program::Serve));
        // The serve program's code is tens of KB on every board measured.
        assert!((20 * 1024..100 * 1024).contains(&code_bytes()), "{}", code_bytes());
    }

    #[test]
    fn every_board_has_a_cycle_figure() {
        for board in BOARDS {
            let per_mac = cycles_per_mac(board.cycles_key).expect("firmware/memory/cycles.txt has the core");
            // Between one and twenty cycles per MAC on every core measured.
            assert!((1.0..20.0).contains(&per_mac), "{}: {per_mac}", board.name);
        }
    }
}
