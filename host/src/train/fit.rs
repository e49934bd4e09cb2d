//! The training loop shared by every phase: batches, optimizer steps, validation,
//! `metrics.csv`, progress, and checkpoints that make `--resume` exact.

use std::io::IsTerminal as _;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, RmsProp, RmsPropConfig};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::batch::Batcher;
use super::collective::{Collective, Local, PeerError, local, local_over};
use super::loss::{cross_entropy, hint_loss, kd_loss, lambda_at};
use super::run_dir::RunDir;
use super::schedule::{OptimizerKind, Schedule, epoch_seed};
use super::teacher_cache::{CachedOutput, Placements, TeacherCache};
use super::workers::Workers;
use crate::data::Dataset;
use crate::model::Views;
use crate::model::net::{ConvLayer, Net};

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
    fn csv(&self, phase: &str) -> String {
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

/// What a checkpoint says: the last completed epoch of a phase and its files.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CheckpointState {
    phase: String,
    epochs_done: usize,
    model: String,
    optimizer: String,
}

type Recorder32 = BinFileRecorder<FullPrecisionSettings>;

/// The optimizer of a phase, behind one type.
#[derive(Clone)]
enum Optim<B: AutodiffBackend> {
    RmsProp(OptimizerAdaptor<RmsProp, Trainee<B>, B>),
    Adam(OptimizerAdaptor<Adam, Trainee<B>, B>),
}

impl<B: AutodiffBackend> Optim<B> {
    fn new(kind: OptimizerKind) -> Optim<B> {
        match kind {
            OptimizerKind::Rmsprop => {
                Optim::RmsProp(RmsPropConfig::new().with_alpha(0.99).with_momentum(0.0).with_epsilon(1e-8).init())
            }
            OptimizerKind::Adam => Optim::Adam(AdamConfig::new().with_epsilon(1e-8).init()),
        }
    }

    fn step(&mut self, lr: f64, model: Trainee<B>, grads: GradientsParams) -> Trainee<B> {
        match self {
            Optim::RmsProp(o) => o.step(lr, model, grads),
            Optim::Adam(o) => o.step(lr, model, grads),
        }
    }

    fn save(&self, path: std::path::PathBuf) -> anyhow::Result<()> {
        let recorder = Recorder32::new();
        match self {
            Optim::RmsProp(o) => recorder.record(o.to_record(), path)?,
            Optim::Adam(o) => recorder.record(o.to_record(), path)?,
        }
        Ok(())
    }

    fn load(self, path: std::path::PathBuf, device: &B::Device) -> anyhow::Result<Optim<B>> {
        let recorder = Recorder32::new();
        Ok(match self {
            Optim::RmsProp(o) => Optim::RmsProp(o.load_record(recorder.load(path, device)?)),
            Optim::Adam(o) => Optim::Adam(o.load_record(recorder.load(path, device)?)),
        })
    }
}

/// Trains `model` for `phase` on `workers`, resuming from the phase's checkpoint in the
/// run directory when there is one. Returns the trained model and every epoch's metrics
/// (those before a resume are read back from the checkpoint's history).
///
/// One device trains alone. With several, or several nodes, each device is a peer
/// ([`super::collective`]) with its own replica of the model and its own optimizer
/// state: every peer builds the same batch (the same shuffled order on every node, from
/// the seed), takes its near-equal contiguous shard by rank (`node × devices + device`),
/// weighs its loss by its share, and the peers' flat gradients ([`super::flat`]) are
/// summed, so every replica takes the same step as one device on the whole batch would,
/// within float rounding. The first peer of each node validates, writes metrics and
/// checkpoints into that node's run directory; a peer that fails ends the others.
pub fn fit<B: AutodiffBackend>(
    phase: &Phase<'_>,
    mut model: Trainee<B>,
    objective: &Objective<B>,
    workers: &Workers<B::Device>,
) -> anyhow::Result<(Trainee<B>, Vec<EpochMetrics>)> {
    let devices = workers.devices();
    let device = workers.device();
    let schedule = phase.schedule;
    let mut optim = Optim::<B>::new(schedule.optimizer);
    let state_file = format!("checkpoint-{}.json", phase.name);
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut start = 0;
    let mut optim_file = None;
    if phase.run.join(&state_file).exists() {
        let state: CheckpointState = phase.run.read_json(&state_file)?;
        let damaged = |file: &str| {
            anyhow::anyhow!(
                "{} cannot be decoded (damaged or truncated): the run cannot be resumed from it; \
                 start it again in a new --run",
                phase.run.join(file).display()
            )
        };
        model = model
            .load_file(phase.run.join(&state.model), &Recorder32::new(), device)
            .map_err(|_| damaged(&state.model))?;
        optim = optim.load(phase.run.join(&state.optimizer), device).map_err(|_| damaged(&state.optimizer))?;
        optim_file = Some(phase.run.join(&state.optimizer));
        history = phase.run.read_json(&history_file(phase))?;
        history.truncate(state.epochs_done);
        start = state.epochs_done;
        let done = start;
        phase.run.truncate_metrics(|p, e| p != phase.name || e <= done)?;
        if start < schedule.epochs {
            eprintln!("{}: resuming after epoch {start} of {}", phase.name, schedule.epochs);
        }
    }

    let cache =
        if start < schedule.epochs { teacher_cache(objective, phase, schedule.epochs - start, device) } else { None };
    let what = format!(
        "{}: epochs {}..{} of {} training images in batches of {}, seed {}",
        phase.name,
        start + 1,
        schedule.epochs,
        phase.train.len(),
        schedule.batch_size,
        schedule.seed
    );
    let context = Context { phase, cache: cache.as_ref(), start, what };
    let boxed = |c: Local| Some(Box::new(c) as Box<dyn Collective>);
    let collectives: Vec<Option<Box<dyn Collective>>> = match (devices.len(), workers.link()) {
        (1, None) => vec![None],
        (n, None) => local(n, workers.timeout()).into_iter().map(boxed).collect(),
        (1, Some(link)) => vec![Some(Box::new(link.phase()))],
        (n, Some(link)) => local_over(n, workers.timeout(), Box::new(link.phase())).into_iter().map(boxed).collect(),
    };
    let mut collectives = collectives.into_iter();
    let first_collective = collectives.next().flatten();
    // The other peers' replicas, objectives (their teachers) and optimizer states, on
    // their devices, before any thread starts.
    let mut others = Vec::new();
    for (rank, collective) in (1..devices.len()).zip(collectives) {
        let device = &devices[rank];
        let optim = match &optim_file {
            Some(file) => Optim::<B>::new(schedule.optimizer).load(file.clone(), device)?,
            None => Optim::<B>::new(schedule.optimizer),
        };
        others.push((rank, model.clone().fork(device), optim, objective.to_device(device), collective));
    }
    let trained = std::thread::scope(|scope| {
        let handles: Vec<_> = others
            .into_iter()
            .map(|(rank, model, optim, objective, collective)| {
                let context = &context;
                let device = &devices[rank];
                scope.spawn(move || {
                    let peer = Peer { rank, model, optim, objective: &objective, device, collective, history: None };
                    peer.train(context)
                })
            })
            .collect();
        let first =
            Peer { rank: 0, model, optim, objective, device, collective: first_collective, history: Some(history) };
        let result = first.train(&context);
        let mut failures = Vec::new();
        for (rank, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failures.push(format!("peer {}: {e:#}", rank + 1)),
                Err(_) => failures.push(format!("peer {} panicked", rank + 1)),
            }
        }
        match result {
            // The first peer's own error says the most; the others' follow from it.
            Err(e) => Err(e),
            Ok(_) if !failures.is_empty() => Err(anyhow::anyhow!("{}", failures.join("; "))),
            Ok(trained) => Ok(trained.expect("the first peer returns the model")),
        }
    });
    match (trained, workers.link()) {
        (Err(e), Some(link)) if e.downcast_ref::<PeerError>().is_some() => Err(anyhow::anyhow!(
            "training {} on {} nodes stopped: {e}. Each node's run keeps its checkpoint after the last epoch it \
             finished: start the orchestrator again and every node with --resume (a run that had finished no \
             epoch yet is removed: start it again as it was)",
            phase.name,
            link.nodes()
        )),
        (trained, _) => trained,
    }
}

fn history_file(phase: &Phase<'_>) -> String {
    format!("history-{}.json", phase.name)
}

/// What every peer of a phase shares.
struct Context<'a> {
    phase: &'a Phase<'a>,
    cache: Option<&'a TeacherCache>,
    /// Epochs done before this call (a resume).
    start: usize,
    /// The phase as every peer must train it ([`Collective::agree`]), less the layout.
    what: String,
}

/// One device's side of a phase: its replica, optimizer and objective.
struct Peer<'a, B: AutodiffBackend> {
    rank: usize,
    model: Trainee<B>,
    optim: Optim<B>,
    objective: &'a Objective<B>,
    device: &'a B::Device,
    /// How the peers sum their gradients; `None` alone.
    collective: Option<Box<dyn Collective>>,
    /// The first peer's history (it validates and checkpoints); `None` for the others.
    history: Option<Vec<EpochMetrics>>,
}

impl<B: AutodiffBackend> Peer<'_, B> {
    /// Runs the phase's remaining epochs; the first peer returns the model and history.
    fn train(mut self, context: &Context<'_>) -> anyhow::Result<Option<(Trainee<B>, Vec<EpochMetrics>)>> {
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
    fn step(
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

/// Writes the checkpoint after `epoch`: this epoch's files first, then the state that
/// points at them, so an interruption at any moment leaves the previous one usable.
fn checkpoint<B: AutodiffBackend>(
    phase: &Phase<'_>,
    epoch: usize,
    model: &Trainee<B>,
    optim: &Optim<B>,
    history: &[EpochMetrics],
) -> anyhow::Result<()> {
    let state_file = format!("checkpoint-{}.json", phase.name);
    let stem = format!("checkpoint-{}-epoch{}", phase.name, epoch + 1);
    model.clone().save_file(phase.run.join(&format!("{stem}-model")), &Recorder32::new())?;
    optim.save(phase.run.join(&format!("{stem}-optim")))?;
    phase.run.write_json(&history_file(phase), &history)?;
    let previous: Option<CheckpointState> = phase.run.read_json(&state_file).ok();
    phase.run.write_json(
        &state_file,
        &CheckpointState {
            phase: phase.name.to_string(),
            epochs_done: epoch + 1,
            model: format!("{stem}-model.bin"),
            optimizer: format!("{stem}-optim.bin"),
        },
    )?;
    if let Some(previous) = previous {
        let _ = std::fs::remove_file(phase.run.join(&previous.model));
        let _ = std::fs::remove_file(phase.run.join(&previous.optimizer));
    }
    Ok(())
}

fn describe(phase: &str, epochs: usize, m: &EpochMetrics) -> String {
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
    fn has_logits(&self) -> bool {
        !matches!(self, Objective::Hints { .. })
    }

    /// The same objective with its teacher on `device`.
    fn to_device(&self, device: &B::Device) -> Objective<B> {
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

/// One batch: normalized images, the teacher's cached outputs for them, labels.
struct Batch<B: AutodiffBackend> {
    images: Tensor<B::InnerBackend, 4>,
    cached: Option<Tensor<B::InnerBackend, 4>>,
    labels: Tensor<B, 1, Int>,
}

impl<B: AutodiffBackend> Batch<B> {
    /// Images `range` of the batch, on `device`.
    fn shard(&self, range: std::ops::Range<usize>, device: &B::Device) -> Batch<B> {
        Batch {
            images: self.images.clone().slice(range.clone()).to_device(device),
            cached: self.cached.as_ref().map(|c| c.clone().slice(range.clone()).to_device(device)),
            labels: self.labels.clone().slice(range).to_device(device),
        }
    }
}

/// What one forward and backward pass over a batch (or a shard of it) yields.
struct StepOutcome {
    grads: Option<GradientsParams>,
    /// The loss times the number of images.
    loss_sum: f64,
    correct: usize,
    lambda: Option<f64>,
}

/// Forward and backward of `model` on `batch`. With `weight` (a shard's share of the
/// whole batch) the loss is scaled by it, so the shards' gradients sum to the batch's.
fn shard_step<B: AutodiffBackend>(
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

/// The teacher's outputs on the whole training set when they can be computed once, and
/// computing them is cheaper than running the teacher on every batch of the
/// `epochs_left` epochs:
/// - hint maps when the images are not augmented (at several placements they would
///   take gigabytes);
/// - logits for every placement the augmentation can draw ([`Placements`]) when it
///   only translates and mirrors, fewer placements than epochs remain, and the cache
///   stays under [`MAX_CACHE_BYTES`]. A teacher that averages mirror images needs no
///   entry for mirrored placements: the mean over the views of an image and of its
///   mirror image is the same, bit for bit ([`Net::predict`] sums the same terms in an
///   order mirroring keeps).
fn teacher_cache<B: AutodiffBackend>(
    objective: &Objective<B>,
    phase: &Phase<'_>,
    epochs_left: usize,
    device: &B::Device,
) -> Option<TeacherCache> {
    let (teacher, output) = match objective {
        Objective::Labels => return None,
        Objective::Distill { teacher, views, .. } => (teacher, CachedOutput::Logits { views: *views }),
        Objective::Hints { teacher, hint_layers, .. } => (teacher, CachedOutput::Layers(*hint_layers)),
    };
    let augment = phase.batcher.augment;
    if augment.erase {
        return None;
    }
    let placements = match output {
        CachedOutput::Layers(_) if !augment.is_identity() => return None,
        CachedOutput::Layers(_) => Placements::IDENTITY,
        CachedOutput::Logits { views } => {
            Placements { reach: augment.reach(), mirrored: augment.hflip && !views.mirror }
        }
    };
    let count = placements.count();
    if count > 1 {
        let bytes = phase.train.len() * count * phase.train.classes * size_of::<f32>();
        if count >= epochs_left || bytes > MAX_CACHE_BYTES {
            return None;
        }
    }
    let started = Instant::now();
    let cache = TeacherCache::build(teacher, output, phase.train, phase.batcher, placements, device);
    let each = if count > 1 { format!(" at {count} placements each") } else { String::new() };
    eprintln!(
        "{}: the teacher's outputs for {} training images{each} computed once ({:.1} MB, {:.1}s)",
        phase.name,
        phase.train.len(),
        cache.bytes() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Some(cache)
}

/// The largest cache of logits at several placements that is built (CIFAR-10 with a
/// crop padding of 4 and flips: 162 placements, 324 MB).
const MAX_CACHE_BYTES: usize = 1 << 30;

/// The loss of one batch, the logits when the objective has them, and λ when it uses one.
/// `cached` is the teacher's output for the batch when it was computed beforehand.
fn batch_loss<B: AutodiffBackend>(
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
fn validate<B: AutodiffBackend>(
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

use burn::tensor::ElementConversion as _;

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;

    use super::*;
    use crate::backend::Flex;
    use crate::data::Augment;
    use crate::data::Normalization;
    use crate::model::NetConfig;
    use crate::model::net::Layer;

    type B = Autodiff<Flex>;

    const NET: &str = r#"
        name = "t"
        input = [12, 12, 1]
        classes = 4
        [[layers]]
        type = "conv"
        units = 4
        pieces = 2
        kernel = 3
        padding = 1
        [[layers]]
        type = "max_pool"
        kernel = 2
        [[layers]]
        type = "conv"
        units = 3
        pieces = 2
        kernel = 3
        padding = 1
        [[layers]]
        type = "dense"
        units = 4
    "#;

    /// Every weight and bias gradient of `net` in `grads`, flattened, in layer order.
    fn gradients(net: &Net<B>, grads: &GradientsParams) -> Vec<Vec<f32>> {
        let get1 = |id| grads.get::<Flex, 1>(id).expect("a gradient").into_data().to_vec::<f32>().unwrap();
        let mut out = Vec::new();
        for layer in &net.layers {
            match layer {
                Layer::Conv(c) => {
                    let w = grads.get::<Flex, 4>(c.conv.weight.id).expect("a gradient");
                    out.push(w.into_data().to_vec::<f32>().unwrap());
                    out.push(get1(c.conv.bias.as_ref().unwrap().id));
                }
                Layer::Dense(d) => {
                    let w = grads.get::<Flex, 2>(d.linear.weight.id).expect("a gradient");
                    out.push(w.into_data().to_vec::<f32>().unwrap());
                    out.push(get1(d.linear.bias.as_ref().unwrap().id));
                }
                _ => {}
            }
        }
        out
    }

    /// The parameters of `model`, flattened, in layer order.
    fn weights(model: &Trainee<B>) -> Vec<f32> {
        let mut out = Vec::new();
        for layer in &model.net.layers {
            match layer {
                Layer::Conv(c) => {
                    out.extend(c.conv.weight.val().into_data().to_vec::<f32>().unwrap());
                    out.extend(c.conv.bias.as_ref().unwrap().val().into_data().to_vec::<f32>().unwrap());
                }
                Layer::Dense(d) => {
                    out.extend(d.linear.weight.val().into_data().to_vec::<f32>().unwrap());
                    out.extend(d.linear.bias.as_ref().unwrap().val().into_data().to_vec::<f32>().unwrap());
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn peers_train_as_one_device_does() {
        // Each device a peer with its own replica and optimizer; the summed gradients of
        // the shards (11 images over 3 peers: uneven; a last batch of 3, one image each)
        // must give every step of one device on the whole batch, so after two epochs of
        // RMSProp the weights agree within float rounding. KD with a teacher per peer.
        let config = NetConfig::parse(NET).unwrap();
        let device = Default::default();
        B::seed(&device, 5);
        let net = Net::<B>::new(&config, &device).unwrap();
        let teacher = Net::<Flex>::new(&config, &device).unwrap();
        let mut pixels = Vec::new();
        for i in 0..25u32 {
            pixels.extend((0..144u32).map(|p| ((p * 7 + i * 13) % 251) as u8));
        }
        let data = Dataset {
            images: pixels,
            labels: (0..25).map(|i| (i % 4) as u8).collect(),
            height: 12,
            width: 12,
            channels: 1,
            classes: 4,
            name: "peers".into(),
        };
        let batcher =
            Batcher { normalization: Normalization { mean: vec![0.5], std: vec![0.25] }, augment: Augment::default() };
        let schedule = Schedule {
            epochs: 2,
            batch_size: 11,
            optimizer: OptimizerKind::Rmsprop,
            learning_rate: 1e-3,
            final_learning_rate: 0.0,
            seed: 3,
            augment: Augment::default(),
        };
        let kd = Objective::Distill {
            teacher,
            views: Views::PLAIN,
            background: vec![-2.0],
            tau: 3.0,
            lambda_start: 4.0,
            lambda_end: 1.0,
        };
        let dir = std::env::temp_dir().join(format!("fitnets-peers-{}", std::process::id()));
        let train = |devices: &[burn::tensor::Device<B>], name: &str| {
            let run = RunDir::create(&dir.join(name)).unwrap();
            let phase = Phase {
                name: "student",
                schedule: &schedule,
                train: &data,
                valid: &data,
                batcher: &batcher,
                run: &run,
                stop_after: None,
            };
            let model = Trainee { net: net.clone(), regressor: None };
            let workers = Workers::new(devices.to_vec(), None, std::time::Duration::from_secs(60)).unwrap();
            let (model, history) = fit(&phase, model, &kd, &workers).unwrap();
            (weights(&model), history)
        };
        let (alone, alone_history) = train(&[device], "one");
        let (peers, peers_history) = train(&[device, device, device], "three");
        assert_ne!(alone, weights(&Trainee { net: net.clone(), regressor: None }), "training moved the weights");
        let scale = alone.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = alone.iter().zip(&peers).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4 * scale, "the peers' weights differ by {diff} (scale {scale})");
        for (a, b) in alone_history.iter().zip(&peers_history) {
            assert!((a.train_loss - b.train_loss).abs() <= 1e-4 * a.train_loss.abs().max(1.0), "{a:?} {b:?}");
            assert_eq!(a.train_accuracy, b.train_accuracy);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_peers_sum_is_the_gradient_of_the_whole_batch() {
        // RMSProp hides a gradient's scale, so the weights alone would not show a wrong
        // weighting: the summed gradients themselves must be the whole batch's. Uneven
        // shards (11 images over 3 peers) and KD with a teacher copy per peer.
        let config = NetConfig::parse(NET).unwrap();
        let device = Default::default();
        let model = Trainee { net: Net::<B>::new(&config, &device).unwrap(), regressor: None };
        let teacher = Net::<Flex>::new(&config, &device).unwrap();
        let images = Tensor::<Flex, 4>::random([11, 1, 12, 12], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..11).map(|i| i % 4).collect();
        let labels = Tensor::<B, 1, Int>::from_data(burn::tensor::TensorData::new(labels, [11]), &device);
        let batch = || Batch::<B> { images: images.clone(), cached: None, labels: labels.clone() };
        let kd = Objective::Distill {
            teacher,
            views: Views::PLAIN,
            background: vec![0.0],
            tau: 3.0,
            lambda_start: 4.0,
            lambda_end: 1.0,
        };
        for objective in [Objective::Labels, kd] {
            let mut whole = shard_step(&model, &objective, batch(), 3, 10, None);
            let whole = gradients(&model.net, &whole.grads.take().unwrap());
            let collectives = super::super::collective::local(3, std::time::Duration::from_secs(60));
            let results: Vec<(GradientsParams, StepOutcome)> = std::thread::scope(|scope| {
                let handles: Vec<_> = collectives
                    .into_iter()
                    .enumerate()
                    .map(|(rank, collective)| {
                        let (model, objective, device, batch) = (model.clone(), &objective, &device, batch());
                        scope.spawn(move || {
                            let mut peer = Peer {
                                rank,
                                model,
                                optim: Optim::new(OptimizerKind::Rmsprop),
                                objective,
                                device,
                                collective: Some(Box::new(collective)),
                                history: None,
                            };
                            peer.step(batch, None, 3, 10).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (grads, outcome) in &results {
                assert!(outcome.loss_sum.is_finite());
                let summed = gradients(&model.net, grads);
                for (a, b) in whole.iter().zip(&summed) {
                    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                    assert!(diff <= 1e-5 * scale.max(1e-6), "gradients differ by {diff} (scale {scale})");
                }
            }
        }
    }
}
