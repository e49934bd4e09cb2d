//! The paper's procedures on top of the training loop: train a teacher; train a
//! student from scratch, by knowledge distillation, or by hints then distillation.

use anyhow::{Context as _, bail};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::data::Splits;
use crate::model::regressor::regressor_shape;
use crate::model::{Net, NetConfig, Views};
use crate::run::dir::RunDir;
use crate::train::batch::Batcher;
use crate::train::fit::fit;
use crate::train::phase::{EpochMetrics, Objective, Trainee};
use crate::train::schedule::Schedule;
use crate::train::workers::Workers;

/// How a student learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Backpropagation on the labels alone.
    Scratch,
    /// Knowledge distillation from the teacher's softened outputs.
    Kd,
    /// Hint training of the layers up to the guided one, then knowledge distillation.
    Hints,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Scratch => "scratch",
            Method::Kd => "kd",
            Method::Hints => "hints",
        }
    }
}

/// Knowledge-distillation settings (paper: τ = 3, λ from 4 to 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KdSettings {
    pub tau: f64,
    pub lambda_start: f64,
    pub lambda_end: f64,
}

impl Default for KdSettings {
    fn default() -> KdSettings {
        KdSettings { tau: 3.0, lambda_start: 4.0, lambda_end: 1.0 }
    }
}

/// Trains a network on the labels (a teacher, or a student from scratch) on `workers`
/// (see [`fit`]).
pub fn train_on_labels<B: AutodiffBackend>(
    config: &NetConfig,
    splits: &Splits,
    schedule: &Schedule,
    run: &RunDir,
    phase: &str,
    workers: &Workers<B::Device>,
) -> anyhow::Result<(Net<B>, Vec<EpochMetrics>)> {
    let device = workers.device();
    B::seed(device, schedule.seed);
    let model = Trainee { net: Net::<B>::new(config, device)?, regressor: None };
    let batcher = splits.batcher(schedule.augment);
    let phase = splits.phase(phase, schedule, &batcher, run);
    let (model, history) = fit(&phase, model, &Objective::Labels, workers)?;
    Ok((model.net, history))
}

/// A trained teacher as a student learns from it.
#[derive(Clone, Copy, Debug)]
pub struct Teacher<'a, B: Backend> {
    pub net: &'a Net<B>,
    pub config: &'a NetConfig,
    /// Distil the logits averaged over these views of each image ([`crate::run::RunInfo::views`]).
    /// Hint maps are never averaged: the hint is the teacher's map of the image itself.
    pub views: Views,
}

/// Trains a student with `method` from a trained teacher.
#[allow(clippy::too_many_arguments)]
pub fn train_student<B: AutodiffBackend>(
    config: &NetConfig,
    method: Method,
    teacher: Teacher<'_, B::InnerBackend>,
    splits: &Splits,
    schedule: &Schedule,
    hint_schedule: Option<&Schedule>,
    kd: KdSettings,
    run: &RunDir,
    workers: &Workers<B::Device>,
) -> anyhow::Result<(Net<B>, Vec<EpochMetrics>, Vec<EpochMetrics>)> {
    if method == Method::Scratch {
        let (net, history) = train_on_labels::<B>(config, splits, schedule, run, "student", workers)?;
        return Ok((net, Vec::new(), history));
    }
    let device = workers.device();
    // Same initial weights as a scratch student with the same seed.
    B::seed(device, schedule.seed);
    let mut net = Net::<B>::new(config, device)?;
    let mut hint_history = Vec::new();
    if method == Method::Hints {
        let hint_schedule = hint_schedule.context("the hints method needs a hint-training schedule")?;
        let shape = regressor_shape(config, teacher.config)?;
        let regressor = shape.build::<B>(device);
        let batcher = splits.batcher(hint_schedule.augment);
        let phase = splits.phase("hints", hint_schedule, &batcher, run);
        let objective = Objective::Hints {
            teacher: teacher.net.clone(),
            hint_layers: shape.hint + 1,
            guided_layers: shape.guided + 1,
        };
        let (trained, history) = fit(&phase, Trainee { net, regressor: Some(regressor) }, &objective, workers)?;
        // The regressor is dropped; the student keeps its trained lower layers.
        net = trained.net;
        hint_history = history;
    }
    let batcher = splits.batcher(schedule.augment);
    let phase = splits.phase("student", schedule, &batcher, run);
    let objective = Objective::Distill {
        teacher: teacher.net.clone(),
        views: teacher.views,
        background: splits.info.normalization.background(),
        tau: kd.tau,
        lambda_start: kd.lambda_start,
        lambda_end: kd.lambda_end,
    };
    let (trained, history) = fit(&phase, Trainee { net, regressor: None }, &objective, workers)?;
    Ok((trained.net, hint_history, history))
}

/// Accuracy and confusion matrix (`[true][predicted]`) of `net` on `data`, classifying
/// with [`Net::predict`].
pub fn evaluate<B: Backend>(
    net: &Net<B>,
    data: &Dataset,
    batcher: &Batcher,
    views: Views,
    device: &B::Device,
) -> (f64, Vec<Vec<u64>>) {
    let classes = data.classes;
    let background = batcher.normalization.background();
    let mut confusion = vec![vec![0u64; classes]; classes];
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(512) {
        let images = batcher.images::<B>(data, chunk, None, device);
        let predicted = net.predict(images, views, &background).argmax(1).into_data();
        let predicted = predicted.iter::<i64>();
        for (&i, p) in chunk.iter().zip(predicted) {
            confusion[usize::from(data.labels[i])][p as usize] += 1;
        }
    }
    let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
    (correct as f64 / data.len().max(1) as f64, confusion)
}

/// Checks that a student and its teacher fit together.
pub fn check_pair(student: &NetConfig, teacher: &NetConfig) -> anyhow::Result<()> {
    if student.input != teacher.input || student.classes != teacher.classes {
        bail!(
            "student {} ({:?}, {} classes) and teacher {} ({:?}, {} classes) disagree on input or classes",
            student.name,
            student.input,
            student.classes,
            teacher.name,
            teacher.input,
            teacher.classes
        );
    }
    Ok(())
}
