//! Describes a model blob: its layers, parameters, multiply-accumulates and arena.

use std::fmt::Write as _;

use fitnets_shared::ops::Op;
use fitnets_shared::plan::{self, StepOp};
use fitnets_shared::{Model, Shape};

/// Per-layer figures of a validated model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    pub index: usize,
    pub kind: &'static str,
    pub input: Shape,
    pub output: Shape,
    /// Weights plus biases.
    pub params: u64,
    /// Multiply-accumulates of one inference.
    pub macs: u64,
}

/// Parameters and MACs of every layer.
pub fn layers(model: &Model<'_>) -> anyhow::Result<Vec<LayerSummary>> {
    let mut out = Vec::new();
    for (index, layer) in model.layers().enumerate() {
        let layer = layer?;
        let (kind, params, macs) = match layer.op {
            Op::Conv2d(conv) => {
                let weights = conv.weights.len() as u64;
                let per_cell = weights;
                let cells = u64::from(layer.output.height) * u64::from(layer.output.width);
                ("conv2d", weights + conv.bias.len() as u64, per_cell * cells)
            }
            Op::FullyConnected(fc) => {
                let weights = fc.weights.len() as u64;
                ("fully_connected", weights + fc.bias.len() as u64, weights)
            }
            Op::Maxout { .. } => ("maxout", 0, 0),
            Op::MaxPool2d(_) => ("max_pool2d", 0, 0),
            Op::AvgPool2d(_) => ("avg_pool2d", 0, 0),
            Op::GlobalAvgPool(_) => ("global_avg_pool", 0, 0),
            Op::Flatten => ("flatten", 0, 0),
        };
        out.push(LayerSummary { index, kind, input: layer.input, output: layer.output, params, macs });
    }
    Ok(out)
}

fn shape(s: Shape) -> String {
    format!("{}x{}x{}", s.height, s.width, s.channels)
}

/// A human-readable description of `blob`.
pub fn describe(blob: &[u8]) -> anyhow::Result<String> {
    let model = Model::from_bytes(blob)?;
    let mut text = String::new();
    let input = model.input_shape();
    writeln!(text, "model     {}", model.name())?;
    writeln!(text, "blob      {} bytes, crc {:#010x}", blob.len(), model.crc())?;
    writeln!(text, "input     {} (HxWxC), zero point {}", shape(input), model.input_quant().zero_point)?;
    let labels: Vec<&str> = model.labels().collect();
    writeln!(text, "classes   {}: {}", model.classes(), labels.join(", "))?;
    writeln!(text)?;
    writeln!(
        text,
        "{:>3}  {:<16} {:>12} {:>12} {:>9} {:>11}",
        "#", "layer", "in (HxWxC)", "out (HxWxC)", "params", "MACs"
    )?;
    let summaries = layers(&model)?;
    for l in &summaries {
        writeln!(
            text,
            "{:>3}  {:<16} {:>12} {:>12} {:>9} {:>11}",
            l.index,
            l.kind,
            shape(l.input),
            shape(l.output),
            l.params,
            l.macs
        )?;
    }
    let params: u64 = summaries.iter().map(|l| l.params).sum();
    let macs: u64 = summaries.iter().map(|l| l.macs).sum();
    writeln!(text, "     {:<16} {:>12} {:>12} {:>9} {:>11}", "total", "", "", params, macs)?;
    writeln!(text)?;
    let fused = plan::steps(&model).filter(|s| matches!(s, Ok(s) if !matches!(s.op, StepOp::Single(_)))).count();
    writeln!(
        text,
        "arena     {} bytes ({} fused conv+maxout steps; {} bytes unfused)",
        plan::arena_bytes(&model),
        fused,
        plan::unfused_arena_bytes(&model)
    )?;
    Ok(text)
}
