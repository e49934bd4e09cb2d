//! How long and how a phase trains: epochs, batch, optimizer, learning rate, seed.

use serde::{Deserialize, Serialize};

use crate::data::Augment;

/// The optimizer of a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// RMSProp (smoothing 0.99, ε 1e-8, no momentum), as the paper.
    Rmsprop,
    /// Adam (β 0.9 / 0.999, ε 1e-8).
    Adam,
}

/// One training phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Learning rate at the first step, decayed linearly to `final_learning_rate` at
    /// the last.
    pub learning_rate: f64,
    pub final_learning_rate: f64,
    /// Seeds the initialization, the order of batches, dropout and augmentation.
    pub seed: u64,
    pub augment: Augment,
}

impl Schedule {
    /// The learning rate at `step` of `total`.
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let t = if total <= 1 { 0.0 } else { step as f64 / (total - 1) as f64 };
        self.learning_rate + (self.final_learning_rate - self.learning_rate) * t
    }
}

/// A seed for `epoch` of `phase` derived from the run's seed, so that an epoch's batches,
/// dropout masks and augmentation do not depend on the epochs before it: a resumed run
/// repeats them exactly.
pub fn epoch_seed(seed: u64, phase: &str, epoch: usize) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for byte in phase.bytes().chain((epoch as u64).to_le_bytes()) {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
    }
    h
}
