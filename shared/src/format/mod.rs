//! The model blob: `magic | version | postcard body | CRC-32`, and its validating
//! decoder.
//!
//! ```text
//! offset  size  field
//! 0       4     MAGIC = "FNET"
//! 4       2     VERSION, u16 little-endian
//! 6       n     postcard body: Header, labels, layers (see `desc`)
//! 6 + n   4     CRC-32 (ISO-HDLC, as zlib) of bytes 0 .. 6 + n, little-endian
//! ```
//!
//! [`Model::from_bytes`] checks everything once; afterwards iterating the layers and
//! running inference cannot fail on the model's account, cannot panic and cannot index
//! out of bounds (the invariant ARCHITECTURE.md states and the tests check).

mod desc;
#[cfg(feature = "std")]
pub mod encode;
mod error;
mod validate;

pub use desc::{Activation, Affine, Header, InputDesc, LayerDesc, Quant, RequantDesc};
pub use error::{Buffer, DecodeError, LayerError, Section};

use crate::ops::Layer;
use crate::tensor::{I8s, Shape};
use validate::Depth;

/// The first four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"FNET";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Longest model name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest class label, in bytes.
pub const MAX_LABEL_LEN: usize = 32;
/// Bytes before the postcard body.
pub const PREFIX_LEN: usize = MAGIC.len() + 2;
/// Bytes after it.
pub const CRC_LEN: usize = 4;

/// The CRC-32 used by blobs and frames (ISO-HDLC, the one zlib and PNG use).
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A validated model, borrowing everything from its blob.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    name: &'a str,
    input: Shape,
    input_quant: Quant,
    pixel_table: I8s<'a>,
    classes: u16,
    layer_count: u16,
    labels: &'a [u8],
    layers: &'a [u8],
    output_quant: Quant,
    crc: u32,
}

impl<'a> Model<'a> {
    /// Decodes and validates a blob, all but its arena; see the module docs for what is
    /// checked. [`Model::from_bytes`] (in [`crate::plan`], which knows the arena a model
    /// needs) adds the arena's check, and is what every caller uses.
    pub(crate) fn from_bytes_unplanned(bytes: &'a [u8]) -> Result<Model<'a>, DecodeError> {
        if bytes.len() < PREFIX_LEN + CRC_LEN {
            return Err(DecodeError::Truncated);
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion { found: version });
        }
        let (covered, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = CRC32.checksum(covered);
        if stored != computed {
            return Err(DecodeError::Checksum { stored, computed });
        }
        let body = &covered[PREFIX_LEN..];

        let (header, rest) = postcard::take_from_bytes::<Header<'a>>(body)
            .map_err(|_| DecodeError::Malformed { section: Section::Header })?;
        validate::header(&header)?;

        let mut labels_rest = rest;
        for class in 0..header.classes {
            let (label, next) = postcard::take_from_bytes::<&str>(labels_rest)
                .map_err(|_| DecodeError::Malformed { section: Section::Labels })?;
            if label.len() > MAX_LABEL_LEN {
                return Err(DecodeError::LabelTooLong { class });
            }
            labels_rest = next;
        }
        let labels = &rest[..rest.len() - labels_rest.len()];

        let mut model = Model {
            name: header.name,
            input: header.input.shape,
            input_quant: header.input.quant,
            pixel_table: I8s(header.input.pixel_table),
            classes: header.classes,
            layer_count: header.layers,
            labels,
            layers: labels_rest,
            output_quant: header.input.quant,
            crc: stored,
        };
        let mut cursor = model.layers();
        cursor.depth = Depth::Full;
        for layer in cursor.by_ref() {
            layer?;
        }
        if !cursor.rest.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        if cursor.shape != Shape::vector(header.classes) {
            return Err(DecodeError::OutputShape { classes: header.classes, found: cursor.shape });
        }
        model.output_quant = cursor.quant;
        Ok(model)
    }

    /// The CRC-32 stored at the end of the blob: identifies the exact model.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The input tensor's shape (raw pixels: `height * width * channels` bytes).
    pub fn input_shape(&self) -> Shape {
        self.input
    }

    /// The quantization of the input tensor.
    pub fn input_quant(&self) -> Quant {
        self.input_quant
    }

    /// The raw-pixel table: `channels * 256` entries (see [`InputDesc::pixel_table`]).
    pub fn pixel_table(&self) -> I8s<'a> {
        self.pixel_table
    }

    /// The quantization of the logits.
    pub fn output_quant(&self) -> Quant {
        self.output_quant
    }

    /// Number of classes (and logits).
    pub fn classes(&self) -> u16 {
        self.classes
    }

    pub fn layer_count(&self) -> u16 {
        self.layer_count
    }

    /// The class labels, in class order.
    pub fn labels(&self) -> Labels<'a> {
        Labels { rest: self.labels }
    }

    /// The label of `class`, if there is such a class.
    pub fn label(&self, class: u16) -> Option<&'a str> {
        self.labels().nth(usize::from(class))
    }

    /// The layers in execution order, each located and shape-checked against the
    /// tensor before it (the per-weight checks were done once by [`Model::from_bytes`]).
    /// For a model that `from_bytes` returned, every item is `Ok`.
    pub fn layers(&self) -> Layers<'a> {
        Layers {
            rest: self.layers,
            remaining: self.layer_count,
            index: 0,
            shape: self.input,
            quant: self.input_quant,
            depth: Depth::Structure,
        }
    }
}

/// Iterator over a model's labels.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (label, rest) = postcard::take_from_bytes::<&str>(self.rest).ok()?;
        self.rest = rest;
        Some(label)
    }
}

/// Iterator over a model's validated layers.
#[derive(Clone, Debug)]
pub struct Layers<'a> {
    rest: &'a [u8],
    remaining: u16,
    index: u16,
    shape: Shape,
    quant: Quant,
    depth: Depth,
}

impl<'a> Iterator for Layers<'a> {
    type Item = Result<Layer<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let index = self.index;
        self.index += 1;
        let step = || {
            let (desc, rest) = postcard::take_from_bytes::<LayerDesc<'a>>(self.rest)
                .map_err(|_| DecodeError::Malformed { section: Section::Layer { index } })?;
            let (layer, quant) = validate::layer(&desc, self.shape, self.quant, self.depth)
                .map_err(|error| DecodeError::Layer { index, error })?;
            Ok((layer, quant, rest))
        };
        match step() {
            Ok((layer, quant, rest)) => {
                self.rest = rest;
                self.shape = layer.output;
                self.quant = quant;
                Some(Ok(layer))
            }
            Err(e) => {
                // Stop after the first error: the rest cannot be located.
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}
