//! `cargo xtask test`: every check CI runs, all of them, failures collected and
//! reported together at the end.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::bail;

use crate::boards::{BOARDS, Transport};
use crate::tools::{self, FASHION_MNIST, cargo, root};
use crate::{classify, fits, size, storm};
use crate::{firmware, qemu};

/// The targets `shared` must build for without `std` or `alloc`: Cortex-M4F/M7 and the
/// Cortex-M0+ floor (no DSP, no FPU).
const THUMB_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "thumbv6m-none-eabi"];

/// Malformed frames in the test's serve check (`cargo xtask storm` sends the full 10,000).
const TEST_STORM_FRAMES: usize = 300;
/// Images classified after it, each compared with the host bit for bit.
const TEST_STORM_IMAGES: usize = 50;
/// Images in the test's classify check (the full check compares at least 1000).
const TEST_CLASSIFY_IMAGES: usize = 300;

/// One check: a command, or a task run inside xtask.
enum Step {
    Command(Command),
    Task(Box<dyn FnOnce() -> anyhow::Result<()>>),
}

/// The checks, in order, each with a name for the summary.
fn checks() -> Vec<(String, Step)> {
    let root = root();
    let firmware = root.join("firmware");
    let with = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = cargo(dir);
        cmd.args(args);
        Step::Command(cmd)
    };
    // Tests that need Fashion-MNIST (the shipped teacher's) fail rather than skip here:
    // `run` has installed it.
    let mut tests = cargo(&root);
    tests.args(["test", "--workspace"]).env("FITNETS_REQUIRE_DATA", "1");
    let mut doc = cargo(&root);
    doc.args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings");
    let imports_root = root.clone();
    let mut checks = vec![
        ("fmt".to_string(), with(&root, &["fmt", "--all", "--check"])),
        (
            "imports: no two modules use each other, and no library module uses the command layer".into(),
            Step::Task(Box::new(move || crate::imports::check(&imports_root))),
        ),
        ("clippy".into(), with(&root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
        // The CUDA backend must keep compiling where no GPU (or CUDA toolkit) exists.
        (
            "clippy, host with CUDA".into(),
            with(&root, &["clippy", "-p", "fitnets", "--features", "cuda", "--", "-D", "warnings"]),
        ),
        // The host on aarch64 (its kernels take gemm's NEON path there): it must build
        // and stay clean, though no aarch64 machine runs it here.
        ("clippy, host for aarch64".into(), Step::Command(aarch64_clippy())),
        ("tests".into(), Step::Command(tests)),
        ("rustdoc".into(), Step::Command(doc)),
    ];
    for target in THUMB_TARGETS {
        checks.push((
            format!("shared for {target}"),
            with(&root, &["build", "-p", "fitnets-shared", "--target", target]),
        ));
    }
    checks.push((
        "shared for thumbv8m.main-none-eabi, with and without the DSP extension".into(),
        Step::Task(Box::new(v8m_dsp_choice)),
    ));
    checks.push(("firmware fmt".into(), with(&firmware, &["fmt", "--all", "--check"])));
    // Every board's code, and both log transports of the STM32F4, which has both.
    let mut variants: Vec<_> = BOARDS.iter().map(|b| (*b, b.default_transport())).collect();
    variants.push((crate::boards::find("stm32f4").expect("a listed board"), Transport::Rtt));
    for (board, transport) in variants.iter().copied() {
        let features = format!("{},{}", board.name, transport.feature());
        let name = format!("firmware clippy ({features})");
        let args = [
            "clippy",
            "--release",
            "--target",
            board.target,
            "--no-default-features",
            "--features",
            &features,
            "--",
            "-D",
            "warnings",
        ];
        checks.push((name, with(&firmware, &args)));
    }
    for (board, transport) in variants {
        checks.push((
            format!("firmware build ({}, {})", board.name, transport.feature()),
            Step::Task(Box::new(move || firmware::build(board, transport, None, &firmware::Mode::ALL).map(drop))),
        ));
    }
    // The allowances the build sizes models with must match what the builds measure,
    // and the rules must refuse and accept what they should on real builds.
    checks.push((
        "firmware sizes recorded (cargo xtask size --check)".into(),
        Step::Task(Box::new(|| size::run(&size::SizeArgs { model: None, update: false, check: true }))),
    ));
    checks.push(("firmware sizing rules (stm32f4)".into(), Step::Task(Box::new(fits::check))));
    for board in BOARDS.iter().copied().filter(|b| b.qemu.is_some()) {
        checks.push((
            format!("self-test under QEMU ({})", board.name),
            Step::Task(Box::new(move || qemu::selftest(board, None))),
        ));
    }
    // The kernels on random models: the DSP path on the Cortex-M4 (mps2-an386) and the M7
    // (mps2-an500), the plain one on ARMv6-M (mps2-an385).
    for name in ["qemu-m4", "qemu-m7", "qemu-m0plus"] {
        let board = crate::boards::find(name).expect("a listed board");
        checks.push((
            format!("kernel check under QEMU ({name}, random models)"),
            Step::Task(Box::new(move || qemu::kernels(board))),
        ));
    }
    // The kernel check must be able to fail: a bug on purpose in the device's kernels.
    let board = crate::boards::find("qemu-m4").expect("a listed board");
    checks.push((
        "kernel check catches a broken kernel (qemu-m4)".into(),
        Step::Task(Box::new(move || qemu::kernels_catch_a_broken_kernel(board))),
    ));
    // Exact instruction counts, and the recorded cycles the host's report scales.
    for name in ["qemu-m4", "qemu-m0plus"] {
        let board = crate::boards::find(name).expect("a listed board");
        checks.push((
            format!("bench under QEMU ({name}, cycles recorded)"),
            Step::Task(Box::new(move || {
                crate::bench::show(&board, None, false, crate::bench::Record { update: false, check: true })
            })),
        ));
    }
    // The cost model `fitnets fit` prices students with still predicts the kernels.
    checks.push((
        "cost model current (calibrate --check, 16 models)".into(),
        Step::Task(Box::new(|| {
            crate::calibrate::run(&crate::calibrate::CalibrateArgs { models: 16, seed: 1, update: false, check: true })
        })),
    ));
    // The proof of fit: a student that fits is proven, one that does not is refused.
    checks.push(("proof of fit (prove on the default model)".into(), Step::Task(Box::new(crate::prove::check))));
    // Both UART drivers: the MPS2's own and the STM32 HAL's.
    for name in ["qemu-m4", "stm32f4"] {
        let board = crate::boards::find(name).expect("a listed board");
        let config =
            storm::Config { board, frames: TEST_STORM_FRAMES, images: TEST_STORM_IMAGES, model: None, seed: 1 };
        checks.push((
            format!("serve check under QEMU ({name}, {TEST_STORM_FRAMES} malformed frames)"),
            Step::Task(Box::new(move || storm::check(&config))),
        ));
    }
    let board = crate::boards::find("qemu-m4").expect("a listed board");
    checks.push((
        format!("classify under QEMU (qemu-m4, {TEST_CLASSIFY_IMAGES} images)"),
        Step::Task(Box::new(move || classify::test_check(board, TEST_CLASSIFY_IMAGES))),
    ));
    checks
}

/// The subcommand: runs every check (or those whose name contains `--only`'s text),
/// then fails if any failed.
/// `cargo clippy` of the host for `aarch64-unknown-linux-gnu`, in a target folder of its
/// own (checking needs no linker for that target).
fn aarch64_clippy() -> Command {
    let mut cmd = cargo(&root());
    cmd.args([
        "clippy",
        "-p",
        "fitnets",
        "--all-targets",
        "--target",
        "aarch64-unknown-linux-gnu",
        "--",
        "-D",
        "warnings",
    ])
    .env("CARGO_TARGET_DIR", root().join("target/xtask/aarch64"));
    cmd
}

/// `shared` on a Cortex-M33 target (`thumbv8m.main`), where the DSP extension is
/// optional: without it the plain path must build (the DSP path's instructions would not
/// assemble), and with `-C target-feature=+dsp` the DSP path must be the one built, as
/// `shared/build.rs`'s output in each build's own target folder says.
fn v8m_dsp_choice() -> anyhow::Result<()> {
    const TARGET: &str = "thumbv8m.main-none-eabi";
    for (flags, wanted) in [("", false), ("-C target-feature=+dsp", true)] {
        let dir = root().join("target/xtask/v8m").join(if wanted { "dsp" } else { "plain" });
        let mut cmd = cargo(&root());
        cmd.args(["build", "-p", "fitnets-shared", "--target", TARGET]).env("CARGO_TARGET_DIR", &dir);
        if !flags.is_empty() {
            cmd.env("RUSTFLAGS", flags);
        }
        tools::run(&mut cmd)?;
        // The newest run of the build script: its output lists the cfgs it set.
        let builds = dir.join(TARGET).join("debug/build");
        let newest = std::fs::read_dir(&builds)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("fitnets-shared-"))
            .map(|e| e.path().join("output"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max();
        let Some((_, output)) = newest else {
            bail!("no build-script output of fitnets-shared in {}", builds.display())
        };
        let dsp = std::fs::read_to_string(&output)?.lines().any(|l| l.trim() == "cargo::rustc-cfg=fitnets_dsp");
        if dsp != wanted {
            bail!("shared for {TARGET} with flags {flags:?} built the {} path", if dsp { "DSP" } else { "plain" });
        }
        eprintln!("shared for {TARGET} with flags {flags:?}: the {} path", if dsp { "DSP" } else { "plain" });
    }
    Ok(())
}

/// Arguments of `cargo xtask test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Run only the checks whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
}

pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    let only = args.only.clone();
    tools::ensure_rust_targets()?;
    tools::ensure_file(&Path::new(FASHION_MNIST).join("t10k-images-idx3-ubyte.gz"), "dataset-fashion-mnist")?;
    let mut checks = checks();
    if let Some(only) = &only {
        checks.retain(|(name, _)| name.contains(only.as_str()));
        if checks.is_empty() {
            bail!("no check's name contains `{only}`");
        }
    }
    let total = checks.len();
    let mut failed = Vec::new();
    let start = Instant::now();
    for (name, step) in checks {
        eprintln!("\n== {name}");
        let result = match step {
            Step::Command(mut cmd) => tools::run(&mut cmd),
            Step::Task(task) => task(),
        };
        if let Err(e) = result {
            eprintln!("!! {name}: {e:#}");
            failed.push(name);
        }
    }
    eprintln!("\n{} of {} checks passed in {:.0?}", total - failed.len(), total, start.elapsed());
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
