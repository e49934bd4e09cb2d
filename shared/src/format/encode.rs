//! Host-side encoding (feature `std`): owned model descriptions written with the very
//! wire types the decoder reads, then decoded back to prove the blob valid.

use std::string::String;
use std::vec::Vec;

use super::desc::{Activation, Affine, Header, InputDesc, LayerDesc, Quant, RequantDesc};
use super::{CRC32, DecodeError, MAGIC, Model, VERSION};
use crate::ops::Window;
use crate::tensor::Shape;

/// A whole model, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub input: InputSpec,
    pub labels: Vec<String>,
    pub layers: Vec<LayerSpec>,
}

/// The model's input, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub shape: Shape,
    pub quant: Quant,
    /// `channels * 256` entries; see [`InputDesc::pixel_table`].
    pub pixel_table: Vec<i8>,
}

/// One layer, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    Conv2d { window: Window, affine: AffineSpec },
    FullyConnected { affine: AffineSpec },
    Maxout { pieces: u16 },
    MaxPool2d { window: Window },
    AvgPool2d { window: Window },
    GlobalAvgPool { multiplier: i32, shift: i8, output: Quant },
    Flatten,
}

/// Weights, bias and requantization of a conv or fully connected layer, owned. The
/// number of outputs is `bias.len()`.
#[derive(Clone, Debug, PartialEq)]
pub struct AffineSpec {
    pub activation: Activation,
    /// OHWI (conv) or OI (fully connected).
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub multipliers: Vec<i32>,
    pub shifts: Vec<i8>,
    pub output: Quant,
}

/// Why a model could not be encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum EncodeError {
    /// A count does not fit the format's `u16` field.
    TooMany { what: &'static str, count: usize },
    /// postcard failed to serialize.
    Serialize(postcard::Error),
    /// The encoded blob does not pass [`Model::from_bytes`].
    Invalid(DecodeError),
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::TooMany { what, count } => write!(f, "{count} {what} (at most {})", u16::MAX),
            EncodeError::Serialize(e) => write!(f, "serialization failed: {e}"),
            EncodeError::Invalid(e) => write!(f, "encoded model is invalid: {e}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// The quantized `i8` of every raw pixel value per channel, for the normalization
/// `real = (pixel / 255 - mean[c]) / std[c]` and the input's quantization:
/// `clamp(round(real / scale) + zero_point)`, rounding half away from zero as TFLite's
/// quantize does.
pub fn pixel_table(mean: &[f32], std: &[f32], quant: Quant) -> Vec<i8> {
    assert_eq!(mean.len(), std.len(), "one mean and one std per channel");
    let mut table = Vec::with_capacity(mean.len() * 256);
    for (&m, &s) in mean.iter().zip(std) {
        for pixel in 0..=255u8 {
            let real = (f32::from(pixel) / 255.0 - m) / s;
            let q = (real / quant.scale).round() + f32::from(quant.zero_point);
            table.push(q.clamp(-128.0, 127.0) as i8);
        }
    }
    table
}

fn count(what: &'static str, n: usize) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::TooMany { what, count: n })
}

/// Raw bytes of the affine buffers, kept alive while the borrowed desc is written.
struct AffineBytes {
    outputs: u16,
    weights: Vec<u8>,
    bias: Vec<u8>,
    multipliers: Vec<u8>,
    shifts: Vec<u8>,
}

impl AffineBytes {
    fn new(spec: &AffineSpec) -> Result<AffineBytes, EncodeError> {
        Ok(AffineBytes {
            outputs: count("outputs", spec.bias.len())?,
            weights: bytemuck::cast_slice(&spec.weights).to_vec(),
            bias: spec.bias.iter().flat_map(|b| b.to_le_bytes()).collect(),
            multipliers: spec.multipliers.iter().flat_map(|m| m.to_le_bytes()).collect(),
            shifts: bytemuck::cast_slice(&spec.shifts).to_vec(),
        })
    }

    fn desc<'a>(&'a self, spec: &AffineSpec) -> Affine<'a> {
        Affine {
            outputs: self.outputs,
            activation: spec.activation,
            weights: &self.weights,
            bias: &self.bias,
            requant: RequantDesc { multipliers: &self.multipliers, shifts: &self.shifts },
            output: spec.output,
        }
    }
}

/// Encodes `spec` as a blob and checks that [`Model::from_bytes`] accepts it.
pub fn encode(spec: &ModelSpec) -> Result<Vec<u8>, EncodeError> {
    let bytes = encode_unchecked(spec)?;
    Model::from_bytes(&bytes).map_err(EncodeError::Invalid)?;
    Ok(bytes)
}

/// Encodes `spec` without validating it: for tests that need invalid blobs.
pub fn encode_unchecked(spec: &ModelSpec) -> Result<Vec<u8>, EncodeError> {
    let pixel_table: &[u8] = bytemuck::cast_slice(&spec.input.pixel_table);
    let header = Header {
        name: &spec.name,
        input: InputDesc { shape: spec.input.shape, quant: spec.input.quant, pixel_table },
        classes: count("classes", spec.labels.len())?,
        layers: count("layers", spec.layers.len())?,
    };
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let mut out = postcard::to_extend(&header, out).map_err(EncodeError::Serialize)?;
    for label in &spec.labels {
        out = postcard::to_extend(&label.as_str(), out).map_err(EncodeError::Serialize)?;
    }
    for layer in &spec.layers {
        out = write_layer(layer, out)?;
    }
    let crc = CRC32.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn write_layer(layer: &LayerSpec, out: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    let write = |desc: &LayerDesc<'_>, out| postcard::to_extend(desc, out).map_err(EncodeError::Serialize);
    match layer {
        LayerSpec::Conv2d { window, affine } => {
            let bytes = AffineBytes::new(affine)?;
            write(&LayerDesc::Conv2d { window: *window, affine: bytes.desc(affine) }, out)
        }
        LayerSpec::FullyConnected { affine } => {
            let bytes = AffineBytes::new(affine)?;
            write(&LayerDesc::FullyConnected { affine: bytes.desc(affine) }, out)
        }
        LayerSpec::Maxout { pieces } => write(&LayerDesc::Maxout { pieces: *pieces }, out),
        LayerSpec::MaxPool2d { window } => write(&LayerDesc::MaxPool2d { window: *window }, out),
        LayerSpec::AvgPool2d { window } => write(&LayerDesc::AvgPool2d { window: *window }, out),
        LayerSpec::GlobalAvgPool { multiplier, shift, output } => {
            write(&LayerDesc::GlobalAvgPool { multiplier: *multiplier, shift: *shift, output: *output }, out)
        }
        LayerSpec::Flatten => write(&LayerDesc::Flatten, out),
    }
}
