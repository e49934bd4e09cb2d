//! The blob's wire types: exactly what is serialized, nothing computed.
//!
//! Integers are fixed-width types (never `usize`), so the layout is the same on every
//! target; postcard writes them as varints. Multi-byte arrays (`i32` biases and
//! multipliers) are raw little-endian byte slices and `i8` arrays raw bytes, so that
//! decoding borrows them straight from the blob (in flash on a device) with no copy
//! and no alignment requirement.
//!
//! Body layout, in order: one [`Header`], `header.classes` labels (`&str`), then
//! `header.layers` [`LayerDesc`]s.

use serde::{Deserialize, Serialize};

use crate::ops::Window;
use crate::tensor::Shape;

/// The quantization of one tensor: `real = scale * (q - zero_point)`.
///
/// The device never uses `scale`; it is kept so the host can dequantize and report.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i8,
}

/// The model's input: its shape, quantization and the raw-pixel mapping.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputDesc<'a> {
    pub shape: Shape,
    pub quant: Quant,
    /// `channels * 256` bytes: the quantized `i8` value of raw `u8` pixel `p` in channel
    /// `c` is `pixel_table[c * 256 + p]`. A table makes any per-channel normalization
    /// exact with no arithmetic on the device.
    #[serde(borrow)]
    pub pixel_table: &'a [u8],
}

/// Everything before the labels and layers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header<'a> {
    /// A short name (at most [`super::MAX_NAME_LEN`] bytes of UTF-8).
    pub name: &'a str,
    #[serde(borrow)]
    pub input: InputDesc<'a>,
    /// Number of classes, which is the number of labels and of logits.
    pub classes: u16,
    /// Number of layers.
    pub layers: u16,
}

/// A fused activation: the output clamp of a conv or fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Clamp to `[-128, 127]`.
    None,
    /// Clamp to `[output_zero_point, 127]`.
    Relu,
}

/// Per-output-channel requantization, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequantDesc<'a> {
    /// `i32` little-endian, one per output channel.
    #[serde(borrow)]
    pub multipliers: &'a [u8],
    /// `i8`, one per output channel.
    #[serde(borrow)]
    pub shifts: &'a [u8],
}

/// Weights, bias and requantization of a conv or fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine<'a> {
    /// Number of output channels (conv) or units (fully connected).
    pub outputs: u16,
    pub activation: Activation,
    /// `i8`: OHWI for a conv, OI for a fully connected layer.
    #[serde(borrow)]
    pub weights: &'a [u8],
    /// `i32` little-endian, one per output.
    #[serde(borrow)]
    pub bias: &'a [u8],
    #[serde(borrow)]
    pub requant: RequantDesc<'a>,
    pub output: Quant,
}

/// One layer as stored.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayerDesc<'a> {
    Conv2d {
        window: Window,
        #[serde(borrow)]
        affine: Affine<'a>,
    },
    FullyConnected {
        #[serde(borrow)]
        affine: Affine<'a>,
    },
    Maxout {
        pieces: u16,
    },
    MaxPool2d {
        window: Window,
    },
    AvgPool2d {
        window: Window,
    },
    /// `multiplier`/`shift`: `in_scale / out_scale` from `QuantizeMultiplier`.
    GlobalAvgPool {
        multiplier: i32,
        shift: i8,
        output: Quant,
    },
    Flatten,
}
