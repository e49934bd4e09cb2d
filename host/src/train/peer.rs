//! One device's side of a phase: its replica, optimizer and objective, and the epochs
//! it trains, summing its gradients with the other peers'.

use std::io::IsTerminal as _;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::checkpoint;
use super::collective::Collective;
use super::optim::Optim;
use super::phase::{EpochMetrics, Objective, Phase, Trainee, describe};
use super::schedule::epoch_seed;
use super::step::{Batch, StepOutcome, shard_step, validate};
use super::teacher_cache::TeacherCache;

/// What every peer of a phase shares.
pub(super) struct Context<'a> {
    pub(super) phase: &'a Phase<'a>,
    pub(super) cache: Option<&'a TeacherCache>,
    /// Epochs done before this call (a resume).
    pub(super) start: usize,
    /// The phase as every peer must train it ([`Collective::agree`]), less the layout.
    pub(super) what: String,
}

/// One device's side of a phase: its replica, optimizer and objective.
pub(super) struct Peer<'a, B: AutodiffBackend> {
    pub(super) rank: usize,
    pub(super) model: Trainee<B>,
    pub(super) optim: Optim<B>,
    pub(super) objective: &'a Objective<B>,
    pub(super) device: &'a B::Device,
    /// How the peers sum their gradients; `None` alone.
    pub(super) collective: Option<Box<dyn Collective>>,
    /// The first peer's history (it validates and checkpoints); `None` for the others.
    pub(super) history: Option<Vec<EpochMetrics>>,
}

impl<B: AutodiffBackend> Peer<'_, B> {
    /// Runs the phase's remaining epochs; the first peer returns the model and history.
    pub(super) fn train(mut self, context: &Context<'_>) -> anyhow::Result<Option<(Trainee<B>, Vec<EpochMetrics>)>> {
        let phase = context.phase;
        let schedule = phase.schedule;
        let device = self.device;
        let n = phase.train.len();
        let steps_per_epoch = n.div_ceil(schedule.batch_size);
        let total_steps = steps_per_epoch * schedule.epochs;
        let terminal = self.rank == 0 && std::io::stderr().is_terminal();
        for epoch in context.start..schedule.epochs {
            let seed = epoch_seed(schedule.seed, phase.name, epoch);
            B::seed(device, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);

            let bar = if terminal { ProgressBar::new(steps_per_epoch as u64) } else { ProgressBar::hidden() };
            bar.set_style(
                // At most 80 columns: `student 12/30 [====>     ] 120/430 loss 0.312, 2051 img/s, eta 1m`.
                ProgressStyle::with_template("{prefix} [{bar:16}] {pos}/{len} {msg}, eta {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{} {}/{}", phase.name, epoch + 1, schedule.epochs));

            let started = Instant::now();
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            let (mut lr, mut lambda) = (schedule.learning_rate, None);
            for (b, indices) in order.chunks(schedule.batch_size).enumerate() {
                let step = epoch * steps_per_epoch + b;
                lr = schedule.learning_rate_at(step, total_steps);
                // Every peer draws the whole batch's placements, so that all agree with one
                // device, and keeps its shard.
                let (images, placements) =
                    phase.batcher.placed_images::<B::InnerBackend>(phase.train, indices, Some(&mut rng), device);
                let batch = Batch {
                    images,
                    cached: context.cache.map(|cache| cache.gather::<B::InnerBackend>(indices, &placements, device)),
                    labels: phase.batcher.labels::<B>(phase.train, indices, device),
                };
                let agree = (step == context.start * steps_per_epoch).then_some(context.what.as_str());
                let (grads, outcome) = self.step(batch, agree, step, total_steps)?;
                if !outcome.loss_sum.is_finite() {
                    bar.finish_and_clear();
                    let done = context.start.max(self.history.as_ref().map_or(0, Vec::len));
                    anyhow::bail!(
                        "{} epoch {}, batch {} of {}: the loss is {} (training diverged). {}; start a new run with \
                         a lower --lr (now {:.2e} at this step) or a smaller --lambda-start",
                        phase.name,
                        epoch + 1,
                        b + 1,
                        steps_per_epoch,
                        outcome.loss_sum / indices.len() as f64,
                        match done {
                            0 => "No epoch of this phase finished, so no checkpoint of it exists".to_string(),
                            done => format!("{} keeps the checkpoint after epoch {done}", phase.run.path().display()),
                        },
                        lr
                    );
                }
                self.model = self.optim.step(lr, self.model, grads);
                lambda = outcome.lambda;
                loss_sum += outcome.loss_sum;
                correct += outcome.correct;
                seen += indices.len();
                let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("loss {:.3}, {rate:.0} img/s", loss_sum / seen as f64));
                bar.inc(1);
            }
            bar.finish_and_clear();
            if let Some(history) = self.history.as_mut() {
                let seconds = started.elapsed().as_secs_f64();
                let (valid_loss, valid_accuracy) = validate(&self.model.valid(), self.objective, phase, device);
                let metrics = EpochMetrics {
                    epoch: epoch + 1,
                    train_loss: loss_sum / n as f64,
                    train_accuracy: self.objective.has_logits().then(|| correct as f64 / n as f64),
                    valid_loss,
                    valid_accuracy,
                    learning_rate: lr,
                    lambda,
                    seconds,
                    images_per_second: n as f64 / seconds,
                };
                eprintln!("{}", describe(phase.name, schedule.epochs, &metrics));
                phase.run.append_metrics(&[metrics.csv(phase.name)])?;
                history.push(metrics);
                checkpoint(phase, epoch, &self.model, &self.optim, history)?;
            }
            if phase.stop_after == Some(epoch + 1) {
                break;
            }
        }
        Ok(self.history.take().map(|history| (self.model, history)))
    }

    /// Forward and backward on this peer's shard of `batch`, and the gradients and
    /// figures summed over the peers; the phase's first step passes `agree`, the
    /// phase's description that every peer must share.
    pub(super) fn step(
        &mut self,
        batch: Batch<B>,
        agree: Option<&str>,
        step: usize,
        total_steps: usize,
    ) -> anyhow::Result<(GradientsParams, StepOutcome)> {
        let Some(collective) = self.collective.as_mut() else {
            let mut outcome = shard_step(&self.model, self.objective, batch, step, total_steps, None);
            return Ok((outcome.grads.take().expect("one shard"), outcome));
        };
        let n = batch.labels.dims()[0];
        let (rank, peers) = (collective.rank(), collective.peers());
        // Peers past the batch's images (a last batch smaller than the peers) add zeros.
        let range = (rank * n / peers)..((rank + 1) * n / peers);
        let (layout, mut values, mut outcome) = if range.is_empty() {
            let probe =
                shard_step(&self.model, self.objective, batch.shard(0..1, self.device), step, total_steps, Some(0.0));
            let (layout, values) = super::flat::flatten::<B, _>(&self.model, probe.grads.as_ref().expect("a shard"));
            (
                layout,
                vec![0.0; values.len()],
                StepOutcome { grads: None, loss_sum: 0.0, correct: 0, lambda: probe.lambda },
            )
        } else {
            let weight = range.len() as f64 / n as f64;
            let mut outcome = shard_step(
                &self.model,
                self.objective,
                batch.shard(range, self.device),
                step,
                total_steps,
                Some(weight),
            );
            let (layout, values) = super::flat::flatten::<B, _>(&self.model, outcome.grads.as_ref().expect("a shard"));
            outcome.grads = None;
            (layout, values, outcome)
        };
        values.push(outcome.loss_sum as f32);
        values.push(outcome.correct as f32);
        if let Some(what) = agree {
            collective.agree(&format!("{what}, gradient layout {:016x}", layout.digest()), values.len())?;
        }
        collective.all_reduce_sum(&mut values)?;
        outcome.correct = values.pop().unwrap_or(0.0) as usize;
        outcome.loss_sum = f64::from(values.pop().unwrap_or(f32::NAN));
        let grads = super::flat::unflatten::<B::InnerBackend>(&layout, &values, self.device)?;
        Ok((grads, outcome))
    }
}
