//! What a training phase is: the network being trained, what it minimizes, where it
//! trains, and each epoch's figures.

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::batch::Batcher;
use super::schedule::Schedule;
use crate::data::Dataset;
use crate::model::Views;
use crate::model::net::{ConvLayer, Net};
use crate::run::dir::RunDir;

/// What is being trained: a network, and during hint training its regressor.
#[derive(Module, Debug)]
pub struct Trainee<B: Backend> {
    pub net: Net<B>,
    pub regressor: Option<ConvLayer<B>>,
}

/// What a phase minimizes.
#[derive(Clone, Debug)]
pub enum Objective<B: AutodiffBackend> {
    /// Cross-entropy with the labels.
    Labels,
    /// Knowledge distillation from `teacher` (run without gradients), whose logits are
    /// [`Net::predict`]'s over `views`; `background` is the normalized zero pixel per
    /// channel, which shifted views move in.
    Distill {
        teacher: Net<B::InnerBackend>,
        views: Views,
        background: Vec<f32>,
        tau: f64,
        lambda_start: f64,
        lambda_end: f64,
    },
    /// Hint training: the first `guided_layers` of the student, through the regressor,
    /// regress the output of the teacher's first `hint_layers`.
    Hints { teacher: Net<B::InnerBackend>, hint_layers: usize, guided_layers: usize },
}

/// Where and how a phase trains.
#[derive(Debug)]
pub struct Phase<'a> {
    /// Its name in `metrics.csv` and checkpoints: `teacher`, `student`, `hints`.
    pub name: &'a str,
    pub schedule: &'a Schedule,
    pub train: &'a Dataset,
    pub valid: &'a Dataset,
    pub batcher: &'a Batcher,
    pub run: &'a RunDir,
    /// Stop after this many epochs as if interrupted (the checkpoint is written): a long
    /// schedule can be trained in pieces and continued with a resume.
    pub stop_after: Option<usize>,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    /// `None` for hint training, which has no classifier output.
    pub train_accuracy: Option<f64>,
    pub valid_loss: f64,
    pub valid_accuracy: Option<f64>,
    pub learning_rate: f64,
    pub lambda: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl EpochMetrics {
    pub(super) fn csv(&self, phase: &str) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        format!(
            "{phase},{},{:.6},{},{:.6},{},{:.6e},{},{:.2},{:.1}",
            self.epoch,
            self.train_loss,
            opt(self.train_accuracy),
            self.valid_loss,
            opt(self.valid_accuracy),
            self.learning_rate,
            opt(self.lambda),
            self.seconds,
            self.images_per_second
        )
    }
}

pub(super) fn describe(phase: &str, epochs: usize, m: &EpochMetrics) -> String {
    let mut line = format!("{phase} epoch {}/{epochs}: loss {:.4}", m.epoch, m.train_loss);
    if let Some(acc) = m.train_accuracy {
        line += &format!(", train {:.2}%", 100.0 * acc);
    }
    match m.valid_accuracy {
        Some(acc) => line += &format!(", valid {:.2}% (loss {:.4})", 100.0 * acc, m.valid_loss),
        None => line += &format!(", valid loss {:.4}", m.valid_loss),
    }
    line += &format!(", lr {:.2e}", m.learning_rate);
    if let Some(lambda) = m.lambda {
        line += &format!(", λ {lambda:.2}");
    }
    line + &format!(", {:.0} images/s, {:.0}s", m.images_per_second, m.seconds)
}

impl<B: AutodiffBackend> Objective<B> {
    pub(super) fn has_logits(&self) -> bool {
        !matches!(self, Objective::Hints { .. })
    }

    /// The same objective with its teacher on `device`.
    pub(super) fn to_device(&self, device: &B::Device) -> Objective<B> {
        match self {
            Objective::Labels => Objective::Labels,
            Objective::Distill { teacher, views, background, tau, lambda_start, lambda_end } => Objective::Distill {
                teacher: teacher.clone().to_device(device),
                views: *views,
                background: background.clone(),
                tau: *tau,
                lambda_start: *lambda_start,
                lambda_end: *lambda_end,
            },
            Objective::Hints { teacher, hint_layers, guided_layers } => Objective::Hints {
                teacher: teacher.clone().to_device(device),
                hint_layers: *hint_layers,
                guided_layers: *guided_layers,
            },
        }
    }
}
