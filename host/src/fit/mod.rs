//! `fitnets fit`: the student that fits a named chip, found by search, then exported.
//!
//! 1. **Space** ([`space`]): students generated from the teacher's input, classes and
//!    hint layer at every depth, piece count, split and budget of the ladder, each
//!    priced before training: flash (blob + the serve program's measured code), RAM
//!    (exact arena + frame buffers + static data + stack) and time (the core's cost
//!    model, calibrated on exact QEMU counts). What does not fit is pruned, with why.
//! 2. **Search** ([`search`]): `--candidates` of the rest, spread over the estimated
//!    time, trained with hints by successive halving: all of them for `--first-epochs`
//!    epochs, the best third (`--eta`) for three times as many, and so on up to
//!    `--max-epochs`, down to one, which is the answer. Candidates are ranked by
//!    validation accuracy; the test set is only reported.
//! 3. **Answer**: the chosen student and the paper's FitNet (`--reference-config`,
//!    trained with the last rung's setting) exported to int8 and tested with shared's
//!    kernels; `fit.json`, `fit.md` and `pareto.svg` written ([`mod@write`]).
//! 4. **Proof** (`cargo xtask prove --runs DIR`, or `cargo xtask fit` for both): the
//!    firmware built for the board with the student (the build fails if it does not
//!    fit), its flash and RAM as linked, and its exact instructions under QEMU.
//!
//! ```text
//! RUNS/setting.json            the search's setting, checked on every call
//! RUNS/candidates/ID/          config.toml, and rung-K/ (the run of rung K)
//! RUNS/reference/              the paper's FitNet: config.toml, run/
//! RUNS/student.fnet            the chosen student, int8
//! RUNS/reference.fnet          the reference, int8
//! RUNS/fit.json, fit.md, pareto.svg
//! ```
//!
//! Every run is reused when finished and resumed when interrupted, so a search killed at
//! any point goes on where it stopped when the same command is given again; a command
//! with another setting is refused, never mixed in.

pub mod pareto;
pub mod record;
pub mod search;
pub mod space;
pub mod target;
pub mod write;

use std::path::PathBuf;

use crate::backend::Compute;
use crate::data::DataSpec;
use crate::train::schedule::Schedule;

/// A search for the student that fits a chip (`fitnets fit`).
#[derive(Clone, Debug)]
pub struct Search {
    /// The finished teacher run (its hint layer guides the students).
    pub teacher: PathBuf,
    /// The chip's budgets.
    pub target: target::Target,
    /// Students trained in the first rung.
    pub candidates: u16,
    /// Each rung keeps the best 1/eta of the one before and trains it eta times longer.
    pub eta: u16,
    /// Epochs of each student in the first rung.
    pub first_epochs: u16,
    /// Most epochs of any rung.
    pub max_epochs: u16,
    /// Multiply-accumulate budgets to generate students at; `None`: the ladder
    /// ([`space::ladder`]).
    pub macs: Option<Vec<u64>>,
    /// The paper's FitNet, trained with the last rung's setting for comparison.
    pub reference_config: Option<PathBuf>,
    /// Price and prune the space, write the tables, train nothing.
    pub dry_run: bool,
    /// Where the runs go.
    pub runs: PathBuf,
    pub data: DataSpec,
    /// The students' schedule; each rung sets its epochs.
    pub schedule: Schedule,
    pub compute: Compute,
}

pub use search::fit;
