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
    /// `[height, width, channels]` of the input images (exactly three numbers).
    #[serde(deserialize_with = "three_sizes")]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// A number of pixels, `"same"` or `"valid"`, with a message that says so for anything
/// else (an untagged enum would only say that nothing matched).
impl<'de> Deserialize<'de> for Padding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Padding, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "padding: a number of pixels (0 or more), \"same\" or \"valid\"";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Padding;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Padding, E> {
                usize::try_from(v).map(Padding::Symmetric).map_err(|_| E::custom(format!("padding {v} is too large")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Padding, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("padding {v} is negative; expected {EXPECTED}"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Padding, E> {
                match v {
                    "same" => Ok(Padding::Named(NamedPadding::Same)),
                    "valid" => Ok(Padding::Named(NamedPadding::Valid)),
                    other => Err(E::custom(format!("padding \"{other}\" is unknown; expected {EXPECTED}"))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `input = [height, width, channels]`: exactly three non-negative integers (a fixed-size
/// array would silently drop extra values).
fn three_sizes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<[usize; 3], D::Error> {
    let values = Vec::<usize>::deserialize(deserializer)?;
    <[usize; 3]>::try_from(values.as_slice()).map_err(|_| {
        serde::de::Error::custom(format!(
            "input must be [height, width, channels], three numbers; found {} ({values:?})",
            values.len()
        ))
    })
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
    /// The layer's `type` as the config writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerConfig::Conv { .. } => "conv",
            LayerConfig::MaxPool { .. } => "max_pool",
            LayerConfig::Dropout { .. } => "dropout",
            LayerConfig::Dense { .. } => "dense",
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            LayerConfig::Conv { name, .. }
            | LayerConfig::MaxPool { name, .. }
            | LayerConfig::Dropout { name, .. }
            | LayerConfig::Dense { name, .. } => name.as_deref(),
        }
    }
}

/// What a config may ask for. Every size is bounded so that no shape, parameter or MAC
/// count can overflow (and no layer can ask for more memory than a machine has) before
/// the memory check of a training run ([`super::count::Footprint`]) looks at the whole.
pub mod limits {
    /// Input height and width, and any feature map's.
    pub const MAX_SIDE: usize = 4096;
    /// Input channels, and the channels (`units * pieces`) of a conv.
    pub const MAX_CHANNELS: usize = 4096;
    /// The outputs (`units * pieces`) of a dense layer.
    pub const MAX_DENSE: usize = 65_536;
    /// Conv and pooling kernels, per side.
    pub const MAX_KERNEL: usize = 64;
    /// Strides.
    pub const MAX_STRIDE: usize = 64;
    /// Maxout pieces.
    pub const MAX_PIECES: usize = 16;
    /// Classes: labels are bytes.
    pub const MAX_CLASSES: usize = 256;
    /// Layers of one network.
    pub const MAX_LAYERS: usize = 256;
    /// Trainable parameters (4 GB as float32, before gradients and optimizer state).
    pub const MAX_PARAMS: u64 = 1 << 30;
    /// Multiply-accumulates per image: beyond this one image takes minutes on a CPU.
    pub const MAX_MACS: u64 = 1_000_000_000_000;
}

impl NetConfig {
    /// Reads and checks a config file; errors name the file, and the layer (index and
    /// name) and field at fault.
    pub fn load(path: &Path) -> anyhow::Result<NetConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config {}", path.display()))?;
        NetConfig::parse(&text).with_context(|| format!("{} is not a valid network config", path.display()))
    }

    /// Parses and checks a config.
    pub fn parse(text: &str) -> anyhow::Result<NetConfig> {
        let table: toml::Table = toml::from_str(text)?;
        // Each layer on its own first: toml's error for a field of the tenth layer points
        // at the first `[[layers]]` line and names no layer.
        if let Some(toml::Value::Array(layers)) = table.get("layers") {
            for (i, layer) in layers.iter().enumerate() {
                let name = layer.get("name").and_then(|n| n.as_str()).map_or(String::new(), |n| format!(" `{n}`"));
                LayerConfig::deserialize(layer.clone())
                    .map_err(|e| anyhow::anyhow!("layer {i}{name}: {}", e.message()))?;
            }
        }
        let config = NetConfig::deserialize(table).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        config.shapes()?;
        Ok(config)
    }

    /// Refuses data this network cannot take: images of another height, width or
    /// channel count than `input`, or labels other than `0..classes` (every split is
    /// checked, so a stray label in the validation or test split is caught too).
    pub fn check_data(&self, sets: &[&crate::data::Dataset]) -> anyhow::Result<()> {
        for set in sets {
            self.check_images(set)?;
        }
        if let Some(set) = sets.first() {
            ensure!(
                set.classes == self.classes,
                "the config has classes = {}, but {} has {} classes (labels 0 to {}): set classes = {}",
                self.classes,
                crate::data::base_name(&set.name),
                set.classes,
                set.classes.saturating_sub(1),
                set.classes
            );
        }
        Ok(())
    }

    /// Refuses one set of images this network cannot take: another height, width or
    /// channel count than `input`, or a label at or above `classes`.
    pub fn check_images(&self, set: &crate::data::Dataset) -> anyhow::Result<()> {
        let [h, w, c] = self.input;
        {
            let shape = [set.height, set.width, set.channels];
            ensure!(
                shape == self.input,
                "the config takes {h}x{w}x{c} images (height x width x channels), but {} holds {}x{}x{}: \
                 set input = [{}, {}, {}] or use other data",
                set.name,
                shape[0],
                shape[1],
                shape[2],
                shape[0],
                shape[1],
                shape[2]
            );
            if let Some(&max) = set.labels.iter().max() {
                ensure!(
                    usize::from(max) < self.classes,
                    "{} has label {max}, but the config has classes = {} (labels 0 to {}): set classes = {}",
                    set.name,
                    self.classes,
                    self.classes - 1,
                    set.classes.max(usize::from(max) + 1)
                );
            }
        }
        Ok(())
    }

    /// Units of each conv layer, in order.
    pub fn conv_widths(&self) -> Vec<usize> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                LayerConfig::Conv { units, .. } => Some(*units),
                _ => None,
            })
            .collect()
    }

    /// The index of the layer called `name`.
    pub fn layer_index(&self, name: &str) -> anyhow::Result<usize> {
        self.layers
            .iter()
            .position(|l| l.name() == Some(name))
            .with_context(|| format!("{}: no layer is named `{name}`", self.name))
    }

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
