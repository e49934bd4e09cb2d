//! `cargo xtask`: fitnets' one entry point for everything that is not a plain
//! `cargo test`. One module per subcommand; CI calls the same commands a person does.

mod args;
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

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo    [--runs DIR] [--images N] [--train-teacher] [--device cpu|cuda[:N]]
          the main job: distils the FitNet (scratch, KD, hints) on Fashion-MNIST from
          the teacher the repository ships (teachers/fashion-mnist-cnn; or one trained
          here with --train-teacher, about an hour on 2 cores) with a short schedule,
          exports the best student to int8, runs it on an emulated Cortex-M4 against the
          host (N test images, 200) and prints what distillation bought: parameters,
          MACs, flash, RAM, accuracy at each stage
  test    [--only TEXT]
          everything CI checks: formatting, clippy (root and firmware), all tests,
          rustdoc, the no_std thumb builds, every board's firmware, its recorded sizes
          and sizing rules, the self-test on each emulated board, the kernel check
          (random models) on the M4 and M7, the serve check and a classify check (300
          IDX images, then 24 pictures of mixed formats and sizes); `--only` runs the
          checks whose name contains TEXT
  qemu    --board qemu-m4|qemu-m7|stm32f4|qemu-m0plus [--model F] [--mode selftest|serve|bench|kernels]
          [--port N]
          runs the firmware under QEMU and decodes its logs; `serve` puts the UART on
          127.0.0.1:N (7878); `kernels` runs 64 random models against the host's logits
  size    [--model F] [--update | --check]
          flash and RAM of the firmware on every board, against the board's memory, and
          what each program takes besides the model; `--update` records that in
          firmware/memory/programs.txt (the allowances firmware/build.rs sizes models
          with), `--check` fails when the record is out of date
  flash   --board stm32f4|nrf52840dk|nucleo-g071rb [--model F] [--mode selftest|serve|kernels]
          flashes a real board with probe-rs and streams its logs
  storm   [--board B] [--frames N] [--images N] [--model F] [--seed S]
          the serve check: N malformed frames (10000), then Info and N images (100)
          compared with the host bit for bit
  bench   [--board qemu-m4|qemu-m7|stm32f4|qemu-m0plus] [--model F] [--profile]
          exact instructions per step of one inference under QEMU (an instruction-count
          plugin built with gcc), per MAC, against CMSIS-NN's kernels for the same layers,
          with the arena fused and layer by layer
  fit     ARGS
          `fitnets fit ARGS` (the student that fits a chip: search, int8 export, fit.md),
          then `prove` on its --runs directory
  prove   --runs DIR
          builds the serve firmware for the fitted board with DIR/student.fnet (the build
          refuses a model that does not fit), measures its flash and RAM and counts one
          inference's instructions under QEMU; writes the proof into DIR/fit.md
  calibrate [--models N] [--seed S] [--update | --check]
          fits the cost model `fitnets fit` prices students with: exact instructions of N
          random models (48) of the searched family on the emulated Cortex-M4 and M0+,
          least squares over their parts, the error on every 4th model held out;
          `--update` writes firmware/memory/cost.txt
  classify --board B (--qemu | --port PATH [--baud R]) --images IDX|IMAGE|DIR
          [--labels IDX] [--resize stretch|fill|fit] [--count N] [--model F]
          classifies IDX images, or pictures (a file, or a folder: converted as fitnets
          converts them, labelled by subfolders named after the model's labels), on the
          `serve` firmware (under QEMU, or a flashed board's serial device) and compares
          every class and logit with the host's; prints mismatches, accuracy (with
          labels) and images/s
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(rest),
        Some("test") => check::run(rest),
        Some("qemu") => qemu::run(rest).and_then(|bench| match bench {
            Some(qemu::Bench { board, model }) => {
                bench::show(&board, model.as_deref(), false, bench::Record::default())
            }
            None => Ok(()),
        }),
        Some("size") => size::run(rest),
        Some("flash") => flash::run(rest),
        Some("storm") => storm::run(rest),
        Some("classify") => classify::run(rest),
        Some("bench") => bench::run(rest),
        Some("calibrate") => calibrate::run(rest),
        Some("fit") => prove::fit(rest),
        Some("prove") => prove::run(rest),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no command given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
