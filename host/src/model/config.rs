//! Architectures as TOML: the layers of a network and where its hint or guided layer is.
//!
//! ```toml
//! name = "mnist-fitnet"
//! input = [28, 28, 1]      # height, width, channels
//! classes = 10
//! guided = "pool2"         # students: the layer whose output a regressor maps to the hint
//!
//! [[layers]]
//! type = "conv"            # conv | max_pool | dropout | dense
//! name = "conv1"
//! units = 16               # output units; a maxout conv computes units * pieces channels
//! pieces = 2               # maxout pieces; 1 = a plain conv with `activation`
//! kernel = 3
//! padding = 1              # symmetric zero padding, or "same"
//! ```

use std::path::Path;

use anyhow::{Context as _, bail, ensure};
use serde::{Deserialize, Serialize};

/// A whole network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    pub name: String,
    /// `[height, width, channels]` of the input images.
    pub input: [usize; 3],
    pub classes: usize,
    /// Teachers: the layer whose output is the hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Students: the layer whose output the regressor maps onto the teacher's hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided: Option<String>,
    /// Students: the regressor, if not the paper's rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regressor: Option<RegressorConfig>,
    /// Free text: where the architecture comes from and what was chosen where the
    /// source leaves a choice open.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    pub layers: Vec<LayerConfig>,
}

/// Overrides for the hint regressor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressorConfig {
    /// Kernel size; default `N_g - N_h + 1` (valid), or 3 with padding when the guided
    /// map is smaller than the hint map.
    pub kernel: Option<usize>,
    /// Maxout pieces; default those of the hint layer's conv.
    pub pieces: Option<usize>,
}

/// One layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    Conv {
        #[serde(default)]
        name: Option<String>,
        units: usize,
        #[serde(default = "one")]
        pieces: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
        /// Only for `pieces = 1`: maxout is its own nonlinearity.
        #[serde(default)]
        activation: Activation,
        #[serde(default)]
        batch_norm: bool,
    },
    MaxPool {
        #[serde(default)]
        name: Option<String>,
        kernel: usize,
        #[serde(default)]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
        /// Round the output size up, as pylearn2's pooling did.
        #[serde(default)]
        ceil: bool,
    },
    Dropout {
        #[serde(default)]
        name: Option<String>,
        p: f64,
    },
    /// Fully connected; a 3-D input is flattened first (channel-major, as burn's NCHW).
    Dense {
        #[serde(default)]
        name: Option<String>,
        units: usize,
        #[serde(default = "one")]
        pieces: usize,
        #[serde(default)]
        activation: Activation,
    },
}

fn one() -> usize {
    1
}

/// Zero padding of a conv.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Padding {
    /// The same number of rows/columns on every side.
    Symmetric(usize),
    /// `"same"` or `"valid"`.
    Named(NamedPadding),
}

impl Default for Padding {
    fn default() -> Padding {
        Padding::Symmetric(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedPadding {
    Same,
    Valid,
}

impl Padding {
    /// `(before, after)` for one axis of `size` with `kernel` and `stride`; "same" puts
    /// the odd extra row after, as TFLite and burn do.
    pub fn amounts(self, size: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match self {
            Padding::Symmetric(p) => (p, p),
            Padding::Named(NamedPadding::Valid) => (0, 0),
            Padding::Named(NamedPadding::Same) => {
                let out = size.div_ceil(stride);
                let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(size);
                (total / 2, total - total / 2)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    None,
    Relu,
}

impl LayerConfig {
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerConfig::Conv { name, .. }
            | LayerConfig::MaxPool { name, .. }
            | LayerConfig::Dropout { name, .. }
            | LayerConfig::Dense { name, .. } => name.as_deref(),
        }
    }
}

impl NetConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<NetConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        NetConfig::parse(&text).with_context(|| format!("{} is not a valid network config", path.display()))
    }

    /// Parses and checks a config.
    pub fn parse(text: &str) -> anyhow::Result<NetConfig> {
        let config: NetConfig = toml::from_str(text)?;
        config.shapes()?;
        Ok(config)
    }

    /// The index of the layer called `name`.
    pub fn layer_index(&self, name: &str) -> anyhow::Result<usize> {
        self.layers
            .iter()
            .position(|l| l.name() == Some(name))
            .with_context(|| format!("{}: no layer is named `{name}`", self.name))
    }

    /// The output shape `[channels, height, width]` of every layer, checking that each
    /// layer fits its input. Dense outputs are `[units, 1, 1]`.
    pub fn shapes(&self) -> anyhow::Result<Vec<[usize; 3]>> {
        let [h, w, c] = self.input;
        ensure!(h > 0 && w > 0 && c > 0, "{}: input dimensions must be positive", self.name);
        ensure!(self.classes >= 2, "{}: a classifier needs at least 2 classes", self.name);
        ensure!(!self.layers.is_empty(), "{}: no layers", self.name);
        let mut shape = [c, h, w];
        let mut shapes = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let at = || format!("{} layer {i} ({})", self.name, layer.name().unwrap_or("unnamed"));
            shape = match *layer {
                LayerConfig::Conv { units, pieces, kernel, stride, padding, activation, .. } => {
                    ensure!(units > 0 && pieces > 0 && kernel > 0 && stride > 0, "{}: zero size", at());
                    ensure!(pieces == 1 || activation == Activation::None, "{}: maxout takes no activation", at());
                    ensure!(shape[1] > 1 || shape[2] > 1 || kernel == 1, "{}: conv after a dense layer", at());
                    let (pt, pb) = padding.amounts(shape[1], kernel, stride);
                    let (pl, pr) = padding.amounts(shape[2], kernel, stride);
                    let oh = out_size(shape[1] + pt + pb, kernel, stride, false).with_context(at)?;
                    let ow = out_size(shape[2] + pl + pr, kernel, stride, false).with_context(at)?;
                    [units, oh, ow]
                }
                LayerConfig::MaxPool { kernel, stride, padding, ceil, .. } => {
                    let stride = stride.unwrap_or(kernel);
                    ensure!(kernel > 0 && stride > 0, "{}: zero size", at());
                    ensure!(padding < kernel, "{}: padding must be smaller than the kernel", at());
                    let oh = out_size(shape[1] + 2 * padding, kernel, stride, ceil).with_context(at)?;
                    let ow = out_size(shape[2] + 2 * padding, kernel, stride, ceil).with_context(at)?;
                    [shape[0], oh, ow]
                }
                LayerConfig::Dropout { p, .. } => {
                    ensure!((0.0..1.0).contains(&p), "{}: dropout p must be in [0, 1)", at());
                    shape
                }
                LayerConfig::Dense { units, pieces, activation, .. } => {
                    ensure!(units > 0 && pieces > 0, "{}: zero size", at());
                    ensure!(pieces == 1 || activation == Activation::None, "{}: maxout takes no activation", at());
                    [units, 1, 1]
                }
            };
            shapes.push(shape);
        }
        let last = shapes.last().copied().unwrap_or_default();
        if !matches!(self.layers.last(), Some(LayerConfig::Dense { .. })) || last[0] != self.classes {
            bail!("{}: the last layer must be dense with {} units (the classes)", self.name, self.classes);
        }
        for (key, name) in [("hint", &self.hint), ("guided", &self.guided)] {
            if let Some(name) = name {
                let i = self.layer_index(name).with_context(|| format!("{} names a missing layer", key))?;
                ensure!(
                    shapes[i][1] > 1 || shapes[i][2] > 1 || i + 1 < self.layers.len(),
                    "{key} layer must be a feature map"
                );
            }
        }
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
