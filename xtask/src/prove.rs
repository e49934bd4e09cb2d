//! `cargo xtask prove --runs DIR`: the proof that the student `fitnets fit` chose fits its
//! chip. The `serve` firmware (what a user flashes) is built for the board with the
//! student's blob, so the build's sizing rules refuse a model that does not fit; its
//! flash and static RAM are read from the linked ELF and checked against the target's
//! budgets with the stack the firmware keeps; one inference's instructions are counted
//! exactly under QEMU on the emulated board of the same core and priced in cycles as
//! `cargo xtask bench` prices them. The section under "## Proof of fit" in `DIR/fit.md`
//! is replaced with the figures, and `DIR/proof.md` holds them alone.
//!
//! `cargo xtask fit ARGS` runs `fitnets fit ARGS` (release build) and then this.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;

use crate::bench;
use crate::boards;
use crate::firmware::{self, Mode};
use crate::size::{self, sizing};
use crate::tools::{self, root};

/// Arguments of `cargo xtask prove`.
#[derive(clap::Args, Debug)]
pub struct ProveArgs {
    /// The runs directory of a `fitnets fit` search.
    #[arg(long, value_name = "DIR")]
    pub runs: PathBuf,
}

/// The heading of the section this replaces in `fit.md` (`fitnets::fit::write`).
const PROOF_HEADING: &str = "## Proof of fit";

/// What `fit.json` says that the proof needs.
#[derive(Deserialize)]
struct Record {
    setting: Setting,
    chosen: Option<Answer>,
    reference: Option<Answer>,
}

#[derive(Deserialize)]
struct Setting {
    target: Target,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    core: String,
    mhz: u32,
    flash_bytes: u64,
    ram_bytes: u64,
    latency_ms: Option<f64>,
    firmware_board: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    blob: PathBuf,
    price: Price,
}

#[derive(Deserialize)]
struct Price {
    flash_bytes: u64,
    ram_bytes: u64,
    instructions: Option<f64>,
    ms: Option<f64>,
}

/// `cargo xtask prove`.
pub fn run(args: &ProveArgs) -> anyhow::Result<()> {
    prove(&args.runs)
}

/// `cargo xtask fit ARGS`: the search, then the proof.
pub fn fit(args: &[String]) -> anyhow::Result<()> {
    let runs = runs_of(args);
    // From the caller's directory, so that the paths in ARGS mean what they say.
    let here = std::env::current_dir().context("reading the current directory")?;
    let mut cmd = tools::cargo(&here);
    cmd.arg("run").arg("--manifest-path").arg(root().join("Cargo.toml"));
    cmd.args(["--release", "-p", "fitnets", "--bin", "fitnets", "--", "fit"]).args(args);
    tools::run(&mut cmd).context("fitnets fit failed")?;
    if args.iter().any(|a| a == "--dry-run") {
        return Ok(());
    }
    prove(&runs)
}

/// The `--runs` of `fitnets fit` arguments, or its default.
fn runs_of(args: &[String]) -> PathBuf {
    let mut runs = PathBuf::from("runs/fit");
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix("--runs=") {
            runs = PathBuf::from(value);
        } else if arg == "--runs"
            && let Some(value) = args.get(i + 1)
        {
            runs = PathBuf::from(value);
        }
    }
    runs
}

fn prove(runs: &Path) -> anyhow::Result<()> {
    let path = runs.join("fit.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run `fitnets fit` into {} first)", path.display(), runs.display()))?;
    let record: Record =
        serde_json::from_str(&text).with_context(|| format!("{} is not a fit record", path.display()))?;
    let target = &record.setting.target;
    // The record is a file a person may edit: its numbers are checked as the host's
    // options are.
    ensure!(
        (1..=2000).contains(&target.mhz) && target.flash_bytes > 0 && target.ram_bytes > 0,
        "{}: the target's clock ({} MHz), flash ({} bytes) and RAM ({} bytes) must be positive (clock at most \
         2000 MHz); run `fitnets fit` again",
        path.display(),
        target.mhz,
        target.flash_bytes,
        target.ram_bytes
    );
    if let Some(ms) = target.latency_ms {
        ensure!(ms.is_finite() && ms > 0.0, "{}: latency_ms {ms} is not a positive number", path.display());
    }
    let chosen = record.chosen.with_context(|| {
        format!("{} has no chosen student yet: the search has not finished (run `fitnets fit` again)", path.display())
    })?;
    let blob = runs.join(&chosen.blob);
    let emulated = match target.core.as_str() {
        "m4" => "qemu-m4",
        "m7" => "qemu-m7",
        "m0plus" => "qemu-m0plus",
        other => bail!("{}: unknown core `{other}`", path.display()),
    };
    let (firmware_board, stand_in) = match &target.firmware_board {
        Some(name) => (boards::find(name)?, false),
        None => (boards::find(emulated)?, true),
    };
    // The build applies the firmware's sizing rules to the board's memory: a model that
    // does not fit stops it with a message naming the model, board and program.
    let build = match firmware::build(firmware_board, firmware_board.default_transport(), Some(&blob), &[Mode::Serve]) {
        Ok(build) => build,
        Err(e) => {
            let md = format!(
                "`cargo xtask prove --runs {}`: the `serve` firmware for `{}` did not build with `{}`:\n\n```text\n\
                 {e:#}\n```\n\n**It does not fit.**\n",
                runs.display(),
                firmware_board.name,
                chosen.blob.display()
            );
            write_proof(runs, &md)?;
            return Err(
                e.context(format!("the chosen student does not fit {} (its firmware does not build)", target.name))
            );
        }
    };
    let usage = size::usage(&build.elf(Mode::Serve))?;
    let memory = size::memory(firmware_board)?;
    let ram_needed = usage.ram + sizing::STACK_BYTES;
    let fits_flash = usage.flash <= target.flash_bytes.min(memory.flash);
    let fits_ram = ram_needed <= target.ram_bytes.min(memory.ram);

    let measured = bench::measure(boards::find(emulated)?, Some(&blob))?;
    let instructions = whole(&measured.counts)?;
    let cycles = measured.estimate.as_ref().map(|e| e.cycles);
    let ms = cycles.map(|c| c as f64 / (f64::from(target.mhz) * 1e3));
    let fits_time = match (target.latency_ms, ms) {
        (Some(limit), Some(ms)) => ms <= limit,
        _ => true,
    };

    let kib = |b: u64| b as f64 / 1024.0;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Measured by `cargo xtask prove --runs {}` on `{}` ({} bytes):\n",
        runs.display(),
        chosen.blob.display(),
        std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0)
    );
    let board_note = if stand_in {
        format!(
            "no firmware for {} yet: built for `{}`, the emulated board of its core, and checked against {}'s \
             budgets",
            target.name, firmware_board.name, target.name
        )
    } else {
        format!("the `serve` firmware built for `{}`, as `cargo xtask flash` would flash it", firmware_board.name)
    };
    let _ = writeln!(md, "| | estimated before training | measured | budget | fits |\n|---|---:|---:|---:|---|");
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let _ = writeln!(
        md,
        "| flash (KiB) | {:.1} | {:.1} | {:.0} | {} |",
        kib(chosen.price.flash_bytes),
        kib(usage.flash),
        kib(target.flash_bytes),
        yes(fits_flash)
    );
    let _ = writeln!(
        md,
        "| RAM (KiB): static + {} KiB stack | {:.1} | {:.1} | {:.0} | {} |",
        sizing::STACK_BYTES / 1024,
        kib(chosen.price.ram_bytes),
        kib(ram_needed),
        kib(target.ram_bytes),
        yes(fits_ram)
    );
    let predicted = chosen.price.instructions.map_or("-".into(), |n| format!("{n:.0}"));
    let _ = writeln!(md, "| instructions per inference | {predicted} | {instructions} | | |");
    let _ = writeln!(
        md,
        "| ms per inference at {} MHz | {} | {} | {} | {} |",
        target.mhz,
        chosen.price.ms.map_or("-".into(), |ms| format!("{ms:.1}")),
        ms.map_or("-".into(), |ms| format!("{ms:.1}")),
        target.latency_ms.map_or("-".into(), |l| format!("{l}")),
        yes(fits_time)
    );
    if let Some(predicted) = chosen.price.instructions {
        let _ = writeln!(
            md,
            "\nThe cost model was off by {:+.2}% on this student's instructions.",
            100.0 * (predicted / instructions as f64 - 1.0)
        );
    }
    // The reference is a second student the cost model never saw: its error too.
    if let Some(reference) = &record.reference
        && let Some(predicted) = reference.price.instructions
    {
        let blob = runs.join(&reference.blob);
        let measured = whole(&bench::measure(boards::find(emulated)?, Some(&blob))?.counts)?;
        let _ = writeln!(
            md,
            "The paper's FitNet (`{}`): {measured} instructions measured, {predicted:.0} estimated ({:+.2}%).",
            reference.blob.display(),
            100.0 * (predicted / measured as f64 - 1.0)
        );
    }
    let _ = writeln!(
        md,
        "\nFirmware: {board_note}; flash and static RAM as linked (the arena and frame buffers are static). \
         Instructions: exact, counted under QEMU on `{emulated}` between the bench program's markers. Cycles: each \
         executed instruction priced by ARM's published cycles for its class at zero wait states \
         (`xtask/src/cycles.rs`){}; flash wait states, bus contention and interrupts are not modelled, so a real \
         chip at this clock may be slower.",
        cycles.map_or(" (no cycle model for this core)".into(), |c| format!(", {c} cycles"))
    );
    let verdict = fits_flash && fits_ram && fits_time;
    let _ = writeln!(md, "\n**{}**", if verdict { "It fits." } else { "It does not fit." });

    write_proof(runs, &md)?;
    print!("{md}");
    ensure!(verdict, "the chosen student does not fit {}", target.name);
    Ok(())
}

/// The whole inference's instructions from the bench's regions (the first is the
/// markers' overhead, the last the whole inference).
fn whole(counts: &[u64]) -> anyhow::Result<u64> {
    match (counts.first(), counts.last()) {
        (Some(overhead), Some(whole)) if counts.len() >= 2 => Ok(whole.saturating_sub(*overhead)),
        _ => bail!("the bench firmware reported {} regions, not the markers and the whole inference", counts.len()),
    }
}

/// Writes `md` as `proof.md` and as the last section of `fit.md`.
fn write_proof(runs: &Path, md: &str) -> anyhow::Result<()> {
    let proof = runs.join("proof.md");
    std::fs::write(&proof, md).with_context(|| format!("writing {}", proof.display()))?;
    let report = runs.join("fit.md");
    let text = std::fs::read_to_string(&report).with_context(|| format!("reading {}", report.display()))?;
    let head = text.split(PROOF_HEADING).next().unwrap_or(&text);
    std::fs::write(&report, format!("{head}{PROOF_HEADING}\n\n{md}"))
        .with_context(|| format!("writing {}", report.display()))?;
    eprintln!("wrote {} and the proof section of {}", proof.display(), report.display());
    Ok(())
}

/// The check `cargo xtask test` runs: the default FitNet as a chosen student, proven on
/// the STM32G071 (it fits: 128 KiB flash, 36 KiB RAM), then refused on a custom
/// Cortex-M0+ with 16 KiB of RAM (its arena alone is 17.4 KiB).
pub fn check() -> anyhow::Result<()> {
    let dir = root().join("target/xtask/prove");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::copy(firmware::default_model(), dir.join("student.fnet")).context("copying the default model")?;
    let record = |name: &str, ram_bytes: u64, board: &str| {
        format!(
            r#"{{"setting": {{"target": {{"name": "{name}", "core": "m0plus", "mhz": 64, "flash_bytes": 131072,
            "ram_bytes": {ram_bytes}, "latency_ms": 1000.0, "firmware_board": {board}}}}},
            "chosen": {{"blob": "student.fnet", "price": {{"flash_bytes": 0, "ram_bytes": 0, "instructions": null,
            "ms": null}}}}}}"#
        )
    };
    let write = |text: String| {
        std::fs::write(dir.join("fit.json"), text)?;
        std::fs::write(dir.join("fit.md"), format!("# a search\n\n{PROOF_HEADING}\n\nNot proven yet.\n"))
    };
    write(record("STM32G071RB", 36 * 1024, "\"nucleo-g071rb\""))?;
    prove(&dir)?;
    let report = std::fs::read_to_string(dir.join("fit.md"))?;
    ensure!(
        report.starts_with("# a search") && report.contains("**It fits.**"),
        "the proof section is wrong:\n{report}"
    );
    ensure!(!report.contains("Not proven yet"), "the old proof section was kept:\n{report}");
    write(record("custom", 16 * 1024, "null"))?;
    let refused = prove(&dir);
    let report = std::fs::read_to_string(dir.join("fit.md"))?;
    ensure!(
        refused.is_err() && report.contains("**It does not fit.**") && report.contains("| **no** |"),
        "a student over the RAM budget was not refused:\n{report}"
    );
    eprintln!("the default FitNet is proven on the STM32G071 and refused with 16 KiB of RAM");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_directory_is_found_in_fit_arguments() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(runs_of(&args(&["--teacher", "t"])), PathBuf::from("runs/fit"));
        assert_eq!(runs_of(&args(&["--runs", "r/x", "--board", "rp2040"])), PathBuf::from("r/x"));
        assert_eq!(runs_of(&args(&["--runs=r/y"])), PathBuf::from("r/y"));
    }
}
