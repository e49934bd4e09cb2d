//! `cargo xtask`: fitnets' one entry point for everything that is not a plain
//! `cargo test`. One module per subcommand; CI calls the same commands a person does.

mod bench;
mod boards;
mod calibrate;
mod check;
mod classify;
mod cycles;
mod demo;
mod elf;
mod firmware;
mod fits;
mod flash;
mod imports;
mod link;
mod logs;
mod profile;
mod prove;
mod qemu;
mod serial;
mod size;
mod storm;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fitnets' tasks beyond `cargo test`: the demo, every check CI runs, the firmware on
/// emulated and real boards, its sizes, benchmarks and the cost model.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The main job: distils the FitNet (scratch, KD, hints) on Fashion-MNIST from the
    /// teacher the repository ships (or one trained here with --train-teacher), exports
    /// the best student to int8, runs it on an emulated Cortex-M4 against the host and
    /// prints what distillation bought: parameters, MACs, flash, RAM, accuracy at each
    /// stage.
    Demo(demo::DemoArgs),
    /// Everything CI checks: formatting, clippy, all tests, rustdoc, the structure of the
    /// imports, the no_std thumb builds, every board's firmware, its recorded sizes and
    /// sizing rules, the self-test and kernel check on each emulated board, the serve
    /// check and a classify check.
    Test(check::TestArgs),
    /// Runs the firmware under QEMU and decodes its logs (`serve` puts the UART on
    /// 127.0.0.1:PORT; `kernels` runs 64 random models against the host's logits).
    Qemu(qemu::QemuArgs),
    /// Flash and RAM of the firmware on every board, against the board's memory, and what
    /// each program takes besides the model.
    Size(size::SizeArgs),
    /// Flashes a real board with probe-rs and streams its logs.
    Flash(flash::FlashArgs),
    /// The serve check: malformed frames, then Info and images compared with the host bit
    /// for bit.
    Storm(storm::StormArgs),
    /// Exact instructions per step of one inference under QEMU, per MAC, against CMSIS-NN's
    /// kernels for the same layers.
    Bench(bench::BenchArgs),
    /// `fitnets fit ARGS` (the student that fits a chip), then `prove` on its --runs.
    Fit {
        /// The arguments of `fitnets fit`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Builds the serve firmware for the fitted board with DIR/student.fnet, measures its
    /// flash and RAM, counts one inference under QEMU and writes the proof into
    /// DIR/fit.md.
    Prove(prove::ProveArgs),
    /// Fits the cost model `fitnets fit` prices students with, from exact instruction
    /// counts of random models on the emulated Cortex-M4 and M0+.
    Calibrate(calibrate::CalibrateArgs),
    /// Classifies IDX images or pictures on the serve firmware (under QEMU or on a
    /// flashed board's serial device) and compares every class and logit with the host's.
    Classify(classify::ClassifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Test(args) => check::run(args),
        Command::Qemu(args) => qemu::run(args).and_then(|bench| match bench {
            Some(qemu::Bench { board, model }) => {
                bench::show(&board, model.as_deref(), false, bench::Record::default())
            }
            None => Ok(()),
        }),
        Command::Size(args) => size::run(args),
        Command::Flash(args) => flash::run(args),
        Command::Storm(args) => storm::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fit { args } => prove::fit(args),
        Command::Prove(args) => prove::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Classify(args) => classify::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
