//! Does the int8 student fit real chips? Flash: the blob plus the firmware's own code;
//! RAM: the arena, the serve program's buffers and a stack, sized as `firmware/build.rs`
//! sizes them, against named boards' budgets.

use anyhow::Context as _;
use fitnets_shared::wire::{self, ErrorCode, ModelInfo, Request, Response};
use fitnets_shared::{Model, plan};
use serde::Serialize;

/// Flash the firmware's own code takes besides the blob: program, `shared`'s kernels,
/// tables, vector table. `cargo xtask size` measured 32 to 36 KB for the two programs
/// (self-test and serve) on the four boards (release profile at opt-level "s", the
/// engine at 2); this takes the top of that range.
/// `fitnets report --code-kb` changes it.
pub const CODE_BYTES: u64 = 36 * 1024;

/// RAM kept for the stack, as `firmware/build.rs` keeps it (the self-test measured a
/// 1.9 KB peak with the tiny model).
pub const STACK_BYTES: u64 = 4 * 1024;

/// What the firmware takes besides the model: a parameter, not a fact of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Firmware {
    /// Flash for the firmware's code, besides the blob ([`CODE_BYTES`] by default).
    pub code_bytes: u64,
    /// RAM for the stack ([`STACK_BYTES`] by default).
    pub stack_bytes: u64,
}

impl Default for Firmware {
    fn default() -> Firmware {
        Firmware { code_bytes: CODE_BYTES, stack_bytes: STACK_BYTES }
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
    },
    Board {
        name: "STM32F405",
        core: "Cortex-M4F, 168 MHz",
        flash_bytes: 1024 * KB,
        ram_bytes: 128 * KB,
        note: "SRAM1 + SRAM2 only, as the firmware's memory.x: the 64 KB CCM is left out (no DMA reaches it)",
    },
    Board {
        name: "STM32G071RB",
        core: "Cortex-M0+, 64 MHz",
        flash_bytes: 128 * KB,
        ram_bytes: 36 * KB,
        note: "the smallest budget here; Cortex-M0+ has no DSP instructions (thumbv6m)",
    },
    Board {
        name: "RP2040 (Pico)",
        core: "2x Cortex-M0+, 133 MHz",
        flash_bytes: 2048 * KB,
        ram_bytes: 264 * KB,
        note: "flash is the Pico's 2 MB external QSPI chip, run in place (XIP)",
    },
];

/// What the int8 student needs on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The blob, stored in flash as it is.
    pub blob_bytes: u64,
    /// The firmware's own code ([`Firmware::code_bytes`]).
    pub code_bytes: u64,
    /// `plan::arena_bytes`.
    pub arena_bytes: u64,
    /// Without fusing conv and maxout (for comparison).
    pub unfused_arena_bytes: u64,
    /// The serve program's receive and transmit frame buffers and one raw image.
    pub io_bytes: u64,
    /// [`Firmware::stack_bytes`].
    pub stack_bytes: u64,
}

impl Needs {
    /// Sizes everything for `model`, whose blob is `blob_bytes` long.
    pub fn of(model: &Model<'_>, blob_bytes: u64, firmware: Firmware) -> anyhow::Result<Needs> {
        Ok(Needs {
            blob_bytes,
            code_bytes: firmware.code_bytes,
            arena_bytes: u64::from(plan::arena_bytes(model)),
            unfused_arena_bytes: u64::from(plan::unfused_arena_bytes(model)),
            io_bytes: io_bytes(model)?,
            stack_bytes: firmware.stack_bytes,
        })
    }

    /// Flash: blob and code.
    pub fn flash(&self) -> u64 {
        self.blob_bytes + self.code_bytes
    }

    /// RAM: arena, serve buffers and stack.
    pub fn ram(&self) -> u64 {
        self.arena_bytes + self.io_bytes + self.stack_bytes
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
        })
        .collect()
}

/// The serve program's buffers: the longest request frame body it accepts (a Classify),
/// the longest response frame, and one image, as `firmware/build.rs` sizes them.
fn io_bytes(model: &Model<'_>) -> anyhow::Result<u64> {
    let input = model.input_shape().len();
    let pixels = vec![u8::MAX; input];
    let logits = vec![u8::MAX; usize::from(model.classes())];
    let info = ModelInfo {
        protocol: wire::PROTOCOL_VERSION,
        name: model.name(),
        input: model.input_shape(),
        classes: model.classes(),
        arena_bytes: plan::arena_bytes(model),
        model_crc: model.crc(),
    };
    let request = payload_len(&Request::Classify { pixels: &pixels })?;
    let response = payload_len(&Response::Info(info))?
        .max(payload_len(&Response::Prediction { class: u16::MAX, logits: &logits })?)
        .max(payload_len(&Response::Error(ErrorCode::Internal))?);
    let rx_frame = wire::max_frame_len(request) - 1;
    let tx_frame = wire::max_frame_len(response);
    Ok((rx_frame + tx_frame + input) as u64)
}

/// Bytes of `message` in postcard.
fn payload_len<T: Serialize>(message: &T) -> anyhow::Result<usize> {
    Ok(postcard::to_allocvec(message).context("sizing a frame of the serve protocol")?.len())
}
