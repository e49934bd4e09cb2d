//! The shapes of a network's layers, computed and checked: every layer fits its input,
//! and the network stays within [`limits`](super::config::limits).

use anyhow::{Context as _, bail, ensure};

use super::config::{Activation, LayerConfig, NetConfig, Padding, limits};

impl NetConfig {
    /// The output shape `[channels, height, width]` of every layer, checking that each
    /// layer fits its input and every size is within [`limits`]. Dense outputs are
    /// `[units, 1, 1]`.
    pub fn shapes(&self) -> anyhow::Result<Vec<[usize; 3]>> {
        use limits::*;
        let [h, w, c] = self.input;
        ensure!(
            (1..=MAX_SIDE).contains(&h) && (1..=MAX_SIDE).contains(&w) && (1..=MAX_CHANNELS).contains(&c),
            "input = [{h}, {w}, {c}] (height, width, channels): height and width must be 1 to {MAX_SIDE}, \
             channels 1 to {MAX_CHANNELS}"
        );
        ensure!(
            (2..=MAX_CLASSES).contains(&self.classes),
            "classes = {}: a classifier needs 2 to {MAX_CLASSES} classes",
            self.classes
        );
        ensure!(!self.layers.is_empty(), "no layers: add [[layers]] tables, the last a dense layer with the classes");
        ensure!(self.layers.len() <= MAX_LAYERS, "{} layers: at most {MAX_LAYERS}", self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(name) = layer.name()
                && let Some(j) = self.layers[..i].iter().position(|l| l.name() == Some(name))
            {
                bail!("layers {j} and {i} are both named `{name}`: layer names must be unique");
            }
        }
        if let Some(regressor) = &self.regressor {
            if let Some(k) = regressor.kernel {
                ensure!((1..=MAX_KERNEL).contains(&k), "[regressor] kernel = {k}: it must be 1 to {MAX_KERNEL}");
            }
            if let Some(p) = regressor.pieces {
                ensure!(
                    (1..=MAX_PIECES).contains(&p),
                    "[regressor] pieces = {p}: it must be 1 (a plain conv) to {MAX_PIECES}"
                );
            }
        }
        let in_range = |what: &str, v: usize, max: usize| {
            ensure!((1..=max).contains(&v), "{what} = {v}: it must be 1 to {max}");
            Ok(())
        };
        // A conv's or dense layer's outputs: `units` of `pieces` each, at most `max` in all.
        let outputs = |units: usize, pieces: usize, activation: Activation, max: usize| {
            in_range("units", units, max)?;
            in_range("pieces", pieces, MAX_PIECES)?;
            ensure!(units * pieces <= max, "units * pieces = {}: at most {max} outputs", units * pieces);
            ensure!(pieces == 1 || activation == Activation::None, "maxout takes no activation");
            anyhow::Ok(())
        };
        let mut shape = [c, h, w];
        let mut after_dense = false;
        let mut shapes = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let at = || match layer.name() {
                Some(name) => format!("layer {i} `{name}` ({})", layer.kind()),
                None => format!("layer {i} ({})", layer.kind()),
            };
            shape = match *layer {
                LayerConfig::Conv { units, pieces, kernel, stride, padding, activation, .. } => (|| {
                    outputs(units, pieces, activation, MAX_CHANNELS)?;
                    in_range("kernel", kernel, MAX_KERNEL)?;
                    in_range("stride", stride, MAX_STRIDE)?;
                    ensure!(!after_dense, "a conv cannot follow a dense layer (its output has no height or width)");
                    if let Padding::Symmetric(p) = padding {
                        ensure!(p < kernel, "padding = {p}: it must be smaller than the kernel ({kernel})");
                    }
                    let (pt, pb) = padding.amounts(shape[1], kernel, stride);
                    let (pl, pr) = padding.amounts(shape[2], kernel, stride);
                    let oh = out_size(shape[1] + pt + pb, kernel, stride, false)?;
                    let ow = out_size(shape[2] + pl + pr, kernel, stride, false)?;
                    Ok([units, oh, ow])
                })()
                .with_context(at)?,
                LayerConfig::MaxPool { kernel, stride, padding, ceil, .. } => (|| {
                    let stride = stride.unwrap_or(kernel);
                    in_range("kernel", kernel, MAX_KERNEL)?;
                    in_range("stride", stride, MAX_STRIDE)?;
                    ensure!(!after_dense, "pooling cannot follow a dense layer (its output has no height or width)");
                    ensure!(padding < kernel, "padding = {padding}: it must be smaller than the kernel ({kernel})");
                    let oh = out_size(shape[1] + 2 * padding, kernel, stride, ceil)?;
                    let ow = out_size(shape[2] + 2 * padding, kernel, stride, ceil)?;
                    Ok([shape[0], oh, ow])
                })()
                .with_context(at)?,
                LayerConfig::Dropout { p, .. } => {
                    ensure!((0.0..1.0).contains(&p), "{}: p = {p}: dropout p must be in [0, 1)", at());
                    shape
                }
                LayerConfig::Dense { units, pieces, activation, .. } => (|| {
                    outputs(units, pieces, activation, MAX_DENSE)?;
                    anyhow::Ok([units, 1, 1])
                })()
                .with_context(at)?,
            };
            after_dense |= matches!(layer, LayerConfig::Dense { .. });
            shapes.push(shape);
        }
        let last = shapes.last().copied().unwrap_or_default();
        if !matches!(self.layers.last(), Some(LayerConfig::Dense { .. })) || last[0] != self.classes {
            bail!("the last layer must be dense with {} units (classes = {})", self.classes, self.classes);
        }
        for (key, name) in [("hint", &self.hint), ("guided", &self.guided)] {
            if let Some(name) = name {
                let i = self.layer_index(name).with_context(|| format!("{key} = \"{name}\" names no layer"))?;
                ensure!(
                    !matches!(self.layers[i], LayerConfig::Dense { .. }) && i + 1 < self.layers.len(),
                    "{key} = \"{name}\": the {key} layer must be a feature map (a conv, pool or dropout \
                     before the classifier), not layer {i}, a {}",
                    self.layers[i].kind()
                );
            }
        }
        let costs = super::count::layers_of(self, &shapes);
        let params = costs.iter().map(|c| c.params).fold(0, u64::saturating_add);
        let macs = costs.iter().map(|c| c.macs).fold(0, u64::saturating_add);
        ensure!(
            params <= MAX_PARAMS,
            "{params} parameters: at most {MAX_PARAMS} (make layers narrower or add pooling before dense layers)"
        );
        ensure!(macs <= MAX_MACS, "{macs} multiply-accumulates per image: at most {MAX_MACS}");
        Ok(shapes)
    }
}

/// Output size of a window of `kernel` sliding by `stride` over `padded` cells. With
/// `ceil`, a last partial window counts when it starts inside the padded input.
fn out_size(padded: usize, kernel: usize, stride: usize, ceil: bool) -> anyhow::Result<usize> {
    ensure!(padded >= kernel, "kernel {kernel} is larger than the (padded) input {padded}");
    let span = padded - kernel;
    let mut out = span / stride + 1;
    if ceil && !span.is_multiple_of(stride) {
        out += 1;
    }
    Ok(out)
}
