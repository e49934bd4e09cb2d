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

/// Per-layer costs of `config`.
pub fn layers(config: &NetConfig) -> anyhow::Result<Vec<LayerCost>> {
    let shapes = config.shapes()?;
    let mut input = [config.input[2], config.input[0], config.input[1]];
    let mut costs = Vec::with_capacity(shapes.len());
    for (i, (layer, &output)) in config.layers.iter().zip(&shapes).enumerate() {
        let [c_in, h_in, w_in] = input.map(|v| v as u64);
        let (kind, params, macs) = match *layer {
            LayerConfig::Conv { units, pieces, kernel, batch_norm, .. } => {
                let maps = (units * pieces) as u64;
                let fan_in = c_in * (kernel * kernel) as u64;
                let cells = (output[1] * output[2]) as u64;
                let norm = if batch_norm { 2 * maps } else { 0 };
                ("conv", fan_in * maps + maps + norm, fan_in * maps * cells)
            }
            LayerConfig::MaxPool { .. } => ("max_pool", 0, 0),
            LayerConfig::Dropout { .. } => ("dropout", 0, 0),
            LayerConfig::Dense { units, pieces, .. } => {
                let outs = (units * pieces) as u64;
                let fan_in = c_in * h_in * w_in;
                ("dense", fan_in * outs + outs, fan_in * outs)
            }
        };
        let name = layer.name().map_or_else(|| format!("{kind}{i}"), str::to_string);
        costs.push(LayerCost { name, kind, output, params, macs });
        input = output;
    }
    Ok(costs)
}

/// Total `(parameters, MACs)`.
pub fn totals(config: &NetConfig) -> anyhow::Result<(u64, u64)> {
    let costs = layers(config)?;
    Ok((costs.iter().map(|c| c.params).sum(), costs.iter().map(|c| c.macs).sum()))
}
