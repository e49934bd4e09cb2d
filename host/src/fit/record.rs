//! What a search records: its setting (`setting.json`), and everything `fit.json` holds.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::space::{Candidate, Price};
use super::target::Target;
use crate::train::schedule::Schedule;

/// The search's setting file in its runs directory.
pub const SETTING_FILE: &str = "setting.json";

/// What every run of a search is trained with, and what it searches (`setting.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub teacher: PathBuf,
    pub target: Target,
    pub budgets: Vec<u64>,
    pub candidates: usize,
    pub eta: usize,
    pub first_epochs: usize,
    pub max_epochs: usize,
    pub subset: Option<usize>,
    pub valid: usize,
    pub test_subset: Option<usize>,
    pub split_seed: u64,
    /// The schedule's optimizer, learning rates, batch, seed and augmentation (its
    /// epochs are each rung's).
    pub schedule: Schedule,
    pub reference: Option<PathBuf>,
}

/// One rung of successive halving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// Epochs of each student, hint training included.
    pub epochs: usize,
    pub hint_epochs: usize,
    /// Each candidate trained in the rung and its validation and test accuracy.
    pub results: Vec<RungResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RungResult {
    pub id: String,
    pub valid_accuracy: f64,
    pub test_accuracy: f64,
    pub train_seconds: f64,
}

/// A student exported and tested: the chosen one, or the reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub name: String,
    /// Its run, relative to the runs directory.
    pub run: PathBuf,
    /// The int8 blob, relative to the runs directory.
    pub blob: PathBuf,
    pub widths: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    pub valid_accuracy: f64,
    pub test_accuracy: f64,
    pub int8_test_accuracy: f64,
    pub test_images: usize,
    /// The price of the exported blob itself.
    pub price: Price,
    /// Why it does not fit the target, if it does not.
    pub pruned: Option<String>,
}

/// Everything `fit.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub setting: Setting,
    pub teacher_name: String,
    pub teacher_test_accuracy: f64,
    /// Students the generator made (candidates it could not make are not counted).
    pub candidates: Vec<Candidate>,
    /// Ids of the candidates of the first rung.
    pub selected: Vec<String>,
    pub rungs: Vec<Rung>,
    pub chosen: Option<Answer>,
    pub reference: Option<Answer>,
}

impl Setting {
    /// Epochs of rung `rung`: `first_epochs * eta^rung`, at most `max_epochs`.
    pub fn rung_epochs(&self, rung: usize) -> usize {
        let mut epochs = self.first_epochs;
        for _ in 0..rung {
            epochs = epochs.saturating_mul(self.eta);
        }
        epochs.min(self.max_epochs)
    }
}
