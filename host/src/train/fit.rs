//! The training loop shared by every phase: the phase's checkpoint resumed, the teacher's
//! outputs cached when that pays, and the peers (one per device, in `peer`) started and joined.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{CheckpointState, history_file};
use super::collective::{Collective, Local, PeerError, local, local_over};
use super::optim::{Optim, Recorder32};
use super::peer::{Context, Peer};
use super::phase::{EpochMetrics, Objective, Phase, Trainee};
use super::teacher_cache::{CachedOutput, Placements, TeacherCache};
use super::workers::Workers;

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

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;

    use burn::optim::GradientsParams;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Int, Tensor};

    use super::super::batch::Batcher;
    use super::super::schedule::{OptimizerKind, Schedule};
    use super::super::step::{Batch, StepOutcome, shard_step};
    use super::*;
    use crate::backend::Flex;
    use crate::data::Augment;
    use crate::data::Dataset;
    use crate::data::Normalization;
    use crate::model::NetConfig;
    use crate::model::Views;
    use crate::model::net::Layer;
    use crate::model::net::Net;
    use crate::run::dir::RunDir;

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
