//! From a trained burn [`Net`] to a [`FloatModel`]: what the device need not compute is
//! folded away and every tensor is laid out as the blob wants it.
//!
//! - Conv weights go from burn's OIHW to OHWI.
//! - Batch norm (inference statistics) is folded into its conv:
//!   `w' = w · γ/√(σ²+ε)`, `b' = (b − μ) · γ/√(σ²+ε) + β`, per output channel.
//! - Dropout is the identity at inference and disappears.
//! - burn's `Linear` weight is `[in, out]`; the blob's is OI. A dense layer after a
//!   feature map sees burn's channel-major (CHW) flattening, the blob's `Flatten` gives
//!   NHWC order, so its weight columns are permuted from CHW to HWC.
//! - Maxout needs no reordering: `net` already keeps the pieces of unit `g` in channels
//!   `g*k .. (g+1)*k`, which is `shared`'s unit-major layout.
//! - Max pooling with `ceil` becomes extra padding after (bottom/right), which `shared`
//!   skips like any padding cell, as burn does.

use anyhow::{Context as _, bail, ensure};
use burn::module::Param;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use fitnets_shared::ops::Window;

use super::float::{Affine, AffineKind, FloatLayer, FloatModel};
use crate::model::config::LayerConfig;
use crate::model::net::{ConvLayer, DenseLayer, Layer};
use crate::model::{Net, NetConfig};

/// The float model of `net`, built from `config`.
pub fn float_model<B: Backend>(net: &Net<B>, config: &NetConfig) -> anyhow::Result<FloatModel> {
    let shapes = config.shapes()?;
    ensure!(
        net.layers.len() == config.layers.len(),
        "{}: the network has {} layers, its config {}",
        config.name,
        net.layers.len(),
        config.layers.len()
    );
    let [h, w, c] = config.input;
    let mut shape = [c, h, w];
    let mut layers = Vec::new();
    for (i, ((layer, layer_config), &out)) in net.layers.iter().zip(&config.layers).zip(&shapes).enumerate() {
        let label = match layer_config.name() {
            Some(name) => format!("layer {i} ({name})"),
            None => format!("layer {i}"),
        };
        let converted = match (layer, layer_config) {
            (Layer::Conv(conv), &LayerConfig::Conv { kernel, stride, padding, .. }) => {
                let (pt, pb) = padding.amounts(shape[1], kernel, stride);
                let (pl, pr) = padding.amounts(shape[2], kernel, stride);
                let window =
                    window([kernel, kernel], [stride, stride], [pt, pb, pl, pr]).with_context(|| label.clone())?;
                Some(FloatLayer::Affine(conv_affine(conv, window, label.clone())?))
            }
            (Layer::Pool(_), &LayerConfig::MaxPool { kernel, stride, padding, .. }) => {
                let stride = stride.unwrap_or(kernel);
                // Padding after that makes floor division give the config's (maybe ceil) size.
                let after = |size: usize, out: usize| ((out - 1) * stride + kernel).saturating_sub(size + padding);
                let pads = [padding, after(shape[1], out[1]), padding, after(shape[2], out[2])];
                let window = window([kernel, kernel], [stride, stride], pads).with_context(|| label.clone())?;
                Some(FloatLayer::MaxPool(window))
            }
            (Layer::Dropout(_), LayerConfig::Dropout { .. }) => None,
            (Layer::Dense(dense), LayerConfig::Dense { .. }) => {
                Some(FloatLayer::Affine(dense_affine(dense, shape, label.clone())?))
            }
            _ => bail!("{}: {label} of the network does not match its config", config.name),
        };
        layers.extend(converted);
        shape = out;
    }
    FloatModel::new(&config.name, config.input, config.classes, layers)
}

/// A `shared` window; `pads` is `[top, bottom, left, right]`.
fn window(kernel: [usize; 2], stride: [usize; 2], pads: [usize; 4]) -> anyhow::Result<Window> {
    let n = |v: usize| u16::try_from(v).context("window dimension too large for the format");
    let window = Window {
        kernel_h: n(kernel[0])?,
        kernel_w: n(kernel[1])?,
        stride_h: n(stride[0])?,
        stride_w: n(stride[1])?,
        pad_top: n(pads[0])?,
        pad_bottom: n(pads[1])?,
        pad_left: n(pads[2])?,
        pad_right: n(pads[3])?,
    };
    ensure!(window.is_sane(), "window {window:?}: every padding must be smaller than the kernel");
    Ok(window)
}

fn values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> anyhow::Result<Vec<f32>> {
    tensor.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading a tensor: {e:?}"))
}

fn bias<B: Backend>(bias: Option<&Param<Tensor<B, 1>>>, outputs: usize) -> anyhow::Result<Vec<f32>> {
    match bias {
        Some(b) => values(b.val()),
        None => Ok(vec![0.0; outputs]),
    }
}

fn conv_affine<B: Backend>(layer: &ConvLayer<B>, window: Window, label: String) -> anyhow::Result<Affine> {
    let conv = &layer.conv;
    let [outputs, inputs, kh, kw] = conv.weight.dims();
    ensure!(conv.groups == 1 && conv.dilation == [1, 1], "{label}: grouped or dilated convs are not supported");
    ensure!(
        [kh, kw] == [usize::from(window.kernel_h), usize::from(window.kernel_w)],
        "{label}: kernel {kh}x{kw} does not match the config"
    );
    let oihw = values(conv.weight.val())?;
    let mut weights = vec![0f32; oihw.len()];
    for o in 0..outputs {
        for i in 0..inputs {
            for y in 0..kh {
                for x in 0..kw {
                    weights[((o * kh + y) * kw + x) * inputs + i] = oihw[((o * inputs + i) * kh + y) * kw + x];
                }
            }
        }
    }
    let mut bias = bias(conv.bias.as_ref(), outputs)?;
    if let Some(norm) = &layer.norm {
        fold_batch_norm(norm, &mut weights, &mut bias)?;
    }
    Ok(Affine { label, kind: AffineKind::Conv(window), weights, bias, pieces: layer.pieces, relu: layer.relu })
}

/// Folds inference-mode batch norm into the preceding conv's weights (OHWI) and bias.
fn fold_batch_norm<B: Backend>(norm: &BatchNorm<B>, weights: &mut [f32], bias: &mut [f32]) -> anyhow::Result<()> {
    let gamma = values(norm.gamma.val())?;
    let beta = values(norm.beta.val())?;
    let mean = values(norm.running_mean.value())?;
    let var = values(norm.running_var.value())?;
    let outputs = bias.len();
    ensure!([gamma.len(), beta.len(), mean.len(), var.len()] == [outputs; 4], "batch norm has the wrong width");
    let fan_in = weights.len() / outputs;
    for o in 0..outputs {
        let scale = f64::from(gamma[o]) / (f64::from(var[o]) + norm.epsilon).sqrt();
        for w in &mut weights[o * fan_in..][..fan_in] {
            *w = (f64::from(*w) * scale) as f32;
        }
        bias[o] = ((f64::from(bias[o]) - f64::from(mean[o])) * scale + f64::from(beta[o])) as f32;
    }
    Ok(())
}

/// `shape` is the input's `[channels, height, width]`.
fn dense_affine<B: Backend>(layer: &DenseLayer<B>, [c, h, w]: [usize; 3], label: String) -> anyhow::Result<Affine> {
    let [inputs, outputs] = layer.linear.weight.dims();
    ensure!(inputs == c * h * w, "{label}: {inputs} inputs, but the layer before gives {c}x{h}x{w}");
    let io = values(layer.linear.weight.val())?;
    let mut weights = vec![0f32; io.len()];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let chw = (ch * h + y) * w + x;
                let hwc = (y * w + x) * c + ch;
                for o in 0..outputs {
                    weights[o * inputs + hwc] = io[chw * outputs + o];
                }
            }
        }
    }
    let bias = bias(layer.linear.bias.as_ref(), outputs)?;
    Ok(Affine { label, kind: AffineKind::Dense, weights, bias, pieces: layer.pieces, relu: layer.relu })
}
