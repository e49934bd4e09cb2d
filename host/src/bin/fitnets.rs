//! The `fitnets` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fitnets::cli;

#[derive(Parser, Debug)]
#[command(name = "fitnets", version, about = "FitNets: thin deep students for microcontrollers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Train a teacher or a student.
    #[command(subcommand)]
    Train(Train),
    /// Test accuracy and confusion matrix of a finished run, or of an int8 blob run with
    /// shared's kernels (the device's code). Of the data options, --data, --cifar, --name,
    /// --test-subset and --split-seed apply (a blob needs only the test files).
    Eval {
        /// A run directory, or a `.fnet` blob from `fitnets export`.
        target: PathBuf,
        /// With a blob: the run it was exported from, to compare with its float model.
        #[arg(long, value_name = "RUN")]
        float: Option<PathBuf>,
        /// With a run: classify each image by its mean logits with its mirror image (with
        /// --shift-average as well: over its shifts and their mirror images).
        #[arg(long, conflicts_with = "float")]
        flip_average: bool,
        /// With a run: classify each image by its mean logits with its four one-pixel
        /// shifts.
        #[arg(long, conflicts_with = "float")]
        shift_average: bool,
        /// With a run that averages views: classify each image once, by its plain network.
        #[arg(long, conflicts_with_all = ["float", "flip_average", "shift_average"])]
        plain: bool,
        #[command(flatten)]
        data: cli::DataArgs,
        #[command(flatten)]
        device: cli::DeviceArgs,
    },
    /// Classify image files or folders with an int8 blob (shared's kernels, as the
    /// device) or a run (float): the top classes and their scores per image.
    Predict(Box<fitnets::commands::predict::PredictArgs>),
    /// Quantize a finished run to int8 and write it as a blob for shared and the device.
    Export(Box<fitnets::commands::export::ExportArgs>),
    /// Train the teacher and the three student methods; print the paper's Table 4.
    Compare(Box<fitnets::commands::compare::CompareArgs>),
    /// Students of several depths at one multiplication budget, trained with each method:
    /// the paper's Figure 2.
    Sweep(Box<fitnets::commands::sweep::SweepArgs>),
    /// The student that fits a chip: generated students priced on the board (flash,
    /// RAM, estimated time), the ones that fit trained with hints by successive halving,
    /// the answer exported to int8 beside the paper's FitNet; `fit.md` says why.
    Fit(Box<fitnets::commands::fit::FitArgs>),
    /// A Markdown report with charts: the stages, the int8 student per layer, the paper's
    /// figures and the fit on real boards.
    Report(Box<fitnets::commands::report::ReportArgs>),
    /// Serve a training run on several machines: start it once, then on each machine
    /// `fitnets train … --nodes N --node R --orchestrator HOST:PORT` (docs/scale-out.md).
    Orchestrator(fitnets::commands::orchestrator::OrchestratorArgs),
    /// Parameters and multiply-accumulates per layer of a run or a config.
    Info {
        /// A run directory or a TOML config.
        target: PathBuf,
    },
    /// Validate an int8 model blob and print its layers, parameters, MACs and arena.
    Inspect {
        /// A `.fnet` model blob.
        blob: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum Train {
    /// Train a teacher on the labels.
    Teacher(Box<fitnets::commands::train::TeacherArgs>),
    /// Train a student: from scratch, by knowledge distillation, or with hints.
    Student(Box<fitnets::commands::train::StudentArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // A bad FITNETS_VECTOR stops every command before any work.
    fitnets::kernels::vector::init()?;
    if let Command::Eval { data, .. } = &cli.command {
        anyhow::ensure!(
            data.valid.is_none() && data.subset.is_none(),
            "--valid and --subset choose training images; `eval` classifies the test images (--test-subset samples them)"
        );
    }
    match cli.command {
        Command::Train(Train::Teacher(args)) => fitnets::commands::train::train_teacher(&args),
        Command::Train(Train::Student(args)) => fitnets::commands::train::train_student(&args),
        Command::Compare(args) => fitnets::commands::compare::compare(&args),
        Command::Sweep(args) => fitnets::commands::sweep::sweep(&args),
        Command::Fit(args) => fitnets::commands::fit::fit(&args),
        Command::Orchestrator(args) => fitnets::commands::orchestrator::orchestrator(&args),
        Command::Eval { target, float, flip_average, shift_average, plain, data, device } if target.is_dir() => {
            anyhow::ensure!(float.is_none(), "--float compares a blob with a run: {} is a run", target.display());
            // Any of the three options says exactly how to classify; none keeps the run's way.
            let views = (flip_average || shift_average || plain)
                .then_some(fitnets::model::Views { mirror: flip_average, shift: shift_average });
            fitnets::commands::eval::eval(&target, views, &data, &device)
        }
        Command::Eval { target, float, flip_average, shift_average, plain, data, device } => {
            anyhow::ensure!(
                !flip_average && !shift_average && !plain,
                "--flip-average, --shift-average and --plain are for a run: {} is a blob (or no such run)",
                target.display()
            );
            fitnets::commands::export::eval_blob(&target, float.as_deref(), &data, &device)
        }
        Command::Export(args) => fitnets::commands::export::export_command(&args),
        Command::Predict(args) => fitnets::commands::predict::predict(&args),
        Command::Report(args) => fitnets::commands::report::report_command(&args),
        Command::Info { target } => {
            print!("{}", fitnets::commands::info::info(&target)?);
            Ok(())
        }
        Command::Inspect { blob } => {
            let bytes = std::fs::read(&blob).with_context(|| format!("reading {}", blob.display()))?;
            let text = fitnets::inspect::describe(&bytes)
                .with_context(|| format!("{} is not a valid model", blob.display()))?;
            print!("{text}");
            Ok(())
        }
    }
}
