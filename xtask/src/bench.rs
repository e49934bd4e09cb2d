//! `cargo xtask bench [--board qemu-m4] [--model F] [--profile]`: exact instructions per
//! step of one inference on an emulated Cortex-M, against CMSIS-NN's kernels for the same
//! layers; with `--profile`, also per function of the firmware ([`crate::profile`]).
//!
//! The firmware's `bench` program runs one inference with markers around each stage
//! (`fitnets_shared::run_traced`) and one inside a single pair of markers. A QEMU plugin
//! of ours (`xtask/insn/region.c`, built here with `gcc`) counts the instructions between
//! the markers, exactly and identically on every run. The marker overhead (an empty
//! region) is subtracted.
//!
//! CMSIS-NN's figures are instructions per MAC (or per output value) measured the same
//! way on `mps2-an386` for CMSIS-NN v7's int8 kernels (arm-none-eabi-gcc 12.2, `-O3
//! -mcpu=cortex-m4`, DSP path). For a step of ours that fuses conv, maxout and pooling,
//! CMSIS-NN runs three kernels: the conv over all pieces, `arm_maximum_s8` for maxout and
//! `arm_max_pool_s8`; its figure is their sum.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use fitnets_shared::ops::Op;
use fitnets_shared::plan::{self, Step, StepOp};
use fitnets_shared::{Model, Shape};

use crate::boards::{self, Board, Transport};
use crate::elf;
use crate::firmware::{self, Mode};
use crate::size::sizing;
use crate::tools::{self, root};
use crate::{cycles, profile, qemu, qemu::Serial, size};

/// CMSIS-NN's conv kernels, instructions per MAC, by layer shape: input `h x w x c` to
/// `out` channels, 3x3 kernel padded 1, stride 1.
const CMSIS_CONV_3X3: [((u16, u16, u16), u16, f64); 6] = [
    ((28, 28, 1), 32, 8.75),
    ((28, 28, 16), 32, 2.14),
    ((14, 14, 16), 32, 2.14),
    ((14, 14, 16), 24, 2.20),
    ((7, 7, 16), 24, 2.23),
    ((7, 7, 12), 24, 2.39),
];
/// `arm_fully_connected_s8`, instructions per MAC, 588 inputs to 10 outputs.
const CMSIS_DENSE_588_10: f64 = 1.98;
/// `arm_max_pool_s8` 2x2/2, instructions per output value, by input `h x w x c`.
const CMSIS_MAX_POOL_2X2: [((u16, u16, u16), f64); 2] = [((28, 28, 16), 43.4), ((14, 14, 16), 43.7)];
/// `arm_maximum_s8` (elementwise max of two tensors: maxout over 2 pieces), per output
/// value, measured on 28x28x16 and used for every size.
const CMSIS_MAXIMUM: f64 = 8.0;
/// CMSIS-NN (commit 99f736a6) built for `-mcpu=cortex-m0plus` at `-O3`, its pure-C
/// path, on `mps2-an385`: the cheapest runnable pipeline of its standard API over the
/// Fashion-MNIST FitNet's steps (`firmware/models/fashion-fitnet.fnet`, real weights),
/// instructions in all. Its per-layer figures are not recorded, so ARMv6-M boards
/// compare the sum of the steps, for that model only.
const CMSIS_M0PLUS_FITNET: f64 = 46_550_000.0;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// qemu-m4, qemu-m7, stm32f4 or qemu-m0plus.
    #[arg(long, default_value = "qemu-m4")]
    pub board: String,
    /// The model blob to measure (the default FitNet when not given).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Also where the instructions go, by function.
    #[arg(long)]
    pub profile: bool,
    /// Record the cycles in firmware/memory/cycles.txt.
    #[arg(long, conflicts_with = "check")]
    pub update: bool,
    /// Fail when that record is out of date.
    #[arg(long)]
    pub check: bool,
}

/// How far a measurement may stray from `firmware/memory/cycles.txt` before `--check`
/// calls the record out of date.
const CYCLES_TOLERANCE: f64 = 0.02;

/// Functions listed by `--profile`.
const PROFILE_ROWS: usize = 16;

/// The subcommand.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let board = boards::find(&args.board)?;
    let model_path = args.model.clone();
    let (profiled, update, check) = (args.profile, args.update, args.check);
    if (update || check) && model_path.is_some() {
        bail!("--update and --check measure the default model; leave out --model");
    }
    if update && check {
        bail!("choose one of --update and --check");
    }
    show(&board, model_path.as_deref(), profiled, Record { update, check })
}

/// What a bench run does with the cycles it measured: nothing, write them into the
/// sizing table (`update`), or compare them with it (`check`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Record {
    pub update: bool,
    pub check: bool,
}

/// Measures `model_path` (the default model when `None`) on `board` and prints its
/// table, its latency and, when `profiled`, where its instructions go.
pub fn show(board: &Board, model_path: Option<&Path>, profiled: bool, record: Record) -> anyhow::Result<()> {
    let Record { update, check } = record;
    let board = *board;
    let qemu_machine = board.qemu()?;
    tools::ensure_program("gcc", "gcc")?;

    let path = model_path.map(Path::to_path_buf).unwrap_or_else(firmware::default_model);
    let blob = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;

    let measured = measure(board, model_path)?;
    let counts = &measured.counts;
    let default_fitnet = std::fs::read(firmware::default_model()).is_ok_and(|d| d == blob);
    let table =
        report(&model, counts, board, qemu_machine.machine, measured.usage, measured.stack.as_deref(), default_fitnet)?;
    print!("{table}");
    let estimate = measured.estimate;
    match &estimate {
        Some(estimate) => print!("{}", latency(estimate)),
        None => println!("\nno cycle model for the Cortex-M7 (dual issue, caches): see qemu-m4 for M4 chips"),
    }
    if update || check {
        let estimate = estimate.with_context(|| format!("{} has no cycle model to record", board.name))?;
        let row = sizing::CyclesRow {
            core: estimate.core.key().to_string(),
            cycles: estimate.cycles,
            macs: total_macs(&model)?,
        };
        record_cycles(row, update)?;
    }
    if profiled {
        let hot = profile::by_function(&measured.elf_bytes, &measured.executed)?;
        let total = counts.last().copied().unwrap_or(0);
        println!("\nwhere the whole inference's {total} instructions go (markers included), by function:\n");
        print!("{}", profile::table(&hot, total, PROFILE_ROWS));
    }
    Ok(())
}

/// One bench run of a model under QEMU.
pub struct Measurement {
    /// The plugin's regions: empty (the markers' overhead), input, each step that moves
    /// data, argmax, whole inference.
    pub counts: Vec<u64>,
    /// The cycle estimate of the whole inference, on cores that have a cycle model.
    pub estimate: Option<cycles::Estimate>,
    /// Static memory of the bench firmware.
    pub usage: size::Usage,
    /// The stack peak the firmware reported.
    pub stack: Option<String>,
    /// The firmware, and its instructions executed per address.
    pub elf_bytes: Vec<u8>,
    pub executed: Vec<(u32, u64)>,
}

/// Builds the bench firmware for `board` with `model` (the default model when `None`)
/// and counts one inference's instructions under QEMU.
pub fn measure(board: Board, model: Option<&Path>) -> anyhow::Result<Measurement> {
    board.qemu()?;
    tools::ensure_program("gcc", "gcc")?;
    let build = firmware::build(board, Transport::Qemu, model, &[Mode::Bench])?;
    let elf = build.elf(Mode::Bench);
    let plugin = plugin()?;
    let elf_bytes = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    let marker =
        |name: &str| elf::symbol(&elf_bytes, name).with_context(|| format!("{} has no symbol `{name}`", elf.display()));
    let (start, end) = (marker("bench_region_start")?, marker("bench_region_end")?);
    let log = build_dir().join(format!("bench-{}.log", board.name));
    let profile_path = build_dir().join(format!("profile-{}.txt", board.name));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&profile_path);
    // The per-address counts: for `--profile`, and for the cycle estimate.
    // The plugin splits its arguments at commas: the path must not hold one.
    let path = profile_path.to_str().filter(|p| !p.contains(',')).context("the profile path holds a comma")?;
    let plugin_args = format!("{},start={start:#x},end={end:#x},profile={path}", plugin.display());
    let extra: Vec<OsString> = vec![
        "-icount".into(),
        "shift=0".into(),
        "-plugin".into(),
        plugin_args.into(),
        "-d".into(),
        "plugin".into(),
        "-D".into(),
        log.clone().into(),
    ];
    let (status, lines) = qemu::start_with(board, &elf, &Serial::Null, &extra)?.wait(qemu::SELFTEST_LIMIT)?;
    if !status.success() {
        bail!("the bench firmware failed on {} ({status})", board.name);
    }
    let counts = regions(&std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?)?;
    let stack = lines.iter().find_map(|l| l.split("stack: ").nth(1)).map(|s| s.trim().to_string());
    let usage = size::usage(&elf)?;
    let text = std::fs::read_to_string(&profile_path)
        .with_context(|| format!("reading {} (written by the plugin)", profile_path.display()))?;
    let executed = profile::parse(&text)?;
    let estimate = match core(board) {
        Some(core) => Some(cycles::estimate(core, &elf_bytes, &executed)?),
        None => None,
    };
    Ok(Measurement { counts, estimate, usage, stack, elf_bytes, executed })
}

/// The core whose cycles `board` is priced with: none for the Cortex-M7.
pub fn core(board: Board) -> Option<cycles::Core> {
    match board.target {
        boards::V6M => Some(cycles::Core::CortexM0Plus),
        _ if board.name == "qemu-m7" => None,
        _ => Some(cycles::Core::CortexM4),
    }
}

/// Writes `row` into `firmware/memory/cycles.txt` (`update`), or fails unless the
/// recorded row for its core is within [`CYCLES_TOLERANCE`] of it.
fn record_cycles(row: sizing::CyclesRow, update: bool) -> anyhow::Result<()> {
    let path = root().join("firmware").join(sizing::CYCLES_TABLE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = sizing::parse_cycles(&text).map_err(anyhow::Error::msg)?;
    let recorded = rows.iter().position(|r| r.core == row.core);
    if update {
        match recorded {
            Some(i) => rows[i] = row,
            None => rows.push(row),
        }
        std::fs::write(&path, sizing::format_cycles(&rows)).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    let Some(old) = recorded.map(|i| &rows[i]) else {
        bail!("{} has no row for {}: run `cargo xtask bench --update` on that core", sizing::CYCLES_TABLE, row.core);
    };
    let drift = row.per_mac() / old.per_mac() - 1.0;
    if old.macs != row.macs || drift.abs() > CYCLES_TOLERANCE {
        bail!(
            "{} is out of date for {}: {} cycles for {} MACs measured, {} for {} recorded ({:+.1} %): run `cargo \
             xtask bench --update` and commit it",
            sizing::CYCLES_TABLE,
            row.core,
            row.cycles,
            row.macs,
            old.cycles,
            old.macs,
            100.0 * drift
        );
    }
    println!("{} is current for {} ({:+.2} %)", sizing::CYCLES_TABLE, row.core, 100.0 * drift);
    Ok(())
}

/// Multiply-accumulates of one inference of `model`.
fn total_macs(model: &Model<'_>) -> anyhow::Result<u64> {
    plan::steps(model).map(|s| s.map(|s| macs(&s)).map_err(|e| anyhow::anyhow!("{e}"))).sum()
}

/// The cycle estimate of the whole inference and its time on each chip of its core.
fn latency(estimate: &cycles::Estimate) -> String {
    let mut out = String::new();
    let core = estimate.core;
    let _ = writeln!(
        out,
        "\nestimated {} cycles of the whole inference, markers included: {} ({:.2} per instruction; {} \
         instructions)",
        core.name(),
        estimate.cycles,
        estimate.cycles as f64 / estimate.instructions.max(1) as f64,
        estimate.instructions
    );
    for (class, count, spent) in estimate.by_class.iter().take(6) {
        let _ = writeln!(out, "  {:<16} {count:>10} instructions {spent:>10} cycles", format!("{class:?}"));
    }
    for chip in cycles::CHIPS.iter().filter(|c| c.core == core) {
        let _ = writeln!(out, "  {} at {} MHz: {:.1} ms per inference", chip.name, chip.mhz, estimate.ms(chip.mhz));
    }
    out.push_str(
        "  (ARM's published cycles per instruction class at zero wait states; flash wait states, bus contention \
         and interrupts not modelled: see xtask/src/cycles.rs)\n",
    );
    out
}

/// Where the plugin and the logs go.
fn build_dir() -> PathBuf {
    root().join("firmware/target/insn")
}

/// Builds the plugin for the installed QEMU's plugin API (when the library for that API
/// is missing or older than its source) and returns its path.
///
/// QEMU loads a plugin only if the API version it was built against lies between the
/// minimum the QEMU accepts and the version the QEMU declares; the plugin is built
/// against the declared one ([`plugin_api`]), read off `qemu-system-arm --version`. The
/// library is named by API version (`libregion-api4.so`), so a QEMU upgrade that changes
/// the API rebuilds it.
fn plugin() -> anyhow::Result<PathBuf> {
    tools::ensure_program("qemu-system-arm", "qemu-system-arm")?;
    let (qemu, version) = qemu_version()?;
    let api = plugin_api(version).with_context(|| format!("QEMU {qemu} (`qemu-system-arm --version`)"))?;
    if version > NEWEST_PLUGIN_API.1 {
        eprintln!(
            "note: QEMU {qemu} is newer than the plugin APIs xtask/insn/region.c declares (up to version {}, QEMU \
             {}.{}); building it against version {api}",
            NEWEST_PLUGIN_API.0, NEWEST_PLUGIN_API.1.0, NEWEST_PLUGIN_API.1.1
        );
    }
    let source = root().join("xtask/insn/region.c");
    let dir = build_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let library = dir.join(format!("libregion-api{api}.so"));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&library) < modified(&source) || !library.is_file() {
        tools::run(gcc_plugin(api).args(["-shared", "-fPIC", "-O2", "-o"]).arg(&library).arg(&source))
            .with_context(|| format!("building the instruction-count plugin for QEMU {qemu} (plugin API {api})"))?;
    }
    Ok(library)
}

/// The newest plugin API version `xtask/insn/region.c` declares, and the first QEMU
/// release that declares it.
const NEWEST_PLUGIN_API: (u32, (u32, u32)) = (6, (11, 0));

/// The plugin API version QEMU `major.minor` declares (`QEMU_PLUGIN_VERSION` in its
/// `qemu-plugin.h`), which `region.c` is built against, and the minimum version that
/// QEMU accepts (`QEMU_PLUGIN_MIN_VERSION`):
///
/// | QEMU        | API | minimum   |
/// |-------------|-----|-----------|
/// | 4.2 - 5.2   | 0   | 0         |
/// | 6.0 - 8.2   | 1   | 0         |
/// | 9.0         | 2   | 2         |
/// | 9.1         | 3   | 2 or more |
/// | 9.2 - 10.0  | 4   | 2 or more |
/// | 10.1 - 10.2 | 5   | 2 or more |
/// | 11.0        | 6   | 2 or more |
///
/// 9.0 raised the minimum to 2 (its API replaced the inline counters on plain pointers
/// with scoreboards); a QEMU always accepts the version it declares, so the plugin is
/// built against that one, whatever the minimum. `region.c` selects its declarations by
/// the version (see its comment). A QEMU newer than 11.0 gets the newest version
/// `region.c` declares, which it accepts unless its minimum has passed it. QEMU before
/// 4.2 has no plugins.
fn plugin_api(version: (u32, u32)) -> anyhow::Result<u32> {
    Ok(match version {
        old if old < (4, 2) => {
            bail!(
                "QEMU before 4.2 has no TCG plugins: install a newer `qemu-system-arm` (apt-get install qemu-system-arm)"
            )
        }
        (4 | 5, _) => 0,
        (6..=8, _) => 1,
        (9, 0) => 2,
        (9, 1) => 3,
        (9, _) | (10, 0) => 4,
        (10, _) => 5,
        _ => NEWEST_PLUGIN_API.0,
    })
}

/// The installed QEMU's version, as printed and as `(major, minor)`, from the line
/// "QEMU emulator version X.Y.Z ..." of `qemu-system-arm --version`.
fn qemu_version() -> anyhow::Result<(String, (u32, u32))> {
    let unreadable = "cannot read the version of `qemu-system-arm`: (re)install the Debian package `qemu-system-arm` \
                      (apt-get install qemu-system-arm)";
    let output = std::process::Command::new("qemu-system-arm").arg("--version").output().context(unreadable)?;
    let text = String::from_utf8_lossy(&output.stdout);
    match parse_qemu_version(&text) {
        Some(found) if output.status.success() => Ok(found),
        _ => bail!("{unreadable}; it printed {:?}", text.trim()),
    }
}

/// `X.Y.Z` and `(X, Y)` from "QEMU emulator version X.Y.Z ...".
fn parse_qemu_version(text: &str) -> Option<(String, (u32, u32))> {
    let shown = text.lines().find_map(|l| l.split("QEMU emulator version ").nth(1))?.split_whitespace().next()?;
    let mut numbers = shown.split('.').map(|n| n.chars().take_while(char::is_ascii_digit).collect::<String>());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((shown.to_string(), (major, minor)))
}

/// `gcc` with the warnings and the plugin API version `region.c` is built with.
fn gcc_plugin(api: u32) -> std::process::Command {
    let mut gcc = std::process::Command::new("gcc");
    gcc.args(["-Wall", &format!("-DFITNETS_QEMU_PLUGIN_API={api}")]);
    gcc
}

/// The plugin's `region N: COUNT insns` lines, in order.
fn regions(log: &str) -> anyhow::Result<Vec<u64>> {
    log.lines()
        .filter_map(|l| l.strip_prefix("region "))
        .map(|rest| {
            let count = rest.split(": ").nth(1).and_then(|c| c.strip_suffix(" insns"));
            count.and_then(|c| c.parse().ok()).with_context(|| format!("unreadable plugin line `region {rest}`"))
        })
        .collect()
}

/// One step's figures.
struct Row {
    name: String,
    macs: u64,
    ours: u64,
    /// CMSIS-NN's instructions for the same layers, if it has figures for their shapes.
    cmsis: Option<f64>,
}

/// The table: one row per stage, totals, RAM.
fn report(
    model: &Model<'_>,
    counts: &[u64],
    board: Board,
    machine: &str,
    usage: size::Usage,
    stack: Option<&str>,
    default_fitnet: bool,
) -> anyhow::Result<String> {
    // CMSIS-NN's per-layer figures are the Cortex-M4's DSP path.
    let v6m = board.target == boards::V6M;
    let steps: Vec<(usize, Step<'_>)> = plan::steps(model)
        .enumerate()
        .map(|(n, s)| s.map(|s| (n, s)))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let counted: Vec<&(usize, Step<'_>)> = steps.iter().filter(|(_, s)| !s.is_alias()).collect();
    // Regions: empty, input, each step that moves data, argmax, whole inference.
    let expected = 1 + 1 + counted.len() + 1 + 1;
    if counts.len() != expected {
        bail!("the plugin reported {} regions, the model has {expected}", counts.len());
    }
    let overhead = counts[0];
    let net = |i: usize| counts[i].saturating_sub(overhead);
    let mut rows = vec![Row { name: "input (pixel table)".into(), macs: 0, ours: net(1), cmsis: None }];
    for (i, (n, step)) in counted.iter().enumerate() {
        rows.push(Row {
            name: format!("{n}: {}", describe(step)),
            macs: macs(step),
            ours: net(2 + i),
            cmsis: if v6m { None } else { cmsis(step) },
        });
    }
    rows.push(Row { name: "argmax".into(), macs: 0, ours: net(2 + counted.len()), cmsis: None });
    let whole = net(expected - 1);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "instructions of one inference of `{}` on {} (QEMU {machine}), exact\n",
        model.name(),
        board.name
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10} {:>12} {:>8} {:>14} {:>8} {:>7}",
        "step", "MACs", "ours", "per MAC", "CMSIS-NN", "per MAC", "ratio"
    );
    let per_mac = |n: f64, macs: u64| if macs > 0 { format!("{:.2}", n / macs as f64) } else { "-".into() };
    for row in &rows {
        let (cmsis, cmsis_mac, ratio) = match row.cmsis {
            Some(c) => (format!("{c:.0}"), per_mac(c, row.macs), format!("{:.2}x", row.ours as f64 / c)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<44} {:>10} {:>12} {:>8} {:>14} {:>8} {:>7}",
            row.name,
            row.macs,
            row.ours,
            per_mac(row.ours as f64, row.macs),
            cmsis,
            cmsis_mac,
            ratio
        );
    }
    let compared: Vec<&Row> = rows.iter().filter(|r| r.cmsis.is_some()).collect();
    let ours: u64 = compared.iter().map(|r| r.ours).sum();
    let theirs: f64 = compared.iter().filter_map(|r| r.cmsis).sum();
    let macs: u64 = rows.iter().map(|r| r.macs).sum();
    let _ = writeln!(out);
    if compared.len() + 2 == rows.len() && !compared.is_empty() {
        let _ = writeln!(
            out,
            "layers with CMSIS-NN figures (all): ours {ours} instructions, CMSIS-NN {theirs:.0}: {:.2}x (goal <= 0.80x)",
            ours as f64 / theirs
        );
    } else if !compared.is_empty() {
        let _ = writeln!(
            out,
            "the {} steps with CMSIS-NN figures: ours {ours}, CMSIS-NN {theirs:.0}: {:.2}x; the others have no \
             CMSIS-NN figure for their shape",
            compared.len(),
            ours as f64 / theirs
        );
    } else if v6m {
        let steps: u64 = rows[1..rows.len() - 1].iter().map(|r| r.ours).sum();
        if default_fitnet {
            let _ = writeln!(
                out,
                "the FitNet's steps: ours {steps} instructions, CMSIS-NN's pure-C path for cortex-m0plus \
                 {CMSIS_M0PLUS_FITNET:.0}: {:.2}x (goal <= 0.80x)",
                steps as f64 / CMSIS_M0PLUS_FITNET
            );
        } else {
            let _ = writeln!(
                out,
                "the steps: ours {steps} instructions; CMSIS-NN's ARMv6-M figure is for the default FitNet only"
            );
        }
    } else {
        let _ = writeln!(out, "CMSIS-NN has no figures for these layer shapes");
    }
    let _ = writeln!(
        out,
        "whole inference: {whole} instructions, {:.2} per MAC ({macs} MACs; marker overhead {overhead} subtracted)",
        whole as f64 / macs.max(1) as f64
    );
    let _ = writeln!(
        out,
        "RAM: arena {} bytes fused ({} layer by layer); static RAM of the bench firmware {} bytes; stack {}",
        plan::arena_bytes(model),
        plan::unfused_arena_bytes(model),
        usage.ram,
        stack.unwrap_or("not reported")
    );
    Ok(out)
}

fn describe(step: &Step<'_>) -> String {
    let shape = |s: Shape| format!("{}x{}x{}", s.height, s.width, s.channels);
    let what = match step.op {
        StepOp::Single(Op::Conv2d(_)) => "conv",
        StepOp::ConvMaxout(..) => "conv + maxout",
        StepOp::ConvMaxoutPool(_, 1, _) => "conv + max pool",
        StepOp::ConvMaxoutPool(..) => "conv + maxout + max pool",
        StepOp::FullyConnectedMaxout(..) => "dense + maxout",
        StepOp::Single(Op::FullyConnected(_)) => "dense",
        StepOp::Single(Op::MaxPool2d(_)) => "max pool",
        StepOp::Single(Op::AvgPool2d(_)) => "avg pool",
        StepOp::Single(Op::Maxout { .. }) => "maxout",
        StepOp::Single(Op::GlobalAvgPool(_)) => "global avg pool",
        StepOp::Single(Op::Flatten) => "flatten",
    };
    format!("{what} {} -> {}", shape(step.input), shape(step.output))
}

/// Multiply-accumulates of a step (conv and dense over every piece).
fn macs(step: &Step<'_>) -> u64 {
    let conv_macs = |conv: &fitnets_shared::ops::Conv2d<'_>| {
        let (h, w) = conv.window.output_size(step.input.height, step.input.width).unwrap_or((0, 0));
        u64::from(h) * u64::from(w) * conv.weights.len() as u64
    };
    match step.op {
        StepOp::Single(Op::Conv2d(conv)) | StepOp::ConvMaxout(conv, _) | StepOp::ConvMaxoutPool(conv, ..) => {
            conv_macs(&conv)
        }
        StepOp::Single(Op::FullyConnected(fc)) | StepOp::FullyConnectedMaxout(fc, _) => fc.weights.len() as u64,
        StepOp::Single(_) => 0,
    }
}

/// CMSIS-NN's instructions for the layers of `step`, when it has figures for all of them.
fn cmsis(step: &Step<'_>) -> Option<f64> {
    let input = (step.input.height, step.input.width, step.input.channels);
    let conv = |conv: &fitnets_shared::ops::Conv2d<'_>| {
        let w = conv.window;
        let three = (w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.pad_top, w.pad_left) == (3, 3, 1, 1, 1, 1);
        let outputs = conv.bias.len() as u16;
        let per_mac = CMSIS_CONV_3X3.iter().find(|(i, o, _)| three && *i == input && *o == outputs)?.2;
        Some(per_mac * macs(step) as f64)
    };
    // Maxout over 2 pieces is one elementwise max per output value.
    let maxout = |pieces: u16, values: usize| (pieces == 2).then_some(CMSIS_MAXIMUM * values as f64);
    match step.op {
        StepOp::ConvMaxout(c, pieces) => Some(conv(&c)? + maxout(pieces, step.output.len())?),
        StepOp::ConvMaxoutPool(c, pieces, pool) => {
            let (h, w) = c.window.output_size(step.input.height, step.input.width)?;
            let units = step.output.channels;
            let pooled = (pool.kernel_h, pool.kernel_w) == (2, 2);
            let per_output = CMSIS_MAX_POOL_2X2.iter().find(|(i, _)| pooled && *i == (h, w, units))?.1;
            let maxout_cost =
                if pieces == 1 { 0.0 } else { maxout(pieces, usize::from(h) * usize::from(w) * usize::from(units))? };
            Some(conv(&c)? + maxout_cost + per_output * step.output.len() as f64)
        }
        StepOp::Single(Op::FullyConnected(fc)) if (fc.weights.len(), step.output.channels) == (5880, 10) => {
            Some(CMSIS_DENSE_588_10 * 5880.0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{NEWEST_PLUGIN_API, gcc_plugin, parse_qemu_version, plugin_api, regions};
    use crate::tools::root;

    #[test]
    fn plugin_lines_parse_in_order() {
        let log = "region 0: 7 insns\nsomething else\nregion 1: 1234 insns\ntotal: 99999 insns\n";
        assert_eq!(regions(log).unwrap(), vec![7, 1234]);
        assert!(regions("region 0: many insns\n").is_err());
    }

    #[test]
    fn qemu_versions_map_to_plugin_apis() {
        let debian12 = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022\n";
        assert_eq!(parse_qemu_version(debian12), Some(("7.2.22".to_string(), (7, 2))));
        assert_eq!(parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1)\n").unwrap().1, (10, 0));
        assert_eq!(parse_qemu_version("QEMU emulator version 9.1.0-rc2\n").unwrap().1, (9, 1));
        assert_eq!(parse_qemu_version("qemu-system-arm: something else\n"), None);
        let apis = [
            ((4, 2), 0),
            ((5, 2), 0),
            ((6, 0), 1),
            ((7, 2), 1),
            ((8, 2), 1),
            ((9, 0), 2),
            ((9, 1), 3),
            ((9, 2), 4),
            ((10, 0), 4),
            ((10, 1), 5),
            ((10, 2), 5),
            ((11, 0), 6),
            ((12, 3), NEWEST_PLUGIN_API.0),
        ];
        for (qemu, api) in apis {
            assert_eq!(plugin_api(qemu).unwrap(), api, "QEMU {qemu:?}");
        }
        assert_eq!(plugin_api(NEWEST_PLUGIN_API.1).unwrap(), NEWEST_PLUGIN_API.0);
        let old = plugin_api((4, 1)).unwrap_err().to_string();
        assert!(old.contains("qemu-system-arm"), "{old}");
    }

    /// The build check of the plugin for every API version, the ones no QEMU here runs
    /// included: `region.c` compiles warning-free for each, and refuses the next.
    #[test]
    fn plugin_compiles_for_every_api() {
        if std::process::Command::new("gcc").arg("--version").output().is_err() {
            println!("skipped: no `gcc` to compile xtask/insn/region.c with");
            return;
        }
        let source = root().join("xtask/insn/region.c");
        let check = |api: u32| {
            let out = gcc_plugin(api).args(["-fsyntax-only", "-Wextra", "-Werror"]).arg(&source).output().unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        for api in 0..=NEWEST_PLUGIN_API.0 {
            let (ok, errors) = check(api);
            assert!(ok, "region.c for plugin API {api}:\n{errors}");
        }
        assert!(!check(NEWEST_PLUGIN_API.0 + 1).0, "region.c accepts an API version it does not declare");
    }
}
