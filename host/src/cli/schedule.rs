//! How a phase trains: `--epochs`, `--batch`, the optimizer and the augmentation.

use clap::Args;

use super::values::{epoch_count, non_negative_number, positive_count, positive_number};
use crate::data::Augment;
use crate::train::schedule::{OptimizerKind, Schedule};

/// How a phase trains.
#[derive(Args, Clone, Debug)]
pub struct ScheduleArgs {
    /// Passes over the training images (0 trains nothing: the network keeps its initial
    /// weights and is evaluated as it is).
    #[arg(long, default_value_t = DEFAULT_EPOCHS, value_name = "N", value_parser = epoch_count)]
    pub epochs: usize,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 128, value_name = "N", value_parser = positive_count)]
    pub batch: usize,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Rmsprop)]
    pub optimizer: OptimizerKind,
    /// Initial learning rate (paper, MNIST: 0.0005).
    #[arg(long, default_value_t = 5e-4, value_name = "LR", value_parser = positive_number)]
    pub lr: f64,
    /// Learning rate at the last step (linear decay).
    #[arg(long, default_value_t = 0.0, value_name = "LR", value_parser = non_negative_number)]
    pub final_lr: f64,
    /// Seed of the initial weights, the order of the images and the augmentation.
    #[arg(long, default_value_t = 0, value_name = "SEED")]
    pub seed: u64,
    /// Random shifts of up to this many pixels.
    #[arg(long, default_value_t = 0, value_name = "PIXELS")]
    pub shift: u8,
    /// Random horizontal flips.
    #[arg(long)]
    pub hflip: bool,
    /// Zero-pad by this many pixels and crop back at random (CIFAR style).
    #[arg(long, default_value_t = 0, value_name = "PIXELS")]
    pub crop_pad: u8,
    /// Random erasing: with probability one half, a random rectangle of 2-40 % of the
    /// image becomes noise.
    #[arg(long)]
    pub erase: bool,
}

/// `--epochs` when not given.
pub const DEFAULT_EPOCHS: usize = 10;

impl ScheduleArgs {
    pub fn schedule(&self) -> Schedule {
        Schedule {
            epochs: self.epochs,
            batch_size: self.batch,
            optimizer: self.optimizer,
            learning_rate: self.lr,
            final_learning_rate: self.final_lr,
            seed: self.seed,
            augment: Augment { shift: self.shift, hflip: self.hflip, crop_pad: self.crop_pad, erase: self.erase },
        }
    }
}
