//! `cargo xtask size [--model F]`: flash and RAM of the firmware on every board, from the
//! ELF, against the board's memory (its `firmware/memory/<board>.x`).
//!
//! Flash is code, read-only data and the initial values of `.data`; RAM is `.data` and
//! `.bss` (the arena and frame buffers are static, so they are in it). The stack takes the
//! rest of RAM; the self-test logs its measured peak.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::args::Args;
use crate::boards::{BOARDS, Board};
use crate::elf;
use crate::firmware::{self, Mode};
use crate::tools::root;

/// Flash and static RAM of one program, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Code, read-only data and `.data`'s initial values.
    pub flash: u64,
    /// `.data` and `.bss`.
    pub ram: u64,
}

/// A board's memory, from its linker script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The `FLASH` region.
    pub flash: u64,
    /// The `RAM` region.
    pub ram: u64,
}

/// The subcommand.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut args = Args::new("size", args);
    let model = args.value("--model")?.map(PathBuf::from);
    args.finish()?;
    let mut rows = Vec::new();
    for board in BOARDS {
        let build = firmware::build(board, board.default_transport(), model.as_deref())?;
        let budget = budget(board)?;
        for mode in [Mode::Selftest, Mode::Serve] {
            rows.push((board, mode, usage(&build.elf(mode))?, budget));
        }
    }
    println!("{}", table(&rows));
    Ok(())
}

/// The report, one line per board and program.
pub fn table(rows: &[(Board, Mode, Usage, Budget)]) -> String {
    let mut out =
        format!("{:<11} {:<9} {:>30} {:>30}\n", "board", "program", "flash used / budget", "RAM used / budget");
    for (board, mode, usage, budget) in rows {
        let cell = |used: u64, total: u64| {
            format!("{} / {} ({:.1}%)", kib(used), kib(total), 100.0 * used as f64 / total as f64)
        };
        out.push_str(&format!(
            "{:<11} {:<9} {:>30} {:>30}\n",
            board.name,
            mode.bin(),
            cell(usage.flash, budget.flash),
            cell(usage.ram, budget.ram)
        ));
    }
    out.push_str("RAM is static data (arena and frame buffers included); the stack has the rest.");
    out
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// The board's flash and RAM, from the `LENGTH`s of `firmware/memory/<board>.x`.
pub fn budget(board: Board) -> anyhow::Result<Budget> {
    let path = root().join("firmware/memory").join(format!("{}.x", board.name));
    let script = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let length = |region: &str| {
        region_length(&script, region).with_context(|| format!("{}: no LENGTH for {region}", path.display()))
    };
    Ok(Budget { flash: length("FLASH")?, ram: length("RAM")? })
}

/// The `LENGTH` of a `MEMORY` region in a linker script (`4M`, `128K`, decimal or hex).
fn region_length(script: &str, region: &str) -> Option<u64> {
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

/// Flash and static RAM of an ELF32 little-endian file, from its section headers, as
/// `size` counts them: allocated sections take flash, except those without file
/// contents (`.bss`); writable ones take RAM, and `.data` takes both.
pub fn usage(elf: &Path) -> anyhow::Result<Usage> {
    let bytes = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    usage_of(&bytes).with_context(|| format!("{} is not a 32-bit little-endian ELF", elf.display()))
}

fn usage_of(bytes: &[u8]) -> Option<Usage> {
    let mut usage = Usage { flash: 0, ram: 0 };
    for section in elf::sections(bytes)?.iter().filter(|s| s.flags & elf::SHF_ALLOC != 0) {
        if section.kind != elf::SHT_NOBITS {
            usage.flash += section.size as u64;
        }
        if section.flags & elf::SHF_WRITE != 0 {
            usage.ram += section.size as u64;
        }
    }
    Some(usage)
}
