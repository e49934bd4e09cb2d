//! Assembles the int8 model: a [`FloatModel`] and its calibrated ranges in, a
//! [`ModelSpec`] for `shared`'s encoder out, every layer proven free of int32 overflow.
//!
//! Layer mapping: a conv becomes `Conv2d` (fused ReLU as its activation clamp) and, with
//! `k > 1` pieces, `Maxout { k }`; a dense layer becomes `FullyConnected` (after a
//! `Flatten` when its input is a feature map) and maybe `Maxout`; max pooling becomes
//! `MaxPool2d`. A conv and its maxout share the output quantization of the calibrated
//! post-maxout tensor; pooling keeps its input's.

use anyhow::{Context as _, anyhow, ensure};
use fitnets_shared::Shape;
use fitnets_shared::format::encode::{AffineSpec, InputSpec, LayerSpec, ModelSpec, pixel_table};
use fitnets_shared::format::{Activation, MAX_LABEL_LEN, MAX_NAME_LEN, Quant};

use super::float::{AffineKind, FloatLayer, FloatModel};
use super::overflow;
use super::scheme::Range;
use super::scheme::{activation_quant, channel_weight_scale, input_quant, input_range, quantize_channel};
use crate::data::Normalization;

/// One quantized activation tensor, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorQuant {
    /// `input`, or the label of the affine layer whose output it is.
    pub name: String,
    /// The float range that was quantized (the input's exact range, or the calibrated one).
    pub range: Range,
    pub quant: Quant,
}

/// How the weight scales of a maxout unit's pieces are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitScales {
    /// Each output channel its own (the most precise weights).
    #[default]
    PerChannel,
    /// The pieces of each maxout unit one, the largest of theirs: they then share their
    /// requantization, and the device requantizes once per unit instead of once per
    /// piece (exact: requantization is monotonic). Costs the smaller pieces a little
    /// weight precision.
    Shared,
}

impl std::fmt::Display for UnitScales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnitScales::PerChannel => "per-channel",
            UnitScales::Shared => "shared",
        })
    }
}

/// The int8 model and how each tensor was quantized.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    pub spec: ModelSpec,
    /// The input, then each affine layer's output.
    pub tensors: Vec<TensorQuant>,
}

/// Quantizes `model`, whose inputs are raw pixels normalized with `normalization`;
/// `ranges` has one calibrated range per affine layer and `labels` one name per class.
///
/// Fails with an [`overflow::Overflow`] (inside the `anyhow::Error`) naming the layer
/// and channel if an int32 accumulator could overflow for some input.
pub fn quantize(
    model: &FloatModel,
    normalization: &Normalization,
    ranges: &[Range],
    labels: &[String],
    unit_scales: UnitScales,
) -> anyhow::Result<Quantized> {
    let affines = model.affines().count();
    ensure!(ranges.len() == affines, "{} calibrated ranges for {affines} affine layers", ranges.len());
    ensure!(labels.len() == model.classes(), "{} labels for {} classes", labels.len(), model.classes());
    if let Some(long) = labels.iter().find(|l| l.len() > MAX_LABEL_LEN) {
        anyhow::bail!("label `{long}` is longer than {MAX_LABEL_LEN} bytes");
    }
    let [h, w, c] = model.input();
    ensure!(
        normalization.mean.len() == c,
        "the normalization has {} channels, the model {c}",
        normalization.mean.len()
    );
    let dim = |v: usize| u16::try_from(v).context("a dimension is too large for the format");
    let input_shape = Shape::new(dim(h)?, dim(w)?, dim(c)?);

    let in_quant = input_quant(normalization);
    let mut tensors = vec![TensorQuant { name: "input".into(), range: input_range(normalization), quant: in_quant }];
    let mut quant = in_quant;
    let mut layers = Vec::new();
    let mut ranges = ranges.iter();
    for (layer, [lh, lw, _]) in model.layers().iter().zip(model.input_shapes()) {
        let a = match layer {
            FloatLayer::MaxPool(window) => {
                layers.push(LayerSpec::MaxPool2d { window: *window });
                continue;
            }
            FloatLayer::Affine(a) => a,
        };
        let range = *ranges.next().expect("one range per affine layer");
        let out = activation_quant(range);
        let fan_in = a.fan_in();
        let mut affine = AffineSpec {
            activation: if a.relu { Activation::Relu } else { Activation::None },
            weights: Vec::with_capacity(a.weights.len()),
            bias: Vec::with_capacity(a.outputs()),
            multipliers: Vec::with_capacity(a.outputs()),
            shifts: Vec::with_capacity(a.outputs()),
            output: out,
        };
        // The scale each channel must at least take: its unit's, when units share.
        let own: Vec<f64> = a
            .weights
            .chunks_exact(fan_in)
            .zip(&a.bias)
            .map(|(row, &bias)| channel_weight_scale(row, bias, quant.scale))
            .collect();
        let floor: Vec<f64> = match unit_scales {
            UnitScales::Shared if a.pieces > 1 => own
                .chunks(a.pieces)
                .flat_map(|unit| {
                    let shared = unit.iter().copied().fold(0.0, f64::max);
                    std::iter::repeat_n(shared, unit.len())
                })
                .collect(),
            _ => vec![0.0; own.len()],
        };
        for (o, (row, &bias)) in a.weights.chunks_exact(fan_in).zip(&a.bias).enumerate() {
            let channel = quantize_channel(row, bias, quant.scale, out.scale, floor[o]).map_err(|e| {
                anyhow!(
                    "{}: output channel {o} needs a requantization multiplier of {:.3e} (at most 2^29): its calibrated \
                     output range [{}, {}] is far too narrow for its inputs",
                    a.label,
                    e.real,
                    range.min,
                    range.max
                )
            })?;
            affine.weights.extend(channel.weights);
            affine.bias.push(channel.bias);
            affine.multipliers.push(channel.multiplier);
            affine.shifts.push(channel.shift);
        }
        overflow::prove(&a.label, &affine.weights, &affine.bias, &affine.shifts, quant.zero_point)?;
        match a.kind {
            AffineKind::Conv(window) => layers.push(LayerSpec::Conv2d { window, affine }),
            AffineKind::Dense => {
                if (lh, lw) != (1, 1) {
                    layers.push(LayerSpec::Flatten);
                }
                layers.push(LayerSpec::FullyConnected { affine });
            }
        }
        if a.pieces > 1 {
            let pieces = u16::try_from(a.pieces).context("too many maxout pieces")?;
            layers.push(LayerSpec::Maxout { pieces });
        }
        tensors.push(TensorQuant { name: a.label.clone(), range, quant: out });
        quant = out;
    }
    let spec = ModelSpec {
        name: truncate(model.name(), MAX_NAME_LEN).to_string(),
        input: InputSpec {
            shape: input_shape,
            quant: in_quant,
            pixel_table: pixel_table(&normalization.mean, &normalization.std, in_quant),
        },
        labels: labels.to_vec(),
        layers,
    };
    Ok(Quantized { spec, tensors })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
