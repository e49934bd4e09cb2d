//! The `fitnets` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "fitnets", version, about = "FitNets: thin deep students for microcontrollers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a model blob and print its layers, parameters, MACs and arena.
    Inspect {
        /// A `.fnet` model blob.
        blob: PathBuf,
    },
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
    match cli.command {
        Command::Inspect { blob } => {
            let bytes = std::fs::read(&blob).with_context(|| format!("reading {}", blob.display()))?;
            let text = fitnets::inspect::describe(&bytes)
                .with_context(|| format!("{} is not a valid model", blob.display()))?;
            print!("{text}");
        }
    }
    Ok(())
}
