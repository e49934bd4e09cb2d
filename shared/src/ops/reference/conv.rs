//! Conv2d, TFLite `reference_integer_ops::ConvPerChannel` (dilation 1).
//!
//! `acc = bias[o] + sum over in-image cells of (x - input_zp) * w`, requantized with
//! the double-rounding `MultiplyByQuantizedMultiplier`, plus the output zero point,
//! clamped. Padding cells are skipped, which is the same as padding with the input
//! zero point. Accumulator bound: see [`Conv2d`].

use crate::ops::{Conv2d, Window};
use crate::tensor::Shape;

/// One output value: channel `o` at output cell `(oy, ox)`.
#[inline(always)]
fn output_at(conv: &Conv2d<'_>, input: &[i8], in_shape: Shape, oy: usize, ox: usize, o: usize) -> i8 {
    let Window { kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, .. } = conv.window;
    let (kernel_h, kernel_w) = (usize::from(kernel_h), usize::from(kernel_w));
    let in_channels = usize::from(in_shape.channels);
    // Signed origins: the window may start in the padding.
    let y0 = (oy * usize::from(stride_h)) as isize - (pad_top as isize);
    let x0 = (ox * usize::from(stride_w)) as isize - (pad_left as isize);
    let mut acc = conv.bias.get(o);
    for ky in 0..kernel_h {
        let y = y0 + ky as isize;
        if y < 0 || y >= (in_shape.height as isize) {
            continue;
        }
        for kx in 0..kernel_w {
            let x = x0 + kx as isize;
            if x < 0 || x >= (in_shape.width as isize) {
                continue;
            }
            let base = in_shape.index(y as usize, x as usize, 0);
            let w_base = ((o * kernel_h + ky) * kernel_w + kx) * in_channels;
            for i in 0..in_channels {
                let x_val = i32::from(input[base + i]) - conv.input_zero_point;
                acc += x_val * i32::from(conv.weights.get(w_base + i));
            }
        }
    }
    conv.output.finish(conv.requant.apply(o, acc))
}

/// Conv2d: `input` is `in_shape`, `output` is `out_shape` (its channels are the conv's
/// output channels).
pub fn conv2d(conv: &Conv2d<'_>, input: &[i8], in_shape: Shape, output: &mut [i8], out_shape: Shape) {
    let channels = usize::from(out_shape.channels);
    for oy in 0..usize::from(out_shape.height) {
        for ox in 0..usize::from(out_shape.width) {
            for o in 0..channels {
                output[out_shape.index(oy, ox, o)] = output_at(conv, input, in_shape, oy, ox, o);
            }
        }
    }
}

/// Conv2d followed by maxout over `pieces`, without materializing the conv output:
/// output unit `g` is the maximum of conv channels `g * pieces .. (g + 1) * pieces`
/// (the layout of [`super::maxout`]). Bit-exact with [`conv2d`] then [`super::maxout`]
/// because the max is taken after each piece is requantized and clamped.
pub fn conv2d_maxout(
    conv: &Conv2d<'_>,
    pieces: u16,
    input: &[i8],
    in_shape: Shape,
    output: &mut [i8],
    out_shape: Shape,
) {
    let pieces = usize::from(pieces);
    for oy in 0..usize::from(out_shape.height) {
        for ox in 0..usize::from(out_shape.width) {
            for g in 0..usize::from(out_shape.channels) {
                let mut best = i8::MIN;
                for p in 0..pieces {
                    best = best.max(output_at(conv, input, in_shape, oy, ox, g * pieces + p));
                }
                output[out_shape.index(oy, ox, g)] = best;
            }
        }
    }
}
