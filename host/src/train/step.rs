//! One step's arithmetic: a batch, or a peer's shard of it, forward and backward under a
//! phase's objective; and validation.

use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion as _, Int, Tensor};

use super::loss::{cross_entropy, hint_loss, kd_loss, lambda_at};
use super::phase::{Objective, Phase, Trainee};

/// One batch: normalized images, the teacher's cached outputs for them, labels.
pub(super) struct Batch<B: AutodiffBackend> {
    pub(super) images: Tensor<B::InnerBackend, 4>,
    pub(super) cached: Option<Tensor<B::InnerBackend, 4>>,
    pub(super) labels: Tensor<B, 1, Int>,
}

impl<B: AutodiffBackend> Batch<B> {
    /// Images `range` of the batch, on `device`.
    pub(super) fn shard(&self, range: std::ops::Range<usize>, device: &B::Device) -> Batch<B> {
        Batch {
            images: self.images.clone().slice(range.clone()).to_device(device),
            cached: self.cached.as_ref().map(|c| c.clone().slice(range.clone()).to_device(device)),
            labels: self.labels.clone().slice(range).to_device(device),
        }
    }
}

/// What one forward and backward pass over a batch (or a shard of it) yields.
pub(super) struct StepOutcome {
    pub(super) grads: Option<GradientsParams>,
    /// The loss times the number of images.
    pub(super) loss_sum: f64,
    pub(super) correct: usize,
    pub(super) lambda: Option<f64>,
}

/// Forward and backward of `model` on `batch`. With `weight` (a shard's share of the
/// whole batch) the loss is scaled by it, so the shards' gradients sum to the batch's.
pub(super) fn shard_step<B: AutodiffBackend>(
    model: &Trainee<B>,
    objective: &Objective<B>,
    batch: Batch<B>,
    step: usize,
    total_steps: usize,
    weight: Option<f64>,
) -> StepOutcome {
    let images = batch.labels.dims()[0];
    let (loss, logits, lambda) =
        batch_loss(model, objective, batch.images, batch.cached, batch.labels.clone(), step, total_steps);
    let scaled = match weight {
        Some(w) => loss.clone().mul_scalar(w),
        None => loss.clone(),
    };
    let grads = GradientsParams::from_grads(scaled.backward(), model);
    let loss: f64 = loss.into_scalar().elem();
    let correct = logits.map_or(0, |logits| count_correct(logits.inner(), batch.labels.inner()));
    StepOutcome { grads: Some(grads), loss_sum: loss * images as f64, correct, lambda }
}

/// The loss of one batch, the logits when the objective has them, and λ when it uses one.
/// `cached` is the teacher's output for the batch when it was computed beforehand.
pub(super) fn batch_loss<B: AutodiffBackend>(
    model: &Trainee<B>,
    objective: &Objective<B>,
    inner: Tensor<B::InnerBackend, 4>,
    cached: Option<Tensor<B::InnerBackend, 4>>,
    labels: Tensor<B, 1, Int>,
    step: usize,
    total_steps: usize,
) -> (Tensor<B, 1>, Option<Tensor<B, 2>>, Option<f64>) {
    let images = Tensor::<B, 4>::from_inner(inner.clone());
    match objective {
        Objective::Labels => {
            let logits = model.net.forward(images);
            (cross_entropy(logits.clone(), labels), Some(logits), None)
        }
        Objective::Distill { teacher, views, background, tau, lambda_start, lambda_end } => {
            let teacher_logits = Tensor::from_inner(match cached {
                Some(logits) => logits.flatten(1, 3),
                None => teacher.predict(inner, *views, background),
            });
            let lambda = lambda_at(step, total_steps, *lambda_start, *lambda_end);
            let logits = model.net.forward(images);
            (kd_loss(logits.clone(), teacher_logits, labels, lambda, *tau), Some(logits), Some(lambda))
        }
        Objective::Hints { teacher, hint_layers, guided_layers } => {
            let hint = Tensor::from_inner(match cached {
                Some(hint) => hint,
                None => teacher.forward_to(inner, *hint_layers).map(),
            });
            let guided = model.net.forward_to(images, *guided_layers).map();
            let regressor = model.regressor.as_ref().expect("hint training has a regressor");
            (hint_loss(regressor.forward(guided), hint), None, None)
        }
    }
}

/// Validation loss and, with logits, accuracy.
pub(super) fn validate<B: AutodiffBackend>(
    model: &Trainee<B::InnerBackend>,
    objective: &Objective<B>,
    phase: &Phase<'_>,
    device: &B::Device,
) -> (f64, Option<f64>) {
    let data = phase.valid;
    let indices: Vec<usize> = (0..data.len()).collect();
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    for chunk in indices.chunks(512) {
        let images = phase.batcher.images::<B::InnerBackend>(data, chunk, None, device);
        let labels = phase.batcher.labels::<B::InnerBackend>(data, chunk, device);
        let loss = match objective {
            Objective::Hints { teacher, hint_layers, guided_layers } => {
                let hint = teacher.forward_to(images.clone(), *hint_layers).map();
                let guided = model.net.forward_to(images, *guided_layers).map();
                let regressor = model.regressor.as_ref().expect("hint training has a regressor");
                hint_loss(regressor.forward(guided), hint)
            }
            _ => {
                let logits = model.net.forward(images);
                correct += count_correct(logits.clone(), labels.clone());
                cross_entropy(logits, labels)
            }
        };
        let loss: f64 = loss.into_scalar().elem();
        loss_sum += loss * chunk.len() as f64;
    }
    let n = data.len().max(1) as f64;
    (loss_sum / n, objective.has_logits().then(|| correct as f64 / n))
}

/// Number of rows of `logits` whose argmax is the label.
pub fn count_correct<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> usize {
    let predicted = logits.argmax(1).flatten::<1>(0, 1);
    let hits: i64 = predicted.equal(labels).int().sum().into_scalar().elem();
    hits as usize
}
