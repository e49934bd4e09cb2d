//! Validation of the header and of each layer against the tensor before it.
//!
//! Everything a kernel relies on is established here: shapes that chain, buffer lengths,
//! value ranges, and int32 accumulator bounds, with all size arithmetic checked.

use super::MAX_NAME_LEN;
use super::desc::{Activation, Affine, Header, LayerDesc, Quant};
use super::error::{Buffer, DecodeError, LayerError};
use crate::ops::reference::effective_multiplier;
use crate::ops::{Conv2d, FullyConnected, Layer, Mean, Op, Window};
use crate::quant::{MULTIPLIER_MIN, OutputStage, Requant, SHIFT_MAX, SHIFT_MIN, max_abs_offset};
use crate::tensor::{I8s, I32s, Shape};

pub(super) fn header(header: &Header<'_>) -> Result<(), DecodeError> {
    if header.name.len() > MAX_NAME_LEN {
        return Err(DecodeError::NameTooLong);
    }
    if header.classes == 0 {
        return Err(DecodeError::NoClasses);
    }
    if header.layers == 0 {
        return Err(DecodeError::NoLayers);
    }
    let input = &header.input;
    let check = || {
        shape(input.shape)?;
        scale(input.quant)?;
        let expected = u32::from(input.shape.channels) * 256;
        length(Buffer::PixelTable, input.pixel_table, expected)
    };
    check().map_err(|error| DecodeError::Input { error })
}

/// How much of a layer to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Depth {
    /// Everything, including the per-weight and per-channel scans (`O(parameters)`).
    Full,
    /// Shapes, lengths and windows only: enough to locate every buffer. Used when
    /// iterating a model that [`super::Model::from_bytes`] already checked in full; the
    /// bytes are borrowed immutably, so what was proven then still holds.
    Structure,
}

/// Validates `desc` applied to a tensor of `input` shape and `quant`, returning the
/// runtime layer and its output's quantization.
pub(super) fn layer<'a>(
    desc: &LayerDesc<'a>,
    input: Shape,
    quant: Quant,
    depth: Depth,
) -> Result<(Layer<'a>, Quant), LayerError> {
    let (op, output, out_quant) = match *desc {
        LayerDesc::Conv2d { window, ref affine } => {
            let (height, width) = window.output_size(input.height, input.width).ok_or(LayerError::Window)?;
            let fan_in = u32::from(window.kernel_h)
                .checked_mul(u32::from(window.kernel_w))
                .and_then(|n| n.checked_mul(u32::from(input.channels)))
                .ok_or(LayerError::TooLarge)?;
            let parts = affine_parts(affine, fan_in, quant.zero_point, depth)?;
            let conv = Conv2d {
                window,
                weights: parts.weights,
                bias: parts.bias,
                requant: parts.requant,
                input_zero_point: i32::from(quant.zero_point),
                output: parts.output,
            };
            (Op::Conv2d(conv), Shape::new(height, width, affine.outputs), affine.output)
        }
        LayerDesc::FullyConnected { ref affine } => {
            if input.height != 1 || input.width != 1 {
                return Err(LayerError::NotAVector);
            }
            let parts = affine_parts(affine, u32::from(input.channels), quant.zero_point, depth)?;
            let fc = FullyConnected {
                weights: parts.weights,
                bias: parts.bias,
                requant: parts.requant,
                input_zero_point: i32::from(quant.zero_point),
                output: parts.output,
            };
            (Op::FullyConnected(fc), Shape::vector(affine.outputs), affine.output)
        }
        LayerDesc::Maxout { pieces } => {
            if pieces == 0 {
                return Err(LayerError::Empty);
            }
            if !input.channels.is_multiple_of(pieces) {
                return Err(LayerError::Pieces { channels: input.channels, pieces });
            }
            let output = Shape::new(input.height, input.width, input.channels / pieces);
            (Op::Maxout { pieces }, output, quant)
        }
        LayerDesc::MaxPool2d { window } => (Op::MaxPool2d(window), pooled(window, input)?, quant),
        LayerDesc::AvgPool2d { window } => {
            // The sum of a window's raw values, |sum| <= 128 * area, must fit an i32.
            if u64::from(window.area()) * 128 > i32::MAX as u64 {
                return Err(LayerError::Overflow { channel: 0 });
            }
            (Op::AvgPool2d(window), pooled(window, input)?, quant)
        }
        LayerDesc::GlobalAvgPool { multiplier, shift, output } => {
            scale(output)?;
            requant_pair(multiplier, shift).map_err(|_| LayerError::Multiplier { channel: 0 })?;
            let cells = u32::from(input.height) * u32::from(input.width);
            let (_, effective_shift) = effective_multiplier(multiplier, i32::from(shift), cells);
            // |sum - zp * cells| <= 255 * cells, then shifted left.
            let bound = 255 * u64::from(cells);
            if bound > (i32::MAX >> effective_shift.max(0)) as u64 {
                return Err(LayerError::Overflow { channel: 0 });
            }
            let mean = Mean {
                multiplier,
                shift: i32::from(shift),
                input_zero_point: i32::from(quant.zero_point),
                output: output_stage(Activation::None, output.zero_point),
            };
            (Op::GlobalAvgPool(mean), Shape::vector(input.channels), output)
        }
        LayerDesc::Flatten => {
            let len = input.checked_len().ok_or(LayerError::TooLarge)?;
            let len = u16::try_from(len).map_err(|_| LayerError::TooLarge)?;
            (Op::Flatten, Shape::vector(len), quant)
        }
    };
    shape(output)?;
    Ok((Layer { op, input, output }, out_quant))
}

/// Non-empty, with an element count that fits a `u32`.
fn shape(shape: Shape) -> Result<(), LayerError> {
    if shape.is_empty() {
        return Err(LayerError::Empty);
    }
    shape.checked_len().map(|_| ()).ok_or(LayerError::TooLarge)
}

fn scale(quant: Quant) -> Result<(), LayerError> {
    if quant.scale.is_finite() && quant.scale > 0.0 { Ok(()) } else { Err(LayerError::Scale) }
}

fn length(buffer: Buffer, bytes: &[u8], expected: u32) -> Result<(), LayerError> {
    let found = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    if found != expected || bytes.len() != expected as usize {
        return Err(LayerError::BufferLength { buffer, expected, found });
    }
    Ok(())
}

fn pooled(window: Window, input: Shape) -> Result<Shape, LayerError> {
    let (height, width) = window.output_size(input.height, input.width).ok_or(LayerError::Window)?;
    Ok(Shape::new(height, width, input.channels))
}

fn output_stage(activation: Activation, zero_point: i8) -> OutputStage {
    let zero_point = i32::from(zero_point);
    let min = match activation {
        Activation::None => -128,
        Activation::Relu => zero_point,
    };
    OutputStage { zero_point, min, max: 127 }
}

/// `Err(true)` for a bad multiplier, `Err(false)` for a bad shift.
fn requant_pair(multiplier: i32, shift: i8) -> Result<(), bool> {
    if multiplier != 0 && multiplier < MULTIPLIER_MIN {
        return Err(true);
    }
    if !(SHIFT_MIN..=SHIFT_MAX).contains(&shift) {
        return Err(false);
    }
    Ok(())
}

struct AffineParts<'a> {
    weights: I8s<'a>,
    bias: I32s<'a>,
    requant: Requant<'a>,
    output: OutputStage,
}

/// Checks the buffers of a conv or fully connected layer with `fan_in` inputs per
/// output, and proves per output channel that the accumulator cannot overflow.
fn affine_parts<'a>(
    affine: &Affine<'a>,
    fan_in: u32,
    input_zero_point: i8,
    depth: Depth,
) -> Result<AffineParts<'a>, LayerError> {
    let outputs = u32::from(affine.outputs);
    if outputs == 0 || fan_in == 0 {
        return Err(LayerError::Empty);
    }
    let weights_len = fan_in.checked_mul(outputs).ok_or(LayerError::TooLarge)?;
    length(Buffer::Weights, affine.weights, weights_len)?;
    length(Buffer::Bias, affine.bias, 4 * outputs)?;
    length(Buffer::Multipliers, affine.requant.multipliers, 4 * outputs)?;
    length(Buffer::Shifts, affine.requant.shifts, outputs)?;
    scale(affine.output)?;

    let weights = I8s(affine.weights);
    let bias = I32s(affine.bias);
    let requant = Requant { multipliers: I32s(affine.requant.multipliers), shifts: I8s(affine.requant.shifts) };
    let parts =
        AffineParts { weights, bias, requant, output: output_stage(affine.activation, affine.output.zero_point) };
    if depth == Depth::Structure {
        return Ok(parts);
    }
    let max_x = max_abs_offset(input_zero_point);
    let per_output = affine.weights.chunks_exact(fan_in as usize);
    for (o, row) in per_output.enumerate() {
        let channel = o as u16;
        let shift = requant.shifts.get(o);
        requant_pair(requant.multipliers.get(o), shift).map_err(|bad_multiplier| {
            if bad_multiplier { LayerError::Multiplier { channel } } else { LayerError::Shift { channel } }
        })?;
        let mut sum_abs = 0i64;
        for &w in row {
            let w = w as i8;
            if w == i8::MIN {
                return Err(LayerError::WeightRange { channel });
            }
            sum_abs += i64::from(w.unsigned_abs());
        }
        // fan_in < 2^32 and |w| <= 127, so this stays far below i64::MAX.
        let bound = sum_abs * max_x + i64::from(bias.get(o)).abs();
        if bound > i64::from(i32::MAX >> shift.max(0)) {
            return Err(LayerError::Overflow { channel });
        }
    }
    Ok(parts)
}
