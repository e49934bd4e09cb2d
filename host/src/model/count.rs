//! What a network costs: parameters and multiply-accumulates, per layer and in total,
//! computed from its config (the same figures whatever the backend).

use super::config::{LayerConfig, NetConfig};

/// The cost of one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCost {
    pub name: String,
    pub kind: &'static str,
    /// `[channels, height, width]` of its output.
    pub output: [usize; 3],
    /// Trainable parameters (batch-norm running statistics excluded).
    pub params: u64,
    /// Multiply-accumulates for one image.
    pub macs: u64,
}

/// Per-layer costs of `config` (checked first: see [`NetConfig::shapes`]).
pub fn layers(config: &NetConfig) -> anyhow::Result<Vec<LayerCost>> {
    let shapes = config.shapes()?;
    Ok(layers_of(config, &shapes))
}

/// Per-layer costs from the output shapes [`NetConfig::shapes`] computed. The products
/// saturate at `u64::MAX`, which the config's limits then refuse.
pub(crate) fn layers_of(config: &NetConfig, shapes: &[[usize; 3]]) -> Vec<LayerCost> {
    let mut input = [config.input[2], config.input[0], config.input[1]];
    let mut costs = Vec::with_capacity(shapes.len());
    let mul = |values: &[u64]| values.iter().fold(1u64, |acc, &v| acc.saturating_mul(v));
    for (i, (layer, &output)) in config.layers.iter().zip(shapes).enumerate() {
        let [c_in, h_in, w_in] = input.map(|v| v as u64);
        let (kind, params, macs) = match *layer {
            LayerConfig::Conv { units, pieces, kernel, batch_norm, .. } => {
                let maps = mul(&[units as u64, pieces as u64]);
                let fan_in = mul(&[c_in, kernel as u64, kernel as u64]);
                let cells = mul(&[output[1] as u64, output[2] as u64]);
                let norm = if batch_norm { maps.saturating_mul(2) } else { 0 };
                ("conv", mul(&[fan_in, maps]).saturating_add(maps).saturating_add(norm), mul(&[fan_in, maps, cells]))
            }
            LayerConfig::MaxPool { .. } => ("max_pool", 0, 0),
            LayerConfig::Dropout { .. } => ("dropout", 0, 0),
            LayerConfig::Dense { units, pieces, .. } => {
                let outs = mul(&[units as u64, pieces as u64]);
                let fan_in = mul(&[c_in, h_in, w_in]);
                ("dense", mul(&[fan_in, outs]).saturating_add(outs), mul(&[fan_in, outs]))
            }
        };
        let name = layer.name().map_or_else(|| format!("{kind}{i}"), str::to_string);
        costs.push(LayerCost { name, kind, output, params, macs });
        input = output;
    }
    costs
}

/// What training one network on batches of a given size holds in memory, roughly: its
/// weights with their gradients and optimizer state, and every layer's activations (the
/// pre-maxout maps too) kept for the backward pass, with their gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    pub params: u64,
    /// Bytes of float32 values that one image's forward pass keeps.
    pub activation_bytes_per_image: u64,
}

impl Footprint {
    pub fn of(config: &NetConfig) -> anyhow::Result<Footprint> {
        let shapes = config.shapes()?;
        let costs = layers_of(config, &shapes);
        let mut values = (config.input[0] * config.input[1] * config.input[2]) as u64;
        for (layer, shape) in config.layers.iter().zip(&shapes) {
            let pieces = match *layer {
                LayerConfig::Conv { pieces, .. } | LayerConfig::Dense { pieces, .. } => pieces as u64,
                _ => 1,
            };
            let out = (shape[0] * shape[1] * shape[2]) as u64;
            values = values.saturating_add(out.saturating_mul(pieces + 1));
        }
        Ok(Footprint {
            params: costs.iter().map(|c| c.params).fold(0, u64::saturating_add),
            activation_bytes_per_image: values.saturating_mul(4),
        })
    }

    /// Bytes for training on batches of `batch` images: the weights four times (values,
    /// gradients, two optimizer moments) and the activations twice (values, gradients).
    pub fn training_bytes(&self, batch: usize) -> u64 {
        let weights = self.params.saturating_mul(16);
        let activations = self.activation_bytes_per_image.saturating_mul(batch as u64).saturating_mul(2);
        weights.saturating_add(activations)
    }
}

impl Footprint {
    /// Bytes for classifying batches of `batch` images: the weights once, one batch's
    /// activations.
    pub fn inference_bytes(&self, batch: usize) -> u64 {
        self.params.saturating_mul(4).saturating_add(self.activation_bytes_per_image.saturating_mul(batch as u64))
    }
}

/// Memory this machine can give a new process, in bytes (`MemAvailable` on Linux), or
/// `None` where it cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Refuses, with the numbers, to classify with `config` in batches of `batch` when that
/// would need more memory than the machine has available.
pub fn check_inference_memory(config: &NetConfig, batch: usize) -> anyhow::Result<()> {
    let footprint = Footprint::of(config)?;
    let task = format!("classifying {batch} images at a time");
    refuse_beyond_available(config, &footprint, footprint.inference_bytes(batch), &task, "a smaller network")
}

/// Refuses, with the numbers, to train `config` on batches of `batch` when that would
/// need more memory than the machine has available.
pub fn check_memory(config: &NetConfig, batch: usize) -> anyhow::Result<()> {
    let footprint = Footprint::of(config)?;
    let task = format!("training on batches of {batch}");
    refuse_beyond_available(config, &footprint, footprint.training_bytes(batch), &task, "a smaller --batch or network")
}

/// The error of [`check_memory`] and [`check_inference_memory`] when `need` bytes are
/// more than the machine has available (nothing is refused where that is unknown).
fn refuse_beyond_available(
    config: &NetConfig,
    footprint: &Footprint,
    need: u64,
    task: &str,
    fix: &str,
) -> anyhow::Result<()> {
    let Some(available) = available_memory() else { return Ok(()) };
    anyhow::ensure!(
        need <= available,
        "{}: {task} needs about {:.1} GB ({} parameters, {:.1} MB of activations per image), but this \
         machine has {:.1} GB available: use {fix}",
        config.name,
        need as f64 / 1e9,
        footprint.params,
        footprint.activation_bytes_per_image as f64 / 1e6,
        available as f64 / 1e9
    );
    Ok(())
}

/// Total `(parameters, MACs)`.
pub fn totals(config: &NetConfig) -> anyhow::Result<(u64, u64)> {
    let costs = layers(config)?;
    let sum = |f: fn(&LayerCost) -> u64| costs.iter().map(f).fold(0, u64::saturating_add);
    Ok((sum(|c| c.params), sum(|c| c.macs)))
}
