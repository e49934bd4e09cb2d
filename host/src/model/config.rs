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

use anyhow::{Context as _, ensure};
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
}
