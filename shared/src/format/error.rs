//! Decode errors: small, `Copy`, no strings.

use core::fmt;

use crate::tensor::Shape;

/// Why a blob was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// Shorter than the magic, version and checksum.
    Truncated,
    BadMagic,
    UnsupportedVersion {
        found: u16,
    },
    Checksum {
        stored: u32,
        computed: u32,
    },
    /// postcard could not decode this part of the body.
    Malformed {
        section: Section,
    },
    /// Bytes left over after the last layer.
    TrailingBytes,
    NameTooLong,
    LabelTooLong {
        class: u16,
    },
    NoClasses,
    NoLayers,
    /// The input description is inconsistent.
    Input {
        error: LayerError,
    },
    Layer {
        index: u16,
        error: LayerError,
    },
    /// The last layer's output is not `1 x 1 x classes`.
    OutputShape {
        classes: u16,
        found: Shape,
    },
    /// The activation arena would not fit in a `u32`.
    TooLarge,
}

/// The part of the body that failed to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Section {
    Header,
    Labels,
    Layer { index: u16 },
}

/// What is wrong with one layer (or the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LayerError {
    /// A dimension, output count or piece count is zero.
    Empty,
    /// A tensor or buffer size overflows.
    TooLarge,
    /// Kernel or stride zero, padding not smaller than the kernel, or a kernel larger
    /// than the padded input.
    Window,
    /// A buffer has the wrong length for its shape.
    BufferLength { buffer: Buffer, expected: u32, found: u32 },
    /// A weight is -128: symmetric int8 weights lie in `[-127, 127]`.
    WeightRange { channel: u16 },
    /// A multiplier outside `{0} ∪ [2^30, 2^31)`.
    Multiplier { channel: u16 },
    /// A shift outside `[-31, 30]`.
    Shift { channel: u16 },
    /// The int32 accumulator of this output channel could overflow for some input.
    Overflow { channel: u16 },
    /// A scale that is not finite and positive.
    Scale,
    /// Channels not divisible by the maxout piece count.
    Pieces { channels: u16, pieces: u16 },
    /// A fully connected layer needs a `1 x 1 x n` input (flatten first).
    NotAVector,
}

/// A buffer inside a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Buffer {
    Weights,
    Bias,
    Multipliers,
    Shifts,
    PixelTable,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("blob is truncated"),
            DecodeError::BadMagic => f.write_str("not a fitnets model (bad magic bytes)"),
            DecodeError::UnsupportedVersion { found } => {
                write!(f, "format version {found} is not supported (expected {})", super::VERSION)
            }
            DecodeError::Checksum { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            DecodeError::Malformed { section } => write!(f, "malformed {section}"),
            DecodeError::TrailingBytes => f.write_str("unexpected bytes after the last layer"),
            DecodeError::NameTooLong => write!(f, "model name longer than {} bytes", super::MAX_NAME_LEN),
            DecodeError::LabelTooLong { class } => {
                write!(f, "label of class {class} longer than {} bytes", super::MAX_LABEL_LEN)
            }
            DecodeError::NoClasses => f.write_str("model has no classes"),
            DecodeError::NoLayers => f.write_str("model has no layers"),
            DecodeError::Input { error } => write!(f, "input: {error}"),
            DecodeError::Layer { index, error } => write!(f, "layer {index}: {error}"),
            DecodeError::OutputShape { classes, found } => write!(
                f,
                "last layer outputs {}x{}x{}, expected 1x1x{classes} logits",
                found.height, found.width, found.channels
            ),
            DecodeError::TooLarge => f.write_str("activation arena does not fit in 32 bits"),
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Header => f.write_str("header"),
            Section::Labels => f.write_str("labels"),
            Section::Layer { index } => write!(f, "layer {index}"),
        }
    }
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Empty => f.write_str("a dimension is zero"),
            LayerError::TooLarge => f.write_str("size overflows"),
            LayerError::Window => f.write_str("bad kernel, stride or padding for this input"),
            LayerError::BufferLength { buffer, expected, found } => {
                write!(f, "{buffer:?} has {found} bytes, expected {expected}")
            }
            LayerError::WeightRange { channel } => {
                write!(f, "output channel {channel} has weight -128 (symmetric weights are [-127, 127])")
            }
            LayerError::Multiplier { channel } => write!(f, "output channel {channel}: multiplier out of range"),
            LayerError::Shift { channel } => write!(f, "output channel {channel}: shift out of [-31, 30]"),
            LayerError::Overflow { channel } => {
                write!(f, "output channel {channel}: int32 accumulator could overflow")
            }
            LayerError::Scale => f.write_str("scale is not finite and positive"),
            LayerError::Pieces { channels, pieces } => {
                write!(f, "{channels} channels are not divisible into maxout groups of {pieces}")
            }
            LayerError::NotAVector => f.write_str("fully connected input must be 1x1xN (flatten first)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
