//! `cargo xtask demo`: the main job in one command, for someone who just cloned the
//! repository. It distils the FitNet (scratch, KD and hints) from the teacher the
//! repository ships (`teachers/fashion-mnist-cnn/`, or one trained here with
//! `--train-teacher`) on Fashion-MNIST with a short schedule, exports the best student to
//! int8, runs that blob on an emulated Cortex-M4 against the host bit for bit, measures
//! flash and RAM on the boards, and prints what distillation bought.
//!
//! Every step is an existing command (`fitnets train teacher`, `fitnets compare`,
//! `fitnets report`, the firmware's self-test, `classify`, `size`), so the demo shows
//! nothing those cannot. Finished runs are kept in `--runs` and reused: a second demo
//! only redoes the device steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::boards;
use crate::classify::{self, Device};
use crate::firmware::{self, Mode};
use crate::tools::{self, FASHION_MNIST, root};
use crate::{qemu, size};

/// The students' schedule: a seeded sample of training images, the paper's optimizer
/// and batch otherwise; `docs/experiments.md` ("The demo's schedule") has its 3-seed
/// measurement.
const SCHEDULE: [&str; 6] = ["--subset", "20000", "--student-epochs", "8", "--hint-epochs", "2"];
/// The teacher the repository ships, and the files of its run a student needs.
const SHIPPED_TEACHER: &str = "teachers/fashion-mnist-cnn";
const TEACHER_FILES: [&str; 5] = ["run.json", "config.toml", "model.bin", "result.json", "metrics.csv"];
/// How `--train-teacher` trains one: the shipped teacher's config and schedule (its
/// README has the command).
const TEACHER_CONFIG: &str = "configs/mnist-teacher-cnn.toml";
const TEACHER_SCHEDULE: [&str; 5] = ["--epochs", "45", "--shift", "2", "--hflip"];
/// The boards whose flash and RAM the demo measures: the emulated one it runs on, and
/// three real ones, the smallest a Cortex-M0+ with 128 KB of flash and 36 KB of RAM.
const SIZE_BOARDS: [&str; 4] = ["qemu-m4", "stm32f4", "nrf52840dk", "nucleo-g071rb"];
/// The goals the device must meet with the Fashion-MNIST FitNet.
const FLASH_GOAL: u64 = 64 * 1024;
const RAM_GOAL: u64 = 32 * 1024;

/// Arguments of `cargo xtask demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where the runs and the report go (relative to the repository).
    #[arg(long, default_value = "runs/demo", value_name = "DIR")]
    pub runs: PathBuf,
    /// Test images classified on the emulated Cortex-M4 against the host.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub images: usize,
    /// Train the teacher here (about an hour on 2 cores) instead of using the shipped one.
    #[arg(long)]
    pub train_teacher: bool,
    /// Where fitnets trains: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The subcommand.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let runs = root().join(&args.runs);
    let (images, train_teacher, device) = (args.images, args.train_teacher, args.device.clone());
    if images == 0 {
        bail!("--images must be at least 1");
    }
    let mut demo = Demo { started: Instant::now(), steps: Vec::new() };

    demo.step("checking the toolchain, QEMU and Fashion-MNIST", || {
        tools::ensure_rust_targets()?;
        tools::ensure_program("qemu-system-arm", "qemu-system-arm")?;
        tools::ensure_file(&Path::new(FASHION_MNIST).join("train-images-idx3-ubyte.gz"), "dataset-fashion-mnist")
    })?;
    demo.step("building fitnets (release)", || {
        let mut cmd = tools::cargo(&root());
        cmd.args(["build", "--release", "-p", "fitnets"]);
        // A GPU needs burn's CUDA backend, which the default build leaves out.
        if device != "cpu" {
            cmd.args(["--features", "cuda"]);
        }
        tools::run(&mut cmd)
    })?;
    let fitnets = root().join("target/release/fitnets");
    if runs.join("table.md").is_file() {
        eprintln!("reusing the finished runs in {} (delete it to train again)", runs.display());
    }
    let teacher = runs.join("teacher");
    if train_teacher {
        demo.step("training the teacher (fitnets train teacher, 45 epochs)", || {
            let mut cmd = Command::new(&fitnets);
            cmd.args(["train", "teacher", "--run"]).arg(&teacher).args([
                "--config",
                TEACHER_CONFIG,
                "--device",
                &device,
            ]);
            // An interrupted teacher is continued with the settings it was started with.
            if teacher.join("run.json").is_file() {
                cmd.arg("--resume")
            } else {
                cmd.args(TEACHER_SCHEDULE)
            };
            tools::run(&mut cmd)
        })?;
    } else if !teacher.join("model.bin").is_file() {
        demo.step(&format!("taking the shipped teacher ({SHIPPED_TEACHER})"), || {
            copy_run(&root().join(SHIPPED_TEACHER), &teacher, &TEACHER_FILES)
        })?;
    }
    demo.step("distilling the FitNet three ways: scratch, KD, hints (fitnets compare)", || {
        tools::run(
            Command::new(&fitnets).arg("compare").arg("--runs").arg(&runs).args(SCHEDULE).args(["--device", &device]),
        )
    })?;
    let report = runs.join("report");
    demo.step("exporting the best student to int8 and writing the report (fitnets report)", || {
        tools::run(Command::new(&fitnets).arg("report").arg("--runs").arg(&runs).arg("-o").arg(&report))
    })?;
    let blob = report.join("student.fnet");
    let board = boards::find("qemu-m4")?;
    demo.step("self-test on the emulated Cortex-M4 (qemu-m4)", || qemu::selftest(board, Some(&blob)))?;
    let outcome = demo.step(&format!("classifying {images} test images on the emulated Cortex-M4"), || {
        let config = classify::Config {
            board,
            device: Device::Qemu,
            images: Path::new(FASHION_MNIST).join("t10k-images-idx3-ubyte.gz"),
            labels: Some(Path::new(FASHION_MNIST).join("t10k-labels-idx1-ubyte.gz")),
            count: Some(images),
            model: Some(blob.clone()),
            resize: None,
        };
        let outcome = classify::classify(&config)?;
        outcome.verdict()?;
        Ok(outcome)
    })?;
    let sizes = demo.step("measuring flash and RAM on the boards (cargo xtask size)", || {
        SIZE_BOARDS
            .iter()
            .map(|name| {
                let board = boards::find(name)?;
                let build = firmware::build(board, board.default_transport(), Some(&blob), &[Mode::Serve])?;
                Ok((board, Mode::Serve, size::usage(&build.elf(Mode::Serve))?, size::memory(board)?))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;

    let text = std::fs::read_to_string(report.join("report.md"))
        .with_context(|| format!("reading {}", report.join("report.md").display()))?;
    println!("\n== What distillation bought ({})\n", report.join("report.md").display());
    println!("{}", section(&text, "## Stages"));
    println!("== On the device: the int8 student on the emulated Cortex-M4\n");
    println!("{}", outcome.summary());
    println!("\n== Flash and RAM of the serve firmware with this student\n");
    println!("{}", size::table(&sizes));
    let worst_flash = sizes.iter().map(|(_, _, u, _)| u.flash).max().unwrap_or(0);
    let worst_ram = sizes.iter().map(|(_, _, u, _)| u.ram).max().unwrap_or(0);
    println!(
        "goal: flash <= {} KiB ({}), RAM <= {} KiB ({})",
        FLASH_GOAL / 1024,
        if worst_flash <= FLASH_GOAL { "met" } else { "missed" },
        RAM_GOAL / 1024,
        if worst_ram <= RAM_GOAL { "met" } else { "missed" },
    );
    println!("\n== Time\n");
    for (name, took) in &demo.steps {
        println!("{:>8.1?}  {name}", took);
    }
    println!("{:>8.1?}  in all", demo.started.elapsed());
    println!("\nRuns: {}; report with charts: {}", runs.display(), report.join("report.md").display());
    println!("Flash a board: cargo xtask flash --board stm32f4 --model {}", blob.display());
    println!("\n{}", conclusion(&text, outcome.device_correct()));
    Ok(())
}

/// The demo's last words: the report's sentence of what distillation bought, and what
/// the device made of the test images.
fn conclusion(report: &str, device_correct: Option<(usize, usize)>) -> String {
    const MARK: &str = "**What distillation bought.** ";
    let bought = report.lines().find_map(|l| l.strip_prefix(MARK)).unwrap_or("The report has no verdict.");
    let device = match device_correct {
        Some((correct, images)) => format!(
            " On the emulated Cortex-M4 the int8 student classified {correct} of {images} test images correctly \
             ({:.2}%), the host's answers bit for bit.",
            100.0 * correct as f64 / images.max(1) as f64
        ),
        None => String::new(),
    };
    format!("{bought}{device}")
}

/// Copies the `files` of the run in `from` into a new run directory `to`.
fn copy_run(from: &Path, to: &Path, files: &[&str]) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for file in files {
        std::fs::copy(from.join(file), to.join(file))
            .with_context(|| format!("copying {} to {}", from.join(file).display(), to.display()))?;
    }
    Ok(())
}

/// Steps done so far, with their wall time.
struct Demo {
    started: Instant,
    steps: Vec<(String, Duration)>,
}

impl Demo {
    /// Runs one step under a banner with the time so far.
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        eprintln!("\n== [{:>5.0?} s] {name}", self.started.elapsed().as_secs_f64());
        let start = Instant::now();
        let value = f().with_context(|| format!("demo step failed: {name}"))?;
        self.steps.push((name.to_string(), start.elapsed()));
        Ok(value)
    }
}

/// The part of a Markdown `text` from the heading `title` up to the next `## ` heading.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let Some(start) = text.find(title) else { return "" };
    let body = &text[start..];
    let end = body[title.len()..].find("\n## ").map_or(body.len(), |i| i + title.len() + 1);
    body[..end].trim_end()
}

#[cfg(test)]
mod tests {
    use super::section;

    #[test]
    fn the_conclusion_is_the_reports_sentence_and_the_devices_score() {
        let report = "## Stages\n\n| a |\n\n**What distillation bought.** Here hints won.\n\n## Layers\n";
        assert_eq!(
            super::conclusion(report, Some((176, 200))),
            "Here hints won. On the emulated Cortex-M4 the int8 student classified 176 of 200 test images \
             correctly (88.00%), the host's answers bit for bit."
        );
        assert_eq!(super::conclusion("## Stages\n", None), "The report has no verdict.");
    }

    #[test]
    fn section_stops_at_the_next_heading() {
        let text = "# R\n\n## Stages\n\n| a |\n\nnote\n\n## Layers\n\n| b |\n";
        assert_eq!(section(text, "## Stages"), "## Stages\n\n| a |\n\nnote");
        assert_eq!(section(text, "## Layers"), "## Layers\n\n| b |");
        assert_eq!(section(text, "## Missing"), "");
    }
}
