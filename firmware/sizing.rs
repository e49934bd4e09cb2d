//! What each firmware program needs of a board, for one model: the single source of the
//! sizing rules. `firmware/build.rs` includes this file to refuse, before building, a
//! model that a program cannot fit; `cargo xtask size` includes it to measure the
//! allowances recorded in [`TABLE`] and to check that they are current. It is not
//! compiled into the firmware.
//!
//! A program needs, in flash, the blob (and, for the self-test, the expected logits of
//! its test images) plus its own code and constants (measured per board and program:
//! the "code" column); in RAM, the model's arena, the buffers of that
//! program (the self-test and bench one image; serve a request and a response frame),
//! its other static data (measured: the "RAM" column: log buffers, board state) and
//! [`STACK_BYTES`].

use fitnets_shared::wire::{self, ErrorCode, ModelInfo, Request, Response};
use fitnets_shared::{Model, plan};

// The self-test's images: their count sizes its table of expected logits.
#[path = "src/images.rs"]
pub mod images;

/// The measured allowances, relative to `firmware/`.
pub const TABLE: &str = "memory/programs.txt";

/// RAM kept for the stack. The self-test logs the real peak (1.9 KB with the tiny model,
/// most of it defmt and the test loop, not `shared::run`).
pub const STACK_BYTES: u64 = 4 * 1024;

/// How far a measured allowance may fall below the table's before the table counts as
/// out of date (it may never be exceeded): code, RAM.
pub const SLACK: Allowance = Allowance { code: 1024, ram: 256 };

/// What `cargo xtask size --update` records for a measured allowance: a little headroom,
/// so that a change of a few instructions or bytes does not make the table stale, well
/// inside [`SLACK`] (at most 768 bytes of code and 96 of RAM above the measurement).
pub fn with_headroom(measured: Allowance) -> Allowance {
    Allowance { code: (measured.code + 256).div_ceil(512) * 512, ram: (measured.ram + 32).div_ceil(64) * 64 }
}

/// The programs a model is sized for (`kernels` embeds its own random models).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Selftest,
    Serve,
    Bench,
}

impl Program {
    pub const ALL: [Program; 3] = [Program::Selftest, Program::Serve, Program::Bench];

    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Program::Selftest => "selftest",
            Program::Serve => "serve",
            Program::Bench => "bench",
        }
    }

    /// Flash this program takes for the model: the blob, and for the self-test the
    /// host's logits for each test image.
    pub fn model_flash(self, blob_bytes: u64, sizes: &Sizes) -> u64 {
        match self {
            Program::Selftest => blob_bytes + sizes.expected,
            Program::Serve | Program::Bench => blob_bytes,
        }
    }

    /// RAM of the buffers this program sizes from the model.
    pub fn model_ram(self, sizes: &Sizes) -> u64 {
        match self {
            Program::Selftest | Program::Bench => sizes.arena + sizes.input,
            Program::Serve => sizes.arena + sizes.rx_frame + sizes.tx_frame,
        }
    }

    fn parse(name: &str) -> Option<Program> {
        Program::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Every model-sized buffer, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// `plan::arena_bytes`.
    pub arena: u64,
    /// Raw pixels per image.
    pub input: u64,
    /// The longest request frame body the device must accept (a Classify, delimiter
    /// excluded): the `Accumulator`'s buffer.
    pub rx_frame: u64,
    /// The longest response frame, delimiter included: `wire::encode`'s buffer.
    pub tx_frame: u64,
    /// The self-test's expected logits in flash: one per class for each test image
    /// (the per-image rest is in the measured code).
    pub expected: u64,
}

impl Sizes {
    pub fn of(model: &Model<'_>) -> Sizes {
        let input = model.input_shape().len();
        let classes = usize::from(model.classes());
        let pixels = vec![u8::MAX; input];
        let logits = vec![u8::MAX; classes];
        let info = ModelInfo::of(model);
        let request = payload_len(&Request::Classify { pixels: &pixels });
        let response = [
            payload_len(&Response::Info(info)),
            payload_len(&Response::Prediction { class: u16::MAX, logits: &logits }),
            payload_len(&Response::Error(ErrorCode::Internal)),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Sizes {
            arena: u64::from(plan::arena_bytes(model)),
            input: input as u64,
            rx_frame: wire::max_frame_len(request) as u64 - 1,
            tx_frame: wire::max_frame_len(response) as u64,
            expected: (images::COUNT * classes) as u64,
        }
    }
}

/// Bytes of `message` in postcard, counted by its size flavour (nothing is written).
fn payload_len<T: serde::Serialize>(message: &T) -> usize {
    // Only a buffer that runs out fails postcard's serializer, and the size flavour has none.
    postcard::experimental::serialized_size(message).expect("the wire messages hold integers, slices and strings")
}

/// What a program takes besides the model, measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Flash besides the blob: code, constants, `.data`'s initial values, vector table.
    pub code: u64,
    /// Static RAM besides the model-sized buffers.
    pub ram: u64,
}

/// One line of [`TABLE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub board: String,
    pub program: Program,
    pub allowance: Allowance,
}

/// Parses the rows of a table file named `table`: per line whitespace-separated fields,
/// `#` comments and blank lines skipped, each row by `row`, whose `None` is reported with
/// the line and the expected `shape`.
fn parse_rows<T>(text: &str, table: &str, shape: &str, row: impl Fn(&[&str]) -> Option<T>) -> Result<Vec<T>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        rows.push(row(&fields).ok_or_else(|| format!("{table} line {}: `{line}` is not `{shape}`", n + 1))?);
    }
    Ok(rows)
}

/// Parses [`TABLE`]: `board program code ram` per line, `#` comments.
pub fn parse_table(text: &str) -> Result<Vec<Row>, String> {
    parse_rows(text, TABLE, "board program code-bytes ram-bytes", |fields| {
        let [board, program, code, ram] = fields[..] else { return None };
        let allowance = Allowance { code: code.parse().ok()?, ram: ram.parse().ok()? };
        Some(Row { board: board.to_string(), program: Program::parse(program)?, allowance })
    })
}

/// The table's text for `rows`, with its header.
pub fn format_table(rows: &[Row]) -> String {
    let mut text = String::from(
        "# What each firmware program takes besides the model, per board, in bytes: flash\n\
         # (code, constants, .data's initial values; the blob excluded) and static RAM (the\n\
         # arena and the program's model-sized buffers excluded). Measured with the default\n\
         # model by `cargo xtask size --update`, with a little headroom; `cargo xtask test`\n\
         # fails when a build needs more than recorded, or over 1 KiB of code or 256 bytes\n\
         # of RAM less. firmware/build.rs refuses a model that\n\
         # a program cannot fit with these.\n\
         # board      program   code    ram\n",
    );
    for row in rows {
        text += &format!(
            "{:<12} {:<9} {:>6} {:>6}\n",
            row.board,
            row.program.name(),
            row.allowance.code,
            row.allowance.ram
        );
    }
    text
}

/// The `LENGTH` of a `MEMORY` region in a linker script (`4M`, `128K`, decimal or hex).
pub fn region_length(script: &str, region: &str) -> Option<u64> {
    let line = script.lines().find(|l| l.trim_start().starts_with(region) && l.contains("LENGTH"))?;
    let value = line.split("LENGTH").nth(1)?.trim_start_matches([' ', '=']).trim().trim_end_matches(',');
    let (digits, scale) = match value.as_bytes().last()? {
        b'K' => (&value[..value.len() - 1], 1024),
        b'M' => (&value[..value.len() - 1], 1024 * 1024),
        _ => (value, 1),
    };
    let number = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(number * scale)
}

/// A board's memory: the `FLASH` and `RAM` regions of its linker script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub flash: u64,
    pub ram: u64,
}

/// What `program` needs on a board, for a blob of `blob_bytes` with `sizes`.
pub fn needs(program: Program, blob_bytes: u64, sizes: &Sizes, allowance: Allowance) -> Memory {
    Memory {
        flash: program.model_flash(blob_bytes, sizes) + allowance.code,
        ram: program.model_ram(sizes) + allowance.ram + STACK_BYTES,
    }
}

/// Why `model` (a blob of `blob_bytes`, at `path`) does not fit `program` on `board`,
/// or `None` when it fits.
pub fn misfit(
    path: &str,
    board: &str,
    program: Program,
    blob_bytes: u64,
    sizes: &Sizes,
    allowance: Allowance,
    memory: Memory,
) -> Option<String> {
    let need = needs(program, blob_bytes, sizes, allowance);
    if need.flash <= memory.flash && need.ram <= memory.ram {
        return None;
    }
    let model_flash = match program {
        Program::Selftest => format!("{blob_bytes} blob + {} expected logits", sizes.expected),
        Program::Serve | Program::Bench => format!("{blob_bytes} blob"),
    };
    let buffers = match program {
        Program::Selftest | Program::Bench => format!("{} pixels", sizes.input),
        Program::Serve => format!("{} frame buffers", sizes.rx_frame + sizes.tx_frame),
    };
    Some(format!(
        "the model {path} does not fit the {} program on the board {board}: flash {} bytes needed ({model_flash} + \
         {} code), {} available; RAM {} bytes needed ({} arena + {buffers} + {} static + {STACK_BYTES} \
         stack), {} available",
        program.name(),
        need.flash,
        allowance.code,
        memory.flash,
        need.ram,
        sizes.arena,
        allowance.ram,
        memory.ram
    ))
}

/// The measured cycles of one inference of the default model, per core, relative to
/// `firmware/`: written by `cargo xtask bench --update`, read by the host's report to
/// estimate any student's latency by its multiply-accumulates.
pub const CYCLES_TABLE: &str = "memory/cycles.txt";

/// One line of [`CYCLES_TABLE`]: a core (`cortex-m4`, `cortex-m0plus`), the estimated
/// cycles of one inference of the default model on it and that model's MACs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CyclesRow {
    pub core: String,
    pub cycles: u64,
    pub macs: u64,
}

impl CyclesRow {
    /// Cycles per multiply-accumulate.
    pub fn per_mac(&self) -> f64 {
        self.cycles as f64 / self.macs.max(1) as f64
    }
}

/// Parses [`CYCLES_TABLE`]: `core cycles macs` per line, `#` comments.
pub fn parse_cycles(text: &str) -> Result<Vec<CyclesRow>, String> {
    parse_rows(text, CYCLES_TABLE, "core cycles macs", |fields| {
        let [core, cycles, macs] = fields[..] else { return None };
        Some(CyclesRow { core: core.to_string(), cycles: cycles.parse().ok()?, macs: macs.parse().ok()? })
    })
}

/// The text of [`CYCLES_TABLE`] for `rows`, with its header.
pub fn format_cycles(rows: &[CyclesRow]) -> String {
    let mut text = String::from(
        "# Estimated cycles of one inference of the default model (models/fashion-fitnet.fnet) per core,\n\
         # from exact instruction counts under QEMU priced by ARM's published cycles per\n\
         # instruction class (xtask/src/cycles.rs), and the model's MACs. Written by\n\
         # `cargo xtask bench --board qemu-m4|qemu-m0plus --update`; `cargo xtask test` fails when\n\
         # a measurement differs by more than 2 %. The host's report scales them by MACs.\n\
         # core          cycles       macs\n",
    );
    for row in rows {
        text += &format!("{:<14} {:>10} {:>10}\n", row.core, row.cycles, row.macs);
    }
    text
}
