//! A plain float model laid out as the blob is, and its forward pass.
//!
//! Activations are NHWC with a batch of one, conv weights OHWI, fully connected weights
//! OI over the NHWC-flattened input, and a maxout layer's `units * pieces` channels are
//! unit-major (the pieces of unit `g` are channels `g*k .. (g+1)*k`). Batch norm is
//! already folded into the weights and dropout is gone (see [`super::extract`]), so
//! [`FloatModel::forward`] is the whole inference: it is what calibration measures and
//! what the int8 model approximates.

use anyhow::{bail, ensure};
use fitnets_shared::ops::Window;

use crate::data::Normalization;

/// A network as the device computes it, in float.
///
/// Invariant (checked by [`FloatModel::new`]): every layer fits the shape before it, its
/// buffers have the lengths that shape needs, and the last layer produces `classes`
/// values.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatModel {
    name: String,
    input: [usize; 3],
    classes: usize,
    layers: Vec<FloatLayer>,
}

/// One layer of a [`FloatModel`].
#[derive(Clone, Debug, PartialEq)]
pub enum FloatLayer {
    /// A conv or fully connected layer with its nonlinearity.
    Affine(Affine),
    /// Max pooling that looks only at the cells of each window inside the image.
    MaxPool(Window),
}

/// Whether an [`Affine`] slides a window or sees its whole input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineKind {
    Conv(Window),
    /// Fully connected over the NHWC-flattened input.
    Dense,
}

/// A conv or fully connected layer, then maxout over `pieces` or a ReLU.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    /// Names the layer in messages, e.g. `layer 3 (conv2)`.
    pub label: String,
    pub kind: AffineKind,
    /// `outputs * fan_in` values: OHWI for a conv, OI for a dense layer.
    pub weights: Vec<f32>,
    /// One per output channel; `outputs = bias.len() = units * pieces`.
    pub bias: Vec<f32>,
    /// Maxout pieces; 1 for none.
    pub pieces: usize,
    /// A ReLU after the layer (only with `pieces == 1`).
    pub relu: bool,
}

impl Affine {
    /// Output channels before maxout.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// Weights per output channel.
    pub fn fan_in(&self) -> usize {
        self.weights.len() / self.outputs().max(1)
    }
}

/// `[height, width, channels]` after `layer` on an input of `shape`, or why it does not fit.
fn output_shape(layer: &FloatLayer, [h, w, c]: [usize; 3]) -> anyhow::Result<[usize; 3]> {
    let window_out = |window: &Window| {
        let (h16, w16) = (u16::try_from(h)?, u16::try_from(w)?);
        match window.output_size(h16, w16) {
            Some((oh, ow)) => Ok([usize::from(oh), usize::from(ow)]),
            None => bail!("window {window:?} does not fit a {h}x{w} input"),
        }
    };
    match layer {
        FloatLayer::MaxPool(window) => {
            let [oh, ow] = window_out(window)?;
            Ok([oh, ow, c])
        }
        FloatLayer::Affine(a) => {
            let outputs = a.outputs();
            ensure!(outputs > 0 && a.pieces > 0, "{}: no outputs", a.label);
            ensure!(outputs.is_multiple_of(a.pieces), "{}: {outputs} outputs in pieces of {}", a.label, a.pieces);
            ensure!(a.pieces == 1 || !a.relu, "{}: maxout takes no ReLU", a.label);
            let (fan_in, [oh, ow]) = match a.kind {
                AffineKind::Conv(window) => {
                    (usize::from(window.kernel_h) * usize::from(window.kernel_w) * c, window_out(&window)?)
                }
                AffineKind::Dense => (h * w * c, [1, 1]),
            };
            ensure!(
                a.weights.len() == outputs * fan_in,
                "{}: {} weights, expected {outputs} outputs x {fan_in} inputs",
                a.label,
                a.weights.len()
            );
            Ok([oh, ow, outputs / a.pieces])
        }
    }
}

impl FloatModel {
    /// Checks that the layers chain from `input` (`[height, width, channels]`) to
    /// `classes` outputs.
    pub fn new(name: &str, input: [usize; 3], classes: usize, layers: Vec<FloatLayer>) -> anyhow::Result<FloatModel> {
        ensure!(input.iter().all(|&d| d > 0), "{name}: empty input {input:?}");
        let mut shape = input;
        for layer in &layers {
            shape = output_shape(layer, shape)?;
        }
        ensure!(shape == [1, 1, classes], "{name}: the last layer gives {shape:?}, not {classes} classes");
        Ok(FloatModel { name: name.to_string(), input, classes, layers })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[height, width, channels]` of the input.
    pub fn input(&self) -> [usize; 3] {
        self.input
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    pub fn layers(&self) -> &[FloatLayer] {
        &self.layers
    }

    /// The affine layers in order: each has one calibrated output tensor.
    pub fn affines(&self) -> impl Iterator<Item = &Affine> {
        self.layers.iter().filter_map(|l| match l {
            FloatLayer::Affine(a) => Some(a),
            FloatLayer::MaxPool(_) => None,
        })
    }

    /// The input shape of every layer, `[height, width, channels]`.
    pub fn input_shapes(&self) -> Vec<[usize; 3]> {
        let mut shape = self.input;
        let mut shapes = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            shapes.push(shape);
            shape = output_shape(layer, shape).expect("checked by FloatModel::new");
        }
        shapes
    }

    /// The logits of one normalized NHWC image. `visit(i, y)` sees the output of the
    /// `i`-th affine layer after its maxout or ReLU: the tensors that get quantized.
    ///
    /// Panics if `x` does not have `height * width * channels` values.
    pub fn forward(&self, x: &[f32], mut visit: impl FnMut(usize, &[f32])) -> Vec<f32> {
        let [h, w, c] = self.input;
        assert_eq!(x.len(), h * w * c, "input length");
        let mut x = x.to_vec();
        let mut affine = 0;
        for (layer, shape) in self.layers.iter().zip(self.input_shapes()) {
            x = match layer {
                FloatLayer::MaxPool(window) => max_pool(window, &x, shape),
                FloatLayer::Affine(a) => {
                    let y = match a.kind {
                        AffineKind::Conv(window) => conv(a, &window, &x, shape),
                        AffineKind::Dense => dense(a, &x),
                    };
                    let y = finish(y, a.pieces, a.relu);
                    visit(affine, &y);
                    affine += 1;
                    y
                }
            };
        }
        x
    }
}

/// Normalizes one NHWC image of raw pixels exactly as training did
/// ([`Normalization::apply`]'s arithmetic), keeping the NHWC order.
pub fn normalize(image: &[u8], normalization: &Normalization, out: &mut [f32]) {
    let channels = normalization.mean.len();
    assert_eq!(image.len(), out.len(), "image and output lengths differ");
    for (i, (o, &v)) in out.iter_mut().zip(image).enumerate() {
        let (mean, std) = (normalization.mean[i % channels], normalization.std[i % channels]);
        *o = f32::from(v) * (1.0 / (255.0 * std)) + (-mean / std);
    }
}

/// `[oh, ow, outputs]` before the nonlinearity. Padding cells contribute nothing.
fn conv(a: &Affine, window: &Window, x: &[f32], [h, w, c]: [usize; 3]) -> Vec<f32> {
    let (kh, kw) = (usize::from(window.kernel_h), usize::from(window.kernel_w));
    let (sh, sw) = (usize::from(window.stride_h), usize::from(window.stride_w));
    let (pt, pl) = (usize::from(window.pad_top), usize::from(window.pad_left));
    let (oh, ow) =
        window.output_size(h as u16, w as u16).map(|(a, b)| (usize::from(a), usize::from(b))).unwrap_or((0, 0));
    let outputs = a.outputs();
    let mut y = vec![0f32; oh * ow * outputs];
    for oy in 0..oh {
        for ox in 0..ow {
            let cell = &mut y[(oy * ow + ox) * outputs..][..outputs];
            cell.copy_from_slice(&a.bias);
            for ky in 0..kh {
                let Some(iy) = (oy * sh + ky).checked_sub(pt).filter(|&iy| iy < h) else { continue };
                for kx in 0..kw {
                    let Some(ix) = (ox * sw + kx).checked_sub(pl).filter(|&ix| ix < w) else { continue };
                    let pixel = &x[(iy * w + ix) * c..][..c];
                    for (o, acc) in cell.iter_mut().enumerate() {
                        let weights = &a.weights[((o * kh + ky) * kw + kx) * c..][..c];
                        *acc += pixel.iter().zip(weights).map(|(p, q)| p * q).sum::<f32>();
                    }
                }
            }
        }
    }
    y
}

fn dense(a: &Affine, x: &[f32]) -> Vec<f32> {
    let fan_in = a.fan_in();
    a.bias
        .iter()
        .enumerate()
        .map(|(o, b)| b + x.iter().zip(&a.weights[o * fan_in..][..fan_in]).map(|(p, q)| p * q).sum::<f32>())
        .collect()
}

/// Maxout over consecutive groups of `pieces` channels, or a ReLU.
fn finish(y: Vec<f32>, pieces: usize, relu: bool) -> Vec<f32> {
    if pieces > 1 {
        return y.chunks_exact(pieces).map(|g| g.iter().copied().fold(f32::NEG_INFINITY, f32::max)).collect();
    }
    if relu { y.into_iter().map(|v| v.max(0.0)).collect() } else { y }
}

fn max_pool(window: &Window, x: &[f32], [h, w, c]: [usize; 3]) -> Vec<f32> {
    let (kh, kw) = (usize::from(window.kernel_h), usize::from(window.kernel_w));
    let (sh, sw) = (usize::from(window.stride_h), usize::from(window.stride_w));
    let (pt, pl) = (usize::from(window.pad_top), usize::from(window.pad_left));
    let (oh, ow) =
        window.output_size(h as u16, w as u16).map(|(a, b)| (usize::from(a), usize::from(b))).unwrap_or((0, 0));
    let mut y = vec![f32::NEG_INFINITY; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            let cell = &mut y[(oy * ow + ox) * c..][..c];
            for ky in 0..kh {
                let Some(iy) = (oy * sh + ky).checked_sub(pt).filter(|&iy| iy < h) else { continue };
                for kx in 0..kw {
                    let Some(ix) = (ox * sw + kx).checked_sub(pl).filter(|&ix| ix < w) else { continue };
                    for (m, &v) in cell.iter_mut().zip(&x[(iy * w + ix) * c..][..c]) {
                        *m = m.max(v);
                    }
                }
            }
        }
    }
    y
}
