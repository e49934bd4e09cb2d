//! `cargo xtask size [--model F] [--update | --check]`: flash and RAM of the firmware on
//! every board, from the ELF, against the board's memory (its `firmware/memory/<board>.x`),
//! and what each program takes besides the model, against the allowances that
//! `firmware/build.rs` sizes models with (`firmware/memory/programs.txt`, the rules in
//! `firmware/sizing.rs`).
//!
//! Flash is code, read-only data and the initial values of `.data`; RAM is `.data` and
//! `.bss` (the arena and frame buffers are static, so they are in it). The stack takes the
//! rest of RAM; the self-test logs its measured peak. `--update` rewrites the allowances
//! from the measurement (with the default model); `--check` fails when a program needs
//! more than its allowance, or [`sizing::SLACK`] less (`cargo xtask test` runs it).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use fitnets_shared::Model;

use crate::boards::{BOARDS, Board};
use crate::elf;
use crate::firmware::{self, Mode};
use crate::tools::root;

// The sizing rules `firmware/build.rs` applies; the fit check itself is the build's.
#[path = "../../firmware/sizing.rs"]
#[allow(dead_code)]
pub mod sizing;

use sizing::{Allowance, Memory, Program, Row, Sizes};

/// Flash and static RAM of one program, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Code, read-only data and `.data`'s initial values.
    pub flash: u64,
    /// `.data` and `.bss`.
    pub ram: u64,
}

/// The firmware program of a sized program.
pub fn mode(program: Program) -> Mode {
    match program {
        Program::Selftest => Mode::Selftest,
        Program::Serve => Mode::Serve,
        Program::Bench => Mode::Bench,
    }
}

/// The subcommand.
/// Arguments of `cargo xtask size`.
#[derive(clap::Args, Debug)]
pub struct SizeArgs {
    /// The model blob to size (the default FitNet when not given).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Record what each program takes in firmware/memory/programs.txt.
    #[arg(long, conflicts_with = "check")]
    pub update: bool,
    /// Fail when that record is out of date.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &SizeArgs) -> anyhow::Result<()> {
    let (model, update, check) = (args.model.clone(), args.update, args.check);
    if (update || check) && model.is_some() {
        bail!("--update and --check measure with the default model; leave out --model");
    }
    if update && check {
        bail!("choose one of --update and --check");
    }
    let blob_path = model.clone().unwrap_or_else(firmware::default_model);
    let blob = std::fs::read(&blob_path).with_context(|| format!("reading {}", blob_path.display()))?;
    let parsed = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", blob_path.display()))?;
    let sizes = Sizes::of(&parsed);
    let mut rows = Vec::new();
    let mut measured = Vec::new();
    for board in BOARDS {
        let programs: Vec<Mode> = Program::ALL.into_iter().map(mode).collect();
        let build = firmware::build(board, board.default_transport(), model.as_deref(), &programs)?;
        let budget = memory(board)?;
        for program in Program::ALL {
            let usage = usage(&build.elf(mode(program)))?;
            let allowance = Allowance {
                code: usage.flash.saturating_sub(program.model_flash(blob.len() as u64, &sizes)),
                ram: usage.ram.saturating_sub(program.model_ram(&sizes)),
            };
            measured.push(Row { board: board.name.to_string(), program, allowance });
            if program != Program::Bench {
                rows.push((board, mode(program), usage, budget));
            }
        }
    }
    println!("{}", table(&rows));
    let path = root().join("firmware").join(sizing::TABLE);
    let recorded =
        sizing::parse_table(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?)
            .map_err(anyhow::Error::msg)?;
    println!("\n{}", allowances(&measured, &recorded));
    if update {
        let recorded: Vec<Row> =
            measured.iter().map(|r| Row { allowance: sizing::with_headroom(r.allowance), ..r.clone() }).collect();
        std::fs::write(&path, sizing::format_table(&recorded))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    } else if check {
        check_current(&measured, &recorded)?;
        println!("{} is current", sizing::TABLE);
    }
    Ok(())
}

/// Measured allowances beside the recorded ones.
fn allowances(measured: &[Row], recorded: &[Row]) -> String {
    let mut out = format!(
        "{:<13} {:<9} {:>10} {:>10} {:>10} {:>10}\n",
        "board", "program", "code", "(recorded)", "own RAM", "(recorded)"
    );
    for row in measured {
        let old = recorded.iter().find(|r| r.board == row.board && r.program == row.program);
        let show = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        out += &format!(
            "{:<13} {:<9} {:>10} {:>10} {:>10} {:>10}\n",
            row.board,
            row.program.name(),
            row.allowance.code,
            show(old.map(|r| r.allowance.code)),
            row.allowance.ram,
            show(old.map(|r| r.allowance.ram))
        );
    }
    out.push_str("code: flash besides the blob; own RAM: static RAM besides the arena and the model-sized buffers");
    out
}

/// Fails unless every measured allowance is within [`sizing::SLACK`] below the
/// recorded one (never above: the build's check would then pass models that do not fit).
fn check_current(measured: &[Row], recorded: &[Row]) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for row in measured {
        let Some(old) = recorded.iter().find(|r| r.board == row.board && r.program == row.program) else {
            stale.push(format!("{} {}: not recorded", row.board, row.program.name()));
            continue;
        };
        for (what, now, then, slack) in [
            ("code", row.allowance.code, old.allowance.code, sizing::SLACK.code),
            ("RAM", row.allowance.ram, old.allowance.ram, sizing::SLACK.ram),
        ] {
            if now > then || then - now > slack {
                stale.push(format!(
                    "{} {}: {what} {now} bytes measured, {then} recorded",
                    row.board,
                    row.program.name()
                ));
            }
        }
    }
    if !stale.is_empty() {
        bail!("{} is out of date ({}): run `cargo xtask size --update` and commit it", sizing::TABLE, stale.join("; "));
    }
    Ok(())
}

/// The report, one line per board and program.
pub fn table(rows: &[(Board, Mode, Usage, Memory)]) -> String {
    let mut out =
        format!("{:<13} {:<9} {:>30} {:>30}\n", "board", "program", "flash used / budget", "RAM used / budget");
    for (board, mode, usage, budget) in rows {
        let cell = |used: u64, total: u64| {
            format!("{} / {} ({:.1}%)", kib(used), kib(total), 100.0 * used as f64 / total as f64)
        };
        out.push_str(&format!(
            "{:<13} {:<9} {:>30} {:>30}\n",
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
pub fn memory(board: Board) -> anyhow::Result<Memory> {
    let path = root().join("firmware/memory").join(format!("{}.x", board.name));
    let script = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let length = |region: &str| {
        sizing::region_length(&script, region).with_context(|| format!("{}: no LENGTH for {region}", path.display()))
    };
    Ok(Memory { flash: length("FLASH")?, ram: length("RAM")? })
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

#[cfg(test)]
mod tests {
    use super::sizing::*;

    const SIZES: Sizes = Sizes { arena: 60_000, input: 40_000, rx_frame: 40_170, tx_frame: 60, expected: 80 };
    const MEMORY: Memory = Memory { flash: 1024 * 1024, ram: 108 * 1024 };
    const ALLOWANCE: Allowance = Allowance { code: 34_000, ram: 25 };

    #[test]
    fn each_program_is_charged_its_own_buffers() {
        // 60,000 + 40,000 + 25 + 4,096 fits 110,592 bytes; serve's frames add 230 more,
        // which still fit; every buffer together (144,326) would not.
        assert_eq!(misfit("m.fnet", "b", Program::Selftest, 500_000, &SIZES, ALLOWANCE, MEMORY), None);
        assert_eq!(misfit("m.fnet", "b", Program::Serve, 500_000, &SIZES, ALLOWANCE, MEMORY), None);
        let tight = Memory { ram: 60_000 + 40_000 + 25 + STACK_BYTES + 100, ..MEMORY };
        assert_eq!(misfit("m.fnet", "b", Program::Selftest, 500_000, &SIZES, ALLOWANCE, tight), None);
        let why = misfit("m.fnet", "b", Program::Serve, 500_000, &SIZES, ALLOWANCE, tight).expect("serve does not fit");
        assert!(why.contains("m.fnet") && why.contains("the serve program on the board b"), "{why}");
        assert!(why.contains("40230 frame buffers"), "{why}");
    }

    #[test]
    fn flash_counts_the_blob_the_code_and_the_selftest_table() {
        let blob = MEMORY.flash - ALLOWANCE.code;
        assert_eq!(misfit("m.fnet", "b", Program::Serve, blob, &SIZES, ALLOWANCE, MEMORY), None);
        let why = misfit("m.fnet", "b", Program::Selftest, blob, &SIZES, ALLOWANCE, MEMORY).expect("table too");
        assert!(why.contains("80 expected logits"), "{why}");
        assert!(misfit("m.fnet", "b", Program::Bench, blob + 1, &SIZES, ALLOWANCE, MEMORY).is_some());
    }

    #[test]
    fn the_table_round_trips_and_names_a_bad_line() {
        let rows = vec![
            Row { board: "qemu-m4".into(), program: Program::Serve, allowance: Allowance { code: 34_821, ram: 21 } },
            Row { board: "nrf52840dk".into(), program: Program::Bench, allowance: Allowance { code: 1, ram: 2 } },
        ];
        assert_eq!(parse_table(&format_table(&rows)), Ok(rows));
        let error = parse_table("# header\nqemu-m4 serve 12\n").unwrap_err();
        assert!(error.contains("line 2") && error.contains("qemu-m4 serve 12"), "{error}");
        assert!(parse_table("qemu-m4 flash 1 2").is_err());
        assert!(parse_table("qemu-m4 serve 1 -2").is_err());
        let cycles = vec![CyclesRow { core: "cortex-m4".into(), cycles: 14_319_726, macs: 5_947_032 }];
        assert_eq!(parse_cycles(&format_cycles(&cycles)), Ok(cycles));
        let error = parse_cycles("cortex-m4 12 x").unwrap_err();
        assert!(error.contains("line 1") && error.contains("core cycles macs"), "{error}");
    }

    #[test]
    fn headroom_stays_inside_the_slack() {
        for code in [0, 1, 255, 256, 257, 31_565, 34_821, 100_000] {
            for ram in [0, 1, 21, 31, 32, 33, 1_165] {
                let kept = with_headroom(Allowance { code, ram });
                assert!(kept.code >= code + 256 && kept.code - code <= SLACK.code, "{code} -> {}", kept.code);
                assert!(kept.ram >= ram + 32 && kept.ram - ram <= SLACK.ram, "{ram} -> {}", kept.ram);
            }
        }
    }

    #[test]
    fn frames_of_an_image_over_a_mebibyte_are_sized() {
        use fitnets_shared::format::encode::encode;
        use fitnets_shared::ops::Window;
        use fitnets_tests::Arch;
        let arch = [Arch::Conv { window: Window::valid(8, 8, 8, 8), outputs: 2 }, Arch::GlobalAvgPool];
        let spec = fitnets_tests::model("big", fitnets_shared::Shape::new(1024, 1100, 1), &arch, 2, 3);
        let blob = encode(&spec).unwrap();
        let sizes = Sizes::of(&fitnets_shared::Model::from_bytes(&blob).unwrap());
        assert_eq!(sizes.input, 1024 * 1100);
        assert!(sizes.rx_frame > sizes.input && sizes.rx_frame < sizes.input + sizes.input / 200, "{sizes:?}");
    }

    #[test]
    fn region_lengths_in_each_notation() {
        let script = "MEMORY\n{\n  FLASH : ORIGIN = 0x0, LENGTH = 1024K\n  RAM : ORIGIN = 0x2, LENGTH = 0x8000\n}\n";
        assert_eq!(region_length(script, "FLASH"), Some(1024 * 1024));
        assert_eq!(region_length(script, "RAM"), Some(0x8000));
        assert_eq!(region_length("RAM : ORIGIN = 0, LENGTH = 4M", "RAM"), Some(4 << 20));
        assert_eq!(region_length(script, "CCM"), None);
    }
}
